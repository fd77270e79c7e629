#!/bin/bash
# tuned.sh: fd (bench/models.c) against PyTorch at its best, not only its
# defaults (issue 15, item 3): per model, in one run and interleaved side by
# side (the order rotates each repetition), batch 32, 2 threads, same sizes
# and step counts:
#   fd       build/bench/models, fp32
#   fd-wino  the same with --winograd (fp32; 3x3 stride-1 convolutions by
#            Winograd F(4x4,3x3), doc/nn-kernels.md "Winograd"), on the models
#            in WINO only (those with such convolutions)
#   fd-bf16  the same with --precision bf16, when the binary accepts it
#            (probed with one tiny bf16 step of `models --precision bf16 simplecnn`; else n/a)
#   pt1      Debian's PyTorch 1.13 (/usr/bin/python3), NCHW, glibc malloc
#   pt1-best 1.13 with channels_last + LD_PRELOAD tcmalloc (libtcmalloc-minimal4)
#   pt2      PyPI's PyTorch (bench/torch-venv.sh), NCHW, glibc malloc
#   pt2-best PyPI's with channels_last + tcmalloc
#   pt2-bf16 PyPI's with channels_last + tcmalloc + CPU autocast to bfloat16
# each a fresh process (bench/models_vs_torch.py for the torch sides).
# Training and inference images/s (median step of each run, then the median
# over repetitions) and peak RSS (ru_maxrss: after inference, end of
# training); every ratio fd/side and fd over the best fp32 PyTorch setup.
# Step counts: those bench/models picks from the model's cost (read from a
# batch-1 probe of fd, not recorded), warm-ups raised to 3 training + 2
# inference steps under 3 GMAC/image for every side (PyTorch 2.x's first
# steps JIT and fill oneDNN's primitive cache), and timed inference steps raised to ISTEPS
# (inference steps are cheap, and the median of 2-3 of them moved fd's
# EfficientNet-B0 between 63 and 98 img/s from one run to the next). Tables:
# bench/tuned_table.py, also paired by repetition (each repetition's best fd
# over its best PyTorch: the sides of one repetition ran back to back).
# Usage: bench/tuned.sh [FD_BENCH_BINARY]        (make bench-tuned)
# Environment:
#   MODELS     space-separated NAME@SIZE (default the seven of issue 15)
#   REPS       repetitions of the models under 3 GMAC/image (default 3)
#   REPS_SLOW  repetitions of the heavier ones (default 1)
#   ISTEPS     timed inference steps per process, at least (default 8; a
#              process then reports their median)
#   IWORK      and at least IWORK / (GMAC an image) of them (default 2:
#              MobileNetV3-Small's 0.055 GMAC get 37, about a second of fd's
#              inference; its 8 steps lasted 0.25 s and its ratio to PyTorch
#              swung 0.88-1.67 between repetitions, bench/results/tuned.md
#              run 46; every other model of issue 15 stays at 8)
#   TWORK      timed training steps per process: bench/models' own count
#              (3 for the light models), raised to TWORK / (GMAC an image)
#              where that is more (default 2.4: SimpleCNN@128 10,
#              MobileNetV3-Small 44, EfficientNet-B0 7, ResNet-18@128 5; the
#              heavier models keep their count). Three steps of SimpleCNN's
#              bf16 training lasted 0.4 s (run 47)
#   SKIP       space-separated NAME@SIZE:SIDE not run (default
#              "convnext_tiny@224:pt1 convnext_tiny@224:pt1-best": 1.13's
#              depthwise path trains it at < 0.32 img/s, over 100 s a step)
#   SIDES      the sides run (default all eight; fd always runs); the others
#              are added to SKIP for every model. pt2-bf16 runs only where
#              fd-bf16 does (without AVX512-BF16 there is nothing to set
#              against autocast)
#   WINO       models (names) run as fd-wino too (default: simplecnn resnet18
#              resnet34 resnet50)
#   TORCH_VENV PyPI PyTorch's venv (default .venv-torch; bench/torch-venv.sh)
#   TCMALLOC   the library preloaded for the best setups
#   TIMEOUT    seconds per process before it counts as t/o (default 900)
#   RAW        keep the per-run lines in this file
set -euo pipefail
cd "$(dirname "$0")/.."
FD=${1:-build/bench/models}
MODELS=${MODELS:-simplecnn@128 resnet18@128 resnet18@224 mobilenet_v3_small@224 efficientnet_b0@224 resnet50@224 convnext_tiny@224}
REPS=${REPS:-3}
REPS_SLOW=${REPS_SLOW:-1}
ISTEPS=${ISTEPS:-8}
IWORK=${IWORK:-2}
TWORK=${TWORK:-2.4}
SKIP=${SKIP:-convnext_tiny@224:pt1 convnext_tiny@224:pt1-best}
WINO=${WINO:-simplecnn resnet18 resnet34 resnet50}
TCMALLOC=${TCMALLOC:-/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4}
TIMEOUT=${TIMEOUT:-900}
PY1=/usr/bin/python3
BATCH=32
THREADS=2
# OpenMP's idle threads, the same for every side: default (libgomp's own:
# spin a while, then sleep; what either tool gets unless its user sets
# something), active (spin: OMP_WAIT_POLICY=ACTIVE) or passive (sleep at
# once). Runs 1-27 used passive, set for a machine six people shared; on a
# machine of its own it slowed PyTorch 8-30% and fd 0-10%
# (bench/results/tuned.md "OpenMP's wait policy"), so it flattered fd.
WAIT=${WAIT:-default}
case $WAIT in
passive) export OMP_WAIT_POLICY=PASSIVE ;;
active) export OMP_WAIT_POLICY=ACTIVE ;;
default) unset OMP_WAIT_POLICY ;;
*) echo "tuned.sh: WAIT is passive, active or default, not '$WAIT'" >&2; exit 1 ;;
esac

