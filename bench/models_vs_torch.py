"""models_vs_torch: training step (forward, BCE-with-logits, backward, AdamW)
and inference (eval, no_grad) images per second, fd vs torchvision on
PyTorch 1.13, same model, input size, batch and thread count; each side in
its own process (peak RSS per process), fd first, then torch, per model.
Best of --reps steps after one warm-up. With --profile, each side's time by
op for one training step (fd: its backward by op; torch: the profiler's
top ops by self CPU time).
Usage: bench/models_vs_torch.py [--fd build/bench/models] [--threads 2]
       [--size 224] [--batch 32] [--reps 3] [--profile] [MODEL...]
Run: make bench-models."""
import argparse
import resource
import subprocess
import sys
import time


def torch_one(name, size, batch, threads, reps, profile):
    import torch
    import torch.nn.functional as F
    import torchvision
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m = getattr(torchvision.models, name)(num_classes=1)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=1e-2)
    x = torch.rand(batch, 3, size, size) * 2 - 1
    t = (torch.arange(batch) % 2).float().reshape(batch, 1)

    def step():
        opt.zero_grad(set_to_none=False)
        loss = F.binary_cross_entropy_with_logits(m(x), t)
        loss.backward()
        opt.step()

    best = []
    m.train()
    b = 1e30
    for r in range(reps + 1):
        t0 = time.perf_counter()
        step()
        if r:
            b = min(b, time.perf_counter() - t0)
    best.append(batch / b)
    m.eval()
    b = 1e30
    with torch.no_grad():
        for r in range(reps + 1):
            t0 = time.perf_counter()
            m(x)
            if r:
                b = min(b, time.perf_counter() - t0)
    best.append(batch / b)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("%s\t%.2f\t%.2f\t%.0f" % (name, best[0], best[1], rss), flush=True)
    if profile:
        m.train()
        with torch.autograd.profiler.profile() as prof:
            step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fd", default="build/bench/models")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--torch-one", help=argparse.SUPPRESS)
    ap.add_argument("models", nargs="*", default=["efficientnet_b0", "mobilenet_v3_small"])
    a = ap.parse_args()
    if a.torch_one:
        torch_one(a.torch_one, a.size, a.batch, a.threads, a.reps, a.profile)
        return
    import torch
    print("# models, %dx%d, batch %d, %d threads, torch %s; img/s (best of %d after a warm-up); "
          "ratio = fd/torch (> 1: fd faster); peak RSS MiB per process"
          % (a.size, a.size, a.batch, a.threads, torch.__version__, a.reps))
    print("| model              | train fd | train pt |     x | infer fd | infer pt |     x | RSS fd | RSS pt |")
    print("|--------------------|----------|----------|-------|----------|----------|-------|--------|--------|")
    for name in a.models:
        args = [name, str(a.size), str(a.batch), str(a.threads), str(a.reps)]
        fd = subprocess.run([a.fd] + args + (["profile"] if a.profile else []), check=True,
                            stdout=subprocess.PIPE, text=True).stdout.split()
        pt = subprocess.run([sys.executable, __file__, "--torch-one", name, "--size", str(a.size), "--batch",
                             str(a.batch), "--threads", str(a.threads), "--reps", str(a.reps)]
                            + (["--profile"] if a.profile else []),
                            check=True, stdout=subprocess.PIPE, text=True).stdout.split()
        ft, fi, fr = map(float, fd[1:4])
        pt_t, pt_i, pr = map(float, pt[1:4])
        print("| %-18s | %8.2f | %8.2f | %5.2f | %8.2f | %8.2f | %5.2f | %6.0f | %6.0f |"
              % (name, ft, pt_t, ft / pt_t, fi, pt_i, fi / pt_i, fr, pr), flush=True)


if __name__ == "__main__":
    main()
