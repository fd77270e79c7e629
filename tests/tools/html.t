#!/bin/bash
# html.t: fd-report --html's seven pages and the index from a tiny fd-synth
# pipeline (2 folds x 2 settings of simplecnn, 2 epochs; MTCNN face boxes,
# centre, letterbox and face packs; 4b-final's tables; fd-gradcam of two fold
# models), opened in headless Chromium over the
# DevTools protocol (html_check.py): no console error, exception or failed
# load, every image decodes, each page holds the figures it promises, links
# resolve, and a screenshot is saved. The figures' numbers are checked against
# scikit-learn and numpy (html_ref.py). Negative controls: a page with a
# console error and a broken image must be caught.
. "$(dirname "$0")/lib.sh"
here=$top/tests/tools
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser)}
[ -n "$CHROMIUM" ] || { echo "Bail out! no chromium (scripts/deps.sh installs it)"; exit 1; }
cd "$T" || exit 1
export OMP_WAIT_POLICY=PASSIVE
M=${FD_MODELS_DIR:-$top/models/mtcnn}
[ -f "$M/onet.pt" ] || { echo "1..0 # SKIP no MTCNN weights in $M (make models): page 02 needs fd-facecrop"; exit 0; }
fd-synth -q -o D --groups 24 --fake-size 32 --real-width 32,40 --seed 5 &&
	fd-index -q --stats --root D -o idx.tsv && fd-split -q --folds 2 --test 0.2 -o split.tsv idx.tsv &&
	fd-facecrop -q --models "$M" --root D -o faces.tsv split.tsv &&
	fd-pack -q --root D --size 24 -o pack.safetensors faces.tsv &&
	fd-pack -q --root D --size 24 --geometry letterbox -o lb.safetensors faces.tsv &&
	fd-pack -q --root D --size 24 --geometry face -o face.safetensors faces.tsv ||
	{ echo "Bail out! cannot make the packs"; exit 1; }
