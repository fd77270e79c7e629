"""report.py: a small per-fold AUC table and what lib/report must make of it,
computed directly with numpy and SciPy (tests/unit/t_report.c).

Table: conditions A, B x models m0, m1 x folds 0-4; per row the validation AUC
("all"), the train AUC, the AUCs of fake sources s1 s2 s3, and the counts
n_real, n_fake, n_train. Quirks the code must handle: (B, m1) has no fold 4
(comparisons pair common folds), (A, m0) fold 3 has no train AUC (NaN: the
gap and train means skip it), (A, m1) fold 2 has no s3 fakes (n_fake 0: the
per-source variance of that fold is over s1 and s2).

Expected: per cell [nf, mean, std, ci_lo, ci_hi, train, gap, source var,
mean AUC s1, s2, s3, source std]: the interval is the Nadeau-Bengio corrected
t-interval (ratio n_val/n_train averaged over the folds) clipped to [0, 1],
the spread numpy.var / numpy.std (ddof 0); per comparison [n, delta, delta
gap, delta var, ratio, t, df, p, delta std]; the Markdown rows of the
2b-resolution-style table, formatted here with Python's %-formatting (the
same correctly rounded conversion as C's), with Holm-adjusted p from
statsmodels over the table's comparisons. The in-memory table has no score
rows, so AP, EER and every test-set number are NA."""
import sys

import numpy as np
import scipy.stats
from statsmodels.stats.multitest import multipletests

import stio

C, M, K, S = ["A", "B"], ["m0", "m1"], 5, ["s1", "s2", "s3"]


def table():
    rng = np.random.default_rng(11)
    auc = np.empty((2, 2, K, 5))  # all, train, s1, s2, s3
    for c in range(2):
        for m in range(2):
            base = 0.70 + 0.05 * c + 0.03 * m
            auc[c, m, :, 0] = base + rng.normal(0, 0.02, K)
            auc[c, m, :, 1] = auc[c, m, :, 0] + 0.1 + rng.normal(0, 0.02, K)
            for s in range(3):
                auc[c, m, :, 2 + s] = base + 0.04 * (s - 1) + rng.normal(0, 0.03, K)
    cnt = np.zeros((2, 2, K, 3), dtype=np.int64)  # n_real, n_fake, n_train
    for c in range(2):
        for m in range(2):
            for k in range(K):
                cnt[c, m, k] = [30 + k, 12 + 2 * k, 160 + 3 * k + c]
    present = np.ones((2, 2, K), dtype=np.uint8)
    present[1, 1, 4] = 0
    auc[0, 0, 3, 1] = np.nan
    nfake_src = np.full((2, 2, K, 3), 4, dtype=np.int64)
    nfake_src[0, 1, 2, 2] = 0
    auc[0, 1, 2, 4] = np.nan
    return auc.round(6), cnt, present, nfake_src


def cell(auc, cnt, present, nfs, c, m):
    ks = [k for k in range(K) if present[c, m, k]]
    a = auc[c, m, ks, 0]
    tr = auc[c, m, ks, 1]
    n = len(a)
    ratio = np.mean([(cnt[c, m, k, 0] + cnt[c, m, k, 1]) / cnt[c, m, k, 2] for k in ks])
    lo, hi = scipy.stats.t.interval(0.95, n - 1, loc=a.mean(),
                                    scale=np.sqrt((1 / n + ratio) * a.var(ddof=1)))
    lo, hi = max(lo, 0.0), min(hi, 1.0)
    var = [np.var([auc[c, m, k, 2 + s] for s in range(3) if nfs[c, m, k, s] > 0]) for k in ks]
    sd = [np.std([auc[c, m, k, 2 + s] for s in range(3) if nfs[c, m, k, s] > 0]) for k in ks]
    src = [np.nanmean(auc[c, m, ks, 2 + s]) for s in range(3)]
    out = [n, a.mean(), a.std(ddof=1), lo, hi, np.nanmean(tr), np.nanmean(tr - a), np.mean(var)] + src
    return out + [np.mean(sd)], ks, a, tr - a, np.array(var), np.array(sd)


def compare(auc, cnt, present, nfs, ca, ma, cb, mb):
    _, ka, a, ga, va, sa = cell(auc, cnt, present, nfs, ca, ma)
    _, kb, b, gb, vb, sb = cell(auc, cnt, present, nfs, cb, mb)
    common = [k for k in ka if k in kb]
    ia = [ka.index(k) for k in common]
    ib = [kb.index(k) for k in common]
    d = b[ib] - a[ia]
    J = len(d)
    # test/train ratio of the condition b: n_val / n_train per fold, averaged
    ratio = np.mean([(cnt[cb, mb, k, 0] + cnt[cb, mb, k, 1]) / cnt[cb, mb, k, 2] for k in common])
    t = d.mean() / np.sqrt((1 / J + ratio) * d.var(ddof=1))
    p = 2 * scipy.stats.t.sf(abs(t), J - 1)
    return [J, d.mean(), np.nanmean(gb[ib] - ga[ia]), np.nanmean(vb[ib] - va[ia]), ratio, t, J - 1, p,
            np.nanmean(sb[ib] - sa[ia])]


def main(d):
    auc, cnt, present, nfs = table()
    t = {"in/auc": auc, "in/count": cnt, "in/present": present, "in/nfake_source": nfs}
    rows = []
    for c in range(2):
        for m in range(2):
            v = cell(auc, cnt, present, nfs, c, m)[0]
            t[f"cell/{C[c]}/{M[m]}"] = np.array(v, dtype=np.float64)
    for m in range(2):
        t[f"cmp/{M[m]}/B-A"] = np.array(compare(auc, cnt, present, nfs, 0, m, 1, m), dtype=np.float64)
    # one table, one family: Holm over its two comparisons (B vs A per model)
    holm = multipletests([t[f"cmp/{M[m]}/B-A"][7] for m in range(2)], 0.05, method="holm")[1]
    fp = lambda p: ("%.1e" if p < 0.001 else "%.3f") % p
    for m in range(2):
        for c in range(2):  # the table's order: model, then condition
            v = t[f"cell/{C[c]}/{M[m]}"]
            rows.append("| %s | %s | val | %d | %.3f ± %.3f | [%.3f, %.3f] | NA | NA | NA | [NA, NA] | NA ± NA"
                        " | NA | NA | %.3f | %+.3f | %.3f | %.3f | %.3f | %.4f | %.4f |"
                        % (M[m], C[c], v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[8], v[9], v[10], v[7],
                           v[11]))
        v = t[f"cmp/{M[m]}/B-A"]
        rows.append("| %s | A | B | %d | %+.3f | %s (%s) | NA | NA | NA | NA | %+.3f | %+.4f | %+.4f |"
                    % (M[m], v[0], v[1], fp(v[7]), fp(holm[m]), v[2], v[3], v[8]))
    t["cmp/A/m1-m0"] = np.array(compare(auc, cnt, present, nfs, 0, 0, 0, 1), dtype=np.float64)
    stio.save(d + "/report.safetensors", t, {"md_rows": "\n".join(rows)})


if __name__ == "__main__":
    main(sys.argv[1])
