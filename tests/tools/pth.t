#!/bin/bash
# pth.t: fd-pth on files written by torch.save (tests/ref/pth.py): listings
# equal torch's dtypes, shapes and byte hashes in both formats; conversion to
# safetensors keeps every tensor (checked through fd-st); skipped keys are
# reported; hostile files exit 1 with the file and reason, leaving no output.
. "$(dirname "$0")/lib.sh"
R=$top/$FD_BUILD/ref/pth
[ -f "$R/good.tsv" ] || { echo "1..0 # SKIP no fixtures in $R (make check-build)"; exit 0; }

# expected listing of FILE from good.tsv: name dtype shape sha256
want() { awk -F'\t' -v f="$1" '$1 == f { print $2 "\t" $3 "\t" $4 "\t" $5 }' "$R/good.tsv"; }

for f in zip.pth legacy.pth zip_p4.pth; do
	fd-pth "$R/$f" >"$T/$f.ls" 2>"$T/err"
	is "fd-pth $f exits 0" "$?" 0
	is "$f: names, dtypes, shapes, hashes equal torch's" "$(tail -n +2 "$T/$f.ls" | cut -f1-3,5)" "$(want $f)"
done
is "header" "$(head -1 "$T/zip.pth.ls")" "$(printf 'name\tdtype\tshape\tnbytes\tsha256')"
is "a scalar has an empty shape, 8 bytes for I64" "$(grep '^1.num_batches_tracked' "$T/zip.pth.ls" | cut -f2-4)" \
	"$(printf 'I64\t\t8')"

ok "convert to safetensors" fd-pth -o "$T/zip.safetensors" "$R/zip.pth"
# (the writer lays tensors out by alignment, so compare as sets)
is "fd-st reads the conversion with the same tensors" \
	"$(fd-st "$T/zip.safetensors" | tail -n +2 | cut -f1-3,5,6 | sort)" "$(tail -n +2 "$T/zip.pth.ls" | sort)"
is "provenance metadata" "$(fd-st --meta "$T/zip.safetensors" | grep -E '^fd\.(source|tool)' | sort)" \
	"$(printf 'fd.source\tzip.pth\nfd.source_sha256\t%s\nfd.tool\tfd-pth 0.1.0' "$(sha256sum <"$R/zip.pth" | cut -d' ' -f1)")"
ok "the MTCNN-style legacy file converts too" fd-pth -q -o "$T/legacy.safetensors" "$R/legacy.pth"
is "legacy and zip conversions hold the same tensors" \
	"$(fd-st "$T/legacy.safetensors" | cut -f1-3,5,6)" "$(fd-st "$T/zip.safetensors" | cut -f1-3,5,6)"

fd-pth "$R/nested.pth" >"$T/nested.ls" 2>"$T/err"
is "nested checkpoint lists dotted names" "$(cut -f1 "$T/nested.ls" | sed -n 2p)" "model.0.weight"
like "skipped keys reported" "$(cat "$T/err")" "fd-pth: '.*nested.pth': skipped 'epoch' \(not a tensor\)"
fd-pth -q "$R/nested.pth" >/dev/null 2>"$T/err"
is "-q silences them" "$(cat "$T/err")" ""

for f in evil_zip evil_legacy; do
	fails "$f refused" 1 "^fd-pth: cannot read '.*$f.pth': .*refusing pickle global 'posix.system'" \
		fd-pth -o "$T/$f.out" "$R/$f.pth"
	no_file "$f: no output" "$T/$f.out"
done
fails "lying storage size refused" 1 "^fd-pth: cannot read '.*lie_numel.pth': storage '0' holds 16 bytes, but 8 F32" \
	fd-pth -o "$T/lie.out" "$R/lie_numel.pth"
no_file "lying storage: no output" "$T/lie.out"
head -c 300 "$R/small_legacy.pth" >"$T/cut.pth"
fails "truncated file refused" 1 "^fd-pth: cannot read '.*cut.pth': " fd-pth -o "$T/cut.out" "$T/cut.pth"
no_file "truncated: no output" "$T/cut.out"
fails "missing file" 1 "^fd-pth: cannot open '.*nope.pth': No such file" fd-pth "$T/nope.pth"

fails "no FILE is a usage error" 2 "expected one FILE" fd-pth
fails "two FILEs are a usage error" 2 "expected one FILE" fd-pth "$R/zip.pth" "$R/zip.pth"
fails "-o - is a usage error" 2 "-o needs a file name" fd-pth -o - "$R/zip.pth"
fails "unknown option" 2 "^fd-pth: unknown option '--bogus'" fd-pth --bogus "$R/zip.pth"
is "man page SYNOPSIS matches --help" "$(sed -n '/^\.SH SYNOPSIS/{n;p}' "$top/man/fd-pth.1")" \
	"$(fd-pth --help | head -1 | sed 's/^usage: //')"

# The real MTCNN weights (legacy format) inside facenet-pytorch 2.5.3's wheel
# (sha256 b8002c3e...c884), when `make models` has put them here: each listing
# must hash to what torch.load(weights_only=True) of the same file gives
# (computed once with torch 1.13 and recorded here).
M=${FD_MTCNN_DIR:-$top/models/mtcnn}
if [ -f "$M/pnet.pt" ]; then
	while read -r net sum; do
		is "$net.pt: every tensor equals torch's" "$(fd-pth "$M/$net.pt" | sha256sum | cut -d' ' -f1)" "$sum"
	done <<-END
	pnet 27dbf00ff5978d8f8b1877499967b32f3290267f3078b96440dc546bd42bd18b
	rnet 561b31dccca6ae3d0e38c216c11e569f9fd87e90555ab9318f33af549c7d3b5f
	onet 0f82d9082d32e90636ee08303e571479bc3b916e91bbaa52f0b28183ad4bc983
	END
else
	echo "# no MTCNN weights in $M: real-file check skipped"
fi
done_testing
