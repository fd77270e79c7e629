"""nn_bfw: PyTorch reference fixtures for fd's bf16 convolution
backward-weights (lib/nn/bfw.c): image layers (1-4 input channels, the
ones conv2d's plans give it) and wider ones. Each case is an ungrouped
convolution without bias with float32 x and dy; x and dy are rounded to
bfloat16 (torch's round to nearest even, the rounding fd_dnnl_to_bf16
makes), and torch computes dw from the rounded values in float64, and the
same backward of |x| and |dy| (the sum of |products| of each weight: the
scale of its rounding error). x and dy are stored channels last ([N, H, W,
C], the layout the kernel reads) in float32 before rounding; dw and dwabs
are [K, C, kh, kw] as torch has them. Case i is "<i>.shape" (int32: N, C,
H, W, K, kh, kw, sh, sw, ph, pw), "<i>.x", "<i>.dy", "<i>.dw", "<i>.dwabs".
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


def nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous()


# (N, C, H, W, K, kh, kw, sh, sw, ph, pw): K covers every register tile of
# the kernel (16-channel blocks 1..8, and 4 at a time past 8), odd output widths (a pair's second
# pixel past the row), padding wider than the kernel reaches, rectangular
# kernels, and the models' stems at small sizes
cases = [
    (2, 3, 16, 16, 32, 3, 3, 1, 1, 1, 1),    # SimpleCNN's stem
    (2, 3, 21, 19, 64, 7, 7, 2, 2, 3, 3),    # ResNet's stem, odd sizes
    (3, 3, 17, 18, 32, 3, 3, 2, 2, 1, 1),    # EfficientNet's stem
    (2, 3, 15, 15, 16, 3, 3, 2, 2, 1, 1),    # MobileNetV3's stem
    (2, 3, 16, 20, 96, 4, 4, 4, 4, 0, 0),    # ConvNeXt's stem (without its bias)
    (2, 1, 13, 11, 48, 5, 5, 1, 1, 2, 2),    # one channel, 3 blocks
    (1, 4, 9, 10, 128, 3, 3, 1, 1, 0, 0),    # four channels, 8 blocks
    (2, 2, 11, 13, 80, 3, 5, 1, 2, 1, 2),    # 5 blocks, rectangular, mixed stride
    (2, 3, 12, 12, 112, 2, 2, 2, 2, 0, 0),   # 7 blocks
    (1, 3, 7, 9, 16, 3, 3, 1, 1, 3, 3),      # padding beyond the kernel's reach: zero taps
    (1, 4, 6, 5, 16, 8, 8, 1, 1, 2, 2),      # kw * C = 32, the widest tap row
    (40, 3, 4, 3, 32, 3, 3, 1, 1, 1, 1),     # N*Ho = 160 rows over 32 chunks, Wo odd
    # wider layers (computed, not served: doc/nn-kernels.md)
    (2, 32, 9, 10, 64, 3, 3, 1, 1, 1, 1),    # SimpleCNN-like 3x3
    (2, 24, 11, 9, 256, 3, 3, 2, 2, 1, 1),   # 16 blocks in tiles of 4, strided
    (1, 40, 6, 7, 128, 1, 1, 1, 1, 0, 0),    # 1x1
    (2, 17, 8, 8, 192, 2, 2, 2, 2, 0, 0),    # 12 blocks, odd channel count
    (1, 5, 5, 6, 64, 3, 3, 1, 1, 2, 2),      # 5 channels, padding 2
]
t = {}
for i, c in enumerate(cases):
    N, C, H, W, K, kh, kw, sh, sw, ph, pw = c
    x = rnd(N, C, H, W)
    Ho = (H + 2 * ph - kh) // sh + 1
    Wo = (W + 2 * pw - kw) // sw + 1
    dy = rnd(N, K, Ho, Wo)
    xr, dyr = x.bfloat16().double(), dy.bfloat16().double()
    dw = torch.nn.grad.conv2d_weight(xr, (K, C, kh, kw), dyr, (sh, sw), (ph, pw))
    dwabs = torch.nn.grad.conv2d_weight(xr.abs(), (K, C, kh, kw), dyr.abs(), (sh, sw), (ph, pw))
    # the same from autograd, as a check of conv2d_weight's arguments
    w = torch.zeros(K, C, kh, kw, dtype=torch.float64, requires_grad=True)
    F.conv2d(xr, w, None, (sh, sw), (ph, pw)).backward(dyr)
    assert torch.allclose(w.grad, dw, rtol=1e-12, atol=1e-12), i
    t[f"{i}.shape"] = np.array(c, dtype=np.int32)
    t[f"{i}.x"], t[f"{i}.dy"] = nhwc(x), nhwc(dy)
    t[f"{i}.dw"], t[f"{i}.dwabs"] = dw.float(), dwabs.float()
stio.save(os.path.join(out, "bfw.safetensors"), t, {"cases": str(len(cases))})
