#!/bin/bash
# index.t: fd-index on fd-synth data and on a tree of bad files (each gets its
# status, never a crash); --stats against PIL/numpy (reference, 1e-6); sources
# table lookup and errors; no output left on failure.
. "$(dirname "$0")/lib.sh"

fd-synth -q -o "$T/d" --groups 6 --seed 3
ok "index synth data" fd-index -q --root "$T/d" -o "$T/ix.tsv"
is "header" "$(head -1 "$T/ix.tsv")" "$(printf 'path\tsource\tlabel\tgroup\twidth\theight\tformat\tbytes\tstatus')"
is "24 rows" "$(tail -n +2 "$T/ix.tsv" | wc -l | tr -d ' ')" 24
is "sorted by path in byte order" "$(tail -n +2 "$T/ix.tsv" | cut -f1 | LC_ALL=C sort -c && echo sorted)" sorted
is "all ok" "$(tail -n +2 "$T/ix.tsv" | cut -f9 | sort -u)" ok
is "labels follow sources.tsv" "$(tail -n +2 "$T/ix.tsv" | cut -f2,3 | sort -u | tr '\t\n' ' ;')" \
	"inpainting 1;insight 1;text2img 1;wiki 0;"
is "path, source, group agree with cues.tsv" "$(tail -n +2 "$T/ix.tsv" | cut -f1,2,4 | md5sum)" \
	"$(tail -n +2 "$T/d/cues.tsv" | cut -f1-3 | md5sum)"
is "each group has 4 images" "$(tail -n +2 "$T/ix.tsv" | cut -f4 | sort | uniq -c | awk '{print $1}' | sort -u)" 4
cat >"$T/sizes.py" <<'PY'
import sys, os
from PIL import Image
root = sys.argv[1]
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])][1:]
bad = 0
for r in rows:
    p = os.path.join(root, r[0])
    im = Image.open(p)
    if (str(im.size[0]), str(im.size[1]), str(os.path.getsize(p))) != (r[4], r[5], r[7]):
        bad += 1
print(bad)
PY
is "width, height, bytes as PIL and stat see them" "$($PY "$T/sizes.py" "$T/d" "$T/ix.tsv")" 0
ok "stdout is the same as -o" sh -c "fd-index -q --root '$T/d' | cmp - '$T/ix.tsv'"
ok "one thread gives the same" sh -c "fd-index -q --threads 1 --root '$T/d' | cmp - '$T/ix.tsv'"

