$CLI save --passes 1 'fake:memory=256K,seed=7' snap.ds >/dev/null
$CLI load snap.ds 'fake:mig2=all,memory=256K,zero=yes'
