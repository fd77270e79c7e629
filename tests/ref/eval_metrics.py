"""eval_metrics: reference values for lib/eval (t_eval.c).

Writes DIR/metrics.safetensors (classification metrics from scikit-learn,
average precision from average_precision_score, EER from roc_curve both
interpolated and as DeepfakeBench takes it, BCE-with-logits from PyTorch, ECE
and reliability bins from the numpy code of Guo et al.'s definition) and
DIR/stats.safetensors (Student-t, normal and incomplete beta from scipy; fold
summaries from scipy.stats.t.interval and ttest_rel; the Nadeau-Bengio
corrected t-test and interval with scipy.stats.t; DeLong's test and AUC
intervals written here twice, from the O(n^2) structural components of DeLong
et al. 1988 and as Sun & Xu's fast midrank algorithm in the form of the
widely used compare_auc_delong_xu.py, which must agree; Holm's correction from
statsmodels' multipletests, cross-checked against the textbook step-down).
Seeded; float64 throughout.
"""
import os
import sys
import warnings

import mpmath as mp
import numpy as np
import scipy.interpolate
import scipy.optimize
import scipy.special
import scipy.stats
import sklearn.metrics as skm
import statsmodels.stats.multitest as smt
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


def eer_interp(fpr, tpr):
    """FPR where FNR - FPR crosses 0, linear between the two bracketing ROC points."""
    g = (1 - tpr) - fpr
    k = int(np.argmax(g <= 0))
    assert g[k] <= 0 and (k == 0 or g[k - 1] > 0)
    if g[k] == 0:
        return fpr[k]
    return fpr[k - 1] + g[k - 1] / (g[k - 1] - g[k]) * (fpr[k] - fpr[k - 1])


def rank_ref(p, y):
    """[ap, eer (interpolated), eer (DeepfakeBench: nearest ROC point)]; NaN with one class."""
    if not 0 < y.sum() < len(y):
        return np.full(3, np.nan)
    ap = skm.average_precision_score(y, p)
    fpr, tpr, _ = skm.roc_curve(y, p, drop_intermediate=False)
    eer = eer_interp(fpr, tpr)
    # Interpolation along the full curve and along the curve without its
    # collinear points agree; the crossing is the same read from the FNR side.
    fd, td, _ = skm.roc_curve(y, p)
    assert abs(eer_interp(fd, td) - eer) < 1e-12
    g = (1 - tpr) - fpr
    k = int(np.argmax(g <= 0))
    if g[k] < 0:
        fnr_x = (1 - tpr[k - 1]) + g[k - 1] / (g[k - 1] - g[k]) * (tpr[k - 1] - tpr[k])
        assert abs(fnr_x - eer) < 1e-12
    # The widely used root-finding form, brentq on interp1d of the ROC curve.
    fu, iu = np.unique(fpr, return_index=True)
    if len(fu) == len(fpr):
        br = scipy.optimize.brentq(lambda x: 1 - x - scipy.interpolate.interp1d(fpr, tpr)(x), 0, 1,
                                   xtol=1e-14)
        assert abs(br - eer) < 1e-9, (br, eer)
    # DeepfakeBench training/metrics/utils.py: sklearn's default curve, no interpolation.
    fnr = 1 - td
    near = fd[np.nanargmin(np.absolute((fnr - fd)))]
    return np.array([ap, eer, near], dtype=np.float64)


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
        t[f"c{k}/rank"] = rank_ref(p, y)
        t[f"c{k}/bins"] = ece_ref(p, y)[1]
        if 0 < y.sum() < len(y):
            t[f"c{k}/roc"] = roc_arr(p, y, False)
            t[f"c{k}/roc_drop"] = roc_arr(p, y, True)
        per = []
        for s in (1, 2, 3):
            keep = (y == 0) | (src == s)
            if not keep.any():  # no rows at all: the C side must refuse
                per.append(np.r_[np.full(11, np.nan), 0, 0, np.full(3, np.nan)])
                continue
            per.append(np.r_[metric_ref(p[keep], y[keep]), (y[keep] == 0).sum(), (y[keep] == 1).sum(),
                             rank_ref(p[keep], y[keep])])
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
    # Many small cases for AP and EER: few distinct scores (ties everywhere),
    # small n (one-class draws happen), some imbalance and larger n.
    ps, ys, off, ref = [], [], [0], []
    for i in range(600):
        n = int(rng.integers(1, 12)) if i < 200 else int(rng.integers(12, 300))
        levels = int(rng.integers(1, 8)) if i % 3 else 1000
        p = np.round(rng.random(n) * levels) / levels
        y = (rng.random(n) < rng.choice([0.05, 0.3, 0.5, 0.9])).astype(np.uint8)
        if i % 7 == 0:  # informative scores with ties
            p = np.round(np.clip(0.5 + (y - 0.5) * rng.random() + 0.3 * rng.normal(size=n), 0, 1), 1)
        ps.append(p), ys.append(y), off.append(off[-1] + n), ref.append(rank_ref(p, y))
    ref = np.array(ref)
    assert np.isnan(ref[:, 0]).sum() > 20 and (~np.isnan(ref[:, 0])).sum() > 400
    t["rk/score"], t["rk/label"] = np.concatenate(ps), np.concatenate(ys)
    t["rk/off"], t["rk/ref"] = np.array(off, dtype=np.int64), ref
    stio.save(path, t, {"ncases": len(cs), "names": "|".join(c[0] for c in cs)})


