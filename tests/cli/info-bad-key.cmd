$CLI info fake:colour=blue
