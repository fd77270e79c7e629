#!/bin/bash
# report.t: fd-report on hand-made run directories (report_ref.py writes them);
# every AUC, interval, gap, per-source variance and Nadeau-Bengio p-value is
# compared with a direct scikit-learn / numpy / SciPy computation; best.json's
# choices; bad usage and bad input leave no output.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
ref() { "$PY" "$here/report_ref.py" "$@" 2>&1; }

help=$(fd-report --help | head -1 | sed -E 's/^usage: //')
is "--help usage line" "$help" "fd-report --section NAME [--config FILE] [--geometry TSV] [--top K] [-n N] -o FILE RUN_OR_TSV... | fd-report --html DIR --page NAME [--index TSV] [--pack PACK] [--config FILE]... [--table TSV]... [INPUT...]"
# (man.t checks the man page's SYNOPSIS against --help)

ok "make run directories" "$PY" "$here/report_ref.py" make "$T"
R=$T/runs
runs() { # model setting label
	for k in 0 1 2 3 4; do printf '%s=%s/%s/%s/fold%d ' "$3" "$R" "$1" "$2" "$k"; done
}

# 2B resolution: two conditions per model
args="$(runs simplecnn in20-128-center 128) $(runs simplecnn in20-224-center 224)"
args="$args $(runs resnet18 in20-128-center 128) $(runs resnet18 in20-224-center 224)"
ok "2b-resolution" fd-report -q --section 2b-resolution --config "$top/configs/shared.json" \
	-o "$T/2b.md" $args
is "2b: values vs sklearn/scipy" "$(ref check "$T" resolution "$T/2b")" ok
like "2b: markdown table" "$(cat "$T/2b.md")" "\| resnet18 \| 128 \| 224 \| 5 \| [+-]0\.[0-9]{3} \|"
like "2b: config quoted" "$(cat "$T/2b.md")" '"T_max":15'
ok "2b: folds table written" test -s "$T/2b.folds.tsv"

# The folds table reads back: the same report from it
# (the test-set columns need the scored rows, which only run directories hold: NA from a folds table)
ok "2b from its folds table" fd-report -q --section 2b-resolution -o "$T/2b-again.md" "$T/2b.folds.tsv"
notest() { awk -F'\t' 'NR==1{for(i=1;i<=NF;i++) keep[i] = $i !~ /^test_/} {s=""; for(i=1;i<=NF;i++) if (keep[i]) s = s $i "\t"; print s}' "$1"; }
is "2b: same validation summary from the folds table" "$(cmp <(notest "$T/2b.tsv") <(notest "$T/2b-again.tsv") && echo same)" same
is "2b: no test numbers from a folds table" "$(notest "$T/2b-again.tsv" | wc -l) $(cut -f16 "$T/2b-again.tsv" | sort -u | tr '\n' ' ')" "5 NA test_auc "
# ... and the same runs twice (a run shared by two tables) are merged
ok "duplicate runs are merged" fd-report -q --section 2b-resolution -o "$T/2b-dup.md" \
	"$T/2b.folds.tsv" $args
is "2b: duplicates change nothing" "$(cmp "$T/2b.tsv" "$T/2b-dup.tsv" && echo same)" same

# 2A geometry (doc/shortcuts.md): G trained on letterbox, scored under letterbox
# and matched; the control C on matched. Delta, NB interval and p, DeLong on the
# pooled scores (a direct O(mn) DeLong in report_ref.py), verdict; no gap on the
# evaluation-only row
args="$(runs simplecnn in20-224-letterbox letterbox) $(runs simplecnn in20-224-matched matched)"
args="$args $(runs resnet18 in20-224-letterbox letterbox) $(runs resnet18 in20-224-matched matched)"
ok "2a-geometry" fd-report -q --section 2a-geometry -o "$T/geo.md" $args
is "2a-geometry: values vs sklearn/scipy, one verdict each way" "$(ref check "$T" geometry "$T/geo")" ok
like "2a-geometry: the verdict in the Markdown" "$(cat "$T/geo.md")" "\| simplecnn \| 5 \| .* \| geometry shortcut found \|"
like "2a-geometry: evaluation-only row without gap" "$(cat "$T/geo.md")" "\| resnet18 \| letterbox \| matched \| 5 \| [0-9.]+ ± [0-9.]+ \| [^|]* \|( [^|]* \|){7} - \| - \|"
ok "2a-geometry from folds tables only" fd-report -q --section 2a-geometry -o "$T/geo2.md" "$T/geo.folds.tsv"
is "2a-geometry from folds tables: no pooled scores, DeLong NA" \
	"$(awk -F'\t' 'NR>1{print $10, $14}' "$T/geo2.compare.tsv" | sort -u)" "0 NA"
