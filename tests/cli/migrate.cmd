$CLI migrate --passes 3 --threshold 4K 'fake:memory=1M,workload=8,seed=3' 'fake:memory=1M,zero=yes'
