#!/bin/bash
# demo.t: a reduced make demo (phase 2A's geometry and source hold-out tests on
# fd-synth data, 2 folds, 32-px packs) with the real fd-train and fd-eval. The
# planted cues must be found and an absent one not: the letterbox-trained model
# loses AUC under matched geometry when the aspect cue is planted and not when
# fakes share the reals' aspect, and holding a fake source out of training
# drops that source's AUC below the in-source AUC (each fake source has its
# own texture).
#
# Scale: 80 groups (64-px fakes, reals 64-96 px wide: both downscaled to the
# pack, which narrows the sharpness gap common to all fakes; doc/pipelines.md), cues aspect=1, cast=0 (a
# cast shared by all fakes would carry over to the held-out one), texture=1
# (the strongest fd-synth plants); SimpleCNN, 20 epochs at lr 3e-3 (resnet18
# at 2 epochs learnt too little: in-source AUC 0.55-0.6 and the hold-out drop
# passed its 0.05 threshold by 0.0003). 8 trainings, one thread each, -j2:
# 43-60 s wall, 40 CPU s, on the 2 shared cores at load 7-9.
#
# Geometry (doc/shortcuts.md): G trained on letterbox, scored under matched
# geometry; verdict "geometry shortcut found" needs delta < -0.05 and DeLong
# p < 0.05. Run both ways: aspect cue planted (square fakes) and, on a second
# data set, --fake-aspect real (fakes share the reals' aspect): 4 more
# trainings. Whole test ~75 CPU s. Observed 2026-12-04 (delta, DeLong p):
#   seed             42             1              7              3              11
#   planted   -0.436 2.9e-30 -0.450 4.5e-31 -0.405 6.6e-26 -0.480 2.2e-33 -0.469 3.3e-34
#   shared    -0.003 0.034   +0.001 0.647   -0.001 0.480   +0.003 0.394   -0.009 0.044
# Margins: planted drop 0.355 beyond the threshold (seed 7); shared 0.041
# short of it (seed 11).
# Observed with DEMO_SEED (fd-synth data and split; training is deterministic
# at one thread, so a seed always gives these numbers), 2026-11-28:
#   seed                                  42      1      7      3     11
#   hold-out delta (in-source - held-out):
#     text2img                           0.064  0.081  0.128  0.039  0.079
#     inpainting                         0.228  0.153  0.108  0.213  0.132
#     insight                           -0.011 -0.079 -0.072 -0.065  0.021
# Smallest margin over the 0.05 threshold: largest hold-out drop 0.078
# (seed 7); inpainting alone dropped > 0.1 every time.
# (Seeds 1 and 7 were run through the same make command outside prove.)
# Hold-out verdict (doc/shortcuts.md, 2A test 3): "source-specific features
# found" needs delta > 0.05 and, with 2 folds, DeLong's unpaired p < 0.05.
# Run both ways: texture planted (above) and, on a third data set, texture=0,
# cast=0, --fake-aspect real (no per-source cue): 8 more trainings, ~40 CPU s.
# The 5-seed margins are in doc/shortcuts.md.
# Since fd-split reads configs/shared.json (--config), DEMO_SEED seeds the
# fd-synth data only; the split is shared.json's seed (42). The columns above
# other than 42 were observed when SEED also seeded the split.
. "$(dirname "$0")/lib.sh"
if [ ! -x "$BIN/fd-train" ] || [ ! -x "$BIN/fd-eval" ]; then
	echo "1..0 # SKIP fd-train and fd-eval are not built yet"
	exit 0
fi
W=$T/w
# configs/demo.json is the recipe (20 epochs, lr 3e-3, no early stopping), as in make demo
mk() {
	make -C "$top" --no-print-directory FD="$BIN" WORK="$W" DATA="$W/data" SYNTH=1 SYNTH_GROUPS=80 \
		SEED="${DEMO_SEED:-42}" SYNTH_CUES=aspect=1,cast=0,texture=1 \
		SYNTH_FLAGS="--fake-size 64 --real-width 64,96 --threads 1" FOLDS=2 FRAC=100 SIZE_HI=32 \
		THREADS=1 P2A_MODEL=simplecnn EXTRA_CONFIGS="$top/configs/demo.json" "$@"
}
if mk -j2 "$W/phase2/2a-geometry.md" "$W/phase2/2a-holdout.md" >"$T/mk.log" 2>&1; then
	_report 0 "reduced demo: make -j2 2a-geometry 2a-holdout"
else
	_report 1 "reduced demo: make -j2 2a-geometry 2a-holdout"
	tail -20 "$T/mk.log" | sed 's/^/#   /'
fi
ok "2a-geometry report" test -s "$W/phase2/2a-geometry.md"
ok "2a-holdout report" test -s "$W/phase2/2a-holdout.md"

