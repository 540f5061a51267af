$CLI state 'fake:mig2=all'
$CLI state 'fake:mig2=all' stop-copy
$CLI state --json 'fake:mig2=stop-copy' resuming
