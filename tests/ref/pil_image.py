#!/usr/bin/python3
"""pil_image.py: Pillow reference for fd_image (decode) and fd_resize (resize,
geometries). Writes test images (JPEG/PNG of odd sizes, gray, palette, RGBA,
16-bit, CMYK, sklearn's real photographs) into OUT/, Pillow's results as raw
RGB files, and OUT/cases.tsv naming each case for tests/unit/t_image.c.

Columns of cases.tsv: name, op (decode|resize|square), file, min_w, min_h (draft
request, 0 = none), box (x0,y0,x1,y1 for resize), ow, oh, filter, geometry, size,
face (x1,y1,x2,y2 in stored-image pixels, '-' = none), margin, expect (raw RGB
file), ew, eh. Seeded: the same files every run."""
import os
import struct
import sys
import zlib

import numpy as np
import sklearn.datasets
from PIL import Image

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20240521)
rows = []


def photo(w, h, ch=3):
    """Noise plus gradients: smooth and detailed parts, like a photograph."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([x / max(w - 1, 1) * 255, y / max(h - 1, 1) * 255,
                     (x + y) / max(w + h - 2, 1) * 255], -1)[..., :ch]
    noise = rng.normal(0, 40, (h, w, ch))
    blob = 80 * np.sin(x / 3.0)[..., None] * np.cos(y / 5.0)[..., None]
    return np.clip(base + noise + blob, 0, 255).astype(np.uint8)


def png_raw(path, w, h, depth, ctype, data, plte=None, trns=None):
    """A minimal PNG writer, for what Pillow cannot save (16-bit RGB/RGBA)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    raw = b"".join(b"\0" + data[i] for i in range(h))
    s = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
    if plte is not None:
        s += chunk(b"PLTE", plte)
    if trns is not None:
        s += chunk(b"tRNS", trns)
    s += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(s)


def expect(name, arr):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    assert arr.ndim == 3 and arr.shape[2] == 3
    fn = name + ".rgb"
    arr.tofile(os.path.join(out, fn))
    return fn, arr.shape[1], arr.shape[0]


def add(name, op, file, arr, min_wh=(0, 0), box="-", owh=(0, 0), filt="-", geom="-", size=0,
        face="-", margin=0.0):
    fn, ew, eh = expect(name, arr)
    rows.append([name, op, file, str(min_wh[0]), str(min_wh[1]), box, str(owh[0]), str(owh[1]),
                 filt, geom, str(size), face, repr(margin), fn, str(ew), str(eh)])


def rgb_of(path, min_wh=(0, 0)):
    im = Image.open(os.path.join(out, path))
    scale = 1
    if min_wh[0] > 0 and im.format == "JPEG":
        im.draft("RGB", min_wh)
        scale = im.decoderconfig[0] if im.decoderconfig else 1
    if im.mode == "I":
        # 16-bit gray: Pillow's convert('RGB') clips to 255; fd keeps the high
        # byte, as Pillow itself does for 16-bit RGB, RGBA and LA (documented).
        a = (np.array(im).astype(np.int64) >> 8).astype(np.uint8)
        return Image.fromarray(np.stack([a] * 3, -1)), scale
    return im.convert("RGB"), scale


# --- test images --------------------------------------------------------------
files = []


def save(img, name, **kw):
    img.save(os.path.join(out, name), **kw)
    files.append(name)


