#!/bin/bash
# torch-venv.sh: a current PyTorch from PyPI beside Debian's 1.13, for the
# benchmarks that compare fd with PyTorch at its best (bench/tuned.sh,
# doc/bench.md). The PyPI wheel is the CUDA build; on a CPU-only machine it
# runs once the CUDA libraries it links are found, so: torch and torchvision
# with --no-deps, their pure-Python dependencies, the nvidia-* wheels whose
# libraries libtorch_cuda.so needs and /usr/local/cuda does not provide
# (cusparselt, nvshmem, cufile, nccl); scikit-learn for bench/train_vs_torch.py's AUC.
# Usage: bench/torch-venv.sh create [DIR]   make DIR (default $TORCH_VENV or .venv-torch)
#        bench/torch-venv.sh env [DIR]      print the LD_LIBRARY_PATH to run DIR/bin/python with
#        bench/torch-venv.sh python [DIR]   print DIR/bin/python if it imports torch, else fail
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:-}
dir=${2:-${TORCH_VENV:-.venv-torch}}

libpath() {
	local p
	p=$(ls -d "$dir"/lib/python3*/site-packages/nvidia/*/lib 2>/dev/null | tr '\n' ':')
	[ -d /usr/local/cuda/lib64 ] && p=$p/usr/local/cuda/lib64:
	echo "${p}${LD_LIBRARY_PATH:-}"
}

# env and python answer with absolute paths, usable from any directory
[ "$cmd" != create ] && [ -d "$dir" ] && dir=$(cd "$dir" && pwd)

case $cmd in
create)
	[ -e "$dir" ] && { echo "torch-venv.sh: '$dir' exists" >&2; exit 1; }
	/usr/bin/python3 -m venv "$dir"
	pip=("$dir/bin/pip" install --disable-pip-version-check --only-binary=:all:)
	"${pip[@]}" --no-deps torch torchvision
	"${pip[@]}" filelock typing_extensions sympy mpmath networkx jinja2 fsspec MarkupSafe numpy pillow scikit-learn
	"${pip[@]}" --no-deps nvidia-cusparselt-cu13 nvidia-nvshmem-cu13 nvidia-cufile nvidia-nccl-cu13
	LD_LIBRARY_PATH=$(libpath) "$dir/bin/python" -c \
		'import torch, torchvision; print("torch", torch.__version__, "torchvision", torchvision.__version__, "oneDNN", torch.backends.mkldnn.is_available())'
	;;
env) libpath ;;
python)
	LD_LIBRARY_PATH=$(libpath) "$dir/bin/python" -c 'import torch' 2>/dev/null ||
		{ echo "torch-venv.sh: no working PyTorch in '$dir' (bench/torch-venv.sh create)" >&2; exit 1; }
	echo "$dir/bin/python"
	;;
*) echo "usage: torch-venv.sh create|env|python [DIR]" >&2; exit 2 ;;
esac
