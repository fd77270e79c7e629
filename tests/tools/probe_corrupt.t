#!/bin/bash
# probe_corrupt.t: corrupt or impossible inputs taken as good (issue 16,
# "corrupt inputs"; issue 12 item 3), each refused with exit 1, naming the file
# and what is wrong, and writing nothing: non-finite or impossible weights
# (fd-eval, fd-train init), a corrupt state.safetensors (--resume), a config
# or data set leaving one class, a held-out source that must stay out of
# validation (selection), config range errors naming file and line.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
fd-synth -q -o D --groups 40 --fake-size 48 --real-width 48,64 --seed 3 &&
	fd-index -q --root D -o idx.tsv && fd-split -q --folds 3 --test 0.2 -o split.tsv idx.tsv &&
	fd-pack -q --root D --size 32 -o pack.safetensors split.tsv || { echo "Bail out! cannot make the pack"; exit 1; }
cat >cfg.json <<'J'
{"model": "simplecnn", "epochs": 2, "batch_size": 16, "num_workers": 2,
 "optimizer": {"lr": 0.001}, "scheduler": {"type": "cosine_annealing", "T_max": 2}}
J
C="--pack pack.safetensors --fold 0 --config $top/configs/shared.json --config cfg.json --threads 1"
ok "train 1 epoch" fd-train -q $C --set epochs=1 -o R

# st.py IN OUT [NAME[INDEX]=VALUE | META=VALUE]...: copy a safetensors file
# with one element of a tensor, or one metadata value, replaced
cat >st.py <<'PY'
import json, struct, sys, numpy as np
sys.path.insert(0, sys.argv[1]); import stio
b = open(sys.argv[2], "rb").read()
n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); meta = h.pop("__metadata__", {})
DT = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "U8": np.uint8}
d = {k: np.frombuffer(b[8 + n + v["data_offsets"][0]: 8 + n + v["data_offsets"][1]], DT[v["dtype"]]).reshape(v["shape"]).copy()
     for k, v in h.items()}
for a in sys.argv[4:]:
    k, v = a.split("=", 1)
    if k.startswith("fd."):
        meta[k] = v
    else:
        name, i = k.rstrip("]").split("[")
        d[name].reshape(-1)[int(i)] = float(v)
stio.save(sys.argv[3], d, meta)
PY
st() { $PY st.py "$top/tests/ref" "$@"; }

# ---- weights: every parameter and buffer checked on load (issue 16 item 7)
nweights=0
bad_weights() { # desc file-suffix regex edit
	local d=$1 k=$2 f=w_$2.safetensors re=$3; shift 3
	st R/best.safetensors "$f" "$@" || { _report 1 "$d: cannot make $f"; return; }
	nweights=$((nweights + 1))
	fails "fd-eval refuses $d" 1 "'$f': $re" fd-eval -q --threads 1 --model "$f" --pack pack.safetensors --only fold=0 -o "p_$k.tsv"
	no_file "fd-eval: no output for $d" "p_$k.tsv"
	fails "fd-train init= refuses $d" 1 "'$f': $re" fd-train -q $C --set "init=$f" -o "I_$k"
	no_file "fd-train: no run dir for $d" "I_$k"
}
st R/best.safetensors w_ok.safetensors
ok "a faithful copy of the weights scores (control)" fd-eval -q --threads 1 --model w_ok.safetensors --pack pack.safetensors --only fold=0 -o p_ok.tsv
bad_weights "NaN in a conv weight" nan 'features\.0\.weight\[5\] is nan \(weights must be finite\)' 'features.0.weight[5]=nan'
bad_weights "Inf in a bias" inf 'classifier\.1\.bias\[0\] is inf' 'classifier.1.bias[0]=inf'
bad_weights "-Inf in a running mean" minf 'features\.1\.running_mean\[2\] is -inf' 'features.1.running_mean[2]=-inf'
bad_weights "a negative running_var" var 'features\.5\.running_var\[3\] is -0\.5 \(a variance must be >= 0\)' 'features.5.running_var[3]=-0.5'
bad_weights "a negative num_batches_tracked" nbt 'features\.1\.num_batches_tracked is -1 \(a counter must be >= 0\)' 'features.1.num_batches_tracked[0]=-1'
is "weight cases run" "$nweights" 5

