"""models_convnext: conformance fixtures for fd's convnext_tiny and
convnext_mini (the same code with widths (16,32,64,128), depths (2,1,2,1)),
from torchvision 0.14's ConvNeXt class with seeded random weights: layer
scales, LayerNorm affine parameters and conv/linear biases are randomised too
(layer_scale's init 1e-6 would make every block nearly the identity and hide
errors in it). Batch 2, 64x64 inputs.

  convnext_tiny_64_w.safetensors  the full model's state dict (fd loads it
                                  strictly: every name and shape checked)
  convnext_tiny_64.safetensors    x, eval logits (float64), err32.logits_eval
  convnext_mini_64_w.safetensors  the mini model's state dict
  convnext_mini_64.safetensors    x, t, eval logits, train-mode logits with
                                  stochastic depth off, the BCE loss, every
                                  named gradient (grad.NAME), the losses of 5
                                  AdamW steps (lr 1e-3, weight decay 1e-2),
                                  all in float64, and err32.KEY: how far
                                  torch's own float32 run is (diagnostic)
  counts.safetensors              parameter counts (torchvision, 1 logit) and
                                  macs224.convnext_tiny: conv + linear
                                  multiply-adds at 224x224, 1000 classes

Why float64: torch 1.13's float32 CPU LayerNorm backward on the permuted
(channels-last-like) tensors of ConvNeXt gave wrong gradients on this machine
(zeros or 1e16 for some channels; float64 is right), so the reference is
computed in float64 from the float32 weights and inputs. Why the mini model
for gradients: torch's float64 depthwise convolution runs one slow_conv2d per
channel (6 600 calls per pass for the full model, 20-100 s per forward and
backward here); the full model is checked by its names, shapes, parameter
count and eval logits.

Stochastic depth: its masks come from torch's generator, which fd cannot
reproduce, so train mode is compared with stochastic depth off (every
StochasticDepth module's p set to 0, as fd's c->dropout_off does); fd's
stochastic depth itself is tested by t_nn_ops and by t_models_convnext's
semantic checks.
Usage: /usr/bin/python3 models_convnext.py OUTDIR
"""
import os
import sys

import torch
import torch.nn as nn
import torchvision
from torchvision.models.convnext import CNBlock, CNBlockConfig, ConvNeXt

sys.path.insert(0, os.path.dirname(__file__))
import models_common as common  # noqa: E402
import stio  # noqa: E402

out = sys.argv[1]
torch.set_num_threads(2)


def mini(num_classes=1):
    cfg = [CNBlockConfig(16, 32, 2), CNBlockConfig(32, 64, 1), CNBlockConfig(64, 128, 2),
           CNBlockConfig(128, None, 1)]
    return ConvNeXt(cfg, stochastic_depth_prob=0.1, num_classes=num_classes)


BUILD = {"convnext_tiny": torchvision.models.convnext_tiny, "convnext_mini": mini}


def randomise(m):
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, CNBlock):
                mod.layer_scale.uniform_(0.1, 1.0)
            if isinstance(mod, nn.LayerNorm):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.3, 0.3)
            if isinstance(mod, (nn.Conv2d, nn.Linear)) and mod.bias is not None:
                mod.bias.normal_(0, 0.05)


def sd_off(m):
    for mod in m.modules():
        if isinstance(mod, torchvision.ops.StochasticDepth):
            mod.p = 0.0


def f32(v):
    return v.detach().to(torch.float32) if v.is_floating_point() else v.detach()


def case(name, size, full):
    torch.manual_seed(2000 + size + len(name))
    m = BUILD[name](num_classes=1)
    randomise(m)
    sd = {k: f32(v) for k, v in m.state_dict().items()}
    stio.save(os.path.join(out, "%s_%d_w.safetensors" % (name, size)), sd)
    x = torch.randn(2, 3, size, size)
    t = torch.tensor([[0.0], [1.0]])
    ref = {"x": x, "t": t}

    r64 = common.fwd_bwd(m, x, t, torch.float64, sd_off, train=full)
    ref.update(r64)
    common.err32(ref, r64, lambda: common.fwd_bwd(m, x, t, torch.float32, sd_off, train=full), both=False)
    if full:
        l64 = {"losses": common.adamw(m, x, t, torch.float64, 5, 1e-3, sd_off)}
        ref.update(l64)
        common.err32(ref, l64, lambda: {"losses": common.adamw(m, x, t, torch.float32, 5, 1e-3, sd_off)},
                     both=False, per_element=True)
    stio.save(os.path.join(out, "%s_%d.safetensors" % (name, size)), {k: f32(v) for k, v in ref.items()})


case("convnext_mini", 64, True)
case("convnext_tiny", 64, False)
counts = {n: torch.tensor(sum(p.numel() for p in BUILD[n](num_classes=1).parameters()), dtype=torch.int64)
          for n in BUILD}


def macs(m, size):
    """multiply-adds of every Conv2d and Linear at batch 1 (fvcore's convention)"""
    total = [0]

    def hook(mod, inp, outp):
        if isinstance(mod, nn.Conv2d):
            total[0] += outp.numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
        else:
            total[0] += outp.numel() * mod.in_features

    for mod in m.modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            mod.register_forward_hook(hook)
    with torch.no_grad():
        m.eval()(torch.zeros(1, 3, size, size))
    return total[0]


counts["macs224.convnext_tiny"] = torch.tensor(macs(torchvision.models.convnext_tiny(num_classes=1000), 224),
                                               dtype=torch.int64)
stio.save(os.path.join(out, "counts.safetensors"), counts)
