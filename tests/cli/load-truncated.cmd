$CLI save --passes 1 'fake:memory=256K,seed=7' snap.ds >/dev/null
head -c 5000 snap.ds > cut.ds
$CLI load cut.ds 'fake:memory=256K,zero=yes'
