"""models_vs_torch: the PyTorch side of bench/models.sh. One model, the same
protocol as bench/models.c: inference first (eval mode, torch.no_grad), then
training steps (train mode, forward + BCE-with-logits + backward + AdamW lr
1e-3 wd 1e-2, zero_grad each step), each after its warm-up; images/s from the
median step; peak memory is ru_maxrss after inference and at the end.
torchvision's model with num_classes=1 (simplecnn: the twin in
tests/ref/models.py), NCHW float32 by default, --channels-last to convert
model and input (memory_format=torch.channels_last), --bf16 to run forward
passes under CPU autocast to bfloat16 (torch.autocast("cpu"); weights,
gradients and AdamW stay float32, as PyTorch's mixed precision does).
Runs under any PyTorch >= 1.13 (Debian's, or bench/torch-venv.sh's).
Prints NAME SIZE train_img/s infer_img/s infer_peak_MiB peak_MiB (tabs).
Usage: python3 bench/models_vs_torch.py NAME SIZE BATCH THREADS
       WARMUP STEPS IWARMUP ISTEPS [--channels-last] [--bf16]
"""
import argparse
import ast
import os
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
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


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("nums", type=int, nargs=7,
                    help="SIZE BATCH THREADS WARMUP STEPS IWARMUP ISTEPS")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--bf16", action="store_true")
    a = ap.parse_args()
    size, batch, threads, warm, steps, iwarm, isteps = a.nums
    torch.set_num_threads(threads)
    torch.manual_seed(42)
    if a.name == "simplecnn":
        m = simplecnn_class()(num_classes=1)
    else:
        m = getattr(torchvision.models, a.name)(num_classes=1)
    x = torch.randn(batch, 3, size, size)
    t = torch.randint(0, 2, (batch, 1)).float()
    if a.channels_last:
        m = m.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16)

    m.eval()
    tt = []
    with torch.no_grad(), amp:
        for s in range(iwarm + isteps):
            t0 = time.perf_counter()
            m(x)
            if s >= iwarm:
                tt.append(time.perf_counter() - t0)
    infer = batch / statistics.median(tt)
    ipeak = peak_mib()

    m.train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=1e-2)
    tt = []
    for s in range(warm + steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        with amp:
            y = m(x)
        loss = F.binary_cross_entropy_with_logits(y.float(), t)
        loss.backward()
        opt.step()
        if s >= warm:
            tt.append(time.perf_counter() - t0)
    train = batch / statistics.median(tt)
    print("%s\t%d\t%.2f\t%.2f\t%.0f\t%.0f" % (a.name, size, train, infer, ipeak, peak_mib()), flush=True)


if __name__ == "__main__":
    main()
