#!/bin/bash
# pipelines.t: the Make graph of make phase1..phase4 / report with the real
# tools (fd-synth, fd-index, fd-split, fd-facecrop with MTCNN, fd-pack,
# fd-train, fd-eval, fd-report) at a tiny scale: 24 fd-synth groups, 16/24-px
# packs, 1 epoch, batch 8, one thread per job. Checks the whole graph runs
# under -j with real artefacts, is then up to date, that touching one config
# reruns only its dependents (and that a rerun replaces the stale run), that
# LAUNCH prefixes every training and evaluation, that DEVICE reaches both,
# that phase 3/4 follow best.json through best.mk (and rerun when it changes),
# that 4B follows top.mk (or P4B_MODELS),
# and that a failed training leaves nothing
# Make would take as finished.
. "$(dirname "$0")/lib.sh"
M=${FD_MODELS_DIR:-$top/models/mtcnn}
[ -f "$M/onet.pt" ] || { echo "1..0 # SKIP no MTCNN weights in $M (make models): fd-facecrop needs them"; exit 0; }
export FD_MODELS_DIR=$M
cp -r "$top/configs" "$T/conf"
# the tiny scale, appended to every run (a prerequisite like any config); from
# scratch, as make demo: the suite needs no download (make weights)
echo '{"epochs": 1, "batch_size": 8, "num_workers": 1, "scheduler": {"T_max": 1}, "early_stopping_patience": 0, "init": "scratch"}' \
	>"$T/tiny.json"
W=$T/w
mk() {
	make -C "$top" --no-print-directory FD="$BIN" CONF="$T/conf" WORK="$W" DATA="$W/data" SYNTH=1 \
		SYNTH_GROUPS=24 SYNTH_FLAGS="--fake-size 32 --real-width 32,40 --threads 1" FOLDS=2 FRAC=100 \
		SIZE_LO=16 SIZE_HI=24 THREADS=1 EXTRA_CONFIGS="$T/tiny.json" \
		P3_MODELS=mobilenet_v3_small P4_MODELS=simplecnn "$@"
}
# okmk "desc" make-args...: mk must succeed; on failure the end of its output
okmk() {
	local d=$1; shift
	if mk "$@" >"$T/mk.log" 2>&1; then _report 0 "$d"; else
		_report 1 "$d"; tail -20 "$T/mk.log" | sed 's/^/#   /'; fi
}
trained() { grep -c '/fd-train ' <<<"$1"; }
# put a config's mtime back: the graph is up to date again without retraining
restore() { touch -r "$T/conf/shared.json" "$1"; }

okmk "make -j4 phase2" -j4 phase2
for f in 2a-geometry 2a-colour 2a-holdout 2b-resolution 2c-facecrop 2d-augment 2e-augment-facecrop; do
	ok "phase2: $f.md" test -s "$W/phase2/$f.md"
done
ok "phase2: best.json" test -s "$W/phase2/best.json"
# fd-synth's drawn faces may or may not pass MTCNN; a row without a face gets
# face_score 0 and a centre square (fd-facecrop(1)), so the face packs exist
# either way: the count is reported, not asserted
echo "# MTCNN found a face in $(awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} $c["face_score"]+0 > 0 {n++} END{print n+0}' \
	"$W/faces.tsv") of $(($(wc -l <"$W/faces.tsv") - 1)) images"
like "faces.tsv: MTCNN's columns" "$(head -1 "$W/faces.tsv")" "	face_x1	face_y1	face_x2	face_y2	face_score	"
ok "phase2: G (letterbox) scored from the matched pack" test -s "$W/runs/resnet18/in100-24-letterbox/fold1/preds-matched.tsv"
ok "phase2: the control C trained on matched" test -s "$W/runs/resnet18/in100-24-matched/fold0/run.json"
like "phase2: the 2A geometry verdict" "$(cat "$W/phase2/2a-geometry.md")" "\| resnet18 \| 2 \| .*\| (geometry shortcut found|no evidence of a geometry shortcut) \|"
like "phase2: best.json lists the candidates" "$(cat "$W/phase2/best.json")" '"candidates": \['
like "phase2: best.json quotes 2A's verdict" "$(cat "$W/phase2/best.json")" '"geometry_test": "resnet18: delta'

