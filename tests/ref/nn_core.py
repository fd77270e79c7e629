"""nn_core: PyTorch reference fixtures for the engine core (lib/nn): every
non-convolution op's forward and gradients, the optimizers, the cosine
schedule and a tiny graph trained for 5 steps.

Inputs are float32 values; forward and gradients are computed in float64 from
them (so the reference carries no float32 rounding of its own) and stored as
F32. Optimizer trajectories and the training run are computed in float32, as
fd runs them. Usage: /usr/bin/python3 nn_core.py OUTDIR
"""
import math
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
import stio  # noqa: E402

out = sys.argv[1]
# SequentialLR calls step(0) on the cosine scheduler itself; its warning is noise here
warnings.filterwarnings("ignore", category=UserWarning)
torch.manual_seed(1234)


def f32(t):
    return t.detach().to(torch.float32).numpy()


def rnd(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).to(torch.float32)


def save(name, d):
    stio.save(os.path.join(out, name + ".safetensors"), {k: f32(v) if torch.is_tensor(v) and v.is_floating_point() else v for k, v in d.items()})


def grads(fn, inputs, dy=None):
    """Run fn on float64 copies of inputs; return y, dy and each input's grad."""
    xs = [i.to(torch.float64).requires_grad_(True) for i in inputs]
    y = fn(*xs)
    if dy is None:
        dy = rnd(*y.shape)
    y.backward(dy.to(torch.float64))
    return y, dy, [x.grad for x in xs]


# --- activations ---
acts = {
    "relu": F.relu, "hardswish": F.hardswish, "hardsigmoid": F.hardsigmoid,
    "silu": F.silu, "sigmoid": torch.sigmoid, "gelu": lambda x: F.gelu(x),
}
for name, fn in acts.items():
    x = rnd(3, 5, 7, 9, scale=3.0)
    y, dy, (dx,) = grads(fn, [x])
    save("act_" + name, {"x": x, "y": y, "dy": dy, "dx": dx})

x, w = rnd(2, 5, 7, 3), rnd(5, scale=0.5)
y, dy, (dx, dw) = grads(F.prelu, [x, w])
save("prelu", {"x": x, "w": w, "y": y, "dy": dy, "dx": dx, "dw": dw})

# --- broadcasting add / mul ---
bin_cases = {
    "add_same": ("add", (2, 3, 5, 7), (2, 3, 5, 7)),
    "mul_se": ("mul", (4, 6, 5, 7), (4, 6, 1, 1)),
    "mul_ls": ("mul", (2, 6, 5, 3), (6, 1, 1)),
    "add_bias": ("add", (3, 7), (7,)),
    "mul_rev": ("mul", (4, 6, 1, 1), (4, 6, 5, 7)),
    "add_mixed": ("add", (3, 1, 5), (4, 1)),
    "mul_5d": ("mul", (2, 3, 1, 4, 5), (3, 2, 1, 1)),
}
for name, (op, sa, sb) in bin_cases.items():
    a, b = rnd(*sa), rnd(*sb)
    fn = (lambda p, q: p + q) if op == "add" else (lambda p, q: p * q)
    y, dy, (da, db) = grads(fn, [a, b])
    save("bin_" + name, {"a": a, "b": b, "y": y, "dy": dy, "da": da, "db": db})

# --- softmax ---
for name, shape, dim in [("softmax_2d", (5, 7), 1), ("softmax_4d", (2, 4, 3, 5), 1), ("softmax_last", (3, 2, 6), 2)]:
    x = rnd(*shape, scale=2.0)
    y, dy, (dx,) = grads(lambda t: torch.softmax(t, dim), [x])
    save(name, {"x": x, "y": y, "dy": dy, "dx": dx, "dim": np.array([dim], dtype=np.int32)})

# --- LayerNorm2d as torchvision's ConvNeXt defines it ---
LN2d = torchvision.models.convnext.LayerNorm2d
for name, shape in [("ln2d", (2, 6, 5, 7)), ("ln2d_head", (3, 8, 1, 1)), ("ln2d_wide", (2, 3, 9, 13))]:
    C = shape[1]
    x, w, b = rnd(*shape, scale=2.0) + 0.5, 1.0 + rnd(C, scale=0.3), rnd(C, scale=0.3)

    xs = [t.to(torch.float64).requires_grad_(True) for t in (x, w, b)]
    m = LN2d(C, eps=1e-6).to(torch.float64)
    with torch.no_grad():
        m.weight.copy_(xs[1])
        m.bias.copy_(xs[2])
    y = m(xs[0])
    dy = rnd(*shape)
    y.backward(dy.to(torch.float64))
    save(name, {"x": x, "w": w, "b": b, "y": y, "dy": dy, "dx": xs[0].grad, "dw": m.weight.grad, "db": m.bias.grad})

