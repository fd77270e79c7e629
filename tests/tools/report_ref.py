"""report_ref.py: hand-made run directories for fd-report and the reference
values computed directly with scikit-learn, numpy and SciPy.

  report_ref.py make DIR         write DIR/runs/MODEL/SETTING/foldK/{preds-*.tsv,run.json}
  report_ref.py check DIR KIND STEM [ARGS]   compare fd-report's STEM.tsv / STEM.compare.tsv
  report_ref.py top DIR TOP.JSON K           section top's choice (top.json, top.mk)
  report_ref.py final DIR STEM N             section 4b-final's tables
Prints "ok" or the first mismatch."""
import json
import os
import sys

import numpy as np
import scipy.special
import scipy.stats
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from statsmodels.stats.multitest import multipletests

FOLDS = 5
SOURCES = ["inpainting", "insight", "text2img"]  # sorted, as fd-report lists them
# setting -> (strength of the signal per fake source, excluded sources)
SETTINGS = {
    "in20-128-center": ({"text2img": 1.0, "inpainting": 0.8, "insight": 0.4}, []),
    "in20-224-center": ({"text2img": 1.3, "inpainting": 1.0, "insight": 0.6}, []),
    "in20-224-center-holdout-insight": ({"text2img": 1.3, "inpainting": 1.0, "insight": 0.1},
                                        ["insight"]),
    # 2A test 1: G on letterbox (preds-matched.tsv: the same rows, the signal
    # weakened for one model), C on matched
    "in20-224-letterbox": ({"text2img": 2.2, "inpainting": 2.0, "insight": 1.8}, []),
    "in20-224-matched": ({"text2img": 0.9, "inpainting": 0.7, "insight": 0.5}, []),
}
# AUC_G(matched): the letterbox signal times this, per model (a drop for one)
MATCHED_KEEP = {"simplecnn": 0.3, "resnet18": 1.0}
MODELS = {"simplecnn": 0.0, "resnet18": 0.3}


def preds(rng, n_real, n_fake, strength, shift, base=None):
    """Rows (source, label, score) with fakes shifted by strength + shift; base:
    a per-row latent shared by every model scoring the same rows (the test set)."""
    rows = [("wiki", 0, rng.normal()) for _ in range(n_real)]
    for s in ["text2img", "inpainting", "insight"]:
        rows += [(s, 1, rng.normal(strength[s] + shift)) for _ in range(n_fake)]
    if base is not None:
        rows = [(s, l, 0.5 * x + b) for (s, l, x), b in zip(rows, base)]
    # scores in [0,1] with a few ties (rounded to 3 decimals)
    return [(s, l, round(float(1 / (1 + np.exp(-x))), 3)) for s, l, x in rows]


TEST_REAL, TEST_FAKE = 45, 15  # the test set: the same rows in every run


def write(path, rows, prefix):
    """Row i is PREFIX/i.jpg: the same path for the same row of the same pack."""
    with open(path, "w") as f:
        f.write("path\tsource\tlabel\tfold\tscore\tlogit\n")
        for i, (s, l, p) in enumerate(rows):
            logit = np.log(p / (1 - p)) if 0 < p < 1 else 0.0
            f.write(f"{prefix}/{i}.jpg\t{s}\t{l}\t0\t{p}\t{logit:.6f}\n")


