$CLI save --passes 2 'fake:memory=1M,seed=5,workload=4' snap.ds >/dev/null && $CLI migrate file:snap.ds 'fake:memory=1M,zero=yes'
