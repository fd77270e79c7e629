"""nn_dconv: PyTorch reference fixtures for fd's direct convolution forward
(lib/nn/dconv.c). Each case is an ungrouped convolution with float32
x, w, b; torch computes y in float64 from those values (stored as float32).
x and y are stored channels last ([N, H, W, C], the layout the kernel reads
and writes), except an image layer's x (img 1: [N, C, H, W], as the image
comes); w is [K, C, kh, kw] as torch has it. Case i is "<i>.shape" (int32:
N, C, H, W, K, kh, kw, sh, sw, ph, pw, bias, img), "<i>.x", "<i>.w",
"<i>.y", "<i>.ys" (SiLU of y), "<i>.yh" (hardswish of y), "<i>.b" (with
bias).
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


# (N, C, H, W, K, kh, kw, sh, sw, ph, pw, bias): the kernel's 6-pixel
# blocks (full, partial, spanning output rows), 16-output blocks (full and
# partial K), taps outside the image on every side, several row groups
cases = [
    (2, 16, 9, 11, 16, 3, 3, 2, 2, 1, 1, 1),     # ResNet-like 3x3 stride 2, odd sizes
    (2, 24, 14, 13, 20, 3, 3, 2, 2, 1, 1, 0),    # K = 20: a partial block of 16
    (1, 32, 15, 15, 33, 5, 5, 2, 2, 2, 2, 1),    # 5x5, K = 33
    (2, 16, 13, 12, 16, 3, 3, 3, 3, 0, 0, 1),    # stride 3, no padding
    (1, 20, 11, 17, 16, 3, 5, 2, 1, 1, 2, 1),    # rectangular kernel, strides 2 and 1
    (3, 64, 8, 8, 48, 3, 3, 2, 2, 1, 1, 0),      # a 4-wide map: blocks span output rows
    (1, 16, 28, 28, 32, 7, 7, 2, 2, 3, 3, 1),    # 7x7 (49 taps)
    (2, 48, 7, 7, 16, 3, 3, 2, 2, 1, 1, 1),      # 4x4 output
    (1, 16, 6, 6, 16, 3, 3, 2, 2, 2, 2, 1),      # padding 2
    (1, 16, 120, 64, 16, 3, 3, 2, 2, 1, 1, 0),   # 60 output rows: two row groups
    (2, 32, 10, 13, 24, 3, 3, 1, 1, 1, 1, 1),    # stride 1 (non-Winograd plans)
    (1, 16, 9, 7, 16, 2, 2, 1, 1, 0, 0, 1),      # 2x2 stride 1, no padding
    (1, 96, 16, 16, 40, 2, 2, 2, 2, 0, 0, 1),    # ConvNeXt-like 2x2 stride-2 downsampling
]
# image layers (x NCHW, y NHWC; 1-4 channels): the stems of the models
# (MobileNetV3 and EfficientNet 3x3 stride 2, ResNet 7x7 stride 2,
# ConvNeXt 4x4 stride 4) on odd sizes, partial rows of six pixels, pixels
# whose taps leave the image on every side, K not a multiple of 16
img_cases = [
    (2, 3, 17, 19, 16, 3, 3, 2, 2, 1, 1, 1),     # MobileNetV3-like
    (1, 3, 23, 21, 32, 3, 3, 2, 2, 1, 1, 0),     # EfficientNet-like, no bias
    (2, 3, 30, 29, 64, 7, 7, 2, 2, 3, 3, 0),     # ResNet-like 7x7
    (1, 3, 18, 22, 96, 4, 4, 4, 4, 0, 0, 1),     # ConvNeXt-like 4x4 stride 4
    (1, 1, 9, 8, 20, 3, 3, 1, 1, 1, 1, 1),       # one channel, K = 20, stride 1
    (2, 4, 5, 40, 24, 5, 3, 1, 2, 2, 0, 1),      # 4 channels, rectangular, rows all off the top/bottom
]
cases = [c + (0,) for c in cases] + [c + (1,) for c in img_cases]
t = {}
for i, c in enumerate(cases):
    N, C, H, W, K, kh, kw, sh, sw, ph, pw, bias, img = c
    x, w = rnd(N, C, H, W), rnd(K, C, kh, kw) * (1.0 / np.sqrt(C * kh * kw))
    b = rnd(K) if bias else None
    y = F.conv2d(x.double(), w.double(), b.double() if bias else None, (sh, sw), (ph, pw))
    t[f"{i}.shape"] = np.array(c, dtype=np.int32)
    t[f"{i}.x"], t[f"{i}.w"], t[f"{i}.y"] = x if img else nhwc(x), w, nhwc(y.float())
    t[f"{i}.ys"], t[f"{i}.yh"] = nhwc(F.silu(y).float()), nhwc(F.hardswish(y).float())
    if bias:
        t[f"{i}.b"] = b
stio.save(os.path.join(out, "dconv.safetensors"), t, {"cases": str(len(cases))})
