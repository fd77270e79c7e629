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
runs, byrep = {}, {}
for line in open(raw):
    f = line.rstrip("\n").split("\t")
    runs.setdefault((f[0], f[1]), []).append(f[3:])
    if len(f) == 7:
        byrep.setdefault((f[0], f[1]), {})[int(f[2])] = [float(x) for x in f[3:]]
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

# Paired by repetition: the sides of one repetition ran back to back, so their
# ratio cancels the slow drift of a shared machine that medians over the whole
# run mix in. Per repetition: the best fp32 fd side (fd, fd-wino) over the
# best fp32 PyTorch side of that same repetition; then the median, the range
# and how many repetitions reach issue 15's goals (1.3x training, 1.5x
# inference).
def per_rep(m, s, i):
    return {rep: v[i] for rep, v in byrep.get((m, s), {}).items()}
print("\n### paired by repetition: best fp32 fd / best fp32 torch of the same repetition\n")
print("| model | training: median [min, max] | reps >= 1.3 | inference: median [min, max] | reps >= 1.5 |")
print("|---|---|---|---|---|")
for m in models:
    row = [m]
    for i, goal in ((0, 1.3), (1, 1.5)):
        fds = [per_rep(m, s, i) for s in ("fd", "fd-wino")]
        pts = [per_rep(m, s, i) for s in fp32pt]
        rs = []
        for rep in sorted(set().union(*fds)):
            f = [d[rep] for d in fds if rep in d]
            p = [d[rep] for d in pts if rep in d]
            if f and p and max(p) > 0:
                rs.append(max(f) / max(p))
        if rs:
            row += ["%.2f [%.2f, %.2f]" % (statistics.median(rs), min(rs), max(rs)),
                    "%d / %d" % (sum(r >= goal for r in rs), len(rs))]
        else:
            row += ["-", "-"]
    print("| %s |" % " | ".join(row))
