#!/bin/bash
# probe_paths.t: the path cases of issue 16's hostile-input probe. fd-pack and
# fd-facecrop read only files under --root (no .., absolute path or symlink
# out of it, unless --allow-outside-root), name the TSV line, leave no output;
# a FIFO or device at an image path is a bad row, never a hang.
. "$(dirname "$0")/lib.sh"
cd "$T" || exit 1
fd-synth -q -o D --groups 6 --fake-size 40 --real-width 40,48 --seed 5 &&
	fd-index -q --root D -o idx.tsv || { echo "Bail out! cannot make the data"; exit 1; }
mkdir -p outside && cp "D/$(sed -n 2p idx.tsv | cut -f1)" outside/x.jpg
row() { sed -n 2p idx.tsv | awk -F'\t' -v OFS='\t' -v p="$1" '{$1 = p; print}'; }
bad() { { head -2 idx.tsv; row "$1"; } >"$2"; }
bad ../outside/x.jpg q_dotdot.tsv
bad "$T/outside/x.jpg" q_abs.tsv
ln -s "$T/outside/x.jpg" D/link.jpg
bad link.jpg q_link.tsv
bad ../../../../../../etc/passwd q_passwd.tsv

for t in dotdot abs link passwd; do
	fails "fd-pack refuses the $t row, naming line 3" 1 "cannot read 'q_$t.tsv': line 3: path .*(outside|absolute)" \
		fd-pack -q --root D --size 16 -o $t.safetensors q_$t.tsv
	no_file "... no pack" $t.safetensors
	no_file "... no sidecar" $t.tsv
done
ok "fd-pack --allow-outside-root accepts ../outside" fd-pack -q --allow-outside-root --root D --size 16 -o ok.safetensors q_dotdot.tsv
is "... and packs both rows" "$(($(wc -l <ok.tsv) - 1))" 2
mkdir -p D/sub && ln -s ../$(sed -n 2p idx.tsv | cut -f1) D/sub/in.jpg
bad sub/in.jpg q_inlink.tsv
ok "a symlink that stays inside the root is fine" fd-pack -q --root D --size 16 -o in.safetensors q_inlink.tsv
fails "fd-pack --root /nonexistent blames the root, not the TSV" 1 "cannot read root '/nonexistent'" \
	fd-pack -q --root /nonexistent --size 16 -o r.safetensors idx.tsv
no_file "... no pack" r.safetensors

M=${FD_MODELS_DIR:-$top/models/mtcnn}
if [ -f "$M/onet.pt" ]; then
	export FD_MODELS_DIR=$M
	for t in dotdot abs link; do
		fails "fd-facecrop refuses the $t row, naming line 3" 1 "cannot read 'q_$t.tsv': line 3: path .*(outside|absolute)" \
			fd-facecrop -q --root D --preview prev$t -o f$t.tsv q_$t.tsv
		no_file "... no output" f$t.tsv
		ok "... no preview crop of the outside image" test ! -e prev$t/3.jpg
	done
fi

# a FIFO where an image should be: a bad row, not a hang
mkfifo D/fifo.jpg
bad fifo.jpg q_fifo.tsv
fails "fd-pack: a FIFO row is skipped as not a regular file" 0 "fifo.jpg': not a regular file" \
	timeout 20 fd-pack --root D --size 16 -o fifo.safetensors q_fifo.tsv
is "... the other row packed" "$(($(wc -l <fifo.tsv) - 1))" 1
if [ -f "$M/onet.pt" ]; then
	ok "fd-facecrop: a FIFO row does not hang" timeout 60 fd-facecrop -q --root D -o ffifo.tsv q_fifo.tsv
	like "... it is a bad: row" "$(grep fifo.jpg ffifo.tsv)" "bad:.*not a regular file"
fi

# fd-split: labels other than 0/1, repeated paths; a byte-order mark
{ head -2 idx.tsv; sed -n 3p idx.tsv | awk -F'\t' -v OFS='\t' '{$3 = "fake"; print}'; } >q_lab.tsv
fails "fd-split refuses label 'fake', naming the line" 1 "line 3: label 'fake' is not 0 \(real\) or 1" \
	fd-split -q --folds 2 -o s.tsv q_lab.tsv
for l in 2 -1; do
	{ head -2 idx.tsv; sed -n 3p idx.tsv | awk -F'\t' -v OFS='\t' -v l=$l '{$3 = l; print}'; } >q_lab.tsv
	fails "... and label $l" 1 "label '$l' is not 0" fd-split -q --folds 2 -o s.tsv q_lab.tsv
done
no_file "no split written" s.tsv
{ cat idx.tsv; sed -n 2p idx.tsv; } >q_dup.tsv
fails "fd-split refuses a repeated path, naming both lines" 1 "line $(wc -l <q_dup.tsv): path '.*' repeats line 2" \
	fd-split -q --folds 2 -o s.tsv q_dup.tsv
{ printf '\357\273\277'; cat idx.tsv; } >q_bom.tsv
ok "a TSV with a UTF-8 byte-order mark is read" fd-split -q --folds 2 -o bom.tsv q_bom.tsv
is "... as without it" "$(fd-split -q --folds 2 idx.tsv | sha256sum)" "$(sha256sum <bom.tsv)"

done_testing
