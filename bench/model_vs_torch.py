"""model_vs_torch: training-step and inference images/s of one model, fd
(bench/model) against torchvision on PyTorch with the same threads, 224x224,
batch 32 by default; then where the time goes: fd's backward by op and
torch's profiler (forward + backward) by op.
Usage: /usr/bin/python3 bench/model_vs_torch.py --fd build/bench/model --arch convnext_tiny [--threads 2]
"""
import argparse
import resource
import subprocess
import time

import torch
import torch.nn.functional as F
import torchvision

ap = argparse.ArgumentParser()
ap.add_argument("--fd", required=True)
ap.add_argument("--arch", default="convnext_tiny")
ap.add_argument("--size", type=int, default=224)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--steps", type=int, default=3)
a = ap.parse_args()

fd = subprocess.run([a.fd, a.arch, str(a.size), str(a.batch), str(a.threads), str(a.steps), "--ops"],
                    check=True, capture_output=True, text=True).stdout
print("fd:\n" + fd, flush=True)  # the torch half takes minutes on a loaded box
vals = {l.split()[0]: float(l.split()[1]) for l in fd.splitlines() if l.split()[0] in ("train", "infer", "peak_rss_mib")}

torch.set_num_threads(a.threads)
m = getattr(torchvision.models, a.arch)(num_classes=1)
opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.05)
x = torch.randn(a.batch, 3, a.size, a.size)
t = (torch.arange(a.batch) % 2).float().reshape(-1, 1)


def step():
    opt.zero_grad()
    F.binary_cross_entropy_with_logits(m(x), t).backward()
    opt.step()


best = 1e30
m.train()
for s in range(a.steps + 1):
    t0 = time.perf_counter()
    step()
    if s:
        best = min(best, time.perf_counter() - t0)
tt = a.batch / best
m.eval()
bi = 1e30
with torch.no_grad():
    for s in range(a.steps + 1):
        t0 = time.perf_counter()
        m(x)
        if s:
            bi = min(bi, time.perf_counter() - t0)
ti = a.batch / bi
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

print("%s %dx%d batch %d, %d threads (img/s, best of %d steps)" % (a.arch, a.size, a.size, a.batch, a.threads, a.steps))
print("| | fd | torch %s | fd / torch |" % torch.__version__)
print("|---|---|---|---|")
print("| train step | %.2f | %.2f | %.2fx |" % (vals["train"], tt, vals["train"] / tt))
print("| inference | %.2f | %.2f | %.2fx |" % (vals["infer"], ti, vals["infer"] / ti))
print("| peak RSS MiB | %.0f | %.0f | |" % (vals["peak_rss_mib"], rss))
print()
m.train()
with torch.autograd.profiler.profile() as prof:
    step()
print("torch, one training step by op (self CPU time):")
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14))
