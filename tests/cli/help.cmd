$CLI --help
