/* t_cuda: every entry of the CUDA op table against its CPU twin (the oracle,
 * itself checked against PyTorch by t_nn_*) on the same seeded inputs: odd
 * shapes, strides, padding, dilation, groups, ceil_mode, broadcasting; the
 * forward output and every gradient (pre-filled, so "adds" is checked);
 * dropout masks and max-pool indices exactly; the fused AdamW/SGD steps
 * against fd_optim_step; repeat runs bit-identical. Skipped, with the
 * reason, when the build has no CUDA or the machine no device. */
#ifndef FD_HAVE_CUDA
#include <stdio.h>

int main(void)
{
	printf("1..0 # SKIP built without CUDA (CUDA=0, or no nvcc at build time)\n");
	return 0;
}
#else

#include "model_cmp.h"
#include "tap.h"

#include <stdint.h>
#include <string.h>
#include "core/fd_rng.h"
#include "nn/binary.h"
#include "nn/conv2d.h"
#include "nn/fd_backend.h"
#include "nn/fd_cuda.h"
#include "models/fd_model.h"
#include "nn/fd_params.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "nn/pool2d.h"

static struct fd_ctx CC, CG; /* a CPU and a CUDA context */
static struct fd_cuda *G;
static const struct fd_backend *CPU = &fd_backend_cpu, *GPU = &fd_backend_cuda;
static int checks; /* comparisons made (asserted > 0 at the end) */

/* ---- memory of one case: device and host blocks, freed together ---- */

#define MAXBLK 256
static void *dblk[MAXBLK], *hblk[MAXBLK];
static int ndblk, nhblk;

static void *hnew(size_t bytes)
{
	void *p = calloc(1, bytes ? bytes : 1);
	if (!p || nhblk == MAXBLK) {
		fprintf(stderr, "t_cuda: out of host memory\n");
		exit(1);
	}
	return hblk[nhblk++] = p;
}

static void *dnew(size_t bytes)
{
	struct fd_err e = {{0}};
	void *p;
	if (fd_cuda_alloc(G, &p, bytes ? bytes : 4, &e) < 0 || ndblk == MAXBLK) {
		fprintf(stderr, "t_cuda: %s\n", e.msg);
		exit(1);
	}
	return dblk[ndblk++] = p;
}

/* device copy of n bytes of host memory */
static void *dput(const void *h, size_t bytes)
{
	struct fd_err e = {{0}};
	void *p = dnew(bytes);
	if (fd_cuda_h2d(G, p, h, bytes, &e) < 0) {
		fprintf(stderr, "t_cuda: %s\n", e.msg);
		exit(1);
	}
	return p;
}

/* host copy of n bytes of device memory (or NULL, reported, on a device error) */
static void *hget(const void *d, size_t bytes)
{
	struct fd_err e = {{0}};
	void *h = hnew(bytes);
	if (fd_cuda_d2h(G, h, d, bytes, &e) < 0) {
		ok(0, "device to host copy: %s", e.msg);
		return NULL;
	}
	return h;
}

static void case_end(void)
{
	for (int i = 0; i < ndblk; i++)
		fd_cuda_free(G, dblk[i]);
	for (int i = 0; i < nhblk; i++)
		free(hblk[i]);
	ndblk = nhblk = 0;
	CC.failed = CG.failed = 0;
	CC.err.msg[0] = CG.err.msg[0] = 0;
}

/* ---- inputs ---- */

static struct fd_rng R;

static float *rnd(int64_t n, double lo, double hi)
{
	float *p = hnew((size_t)n * sizeof *p);
	for (int64_t i = 0; i < n; i++)
		p[i] = (float)(lo + (hi - lo) * fd_rng_uniform(&R));
	return p;
}

/* values on a grid of 0.5: ties for max pooling's first-maximum rule */
static float *rnd_ties(int64_t n)
{
	float *p = hnew((size_t)n * sizeof *p);
	for (int64_t i = 0; i < n; i++)
		p[i] = (float)((double)fd_rng_below(&R, 7) * 0.5 - 1.5);
	return p;
}

static float *hcopy(const float *h, int64_t n)
{
	float *p = hnew((size_t)n * sizeof *p);
	memcpy(p, h, (size_t)n * sizeof *p);
	return p;
}

static float *dputf(const float *h, int64_t n) { return dput(h, (size_t)n * sizeof *h); }

/* ---- checks ---- */

/* Both calls returned 0 and the device reports no fault. */
static int ran(int rc_cpu, int rc_gpu, const char *entry, const char *shape)
{
	struct fd_err e = {{0}};
	if (rc_cpu != 0) {
		ok(0, "%s %s: cpu kernel failed: %s", entry, shape, CC.err.msg);
		return 0;
	}
	if (rc_gpu != 0 || CG.failed) {
		ok(0, "%s %s: cuda kernel failed: %s", entry, shape, CG.err.msg);
		return 0;
	}
	if (fd_cuda_sync(G, &e) < 0) {
		ok(0, "%s %s: cuda kernel fault: %s", entry, shape, e.msg);
		return 0;
	}
	return 1;
}

/* |gpu - cpu| <= atol + rtol |cpu| everywhere (NaN fails); the line names the
 * entry, shape and tensor, the max error, the worst index and the tolerance. */
static void cmp(const char *entry, const char *shape, const char *what, const float *gdev,
		const float *cpu, int64_t n, double atol, double rtol)
{
	const float *gpu = hget(gdev, (size_t)n * sizeof *gpu);
	if (!gpu)
		return;
	checks++;
	double maxerr = 0, worst = 0;
	int64_t wi = 0, bad = 0, exact = 0;
	for (int64_t i = 0; i < n; i++) {
		double err = fabs((double)gpu[i] - (double)cpu[i]);
		double tol = atol + rtol * fabs((double)cpu[i]);
		double share = err == err ? (tol > 0 ? err / tol : (err > 0 ? INFINITY : 0)) : INFINITY;
		if (!(err <= tol))
			bad++;
		if (memcmp(&gpu[i], &cpu[i], sizeof *gpu) == 0)
			exact++;
		if (err > maxerr)
			maxerr = err;
		if (!(share <= worst)) {
			worst = share;
			wi = i;
		}
	}
	ok(!bad && n > 0,
	   "%s %s: %s: %lld values (%lld bit-identical), max err %.3g, worst [%lld] gpu %.9g cpu %.9g "
	   "= %.2f of tol (atol %g, rtol %g)%s",
	   entry, shape, what, (long long)n, (long long)exact, maxerr, (long long)wi,
	   n ? (double)gpu[wi] : 0.0, n ? (double)cpu[wi] : 0.0, worst, atol, rtol,
	   bad ? " OUT OF TOLERANCE" : "");
	if (bad)
		diag("  %lld of %lld values out of tolerance", (long long)bad, (long long)n);
}

/* exact equality of n elements of `size` bytes (masks, indices) */
static void cmp_exact(const char *entry, const char *shape, const char *what, const void *gdev,
		      const void *cpu, int64_t n, size_t size)
{
	const unsigned char *gpu = hget(gdev, (size_t)n * size);
	if (!gpu)
		return;
	checks++;
	int64_t bad = 0, first = -1;
	for (int64_t i = 0; i < n; i++)
		if (memcmp(gpu + i * size, (const unsigned char *)cpu + i * size, size) != 0) {
			bad++;
			if (first < 0)
				first = i;
		}
	long long gv = 0, cv = 0;
	if (first >= 0) {
		if (size == 1) {
			gv = gpu[first];
			cv = ((const unsigned char *)cpu)[first];
		} else {
			int32_t a, b;
			memcpy(&a, gpu + first * size, 4);
			memcpy(&b, (const unsigned char *)cpu + first * size, 4);
			gv = a, cv = b;
		}
	}
	ok(!bad && n > 0, "%s %s: %s: %lld values exactly equal%s (first mismatch [%lld] gpu %lld cpu %lld, %lld differ)",
	   entry, shape, what, (long long)n, bad ? " FAILED" : "", (long long)first, gv, cv, (long long)bad);
}

/* Tolerances. Elementwise kernels do the CPU's float operations in the same
 * order (no fused multiply-add on either side); only expf/erff/log1p differ
 * (a few ulp): 1e-5 relative. Reductions summed in double on both sides, in
 * another order, then rounded to float: the same bound. cuDNN and cuBLAS sum
 * fp32 products in fp32 in their own order (reduction lengths here <= 450,
 * |terms| <= 1): error <= L * 2^-24 * sum|terms| ~ 3e-5, so 1e-4. */
