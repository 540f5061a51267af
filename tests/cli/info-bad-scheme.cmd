$CLI info bogus:x
