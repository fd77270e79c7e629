#!/bin/bash
# onednn3.t: scripts/onednn3.sh's refusals, offline (python3 -m http.server on
# 127.0.0.1 as Debian's archive, DEBIAN_MIRROR): an unknown version, a
# tarball whose SHA-256 is not the pinned one, a 404, each with a clear
# message, exit 1 and nothing left (neither DIR nor DIR.tmp); and a DIR
# already there is used as it is, without a download. (Building oneDNN 3.7
# itself takes about 32 minutes on 2 cores: doc/onednn.md records the run.)
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "1..0 # SKIP no curl (make deps)"; exit 0; }
cd "$T" || exit 1
srv_pid=""
trap '[ -z "$srv_pid" ] || kill "$srv_pid" 2>/dev/null; rm -rf "$T"' EXIT
S=$top/scripts/onednn3.sh

fails "an unknown version is refused" 1 "version '3\.5': say 3\.2 .* or 3\.7" "$S" 3.5 "$T/d35"
no_file "nothing made for it" "$T/d35"

mkdir -p srv/pool/main/o/onednn
echo "not oneDNN's source" >srv/pool/main/o/onednn/onednn_3.7.2+ds.orig.tar.xz
serve srv

fails "a tarball with another SHA-256 is refused" 1 \
	"onednn_3\.7\.2\+ds\.orig\.tar\.xz: SHA-256 [0-9a-f]{64}, expected 0cc51ca26c1af6a2bb1e71e378e7046f3ceb3e71791ee9d4e246d50f904a6ea6" \
	env DEBIAN_MIRROR="$U" "$S" 3.7 "$T/d37"
no_file "nothing left after the checksum failure" "$T/d37"
ok "no DIR.tmp left either" test ! -e "$T/d37.tmp"
fails "a 404 is refused, naming the URL" 1 "download of $U/gone/pool/main/o/onednn/onednn_3\.7\.2\+ds\.orig\.tar\.xz failed" \
	env DEBIAN_MIRROR="$U/gone" "$S" 3.7 "$T/d37"
no_file "nothing left after the 404" "$T/d37"
ok "no DIR.tmp left either" test ! -e "$T/d37.tmp"

# an existing DIR is used as it is: no download (the mirror would fail it)
mkdir -p have/lib have/include/oneapi/dnnl
: >have/lib/libdnnl.so.3
: >have/include/oneapi/dnnl/dnnl.h
ok "a DIR already there is kept, nothing fetched" env DEBIAN_MIRROR="$U/gone" "$S" 3.7 "$T/have"
is "and the script said nothing" "$(cat "$T/.err")" ""
done_testing
