#!/bin/sh
# train_vs_torch.sh: one full epoch of fd-train against a PyTorch script that
# reads the same images as JPEG files through a DataLoader with the usual
# torchvision transforms (bench/train_vs_torch.py): same model, batch 32,
# 2 compute threads, 2 loader workers, AdamW lr 1e-4 wd 1e-4, S x S centre
# crops, training rows augmented with configs/augment.json's recipe (AUG=0:
# none), then the validation fold scored. Both run under /usr/bin/time -v.
#   bench/train_vs_torch.sh [MODEL [GROUPS [SIZE]]]     (defaults resnet18 200 224)
# GROUPS fd-synth identities -> 4 images each (1 real, 3 fakes); 5 folds and a
# 10% test hold-out as the pipelines make them, so ~72% of rows train.
# fd's epoch is timed with and without fd-pack (which runs once per data set
# and geometry and is shared by every epoch, fold and model of a phase).
# A third run, "torch best", is PyTorch at its tuned best: PyPI's current
# PyTorch (bench/torch-venv.sh; TORCH_VENV, default .venv-torch), channels_last
# and LD_PRELOAD tcmalloc (libtcmalloc-minimal4); "n/a" when that venv or
# tcmalloc is missing. WINO=1 trains fd with "winograd": true (doc/nn-kernels.md
# "Winograd"; PyTorch has no such option).
set -eu
M=${1:-resnet18} G=${2:-200} S=${3:-224} TH=${THREADS:-2} AUG=${AUG:-1} WINO=${WINO:-0}
top=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/tvt.XXXXXX")
trap 'rm -rf "$W"' EXIT
B=$top/build/bin
tv() { /usr/bin/time -v -o "$W/time" "$@"; }
wall() { awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$W/time"; }
rss() { awk -F': ' '/Maximum resident set size/{printf "%.0f", $2/1024}' "$W/time"; }

"$B/fd-synth" -q -o "$W/data" --groups "$G" --seed 7 --threads "$TH"
"$B/fd-index" -q --root "$W/data" --sources "$top/configs/sources.tsv" -o "$W/index.tsv"
"$B/fd-split" -q --folds 5 --test 0.1 --seed 42 -o "$W/split.tsv" "$W/index.tsv"
tv "$B/fd-pack" -q --root "$W/data" --size "$S" --geometry center --threads "$TH" \
	-o "$W/pack.safetensors" "$W/split.tsv"
pack_s=$(wall) pack_rss=$(rss)
aug=''
[ "$AUG" = 1 ] && aug="--config $top/configs/augment.json"
printf '{"model":"%s","epochs":1,"batch_size":32,"num_workers":%d,"scheduler":{"T_max":1},"winograd":%s}\n' \
	"$M" "$TH" "$([ "$WINO" = 1 ] && echo true || echo false)" >"$W/bench.json"
# shellcheck disable=SC2086
tv "$B/fd-train" -q --pack "$W/pack.safetensors" --fold 0 --config "$top/configs/shared.json" $aug \
	--config "$W/bench.json" --threads "$TH" -o "$W/run"
fd_s=$(wall) fd_rss=$(rss)
fd_epoch=$(awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next}{print $c["seconds"]}' "$W/run/log.tsv")
fd_auc=$(awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next}{print $c["val_auc"]}' "$W/run/log.tsv")
ntrain=$(awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next}$c["fold"]!="0"&&$c["fold"]!="test"&&$c["fold"]!="excluded"{n++}END{print n}' "$W/pack.tsv")
nval=$(awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next}$c["fold"]=="0"{n++}END{print n}' "$W/pack.tsv")
# shellcheck disable=SC2046
tv /usr/bin/python3 "$top/bench/train_vs_torch.py" --root "$W/data" --tsv "$W/pack.tsv" --fold 0 \
	--model "$M" --size "$S" --batch 32 --threads "$TH" --workers "$TH" \
	$([ "$AUG" = 1 ] && echo --augment "$top/configs/augment.json") >"$W/torch.out"
pt_s=$(wall) pt_rss=$(rss)
cat "$W/torch.out"
pt_epoch=$(sed -E 's/.* epoch_s=([0-9.]+).*/\1/' "$W/torch.out")
pt_pss=$(sed -E 's/.* peak_pss_mib=([0-9]+).*/\1/' "$W/torch.out")
pt_auc=$(sed -E 's/.* val_auc=([0-9.na]+).*/\1/' "$W/torch.out")
TCM=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
bb_epoch=n/a bb_s=n/a bb_rss=n/a bb_pss=n/a bb_auc=n/a bb_ver=
if py2=$("$top/bench/torch-venv.sh" python 2>/dev/null) && [ -r "$TCM" ]; then
	# shellcheck disable=SC2046
	tv env LD_LIBRARY_PATH="$("$top/bench/torch-venv.sh" env)" LD_PRELOAD="$TCM" "$py2" "$top/bench/train_vs_torch.py" \
		--root "$W/data" --tsv "$W/pack.tsv" --fold 0 --model "$M" --size "$S" --batch 32 --threads "$TH" \
		--workers "$TH" --channels-last $([ "$AUG" = 1 ] && echo --augment "$top/configs/augment.json") >"$W/best.out"
	bb_s=$(wall) bb_rss=$(rss)
	cat "$W/best.out"
	bb_epoch=$(sed -E 's/.* epoch_s=([0-9.]+).*/\1/' "$W/best.out")
	bb_pss=$(sed -E 's/.* peak_pss_mib=([0-9]+).*/\1/' "$W/best.out")
	bb_auc=$(sed -E 's/.* val_auc=([0-9.na]+).*/\1/' "$W/best.out")
	bb_ver=$(env LD_LIBRARY_PATH="$("$top/bench/torch-venv.sh" env)" "$py2" -c 'import torch; print(torch.__version__)')
fi
# r A B: A / B, or n/a
r() { case "$1$2" in *n/a*) echo n/a ;; *) printf '%.2f' "$(echo "$1 / $2" | bc -l)" ;; esac; }
echo "# $M@$S, $ntrain training + $nval validation images, batch 32, $TH threads, $TH loader workers, augment=$AUG"
echo "# torch = Debian's $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'), defaults;" \
	"torch best = PyPI's ${bb_ver:-(missing)}, channels_last + tcmalloc"