save(Image.fromarray(photo(37, 23)), "rgb_37x23.jpg", quality=90)
save(Image.fromarray(photo(45, 31)), "rgb444_45x31.jpg", quality=95, subsampling=0)
save(Image.fromarray(photo(41, 29, 1)[..., 0]), "gray_41x29.jpg", quality=90)
save(Image.fromarray(photo(33, 27, 3)).convert("CMYK"), "cmyk_33x27.jpg", quality=90)
cm = np.concatenate([photo(30, 26), photo(30, 26, 1)], -1)
save(Image.fromarray(cm, "CMYK"), "cmyk4_30x26.jpg", quality=92)
save(Image.fromarray(photo(512, 512)), "rgb_512.jpg", quality=90)
save(Image.fromarray(photo(31, 17)), "rgb_31x17.png")
save(Image.fromarray(photo(29, 19, 1)[..., 0]), "gray_29x19.png")
save(Image.fromarray(photo(27, 13, 1)[..., 0] > 128), "bw_27x13.png")
pal = Image.fromarray(photo(35, 21)).convert("P", palette=Image.ADAPTIVE, colors=13)
pal.info["transparency"] = 3
save(pal, "pal_35x21.png", transparency=3)
rgba = np.concatenate([photo(23, 19), photo(23, 19, 1)], -1)
save(Image.fromarray(rgba, "RGBA"), "rgba_23x19.png")
la = np.concatenate([photo(21, 15, 1), photo(21, 15, 1)], -1)
save(Image.fromarray(la, "LA"), "la_21x15.png")
g16 = (photo(25, 17, 1)[..., 0].astype(np.uint16) * 257 + rng.integers(0, 257, (17, 25))).astype(np.uint16)
save(Image.fromarray(g16.astype(np.int32), "I").convert("I;16"), "gray16_25x17.png")
for ct, ch, nm in ((2, 3, "rgb16_19x13.png"), (6, 4, "rgba16_19x13.png")):
    a16 = rng.integers(0, 65536, (13, 19, ch)).astype(">u2")
    png_raw(os.path.join(out, nm), 19, 13, 16, ct, [a16[i].tobytes() for i in range(13)])
    files.append(nm)
p4 = rng.integers(0, 16, (11, 17)).astype(np.uint8)
packed = [bytes((p4[i, 2 * j] << 4) | (p4[i, 2 * j + 1] if 2 * j + 1 < 17 else 0) for j in range(9))
          for i in range(11)]
png_raw(os.path.join(out, "gray4_17x11.png"), 17, 11, 4, 0, packed)
files.append("gray4_17x11.png")
# A PNG named .jpg: the format comes from the magic bytes.
save(Image.fromarray(photo(15, 9)), "png_named.jpg", format="PNG")
imgdir = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images")
for nm in ("china.jpg", "flower.jpg"):
    with open(os.path.join(imgdir, nm), "rb") as f, open(os.path.join(out, nm), "wb") as g:
        g.write(f.read())
    files.append(nm)

# --- decode -------------------------------------------------------------------
for f in files:
    im, _ = rgb_of(f)
    add("decode_" + f, "decode", f, np.array(im))
for f, req in (("china.jpg", (100, 100)), ("china.jpg", (300, 200)), ("china.jpg", (60, 53)),
               ("rgb_512.jpg", (224, 224)), ("rgb_512.jpg", (64, 64)), ("rgb_37x23.jpg", (9, 5)),
               ("cmyk_33x27.jpg", (8, 8)), ("gray_41x29.jpg", (10, 7)), ("flower.jpg", (150, 150))):
    im, s = rgb_of(f, req)
    add("draft_%s_%dx%d" % (f, req[0], req[1]), "decode", f, np.array(im), min_wh=req)

# --- resize (whole pipeline of Pillow's Image.resize with a box) ---------------
FILT = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}
cases = [
    ("china.jpg", None, (64, 64)), ("china.jpg", None, (224, 150)), ("china.jpg", None, (1000, 700)),
    ("china.jpg", (100.5, 20.25, 400.75, 333.0), (97, 131)), ("china.jpg", (0, 0, 427, 427), (224, 224)),
    ("rgb_37x23.jpg", None, (80, 61)), ("rgb_37x23.jpg", None, (5, 3)), ("rgb_37x23.jpg", None, (37, 11)),
    ("rgb_37x23.jpg", None, (13, 23)), ("rgb_37x23.jpg", (3, 2, 30, 20), (27, 18)),
    ("rgb_37x23.jpg", (1.5, 0.5, 9.25, 7.75), (40, 40)), ("flower.jpg", (213, 0, 640, 427), (33, 33)),
    ("pal_35x21.png", None, (100, 7)), ("rgb_512.jpg", None, (224, 224)), ("rgb_512.jpg", None, (1, 1)),
]
for i, (f, box, size) in enumerate(cases):
    im, _ = rgb_of(f)
    bx = box if box is not None else (0, 0) + im.size
    for fn, flt in FILT.items():
        if fn != "bilinear" and i % 3:
            continue
        r = im.resize(size, flt, box=bx)
        add("resize%d_%s_%s" % (i, f, fn), "resize", f, np.array(r), box=",".join(repr(float(v)) for v in bx),
            owh=size, filt=fn)


