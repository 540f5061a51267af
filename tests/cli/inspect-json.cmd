$CLI save --passes 1 'fake:memory=64K,chunk=16K,seed=7,sysmem=8M' --ram 8M snap.ds >/dev/null && $CLI inspect --json snap.ds