mkdir -p "$T/badgeo/simplecnn/s/fold0"
cp "$R/simplecnn/in20-224-letterbox/fold0/preds-val.tsv" "$T/badgeo/simplecnn/s/fold0/"
sed '3s/^[^\t]*/other.jpg/' "$R/simplecnn/in20-224-letterbox/fold0/preds-matched.tsv" >"$T/badgeo/simplecnn/s/fold0/preds-matched.tsv"
fails "2a-geometry: unpaired rows name the file and line" 1 "preds-matched.tsv': line 3: path 'other.jpg' does not pair" \
	fd-report --section 2a-geometry -o "$T/bg.md" "letterbox=$T/badgeo/simplecnn/s/fold0"
no_file "2a-geometry: nothing written on failure" "$T/bg.md"

# phase 1: one condition, models compared
args="$(runs simplecnn in20-128-center baseline) $(runs resnet18 in20-128-center baseline)"
ok "phase1" fd-report -q --section phase1 -o "$T/p1.md" $args
is "phase1: values vs sklearn/scipy" "$(ref check "$T" models "$T/p1")" ok
like "phase1: Selection note" "$(cat "$T/p1.md")" "\*\*Selection\.\*\* Each run's checkpoint is the epoch with the best validation AUC.*test set was used for no choice"
is "phase1: no phase-2 choice claimed" "$(grep -c 'best.json' "$T/p1.md")" 0

# 2A hold-out: exclude_sources read from run.json
args="$(runs simplecnn in20-224-center all) $(runs simplecnn in20-224-center-holdout-insight no-insight)"
args="$args $(runs resnet18 in20-224-center all) $(runs resnet18 in20-224-center-holdout-insight no-insight)"
ok "2a-holdout" fd-report -q --section 2a-holdout -o "$T/ho.md" $args
is "2a-holdout: values vs sklearn/scipy" "$(ref check "$T" holdout "$T/ho")" ok
like "2a-holdout: table row" "$(cat "$T/ho.md")" "\| resnet18 \| no-insight \| insight \| 5 \| "

# 2C: the face-detection rate per source, from fd-facecrop's face_note in the
# face runs' preds (every fold, the first model of a label); reals 2 of 4, fakes 3 of 3
for k in 0 1; do
	for m in simplecnn resnet18; do
		d=$T/fc/$m/in20-224-face/fold$k
		mkdir -p "$d"
		{
			printf 'path\tsource\tlabel\tface_note\tscore\n'
			printf 'w%d.jpg\twiki\t0\tok\t0.2\nv%d.jpg\twiki\t0\tnoface\t0.4\n' $k $k
			printf 't%d.jpg\ttext2img\t1\tok\t0.7\n' $k
			[ $k = 0 ] && printf 'u0.jpg\ttext2img\t1\tok\t0.9\n'
		} >"$d/preds-val.tsv"
		cp "$d/preds-val.tsv" "$d/preds-train.tsv"
		mkdir -p "$T/fc/$m/in20-224-center/fold$k"
		cut -f1-3,5 "$d/preds-val.tsv" >"$T/fc/$m/in20-224-center/fold$k/preds-val.tsv"
		cp "$T/fc/$m/in20-224-center/fold$k/preds-val.tsv" "$T/fc/$m/in20-224-center/fold$k/preds-train.tsv"
	done
