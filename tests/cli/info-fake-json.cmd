$CLI info --json fake:
