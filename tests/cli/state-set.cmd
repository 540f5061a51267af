$CLI state fake: stop
