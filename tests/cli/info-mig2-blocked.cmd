$CLI info 'fake:mig2=0x9'