def make(d):
    rng = np.random.default_rng(7)
    base = rng.normal(0, 1, TEST_REAL + 3 * TEST_FAKE)
    for model, shift in MODELS.items():
        for setting, (strength, excl) in SETTINGS.items():
            for k in range(FOLDS):
                r = os.path.join(d, "runs", model, setting, f"fold{k}")
                os.makedirs(r)
                n = 20 + k  # fold sizes differ: the test/train ratio comes from counts
                write(os.path.join(r, "preds-val.tsv"), preds(rng, 3 * n, n, strength, shift), f"f{k}")
                tr = preds(rng, 12 * n, 4 * n, strength, shift + 0.5)
                write(os.path.join(r, "preds-train.tsv"), tr, f"tr{k}")
                write(os.path.join(r, "preds-test.tsv"),
                      preds(rng, TEST_REAL, TEST_FAKE, strength, shift, base), "test")
                if setting == "in20-224-center":
                    weak = {s: v * 0.3 for s, v in strength.items()}
                    write(os.path.join(r, "preds-letterbox.tsv"), preds(rng, 3 * n, n, weak, shift), f"f{k}")
                if setting == "in20-224-letterbox":
                    kept = {s: v * MATCHED_KEEP[model] for s, v in strength.items()}
                    write(os.path.join(r, "preds-matched.tsv"), preds(rng, 3 * n, n, kept, shift), f"f{k}")
                cfg = {"model": model, "seed": 42}
                if excl:
                    cfg["exclude_sources"] = excl
                with open(os.path.join(r, "run.json"), "w") as f:
                    json.dump({"tool": "fd-train", "fold": k, "config": cfg}, f)


def read(path):
    with open(path) as f:
        head = f.readline().rstrip("\n").split("\t")
        return [dict(zip(head, l.rstrip("\n").split("\t"))) for l in f]


def cell(d, model, setting, ev, excl=()):
    """Per-fold AUC lists of a run set, computed with sklearn."""
    out = {"all": [], "train": [], "var": [], "sd": [], "n_val": [], "n_train": [], "in": [], "out": [],
           "ap": [], "eer": [], "gap": [], "test": [], "test_scores": [], "val_rows": {},
           "val_src": {}}
    for s in SOURCES:
        out[s] = []
    for k in range(FOLDS):
        r = os.path.join(d, "runs", model, setting, f"fold{k}")
        v = read(os.path.join(r, f"preds-{ev}.tsv"))
        t = read(os.path.join(r, "preds-train.tsv"))
        t = [x for x in t if not (x["label"] == "1" and x["source"] in excl)]
        y = np.array([int(x["label"]) for x in v])
        p = np.array([float(x["score"]) for x in v])
        src = np.array([x["source"] for x in v])
        out["all"].append(roc_auc_score(y, p))
        out["ap"].append(average_precision_score(y, p))
        out["eer"].append(eer_interp(y, p))
        out["train"].append(roc_auc_score([int(x["label"]) for x in t], [float(x["score"]) for x in t]))
        for x in v:
            out["val_rows"][x["path"]] = (int(x["label"]), float(x["score"]))
            out["val_src"][x["path"]] = x["source"]
        te = read(os.path.join(r, "preds-test.tsv"))
        out["test_y"] = np.array([int(x["label"]) for x in te])
        out["test_src"] = np.array([x["source"] for x in te])
        out["test_scores"].append(np.array([float(x["score"]) for x in te]))
        out["test"].append(roc_auc_score(out["test_y"], out["test_scores"][-1]))
        per = []
        for s in SOURCES:
            m = (y == 0) | (src == s)
            per.append(roc_auc_score(y[m], p[m]))
            out[s].append(per[-1])
        out["var"].append(np.var(per))
        out["sd"].append(np.std(per))
        out["gap"].append(out["train"][-1] - out["all"][-1])
        if excl:
            m = (y == 0) | ~np.isin(src, list(excl))
            out["in"].append(roc_auc_score(y[m], p[m]))
            out["gap"][-1] = out["train"][-1] - out["in"][-1]  # the same sources on both sides
            m = (y == 0) | np.isin(src, list(excl))
            out["out"].append(roc_auc_score(y[m], p[m]))
        out["n_val"].append(len(v))
        out["n_train"].append(len(t))
    return out


def eer_interp(y, s):
    """EER where FNR - FPR crosses 0 on sklearn's full ROC, linearly interpolated."""
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    g = 1 - tpr - fpr
    k = int(np.argmax(g <= 0))
    return fpr[k] if g[k] == 0 else fpr[k - 1] + g[k - 1] / (g[k - 1] - g[k]) * (fpr[k] - fpr[k - 1])


