$CLI state --json fake: stop+logging
