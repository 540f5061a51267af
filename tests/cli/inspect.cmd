$CLI save --passes 2 'fake:memory=64K,chunk=16K,zero=yes,workload=2,sysmem=8M' --ram 8M snap.ds >/dev/null && $CLI inspect snap.ds
