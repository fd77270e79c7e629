"""eval_metrics: reference values for lib/eval (t_eval.c).

Writes DIR/metrics.safetensors (classification metrics from scikit-learn,
BCE-with-logits from PyTorch, ECE and reliability bins from the numpy code of
Guo et al.'s definition) and DIR/stats.safetensors (Student-t, normal and
incomplete beta from scipy; fold summaries from scipy.stats.t.interval and
ttest_rel; the Nadeau-Bengio corrected t-test and DeLong's test written here
from the papers' formulas with numpy). Seeded; float64 throughout.
"""
import os
import sys
import warnings

import mpmath as mp
import numpy as np
import scipy.special
import scipy.stats
import sklearn.metrics as skm
import torch

sys.path.insert(0, os.path.dirname(__file__))
import stio  # noqa: E402

rng = np.random.default_rng(20240605)
NBINS = 15


def ece_ref(p, y):
    """Guo et al. 2017: confidence of the predicted class, 15 equal bins (lo, hi]."""
    pred = (p >= 0.5).astype(np.int64)
    conf = np.where(pred == 1, p, 1 - p)
    edges = np.linspace(0, 1, NBINS + 1)
    bins, ece = np.zeros((NBINS, 3)), 0.0
    for b in range(NBINS):
        inb = (conf > edges[b]) & (conf <= edges[b + 1])
        if b == 0:
            inb |= conf == 0
        c = int(inb.sum())
        if c:
            mc, acc = conf[inb].mean(), (pred[inb] == y[inb]).mean()
            ece += c / len(p) * abs(acc - mc)
            bins[b] = [c, mc, acc]
    return ece, bins


def metric_ref(p, y):
    """[auc, accuracy, precision, recall, f1, log_loss, ece, tp, fp, tn, fn]."""
    pred = (p >= 0.5).astype(np.int64)
    try:
        auc = skm.roc_auc_score(y, p)
    except ValueError:  # one class
        auc = np.nan
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    ece, _ = ece_ref(p, y)
    return np.array([
        auc, skm.accuracy_score(y, pred),
        skm.precision_score(y, pred, zero_division=0, labels=[0, 1]),
        skm.recall_score(y, pred, zero_division=0, labels=[0, 1]),
        skm.f1_score(y, pred, zero_division=0, labels=[0, 1]),
        skm.log_loss(y, p, labels=[0, 1]), ece, tp, fp, tn, fn], dtype=np.float64)


def cases():
    """(name, scores, labels, sources): sources 0 = real, 1..3 = fake sources."""
    out = []

    def add(name, p, y, src=None):
        p = np.asarray(p, dtype=np.float64)
        y = np.asarray(y, dtype=np.uint8)
        if src is None:
            src = np.where(y == 1, rng.integers(1, 4, len(y)), 0)
        out.append((name, p, y, np.asarray(src, dtype=np.int32)))

    for n in (2, 3, 5, 10, 50, 200, 1000, 5000):
        y = rng.integers(0, 2, n)
        y[0], y[-1] = 0, 1
        add(f"random n={n}", rng.random(n), y)
    for n in (20, 300, 4000):  # informative scores
        y = rng.integers(0, 2, n)
        add(f"separable-ish n={n}", 1 / (1 + np.exp(-(2 * y - 1) * 1.5 - rng.normal(size=n))), y)
    for dec in (0, 1, 2):  # heavy ties
        y = rng.integers(0, 2, 500)
        add(f"rounded to {dec} decimals", np.round(rng.beta(0.5 + y, 1.5 - y), dec), y)
    y = rng.integers(0, 2, 300)
    add("three values 0 0.5 1", rng.choice([0.0, 0.5, 1.0], 300), y)
    add("all scores equal", np.full(40, 0.3), rng.integers(0, 2, 40) | np.eye(1, 40, 0, dtype=int)[0])
    add("perfect", np.r_[rng.random(30) * 0.4, 0.6 + rng.random(30) * 0.4], np.r_[np.zeros(30), np.ones(30)])
    add("inverted", np.r_[0.6 + rng.random(30) * 0.4, rng.random(30) * 0.4], np.r_[np.zeros(30), np.ones(30)])
    y = np.zeros(1000, dtype=int)
    y[rng.choice(1000, 3, replace=False)] = 1
    add("imbalance 3/1000", rng.random(1000), y)
    y = np.ones(500, dtype=int)
    y[:2] = 0
    add("imbalance 2 reals", rng.random(500), y)
    add("one class fake", rng.random(20), np.ones(20))
    add("one class real", rng.random(20), np.zeros(20))
    add("single row", [0.7], [1])
    p = rng.random(200)
    p[:20], p[20:40], p[40:60] = 0.0, 1.0, 0.5
    add("exact 0, 1 and 0.5 (clipping, threshold tie)", p, rng.integers(0, 2, 200))
    add("float32 scores", rng.random(800).astype(np.float32).astype(np.float64), rng.integers(0, 2, 800))
    y = rng.integers(0, 2, 300)
    src = np.where(y == 1, rng.choice([1, 3], 300), 0)  # no fakes of source 2
    add("a source without fakes", rng.random(300), y, src)
    return out