done
args=$(for m in simplecnn resnet18; do for k in 0 1; do printf 'center=%s face=%s ' "$T/fc/$m/in20-224-center/fold$k" "$T/fc/$m/in20-224-face/fold$k"; done; done)
ok "2c-facecrop with face_note" fd-report -q --section 2c-facecrop -o "$T/2c.md" $args
is "2c: face-detection rate per source, counted once per row" \
	"$(grep -E '^\| face \| (wiki|text2img) \|' "$T/2c.md" | sort)" "| face | text2img | 3 | 3 | 100.0% |
| face | wiki | 4 | 2 | 50.0% |"
is "2c: no rate for conditions without face_note" "$(grep -c '^| center | wiki |' "$T/2c.md")" 0
ok "2d: no face-detection section" fd-report -q --section 2d-augment -o "$T/2d.md" $args
is "2d: no face-detection table" "$(grep -c '## Face detection' "$T/2d.md")" 0

# best.json: 224 beats 128 by construction (stronger signal); face/augment from labels
args="$(runs simplecnn in20-128-center 128) $(runs simplecnn in20-224-center 224)"
args="$args $(runs simplecnn in20-224-center center) $(runs simplecnn in20-128-center face)"
args="$args $(runs simplecnn in20-224-center-holdout-insight center-aug)"
ok "best" fd-report -q --section best -o "$T/best.json" $args
js() { "$PY" -c "import json,sys; b=json.load(open(sys.argv[1])); print($1)" "$T/best.json"; }
is "best: size" "$(js "b['size']")" 224
is "best: geometry" "$(js "b['geometry']")" center
is "best: augment" "$(js "b['augment']")" False
like "best: a reason per choice" "$(js "'|'.join(b['reason'][k] for k in ('size','geometry','augment'))")" \
	"^resolution: center .*over 128 .*\|geometry: center .*over face .*\|augmentation: center .*over center-aug"
is "best: the candidates, center's size found from its runs" \
	"$(js "' '.join('%s:%d:%s' % (c['condition'], c['size'], c['chosen']) for c in b['candidates'])")" \
	"128:128:False center:224:True face:224:False center-aug:224:False"
like "best: format the pipeline reads" "$(cat "$T/best.json")" '^\{
  "size": 224,
  "geometry": "center",
  "augment": false,'
# best.mk beside it: the choices the pipelines include, read here by make itself
mkv() { make -s -f "$1" -f - v <<<'v: ; @echo $(BEST_SIZE) $(BEST_GEOMETRY) $(BEST_AUGMENT)'; }
choice="'%s %s %s' % (b['size'], b['geometry'], str(b['augment']).lower())"
is "best.mk: make reads best.json's choices" "$(mkv "$T/best.mk")" "$(js "$choice")"
# another choice, by construction: the strong runs are labelled 128 and
# face-aug (at 224, center's size): one of the two combinations that were run
# (the same AUC and indicators: the first, 128), never "128 face true", which
# combines them but was never run
args="$(runs simplecnn in20-128-center 224) $(runs simplecnn in20-224-center 128)"
args="$args $(runs simplecnn in20-128-center center) $(runs simplecnn in20-224-center-holdout-insight face)"
args="$args $(runs simplecnn in20-224-center face-aug)"
ok "best, another choice" fd-report -q --section best -o "$T/b2.json" $args
js() { "$PY" -c "import json,sys; b=json.load(open(sys.argv[1])); print($1)" "$T/b2.json"; }
is "best: the other choice in best.json, a combination that was run" "$(js "$choice")" "128 center false"
is "best: the other choice in best.mk, as make reads it" "$(mkv "$T/b2.mk")" "128 center false"
# with 2A's letterbox runs (G) as a candidate: the geometry verdict decides
args="$(runs simplecnn in20-128-center 128) $(runs simplecnn in20-224-center 224)"
args="$args $(runs simplecnn in20-224-center center) $(runs simplecnn in20-128-center face)"
args="$args $(runs simplecnn in20-224-letterbox letterbox)"
ok "best with letterbox, no geometry table" fd-report -q --section best -o "$T/b3.json" $args
js() { "$PY" -c "import json,sys; b=json.load(open(sys.argv[1])); print($1)" "$T/b3.json"; }
lb=$(js "[c['mean_val_auc'] > b['mean_val_auc']['center'] for c in b['candidates'] if c['condition'] == 'letterbox'][0]")
is "best: letterbox has the best AUC here" "$lb" True
is "best: letterbox chosen when 2A was not run" "$(js "b['geometry']")" letterbox
ok "best with the geometry verdict" fd-report -q --section best --geometry "$T/geo.compare.tsv" -o "$T/b4.json" $args
js() { "$PY" -c "import json,sys; b=json.load(open(sys.argv[1])); print($1)" "$T/b4.json"; }
is "best: letterbox excluded after a geometry shortcut" "$(js "b['geometry'], [c['excluded'] is not None for c in b['candidates'] if c['condition'] == 'letterbox']")" "center [True]"
like "best: the 2A evidence quoted" "$(js "b['geometry_test']")" "simplecnn: delta -0\.[0-9]+, DeLong p .*: geometry shortcut found"
fails "--geometry only for best" 2 "--geometry is for --section best" \
	fd-report --section 2b-resolution --geometry "$T/geo.compare.tsv" -o "$T/x.md" "$T/2b.folds.tsv"
