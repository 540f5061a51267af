$CLI state fake:
