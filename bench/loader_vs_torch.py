#!/usr/bin/python3
"""loader_vs_torch.py: fd_loader vs a torchvision DataLoader on the same pack rows.

Makes a 224x224 pack of N photo crops (sklearn's china/flower, random boxes) in a
scratch folder, then runs one training epoch (after one warm-up epoch) of fold 0's
training rows, batch 32, the configs/augment.json recipe, 2 threads/workers:
  fd:    bench/loader binary (fd_loader, pthreads)
  torch: DataLoader(num_workers=2, shuffle) over the rows as PIL images with the
         same transforms (RandomApply for each p; JPEG via PIL save/open), then
         ToTensor + Normalize; torch.set_num_threads(1) in each worker.
Prints images/s of both and the ratio."""
import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import numpy as np
import sklearn.datasets
import torch
import torchvision.transforms as T
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "ref"))
import stio  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--fd", required=True)
ap.add_argument("--n", type=int, default=640)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--config", default="configs/augment.json")
a = ap.parse_args()
S, B = 224, 32

rng = np.random.default_rng(0)
photos = [sklearn.datasets.load_sample_image(f) for f in ("china.jpg", "flower.jpg")]
imgs = np.empty((a.n, S, S, 3), np.uint8)
for i in range(a.n):
    p = photos[i % 2]
    s = int(rng.integers(200, 420))
    y, x = int(rng.integers(0, p.shape[0] - s + 1)), int(rng.integers(0, p.shape[1] - s + 1))
    imgs[i] = np.asarray(Image.fromarray(p[y:y + s, x:x + s]).resize((S, S), Image.BILINEAR))
labels = (np.arange(a.n) % 2).astype(np.uint8)
folds = [str(i % 5) for i in range(a.n)]
tmp = tempfile.mkdtemp()
pack = os.path.join(tmp, "pack.safetensors")
stio.save(pack, {"images": imgs, "label": labels}, {"fd.kind": "pack", "fd.size": str(S)})
with open(os.path.join(tmp, "pack.tsv"), "w") as f:
    f.write("source\tlabel\tfold\trow\n")
    for i in range(a.n):
        f.write(f"{'wiki' if labels[i] == 0 else 'text2img'}\t{labels[i]}\t{folds[i]}\t{i}\n")
train = [i for i in range(a.n) if folds[i] != "0"]

out = subprocess.run([a.fd, pack, "0", str(a.threads), str(B), "configs/shared.json", a.config],
                     check=True, capture_output=True, text=True).stdout
print(out, end="")
fd_ips = float(out.strip().split()[-1])

cfg = json.load(open(a.config))["augment"]


def jpeg(q):
    def f(im):
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=random.randint(q[0], q[1]))
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return f


rrc, cj, gb = cfg["random_resized_crop"], cfg["color_jitter"], cfg["gaussian_blur"]
tf = T.Compose([
    T.RandomApply([T.RandomResizedCrop(S, scale=rrc["scale"], ratio=rrc["ratio"])], p=rrc["p"]),
    T.RandomHorizontalFlip(cfg["hflip"]["p"]),
    T.RandomApply([T.RandomRotation(cfg["rotation"]["degrees"])], p=cfg["rotation"]["p"]),
    T.RandomApply([T.ColorJitter(cj["brightness"], cj["contrast"], cj["saturation"], cj["hue"])],
                  p=cj["p"]),
    T.RandomApply([T.GaussianBlur(gb["kernel_size"], gb["sigma"])], p=gb["p"]),
    T.RandomApply([T.Lambda(jpeg(cfg["jpeg"]["quality"]))], p=cfg["jpeg"]["p"]),
    T.ToTensor(),
    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
])


class Rows(torch.utils.data.Dataset):
    def __len__(self):
        return len(train)

    def __getitem__(self, k):
        r = train[k]
        return tf(Image.fromarray(imgs[r])), float(labels[r])


def init(_):
    torch.set_num_threads(1)


dl = torch.utils.data.DataLoader(Rows(), batch_size=B, shuffle=True, num_workers=a.threads,
                                 worker_init_fn=init, persistent_workers=True)
best = 0
for epoch in range(2):
    t0 = time.perf_counter()
    n = nb = 0
    for x, y in dl:
        n += x.shape[0]
        nb += 1
    dt = time.perf_counter() - t0
    print(f"torch epoch {epoch}: {nb} batches, {n} images in {dt:.3f} s: {nb / dt:.2f} batches/s, "
          f"{n / dt:.1f} images/s")
    best = max(best, n / dt)
print(f"torch images/s {best:.1f}")
print(f"ratio fd/torch {fd_ips / best:.2f}")
os.remove(pack)
os.remove(os.path.join(tmp, "pack.tsv"))
os.rmdir(tmp)
