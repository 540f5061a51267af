$CLI save --passes 2 'fake:memory=1M,seed=7,workload=4' - 2>save.err | $CLI load - 'fake:memory=1M,zero=yes'
grep digest save.err
