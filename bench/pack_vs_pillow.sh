#!/bin/bash
# pack_vs_pillow.sh [N] [THREADS] [REPEATS]: fd-pack vs Pillow + multiprocessing
# on N synthetic 512x512 JPEGs (quality 90), centre crop to 224x224 uint8,
# same number of threads/processes, with and without DCT-domain downscaling
# (Image.draft / fd-pack's default vs --exact). Runs are interleaved (fd, Pillow,
# fd, Pillow, ...) REPEATS times and the best of each is kept, so a burst of
# load on a shared machine hits both sides. Prints images/s, images/s per
# core and the ratio. Both read the JPEGs from the page cache (warmed first).
# FD_PACK=path overrides the fd-pack binary (e.g. an older build to compare).
set -eu
N=${1:-1000}
P=${2:-$(nproc)}
R=${3:-3}
top=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
W=$(mktemp -d "${TMPDIR:-/tmp}/fdbench.XXXXXX")
trap 'rm -rf "$W"' EXIT
$PY "$top/bench/pack_vs_pillow.py" gen "$W/img" "$N"
cat "$W"/img/*.jpg >/dev/null
fdrate() { # extra args
	local t0 t1
	t0=$(date +%s.%N)
	"${FD_PACK:-$top/build/bin/fd-pack}" -q --threads "$P" --root "$W/img" --size 224 "$@" -o "$W/p.safetensors" "$W/img/index.tsv"
	t1=$(date +%s.%N)
	rm -f "$W/p.safetensors" "$W/p.tsv"
	echo "$N $t0 $t1" | awk '{printf "%.1f", $1 / ($3 - $2)}'
}
max() { echo "$1 $2" | awk '{print ($1 > $2) ? $1 : $2}'; }
declare -A best
for mode in draft exact; do best[fd$mode]=0; best[pil$mode]=0; done
for r in $(seq "$R"); do
	for mode in draft exact; do
		if [ $mode = draft ]; then f=$(fdrate); d=1; else f=$(fdrate --exact); d=0; fi
		p=$($PY "$top/bench/pack_vs_pillow.py" pil "$W/img" 224 "$P" $d)
		echo "run $r $mode: fd-pack $f img/s, Pillow $p img/s" >&2
		best[fd$mode]=$(max "${best[fd$mode]}" "$f")
		best[pil$mode]=$(max "${best[pil$mode]}" "$p")
	done
done
for mode in draft exact; do
	echo "${best[fd$mode]} ${best[pil$mode]} $P $mode" | awk '{printf "%s (best of '"$R"'): fd-pack %.1f img/s (%.1f per core), Pillow %.1f img/s (%.1f per core), %d threads/processes, ratio %.2f\n", $4, $1, $1 / $3, $2, $2 / $3, $3, $1 / $2}'
done
