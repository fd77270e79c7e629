"""html_ref.py: the numbers behind fd-report --html's figures against
scikit-learn and numpy, read back from the figures' data-x/data-y/data-err/
data-v attributes (fd_figure.h).

usage: html_ref.py eda INDEX.tsv FIGDIR
       html_ref.py runs PAGE FIGDIR RUN...
       html_ref.py preproc FACES.tsv PACK FIGDIR   (02: detection rate, pixel statistics)
       html_ref.py gcrows PREDS.tsv ROWS.tsv N     (fd-report --section gradcam-rows)
       html_ref.py hard HARD.tsv PACK FIGDIR PAGE  (06: the gallery's PNG files are the pack's images)
Prints 'checked N' when every value agrees (within 1e-9), else each mismatch
and exits 1. NaN never agrees."""
import csv
import json
import math
import os
import sys
import xml.etree.ElementTree as ET

import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

bad = []
checked = 0


def vec(s):
    return np.array([float(v) for v in s.split()], dtype=float) if s else np.zeros(0)


def close(what, got, want, tol=1e-9):
    global checked
    got, want = np.asarray(got, float), np.asarray(want, float)
    if got.shape != want.shape:
        bad.append('%s: shape %s, expected %s' % (what, got.shape, want.shape))
        return
    both_nan = np.isnan(got) & np.isnan(want)
    err = np.where(both_nan, 0, np.abs(got - want))
    if not np.all(err <= tol):  # NaN in one side fails here
        bad.append('%s: max error %s\n got %s\n want %s' % (what, np.nanmax(err) if err.size else 'nan',
                                                           got[:8], want[:8]))
    checked += got.size


def series(path):
    root = ET.parse(path).getroot()
    out = {}
    for g in root.iter('{http://www.w3.org/2000/svg}g'):
        if g.get('class') == 'series':
            out[g.get('data-name')] = g
        if g.get('class') == 'heatmap':
            out['heatmap'] = g
    return out


def read_tsv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f, delimiter='\t'))


def eda(index, figdir):
    rows = [r for r in read_tsv(index) if r['status'] == 'ok']
    srcs = list(dict.fromkeys(r['source'] for r in rows))
    for key, fig, f in [('width', '01-width', lambda r: float(r['width'])),
                        ('aspect', '01-aspect', lambda r: float(r['width']) / float(r['height'])),
                        ('bytes', '01-bytes', lambda r: float(r['bytes']) / 1024)]:
        allv = [f(r) for r in rows]
        lo, hi = min(allv), max(allv)
        if hi == lo:
            hi = lo + 1
        s = series(os.path.join(figdir, fig + '.svg'))
        for src in srcs:
            v = [f(r) for r in rows if r['source'] == src]
            cnt, edge = np.histogram(v, bins=20, range=(lo, hi))
            close('%s %s counts' % (fig, src), vec(s[src].get('data-y')), cnt)
            close('%s %s edges' % (fig, src), vec(s[src].get('data-x')), edge, 1e-9 * max(1, abs(hi)))
    for q, fig in [('mean', '01-colour-mean'), ('std', '01-colour-std')]:
        s = series(os.path.join(figdir, fig + '.svg'))
        for ch, c in zip('RGB', 'rgb'):
            m = [np.mean([float(r['%s_%s' % (q, c)]) for r in rows if r['source'] == src]) for src in srcs]
            sd = [np.std([float(r['%s_%s' % (q, c)]) for r in rows if r['source'] == src], ddof=1)
                  for src in srcs]
            close('%s %s mean' % (fig, ch), vec(s[ch].get('data-y')), m)
            close('%s %s std' % (fig, ch), vec(s[ch].get('data-err')), sd)


def group_of(run):
    parts = os.path.normpath(run).split(os.sep)
    g = (parts[-3] + '-' + parts[-2]).lower()
    return ''.join(c if c.isalnum() and c.isascii() else '-' for c in g), int(parts[-1][4:])


def preds(path):
    rows = read_tsv(path)
    return (np.array([int(r['label']) for r in rows]), np.array([float(r['score']) for r in rows]),
            [r['source'] for r in rows])


