#!/usr/bin/python3
"""loader.py: reference for lib/data/fd_loader. Writes a small pack
(OUT/pack.safetensors + OUT/pack.tsv: 3 sources, folds 0..2, test and excluded
rows, an in20 flag) and what torchvision and numpy make of it:
OUT/ref.safetensors with
  val_imagenet  [n,3,S,S] f32  fold-1 validation rows in pack order through
                ToTensor() + Normalize(ImageNet mean, std)
  val_real      the same with Normalize(real-train mean, std)
  real_mean, real_std  [3] f64: numpy mean / std (ddof=0) over all pixels of the
                real (label 0) fold-1 training rows, in [0, 1] units
  real_mean_ex  [3] f64: the same with --only in20=1
  train_rows, val_rows  i32: fold-1 training / validation rows (pack order)
Seeded: the same files every run."""
import os
import sys

import numpy as np
import torch
import torchvision.transforms as T

sys.path.insert(0, os.path.dirname(__file__))
import stio  # noqa: E402

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(11)
N, S = 61, 24
sources = ["wiki", "text2img", "inpainting"]
src = [sources[i % 3] for i in range(N)]
label = np.array([0 if s == "wiki" else 1 for s in src], dtype=np.uint8)
fold = [("test" if i % 10 == 9 else "excluded" if i == 17 else str(i % 4 % 3)) for i in range(N)]
in20 = [1 if i % 5 < 2 else 0 for i in range(N)]
y, x = np.mgrid[0:S, 0:S]
images = np.empty((N, S, S, 3), dtype=np.uint8)
for i in range(N):
    base = rng.integers(0, 256, 3)
    noise = rng.normal(0, 30 + i, (S, S, 3))
    grad = np.stack([x * 5, y * 4, (x + y) * 2], -1)
    images[i] = np.clip(base + noise + grad * (i % 3), 0, 255).astype(np.uint8)

stio.save(os.path.join(out, "pack.safetensors"), {"images": images, "label": label},
          {"fd.kind": "pack", "fd.size": str(S), "fd.geometry": "center"})
with open(os.path.join(out, "pack.tsv"), "w") as f:
    f.write("path\tsource\tlabel\tgroup\tfold\tin20\trow\n")
    for i in range(N):
        f.write(f"{src[i]}/{i:03d}.jpg\t{src[i]}\t{label[i]}\tg{i // 3}\t{fold[i]}\t{in20[i]}\t{i}\n")

K = 1
train = [i for i in range(N) if fold[i] not in ("test", "excluded", str(K))]
val = [i for i in range(N) if fold[i] == str(K)]


def stats(rows):
    a = images[[i for i in rows if label[i] == 0]].reshape(-1, 3).astype(np.float64) / 255.0
    return a.mean(0), a.std(0)


m, s = stats(train)
mex, _ = stats([i for i in train if in20[i]])


def norm(mean, std):
    t = T.Compose([T.ToTensor(), T.Normalize(list(mean), list(std))])
    return torch.stack([t(images[i]) for i in val]).numpy()


stio.save(os.path.join(out, "ref.safetensors"), {
    "val_imagenet": norm([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    "val_real": norm([float(v) for v in m], [float(v) for v in s]),
    "real_mean": m, "real_std": s, "real_mean_ex": mex,
    "train_rows": np.array(train, dtype=np.int32), "val_rows": np.array(val, dtype=np.int32)})