ok "a real checkpoint" test -s "$W/runs/resnet18/in100-24-face-augment/fold0/best.safetensors"
is "a real training log: one epoch" "$(tail -n +2 "$W/runs/simplecnn/in100-16-center/fold0/log.tsv" | cut -f1)" 1
is "real scores: in (0,1), not all equal" "$(awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next}
	{s=$c["score"]; if (!(s > 0 && s < 1)) bad++; u[s]=1} END{print bad+0, (length(u) > 1) ? "varied" : "constant"}' \
	"$W/runs/simplecnn/in100-24-face/fold1/preds-val.tsv")" "0 varied"
like "phase2: hold-out rows" "$(cat "$W/phase2/2a-holdout.md")" "\| resnet18 \| no-insight \| insight \| 2 \|"
ok "phase2 is then up to date" mk -q phase2
is "16 settings x 2 folds trained" "$(ls -d "$W"/runs/*/*/fold*/run.json | wc -l)" 32
# the test set: every run's selected checkpoint scored on fold=test of its own pack
is "every run scored on the test set" "$(ls "$W"/runs/*/*/fold*/preds-test.tsv "$W"/runs/*/*/fold*/metrics-test.tsv | wc -l)" 64
is "preds-test.tsv: the pack's test rows" \
	"$(awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} {print $c["fold"]}' "$W/runs/simplecnn/in100-24-face/fold1/preds-test.tsv" | sort -u)" test
like "reports show the test AUC" "$(cat "$W/phase2/2b-resolution.md")" "Test AUC \(ensemble\) \| Test 95% CI \(DeLong\)"
like "reports say what was selected on" "$(cat "$W/phase2/2c-facecrop.md")" "\*\*Selection\.\*\* .*test set was used for no choice"
# the split follows configs/shared.json (seed, test_ratio), not options of its own
like "fd-split reads shared.json" "$(mk -n -W "$T/conf/shared.json" "$W/split.tsv")" "fd-split -q --config $T/conf/shared.json --folds 2 --fractions"
is "fd-split: no --seed or --test of the pipeline" "$(mk -n -W "$T/conf/shared.json" "$W/split.tsv" | grep fd-split | grep -c -- '--seed\|--test')" 0

# touching one config reruns its dependents only
touch "$T/conf/augment.json"
n=$(mk -n phase2)
is "augment.json: 8 runs retrained" "$(trained "$n")" 8
is "augment.json: only augmented runs" "$(grep '/fd-train ' <<<"$n" | grep -vc 'augment.json')" 0
is "augment.json: reports 2d, 2e and best" \
	"$(grep -o -- '--section [a-z0-9-]*' <<<"$n" | sort | tr '\n' ' ')" \
	"--section 2d-augment --section 2e-augment-facecrop --section best "
restore "$T/conf/augment.json"
touch "$T/conf/models/simplecnn.json"
n=$(mk -n phase2)
is "simplecnn.json: 10 simplecnn runs retrained" "$(grep '/fd-train ' <<<"$n" | grep -c 'models/simplecnn.json')" 10
is "simplecnn.json: no other run" "$(trained "$n")" 10
restore "$T/conf/models/simplecnn.json"
ok "restored mtimes: up to date" mk -q phase2
touch "$T/conf/holdout-insight.json"
n=$(mk -n phase2)
is "holdout-insight.json: 2 runs, 2a-holdout only" \
	"$(trained "$n") $(grep -o -- '--section [a-z0-9-]*' <<<"$n" | tr '\n' ' ')" \
	"2 --section 2a-holdout "
old=$(stat -c %Y "$W/runs/resnet18/in100-24-center-holdout-insight/fold0/run.json")
sleep 1
okmk "rerun replaces the stale runs" -j2 phase2
ok "rerun: a new run.json" test "$(stat -c %Y "$W/runs/resnet18/in100-24-center-holdout-insight/fold0/run.json")" -gt "$old"
ok "rerun: then up to date" mk -q phase2

