$CLI save --json fake: -