echo "| | fd | torch | torch best | torch/fd | torch best/fd |"
echo "|---|---|---|---|---|---|"
printf '| epoch (train + validation), s | %.2f | %.2f | %s | %s | %s |\n' "$fd_epoch" "$pt_epoch" "$bb_epoch" \
	"$(r "$pt_epoch" "$fd_epoch")" "$(r "$bb_epoch" "$fd_epoch")"
printf '| process wall, s | %.2f | %.2f | %s | %s | %s |\n' "$fd_s" "$pt_s" "$bb_s" "$(r "$pt_s" "$fd_s")" "$(r "$bb_s" "$fd_s")"
fdp=$(echo "$pack_s + $fd_s" | bc -l)
printf '| fd-pack + fd-train wall vs torch, s | %.2f | %.2f | %s | %s | %s |\n' "$fdp" "$pt_s" "$bb_s" \
	"$(r "$pt_s" "$fdp")" "$(r "$bb_s" "$fdp")"
printf '| peak RSS (time -v), MiB | %s | %s | %s | %s | %s |\n' "$fd_rss" "$pt_rss" "$bb_rss" \
	"$(r "$pt_rss" "$fd_rss")" "$(r "$bb_rss" "$fd_rss")"
printf '| peak PSS, process + workers, MiB | %s | %s | %s | %s | %s |\n' "$fd_rss" "$pt_pss" "$bb_pss" \
	"$(r "$pt_pss" "$fd_rss")" "$(r "$bb_pss" "$fd_rss")"
printf "| validation AUC after 1 epoch | %.4f | %s | %s | | |\n" "$fd_auc" "$pt_auc" "$bb_auc"
echo "# fd-pack: $pack_s s, $pack_rss MiB"
