#!/bin/bash
# gradcam.t: fd-gradcam against the grad-cam package's GradCAM (1.5.7, in
# .venv) for every architecture (tests/tools/gradcam_cmp.py), its outputs
# (files, TSV columns, -n, --rows, the face-box share), and bad input.
. "$(dirname "$0")/lib.sh"
VPY=$top/.venv/bin/python
cd "$T" || exit 1
fd-synth -q -o D --groups 8 --fake-size 64 --real-width 64,80 --seed 5 &&
	fd-index -q --root D -o idx.tsv && fd-split -q --folds 3 --test 0.2 -o split.tsv idx.tsv &&
	fd-pack -q --root D --size 64 -o pack.safetensors split.tsv ||
	{ echo "Bail out! cannot make the pack"; exit 1; }

# conformance: each architecture at its default layer, plus inner layers and
# the 'real' target (the logit's negation)
if [ -x "$VPY" ] && "$VPY" -c 'import pytorch_grad_cam, cv2' 2>/dev/null; then
	mkdir ref
	"$VPY" "$top/tests/tools/gradcam_cmp.py" "$BIN/fd-gradcam" pack.safetensors ref \
		simplecnn:-:real simplecnn:features.6:fake resnet18:-:real resnet18:layer3:fake \
		resnet18:layer4.1.conv2:fake resnet50:-:fake efficientnet_b0:-:real \
		mobilenet_v3_small:-:real convnext_tiny:-:fake resnet18:layer3:2:3 >cmp 2>&1
	rc=$?
	while read -r l; do echo "# $l"; done <cmp
	# prove shows stderr, not "# " lines, unless verbose: a failure's why reaches the CI log
	[ "$rc" = 0 ] || sed 's/^/gradcam_cmp: /' cmp >&2
	is "every case equals grad-cam's GradCAM (layer map, normalised map, overlay)" "$rc" 0
	is "cases compared" "$(grep -c '^ok ' cmp)" 10
else
	_report 1 "grad-cam and opencv in .venv (scripts/venv.sh, python3-opencv)"
	mkdir -p ref
	$PY -c 'import torch, torchvision; torch.manual_seed(0); torch.save(torchvision.models.resnet18(num_classes=1).state_dict(), "ref/resnet18_1.pth")' ||
		echo "Bail out! cannot make a model"
fi
M=ref/resnet18_1.pth

# the outputs
like "--list-layers: names and shapes at the input size (224 without metadata)" \
	"$(fd-gradcam --model $M --arch resnet18 --list-layers | tr '\t\n' ' |')" "^layer shape\|conv1 \[1,64,112,112\]\|.*\|layer4 \[1,512,7,7\]\|fc \[1,1\]\|$"
