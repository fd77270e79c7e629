#!/bin/sh
# synth.t: fd-synth writes a DFF-shaped data set: deterministic, groups shared
# by all four sources, rectangular reals and square fakes, cues.tsv consistent
# with the files, atomic output, usage errors. Sizes are read back with PIL.
. "$(dirname "$0")/lib.sh"

ok "synth 12 groups" fd-synth -q -o "$T/a" --groups 12 --seed 5
ok "same again on one thread" fd-synth -q -o "$T/b" --groups 12 --seed 5 --threads 1
ok "byte-identical trees" diff -r "$T/a" "$T/b"
ok "another seed" fd-synth -q -o "$T/c" --groups 12 --seed 6
if [ "$(cat "$T"/a/wiki/*/* | md5sum)" = "$(cat "$T"/c/wiki/*/* | md5sum)" ]; then r=same; else r=differ; fi
is "another seed gives other images" "$r" differ

for s in wiki text2img inpainting insight; do
	(cd "$T/a/$s" && find . -type f | sed 's/^\.\///' | LC_ALL=C sort) >"$T/list.$s"
done
is "12 reals" "$(wc -l <"$T/list.wiki" | tr -d ' ')" 12
for s in text2img inpainting insight; do
	ok "$s shares every group with wiki" cmp "$T/list.wiki" "$T/list.$s"
done
like "groups live in subfolders" "$(head -1 "$T/list.wiki")" '^[0-9][0-9]/nm[0-9]{7}_rm[0-9]+\.jpg$'

cat >"$T/geom.py" <<'PY'
import sys, os
from PIL import Image
root = sys.argv[1]
bad = []
for src in ("wiki", "text2img", "inpainting", "insight"):
    for d, _, fs in os.walk(os.path.join(root, src)):
        for f in fs:
            im = Image.open(os.path.join(d, f))
            im.load()
            w, h = im.size
            if im.format != "JPEG" or im.mode != "RGB":
                bad.append((f, im.format, im.mode))
            if src == "wiki" and (w == h or not 160 <= w <= 320):
                bad.append((src, f, w, h))
            if src != "wiki" and (w, h) != (256, 256):
                bad.append((src, f, w, h))
print(len(bad), bad[:3])
PY
is "PIL: RGB JPEGs, reals rectangular 160..320 wide, fakes 256x256" "$($PY "$T/geom.py" "$T/a")" "0 []"

cues=$T/a/cues.tsv
is "cues.tsv header" "$(head -1 "$cues")" "$(printf 'path\tsource\tgroup\taspect\tcast\ttexture')"
is "one row per image" "$(tail -n +2 "$cues" | wc -l | tr -d ' ')" 48
is "rows name exactly the files" "$(tail -n +2 "$cues" | cut -f1 | LC_ALL=C sort | md5sum)" \
	"$(cd "$T/a" && find wiki text2img inpainting insight -type f | LC_ALL=C sort | md5sum)"
is "source and group follow from the path" \
	"$(tail -n +2 "$cues" | awk -F'\t' '{p=$1; sub(/\.jpg$/, "", p); if (p != $2 "/" $3) n++} END {print n+0}')" 0
is "default strengths: aspect on reals, cast and texture on fakes" \
	"$(tail -n +2 "$cues" | awk -F'\t' '{print $2, $4, $5, $6}' | sort -u | tr '\n' ';')" \
	"inpainting 0 0.5 0.5;insight 0 0.5 0.5;text2img 0 0.5 0.5;wiki 1 0 0;"
like "README gives provenance" "$(cat "$T/a/README")" 'fd-synth --groups 12 --seed 5 --cues aspect=1,cast=0.5,texture=0.5'

