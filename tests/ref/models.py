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
                      that float64 reference (max abs difference per tensor) Also resnet18_1000.pth (a 1000-class torchvision
state dict, torch.save) for head re-initialisation, and counts.safetensors
(parameter counts of every model at 1 logit).
Usage: /usr/bin/python3 models.py OUTDIR
"""
import copy
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
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
    sd = {k: f32(v) for k, v in m.state_dict().items()}
    stio.save(os.path.join(out, case + "_w.safetensors"), sd)
    x = torch.randn(2, 3, size, size)
    t = torch.tensor([[0.0], [1.0]])
    ref = {"x": x, "t": t}

    def fwd_bwd(dtype):
        md = copy.deepcopy(m).to(dtype)
        md.eval()
        r = {}
        with torch.no_grad():
            r["logits_eval"] = md(x.to(dtype))
        md.train()
        dropout_off(md)
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

    def adamw(dtype, steps):
        md = copy.deepcopy(m).to(dtype)
        md.train()
        dropout_off(md)
        opt = torch.optim.AdamW(md.parameters(), lr=1e-3, weight_decay=1e-2)
        losses = []
        for step in range(steps):
            opt.zero_grad()
            l = F.binary_cross_entropy_with_logits(md(x.to(dtype)), t.to(dtype))
            l.backward()
            losses.append(l.item())
            opt.step()
        return torch.tensor(losses, dtype=torch.float64)

    # float64 is the reference; torch's own float32 error on each tensor
    # (err32.NAME: max abs difference, the larger of torch's two CPU float32
    # paths, oneDNN and its native convolutions) scales fd's tolerance, since
    # these deep nets with train-mode batchnorm on 2 images amplify rounding
    r64 = fwd_bwd(torch.float64)
    ref.update(r64)
    for mkldnn in (True, False):
        with torch.backends.mkldnn.flags(enabled=mkldnn):
            r32 = fwd_bwd(torch.float32)
        for k in r64:
            e = (r64[k] - r32[k].double()).abs().max().reshape(1)
            ref["err32." + k] = torch.maximum(ref.get("err32." + k, e), e)
    steps = 5 if size <= 64 else 0
    if steps:
        l64 = adamw(torch.float64, steps)
        ref["losses"] = l64
        for mkldnn in (True, False):
            with torch.backends.mkldnn.flags(enabled=mkldnn):
                e = (l64 - adamw(torch.float32, steps)).abs()
            ref["err32.losses"] = torch.maximum(ref.get("err32.losses", e), e)
    stio.save(os.path.join(out, case + ".safetensors"), {k: f32(v) for k, v in ref.items()})

counts = {n: torch.tensor(sum(p.numel() for p in BUILD[n](num_classes=1).parameters()), dtype=torch.int64)
          for n in BUILD}
stio.save(os.path.join(out, "counts.safetensors"), counts)

torch.manual_seed(7)
r = torchvision.models.resnet18(num_classes=1000)
randomise(r)
torch.save(r.state_dict(), os.path.join(out, "resnet18_1000.pth"))
