#!/bin/bash
# pipelines.t: the Make graph of make phase1..phase4 / report on a tiny fd-synth
# set, with the real data tools and fd-report but mocked fd-train, fd-eval and
# fd-facecrop (tests/tools/mock/: they only write their outputs' shapes). Checks
# the whole graph runs under -j, is then up to date, that touching one config
# reruns only its dependents, that LAUNCH prefixes every training and
# evaluation, and that phase 3/4 follow best.json.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$T/fd"
for t in fd-synth fd-index fd-split fd-pack fd-report; do ln -s "$BIN/$t" "$T/fd/$t"; done
for t in fd-train fd-eval fd-facecrop; do ln -s "$here/mock/$t" "$T/fd/$t"; done
cp -r "$top/configs" "$T/conf"
W=$T/w
mk() {
	make -C "$top" --no-print-directory FD="$T/fd" CONF="$T/conf" WORK="$W" DATA="$W/data" SYNTH=1 \
		SYNTH_GROUPS=40 SYNTH_FLAGS="--fake-size 32 --real-width 32,48 --threads 1" FOLDS=2 FRAC=100 \
		SIZE_LO=16 SIZE_HI=24 P3_MODELS=mobilenet_v3_small P4_MODELS=simplecnn "$@"
}

ok "make -j4 phase2" mk -j4 phase2
for f in 2a-geometry 2a-colour 2a-holdout 2b-resolution 2c-facecrop 2d-augment 2e-augment-facecrop; do
	ok "phase2: $f.md" test -s "$W/phase2/$f.md"
done
ok "phase2: best.json" test -s "$W/phase2/best.json"
ok "phase2: letterbox evaluation" test -s "$W/runs/resnet18/in100-24-center/fold1/preds-letterbox.tsv"
like "phase2: hold-out rows" "$(cat "$W/phase2/2a-holdout.md")" "\| resnet18 \| no-insight \| insight \| 2 \|"
ok "phase2 is then up to date" mk -q phase2
is "14 settings x 2 folds trained" "$(ls -d "$W"/runs/*/*/fold* | wc -l)" 28

# touching one config reruns its dependents only
touch "$T/conf/augment.json"
n=$(mk -n phase2)
is "augment.json: 8 runs retrained" "$(grep -c '/fd-train ' <<<"$n")" 8
is "augment.json: only augmented runs" "$(grep '/fd-train ' <<<"$n" | grep -vc 'augment.json')" 0
is "augment.json: reports 2d, 2e and best" \
	"$(grep -o -- '--section [a-z0-9-]*' <<<"$n" | sort | tr '\n' ' ')" \
	"--section 2d-augment --section 2e-augment-facecrop --section best "
ok "rerun" mk -j2 phase2
touch "$T/conf/models/simplecnn.json"
n=$(mk -n phase2)
is "simplecnn.json: 10 simplecnn runs retrained" "$(grep '/fd-train ' <<<"$n" | grep -c 'models/simplecnn.json')" 10
is "simplecnn.json: no other run" "$(grep -c '/fd-train ' <<<"$n")" 10
ok "rerun" mk -j2 phase2
touch "$T/conf/holdout-insight.json"
n=$(mk -n phase2)
is "holdout-insight.json: 2 runs, 2a-holdout only" \
	"$(grep -c '/fd-train ' <<<"$n") $(grep -o -- '--section [a-z0-9-]*' <<<"$n" | tr '\n' ' ')" \
	"2 --section 2a-holdout "
ok "rerun" mk phase2

# LAUNCH goes before every fd-train and fd-eval, nothing else
n=$(mk -n -W "$T/conf/shared.json" phase2 LAUNCH="srun -N1 --gres=gpu:1")
like "LAUNCH: some commands" "$(grep -c 'fd-train\|fd-eval' <<<"$n")" "^[1-9][0-9]+$"
is "LAUNCH: before every fd-train/fd-eval" "$(grep -E '/fd-(train|eval) ' <<<"$n" | grep -vc '^srun -N1 --gres=gpu:1 ')" 0
is "LAUNCH: not before other tools" "$(grep -E '/fd-(report|pack) ' <<<"$n" | grep -c '^srun')" 0

# phase 3 and 4 at the choices of best.json
ok "make phase3 phase4 report" mk -j2 report
size=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['size'])" "$W/phase2/best.json")
ok "phase3 runs at best.json's size" test -d "$W/runs/mobilenet_v3_small/in100-$size-center" -o \
	-d "$W/runs/mobilenet_v3_small/in100-$size-face" -o -d "$W/runs/mobilenet_v3_small/in100-$size-center-augment" -o \
	-d "$W/runs/mobilenet_v3_small/in100-$size-face-augment"
ok "phase4: 20/50/100% packs" test -s "$W/packs/in20-$size-$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['geometry'])" "$W/phase2/best.json").safetensors"
ok "report.md" test -s "$W/report.md"
like "report.md has every phase" "$(grep '^# ' "$W/report.md" | tr '\n' '|')" \
	"Phase 1.*2A, test 1.*Phase 2E.*Phase 3.*Phase 4A"
ok "report then up to date" mk -q report-all

# a failed training leaves no run that Make would take as finished
rm -rf "$W/runs/simplecnn/in100-16-center/fold0"
MOCK_FAIL=1 mk phase1 >/dev/null 2>&1
is "failed training: make fails" "$?" 2
ok "failed training: no run.json" test ! -e "$W/runs/simplecnn/in100-16-center/fold0/run.json"
ok "failed training: not evaluated" test ! -e "$W/runs/simplecnn/in100-16-center/fold0/preds-val.tsv"
ok "failed training: retried next time" mk phase1
ok "then up to date" mk -q phase1
done_testing