def delong(y, *scores):
    """DeLong et al. 1988 from the structural components, O(n^2) in numpy:
    AUCs and their covariance matrix."""
    y = np.asarray(y)
    aucs, v10, v01 = [], [], []
    for s in scores:
        s = np.asarray(s)
        x, z = s[y == 1], s[y == 0]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        aucs.append(psi.mean())
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    m, n = (y == 1).sum(), (y == 0).sum()
    S = np.atleast_2d(np.cov(np.array(v10))) / m + np.atleast_2d(np.cov(np.array(v01))) / n
    return np.array(aucs), S


def delong_p(y, a, b):
    """Two-sided p of DeLong's test AUC_b = AUC_a on the same rows, and AUC_b - AUC_a."""
    auc, S = delong(y, b, a)
    z = (auc[0] - auc[1]) / np.sqrt(S[0, 0] + S[1, 1] - 2 * S[0, 1])
    return auc[0] - auc[1], 2 * scipy.stats.norm.sf(abs(z))


def logit_ci(y, s):
    auc, S = delong(y, s)
    a, se = auc[0], np.sqrt(S[0, 0])
    z = scipy.stats.norm.ppf(0.975)
    h = z * se / (a * (1 - a))
    return a, scipy.special.expit(scipy.special.logit(a) - h), scipy.special.expit(scipy.special.logit(a) + h)


def ensemble(c):
    """The fold models' test scores averaged per row."""
    return np.mean(np.array(c["test_scores"]), axis=0)


def pooled(ca, cb):
    """Out-of-fold validation rows scored by both sides: labels, scores a, b."""
    keys = sorted(set(ca["val_rows"]) & set(cb["val_rows"]))
    return (np.array([ca["val_rows"][k][0] for k in keys]), np.array([ca["val_rows"][k][1] for k in keys]),
            np.array([cb["val_rows"][k][1] for k in keys]))


def nb(a, b, ratio):
    """Nadeau-Bengio corrected resampled t-test of b - a, directly in numpy/SciPy."""
    d = np.asarray(b) - np.asarray(a)
    J = len(d)
    t = d.mean() / np.sqrt((1 / J + ratio) * d.var(ddof=1))
    return t, 2 * scipy.stats.t.sf(abs(t), J - 1)


def delong_pair(a, b, y):
    """DeLong et al. (1988), eq. of the structural components written out
    directly (O(m n) kernel), for AUC_a - AUC_b on paired scores."""
    a, b, y = np.asarray(a), np.asarray(b), np.asarray(y)
    comps = []
    for s in (a, b):
        x, r = s[y == 1], s[y == 0]
        psi = (x[:, None] > r[None, :]) + 0.5 * (x[:, None] == r[None, :])
        comps.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    m, n = (y == 1).sum(), (y == 0).sum()
    s10 = np.cov(np.vstack([comps[0][1], comps[1][1]]), ddof=1)
    s01 = np.cov(np.vstack([comps[0][2], comps[1][2]]), ddof=1)
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    z = (comps[0][0] - comps[1][0]) / np.sqrt(var)
    return comps[0][0], comps[1][0], z, 2 * scipy.stats.norm.sf(abs(z))


