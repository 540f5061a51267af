$CLI save --passes 1 --ram 4M 'fake:memory=256K,seed=5,workload=4,sysmem=4M' snap.ds >/dev/null && $CLI dirty --json --raw file:snap.ds --start 0 --pages 1024