def midrank(x):
    """1-based midranks (Sun & Xu 2014; compute_midrank of compare_auc_delong_xu.py)."""
    order = np.argsort(x, kind="mergesort")
    z = x[order]
    t = np.zeros(len(x))
    i = 0
    while i < len(x):
        j = i
        while j < len(x) and z[j] == z[i]:
            j += 1
        t[i:j] = 0.5 * (i + j - 1) + 1
        i = j
    out = np.empty(len(x))
    out[order] = t
    return out


def fast_delong(scores, y):
    """Sun & Xu 2014 as compare_auc_delong_xu.py's fastDeLong: positives first,
    V01 = (TZ - TX)/n over positives, V10 = 1 - (TZ - TY)/m over negatives,
    S = cov(V01)/m + cov(V10)/n. Returns (aucs, covariance matrix)."""
    order = np.argsort(-y.astype(np.int64), kind="mergesort")
    m = int(y.sum())
    s = np.asarray(scores)[:, order]
    n = s.shape[1] - m
    tx = np.array([midrank(r[:m]) for r in s])
    ty = np.array([midrank(r[m:]) for r in s])
    tz = np.array([midrank(r) for r in s])
    aucs = tz[:, :m].sum(axis=1) / m / n - float(m + 1.0) / 2.0 / n
    v01 = (tz[:, :m] - tx) / n
    v10 = 1.0 - (tz[:, m:] - ty) / m
    return aucs, np.atleast_2d(np.cov(v01)) / m + np.atleast_2d(np.cov(v10)) / n


def delong_ref(a, b, y):
    """[auc_a, auc_b, var_a, var_b, cov, z, p, Wald lo, hi, se_a, logit lo, hi] from
    the O(n^2) structural components of DeLong et al. 1988, checked against
    the fast algorithm (1e-12) and its log10 p-value (calc_pvalue)."""
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
    fa, fS = fast_delong(np.vstack([a, b]), y)
    assert np.allclose(fa, aucs, rtol=0, atol=1e-12) and np.allclose(fS, S, rtol=1e-10, atol=1e-13), (fS, S)
    v = S[0, 0] + S[1, 1] - 2 * S[0, 1]
    z = (aucs[0] - aucs[1]) / np.sqrt(v) if v > 0 else np.nan
    p = 2 * scipy.stats.norm.sf(abs(z)) if v > 0 else np.nan
    if v > 0:
        lv = np.array([[1, -1]]) @ fS @ np.array([[1, -1]]).T
        log10p = np.log10(2) + scipy.stats.norm.logsf(abs(aucs[0] - aucs[1]) / np.sqrt(lv[0, 0])) / np.log(10)
        assert abs(10 ** log10p - p) <= 1e-9 * p + 1e-300, (10 ** log10p, p)
    zq = scipy.stats.norm.ppf(0.975)
    h = zq * np.sqrt(S[0, 0])
    A = aucs[0]
    if 0 < A < 1:
        lg, hl = np.log(A / (1 - A)), zq * np.sqrt(S[0, 0]) / (A * (1 - A))
        llo, lhi = scipy.special.expit(lg - hl), scipy.special.expit(lg + hl)
    else:
        llo = lhi = np.nan
    out = [aucs[0], aucs[1], S[0, 0], S[1, 1], S[0, 1], z, p,
           max(0.0, aucs[0] - h), min(1.0, aucs[0] + h), np.sqrt(S[0, 0]), llo, lhi]
    return np.array(out, dtype=np.float64)


def holm_ref(p, alpha):
    """statsmodels multipletests(method="holm"), checked against the textbook step-down."""
    rej, adj, _, _ = smt.multipletests(p, alpha=alpha, method="holm")
    m = len(p)
    o = np.argsort(p, kind="mergesort")
    tadj, trej, run, going = np.empty(m), np.zeros(m, bool), 0.0, True
    for j, i in enumerate(o):
        run = max(run, (m - j) * p[i])
        tadj[i] = min(1.0, run)
        going = going and p[i] <= alpha / (m - j)
        trej[i] = going
    assert np.array_equal(tadj, adj) and np.array_equal(trej, rej), (p, adj, tadj, rej, trej)
    return adj, rej