# ---- a corrupt state.safetensors (issue 16 item 8): R is complete after 1
# epoch; each copy is resumed to 2 epochs and must be refused untouched
ok "a faithful copy of the state resumes (control)" sh -c 'cp -r R R_ok && fd-train -q '"$C"' --resume -o R_ok'
is "the control trained epoch 2" "$(tail -n +2 R_ok/log.tsv | cut -f1 | tr '\n' ,)" "1,2,"
nstate=0
bad_state() { # desc regex edit...
	local d=$1 re=$2 dir=S$nstate; shift 2
	nstate=$((nstate + 1))
	cp -r R "$dir" && st R/state.safetensors "$dir/state.safetensors" "$@" && cp "$dir/state.safetensors" "$dir.state" ||
		{ _report 1 "$d: cannot make the state"; return; }
	fails "--resume refuses $d" 1 "cannot resume from '$dir/state.safetensors': $re" fd-train -q $C --resume -o "$dir"
	is "$d: the run is untouched" "$(cmp "$dir/state.safetensors" "$dir.state" && cmp R/log.tsv "$dir/log.tsv" &&
		cmp R/run.json "$dir/run.json" && cmp R/last.safetensors "$dir/last.safetensors" && echo same)" same
}
bad_state "an epoch past the end" "fd\.epoch is 99999999999, not in 0\.\.2" fd.epoch=99999999999
bad_state "a negative epoch" "fd\.epoch is -1" fd.epoch=-1
bad_state "a batch past the epoch" "fd\.batch is 9999, not in 0\.\.[0-9]+ \(" fd.batch=9999
bad_state "seen without batches" "fd\.seen is 5" fd.seen=5
bad_state "a best epoch after the epoch" "fd\.best_epoch is 7, not in 0\.\.1" fd.best_epoch=7
bad_state "bad not epoch - best_epoch" "fd\.bad is 3" fd.bad=3
bad_state "optimizer steps that do not add up" "fd\.optim_step is 1, but epoch 1 batch 0 means [0-9]+ steps" fd.optim_step=1
bad_state "context steps that do not add up" "fd\.ctx_step is 0" fd.ctx_step=0
bad_state "a NaN learning rate" "fd\.sched_lr is nan" fd.sched_lr=nan
bad_state "a negative learning rate" "fd\.sched_lr is -0\.1" fd.sched_lr=-0.1
bad_state "a sched_epoch off the epoch" "fd\.sched_epoch is 4, not 1" fd.sched_epoch=4
bad_state "a best metric above 1" "fd\.best is 2" fd.best=2
bad_state "a NaN loss sum" "fd\.loss_sum is nan" fd.loss_sum=nan
bad_state "zero threads" "fd\.threads is 0" fd.threads=0
bad_state "a NaN parameter" "'params': features\.0\.weight\[0\] is nan" 'params[0]=nan'
bad_state "a negative second moment" "optim\.v\[3\] is -1 \(finite and >= 0\)" 'optim.v[3]=-1'
bad_state "an infinite first moment" "optim\.m\[0\] is inf \(finite\)" 'optim.m[0]=inf'
is "state cases run" "$nstate" 17

# ---- the held-out source stays out of selection (issue 12 item 3):
# training and validation both leave 'inpainting' out
printf '{"exclude_sources": ["inpainting"]}\n' >ex.json
ok "train with exclude_sources inpainting" fd-train $C --config ex.json -o X
like "fd-train says the source is held out of validation" "$(cat "$T/.err")" "held out: source 'inpainting' is in neither training nor validation"
nval_all=$(awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} $c["fold"]=="0"{n++} END{print n+0}' pack.tsv)
nval_ex=$(awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} $c["fold"]=="0" && $c["source"]!="inpainting"{n++} END{print n+0}' pack.tsv)
like "fold 0 has inpainting rows" "$((nval_all - nval_ex))" '^[1-9]'
like "run.json: rows_val counts no inpainting row" "$(cat X/run.json)" "\"rows_val\": $nval_ex,"
like "run.json: the excluded sources, and that validation left them out" \
	"$(tr -d ' \n' <X/run.json)" '"exclude_sources":\["inpainting"\].*"val_excludes_sources":true'
