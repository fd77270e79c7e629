#!/usr/bin/env python3
"""oprates.py: oneDNN's verbose log as arithmetic rates, the sums behind
bench/results/tuned.md's "ceiling" sections (doc/bench.md "make
bench-peak").

Reads the `exec` lines of DNNL_VERBOSE=1 (oneDNN 2.x `dnnl_verbose,exec` or
`onednn_verbose,exec`, 3.x's `onednn_verbose[,<time>],primitive,exec`) from a
file or stdin and prints, per group (by default the primitive kind, its
implementation and its propagation kind), the calls, milliseconds, GFLOP
and GFLOP/s, and with --peak the share of that peak. Flops are counted as
2 per multiply-add of the direct algorithm:
  convolution  2 mb g (ic/g) (oc/g) oh ow kh kw  (problem "g64mb32_ic64oc64_ih56oh56kh3...", od/kd too)
  matmul       2 M K N (x batch)                  (problem "32x64:64x128" or "2x32x64:2x64x128")
  inner_product 2 mb ic oc                        (problem "mb32ic512oc2")
so a Winograd convolution's rate is its direct-equivalent rate, and may
exceed the peak. Other primitives (reorders, eltwise...) count time only.

  oprates.py [--peak GFLOPS] [--skip N] [--calls N] [--by kind|shape] [LOG]

--skip N ignores the first N exec lines (a warm-up step's), --calls N
keeps the N after them (one step's); --by shape groups by the problem
description too (one row per layer shape). Exit status 1 with a message
naming the file and line when an exec line's problem cannot be read.
"""
import argparse
import re
import sys

CONV = re.compile(r"^(?:g(\d+))?mb(\d+)_?(?:g(\d+))?ic(\d+)oc(\d+)_(?:id(\d+)od(\d+)kd(\d+)\S*?_)?ih(\d+)oh(\d+)kh(\d+)\S*?_iw(\d+)ow(\d+)kw(\d+)")
IP = re.compile(r"^mb(\d+)ic(\d+)oc(\d+)")


def flops(kind, prob):
    """Direct-algorithm flops of one call, None for a kind that has none
    (ValueError when the problem of a kind that has them is unreadable)."""
    if kind in ("convolution", "deconvolution"):
        m = CONV.match(prob)
        if not m:
            raise ValueError("unreadable convolution problem %r" % prob)
        mb, g, ic, oc = int(m[2]), int(m[1] or m[3] or 1), int(m[4]), int(m[5])
        od, kd = (int(m[7]), int(m[8])) if m[6] else (1, 1)
        oh, kh, ow, kw = int(m[10]), int(m[11]), int(m[13]), int(m[14])
        return 2.0 * mb * (ic // g) * oc * od * oh * ow * kd * kh * kw
    if kind == "matmul":
        parts = prob.split(":")
        if len(parts) < 2:
            raise ValueError("unreadable matmul problem %r" % prob)
        a = [int(v) for v in parts[0].split("x")]
        b = [int(v) for v in parts[1].split("x")]
        if len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
            raise ValueError("unreadable matmul problem %r" % prob)
        batch = 1
        for v in a[:-2]:
            batch *= v
        return 2.0 * batch * a[-2] * a[-1] * b[-1]
    if kind == "inner_product":
        m = IP.match(prob)
        if not m:
            raise ValueError("unreadable inner_product problem %r" % prob)
        return 2.0 * int(m[1]) * int(m[2]) * int(m[3])
    return None


def parse(line):
    """(kind, impl, prop, problem, ms) of an exec line, or None."""
    f = line.rstrip("\n").split(",")
    if len(f) < 6 or not f[0].endswith("_verbose"):
        return None
    # 2.x: marker,exec,engine,kind,impl,prop,mds,attrs,aux,problem,ms;
    # 3.x: marker,[time,]primitive,exec,engine,... (the same after exec)
    at = [i for i in (1, 2, 3) if f[i] == "exec" and (i == 1 or f[i - 1] == "primitive")]
    if not at:
        return None
    body = f[at[0] + 1:]
    if len(body) < 8:
        return None
    return body[1], body[2], body[3], body[-2], float(body[-1])


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("log", nargs="?", default="-")
    ap.add_argument("--peak", type=float, default=0.0, help="GFLOP/s of bench/peak (adds a share column)")
    ap.add_argument("--skip", type=int, default=0, help="exec lines ignored first")
    ap.add_argument("--calls", type=int, default=0, help="exec lines kept after them (0: all)")
    ap.add_argument("--by", choices=("kind", "shape"), default="kind")
    a = ap.parse_args(argv)
    name = "stdin" if a.log == "-" else a.log
    try:
        src = sys.stdin if a.log == "-" else open(a.log, encoding="utf-8", errors="replace")
    except OSError as ex:
        sys.stderr.write("oprates: %s: %s\n" % (name, ex.strerror))
        return 1
    groups, order, seen = {}, [], 0
    total_ms = total_gf = 0.0
    for no, line in enumerate(src, 1):
        try:
            r = parse(line)
        except ValueError:
            r = None
        if r is None:
            continue
        seen += 1
        if seen <= a.skip:
            continue
        if a.calls and seen > a.skip + a.calls:
            break
        kind, impl, prop, prob, ms = r
        try:
            fl = flops(kind, prob)
        except ValueError as ex:
            sys.stderr.write("oprates: %s:%d: %s\n" % (name, no, ex))
            return 1
        key = (kind, impl, prop) + ((prob,) if a.by == "shape" else ())
        if key not in groups:
            groups[key] = [0, 0.0, 0.0, fl is not None]
            order.append(key)
        g = groups[key]
        g[0] += 1
        g[1] += ms
        g[2] += (fl or 0.0) / 1e9
        total_ms += ms
        total_gf += (fl or 0.0) / 1e9
    if not groups:
        sys.stderr.write("oprates: %s: no exec lines%s\n" % (name, " after --skip" if seen else ""))
        return 1
    hdr = ["calls", "ms", "GFLOP", "GFLOP/s"] + (["of peak"] if a.peak else []) + ["primitive"]
    print("\t".join(hdr))
    for key in sorted(order, key=lambda k: -groups[k][1]):
        n, ms, gf, has = groups[key]
        rate = gf / (ms / 1e3) if has and ms > 0 else None
        row = [str(n), "%.1f" % ms, "%.2f" % gf if has else "-", "%.1f" % rate if rate is not None else "-"]
        if a.peak:
            row.append("%.0f%%" % (100 * rate / a.peak) if rate is not None else "-")
        row.append(" ".join(key))
        print("\t".join(row))
    print("# %d calls, %.1f ms, %.2f GFLOP (direct-equivalent)" % (sum(g[0] for g in groups.values()), total_ms, total_gf))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
