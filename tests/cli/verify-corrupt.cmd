$CLI save --passes 1 'fake:memory=256K,seed=7' snap.ds >/dev/null
printf "\377" | dd of=snap.ds bs=1 seek=300 conv=notrunc 2>/dev/null
$CLI verify snap.ds
