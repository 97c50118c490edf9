"""The official DANet training recipe's numbers, read by `TrainConfig`'s
defaults, `DANet.compile()`, the optimizer and the losses: SGD with momentum
0.9 and coupled weight decay 1e-4, learning rate 0.01 with poly decay (power
0.9), the head at 10x; mmseg's auxiliary FCN loss weighs 0.4."""

LEARNING_RATE = 0.01
HEAD_LR_MULTIPLIER = 10.0
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4
POLY_POWER = 0.9
AUX_LOSS_WEIGHT = 0.4
