#!/bin/bash
# demo.t: a reduced make demo (phase 2A only, fd-synth data, 2 folds, tiny
# images, 2 epochs) with the real fd-train and fd-eval. The planted cues must
# be found: evaluating the centre-crop checkpoints on letterboxed images drops
# the AUC (aspect-ratio cue), and holding a fake source out of training drops
# that source's AUC below the in-source AUC (each source has its own texture).
. "$(dirname "$0")/../tools/lib.sh"
if [ ! -x "$BIN/fd-train" ] || [ ! -x "$BIN/fd-eval" ]; then
	echo "1..0 # SKIP fd-train and fd-eval are not built yet"
	exit 0
fi
W=$T/w
mk() {
	make -C "$top" --no-print-directory WORK="$W" DATA="$W/data" SYNTH=1 SYNTH_GROUPS=80 \
		SYNTH_CUES=aspect=1,cast=0,texture=1 SYNTH_FLAGS="--fake-size 64 --real-width 64,96" \
		FOLDS=2 FRAC=100 SIZE_HI=32 THREADS=1 EXTRA_CONFIGS="$top/configs/demo.json" "$@"
}
ok "reduced demo: make -j2 phase2a" mk -j2 phase2a
ok "2a-geometry report" test -s "$W/phase2/2a-geometry.md"
ok "2a-holdout report" test -s "$W/phase2/2a-holdout.md"

# geometry: AUC(letterbox) - AUC(center) per model, from the comparison table
d=$(awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} $c["condition"]=="center/letterbox"{print $c["delta_auc"]}' \
	"$W/phase2/2a-geometry.compare.tsv")
like "geometry: a letterbox comparison" "$d" "^-?[0-9]"
is "geometry: letterbox drops the AUC by > 0.05" "$(awk -v d="$d" 'BEGIN{print (d < -0.05) ? "drop" : "no drop (" d ")"}')" drop

# hold-out: in-source - held-out AUC per held-out source
echo "# geometry delta_auc $d; hold-out (excluded source, in-source minus held-out AUC):"
awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} $c["excluded"]!="-"{print "  " $c["excluded"] " " $c["delta"]}' \
	"$W/phase2/2a-holdout.compare.tsv" | sed "s/^/#/"
drops=$(awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} $c["excluded"]!="-" && $c["delta"]+0 > 0.05 {n++} END{print n+0}' \
	"$W/phase2/2a-holdout.compare.tsv")
like "hold-out: a held-out source drops by > 0.05" "$drops" "^[1-3]$"
done_testing