ok "fd-eval scores fold 0 with the last checkpoint" fd-eval -q --threads 1 --model X/last.safetensors --pack pack.safetensors --only fold=0 -o X/p.tsv
ok "fd-eval scores the held-out rows (--only fold=0 --only source=inpainting)" \
	fd-eval -q --threads 1 --model X/last.safetensors --pack pack.safetensors --only fold=0 --only source=inpainting -o X/held.tsv
is "held-out rows scored" "$(($(wc -l <X/held.tsv) - 1))" "$((nval_all - nval_ex))"
is "log val_auc = AUC without inpainting (sklearn), and not the AUC with it" "$($PY -c '
import csv
from sklearn.metrics import roc_auc_score
r = list(csv.DictReader(open("X/p.tsv"), delimiter="\t"))
def auc(rows): return roc_auc_score([int(x["label"]) for x in rows], [float(x["logit"]) for x in rows])
ex = auc([x for x in r if x["source"] != "inpainting"]); al = auc(r)
v = float(list(csv.DictReader(open("X/log.tsv"), delimiter="\t"))[-1]["val_auc"])
print("ok" if abs(v - ex) < 1e-9 and abs(v - al) > 1e-9 else "log %r, without %r, with %r" % (v, ex, al))' 2>&1)" ok

# ---- one class (issue 16 item 11): refused before anything is written
printf '{"exclude_sources": ["wiki"]}\n' >wiki.json
fails "exclude_sources wiki: training would hold one class" 1 \
	"fold 0: the training set has one class only \(0 real, [0-9]+ fake\) once exclude_sources 'wiki' is left out" \
	fd-train -q $C --config wiki.json -o W1
no_file "no run dir for one class" W1
printf '{"exclude_sources": ["text2img", "inpainting", "insight"]}\n' >fakes.json
fails "every fake source excluded: one class" 1 "the training set has one class only \([0-9]+ real, 0 fake\)" \
	fd-train -q $C --config fakes.json -o W2
no_file "no run dir for no fakes" W2
awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i} NR==1 || $c["label"]=="0"' idx.tsv >reals.tsv
nreal=$(awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} $c["status"]=="ok"{n++} END{print n+0}' reals.tsv)
fails "fd-split: a data set of reals only" 1 "'reals.tsv': the data set has one class only \(label 0: $nreal usable rows" \
	fd-split -q -o rsplit.tsv reals.tsv
no_file "fd-split: no output for one class" rsplit.tsv
ok "fd-split --allow-one-class splits it" fd-split -q --allow-one-class -o rsplit.tsv reals.tsv

# ---- a sidecar whose labels disagree with the pack's (issue 16 item 9):
# refused on open, naming the sidecar's line and both values
cp pack.safetensors L.safetensors &&
	awk -F'\t' -v OFS='\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i} NR==3{$c["label"]=1-$c["label"]; w=$c["label"]} 1
		END{print w >"L.want"}' pack.tsv >L.tsv || echo "Bail out! cannot make L.tsv"
lw=$(cat L.want); lt=$((1 - lw))
is "L.tsv differs from pack.tsv on line 3 only" "$(diff pack.tsv L.tsv | grep -c '^[<>]')" 2
fails "fd-train refuses a sidecar label that disagrees" 1 "'L\.tsv': line 3: label is '$lw', the pack's 'label' tensor has $lt" \
	fd-train -q --pack L.safetensors --fold 0 --config "$top/configs/shared.json" --config cfg.json --threads 1 -o LR
no_file "fd-train: no run dir" LR
fails "fd-eval refuses a sidecar label that disagrees" 1 "'L\.tsv': line 3: label is '$lw', the pack's 'label' tensor has $lt" \
	fd-eval -q --threads 1 --model R/best.safetensors --pack L.safetensors --only fold=0 -o L_p.tsv
