#!/bin/sh
# weights.sh: download torchvision's ImageNet checkpoints (configs/weights.tsv:
# model, file, url, sha256) into models/torchvision/, where fd-train's config
# `init: "imagenet"` finds them. Each file is fetched with curl to a temporary
# name beside its destination, its SHA-256 checked (sha256sum) against the
# table, and only then renamed into place: a failed download, a wrong hash or a
# truncated file leaves nothing behind. A file already present is checked, not
# fetched again (so a machine without internet can be given the files by hand).
# A table entry of 8 hex digits is torchvision's file-name prefix only (no full
# hash could be cited for it): the check says so. Messages go to stderr.
# `make weights [WEIGHTS=...]`; exit 0, or 1 with nothing left of a failed file.
#   WEIGHTS_DIR    destination (default: models/torchvision of this tree)
#   WEIGHTS_TABLE  the table (default: configs/weights.tsv; tests serve their own)
#   arguments      model names to fetch (default: every row)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
table=${WEIGHTS_TABLE:-$top/configs/weights.tsv}
dest=${WEIGHTS_DIR:-$top/models/torchvision}
die() {
	echo "weights: $*" >&2
	exit 1
}
command -v curl >/dev/null || die "curl is missing (make deps installs it)"
command -v sha256sum >/dev/null || die "sha256sum is missing (coreutils)"
[ -r "$table" ] || die "cannot read '$table'"
# the table: header, then one well-formed row per model
awk -F'\t' -v t="$table" '
	NR == 1 { if ($0 != "model\tfile\turl\tsha256") { print t ": line 1: expected the header model, file, url, sha256"; exit 1 } next }
	NF != 4 { print t ": line " NR ": expected 4 tab-separated fields, got " NF; exit 1 }
	$1 !~ /^[a-z0-9_]+$/ || $2 !~ /^[A-Za-z0-9_.-]+$/ || $2 ~ /^\./ { print t ": line " NR ": bad model or file name"; exit 1 }
	$3 !~ /^https?:\/\/[^ ]+$/ { print t ": line " NR ": bad url"; exit 1 }
	$4 !~ /^[0-9a-f]+$/ || (length($4) != 8 && length($4) != 64) { print t ": line " NR ": sha256 must be 64 hex digits (or torchvision'"'"'s 8-digit prefix)"; exit 1 }
	seen[$1]++ { print t ": line " NR ": model " $1 " listed twice"; exit 1 }
' "$table" >&2 || die "the table is malformed"
for m in "$@"; do
	cut -f1 "$table" | tail -n +2 | grep -qx "$m" ||
		die "no model '$m' in '$table' (it lists: $(cut -f1 "$table" | tail -n +2 | tr '\n' ' '))"
done

made_dir=""
tmp=""
cleanup() {
	[ -z "$tmp" ] || rm -f "$tmp"
	[ -z "$made_dir" ] || rmdir "$dest" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [ ! -d "$dest" ]; then
	mkdir -p "$dest"
	made_dir=1
fi

# check FILE SHA NAME: 0 when FILE's SHA-256 is (or, for 8 digits, starts with) SHA
check() {
	got=$(sha256sum "$1" | cut -d' ' -f1)
	case $2 in
	????????) case $got in "$2"*) return 0 ;; esac ;;
	*) [ "$got" = "$2" ] && return 0 ;;
	esac
	return 1
}
verified() { # NAME SHA
	if [ ${#2} -eq 8 ]; then
		echo "weights: $1: only the SHA-256 prefix $2 verified (torchvision's file name; no full SHA-256 could be cited, doc/train.md)" >&2
	else
		echo "weights: $1: SHA-256 verified" >&2
	fi
}

# (read from the file, not a pipe: the loop runs in this shell, so its exit
# and the clean-up trap see the temporary file)
line=0
while IFS='	' read -r model file url sha; do
	line=$((line + 1))
	[ "$line" -gt 1 ] || continue
	if [ $# -gt 0 ]; then
		case " $* " in *" $model "*) ;; *) continue ;; esac
	fi
	out=$dest/$file
	if [ -e "$out" ]; then
		check "$out" "$sha" || die "'$out' is present but its SHA-256 is $got, not $sha: remove it (or put torchvision's file there) and run make weights again"
		verified "$out" "$sha"
		continue
	fi
	tmp=$dest/.$file.part.$$
	echo "weights: downloading $url" >&2
	if ! err=$(curl -fsSL --connect-timeout 30 -o "$tmp" "$url" 2>&1); then
		rm -f "$tmp"
		die "cannot download '$url': ${err:-curl failed} (without internet access: fetch that URL elsewhere and place the file as '$out'; make weights then checks it)"
	fi
	if ! check "$tmp" "$sha"; then
		n=$(wc -c <"$tmp")
		rm -f "$tmp"
		die "'$url': the download ($n bytes) has SHA-256 $got, not $sha (truncated or not torchvision's file): nothing stored"
	fi
	mv "$tmp" "$out"
	tmp=""
	verified "$out" "$sha"
done <"$table"
made_dir=""
