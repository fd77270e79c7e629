"""gpu_vs_torch: the PyTorch side of the GPU benchmark in
scripts/device-check.sh, the same protocol as bench/gpu.c: one model on
cuda:0, input already on the GPU, num_classes=1, training steps (train mode,
forward + BCE-with-logits + backward + AdamW lr 1e-3 wd 0.05, zero_grad each
step) then inference (eval mode, torch.no_grad); 3 warm-up steps, images/s
from the median of STEPS steps, torch.cuda.synchronize() before the clock
starts and stops. Modes: fp32 (NCHW, TF32 off: the fp32 arithmetic fd
uses), fp32 channels_last, and AMP bf16 channels_last (torch.autocast).
torchvision's model (simplecnn: the twin in tests/ref/models.py).
Prints one line per mode: MODE train_img/s infer_img/s peak_MiB (tabs).
Usage: python3 bench/gpu_vs_torch.py NAME SIZE BATCH STEPS
"""
import ast
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torchvision


def simplecnn_class():
    """SimpleCNN from tests/ref/models.py (its module level writes fixtures,
    so the class is taken by AST rather than imported)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref", "models.py")
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    body = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "SimpleCNN"]
    ns = {"nn": nn, "torch": torch}
    exec(compile(ast.Module(body=body, type_ignores=[]), path, "exec"), ns)
    return ns["SimpleCNN"]


def build(name):
    if name == "simplecnn":
        return simplecnn_class()(num_classes=1)
    return getattr(torchvision.models, name)(num_classes=1)


def timed(fn, steps, warm=3):
    ts = []
    for s in range(warm + steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        if s >= warm:
            ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def run(name, size, batch, steps, mode):
    torch.manual_seed(0)
    dev = torch.device("cuda:0")
    m = build(name).to(dev)
    x = torch.rand(batch, 3, size, size, device=dev) * 2 - 1
    t = (torch.arange(batch, device=dev) % 2).float().view(batch, 1)
    if mode != "fp32":
        m = m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    amp = mode == "bf16-amp-cl"
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.05)
    lossf = nn.BCEWithLogitsLoss()
    torch.cuda.reset_peak_memory_stats(dev)

    def train():
        opt.zero_grad(set_to_none=False)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = lossf(m(x).float(), t)
        loss.backward()
        opt.step()

    def infer():
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            m(x)

    m.train()
    tt = timed(train, steps)
    m.eval()
    ti = timed(infer, steps)
    peak = torch.cuda.max_memory_allocated(dev) / 2**20
    print("%s\t%.2f\t%.2f\t%.0f" % (mode, batch / tt, batch / ti, peak), flush=True)


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    name, size, batch, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if not torch.cuda.is_available():
        print("gpu_vs_torch: torch.cuda.is_available() is False", file=sys.stderr)
        sys.exit(1)
    torch.backends.cudnn.benchmark = True
    for mode in ("fp32", "fp32-cl", "bf16-amp-cl"):
        # fp32 modes without TF32: the arithmetic fd's fp32 mode uses
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        run(name, size, batch, steps, mode)


if __name__ == "__main__":
    main()
