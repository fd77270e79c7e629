#!/bin/bash
# pack.t: fd-pack against Pillow (every geometry, draft and --exact), skipped
# and failing rows, both outputs atomic, usage and bad-input errors, man page.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
D=$T/data
mkdir -p "$D/wiki" "$D/fake"
$PY - "$D" <<'PY'
import os, sys, shutil, numpy as np, sklearn.datasets
from PIL import Image
d = sys.argv[1]
rng = np.random.default_rng(7)
img = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images")
shutil.copy(os.path.join(img, "china.jpg"), os.path.join(d, "wiki/china.jpg"))
shutil.copy(os.path.join(img, "flower.jpg"), os.path.join(d, "wiki/flower.jpg"))
for i, (w, h) in enumerate([(300, 200), (150, 260), (97, 61)]):
    a = np.clip(rng.normal(128, 50, (h, w, 3)) + np.mgrid[0:h, 0:w][1][..., None] / w * 100, 0, 255)
    Image.fromarray(a.astype(np.uint8)).save(os.path.join(d, "fake/f%d.jpg" % i), quality=90)
Image.fromarray(rng.integers(0, 255, (40, 70, 4), dtype=np.uint8), "RGBA").save(os.path.join(d, "fake/p.png"))
b = open(os.path.join(d, "fake/f0.jpg"), "rb").read()
open(os.path.join(d, "fake/cut.jpg"), "wb").write(b[: len(b) // 2])
open(os.path.join(d, "fake/empty.jpg"), "wb").close()
PY
tab=$(printf '\t')
{
	echo "path${tab}label${tab}status${tab}fold${tab}face_x1${tab}face_y1${tab}face_x2${tab}face_y2${tab}face_score"
	echo "wiki/china.jpg${tab}0${tab}ok${tab}0${tab}250${tab}80.5${tab}330${tab}190${tab}0.99"
	echo "wiki/flower.jpg${tab}0${tab}ok${tab}1${tab}10${tab}300${tab}200${tab}420${tab}0.9"
	echo "fake/f0.jpg${tab}1${tab}ok${tab}0${tab}100${tab}50${tab}160${tab}120${tab}0.8"
	echo "fake/f1.jpg${tab}1${tab}ok${tab}1${tab}0${tab}0${tab}0${tab}0${tab}0"
	echo "fake/f2.jpg${tab}1${tab}bad:truncated${tab}test${tab}${tab}${tab}${tab}${tab}"
	echo "fake/p.png${tab}1${tab}ok${tab}test${tab}5${tab}5${tab}30${tab}35${tab}0.7"
	echo "fake/cut.jpg${tab}1${tab}ok${tab}0${tab}${tab}${tab}${tab}${tab}"
} >"$T/in.tsv"

for g in center letterbox resize face; do
	for S in 64 224; do
		ok "pack $g $S (draft)" fd-pack -q --root "$D" --size $S --geometry $g -o "$T/$g$S.safetensors" "$T/in.tsv"
		out=$($PY "$here/pack_ref.py" "$D" "$T/$g$S.safetensors" 2>&1)
		is "pack $g $S equals Pillow" "$out" "identical: 5 images"
	done
	ok "pack $g --exact" fd-pack -q --exact --root "$D" --size 48 --geometry $g -o "$T/x$g.safetensors" "$T/in.tsv"
	out=$($PY "$here/pack_ref.py" "$D" "$T/x$g.safetensors" 2>&1)
	is "pack $g --exact equals Pillow" "$out" "identical: 5 images"
done
# matched: fakes cropped to their group's real's aspect, then letterboxed.
# g1: real china (640x427), fakes f0 (300x200) and p.png (70x40, PNG);
# g2: real f1 (150x260, portrait), fake flower (640x427: cropped to portrait);
# g3: a fake with no real (cropped 1:1); g4: its only real is not ok.
{
	echo "path${tab}label${tab}status${tab}group${tab}width${tab}height"
	echo "wiki/china.jpg${tab}0${tab}ok${tab}g1${tab}640${tab}427"
	echo "fake/f0.jpg${tab}1${tab}ok${tab}g1${tab}300${tab}200"
	echo "fake/p.png${tab}1${tab}ok${tab}g1${tab}70${tab}40"
	echo "fake/f1.jpg${tab}0${tab}ok${tab}g2${tab}150${tab}260"
	echo "wiki/flower.jpg${tab}1${tab}ok${tab}g2${tab}640${tab}427"
	echo "fake/f0.jpg${tab}1${tab}ok${tab}g3${tab}300${tab}200"
	echo "fake/f2.jpg${tab}0${tab}bad:truncated${tab}g4${tab}${tab}"
	echo "fake/p.png${tab}1${tab}ok${tab}g4${tab}70${tab}40"
} >"$T/mt.tsv"
for S in 32 224; do
	ok "pack matched $S (draft)" fd-pack -q --root "$D" --size $S --geometry matched -o "$T/matched$S.safetensors" "$T/mt.tsv"
	out=$($PY "$here/pack_ref.py" "$D" "$T/matched$S.safetensors" "$T/mt.tsv" 2>&1)
	is "pack matched $S equals Pillow" "$out" "identical: 7 images (2 unmatched)"
done
ok "pack matched --exact, fold of the fakes only" fd-pack -q --exact --root "$D" --size 48 --geometry matched --only label=1 -o "$T/xmatched.safetensors" "$T/mt.tsv"
out=$($PY "$here/pack_ref.py" "$D" "$T/xmatched.safetensors" "$T/mt.tsv" 2>&1)
is "pack matched --exact equals Pillow (reals found outside the filter)" "$out" "identical: 5 images (2 unmatched)"
is "matched: fd.unmatched in the metadata" "$(fd-st --meta "$T/xmatched.safetensors" | grep fd.unmatched)" "fd.unmatched${tab}2"
# the flower fake of g2 is portrait-cropped: bars left and right, none above
py_bars=$($PY - "$T/matched32.safetensors" <<'PY'
import json, struct, sys, numpy as np
raw = open(sys.argv[1], "rb").read(); hl = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + hl])
b, e = h["images"]["data_offsets"]; im = np.frombuffer(raw[8 + hl + b:8 + hl + e], np.uint8).reshape(h["images"]["shape"])
print("%d %d" % (im[4][:, 0].max(), im[4][0, 8:24].max() > 0))
PY
)
is "matched: a landscape fake of a portrait real has side bars" "$py_bars" "0 1"
fd-pack -q --root "$D" --size 32 --geometry matched -o "$T/nog.safetensors" "$T/in.tsv" 2>"$T/err"
is "matched without group/width/height: exit 1" "$?" 1
like "matched without group: names the column" "$(cat "$T/err")" "missing column 'group' \\(needed by --geometry matched"
ok "matched without group: no pack" test ! -e "$T/nog.safetensors"
sed 's/g2\t150\t260/g2\t150\tx/' "$T/mt.tsv" >"$T/mtbad.tsv"
fd-pack -q --root "$D" --size 32 --geometry matched -o "$T/bad.safetensors" "$T/mtbad.tsv" 2>"$T/err"
is "matched with a bad real height: exit 1" "$?" 1
like "matched with a bad real height: names the line" "$(cat "$T/err")" "line 5: a real photo's width and height must be positive integers"

