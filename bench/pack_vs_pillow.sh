#!/bin/bash
# pack_vs_pillow.sh [N] [THREADS]: fd-pack vs Pillow + multiprocessing on N
# synthetic 512x512 JPEGs (quality 90), centre crop to 224x224, same number of
# threads/processes, with and without DCT-domain downscaling (Image.draft /
# fd-pack's default vs --exact). Prints images/s and the ratio. Run once.
set -eu
N=${1:-1000}
P=${2:-$(nproc)}
top=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
W=$(mktemp -d "${TMPDIR:-/tmp}/fdbench.XXXXXX")
trap 'rm -rf "$W"' EXIT
$PY "$top/bench/pack_vs_pillow.py" gen "$W/img" "$N"
fdrate() { # extra args
	local t0 t1
	t0=$(date +%s.%N)
	"$top/build/bin/fd-pack" -q --threads "$P" --root "$W/img" --size 224 "$@" -o "$W/p.safetensors" "$W/img/index.tsv"
	t1=$(date +%s.%N)
	echo "$N $t0 $t1" | awk '{printf "%.1f", $1 / ($3 - $2)}'
}
for mode in draft exact; do
	if [ $mode = draft ]; then fd=$(fdrate); pil=$($PY "$top/bench/pack_vs_pillow.py" pil "$W/img" 224 "$P" 1)
	else fd=$(fdrate --exact); pil=$($PY "$top/bench/pack_vs_pillow.py" pil "$W/img" 224 "$P" 0); fi
	echo "$mode: fd-pack $fd img/s, Pillow $pil img/s ($P threads/processes), ratio $(echo "$fd $pil" | awk '{printf "%.2f", $1 / $2}')"
done
