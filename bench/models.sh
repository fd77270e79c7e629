#!/bin/bash
# models.sh: every registered model, fd (bench/models.c) against torchvision
# (bench/models_vs_torch.py), batch 32, 2 threads: training and inference
# images/s and peak memory (ru_maxrss), one process per model and side, fd and
# torch alternating model by model so load elsewhere hits both alike. Sizes:
# 128 for simplecnn and resnet18, 224 for every model. Step counts follow the
# model's cost (bench/models.c) and torch runs the same counts.
# Usage: bench/models.sh [FD_BENCH_BINARY] [--channels-last] [--only NAME[,NAME..]]
#   (make bench-models); --channels-last adds a torch channels_last column.
set -euo pipefail
cd "$(dirname "$0")/.."
FD=build/bench/models
CL=0
ONLY=
while [ $# -gt 0 ]; do
	case $1 in
	--channels-last) CL=1 ;;
	--only) ONLY=,$2,; shift ;;
	-*) echo "models.sh: unknown option '$1'" >&2; exit 2 ;;
	*) FD=$1 ;;
	esac
	shift
done
PY=/usr/bin/python3
BATCH=32
THREADS=2
[ -x "$FD" ] || { echo "models.sh: no '$FD' (make build/bench/models)" >&2; exit 1; }

cases=()
for n in simplecnn resnet18; do cases+=("$n 128"); done
while read -r n; do cases+=("$n 224"); done < <("$FD" --list)

out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores;" \
	"load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for c in "${cases[@]}"; do
	set -- $c
	name=$1 size=$2
	if [ -n "$ONLY" ] && [[ $ONLY != *",$name,"* ]]; then continue; fi
	fdl=$("$FD" "$name" "$size" $BATCH $THREADS)
	read -r _ _ ftr fin fip fpk w s iw is gm <<<"$fdl"
	ptl=$($PY bench/models_vs_torch.py "$name" "$size" $BATCH $THREADS "$w" "$s" "$iw" "$is")
	read -r _ _ ptr pin pip ppk <<<"$ptl"
	ctr=- cin=-
	if [ "$CL" = 1 ]; then
		cll=$($PY bench/models_vs_torch.py "$name" "$size" $BATCH $THREADS "$w" "$s" "$iw" "$is" --channels-last)
		read -r _ _ ctr cin _ _ <<<"$cll"
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name@$size" "$gm" \
		"$ftr" "$ptr" "$fin" "$pin" "$fpk" "$ppk" "$fip" "$pip" "$w+$s" "$iw+$is" "$ctr" "$cin" \
		"$(cut -d' ' -f1 /proc/loadavg)" >>"$out"
	echo "# done $name@$size: fd $ftr/$fin img/s, torch $ptr/$pin img/s (train/infer)" >&2
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

echo "# batch $BATCH, $THREADS threads, fp32; img/s from the median step; x = fd/torch (> 1: fd faster);"
echo "# peak = ru_maxrss MiB (training run; inference-only peak in brackets); steps = warm-up+timed"
printf '| %-24s | %5s | %8s | %8s | %5s | %8s | %8s | %5s | %13s | %13s | %5s | %5s |' model GMAC \
	"train fd" "train pt" x "infer fd" "infer pt" x "peak fd" "peak pt" train infer
[ "$CL" = 1 ] && printf ' %8s | %8s |' "tr pt-CL" "in pt-CL"
echo
printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|' -------------------------- ------- ---------- ---------- \
	------- ---------- ---------- ------- --------------- --------------- ------- -------
[ "$CL" = 1 ] && printf '%s|%s|' ---------- ----------
echo
while IFS=$'\t' read -r m gm ftr ptr fin pin fpk ppk fip pip st ist ctr cin ld; do
	printf '| %-24s | %5.2f | %8.2f | %8.2f | %5.2f | %8.2f | %8.2f | %5.2f | %5d (%5d) | %5d (%5d) | %5s | %5s |' \
		"$m" "$gm" "$ftr" "$ptr" "$(echo "$ftr / $ptr" | bc -l)" "$fin" "$pin" "$(echo "$fin / $pin" | bc -l)" \
		"$fpk" "$fip" "$ppk" "$pip" "$st" "$ist"
	[ "$CL" = 1 ] && printf ' %8s | %8s |' "$ctr" "$cin"
	echo
done <"$out"