ok "pack --margin 0 from stdin, 1 thread" fd-pack -q --threads 1 --margin 0 --root "$D" --size 32 --geometry face -o "$T/m0.safetensors" - <"$T/in.tsv"
out=$($PY "$here/pack_ref.py" "$D" "$T/m0.safetensors" 2>&1)
is "pack face margin 0 equals Pillow" "$out" "identical: 5 images"

fd-pack --root "$D" --size 32 --geometry face -o "$T/f.safetensors" "$T/in.tsv" 2>"$T/err"
is "exit 0 despite bad rows" "$?" 0
err=$(cat "$T/err")
like "warns about the truncated file by name" "$err" "warning: skipping line 8: cannot read '.*fake/cut.jpg': "
like "counts rows not ok" "$err" "skipping 1 rows whose status is not 'ok'"
like "counts rows without a face" "$err" "1 rows have no face"
is "pack.tsv: header gains row" "$(head -1 "$T/f.tsv")" "path${tab}label${tab}status${tab}fold${tab}face_x1${tab}face_y1${tab}face_x2${tab}face_y2${tab}face_score${tab}row"
is "pack.tsv: kept rows in order" "$(cut -f1,10 "$T/f.tsv" | tail -n +2 | tr '\t\n' ':,')" "wiki/china.jpg:0,wiki/flower.jpg:1,fake/f0.jpg:2,fake/f1.jpg:3,fake/p.png:4,"
meta=$(fd-st --meta "$T/f.safetensors")
like "metadata: kind" "$meta" "fd.kind${tab}pack"
like "metadata: size and geometry" "$(echo "$meta" | grep -E 'fd.size|fd.geometry' | tr '\n' ' ')" "fd.size${tab}32 .*fd.geometry${tab}face|fd.geometry${tab}face .*fd.size${tab}32"
like "metadata: hash of the input TSV" "$meta" "fd.source_sha256${tab}$(sha256sum <"$T/in.tsv" | cut -c1-64)"
like "metadata: command line" "$meta" "fd.cmdline${tab}fd-pack --root"
like "tensors: images [5,32,32,3] and label [5]" "$(fd-st "$T/f.safetensors" | cut -f1-3 | tr '\t\n' ' |')" "images U8 5,32,32,3\|label U8 5\|"

