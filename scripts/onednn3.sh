#!/bin/sh
# onednn3.sh: put oneDNN 3.2 (PyPI's onednn-cpu-gomp + onednn-devel-cpu-gomp
# 2023.2.0: CPU only, GNU OpenMP, no SYCL or TBB) into DIR (default
# .deps/onednn-3.2.0): DIR/lib/libdnnl.so.3 and DIR/include. Each wheel is
# checked against its pinned SHA-256 before anything is unpacked; the
# folder appears whole (built under DIR.tmp, then renamed) or not at all.
# Run by make when ONEDNN=3 (doc/onednn.md "oneDNN 3 on AVX2 CPUs"); a
# no-op when DIR is there.
set -eu
dir=${1:-.deps/onednn-3.2.0}
[ -e "$dir/lib/libdnnl.so.3" ] && [ -e "$dir/include/oneapi/dnnl/dnnl.h" ] && exit 0
ver=2023.2.0
run=onednn_cpu_gomp-$ver-py2.py3-none-manylinux1_x86_64.whl
dev=onednn_devel_cpu_gomp-$ver-py2.py3-none-manylinux1_x86_64.whl
run_sha=2f22a54d6a890ed14bfa185d42a4be65d8b5b1df85dc1f0f3a9abe31620416fb
dev_sha=9763c69e8c907e119056bd52ad918ca84ac9ba939d130a99dfa95ccca3e5e284
py=/usr/bin/python3
[ -x "$py" ] || py=python3
tmp="$dir.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/whl"
trap 'rm -rf "$tmp"' EXIT
echo "onednn3: downloading oneDNN 3.2 ($run, $dev) from PyPI into $dir" >&2
if ! "$py" -m pip download --disable-pip-version-check --no-deps --only-binary=:all: -q -d "$tmp/whl" \
	"onednn-cpu-gomp==$ver" "onednn-devel-cpu-gomp==$ver" >&2; then
	echo "onednn3: pip download of onednn-cpu-gomp==$ver failed (needs python3-pip and PyPI;" \
		"or build with ONEDNN=2, Debian's libdnnl-dev)" >&2
	exit 1
fi
check() {
	got=$(sha256sum "$tmp/whl/$1" | cut -d' ' -f1)
	if [ "$got" != "$2" ]; then
		echo "onednn3: $1: SHA-256 $got, expected $2" >&2
		exit 1
	fi
}
check "$run" "$run_sha"
check "$dev" "$dev_sha"
"$py" -m zipfile -e "$tmp/whl/$run" "$tmp/x"
"$py" -m zipfile -e "$tmp/whl/$dev" "$tmp/x"
mv "$tmp"/x/onednn_cpu_gomp-$ver.data/data/lib "$tmp/lib"
mv "$tmp"/x/onednn_devel_cpu_gomp-$ver.data/data/include "$tmp/include"
lic=$(ls -d "$tmp"/x/onednn_cpu_gomp-$ver.dist-info)
mkdir -p "$tmp/share"
cp -r "$lic" "$tmp/share/"
rm -rf "$tmp/whl" "$tmp/x"
# the wheel stores the soname's links as copies: keep one file
rm -f "$tmp/lib/libdnnl.so" "$tmp/lib/libdnnl.so.3"
ln -s libdnnl.so.3.2 "$tmp/lib/libdnnl.so.3"
rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
mv "$tmp" "$dir"
trap - EXIT
echo "onednn3: $dir ready" >&2