def check_geometry(d, rows, m):
    """The geometry test row of model m against numpy/SciPy/sklearn."""
    row = [r for r in rows if r["model"] == m]
    if len(row) != 1:
        print(f"geometry: {len(row)} rows for {m}")
        sys.exit(0)
    row = row[0]
    a = cell(d, m, "in20-224-letterbox", "val")
    b = cell(d, m, "in20-224-letterbox", "matched")
    c = cell(d, m, "in20-224-matched", "val")
    dl = np.array(b["all"]) - a["all"]
    J, ratio = len(dl), ratio_of(a)
    half = scipy.stats.t.ppf(0.975, J - 1) * np.sqrt((1 / J + ratio) * dl.var(ddof=1))
    t, p = nb(a["all"], b["all"], ratio)
    close(f"{m} geometry delta", row["delta"], dl.mean())
    close(f"{m} geometry ci_lo", row["ci_lo"], max(dl.mean() - half, -1))
    close(f"{m} geometry ci_hi", row["ci_hi"], min(dl.mean() + half, 1))
    close(f"{m} geometry p", row["p"], p, 1e-12)
    close(f"{m} geometry auc_c", row["auc_c_matched"], np.mean(c["all"]))
    lb, mt, y = [], [], []
    for k in range(FOLDS):
        r = os.path.join(d, "runs", m, "in20-224-letterbox", f"fold{k}")
        v, w = read(os.path.join(r, "preds-val.tsv")), read(os.path.join(r, "preds-matched.tsv"))
        lb += [float(x["score"]) for x in v]
        mt += [float(x["score"]) for x in w]
        y += [int(x["label"]) for x in v]
    am, al, z, pd = delong_pair(mt, lb, y)
    close(f"{m} pooled auc letterbox", row["pooled_auc_letterbox"], roc_auc_score(y, lb))
    close(f"{m} pooled auc matched", row["pooled_auc_matched"], am)
    close(f"{m} delong z", row["delong_z"], z, 1e-7)
    close(f"{m} delong p", row["delong_p"], pd, 1e-9)
    if int(row["pooled_rows"]) != len(y):
        print(f"{m} pooled rows {row['pooled_rows']}, reference {len(y)}")
        sys.exit(0)
    verdict = ("geometry shortcut found" if dl.mean() < -0.05 and pd < 0.05
               else "no evidence of a geometry shortcut")
    if row["verdict"] != verdict:
        print(f"{m} verdict '{row['verdict']}', reference '{verdict}'")
        sys.exit(0)
    return verdict


def close(what, got, exp, tol=1e-9):
    got = float(got)
    if not (abs(got - exp) <= tol + 1e-9 * abs(exp)):
        print(f"{what}: fd-report {got!r}, reference {exp!r}")
        sys.exit(0)


def check_summary(rows, model, cond, ev, c, evonly=False):
    row = [r for r in rows if r["model"] == model and r["condition"] == cond and r["eval"] == ev]
    if len(row) != 1:
        print(f"summary: {len(row)} rows for {model} {cond} {ev}")
        sys.exit(0)
    row = row[0]
    a = np.array(c["all"])
    n = len(a)
    ratio = ratio_of(c)  # Nadeau-Bengio: (1/J + n_test/n_train) var, then clipped to [0, 1]
    lo, hi = scipy.stats.t.interval(0.95, n - 1, loc=a.mean(), scale=np.sqrt((1 / n + ratio) * a.var(ddof=1)))
    lo, hi = max(lo, 0.0), min(hi, 1.0)
    close(f"{model} {cond} {ev} auc_mean", row["auc_mean"], a.mean())
    close(f"{model} {cond} {ev} auc_std", row["auc_std"], a.std(ddof=1))
    close(f"{model} {cond} {ev} ci_lo", row["ci_lo"], lo)
    close(f"{model} {cond} {ev} ci_hi", row["ci_hi"], hi)
    if evonly:  # an evaluation-only row: no train AUC, no gap
        if (row["train_auc"], row["gap"]) != ("NA", "NA"):
            print(f"{model} {cond} {ev}: train AUC and gap shown ({row['train_auc']}, {row['gap']})")
            sys.exit(0)
    else:
        close(f"{model} {cond} {ev} train_auc", row["train_auc"], np.mean(c["train"]))
        close(f"{model} {cond} {ev} gap", row["gap"], np.mean(c["gap"]))
    close(f"{model} {cond} {ev} source var", row["source_auc_var"], np.mean(c["var"]))
    close(f"{model} {cond} {ev} source std", row["source_auc_std"], np.mean(c["sd"]))
    close(f"{model} {cond} {ev} AP", row["ap_mean"], np.mean(c["ap"]))
    close(f"{model} {cond} {ev} EER", row["eer_mean"], np.mean(c["eer"]))
    if ev == "val":
        y, sc = c["test_y"], ensemble(c)
        auc, lo, hi = logit_ci(y, sc)
        close(f"{model} {cond} test rows", row["test_rows"], len(y))
        close(f"{model} {cond} test AUC (ensemble)", row["test_auc"], roc_auc_score(y, sc))
        close(f"{model} {cond} test AUC DeLong", row["test_auc"], auc)
        close(f"{model} {cond} test CI lo", row["test_ci_lo"], lo)
        close(f"{model} {cond} test CI hi", row["test_ci_hi"], hi)
        close(f"{model} {cond} test AP", row["test_ap"], average_precision_score(y, sc))
        close(f"{model} {cond} test EER", row["test_eer"], eer_interp(y, sc))
        close(f"{model} {cond} test fold mean", row["test_auc_fold_mean"], np.mean(c["test"]))
        close(f"{model} {cond} test fold sd", row["test_auc_fold_sd"], np.std(c["test"], ddof=1))
    elif row["test_auc"] != "NA":
        print(f"{model} {cond} {ev}: test AUC {row['test_auc']} on an eval of the fold")
        sys.exit(0)
    for s in SOURCES:
        close(f"{model} {cond} {ev} auc_{s}", row[f"auc_{s}"], np.mean(c[s]))


