#!/usr/bin/python3
"""pack_vs_pillow.py gen DIR N | pil DIR SIZE PROCS DRAFT: the Pillow side of
bench/pack_vs_pillow.sh. gen writes N seeded 512x512 photographic-noise JPEGs
(quality 90) and index.tsv; pil decodes and centre-crop-resizes every image
with a multiprocessing pool of PROCS processes (Image.draft first when DRAFT
is 1) into a preallocated uint8 array per process, and prints images/s
(pool start-up excluded; fd-pack's figure includes its whole run)."""
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


OUT = None  # per worker process: a preallocated uint8 [N, S, S, 3] array, like a pack


def init(n, size):
    global OUT
    OUT = np.empty((n, size, size, 3), np.uint8)


def work(args):
    first, paths, size, draft = args
    for i, path in enumerate(paths):
        with open(path, "rb") as f:  # from the page cache, as fd-pack reads it
            im = Image.open(f)
            if draft:
                im.draft("RGB", (size, size))
            im = im.convert("RGB")
            w, h = im.size
            m = min(w, h)
            l, t = int(round((w - m) / 2.0)), int(round((h - m) / 2.0))
            OUT[first + i] = np.asarray(im.resize((size, size), Image.BILINEAR, box=(l, t, l + m, t + m)))
    return len(paths)


def pil(d, size, procs, draft):
    files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".jpg"))
    chunks = [(i, files[i:i + 4], size, draft) for i in range(0, len(files), 4)]
    with Pool(procs, initializer=init, initargs=(len(files), size)) as p:
        t0 = time.perf_counter()
        done = sum(p.map(work, chunks, chunksize=1))
        dt = time.perf_counter() - t0
    assert done == len(files)
    print("%.1f" % (len(files) / dt))


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]))
    else:
        pil(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