ok "default layer, -n 3" fd-gradcam -q --threads 1 --model $M --arch resnet18 --pack pack.safetensors -n 3 -o G
is "files" "$(ls G | tr '\n' ' ')" "0.png 1.png 2.png gradcam.tsv heatmaps.safetensors sheet.png "
is "3 rows" "$(tail -n +2 G/gradcam.tsv | wc -l)" 3
is "columns: pack's + ours" "$(head -1 G/gradcam.tsv)" "$(head -1 pack.tsv)	score	logit	target	layer	peak_x	peak_y	center_share"
is "layer column" "$(tail -n +2 G/gradcam.tsv | awk -F'\t' '{print $(NF-3)}' | sort -u)" layer4
check_out() { # dir: tensors, overlays and the sheet agree with the TSV
	$PY - "$1" <<'PY'
import csv, json, struct, sys, numpy as np
from PIL import Image
d = sys.argv[1]
raw = open(d + "/heatmaps.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]; hd = json.loads(raw[8:8 + n]); base = 8 + n
def get(k, dt):
    a, b = hd[k]["data_offsets"]; return np.frombuffer(raw[base + a:base + b], dt).reshape(hd[k]["shape"])
heat, cam, row = get("heatmap", np.float32), get("cam", np.float32), get("row", np.int64)
rows = list(csv.DictReader(open(d + "/gradcam.tsv"), delimiter="\t"))
bad = []
if [int(r["row"]) for r in rows] != row.tolist(): bad.append("rows differ")
S = heat.shape[1]
for k, r in enumerate(rows):
    m = heat[k]
    if not (np.isfinite(m).all() and m.min() >= 0 and (abs(m.max() - 1) < 1e-5 or m.max() == 0)):
        bad.append("row %d not in [0,1]" % k)
    y, x = np.unravel_index(np.argmax(m), m.shape)
    if (int(r["peak_x"]), int(r["peak_y"])) != (x, y): bad.append("peak of row %d" % k)
    key = "face_share" if "face_share" in r else "center_share"
    # center_share's square and the test's face boxes are both the central half
    tot = float(m.astype(np.float64).sum())
    if tot == 0:
        if r[key] != "NA": bad.append("%s of an all-zero map: %s, want NA" % (key, r[key]))
    elif abs(float(r[key]) - m[S // 4:3 * S // 4, S // 4:3 * S // 4].astype(np.float64).sum() / tot) > 2e-6:
        bad.append("%s of row %d: %s" % (key, k, r[key]))
    if abs(1 / (1 + np.exp(-float(r["logit"]))) - float(r["score"])) > 1e-12: bad.append("score")
    im = Image.open("%s/%s.png" % (d, r["row"]))
    if im.size != (S, S): bad.append("overlay size")
sh = Image.open(d + "/sheet.png")
c = int(np.ceil(np.sqrt(len(rows)))); rr = -(-len(rows) // c)
if sh.size != (c * S + (c + 1) * 2, rr * S + (rr + 1) * 2): bad.append("sheet size %s" % (sh.size,))
print("; ".join(bad) if bad else "ok %d" % len(rows))
PY
}
is "heatmaps, peaks, shares, overlays, sheet" "$(check_out G)" "ok 3"

ok "--rows and --target real" fd-gradcam -q --threads 1 --model $M --arch resnet18 --pack pack.safetensors --rows 2,5 --target real --layer layer3 -o R
is "--rows: those rows" "$(tail -n +2 R/gradcam.tsv | cut -f1 | tr '\n' ,)" "$(awk -F'\t' 'NR>1 && ($NF=="2" || $NF=="5"){printf "%s,", $1}' pack.tsv)"
is "--rows: outputs consistent" "$(check_out R)" "ok 2"

# --device: cpu gives the default run's outputs; cuda is refused on a machine
# without a GPU (or in a build without CUDA) before anything is written (as
# fd-eval, eval.t)
ok "--device cpu" fd-gradcam -q --threads 1 --device cpu --model $M --arch resnet18 --pack pack.safetensors --rows 2,5 --target real --layer layer3 -o DC
is "--device cpu: the same table" "$(cat DC/gradcam.tsv)" "$(cat R/gradcam.tsv)"
is "--device cpu: the same heat maps (every tensor's sha256)" "$(fd-st DC/heatmaps.safetensors)" "$(fd-st R/heatmaps.safetensors)"
fails "--device cuda: refused" 1 "--device cuda: (this build of fd has no cuda backend|cuda: cudaGetDeviceCount: )" \
	fd-gradcam -q --model $M --arch resnet18 --pack pack.safetensors --device cuda -o XC
no_file "--device cuda: no output" XC
fails "--device tpu: usage" 2 "'tpu' is not a device" fd-gradcam -q --model $M --arch resnet18 --pack pack.safetensors --device tpu -o XC

# the face box: face_* columns (the central half of each image) in a resized pack
awk -F'\t' 'BEGIN{OFS="\t"} NR==1{print $0, "face_x1", "face_y1", "face_x2", "face_y2"; for (i = 1; i <= NF; i++) c[$i] = i; next}
	{w = $c["width"]; h = $c["height"]; print $0, w / 4, h / 4, 3 * w / 4, 3 * h / 4}' split.tsv >face.tsv
ok "pack with face columns" fd-pack -q --root D --size 64 --geometry resize -o fpack.safetensors face.tsv
ok "face_share" fd-gradcam -q --threads 1 --model $M --arch resnet18 --pack fpack.safetensors -n 4 -o F
is "face_share column" "$(head -1 F/gradcam.tsv | awk -F'\t' '{print $NF}')" face_share
is "face_share = the heat inside the box" "$(check_out F)" "ok 4"

# bad input: exit code, message, and no output directory or temporary
fails "unknown layer lists the layers" 1 "unknown layer 'layer9' of resnet18; layers: conv1 maxpool layer1.0.conv1 .* layer4 \(--list-layers prints them" \
	fd-gradcam -q --model $M --arch resnet18 --pack pack.safetensors --layer layer9 -o X
no_file "unknown layer: no output" X
fails "layer without spatial output" 1 "layer 'fc' of resnet18 has no spatial output \(\[1,1\]\)" \
	fd-gradcam -q --model $M --arch resnet18 --pack pack.safetensors --layer fc -o X
no_file "no spatial output: no output" X
fails "class index on a one-logit model" 1 "--target 3: '.*' has one output \(a logit\), not classes" \
	fd-gradcam -q --model $M --arch resnet18 --pack pack.safetensors --target 3 -o X
no_file "one-logit model: no output" X
[ -f ref/resnet18_3.pth ] || $PY -c 'import torch, torchvision; torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), "ref/resnet18_3.pth")'
fails "class index out of range" 1 "--target 3: '.*' has 3 outputs \(classes 0..2\)" \
	fd-gradcam -q --model ref/resnet18_3.pth --arch resnet18 --num-classes 3 --pack pack.safetensors --target 3 -o X
fails "--target word" 2 "--target" fd-gradcam -q --model $M --arch resnet18 --pack pack.safetensors --target fakes -o X
fails "-o required" 2 "-o DIR is required" fd-gradcam -q --model $M --arch resnet18 --pack pack.safetensors
fails "--arch required for a .pth" 2 "--arch is required" fd-gradcam -q --model $M --pack pack.safetensors -o X
fails "no rows selected" 1 "no row is selected" fd-gradcam -q --model $M --arch resnet18 --pack pack.safetensors --only label=7 -o X
no_file "no rows: no output" X
fails "existing output" 1 "'G' exists and is not an empty directory" \
	fd-gradcam -q --model $M --arch resnet18 --pack pack.safetensors -o G
mkdir E
ok "-o DIR/ (an empty directory, trailing slash)" fd-gradcam -q --threads 1 --model $M --arch resnet18 --pack pack.safetensors -n 1 -o E/
is "DIR/ filled" "$(ls E | tr '\n' ' ')" "0.png gradcam.tsv heatmaps.safetensors sheet.png "
is "no temporaries left" "$(ls -a | grep -c 'tmp\.')" 0
done_testing
