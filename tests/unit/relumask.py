"""relumask.py: the reference of t_models' ResNet train-mode checks that
takes fd's ReLU decisions (doc/nn-kernels.md "Layouts", doc/models.md
"Conformance"). Run by the test with Debian's /usr/bin/python3 (torch 1.13,
torchvision) as a server: it reads requests on stdin, one a line,

    FIXDIR NAME SIZE MASKS OUT MODE

and answers one line on stdout, "ok" or "error: MESSAGE", after writing OUT.
FIXDIR/NAME_SIZE_w.safetensors is the case's torch state dict and
FIXDIR/NAME_SIZE.safetensors its x and t (tests/ref/models.py); MASKS (from
the C test) holds mask.K, uint8 [N, C, H, W] in NCHW order: 1 where fd's
train-mode forward passed ReLU call K's input (its output > 0), 0 where it
zeroed it, K counting torchvision's ReLU calls in order (the stem's, then
each block's: after bn1, (bn2,) and after the residual add).

torchvision's model in train mode (dropout has none) is run with every ReLU
replaced by z * mask.K (its gradient: mask.K), in float64, and in float32
forward only on torch's oneDNN paths in both layouts (NCHW and channels_last:
fd's convolutions are oneDNN's; torch's native float32 convolutions, which
the fixtures' err32 also takes, cost 10x more here),
the ReLU inputs z recorded. For each call K, bound.K = 4 x the largest
|z32 - z64| of the two paths (the multiple of torch's own float32 error
that t_models' tolerances use), and OUT gets, as float32 unless said:
  sites          (I64) the number of ReLU calls
  elements       (I64) their elements in all
  disagree.K     (I64) elements where mask.K is not float64's own decision
                 (z64 > 0)
  worst.K        the largest |z64| / bound.K over those (0 if none): a
                 disagreement is within float32 rounding of zero when <= 1
  bound.K
and with MODE "full" also the float64 masked run's logits_train, loss,
grad.NAME and after.NAME (keys as tests/ref/models_common.py's). MODE
"check" skips the backward (the negative control's request). MODE "efull"
is "full" with batchnorm in eval mode (the running statistics used, none
updated), every run of the request so: its keys are eloss and egrad.NAME,
those of the fixture's eval-mode check (a ReLU input within rounding of
zero flips there too: ResNet-18@224's did on an AVX2 CPU, whose oneDNN
kernels round differently from AVX-512's).
Usage: /usr/bin/python3 relumask.py   (requests on stdin)
"""
import copy
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
import stio  # noqa: E402

torch.set_num_threads(2)
K32 = 4.0
_DT = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "U8": np.uint8}


def load(path):
    """name -> numpy array of a safetensors file (the dtypes above)."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(raw[8 + n + a:8 + n + b], _DT[v["dtype"]]).reshape(v["shape"]).copy()
    return out


class Calls:
    """The ReLU calls of one run: their masks (in call order) and inputs."""

    def __init__(self, masks):
        self.masks, self.z = masks, []


class MaskedReLU(nn.Module):
    def __init__(self, calls):
        super().__init__()
        self.calls = calls

    def forward(self, z):
        c = self.calls
        k = len(c.z)
        if k >= len(c.masks):
            raise ValueError("the model calls ReLU more than the %d masks given" % len(c.masks))
        m = c.masks[k]
        if tuple(m.shape) != tuple(z.shape):
            raise ValueError("mask.%d is %s, ReLU call %d's input %s" % (k, list(m.shape), k, list(z.shape)))
        c.z.append(z.detach().double().contiguous())
        return z * m.to(z.dtype)


def masked(model, masks, dtype, channels_last=False, train=True):
    """A copy of model at dtype in train (else eval) mode with its ReLUs masked."""
    md = copy.deepcopy(model).to(dtype)
    calls = Calls(masks)
    for mod in list(md.modules()):
        for name, ch in list(mod.named_children()):
            if isinstance(ch, nn.ReLU):
                setattr(mod, name, MaskedReLU(calls))
    if channels_last:
        md = md.to(memory_format=torch.channels_last)
    md.train(train)
    return md, calls


def run(model, masks, x, t, dtype, channels_last=False, backward=False, train=True):
    md, calls = masked(model, masks, dtype, channels_last, train)
    xin = x.to(dtype)
    if channels_last:
        xin = xin.contiguous(memory_format=torch.channels_last)
    y = md(xin)
    loss = F.binary_cross_entropy_with_logits(y, t.to(dtype))
    if backward:
        loss.backward()
    if len(calls.z) != len(masks):
        raise ValueError("%d masks given, the model calls ReLU %d times" % (len(masks), len(calls.z)))
    return md, calls.z, y, loss


def serve(fixdir, name, size, mpath, out, mode):
    case = "%s_%s" % (name, size)
    sd = {k: torch.from_numpy(v) for k, v in load(os.path.join(fixdir, case + "_w.safetensors")).items()}
    ref = load(os.path.join(fixdir, case + ".safetensors"))
    model = getattr(torchvision.models, name)(num_classes=1)
    model.load_state_dict(sd, strict=True)
    mk = load(mpath)
    n = len([k for k in mk if k.startswith("mask.")])
    masks = []
    for k in range(n):
        m = mk.get("mask.%d" % k)
        if m is None or not np.isin(m, (0, 1)).all():
            raise ValueError("%s: mask.%d missing or not 0/1" % (mpath, k))
        masks.append(torch.from_numpy(m.astype(np.float64)))
    if mode not in ("full", "check", "efull"):
        raise ValueError("mode %s: want full, check or efull" % mode)
    train = mode != "efull"
    x, t = torch.from_numpy(ref["x"]), torch.from_numpy(ref["t"])
    md, z64, y, loss = run(model, masks, x, t, torch.float64, backward=mode != "check", train=train)
    err = [torch.zeros(1, dtype=torch.float64) for _ in range(n)]
    for cl in (False, True):
        _, z32, _, _ = run(model, masks, x, t, torch.float32, channels_last=cl, train=train)
        err = [torch.maximum(e, (a - b).abs().max().reshape(1)) for e, a, b in zip(err, z32, z64)]
    res = {"sites": np.array([n], np.int64), "elements": np.array([sum(m.numel() for m in masks)], np.int64)}
    for k in range(n):
        bound = K32 * err[k]
        dis = (masks[k] > 0) != (z64[k] > 0)
        res["disagree.%d" % k] = np.array([int(dis.sum())], np.int64)
        worst = (z64[k][dis].abs().max() / bound).reshape(1) if dis.any() else torch.zeros(1, dtype=torch.float64)
        res["worst.%d" % k] = worst.float()
        res["bound.%d" % k] = bound.float()
    if mode == "full":
        res["logits_train"] = y.detach().float()
        res["loss"] = loss.detach().reshape(1).float()
        for k, p in md.named_parameters():
            res["grad." + k] = p.grad.float()
        for k, v in md.state_dict().items():
            if "running" in k:
                res["after." + k] = v.float()
    elif mode == "efull":
        res["eloss"] = loss.detach().reshape(1).float()
        for k, p in md.named_parameters():
            res["egrad." + k] = p.grad.float()
    stio.save(out, res)


def main():
    for line in sys.stdin:
        f = line.split()
        try:
            if len(f) != 6:
                raise ValueError("want FIXDIR NAME SIZE MASKS OUT MODE, got %r" % line.strip())
            serve(*f)
            print("ok", flush=True)
        except Exception as ex:  # the test reports it
            print(("error: %s: %s" % (type(ex).__name__, ex)).replace("\n", " "), flush=True)


if __name__ == "__main__":
    main()
