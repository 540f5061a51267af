$CLI --version
