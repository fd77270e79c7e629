"""conv_vs_torch: fd's conv2d against PyTorch 1.13 (same thread count) on every
distinct convolution of ResNet18 at 224x224 batch 32 and the depthwise
convolutions of MobileNetV3-Small and EfficientNet-B0 (224, batch 32):
forward, backward-data and backward-weights, best-of-repeats ms and ratio torch/fd
(> 1: fd faster). Run: make bench-conv (or python3 bench/conv_vs_torch.py
--fd build/bench/conv [--threads 2] [--only SUBSTR])."""
import argparse
import subprocess
import time

import torch
import torch.nn.functional as F

# name, C, H(=W), K, k, stride, pad, groups  (batch 32, no bias: every one of
# these layers is followed by batchnorm)
RESNET18 = [
    ("r18.conv1", 3, 224, 64, 7, 2, 3, 1),
    ("r18.l1.3x3", 64, 56, 64, 3, 1, 1, 1),
    ("r18.l2.3x3s2", 64, 56, 128, 3, 2, 1, 1),
    ("r18.l2.3x3", 128, 28, 128, 3, 1, 1, 1),
    ("r18.l2.ds1x1", 64, 56, 128, 1, 2, 0, 1),
    ("r18.l3.3x3s2", 128, 28, 256, 3, 2, 1, 1),
    ("r18.l3.3x3", 256, 14, 256, 3, 1, 1, 1),
    ("r18.l3.ds1x1", 128, 28, 256, 1, 2, 0, 1),
    ("r18.l4.3x3s2", 256, 14, 512, 3, 2, 1, 1),
    ("r18.l4.3x3", 512, 7, 512, 3, 1, 1, 1),
    ("r18.l4.ds1x1", 256, 14, 512, 1, 2, 0, 1),
]
def dw(prefix, c, h, k, s):
    return (f"{prefix}.dw{c}k{k}s{s}@{h}", c, h, c, k, s, k // 2, c)
MBV3S = [dw("mbv3s", *a) for a in [(16, 112, 3, 2), (72, 56, 3, 2), (88, 28, 3, 1), (96, 28, 5, 2),
                                    (240, 14, 5, 1), (120, 14, 5, 1), (144, 14, 5, 1),
                                    (288, 14, 5, 2), (576, 7, 5, 1)]]
EFFB0 = [dw("effb0", *a) for a in [(32, 112, 3, 1), (96, 112, 3, 2), (144, 56, 3, 1), (144, 56, 5, 2),
                                    (240, 28, 5, 1), (240, 28, 3, 2), (480, 14, 3, 1), (480, 14, 5, 1),
                                    (672, 14, 5, 1), (672, 14, 5, 2), (1152, 7, 5, 1), (1152, 7, 3, 1)]]
SHAPES = RESNET18 + MBV3S + EFFB0
N = 32


def reps_for(flops):
    return 3 if flops > 2e10 else 7 if flops > 2e9 else 25


def torch_times(name, C, H, K, k, s, p, g):
    x = torch.rand(N, C, H, H) * 2 - 1
    w = torch.rand(K, C // g, k, k) * 2 - 1
    with torch.no_grad():
        y = F.conv2d(x, w, None, s, p, 1, g)
    dy = torch.rand(y.shape) * 2 - 1
    flops = 2.0 * y.numel() * (C // g) * k * k
    reps = reps_for(flops)
    args = (None, [s, s], [p, p], [1, 1], False, [0, 0], g)
    bwd = torch.ops.aten.convolution_backward
    t = [[], [], []]
    for r in range(reps + 1):
        t0 = time.perf_counter()
        with torch.no_grad():
            F.conv2d(x, w, None, s, p, 1, g)
        t1 = time.perf_counter()
        bwd(dy, x, w, *args, [True, False, False])
        t2 = time.perf_counter()
        bwd(dy, x, w, *args, [False, True, False])
        t3 = time.perf_counter()
        if r:
            t[0].append(t1 - t0), t[1].append(t2 - t1), t[2].append(t3 - t2)
    return [1e3 * min(v) for v in t]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fd", default="build/bench/conv")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    shapes = [sh for sh in SHAPES if a.only in sh[0]]
    # fd and torch alternate shape by shape, so a burst of load elsewhere on the
    # machine hits both sides alike
    proc = subprocess.Popen([a.fd, str(a.threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    print(f"# conv2d, batch {N}, {a.threads} threads, torch {torch.__version__}; ms (best of 3-25 after a warm-up); "
          f"ratio = torch/fd (> 1: fd faster)")
    hdr = f"| {'layer':22} | {'fwd fd':>8} | {'fwd pt':>8} | {'x':>5} | {'bwd-d fd':>8} | {'bwd-d pt':>8} | {'x':>5} | {'bwd-w fd':>8} | {'bwd-w pt':>8} | {'x':>5} |"
    print(hdr)
    print("|" + "|".join("-" * (len(c)) for c in hdr.split("|")[1:-1]) + "|")
    tot_fd, tot_pt, slower = [0.0] * 3, [0.0] * 3, []
    for sh in shapes:
        n, C, H, K, k, s, p, g = sh
        proc.stdin.write(f"{n} {N} {C} {H} {H} {K} {k} {s} {p} {g}\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"conv_vs_torch: {a.fd} failed on {n}")
        f = [float(v) for v in line.split("\t")[1:]]
        pt = torch_times(*sh)
        cells = []
        for i in range(3):
            tot_fd[i] += f[i]
            tot_pt[i] += pt[i]
            ratio = pt[i] / f[i]
            if ratio < 1:
                slower.append(f"{sh[0]}:{['fwd', 'bwd-data', 'bwd-weights'][i]} {ratio:.2f}")
            cells += [f"{f[i]:8.2f}", f"{pt[i]:8.2f}", f"{ratio:5.2f}"]
        print(f"| {sh[0]:22} | " + " | ".join(cells) + " |", flush=True)
    proc.stdin.close()
    proc.wait()
    cells = []
    for i in range(3):
        cells += [f"{tot_fd[i]:8.1f}", f"{tot_pt[i]:8.1f}", f"{tot_pt[i] / tot_fd[i]:5.2f}"]
    print(f"| {'total':22} | " + " | ".join(cells) + " |")
    print(f"# fd slower than torch on {len(slower)} of {3 * len(shapes)}: " + ", ".join(slower))


if __name__ == "__main__":
    main()
