$CLI info fake:
