$CLI dirty 'fake:caps=device-memory' --start 0 --pages 8
