"""nn_mbfront: PyTorch reference fixtures for the fused front of an
inverted-residual block at inference (lib/nn/mbfront.h fd_mbfront_infer):
y = act(dwconv(act(conv1x1(x) + be)) + bd), the depthwise convolution with
stride s and padding (k - 1) / 2, as torchvision's MBConv / InvertedResidual
with their BatchNorms folded. Inputs are float32; y is computed by torch in
float64 from those same values and stored as float32, with mag, a float64
bound on what the output sums (sum over the depthwise taps of |wd| times
|be| + sum |we| |x| at the tap, plus |bd|), for the test's tolerance. Case i
holds "<i>.shape" = (N, Cin, Cexp, H, W, k, stride, act, expand) as int32,
act numbered as lib's enum fd_act (0 relu, 1 hardswish, 3 silu), expand 0
for a block without the expansion (y = act(dwconv(x) + bd), Cexp = Cin:
EfficientNet's and MobileNetV3's first blocks), and x [N, Cin, H, W], we
[Cexp, Cin, 1, 1], be [Cexp] (unused where expand is 0), wd [Cexp, 1, k,
k], bd [Cexp], y [N, Cexp, Ho, Wo], mag (same shape).
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import stio  # noqa: E402

out = sys.argv[1]
g = np.random.default_rng(20261207)


def rnd(*shape):
    return torch.from_numpy(g.standard_normal(shape).astype(np.float32))


ACTS = {0: F.relu, 1: F.hardswish, 3: F.silu}
# EfficientNet-B0's and MobileNetV3-Small's kinds of block on small maps:
# strides 1 and 2, 3x3 and 5x5 (and a 7x7), channel counts that are not
# multiples of 16 (72, 88, 120, 20: the padded last block), maps narrower
# than the 6-pixel expansion tile and smaller than the kernel, odd and
# unequal sizes, a single image (split into bands of rows), the widest
# expansion (192 -> 1152), 1x1 maps in and out (a small input's last
# blocks)
cases = [(2, 16, 96, 12, 12, 3, 2, 3, 1), (2, 24, 144, 9, 9, 3, 1, 3, 1), (3, 24, 144, 11, 10, 5, 2, 3, 1),
         (2, 40, 240, 7, 7, 5, 1, 3, 1), (2, 16, 72, 13, 13, 3, 2, 0, 1), (2, 24, 88, 7, 7, 3, 1, 0, 1),
         (2, 40, 120, 6, 5, 5, 1, 1, 1), (1, 48, 144, 5, 5, 5, 2, 1, 1), (2, 96, 576, 3, 3, 5, 1, 1, 1),
         (2, 7, 20, 8, 9, 7, 1, 3, 1), (4, 192, 1152, 2, 2, 5, 1, 3, 1), (1, 16, 64, 20, 30, 3, 1, 1, 1),
         (2, 32, 32, 14, 14, 3, 1, 3, 0), (2, 16, 16, 13, 13, 3, 2, 0, 0), (1, 20, 20, 9, 7, 5, 1, 1, 0),
         (2, 24, 96, 1, 1, 3, 1, 3, 1), (2, 40, 120, 2, 2, 5, 2, 1, 1)]
t = {}
for i, c in enumerate(cases):
    N, Cin, C, H, W, k, s, act, expand = c
    x = rnd(N, Cin, H, W)
    we, be = rnd(C, Cin, 1, 1) * (2 / Cin) ** 0.5, rnd(C) * 0.5
    wd, bd = rnd(C, 1, k, k) * (2 / (k * k)) ** 0.5, rnd(C) * 0.5
    p = (k - 1) // 2
    f = ACTS[act]
    e = f(F.conv2d(x.double(), we.double(), be.double())) if expand else x.double()
    y = f(F.conv2d(e, wd.double(), bd.double(), stride=s, padding=p, groups=C))
    ea = F.conv2d(x.double().abs(), we.double().abs(), be.double().abs()) if expand else x.double().abs()
    mag = F.conv2d(ea, wd.double().abs(), bd.double().abs(), stride=s, padding=p, groups=C)
    t[f"{i}.shape"] = np.array(c, dtype=np.int32)
    t[f"{i}.x"], t[f"{i}.we"], t[f"{i}.be"], t[f"{i}.wd"], t[f"{i}.bd"] = x, we, be, wd, bd
    t[f"{i}.y"], t[f"{i}.mag"] = y.float(), mag.float()
stio.save(os.path.join(out, "mbfront.safetensors"), t, {"cases": str(len(cases))})