#define EW_ATOL 1e-6
#define EW_RTOL 1e-5
#define RED_ATOL 1e-5
#define RED_RTOL 1e-5
#define MM_ATOL 1e-4
#define MM_RTOL 1e-4

/* ---- elementwise and small ops ---- */

static void test_memory(void)
{
	const int64_t n = 1001;
	char shape[] = "[1001]";
	float *x = rnd(n, -1, 1), *y = rnd(n, -1, 1);
	float *dx = dputf(x, n), *dy = dputf(y, n), *dz = dputf(y, n);
	float *cy = hcopy(y, n), *zero = hnew((size_t)n * sizeof *zero);
	int rc = GPU->zero(&CG, dz, n);
	if (ran(0, rc, "zero", shape))
		cmp_exact("zero", shape, "p", dz, zero, n, sizeof(float));
	rc = GPU->copy_d2d(&CG, dz, dx, (size_t)n * sizeof(float));
	if (ran(0, rc, "copy_d2d", shape))
		cmp_exact("copy_d2d", shape, "device to device", dz, x, n, sizeof(float));
	rc = GPU->copy_h2d(&CG, dz, y, (size_t)n * sizeof(float));
	if (ran(0, rc, "copy_h2d", shape))
		cmp_exact("copy_h2d", shape, "host to device", dz, y, n, sizeof(float));
	float *back = hnew((size_t)n * sizeof *back);
	rc = GPU->copy_d2h(&CG, back, dx, (size_t)n * sizeof(float));
	ok(rc == 0 && memcmp(back, x, (size_t)n * sizeof(float)) == 0, "copy_d2h %s: device to host: %s", shape,
	   rc == 0 ? "equal" : CG.err.msg);
	ok(GPU->sync(&CG) == 0, "sync: %s", CG.err.msg);
	/* context-less memory entries: zeroed allocation, zeroing (on the legacy
	 * default stream, ordered with the context's stream) */
	float *m = GPU->mem_alloc((size_t)n * sizeof(float));
	ok(m != NULL, "mem_alloc %zu bytes", (size_t)n * sizeof(float));
	if (m) {
		cmp_exact("mem_alloc", shape, "zeroed", m, zero, n, sizeof(float));
		rc = GPU->copy_h2d(&CG, m, x, (size_t)n * sizeof(float));
		int rz = GPU->mem_zero(m, (size_t)n * sizeof(float));
		if (ran(0, rc || rz, "mem_zero", shape))
			cmp_exact("mem_zero", shape, "zeroed after a copy", m, zero, n, sizeof(float));
		GPU->mem_free(m);
	}
	int rcc = CPU->axpy(&CC, n, 0.37f, x, cy);
	rc = GPU->axpy(&CG, n, 0.37f, dx, dy);
	if (ran(rcc, rc, "axpy", shape))
		cmp("axpy", shape, "y", dy, cy, n, EW_ATOL, EW_RTOL);
	case_end();
}

static void test_act(void)
{
	static const char *const names[FD_ACT_COUNT] = {"relu", "hardswish", "hardsigmoid",
							"silu", "sigmoid", "gelu"};
	const int64_t n = 3 * 5 * 7 * 11;
	char shape[] = "[3,5,7,11]";
	for (int k = 0; k < FD_ACT_COUNT; k++) {
		fd_rng_init(&R, 11, (uint64_t)k);
		float *x = rnd(n, -6, 6), *pre = rnd(n, -1, 1);
		x[0] = -3, x[1] = 3, x[2] = 0, x[3] = -0.0f; /* the kinks */
		float *y = hnew((size_t)n * sizeof *y), *cdx = hcopy(pre, n);
		float *gx = dputf(x, n), *gy = dnew((size_t)n * sizeof *gy), *gdx = dputf(pre, n);
		float *dyv = rnd(n, -1, 1), *gdyv = dputf(dyv, n);
		char e[64];
		snprintf(e, sizeof e, "act_fwd %s", names[k]);
		int rcc = CPU->act_fwd(&CC, (enum fd_act)k, n, x, y);
		int rc = GPU->act_fwd(&CG, (enum fd_act)k, n, gx, gy);
		if (ran(rcc, rc, e, shape))
			cmp(e, shape, "y", gy, y, n, EW_ATOL, EW_RTOL);
		snprintf(e, sizeof e, "act_bwd %s", names[k]);
		float *gyc = dputf(y, n); /* both backwards get the CPU's y */
		rcc = CPU->act_bwd(&CC, (enum fd_act)k, n, x, y, dyv, cdx);
		rc = GPU->act_bwd(&CG, (enum fd_act)k, n, gx, gyc, gdyv, gdx);
		if (ran(rcc, rc, e, shape))
			cmp(e, shape, "dx (+= onto random)", gdx, cdx, n, EW_ATOL, EW_RTOL);
		case_end();
	}
	/* relu in place on the device */
	fd_rng_init(&R, 11, 99);
	float *x = rnd(n, -1, 1), *y = hnew((size_t)n * sizeof *y);
	float *gx = dputf(x, n);
	int rcc = CPU->act_fwd(&CC, FD_ACT_RELU, n, x, y);
	int rc = GPU->act_fwd(&CG, FD_ACT_RELU, n, gx, gx);
	if (ran(rcc, rc, "act_fwd relu in place", shape))
		cmp("act_fwd relu in place", shape, "y", gx, y, n, 0, 0);
	case_end();
}

static void test_prelu(void)
{
	const int64_t N = 3, Cc = 5, inner = 7 * 9, n = N * Cc * inner;
	char shape[] = "[3,5,7,9] w[5]";
	fd_rng_init(&R, 12, 0);
	float *x = rnd(n, -2, 2), *w = rnd(Cc, -0.5, 0.5), *dy = rnd(n, -1, 1);
	float *pdx = rnd(n, -1, 1), *pdw = rnd(Cc, -1, 1);
	float *y = hnew((size_t)n * sizeof *y), *cdx = hcopy(pdx, n), *cdw = hcopy(pdw, Cc);
	float *gx = dputf(x, n), *gw = dputf(w, Cc), *gdy = dputf(dy, n), *gy = dnew((size_t)n * 4);
	float *gdx = dputf(pdx, n), *gdw = dputf(pdw, Cc);
	int rcc = CPU->prelu_fwd(&CC, N, Cc, inner, x, w, y);
	int rc = GPU->prelu_fwd(&CG, N, Cc, inner, gx, gw, gy);
	if (ran(rcc, rc, "prelu_fwd", shape))
		cmp("prelu_fwd", shape, "y", gy, y, n, EW_ATOL, EW_RTOL);
	rcc = CPU->prelu_bwd(&CC, N, Cc, inner, x, w, dy, cdx, cdw);
	rc = GPU->prelu_bwd(&CG, N, Cc, inner, gx, gw, gdy, gdx, gdw);
	if (ran(rcc, rc, "prelu_bwd", shape)) {
		cmp("prelu_bwd", shape, "dx", gdx, cdx, n, EW_ATOL, EW_RTOL);
		cmp("prelu_bwd", shape, "dw", gdw, cdw, Cc, RED_ATOL, RED_RTOL);
	}
	case_end();
}

static void tensor_of(struct fd_tensor *t, int ndim, const int64_t *shape)
{
	memset(t, 0, sizeof *t);
	t->ndim = ndim;
	t->numel = 1;
	for (int i = 0; i < ndim; i++)
		t->numel *= t->shape[i] = shape[i];
}

static void test_binary(void)
{
	static const struct {
		int na, nb;
		int64_t a[5], b[5];
	} cs[] = {
		{4, 4, {3, 5, 7, 9}, {3, 5, 7, 9}},     /* no broadcast (residual add) */
		{4, 4, {3, 5, 7, 9}, {1, 5, 1, 1}},     /* per-channel (bias-like): block reduction */
		{4, 4, {3, 5, 7, 9}, {3, 5, 1, 1}},     /* squeeze-excitation scale: thread reduction */
		{3, 4, {5, 1, 9}, {3, 1, 7, 1}},        /* both broadcast */
		{1, 3, {1}, {3, 5, 7}},                 /* scalar */
		{5, 2, {2, 3, 5, 7, 9}, {7, 1}},        /* 5-D against a column */
		/* squeeze-excitation x * s, s [N,C,1,1], at the maps of EfficientNet
		 * and MobileNetV3 at 64 px: 16x16 (R = 256: block reduction with
		 * N > 1), 2x2 (R = 4), 1x1 (no broadcast left) */
		{4, 4, {4, 24, 16, 16}, {4, 24, 1, 1}},
		{4, 4, {4, 40, 2, 2}, {4, 40, 1, 1}},
		{4, 4, {4, 40, 1, 1}, {4, 40, 1, 1}},
	};
	for (size_t ci = 0; ci < sizeof cs / sizeof *cs; ci++)
		for (int op = 0; op < 2; op++) {
			fd_rng_init(&R, 13, ci * 2 + (size_t)op);
			struct fd_tensor ta, tb;
			struct fd_bcast bc;
			int nd;
			tensor_of(&ta, cs[ci].na, cs[ci].a);
			tensor_of(&tb, cs[ci].nb, cs[ci].b);
			if (fd_bcast_init(&CC, &bc, &ta, &tb, &nd) < 0) {
				ok(0, "bcast case %zu: %s", ci, CC.err.msg);
				case_end();
				continue;
			}
			char shape[160], e[32];
			snprintf(shape, sizeof shape, "a[%lld elems] b[%lld] -> [%lld,%lld,%lld,%lld,%lld] (case %zu)",
				 (long long)bc.na, (long long)bc.nb, (long long)bc.shape[0], (long long)bc.shape[1],
				 (long long)bc.shape[2], (long long)bc.shape[3], (long long)bc.shape[4], ci);
			float *a = rnd(bc.na, -2, 2), *b = rnd(bc.nb, -2, 2), *dy = rnd(bc.n, -1, 1);
			float *pda = rnd(bc.na, -1, 1), *pdb = rnd(bc.nb, -1, 1);
			float *y = hnew((size_t)bc.n * 4), *cda = hcopy(pda, bc.na), *cdb = hcopy(pdb, bc.nb);
			float *ga = dputf(a, bc.na), *gb = dputf(b, bc.nb), *gdy = dputf(dy, bc.n);
			float *gy = dnew((size_t)bc.n * 4), *gda = dputf(pda, bc.na), *gdb = dputf(pdb, bc.nb);
			snprintf(e, sizeof e, "binary_fwd %s", op ? "mul" : "add");
			int rcc = CPU->binary_fwd(&CC, (enum fd_binop)op, &bc, a, b, y);
			int rc = GPU->binary_fwd(&CG, (enum fd_binop)op, &bc, ga, gb, gy);
			if (ran(rcc, rc, e, shape))
				cmp(e, shape, "y", gy, y, bc.n, EW_ATOL, EW_RTOL);
			snprintf(e, sizeof e, "binary_bwd %s", op ? "mul" : "add");
			rcc = CPU->binary_bwd(&CC, (enum fd_binop)op, &bc, a, b, dy, cda, cdb);
			rc = GPU->binary_bwd(&CG, (enum fd_binop)op, &bc, ga, gb, gdy, gda, gdb);
			if (ran(rcc, rc, e, shape)) {
				cmp(e, shape, "da", gda, cda, bc.na, RED_ATOL, RED_RTOL);
				cmp(e, shape, "db", gdb, cdb, bc.nb, RED_ATOL, RED_RTOL);
			}
			/* in place (add_): y aliases a, same shapes only */
			if (op == FD_BIN_ADD && bc.na == bc.n) {
				rc = GPU->binary_fwd(&CG, FD_BIN_ADD, &bc, ga, gb, ga);
				if (ran(0, rc, "binary_fwd add in place", shape))
					cmp("binary_fwd add in place", shape, "a", ga, y, bc.n, EW_ATOL, EW_RTOL);
			}
			case_end();
		}
}

static void test_softmax(void)
{
	static const int64_t cs[][3] = {{3, 7, 11}, {15, 10, 1}, {1, 1000, 3}};
	for (size_t ci = 0; ci < sizeof cs / sizeof *cs; ci++) {
		int64_t outer = cs[ci][0], K = cs[ci][1], inner = cs[ci][2], n = outer * K * inner;
		char shape[64];
		snprintf(shape, sizeof shape, "[%lld,%lld,%lld] over dim 1", (long long)outer, (long long)K,
			 (long long)inner);
		fd_rng_init(&R, 14, ci);
		float *x = rnd(n, -8, 8), *dy = rnd(n, -1, 1), *pdx = rnd(n, -1, 1);
		float *y = hnew((size_t)n * 4), *cdx = hcopy(pdx, n);
		float *gx = dputf(x, n), *gy = dnew((size_t)n * 4), *gdy = dputf(dy, n), *gdx = dputf(pdx, n);
		int rcc = CPU->softmax_fwd(&CC, outer, K, inner, x, y);
		int rc = GPU->softmax_fwd(&CG, outer, K, inner, gx, gy);
		if (ran(rcc, rc, "softmax_fwd", shape))
			cmp("softmax_fwd", shape, "y", gy, y, n, EW_ATOL, EW_RTOL);
		float *gyc = dputf(y, n);
		rcc = CPU->softmax_bwd(&CC, outer, K, inner, y, dy, cdx);
		rc = GPU->softmax_bwd(&CG, outer, K, inner, gyc, gdy, gdx);
		if (ran(rcc, rc, "softmax_bwd", shape))
			cmp("softmax_bwd", shape, "dx", gdx, cdx, n, RED_ATOL, RED_RTOL);
		case_end();
	}
}

static void test_ln2d(void)
{
	const int64_t N = 3, Cc = 7, HW = 9 * 11, n = N * Cc * HW;
	char shape[] = "[3,7,9,11] eps 1e-6";
	for (int only_dx = 0; only_dx < 2; only_dx++) {
		fd_rng_init(&R, 15, (uint64_t)only_dx);
		float *x = rnd(n, 2, 5), *w = rnd(Cc, 0.5, 1.5), *b = rnd(Cc, -1, 1), *dy = rnd(n, -1, 1);
		float *pdx = rnd(n, -1, 1), *pdw = rnd(Cc, -1, 1), *pdb = rnd(Cc, -1, 1);
		float *y = hnew((size_t)n * 4), *mean = hnew((size_t)N * HW * 4), *rstd = hnew((size_t)N * HW * 4);
		float *cdx = hcopy(pdx, n), *cdw = hcopy(pdw, Cc), *cdb = hcopy(pdb, Cc);
		float *gx = dputf(x, n), *gw = dputf(w, Cc), *gb = dputf(b, Cc), *gdy = dputf(dy, n);
		float *gy = dnew((size_t)n * 4), *gm = dnew((size_t)N * HW * 4), *gr = dnew((size_t)N * HW * 4);
		float *gdx = dputf(pdx, n), *gdw = dputf(pdw, Cc), *gdb = dputf(pdb, Cc);
		int rcc = CPU->layernorm2d_fwd(&CC, N, Cc, HW, 1e-6f, x, w, b, y, mean, rstd);
		int rc = GPU->layernorm2d_fwd(&CG, N, Cc, HW, 1e-6f, gx, gw, gb, gy, gm, gr);
		if (!only_dx && ran(rcc, rc, "layernorm2d_fwd", shape)) {
			cmp("layernorm2d_fwd", shape, "y", gy, y, n, EW_ATOL, EW_RTOL);
			cmp("layernorm2d_fwd", shape, "mean", gm, mean, N * HW, EW_ATOL, EW_RTOL);
			cmp("layernorm2d_fwd", shape, "rstd", gr, rstd, N * HW, EW_ATOL, EW_RTOL);
		}
		/* backward from the CPU's saved statistics */
		float *gmc = dputf(mean, N * HW), *grc = dputf(rstd, N * HW);
		rcc = CPU->layernorm2d_bwd(&CC, N, Cc, HW, x, w, mean, rstd, dy, cdx, only_dx ? NULL : cdw,
				    only_dx ? NULL : cdb);
		rc = GPU->layernorm2d_bwd(&CG, N, Cc, HW, gx, gw, gmc, grc, gdy, gdx, only_dx ? NULL : gdw,
				   only_dx ? NULL : gdb);
		const char *e = only_dx ? "layernorm2d_bwd (dx only)" : "layernorm2d_bwd";
		if (ran(rcc, rc, e, shape)) {
			cmp(e, shape, "dx", gdx, cdx, n, RED_ATOL, RED_RTOL);
			cmp(e, shape, "dw", gdw, cdw, Cc, RED_ATOL, RED_RTOL);
			cmp(e, shape, "db", gdb, cdb, Cc, RED_ATOL, RED_RTOL);
		}
		case_end();
	}
}

static void test_dropout(void)
{
	static const float ps[] = {0.3f, 0.5f, 1.0f};
	const int64_t n = 1001; /* not a multiple of Philox's 4 words */
	for (size_t pi = 0; pi < sizeof ps / sizeof *ps; pi++) {
		char shape[64];
		snprintf(shape, sizeof shape, "[1001] p %g", (double)ps[pi]);
		fd_rng_init(&R, 16, pi);
		uint64_t seed = 0x1234567890abcdefull, stream = (5ull << 32) | (7 + pi);
		float *x = rnd(n, -1, 1), *dy = rnd(n, -1, 1), *pdx = rnd(n, -1, 1);
		float *y = hnew((size_t)n * 4), *cdx = hcopy(pdx, n);
		uint8_t *keep = hnew((size_t)n);
		float *gx = dputf(x, n), *gy = dnew((size_t)n * 4), *gdy = dputf(dy, n), *gdx = dputf(pdx, n);
		uint8_t *gk = dnew((size_t)n);
		int rcc = CPU->dropout_fwd(&CC, n, ps[pi], seed, stream, x, y, keep);
		int rc = GPU->dropout_fwd(&CG, n, ps[pi], seed, stream, gx, gy, gk);
		if (ran(rcc, rc, "dropout_fwd", shape)) {
			cmp_exact("dropout_fwd", shape, "keep mask", gk, keep, n, 1);
			cmp("dropout_fwd", shape, "y", gy, y, n, 0, 1e-7); /* one float multiply each */
		}
		float scale = ps[pi] < 1.0f ? (float)(1.0 / (1.0 - (double)ps[pi])) : 0.0f;
		uint8_t *gkc = dput(keep, (size_t)n);
		rcc = CPU->dropout_bwd(&CC, n, scale, keep, dy, cdx);
		rc = GPU->dropout_bwd(&CG, n, scale, gkc, gdy, gdx);
		if (ran(rcc, rc, "dropout_bwd", shape))
			cmp("dropout_bwd", shape, "dx", gdx, cdx, n, EW_ATOL, EW_RTOL);
		case_end();
	}
}

static void test_rowscale(void)
{
	const int64_t rows = 3, inner = 5 * 7 * 7, n = rows * inner;
	char shape[] = "[3,5,7,7] f {0, 1.25, 1.25}";
	fd_rng_init(&R, 17, 0);
	float f[3] = {0.0f, 1.25f, 1.25f};
	float *x = rnd(n, -1, 1), *dy = rnd(n, -1, 1), *pdx = rnd(n, -1, 1);
	float *y = hnew((size_t)n * 4), *cdx = hcopy(pdx, n);
	float *gx = dputf(x, n), *gy = dnew((size_t)n * 4), *gdy = dputf(dy, n), *gdx = dputf(pdx, n);
	int rcc = CPU->rowscale_fwd(&CC, rows, inner, f, x, y);
	int rc = GPU->rowscale_fwd(&CG, rows, inner, f, gx, gy);
	if (ran(rcc, rc, "rowscale_fwd", shape))
		cmp("rowscale_fwd", shape, "y", gy, y, n, EW_ATOL, EW_RTOL);
	rcc = CPU->rowscale_bwd(&CC, rows, inner, f, dy, cdx);
	rc = GPU->rowscale_bwd(&CG, rows, inner, f, gdy, gdx);
	if (ran(rcc, rc, "rowscale_bwd", shape))
		cmp("rowscale_bwd", shape, "dx", gdx, cdx, n, EW_ATOL, EW_RTOL);
	case_end();
}

/* losses: the host doubles agree to 1e-10 relative (sums in double of the
 * same double terms, another order; CUDA's exp/log1p are within 2 ulp) */
static void cmp_loss(const char *entry, const char *shape, double gpu, double cpu)
{
	checks++;
	double err = fabs(gpu - cpu), tol = 1e-10 * fabs(cpu) + 1e-12;
	ok(err <= tol, "%s %s: loss gpu %.17g cpu %.17g, err %.3g (tol %.3g)", entry, shape, gpu, cpu, err, tol);
}

static void test_losses(void)
{
	{
		const int64_t n = 37;
		char shape[] = "[37]";
		fd_rng_init(&R, 18, 0);
		float *x = rnd(n, -8, 8), *t = hnew((size_t)n * 4), *pdx = rnd(n, -1, 1), *cdx = hcopy(pdx, n);
		for (int64_t i = 0; i < n; i++)
			t[i] = i % 5 == 4 ? 0.3f : (float)(i % 2);
		float *gx = dputf(x, n), *gt = dputf(t, n), *gdx = dputf(pdx, n);
		double lc = 0, lg = 0;
		int rcc = CPU->bce_fwd(&CC, n, x, t, &lc);
		int rc = GPU->bce_fwd(&CG, n, gx, gt, &lg);
		if (ran(rcc, rc, "bce_fwd", shape))
			cmp_loss("bce_fwd", shape, lg, lc);
		rcc = CPU->bce_bwd(&CC, n, x, t, 0.7f, cdx);
		rc = GPU->bce_bwd(&CG, n, gx, gt, 0.7f, gdx);
		if (ran(rcc, rc, "bce_bwd", shape))
			cmp("bce_bwd", shape, "dx", gdx, cdx, n, EW_ATOL, EW_RTOL);
		case_end();
	}
	static const int64_t cs[][2] = {{7, 10}, {3, 2}, {5, 1000}};
	for (size_t ci = 0; ci < sizeof cs / sizeof *cs; ci++) {
		int64_t N = cs[ci][0], K = cs[ci][1];
		char shape[64];
		snprintf(shape, sizeof shape, "[%lld,%lld]", (long long)N, (long long)K);
		fd_rng_init(&R, 19, ci);
		float *x = rnd(N * K, -6, 6), *pdx = rnd(N * K, -1, 1), *cdx = hcopy(pdx, N * K);
		float *prob = hnew((size_t)(N * K) * 4);
		int32_t *lab = hnew((size_t)N * 4);
		for (int64_t i = 0; i < N; i++)
			lab[i] = (int32_t)fd_rng_below(&R, (uint64_t)K);
		float *gx = dputf(x, N * K), *gp = dnew((size_t)(N * K) * 4), *gdx = dputf(pdx, N * K);
		int32_t *gl = dput(lab, (size_t)N * 4);
		double lc = 0, lg = 0;
		int rcc = CPU->ce_fwd(&CC, N, K, x, lab, prob, &lc);
		int rc = GPU->ce_fwd(&CG, N, K, gx, gl, gp, &lg);
		if (ran(rcc, rc, "ce_fwd", shape)) {
			cmp_loss("ce_fwd", shape, lg, lc);
			cmp("ce_fwd", shape, "prob", gp, prob, N * K, EW_ATOL, EW_RTOL);
		}
		float *gpc = dputf(prob, N * K);
		rcc = CPU->ce_bwd(&CC, N, K, prob, lab, 1.3f, cdx);
		rc = GPU->ce_bwd(&CG, N, K, gpc, gl, 1.3f, gdx);
		if (ran(rcc, rc, "ce_bwd", shape))
			cmp("ce_bwd", shape, "dx", gdx, cdx, N * K, EW_ATOL, EW_RTOL);
		case_end();
	}
}

/* ---- conv2d, linear ---- */

static void test_conv(void)
{
	static const struct fd_conv2d_shape cs[] = {
		/* N  C  H   W  K kh kw sh sw ph pw dh dw g bias xl yl */
		{3, 5, 11, 13, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, FD_NCHW, FD_NCHW},   /* 3x3 same */
		{3, 6, 9, 12, 4, 3, 3, 2, 2, 1, 1, 1, 1, 2, 1, FD_NCHW, FD_NCHW},    /* stride 2, groups 2 */
		{3, 7, 10, 9, 7, 3, 3, 1, 1, 2, 2, 2, 2, 7, 0, FD_NCHW, FD_NCHW},    /* depthwise, dilation 2 */
		{3, 7, 11, 11, 14, 5, 5, 2, 2, 2, 2, 1, 1, 7, 1, FD_NCHW, FD_NCHW},  /* depthwise x2 multiplier, 5x5 s2 */
		{3, 5, 8, 8, 7, 1, 1, 2, 2, 0, 0, 1, 1, 1, 0, FD_NCHW, FD_NCHW},     /* 1x1 s2 downsample, even size */
		{3, 3, 13, 13, 5, 7, 7, 2, 2, 3, 3, 1, 1, 1, 1, FD_NCHW, FD_NCHW},   /* ResNet stem 7x7 s2 p3 */
		{3, 5, 7, 12, 6, 1, 3, 1, 2, 0, 1, 1, 1, 1, 1, FD_NCHW, FD_NCHW},    /* rectangular 1x3, stride (1,2) */
		/* the MBConv / inverted-residual shapes (batch 4): squeeze-excitation
		 * fc1 and fc2 (1x1 with bias on pooled 1x1 maps), expand 1x1,
		 * depthwise groups = C 3x3 and 5x5 s2, depthwise on a 2x2 map */
		{4, 96, 1, 1, 24, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, FD_NCHW, FD_NCHW},
		{4, 24, 1, 1, 96, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, FD_NCHW, FD_NCHW},
		{4, 24, 10, 10, 144, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, FD_NCHW, FD_NCHW},
		{4, 144, 10, 10, 144, 3, 3, 1, 1, 1, 1, 1, 1, 144, 0, FD_NCHW, FD_NCHW},
		{4, 40, 9, 9, 40, 5, 5, 2, 2, 2, 2, 1, 1, 40, 0, FD_NCHW, FD_NCHW},
		{4, 96, 2, 2, 96, 3, 3, 1, 1, 1, 1, 1, 1, 96, 0, FD_NCHW, FD_NCHW},
	};
	for (size_t ci = 0; ci < sizeof cs / sizeof *cs; ci++) {
		const struct fd_conv2d_shape *s = &cs[ci];
		struct fd_err e = {{0}};
		int Ho, Wo;
		char shape[200];
		snprintf(shape, sizeof shape, "x[%d,%d,%d,%d] w[%d,%d,%d,%d] s%d,%d p%d,%d d%d,%d g%d%s", s->N, s->C,
			 s->H, s->W, s->K, s->C / s->groups, s->kh, s->kw, s->sh, s->sw, s->ph, s->pw, s->dh, s->dw,
			 s->groups, s->bias ? " bias" : "");
		if (fd_conv2d_out_size(s, &Ho, &Wo, &e) < 0) {
			ok(0, "conv2d %s: %s", shape, e.msg);
			continue;
		}
		fd_rng_init(&R, 20, ci);
		int64_t nx = (int64_t)s->N * s->C * s->H * s->W, nw = (int64_t)s->K * (s->C / s->groups) * s->kh * s->kw;
		int64_t ny = (int64_t)s->N * s->K * Ho * Wo;
		float *x = rnd(nx, -1, 1), *w = rnd(nw, -1, 1), *b = rnd(s->K, -1, 1), *dy = rnd(ny, -1, 1);
		float *pdx = rnd(nx, -1, 1), *pdw = rnd(nw, -1, 1), *pdb = rnd(s->K, -1, 1);
		float *y = hnew((size_t)ny * 4), *cdx = hcopy(pdx, nx), *cdw = hcopy(pdw, nw), *cdb = hcopy(pdb, s->K);
		float *gx = dputf(x, nx), *gw = dputf(w, nw), *gb = dputf(b, s->K), *gdy = dputf(dy, ny);
		float *gy = dnew((size_t)ny * 4), *gdx = dputf(pdx, nx), *gdw = dputf(pdw, nw), *gdb = dputf(pdb, s->K);
		void *pc = NULL, *pg = NULL;
		int rcc = CPU->conv2d_plan(&CC, s, &pc);
		int rc = GPU->conv2d_plan(&CG, s, &pg);
		if (!ran(rcc, rc, "conv2d_plan", shape)) {
			CPU->conv2d_plan_free(pc);
			GPU->conv2d_plan_free(pg);
			case_end();
			continue;
		}
		rcc = CPU->conv2d_fwd(&CC, pc, x, w, b, y);
		rc = GPU->conv2d_fwd(&CG, pg, gx, gw, gb, gy);
		if (ran(rcc, rc, "conv2d_fwd", shape))
			cmp("conv2d_fwd", shape, "y", gy, y, ny, MM_ATOL, MM_RTOL);
		rcc = CPU->conv2d_bwd(&CC, pc, x, w, dy, cdx, cdw, cdb);
		rc = GPU->conv2d_bwd(&CG, pg, gx, gw, gdy, gdx, gdw, gdb);
		if (ran(rcc, rc, "conv2d_bwd", shape)) {
			cmp("conv2d_bwd", shape, "dx", gdx, cdx, nx, MM_ATOL, MM_RTOL);
			cmp("conv2d_bwd", shape, "dw", gdw, cdw, nw, MM_ATOL, MM_RTOL);
			cmp("conv2d_bwd", shape, "db", gdb, s->bias ? cdb : pdb, s->K, RED_ATOL, RED_RTOL);
		}
		/* one gradient at a time (the others NULL), into zeroed buffers, twice:
		 * the same bits both times (deterministic algorithms) */
		float *zx = hnew((size_t)nx * 4), *zw = hnew((size_t)nw * 4);
		float *g1 = dputf(zx, nx), *g2 = dputf(zx, nx), *w1 = dputf(zw, nw), *w2 = dputf(zw, nw);
		rc = GPU->conv2d_bwd(&CG, pg, gx, gw, gdy, g1, NULL, NULL);
		rc = rc ? rc : GPU->conv2d_bwd(&CG, pg, gx, gw, gdy, g2, NULL, NULL);
		rc = rc ? rc : GPU->conv2d_bwd(&CG, pg, gx, gw, gdy, NULL, w1, NULL);
		rc = rc ? rc : GPU->conv2d_bwd(&CG, pg, gx, gw, gdy, NULL, w2, NULL);
		if (ran(0, rc, "conv2d_bwd (one gradient, twice)", shape)) {
			float *h1 = hget(g1, (size_t)nx * 4), *hw1 = hget(w1, (size_t)nw * 4);
			if (h1 && hw1) {
				cmp_exact("conv2d_bwd (dx only), run twice", shape, "dx", g2, h1, nx, 4);
				cmp_exact("conv2d_bwd (dw only), run twice", shape, "dw", w2, hw1, nw, 4);
			}
		}
		CPU->conv2d_plan_free(pc);
		GPU->conv2d_plan_free(pg);
		case_end();
	}
}

static void test_linear(void)
{
	static const int64_t cs[][4] = {{3, 37, 5, 1}, {7, 129, 10, 0}, {1, 512, 1, 1}};
	for (size_t ci = 0; ci < sizeof cs / sizeof *cs; ci++) {
		int64_t N = cs[ci][0], in = cs[ci][1], out = cs[ci][2];
		int bias = (int)cs[ci][3];
		char shape[96];
		snprintf(shape, sizeof shape, "x[%lld,%lld] w[%lld,%lld]%s", (long long)N, (long long)in,
			 (long long)out, (long long)in, bias ? " bias" : "");
		fd_rng_init(&R, 21, ci);
		float *x = rnd(N * in, -1, 1), *w = rnd(out * in, -1, 1), *b = rnd(out, -1, 1), *dy = rnd(N * out, -1, 1);
		float *pdx = rnd(N * in, -1, 1), *pdw = rnd(out * in, -1, 1), *pdb = rnd(out, -1, 1);
		float *y = hnew((size_t)(N * out) * 4), *cdx = hcopy(pdx, N * in), *cdw = hcopy(pdw, out * in);
		float *cdb = hcopy(pdb, out), *cdb2 = hcopy(pdb, out);
		float *gx = dputf(x, N * in), *gw = dputf(w, out * in), *gb = dputf(b, out), *gdy = dputf(dy, N * out);
		float *gy = dnew((size_t)(N * out) * 4), *gdx = dputf(pdx, N * in), *gdw = dputf(pdw, out * in);
		float *gdb = dputf(pdb, out), *gdb2 = dputf(pdb, out);
		int rcc = CPU->linear_fwd(&CC, N, in, out, x, w, bias ? b : NULL, y);
		int rc = GPU->linear_fwd(&CG, N, in, out, gx, gw, bias ? gb : NULL, gy);
		if (ran(rcc, rc, "linear_fwd", shape))
			cmp("linear_fwd", shape, "y", gy, y, N * out, MM_ATOL, MM_RTOL);
		rcc = CPU->linear_bwd(&CC, N, in, out, x, w, dy, cdx, cdw, cdb);
		rc = GPU->linear_bwd(&CG, N, in, out, gx, gw, gdy, gdx, gdw, gdb);
		if (ran(rcc, rc, "linear_bwd", shape)) {
			cmp("linear_bwd", shape, "dx", gdx, cdx, N * in, MM_ATOL, MM_RTOL);
			cmp("linear_bwd", shape, "dw", gdw, cdw, out * in, MM_ATOL, MM_RTOL);
			cmp("linear_bwd", shape, "db", gdb, cdb, out, EW_ATOL, EW_RTOL);
		}
		/* frozen weight, trained bias: dx and dw NULL */
		rcc = CPU->linear_bwd(&CC, N, in, out, x, w, dy, NULL, NULL, cdb2);
		rc = GPU->linear_bwd(&CG, N, in, out, gx, gw, gdy, NULL, NULL, gdb2);
		if (ran(rcc, rc, "linear_bwd (db only)", shape))
			cmp("linear_bwd (db only)", shape, "db", gdb2, cdb2, out, EW_ATOL, EW_RTOL);
		case_end();
	}
}

/* ---- batchnorm ---- */

static void test_bn(void)
{
	/* the last three: MBConv BatchNorms at batch 4 (a 2x2 map, 10x10, 1x1) */
	static const int64_t cs[][3] = {{3, 5, 7 * 9}, {7, 5, 1}, {2, 3, 13 * 11}, {4, 144, 2 * 2}, {4, 96, 10 * 10},
					{4, 40, 1}};
	for (size_t ci = 0; ci < sizeof cs / sizeof *cs; ci++) {
		int64_t N = cs[ci][0], Cc = cs[ci][1], HW = cs[ci][2], n = N * Cc * HW;
		char shape[96];
		snprintf(shape, sizeof shape, "[%lld,%lld,HW=%lld] momentum 0.1 eps 1e-5", (long long)N, (long long)Cc,
			 (long long)HW);
		fd_rng_init(&R, 22, ci);
		float *x = rnd(n, -1, 3), *w = rnd(Cc, 0.5, 1.5), *b = rnd(Cc, -1, 1), *dy = rnd(n, -1, 1);
		float *rm = rnd(Cc, -0.5, 0.5), *rv = rnd(Cc, 0.5, 2);
		float *pdx = rnd(n, -1, 1), *pdw = rnd(Cc, -1, 1), *pdb = rnd(Cc, -1, 1);
		float *crm = hcopy(rm, Cc), *crv = hcopy(rv, Cc), *y = hnew((size_t)n * 4);
		float *mean = hnew((size_t)Cc * 4), *inv = hnew((size_t)Cc * 4);
		float *cdx = hcopy(pdx, n), *cdw = hcopy(pdw, Cc), *cdb = hcopy(pdb, Cc);
		float *gx = dputf(x, n), *gw = dputf(w, Cc), *gb = dputf(b, Cc), *gdy = dputf(dy, n);
		float *grm = dputf(rm, Cc), *grv = dputf(rv, Cc), *gy = dnew((size_t)n * 4);
		float *gm = dnew((size_t)Cc * 4), *gi = dnew((size_t)Cc * 4);
		float *gdx = dputf(pdx, n), *gdw = dputf(pdw, Cc), *gdb = dputf(pdb, Cc);
		int rcc = CPU->batchnorm2d_fwd_train(&CC, N, Cc, HW, x, w, b, crm, crv, 0.1, 1e-5, y, mean, inv);
		int rc = GPU->batchnorm2d_fwd_train(&CG, N, Cc, HW, gx, gw, gb, grm, grv, 0.1, 1e-5, gy, gm, gi);
		if (ran(rcc, rc, "batchnorm2d_fwd_train", shape)) {
			cmp("batchnorm2d_fwd_train", shape, "y", gy, y, n, RED_ATOL, RED_RTOL);
			cmp("batchnorm2d_fwd_train", shape, "save_mean", gm, mean, Cc, RED_ATOL, RED_RTOL);
			cmp("batchnorm2d_fwd_train", shape, "save_invstd", gi, inv, Cc, RED_ATOL, RED_RTOL);
			cmp("batchnorm2d_fwd_train", shape, "running_mean", grm, crm, Cc, RED_ATOL, RED_RTOL);
			cmp("batchnorm2d_fwd_train", shape, "running_var (unbiased)", grv, crv, Cc, RED_ATOL, RED_RTOL);
		}
		float *gmc = dputf(mean, Cc), *gic = dputf(inv, Cc);
		rcc = CPU->batchnorm2d_bwd_train(&CC, N, Cc, HW, x, w, mean, inv, dy, cdx, cdw, cdb);
		rc = GPU->batchnorm2d_bwd_train(&CG, N, Cc, HW, gx, gw, gmc, gic, gdy, gdx, gdw, gdb);
		if (ran(rcc, rc, "batchnorm2d_bwd_train", shape)) {
			cmp("batchnorm2d_bwd_train", shape, "dx", gdx, cdx, n, RED_ATOL, RED_RTOL);
			cmp("batchnorm2d_bwd_train", shape, "dw", gdw, cdw, Cc, RED_ATOL, RED_RTOL);
			cmp("batchnorm2d_bwd_train", shape, "db", gdb, cdb, Cc, RED_ATOL, RED_RTOL);
		}
		/* eval, from the original running statistics */
		float *grm0 = dputf(rm, Cc), *grv0 = dputf(rv, Cc);
		rcc = CPU->batchnorm2d_fwd_eval(&CC, N, Cc, HW, x, w, b, rm, rv, 1e-5, y);
		rc = GPU->batchnorm2d_fwd_eval(&CG, N, Cc, HW, gx, gw, gb, grm0, grv0, 1e-5, gy);
		if (ran(rcc, rc, "batchnorm2d_fwd_eval", shape))
			cmp("batchnorm2d_fwd_eval", shape, "y", gy, y, n, EW_ATOL, EW_RTOL);
		rcc = CPU->batchnorm2d_bwd_eval(&CC, N, Cc, HW, x, w, rm, rv, 1e-5, dy, cdx, cdw, cdb);
		rc = GPU->batchnorm2d_bwd_eval(&CG, N, Cc, HW, gx, gw, grm0, grv0, 1e-5, gdy, gdx, gdw, gdb);
		if (ran(rcc, rc, "batchnorm2d_bwd_eval", shape)) {
			cmp("batchnorm2d_bwd_eval", shape, "dx", gdx, cdx, n, RED_ATOL, RED_RTOL);
			cmp("batchnorm2d_bwd_eval", shape, "dw", gdw, cdw, Cc, RED_ATOL, RED_RTOL);
			cmp("batchnorm2d_bwd_eval", shape, "db", gdb, cdb, Cc, RED_ATOL, RED_RTOL);
		}
		case_end();
	}
}

/* ---- pooling ---- */

static void pool_shape_str(char *buf, size_t len, const struct fd_pool2d_shape *s, int Ho, int Wo)
{
	snprintf(buf, len, "[%d,%d,%d,%d] k%dx%d s%d,%d p%d,%d%s%s -> %dx%d", s->N, s->C, s->H, s->W, s->kh, s->kw,
		 s->sh, s->sw, s->ph, s->pw, s->ceil_mode ? " ceil" : "",
		 s->count_include_pad ? "" : " exclude-pad", Ho, Wo);
}

static void test_pool(void)
{
	static const struct fd_pool2d_shape ms[] = {
		/* N C  H  W  kh kw sh sw ph pw ceil cip */
		{3, 5, 13, 11, 3, 3, 2, 2, 1, 1, 0, 1}, /* ResNet's max pool */
		{3, 5, 12, 9, 2, 2, 2, 2, 0, 0, 0, 1},  /* 2x2 s2 (CPU fast path), odd W */
		{3, 5, 10, 12, 3, 3, 2, 2, 1, 1, 1, 1}, /* ceil_mode */
		{3, 7, 7, 8, 3, 3, 1, 1, 1, 1, 0, 1},   /* stride 1: windows overlap */
		{3, 5, 9, 9, 3, 2, 2, 1, 0, 1, 1, 0},   /* rectangular, ceil, exclude pad (avg) */
	};
	for (size_t ci = 0; ci < sizeof ms / sizeof *ms; ci++) {
		const struct fd_pool2d_shape *s = &ms[ci];
		struct fd_err e = {{0}};
		int Ho, Wo;
		if (fd_pool2d_out_size(s, &Ho, &Wo, &e) < 0) {
			ok(0, "pool case %zu: %s", ci, e.msg);
			continue;
		}
		char shape[160];
		pool_shape_str(shape, sizeof shape, s, Ho, Wo);
		fd_rng_init(&R, 23, ci);
		int64_t nx = (int64_t)s->N * s->C * s->H * s->W, ny = (int64_t)s->N * s->C * Ho * Wo;
		float *x = rnd_ties(nx), *dy = rnd(ny, -1, 1), *pdx = rnd(nx, -1, 1);
		float *y = hnew((size_t)ny * 4), *cdx = hcopy(pdx, nx);
		int32_t *idx = hnew((size_t)ny * 4);
		float *gx = dputf(x, nx), *gy = dnew((size_t)ny * 4), *gdy = dputf(dy, ny), *gdx = dputf(pdx, nx);
		int32_t *gidx = dnew((size_t)ny * 4);
		int rcc = CPU->maxpool2d_fwd(&CC, s, x, y, idx);
		int rc = GPU->maxpool2d_fwd(&CG, s, gx, gy, gidx);
		if (ran(rcc, rc, "maxpool2d_fwd", shape)) {
			cmp("maxpool2d_fwd", shape, "y", gy, y, ny, 0, 0);
			cmp_exact("maxpool2d_fwd", shape, "indices (ties on a 0.5 grid)", gidx, idx, ny, 4);
		}
		int32_t *gic = dput(idx, (size_t)ny * 4);
		rcc = CPU->maxpool2d_bwd(&CC, s, dy, idx, cdx);
		rc = GPU->maxpool2d_bwd(&CG, s, gdy, gic, gdx);
		if (ran(rcc, rc, "maxpool2d_bwd", shape))
			cmp("maxpool2d_bwd", shape, "dx", gdx, cdx, nx, EW_ATOL, EW_RTOL);
		/* average pooling over the same geometry, smooth inputs */
		float *xa = rnd(nx, -1, 1), *gxa = dputf(xa, nx), *pdx2 = rnd(nx, -1, 1);
		float *cdx2 = hcopy(pdx2, nx), *gdx2 = dputf(pdx2, nx);
		rcc = CPU->avgpool2d_fwd(&CC, s, xa, y);
		rc = GPU->avgpool2d_fwd(&CG, s, gxa, gy);
		if (ran(rcc, rc, "avgpool2d_fwd", shape))
			cmp("avgpool2d_fwd", shape, "y", gy, y, ny, EW_ATOL, EW_RTOL);
		rcc = CPU->avgpool2d_bwd(&CC, s, dy, cdx2);
		rc = GPU->avgpool2d_bwd(&CG, s, gdy, gdx2);
		if (ran(rcc, rc, "avgpool2d_bwd", shape))
			cmp("avgpool2d_bwd", shape, "dx", gdx2, cdx2, nx, EW_ATOL, EW_RTOL);
		case_end();
	}
	/* the last three: squeeze-excitation's pooling of 16x16, 2x2 and 1x1 maps */
	static const int as[][4] = {{13, 11, 1, 1}, {13, 11, 3, 4}, {7, 7, 7, 7}, {5, 9, 2, 3}, {4, 4, 6, 5},
				    {16, 16, 1, 1}, {2, 2, 1, 1}, {1, 1, 1, 1}};
	for (size_t ci = 0; ci < sizeof as / sizeof *as; ci++) {
		int64_t N = 3, Cc = 5, H = as[ci][0], W = as[ci][1], Ho = as[ci][2], Wo = as[ci][3];
		int64_t nx = N * Cc * H * W, ny = N * Cc * Ho * Wo;
		char shape[96];
		snprintf(shape, sizeof shape, "[3,5,%lld,%lld] -> (%lld,%lld)", (long long)H, (long long)W, (long long)Ho,
			 (long long)Wo);
		fd_rng_init(&R, 24, ci);
		float *x = rnd(nx, -1, 1), *dy = rnd(ny, -1, 1), *pdx = rnd(nx, -1, 1);
		float *y = hnew((size_t)ny * 4), *cdx = hcopy(pdx, nx);
		float *gx = dputf(x, nx), *gy = dnew((size_t)ny * 4), *gdy = dputf(dy, ny), *gdx = dputf(pdx, nx);
		int rcc = CPU->adaptive_avgpool2d_fwd(&CC, N, Cc, H, W, Ho, Wo, x, y);
		int rc = GPU->adaptive_avgpool2d_fwd(&CG, N, Cc, H, W, Ho, Wo, gx, gy);
		if (ran(rcc, rc, "adaptive_avgpool2d_fwd", shape))
			cmp("adaptive_avgpool2d_fwd", shape, "y", gy, y, ny, EW_ATOL, EW_RTOL);
		rcc = CPU->adaptive_avgpool2d_bwd(&CC, N, Cc, H, W, Ho, Wo, dy, cdx);
		rc = GPU->adaptive_avgpool2d_bwd(&CG, N, Cc, H, W, Ho, Wo, gdy, gdx);
		if (ran(rcc, rc, "adaptive_avgpool2d_bwd", shape))
			cmp("adaptive_avgpool2d_bwd", shape, "dx", gdx, cdx, nx, EW_ATOL, EW_RTOL);
		case_end();
	}
}

/* ---- optimizer steps: 3 steps of fd_optim_step on CPU and CUDA parameters ---- */

/* Parameters w[5,7,3] (group 0) and b[7] (group 1) on dev, with an optimizer. */
static int optim_setup(struct fd_params *p, struct fd_optim *o, enum fd_dev dev, int adamw, double lr,
		       double a, double b, double c, double wd, int nesterov, struct fd_err *e)
{
	int64_t sw[3] = {5, 7, 3}, sb[1] = {7};
	fd_params_init(p);
	p->dev = dev;
	memset(o, 0, sizeof *o);
	if (fd_params_add(p, "w", FD_P_PARAM, 3, sw, e) < 0 || fd_params_add(p, "b", FD_P_PARAM, 1, sb, e) < 0 ||
	    fd_params_alloc(p, e) < 0 || fd_params_group_vectors(p, 1) != 1)
		return -1;
	if ((adamw ? fd_optim_adamw(o, p, lr, a, b, c, wd, e) : fd_optim_sgd(o, p, lr, a, b, wd, nesterov, e)) < 0)
		return -1;
	o->weight_decay[1] = 0; /* group 1 (the bias): no decay, as fd-train does */
	return 0;
}

static void test_optim(void)
{
	static const struct {
		const char *name;
		int adamw;
		double lr, a, b, c, wd;
		int nesterov;
	} cs[] = {
		{"adamw lr 1e-3 betas (0.9, 0.999) eps 1e-8 wd 0.05", 1, 1e-3, 0.9, 0.999, 1e-8, 0.05, 0},
		{"sgd lr 0.1 momentum 0.9 dampening 0.1 wd 1e-4", 0, 0.1, 0.9, 0.1, 0, 1e-4, 0},
		{"sgd lr 0.05 nesterov momentum 0.9 wd 5e-4", 0, 0.05, 0.9, 0, 0, 5e-4, 1},
		{"sgd lr 0.1 no momentum", 0, 0.1, 0, 0, 0, 0, 0},
	};
	for (size_t ci = 0; ci < sizeof cs / sizeof *cs; ci++) {
		struct fd_params p, q; /* p on the CPU, q on CUDA */
		struct fd_optim o, oq;
		struct fd_err e = {{0}};
		int bad = optim_setup(&p, &o, FD_DEV_CPU, cs[ci].adamw, cs[ci].lr, cs[ci].a, cs[ci].b,
				      cs[ci].c, cs[ci].wd, cs[ci].nesterov, &e) < 0 ||
			  optim_setup(&q, &oq, FD_DEV_CUDA, cs[ci].adamw, cs[ci].lr, cs[ci].a, cs[ci].b,
				      cs[ci].c, cs[ci].wd, cs[ci].nesterov, &e) < 0;
		int64_t n = p.ntrain;
		if (!bad) {
			fd_rng_init(&R, 25, ci);
			float *init = rnd(n, -1, 1);
			memcpy(p.data, init, (size_t)n * 4);
			bad = GPU->copy_h2d(&CG, q.data, init, (size_t)n * 4) < 0;
			if (bad)
				snprintf(e.msg, sizeof e.msg, "%s", CG.err.msg);
		}
		for (int step = 0; step < 3 && !bad; step++) {
			float *grad = rnd(n, -1, 1);
			memcpy(p.grad, grad, (size_t)n * 4);
			fd_params_zero_grad(&q); /* zeroing then a copy: ordered on the device */
			if (GPU->copy_h2d(&CG, q.grad, grad, (size_t)n * 4) < 0) {
				snprintf(e.msg, sizeof e.msg, "%s", CG.err.msg);
				bad = 1;
			} else if (fd_optim_step(&o, &p, &e) < 0 || fd_optim_step(&oq, &q, &e) < 0) {
				bad = 1;
			}
		}
		if (bad || GPU->sync(&CG) < 0) {
			ok(0, "optim %s: %s%s", cs[ci].name, e.msg, CG.err.msg);
		} else {
			/* the same float operations in the same order: expected bit-identical;
			 * the tolerance allows one rounding of difference */
			cmp(cs[ci].name, "w[5,7,3] wd + b[7] no wd, 3 steps", "params", q.data, p.data, n, 1e-7, 1e-6);
			if (o.m)
				cmp(cs[ci].name, "3 steps", cs[ci].adamw ? "exp_avg" : "momentum_buffer", oq.m, o.m, n,
				    1e-9, 1e-6);
			if (o.v)
				cmp(cs[ci].name, "3 steps", "exp_avg_sq", oq.v, o.v, n, 1e-12, 1e-6);
		}
		fd_optim_free(&o);
		fd_optim_free(&oq);
		fd_params_free(&p);
		fd_params_free(&q);
		case_end();
	}
}