def check_cmp(rows, model, base, cond, a, b, ratio, test=True):
    row = [r for r in rows if r["model"] == model and r["baseline"] == base and r["condition"] == cond]
    if len(row) != 1:
        print(f"compare: {len(row)} rows for {model} {base} {cond}")
        sys.exit(0)
    row = row[0]
    t, p = nb(a["all"], b["all"], ratio)
    close(f"{model} {cond} - {base} delta", row["delta_auc"], np.mean(np.array(b["all"]) - a["all"]))
    close(f"{model} {cond} - {base} ratio", row["test_train_ratio"], ratio)
    close(f"{model} {cond} - {base} t", row["t"], t)
    close(f"{model} {cond} - {base} p", row["p"], p, 1e-12)
    close(f"{model} {cond} - {base} delta gap", row["delta_gap"],
          np.mean((np.array(b["train"]) - b["all"]) - (np.array(a["train"]) - a["all"])))
    close(f"{model} {cond} - {base} delta sd", row["delta_source_sd"], np.mean(np.array(b["sd"]) - a["sd"]))
    y, sa, sb = pooled(a, b)
    d, p = delong_p(y, sa, sb)
    close(f"{model} {cond} - {base} DeLong val rows", row["delong_val_rows"], len(y))
    close(f"{model} {cond} - {base} DeLong val delta", row["delong_val_delta"], d)
    close(f"{model} {cond} - {base} DeLong val p", row["delong_val_p"], p, 1e-12)
    if test:
        d, p = delong_p(a["test_y"], ensemble(a), ensemble(b))
        close(f"{model} {cond} - {base} DeLong test delta", row["delong_test_delta"], d)
        close(f"{model} {cond} - {base} DeLong test p", row["delong_test_p"], p, 1e-12)
    elif row["delong_test_p"] != "NA":
        print(f"{model} {cond} - {base}: a test comparison between evals of one fold")
        sys.exit(0)


def check_holm(rows):
    """Holm over each p column of the table (statsmodels), undefined left out."""
    for col in ("p", "delong_val_p", "delong_test_p"):
        idx = [i for i, r in enumerate(rows) if r[col] != "NA"]
        if not idx:
            continue
        adj = multipletests([float(rows[i][col]) for i in idx], 0.05, method="holm")[1]
        for i, h in zip(idx, adj):
            close(f"row {i} {col} Holm", rows[i][col + "_holm" if col != "p" else "p_holm"], h, 1e-12)


def ratio_of(c):
    return float(np.mean(np.array(c["n_val"]) / np.array(c["n_train"])))