# which configs a run is trained with is an input too: another EXTRA_CONFIGS
# (here a weight decay of its own, as an {"init": "scratch"} would be) reruns every
# run; make -n and -q only look, and only a run remade gets the new list
echo '{"optimizer": {"weight_decay": 0.0123}}' >"$T/wd.json"
r=$W/runs/simplecnn/in100-16-center/fold0
is "RUNDIR.configs: the run's list" "$(cat "$r.configs")" "$T/conf/shared.json $T/conf/models/simplecnn.json $T/tiny.json"
n=$(mk -n phase2 EXTRA_CONFIGS="$T/tiny.json $T/wd.json")
is "another EXTRA_CONFIGS: all 32 runs retrained" "$(trained "$n")" 32
is "another EXTRA_CONFIGS: make -q says out of date" "$(mk -q phase2 EXTRA_CONFIGS="$T/tiny.json $T/wd.json"; echo $?)" 1
is "make -n and -q wrote no list" "$(cat "$r.configs")" "$T/conf/shared.json $T/conf/models/simplecnn.json $T/tiny.json"
ok "the old list: still up to date" mk -q phase2
okmk "one run with the new list" "$r/run.json" EXTRA_CONFIGS="$T/tiny.json $T/wd.json"
like "it ran with the new config" "$(cat "$r/config.json")" '"weight_decay":0.0123'
is "RUNDIR.configs: the new list" "$(cat "$r.configs")" "$T/conf/shared.json $T/conf/models/simplecnn.json $T/tiny.json $T/wd.json"
ok "the new list: up to date" mk -q "$r/run.json" EXTRA_CONFIGS="$T/tiny.json $T/wd.json"
is "back to the old list: that run only is retrained" "$(trained "$(mk -n phase2)")" 1
okmk "back to the old list: rerun (and its evaluations and reports)" phase2
# a run made before RUNDIR.configs existed is taken to have used the current list
rm "$r.configs"
ok "no RUNDIR.configs: make -q still up to date" mk -q phase2
is "no RUNDIR.configs: nothing retrained" "$(trained "$(mk -n phase2)")" 0

# LAUNCH goes before every fd-train and fd-eval, nothing else
n=$(mk -n -W "$T/conf/shared.json" phase2 LAUNCH="srun -N1 --gres=gpu:1")
like "LAUNCH: some commands" "$(grep -c 'fd-train\|fd-eval' <<<"$n")" "^[1-9][0-9]+$"
is "LAUNCH: before every fd-train/fd-eval" "$(grep -E '/fd-(train|eval) ' <<<"$n" | grep -vc '^srun -N1 --gres=gpu:1 ')" 0
is "LAUNCH: not before other tools" "$(grep -E '/fd-(report|pack) ' <<<"$n" | grep -c '^srun')" 0
# DEVICE: --device on every fd-train and fd-eval unless cpu; cuda is refused for real
n=$(mk -n -W "$T/conf/shared.json" phase2 DEVICE=cuda:1)
is "DEVICE=cuda:1: --device on every fd-train/fd-eval" "$(grep -E '/fd-(train|eval) ' <<<"$n" | grep -vc -- '--device cuda:1 ')" 0
# NOFACE=drop: every condition's pack reads faces.tsv without the no-face rows,
# under its own names; a bad value stops make
n=$(mk -n phase2 NOFACE=drop)
is "NOFACE=drop: every pack from faces.tsv, face_note=ok only" \
	"$(grep '/fd-pack ' <<<"$n" | grep -vc -- '--only face_note=ok -o .*-faceonly.safetensors .*/faces.tsv$')" 0
like "NOFACE=drop: packs made" "$(grep -c '/fd-pack ' <<<"$n")" "^[1-9]"
like "NOFACE=drop: runs of their own" "$(grep '/fd-train ' <<<"$n" | head -1)" "-faceonly/fold[0-9]$"
is "NOFACE=keep (default): no pack filtered by face" "$(mk -n -W "$W/split.tsv" phase2 | grep -c 'face_note')" 0
fails "NOFACE: a bad value stops make" 2 "NOFACE must be keep or drop" mk -n phase2 NOFACE=maybe
is "DEVICE=cpu: no --device" "$(mk -n -W "$T/conf/shared.json" phase2 | grep -c -- '--device')" 0
rm -rf "$W/runs/simplecnn/in100-16-center/fold1"
mk phase1 DEVICE=cuda >"$T/cuda.log" 2>&1
is "DEVICE=cuda: make fails" "$?" 2
like "DEVICE=cuda: fd-train says why" "$(cat "$T/cuda.log")" "fd-train: --device cuda: (this build of fd has no cuda backend|cuda: cudaGetDeviceCount: )"
ok "DEVICE=cuda: no run dir left" test ! -e "$W/runs/simplecnn/in100-16-center/fold1"

