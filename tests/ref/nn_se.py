"""nn_se: PyTorch reference fixtures for the fused squeeze-excitation of
inference (lib/nn/se.h fd_se_infer): torchvision.ops.SqueezeExcitation(C,
Csq, activation, scale_activation) on x [N, C, H, W]. Inputs are float32; the
expected outputs are computed by torch in float64 from those same values and
stored as float32. Case i holds "<i>.shape" = (N, C, H, W, Csq, act, gate) as
int32, act and gate numbered as lib's enum fd_act (0 relu, 1 hardswish,
2 hardsigmoid, 3 silu, 4 sigmoid), and the tensors x, w1 [Csq, C, 1, 1], b1,
w2 [C, Csq, 1, 1], b2 (inputs) and y (result).
"""
import os
import sys

import numpy as np
import torch
from torch import nn
from torchvision.ops import SqueezeExcitation

sys.path.insert(0, os.path.dirname(__file__))
import stio  # noqa: E402

out = sys.argv[1]
g = np.random.default_rng(20261206)


def rnd(*shape):
    return torch.from_numpy(g.standard_normal(shape).astype(np.float32))


ACTS = {0: nn.ReLU, 1: nn.Hardswish, 2: nn.Hardsigmoid, 3: nn.SiLU, 4: nn.Sigmoid}
# EfficientNet's (SiLU, sigmoid) and MobileNetV3's (ReLU, hardsigmoid) pairs
# and the others; odd channel counts (the 8-lane sums' tails), a 1x1 map,
# a 56x56 map and EfficientNet's widest SE (1152 -> 48)
cases = [(4, 24, 7, 7, 8, 3, 4), (3, 40, 5, 6, 10, 0, 2), (2, 96, 14, 14, 4, 3, 4), (5, 17, 3, 3, 5, 1, 4),
         (2, 1152, 2, 2, 48, 3, 4), (3, 16, 1, 1, 8, 0, 2), (2, 64, 56, 56, 16, 0, 2), (3, 33, 4, 5, 7, 4, 1)]
t = {}
for i, c in enumerate(cases):
    N, C, H, W, Q, act, gate = c
    x = rnd(N, C, H, W) + 0.3
    se = SqueezeExcitation(C, Q, activation=ACTS[act], scale_activation=ACTS[gate]).double()
    # weights of a size that spreads the pre-activations over the gates'
    # non-linear ranges (hardsigmoid's [-3, 3])
    w1, b1 = rnd(Q, C, 1, 1) * (3 / C ** 0.5), rnd(Q)
    w2, b2 = rnd(C, Q, 1, 1) * (3 / Q ** 0.5), rnd(C)
    with torch.no_grad():
        se.fc1.weight.copy_(w1), se.fc1.bias.copy_(b1), se.fc2.weight.copy_(w2), se.fc2.bias.copy_(b2)
        y = se(x.double())
    t[f"{i}.shape"] = np.array(c, dtype=np.int32)
    t[f"{i}.x"], t[f"{i}.w1"], t[f"{i}.b1"], t[f"{i}.w2"], t[f"{i}.b2"] = x, w1, b1, w2, b2
    t[f"{i}.y"] = y.float()
stio.save(os.path.join(out, "se.safetensors"), t, {"cases": str(len(cases))})
