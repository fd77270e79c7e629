#!/usr/bin/env python3
"""wino_bf16_err.py: how much accuracy a bf16 Winograd convolution would
cost, against the direct bf16 convolution fd and PyTorch's CPU autocast run
(bench/results/tuned.md "bf16 Winograd: measured, not built").

For F(m x m, 3 x 3) with several interpolation point sets it builds the
Toom-Cook matrices A^T, G, B^T exactly (fractions), transforms random
ResNet-like tiles (ReLU outputs, He-scaled weights, C input channels) in
float64, rounds to float32 (what an fp32 transform would hold), then rounds
the transformed input U and weights V to bf16 (nearest even, as
vcvtneps2bf16) and sums their products exactly (float64): the error of the
elementwise stage in bf16 with fp32 accumulation, the transforms otherwise
exact. The direct bf16 convolution rounds x and w to bf16 and sums exactly.
Both are compared with the float64 convolution of the unrounded x and w:
relative L2 error over all outputs. Also printed: multiplies per output per
(input, output) channel pair, (m + 2)^2 / m^2 (the direct algorithm: 9),
and the same in fp32-multiply time at this CPU's bf16 rate (vdpbf16ps: two
products per fp32 lane, so half).

  wino_bf16_err.py [--channels C] [--tiles T] [--seed S] [--break]

numpy only; deterministic for a seed. Each algorithm's matrices are first
checked: its fp32 Winograd must match the float64 convolution within 1e-5
(relative L2), else exit status 1 naming it. --break adds 1e-3 to one
entry of every B^T, which that check must catch (tests/tools/wino_bf16_err.t).
"""
import argparse
from fractions import Fraction as Fr

import numpy as np


def bf16(a):
    """float32 values rounded to bf16 (nearest even), returned as float32"""
    a = np.asarray(a, np.float32).copy()
    u = a.view(np.uint32)
    r = (u.astype(np.uint64) + 0x7FFF + ((u >> 16) & 1)) >> 16 << 16
    u[:] = r.astype(np.uint32)
    return a


def polymul(a, b):
    r = [Fr(0)] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            r[i + j] += x * y
    return r


def toom_cook(m, r, pts):
    """A^T (m x n), G (n x r), B^T (n x n) of F(m, r) on the finite points
    pts (n - 1 of them) and infinity, n = m + r - 1 (Lavin and Gray's
    construction: B^T's rows the coefficients of prod_{l != j} (x - p_l),
    its last row those of prod_l (x - p_l))"""
    n = m + r - 1
    pts = [Fr(p) for p in pts]
    assert len(pts) == n - 1
    at = [[pts[j] ** i for j in range(n - 1)] + [Fr(int(i == m - 1))] for i in range(m)]
    g, bt = [], []
    for j in range(n - 1):
        nj, c = Fr(1), [Fr(1)]
        for l in range(n - 1):
            if l != j:
                nj *= pts[j] - pts[l]
                c = polymul(c, [-pts[l], Fr(1)])
        g.append([pts[j] ** k / nj for k in range(r)])
        bt.append(c + [Fr(0)])
    g.append([Fr(0)] * (r - 1) + [Fr(1)])
    c = [Fr(1)]
    for l in range(n - 1):
        c = polymul(c, [-pts[l], Fr(1)])
    bt.append(c)

    def f(mat):
        return np.array([[float(x) for x in row] for row in mat])

    return f(at), f(g), f(bt)


def rel(y, ref):
    e = np.sqrt(((y - ref) ** 2).sum() / (ref ** 2).sum())
    if not np.isfinite(e):
        raise SystemExit("wino_bf16_err: a non-finite error")
    return e


def one(m, pts, C, K, tiles, rng, brk=False):
    at, g, bt = toom_cook(m, 3, pts)
    if brk:
        bt[1][2] += 1e-3
    a = m + 2
    d = np.maximum(rng.standard_normal((tiles, C, a, a)), 0)
    w = rng.standard_normal((K, C, 3, 3)) * np.sqrt(2.0 / (9 * C))
    ref = np.zeros((tiles, K, m, m))
    dr = np.zeros_like(ref)
    db, wb = bf16(d).astype(np.float64), bf16(w).astype(np.float64)
    for i in range(m):
        for j in range(m):
            ref[:, :, i, j] = np.einsum("ncrs,kcrs->nk", d[:, :, i:i + 3, j:j + 3], w)
            dr[:, :, i, j] = np.einsum("ncrs,kcrs->nk", db[:, :, i:i + 3, j:j + 3], wb)
    # check the matrices: the fp32-rounded transforms reproduce ref closely
    u = np.einsum("ij,ncjk,lk->ncil", bt, d, bt).astype(np.float32)
    v = np.einsum("ij,kcjl,ml->kcim", g, w, g).astype(np.float32)

    def wino(uq, vq):
        mm = np.einsum("ncil,kcil->nkil", uq.astype(np.float64), vq.astype(np.float64))
        return np.einsum("ij,nkjl,ml->nkim", at, mm, at)

    e32 = rel(wino(u, v), ref)
    if e32 > 1e-5:
        raise SystemExit("wino_bf16_err: F(%dx%d, 3x3) on points %s: the matrices are wrong (fp32 error %.1e)" %
                         (m, m, ", ".join(str(p) for p in pts), e32))
    return rel(dr, ref), rel(wino(bf16(u), bf16(v)), ref), rel(wino(bf16(u), v), ref), rel(wino(u, bf16(v)), ref), e32


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--channels", type=int, default=128)
    ap.add_argument("--tiles", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--break", dest="brk", action="store_true")
    o = ap.parse_args()
    if o.channels < 1 or o.tiles < 1:
        raise SystemExit("wino_bf16_err: --channels and --tiles are at least 1")
    rng = np.random.default_rng(o.seed)
    h = Fr(1, 2)
    cases = [(2, (0, 1, -1)), (3, (0, 1, -1, 2)), (3, (0, 1, -1, h)), (4, (0, 1, -1, 2, -2)),
             (4, (0, 1, -1, h, -h)), (4, (0, 1, -1, 2, -h))]
    rows = []
    for m, pts in cases:
        d, both, uo, vo, e32 = one(m, pts, o.channels, 16, o.tiles, rng, o.brk)
        mults = (m + 2) ** 2 / m ** 2
        rows.append("| F(%dx%d, 3x3) bf16 U, V | %s | %.3f | %.3f | %.2e (direct %.2e) | %.1f | %.2e | %.2e | %.1e |" %
                    (m, m, ", ".join(str(p) for p in pts) + ", inf", mults, mults / 2, both, d, both / d, uo, vo,
                     e32))
    # printed once every check passed: a failure leaves no partial table
    print("| algorithm | points | multiplies / output | in fp32-multiply time at the bf16 rate | "
          "rel. L2 error | x direct bf16 | U only in bf16 | V only in bf16 | fp32 Winograd |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("| direct, bf16 x and w | - | 9 | 4.5 | (below) | 1 | - | - | - |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
