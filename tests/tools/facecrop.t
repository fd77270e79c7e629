#!/bin/bash
# facecrop.t: fd-facecrop against facenet-pytorch 2.5.3's MTCNN (in .venv) on
# real photographs from Debian packages and on fd-synth images, face for face
# (0.5 px, 1e-4 in score); columns, no-face and corrupt-image rows, usage.
. "$(dirname "$0")/lib.sh"
M=${FD_MODELS_DIR:-$top/models/mtcnn}
[ -f "$M/onet.pt" ] || { echo "1..0 # SKIP no MTCNN weights in $M (make models)"; exit 0; }
export FD_MODELS_DIR=$M
VPY=$top/.venv/bin/python

# real photographs shipped in Debian packages (scripts/deps.sh TEST list)
mkdir -p "$T/img"
n=0
for f in /usr/lib/python3/dist-packages/skimage/data/astronaut.png \
	/usr/share/doc/opencv-doc/examples/data/messi5.jpg \
	/usr/share/doc/opencv-doc/examples/data/basketball1.png \
	/usr/share/doc/opencv-doc/examples/data/basketball2.png \
	/usr/share/doc/opencv-doc/examples/data/building.jpg \
	/usr/share/doc/opencv-doc/examples/data/home.jpg; do
	if [ -f "$f" ]; then cp "$f" "$T/img/" && n=$((n + 1)); else echo "# missing photograph $f"; fi
done
is "all 6 Debian photographs present (scripts/deps.sh installs them)" "$n" 6
# several faces in one image: two photographs side by side
if [ -f "$T/img/astronaut.png" ] && [ -f "$T/img/messi5.jpg" ]; then
	$PY -c 'import sys; from PIL import Image
a = Image.open(sys.argv[1]).convert("RGB"); b = Image.open(sys.argv[2]).convert("RGB")
c = Image.new("RGB", (a.width + b.width, max(a.height, b.height)), (90, 90, 90))
c.paste(a, (0, 0)); c.paste(b, (a.width, 40)); c.save(sys.argv[3])' \
		"$T/img/astronaut.png" "$T/img/messi5.jpg" "$T/img/pair.png"
fi
# fd-synth images (faces drawn by the generator)
fd-synth -o "$T/synth" --groups 3 --seed 5 >/dev/null 2>&1
(cd "$T/synth" && find . -name '*.jpg' -o -name '*.png' | sort | head -8) | sed 's|^\./|synth/|' >"$T/synth.ls"
cp -r "$T/synth" "$T/img/"
{ echo path; (cd "$T/img" && ls *.png *.jpg 2>/dev/null); cat "$T/synth.ls"; } >"$T/in.tsv"
echo "# $(($(wc -l <"$T/in.tsv") - 1)) images ($n Debian photographs)"

ok "fd-facecrop runs" fd-facecrop -q --root "$T/img" --all "$T/all.tsv" -o "$T/out.tsv" "$T/in.tsv"
is "header: input columns then the face columns" "$(head -1 "$T/out.tsv")" \
	"$(printf 'path\tface_x1\tface_y1\tface_x2\tface_y2\tface_score\tface_lx1\tface_ly1\tface_lx2\tface_ly2\tface_lx3\tface_ly3\tface_lx4\tface_ly4\tface_lx5\tface_ly5\tface_n\tface_note')"
is "one output row per input row" "$(wc -l <"$T/out.tsv")" "$(wc -l <"$T/in.tsv")"
like "astronaut: one face, confident" "$(grep '^astronaut.png' "$T/out.tsv" | cut -f6,17,18)" \
	'^0\.99[0-9]*	1	ok$'
