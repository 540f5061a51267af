$CLI frobnicate
