#!/bin/bash
# onednn_ab.sh: fd on oneDNN 2.6 (Debian's, ONEDNN=2) against fd on oneDNN 3.2
# (ONEDNN=3, scripts/onednn3.sh), whole models: bench/models built both ways
# (into build-onednn2/ and build-onednn3/) and run alternately, REPS times
# (default 2; the order flips each repetition), batch 32, 2 threads, each
# model's step counts fixed by its first run. Prints every run's line and
# then, per model, the medians and the ratio 3.2 / 2.6 of training and
# inference images/s and of peak memory (doc/onednn.md "oneDNN 3 on AVX2
# CPUs").
# Usage: bench/onednn_ab.sh          (make bench-onednn-ab)
# Environment: MODELS (NAME@SIZE, default the seven of issue 15), REPS
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${MODELS:-simplecnn@128 resnet18@128 resnet18@224 mobilenet_v3_small@224 efficientnet_b0@224 resnet50@224 convnext_tiny@224}
REPS=${REPS:-2}
export OMP_WAIT_POLICY=PASSIVE
for v in 2 3; do
	make -s B=build-onednn$v ONEDNN=$v -j2 build-onednn$v/bench/models >&2
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores;" \
	"fd $(git describe --always --dirty 2>/dev/null || echo '?'); REPS $REPS; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# version model size train_img/s infer_img/s infer_peak_MiB peak_MiB W S IW IS GMACs"
for c in $MODELS; do
	name=${c%@*} size=${c#*@}
	counts=
	for r in $(seq "$REPS"); do
		order="2 3"
		[ $((r % 2)) = 0 ] && order="3 2"
		for v in $order; do
			# shellcheck disable=SC2086
			l=$(build-onednn$v/bench/models "$name" "$size" 32 2 $counts)
			[ -n "$counts" ] || counts=$(echo "$l" | cut -f7-10 | tr '\t' ' ')
			printf '%s\t%s\n' "$v" "$l" | tee -a "$out"
		done
	done
done
echo
echo "| model | train 2.6 | train 3.2 | 3.2 / 2.6 | infer 2.6 | infer 3.2 | 3.2 / 2.6 | peak 3.2 / 2.6 |"
echo "|---|---|---|---|---|---|---|---|"
/usr/bin/python3 - "$out" <<'PY'
import sys, statistics as st
rows = {}
order = []
for l in open(sys.argv[1]):
    f = l.rstrip("\n").split("\t")
    key = "%s@%s" % (f[1], f[2])
    if key not in rows:
        rows[key] = {"2": [], "3": []}
        order.append(key)
    rows[key][f[0]].append((float(f[3]), float(f[4]), float(f[6])))
for k in order:
    m = {v: [st.median(x[i] for x in rows[k][v]) for i in range(3)] for v in "23"}
    print("| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |" % (k, m["2"][0], m["3"][0], m["3"][0] / m["2"][0],
          m["2"][1], m["3"][1], m["3"][1] / m["2"][1], m["3"][2] / m["2"][2]))
PY
