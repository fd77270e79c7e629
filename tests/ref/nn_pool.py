"""nn_pool: PyTorch reference fixtures for max pooling's fast paths and its
channels-last kernel (lib/nn/pool2d.h, tests/unit/t_nn_pool_fast.c): inputs
drawn from a few integers (so windows hold equal maxima: the tie rule) with
NaNs sprinkled in (some windows hold several: which index PyTorch records),
odd sizes, padding, ceil mode. torch.nn.functional.max_pool2d on the float32
NCHW input gives y and the indices; the same op on the channels_last copy must
agree (checked here); dx is the float64 backward of a random dy (indices, not
values, decide it, so NaNs in x do not reach dx). Case i: "<i>.shape" (int32
N, C, H, W, kh, kw, sh, sw, ph, pw, ceil_mode), "<i>.x", "<i>.y", "<i>.idx",
"<i>.dy", "<i>.dx", all NCHW.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import stio  # noqa: E402

out = sys.argv[1]
g = np.random.default_rng(20261204)

# (N, C, H, W, kh, kw, sh, sw, ph, pw, ceil_mode)
cases = [
    (2, 5, 13, 11, 3, 3, 2, 2, 1, 1, 0),    # ResNet's stem pool, odd sizes
    (1, 3, 14, 16, 3, 3, 2, 2, 1, 1, 0),    # stem pool, even sizes
    (2, 17, 9, 7, 3, 3, 2, 2, 1, 1, 1),     # ceil mode, channels not a vector multiple
    (1, 4, 3, 2, 3, 3, 2, 2, 1, 1, 0),      # no interior window
    (2, 19, 10, 9, 2, 2, 2, 2, 0, 0, 0),    # simplecnn's pool, odd W
    (1, 6, 11, 12, 3, 2, 2, 3, 1, 1, 1),    # generic
    (2, 33, 8, 8, 5, 5, 3, 3, 2, 2, 0),     # generic, overlapping padding
    (2, 20, 7, 9, 2, 2, 2, 2, 0, 0, 1),     # disjoint windows, ceil mode: partial last windows
    (1, 8, 10, 11, 3, 3, 3, 3, 0, 0, 0),    # disjoint 3x3/3: a row and two columns in no window
]
t = {}
for i, c in enumerate(cases):
    N, C, H, W, kh, kw, sh, sw, ph, pw, ceil = c
    x = g.integers(-3, 3, size=(N, C, H, W)).astype(np.float32)
    x[g.random(x.shape) < 0.03] = np.nan
    X = torch.from_numpy(x)
    y, idx = F.max_pool2d(X, (kh, kw), (sh, sw), (ph, pw), 1, bool(ceil), True)
    yc, idxc = F.max_pool2d(X.contiguous(memory_format=torch.channels_last), (kh, kw), (sh, sw), (ph, pw), 1,
                            bool(ceil), True)
    assert torch.equal(idx, idxc) and torch.equal(y.isnan(), yc.isnan())
    assert torch.equal(torch.nan_to_num(y), torch.nan_to_num(yc))
    # several NaNs in one window happen (the last one's index is recorded)
    dy = torch.from_numpy(g.standard_normal(y.shape).astype(np.float32))
    X64 = X.double().requires_grad_(True)
    y64 = F.max_pool2d(X64, (kh, kw), (sh, sw), (ph, pw), 1, bool(ceil))
    y64.backward(dy.double())
    t[f"{i}.shape"] = np.array(c, dtype=np.int32)
    t[f"{i}.x"], t[f"{i}.y"], t[f"{i}.dy"], t[f"{i}.dx"] = X, y, dy, X64.grad.float()
    t[f"{i}.idx"] = idx.numpy().astype(np.int32)
stio.save(os.path.join(out, "maxpool.safetensors"), t, {"cases": str(len(cases))})