count "pair.png: faces found" "$(grep -c '	pair.png	' "$T/all.tsv")" 2
count "faces found in all" "$(($(wc -l <"$T/all.tsv") - 1))" 10
if [ -x "$VPY" ] && "$VPY" -c 'import facenet_pytorch' 2>/dev/null; then
	"$VPY" "$top/tests/tools/facecrop_cmp.py" "$T/img" "$T/in.tsv" "$T/all.tsv" >"$T/cmp" 2>&1
	rc=$?
	while read -r l; do echo "# $l"; done <"$T/cmp"
	is "every face equals facenet-pytorch's (0.5 px, 1e-4)" "$rc" 0
	# each net alone vs facenet-pytorch's PNet/RNet/ONet, area resampling vs torch
	if "$VPY" "$top/tests/tools/mtcnn_nets.py" "$T/nets.safetensors" >"$T/nets.err" 2>&1; then
		"$top/${FD_BUILD:-build}/tests/t_mtcnn" "$T/nets.safetensors" "$M" >"$T/tnets" 2>&1
		rc=$?
		sed 's/^/#   /' "$T/tnets"
		is "t_mtcnn: nets and area resampling equal facenet-pytorch / torch" "$rc" 0
	else
		_report 1 "mtcnn_nets.py writes the fixture"; sed 's/^/#   /' "$T/nets.err"
	fi
else
	_report 1 "facenet-pytorch in .venv (scripts/venv.sh)"
fi

# --pick largest, no face, corrupt image, skipped row
printf 'path\tstatus\nastronaut.png\tok\nbroken.jpg\tok\nflat.png\tok\nastronaut.png\tbad:x\n' >"$T/mix.tsv"
head -c 500 "$T/img/astronaut.png" >"$T/img/broken.jpg"
$PY -c 'import sys; from PIL import Image; Image.new("RGB", (64, 40), (128, 128, 128)).save(sys.argv[1])' "$T/img/flat.png"
fd-facecrop --root "$T/img" --pick largest --preview "$T/prev" -o "$T/mix.out" "$T/mix.tsv" 2>"$T/err"
is "mixed input exits 0" "$?" 0
is "notes" "$(cut -f19 "$T/mix.out" | tail -n +2 | sed 's/:.*//' | tr '\n' ' ')" "ok bad noface skipped "
is "no face: score 0 and the centred square" "$(sed -n 4p "$T/mix.out" | cut -f3-7)" \
	"$(printf '12.000\t0.000\t52.000\t40.000\t0')"
like "counts on stderr" "$(cat "$T/err")" "1 with a face, 1 without \(centre box\), 1 bad, 1 skipped"
ok "preview written for the face row" test -s "$T/prev/2.jpg"
ok "preview written for the no-face row" test -s "$T/prev/4.jpg"

# bad usage and bad input: exit codes, messages, no output
# (fails: exit code, the message, and nothing on stdout)
fails "no --root: exit 2" 2 "^fd-facecrop: --root is required$" fd-facecrop -o "$T/u.tsv" "$T/in.tsv"
no_file "no output on usage error" "$T/u.tsv"
fails "bad --pick: exit 2" 2 "^fd-facecrop: --pick: 'middle' is not one of score, largest$" \
	fd-facecrop --root "$T/img" --pick middle "$T/in.tsv"
fails "--min-face below 12: exit 2" 2 "^fd-facecrop: --min-face: 5 is out of range \[12, 100000\]$" \
	fd-facecrop --root "$T/img" --min-face 5 "$T/in.tsv"
printf 'file\nx.png\n' >"$T/nopath.tsv"
fails "missing path column: exit 1, naming the file and column" 1 \
	"^fd-facecrop: cannot read '.*nopath.tsv': missing column 'path'" \
	fd-facecrop --root "$T/img" -o "$T/np.tsv" "$T/nopath.tsv"
no_file "no output" "$T/np.tsv"
fails "missing weights: exit 1, naming the weights file" 1 "^fd-facecrop: .*nowhere/pnet\.pt" \
	fd-facecrop --root "$T/img" --models "$T/nowhere" -o "$T/nm.tsv" "$T/in.tsv"
no_file "no output" "$T/nm.tsv"
fails "missing weights on stdout: nothing written" 1 "^fd-facecrop: .*nowhere/pnet\.pt" \
	fd-facecrop --root "$T/img" --models "$T/nowhere" "$T/in.tsv"
done_testing