# --- geometries (the definitions of fd_resize.h, restated here) ----------------
def half_even(d):
    return int(round(d / 2.0))


def center_box(w, h):
    m = min(w, h)
    l, t = half_even(w - m), half_even(h - m)
    return (l, t, l + m, t + m)


def face_box(w, h, x1, y1, x2, y2, margin):
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    side = min(side, min(w, h))
    x0 = (x1 + x2) / 2 - side / 2
    y0 = (y1 + y2) / 2 - side / 2
    x0 = max(min(x0, w - side), 0)
    y0 = max(min(y0, h - side), 0)
    b = np.array([x0, y0, x0 + side, y0 + side], dtype=np.float32)
    b[2] = min(b[2], np.float32(w))
    b[3] = min(b[3], np.float32(h))
    return tuple(float(v) for v in b)


def square(im, geom, S, face=None, margin=0.2):
    w, h = im.size
    if geom == "center":
        return im.resize((S, S), Image.BILINEAR, box=center_box(w, h))
    if geom == "resize":
        return im.resize((S, S), Image.BILINEAR)
    if geom == "face":
        return im.resize((S, S), Image.BILINEAR, box=face_box(w, h, *face, margin))
    if w >= h:
        nw, nh = S, max(1, (2 * h * S + w) // (2 * w))
    else:
        nw, nh = max(1, (2 * w * S + h) // (2 * h)), S
    canvas = Image.new("RGB", (S, S), (0, 0, 0))
    canvas.paste(im.resize((nw, nh), Image.BILINEAR), ((S - nw) // 2, (S - nh) // 2))
    return canvas


faces = {"china.jpg": (250.0, 80.5, 330.0, 190.0), "flower.jpg": (10.0, 300.0, 200.0, 420.0),
         "rgb_512.jpg": (100.0, 120.0, 400.0, 380.0), "rgb_37x23.jpg": (2.0, 3.0, 30.0, 22.5)}
for f in ("china.jpg", "flower.jpg", "rgb_512.jpg", "rgb_37x23.jpg", "gray16_25x17.png", "la_21x15.png"):
    for S in (224, 32):
        for draft in (0, 1):
            if draft and not f.endswith(".jpg"):
                continue
            req = (S, S) if draft else (0, 0)
            for geom in ("center", "letterbox", "resize", "face"):
                if geom == "face" and f not in faces:
                    continue
                im, s = rgb_of(f, req)
                fb = faces.get(f)
                fs = tuple(v / s for v in fb) if fb else None
                r = square(im, geom, S, fs, 0.2)
                add("sq_%s_%s_%d_%s" % (f, geom, S, "draft" if draft else "full"), "square", f,
                    np.array(r), min_wh=req, geom=geom, size=S,
                    face=",".join(repr(v) for v in fb) if geom == "face" else "-", margin=0.2)
# margins: none, and so large the square is clipped by the image
for m in (0.0, 1.5):
    im, _ = rgb_of("china.jpg")
    fb = faces["china.jpg"]
    add("sq_china_face_m%g" % m, "square", "china.jpg", np.array(square(im, "face", 64, fb, m)),
        geom="face", size=64, face=",".join(repr(v) for v in fb), margin=m)

cols = ["name", "op", "file", "min_w", "min_h", "box", "ow", "oh", "filter", "geometry", "size",
        "face", "margin", "expect", "ew", "eh"]
with open(os.path.join(out, "cases.tsv"), "w") as f:
    f.write("\t".join(cols) + "\n")
    for r in rows:
        f.write("\t".join(r) + "\n")
print("pil_image: %d cases" % len(rows))
