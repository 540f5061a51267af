$CLI save --passes 1 'fake:memory=64K,chunk=16K,seed=7,sysmem=8M' --ram 8M snap.ds >/dev/null
printf "\377" | dd of=snap.ds bs=1 seek=20000 conv=notrunc 2>/dev/null
$CLI inspect snap.ds
