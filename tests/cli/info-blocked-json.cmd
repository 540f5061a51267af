$CLI info --json 'fake:caps=system-memory,bitmap=0'