for v in IWORK TWORK; do
	awk -v x="${!v}" 'BEGIN { exit !(x ~ /^[0-9]*\.?[0-9]+$/ && x + 0 > 0) }' ||
		{ echo "tuned.sh: $v is a positive number (GMAC an image), not '${!v}'" >&2; exit 1; }
done

[ -x "$FD" ] || { echo "tuned.sh: no '$FD' (make build/bench/models)" >&2; exit 1; }
[ -r "$TCMALLOC" ] || { echo "tuned.sh: no '$TCMALLOC' (apt-get install libtcmalloc-minimal4)" >&2; exit 1; }
PY2=$(bench/torch-venv.sh python) || exit 1
PY2_LD=$(bench/torch-venv.sh env)

sides="fd fd-wino fd-bf16 pt1 pt1-best pt2 pt2-best pt2-bf16"
fdbf16=0
"$FD" --precision bf16 simplecnn 32 2 1 0 1 0 1 >/dev/null 2>&1 && fdbf16=1
want=" ${SIDES:-$sides} "
[ $fdbf16 = 1 ] || want=${want// pt2-bf16 / }
for side in $sides; do
	[ "$side" = fd ] || [[ "$want" == *" $side "* ]] && continue
	for c in $MODELS; do
		[[ " $SKIP " == *" $c:$side "* ]] || SKIP="$SKIP $c:$side"
	done
done

raw=${RAW:-$(mktemp)}
[ -n "${RAW:-}" ] || trap 'rm -f "$raw"' EXIT
: >"$raw"

ver() { "$@" -c 'import torch, torchvision, re; d = re.search(r"MKL-DNN v([0-9.]+)", torch.__config__.show()); print("torch %s, torchvision %s, oneDNN %s" % (torch.__version__, torchvision.__version__, d.group(1) if d else "?"))'; }
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores;" \
	"load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# pt1: $(ver $PY1)"
echo "# pt2: $(LD_LIBRARY_PATH=$PY2_LD ver "$PY2")"
echo "# fd: $(git describe --always --dirty 2>/dev/null || echo '?'), oneDNN $(readlink -f "$(ldd "$FD" | awk '/libdnnl/ {print $3}')" | sed 's/.*libdnnl\.so\.//'), fd-bf16 $([ $fdbf16 = 1 ] && echo yes || echo n/a)"
echo "# tcmalloc: $TCMALLOC; batch $BATCH, $THREADS threads; REPS $REPS, REPS_SLOW $REPS_SLOW, ISTEPS $ISTEPS, IWORK $IWORK, TWORK $TWORK, WAIT $WAIT; SKIP: $SKIP"

# run SIDE NAME SIZE W S IW IS: one process; prints "train infer ipeak peak" or "t/o" / "fail"
run() {
	local side=$1 name=$2 size=$3 out rc=0
	shift 3
	local pt=(bench/models_vs_torch.py "$name" "$size" "$BATCH" "$THREADS" "$@")
	case $side in
	fd) out=$(timeout "$TIMEOUT" "$FD" "$name" "$size" $BATCH $THREADS "$@") || rc=$? ;;
	fd-wino) out=$(timeout "$TIMEOUT" "$FD" --winograd "$name" "$size" $BATCH $THREADS "$@") || rc=$? ;;
	fd-bf16) out=$(timeout "$TIMEOUT" "$FD" --precision bf16 "$name" "$size" $BATCH $THREADS "$@") || rc=$? ;;
	pt1) out=$(timeout "$TIMEOUT" $PY1 "${pt[@]}") || rc=$? ;;
	pt1-best) out=$(LD_PRELOAD=$TCMALLOC timeout "$TIMEOUT" $PY1 "${pt[@]}" --channels-last) || rc=$? ;;
	pt2) out=$(LD_LIBRARY_PATH=$PY2_LD timeout "$TIMEOUT" "$PY2" "${pt[@]}") || rc=$? ;;
	pt2-best) out=$(LD_LIBRARY_PATH=$PY2_LD LD_PRELOAD=$TCMALLOC timeout "$TIMEOUT" "$PY2" "${pt[@]}" --channels-last) || rc=$? ;;
	pt2-bf16) out=$(LD_LIBRARY_PATH=$PY2_LD LD_PRELOAD=$TCMALLOC timeout "$TIMEOUT" "$PY2" "${pt[@]}" --channels-last --bf16) || rc=$? ;;
	esac
	if [ $rc = 124 ]; then echo t/o; elif [ $rc != 0 ]; then echo fail; else echo "$out" | cut -f3-6; fi
}

