"""tuned_table: the tables of bench/tuned.sh from its per-run lines (MODEL
SIDE REP train_img/s infer_img/s infer_peak_MiB peak_MiB, tabs; or MODEL SIDE
REP t/o|fail): per model and side the median over repetitions, every ratio
fd/side, fd over the best fp32 PyTorch setup, fd-bf16 over fd and over
PyTorch's bf16 autocast, fd-wino (fp32 with Winograd) over the best fp32
PyTorch setup. Also renders a partial file (RAW= of an interrupted run).
Usage: python3 bench/tuned_table.py RAW "MODEL@SIZE ..." "SKIP ..." FDBF16(0|1) ["WINO MODEL NAMES"]
"""
import statistics, sys
raw, models, skip, fdbf16 = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4] == "1"
wino = sys.argv[5].split() if len(sys.argv) > 5 else []
sides = ["fd", "fd-wino", "fd-bf16", "pt1", "pt1-best", "pt2", "pt2-best", "pt2-bf16"]
runs = {}
for line in open(raw):
    f = line.rstrip("\n").split("\t")
    runs.setdefault((f[0], f[1]), []).append(f[3:])
def med(m, s, i):
    r = runs.get((m, s), [])
    v = [float(x[i]) for x in r if len(x) == 4]
    if v:
        return statistics.median(v), len(v)
    if s == "fd-bf16" and not fdbf16:
        return None, "n/a"
    if s == "fd-wino" and m.split("@")[0] not in wino:
        return None, "n/a"
    if "%s:%s" % (m, s) in skip:
        return None, "skip"
    return None, r[0][0] if r else "-"
def cell(v):
    return "%.2f" % v[0] if v[0] is not None else str(v[1])
def ratio(a, b):
    return "%.2f" % (a / b) if a is not None and b is not None and b > 0 else "-"
fp32pt = ["pt1", "pt1-best", "pt2", "pt2-best"]
for title, i, hi in (("training, images/s", 0, True), ("inference, images/s", 1, True),
                     ("peak RSS after training, MiB (lower is better)", 3, False),
                     ("peak RSS after inference only, MiB (lower is better)", 2, False)):
    print("\n### %s\n" % title)
    print("| model | " + " | ".join(sides) + " | fd/pt1 | fd/pt1-best | fd/pt2 | fd/pt2-best | fd/best fp32 torch | fd-wino/best fp32 torch | fd-bf16/fd | fd-bf16/pt2-bf16 | runs |")
    print("|---" * (len(sides) + 10) + "|")
    for m in models:
        v = {s: med(m, s, i) for s in sides}
        got = [v[s][0] for s in fp32pt if v[s][0] is not None]
        best = (max(got) if hi else min(got)) if got else None
        fd, bf = v["fd"][0], v["fd-bf16"][0]
        row = [cell(v[s]) for s in sides]
        row += [ratio(fd, v[s][0]) for s in fp32pt]
        row += [ratio(fd, best), ratio(v["fd-wino"][0], best), ratio(bf, fd), ratio(bf, v["pt2-bf16"][0])]
        row.append("/".join(str(v[s][1]) if v[s][0] is not None else "0" for s in sides))
        print("| %s | %s |" % (m, " | ".join(row)))
print("\n(ratios are fd/side: > 1 means fd is faster for images/s, larger for memory;"
      " best fp32 torch = the best of pt1, pt1-best, pt2, pt2-best; runs = processes per side"
      " in the order of the columns; t/o: over TIMEOUT, fail: the process failed)")
