$CLI info --frobnicate fake:
