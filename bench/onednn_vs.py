"""onednn_vs: what Debian's oneDNN 2.6.3 costs against PyTorch 2.x's bundled
oneDNN 3.x on the layers that matter to fd (issue 15, item 4; doc/onednn.md):
depthwise convolutions (MobileNetV3, EfficientNet, ConvNeXt), 1x1
convolutions on 1x1 maps (squeeze-excitation blocks) and on 7x7, two dense
ResNet 3x3 layers for scale, and bf16 convolutions and matrix products.
Batch 32, channels_last (NHWC) activations, 2 threads.

The same oneDNN primitives are driven through PyTorch on both sides:
Debian's PyTorch 1.13 links the system libdnnl.so.2 (2.6.3, the library fd
links), the PyPI wheel (bench/torch-venv.sh) bundles 3.x. For every layer and
pass (forward, backward-data, backward-weights; forward only for matmul) the
worker times the PyTorch call (median wall ms) and, with oneDNN's verbose mode
on, reads the primitive's own execution time (median ms), its implementation
name, and the reorders the call needed (summed ms per call). fd's own
bench/conv (fd's conv2d plans over oneDNN 2.6, reorders included) runs the
fp32 convolutions as a third column. Sides alternate: REPS times pt1, pt2, fd
(each one process over every layer); each figure is the lowest of the
repetitions' medians (the least disturbed on a shared machine).
Usage: /usr/bin/python3 bench/onednn_vs.py [--fd build/bench/conv]
       [--venv .venv-torch] [--only SUBSTR] [--reps 2]       (make bench-onednn)
       (--fd '': no fd column; bench/conv's repeats are the slow part)
       PYTHON bench/onednn_vs.py --worker SUBSTR             (the layers; internal)
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

# name, dtype, kind, shape: conv (C, H, K, k, stride, groups) or matmul (M, K, N)
def conv(name, c, h, k_out, k, s, g, dt="f32"):
    return (name + ("" if dt == "f32" else ".bf16"), dt, "conv", (c, h, k_out, k, s, g))

LAYERS = [
    conv("mb3.dw16k3s2@112", 16, 112, 16, 3, 2, 16),
    conv("eff.dw32k3s1@112", 32, 112, 32, 3, 1, 32),
    conv("eff.dw240k5s1@28", 240, 28, 240, 5, 1, 240),
    conv("eff.dw1152k3s1@7", 1152, 7, 1152, 3, 1, 1152),
    conv("cnx.dw96k7s1@56", 96, 56, 96, 7, 1, 96),
    conv("cnx.dw768k7s1@7", 768, 7, 768, 7, 1, 768),
    conv("eff.se96to4@1", 96, 1, 4, 1, 1, 1),
    conv("eff.se480to20@1", 480, 1, 20, 1, 1, 1),
    conv("eff.se20to480@1", 20, 1, 480, 1, 1, 1),
    conv("eff.se1152to48@1", 1152, 1, 48, 1, 1, 1),
    conv("eff.se48to1152@1", 48, 1, 1152, 1, 1, 1),
    conv("mb3.se576to144@1", 576, 1, 144, 1, 1, 1),
    conv("eff.pw1152to192@7", 1152, 7, 192, 1, 1, 1),
    conv("eff.pw192to1152@7", 192, 7, 1152, 1, 1, 1),
    conv("r18.l1.3x3@56", 64, 56, 64, 3, 1, 1),
    conv("r18.l4.3x3@7", 512, 7, 512, 3, 1, 1),
    conv("r18.l1.3x3@56", 64, 56, 64, 3, 1, 1, "bf16"),
    conv("r18.l4.3x3@7", 512, 7, 512, 3, 1, 1, "bf16"),
    conv("eff.pw1152to192@7", 1152, 7, 192, 1, 1, 1, "bf16"),
    conv("eff.se1152to48@1", 1152, 1, 48, 1, 1, 1, "bf16"),
    conv("eff.dw240k5s1@28", 240, 28, 240, 5, 1, 240, "bf16"),
    conv("cnx.dw96k7s1@56", 96, 56, 96, 7, 1, 96, "bf16"),
    ("cnx.s3.fc1.bf16", "bf16", "matmul", (32 * 14 * 14, 384, 1536)),
    ("cnx.s4.fc2.bf16", "bf16", "matmul", (32 * 7 * 7, 3072, 768)),
]
BATCH = 32
THREADS = 2
TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"


def parse_verbose(path, n):
    """oneDNN verbose exec lines (2.x: 'onednn_verbose,exec,cpu,KIND,IMPL,PROP,...,ms';
    3.x: 'onednn_verbose,v1,primitive,exec,cpu,...') -> {prop: [ms..]}, impls,
    reorder ms per call."""
    main, impl, reorder = {}, {}, []
    with open(path) as f:
        for line in f:
            fl = line.strip().split(",")
            if not fl[0].endswith("_verbose") or "exec" not in fl:
                continue
            i = fl.index("exec")
            if fl[i + 1] != "cpu":
                continue
            kind, im, prop, ms = fl[i + 2], fl[i + 3], fl[i + 4], float(fl[-1])
            if kind == "reorder":
                reorder.append(ms)
                continue
            prop = "forward" if prop.startswith("forward") or prop == "undef" else prop
            main.setdefault(prop, []).append(ms)
            impl[prop] = kind + ":" + im
    # reorders per call: their median time times how many a call makes
    return main, impl, statistics.median(reorder) * len(reorder) / n if reorder else 0.0


def cpu_bf16():
    """Whether the CPU has AVX512-BF16 (without it the bf16 layers are left
    out: PyTorch would time a slow emulation, not a kernel fd would run)."""
    try:
        return any("avx512_bf16" in l.split() for l in open("/proc/cpuinfo") if l.startswith("flags"))
    except OSError:
        return False


def worker(only):
    import torch
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    bf16 = cpu_bf16()
    for name, dt, kind, shp in LAYERS:
        if only in name and (dt != "bf16" or bf16):
            layer(torch, name, dt, kind, shp)


def layer(torch, name, dt, kind, shp):
    import torch.nn.functional as F
    dtype = torch.bfloat16 if dt == "bf16" else torch.float32
    cl = torch.channels_last
    if kind == "conv":
        c, h, k_out, k, s, g = shp
        x = torch.randn(BATCH, c, h, h).to(dtype).contiguous(memory_format=cl)
        w = (torch.randn(k_out, c // g, k, k) * 0.1).to(dtype).contiguous(memory_format=cl)
        pad = k // 2
        with torch.no_grad():
            y = F.conv2d(x, w, None, s, pad, 1, g)
        gy = torch.randn_like(y).contiguous(memory_format=cl)

        def bwd(mask):
            return lambda: torch.ops.aten.convolution_backward(
                gy, x, w, None, [s, s], [pad, pad], [1, 1], False, [0, 0], g, mask)
        passes = [("forward", lambda: F.conv2d(x, w, None, s, pad, 1, g)),
                  ("backward_data", bwd([True, False, False])),
                  ("backward_weights", bwd([False, True, False]))]
        work = BATCH * (h // s) ** 2 * k_out * (c // g) * k * k
    else:
        m, kk, n = shp
        a = torch.randn(m, kk).to(dtype)
        b = (torch.randn(kk, n) * 0.1).to(dtype)
        passes = [("forward", lambda: a @ b)]
        work = m * kk * n
    # repeats: about 0.3 s of work at an assumed 50 GFLOP/s, 3..20
    n = max(3, min(20, int(0.3 * 50e9 / (2 * work + 1))))
    out = []
    with torch.no_grad():
        for p, fn in passes:
            fn(), fn()
            sys.stdout.flush()
            tmp = tempfile.NamedTemporaryFile(prefix="onednn_vs.", delete=False)
            saved = os.dup(1)
            os.dup2(tmp.fileno(), 1)
            tt = []
            try:
                with torch.backends.mkldnn.verbose(1):
                    for _ in range(n):
                        t0 = time.perf_counter()
                        fn()
                        tt.append((time.perf_counter() - t0) * 1e3)
            finally:
                sys.stdout.flush()
                os.dup2(saved, 1)
                os.close(saved)
                tmp.close()
            main, impl, reorder = parse_verbose(tmp.name, n)
            os.unlink(tmp.name)
            prim = statistics.median(main[p]) if main.get(p) else float("nan")
            out.append("%s\t%s\t%.4f\t%.4f\t%.4f\t%s" % (name, p, statistics.median(tt), prim, reorder,
                                                         impl.get(p, "not-onednn")))
    print("\n".join(out), flush=True)


def keep_min(res, key, val):
    """the lower of the repetitions' figures (each a median): the least disturbed"""
    if key not in res or val[1] < res[key][1]:
        res[key] = val


def run_torch(py, env, only, res):
    r = subprocess.run([py, os.path.abspath(__file__), "--worker", only], env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("onednn_vs: %s --worker failed: %s" % (py, r.stderr.strip()[-400:]))
    for line in r.stdout.splitlines():
        f = line.split("\t")
        if len(f) == 6:
            keep_min(res, (f[0], f[1]), (float(f[2]), float(f[3]), float(f[4]), f[5]))


def run_fd(fd, only, res):
    lines = "".join("%s %d %d %d %d %d %d %d %d %d\n" % (name, BATCH, c, h, h, k_out, k, s, k // 2, g)
                    for name, dt, kind, (c, h, k_out, k, s, g) in
                    (x for x in LAYERS if x[2] == "conv" and x[1] == "f32" and only in x[0]))
    if not lines:
        return
    # channels last, as the other sides and every model's CPU forward
    r = subprocess.run([fd, str(THREADS), "nhwc"], input=lines, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("onednn_vs: %s failed: %s" % (fd, r.stderr.strip()))
    for line in r.stdout.splitlines():
        f = line.split()
        for p, v in zip(("forward", "backward_data", "backward_weights"), f[1:4]):
            if (f[0], p) not in res or float(v) < res[(f[0], p)]:
                res[(f[0], p)] = float(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--fd", default="build/bench/conv")
    ap.add_argument("--venv", default=os.environ.get("TORCH_VENV", ".venv-torch"))
    ap.add_argument("--only", default="")
    ap.add_argument("--reps", type=int, default=2)
    # OpenMP's idle threads, as bench/tuned.sh's WAIT: default leaves libgomp's
    # own policy; PASSIVE (used before 2026-12-07) slowed PyTorch 8-30% there
    ap.add_argument("--wait", choices=("default", "active", "passive"), default="default")
    a = ap.parse_args()
    if a.worker is not None:
        return worker(a.worker)
    top = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    py2 = subprocess.run([os.path.join(top, "bench", "torch-venv.sh"), "python", a.venv],
                         capture_output=True, text=True)
    if py2.returncode != 0:
        sys.exit(py2.stderr.strip())
    ld2 = subprocess.run([os.path.join(top, "bench", "torch-venv.sh"), "env", a.venv],
                         capture_output=True, text=True).stdout.strip()
    os.environ.pop("OMP_WAIT_POLICY", None)  # for every side, fd's bench/conv too
    if a.wait != "default":
        os.environ["OMP_WAIT_POLICY"] = a.wait.upper()
    base = dict(os.environ, LD_PRELOAD=TCMALLOC)
    env1 = dict(base)
    env2 = dict(base, LD_LIBRARY_PATH=ld2)
    print("# %s; batch %d, %d threads, channels_last, tcmalloc, OpenMP wait %s; load %s" % (
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), BATCH, THREADS, a.wait,
        open("/proc/loadavg").read().split()[0]))
    print("# ms per call: 2.6 = Debian PyTorch 1.13 over libdnnl 2.6.3, 3.x = PyPI PyTorch over its bundled"
          " oneDNN; prim = oneDNN's own exec time (verbose), wall = the PyTorch call;"
          " fd = bench/conv nhwc (fd's plan: its own kernels where it has them, else oneDNN 2.6; reorders"
          " included, best of repeats); x = 2.6/3.x prim")
    if not cpu_bf16():
        print("# bf16 layers left out: this CPU has no AVX512-BF16")
    print("| layer | pass | fd | 2.6 prim | 2.6 reorders | 2.6 wall | 3.x prim | 3.x reorders | 3.x wall | x prim | 2.6 impl | 3.x impl |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    r1, r2, rf = {}, {}, {}
    for rep in range(a.reps):
        run_torch("/usr/bin/python3", env1, a.only, r1)
        run_torch(py2.stdout.strip(), env2, a.only, r2)
        if a.fd:
            run_fd(a.fd, a.only, rf)
    n = 0
    for name, dt, kind, shp in LAYERS:
        for p in ("forward", "backward_data", "backward_weights"):
            if (name, p) not in r1:
                continue
            w1, p1, o1, i1 = r1[(name, p)]
            w2, p2, o2, i2 = r2[(name, p)]
            fd = "%.3f" % rf[(name, p)] if (name, p) in rf else "-"
            x = "%.2f" % (p1 / p2) if p2 > 0 else "-"
            print("| %s | %s | %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %s | %s | %s |" % (
                name, p, fd, p1, o1, w1, p2, o2, w2, x, i1, i2), flush=True)
            n += 1
    print("# load after: %s" % open("/proc/loadavg").read().split()[0])
    if n == 0:
        sys.exit("onednn_vs: no layer matched '%s'" % a.only)


if __name__ == "__main__":
    main()
