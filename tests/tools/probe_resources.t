#!/bin/bash
# probe_resources.t: resource exhaustion on one input fails that input only
# (issue 16, "resources"): fd-facecrop on a 12000x12000 PNG (under the 200 MP
# limit) detects on a capped downscale (FD_MTCNN_MAX_LEVEL, doc/facecrop.md)
# under a 2 GB address-space limit, with the box mapped back to the big
# image's coordinates; under tighter limits the image that does not fit is
# marked bad:<why> (decode or detector), the other rows are kept, exit 0.
. "$(dirname "$0")/lib.sh"
M=${FD_MODELS_DIR:-$top/models/mtcnn}
[ -f "$M/onet.pt" ] || { echo "1..0 # SKIP no MTCNN weights in $M (make models)"; exit 0; }
# ulimit -v cannot be used under AddressSanitizer (it reserves terabytes of
# shadow address space at start): the sanitizer build (make SANITIZE=1) skips
# this file, the normal build runs it
if ldd "$BIN/fd-facecrop" 2>/dev/null | grep -q libasan; then
	echo "1..0 # SKIP ulimit -v and AddressSanitizer do not mix (ASan reserves its shadow memory at start)"
	exit 0
fi
export FD_MODELS_DIR=$M MALLOC_ARENA_MAX=2
ast=/usr/lib/python3/dist-packages/skimage/data/astronaut.png
[ -f "$ast" ] || { echo "Bail out! missing photograph $ast (scripts/deps.sh)"; exit 1; }
cd "$T" || exit 1
# a4.png: the astronaut at 2048x2048; big.png: it pasted at (8000, 7000) into a
# flat 12000x12000 canvas (a few MB of PNG, 432 MB decoded)
ok "make a 12000x12000 PNG" $PY -c 'import sys; from PIL import Image
a = Image.open(sys.argv[1]).convert("RGB").resize((2048, 2048), Image.BILINEAR); a.save("a4.png")
c = Image.new("RGB", (12000, 12000), (90, 90, 90)); c.paste(a, (8000, 7000)); c.save("big.png", compress_level=1)' "$ast"
cp "$ast" ast.png
printf 'path\na4.png\nast.png\nbig.png\n' >in.tsv
fc() { fd-facecrop -q --threads 1 --root . "$@"; }

# bounded: the big image runs in 2 GB of address space (9.8 GB at full resolution)
ok "a 12000x12000 PNG is detected under ulimit -v 2 GB" sh -c 'ulimit -v 2000000 && exec "$0" -q --threads 1 --root . -o full.tsv in.tsv' "$(command -v fd-facecrop)"
note() { awk -F'\t' -v p="$2" 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next} $c["path"]==p{print $c["face_note"]}' "$1"; }
is "a4.png: a face" "$(note full.tsv a4.png)" ok
is "big.png: a face" "$(note full.tsv big.png)" ok
is "ast.png: a face" "$(note full.tsv ast.png)" ok
# the box in big.png is the 2048 image's box moved by (8000, 7000), to 2% of its width
is "big.png's box is in the big image's coordinates" "$(awk -F'\t' 'NR==1{for(i=1;i<=NF;i++)c[$i]=i;next}
	{b[NR,1]=$c["face_x1"]; b[NR,2]=$c["face_y1"]; b[NR,3]=$c["face_x2"]; b[NR,4]=$c["face_y2"]}
	END{w=b[2,3]-b[2,1]; for(k=1;k<=4;k++)b[3,k]=b[4,k]; if (!(w > 100)) {print "no box"; exit}
	split("8000 7000 8000 7000", off, " "); bad=0
	for(k=1;k<=4;k++){d=b[3,k]-off[k]-b[2,k]; if(!(d<0.02*w && d>-0.02*w)) bad++}
	print bad ? "off: " b[3,1] " " b[3,2] " " b[3,3] " " b[3,4] " vs " b[2,1] " " b[2,2] : "ok"}' full.tsv)" ok

# 600 MB: big.png cannot be decoded (432 MB twice); its row only is bad
ok "under ulimit -v 600 MB the run goes on (exit 0)" sh -c 'ulimit -v 600000 && exec "$0" -q --threads 1 --root . -o lim.tsv in.tsv' "$(command -v fd-facecrop)"
is "a4.png still detected" "$(note lim.tsv a4.png)" ok
is "ast.png still detected" "$(note lim.tsv ast.png)" ok
like "big.png: bad:<why>" "$(note lim.tsv big.png)" "^bad:cannot read '\./big\.png': out of memory"
like "the bad row is counted on stderr" "$(cat "$T/.err")" "1 images could not be decoded or detected"
# 200 MB: a4.png decodes (12 MB) but the detector cannot allocate:
# bad:detector:, and the same detector then takes the next image
ok "under ulimit -v 200 MB the run goes on (exit 0)" sh -c 'ulimit -v 200000 && exec "$0" -q --threads 1 --root . -o tight.tsv in.tsv' "$(command -v fd-facecrop)"
like "a4.png: bad:detector: <why>" "$(note tight.tsv a4.png)" "^bad:detector: .*(memory|allocate)"
is "ast.png after it: detected, the same row as without a limit" "$(grep '^ast' tight.tsv)" "$(grep '^ast' full.tsv)"
like "big.png: bad:" "$(note tight.tsv big.png)" "^bad:"
printf 'path\na4.png\nbig.png\n' >bad.tsv
ok "every row failed: still exit 0, the table written" sh -c 'ulimit -v 200000 && exec "$0" -q --threads 1 --root . -o allbad.tsv bad.tsv' "$(command -v fd-facecrop)"
is "face_note bad and face_n 0 for both rows" "$(cut -f17,18 allbad.tsv | tail -n +2 | cut -c1-6 | tr '\n\t' ',:')" "0:bad:,0:bad:,"
done_testing