# phase 3 and 4 at the choices of best.json
okmk "make phase3 phase4 report" -j2 report
best() { "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$W/phase2/best.json" "$1"; }
size=$(best size)
geom=$(best geometry)
aug=$([ "$(best augment)" = True ] && echo -augment)
ok "phase3: mobilenet_v3_small at best.json's choice ($size $geom$aug)" \
	test -s "$W/runs/mobilenet_v3_small/in100-$size-$geom$aug/fold1/preds-val.tsv"
ok "phase4: 20/50/100% packs" test -s "$W/packs/in20-$size-$geom.safetensors"
ok "phase4: simplecnn on 20%" test -s "$W/runs/simplecnn/in20-$size-$geom$aug/fold0/run.json"
# 4A: every fraction scored on the same rows (the in100 pack's fold K and the test set)
is "phase4: 20/50/100% runs scored on the full fold" "$(ls "$W"/runs/simplecnn/in{20,50,100}-$size-$geom$aug/fold*/preds-full.tsv | wc -l)" 6
is "phase4: the same rows for every fraction" "$(for f in 20 50 100; do cut -f1 "$W/runs/simplecnn/in$f-$size-$geom$aug/fold1/preds-full.tsv" | md5sum; done | sort -u | wc -l) $(for f in 20 50 100; do cut -f1 "$W/runs/simplecnn/in$f-$size-$geom$aug/fold1/preds-test.tsv" | md5sum; done | sort -u | wc -l)" "1 1"
is "phase4: the 4A table is on the full fold" "$(cut -f3 "$W/phase4/4a-scaling.tsv" | sort -u | tr '\n' ' ')" "eval full "
ok "report.md" test -s "$W/report.md"
like "report.md has every phase" "$(grep '^# ' "$W/report.md" | tr '\n' '|')" \
	"Phase 1.*2A, test 1.*Phase 2E.*Phase 3.*Phase 4A.*Phase 4B: the models chosen.*Phase 4B: the chosen models"
# 4B: the top models by validation AUC (top.json, top.mk: all three of phase 3
# here, P4B_TOP=3), trained on in100 at best.json's choice (FRAC=100: phase 3's
# runs themselves), every fold scored on the test set; the 4b-final tables
tmods=$(sed -n 's/^P4B_TOP_MODELS := //p' "$W/phase4/top.mk")
is "4B: top.mk holds the three models of phase 3" "$(tr ' ' '\n' <<<"$tmods" | sort | tr '\n' ' ')" "mobilenet_v3_small resnet18 simplecnn "
is "4B: top.json's models are top.mk's" "$("$PY" -c "import json,sys; print(' '.join(json.load(open(sys.argv[1]))['models']))" "$W/phase4/top.json")" "$tmods"
is "4B: the 4b-final table has the top models" "$(awk -F'\t' 'NR>1{print $1}' "$W/phase4/4b-final.tsv" | sort -u | tr '\n' ' ')" "mobilenet_v3_small resnet18 simplecnn "
is "4B: in100 runs of the top models at best.json's choice, scored on the test set" \
	"$(ls "$W"/runs/{simplecnn,resnet18,mobilenet_v3_small}/in100-$size-$geom$aug/fold*/preds-test.tsv | wc -l)" 6
