$CLI migrate --passes 3 --threshold 4K 'fake:mig2=all,memory=1M,workload=8,seed=3' 'fake:mig2=all,memory=1M,zero=yes'
