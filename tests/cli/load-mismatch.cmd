$CLI save --passes 1 'fake:memory=256K,seed=7' snap.ds >/dev/null
$CLI load snap.ds 'fake:version=1,memory=256K,zero=yes'
