#!/bin/bash
# eval.t: fd-eval's predictions and metrics against scikit-learn computed from
# the written scores, per-source rows, one-class subsets, another geometry,
# and bad usage.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
fd-synth -q -o D --groups 30 --fake-size 48 --real-width 48,64 --seed 5 &&
	fd-index -q --root D -o idx.tsv && fd-split -q --folds 3 --test 0.2 -o split.tsv idx.tsv &&
	fd-pack -q --root D --size 32 -o pack.safetensors split.tsv &&
	fd-pack -q --root D --size 40 --geometry letterbox -o lbox.safetensors split.tsv ||
	{ echo "Bail out! cannot make the packs"; exit 1; }
echo '{"model": "simplecnn", "epochs": 1, "batch_size": 16, "optimizer": {"lr": 0.001}}' >cfg.json
ok "train a model" fd-train -q --pack pack.safetensors --fold 0 --config "$top/configs/shared.json" --config cfg.json --threads 1 -o R

ok "score the test rows" fd-eval -q --threads 1 --model R/best.safetensors --pack pack.safetensors --only fold=test --metrics m.tsv -o p.tsv
is "preds: pack columns + score + logit" "$(head -1 p.tsv)" "$(head -1 pack.tsv)	score	logit"
is "preds: the test rows in order" "$(tail -n +2 p.tsv | cut -f1 | tr '\n' ,)" "$(awk -F'\t' 'NR>1 && $10=="test"{printf "%s,", $1}' pack.tsv)"
check() { # metrics preds: every row against sklearn
	$PY - "$1" "$2" <<'PY'
import csv, sys, numpy as np
from sklearn.metrics import roc_auc_score, accuracy_score, precision_score, recall_score, f1_score, log_loss
from sklearn.metrics import average_precision_score, roc_curve
def eer_interp(y, s):  # FNR - FPR crosses 0 between two ROC points: linear interpolation
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    g = 1 - tpr - fpr
    k = int(np.argmax(g <= 0))
    return fpr[k] if g[k] == 0 else fpr[k - 1] + g[k - 1] / (g[k - 1] - g[k]) * (fpr[k] - fpr[k - 1])
def eer_nearest(y, s):  # DeepfakeBench training/metrics/utils.py
    fpr, tpr, _ = roc_curve(y, s)
    return fpr[np.nanargmin(np.abs((1 - tpr) - fpr))]
m = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
p = list(csv.DictReader(open(sys.argv[2]), delimiter="\t"))
s = np.array([float(r["score"]) for r in p]); y = np.array([int(r["label"]) for r in p])
lg = np.array([float(r["logit"]) for r in p])
bad = []
if np.abs(1 / (1 + np.exp(-lg)) - s).max() > 1e-12: bad.append("score != sigmoid(logit)")
src = np.array([r["source"] for r in p])
for r in m:
    sel = np.ones(len(y), bool) if r["subset"] == "all" else (y == 0) | (src == r["subset"])
    ss, yy = s[sel], y[sel]
    pred = (ss >= 0.5).astype(int)
    conf = np.maximum(ss, 1 - ss); edges = np.linspace(0, 1, 16); ece = 0
    for i in range(15):
        b = (conf > edges[i]) & (conf <= edges[i + 1]) if i else (conf >= 0) & (conf <= edges[1])
        if b.any(): ece += b.sum() / len(ss) * abs((pred[b] == yy[b]).mean() - conf[b].mean())
    ref = {"n": len(yy), "n_real": int((yy == 0).sum()), "n_fake": int((yy == 1).sum()),
           "accuracy": accuracy_score(yy, pred), "precision": precision_score(yy, pred, zero_division=0),
           "recall": recall_score(yy, pred, zero_division=0), "f1": f1_score(yy, pred, zero_division=0),
           "log_loss": log_loss(yy, ss, labels=[0, 1]), "ece": ece}
    two = len(set(yy)) == 2
    ref["auc"] = roc_auc_score(yy, ss) if two else "NA"
    ref["ap"] = average_precision_score(yy, ss) if two else "NA"
    ref["eer"] = eer_interp(yy, ss) if two else "NA"
    ref["eer_nearest"] = eer_nearest(yy, ss) if two else "NA"
    for k, v in ref.items():
        if v == "NA":
            if r[k] != "NA" or not r["note"]: bad.append("%s %s: %s, want NA and a note" % (r["subset"], k, r[k]))
        elif abs(float(r[k]) - v) > 1e-9: bad.append("%s %s: %s vs %r" % (r["subset"], k, r[k], v))
print("; ".join(bad) if bad else "ok %d rows" % len(m))
PY
}
is "metrics equal scikit-learn (all + 3 sources)" "$(check m.tsv p.tsv)" "ok 4 rows"
is "metrics rows" "$(cut -f1 m.tsv | tr '\n' ,)" "subset,all,inpainting,insight,text2img,"
is "metrics columns: AP and EERs appended at the end" "$(head -1 m.tsv)" \
	"subset	n	n_real	n_fake	auc	accuracy	precision	recall	f1	log_loss	ece	note	ap	eer	eer_nearest"

ok "one-class subset" fd-eval -q --threads 1 --model R/best.safetensors --pack pack.safetensors --only label=1 --metrics m1.tsv -o p1.tsv
is "one class: AUC NA with a note, others defined" "$(check m1.tsv p1.tsv)" "ok 4 rows"
like "one class: note, AP and EERs NA" "$(sed -n 2p m1.tsv)" "	NA	.*only fake rows	NA	NA	NA$"

