#!/bin/sh
# facecrop.sh [THREADS] [REPEAT]: images/s of fd-facecrop vs facenet-pytorch's
# MTCNN.detect on the same images (the Debian photographs of facecrop.t, each
# REPEAT times) and thread count (fd: images in parallel; PyTorch:
# torch.set_num_threads), one image at a time as the tools see them. Needs
# make, make models, scripts/venv.sh, python3-skimage and opencv-doc.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
th=${1:-2}
rep=${2:-4}
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
for f in /usr/lib/python3/dist-packages/skimage/data/astronaut.png \
	/usr/share/doc/opencv-doc/examples/data/messi5.jpg \
	/usr/share/doc/opencv-doc/examples/data/basketball1.png \
	/usr/share/doc/opencv-doc/examples/data/building.jpg \
	/usr/share/doc/opencv-doc/examples/data/home.jpg; do cp "$f" "$d/"; done
{ echo path; i=0; while [ $i -lt "$rep" ]; do (cd "$d" && ls *.png *.jpg); i=$((i + 1)); done; } >"$d/in.tsv"
n=$(($(wc -l <"$d/in.tsv") - 1))
t0=$(date +%s.%N)
"$top/bin/fd-facecrop" -q --models "$top/models/mtcnn" --threads "$th" --root "$d" -o "$d/out.tsv" "$d/in.tsv"
t1=$(date +%s.%N)
fd=$(echo "$n / ($t1 - $t0)" | bc -l)
py=$("$top/.venv/bin/python" - "$d" "$th" <<'PY'
import csv, sys, time
import torch
from PIL import Image
from facenet_pytorch import MTCNN
root, th = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(th)
rows = [r['path'] for r in csv.DictReader(open(f"{root}/in.tsv"), delimiter='\t')]
mt = MTCNN(select_largest=False)
t0 = time.perf_counter()
for p in rows:
    img = Image.open(f"{root}/{p}").convert('RGB')
    with torch.no_grad():
        mt.detect(img, landmarks=True)
print(len(rows) / (time.perf_counter() - t0))
PY
)
printf 'images\tthreads\tfd_img_s\ttorch_img_s\tratio\n%d\t%d\t%.2f\t%.2f\t%.2f\n' "$n" "$th" "$fd" "$py" \
	"$(echo "$fd / $py" | bc -l)"
