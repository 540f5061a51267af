$CLI save --passes 3 --ram 64M 'fake:memory=1M,seed=5,workload=4,sysmem=64M' snap.ds >/dev/null && $CLI dirty file:snap.ds --start 0 --pages 16384
