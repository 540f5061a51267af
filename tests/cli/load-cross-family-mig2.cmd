$CLI save --passes 1 'fake:mig2=all,memory=256K,seed=7' snap.ds >/dev/null
$CLI load snap.ds 'fake:memory=256K,zero=yes'
