$CLI migrate --json --passes 2 'fake:memory=1M,workload=8,seed=3' 'fake:memory=1M,zero=yes'