no_file "fd-eval: no preds" L_p.tsv

# ---- fd-report with a run missing preds-val.tsv (issue 16 item 10): an
# error naming the run and file; --allow-missing makes it a warning that is
# also in the report
for k in 0 1 2; do
	mkdir -p "FR/m/s/fold$k" &&
		printf 'source\tlabel\tscore\nwiki\t0\t0.%d\nwiki\t0\t0.3\ninsight\t1\t0.7\ninsight\t1\t0.2\n' "$k" >"FR/m/s/fold$k/preds-val.tsv"
done
ok "fd-report: 3 complete folds" fd-report -q --section phase1 -o FR/all.md FR/m/s/fold0 FR/m/s/fold1 FR/m/s/fold2
like "3 folds reported" "$(cat FR/all.md)" "\| 3 \|"
cp FR/m/s/fold2/preds-val.tsv FR/m/s/fold2/preds-train.tsv && rm FR/m/s/fold2/preds-val.tsv
fails "a run without preds-val.tsv is an error" 1 "run 'FR/m/s/fold2': no preds-val\.tsv" \
	fd-report --section phase1 -o FR/x.md FR/m/s/fold0 FR/m/s/fold1 FR/m/s/fold2
no_file "no report" FR/x.md
fails "one run, without preds-val.tsv: an error, not an empty table" 1 "no preds-val\.tsv" \
	fd-report --section phase1 -o FR/x.md FR/m/s/fold2
no_file "no empty report" FR/x.md
fails "a missing run directory is an error" 1 "cannot read 'FR/m/s/fold9'" \
	fd-report --section phase1 -o FR/x.md FR/m/s/fold0 FR/m/s/fold9
ok "--allow-missing: the report is written" fd-report --allow-missing --section phase1 -o FR/w.md \
	FR/m/s/fold0 FR/m/s/fold1 FR/m/s/fold2 FR/m/s/fold9
like "--allow-missing: warnings on stderr" "$(cat "$T/.err")" "warning: run 'FR/m/s/fold2' left out: no preds-val\.tsv"
like "--allow-missing: the report says which runs were left out" "$(tr '\n' '|' <FR/w.md)" \
	"## Warnings\|\|- run 'FR/m/s/fold2' left out: no preds-val\.tsv.*\|- run 'FR/m/s/fold9' left out: no such file or directory"
like "--allow-missing: 2 folds reported" "$(cat FR/w.md)" "\| 2 \|"
fails "--allow-missing with every run missing: nothing to report" 1 "nothing to report: every run was left out \(1\)" \
	fd-report --allow-missing --section phase1 -o FR/x.md FR/m/s/fold2
no_file "no report when every run is missing" FR/x.md
fails "--allow-missing is not for --section best" 2 "--allow-missing is not for --section best" \
	fd-report --allow-missing --section best -o FR/b.json FR/m/s/fold0

# ---- messages (issue 16 minor items)
fails "NaN at epoch 1 says no epoch is kept" 1 "epoch 1 step [0-9]+: loss is (nan|inf): stopping \(no epoch was completed: 'N' holds no checkpoint\)" \
	fd-train -q $C --set optimizer.lr=1e30 -o N
printf '{\n  "model": "simplecnn",\n  "epochs": 0\n}\n' >zero.json
fails "a range error names file and line" 1 "zero\.json: line 3: 'epochs' is 0, not in 1\.\.1000000" fd-train -q $C --config zero.json -o Z1
fails "a range error from --set names the assignment" 1 "--set 'batch_size=0': 'batch_size' is 0, not in 1\.\.65536" \
	fd-train -q $C --set batch_size=0 -o Z2
printf '{"optimizer": {"momentum": 2}}\n' >cfg2.json
fails "a real range error names file and line" 1 "cfg2\.json: line 1: 'optimizer\.momentum' is 2, not in \[0, 1\]" \
	fd-train -q $C --config cfg2.json -o Z3
no_file "no run dir after a range error" Z1
done_testing