def check_md(summ, stem):
    """The Markdown Results table shows the TSV's numbers (3 decimals), column by column."""
    lines = open(stem + ".md").read().split("## Results")[1].split("\n\n")[1].split("\n")
    head = [h.strip() for h in lines[0].strip("|").split("|")]
    cols = {"AP": "ap_mean", "EER": "eer_mean", "Test AUC (ensemble)": "test_auc", "Test AP": "test_ap",
            "Test EER": "test_eer", "Train AUC": "train_auc"}
    n = 0
    for line in lines[2:]:
        cell = dict(zip(head, [c.strip() for c in line.strip("|").split("|")]))
        row = [r for r in summ if r["model"] == cell["Model"] and r["condition"] == cell["Condition"]
               and r["eval"] == cell["Eval"]][0]
        for h, c in cols.items():
            want = "NA" if row[c] == "NA" else "%.3f" % float(row[c])
            # an evaluation-only row shows "-" where the TSV says NA (no train AUC of its own)
            if h == "Train AUC" and want == "NA" and cell[h] == "-" and row["eval"] not in ("val", "full"):
                n += 1
                continue
            if cell[h] != want:
                print(f"markdown {cell['Model']} {cell['Condition']} {h}: {cell[h]}, TSV {want}")
                sys.exit(0)
            n += 1
    if n == 0:
        print("markdown: no rows checked")
        sys.exit(0)


def check(d, kind, stem):
    summ = read(stem + ".tsv")
    cmp_ = read(stem + ".compare.tsv")
    check_md(summ, stem)
    if kind == "resolution":  # 128=..., 224=...
        for m in MODELS:
            a = cell(d, m, "in20-128-center", "val")
            b = cell(d, m, "in20-224-center", "val")
            check_summary(summ, m, "128", "val", a)
            check_summary(summ, m, "224", "val", b)
            check_cmp(cmp_, m, "128", "224", a, b, ratio_of(b))
    elif kind == "geometry":  # letterbox=G runs (evals val, matched), matched=C runs
        verdicts = set()
        for m in MODELS:
            check_summary(summ, m, "letterbox", "val", cell(d, m, "in20-224-letterbox", "val"))
            check_summary(summ, m, "letterbox", "matched", cell(d, m, "in20-224-letterbox", "matched"),
                          evonly=True)
            check_summary(summ, m, "matched", "val", cell(d, m, "in20-224-matched", "val"))
            verdicts.add(check_geometry(d, cmp_, m))
        if len(verdicts) != 2:  # the table exercises both verdicts
            print(f"geometry: verdicts {verdicts}")
            sys.exit(0)
    elif kind == "models":  # phase1: resnet18 vs simplecnn at 128
        a = cell(d, "simplecnn", "in20-128-center", "val")
        b = cell(d, "resnet18", "in20-128-center", "val")
        check_summary(summ, "simplecnn", "baseline", "val", a)
        row = [r for r in cmp_ if r["model_b"] == "resnet18"][0]
        t, p = nb(a["all"], b["all"], ratio_of(b))
        close("resnet18 - simplecnn p", row["p"], p, 1e-12)
        d, p = delong_p(a["test_y"], ensemble(a), ensemble(b))
        close("resnet18 - simplecnn DeLong test p", row["delong_test_p"], p, 1e-12)
    elif kind == "holdout":
        for m in MODELS:
            c = cell(d, m, "in20-224-center-holdout-insight", "val", ("insight",))
            row = [r for r in cmp_ if r["model"] == m and r["condition"] == "no-insight"][0]
            if row["excluded"] != "insight":
                print(f"holdout excluded '{row['excluded']}'")
                sys.exit(0)
            close(f"{m} held-out auc", row["held_out_auc"], np.mean(c["out"]))
            close(f"{m} in-source auc", row["in_source_auc"], np.mean(c["in"]))
            t, p = nb(c["out"], c["in"], ratio_of(c))
            close(f"{m} holdout delta", row["delta"], np.mean(np.array(c["in"]) - c["out"]))
            close(f"{m} holdout p", row["p"], p, 1e-12)
            # DeLong's unpaired comparison of the pooled out-of-fold AUCs
            keys = sorted(c["val_rows"])
            y = np.array([c["val_rows"][k][0] for k in keys])
            s = np.array([c["val_rows"][k][1] for k in keys])
            src = np.array([c["val_src"][k] for k in keys])
            a_in, v_in = delong(y[(y == 0) | (src != "insight")], s[(y == 0) | (src != "insight")])
            a_out, v_out = delong(y[(y == 0) | (src == "insight")], s[(y == 0) | (src == "insight")])
            z = (a_in[0] - a_out[0]) / np.sqrt(v_in[0, 0] + v_out[0, 0])
            close(f"{m} holdout pooled delta", row["pooled_delta"], a_in[0] - a_out[0])
            close(f"{m} holdout DeLong z", row["delong_z"], z)
            close(f"{m} holdout DeLong p", row["delong_p"], 2 * scipy.stats.norm.sf(abs(z)), 1e-12)
            # 5 folds: the verdict uses the corrected t-test
            dm = np.mean(np.array(c["in"]) - c["out"])
            want = "source-specific features found" if dm > 0.05 and p < 0.05 else \
                "no evidence of source-specific features"
            if row["test"] != "corrected-t" or row["verdict"] != want:
                print(f"{m} holdout verdict: fd-report {row['test']} '{row['verdict']}', reference '{want}'")
                sys.exit(0)
            base = [r for r in cmp_ if r["model"] == m and r["condition"] == "all"][0]
            close(f"{m} baseline in-source", base["in_source_auc"],
                  np.mean(cell(d, m, "in20-224-center", "val")["all"]))
            # the test set: held-out = reals + the held-out source's fakes, ensemble scores
            y, src, sc = c["test_y"], c["test_src"], ensemble(c)
            out = (y == 0) | (src == "insight")
            close(f"{m} held-out test auc", row["held_out_test_auc"], roc_auc_score(y[out], sc[out]))
            close(f"{m} in-source test auc", row["in_source_test_auc"], roc_auc_score(y[~out | (y == 0)], sc[~out | (y == 0)]))
            # Results table: the hold-out row's gap compares the trained sources on both sides
            check_summary(summ, m, "no-insight", "val", c)
    if kind not in ("holdout", "geometry"):  # the geometry table has its own columns
        check_holm(cmp_)
    print("ok")