ok "cues none" fd-synth -q -o "$T/n" --groups 6 --cues none
is "cues none: all strengths 0" "$(tail -n +2 "$T/n/cues.tsv" | cut -f4-6 | sort -u | tr '\t' ' ')" "0 0 0"
is "cues none: reals are square too" \
	"$($PY -c 'import sys,glob; from PIL import Image; print(sorted({Image.open(f).size[0]==Image.open(f).size[1] for f in glob.glob(sys.argv[1]+"/wiki/*/*")}))' "$T/n")" "[True]"
ok "custom cues and sizes" fd-synth -q -o "$T/k" --groups 4 --cues texture=1,cast=0.25 --fake-size 128 --real-width 200,210
is "custom strengths recorded" "$(grep '^insight' "$T/k/cues.tsv" | cut -f4-6 | sort -u | tr '\t' ' ')" "0 0.25 1"
is "fake size 128" "$($PY -c 'import sys,glob; from PIL import Image; print({Image.open(f).size for f in glob.glob(sys.argv[1]+"/insight/*/*")})' "$T/k")" "{(128, 128)}"

ok "fake aspect real" fd-synth -q -o "$T/fa" --groups 8 --fake-size 48 --real-width 64,96 --fake-aspect real
is "fake aspect real: every fake has its real's orientation, long side 48 and ratio within 0.05" \
	"$($PY - "$T/fa" <<'PY'
import sys, glob, os
from PIL import Image
d, bad, n = sys.argv[1], [], 0
for f in glob.glob(d + "/wiki/*/*"):
    W, H = Image.open(f).size
    for s in ("text2img", "inpainting", "insight"):
        w, h = Image.open(f.replace("/wiki/", "/%s/" % s)).size
        n += 1
        if max(w, h) != 48 or (w > h) != (W > H) or abs(max(w, h) / min(w, h) - max(W, H) / min(W, H)) > 0.05:
            bad.append("%s %dx%d vs real %dx%d" % (s, w, h, W, H))
print("ok %d" % n if n and not bad else "bad: %s" % bad[:3])
PY
)" "ok 24"
like "fake aspect real: README records it" "$(cat "$T/fa/README")" "--fake-aspect real"
fails "bad --fake-aspect" 2 "fake-aspect: 'round' is not square or real" fd-synth -o "$T/u" --fake-aspect round

# usage errors and refusals; nothing is left behind
fails "unknown cue is a usage error" 2 "unknown cue 'glow'" fd-synth -o "$T/u" --cues glow
fails "strength out of range" 2 "not in \[0, 1\]" fd-synth -o "$T/u" --cues cast=3
fails "groups 0" 2 "out of range" fd-synth -o "$T/u" --groups 0
fails "-o required" 2 "-o DIR is required" fd-synth --groups 3
fails "bad --real-width" 2 "real-width" fd-synth -o "$T/u" --real-width 300,200
fails "unknown option" 2 "^fd-synth: unknown option '--colour'" fd-synth -o "$T/u" --colour
no_file "no output after usage errors" "$T/u"
mkdir "$T/full" && echo keep >"$T/full/x"
fails "non-empty DIR refused" 1 "exists and is not empty" fd-synth -q -o "$T/full" --groups 2
is "non-empty DIR untouched" "$(ls "$T/full")" "x"
mkdir "$T/empty"
ok "empty DIR accepted" fd-synth -q -o "$T/empty" --groups 2
is "empty DIR filled" "$(ls "$T/empty" | tr '\n' ' ')" "README cues.tsv inpainting insight text2img wiki "
fails "missing parent is a failure" 1 "cannot create" fd-synth -q -o "$T/nope/deeper" --groups 2
is "no temporary left beside it" "$(ls "$T" | grep -c 'tmp\.')" 0

# the man page's SYNOPSIS is the --help usage line
man_syn=$(sed -n '/^\.SH SYNOPSIS/,/^\.SH/p' "$top/man/fd-synth.1" | sed '1d;$d' |
	sed -e 's/^\.[A-Z]* //' -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' | tr '\n' ' ' | sed 's/  */ /g; s/ $//')
is "man SYNOPSIS equals --help usage" "$man_syn" "$(fd-synth --help | head -1 | sed 's/^usage: //')"
done_testing
