$CLI save --passes 1 'fake:memory=256K,seed=7' snap.ds >/dev/null && $CLI info file:snap.ds
