$CLI info fake:version=7
