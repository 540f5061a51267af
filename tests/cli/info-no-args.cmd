$CLI info
