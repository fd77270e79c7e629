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

# ---- linear: (N, in, out, bias)
lin_cases = [(4, 7, 5, 1), (1, 16, 3, 0), (9, 33, 17, 1), (32, 256, 1, 1), (5, 1, 6, 1)]
t = {}
for i, c in enumerate(lin_cases):
    N, fin, fout, bias = c
    x, w = rnd(N, fin), rnd(fout, fin) * 0.3
    b = rnd(fout) if bias else None
    X, Wt = d64(x), d64(w)
    B = d64(b) if bias else None
    y = F.linear(X, Wt, B)
    dy = rnd(*y.shape)
    y.backward(dy.double())
    t[f"{i}.shape"] = np.array(c, dtype=np.int32)
    t[f"{i}.x"], t[f"{i}.w"], t[f"{i}.y"], t[f"{i}.dy"] = x, w, f32(y), dy
    t[f"{i}.dx"], t[f"{i}.dw"] = f32(X.grad), f32(Wt.grad)
    if bias:
        t[f"{i}.b"], t[f"{i}.db"] = b, f32(B.grad)
stio.save(os.path.join(out, "linear.safetensors"), t, {"cases": str(len(lin_cases))})

# ---- batchnorm2d: (N, C, H, W, offset); nn.BatchNorm2d defaults (eps 1e-5, momentum 0.1)
bn_cases = [(2, 3, 5, 7, 0), (4, 8, 3, 3, 0), (1, 5, 6, 1, 0), (3, 16, 7, 7, 0), (2, 4, 6, 5, 100)]
t = {}
for i, c in enumerate(bn_cases):
    N, C, H, W, off = c
    x = rnd(N, C, H, W) * 2 + off
    w, b = rnd(C), rnd(C)
    rm, rv = rnd(C), torch.rand(C) + 0.5
    bn = torch.nn.BatchNorm2d(C).double()
    with torch.no_grad():
        bn.weight.copy_(w), bn.bias.copy_(b), bn.running_mean.copy_(rm), bn.running_var.copy_(rv)
    X = d64(x)
    y = bn.train()(X)
    dy = rnd(N, C, H, W)
    y.backward(dy.double())
    t[f"{i}.shape"] = np.array(c, dtype=np.int32)
    t[f"{i}.x"], t[f"{i}.weight"], t[f"{i}.bias"], t[f"{i}.rm"], t[f"{i}.rv"] = x, w, b, rm, rv
    t[f"{i}.y"], t[f"{i}.dy"], t[f"{i}.dx"] = f32(y), dy, f32(X.grad)
    t[f"{i}.dweight"], t[f"{i}.dbias"] = f32(bn.weight.grad), f32(bn.bias.grad)
    t[f"{i}.rm_new"], t[f"{i}.rv_new"] = f32(bn.running_mean), f32(bn.running_var)
    bn2 = torch.nn.BatchNorm2d(C).double()
    with torch.no_grad():
        bn2.weight.copy_(w), bn2.bias.copy_(b), bn2.running_mean.copy_(rm), bn2.running_var.copy_(rv)
    X2 = d64(x)
    y2 = bn2.eval()(X2)
    y2.backward(dy.double())
    t[f"{i}.y_eval"], t[f"{i}.dx_eval"] = f32(y2), f32(X2.grad)
    t[f"{i}.dweight_eval"], t[f"{i}.dbias_eval"] = f32(bn2.weight.grad), f32(bn2.bias.grad)
stio.save(os.path.join(out, "batchnorm.safetensors"), t, {"cases": str(len(bn_cases))})

# ---- max/avg pool: (N, C, H, W, kh, kw, sh, sw, ph, pw, ceil_mode, count_include_pad)
pool_cases = [
    (2, 3, 7, 9, 3, 3, 2, 2, 1, 1, 0, 1),
    (1, 2, 8, 8, 2, 2, 2, 2, 0, 0, 0, 1),
    (2, 3, 7, 7, 3, 3, 2, 2, 0, 0, 1, 1),
    (1, 4, 10, 13, 3, 2, 3, 2, 1, 1, 1, 1),
    (2, 2, 5, 6, 5, 3, 1, 2, 2, 1, 0, 1),
    (1, 3, 12, 12, 3, 3, 2, 2, 1, 1, 0, 1),    # resnet stem maxpool
    (2, 3, 9, 8, 3, 3, 2, 2, 1, 1, 1, 0),      # avg without padding in the count
    (1, 2, 6, 7, 4, 4, 3, 3, 2, 2, 1, 0),
]
t = {}
for i, c in enumerate(pool_cases):
    N, C, H, W, kh, kw, sh, sw, ph, pw, ceil, cip = c
    x = rnd(N, C, H, W)
    X = d64(x)
    y, idx = F.max_pool2d(X, (kh, kw), (sh, sw), (ph, pw), 1, bool(ceil), True)
    dy = rnd(*y.shape)
    y.backward(dy.double())
    t[f"{i}.shape"] = np.array(c, dtype=np.int32)
    t[f"{i}.x"], t[f"{i}.max_y"], t[f"{i}.max_dy"], t[f"{i}.max_dx"] = x, f32(y), dy, f32(X.grad)
    t[f"{i}.max_idx"] = idx.numpy().astype(np.int32)
    X = d64(x)
    y = F.avg_pool2d(X, (kh, kw), (sh, sw), (ph, pw), bool(ceil), bool(cip))
    dy = rnd(*y.shape)
    y.backward(dy.double())
    t[f"{i}.avg_y"], t[f"{i}.avg_dy"], t[f"{i}.avg_dx"] = f32(y), dy, f32(X.grad)
stio.save(os.path.join(out, "pool.safetensors"), t, {"cases": str(len(pool_cases))})

# ---- adaptive_avg_pool2d: (N, C, H, W, Ho, Wo)
ad_cases = [(2, 3, 7, 7, 1, 1), (2, 3, 10, 9, 3, 4), (1, 2, 5, 5, 7, 7), (2, 4, 6, 6, 2, 3),
            (1, 2, 13, 11, 5, 5), (3, 5, 1, 1, 1, 1)]
t = {}
for i, c in enumerate(ad_cases):
    N, C, H, W, Ho, Wo = c
    x = rnd(N, C, H, W)
    X = d64(x)
    y = F.adaptive_avg_pool2d(X, (Ho, Wo))
    dy = rnd(*y.shape)
    y.backward(dy.double())
    t[f"{i}.shape"] = np.array(c, dtype=np.int32)
    t[f"{i}.x"], t[f"{i}.y"], t[f"{i}.dy"], t[f"{i}.dx"] = x, f32(y), dy, f32(X.grad)
stio.save(os.path.join(out, "adaptive.safetensors"), t, {"cases": str(len(ad_cases))})
