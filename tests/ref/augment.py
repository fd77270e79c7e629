#!/usr/bin/python3
"""augment.py: torchvision 0.14 / Pillow 9.4 reference for lib/image/fd_augment.

Writes OUT/aug.safetensors with the source images (img0 rectangular photo crop,
img1 square photo crop, img2 square noise; u8 HWC) and one `out_<name>` tensor
per case, OUT/cases.tsv (name, op, img, a..e: the case's parameters), the
SHA-256 of Pillow's RGB->HSV over all 2^24 colours and of HSV->RGB over all 2^24
triples (OUT/hsv.txt), and many RandomResizedCrop.get_params draws (OUT/rrc_*).
Seeded: the same files every run."""
import hashlib
import io
import os
import sys

import numpy as np
import sklearn.datasets
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
import stio  # noqa: E402

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
china = sklearn.datasets.load_sample_image("china.jpg")  # 427 x 640 x 3
flower = sklearn.datasets.load_sample_image("flower.jpg")
rng = np.random.default_rng(7)
imgs = {
    "img0": np.ascontiguousarray(china[100:161, 200:247]),   # 47 wide, 61 high
    "img1": np.ascontiguousarray(flower[150:214, 300:364]),  # 64 x 64
    "img2": rng.integers(0, 256, (40, 40, 3), dtype=np.uint8),
}
tensors = dict(imgs)
rows = []


def case(name, op, img, res, a=0, b=0, c=0, d=0, e=0):
    tensors["out_" + name] = np.asarray(res, dtype=np.uint8)
    rows.append(f"{name}\t{op}\t{img}\t{a!r}\t{b!r}\t{c!r}\t{d!r}\t{e!r}")


def pil(k):
    return Image.fromarray(imgs[k])


for k in imgs:
    case(f"hflip_{k}", "hflip", k, F.hflip(pil(k)))
for k, (t, l, h, w, oh) in [("img0", (3, 5, 40, 30, 32)), ("img0", (0, 0, 61, 47, 61)),
                            ("img1", (10, 7, 20, 33, 64)), ("img1", (0, 0, 64, 64, 24)),
                            ("img2", (5, 9, 11, 13, 40))]:
    case(f"rcrop_{k}_{t}_{l}_{h}_{w}_{oh}", "rcrop", k,
         F.resized_crop(pil(k), t, l, h, w, [oh, oh], T.InterpolationMode.BILINEAR), t, l, h, w, oh)
for k in imgs:
    for ang in [-30.7, 12.3, 45.0, 90.0, -90.0, 180.0, 359.9, 7.5, -179.99, 0.3]:
        res = F.rotate(pil(k), ang, T.InterpolationMode.NEAREST, expand=False, fill=0)
        case(f"rot_{k}_{ang}", "rotate", k, res, ang)
for k in ["img0", "img1"]:
    for f in [0.0, 0.37, 1.0, 1.6, 2.5]:
        case(f"bright_{k}_{f}", "brightness", k, F.adjust_brightness(pil(k), f), f)
    for f in [0.0, 0.5, 1.3, 2.0]:
        case(f"contrast_{k}_{f}", "contrast", k, F.adjust_contrast(pil(k), f), f)
    for f in [0.0, 0.4, 1.7]:
        case(f"sat_{k}_{f}", "saturation", k, F.adjust_saturation(pil(k), f), f)
for k in imgs:
    for f in [-0.5, -0.31, -0.01, 0.0, 0.12, 0.5]:
        case(f"hue_{k}_{f}", "hue", k, F.adjust_hue(pil(k), f), f)
for k in imgs:
    for ks, sg in [(3, 0.5), (5, 1.2), (9, 2.0), (23, 3.3), (1, 1.0)]:
        case(f"blur_{k}_{ks}_{sg}", "blur", k, F.gaussian_blur(pil(k), [ks, ks], [sg, sg]), ks, sg)
for k in imgs:
    for q in [30, 75, 95]:
        buf = io.BytesIO()
        pil(k).save(buf, "JPEG", quality=q)
        case(f"jpeg_{k}_{q}", "jpeg", k, Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), q)

# The whole pipeline with fixed parameters (fd_aug_apply's order): crop, flip,
# rotate, jitter in the order (2, 0, 3, 1), blur; then the same plus JPEG.
im = pil("img1")
im = F.resized_crop(im, 4, 9, 50, 41, [64, 64], T.InterpolationMode.BILINEAR)
im = F.hflip(im)
im = F.rotate(im, -17.25, T.InterpolationMode.NEAREST, expand=False, fill=0)
im = F.adjust_saturation(im, 1.3)
im = F.adjust_brightness(im, 0.8)
im = F.adjust_hue(im, 0.07)
im = F.adjust_contrast(im, 1.2)
case("pipe_nojpeg_noblur", "pipe", "img1", im)
im = F.gaussian_blur(im, [5, 5], [1.1, 1.1])
case("pipe_blur", "pipe", "img1", im)
buf = io.BytesIO()
im.save(buf, "JPEG", quality=80)
case("pipe_all", "pipe", "img1", Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))

stio.save(os.path.join(out, "aug.safetensors"), tensors)
with open(os.path.join(out, "cases.tsv"), "w") as f:
    f.write("name\top\timg\ta\tb\tc\td\te\n")
    for r in rows:
        f.write(r + "\n")

# Exhaustive colour conversions.
allc = np.arange(1 << 24, dtype=np.uint32)
rgb = np.stack([(allc >> 16) & 255, (allc >> 8) & 255, allc & 255], -1).astype(np.uint8)
rgb = rgb.reshape(4096, 4096, 3)
h1 = hashlib.sha256(np.asarray(Image.fromarray(rgb).convert("HSV")).tobytes()).hexdigest()
h2 = hashlib.sha256(np.asarray(Image.fromarray(rgb, "HSV").convert("RGB")).tobytes()).hexdigest()
with open(os.path.join(out, "hsv.txt"), "w") as f:
    f.write(f"{h1}\n{h2}\n")

# RandomResizedCrop.get_params draws: (top, left, h, w) per row.
torch.manual_seed(0)
for name, (w, h, scale, ratio) in {"sq": (224, 224, (0.08, 1.0), (3 / 4, 4 / 3)),
                                   "wide": (200, 60, (0.3, 1.0), (0.5, 2.0))}.items():
    img = torch.zeros(1, h, w)
    d = np.array([T.RandomResizedCrop.get_params(img, list(scale), list(ratio))
                  for _ in range(20000)], dtype=np.int32)
    stio.save(os.path.join(out, f"rrc_{name}.safetensors"), {"p": d})
