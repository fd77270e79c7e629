"""nn_mbback: PyTorch reference fixtures for the fused back of an
inverted-residual block at inference (lib/nn/mbback.h fd_mbback_infer):
y = conv1x1(SqueezeExcitation(x), wp) + bp (+ res), torchvision's
SqueezeExcitation(C, Csq, act, gate) then MBConv's projection with its
BatchNorm folded, and the residual add. Inputs are float32; y is computed by
torch in float64 from those same values and stored as float32, with mag, a
float64 bound on what each output sums (|bp| + sum |wp| |x s| + |res|, s the
SE's scale), for the test's tolerance. Case i holds "<i>.shape" = (N, C, H,
W, Csq, Cout, res, act, gate) as int32, act and gate numbered as lib's enum
fd_act (0 relu, 2 hardsigmoid, 3 silu, 4 sigmoid), and x [N, C, H, W], w1
[Csq, C, 1, 1], b1, w2 [C, Csq, 1, 1], b2, wp [Cout, C, 1, 1], bp, r [N,
Cout, H, W] (used where res is 1), y, mag.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import SqueezeExcitation

sys.path.insert(0, os.path.dirname(__file__))
import stio  # noqa: E402

out = sys.argv[1]
g = np.random.default_rng(20261208)


def rnd(*shape):
    return torch.from_numpy(g.standard_normal(shape).astype(np.float32))


ACTS = {0: nn.ReLU, 2: nn.Hardsigmoid, 3: nn.SiLU, 4: nn.Sigmoid}
# EfficientNet's (SiLU, sigmoid) and MobileNetV3's (ReLU, hardsigmoid)
# blocks, with and without the residual; output channels that are not
# multiples of 16 (24, 40: the masked last block) and more than one group of
# 48; maps with fewer pixels than output channels (the gated pixels) and
# more (the gated weights), pixel counts that are not multiples of the 7-
# pixel tile; a single image (split in bands); a 1x1 map (a small input's
# last blocks)
cases = [(2, 96, 8, 8, 4, 24, 0, 3, 4), (3, 144, 7, 9, 6, 24, 1, 3, 4), (2, 240, 5, 5, 10, 40, 1, 3, 4),
         (2, 480, 3, 3, 20, 112, 0, 3, 4), (2, 1152, 2, 2, 48, 192, 1, 3, 4), (2, 96, 6, 6, 24, 40, 0, 0, 2),
         (1, 240, 6, 5, 64, 40, 1, 0, 2), (1, 72, 11, 13, 8, 56, 0, 3, 4), (4, 40, 4, 4, 8, 320, 0, 3, 4),
         (3, 96, 1, 1, 24, 40, 1, 0, 2)]
t = {}
for i, c in enumerate(cases):
    N, C, H, W, Q, K, res, act, gate = c
    x = rnd(N, C, H, W)
    se = SqueezeExcitation(C, Q, activation=ACTS[act], scale_activation=ACTS[gate]).double()
    w1, b1 = rnd(Q, C, 1, 1) * (3 / C ** 0.5), rnd(Q)
    w2, b2 = rnd(C, Q, 1, 1) * (3 / Q ** 0.5), rnd(C)
    wp, bp = rnd(K, C, 1, 1) * (1 / C ** 0.5), rnd(K) * 0.5
    r = rnd(N, K, H, W)
    with torch.no_grad():
        se.fc1.weight.copy_(w1), se.fc1.bias.copy_(b1), se.fc2.weight.copy_(w2), se.fc2.bias.copy_(b2)
        xs = se(x.double())
        y = F.conv2d(xs, wp.double(), bp.double())
        mag = F.conv2d(xs.abs(), wp.double().abs(), bp.double().abs())
        if res:
            y, mag = y + r.double(), mag + r.double().abs()
    t[f"{i}.shape"] = np.array(c, dtype=np.int32)
    t[f"{i}.x"], t[f"{i}.w1"], t[f"{i}.b1"], t[f"{i}.w2"], t[f"{i}.b2"] = x, w1, b1, w2, b2
    t[f"{i}.wp"], t[f"{i}.bp"], t[f"{i}.r"] = wp, bp, r
    t[f"{i}.y"], t[f"{i}.mag"] = y.float(), mag.float()
stio.save(os.path.join(out, "mbback.safetensors"), t, {"cases": str(len(cases))})
