$CLI save --passes 2 --codec deflate 'fake:memory=256K,seed=7,workload=2,sysmem=8M' --ram 8M snap.ds >/dev/null && $CLI inspect snap.ds
