#!/bin/sh
# fashion_mnist.sh: fd-train + fd-eval vs the PyTorch twin on Fashion-MNIST
# (Debian's dataset-fashion-mnist), same recipe: simplecnn, 10 classes, AdamW
# lr 1e-3 wd 1e-4, cosine over EPOCHS, batch 64, ImageNet normalisation, no
# augmentation, THREADS threads. Run by hand (minutes to hours on 2 cores):
#   bench/fashion_mnist.sh [EPOCHS [THREADS [TRAIN_SUBSET]]]
# PRECISION=bf16 in the environment trains fd at bf16 (config 'precision';
# fd-eval scores in fp32); WINO=1 trains (and scores) fd with Winograd 3x3
# convolutions (config 'winograd', fd-eval --winograd); NO_TORCH=1 skips the
# PyTorch twin; MODEL=NAME
# trains another registered model than simplecnn (fd only: the twin is
# simplecnn's, so NO_TORCH=1 is required; ResNets at 28x28 run, ConvNeXt
# needs 32x32).
# Prints both test accuracies and both training times; record them in
# bench/results/fashion_mnist.md.
set -eu
E=${1:-5} TH=${2:-2} N=${3:-} P=${PRECISION:-fp32} M=${MODEL:-simplecnn} WG=false
[ "${WINO:-0}" = 1 ] && WG=true
if [ "$M" != simplecnn ] && [ -z "${NO_TORCH:-}" ]; then
	echo "fashion_mnist.sh: MODEL=$M: the PyTorch twin is simplecnn's; set NO_TORCH=1" >&2
	exit 1
fi
top=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/fmnist.XXXXXX")
trap 'rm -rf "$W"' EXIT
PATH=$top/build/bin:$PATH
/usr/bin/python3 "$top/bench/fashion_mnist.py" pack "$W/fm.safetensors" ${N:+--train $N}
printf '{"model":"%s","num_classes":10,"epochs":%d,"batch_size":64,"num_workers":2,"seed":42,
 "optimizer":{"type":"adamw","lr":0.001,"weight_decay":0.0001},"precision":"%s","winograd":%s,
 "scheduler":{"type":"cosine_annealing","T_max":%d}}\n' "$M" "$E" "$P" "$WG" "$E" >"$W/fm.json"
t0=$(date +%s.%N)
fd-train -q --pack "$W/fm.safetensors" --fold 0 --config "$W/fm.json" --threads "$TH" -o "$W/run"
t1=$(date +%s.%N)
fd-eval -q --threads "$TH" $([ "$WG" = true ] && echo --winograd) --model "$W/run/last.safetensors" \
	--pack "$W/fm.safetensors" --only fold=test \
	--metrics "$W/m.tsv" -o "$W/p.tsv"
acc=$(awk -F'\t' 'NR==2{print $6}' "$W/m.tsv")
printf 'fd %s %s%s: test accuracy %.4f, training %.1f s (fd-train wall, incl. validation)\n' "$M" "$P" \
	"$([ "$WG" = true ] && echo ' winograd')" "$acc" \
	"$(echo "$t1 - $t0" | bc)"
[ -n "${NO_TORCH:-}" ] && exit 0
/usr/bin/python3 "$top/bench/fashion_mnist.py" torch "$W/fm.safetensors" --epochs "$E" --threads "$TH" --batch 64
