#!/bin/bash
# report.t: fd-report on hand-made run directories (report_ref.py writes them);
# every AUC, interval, gap, per-source variance and Nadeau-Bengio p-value is
# compared with a direct scikit-learn / numpy / SciPy computation; best.json's
# choices; bad usage and bad input leave no output.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
ref() { "$PY" "$here/report_ref.py" "$@" 2>&1; }

help=$(fd-report --help | head -1 | sed -E 's/^usage: //')
is "--help usage line" "$help" "fd-report --section NAME [--config FILE] -o FILE RUN_OR_TSV... | fd-report --html DIR --page NAME [--index TSV] [--pack PACK] [--table TSV]... [RUN...]"
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
ok "2b from its folds table" fd-report -q --section 2b-resolution -o "$T/2b-again.md" "$T/2b.folds.tsv"
is "2b: same summary from the folds table" "$(cmp "$T/2b.tsv" "$T/2b-again.tsv" && echo same)" same
# ... and the same runs twice (a run shared by two tables) are merged
ok "duplicate runs are merged" fd-report -q --section 2b-resolution -o "$T/2b-dup.md" \
	"$T/2b.folds.tsv" $args
is "2b: duplicates change nothing" "$(cmp "$T/2b.tsv" "$T/2b-dup.tsv" && echo same)" same

# 2A geometry: evals of the same runs
args="$(runs simplecnn in20-224-center center) $(runs resnet18 in20-224-center center)"
ok "2a-geometry" fd-report -q --section 2a-geometry -o "$T/geo.md" $args
is "2a-geometry: values vs sklearn/scipy" "$(ref check "$T" geometry "$T/geo")" ok

# phase 1: one condition, models compared
args="$(runs simplecnn in20-128-center baseline) $(runs resnet18 in20-128-center baseline)"
ok "phase1" fd-report -q --section phase1 -o "$T/p1.md" $args
is "phase1: values vs sklearn/scipy" "$(ref check "$T" models "$T/p1")" ok

# 2A hold-out: exclude_sources read from run.json
args="$(runs simplecnn in20-224-center all) $(runs simplecnn in20-224-center-holdout-insight no-insight)"
args="$args $(runs resnet18 in20-224-center all) $(runs resnet18 in20-224-center-holdout-insight no-insight)"
ok "2a-holdout" fd-report -q --section 2a-holdout -o "$T/ho.md" $args
is "2a-holdout: values vs sklearn/scipy" "$(ref check "$T" holdout "$T/ho")" ok
like "2a-holdout: table row" "$(cat "$T/ho.md")" "\| resnet18 \| no-insight \| insight \| 5 \| "

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
	"^resolution: 224 .*\|face crop: center .*over face .*\|augmentation: center .*over center-aug"
like "best: format the pipeline reads" "$(cat "$T/best.json")" '^\{
  "size": 224,
  "geometry": "center",
  "augment": false,'
# best.mk beside it: the choices the pipelines include, read here by make itself
mkv() { make -s -f "$1" -f - v <<<'v: ; @echo $(BEST_SIZE) $(BEST_GEOMETRY) $(BEST_AUGMENT)'; }
choice="'%s %s %s' % (b['size'], b['geometry'], str(b['augment']).lower())"
is "best.mk: make reads best.json's choices" "$(mkv "$T/best.mk")" "$(js "$choice")"
# another choice, by construction: size 128 (the strong runs), face crop with augmentation
args="$(runs simplecnn in20-128-center 224) $(runs simplecnn in20-224-center 128)"
args="$args $(runs simplecnn in20-128-center center) $(runs simplecnn in20-224-center-holdout-insight face)"
args="$args $(runs simplecnn in20-224-center face-aug)"
ok "best, another choice" fd-report -q --section best -o "$T/b2.json" $args
js() { "$PY" -c "import json,sys; b=json.load(open(sys.argv[1])); print($1)" "$T/b2.json"; }
is "best: the other choice in best.json" "$(js "$choice")" "128 face true"
is "best: the other choice in best.mk, as make reads it" "$(mkv "$T/b2.mk")" "128 face true"

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
fails "not a run directory" 1 "expected a directory .../MODEL/SETTING/foldK" \
	fd-report --section phase1 -o "$T/x.md" "$T/bad/m"
fails "bad config" 1 "unknown key" sh -c "echo '{\"nope\": 1}' >'$T/c.json' && \
	fd-report --section phase1 --config '$T/c.json' -o '$T/x.md' '$T/2b.folds.tsv'"
fails "best without sizes" 1 "need two resolution conditions" \
	fd-report --section best -o "$T/b.json" "$T/ho.folds.tsv"
no_file "no best.json on failure" "$T/b.json"
no_file "no best.mk on failure" "$T/b.mk"
done_testing
