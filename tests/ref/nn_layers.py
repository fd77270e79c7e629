"""nn_layers: PyTorch reference fixtures for the taped conv2d, linear,
batchnorm2d and pooling ops (lib/nn/conv2d.h, linear.h, batchnorm2d.h,
pool2d.h): forward, input and parameter gradients through the tape, and a
small conv-bn-relu-pool-linear net trained for 3 AdamW steps.

Op references are computed in float64 from float32 inputs and stored as F32;
the training run is float32, as fd runs it.
Usage: /usr/bin/python3 nn_layers.py OUTDIR
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import stio  # noqa: E402

out = sys.argv[1]
torch.manual_seed(4321)


def f32(t):
    return t.detach().to(torch.float32).numpy()


def rnd(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).to(torch.float32)


def save(name, d):
    stio.save(os.path.join(out, name + ".safetensors"), {k: f32(v) for k, v in d.items()})


def grads(fn, inputs):
    xs = [i.to(torch.float64).requires_grad_(True) for i in inputs]
    y = fn(*xs)
    dy = rnd(*y.shape)
    y.backward(dy.to(torch.float64))
    return y, dy, [x.grad for x in xs]


# conv2d: grouped, strided, padded, with bias; and a 1x1 stride-2 without bias
x, w, b = rnd(2, 4, 9, 9), rnd(6, 2, 3, 3, scale=0.3), rnd(6)
y, dy, (dx, dw, db) = grads(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2), [x, w, b])
save("conv", {"x": x, "w": w, "b": b, "y": y, "dy": dy, "dx": dx, "dw": dw, "db": db})
x, w = rnd(2, 3, 8, 8), rnd(5, 3, 1, 1)
y, dy, (dx, dw) = grads(lambda x, w: F.conv2d(x, w, None, stride=2), [x, w])
save("conv_nobias", {"x": x, "w": w, "y": y, "dy": dy, "dx": dx, "dw": dw})

# linear
x, w, b = rnd(3, 5), rnd(4, 5), rnd(4)
y, dy, (dx, dw, db) = grads(F.linear, [x, w, b])
save("linear", {"x": x, "w": w, "b": b, "y": y, "dy": dy, "dx": dx, "dw": dw, "db": db})

# batchnorm2d, train and eval
x, w, b = rnd(4, 3, 5, 5, scale=2.0) + 1.0, rnd(3), rnd(3)
rm, rv = rnd(3), torch.rand(3) + 0.5
for mode in ("train", "eval"):
    bn = nn.BatchNorm2d(3).double()
    with torch.no_grad():
        bn.weight.copy_(w.double()); bn.bias.copy_(b.double())
        bn.running_mean.copy_(rm.double()); bn.running_var.copy_(rv.double())
    bn.train(mode == "train")
    xx = x.double().requires_grad_(True)
    y = bn(xx)
    dy = rnd(*y.shape)
    y.backward(dy.double())
    save("bn_" + mode, {"x": x, "w": w, "b": b, "rm": rm, "rv": rv, "y": y, "dy": dy, "dx": xx.grad,
                        "dw": bn.weight.grad, "db": bn.bias.grad, "rm_after": bn.running_mean,
                        "rv_after": bn.running_var})

# pooling
x = rnd(2, 3, 9, 9)
y, dy, (dx,) = grads(lambda x: F.max_pool2d(x, 3, 2, 1), [x])
save("maxpool", {"x": x, "y": y, "dy": dy, "dx": dx})
y, dy, (dx,) = grads(lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), [x])
save("avgpool", {"x": x, "y": y, "dy": dy, "dx": dx})
x = rnd(2, 3, 7, 5)
y, dy, (dx,) = grads(lambda x: F.adaptive_avg_pool2d(x, (3, 2)), [x])
save("adapool", {"x": x, "y": y, "dy": dy, "dx": dx})


# a small net, 3 AdamW steps in float32
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 1)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


net = Net()
with torch.no_grad():
    net.bn.weight.uniform_(0.5, 1.5)
    net.bn.bias.uniform_(-0.5, 0.5)
init = {"init." + k: v.clone() for k, v in net.state_dict().items() if v.is_floating_point()}
x, t = rnd(4, 3, 8, 8), torch.tensor([[0.0], [1.0], [1.0], [0.0]])
opt = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=1e-2)
losses = []
for step in range(3):
    opt.zero_grad()
    loss = F.binary_cross_entropy_with_logits(net(x), t)
    loss.backward()
    losses.append(loss.item())
    opt.step()
final = {"final." + k: v for k, v in net.state_dict().items() if v.is_floating_point()}
save("net", {**init, **final, "x": x, "t": t, "losses": torch.tensor(losses)})
