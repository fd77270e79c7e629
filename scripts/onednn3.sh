#!/bin/sh
# onednn3.sh VERSION [DIR]: put oneDNN 3.x into DIR (default
# .deps/onednn-FULLVERSION): DIR/lib/libdnnl.so.3 and DIR/include. The
# folder appears whole (made under DIR.tmp, then renamed) or not at all, and
# every download is checked against its pinned SHA-256 before use. Run by
# make when ONEDNN=3 (ONEDNN3=VERSION; doc/onednn.md "oneDNN 3 on AVX2
# CPUs"); a no-op when DIR is there.
#   3.2  PyPI's onednn-cpu-gomp + onednn-devel-cpu-gomp 2023.2.0 (oneDNN
#        3.2.0: CPU only, GNU OpenMP, no SYCL or TBB): a download
#   3.7  oneDNN 3.7.2 built from Debian 13's source package
#        (onednn_3.7.2+ds.orig.tar.xz from Debian's archive; its SHA-256 is
#        trixie's Sources index's): CPU only, GNU OpenMP (DNNL_CPU_RUNTIME=OMP,
#        so fd_dnnl_threads_enter works as with 2.6), only the primitives fd
#        calls (convolution, matmul, reorder), every ISA (the library picks
#        AVX2, AVX-512 or AMX kernels at run time). About 32 minutes on 2
#        cores, once. Needs curl, cmake, ninja and g++ (make deps).
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), JOBS.
set -eu
ver=${1:?usage: onednn3.sh 3.2|3.7 [DIR]}
case $ver in
3.2) full=3.2.0 ;;
3.7) full=3.7.2 tarball=onednn_3.7.2+ds.orig.tar.xz
	sha=0cc51ca26c1af6a2bb1e71e378e7046f3ceb3e71791ee9d4e246d50f904a6ea6 ;;
*) echo "onednn3: version '$ver': say 3.2 (PyPI's wheel) or 3.7 (Debian's source)" >&2; exit 1 ;;
esac
dir=${2:-.deps/onednn-$full}
[ -e "$dir/lib/libdnnl.so.3" ] && [ -e "$dir/include/oneapi/dnnl/dnnl.h" ] && exit 0
mkdir -p "$(dirname "$dir")"
dir=$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")
tmp="$dir.tmp"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
[ "$ver" = 3.2 ] || {
	url=${DEBIAN_MIRROR:-http://deb.debian.org/debian}/pool/main/o/onednn/$tarball
	jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
	for t in curl cmake ninja c++ xz; do
		if ! command -v "$t" >/dev/null; then
			echo "onednn3: $t not found (make deps installs it; or build with ONEDNN=2, Debian's libdnnl-dev)" >&2
			exit 1
		fi
	done
	echo "onednn3: building oneDNN $full from Debian's source into $dir (once; about 32 minutes on 2 cores)" >&2
	if ! curl -fsSL --retry 3 -o "$tmp/$tarball" "$url"; then
		echo "onednn3: download of $url failed (or build with ONEDNN=2, Debian's libdnnl-dev)" >&2
		exit 1
	fi
	got=$(sha256sum "$tmp/$tarball" | cut -d' ' -f1)
	if [ "$got" != "$sha" ]; then
		echo "onednn3: $url: SHA-256 $got, expected $sha" >&2
		exit 1
	fi
	mkdir "$tmp/src"
	tar -xJf "$tmp/$tarball" -C "$tmp/src" --strip-components=1
	if ! { cmake -S "$tmp/src" -B "$tmp/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
			-DCMAKE_INSTALL_PREFIX="$tmp/inst" -DCMAKE_INSTALL_LIBDIR=lib \
			-DONEDNN_CPU_RUNTIME=OMP -DONEDNN_GPU_RUNTIME=NONE \
			-DONEDNN_ENABLE_PRIMITIVE="CONVOLUTION;MATMUL;REORDER" \
			-DONEDNN_BUILD_GRAPH=OFF -DONEDNN_BUILD_EXAMPLES=OFF -DONEDNN_BUILD_TESTS=OFF \
			-DONEDNN_BUILD_DOC=OFF &&
		ninja -C "$tmp/build" -j"$jobs" install; } >"$tmp/build.log" 2>&1; then
		tail -n 30 "$tmp/build.log" >&2
		echo "onednn3: building oneDNN $full failed (log above)" >&2
		exit 1
	fi
	mkdir -p "$tmp/out/share"
	mv "$tmp/inst/lib" "$tmp/out/lib"
	mv "$tmp/inst/include" "$tmp/out/include"
	rm -rf "$tmp/out/lib/cmake"
	cp "$tmp/src/LICENSE" "$tmp/src/THIRD-PARTY-PROGRAMS" "$tmp/out/share/"
	rm -rf "$dir"
	mv "$tmp/out" "$dir"
	rm -rf "$tmp"
	trap - EXIT
	echo "onednn3: $dir ready" >&2
	exit 0
}
ver=2023.2.0
run=onednn_cpu_gomp-$ver-py2.py3-none-manylinux1_x86_64.whl
dev=onednn_devel_cpu_gomp-$ver-py2.py3-none-manylinux1_x86_64.whl
run_sha=2f22a54d6a890ed14bfa185d42a4be65d8b5b1df85dc1f0f3a9abe31620416fb
dev_sha=9763c69e8c907e119056bd52ad918ca84ac9ba939d130a99dfa95ccca3e5e284
py=/usr/bin/python3
[ -x "$py" ] || py=python3
mkdir -p "$tmp/whl"
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
mv "$tmp" "$dir"
trap - EXIT
echo "onednn3: $dir ready" >&2