fails "--geometry: not a geometry table" 1 "2b.compare.tsv' \(a 2a-geometry test table\)" \
	fd-report --section best --geometry "$T/2b.compare.tsv" -o "$T/b5.json" $args
no_file "no best.json after a bad geometry table" "$T/b5.json"

# bad usage and bad input
fails "no --section" 2 "--section is required" fd-report -o "$T/x.md" "$T/2b.folds.tsv"
fails "unknown section" 2 "unknown section 'phase9'" fd-report --section phase9 -o "$T/x.md" "$T/2b.folds.tsv"
fails "no inputs" 2 "no runs" fd-report --section phase1 -o "$T/x.md"
fails "missing run" 1 "cannot read '$T/nope'" fd-report --section phase1 -o "$T/x.md" "$T/nope"
no_file "nothing written on failure" "$T/x.md"
mkdir -p "$T/bad/m/s/fold0"
printf 'source\tlabel\tscore\nwiki\t0\t0.5\ntext2img\t2\t0.1\n' >"$T/bad/m/s/fold0/preds-val.tsv"
fails "bad label names file and line" 1 "preds-val.tsv': line 3: label '2'" \
	fd-report --section phase1 -o "$T/x.md" "$T/bad/m/s/fold0"
no_file "no report from a bad run" "$T/x.md"
no_file "no tables from a bad run" "$T/x.tsv"
cp -r "$R/simplecnn/in20-128-center" "$T/bad/m/cut" && sed -i '5d' "$T/bad/m/cut/fold3/preds-test.tsv"
fails "fold models scoring different test rows: named" 1 "model 'm': preds-test.tsv of fold [0-9] and fold [0-9] score different rows" \
	fd-report --section phase1 -o "$T/x.md" "$T/bad/m/cut/fold0" "$T/bad/m/cut/fold3"
no_file "no report from different test rows" "$T/x.md"
fails "not a run directory" 1 "expected a directory .../MODEL/SETTING/foldK" \
	fd-report --section phase1 -o "$T/x.md" "$T/bad/m"
fails "bad config" 1 "unknown key" sh -c "echo '{\"nope\": 1}' >'$T/c.json' && \
	fd-report --section phase1 --config '$T/c.json' -o '$T/x.md' '$T/2b.folds.tsv'"
fails "best without sizes" 1 "need two resolution conditions" \
	fd-report --section best -o "$T/b.json" "$T/ho.folds.tsv"
no_file "no best.json on failure" "$T/b.json"
no_file "no best.mk on failure" "$T/b.mk"