echo '{"model": "simplecnn", "epochs": 2, "batch_size": 16, "optimizer": {"lr": 0.001}}' >cfg.json
runs=()
for set in in50-24 in100-24; do
	for k in 0 1; do
		R=runs/simplecnn/$set/fold$k
		fd-train -q --pack pack.safetensors --fold $k --config "$top/configs/shared.json" --config cfg.json \
			--set seed=$((k + ${#set})) --threads 1 -o $R &&
			fd-eval -q --threads 1 --model $R/best.safetensors --pack pack.safetensors --only fold=$k -o $R/preds-val.tsv ||
			{ echo "Bail out! cannot train $R"; exit 1; }
		runs+=("$R")
	done
done
# test scores for one setting only: preds-test.tsv is optional
for k in 0 1; do
	fd-eval -q --threads 1 --model runs/simplecnn/in50-24/fold$k/best.safetensors --pack pack.safetensors \
		--only fold=test -o runs/simplecnn/in50-24/fold$k/preds-test.tsv
done
printf 'model\tauc\nsimplecnn\t0.5\n' >table.tsv
# 4B's tables of the in50-24 fold models, and Grad-CAM of both (as the pipeline: the rows
# from each checkpoint's own test scores)
mkdir f
ok "4b-final tables" fd-report -q --section 4b-final -n 3 -o f/4b-final.md "full=${runs[0]}" "full=${runs[1]}"
for k in 0 1; do
	R=runs/simplecnn/in50-24/fold$k
	ok "gradcam rows, fold $k" fd-report -q --section gradcam-rows -n 4 -o gc$k.rows.tsv $R/preds-test.tsv
	ok "fd-gradcam, fold $k" fd-gradcam -q --threads 1 --model $R/best.safetensors --pack pack.safetensors -n 16 \
		--rows "$(awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next}{printf "%s%s",s,$c["row"];s=","}' gc$k.rows.tsv)" -o gc$k
done
like "gradcam rows vs python" "$("$PY" "$here/html_ref.py" gcrows runs/simplecnn/in50-24/fold0/preds-test.tsv gc0.rows.tsv 4 2>&1)" "^checked [1-9][0-9]*$"
printf 'row\tpath\tsource\tlabel\tscore\n0\ta\twiki\t0\tx\n' >p.tsv
fails "gradcam rows: a bad score" 1 "p.tsv': line 2: score 'x' is not a number in" fd-report --section gradcam-rows -o bad.rows.tsv p.tsv
no_file "gradcam rows: nothing written" bad.rows.tsv

ok "page 01-eda" fd-report -q --html out --page 01-eda --index idx.tsv --pack pack.safetensors
ok "page 02-preprocessing" fd-report -q --html out --page 02-preprocessing --index faces.tsv \
	--config "$top/configs/shared.json" --config "$top/configs/augment.json" pack.safetensors lb.safetensors face.safetensors
ok "page 03-phase1" fd-report -q --html out --page 03-phase1 --table table.tsv "${runs[@]}"
ok "page 04-phase2" fd-report -q --html out --page 04-phase2 "${runs[@]}"
ok "page 05-phase3" fd-report -q --html out --page 05-phase3 "${runs[@]:2}"
ok "page 06-phase4 (LABEL=RUN, 4b-final tables)" fd-report -q --html out --page 06-phase4 --pack pack.safetensors \
	--table f/4b-final.tsv --table f/4b-final.hard.tsv --table f/4b-final.confidence.tsv "a=${runs[0]}" "b=${runs[1]}"
ok "page 07-gradcam" fd-report -q --html out --page 07-gradcam "fold 0=gc0" "fold 1=gc1"
ok "the index alone" fd-report -q --html out --page index
pages="index 01-eda 02-preprocessing 03-phase1 04-phase2 05-phase3 06-phase4 07-gradcam"
for f in $pages; do ok "$f.html written" test -s out/$f.html; done
n=$(ls out/figures/*.svg | wc -l)
count "figure files" "$n" 40

# bad usage and bad input: clear messages, nothing written
fails "--html without --page" 2 "needs --page" fd-report --html x
fails "unknown page" 2 "unknown page 'nope'" fd-report --html x --page nope
fails "07 without folders" 2 "needs fd-gradcam folders" fd-report --html x --page 07-gradcam
fails "07: a folder without gradcam.tsv" 1 "Grad-CAM folder 'D'" fd-report --html x --page 07-gradcam D
fails "02 needs packs" 2 "needs packs" fd-report --html x --page 02-preprocessing --index faces.tsv
fails "02: faces without face_note" 1 "idx.tsv': missing column 'face_note'" fd-report --html x --page 02-preprocessing --index idx.tsv pack.safetensors
fails "--pack on page 03" 2 "--pack is for" fd-report --html x --page 03-phase1 --pack pack.safetensors "${runs[0]}"
sed '2,$s|\t[a-z0-9]*/|\tnowhere/|' f/4b-final.hard.tsv >nowhere.tsv
fails "06: a hard example not in the pack" 1 "nowhere.tsv': line 2: 'nowhere/.*' is not in the pack 'lb.safetensors'" \
	fd-report --html x --page 06-phase4 --pack lb.safetensors --table nowhere.tsv "${runs[0]}"
fails "01-eda needs --index" 2 "needs --index" fd-report --html x --page 01-eda
fails "--html with --section" 2 "does not take" fd-report --html x --page 03-phase1 --section phase1 "${runs[0]}"
fails "not a run directory" 1 "not a run directory" fd-report --html x --page 03-phase1 runs/simplecnn
mkdir -p runs/m/s/fold0
fails "run without preds" 1 "runs/m/s/fold0': no preds-val.tsv" fd-report --html x --page 03-phase1 runs/m/s/fold0
printf 'label\tsource\tscore\n0\twiki\tabc\n' >runs/m/s/fold0/preds-val.tsv
fails "bad score" 1 "preds-val.tsv': line 2: 'abc' is not a number" fd-report --html x --page 03-phase1 runs/m/s/fold0
printf 'path\tsource\n' >bad.tsv
fails "index without columns" 1 "bad.tsv': missing column 'width'" fd-report --html x --page 01-eda --index bad.tsv
no_file "nothing written on failure" x/01-eda.html
no_file "nothing written on failure (02, 06, 07)" x/02-preprocessing.html x/06-phase4.html x/07-gradcam.html

# numbers: against sklearn / numpy
like "01 figures vs numpy" "$("$PY" "$here/html_ref.py" eda idx.tsv out/figures 2>&1)" "^checked [1-9][0-9]+$"
like "03 figures vs sklearn" "$("$PY" "$here/html_ref.py" runs 03-phase1 out/figures "${runs[@]}" 2>&1)" "^checked [1-9][0-9]+$"
like "06 figures vs sklearn" "$("$PY" "$here/html_ref.py" runs 06-phase4 out/figures "${runs[@]:0:2}" 2>&1)" "^checked [1-9][0-9]+$"
like "02 figures vs numpy" "$("$PY" "$here/html_ref.py" preproc faces.tsv pack.safetensors out/figures 2>&1)" "^checked [1-9][0-9]+$"
like "06 hard examples: the PNG files are the pack's images" \
	"$("$PY" "$here/html_ref.py" hard f/4b-final.hard.tsv pack.safetensors out/figures 06-phase4 2>&1)" "^checked [1-9][0-9]*$"
# a changed number is caught
sed -i -E '0,/data-y="[0-9]/s/data-y="([0-9])/data-y="9\1/' out/figures/03-phase1-roc-simplecnn-in50-24.svg
like "a wrong ROC point fails" "$("$PY" "$here/html_ref.py" runs 03-phase1 out/figures "${runs[@]}" 2>&1)" "roc fold 0 val tpr: max error"

# in the browser
mkdir shots
# negative control: a console error, a broken and a missing image
cat >out/broken.html <<'EOF'
<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>b</title></head>
<body><script>console.error("boom")</script><img src="data:image/png;base64,AAAA"><img src="missing.png"></body></html>
EOF
"$PY" "$here/html_check.py" "$CHROMIUM" shots $(for p in $pages; do echo out/$p.html; done) \
	out/figures/01-samples.svg out/broken.html >check.jsonl 2>check.err
is "chromium checked every page" "$(wc -l <check.jsonl)" 10
field() { # page python-expression-over-d
	"$PY" -c 'import json,sys
for l in open("check.jsonl"):
    d = json.loads(l)
    if d["page"] == sys.argv[1]: print(eval(sys.argv[2]))' "$1" "$2"
}
for p in $pages; do
	is "$p: no console error" "$(field out/$p.html 'd["errors"]')" "[]"
	is "$p: every image decodes" "$(field out/$p.html 'd["bad_images"]')" "[]"
	ok "$p: screenshot" test -s shots/$p.png
	# every link resolves to a file
	nl=0 miss=
	for l in $(field out/$p.html '" ".join(d["links"])'); do
		nl=$((nl + 1)); [ -e "out/$l" ] || miss="$miss $l"
	done
	is "$p: $nl links resolve" "$miss" ""
done
is "index links the seven pages" "$(field out/index.html 'd["links"][1:]')" \
	"['01-eda.html', '02-preprocessing.html', '03-phase1.html', '04-phase2.html', '05-phase3.html', '06-phase4.html', '07-gradcam.html']"
# each page holds the figures it promises
is "02: its figures" "$(field out/02-preprocessing.html 'd["figs"]')" \
	"['02-face-rate', '02-crops', '02-geometry', '02-augment', '02-norm-mean', '02-norm-std']"
is "02: crops, geometries and augmentation: 32 + 24 + 32 images" "$(field out/02-preprocessing.html 'd["images"]')" 88
is "02: crop files" "$(ls out/figures/02-crops/*.png | wc -l) $(ls out/figures/02-geometry/*.png | wc -l) $(ls out/figures/02-augment/*.png | wc -l)" "32 24 32"
for p in 04-phase2 05-phase3; do
	like "$p: ROC, histogram, confusion per group" "$(field out/$p.html '" ".join(d["figs"])')" "$p-roc-simplecnn-in100-24 $p-hist-simplecnn-in100-24 $p-cm-simplecnn-in100-24"
done
is "06: hard examples and confidence" "$(field out/06-phase4.html '[f for f in d["figs"] if "hard" in f or "confidence" in f]')" \
	"$("$PY" -c 'import csv,sys; r=list(csv.DictReader(open(sys.argv[1]),delimiter="\t")); print([f"06-phase4-hard-simplecnn-{k}" for k in dict.fromkeys(x["kind"].replace("_","-") for x in r)] + ["06-phase4-confidence-simplecnn"])' f/4b-final.hard.tsv)"
is "06: a thumbnail per hard example" "$(field out/06-phase4.html 'd["images"]')" "$(($(wc -l <f/4b-final.hard.tsv) - 1))"
is "07: a gallery per folder" "$(field out/07-gradcam.html '[f for f in d["figs"] if f != "07-share"]')" "['07-fold-0', '07-fold-1']"
is "07: every overlay shown" "$(field out/07-gradcam.html 'd["images"]')" "$(($(wc -l <gc0.rows.tsv) + $(wc -l <gc1.rows.tsv) - 2))"
is "01-eda: its figures" "$(field out/01-eda.html 'd["figs"]')" \
	"['01-width', '01-aspect', '01-bytes', '01-colour-mean', '01-colour-std', '01-samples']"
is "01-eda: 8 samples x 4 sources" "$(field out/01-eda.html 'd["images"]')" 32
is "01-samples.svg alone: 32 images decode" "$(field out/figures/01-samples.svg '(d["images"], d["bad_images"], d["errors"])')" "(32, [], [])"
for g in in50-24 in100-24; do
	for f in roc-simplecnn-$g hist-simplecnn-$g cm-simplecnn-$g loss-simplecnn-$g-fold0 auc-simplecnn-$g-fold1; do
		is "03-phase1: figure $f" "$(field out/03-phase1.html "'03-phase1-$f' in d['figs']")" True
	done
done
is "03-phase1: across-model figures" "$(field out/03-phase1.html "[f for f in d['figs'] if 'simplecnn' not in f]")" \
	"['03-phase1-source-auc', '03-phase1-gap', '03-phase1-params-auc', '03-phase1-scaling']"
is "03-phase1: 18 figures" "$(field out/03-phase1.html 'len(d["figs"])')" 18
is "03-phase1: the table" "$(grep -c '<td>simplecnn</td>' out/03-phase1.html)" 1
like "03-phase1: provenance" "$(grep -o "Made by <code>[^<]*</code> (fd [0-9.]*)" out/03-phase1.html)" "fd-report -q --html out --page 03-phase1 --table table.tsv runs/simplecnn/in50-24/fold0 "
like "negative control: console error caught" "$(field out/broken.html 'd["errors"]')" "boom"
is "negative control: broken images caught" "$(field out/broken.html 'len(d["bad_images"])')" 2
like "negative control: failed load caught" "$(field out/broken.html 'd["errors"]')" "load failed"
done_testing
