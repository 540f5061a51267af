$CLI state fake: sideways
