$CLI dirty fake: --start 0