/* ---- every model of the registry: CPU vs CUDA ---- */

/* Forward (dropout and stochastic depth off), cross-entropy loss, backward of
 * m on c's device from host x and labels, snapshot into s (model_cmp.h).
 * 0, or -1 with c->err. */
static int model_step(struct fd_ctx *c, struct fd_model *m, const float *x, const int64_t *shape,
		      const int32_t *label, struct mc_snap *s)
{
	memset(s, 0, sizeof *s);
	fd_ctx_step(c);
	struct fd_tensor *t = fd_tensor_new(c, c->dev, 4, shape);
	const struct fd_backend *be = fd_backend_of(c->dev);
	if (!t || be->copy_h2d(c, t->data, x, (size_t)t->numel * sizeof(float)) < 0)
		return -1;
	fd_params_zero_grad(&m->p);
	struct fd_tensor *logits = fd_model_forward(m, c, t);
	struct fd_tensor *loss = logits ? fd_cross_entropy(c, logits, label) : NULL;
	if (!loss || fd_backward(c, loss, NULL) < 0 || mc_snap_take(s, c, m, logits, loss) < 0)
		return -1;
	return 0;
}

/* Deep ResNets with train-mode BatchNorm over 2x2 maps at batch 4 amplify
 * rounding past any useful tolerance (the CPU's own 1-ulp run moves 159 of
 * resnet50's 161 gradients by more than 2e-3 x RMS; t_models checks them
 * against torch in eval mode for the same reason): checked with BatchNorm in
 * eval mode (running statistics, gradients through the affine). */
static int bn_eval_model(const char *name)
{
	return !strcmp(name, "resnet34") || !strcmp(name, "resnet50");
}

/* Every registry model built three times from one seed: r on the CPU, p on
 * the CPU with every weight and input element moved by 1 ulp at random (the
 * tolerance's sensitivity run, model_cmp.h), g moved to the GPU. Input
 * [4,3,64,64], 2 classes, training mode with dropout and stochastic depth
 * off (eval-mode BatchNorm for bn_eval_model), cross entropy. Compared (g
 * against r, tolerance MC_RTOL x RMS + MC_K x |p - r| per tensor): logits,
 * loss, every running statistic, every named gradient, then the losses of 3
 * AdamW steps (lr 1e-3, wd 0.05) run on each copy. */
static void test_models(void)
{
	const int64_t N = 4, S = 64, n = N * 3 * S * S;
	const int64_t shape[4] = {N, 3, S, S};
	const int32_t label[4] = {0, 1, 1, 0};
	for (int ai = 0; ai < fd_model_count(); ai++) {
		const char *name = fd_model_arch_at(ai)->name;
		int bn_eval = bn_eval_model(name);
		struct fd_model *m[3] = {NULL, NULL, NULL}; /* r, p on the CPU; g on the GPU */
		struct fd_ctx *cx[3] = {&CC, &CC, &CG};
		struct fd_optim o[3];
		int nopt = 0;
		struct mc_snap s[3];
		memset(s, 0, sizeof s);
		struct fd_err e = {{0}};
		char what[160];
		snprintf(what, sizeof what, "%s x[%lld,3,%lld,%lld] %s-mode BatchNorm", name, (long long)N, (long long)S,
			 (long long)S, bn_eval ? "eval" : "train");
		int built = 1;
		for (int k = 0; k < 3; k++)
			built = built && fd_model_new(name, 2, 7, &m[k], &e) == 0;
		fd_rng_init(&R, 31, (uint64_t)ai);
		float *x = rnd(n, -2, 2), *xp = hcopy(x, n);
		struct fd_rng P;
		fd_rng_init(&P, 99, (uint64_t)ai);
		if (built) {
			mc_perturb(&P, xp, n);
			mc_perturb_model(&P, m[1]);
		}
		if (!built || fd_params_move(&m[2]->p, &CG, FD_DEV_CUDA, &e) < 0) {
			ok(0, "%s: setup: %s", what, e.msg);
			goto next;
		}
		CC.training = CG.training = !bn_eval;
		CC.dropout_off = CG.dropout_off = 1;
		double lr[3][3] = {{0}}, lworst = 0;
		int steps = 0;
		for (int st = 0; st < 4; st++) {
			if (st == 1)
				for (; nopt < 3; nopt++)
					if (fd_optim_adamw(&o[nopt], &m[nopt]->p, 1e-3, 0.9, 0.999, 1e-8, 0.05, &e) < 0)
						break;
			int bad = st > 0 && nopt < 3;
			for (int k = 0; !bad && k < 3; k++) {
				mc_snap_free(&s[k]);
				bad = (st > 0 && fd_optim_step(&o[k], &m[k]->p, &e) < 0) ||
				      model_step(cx[k], m[k], k == 1 ? xp : x, shape, label, &s[k]) < 0;
			}
			if (bad || fd_sync_cuda(&CG) < 0) {
				ok(0, "%s: step %d failed: %s; cpu: %s; cuda: %s", what, st, e.msg, CC.err.msg, CG.err.msg);
				break;
			}
			if (st == 0) {
				struct mc_cmp c;
				checks++;
				mc_compare(&c, what, m[0], &s[2], &s[0], &s[1]);
				mc_report(what, &c);
				diag("%s: %d tensors beyond 2e-3 x RMS alone (rounding on tensors zero in exact arithmetic "
				     "when they are running_means or BatchNorm bias gradients: model_cmp.h)",
				     what, c.oldbad);
				continue;
			}
			for (int k = 0; k < 3; k++)
				lr[k][st - 1] = s[k].loss;
			lworst = tap_worse(lworst, mc_share1(s[2].loss, s[0].loss, s[1].loss));
			steps++;
		}
		ok(steps == 3 && lworst <= 1,
		   "%s: 3 AdamW steps (lr 1e-3, wd 0.05): losses gpu %.7g %.7g %.7g cpu %.7g %.7g %.7g "
		   "(1-ulp cpu %.7g %.7g %.7g), worst %.3g of tol",
		   what, lr[2][0], lr[2][1], lr[2][2], lr[0][0], lr[0][1], lr[0][2], lr[1][0], lr[1][1], lr[1][2], lworst);
	next:
		for (int k = 0; k < nopt; k++)
			fd_optim_free(&o[k]);
		for (int k = 0; k < 3; k++) {
			mc_snap_free(&s[k]);
			fd_model_free(m[k]);
		}
		fd_ctx_step(&CC);
		fd_ctx_step(&CG);
		CC.training = CG.training = 0;
		case_end();
	}
}

/* ---- dispatch ---- */

static void test_table(void)
{
	ok(fd_backend_of(FD_DEV_CUDA) == &fd_backend_cuda, "fd_backend_of(FD_DEV_CUDA) is the CUDA table");
	/* a CPU context given to a CUDA kernel is refused, not crashed */
	ok(GPU->act_fwd(&CC, FD_ACT_RELU, 4, NULL, NULL) < 0 && strstr(CC.err.msg, "not a CUDA context"),
	   "a CPU context is refused by a CUDA kernel: %s", CC.err.msg);
	CC.failed = 0;
	CC.err.msg[0] = 0;
}

int main(void)
{
	struct fd_err e = {{0}};
	int ndev = fd_cuda_device_count(&e);
	if (ndev < 1) {
		printf("1..0 # SKIP no CUDA device: %s\n", e.msg);
		return 0;
	}
	if (fd_ctx_open(&CC, FD_DEV_CPU, 8, 1, &e) < 0 || fd_ctx_open(&CG, FD_DEV_CUDA, 2, 1, &e) < 0) {
		printf("not ok 1 - setup: %s\n1..1\n", e.msg);
		return 1;
	}
	G = (struct fd_cuda *)CG.engine;
	diag("device 0 of %d: %s", ndev, fd_cuda_device_desc(G));

	test_table();
	test_memory();
	test_act();
	test_prelu();
	test_binary();
	test_softmax();
	test_ln2d();
	test_dropout();
	test_rowscale();
	test_losses();
	test_conv();
	test_linear();
	test_bn();
	test_pool();
	test_optim();
	if (!getenv("T_CUDA_NO_MODELS"))
		test_models();
	ok(checks > 100, "%d comparisons made", checks);

	fd_ctx_free(&CC);
	fd_ctx_free(&CG);
	return tap_done();
}
#endif
