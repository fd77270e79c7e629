"""Balance metrics of a fold assignment; tests/tools/split.t measures both
fd-split's output and scikit-learn's folds (tests/ref/split_ref.py) with it,
so both are measured by the same independent code (numpy, not fd).

  max_std      max over strata of the std over folds of the fold's share of the
               stratum (rows of stratum s in fold k / rows of stratum s)
  mean_std     the mean of the same stds (scikit-learn's own greedy criterion)
  comp_max_std max over strata of the std over folds of the stratum's share of
               the fold (rows of s in fold k / rows in fold k)
Usage: split_metrics.py SPLIT.tsv K  -> prints the three numbers for the CV
rows (fold 0..K-1; 'test' and 'excluded' rows are skipped) of a TSV with
columns label, source and fold (found by name).
"""
import sys

import numpy as np


def balance(fold, strata, k):
    names = sorted(set(strata))
    c = np.zeros((k, len(names)))
    idx = {n: i for i, n in enumerate(names)}
    for f, s in zip(fold, strata):
        c[int(f), idx[s]] += 1
    share = c / c.sum(axis=0, keepdims=True)
    comp = c / c.sum(axis=1, keepdims=True)
    sd = share.std(axis=0)
    return float(sd.max()), float(sd.mean()), float(comp.std(axis=0).max())


def main():
    path, k = sys.argv[1], int(sys.argv[2])
    with open(path) as f:
        head = f.readline().rstrip("\n").split("\t")
        col = {n: i for i, n in enumerate(head)}
        fold, strata = [], []
        for line in f:
            r = line.rstrip("\n").split("\t")
            if r[col["fold"]] in ("test", "excluded"):
                continue
            fold.append(r[col["fold"]])
            strata.append(r[col["label"]] + "/" + r[col["source"]])
    m = balance(fold, strata, k)
    print(f"{m[0]:.9g}\t{m[1]:.9g}\t{m[2]:.9g}")


if __name__ == "__main__":
    main()