ok "letterboxed 40 px pack" fd-eval -q --threads 1 --model R/best.safetensors --pack lbox.safetensors --metrics m2.tsv -o p2.tsv
is "letterbox: metrics equal scikit-learn" "$(check m2.tsv p2.tsv)" "ok 4 rows"

ok "stdout" fd-eval -q --threads 1 --model R/best.safetensors --pack pack.safetensors --only fold=0 -o -
cp "$T/.out" p3.tsv
is "validation scores reproduce the log's val_auc" "$($PY -c '
import csv
from sklearn.metrics import roc_auc_score
p = list(csv.DictReader(open("p3.tsv"), delimiter="\t"))
v = float(list(csv.DictReader(open("R/log.tsv"), delimiter="\t"))[0]["val_auc"])
a = roc_auc_score([int(r["label"]) for r in p], [float(r["score"]) for r in p])
print("ok" if abs(a - v) < 1e-12 else "%r vs %r" % (a, v))')" ok

fails "missing --model" 2 "--model is required" fd-eval --pack pack.safetensors -o x.tsv
fails "missing checkpoint" 1 "nothere.safetensors" fd-eval --model nothere.safetensors --arch simplecnn --pack pack.safetensors -o x.tsv
no_file "no preds after an error" x.tsv
fails "bad --normalize" 2 "--normalize" fd-eval --model R/best.safetensors --pack pack.safetensors --normalize 1,2 -o x.tsv
fails "--only on a missing column" 1 "missing column 'nope'" fd-eval --model R/best.safetensors --pack pack.safetensors --only nope=1 -o x.tsv
fails "no rows selected" 1 "no row is selected" fd-eval --model R/best.safetensors --pack pack.safetensors --only fold=9 -o x.tsv
fails "wrong architecture" 1 "simplecnn checkpoint, not resnet18" fd-eval --model R/best.safetensors --arch resnet18 --pack pack.safetensors -o x.tsv
fails "--device cuda: refused" 1 "--device cuda: (this build of fd has no cuda backend|cuda: cudaGetDeviceCount: )" fd-eval --model R/best.safetensors --pack pack.safetensors --device cuda --metrics xm.tsv -o x.tsv
fails "--device tpu: usage" 2 "'tpu' is not a device" fd-eval --model R/best.safetensors --pack pack.safetensors --device tpu -o x.tsv
no_file "no preds after errors" x.tsv
no_file "no metrics after --device cuda" xm.tsv
ok "--device cpu" fd-eval -q --threads 1 --device cpu --model R/best.safetensors --pack pack.safetensors --only fold=test -o dc.tsv
is "--device cpu: the same scores" "$(cat dc.tsv)" "$(cat p.tsv)"
# --precision bf16: where the CPU has AVX512-BF16, scores close to fp32's
# (bf16 operands: 2^-8 relative per product, far below 0.02 on a probability)
# but not equal; refused (nothing written) where oneDNN may not use it
fails "--precision fp16: usage" 2 "--precision: 'fp16'" fd-eval --model R/best.safetensors --pack pack.safetensors --precision fp16 -o x.tsv
if grep -qw avx512_bf16 /proc/cpuinfo; then
	ok "--precision bf16" fd-eval -q --threads 1 --precision bf16 --model R/best.safetensors --pack pack.safetensors --only fold=test -o pb.tsv
	ok "bf16 scores within 0.02 of fp32's, not all equal" $PY -c "import csv, sys
a = [float(r['score']) for r in csv.DictReader(open('pb.tsv'), delimiter='\t')]
b = [float(r['score']) for r in csv.DictReader(open('p.tsv'), delimiter='\t')]
d = max(abs(x - y) for x, y in zip(a, b)) if a else float('nan')
print('# %d rows, max |bf16 - fp32| %g' % (len(a), d)); sys.exit(not (len(a) == len(b) > 0 and 0 < d <= 0.02))"
	fails "--precision bf16 with oneDNN limited to AVX512_CORE" 1 "--precision: precision bf16: oneDNN's CPU ISA is limited" \
		env ONEDNN_MAX_CPU_ISA=AVX512_CORE fd-eval --model R/best.safetensors --pack pack.safetensors --precision bf16 -o xb.tsv
else
	fails "--precision bf16 without AVX512-BF16" 1 "--precision: precision bf16: this CPU lacks AVX" \
		fd-eval --model R/best.safetensors --pack pack.safetensors --precision bf16 -o xb.tsv
fi
no_file "no preds after a refused precision" xb.tsv
# --winograd (doc/nn-kernels.md "Winograd"): the 3x3 convolutions run
# Winograd on every CPU (oneDNN's on AVX-512 with oneDNN 2.x, fd's own
# elsewhere) and round differently (about 1e-6 relative per layer), so the
# scores are within 1e-4 of fp32's and not all equal
ok "--winograd" fd-eval -q --threads 1 --winograd --model R/best.safetensors --pack pack.safetensors --only fold=test -o pw.tsv
WD='0 < d <= 1e-4'
ok "winograd scores: $WD" $PY -c "import csv, sys
a = [float(r['score']) for r in csv.DictReader(open('pw.tsv'), delimiter='\t')]
b = [float(r['score']) for r in csv.DictReader(open('p.tsv'), delimiter='\t')]
d = max(abs(x - y) for x, y in zip(a, b)) if a else float('nan')
print('# %d rows, max |winograd - direct| %g' % (len(a), d)); sys.exit(not (len(a) == len(b) > 0 and $WD))"
done_testing