def check_top(d, path, k):
    """top.json: the k models with the highest mean validation AUC (sklearn),
    each at its best condition; the labels are the settings."""
    got = json.load(open(path))
    ranked = []
    for m in MODELS:
        for setting in ("in20-128-center", "in20-224-center"):
            ranked.append((np.mean(cell(d, m, setting, "val")["all"]), m, setting))
    ranked.sort(key=lambda x: -x[0])
    want = []
    for _, m, _ in ranked:
        if m not in want:
            want.append(m)
    want = want[:k]
    if got["models"] != want:
        print(f"top: models {got['models']} != {want}")
        sys.exit(0)
    for (a, m, setting), r in zip(ranked, got["ranking"]):
        if (r["model"], r["condition"]) != (m, setting):
            print(f"top: ranking {r['model']} {r['condition']} != {m} {setting}")
            sys.exit(0)
        close(f"top {m} {setting} mean", r["mean_val_auc"], a, 1e-12)
    with open(path[:-5] + ".mk") as f:
        mk = [l for l in f if not l.startswith("#")]
    if mk != [f"P4B_TOP_MODELS := {' '.join(want)}\n"]:
        print(f"top.mk: {mk}")
        sys.exit(0)
    print("ok")


def hist20(x):
    return np.histogram(x, bins=20, range=(0, 1))[0]


