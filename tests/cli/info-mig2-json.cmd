$CLI info --json 'fake:mig2=stop-copy+pre-copy,memory=256K,config=4K'