# Phase 4B: the choice of models (top.json, top.mk, top.md) from validation
# AUCs, and the final test-set section (per-source ensemble metrics, pairwise
# DeLong with Holm, hard examples, confidence histograms) against sklearn/numpy
nolabel() { for k in 0 1 2 3 4; do printf '%s/%s/%s/fold%d ' "$R" "$1" "$2" "$k"; done; }
args="$(nolabel simplecnn in20-128-center) $(nolabel simplecnn in20-224-center)"
args="$args $(nolabel resnet18 in20-128-center) $(nolabel resnet18 in20-224-center)"
mkdir -p "$T/p4"
ok "top" fd-report -q --section top --top 1 -o "$T/p4/top.json" $args
is "top 1: the choice vs sklearn" "$(ref top "$T" "$T/p4/top.json" 1)" ok
ok "top 3 (more than there are models)" fd-report -q --section top --top 3 -o "$T/p4/top3.json" $args
is "top 3: both models, ranked" "$(ref top "$T" "$T/p4/top3.json" 3)" ok
like "top.md: the rule" "$(cat "$T/p4/top3.md")" "\*\*Rule\.\*\* The 3 models with the highest cross-validated validation AUC"
like "top.md: the ranking" "$(cat "$T/p4/top3.md")" "\| 1 \| [a-z0-9]+ \| in20-224-center \| 5 \| 0\.[0-9]{3} \| yes \|"
fails "top: --top 0" 2 "--top" fd-report --section top --top 0 -o "$T/p4/t0.json" $args
fails "--top is for section top" 2 "--top is for --section top" fd-report --section phase1 --top 2 -o "$T/p4/x.md" $args
fails "top: no validation AUC in a folds table without rows" 1 "no run with a validation AUC" \
	sh -c "printf 'condition\tmodel\tfold\teval\tsubset\tn_real\tn_fake\tn_train\tauc\texcluded\n' >'$T/p4/empty.tsv' && fd-report --section top -o '$T/p4/t1.json' '$T/p4/empty.tsv'"
no_file "top: no top.json on failure" "$T/p4/t1.json"
no_file "top: no top.mk on failure" "$T/p4/t1.mk"
fargs="$(runs simplecnn in20-224-center full) $(runs resnet18 in20-224-center full)"
ok "4b-final" fd-report -q --section 4b-final -n 4 -o "$T/p4/4b-final.md" $fargs
is "4b-final: values vs sklearn/numpy/statsmodels" "$(ref final "$T" "$T/p4/4b-final" 4)" ok
md=$(cat "$T/p4/4b-final.md")
like "4b-final: per-source rows" "$md" "\| resnet18 \| full \| 5 \| insight \| 45 \| 15 \| [0-9.]+ \| \[[0-9.]+, [0-9.]+\] \|"
like "4b-final: the pair" "$md" "\| simplecnn \| resnet18 \| 90 \| [-0-9.]+ \|"
like "4b-final: hard examples listed" "$md" "- wiki, false positives \([0-9]+ in all\): \`test/[0-9]+\.jpg\` [0-9.]+"
like "4b-final: confidence summary" "$md" "\| simplecnn \| text2img \| fake \| 15 \| [0-9.]+ \| [0-9.]+ \| \`[0-9 ]+\` \|"
is "4b-final: at most 4 hard examples each" "$(cut -f1,3,4 "$T/p4/4b-final.hard.tsv" | sort | uniq -c | awk '$1 > 4' | wc -l)" 0
is "4b-final: 20 bins per model, source and label" "$(($(wc -l <"$T/p4/4b-final.confidence.tsv") - 1))" $((2 * 4 * 20))
fails "-n is for 4b-final" 2 "-n is for --section 4b-final" fd-report --section top -n 3 -o "$T/p4/x.json" $args
fails "4b-final without scores" 1 "no run with test scores" fd-report --section 4b-final -o "$T/p4/bad.md" "$T/2b.folds.tsv"
for f in bad.md bad.tsv bad.compare.tsv bad.hard.tsv bad.confidence.tsv; do no_file "4b-final: no $f on failure" "$T/p4/$f"; done
done_testing
