"""nn_conv: PyTorch reference fixtures for the conv2d, linear, batchnorm2d and
pooling kernels (lib/nn). Inputs are float32; the expected outputs are computed
by torch in float64 from those same values and stored as float32. Each case i of
a family is a set of tensors named "<i>.<what>" plus "<i>.shape" (int32 params).
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import stio  # noqa: E402

out = sys.argv[1]
torch.manual_seed(20261128)
g = np.random.default_rng(20261128)


def rnd(*shape):
    return torch.from_numpy(g.standard_normal(shape).astype(np.float32))


def d64(t):
    return t.double().requires_grad_(True)


def f32(t):
    return t.detach().float()


# ---- conv2d: (N, C, H, W, K, kh, kw, sh, sw, ph, pw, dh, dw, groups, bias)
conv_cases = [
    (2, 3, 9, 11, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),
    (1, 4, 7, 7, 6, 3, 3, 2, 2, 0, 0, 1, 1, 1, 0),
    (3, 5, 8, 13, 7, 5, 3, 2, 1, 2, 1, 1, 1, 1, 1),
    (2, 6, 10, 9, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2, 1),       # dilation 2, groups 2
    (2, 8, 12, 12, 8, 3, 3, 1, 1, 1, 1, 1, 1, 8, 0),      # depthwise
    (2, 8, 11, 11, 8, 5, 5, 2, 2, 2, 2, 1, 1, 8, 1),      # depthwise 5x5 s2
    (1, 4, 9, 9, 8, 3, 3, 2, 2, 1, 1, 1, 1, 4, 1),        # depth multiplier 2
    (2, 6, 6, 10, 12, 1, 1, 2, 2, 0, 0, 1, 1, 1, 0),      # 1x1 stride 2 (negative right pad)
    (1, 3, 17, 15, 5, 7, 7, 2, 2, 3, 3, 1, 1, 1, 0),      # resnet stem-like
    (2, 4, 5, 6, 3, 2, 4, 3, 2, 0, 3, 1, 2, 1, 1),        # odd stride/pad/dilation mix
    (1, 16, 7, 7, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),      # channels multiple of 16 (blocked)
    (2, 32, 9, 9, 32, 3, 3, 2, 2, 1, 1, 1, 1, 32, 0),     # depthwise, blocked
]
t = {}
for i, c in enumerate(conv_cases):
    N, C, H, W, K, kh, kw, sh, sw, ph, pw, dh, dw, G, bias = c
    x, w = rnd(N, C, H, W), rnd(K, C // G, kh, kw) * 0.3
    b = rnd(K) if bias else None
    X, Wt = d64(x), d64(w)
    B = d64(b) if bias else None
    y = F.conv2d(X, Wt, B, (sh, sw), (ph, pw), (dh, dw), G)
    dy = rnd(*y.shape)
    y.backward(dy.double())
    t[f"{i}.shape"] = np.array(c, dtype=np.int32)
    t[f"{i}.x"], t[f"{i}.w"], t[f"{i}.y"], t[f"{i}.dy"] = x, w, f32(y), dy
    t[f"{i}.dx"], t[f"{i}.dw"] = f32(X.grad), f32(Wt.grad)
    if bias:
        t[f"{i}.b"], t[f"{i}.db"] = b, f32(B.grad)
stio.save(os.path.join(out, "conv.safetensors"), t, {"cases": str(len(conv_cases))})
