#!/usr/bin/python3
"""pack_ref.py ROOT PACK.safetensors [INPUT.tsv]: recompute every image of an
fd-pack output with Pillow (Image.draft, Image.resize BILINEAR with a box, as
fd_resize.h defines the geometries) from PACK.tsv and the pack's metadata, and
compare. The matched geometry looks each fake's real up (same group, label 0,
status ok, first in the file) in INPUT.tsv, the table fd-pack read (default:
PACK.tsv). Prints one line; exit 0 when every image and label is identical."""
import json
import os
import struct
import sys

import numpy as np
from PIL import Image

root, pack = sys.argv[1], sys.argv[2]
with open(pack, "rb") as f:
    raw = f.read()
hl = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + hl])
meta = hdr.pop("__metadata__")
data = raw[8 + hl:]


def tensor(name):
    t = hdr[name]
    assert t["dtype"] == "U8", t
    b, e = t["data_offsets"]
    return np.frombuffer(data[b:e], np.uint8).reshape(t["shape"])


images, labels = tensor("images"), tensor("label")
S, geom = int(meta["fd.size"]), meta["fd.geometry"]
draft = meta["fd.decode"] == "draft"
margin = float(meta.get("fd.margin", "0.2"))
tsv = pack[:-len(".safetensors")] + ".tsv"
lines = open(tsv).read().rstrip("\n").split("\n")
cols = lines[0].split("\t")
rows = [dict(zip(cols, ln.split("\t"))) for ln in lines[1:]]
real_aspect, unmatched = {}, 0
if geom == "matched":
    src = sys.argv[3] if len(sys.argv) > 3 else tsv
    sl = open(src).read().rstrip("\n").split("\n")
    for ln in sl[1:]:
        r = dict(zip(sl[0].split("\t"), ln.split("\t")))
        if r["label"] == "0" and r.get("status", "ok") == "ok" and r["group"] not in real_aspect:
            real_aspect[r["group"]] = (int(r["width"]), int(r["height"]))


def face_box(w, h, x1, y1, x2, y2, m):
    side = min(max(x2 - x1, y2 - y1) * (1 + 2 * m), min(w, h))
    x0 = max(min((x1 + x2) / 2 - side / 2, w - side), 0)
    y0 = max(min((y1 + y2) / 2 - side / 2, h - side), 0)
    b = np.array([x0, y0, x0 + side, y0 + side], dtype=np.float32)
    b[2], b[3] = min(b[2], np.float32(w)), min(b[3], np.float32(h))
    return tuple(float(v) for v in b)


def aspect_box(w, h, aw, ah):
    """The largest centred aw:ah region, half-up rounding, floor placement."""
    cw, ch = w, h
    if w * ah > h * aw:
        cw = (2 * h * aw + ah) // (2 * ah)
    else:
        ch = (2 * w * ah + aw) // (2 * aw)
    cw, ch = min(max(cw, 1), w), min(max(ch, 1), h)
    l, t = (w - cw) // 2, (h - ch) // 2
    return (l, t, l + cw, t + ch)


def expected(r):
    global unmatched
    im = Image.open(os.path.join(root, r["path"]))
    W, H = im.size
    g, face = geom, None
    if g == "face":
        try:
            sc = float(r["face_score"])
            face = [float(r[k]) for k in ("face_x1", "face_y1", "face_x2", "face_y2")]
        except ValueError:
            sc = 0
        if not sc > 0:
            g = "center"
    scale = 1
    if draft and im.format == "JPEG":
        if g == "face":
            b = face_box(W, H, *face, margin)
            s = 8
            while s > 1 and (b[2] - b[0]) / s < S:
                s //= 2
            if s > 1:
                im.draft("RGB", (W // s, H // s))
        else:
            im.draft("RGB", (S, S))
        scale = im.decoderconfig[0] if im.decoderconfig else 1
    im = im.convert("RGB")
    w, h = im.size
    if g == "center":
        m = min(w, h)
        l, t = int(round((w - m) / 2.0)), int(round((h - m) / 2.0))
        return im.resize((S, S), Image.BILINEAR, box=(l, t, l + m, t + m))
    if g == "resize":
        return im.resize((S, S), Image.BILINEAR)
    if g == "face":
        return im.resize((S, S), Image.BILINEAR, box=face_box(w, h, *[v / scale for v in face], margin))
    box = (0, 0, w, h)
    if g == "matched" and r["label"] != "0":
        if r["group"] in real_aspect and r["group"]:
            box = aspect_box(w, h, *real_aspect[r["group"]])
        else:
            box = aspect_box(w, h, 1, 1)
            unmatched += 1
    w, h = box[2] - box[0], box[3] - box[1]
    nw, nh = (S, max(1, (2 * h * S + w) // (2 * w))) if w >= h else (max(1, (2 * w * S + h) // (2 * h)), S)
    c = Image.new("RGB", (S, S))
    c.paste(im.resize((nw, nh), Image.BILINEAR, box=box), ((S - nw) // 2, (S - nh) // 2))
    return c


bad = []
for i, r in enumerate(rows):
    e = np.array(expected(r))
    if int(r["row"]) != i or int(r["label"]) != labels[i]:
        bad.append("row %d: row/label column mismatch" % i)
    elif not np.array_equal(images[i], e):
        d = np.abs(images[i].astype(int) - e.astype(int))
        bad.append("row %d (%s): %d values differ, max %d" % (i, r["path"], (d > 0).sum(), d.max()))
if geom == "matched" and int(meta.get("fd.unmatched", "-1")) != unmatched:
    bad.append("fd.unmatched is %s, expected %d" % (meta.get("fd.unmatched"), unmatched))
if images.shape != (len(rows), S, S, 3) or bad:
    print("MISMATCH shape %s rows %d: %s" % (images.shape, len(rows), "; ".join(bad[:5])))
    sys.exit(1)
print("identical: %d images" % len(rows) + (" (%d unmatched)" % unmatched if geom == "matched" else ""))
