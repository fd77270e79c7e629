"""models_effmob: conformance fixtures for efficientnet_b0 and
mobilenet_v3_small (lib/models/efficientnet.c, mobilenetv3.c), the pattern
of models.py. Per case (model, 64x64, batch 2), torchvision's model with
seeded random weights and randomised batchnorm statistics and affine
parameters:
  CASE_w.safetensors  the state dict (what fd loads)
  CASE.safetensors    x, t, eval logits, train-mode logits with dropout and
                      stochastic depth off (their masks come from torch's
                      generator; fd runs c->dropout_off), the BCE loss, every
                      named gradient (grad.NAME), the running stats after that
                      forward (after.NAME), the losses of 5 AdamW steps (lr:
                      their learning rate, weight decay 1e-2), all
                      in float64, plus err32.NAME: how far torch's own float32
                      runs (oneDNN and native convolutions, the larger) are
                      from the float64 reference (max abs difference)
  counts.safetensors  parameter counts at 1 logit; macs.NAME: multiply-adds
                      of every Conv2d and Linear at 224x224, batch 1
                      (counted with forward hooks, as fvcore counts them)
  init.safetensors    per view of a fresh torchvision model (1 logit):
                      init.NAME = [mean, std, max |x|] (initialisation check)
Usage: /usr/bin/python3 models_effmob.py OUTDIR
"""
import os
import sys

import torch
import torch.nn as nn
import torchvision
from torchvision.ops import StochasticDepth

sys.path.insert(0, os.path.dirname(__file__))
import models_common as common  # noqa: E402
import stio  # noqa: E402

out = sys.argv[1]
torch.set_num_threads(2)

BUILD = {
    "efficientnet_b0": torchvision.models.efficientnet_b0,
    "mobilenet_v3_small": torchvision.models.mobilenet_v3_small,
}
CASES = [("efficientnet_b0", 64), ("mobilenet_v3_small", 64)]
# EfficientNet-B0 with random batchnorm statistics and train-mode batchnorm on
# 2 images is so sensitive that AdamW at lr 1e-3 (or 1e-4 with its
# uniform(+-1) 1-logit head) drives the loss to 1e-8 after one step, where a
# loss comparison means nothing. Its head is therefore scaled to +-0.01 (small
# initial logits) and AdamW runs at lr 1e-4: losses 0.69 -> 0.36 over 5 steps.
HEAD_SCALE = {"efficientnet_b0": ("classifier.1.weight", 0.01)}
ADAMW_LR = {"efficientnet_b0": 1e-4, "mobilenet_v3_small": 1e-3}


def randomise(m):
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.3, 0.3)
                mod.running_mean.normal_(0, 0.1)
                mod.running_var.uniform_(0.5, 1.5)


def dropout_off(m):
    for mod in m.modules():
        if isinstance(mod, (nn.Dropout, StochasticDepth)):
            mod.eval()


def f32(v):
    return v.detach().to(torch.float32) if v.is_floating_point() else v.detach()


for name, size in CASES:
    case = "%s_%d" % (name, size)
    torch.manual_seed(2000 + size + len(name))
    m = BUILD[name](num_classes=1)
    randomise(m)
    if name in HEAD_SCALE:
        with torch.no_grad():
            m.state_dict()[HEAD_SCALE[name][0]].mul_(HEAD_SCALE[name][1])
    sd = {k: f32(v) for k, v in m.state_dict().items()}
    stio.save(os.path.join(out, case + "_w.safetensors"), sd)
    x = torch.randn(2, 3, size, size)
    t = torch.tensor([[0.0], [1.0]])
    ref = {"x": x, "t": t, "lr": torch.tensor([ADAMW_LR[name]], dtype=torch.float64)}

    r64 = common.fwd_bwd(m, x, t, torch.float64, dropout_off)
    ref.update(r64)
    common.err32(ref, r64, lambda: common.fwd_bwd(m, x, t, torch.float32, dropout_off))
    l64 = {"losses": common.adamw(m, x, t, torch.float64, 5, ADAMW_LR[name], dropout_off)}
    ref.update(l64)
    common.err32(ref, l64, lambda: {"losses": common.adamw(m, x, t, torch.float32, 5, ADAMW_LR[name], dropout_off)},
                 per_element=True)
    stio.save(os.path.join(out, case + ".safetensors"), {k: f32(v) for k, v in ref.items()})

counts, init = {}, {}
torch.manual_seed(3)
for n in BUILD:
    fresh = BUILD[n](num_classes=1)
    counts[n] = torch.tensor(sum(p.numel() for p in fresh.parameters()), dtype=torch.int64)
    macs = []

    def hook(mod, inp, o):
        if isinstance(mod, nn.Conv2d):
            macs.append(o.numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1])
        else:
            macs.append(o.numel() * mod.in_features)
    hs = [mod.register_forward_hook(hook) for mod in fresh.modules() if isinstance(mod, (nn.Conv2d, nn.Linear))]
    fresh.eval()
    with torch.no_grad():
        fresh(torch.zeros(1, 3, 224, 224))
    for h in hs:
        h.remove()
    counts["macs." + n] = torch.tensor(sum(macs), dtype=torch.int64)
    for k, v in fresh.state_dict().items():
        if v.is_floating_point():
            v = v.double()
            init["%s:%s" % (n, k)] = torch.tensor([v.mean(), v.std() if v.numel() > 1 else 0.0, v.abs().max()])
stio.save(os.path.join(out, "counts.safetensors"), counts)
stio.save(os.path.join(out, "init.safetensors"), {k: f32(v) for k, v in init.items()})
