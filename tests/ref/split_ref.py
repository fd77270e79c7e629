"""Reference for fd-split: realistic index TSVs and scikit-learn's
StratifiedGroupKFold balance on them.

Writes into the folder given as argv[1]:
  real.tsv   400 groups, uneven sources (each fake source present with its own
             probability), a few missing fakes, a few status=bad rows, some
             groups with two real photos
  dff.tsv    DeepFakeFace-shaped: 1500 groups of wiki + text2img + inpainting +
             insight, about 1% of fakes missing, a few bad rows
  sk_<file>_<seed>.tsv  the folds of scikit-learn's
             StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=seed)
             with y = label x source on the usable (status ok) rows, as columns
             group label source fold; tests/tools/split.t measures their
             balance with the same code (split_metrics.py) as fd-split's
  sk_<file>_noshuffle.tsv  the same with shuffle=False: scikit-learn 1.2
             shuffles the count rows but not the group ids that go with them
             (its greedy then balances counts that are not the groups'), so the
             unshuffled variant is the stronger reference
Run by Debian's /usr/bin/python3 (scikit-learn).
"""
import os
import sys

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

SOURCES = [("wiki", 0), ("text2img", 1), ("inpainting", 1), ("insight", 1)]
HEADER = ["path", "source", "label", "group", "width", "height", "format", "bytes", "status"]
SEEDS = [42, 1, 7]
K = 5


def row(src, label, grp, k, rng, bad):
    w, h = (int(rng.integers(200, 900)), int(rng.integers(200, 900))) if label == 0 else (512, 512)
    status = "bad:truncated" if bad else "ok"
    name = grp if k == 0 else f"{grp}_{k}"
    return [f"{src}/{name}.jpg", src, str(label), grp, str(w), str(h), "jpeg",
            str(int(rng.integers(20000, 90000))), status]


def make_real(rng):
    p_have = {"wiki": 1.0, "text2img": 0.95, "inpainting": 0.8, "insight": 0.6}
    rows = []
    for g in range(400):
        grp = f"{g % 37:02d}/{g:05d}"
        for src, label in SOURCES:
            if rng.random() >= p_have[src]:
                continue
            n = 2 if (src == "wiki" and rng.random() < 0.05) else 1
            for k in range(n):
                rows.append(row(src, label, grp, k, rng, rng.random() < 0.02))
    return rows


def make_dff(rng):
    rows = []
    for g in range(1500):
        grp = f"{g % 101:03d}/{g:06d}"
        for src, label in SOURCES:
            if label == 1 and rng.random() < 0.01:
                continue
            rows.append(row(src, label, grp, 0, rng, rng.random() < 0.003))
    return rows


def sklearn_folds(rows, seed):
    ok = [r for r in rows if r[8] == "ok"]
    y_names = [r[2] + "/" + r[1] for r in ok]
    _, y = np.unique(y_names, return_inverse=True)
    _, groups = np.unique([r[3] for r in ok], return_inverse=True)
    fold = np.empty(len(ok), dtype=int)
    if seed is None:
        sgkf = StratifiedGroupKFold(n_splits=K)
    else:
        sgkf = StratifiedGroupKFold(n_splits=K, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(sgkf.split(np.zeros(len(ok)), y, groups)):
        fold[test] = k
    return [(r[3], r[2], r[1], str(f)) for r, f in zip(ok, fold)]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20240607)
    sets = {"real": make_real(rng), "dff": make_dff(rng)}
    for name, rows in sets.items():
        with open(os.path.join(out, name + ".tsv"), "w") as f:
            f.write("\t".join(HEADER) + "\n")
            for r in rows:
                f.write("\t".join(r) + "\n")
    for name, rows in sets.items():
        for seed in SEEDS + [None]:
            tag = "noshuffle" if seed is None else seed
            with open(os.path.join(out, f"sk_{name}_{tag}.tsv"), "w") as f:
                f.write("group\tlabel\tsource\tfold\n")
                for r in sklearn_folds(rows, seed):
                    f.write("\t".join(r) + "\n")


main()