# atleast W GMAC: the steps that time at least W GMAC an image of work
atleast() { awk -v w="$1" -v g="$2" 'BEGIN { n = w / g; print (n == int(n) ? n : int(n) + 1) }'; }

declare -A counts
rep=0
while :; do
	rep=$((rep + 1))
	any=0
	for c in $MODELS; do
		name=${c%@*} size=${c#*@}
		# the step counts bench/models picks from the model's cost (GMAC an
		# image, the same at any batch), read from a batch-1 run of it that is
		# not recorded, so fd's first run is timed like every other (it used
		# to be that run, with fewer warm-ups than the rest, and was recorded)
		if [ -z "${counts[$c]:-}" ]; then
			l=$("$FD" "$name" "$size" 1 $THREADS) || { echo "tuned.sh: $FD $name $size failed" >&2; exit 1; }
			read -r _ _ _ _ _ _ w s iw is gm <<<"$l"
			counts[$c]="$w $s $iw $is $gm"
		fi
		read -r w s iw is gm <<<"${counts[$c]}"
		n=$REPS
		if [ "$(echo "$gm > 3" | bc -l)" = 1 ]; then
			n=$REPS_SLOW
		else
			# PyTorch 2.x's first steps (oneDNN 3 JIT, primitive cache) need more warm-up than fd's
			w=$((w > 3 ? w : 3)) iw=$((iw > 2 ? iw : 2))
		fi
		is=$((is > ISTEPS ? is : ISTEPS))
		least=$(atleast "$IWORK" "$gm")
		is=$((is > least ? is : least))
		least=$(atleast "$TWORK" "$gm")
		s=$((s > least ? s : least))
		[ "$rep" -le "$n" ] || continue
		any=1
		# rotate the order each repetition
		set -- $sides
		k=$(((rep - 1) % $#))
		order="${*:k+1} ${*:1:k}"
		for side in $order; do
			[ "$side" = fd-bf16 ] && [ $fdbf16 = 0 ] && continue
			[ "$side" = fd-wino ] && [[ " $WINO " != *" $name "* ]] && continue
			[[ " $SKIP " == *" $c:$side "* ]] && continue
			r=$(run "$side" "$name" "$size" "$w" "$s" "$iw" "$is")
			printf '%s\t%s\t%d\t%s\n' "$c" "$side" "$rep" "$(echo "$r" | tr ' ' '\t')" >>"$raw"
			echo "# rep $rep $c $side: $r (load $(cut -d' ' -f1 /proc/loadavg))" >&2
		done
	done
	[ $any = 1 ] || break
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"

$PY1 bench/tuned_table.py "$raw" "$MODELS" "$SKIP" $fdbf16 "$WINO"