is "4B: three pairs compared" "$(($(wc -l <"$W/phase4/4b-final.compare.tsv") - 1))" 3
like "4B: hard examples' header" "$(head -1 "$W/phase4/4b-final.hard.tsv")" "^model	condition	source	kind	rank	path	label	score$"
is "4B: 20 bins per model, source and label" "$(awk -F'\t' 'NR>1{n[$1" "$3" "$4]++} END{for(k in n) if (n[k] != 20) print k}' "$W/phase4/4b-final.confidence.tsv")" ""
like "4B: confidence histograms for every model" "$(awk -F'\t' 'NR>1{print $1}' "$W/phase4/4b-final.confidence.tsv" | sort -u | wc -l)" "^3$"
# Grad-CAM of the 4B models' and the phase-1 models' fold-0 checkpoints on
# their own test rows per category, and the HTML pages of make report
for m in $tmods; do
	ok "4B Grad-CAM: $m" test -s "$W/phase4/gradcam/$m/gradcam.tsv"
	is "4B Grad-CAM: $m on the rows chosen" "$(awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next}{print $c["row"]}' \
		"$W/phase4/gradcam/$m/gradcam.tsv" | sort -n | tr '\n' ' ')" \
		"$(awk -F'\t' 'NR>1{print $3}' "$W/phase4/gradcam/$m.rows.tsv" | sort -n | tr '\n' ' ')"
done
for m in simplecnn resnet18; do ok "phase-1 Grad-CAM: $m" test -s "$W/phase1/gradcam/$m/gradcam.tsv"; done
is "Grad-CAM: 5 fd-gradcam calls, each of a fold-0 checkpoint" \
	"$(grep -c '/fd-gradcam ' "$T/mk.log") $(grep '/fd-gradcam ' "$T/mk.log" | grep -o -- '--model [^ ]*' | grep -vc '/fold0/best.safetensors$')" "5 0"
pages="index 01-eda 02-preprocessing 03-phase1 04-phase2 05-phase3 06-phase4 07-gradcam"
for p in $pages; do ok "make report: $p.html" test -s "$W/html/$p.html"; done
like "make report: index.html made last, linking every page" "$(grep -o 'href="0[1-7][^"]*' "$W/html/index.html" | tr '\n' ' ')" \
	'href="01-eda.html href="02-preprocessing.html .*href="07-gradcam.html $'
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser)}
if [ -n "$CHROMIUM" ]; then
	"$PY" "$top/tests/tools/html_check.py" "$CHROMIUM" "$T" $(for p in $pages; do echo "$W/html/$p.html"; done) \
		>"$T/check.jsonl" 2>/dev/null
	is "make report's pages in Chromium: no error, every image decodes, figures on every page but the index" \
		"$("$PY" -c 'import json,sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if d["errors"] or d["bad_images"] or (not d["figs"]) != d["page"].endswith("index.html"): print(d["page"], d["errors"], d["bad_images"], len(d["figs"]))
print("pages", sum(1 for l in open(sys.argv[1])))' "$T/check.jsonl")" "pages 8"
else
	echo "ok # SKIP no chromium: make report's pages not opened"
fi
# a Grad-CAM folder removed is made again alone (its rows kept), then page 07 and the index
m1=$(set -- $tmods; echo "$1")
rm -rf "$W/phase4/gradcam/$m1"
n=$(mk -n report-all)
is "Grad-CAM: a removed folder ($m1) is remade alone, then page 07" \
	"$(grep -c '/fd-gradcam ' <<<"$n") $(grep -c -- '--section gradcam-rows' <<<"$n") $(grep -c -- '--page 07-gradcam' <<<"$n") $(grep -c -- '--page index' <<<"$n")" "1 0 1 1"
okmk "Grad-CAM: remade" report-all
ok "report then up to date" mk -q report-all
# 4B follows top.mk (written with top.json; -W: as if both were new), and
# P4B_MODELS overrides the choice (no top.json made)
cp -p "$W/phase4/top.mk" "$T/top.mk"
echo "P4B_TOP_MODELS := simplecnn" >"$W/phase4/top.mk"
n=$(mk -n -W "$W/phase4/top.json" phase4-report)
is "4B follows top.mk: 4b-final on simplecnn only" \
	"$(grep -- '--section 4b-final' <<<"$n" | grep -o '/runs/[a-z0-9_]*/' | sort -u | tr '\n' ' ')" "/runs/simplecnn/ "
cp -p "$T/top.mk" "$W/phase4/top.mk"
n=$(mk -n phase4-report P4B_MODELS="resnet34")
like "P4B_MODELS: the named model trained on in100" "$n" "fd-train .* -o $W/runs/resnet34/in100-$size-$geom$aug/fold1"
is "P4B_MODELS: 4b-final on it" \
	"$(grep -- '--section 4b-final' <<<"$n" | grep -o '/runs/[a-z0-9_]*/' | sort -u | tr '\n' ' ')" "/runs/resnet34/ "
