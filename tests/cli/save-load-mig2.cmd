$CLI save --passes 2 'fake:mig2=all,memory=256K,workload=4,seed=7' snap.ds
$CLI verify snap.ds
$CLI inspect snap.ds
$CLI load snap.ds 'fake:mig2=stop-copy,memory=256K,zero=yes'