def roc_arr(p, y, drop):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fpr, tpr, thr = skm.roc_curve(y, p, drop_intermediate=drop)
    return np.stack([fpr, tpr, thr])


def metrics_file(path):
    t = {}
    cs = cases()
    for k, (name, p, y, src) in enumerate(cs):
        t[f"c{k}/score"], t[f"c{k}/label"], t[f"c{k}/source"] = p, y, src
        t[f"c{k}/ref"] = metric_ref(p, y)
        t[f"c{k}/bins"] = ece_ref(p, y)[1]
        if 0 < y.sum() < len(y):
            t[f"c{k}/roc"] = roc_arr(p, y, False)
            t[f"c{k}/roc_drop"] = roc_arr(p, y, True)
        per = []
        for s in (1, 2, 3):
            keep = (y == 0) | (src == s)
            if not keep.any():  # no rows at all: the C side must refuse
                per.append(np.r_[np.full(11, np.nan), 0, 0])
                continue
            per.append(np.r_[metric_ref(p[keep], y[keep]), (y[keep] == 0).sum(), (y[keep] == 1).sum()])
        t[f"c{k}/per_source"] = np.array(per)
        x = torch.tensor(rng.normal(size=len(y)) * 4, dtype=torch.float64)
        x[:1] = 800.0 if len(y) > 1 else x[:1]
        t[f"c{k}/logit"] = x.numpy()
        t[f"c{k}/bce"] = np.array([torch.nn.BCEWithLogitsLoss()(x, torch.tensor(y, dtype=torch.float64)).item()])
        # roc_auc_score is the average-rank (Mann-Whitney) AUC: check sklearn against scipy.
        if 0 < y.sum() < len(y):
            r = scipy.stats.rankdata(p)
            n1, n0 = y.sum(), len(y) - y.sum()
            mw = (r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
            assert abs(mw - t[f"c{k}/ref"][0]) < 1e-12, name
    stio.save(path, t, {"ncases": len(cs), "names": "|".join(c[0] for c in cs)})


def delong_ref(a, b, y):
    """DeLong et al. 1988 from the structural components, O(n^2)."""
    out = []
    V10, V01, aucs = [], [], []
    for s in (a, b):
        X, Y = s[y == 1], s[y == 0]
        psi = (X[:, None] > Y[None, :]) + 0.5 * (X[:, None] == Y[None, :])
        V10.append(psi.mean(axis=1))
        V01.append(psi.mean(axis=0))
        aucs.append(psi.mean())
        assert abs(psi.mean() - skm.roc_auc_score(y, s)) < 1e-12
    m, n = (y == 1).sum(), (y == 0).sum()
    S = np.cov(np.array(V10)) / m + np.cov(np.array(V01)) / n
    v = S[0, 0] + S[1, 1] - 2 * S[0, 1]
    z = (aucs[0] - aucs[1]) / np.sqrt(v) if v > 0 else np.nan
    p = 2 * scipy.stats.norm.sf(abs(z)) if v > 0 else np.nan
    h = scipy.stats.norm.ppf(0.975) * np.sqrt(S[0, 0])
    out = [aucs[0], aucs[1], S[0, 0], S[1, 1], S[0, 1], z, p,
           max(0.0, aucs[0] - h), min(1.0, aucs[0] + h)]
    return np.array(out, dtype=np.float64)


def fold_ref(a, b, ratio):
    """[mean, std, lo, hi, ttest_rel t, p, NB t, NB p, var0, std0, range] for a (and a - b)."""
    J = len(a)
    lo, hi = scipy.stats.t.interval(0.95, J - 1, loc=np.mean(a), scale=scipy.stats.sem(a))
    tr = scipy.stats.ttest_rel(a, b)
    d = a - b
    cv = (1 / J + ratio) * np.var(d, ddof=1)
    tnb = np.mean(d) / np.sqrt(cv)
    pnb = 2 * scipy.stats.t.sf(abs(tnb), J - 1)
    return np.array([np.mean(a), np.std(a, ddof=1), lo, hi, tr.statistic, tr.pvalue, tnb, pnb,
                     np.var(a), np.std(a), np.ptp(a)], dtype=np.float64)


def mp_t_ppf(p, df):
    """Student-t quantile to 30 digits: root of the upper tail 0.5 I_x(df/2, 1/2)."""
    mp.mp.dps = 30
    if p == 0.5:
        return 0.0
    q, sign = (p, -1) if p < 0.5 else (1 - p, 1)
    D = mp.mpf(df)

    def sf(t):
        return mp.betainc(D / 2, mp.mpf(1) / 2, 0, D / (D + t * t), regularized=True) / 2 - q

    try:
        r = mp.findroot(sf, mp.mpf(abs(float(scipy.stats.t.ppf(p, df)))), tol=mp.mpf(10) ** -28)
    except (ValueError, ZeroDivisionError):
        return np.nan
    return sign * float(r)


def stats_file(path):
    t = {}
    ts = [-1e6, -50, -10, -3, -2, -1, -0.5, -1e-3, 0, 1e-8, 0.1, 0.7, 1, 1.96, 2.5, 4, 8, 20, 100, 1e4, 1e8]
    dfs = [0.5, 1, 2, 3, 4, 5, 9, 10, 19, 29, 49.5, 100, 1000, 1e4, 1e5, 1e7]
    g = np.array([(x, d) for x in ts for d in dfs], dtype=np.float64)
    t["t/args"] = g
    t["t/cdf"] = scipy.stats.t.cdf(g[:, 0], g[:, 1])
    t["t/sf"] = scipy.stats.t.sf(g[:, 0], g[:, 1])
    ps = [1e-12, 1e-8, 1e-5, 1e-3, 0.01, 0.025, 0.05, 0.1, 0.3, 0.5, 0.6, 0.9, 0.95, 0.975, 0.99, 0.999, 1 - 1e-6]
    q = np.array([(p, d) for p in ps for d in dfs], dtype=np.float64)
    t["ppf/args"] = q
    t["ppf/t"] = scipy.stats.t.ppf(q[:, 0], q[:, 1])
    t["ppf/norm"] = scipy.stats.norm.ppf(q[:, 0])
    # scipy 1.10's t.ppf (cephes stdtrit) is off by up to ~3e-9 relative (e.g.
    # df=29, p=0.9), so the quantile is also solved to 30 digits with mpmath
    # where mpmath's betainc converges (df <= 1000).
    mq = [(p, d, mp_t_ppf(p, d)) for p, d in q if d <= 1000]
    t["ppf/mp"] = np.array([r for r in mq if np.isfinite(r[2])], dtype=np.float64)
    zs = np.array([-40, -8, -3, -1.96, -1, 0, 0.5, 1.5, 3, 6, 10, 30], dtype=np.float64)
    t["norm/z"], t["norm/cdf"], t["norm/sf"] = zs, scipy.stats.norm.cdf(zs), scipy.stats.norm.sf(zs)
    ab = [0.5, 1, 2.5, 10, 50, 200]
    xs = [0, 1e-6, 0.01, 0.3, 0.5, 0.7, 0.99, 1]
    bi = np.array([(a, b, x) for a in ab for b in ab for x in xs], dtype=np.float64)
    t["betainc/args"], t["betainc/val"] = bi, scipy.special.betainc(bi[:, 0], bi[:, 1], bi[:, 2])

    nf = 0
    for J, ratio in ((2, 1.0), (3, 0.5), (5, 0.25), (10, 1 / 9), (10, 0.25), (30, 0.25)):
        for rep in range(2):
            a = 0.85 + 0.03 * rng.normal(size=J)
            b = a - 0.01 - 0.01 * rng.normal(size=J) * (rep + 1)
            t[f"f{nf}/a"], t[f"f{nf}/b"], t[f"f{nf}/ratio"] = a, b, np.array([ratio])
            t[f"f{nf}/ref"] = fold_ref(a, b, ratio)
            nf += 1
    nd = 0
    for n, ties in ((6, False), (12, True), (40, False), (200, True), (500, False), (1500, True)):
        y = rng.integers(0, 2, n).astype(np.uint8)
        y[:2], y[2:4] = 0, 1
        a = y * 1.0 + rng.normal(size=n)
        b = 0.6 * a + y * 0.3 + rng.normal(size=n)
        if ties:
            a, b = np.round(a, 0), np.round(b, 1)
        t[f"d{nd}/a"], t[f"d{nd}/b"], t[f"d{nd}/label"] = a, b, y
        t[f"d{nd}/ref"] = delong_ref(a, b, y)
        nd += 1
    stio.save(path, t, {"nfold": nf, "ndelong": nd})


def main():
    d = sys.argv[1]
    metrics_file(os.path.join(d, "metrics.safetensors"))
    stats_file(os.path.join(d, "stats.safetensors"))


if __name__ == "__main__":
    main()
