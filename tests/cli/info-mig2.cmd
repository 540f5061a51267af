$CLI info 'fake:mig2=all,memory=256K,config=4K'