def runs(page, figdir, run):
    groups = {}
    for r in run:
        g, k = group_of(r)
        groups.setdefault(g, []).append((k, r))
    src_auc = {}
    order = []  # fake sources in order of first appearance, as fd_page_runs lists them
    for g, rs in groups.items():
        roc = series(os.path.join(figdir, '%s-roc-%s.svg' % (page, g)))
        cm = np.zeros(4)
        pooled = {0: [], 1: []}
        for k, r in rs:
            for ev in ('val', 'test'):
                p = os.path.join(r, 'preds-%s.tsv' % ev)
                if not os.path.exists(p):
                    continue
                y, s, src = preds(p)
                fpr, tpr, _ = roc_curve(y, s, drop_intermediate=True)
                ser = roc['fold %d %s' % (k, ev)]
                close('%s roc fold %d %s fpr' % (g, k, ev), vec(ser.get('data-x')), fpr)
                close('%s roc fold %d %s tpr' % (g, k, ev), vec(ser.get('data-y')), tpr)
                if ev == 'val':
                    cm += confusion_matrix(y, (s >= 0.5).astype(int), labels=[0, 1]).ravel()
                    for lab in (0, 1):
                        pooled[lab] += list(s[y == lab])
                    for i in range(len(y)):
                        if y[i] == 1 and src[i] not in order:
                            order.append(src[i])
                    for name in sorted(set(src[i] for i in range(len(y)) if y[i] == 1)):
                        m = (y == 0) | np.array([x == name for x in src])
                        src_auc.setdefault((g, name), []).append(roc_auc_score(y[m], s[m]))
            log = read_tsv(os.path.join(r, 'log.tsv'))
            for fig, cols in (('loss', ('train_loss', 'val_loss')), ('auc', ('train_auc', 'val_auc'))):
                s2 = series(os.path.join(figdir, '%s-%s-%s-fold%d.svg' % (page, fig, g, k)))
                for ser, col in zip(s2.values(), cols):
                    close('%s %s fold %d %s' % (g, fig, k, col), vec(ser.get('data-y')),
                          [float(x[col]) for x in log])
        h = series(os.path.join(figdir, '%s-cm-%s.svg' % (page, g)))['heatmap']
        close('%s confusion' % g, vec(h.get('data-v')), cm)
        hs = series(os.path.join(figdir, '%s-hist-%s.svg' % (page, g)))
        for lab, name in ((0, 'real (label 0)'), (1, 'fake (label 1)')):
            cnt, _ = np.histogram(pooled[lab], bins=20, range=(0, 1))
            close('%s histogram %s' % (g, name), vec(hs[name].get('data-y')), cnt)
    # parameters vs AUC and the data-scaling curve: validation AUC over all rows per fold
    pa = series(os.path.join(figdir, '%s-params-auc.svg' % page))
    scale = {}
    for g, rs in groups.items():
        aucs = []
        for k, r in rs:
            y, s, _ = preds(os.path.join(r, 'preds-val.tsv'))
            aucs.append(roc_auc_score(y, s))
        with open(os.path.join(rs[0][1], 'run.json')) as f:
            params = json.load(f)['params']
        sd = np.std(aucs, ddof=1) if len(aucs) > 1 else math.nan
        close('%s params' % g, vec(pa[g].get('data-x')), [params])
        close('%s mean AUC' % g, vec(pa[g].get('data-y')), [np.mean(aucs)])
        close('%s AUC std' % g, vec(pa[g].get('data-err')), [sd])
        setting = os.path.normpath(rs[0][1]).split(os.sep)[-2]
        model = os.path.normpath(rs[0][1]).split(os.sep)[-3]
        if setting.startswith('in') and '-' in setting and setting[2:setting.index('-')].isdigit():
            scale.setdefault(model, []).append((int(setting[2:setting.index('-')]), np.mean(aucs), sd))
    sc = [(m, sorted(v)) for m, v in scale.items() if len(v) >= 2]
    if sc:
        ss = series(os.path.join(figdir, '%s-scaling.svg' % page))
        for m, v in sc:
            close('%s scaling N' % m, vec(ss[m].get('data-x')), [a for a, _, _ in v])
            close('%s scaling AUC' % m, vec(ss[m].get('data-y')), [b for _, b, _ in v])
            close('%s scaling std' % m, vec(ss[m].get('data-err')), [c for _, _, c in v])
    sa = series(os.path.join(figdir, '%s-source-auc.svg' % page))
    for g in groups:
        names = [n for n in order if (g, n) in src_auc]
        close('%s per-source AUC' % g, vec(sa[g].get('data-y'))[:len(names)],
              [np.mean(src_auc[(g, n)]) for n in names])
        close('%s per-source AUC std' % g, vec(sa[g].get('data-err'))[:len(names)],
              [np.std(src_auc[(g, n)], ddof=1) if len(src_auc[(g, n)]) > 1 else math.nan for n in names])


