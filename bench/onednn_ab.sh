#!/bin/bash
# onednn_ab.sh: fd on one oneDNN against fd on others, whole models:
# bench/models built once per version (VERSIONS: 2 is Debian's 2.6,
# ONEDNN=2, into build-onednn2/; 3.2 is PyPI's wheel, ONEDNN=3, into
# build-onednn3/; 3.7 is built from Debian 13's source, ONEDNN=3
# ONEDNN3=3.7, into build-onednn3.7/: about 32 minutes on 2 cores the first
# time) and run alternately, REPS times (default 2; the order reverses each
# repetition), batch 32, 2 threads, each model's step counts fixed by its
# first run. Prints every run's line and then, per model, the medians and
# the ratio of each version to the first one in VERSIONS, of training and
# inference images/s and of peak memory (doc/onednn.md "oneDNN 3 on AVX2
# CPUs").
# Usage: bench/onednn_ab.sh          (make bench-onednn-ab)
# Environment: VERSIONS (default "2 3.2"), MODELS (NAME@SIZE, default the
#   seven of issue 15), REPS
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=${MODELS:-simplecnn@128 resnet18@128 resnet18@224 mobilenet_v3_small@224 efficientnet_b0@224 resnet50@224 convnext_tiny@224}
VERSIONS=${VERSIONS:-2 3.2}
REPS=${REPS:-2}
export OMP_WAIT_POLICY=PASSIVE
dir() { # VERSION: its build folder
	case $1 in 2) echo build-onednn2 ;; 3.2) echo build-onednn3 ;; *) echo "build-onednn$1" ;; esac
}
for v in $VERSIONS; do
	case $v in
	2) flags="ONEDNN=2" ;;
	3.*) flags="ONEDNN=3 ONEDNN3=$v" ;;
	*) echo "onednn_ab: version '$v': say 2, 3.2 or 3.7" >&2; exit 1 ;;
	esac
	# shellcheck disable=SC2086
	make -s B="$(dir "$v")" $flags -j2 "$(dir "$v")/bench/models" >&2
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores;" \
	"fd $(git describe --always --dirty 2>/dev/null || echo '?'); oneDNN $VERSIONS; REPS $REPS;" \
	"load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# version model size train_img/s infer_img/s infer_peak_MiB peak_MiB W S IW IS GMACs"
rev=$(echo "$VERSIONS" | tr ' ' '\n' | tac | tr '\n' ' ')
for c in $MODELS; do
	name=${c%@*} size=${c#*@}
	counts=
	for r in $(seq "$REPS"); do
		order=$VERSIONS
		[ $((r % 2)) = 0 ] && order=$rev
		for v in $order; do
			# shellcheck disable=SC2086
			l=$("$(dir "$v")"/bench/models "$name" "$size" 32 2 $counts)
			[ -n "$counts" ] || counts=$(echo "$l" | cut -f7-10 | tr '\t' ' ')
			printf '%s\t%s\n' "$v" "$l" | tee -a "$out"
		done
	done
done
echo
# shellcheck disable=SC2086
/usr/bin/python3 - "$out" $VERSIONS <<'PY'
import sys, statistics as st
vs = sys.argv[2:]
rows, order = {}, []
for l in open(sys.argv[1]):
    f = l.rstrip("\n").split("\t")
    key = "%s@%s" % (f[1], f[2])
    if key not in rows:
        rows[key] = {v: [] for v in vs}
        order.append(key)
    rows[key][f[0]].append((float(f[3]), float(f[4]), float(f[6])))
base, others = vs[0], vs[1:]
head = ["model"]
for what in ("train", "infer"):
    head += ["%s %s" % (what, v) for v in vs] + ["%s / %s" % (v, base) for v in others]
head += ["peak %s / %s" % (v, base) for v in others]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for k in order:
    m = {v: [st.median(x[i] for x in rows[k][v]) for i in range(3)] for v in vs}
    cells = [k]
    for i in (0, 1):
        cells += ["%.2f" % m[v][i] for v in vs] + ["%.2f" % (m[v][i] / m[base][i]) for v in others]
    cells += ["%.2f" % (m[v][2] / m[base][2]) for v in others]
    print("| " + " | ".join(cells) + " |")
PY
