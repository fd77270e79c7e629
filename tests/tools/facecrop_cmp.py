"""facecrop_cmp.py ROOT IN.tsv ALL.tsv [THREADS]: run facenet-pytorch 2.5.3's
MTCNN (select_largest=False, so faces come score-descending, as fd-facecrop's
--all lists them) on every image IN.tsv names and compare face for face with
fd-facecrop's --all output: same count per image, boxes and landmarks within
0.5 px, scores within 1e-4. Prints one line per image with the worst errors
and exits 1 on any mismatch. Run under .venv/bin/python."""
import csv
import sys

import numpy as np
import torch
from PIL import Image
from facenet_pytorch import MTCNN

root, inp, allf = sys.argv[1:4]
torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 1)
mt = MTCNN(select_largest=False, device='cpu')

with open(inp) as f:
    rows = list(csv.DictReader(f, delimiter='\t'))
fd = {}
with open(allf) as f:
    for r in csv.DictReader(f, delimiter='\t'):
        fd.setdefault(r['path'], []).append(r)

bad = 0
nfaces = 0
for r in rows:
    img = Image.open(f"{root}/{r['path']}").convert('RGB')
    with torch.no_grad():
        boxes, probs, points = mt.detect(img, landmarks=True)
    ref = [] if boxes is None else list(zip(boxes, probs, points))
    got = fd.get(r['path'], [])
    if len(ref) != len(got):
        print(f"not ok: {r['path']}: facenet-pytorch finds {len(ref)} faces, fd {len(got)}")
        for b, p, _ in ref:
            print(f"#   ref {np.round(b, 3).tolist()} {p:.6f}")
        for g in got:
            print(f"#   fd  {[g[k] for k in ('face_x1', 'face_y1', 'face_x2', 'face_y2', 'face_score')]}")
        bad += 1
        continue
    eb = es = el = 0.0
    for (b, p, lm), g in zip(ref, got):
        gb = np.array([float(g[k]) for k in ('face_x1', 'face_y1', 'face_x2', 'face_y2')])
        glm = np.array([[float(g[f'face_lx{i}']), float(g[f'face_ly{i}'])] for i in range(1, 6)])
        eb = max(eb, float(np.abs(gb - b).max()))
        es = max(es, abs(float(g['face_score']) - float(p)))
        el = max(el, float(np.abs(glm - lm).max()))
    nfaces += len(ref)
    ok = eb <= 0.5 and es <= 1e-4 and el <= 0.5
    bad += not ok
    print(f"{'ok' if ok else 'not ok'}: {r['path']}: {len(ref)} faces, max |box| {eb:.2e} px,"
          f" |score| {es:.2e}, |landmark| {el:.2e} px")
print(f"{len(rows)} images, {nfaces} faces, {bad} mismatched")
if not nfaces:
    print("not ok: no faces compared")
sys.exit(1 if bad or not nfaces else 0)