# (a newer best.json, for real: -W does not reach the sub-makes)
touch -r "$W/phase2/best.json" "$T/best4.stamp"
touch "$W/phase2/best.json"
n=$(mk -n phase4)
like "make phase4: a new best.json remakes top.json" "$n" "--section top --top 3 -o $W/phase4/top.json"
n=$(mk -n phase4 P4B_MODELS="simplecnn")
is "make phase4 P4B_MODELS=...: no choice made" "$(grep -c -- '--section top ' <<<"$n") $(grep -c -- '--section 4b-final ' <<<"$n")" "0 1"
n=$(mk -n phase4 P4B_TOP=1)
like "P4B_TOP reaches fd-report" "$n" "--section top --top 1 "
touch -r "$T/best4.stamp" "$W/phase2/best.json"

# the pipelines read the choices from best.mk (make's include, written with
# best.json): it holds best.json's choices, and phase 3/4 follow it
is "best.mk: best.json's choices" "$(grep -v '^#' "$W/phase2/best.mk")" "BEST_SIZE := $size
BEST_GEOMETRY := $geom
BEST_AUGMENT := $([ -n "$aug" ] && echo true || echo false)"
cp -p "$W/phase2/best.mk" "$T/best.mk"
osize=$([ "$size" = 16 ] && echo 24 || echo 16)
ogeom=$([ "$geom" = face ] && echo center || echo face)
oaug=$([ -n "$aug" ] || echo -augment)
printf 'BEST_SIZE := %s\nBEST_GEOMETRY := %s\nBEST_AUGMENT := %s\n' "$osize" "$ogeom" \
	"$([ -n "$oaug" ] && echo true || echo false)" >"$W/phase2/best.mk"
n=$(mk -n phase3-report phase4-report)
like "phase 3 follows best.mk ($osize $ogeom$oaug)" "$n" "fd-train .* -o $W/runs/mobilenet_v3_small/in100-$osize-$ogeom$oaug/fold0([[:space:]]|$)"
like "phase 4 follows best.mk" "$n" "fd-train .* -o $W/runs/simplecnn/in20-$osize-$ogeom$oaug/fold1([[:space:]]|$)"
cp -p "$T/best.mk" "$W/phase2/best.mk"
# a new best.json reruns the phase 3 and 4 reports; a fresh phase3 makes best.json first
touch -r "$W/phase2/best.json" "$T/best.stamp"
touch "$W/phase2/best.json"
n=$(mk -n phase3-report phase4-report)
is "new best.json: phase 3 and 4 reports rerun, nothing retrained" \
	"$(trained "$n") $(grep -o -- '--section [a-z0-9-]*' <<<"$n" | tr '\n' ' ')" "0 --section phase3 --section 4a-scaling --section top --section 4b-final "
touch -r "$T/best.stamp" "$W/phase2/best.json"
ok "best.json's mtime back: up to date" mk -q report-all
n=$(mk -n phase3 WORK="$T/fresh" 2>&1)
like "fresh make phase3: phase 2's choice reports and best.json come first" \
	"$(grep -o -- '--section [a-z0-9-]*' <<<"$n" | cut -d' ' -f2 | tr '\n' ' ')" "^(2[a-e]-[a-z-]+ )+best "

# a failed training (NaN loss: fd-train exits 1 after creating its run
# directory) leaves no run that Make would take as finished
rm -rf "$W/runs/simplecnn/in100-16-center/fold0"
mk phase1 TRAIN_FLAGS="--set threads=1 --set optimizer.lr=1e30" >"$T/fail.log" 2>&1
is "failed training: make fails" "$?" 2
like "failed training: the NaN" "$(cat "$T/fail.log")" "fd-train: .*loss is (nan|inf)"
ok "failed training: no run.json" test ! -e "$W/runs/simplecnn/in100-16-center/fold0/run.json"
ok "failed training: not evaluated" test ! -e "$W/runs/simplecnn/in100-16-center/fold0/preds-val.tsv"
okmk "failed training: retried next time" phase1
ok "then up to date" mk -q phase1
done_testing
