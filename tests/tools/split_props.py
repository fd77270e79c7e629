"""Properties of an fd-split output, checked independently of fd (plain Python).
Usage: split_props.py IN.tsv OUT.tsv K TEST FRACS   (FRACS: "0.2,0.5,1" or "-")
Prints "ok" or one "FAIL: ..." line per broken property; exit 0 either way.
"""
import re
import sys
from collections import defaultdict


def read(path):
    with open(path) as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    head = lines[0].split("\t")
    return head, [ln.split("\t") for ln in lines[1:]]


def main():
    inp, outp, k, test, fr = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    fracs = [] if fr == "-" else [float(x) for x in fr.split(",")]
    fail = []
    ih, irows = read(inp)
    oh, orows = read(outp)
    keep = [c for c in ih if c != "fold" and not re.fullmatch(r"in[0-9][0-9.]*", c)]
    names = ["in%g" % (f * 100) for f in fracs]
    if oh != keep + ["fold"] + names:
        fail.append(f"header {oh} != {keep + ['fold'] + names}")
        print("\n".join("FAIL: " + x for x in fail))
        return
    col = {n: i for i, n in enumerate(oh)}
    icol = {n: i for i, n in enumerate(ih)}
    if len(irows) != len(orows):
        fail.append("row count changed")
    for a, b in zip(irows, orows):
        if [a[icol[c]] for c in keep] != b[: len(keep)]:
            fail.append("input values changed")
            break
    gfold = defaultdict(set)
    usable = cv = 0
    strat_all, strat_test = defaultdict(int), defaultdict(int)
    fold_rows = defaultdict(int)
    fold_strat = defaultdict(int)
    sub_rows = defaultdict(int)
    sub_strat = defaultdict(int)
    for r in orows:
        fold, ok = r[col["fold"]], r[col["status"]] == "ok"
        flags = [r[col[n]] for n in names]
        if not ok:
            if fold != "excluded" or any(x != "0" for x in flags):
                fail.append(f"row {r[0]}: status not ok but fold {fold} flags {flags}")
            continue
        usable += 1
        s = r[col["label"]] + "/" + r[col["source"]]
        strat_all[s] += 1
        gfold[r[col["group"]]].add(fold)
        if fold == "test":
            strat_test[s] += 1
            if any(x != "1" for x in flags):
                fail.append(f"test row {r[0]} subsampled")
            continue
        if not fold.isdigit() or int(fold) >= k:
            fail.append(f"row {r[0]}: bad fold '{fold}'")
            continue
        cv += 1
        fold_rows[fold] += 1
        fold_strat[fold, s] += 1
        for i, x in enumerate(flags):
            if x not in ("0", "1"):
                fail.append(f"flag {x}")
            if i + 1 < len(flags) and x == "1" and flags[i + 1] != "1":
                fail.append(f"row {r[0]}: {names[i]} without {names[i + 1]}")
            if x == "1":
                sub_rows[fold, i] += 1
                sub_strat[fold, i, s] += 1
        if fracs and fracs[-1] == 1 and flags[-1] != "1":
            fail.append(f"row {r[0]}: CV row not in {names[-1]}")
    for g, fs in gfold.items():
        if len(fs) > 1:
            fail.append(f"group {g} in folds {sorted(fs)}")
    ntest = sum(strat_test.values())
    if abs(ntest / usable - test) > 0.02:
        fail.append(f"test share {ntest / usable:.4f}, asked {test}")
    for s, n in strat_all.items():
        if abs(strat_test[s] / n - test) > 0.03:
            fail.append(f"stratum {s}: test share {strat_test[s] / n:.4f}")
    if len(fold_rows) != k:
        fail.append(f"{len(fold_rows)} non-empty folds, expected {k}")
    for f, n in fold_rows.items():
        if abs(n / cv - 1 / k) > 0.01:
            fail.append(f"fold {f}: share {n / cv:.4f}")
        for s in strat_all:
            m = fold_strat[f, s]
            for i, fr_ in enumerate(fracs):
                if abs(sub_rows[f, i] / n - fr_) > 0.03:
                    fail.append(f"fold {f}: {names[i]} share {sub_rows[f, i] / n:.4f}")
                if m and abs(sub_strat[f, i, s] / m - fr_) > 0.06:
                    fail.append(f"fold {f} {s}: {names[i]} share {sub_strat[f, i, s] / m:.4f}")
    print("\n".join("FAIL: " + x for x in sorted(set(fail))[:20]) if fail else "ok")


main()
