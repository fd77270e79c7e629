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
set -eu
M=${1:-resnet18} G=${2:-200} S=${3:-224} TH=${THREADS:-2} AUG=${AUG:-1}
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
printf '{"model":"%s","epochs":1,"batch_size":32,"num_workers":%d,"scheduler":{"T_max":1}}\n' \
	"$M" "$TH" >"$W/bench.json"
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
echo "# $M@$S, $ntrain training + $nval validation images, batch 32, $TH threads, $TH loader workers, augment=$AUG"
echo "| | fd | torch | torch/fd |"
echo "|---|---|---|---|"
printf '| epoch (train + validation), s | %.2f | %.2f | %.2f |\n' "$fd_epoch" "$pt_epoch" "$(echo "$pt_epoch / $fd_epoch" | bc -l)"
printf '| process wall, s | %.2f | %.2f | %.2f |\n' "$fd_s" "$pt_s" "$(echo "$pt_s / $fd_s" | bc -l)"
printf '| fd-pack + fd-train wall vs torch, s | %.2f | %.2f | %.2f |\n' "$(echo "$pack_s + $fd_s" | bc -l)" "$pt_s" \
	"$(echo "$pt_s / ($pack_s + $fd_s)" | bc -l)"
printf '| peak RSS (time -v), MiB | %s | %s | %.2f |\n' "$fd_rss" "$pt_rss" "$(echo "$pt_rss / $fd_rss" | bc -l)"
printf '| peak PSS, process + workers, MiB | %s | %s | |\n' "$fd_rss" "$pt_pss"
printf "| validation AUC after 1 epoch | %.4f | %s | |\n" "$fd_auc" "$(sed -E 's/.* val_auc=([0-9.na]+).*/\1/' "$W/torch.out")"
echo "# fd-pack: $pack_s s, $pack_rss MiB"
