#!/bin/sh
# models.sh: fetch MTCNN's P-Net, R-Net and O-Net weights (pnet.pt, rnet.pt,
# onet.pt) from the facenet-pytorch wheel on PyPI, check the wheel's SHA-256,
# and extract them into models/mtcnn/ with their licence notice. Only runs the
# download when a file is missing. `make models`.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dest=$top/models/mtcnn
VERSION=2.5.3
WHEEL=facenet_pytorch-$VERSION-py3-none-any.whl
SHA256=b8002c3ee7a3af471c433cbda1fdcab9ae2d46a4aac43435ba08259c45ffc884
if [ -s "$dest/pnet.pt" ] && [ -s "$dest/rnet.pt" ] && [ -s "$dest/onet.pt" ]; then
	echo "models: MTCNN weights present in $dest"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "models: downloading facenet-pytorch==$VERSION (for MTCNN weights) from PyPI"
/usr/bin/python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "facenet-pytorch==$VERSION"
got=$(sha256sum "$tmp/$WHEEL" | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
	echo "models: $WHEEL: SHA-256 $got, expected $SHA256" >&2
	exit 1
fi
mkdir -p "$tmp/x" "$dest"
(cd "$tmp/x" && /usr/bin/python3 -m zipfile -e "$tmp/$WHEEL" .)
for n in pnet rnet onet; do
	cp "$tmp/x/facenet_pytorch/data/$n.pt" "$dest/.$n.pt.tmp"
	mv "$dest/.$n.pt.tmp" "$dest/$n.pt"
done
cat > "$dest/NOTICE" <<NOTICE
MTCNN weights pnet.pt, rnet.pt, onet.pt, extracted from the facenet-pytorch
$VERSION wheel on PyPI (sha256 $SHA256).
facenet-pytorch (Tim Esler), MIT licence, https://github.com/timesler/facenet-pytorch.
The weights descend from the original MTCNN release by Kaipeng Zhang et al.
("Joint Face Detection and Alignment using Multi-task Cascaded Convolutional
Networks", 2016) via David Sandberg's facenet (MIT licence).
NOTICE
echo "models: MTCNN weights in $dest"
