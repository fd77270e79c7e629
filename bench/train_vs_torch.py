#!/usr/bin/python3
"""train_vs_torch.py: the PyTorch side of bench/train_vs_torch.sh.

One epoch (training rows, then the validation fold scored for loss and AUC)
of a torchvision model reading the JPEG files themselves through a DataLoader:
PIL decode -> Resize(S) + CenterCrop(S) (fd-pack's `center` geometry: the
largest centred square at S x S) -> the configs/augment.json recipe as
torchvision transforms on training rows (none on validation rows) ->
ToTensor + Normalize(ImageNet). BCE with logits on one logit, AdamW.
Prints one line of key=value pairs; the peak memory of this process and its
DataLoader workers together (summed PSS, sampled every 20 ms) is included,
since /usr/bin/time -v reports the largest single process only.

  train_vs_torch.py --root DIR --tsv PACK.tsv --fold K --model NAME --size S
                    --batch B --threads T --workers W [--augment CONFIG.json]
                    [--channels-last]
--channels-last converts the model and every batch to channels_last, the
tuned setup (with LD_PRELOAD tcmalloc; bench/train_vs_torch.sh runs it under
bench/torch-venv.sh's PyTorch). Runs under PyTorch 1.13 and 2.x.
"""
import argparse
import io
import json
import os
import random
import threading
import time

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image
from sklearn.metrics import roc_auc_score

ap = argparse.ArgumentParser()
ap.add_argument("--root", required=True)
ap.add_argument("--tsv", required=True)
ap.add_argument("--fold", default="0")
ap.add_argument("--model", default="resnet18")
ap.add_argument("--size", type=int, default=224)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--workers", type=int, default=2)
ap.add_argument("--lr", type=float, default=1e-4)
ap.add_argument("--wd", type=float, default=1e-4)
ap.add_argument("--augment")
ap.add_argument("--seed", type=int, default=42)
ap.add_argument("--channels-last", action="store_true")
a = ap.parse_args()
S = a.size


def pss_total(pids):
    tot = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    tot += int(line.split()[1])
        except OSError:
            pass
    return tot * 1024


peak = [0]
stop = threading.Event()


def sampler():
    me = os.getpid()
    while not stop.is_set():
        kids = []
        try:
            kids = [int(x) for x in open(f"/proc/{me}/task/{me}/children").read().split()]
        except OSError:
            pass
        peak[0] = max(peak[0], pss_total([me] + kids))
        time.sleep(0.02)


threading.Thread(target=sampler, daemon=True).start()

rows = [l.rstrip("\n").split("\t") for l in open(a.tsv)]
col = {k: i for i, k in enumerate(rows[0])}
rows = rows[1:]
train = [(r[col["path"]], float(r[col["label"]])) for r in rows
         if r[col["fold"]] not in (a.fold, "test", "excluded")]
val = [(r[col["path"]], float(r[col["label"]])) for r in rows if r[col["fold"]] == a.fold]

norm = [T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]
geom = [T.Resize(S), T.CenterCrop(S)]
aug = []
if a.augment:
    cfg = json.load(open(a.augment))["augment"]

    def jpeg(q):
        def f(im):
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=random.randint(q[0], q[1]))
            return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
        return f
    rrc, cj, gb = cfg["random_resized_crop"], cfg["color_jitter"], cfg["gaussian_blur"]
    aug = [
        T.RandomApply([T.RandomResizedCrop(S, scale=rrc["scale"], ratio=rrc["ratio"])], p=rrc["p"]),
        T.RandomHorizontalFlip(cfg["hflip"]["p"]),
        T.RandomApply([T.RandomRotation(cfg["rotation"]["degrees"])], p=cfg["rotation"]["p"]),
        T.RandomApply([T.ColorJitter(cj["brightness"], cj["contrast"], cj["saturation"], cj["hue"])],
                      p=cj["p"]),
        T.RandomApply([T.GaussianBlur(gb["kernel_size"], gb["sigma"])], p=gb["p"]),
        T.RandomApply([T.Lambda(jpeg(cfg["jpeg"]["quality"]))], p=cfg["jpeg"]["p"]),
    ]
tf_train, tf_val = T.Compose(geom + aug + norm), T.Compose(geom + norm)


class Files(torch.utils.data.Dataset):
    def __init__(self, items, tf):
        self.items, self.tf = items, tf

    def __len__(self):
        return len(self.items)

    def __getitem__(self, k):
        p, y = self.items[k]
        return self.tf(Image.open(os.path.join(a.root, p)).convert("RGB")), y


def init(_):
    torch.set_num_threads(1)


torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
random.seed(a.seed)
if a.model == "simplecnn":
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from twins import SimpleCNN
    m = SimpleCNN(num_classes=1)
else:
    m = getattr(torchvision.models, a.model)(num_classes=1)
mf = torch.channels_last if a.channels_last else torch.contiguous_format
m = m.to(memory_format=mf)
opt = torch.optim.AdamW(m.parameters(), lr=a.lr, weight_decay=a.wd)
lossf = torch.nn.BCEWithLogitsLoss()
kw = dict(batch_size=a.batch, num_workers=a.workers, worker_init_fn=init)
dl_train = torch.utils.data.DataLoader(Files(train, tf_train), shuffle=True, drop_last=False, **kw)
dl_val = torch.utils.data.DataLoader(Files(val, tf_val), shuffle=False, **kw)

t0 = time.perf_counter()
m.train()
n = 0
tl = 0.0
for x, y in dl_train:
    x = x.contiguous(memory_format=mf)
    if x.shape[0] < 2:
        continue
    opt.zero_grad(set_to_none=True)
    loss = lossf(m(x).squeeze(1), y.float())
    loss.backward()
    opt.step()
    n += x.shape[0]
    tl += loss.item() * x.shape[0]
t1 = time.perf_counter()
m.eval()
scores, ys = [], []
with torch.no_grad():
    for x, y in dl_val:
        x = x.contiguous(memory_format=mf)
        scores.append(m(x).squeeze(1))
        ys.append(y)
s, yv = torch.cat(scores), torch.cat(ys).float()
vloss = lossf(s, yv).item()
auc = roc_auc_score(yv.numpy(), s.numpy()) if 0 < yv.sum() < len(yv) else float("nan")
t2 = time.perf_counter()
stop.set()
print(f"torch train_images={n} train_s={t1 - t0:.2f} val_images={len(val)} val_s={t2 - t1:.2f} "
      f"epoch_s={t2 - t0:.2f} train_img_s={n / (t1 - t0):.2f} train_loss={tl / max(n, 1):.4f} "
      f"val_loss={vloss:.4f} val_auc={auc:.4f} peak_pss_mib={peak[0] / 2**20:.0f}")
