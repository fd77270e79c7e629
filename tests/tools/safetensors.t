#!/bin/bash
# safetensors.t: interop with the real `safetensors` package (PyPI, in .venv via
# scripts/venv.sh): its files read by fd with equal bytes, fd's files loaded by
# it with equal tensors and metadata and 64-byte aligned data; hostile files
# refused by fd-st with exit 1 and a message naming the file and tensor.
. "$(dirname "$0")/lib.sh"
VPY=${FD_VENV:-$top/.venv}/bin/python
if ! "$VPY" -c 'import safetensors' 2>/dev/null; then
	echo "1..0 # SKIP no safetensors package in ${FD_VENV:-.venv}: run scripts/venv.sh (make venv)"
	exit 0
fi
X=$top/tests/tools/st_interop.py

ok "safetensors.numpy/.torch save_file" "$VPY" "$X" write "$T"
for f in np pt; do
	fd-st "$T/$f.safetensors" >"$T/$f.ls" 2>"$T/err"
	is "fd-st reads $f.safetensors" "$?" 0
	is "$f: names, dtypes, shapes, sizes and byte hashes equal the package's" \
		"$(tail -n +2 "$T/$f.ls" | cut -f1-3,5,6 | sort)" "$(sort "$T/$f.expect")"
	ok "fd-st -o rewrites $f" fd-st -o "$T/$f.fd.safetensors" "$T/$f.safetensors"
	ok "$f: fd's file loads in the package (tensors, metadata, alignment)" \
		"$VPY" "$X" check "$T/$f.fd.safetensors" "$T/$f.safetensors"
	is "$f: fd reads its own rewrite the same" \
		"$(fd-st "$T/$f.fd.safetensors" | cut -f1-3,5,6 | sort)" "$(cut -f1-3,5,6 "$T/$f.ls" | sort)"
done
is "metadata listing" "$(fd-st --meta "$T/np.safetensors" | sort)" \
	"$(printf 'empty\t\nfd.kind\ttest\nkey\tvalue\ntext\t"q" é ünïcode' | sort)"
fails "metadata with a tab is not listed as TSV" 1 "fd-st: '.*pt.safetensors': metadata 'text' holds a tab" \
	fd-st --meta "$T/pt.safetensors"

# hostile files: "NAME HEADER DATA_BYTES" written by a few lines of Python
mkbad() { # name header ndata
	"$PY" -c 'import struct,sys
h=sys.argv[2].encode(); open(sys.argv[1],"wb").write(struct.pack("<Q",len(h))+h+b"\0"*int(sys.argv[3]))' \
		"$T/$1.safetensors" "$2" "$3"
}
hostile() { # desc name header ndata regex
	mkbad "$2" "$3" "$4"
	fails "$1" 1 "^fd-st: cannot read '.*$2.safetensors': $5" fd-st -o "$T/$2.out" "$T/$2.safetensors"
	no_file "$1: no output" "$T/$2.out"
}
hostile "offsets past the end" past '{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}' 8 \
	"tensor 'w': data_offsets \[0,16\] past the end of the data \(8 bytes\)"
hostile "shape product overflow" ovf '{"w":{"dtype":"F32","shape":[65536,65536,65536,65536],"data_offsets":[0,0]}}' 0 \
	"tensor 'w': shape \[65536,65536,65536,65536\] of F32 overflows"
hostile "dtype/size disagreement" dsz '{"w":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}}' 8 \
	"tensor 'w': data_offsets \[0,8\] hold 8 bytes but shape \[2\] of F64 needs 16"
hostile "overlapping tensors" ovl '{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}' 5 \
	"tensor 'b' overlaps tensor 'a'"
hostile "non-object JSON" arr '[{"dtype":"U8"}]' 0 "header is not a JSON object"
hostile "duplicate tensor" dup '{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}' 0 \
	"header JSON: line 1, column [0-9]+: duplicate object key"
head -c 100 "$T/np.safetensors" >"$T/trunc.safetensors"
fails "truncated file" 1 "cannot read '.*trunc.safetensors': header length [0-9]+ past the end of the file \(100 bytes\)" \
	fd-st "$T/trunc.safetensors"
head -c $(($(stat -c %s "$T/np.safetensors") - 1)) "$T/np.safetensors" >"$T/trunc2.safetensors"
fails "file missing its last byte" 1 "cannot read '.*trunc2.safetensors': tensor '[a-z_0-9]+': data_offsets .* past the end" \
	fd-st "$T/trunc2.safetensors"
printf '\001\000\000\000\000\000\000\001{' >"$T/len.safetensors"
fails "header length past EOF" 1 "cannot read '.*len.safetensors': header length 72057594037927937 past the end" \
	fd-st "$T/len.safetensors"
: >"$T/zero.safetensors"
fails "zero-byte file" 1 "cannot read '.*zero.safetensors': 0 bytes, too short" fd-st -o "$T/zero.out" "$T/zero.safetensors"
no_file "zero-byte file: no output" "$T/zero.out"
fails "usage: no file" 2 "expected one FILE" fd-st
done_testing