# --- losses ---
x = rnd(9, 1, scale=3.0)
t = torch.cat([torch.rand(5), torch.tensor([0.0, 1.0, 1.0, 0.0])]).reshape(9, 1)
xd = x.to(torch.float64).requires_grad_(True)
loss = F.binary_cross_entropy_with_logits(xd, t.to(torch.float64))
loss.backward()
save("bce", {"x": x, "t": t, "loss": loss.reshape(1), "dx": xd.grad})

x = rnd(7, 5, scale=3.0)
lab = torch.tensor([0, 4, 2, 2, 1, 3, 0])
xd = x.to(torch.float64).requires_grad_(True)
loss = F.cross_entropy(xd, lab)
loss.backward()
save("ce", {"x": x, "label": lab.numpy().astype(np.int32), "loss": loss.reshape(1), "dx": xd.grad})

# --- optimizers: fixed gradient sequence, 10 steps, float32 like fd ---
P, STEPS = 37, 10
p0 = rnd(P)
gs = torch.stack([rnd(P) for _ in range(STEPS)])


def trajectory(make):
    p = torch.nn.Parameter(p0.clone())
    opt = make([p])
    out_ = []
    for s in range(STEPS):
        p.grad = gs[s].clone()
        opt.step()
        out_.append(p.detach().clone())
    return torch.stack(out_)


opt_cases = {
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
    "adamw_nowd": lambda ps: torch.optim.AdamW(ps, lr=3e-3, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.0),
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "sgd_mom": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "sgd_nesterov": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2),
}
for name, make in opt_cases.items():
    save("opt_" + name, {"p0": p0, "g": gs, "p": trajectory(make)})

# --- cosine schedule, torch's recursive form, with and without warm-up ---
def lrs(make, n):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sch = make(opt)
    v = []
    for _ in range(n):
        v.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    return torch.tensor(v, dtype=torch.float64)


cos = lrs(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7, eta_min=1e-3), 20)
W = 3
warm = lrs(lambda o: torch.optim.lr_scheduler.SequentialLR(o, [
    torch.optim.lr_scheduler.LinearLR(o, start_factor=1.0 / W, end_factor=1.0, total_iters=W - 1),
    torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.0)], milestones=[W]), 16)
stio.save(os.path.join(out, "sched.safetensors"), {"cos": cos.numpy(), "warm": warm.numpy()})

# --- a tiny graph trained 5 steps with AdamW and two parameter groups ---
N, C, H, Wd = 8, 4, 3, 3
X = rnd(N, C, H, Wd)
labels = torch.randint(0, C * H * Wd, (N,))
init = {"scale": 1.0 + rnd(C, 1, 1, scale=0.2), "shift": rnd(C, 1, 1, scale=0.2),
        "ln.weight": 1.0 + rnd(C, scale=0.1), "ln.bias": rnd(C, scale=0.1),
        "act.weight": torch.full((C,), 0.25)}
# Run in float64: torch 1.13's float32 CPU LayerNorm backward on LayerNorm2d's
# permuted (non-contiguous) input returns wrong gradients here (zeros or 1e16
# for some channels; float64 and fd's finite differences agree with each other).
X64 = X.to(torch.float64)
params = {k: torch.nn.Parameter(v.clone().to(torch.float64)) for k, v in init.items()}
ln = LN2d(C, eps=1e-6).to(torch.float64)
ln.weight, ln.bias = params["ln.weight"], params["ln.bias"]
decay = [params["scale"]]
no_decay = [params[k] for k in ("shift", "ln.weight", "ln.bias", "act.weight")]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                         {"params": no_decay, "weight_decay": 0.0}], lr=0.05)
losses = []
for step in range(5):
    opt.zero_grad()
    h = X64 * params["scale"] + params["shift"]
    h = F.gelu(h)
    h = ln(h)
    h = h + F.prelu(h, params["act.weight"])   # residual: h feeds two branches
    h = h * torch.sigmoid(h)                     # gating: h feeds both factors
    loss = F.cross_entropy(torch.flatten(h, 1), labels)
    loss.backward()
    opt.step()
    losses.append(loss.item())
d = {"x": X, "label": labels.numpy().astype(np.int32), "loss": torch.tensor(losses)}
d.update({"init." + k: v for k, v in init.items()})
d.update({"final." + k: v for k, v in params.items()})
save("train", d)

# --- a torchvision-style state dict (conv + batchnorm with its int64 counter) ---
net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
net.train()
net(torch.randn(2, 3, 5, 5))
sd = {k: (v.numpy() if v.dtype == torch.int64 else f32(v)) for k, v in net.state_dict().items()}
stio.save(os.path.join(out, "state_dict.safetensors"), sd, {"fd.arch": "tiny"})

# --- moments of a truncated normal, for the statistical initialiser test ---
from scipy.stats import truncnorm  # noqa: E402
d = truncnorm(-1.0, 1.5)
stio.save(os.path.join(out, "init.safetensors"),
          {"truncnorm_mean": np.array([d.mean()]), "truncnorm_std": np.array([d.std()])})