# a tree of bad files
B=$T/bad
mkdir -p "$B"/wiki/sub "$B"/text2img "$B"/inpainting "$B"/insight
good=$(cd "$T/d/wiki" && ls */*.jpg | head -1)
cp "$T/d/wiki/$good" "$B/wiki/good.jpg"
: >"$B/wiki/zero.jpg"
sz=$(stat -c %s "$B/wiki/good.jpg")
head -c $((sz / 2)) "$B/wiki/good.jpg" >"$B/wiki/truncated.jpg"
head -c 100 "$B/wiki/good.jpg" >"$B/wiki/cut-header.jpg"
echo "hello, I am text" >"$B/wiki/text.jpg"
printf 'bad\n' >"$B/wiki/sub/deeper.png"
cp "$B/wiki/good.jpg" "$B/wiki/bad"$'\xff'"name.jpg"
cp "$B/wiki/good.jpg" "$B/wiki/tab"$'\t'"name.jpg"
$PY - "$B" <<'PY'
import sys, struct, zlib
import numpy as np
from PIL import Image
b = sys.argv[1]
rng = np.random.default_rng(0)
rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
Image.fromarray(rgb).save(b + "/text2img/png_named.jpg", format="PNG")
Image.fromarray(rgb[:, :, 0]).save(b + "/text2img/gray.jpg", quality=90)
Image.fromarray(rgb).convert("CMYK").save(b + "/text2img/cmyk.jpg", quality=90)
Image.fromarray(rgb).convert("P").save(b + "/text2img/palette.png")
Image.fromarray(rgb[:, :, 1]).save(b + "/text2img/gray.png")
def png(path, w, h, depth, ctype, raw):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    open(path, "wb").write(data)
# 16-bit RGB: rows of filter byte 0 + big-endian samples
a16 = rng.integers(0, 65536, (9, 11, 3), dtype=np.uint16)
png(b + "/inpainting/rgb16.png", 11, 9, 16, 2, b"".join(b"\0" + r.astype(">u2").tobytes() for r in a16))
# a decompression bomb header: 100000 x 100000, IDAT of one row
png(b + "/insight/huge.png", 100000, 100000, 8, 2, b"\0" + b"\0" * 300000)
PY
ok "index the bad tree" fd-index --root "$B" -o "$T/bad.tsv"
st() { P=$1 awk -F'\t' '$1 == ENVIRON["P"] {print $7 " " $9}' "$T/bad.tsv"; }
is "good jpeg" "$(st wiki/good.jpg)" "jpeg ok"
is "zero-byte" "$(st wiki/zero.jpg)" "unknown bad:empty"
is "truncated JPEG passes a header probe" "$(st wiki/truncated.jpg)" "jpeg ok"
is "JPEG cut inside its header" "$(st wiki/cut-header.jpg)" "jpeg bad:truncated"
is "text named .jpg" "$(st wiki/text.jpg)" "unknown bad:not-an-image"
is "deeper folders walked" "$(st wiki/sub/deeper.png)" "unknown bad:not-an-image"
is "PNG named .jpg: format from magic" "$(st text2img/png_named.jpg)" "png ok"
is "gray JPEG" "$(st text2img/gray.jpg)" "jpeg ok"
is "CMYK JPEG (converted by the decoder)" "$(st text2img/cmyk.jpg)" "jpeg ok"
is "palette PNG" "$(st text2img/palette.png)" "png ok"
is "16-bit PNG" "$(st inpainting/rgb16.png)" "png ok"
is "100000x100000 header" "$(awk -F'\t' '$1 == "insight/huge.png" {print $5, $6, $9}' "$T/bad.tsv")" \
	"100000 100000 bad:too-large"
is "non-UTF-8 name escaped" "$(st 'wiki/bad\xffname.jpg')" "unknown bad:non-utf8-name"
is "tab in a name escaped" "$(st 'wiki/tab\x09name.jpg')" "unknown bad:control-char-name"
is "15 rows" "$(tail -n +2 "$T/bad.tsv" | wc -l | tr -d ' ')" 15
is "group drops the extension only" "$(awk -F'\t' '$1 == "wiki/sub/deeper.png" {print $4}' "$T/bad.tsv")" "sub/deeper"
like "summary per source and status" "$(cat "$T/.err")" 'wiki \(label 0\): 8 files: ok 2, bad:control-char-name 1, bad:empty 1, bad:non-utf8-name 1, bad:not-an-image 2, bad:truncated 1'

ok "index the bad tree with --stats" fd-index -q --stats --root "$B" -o "$T/bads.tsv"
st() { P=$1 awk -F'\t' '$1 == ENVIRON["P"] {print $7 " " $9}' "$T/bads.tsv"; }
is "--stats sees the truncated JPEG" "$(st wiki/truncated.jpg)" "jpeg bad:truncated"
is "--stats: other statuses unchanged" "$(cut -f1,9 "$T/bad.tsv" | grep -v truncated.jpg | md5sum)" \
	"$(cut -f1,9 "$T/bads.tsv" | grep -v truncated.jpg | md5sum)"
is "stats columns empty on bad rows" "$(awk -F'\t' '$1 == "wiki/zero.jpg" {print NF ":" $10 $15}' "$T/bads.tsv")" "15:"

# --stats against PIL + numpy (convert('RGB'), /255, population std)
fd-index -q --stats --root "$T/d" -o "$T/ds.tsv"
cat >"$T/stats.py" <<'PY'
import sys, os
import numpy as np
from PIL import Image
worst, n = 0.0, 0
for tsv, root in ((sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])):
    lines = [l.rstrip("\n").split("\t") for l in open(tsv)]
    h = lines[0]
    for r in lines[1:]:
        r = dict(zip(h, r))
        if r["status"] != "ok":
            continue
        a = np.asarray(Image.open(os.path.join(root, r["path"])).convert("RGB"), dtype=np.float64) / 255
        ref = list(a.mean(axis=(0, 1))) + list(a.std(axis=(0, 1)))
        got = [float(r[k]) for k in ("mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b")]
        err = max(abs(x - y) for x, y in zip(got, ref))
        worst = err if not err <= worst else worst  # a NaN is the worst
        n += 1
print(n, "ok" if worst <= 1e-6 and n > 0 else "max error %g" % worst)
PY
is "--stats means and stds equal PIL/numpy's within 1e-6 (31 images)" \
	"$($PY "$T/stats.py" "$T/ds.tsv" "$T/d" "$T/bads.tsv" "$B")" "31 ok"

# sources table: default, FD_CONFIG_DIR, --sources, errors
mkdir "$T/cfg"
printf 'source\tlabel\nwiki\t0\n' >"$T/cfg/sources.tsv"
is "FD_CONFIG_DIR picks sources.tsv" "$(FD_CONFIG_DIR=$T/cfg fd-index -q --root "$T/d" | tail -n +2 | cut -f2 | sort -u)" wiki
is "--sources FILE" "$(fd-index -q --root "$T/d" --sources "$T/cfg/sources.tsv" | tail -n +2 | wc -l | tr -d ' ')" 6
fails "FD_CONFIG_DIR without sources.tsv" 1 "no sources table" env FD_CONFIG_DIR="$T/nothing" fd-index --root "$T/d"
printf 'source\tlbl\nwiki\t0\n' >"$T/nolabel.tsv"
fails "missing column names file and line" 1 "cannot read '.*nolabel.tsv': line 1: missing column 'label'" \
	fd-index --root "$T/d" --sources "$T/nolabel.tsv" -o "$T/out.tsv"
no_file "no output after a bad sources table" "$T/out.tsv"
printf 'source\tlabel\nwiki\t0\ninsight\t2\n' >"$T/badlabel.tsv"
fails "bad label names the line" 1 "badlabel.tsv': line 3: label '2' is not 0 or 1" \
	fd-index --root "$T/d" --sources "$T/badlabel.tsv" -o "$T/out.tsv"
printf 'source\tlabel\nwiki\t0\nelsewhere\t1\n' >"$T/missing.tsv"
fails "missing source folder is named" 1 "source folder '.*/elsewhere': No such file or directory" \
	fd-index --root "$T/d" --sources "$T/missing.tsv" -o "$T/out.tsv"
no_file "no output after a missing source folder" "$T/out.tsv"
fails "root that does not exist" 1 "cannot read root" fd-index --root "$T/none" -o "$T/out.tsv"
fails "--root required" 2 "--root DIR is required" fd-index -o "$T/out.tsv"
fails "unknown option" 2 "^fd-index: unknown option '--fast'" fd-index --root "$T/d" --fast
if [ "$(id -u)" -ne 0 ]; then
	mkdir "$B/insight/locked" && chmod 000 "$B/insight/locked"
	fails "unreadable folder is an error naming it" 1 "cannot read directory '.*insight/locked'" \
		fd-index --root "$B" -o "$T/out.tsv"
	chmod 755 "$B/insight/locked"
else
	# root reads any folder; make one unreadable by replacing it with a non-directory source
	rm -rf "$T/d2" && mkdir -p "$T/d2/wiki" && : >"$T/d2/insight"
	printf 'source\tlabel\nwiki\t0\ninsight\t1\n' >"$T/two.tsv"
	fails "a source that is not a folder is an error naming it" 1 "source folder '.*/insight': Not a directory" \
		fd-index --root "$T/d2" --sources "$T/two.tsv" -o "$T/out.tsv"
fi
no_file "no output after an unreadable folder" "$T/out.tsv"

man_syn=$(sed -n '/^\.SH SYNOPSIS/,/^\.SH/p' "$top/man/fd-index.1" | sed '1d;$d' |
	sed -e 's/^\.[A-Z]* //' -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' | tr '\n' ' ' | sed 's/  */ /g; s/ $//')
is "man SYNOPSIS equals --help usage" "$man_syn" "$(fd-index --help | head -1 | sed 's/^usage: //')"
done_testing
