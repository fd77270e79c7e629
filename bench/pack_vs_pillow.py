#!/usr/bin/python3
"""pack_vs_pillow.py gen DIR N | pil DIR SIZE PROCS DRAFT: the Pillow side of
bench/pack_vs_pillow.sh. gen writes N seeded 512x512 photographic-noise JPEGs
(quality 90) and index.tsv; pil decodes and centre-crop-resizes every image
with a multiprocessing pool of PROCS processes (Image.draft first when DRAFT
is 1) and prints images/s."""
import os
import sys
import time
from multiprocessing import Pool

import numpy as np
from PIL import Image


def gen(d, n):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:512, 0:512].astype(np.float32)
    with open(os.path.join(d, "index.tsv"), "w") as f:
        f.write("path\tlabel\tstatus\n")
        for i in range(n):
            a, b = rng.uniform(0.005, 0.05, 2)
            base = np.stack([128 + 100 * np.sin(a * x + i), 128 + 100 * np.cos(b * y), (x + y) / 4], -1)
            img = np.clip(base + rng.normal(0, 25, (512, 512, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(os.path.join(d, "%04d.jpg" % i), quality=90)
            f.write("%04d.jpg\t%d\tok\n" % (i, i % 2))


def work(args):
    path, size, draft = args
    im = Image.open(path)
    if draft:
        im.draft("RGB", (size, size))
    im = im.convert("RGB")
    w, h = im.size
    m = min(w, h)
    l, t = int(round((w - m) / 2.0)), int(round((h - m) / 2.0))
    return np.asarray(im.resize((size, size), Image.BILINEAR, box=(l, t, l + m, t + m))).sum()


def pil(d, size, procs, draft):
    files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".jpg"))
    with Pool(procs) as p:
        t0 = time.perf_counter()
        p.map(work, [(f, size, draft) for f in files], chunksize=8)
        dt = time.perf_counter() - t0
    print("%.1f" % (len(files) / dt))


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]))
    else:
        pil(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
