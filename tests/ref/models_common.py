"""models_common: what the model fixture scripts (models.py, models_effmob.py,
models_convnext.py) share: one forward and backward of a model at a dtype,
AdamW losses, and torch's own float32 error against the float64 reference.
Not a fixture script itself (ref.mk skips it; their stamps depend on it).

Keys of the result dicts, as the C tests read them (tests/unit/fixture.h):
  logits_eval   eval-mode logits (batchnorm on its running statistics)
  logits_train  train-mode logits, `off` having switched dropout and
                stochastic depth off (their masks come from torch's generator)
  loss          the BCE loss of the train-mode logits
  grad.NAME     every named parameter's gradient of that loss
  after.NAME    every running statistic after that forward
  eloss, egrad.NAME   with bn_eval: loss and gradients in eval mode (batchnorm
                on its running statistics, dropout off), the well-conditioned
                gradient check of deep nets whose train-mode batchnorm sees a
                few values per channel
"""
import copy

import torch
import torch.nn.functional as F


def fwd_bwd(m, x, t, dtype, off, train=True, bn_eval=False):
    """The keys above for a copy of m at dtype; train=False: eval logits only."""
    md = copy.deepcopy(m).to(dtype)
    md.eval()
    r = {}
    with torch.no_grad():
        r["logits_eval"] = md(x.to(dtype))
    if bn_eval:
        loss = F.binary_cross_entropy_with_logits(md(x.to(dtype)), t.to(dtype))
        loss.backward()
        r["eloss"] = loss.reshape(1)
        for k, p in md.named_parameters():
            r["egrad." + k] = p.grad
            p.grad = None
    if not train:
        return r
    md.train()
    off(md)
    y = md(x.to(dtype))
    loss = F.binary_cross_entropy_with_logits(y, t.to(dtype))
    loss.backward()
    r["logits_train"] = y
    r["loss"] = loss.reshape(1)
    for k, p in md.named_parameters():
        r["grad." + k] = p.grad
    for k, v in md.state_dict().items():
        if "running" in k:
            r["after." + k] = v
    return r


def adamw(m, x, t, dtype, steps, lr, off, bn_eval=False, eps=1e-8):
    """The losses of `steps` AdamW steps (weight decay 1e-2, eps) from m's
    weights, in train mode with `off` applied, or with bn_eval all in eval
    mode."""
    md = copy.deepcopy(m).to(dtype)
    if bn_eval:
        md.eval()
    else:
        md.train()
        off(md)
    opt = torch.optim.AdamW(md.parameters(), lr=lr, weight_decay=1e-2, eps=eps)
    losses = []
    for step in range(steps):
        opt.zero_grad()
        l = F.binary_cross_entropy_with_logits(md(x.to(dtype)), t.to(dtype))
        l.backward()
        losses.append(l.item())
        opt.step()
    return torch.tensor(losses, dtype=torch.float64)


def err32(ref, r64, run32, both=True, per_element=False):
    """Fill ref["err32." + KEY] for every KEY of the float64 result r64: how
    far run32() (the same computation in float32) is from it, as the max abs
    difference per tensor (per_element: per element, for loss sequences);
    both: the larger of torch's two CPU float32 paths (oneDNN and its native
    convolutions), else torch's default path."""
    for mkldnn in (True, False) if both else (None,):
        if mkldnn is None:
            r32 = run32()
        else:
            with torch.backends.mkldnn.flags(enabled=mkldnn):
                r32 = run32()
        for k, v in r64.items():
            e = (v - r32[k].double()).abs()
            if not per_element:
                e = e.max().reshape(1)
            key = "err32." + k
            ref[key] = torch.maximum(ref[key], e) if key in ref else e
