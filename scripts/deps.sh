#!/bin/sh
# deps.sh: install the Debian 12 packages fd needs, only those missing, and say
# which. Run by `make deps` (and so by `make test` and `make demo`).
set -eu
# python3-pip fetches ONEDNN=3's 3.2 wheel; g++ cmake ninja-build xz-utils curl build
# ONEDNN3=3.7 from Debian's source (scripts/onednn3.sh)
BUILD="gcc make libturbojpeg0-dev libpng-dev zlib1g-dev libjansson-dev libdnnl-dev python3-pip g++ cmake ninja-build xz-utils curl"
# python3-skimage, opencv-doc: real photographs of people (skimage/data/astronaut.png,
# opencv examples/data messi5.jpg, basketball*.png ...) for fd-facecrop's conformance test;
# dataset-fashion-mnist: real data for fd-train's accuracy check against PyTorch
# python3-statsmodels: multipletests(method="holm"), the reference for fd_holm
# slurm-wlm, munge: tests/tools/slurm.t runs the pipelines on a one-node Slurm cluster;
# python3-opencv: the grad-cam package's reference (tests/tools/gradcam.t);
# chromium: tests/tools/html.t opens the HTML report in a headless browser
# curl: make weights downloads torchvision's checkpoints (tests/tools/weights.t
# tests it against a local server)
TEST="curl perl clang chromium libomp-dev python3 python3-numpy python3-torch python3-torchvision python3-sklearn python3-scipy python3-statsmodels python3-mpmath python3-pil python3-venv python3-pip python3-skimage python3-opencv opencv-doc dataset-fashion-mnist slurm-wlm munge"
BENCH="libtcmalloc-minimal4"
want="$BUILD $TEST"
[ "${1:-}" = bench ] && want=$BENCH
missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	echo "deps: all packages present"
	exit 0
fi
echo "deps: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
