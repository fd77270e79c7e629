"""nn_bnpool: PyTorch reference fixtures for batchnorm2d fused with an
activation and a max pool in train mode (lib/nn/batchnorm2d.h
fd_batchnorm2d_act_maxpool): nn.BatchNorm2d(C) (eps 1e-5, momentum 0.1) in
train(), then ReLU, SiLU, Hardswish or nothing, then F.max_pool2d(k, stride,
pad). Inputs are float32; the expected outputs are computed by torch in
float64 from those same values and stored as float32. Case i holds
"<i>.shape" = (N, C, H, W, act, k, stride, pad) as int32, act numbered as
lib's enum fd_act (0 relu, 1 hardswish, 3 silu; -1 none), and the tensors x,
weight, bias, rm, rv, dy (inputs; dy has the pooled shape) and y (pooled),
dx, dweight, dbias, rm_new, rv_new (results). Case 0 plants exact ties
(equal x in one window and channel): the first maximum scanned takes the
gradient, in torch as in fd.
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


def f32(t):
    return t.detach().float()


ACTS = {0: F.relu, 1: F.hardswish, 3: F.silu, -1: lambda z: z}
# SimpleCNN's 2x2/2 and ResNet's stem 3x3/2 pad 1, on odd sizes (windows
# clipped by the padding, rows and columns no window reads); overlapping
# 3x3/1 and 2x2/1; (4, 32, 16, 16) spans several row chunks
cases = [(3, 8, 6, 6, 0, 2, 2, 0), (2, 24, 7, 9, 0, 3, 2, 1), (3, 16, 9, 7, 3, 2, 2, 0),
         (2, 40, 5, 6, 1, 3, 2, 1), (2, 8, 5, 5, -1, 3, 1, 1), (3, 12, 6, 5, 0, 2, 1, 0),
         (4, 32, 16, 16, 0, 2, 2, 0), (2, 16, 11, 11, 3, 3, 3, 0)]
t = {}
for i, c in enumerate(cases):
    N, C, H, W, act, k, s, p = c
    x = rnd(N, C, H, W) * 2 + 0.5
    if i == 0:  # exact ties: the top row of every 2x2 window repeated below
        x[:, :, 1::2, :] = x[:, :, 0::2, :]
    w, b = rnd(C) * 2, rnd(C)
    rm, rv = rnd(C), torch.rand(C) + 0.5
    bn = torch.nn.BatchNorm2d(C).double()
    with torch.no_grad():
        bn.weight.copy_(w), bn.bias.copy_(b), bn.running_mean.copy_(rm), bn.running_var.copy_(rv)
    X = x.double().requires_grad_(True)
    y = F.max_pool2d(ACTS[act](bn.train()(X)), k, s, p)
    dy = rnd(*y.shape)
    y.backward(dy.double())
    t[f"{i}.shape"] = np.array(c, dtype=np.int32)
    t[f"{i}.x"], t[f"{i}.weight"], t[f"{i}.bias"], t[f"{i}.rm"], t[f"{i}.rv"] = x, w, b, rm, rv
    t[f"{i}.y"], t[f"{i}.dy"], t[f"{i}.dx"] = f32(y), dy, f32(X.grad)
    t[f"{i}.dweight"], t[f"{i}.dbias"] = f32(bn.weight.grad), f32(bn.bias.grad)
    t[f"{i}.rm_new"], t[f"{i}.rv_new"] = f32(bn.running_mean), f32(bn.running_var)
stio.save(os.path.join(out, "bnpool.safetensors"), t, {"cases": str(len(cases))})
