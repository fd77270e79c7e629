#!/bin/bash
# gradcam.sh: fd-gradcam against the grad-cam package's GradCAM (1.5.7, over
# PyTorch, in .venv) on the same machine: same seeded torchvision weights
# (.pth), pack images, layer (the default), target (fake), batch and threads.
# fd's time is its Grad-CAM pass (the progress line: forward, backward, CAM,
# upsampling), torch's the GradCAM calls (bench/gradcam_vs_torch.py); neither
# counts model loading or writing files. fd and torch alternate per model.
# Usage: bench/gradcam.sh [SIZE] [N] [BATCH] [THREADS]  (defaults 224 32 16 2)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-224} N=${2:-32} BATCH=${3:-16} THREADS=${4:-2}
VPY=.venv/bin/python
BIN=build/bin
[ -x $BIN/fd-gradcam ] || { echo "gradcam.sh: no $BIN/fd-gradcam (make all)" >&2; exit 1; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
$BIN/fd-synth -q -o "$T/D" --groups 12 --seed 3
$BIN/fd-index -q --root "$T/D" -o "$T/idx.tsv"
$BIN/fd-split -q --folds 3 -o "$T/split.tsv" "$T/idx.tsv"
$BIN/fd-pack -q --root "$T/D" --size "$SIZE" -o "$T/pack.safetensors" "$T/split.tsv"
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores;" \
	"load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# size $SIZE, $N images, batch $BATCH, $THREADS threads"
printf 'model\tlayer\tfd_s\ttorch_s\tfd_img_s\ttorch_img_s\tspeedup\n'
for c in simplecnn:features resnet18:layer4 efficientnet_b0:features mobilenet_v3_small:features \
	convnext_tiny:features; do
	arch=${c%%:*} layer=${c#*:}
	/usr/bin/python3 -c "
import sys, torch, torchvision
sys.path.insert(0, 'bench')
from twins import SimpleCNN
torch.manual_seed(0)
m = SimpleCNN(1) if '$arch' == 'simplecnn' else getattr(torchvision.models, '$arch')(num_classes=1)
torch.save(m.state_dict(), '$T/$arch.pth')"
	err=$($BIN/fd-gradcam --threads "$THREADS" --batch "$BATCH" -n "$N" --model "$T/$arch.pth" --arch "$arch" \
		--pack "$T/pack.safetensors" --layer "$layer" -o "$T/out-$arch" 2>&1 >/dev/null)
	fs=$(printf '%s\n' "$err" | sed -n 's/.*grad-cam: [0-9]* done in \([0-9.]*\)s.*/\1/p' | tail -1)
	read -r _ ts _ < <(OMP_NUM_THREADS=$THREADS $VPY bench/gradcam_vs_torch.py "$T/pack.safetensors" \
		"$T/$arch.pth" "$arch" "$layer" "$N" "$BATCH" "$THREADS")
	awk -v a="$arch" -v l="$layer" -v f="$fs" -v t="$ts" -v n="$N" \
		'BEGIN { printf "%s\t%s\t%.2f\t%.2f\t%.1f\t%.1f\t%.2f\n", a, l, f, t, n / f, n / t, t / f }'
done