def pack_images(path):
    """The pack's images u8 [N,S,S,3] and its TSV rows (safetensors read by hand)."""
    with open(path, 'rb') as f:
        n = int.from_bytes(f.read(8), 'little')
        hdr = json.loads(f.read(n))
        data = f.read()
    t = hdr['images']
    a, b = t['data_offsets']
    img = np.frombuffer(data[a:b], np.uint8).reshape(t['shape'])
    return img, read_tsv(path[:-len('.safetensors')] + '.tsv')


def preproc(faces, pack, figdir):
    rows = [r for r in read_tsv(faces) if r['face_note'] != 'skipped']
    srcs = list(dict.fromkeys(r['source'] for r in rows))
    rate = [np.mean([r['face_note'] == 'ok' for r in rows if r['source'] == s]) for s in srcs]
    close('02-face-rate', vec(series(os.path.join(figdir, '02-face-rate.svg'))['face found'].get('data-y')), rate)
    img, tab = pack_images(pack)
    psrc = list(dict.fromkeys(r['source'] for r in tab))
    groups = [[i for i, r in enumerate(tab) if r['source'] == s] for s in psrc]
    groups.append([i for i, r in enumerate(tab) if r['label'] == '0'])
    x = img.astype(np.float64) / 255
    for q, fig in [('mean', '02-norm-mean'), ('std', '02-norm-std')]:
        s = series(os.path.join(figdir, fig + '.svg'))
        for c, ch in enumerate('RGB'):
            want = [getattr(np, q)(x[g][..., c]) for g in groups]
            want.append([0.485, 0.456, 0.406][c] if q == 'mean' else [0.229, 0.224, 0.225][c])
            close('%s %s' % (fig, ch), vec(s[ch].get('data-y')), want, 1e-7)


def gcrows(preds, rows, n):
    p = read_tsv(preds)
    cats = {'true_real': (0, False), 'true_fake': (1, True), 'false_positive': (0, True),
            'false_negative': (1, False)}
    want = []
    for cat, (lab, fake) in cats.items():
        sel = [r for r in p if int(r['label']) == lab and (float(r['score']) >= 0.5) == fake]
        sel.sort(key=lambda r: (-float(r['score']) if fake else float(r['score']), int(r['row'])))
        want += [(cat, str(k + 1), r['row'], r['path']) for k, r in enumerate(sel[:n])]
    got = [(r['category'], r['rank'], r['row'], r['path']) for r in read_tsv(rows)]
    global checked
    if got != want:
        bad.append('gradcam rows differ:\n got %s\n want %s' % (got[:6], want[:6]))
    checked += len(want)


def hard(tsv, pack, figdir, page):
    from PIL import Image
    img, tab = pack_images(pack)
    row_of = {r['path']: i for i, r in enumerate(tab)}
    global checked
    for r in read_tsv(tsv):
        slug = lambda v: ''.join(c if c.isalnum() else '-' for c in v.lower())
        f = os.path.join(figdir, '%s-hard-%s-%s' % (page, slug(r['model']), slug(r['kind'])),
                         '%s-%s.png' % (slug(r['source']), r['rank']))
        if not os.path.exists(f):
            bad.append('missing %s' % f)
            continue
        got = np.asarray(Image.open(f).convert('RGB'))
        if not np.array_equal(got, img[row_of[r['path']]]):
            bad.append('%s is not the pack image of %s' % (f, r['path']))
        checked += 1


def main():
    if sys.argv[1] == 'eda':
        eda(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == 'preproc':
        preproc(sys.argv[2], sys.argv[3], sys.argv[4])
    elif sys.argv[1] == 'gcrows':
        gcrows(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == 'hard':
        hard(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        runs(sys.argv[2], sys.argv[3], sys.argv[4:])
    if bad or checked == 0:
        print('\n'.join(bad) or 'nothing checked')
        sys.exit(1)
    print('checked %d' % checked)


if __name__ == '__main__':
    main()
