"""nn_bf16: PyTorch references for conv2d and linear at precision bf16
(doc/nn-kernels.md "bf16"). Inputs are float32. Per case two expectations:
  exact: torch in float64 on the inputs rounded to bfloat16 (x, w, dy; the
         bias stays float32; linear's bias gradient sums the float32 dy) --
         what fd's bf16 kernels compute up to float32 accumulation order;
  ac:    PyTorch 1.13 CPU autocast (torch.autocast("cpu", torch.bfloat16)),
         whose outputs and gradients are themselves rounded to bfloat16.
For conv2d also dw32, db32: torch in float64 on the float32 x and dy, what fd's
backward-weights gives where it runs in fp32 (small maps; doc/nn-kernels.md).
fused: eval-mode conv + BatchNorm2d (+ activation) with the batchnorm folded
into the convolution in double and the folded weight rounded once to
bfloat16 (fd's bf16 inference fusion, doc/nn-kernels.md "Inference
fusion"): y = act(conv(bf16(x), bf16(w s)) + (b - mean) s + beta), s = gamma /
sqrt(var + eps), in float64; and y_unfused: the same units unfused as fd's
taped bf16 ops run them, act(bn(conv(bf16(x), bf16(w) [+ b]))) in float64.
Each case i is "<i>.shape" (int32 params) and "<i>.<what>" tensors.
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


def r64(t):
    """t rounded to bfloat16 (nearest even), as float64 leaf needing grad"""
    return t.bfloat16().double().requires_grad_(True)


def f32(t):
    return t.detach().float()


def autocast_grads(fn, x, w, b, dy):
    X, W = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    B = b.clone().requires_grad_(True) if b is not None else None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = fn(X, W, B)
    assert y.dtype == torch.bfloat16
    y.backward(dy.bfloat16())
    return f32(y), f32(X.grad), f32(W.grad), (f32(B.grad) if B is not None else None)


# ---- conv2d: (N, C, H, W, K, kh, kw, sh, sw, ph, pw, dh, dw, groups, bias)
conv_cases = [
    (2, 3, 9, 11, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),
    (3, 5, 8, 13, 7, 5, 3, 2, 1, 2, 1, 1, 1, 1, 1),
    (2, 6, 10, 9, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2, 1),       # dilation 2, groups 2
    (2, 32, 9, 9, 32, 3, 3, 2, 2, 1, 1, 1, 1, 32, 0),     # depthwise, blocked
    (2, 16, 11, 11, 16, 5, 5, 1, 1, 2, 2, 1, 1, 16, 1),   # depthwise 5x5
    (2, 3, 32, 32, 16, 7, 7, 2, 2, 3, 3, 1, 1, 1, 0),     # resnet stem
    (4, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0),    # resnet 3x3 (AMX brgconv)
    (4, 64, 8, 8, 128, 1, 1, 2, 2, 0, 0, 1, 1, 1, 0),     # 1x1 stride 2 downsample
    (2, 96, 7, 7, 32, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1),      # 1x1 with bias
    (2, 16, 1, 1, 8, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1),       # SE block on a 1x1 map
    (2, 16, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),    # 28x28 map: bf16 backward-weights on AMX
    (2, 32, 30, 30, 16, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0),    # 1x1 on a 30x30 map
    (2, 16, 9, 9, 24, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0),      # 3x3 stride 2, small map
    (2, 12, 8, 8, 20, 2, 2, 2, 2, 0, 0, 1, 1, 1, 1),      # 2x2 stride 2 with bias (ConvNeXt downsampling)
    (2, 64, 7, 7, 64, 1, 1, 2, 2, 0, 0, 1, 1, 1, 0),      # 1x1 stride 2 on an odd map, square (transpose control)
    (2, 8, 16, 16, 12, 4, 4, 4, 4, 0, 0, 1, 1, 1, 1),     # 4x4 stride 4 with bias (a patchify stem)
    (2, 8, 16, 20, 12, 5, 3, 1, 1, 2, 0, 1, 1, 1, 0),     # 5x3 stride 1, uneven padding (backward-data as a forward)
]
t = {}
g_first = g
for i, c in enumerate(conv_cases):
    N, C, H, W, K, kh, kw, sh, sw, ph, pw, dh, dw, G, bias = c
    if i == 12:
        # cases 12 on (conv_mm's paths) draw from their own generator: the
        # earlier cases, linear and fused keep their inputs
        g = np.random.default_rng(20261205)
    x, w = rnd(N, C, H, W), rnd(K, C // G, kh, kw) * 0.3
    b = rnd(K) if bias else None

    def fn(X, Wt, B):
        return F.conv2d(X, Wt, B, (sh, sw), (ph, pw), (dh, dw), G)

    X, Wt = r64(x), r64(w)
    B = b.double().requires_grad_(True) if bias else None
    y = fn(X, Wt, B)
    dy = rnd(*y.shape)
    y.backward(dy.bfloat16().double())
    t[f"{i}.shape"] = np.array(c, dtype=np.int32)
    t[f"{i}.x"], t[f"{i}.w"], t[f"{i}.y"], t[f"{i}.dy"] = x, w, f32(y), dy
    t[f"{i}.dx"], t[f"{i}.dw"] = f32(X.grad), f32(Wt.grad)
    ay, adx, adw, adb = autocast_grads(fn, x, w, b, dy)
    t[f"{i}.ac_y"], t[f"{i}.ac_dx"], t[f"{i}.ac_dw"] = ay, adx, adw
    X32, W32 = x.double().requires_grad_(True), w.double().requires_grad_(True)
    B32 = b.double().requires_grad_(True) if bias else None
    y32 = fn(X32, W32, B32)
    y32.backward(dy.double())
    t[f"{i}.dw32"] = f32(W32.grad)
    # torch in float64 on the float32 inputs: what fd's depthwise plans give
    # in a bf16 context (they run fp32, doc/nn-kernels.md "bf16")
    t[f"{i}.y32"], t[f"{i}.dx32"] = f32(y32), f32(X32.grad)
    if bias:
        t[f"{i}.b"], t[f"{i}.db"], t[f"{i}.ac_db"] = b, f32(B.grad), adb
        t[f"{i}.db32"] = f32(B32.grad)
stio.save(os.path.join(out, "conv.safetensors"), t, {"cases": str(len(conv_cases))})
g = g_first

# ---- linear: (N, in, out, bias)
lin_cases = [(4, 7, 5, 1), (9, 33, 17, 1), (32, 256, 10, 1), (16, 512, 1, 0), (32, 576, 256, 1)]
t = {}
for i, c in enumerate(lin_cases):
    N, fin, fout, bias = c
    x, w = rnd(N, fin), rnd(fout, fin) * 0.3
    b = rnd(fout) if bias else None
    X, Wt = r64(x), r64(w)
    B = b.double().requires_grad_(True) if bias else None
    y = F.linear(X, Wt, B)
    dy = rnd(*y.shape)
    y.backward(dy.bfloat16().double())
    t[f"{i}.shape"] = np.array(c, dtype=np.int32)
    t[f"{i}.x"], t[f"{i}.w"], t[f"{i}.y"], t[f"{i}.dy"] = x, w, f32(y), dy
    t[f"{i}.dx"], t[f"{i}.dw"] = f32(X.grad), f32(Wt.grad)
    ay, adx, adw, adb = autocast_grads(F.linear, x, w, b, dy)
    t[f"{i}.ac_y"], t[f"{i}.ac_dx"], t[f"{i}.ac_dw"] = ay, adx, adw
    if bias:
        # fd's linear sums the float32 dy for the bias (conv's oneDNN sums the bf16 one)
        t[f"{i}.b"], t[f"{i}.db"], t[f"{i}.ac_db"] = b, f32(dy.double().sum(0)), adb
stio.save(os.path.join(out, "linear.safetensors"), t, {"cases": str(len(lin_cases))})

# ---- fused conv + BN (+ act), eval: (N, C, H, W, K, k, stride, pad, groups, bias, act)
# act: -1 none, 0 relu, 1 hardswish, 3 silu (enum fd_act)


def bf16_of_double(v):
    """v (float64 array) rounded once to bfloat16, nearest even: 8 significant
    bits (frexp's mantissa in [0.5, 1) times 2^8, rounded half to even)"""
    m, e = np.frexp(v)
    e = np.maximum(e, -125)  # bfloat16 subnormals: spacing 2^-133
    return np.ldexp(np.round(np.ldexp(v, 8 - e)), e - 8)


fused_cases = [
    (2, 16, 10, 10, 24, 3, 1, 1, 1, 0, 0),      # ResNet-style 3x3, ReLU
    (2, 24, 9, 9, 24, 3, 2, 1, 24, 0, 3),       # depthwise stride 2, SiLU (EfficientNet)
    (2, 32, 7, 7, 48, 1, 1, 0, 1, 0, 1),        # 1x1, hardswish (MobileNetV3)
    (2, 8, 6, 6, 16, 3, 1, 1, 1, 1, -1),        # conv bias, no activation
    (2, 16, 28, 28, 32, 3, 1, 1, 1, 0, 0),      # 28x28 map (AMX brgconv)
]
acts = {-1: lambda y: y, 0: F.relu, 1: F.hardswish, 3: F.silu}
t = {}
for i, c in enumerate(fused_cases):
    N, C, H, W, K, k, st, pd, G, bias, act = c
    x, w = rnd(N, C, H, W), rnd(K, C // G, k, k) * 0.3
    b = rnd(K) if bias else None
    gamma, beta, mean = 1 + 0.2 * rnd(K), 0.1 * rnd(K), 0.3 * rnd(K)
    var = torch.from_numpy(g.uniform(0.5, 2.0, K).astype(np.float32))
    eps = 1e-5
    sc = gamma.double() / torch.sqrt(var.double() + eps)
    wf = torch.from_numpy(bf16_of_double((w.double() * sc.view(-1, 1, 1, 1)).numpy()))
    bf = ((b.double() if bias else 0) - mean.double()) * sc + beta.double()
    xb = x.bfloat16().double()
    y = acts[act](F.conv2d(xb, wf, bf, st, pd, 1, G))
    yc = F.conv2d(xb, w.bfloat16().double(), b.double() if bias else None, st, pd, 1, G)
    yu = acts[act](F.batch_norm(yc, mean.double(), var.double(), gamma.double(), beta.double(), False, 0.1, eps))
    # float64 on the float32 operands (no rounding): a depthwise unit's
    # reference, which runs fp32 in a bf16 context
    y32 = acts[act](F.batch_norm(F.conv2d(x.double(), w.double(), b.double() if bias else None, st, pd, 1, G),
                                 mean.double(), var.double(), gamma.double(), beta.double(), False, 0.1, eps))
    t[f"{i}.shape"] = np.array(c, dtype=np.int32)
    t[f"{i}.x"], t[f"{i}.w"], t[f"{i}.gamma"], t[f"{i}.beta"] = x, w, gamma, beta
    t[f"{i}.mean"], t[f"{i}.var"], t[f"{i}.y"], t[f"{i}.y_unfused"] = mean, var, f32(y), f32(yu)
    t[f"{i}.y32"] = f32(y32)
    if bias:
        t[f"{i}.b"] = b
stio.save(os.path.join(out, "fused.safetensors"), t, {"cases": str(len(fused_cases))})