# geometry (doc/shortcuts.md): G trained on letterbox, scored under matched
# geometry; the verdict row of the geometry test table
col() { # file column: the value of column in the model's row
	awk -F'\t' -v k="$2" 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} $c["model"]=="simplecnn"{print $c[k]}' "$1"
}
G=$W/phase2/2a-geometry.compare.tsv
d=$(col "$G" delta) p=$(col "$G" delong_p)
echo "# seed ${DEMO_SEED:-42}, aspect cue planted: delta $d (NB p $(col "$G" p)), DeLong p $p, AUC_C $(col "$G" auc_c_matched)"
is "geometry, cue planted: the verdict" "$(col "$G" verdict)" "geometry shortcut found"
is "geometry, cue planted: delta < -0.05 and DeLong p < 0.05" \
	"$(awk -v d="$d" -v p="$p" 'BEGIN{print (d < -0.05 && p < 0.05) ? "yes" : "no (" d ", " p ")"}')" yes
is "geometry: the control was trained on matched packs" "$(col "$G" control_folds)" 2
# an evaluation-only row has no train AUC or gap (they would mix geometries)
is "geometry: letterbox/matched row shows no train AUC or gap" \
	"$(awk -F'\t' '$2=="letterbox" && $3=="matched"{print $9, $10}' "$W/phase2/2a-geometry.tsv")" "NA NA"

# hold-out: in-source - held-out AUC per held-out source
echo "# seed ${DEMO_SEED:-42}: hold-out (excluded source, in-source minus held-out AUC):"
awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} $c["excluded"]!="-"{print "  " $c["excluded"] " " $c["delta"]}' \
	"$W/phase2/2a-holdout.compare.tsv" | sed "s/^/#/"
drops=$(awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} $c["excluded"]!="-" && $c["delta"]+0 > 0.05 {n++} END{print n+0}' \
	"$W/phase2/2a-holdout.compare.tsv")
like "hold-out: a held-out source drops by > 0.05" "$drops" "^[1-3]$"
hv() { # the verdicts of the held-out sources, one a line
	awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} $c["excluded"]!="-"{print $c["verdict"]}' "$1"
}
like "hold-out, texture planted: a source flagged" "$(hv "$W/phase2/2a-holdout.compare.tsv")" \
	"source-specific features found"

# the hold-out's negative control: no per-source cue (texture=0, cast=0) and
# the reals' aspect shared, so no held-out source can be told apart from the
# trained ones and none is flagged (doc/shortcuts.md: 5 seeds both ways)
W3=$T/w3
if mk -j2 WORK="$W3" DATA="$W3/data" SYNTH_CUES=aspect=1,cast=0,texture=0 \
	SYNTH_FLAGS="--fake-size 64 --real-width 64,96 --threads 1 --fake-aspect real" \
	"$W3/phase2/2a-holdout.md" >"$T/mk3.log" 2>&1; then
	_report 0 "reduced demo, no per-source cue: make -j2 2a-holdout"
else
	_report 1 "reduced demo, no per-source cue: make -j2 2a-holdout"
	tail -20 "$T/mk3.log" | sed 's/^/#   /'
fi
H=$W3/phase2/2a-holdout.compare.tsv
echo "# seed ${DEMO_SEED:-42}, no per-source cue: hold-out (excluded source, delta, pooled delta, DeLong p):"
awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} $c["excluded"]!="-"{print "#  " $c["excluded"] " " $c["delta"] " " $c["pooled_delta"] " " $c["delong_p"]}' "$H"
is "hold-out, no per-source cue: 3 held-out sources, none flagged" \
	"$(hv "$H" | sort | uniq -c | sed 's/^ *//')" "3 no evidence of source-specific features"

# the negative control: fakes share the reals' aspect (bars on both classes
# under letterbox), so no geometry shortcut can be learnt and none is found
W2=$T/w2
if mk -j2 WORK="$W2" DATA="$W2/data" \
	SYNTH_FLAGS="--fake-size 64 --real-width 64,96 --threads 1 --fake-aspect real" \
	"$W2/phase2/2a-geometry.md" >"$T/mk2.log" 2>&1; then
	_report 0 "reduced demo, shared aspect: make -j2 2a-geometry"
else
	_report 1 "reduced demo, shared aspect: make -j2 2a-geometry"
	tail -20 "$T/mk2.log" | sed 's/^/#   /'
fi
G=$W2/phase2/2a-geometry.compare.tsv
echo "# seed ${DEMO_SEED:-42}, shared aspect: delta $(col "$G" delta), DeLong p $(col "$G" delong_p)"
is "geometry, shared aspect: the verdict" "$(col "$G" verdict)" "no evidence of a geometry shortcut"
like "geometry, shared aspect: a delta was measured" "$(col "$G" delta)" "^-?[0-9]"
done_testing
