#!/bin/bash
# onednn3.sh: Debian's oneDNN 2.6 against the oneDNN 3.2 fd builds with on
# CPUs without AVX-512 (ONEDNN=3: PyPI's onednn-cpu-gomp 2023.2.0, fetched
# into .deps/onednn-3.2.0 by scripts/onednn3.sh) on ResNet's 3x3
# convolutions, fp32 forward, channels last, batch 32 (doc/onednn.md "oneDNN 3
# on AVX2 CPUs"). Builds bench/onednn3.c against each version into DIR
# (default build/onednn3) and runs the two alternately REPS times (default 3),
# printing every run's lines and then, per layer, the least time of each and
# the ratio.
# Usage: bench/onednn3.sh [DIR]        (make bench-onednn3)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build/onednn3}
reps=${REPS:-3}
threads=${THREADS:-2}
scripts/onednn3.sh 3.2
lib=$PWD/.deps/onednn-3.2.0
mkdir -p "$dir"
cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -o "$dir/onednn-2" bench/onednn3.c -ldnnl
cc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$lib/include" -o "$dir/onednn-3" bench/onednn3.c \
	"$lib/lib/libdnnl.so.3" -Wl,-rpath,"$lib/lib"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); $(lscpu | sed -n 's/^Model name: *//p'); $threads threads; REPS $reps; load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$reps"); do
	for v in 2 3; do
		OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=PASSIVE "$dir/onednn-$v" | tee -a "$out"
	done
done
echo
echo "| layer | 2.x ms (impl, GFLOP/s) | 3.x ms (impl, GFLOP/s) | 2.x / 3.x |"
echo "|---|---|---|---|"
awk -F'\t' '{ v = substr($1, 1, 1); k = $2; if (!(k in best2)) order[n++] = k
	if (v == 2 && (!(k in best2) || $4 < best2[k])) { best2[k] = $4; i2[k] = $3; g2[k] = $5 }
	if (v == 3 && (!(k in best3) || $4 < best3[k])) { best3[k] = $4; i3[k] = $3; g3[k] = $5 } }
	END { for (j = 0; j < n; j++) { k = order[j]
		printf "| %s | %.2f (%s, %s) | %.2f (%s, %s) | %.2f |\n", k, best2[k], i2[k], g2[k], best3[k], i3[k], g3[k], best2[k] / best3[k] } }' "$out"
