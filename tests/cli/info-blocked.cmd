$CLI info 'fake:caps=device-memory,chunk=0'
