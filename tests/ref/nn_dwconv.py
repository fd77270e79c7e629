"""nn_dwconv: PyTorch reference fixtures for fd's depthwise backward-weights
kernel (lib/nn/dwconv.c). Each case is a depthwise convolution (groups == C ==
K) with float32 x, w, b and dy; torch computes dw and db in float64 from those
values (stored as float32). x and dy are stored channels last ([N, H, W, C],
the layout the kernel reads); dw is [C, 1, kh, kw] as torch has it. Case i is
"<i>.shape" (int32: N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, bias),
"<i>.x", "<i>.dy", "<i>.dw", "<i>.db" (with bias).
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import stio  # noqa: E402

out = sys.argv[1]
torch.manual_seed(20261204)
g = np.random.default_rng(20261204)


def rnd(*shape):
    return torch.from_numpy(g.standard_normal(shape).astype(np.float32))


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous()


# (N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, bias); C covers the kernel's
# 32-, 8- and 1-channel blocks (45 = 32 + 8 + 5, 19 = 2 * 8 + 3)
cases = [
    (2, 16, 11, 11, 5, 5, 1, 1, 2, 2, 1, 1, 1),    # EfficientNet-like 5x5
    (3, 45, 9, 13, 7, 7, 1, 1, 3, 3, 1, 1, 1),     # ConvNeXt-like 7x7, odd sizes
    (2, 40, 14, 15, 5, 5, 2, 2, 2, 2, 1, 1, 0),    # stride 2
    (2, 33, 12, 10, 5, 5, 1, 1, 4, 4, 2, 2, 1),    # dilation 2
    (1, 24, 10, 9, 5, 7, 2, 1, 1, 3, 1, 2, 0),     # rectangular kernel, mixed stride/pad/dilation
    (2, 64, 13, 13, 5, 5, 3, 3, 0, 0, 1, 1, 1),    # stride 3, no padding
    (2, 72, 15, 15, 3, 3, 2, 2, 1, 1, 1, 1, 0),    # 3x3 stride 2
    (3, 19, 8, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1),      # 3x3
    (3, 40, 14, 14, 7, 7, 1, 1, 3, 3, 1, 1, 1),    # 42 output rows: several rows per chunk
    (2, 8, 4, 5, 7, 7, 1, 1, 3, 3, 1, 1, 1),       # kernel larger than the image
    (1, 8, 3, 3, 7, 7, 1, 1, 3, 3, 1, 1, 0),       # taps that never reach the image
    (1, 16, 5, 5, 5, 5, 1, 1, 0, 0, 1, 1, 1),      # 1x1 output
    (5, 12, 6, 6, 5, 5, 2, 2, 2, 2, 1, 1, 1),      # N*Ho = 15 rows < 32 chunks
]
t = {}
for i, c in enumerate(cases):
    N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, bias = c
    x, w = rnd(N, C, H, W), rnd(C, 1, kh, kw) * 0.3
    b = rnd(C) if bias else None
    X, Wt = x.double(), w.double().requires_grad_(True)
    B = b.double().requires_grad_(True) if bias else None
    y = F.conv2d(X, Wt, B, (sh, sw), (ph, pw), (dh, dw), C)
    dy = rnd(*y.shape)
    y.backward(dy.double())
    t[f"{i}.shape"] = np.array(c, dtype=np.int32)
    t[f"{i}.x"], t[f"{i}.dy"] = nhwc(x), nhwc(dy)
    t[f"{i}.dw"] = Wt.grad.float()
    if bias:
        t[f"{i}.db"] = B.grad.float()
stio.save(os.path.join(out, "dwconv.safetensors"), t, {"cases": str(len(cases))})
