"""normpool_vs_torch: fd's batchnorm2d (training forward, backward) and
pooling kernels against PyTorch 1.13 at the same thread count, on ResNet18
shapes at 224, batch 32, and batchnorm + activation as the models' training
runs it (channels last: fd's fused op, torch's BatchNorm2d then the
activation on a channels_last tensor) on EfficientNet-B0 / MobileNetV3
shapes; best-of-7 ms and ratio torch/fd (> 1: fd faster).
Run: make bench-normpool."""
import argparse
import subprocess
import time

import torch
import torch.nn.functional as F

SHAPES = [
    ("bn@112x64", "bn", 32, 64, 112, 112),
    ("bn@56x64", "bn", 32, 64, 56, 56),
    ("bn@28x128", "bn", 32, 128, 28, 28),
    ("bn@7x512", "bn", 32, 512, 7, 7),
    ("maxpool3s2@112", "maxpool3s2", 32, 64, 112, 112),
    ("gap@7x512", "gap", 32, 512, 7, 7),
    ("bnrelu@112x96", "bn_relu_nhwc", 32, 96, 112, 112),
    ("bnsilu@112x96", "bn_silu_nhwc", 32, 96, 112, 112),
    ("bnsilu@56x144", "bn_silu_nhwc", 32, 144, 56, 56),
    ("bnsilu@7x1152", "bn_silu_nhwc", 32, 1152, 7, 7),
    ("bnhswish@56x72", "bn_hardswish_nhwc", 32, 72, 56, 56),
]

ACTS = {"bn_relu_nhwc": F.relu, "bn_silu_nhwc": F.silu, "bn_hardswish_nhwc": F.hardswish}


def torch_times(kind, N, C, H, W):
    x = torch.rand(N, C, H, W) * 2 - 1
    if kind in ACTS:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    bn = torch.nn.BatchNorm2d(C).train()
    bf, bb = 1e9, 1e9
    for r in range(8):
        x.grad = None
        t0 = time.perf_counter()
        if kind == "bn":
            y = bn(x)
        elif kind in ACTS:
            y = ACTS[kind](bn(x))
        elif kind == "maxpool3s2":
            y = F.max_pool2d(x, 3, 2, 1)
        else:
            y = F.adaptive_avg_pool2d(x, 1)
        t1 = time.perf_counter()
        y.backward(torch.ones_like(y))
        t2 = time.perf_counter()
        if r:
            bf, bb = min(bf, t1 - t0), min(bb, t2 - t1)
    return 1e3 * bf, 1e3 * bb


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fd", default="build/bench/normpool")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    proc = subprocess.Popen([a.fd, str(a.threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    print(f"# batchnorm2d / pooling, {a.threads} threads, torch {torch.__version__}; ms (best of 7); "
          f"ratio = torch/fd (> 1: fd faster)")
    print(f"| {'op':16} | {'fwd fd':>7} | {'fwd pt':>7} | {'x':>5} | {'bwd fd':>7} | {'bwd pt':>7} | {'x':>5} |")
    print(f"|{'-' * 18}|{'-' * 9}|{'-' * 9}|{'-' * 7}|{'-' * 9}|{'-' * 9}|{'-' * 7}|")
    for name, kind, N, C, H, W in SHAPES:
        proc.stdin.write(f"{name} {kind} {N} {C} {H} {W}\n")
        proc.stdin.flush()
        f = [float(v) for v in proc.stdout.readline().split("\t")[1:]]
        pt = torch_times(kind, N, C, H, W)
        print(f"| {name:16} | {f[0]:7.2f} | {pt[0]:7.2f} | {pt[0] / f[0]:5.2f} | "
              f"{f[1]:7.2f} | {pt[1]:7.2f} | {pt[1] / f[1]:5.2f} |", flush=True)
    proc.stdin.close()
    proc.wait()


if __name__ == "__main__":
    main()
