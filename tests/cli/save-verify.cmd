$CLI save --passes 2 --codec zstd 'fake:memory=1M,seed=7,workload=4' snap.ds >/dev/null && $CLI verify snap.ds
