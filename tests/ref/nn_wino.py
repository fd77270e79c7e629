"""nn_wino: PyTorch reference fixtures for fd's own Winograd F(4x4, 3x3)
convolution (lib/nn/wino.c): forward and backward-data of 3x3 stride-1
convolutions, computed by torch in float64 from float32 x, w, b, s and dy.
x, y, s, dy and dx are stored channels last ([N, H, W, C], the layout the
kernel reads and writes); w is [K, C, 3, 3] as torch has it. Case i is
"<i>.shape" (int32: N, C, H, W, K, ph, pw, bias, relu) and
"<i>.x", "<i>.w", "<i>.b" (with bias), "<i>.y" (act(conv(x, w) + b)),
"<i>.s" and "<i>.ya" (act(s + conv(x, w) + b): the add mode), "<i>.dy",
"<i>.dx", "<i>.dw", "<i>.db" (with bias: dL/dx, dL/dw, dL/db of conv(x, w)
+ b for dy).
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import stio  # noqa: E402

out = sys.argv[1]
g = np.random.default_rng(20261206)


def rnd(*shape):
    return torch.from_numpy(g.standard_normal(shape).astype(np.float32))


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous()


# (N, C, H, W, K, ph, pw, bias, relu): C and K cover the kernel's 8-channel
# vectors and single channels (19, 21, 17), K's 16-channel blocks and a
# partial one (40 = 2 x 16 + 8); sizes not multiples of 4 (partial tiles),
# padding 0, 1 and 2, fewer tiles than one register block (6), and the
# ResNet shapes' channel counts
cases = [
    (2, 16, 8, 8, 16, 1, 1, 1, 0),        # whole tiles
    (3, 24, 9, 11, 40, 1, 1, 1, 1),       # partial tiles, K = 2 x 16 + 8, ReLU
    (2, 19, 7, 5, 21, 0, 0, 0, 0),        # odd C and K, no padding
    (1, 16, 3, 3, 16, 2, 2, 1, 0),        # padding 2 on a 3x3 image
    (2, 64, 14, 14, 64, 1, 1, 0, 1),      # ResNet layer-3 like
    (1, 32, 6, 13, 17, 2, 0, 1, 0),       # mixed padding
    (5, 16, 4, 4, 16, 1, 1, 0, 0),        # 5 tiles in all
    (2, 128, 7, 7, 256, 1, 1, 1, 1),      # ResNet layer-4 like, 7x7
    (4, 48, 30, 31, 32, 1, 1, 0, 0),      # 4 x 8 x 8 = 256 tiles: several blocks
    (4, 512, 30, 30, 16, 1, 1, 1, 0),     # backward-weights: 256 tiles in blocks of 220
]
t = {}
for i, c in enumerate(cases):
    N, C, H, W, K, ph, pw, bias, relu = c
    x, w = rnd(N, C, H, W), rnd(K, C, 3, 3) * (1.0 / (3.0 * C ** 0.5))
    b = rnd(K) if bias else None
    X, Wt = x.double().requires_grad_(True), w.double().requires_grad_(True)
    B = b.double().requires_grad_(True) if bias else None
    conv = F.conv2d(X, Wt, B, 1, (ph, pw))
    act = F.relu if relu else (lambda v: v)
    s = rnd(*conv.shape)
    dy = rnd(*conv.shape)
    conv.backward(dy.double())
    t[f"{i}.shape"] = np.array(c, dtype=np.int32)
    t[f"{i}.x"], t[f"{i}.w"] = nhwc(x), w
    if bias:
        t[f"{i}.b"] = b
    t[f"{i}.y"] = nhwc(act(conv.detach()).float())
    t[f"{i}.s"] = nhwc(s)
    t[f"{i}.ya"] = nhwc(act(s.double() + conv.detach()).float())
    t[f"{i}.dy"] = nhwc(dy)
    t[f"{i}.dx"] = nhwc(X.grad.float())
    t[f"{i}.dw"] = Wt.grad.float()
    if bias:
        t[f"{i}.db"] = B.grad.float()
stio.save(os.path.join(out, "wino.safetensors"), t, {"cases": str(len(cases))})
