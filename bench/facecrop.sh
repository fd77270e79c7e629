#!/bin/sh
# facecrop.sh [THREADS] [REPEAT] [ROUNDS]: images/s of fd-facecrop vs
# facenet-pytorch's MTCNN.detect on the same images and thread count, on two
# sets: "mixed" (the five Debian photographs of facecrop.t at their own sizes)
# and "dff512" (the same photographs resized to 512x512 JPEG, quality 90, like
# DeepFakeFace's fakes), each image REPEAT times, one image at a time as the
# tools see them. fd runs images in parallel (one oneDNN thread each), PyTorch
# uses torch.set_num_threads. Timing: fd's is the whole fd-facecrop process
# (start-up, weight loading, decoding, TSV output); PyTorch's starts before
# MTCNN() is built (weights loaded) and ends after the last detect, so it
# includes model construction and PIL decoding but not `import torch`. Runs
# alternate fd / PyTorch ROUNDS times; the best round of each is reported.
# Needs make, make models, scripts/venv.sh, python3-skimage and opencv-doc.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
th=${1:-2}
rep=${2:-4}
rounds=${3:-3}
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
mkdir "$d/mixed" "$d/dff512"
for f in /usr/lib/python3/dist-packages/skimage/data/astronaut.png \
	/usr/share/doc/opencv-doc/examples/data/messi5.jpg \
	/usr/share/doc/opencv-doc/examples/data/basketball1.png \
	/usr/share/doc/opencv-doc/examples/data/building.jpg \
	/usr/share/doc/opencv-doc/examples/data/home.jpg; do cp "$f" "$d/mixed/"; done
/usr/bin/python3 - "$d" <<'PY'
import os, sys
from PIL import Image
d = sys.argv[1]
for f in sorted(os.listdir(f"{d}/mixed")):
    im = Image.open(f"{d}/mixed/{f}").convert('RGB').resize((512, 512), Image.BICUBIC)
    im.save(f"{d}/dff512/{os.path.splitext(f)[0]}.jpg", quality=90)
PY
printf 'set\timages\tthreads\tfd_img_s\ttorch_img_s\tratio\n'
for set in mixed dff512; do
	{ echo path; i=0; while [ $i -lt "$rep" ]; do (cd "$d/$set" && ls); i=$((i + 1)); done; } >"$d/$set.tsv"
	n=$(($(wc -l <"$d/$set.tsv") - 1))
	fd=0 py=0 r=0
	while [ $r -lt "$rounds" ]; do
		t0=$(date +%s.%N)
		"$top/bin/fd-facecrop" -q --models "$top/models/mtcnn" --threads "$th" --root "$d/$set" \
			-o "$d/out.tsv" "$d/$set.tsv"
		t1=$(date +%s.%N)
		fd=$(echo "f = $n / ($t1 - $t0); if (f > $fd) f else $fd" | bc -l)
		p=$("$top/.venv/bin/python" - "$d/$set" "$d/$set.tsv" "$th" <<'PY'
import csv, sys, time
import torch
from PIL import Image
from facenet_pytorch import MTCNN
root, tsv, th = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(th)
rows = [r['path'] for r in csv.DictReader(open(tsv), delimiter='\t')]
t0 = time.perf_counter()
mt = MTCNN(select_largest=False)
for p in rows:
    img = Image.open(f"{root}/{p}").convert('RGB')
    with torch.no_grad():
        mt.detect(img, landmarks=True)
print(len(rows) / (time.perf_counter() - t0))
PY
)
		py=$(echo "if ($p > $py) $p else $py" | bc -l)
		r=$((r + 1))
	done
	printf '%s\t%d\t%d\t%.2f\t%.2f\t%.2f\n' "$set" "$n" "$th" "$fd" "$py" "$(echo "$fd / $py" | bc -l)"
done