def check_final(d, stem, nhard):
    """4b-final: the in20-224-center runs of both models (condition full): per
    subset ensemble test AUC, DeLong logit CI, AP, EER, accuracy; pairwise DeLong
    with Holm; hard examples; confidence histograms."""
    summ, cmp_ = read(stem + ".tsv"), read(stem + ".compare.tsv")
    hard, conf = read(stem + ".hard.tsv"), read(stem + ".confidence.tsv")
    cells = {m: cell(d, m, "in20-224-center", "val") for m in MODELS}
    nchecked = 0
    for m, c in cells.items():
        y, src = c["test_y"], c["test_src"]
        sc = np.zeros(len(y))
        for s in c["test_scores"]:  # the fold models' scores, summed in fold order as fd does
            sc = sc + s
        sc = sc / len(c["test_scores"])
        paths = [f"test/{i}.jpg" for i in range(len(y))]
        for sub in ["all"] + SOURCES:
            msk = np.ones(len(y), bool) if sub == "all" else (y == 0) | (src == sub)
            row = [r for r in summ if r["model"] == m and r["subset"] == sub][0]
            auc, lo, hi = logit_ci(y[msk], sc[msk])
            close(f"{m} {sub} auc", row["auc"], roc_auc_score(y[msk], sc[msk]), 1e-12)
            close(f"{m} {sub} lo", row["auc_lo"], lo, 1e-9)
            close(f"{m} {sub} hi", row["auc_hi"], hi, 1e-9)
            close(f"{m} {sub} ap", row["ap"], average_precision_score(y[msk], sc[msk]), 1e-12)
            close(f"{m} {sub} eer", row["eer"], eer_interp(y[msk], sc[msk]), 1e-12)
            close(f"{m} {sub} acc", row["accuracy"], np.mean((sc[msk] >= 0.5) == (y[msk] == 1)), 1e-12)
            if int(row["n_real"]) != (y[msk] == 0).sum() or int(row["n_fake"]) != (y[msk] == 1).sum():
                print(f"{m} {sub}: counts {row['n_real']} {row['n_fake']}")
                sys.exit(0)
            nchecked += 1
        for s in sorted(set(src)):
            for kind, lab in (("false_positive", 0), ("false_negative", 1)):
                idx = [i for i in range(len(y)) if src[i] == s and y[i] == lab and (sc[i] >= 0.5) != lab]
                idx.sort(key=lambda i: ((-sc[i] if lab == 0 else sc[i]), paths[i]))
                want = [(paths[i], sc[i]) for i in idx[:nhard]]
                got = [(r["path"], float(r["score"])) for r in hard
                       if r["model"] == m and r["source"] == s and r["kind"] == kind]
                if [p for p, _ in got] != [p for p, _ in want] or not np.allclose([g for _, g in got], [w for _, w in want], rtol=0, atol=1e-12):
                    print(f"{m} {s} {kind}: {got[:3]} != {want[:3]}")
                    sys.exit(0)
                nchecked += len(want)
            for lab in (0, 1):
                x = sc[(src == s) & (y == lab)]
                if len(x) == 0:
                    continue
                got = [int(r["count"]) for r in conf if r["model"] == m and r["source"] == s and r["label"] == str(lab)]
                if got != list(hist20(x)):
                    print(f"{m} {s} {lab}: histogram {got} != {list(hist20(x))}")
                    sys.exit(0)
                nchecked += 1
    # the one pair: DeLong on the ensembles, Holm over one test (= p)
    a, b = list(MODELS)
    row = cmp_[0]
    ya = cells[a]["test_y"]
    ea = np.mean(np.array(cells[a]["test_scores"]), axis=0)
    eb = np.mean(np.array(cells[b]["test_scores"]), axis=0)
    delta, p = delong_p(ya, ea, eb)
    close("pair delta", row["delta"], delta, 1e-9)
    close("pair p", row["p"], p, 1e-9)
    close("pair p holm", row["p_holm"], multipletests([p], method="holm")[1][0], 1e-9)
    if len(cmp_) != 1 or nchecked < 20:
        print(f"final: {len(cmp_)} pairs, {nchecked} checks")
        sys.exit(0)
    print("ok")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    elif sys.argv[1] == "top":
        check_top(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == "final":
        check_final(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        check(sys.argv[2], sys.argv[3], sys.argv[4])