ok "--only fold=0,test" fd-pack -q --root "$D" --size 16 --only fold=0,test --only label=1 -o "$T/o.safetensors" "$T/in.tsv"
is "--only keeps matching rows" "$(cut -f1 "$T/o.tsv" | tail -n +2 | tr '\n' ,)" "fake/f0.jpg,fake/p.png,"

# errors: message naming the file, exit status, no output left behind
printf 'path\tstatus\nwiki/china.jpg\tok\n' >"$T/nolabel.tsv"
fails "missing column label" 1 "cannot read '.*nolabel.tsv': missing column 'label'" fd-pack --root "$D" --size 32 -o "$T/e1.safetensors" "$T/nolabel.tsv"
no_file "no pack after a missing column" "$T/e1.safetensors"
no_file "no pack.tsv after a missing column" "$T/e1.tsv"
printf 'path\tlabel\nwiki/china.jpg\t0\n' >"$T/noface.tsv"
fails "face needs face columns" 1 "noface.tsv': missing column 'face_x1'" fd-pack --root "$D" --size 32 --geometry face -o "$T/e2.safetensors" "$T/noface.tsv"
printf 'path\tlabel\tstatus\nfake/cut.jpg\t1\tok\nfake/empty.jpg\t0\tok\nnone.jpg\t0\tok\nwiki/china.jpg\t1\tbad:x\n' >"$T/allbad.tsv"
fails "all rows fail" 1 "cannot read '.*allbad.tsv': no image could be decoded \(3 failed\)" fd-pack --root "$D" --size 32 -o "$T/e3.safetensors" "$T/allbad.tsv"
like "names the empty file" "$(cat "$T/.err")" "empty.jpg': empty file"
no_file "no pack when all rows fail" "$T/e3.safetensors"
no_file "no pack.tsv when all rows fail" "$T/e3.tsv"
printf 'path\tlabel\tstatus\nwiki/china.jpg\t1\tbad:x\n' >"$T/none.tsv"
fails "no row survives the filters" 1 "no rows to pack" fd-pack --root "$D" --size 32 -o "$T/e4.safetensors" "$T/none.tsv"
no_file "no pack without rows" "$T/e4.safetensors"
printf 'path\tlabel\nwiki/china.jpg\t2x\n' >"$T/badlabel.tsv"
fails "bad label names the line" 1 "badlabel.tsv': line 2: label '2x'" fd-pack --root "$D" --size 32 -o "$T/e5.safetensors" "$T/badlabel.tsv"
fails "bad --size" 2 "--size: 'abc' is not an integer" fd-pack --root "$D" --size abc -o "$T/e6.safetensors" "$T/in.tsv"
fails "--size 0" 2 "--size: 0 is out of range" fd-pack --root "$D" --size 0 -o "$T/e6.safetensors" "$T/in.tsv"
no_file "no pack after a usage error" "$T/e6.safetensors"
fails "bad --geometry" 2 "--geometry: 'square'" fd-pack --root "$D" --size 8 --geometry square -o "$T/e7.safetensors" "$T/in.tsv"
fails "-o must end in .safetensors" 2 "must be a file name ending in .safetensors" fd-pack --root "$D" --size 8 -o "$T/e8.pack" "$T/in.tsv"
fails "--root is required" 2 "--root is required" fd-pack --size 8 -o "$T/e9.safetensors" "$T/in.tsv"
fails "bad --only" 2 "--only" fd-pack --root "$D" --size 8 --only fold -o "$T/e9.safetensors" "$T/in.tsv"
fails "--only on a missing column" 1 "missing column 'nope'" fd-pack --root "$D" --size 8 --only nope=1 -o "$T/e9.safetensors" "$T/in.tsv"
fails "missing input" 1 "cannot read '$T/nothere.tsv'" fd-pack --root "$D" --size 8 -o "$T/e9.safetensors" "$T/nothere.tsv"

# man page SYNOPSIS (roff escapes removed, lines joined) equals the usage line
usage=$(fd-pack --help | head -1 | sed 's/^usage: //')
syn=$(sed -n '/^\.SH SYNOPSIS/,/^\.SH /p' "$top/man/fd-pack.1" | sed '1d;$d' | grep -v '^\.\(ad\|nh\|hy\|HP\|PP\)' |
	sed -e 's/^\.[BIR]\{1,2\} //' -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/\\&//g' -e 's/"//g' | tr '\n' ' ' | sed -e 's/  */ /g' -e 's/ $//')
is "man page SYNOPSIS equals --help usage" "$syn" "$usage"
done_testing