def fold_ref(a, b, ratio):
    """[mean, std, lo, hi, ttest_rel t, p, NB t, NB p, var0, std0, range, NB lo, hi,
    clipped NB lo, hi] for a (and a - b)."""
    J = len(a)
    lo, hi = scipy.stats.t.interval(0.95, J - 1, loc=np.mean(a), scale=scipy.stats.sem(a))
    tr = scipy.stats.ttest_rel(a, b)
    d = a - b
    cv = (1 / J + ratio) * np.var(d, ddof=1)
    tnb = np.mean(d) / np.sqrt(cv)
    pnb = 2 * scipy.stats.t.sf(abs(tnb), J - 1)
    # Nadeau-Bengio interval: t quantile at J-1 df on the corrected variance.
    se = np.sqrt((1 / J + ratio) * np.var(a, ddof=1))
    q = scipy.stats.t.ppf(0.975, J - 1)
    nlo, nhi = np.mean(a) - q * se, np.mean(a) + q * se
    ilo, ihi = scipy.stats.t.interval(0.95, J - 1, loc=np.mean(a), scale=se)
    assert abs(ilo - nlo) < 1e-12 and abs(ihi - nhi) < 1e-12
    # Duality with the corrected resampled t-test: each end has p = 0.05.
    if se > 0:
        pe = 2 * scipy.stats.t.sf(abs(np.mean(a) - nlo) / se, J - 1)
        assert abs(pe - 0.05) < 1e-8, pe
    return np.array([np.mean(a), np.std(a, ddof=1), lo, hi, tr.statistic, tr.pvalue, tnb, pnb,
                     np.var(a), np.std(a), np.ptp(a), nlo, nhi, max(0.0, nlo), min(1.0, nhi)],
                    dtype=np.float64)


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
    # Metrics near the ends of [0,1] over few folds: the corrected interval
    # leaves [0,1] unless clipped (AUC near 1, EER near 0).
    clipped = [0, 0]
    for J, ratio, centre in ((3, 0.5, 0.97), (5, 0.25, 0.985), (3, 0.5, 0.03), (5, 0.25, 0.02), (10, 1 / 9, 0.99)):
        a = np.clip(centre + 0.02 * rng.normal(size=J), 0, 1)
        b = np.clip(a - 0.01 * rng.normal(size=J), 0, 1)
        t[f"f{nf}/a"], t[f"f{nf}/b"], t[f"f{nf}/ratio"] = a, b, np.array([ratio])
        r = fold_ref(a, b, ratio)
        clipped[0] += r[11] < 0
        clipped[1] += r[12] > 1
        t[f"f{nf}/ref"] = r
        nf += 1
    assert clipped[0] >= 1 and clipped[1] >= 2, clipped
    nd = 0
    dcases = [(6, False, 0.5, 1.0), (12, True, 0.5, 1.0), (40, False, 0.5, 1.0), (200, True, 0.5, 1.0),
              (500, False, 0.5, 1.0), (1500, True, 0.5, 1.0)]
    for i in range(40):  # random sizes, prevalences, separations and tie levels
        dcases.append((int(rng.integers(5, 400)), i % 2 == 0, float(rng.choice([0.1, 0.3, 0.5, 0.8])),
                       float(rng.choice([0.0, 0.5, 1.5, 3.0]))))
    for n, ties, prev, sep in dcases:
        y = (rng.random(n) < prev).astype(np.uint8)
        y[:2], y[2:4] = 0, 1
        a = y * sep + rng.normal(size=n)
        b = 0.6 * a + y * 0.3 + rng.normal(size=n)
        if ties:
            a, b = np.round(a, 0), np.round(b, 1)
        t[f"d{nd}/a"], t[f"d{nd}/b"], t[f"d{nd}/label"] = a, b, y
        t[f"d{nd}/ref"] = delong_ref(a, b, y)
        nd += 1
    hp, hoff, hadj, hrej, halpha = [], [0], [], [], []
    for i in range(200):
        m = int(rng.integers(1, 13))
        p = rng.random(m) ** 3
        if i % 4 == 1:  # ties, exact 0 and 1
            p = rng.choice([0.0, 0.001, 0.01, 0.02, 0.5, 1.0], m)
        alpha = float(rng.choice([0.05, 0.01, 0.1]))
        if i % 4 == 3:  # p exactly on a step's boundary alpha / (m - j)
            p[int(rng.integers(0, m))] = alpha / int(rng.integers(1, m + 1))
        adj, rej = holm_ref(p, alpha)
        hp.append(p), hoff.append(hoff[-1] + m), hadj.append(adj), hrej.append(rej), halpha.append(alpha)
    t["holm/p"], t["holm/off"] = np.concatenate(hp), np.array(hoff, dtype=np.int64)
    t["holm/adj"], t["holm/reject"] = np.concatenate(hadj), np.concatenate(hrej).astype(np.uint8)
    t["holm/alpha"] = np.array(halpha)
    stio.save(path, t, {"nfold": nf, "ndelong": nd, "nholm": len(halpha)})


def main():
    d = sys.argv[1]
    metrics_file(os.path.join(d, "metrics.safetensors"))
    stats_file(os.path.join(d, "stats.safetensors"))


if __name__ == "__main__":
    main()
