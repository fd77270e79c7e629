"""models: conformance fixtures for lib/models. Per case (model, input size),
torchvision's model (or SimpleCNN, the PyTorch twin of fd's simplecnn) with
seeded random weights and randomised batchnorm statistics and affine
parameters, a batch of 2, and:
  CASE_w.safetensors  the state dict (what fd loads)
  CASE.safetensors    x, t, eval logits, train-mode logits (dropout off), the
                      BCE loss, every named gradient (grad.NAME), the running
                      stats after that forward (after.NAME), and the losses of
                      5 AdamW steps (inputs of 64x64 only), all in float64,
                      plus err32.NAME: how far torch's own float32 runs
                      (oneDNN and native convolutions, the larger) are from
                      that float64 reference (max abs difference per tensor);
                      for ResNet-34/50 also eval-mode (running statistics)
                      gradients egrad.NAME and loss eloss, and their AdamW
                      losses run in eval mode at lr 1e-4 (lr: the learning
                      rate; their head scaled by 0.02). Also resnet18_1000.pth (a 1000-class torchvision
state dict, torch.save) for head re-initialisation, and counts.safetensors
(parameter counts of every model at 1 logit).
Usage: /usr/bin/python3 models.py OUTDIR
"""
import os
import sys

import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
import models_common as common  # noqa: E402
import stio  # noqa: E402

out = sys.argv[1]
torch.set_num_threads(2)


class SimpleCNN(nn.Module):
    """fd's simplecnn (DESIGN.md): the state dict names are this module's."""

    def __init__(self, num_classes=1):
        super().__init__()
        layers, cin = [], 3
        for cout in (32, 64, 128, 256):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(256, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


BUILD = {
    "simplecnn": SimpleCNN,
    "resnet18": torchvision.models.resnet18,
    "resnet34": torchvision.models.resnet34,
    "resnet50": torchvision.models.resnet50,
}
CASES = [("simplecnn", 64), ("resnet18", 64), ("resnet18", 224), ("resnet34", 64), ("resnet50", 64)]
# Cases whose gradients and AdamW losses are (also) computed with batchnorm in
# eval mode (see below). Without batch statistics these nets give logits of
# +-50..150 at random weights and AdamW at lr 1e-3 swings the loss from 23 to
# 2000 and back, where torch's own float32 run drifts 20% from float64; so
# their head is scaled by 0.02 (logits about 1) and AdamW runs at lr 1e-4,
# where torch's float32 losses stay within 2e-6 of float64's.
BN_EVAL = (("resnet18", 224), ("resnet34", 64), ("resnet50", 64))
BN_EVAL_HEAD, BN_EVAL_LR = 0.02, 1e-4
# ... and with AdamW's eps at 1e-5: its first step moves each weight by about
# lr x g / (|g| + eps), so at the default 1e-8 the ~1e-8 gradient components
# whose sign is float32 noise (a few in ResNet-50's 23.5M, in any float32
# run) move by +-lr either way, and those few decide the trajectory: fd on
# oneDNN 3.2, as accurate as 2.6 on every gradient (both within 7e-5 x RMS of
# float64), left torch64's resnet50 losses by 1.3e-3 at step 3 while torch's
# float32 paths happened not to. At 1e-5 such components move 1000x less,
# and fd on 2.6 and on 3.2 agree to 1e-6 over the 5 steps.
BN_EVAL_EPS = 1e-5


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
        if isinstance(mod, nn.Dropout):
            mod.eval()


def f32(v):
    return v.detach().to(torch.float32) if v.is_floating_point() else v.detach()


for name, size in CASES:
    case = "%s_%d" % (name, size)
    torch.manual_seed(1000 + size + len(name))
    m = BUILD[name](num_classes=1)
    randomise(m)
    bn_eval = (name, size) in BN_EVAL
    if bn_eval:
        with torch.no_grad():
            m.fc.weight.mul_(BN_EVAL_HEAD)
    sd = {k: f32(v) for k, v in m.state_dict().items()}
    stio.save(os.path.join(out, case + "_w.safetensors"), sd)
    x = torch.randn(2, 3, size, size)
    t = torch.tensor([[0.0], [1.0]])
    ref = {"x": x, "t": t}

    # float64 is the reference; torch's own float32 error on each tensor
    # (err32.NAME, the larger of its oneDNN and native paths) scales fd's
    # tolerance, since train-mode batchnorm on 2 images amplifies rounding.
    # ResNet-34/50 at 64x64 leave 8 values per channel to the last stage's
    # train-mode batchnorm, where that error reaches 0.16x a gradient's RMS:
    # their gradients and AdamW losses are therefore also computed with
    # batchnorm in eval mode (egrad.NAME, eloss, losses), where torch's
    # float32 error stays under 1e-3 of each gradient's RMS
    r64 = common.fwd_bwd(m, x, t, torch.float64, dropout_off, bn_eval=bn_eval)
    ref.update(r64)
    common.err32(ref, r64, lambda: common.fwd_bwd(m, x, t, torch.float32, dropout_off, bn_eval=bn_eval))
    if size <= 64:
        lr = BN_EVAL_LR if bn_eval else 1e-3
        eps = BN_EVAL_EPS if bn_eval else 1e-8
        ref["lr"] = torch.tensor([lr], dtype=torch.float64)
        ref["eps"] = torch.tensor([eps], dtype=torch.float64)
        l64 = {"losses": common.adamw(m, x, t, torch.float64, 5, lr, dropout_off, bn_eval, eps)}
        ref.update(l64)
        common.err32(ref, l64, lambda: {"losses": common.adamw(m, x, t, torch.float32, 5, lr, dropout_off,
                                                                 bn_eval, eps)}, per_element=True)
    stio.save(os.path.join(out, case + ".safetensors"), {k: f32(v) for k, v in ref.items()})

counts = {n: torch.tensor(sum(p.numel() for p in BUILD[n](num_classes=1).parameters()), dtype=torch.int64)
          for n in BUILD}
stio.save(os.path.join(out, "counts.safetensors"), counts)

torch.manual_seed(7)
r = torchvision.models.resnet18(num_classes=1000)
randomise(r)
torch.save(r.state_dict(), os.path.join(out, "resnet18_1000.pth"))
