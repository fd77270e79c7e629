#!/bin/sh
# venv.sh: make .venv (Debian's python3 with its system packages: numpy, torch)
# and install the pinned PyPI references of scripts/requirements-test.txt, only
# those missing or at another version, saying which. Idempotent; `make venv`.
# Usage: scripts/venv.sh [VENV_DIR]   (default: .venv at the repository root)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
venv=${1:-$top/.venv}
req=$top/scripts/requirements-test.txt
if [ ! -x "$venv/bin/python" ]; then
	echo "venv: creating $venv"
	/usr/bin/python3 -m venv --system-site-packages "$venv"
fi
missing=""
for spec in $(grep -v '^[[:space:]]*#' "$req" | tr -d ' \t'); do
	name=${spec%%==*}
	want=${spec#*==}
	have=$("$venv/bin/python" -c 'import importlib.metadata as m, sys
try:
    print(m.version(sys.argv[1]))
except m.PackageNotFoundError:
    print("")' "$name")
	[ "$have" = "$want" ] || missing="$missing $spec"
done
if [ -z "$missing" ]; then
	echo "venv: all pinned packages present in $venv"
	exit 0
fi
echo "venv: installing:$missing"
# --no-deps: the pins are references whose dependencies (numpy, torch,
# torchvision, pillow, requests) come from Debian through
# --system-site-packages; letting pip resolve them could pull a new torch
# from PyPI (facenet-pytorch declares an unpinned torchvision, and Debian's
# 0.14.1a0 is a pre-release that pip may not accept as satisfying it).
# shellcheck disable=SC2086
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps $missing
