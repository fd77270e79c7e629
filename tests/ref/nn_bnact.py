"""nn_bnact: PyTorch reference fixtures for batchnorm2d fused with an
activation in train mode (lib/nn/batchnorm2d.h fd_batchnorm2d_act):
nn.BatchNorm2d(C) (eps 1e-5, momentum 0.1) in train() followed by ReLU, SiLU,
Hardswish or nothing. Inputs are float32; the expected outputs are computed by
torch in float64 from those same values and stored as float32. Case i holds
"<i>.shape" = (N, C, H, W, act) as int32, act numbered as lib's enum fd_act
(0 relu, 1 hardswish, 3 silu; -1 none), and the tensors x, weight, bias, rm,
rv, dy (inputs) and y, dx, dweight, dbias, rm_new, rv_new (results).
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import stio  # noqa: E402

out = sys.argv[1]
g = np.random.default_rng(20261205)


def rnd(*shape):
    return torch.from_numpy(g.standard_normal(shape).astype(np.float32))


def f32(t):
    return t.detach().float()


ACTS = {0: F.relu, 1: F.hardswish, 3: F.silu, -1: lambda z: z}
# odd channel counts as in EfficientNet / MobileNetV3; (8, 24, 14, 14) has
# 1568 positions, several row chunks channels last; offsets keep the
# statistics honest
cases = [(4, 24, 7, 7, 0), (3, 40, 5, 6, 3), (2, 88, 4, 4, 1), (5, 24, 3, 3, -1),
         (8, 24, 14, 14, 0), (4, 40, 7, 7, 1), (6, 88, 3, 3, 3), (16, 40, 1, 1, 3)]
t = {}
for i, c in enumerate(cases):
    N, C, H, W, act = c
    x = rnd(N, C, H, W) * 2 + 0.5
    # gamma of both signs and up to ~4: z spreads over hardswish's [-3, 3]
    w, b = rnd(C) * 2, rnd(C)
    rm, rv = rnd(C), torch.rand(C) + 0.5
    bn = torch.nn.BatchNorm2d(C).double()
    with torch.no_grad():
        bn.weight.copy_(w), bn.bias.copy_(b), bn.running_mean.copy_(rm), bn.running_var.copy_(rv)
    X = x.double().requires_grad_(True)
    y = ACTS[act](bn.train()(X))
    dy = rnd(N, C, H, W)
    y.backward(dy.double())
    t[f"{i}.shape"] = np.array(c, dtype=np.int32)
    t[f"{i}.x"], t[f"{i}.weight"], t[f"{i}.bias"], t[f"{i}.rm"], t[f"{i}.rv"] = x, w, b, rm, rv
    t[f"{i}.y"], t[f"{i}.dy"], t[f"{i}.dx"] = f32(y), dy, f32(X.grad)
    t[f"{i}.dweight"], t[f"{i}.dbias"] = f32(bn.weight.grad), f32(bn.bias.grad)
    t[f"{i}.rm_new"], t[f"{i}.rv_new"] = f32(bn.running_mean), f32(bn.running_var)
stio.save(os.path.join(out, "bnact.safetensors"), t, {"cases": str(len(cases))})
