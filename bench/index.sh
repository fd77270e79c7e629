#!/bin/bash
# bench/index.sh: fd-index (header probe) on 120 000 small files: hard links of
# a few fd-synth JPEGs spread over 4 sources x 100 folders, made in a scratch
# folder under ${TMPDIR:-/tmp} and removed afterwards. Prints files/s and seconds.
# Usage: bench/index.sh [FILES]   (default 120000; needs bin/fd-synth, bin/fd-index)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
BIN=$top/${FD_BUILD:-build}/bin
N=${1:-120000}
W=$(mktemp -d "${TMPDIR:-/tmp}/fdbench.XXXXXX")
trap 'rm -rf "$W"' EXIT
"$BIN/fd-synth" -q -o "$W/seed" --groups 2
mapfile -t src < <(find "$W/seed" -name '*.jpg' | sort)
per=$((N / 400))
t0=$(date +%s.%N)
/usr/bin/python3 - "$W" "$per" "${src[@]}" <<'PY'
import os, sys
w, per, src = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for s in ("wiki", "text2img", "inpainting", "insight"):
    for d in range(100):
        p = "%s/data/%s/%02d" % (w, s, d)
        os.makedirs(p)
        for i in range(per):
            os.link(src[i % len(src)], "%s/nm%07d_rm1.jpg" % (p, i))
PY
t1=$(date +%s.%N)
echo "made $((per * 400)) hard links in $(echo "$t1 - $t0" | bc) s"
sync
t0=$(date +%s.%N)
"$BIN/fd-index" -q --root "$W/data" -o "$W/index.tsv"
t1=$(date +%s.%N)
rows=$(($(wc -l <"$W/index.tsv") - 1))
ok=$(cut -f9 "$W/index.tsv" | grep -c '^ok$')
secs=$(echo "$t1 - $t0" | bc)
echo "fd-index: $rows files ($ok ok) in $secs s: $(echo "$rows / $secs" | bc) files/s (threads: $(nproc))"
