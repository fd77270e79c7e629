/* batchnorm2d: plain C + OpenMP over channels (see batchnorm2d.h). One channel
 * is N strided planes of HW floats; each pass streams them in order. */
#include "nn/batchnorm2d.h"
#include "nn/layout.h"
#include "nn/pool2d.h"
#include "nn/fd_backend.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/fd_vec.h"
#include "nn/act.h"
#include "nn/act_inline.h"

#define PLANE(p, n, c) ((p) + ((size_t)(n) * C + (c)) * HW)

/* The per-plane loops. Sums run in double over 8 interleaved accumulators
 * (element i goes to accumulator i % 8, folded pairwise at the end): a fixed
 * order, so the result does not depend on the vector width of the clone that
 * runs, nor on threads (one channel is one thread's work), and 8 independent
 * chains instead of one latency-bound chain. */
#define NACC 8

static double fold8(const double *a)
{
	return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* acc1[j] += x - k, acc2[j] += (x - k)^2 */
FD_VEC_CLONES
static void plane_shifted(const float *x, int n, double k, double *acc1, double *acc2)
{
	int i = 0;
	for (; i + NACC <= n; i += NACC)
		for (int j = 0; j < NACC; j++) {
			double d = x[i + j] - k;
			acc1[j] += d;
			acc2[j] += d * d;
		}
	for (int j = 0; i < n; i++, j++) {
		double d = x[i] - k;
		acc1[j] += d;
		acc2[j] += d * d;
	}
}

/* The fused activation (fd_batchnorm2d_act): act is FD_ACT_RELU, FD_ACT_SILU,
 * FD_ACT_HARDSWISH or NOACT (plain batchnorm). A loop that depends on it is an
 * always_inline body taking the activation as a constant, specialised per
 * activation by ACT_CASES inside its FD_VEC_CLONES function. BN's output z =
 * x * za + zb (za, zb: the forward's float affine factors) is recomputed
 * where the activation needs it, with the forward's expression: the same bits
 * as the z the separate ops would have kept. ZOF gives it (NOACT: x, the
 * factors untouched); DZ is the gradient reaching z, act'(z) dy. */
#define NOACT (-1)
#define ACT_CASES(act, BODY)                         \
	switch (act) {                               \
	case FD_ACT_RELU: BODY(FD_ACT_RELU); break;  \
	case FD_ACT_SILU: BODY(FD_ACT_SILU); break;  \
	case FD_ACT_HARDSWISH: BODY(FD_ACT_HARDSWISH); break; \
	default: BODY(NOACT); break;                 \
	}
#define ZOF(act, xv, a, b) ((act) == NOACT ? (xv) : (xv) * (a) + (b))
#define DZ(act, xv, a, b, g) fd_ai_grad(act, ZOF(act, xv, a, b), g)
#define FD_AI_BODY static inline __attribute__((always_inline))
/* Stashing: SiLU's dz costs an exp and a division, and both backward passes
 * need it. With a fresh dx (wr) the sums pass stores dz in dx and the dx pass
 * reads it back (the same float: the same bits) instead of recomputing it;
 * for ReLU and hardswish a recompute is cheaper than that extra write,
 * except after a fused max pool, whose dy is gathered from the windows
 * (rows_bwd stashes every activation's dz there: ResNet-18's stem backward
 * ran at 85 ms gathering twice). */
#define STASH(act, wr) ((wr) && (act) == FD_ACT_SILU)

/* acc_g[j] += dz, acc_gx[j] += dz * (x - mean); st[i] = dz when stash */
FD_AI_BODY void plane_dysums_b(const int act, const int stash, const float *g, const float *x, float *st, int n,
			       double mean, float a, float b, double *acc_g, double *acc_gx)
{
	int i = 0;
	for (; i + NACC <= n; i += NACC)
		for (int j = 0; j < NACC; j++) {
			float d = DZ(act, x[i + j], a, b, g[i + j]);
			if (stash)
				st[i + j] = d;
			acc_g[j] += d;
			acc_gx[j] += d * (x[i + j] - mean);
		}
	for (int j = 0; i < n; i++, j++) {
		float d = DZ(act, x[i], a, b, g[i]);
		if (stash)
			st[i] = d;
		acc_g[j] += d;
		acc_gx[j] += d * (x[i] - mean);
	}
}

/* st: NULL, or (SiLU) where dz goes */
FD_VEC_CLONES
static void plane_dysums(int act, const float *g, const float *x, float *st, int n, double mean, float a,
			 float b, double *acc_g, double *acc_gx)
{
	if (st && act == FD_ACT_SILU) {
		plane_dysums_b(FD_ACT_SILU, 1, g, x, st, n, mean, a, b, acc_g, acc_gx);
		return;
	}
#define B(K) plane_dysums_b(K, 0, g, x, NULL, n, mean, a, b, acc_g, acc_gx)
	ACT_CASES(act, B)
#undef B
}

/* dx = k * (dz - cm - (x - mean) * cx) with dz stashed in dx */
FD_VEC_CLONES
static void plane_dx_stashed(const float *x, float *dx, int n, float k, float cm, float cx, float mean)
{
	for (int i = 0; i < n; i++)
		dx[i] = k * (dx[i] - cm - (x[i] - mean) * cx);
}

/* y = act(x * a + b) */
FD_AI_BODY void plane_affine_b(const int act, const float *x, float *y, int n, float a, float b)
{
	for (int i = 0; i < n; i++)
		y[i] = fd_ai_fwd(act, x[i] * a + b);
}

FD_VEC_CLONES
static void plane_affine(int act, const float *x, float *y, int n, float a, float b)
{
#define B(K) plane_affine_b(K, x, y, n, a, b)
	ACT_CASES(act, B)
#undef B
}

/* The dx loops add into dx, or overwrite it when wr (a fresh gradient,
 * struct fd_node's writes): the same value as adding to zeros. */
FD_AI_BODY void plane_dx_train_b(const int act, const float *g, const float *x, float *dx, int n, float k,
				 float cm, float cx, float mean, float a, float b, int wr)
{
	if (wr)
		for (int i = 0; i < n; i++)
			dx[i] = k * (DZ(act, x[i], a, b, g[i]) - cm - (x[i] - mean) * cx);
	else
		for (int i = 0; i < n; i++)
			dx[i] += k * (DZ(act, x[i], a, b, g[i]) - cm - (x[i] - mean) * cx);
}

FD_VEC_CLONES
static void plane_dx_train(int act, const float *g, const float *x, float *dx, int n, float k, float cm,
			   float cx, float mean, float a, float b, int wr)
{
#define B(K) plane_dx_train_b(K, g, x, dx, n, k, cm, cx, mean, a, b, wr)
	ACT_CASES(act, B)
#undef B
}

FD_VEC_CLONES
static void plane_axpy(const float *g, float *dx, int n, float k, int wr)
{
	if (wr)
		for (int i = 0; i < n; i++)
			dx[i] = k * g[i];
	else
		for (int i = 0; i < n; i++)
			dx[i] += k * g[i];
}

static int batchnorm2d_fwd_train(int threads, int act, int N, int C, int HW, const float *x,
				 const float *weight, const float *bias, float *running_mean,
				 float *running_var, double momentum, double eps, float *y, float *save_mean,
				 float *save_invstd, float *za, float *zb, struct fd_err *e)
{
	double M = (double)N * HW;
	if (N < 1 || C < 1 || HW < 1)
		return fd_err_set(e, "batchnorm2d N=%d C=%d HW=%d: sizes must be positive", N, C, HW);
	if (M < 2)
		return fd_err_set(e, "batchnorm2d N=%d C=%d HW=%d: training needs more than 1 value per channel",
				  N, C, HW);
	#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
	for (int c = 0; c < C; c++) {
		double acc1[NACC] = {0}, acc2[NACC] = {0}, k = PLANE(x, 0, c)[0];
		/* one pass about the channel's first value (see rows_fwd_train) */
		for (int n = 0; n < N; n++)
			plane_shifted(PLANE(x, n, c), HW, k, acc1, acc2);
		double d = fold8(acc1) / M, mean = k + d, var = fold8(acc2) / M - d * d;
		var = var < 0 ? 0 : var; /* rounding; a NaN stays */
		double invstd = 1.0 / sqrt(var + eps);
		float a = (float)(weight[c] * invstd), b = (float)(bias[c] - mean * weight[c] * invstd);
		for (int n = 0; n < N; n++)
			plane_affine(act, PLANE(x, n, c), PLANE(y, n, c), HW, a, b);
		if (za)
			za[c] = a, zb[c] = b;
		running_mean[c] = (float)((1 - momentum) * running_mean[c] + momentum * mean);
		running_var[c] = (float)((1 - momentum) * running_var[c] + momentum * var * M / (M - 1));
		save_mean[c] = (float)mean;
		save_invstd[c] = (float)invstd;
	}
	return 0;
}

static void batchnorm2d_fwd_eval(int threads, int N, int C, int HW, const float *x, const float *weight,
				 const float *bias, const float *running_mean, const float *running_var,
				 double eps, float *y)
{
	#pragma omp parallel for num_threads(threads) collapse(2)
	for (int n = 0; n < N; n++)
		for (int c = 0; c < C; c++) {
			double invstd = 1.0 / sqrt((double)running_var[c] + eps);
			float a = (float)(weight[c] * invstd);
			float b = (float)(bias[c] - running_mean[c] * weight[c] * invstd);
			plane_affine(NOACT, PLANE(x, n, c), PLANE(y, n, c), HW, a, b);
		}
}

/* Per channel: sum(dz) and sum(dz * (x - mean)), in double (dz = act'(z) dy,
 * dy itself for NOACT). */
static void dy_sums(int act, int N, int C, int HW, int c, const float *dy, const float *x, float *st,
		    double mean, float a, float b, double *sdy, double *sdyx)
{
	double ag[NACC] = {0}, agx[NACC] = {0};
	for (int n = 0; n < N; n++)
		plane_dysums(act, PLANE(dy, n, c), PLANE(x, n, c), st ? PLANE(st, n, c) : NULL, HW, mean, a, b, ag,
			     agx);
	*sdy = fold8(ag), *sdyx = fold8(agx);
}

/* za, zb: the forward's factors (NULL for NOACT) */
static void batchnorm2d_bwd_train(int threads, int act, int N, int C, int HW, const float *dy, const float *x,
				   const float *weight, const float *save_mean, const float *save_invstd,
				   const float *za, const float *zb, float *dx, float *dweight, float *dbias, int wr)
{
	double M = (double)N * HW;
	#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
	for (int c = 0; c < C; c++) {
		double mean = save_mean[c], invstd = save_invstd[c], sdy, sdyx;
		float a = za ? za[c] : 0, b = zb ? zb[c] : 0;
		float *st = dx && STASH(act, wr) ? dx : NULL;
		dy_sums(act, N, C, HW, c, dy, x, st, mean, a, b, &sdy, &sdyx);
		if (dweight)
			dweight[c] += (float)(sdyx * invstd);
		if (dbias)
			dbias[c] += (float)sdy;
		if (!dx)
			continue;
		/* dx = k * (dy - sdy/M - (x - mean) * invstd^2 * sdyx/M), k = weight * invstd */
		float k = (float)(weight[c] * invstd);
		float cm = (float)(sdy / M), cx = (float)(invstd * invstd * sdyx / M);
		float fmean = (float)mean;
		for (int n = 0; n < N; n++)
			if (st)
				plane_dx_stashed(PLANE(x, n, c), PLANE(dx, n, c), HW, k, cm, cx, fmean);
			else
				plane_dx_train(act, PLANE(dy, n, c), PLANE(x, n, c), PLANE(dx, n, c), HW, k, cm, cx,
					       fmean, a, b, wr);
	}
}

static void batchnorm2d_bwd_eval(int threads, int N, int C, int HW, const float *dy, const float *x,
				  const float *weight, const float *running_mean,
				  const float *running_var, double eps, float *dx, float *dweight,
				  float *dbias, int wr)
{
	#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
	for (int c = 0; c < C; c++) {
		double invstd = 1.0 / sqrt((double)running_var[c] + eps), sdy, sdyx;
		if (dweight || dbias) {
			dy_sums(NOACT, N, C, HW, c, dy, x, NULL, running_mean[c], 0, 0, &sdy, &sdyx);
			if (dweight)
				dweight[c] += (float)(sdyx * invstd);
			if (dbias)
				dbias[c] += (float)sdy;
		}
		if (!dx)
			continue;
		float k = (float)(weight[c] * invstd);
		for (int n = 0; n < N; n++)
			plane_axpy(PLANE(dy, n, c), PLANE(dx, n, c), HW, k, wr);
	}
}

/* ---------- channels last: [M, C] rows (HW == 1, M = N*H*W) ----------
 * The per-plane loops above would run one call per value. Here every pass
 * walks rows of C contiguous values, vectorised over channels. Sums: each
 * chunk of rows (at least RCHUNK values, and at most MAXCH chunks: a count
 * fixed by M and C alone) sums into its own double row of partial sums, and
 * the chunks are added in order, so the result depends neither on threads
 * nor on the vector width. The partial sums (at most 2 * MAXCH * C doubles)
 * and per-channel factors live in the step's arena. */
#define RCHUNK 16384
#define MAXCH 64

struct rows {
	int threads;
	int64_t M, C, rpc, nch; /* rows, channels, rows per chunk, chunks */
	int xb;                 /* x holds bf16 values (FD_T_BF16), else floats */
	int idb;                /* the residual id holds bf16 values (fd_batchnorm2d_add_act) */
};

static struct rows rows_of(int threads, int64_t M, int64_t C)
{
	struct rows r = {threads, M, C, RCHUNK / C > 0 ? RCHUNK / C : 1, 0, 0, 0};
	if (r.rpc < (M + MAXCH - 1) / MAXCH)
		r.rpc = (M + MAXCH - 1) / MAXCH;
	r.nch = (M + r.rpc - 1) / r.rpc;
	return r;
}

/* The rows kernels' input x: floats, or (xb) bf16 values (FD_T_BF16: the
 * bf16 output of the convolution before, c->bf16_y), widened exactly as
 * they are read: the fp32 kernel's arithmetic on the widened values, bit
 * for bit. xb is a constant in every inlined body, so each loop is
 * compiled for one of the two. */
FD_AI_BODY float ldx(const void *x, const int xb, int64_t i)
{
	if (xb) {
		uint32_t u = (uint32_t)((const uint16_t *)x)[i] << 16;
		float f;
		__builtin_memcpy(&f, &u, sizeof f);
		return f;
	}
	return ((const float *)x)[i];
}
/* x + i values */
#define XAT(x, xb, i) ((const void *)((const char *)(x) + (size_t)(i) * ((xb) ? 2u : 4u)))

/* acc1[c] += x - k[c], acc2[c] += (x - k[c])^2: the statistics' one pass
 * (see rows_fwd_train for why the shift keeps the variance accurate) */
FD_AI_BODY void rows_shifted_b(const int xb, const void *x, int64_t n, int64_t C, const float *k, double *acc1,
			       double *acc2)
{
	int64_t m = 0;
	/* four rows a pass over the sums: each sum still adds its rows one by
	 * one in order (the bits of one row a pass), for a quarter of the
	 * loads and stores of the double accumulators, which bound this loop */
	for (; m + 4 <= n; m += 4)
		for (int64_t c = 0; c < C; c++) {
			int64_t i = m * C + c;
			double d0 = (double)ldx(x, xb, i) - k[c], d1 = (double)ldx(x, xb, i + C) - k[c];
			double d2 = (double)ldx(x, xb, i + 2 * C) - k[c], d3 = (double)ldx(x, xb, i + 3 * C) - k[c];
			acc1[c] = acc1[c] + d0 + d1 + d2 + d3;
			acc2[c] = acc2[c] + d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3;
		}
	for (; m < n; m++)
		for (int64_t c = 0; c < C; c++) {
			double d = (double)ldx(x, xb, m * C + c) - k[c];
			acc1[c] += d;
			acc2[c] += d * d;
		}
}

FD_VEC_CLONES
static void rows_shifted(int xb, const void *x, int64_t n, int64_t C, const float *k, double *acc1, double *acc2)
{
	if (xb)
		rows_shifted_b(1, x, n, C, k, acc1, acc2);
	else
		rows_shifted_b(0, x, n, C, k, acc1, acc2);
}

/* The row loops of the fused activation, as the plane ones (ACT_CASES);
 * za, zb [C] are read only when act is not NOACT. */
FD_AI_BODY void rows_dysums_b(const int act, const int stash, const int xb, const float *restrict g,
			      const void *restrict x, float *restrict st, int64_t n, int64_t C,
			      const double *restrict mean, const float *restrict za, const float *restrict zb,
			      double *restrict acc_g, double *restrict acc_gx)
{
	int64_t m = 0;
	/* four rows a pass over the sums, each added in order (rows_shifted_b);
	 * not SiLU's, whose exp bounds the loop (four rows of it at once ran
	 * EfficientNet-B0's training 1.7x slower) */
	for (; act != FD_ACT_SILU && m + 4 <= n; m += 4)
		for (int64_t c = 0; c < C; c++) {
			int64_t i = m * C + c;
			float x0 = ldx(x, xb, i), x1 = ldx(x, xb, i + C), x2 = ldx(x, xb, i + 2 * C);
			float x3 = ldx(x, xb, i + 3 * C);
			float d0 = DZ(act, x0, za[c], zb[c], g[i]), d1 = DZ(act, x1, za[c], zb[c], g[i + C]);
			float d2 = DZ(act, x2, za[c], zb[c], g[i + 2 * C]);
			float d3 = DZ(act, x3, za[c], zb[c], g[i + 3 * C]);
			if (stash)
				st[i] = d0, st[i + C] = d1, st[i + 2 * C] = d2, st[i + 3 * C] = d3;
			acc_g[c] = acc_g[c] + d0 + d1 + d2 + d3;
			acc_gx[c] = acc_gx[c] + d0 * (x0 - mean[c]) + d1 * (x1 - mean[c]) + d2 * (x2 - mean[c]) +
				    d3 * (x3 - mean[c]);
		}
	for (; m < n; m++)
		for (int64_t c = 0; c < C; c++) {
			float xv = ldx(x, xb, m * C + c), d = DZ(act, xv, za[c], zb[c], g[m * C + c]);
			if (stash)
				st[m * C + c] = d;
			acc_g[c] += d;
			acc_gx[c] += d * (xv - mean[c]);
		}
}

FD_VEC_CLONES
static void rows_dysums(int act, const float *g, int xb, const void *x, float *st, int64_t n, int64_t C,
			const double *mean, const float *za, const float *zb, double *acc_g, double *acc_gx)
{
	if (st && act == FD_ACT_SILU) {
		if (xb)
			rows_dysums_b(FD_ACT_SILU, 1, 1, g, x, st, n, C, mean, za, zb, acc_g, acc_gx);
		else
			rows_dysums_b(FD_ACT_SILU, 1, 0, g, x, st, n, C, mean, za, zb, acc_g, acc_gx);
		return;
	}
	if (st) { /* a pooled dy: every activation stashes (rows_bwd) */
#define B(K)                                                                        \
	(xb ? rows_dysums_b(K, 1, 1, g, x, st, n, C, mean, za, zb, acc_g, acc_gx) \
	    : rows_dysums_b(K, 1, 0, g, x, st, n, C, mean, za, zb, acc_g, acc_gx))
		ACT_CASES(act, B)
#undef B
		return;
	}
#define B(K)                                                                          \
	(xb ? rows_dysums_b(K, 0, 1, g, x, NULL, n, C, mean, za, zb, acc_g, acc_gx) \
	    : rows_dysums_b(K, 0, 0, g, x, NULL, n, C, mean, za, zb, acc_g, acc_gx))
	ACT_CASES(act, B)
#undef B
}

FD_AI_BODY void rows_dx_stashed_b(const int xb, const void *x, float *dx, int64_t n, int64_t C, const float *k,
				  const float *cm, const float *cx, const float *mean)
{
	for (int64_t m = 0; m < n; m++)
		for (int64_t c = 0; c < C; c++)
			dx[m * C + c] = k[c] * (dx[m * C + c] - cm[c] - (ldx(x, xb, m * C + c) - mean[c]) * cx[c]);
}

FD_VEC_CLONES
static void rows_dx_stashed(int xb, const void *x, float *dx, int64_t n, int64_t C, const float *k,
			    const float *cm, const float *cx, const float *mean)
{
	if (xb)
		rows_dx_stashed_b(1, x, dx, n, C, k, cm, cx, mean);
	else
		rows_dx_stashed_b(0, x, dx, n, C, k, cm, cx, mean);
}

FD_AI_BODY void rows_affine_b(const int act, const int xb, const void *x, float *y, int64_t n, int64_t C,
			      const float *a, const float *b)
{
	for (int64_t m = 0; m < n; m++)
		for (int64_t c = 0; c < C; c++)
			y[m * C + c] = fd_ai_fwd(act, ldx(x, xb, m * C + c) * a[c] + b[c]);
}

FD_VEC_CLONES
static void rows_affine(int act, int xb, const void *x, float *y, int64_t n, int64_t C, const float *a,
			const float *b)
{
#define B(K) (xb ? rows_affine_b(K, 1, x, y, n, C, a, b) : rows_affine_b(K, 0, x, y, n, C, a, b))
	ACT_CASES(act, B)
#undef B
}

FD_AI_BODY void rows_dx_train_b(const int act, const int xb, const float *g, const void *xv, float *dx, int64_t n,
				int64_t C, const float *k, const float *cm, const float *cx, const float *mean,
				const float *za, const float *zb, int wr)
{
#define DXV(i, c)                                                                                    \
	(k[c] * (DZ(act, ldx(xv, xb, i), za[c], zb[c], g[i]) - cm[c] - (ldx(xv, xb, i) - mean[c]) * cx[c]))
	if (wr)
		for (int64_t m = 0; m < n; m++)
			for (int64_t c = 0; c < C; c++)
				dx[m * C + c] = DXV(m * C + c, c);
	else
		for (int64_t m = 0; m < n; m++)
			for (int64_t c = 0; c < C; c++)
				dx[m * C + c] += DXV(m * C + c, c);
#undef DXV
}

FD_VEC_CLONES
static void rows_dx_train(int act, const float *g, int xb, const void *x, float *dx, int64_t n, int64_t C,
			  const float *k, const float *cm, const float *cx, const float *mean, const float *za,
			  const float *zb, int wr)
{
#define B(K)                                                                      \
	(xb ? rows_dx_train_b(K, 1, g, x, dx, n, C, k, cm, cx, mean, za, zb, wr) \
	    : rows_dx_train_b(K, 0, g, x, dx, n, C, k, cm, cx, mean, za, zb, wr))
	ACT_CASES(act, B)
#undef B
}

FD_AI_BODY void rows_dx_train_bf16_b(const int act, const int xb, const float *g, const void *x, uint16_t *dxb,
				     int64_t n, int64_t C, const float *k, const float *cm, const float *cx,
				     const float *mean, const float *za, const float *zb)
{
	for (int64_t m = 0; m < n; m++)
		for (int64_t c = 0; c < C; c++) {
			int64_t i = m * C + c;
			float xv = ldx(x, xb, i);
			dxb[i] = fd_ai_bf16(k[c] * (DZ(act, xv, za[c], zb[c], g[i]) - cm[c] - (xv - mean[c]) * cx[c]));
		}
}

/* rows_dx_train writing a fresh dx rounded to bf16 (fd_ai_bf16:
 * fd_dnnl_to_bf16's bits) into dxb: the gradient hand-off to the
 * convolution before (doc/nn-kernels.md "bf16 gradient hand-off"); bf16
 * contexts only, as rows_affine_bf16 */
FD_VEC_AVX512_ONLY
static void rows_dx_train_bf16(int act, const float *g, int xb, const void *x, uint16_t *dxb, int64_t n,
			       int64_t C, const float *k, const float *cm, const float *cx, const float *mean,
			       const float *za, const float *zb)
{
#define B(K)                                                                      \
	(xb ? rows_dx_train_bf16_b(K, 1, g, x, dxb, n, C, k, cm, cx, mean, za, zb) \
	    : rows_dx_train_bf16_b(K, 0, g, x, dxb, n, C, k, cm, cx, mean, za, zb))
	ACT_CASES(act, B)
#undef B
}

FD_VEC_CLONES
static void rows_axpy(const float *g, float *dx, int64_t n, int64_t C, const float *k, int wr)
{
	if (wr)
		for (int64_t m = 0; m < n; m++)
			for (int64_t c = 0; c < C; c++)
				dx[m * C + c] = k[c] * g[m * C + c];
	else
		for (int64_t m = 0; m < n; m++)
			for (int64_t c = 0; c < C; c++)
				dx[m * C + c] += k[c] * g[m * C + c];
}

/* Rows of chunk i: [*m0, *m0 + return) */
static int64_t chunk(const struct rows *r, int64_t i, int64_t *m0)
{
	*m0 = i * r->rpc;
	return *m0 + r->rpc <= r->M ? r->rpc : r->M - *m0;
}

/* y = act((x a + b) + id): BN, the residual add and the activation in the
 * separate ops' order of float operations (the same bits) */
FD_AI_BODY void rows_affine_add_b(const int act, const int xb, const void *x, const float *id, float *y, int64_t n,
				  int64_t C, const float *a, const float *b)
{
	for (int64_t m = 0; m < n; m++)
		for (int64_t c = 0; c < C; c++) {
			float t = ldx(x, xb, m * C + c) * a[c] + b[c];
			y[m * C + c] = fd_ai_fwd(act, t + id[m * C + c]);
		}
}

FD_VEC_CLONES
static void rows_affine_add(int act, int xb, const void *x, const float *id, float *y, int64_t n, int64_t C,
			    const float *a, const float *b)
{
#define B(K) (xb ? rows_affine_add_b(K, 1, x, id, y, n, C, a, b) : rows_affine_add_b(K, 0, x, id, y, n, C, a, b))
	ACT_CASES(act, B)
#undef B
}

/* rows_affine_add_b with id in bf16 (idb) and/or y rounded to bf16 in the
 * registers (yb, fd_ai_bf16): the bf16 residual stream (the same floats on
 * the widened values, then rounded) */
FD_AI_BODY void rows_affine_add_hb(const int act, const int xb, const int idb, const int ob, const void *x,
				   const void *id, void *y, int64_t n, int64_t C, const float *a, const float *b)
{
	for (int64_t m = 0; m < n; m++)
		for (int64_t c = 0; c < C; c++) {
			float t = ldx(x, xb, m * C + c) * a[c] + b[c];
			float v = fd_ai_fwd(act, t + ldx(id, idb, m * C + c));
			if (ob)
				((uint16_t *)y)[m * C + c] = fd_ai_bf16(v);
			else
				((float *)y)[m * C + c] = v;
		}
}

/* rows_affine_add with id (idb) or y (ob) in bf16: bf16 contexts only
 * (AVX512-BF16 checked), hence the target; ReLU or none */
FD_VEC_AVX512_ONLY
static void rows_affine_add_h(int act, int xb, int idb, int ob, const void *x, const void *id, void *y, int64_t n,
			      int64_t C, const float *a, const float *b)
{
#define H(K, XB, IB, OB) rows_affine_add_hb(K, XB, IB, OB, x, id, y, n, C, a, b)
#define HX(K, IB, OB) (xb ? H(K, 1, IB, OB) : H(K, 0, IB, OB))
#define HI(K, OB) (idb ? HX(K, 1, OB) : HX(K, 0, OB))
#define HO(K) (ob ? HI(K, 1) : HI(K, 0))
	if (act == FD_ACT_RELU)
		HO(FD_ACT_RELU);
	else
		HO(NOACT);
#undef HO
#undef HI
#undef HX
#undef H
}

/* dz = act'(y) dy (the activation's gradient from its output: ReLU and
 * none only; 0 + it, as the in-place activation's fresh backward writes
 * it) into dz, which may be dy itself */
FD_VEC_CLONES
static void rows_act_grad_out(int act, const float *y, const float *dy, float *dz, int64_t n)
{
	if (act == FD_ACT_RELU)
		for (int64_t i = 0; i < n; i++)
			dz[i] = 0.0f + fd_ai_grad(FD_ACT_RELU, y[i], dy[i]);
	else if (dz != dy)
		for (int64_t i = 0; i < n; i++)
			dz[i] = dy[i];
}

/* rows_act_grad_out with y in bf16 (the bf16 residual stream): ReLU's mask
 * from the rounded y (the same sign; a positive subnormal y, flushed to
 * +0, passes no gradient) */
FD_VEC_AVX512_ONLY
static void rows_act_grad_out_b(int act, const uint16_t *y, const float *dy, float *dz, int64_t n)
{
	if (act == FD_ACT_RELU)
		for (int64_t i = 0; i < n; i++)
			dz[i] = 0.0f + fd_ai_grad(FD_ACT_RELU, ldx(y, 1, i), dy[i]);
	else if (dz != dy)
		for (int64_t i = 0; i < n; i++)
			dz[i] = dy[i];
}

static int p22_fast(int64_t C);
static void rows_shifted_bb(const uint16_t *x, int64_t n, int64_t C, const float *k, double *acc1, double *acc2);

/* s1[c] = sum (x - k[c]), s2[c] = sum (x - k[c])^2 over the rows */
static void rows_stat(const struct rows *r, const void *x, const float *k, double *part, double *s1, double *s2)
{
	int64_t C = r->C;
	#pragma omp parallel for num_threads(r->threads) schedule(static) if (r->nch > 1)
	for (int64_t i = 0; i < r->nch; i++) {
		int64_t m0, n = chunk(r, i, &m0);
		double *a1 = part + 2 * i * C, *a2 = a1 + C;
		for (int64_t c = 0; c < 2 * C; c++)
			a1[c] = 0;
		if (r->xb && p22_fast(C))
			rows_shifted_bb((const uint16_t *)x + m0 * C, n, C, k, a1, a2);
		else
			rows_shifted(r->xb, XAT(x, r->xb, m0 * C), n, C, k, a1, a2);
	}
	for (int64_t c = 0; c < C; c++)
		s1[c] = s2[c] = 0;
	for (int64_t i = 0; i < r->nch; i++)
		for (int64_t c = 0; c < C; c++) {
			s1[c] += part[2 * i * C + c];
			s2[c] += part[2 * i * C + C + c];
		}
}

/* Where a rows backward's dy comes from: dy [M, C] itself, or (ps not
 * NULL) the gradient that a max pool after the op, with output gradient dy
 * [N, Ho, Wo, C] and indices idx, routes to the op's output, made gb rows
 * at a time (GBUF floats) into a buffer on the task's stack by
 * fd_maxpool2d_nhwc_grad_rows: the values the pool's own backward would
 * have written, which never leave the caches. */
#define GBUF 4096
struct dysrc {
	const float *dy;
	const struct fd_pool2d_shape *ps;
	const int32_t *idx;
	int64_t gb;
	const uint8_t *code; /* pool22 (idx NULL): the window codes and x at the maxima */
	const void *xm;
};

/* dy's rows [m0, m0 + n) (n <= gb when made into buf) */
static const float *dy_rows(const struct dysrc *s, int64_t C, float *buf, int64_t m0, int64_t n)
{
	if (!s->ps)
		return s->dy + m0 * C;
	fd_maxpool2d_nhwc_grad_rows(s->ps, m0, n, s->dy, s->idx, buf);
	return buf;
}

/* Rows per block of a chunk's pass: all of them, or gb when dy is made */
static int64_t dy_block(const struct dysrc *s, int64_t n)
{
	return s->ps && s->gb < n ? s->gb : n;
}

/* ---------- a 2x2/2 max pool after ReLU, fused whole (SimpleCNN's) ----------
 * The general fused pool (rows_fwd_pool, struct dysrc) keeps int32 indices
 * and gathers the pool's gradient back per input position, twice a
 * backward. For disjoint 2x2 windows on even H and W, whose row pairs never
 * straddle a chunk of rows, the forward computes act(bn(x)) of the four
 * values of a window in registers and keeps, per output value, the code of
 * its maximum (0..3: row-major in the window) in one byte and x there (x's
 * own type: the bf16 bits of a bf16 x). The backward's sums then walk the
 * pooled rows only: each output's maximum is the one input value of its
 * window with a gradient, so each sum adds, in the rows' order (the first
 * row of a pair, then the second), the same terms as rows_dysums over every
 * position, less the exact zeros (a +0 or -0 added to a sum that is never -0
 * changes no bit; the sums are the same bits for finite x, and with a
 * non-finite x the batch's invstd is NaN either way). The dx pass reads
 * dy and the codes per output, not idx gathered per position. */
static int pool22(int64_t M, int64_t C, int act, const struct fd_pool2d_shape *ps)
{
	struct rows r = rows_of(1, M, C);
	return act == FD_ACT_RELU && ps->kh == 2 && ps->kw == 2 && ps->sh == 2 && ps->sw == 2 && ps->ph == 0 &&
	       ps->pw == 0 && ps->H % 2 == 0 && ps->W % 2 == 0 && (r.nch == 1 || r.rpc % (2 * (int64_t)ps->W) == 0);
}

/* xm + i values (x's type) */
#define XMAT(xm, xb, i) XAT(xm, xb, i)

/* One output row: r0, r1 the two input rows [W, C] of its windows; y [Wo,
 * C] (bf16 when yb), code, xm. Each window scanned in maxpool_nhwc_pos's
 * order with its rule (fd_mp_take), on the values rows_affine gives. */
FD_AI_BODY void pool22_fwd_b(const int act, const int xb, const int yb, const void *restrict r0,
			     const void *restrict r1, int64_t Wo, int64_t C, const float *restrict a,
			     const float *restrict b, void *restrict y, uint8_t *restrict code, void *restrict xm)
{
	for (int64_t ow = 0; ow < Wo; ow++)
		for (int64_t c = 0; c < C; c++) {
			int64_t i = 2 * ow * C + c, o = ow * C + c;
			float x0 = ldx(r0, xb, i), x1 = ldx(r0, xb, i + C), x2 = ldx(r1, xb, i);
			float x3 = ldx(r1, xb, i + C);
			float z0 = fd_ai_fwd(act, x0 * a[c] + b[c]), z1 = fd_ai_fwd(act, x1 * a[c] + b[c]);
			float z2 = fd_ai_fwd(act, x2 * a[c] + b[c]), z3 = fd_ai_fwd(act, x3 * a[c] + b[c]);
			float m = -INFINITY, xv = x0;
			int k = 0, t = fd_mp_take(z0, m);
			m = fd_vm_sel(t, z0, m);
			t = fd_mp_take(z1, m);
			m = fd_vm_sel(t, z1, m), xv = fd_vm_sel(t, x1, xv), k = t ? 1 : k;
			t = fd_mp_take(z2, m);
			m = fd_vm_sel(t, z2, m), xv = fd_vm_sel(t, x2, xv), k = t ? 2 : k;
			t = fd_mp_take(z3, m);
			m = fd_vm_sel(t, z3, m), xv = fd_vm_sel(t, x3, xv), k = t ? 3 : k;
			if (yb)
				((uint16_t *)y)[o] = fd_ai_bf16(m);
			else
				((float *)y)[o] = m;
			code[o] = (uint8_t)k;
			if (xb) {
				uint32_t u;
				__builtin_memcpy(&u, &xv, sizeof u);
				((uint16_t *)xm)[o] = (uint16_t)(u >> 16); /* exact: xv is a widened bf16 */
			} else {
				((float *)xm)[o] = xv;
			}
		}
}

/* a bf16 x or y: bf16 contexts only (AVX512-BF16 checked), so 512-bit
 * vectors (as rows_affine_bf16) */
FD_VEC_AVX512_ONLY
static void pool22_fwd_bf16(int xb, int yb, const void *r0, const void *r1, int64_t Wo, int64_t C, const float *a,
			    const float *b, void *y, uint8_t *code, void *xm)
{
	if (xb)
		yb ? pool22_fwd_b(FD_ACT_RELU, 1, 1, r0, r1, Wo, C, a, b, y, code, xm)
		   : pool22_fwd_b(FD_ACT_RELU, 1, 0, r0, r1, Wo, C, a, b, y, code, xm);
	else
		pool22_fwd_b(FD_ACT_RELU, 0, 1, r0, r1, Wo, C, a, b, y, code, xm);
}

FD_VEC_CLONES
static void pool22_fwd_f32(const void *r0, const void *r1, int64_t Wo, int64_t C, const float *a, const float *b,
			   void *y, uint8_t *code, void *xm)
{
	pool22_fwd_b(FD_ACT_RELU, 0, 0, r0, r1, Wo, C, a, b, y, code, xm);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define P22_X86 1
#else
#define P22_X86 0
#endif

#if P22_X86
/* The 2x2 pool kernels for a bf16 x and a bf16 output (y, or dx), ReLU,
 * C a multiple of 16, in AVX-512 intrinsics: the portable loops'
 * arithmetic op for op (no fused multiply-add), 16 channels a vector, so
 * the same bits (t_nn_bnpool compares the op with the separate ops, bit
 * for bit); the roundings by vcvtneps2bf16 (fd_ai_bf16's bits). The loops
 * above, compiled, moved about 18 GB/s where this VM copies 34
 * (doc/nn-kernels.md "The 2x2 pool after ReLU: its own kernels"). */
#define P22_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* 16 bf16 values at p widened (exact) */
P22_TARGET static inline __attribute__((always_inline)) __m512 p22_ld(const uint16_t *p)
{
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const void *)p)), 16));
}

/* pool22_fwd_b(FD_ACT_RELU, 1, 1, ...) */
P22_TARGET static void pool22_fwd_bb_avx512(const uint16_t *r0, const uint16_t *r1, int64_t Wo, int64_t C,
					    const float *a, const float *b, uint16_t *y, uint8_t *code, uint16_t *xm)
{
	const __m512 zero = _mm512_setzero_ps();
	for (int64_t ow = 0; ow < Wo; ow++)
		for (int64_t c = 0; c < C; c += 16) {
			int64_t i = 2 * ow * C + c, o = ow * C + c;
			__m256i b0 = _mm256_loadu_si256((const void *)(r0 + i)), b1 = _mm256_loadu_si256((const void *)(r0 + i + C));
			__m256i b2 = _mm256_loadu_si256((const void *)(r1 + i)), b3 = _mm256_loadu_si256((const void *)(r1 + i + C));
			__m512 va = _mm512_loadu_ps(a + c), vb = _mm512_loadu_ps(b + c);
#define P22_Z(B)                                                                                                   \
	({                                                                                                         \
		__m512 x_ = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(B), 16));                  \
		__m512 z_ = _mm512_add_ps(_mm512_mul_ps(x_, va), vb);                                              \
		_mm512_maskz_mov_ps(_mm512_cmp_ps_mask(z_, zero, _CMP_GT_OQ), z_); /* z > 0 ? z : +0 */            \
	})
			__m512 z0 = P22_Z(b0), z1 = P22_Z(b1), z2 = P22_Z(b2), z3 = P22_Z(b3);
#undef P22_Z
			/* after ReLU no value is NaN: fd_mp_take is v > m; the first
			 * window value is always taken (m starts at -inf) */
			__m512 m = z0;
			__m256i xv = b0;
			__m512i k = _mm512_setzero_si512();
			__mmask16 t = _mm512_cmp_ps_mask(z1, m, _CMP_GT_OQ);
			m = _mm512_mask_mov_ps(m, t, z1), xv = _mm256_mask_blend_epi16(t, xv, b1);
			k = _mm512_mask_mov_epi32(k, t, _mm512_set1_epi32(1));
			t = _mm512_cmp_ps_mask(z2, m, _CMP_GT_OQ);
			m = _mm512_mask_mov_ps(m, t, z2), xv = _mm256_mask_blend_epi16(t, xv, b2);
			k = _mm512_mask_mov_epi32(k, t, _mm512_set1_epi32(2));
			t = _mm512_cmp_ps_mask(z3, m, _CMP_GT_OQ);
			m = _mm512_mask_mov_ps(m, t, z3), xv = _mm256_mask_blend_epi16(t, xv, b3);
			k = _mm512_mask_mov_epi32(k, t, _mm512_set1_epi32(3));
			_mm256_storeu_si256((void *)(y + o), (__m256i)_mm512_cvtneps_pbh(m));
			_mm_storeu_si128((void *)(code + o), _mm512_cvtepi32_epi8(k));
			_mm256_storeu_si256((void *)(xm + o), xv);
		}
}

/* One row's terms of the 16 channels at xr (kl, kh: their shifts in
 * double, 8 each) into the sums s1l, s1h (x - k) and s2l, s2h (x - k)^2.
 * Named variables, not arrays, at the call sites: GCC keeps those in
 * registers (an array of vectors indexed in a loop stayed in memory, a
 * load and a store a row) */
P22_TARGET static inline __attribute__((always_inline)) void shifted16(const uint16_t *xr, __m512d kl, __m512d kh,
									 __m512d *s1l, __m512d *s1h, __m512d *s2l,
									 __m512d *s2h)
{
	__m512 v = p22_ld(xr);
	__m512d lo = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), kl);
	__m512d hi = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_castsi256_ps(_mm512_extracti64x4_epi64(_mm512_castps_si512(v), 1))),
				   kh);
	*s1l = _mm512_add_pd(*s1l, lo), *s1h = _mm512_add_pd(*s1h, hi);
	*s2l = _mm512_add_pd(*s2l, _mm512_mul_pd(lo, lo)), *s2h = _mm512_add_pd(*s2h, _mm512_mul_pd(hi, hi));
}

/* rows_shifted_b(1, ...) for C a multiple of 16: each channel's two sums
 * add its rows' terms one by one in row order, in double, as there (the
 * loop there adds four rows a pass; the order of the additions is the
 * same), so the same bits. 32 channels at a time keep their sums in
 * registers over all n rows, then 16. */
P22_TARGET static void rows_shifted_bb_avx512(const uint16_t *x, int64_t n, int64_t C, const float *k,
					      double *acc1, double *acc2)
{
#define P22_K(j) _mm512_cvtps_pd(_mm256_loadu_ps(k + c0 + 8 * (j)))
	int64_t c0 = 0;
	for (; c0 + 32 <= C; c0 += 32) {
		__m512d a0 = _mm512_loadu_pd(acc1 + c0), a1 = _mm512_loadu_pd(acc1 + c0 + 8);
		__m512d a2 = _mm512_loadu_pd(acc1 + c0 + 16), a3 = _mm512_loadu_pd(acc1 + c0 + 24);
		__m512d q0 = _mm512_loadu_pd(acc2 + c0), q1 = _mm512_loadu_pd(acc2 + c0 + 8);
		__m512d q2 = _mm512_loadu_pd(acc2 + c0 + 16), q3 = _mm512_loadu_pd(acc2 + c0 + 24);
		__m512d k0 = P22_K(0), k1 = P22_K(1), k2 = P22_K(2), k3 = P22_K(3);
		for (int64_t m = 0; m < n; m++) {
			const uint16_t *xr = x + m * C + c0;
			shifted16(xr, k0, k1, &a0, &a1, &q0, &q1);
			shifted16(xr + 16, k2, k3, &a2, &a3, &q2, &q3);
		}
		_mm512_storeu_pd(acc1 + c0, a0), _mm512_storeu_pd(acc1 + c0 + 8, a1);
		_mm512_storeu_pd(acc1 + c0 + 16, a2), _mm512_storeu_pd(acc1 + c0 + 24, a3);
		_mm512_storeu_pd(acc2 + c0, q0), _mm512_storeu_pd(acc2 + c0 + 8, q1);
		_mm512_storeu_pd(acc2 + c0 + 16, q2), _mm512_storeu_pd(acc2 + c0 + 24, q3);
	}
	for (; c0 < C; c0 += 16) {
		__m512d a0 = _mm512_loadu_pd(acc1 + c0), a1 = _mm512_loadu_pd(acc1 + c0 + 8);
		__m512d q0 = _mm512_loadu_pd(acc2 + c0), q1 = _mm512_loadu_pd(acc2 + c0 + 8);
		__m512d k0 = P22_K(0), k1 = P22_K(1);
		for (int64_t m = 0; m < n; m++)
			shifted16(x + m * C + c0, k0, k1, &a0, &a1, &q0, &q1);
		_mm512_storeu_pd(acc1 + c0, a0), _mm512_storeu_pd(acc1 + c0 + 8, a1);
		_mm512_storeu_pd(acc2 + c0, q0), _mm512_storeu_pd(acc2 + c0 + 8, q1);
	}
#undef P22_K
}

/* Largest pooled row width pool22_sums_pair_bb takes (its stack buffer:
 * P22_SUMS_MAXWO x 16 x 2 doubles, 32 KiB) */
#define P22_SUMS_MAXWO 128

/* Both input rows' pool22_sums_b(FD_ACT_RELU, 1, dh, ...) of one pooled row
 * in one walk, 16 channels at a time with the sums in registers: the
 * terms of maxima in the first input row are added as the walk meets
 * them, the second row's kept and added after, in column order. Where a
 * position is not its window's maximum the loops add +0 and +-0 (no-ops on
 * any sum), so the nonzero terms go in in the same order: the same bits. */
P22_TARGET static void pool22_sums_pair_bb_avx512(const float *g, const uint8_t *code, const uint16_t *xm,
						  int64_t Wo, int64_t C, const double *mean, const float *za,
						  const float *zb, double *acc_g, double *acc_gx)
{
	double bg[P22_SUMS_MAXWO * 16], bgx[P22_SUMS_MAXWO * 16];
	const __m512 zero = _mm512_setzero_ps();
	for (int64_t c = 0; c < C; c += 16) {
		__m512d sg0 = _mm512_loadu_pd(acc_g + c), sg1 = _mm512_loadu_pd(acc_g + c + 8);
		__m512d sx0 = _mm512_loadu_pd(acc_gx + c), sx1 = _mm512_loadu_pd(acc_gx + c + 8);
		__m512d m0 = _mm512_loadu_pd(mean + c), m1 = _mm512_loadu_pd(mean + c + 8);
		__m512 va = _mm512_loadu_ps(za + c), vb = _mm512_loadu_ps(zb + c);
		for (int64_t ow = 0; ow < Wo; ow++) {
			int64_t o = ow * C + c;
			__m512 xv = p22_ld(xm + o);
			__m512 g0 = _mm512_add_ps(zero, _mm512_loadu_ps(g + o)); /* 0 + g */
			__m512i cd = _mm512_cvtepu8_epi32(_mm_loadu_si128((const void *)(code + o)));
			__m512 z = _mm512_add_ps(_mm512_mul_ps(xv, va), vb);
			__m512 d = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(z, zero, _CMP_GT_OQ), g0); /* z > 0 ? g : +0 */
			__mmask16 top = _mm512_cmplt_epi32_mask(cd, _mm512_set1_epi32(2)); /* code >> 1 == 0 */
			__m512 da = _mm512_maskz_mov_ps(top, d), db = _mm512_maskz_mov_ps((__mmask16)~top, d);
			__m512d xl = _mm512_sub_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(xv)), m0);
			__m512d xh = _mm512_sub_pd(
				_mm512_cvtps_pd(_mm256_castsi256_ps(_mm512_extracti64x4_epi64(_mm512_castps_si512(xv), 1))), m1);
			__m512d al = _mm512_cvtps_pd(_mm512_castps512_ps256(da));
			__m512d ah = _mm512_cvtps_pd(_mm256_castsi256_ps(_mm512_extracti64x4_epi64(_mm512_castps_si512(da), 1)));
			__m512d bl = _mm512_cvtps_pd(_mm512_castps512_ps256(db));
			__m512d bh = _mm512_cvtps_pd(_mm256_castsi256_ps(_mm512_extracti64x4_epi64(_mm512_castps_si512(db), 1)));
			sg0 = _mm512_add_pd(sg0, al), sg1 = _mm512_add_pd(sg1, ah);
			sx0 = _mm512_add_pd(sx0, _mm512_mul_pd(al, xl)), sx1 = _mm512_add_pd(sx1, _mm512_mul_pd(ah, xh));
			_mm512_storeu_pd(bg + 16 * ow, bl), _mm512_storeu_pd(bg + 16 * ow + 8, bh);
			_mm512_storeu_pd(bgx + 16 * ow, _mm512_mul_pd(bl, xl));
			_mm512_storeu_pd(bgx + 16 * ow + 8, _mm512_mul_pd(bh, xh));
		}
		for (int64_t ow = 0; ow < Wo; ow++) {
			sg0 = _mm512_add_pd(sg0, _mm512_loadu_pd(bg + 16 * ow));
			sg1 = _mm512_add_pd(sg1, _mm512_loadu_pd(bg + 16 * ow + 8));
			sx0 = _mm512_add_pd(sx0, _mm512_loadu_pd(bgx + 16 * ow));
			sx1 = _mm512_add_pd(sx1, _mm512_loadu_pd(bgx + 16 * ow + 8));
		}
		_mm512_storeu_pd(acc_g + c, sg0), _mm512_storeu_pd(acc_g + c + 8, sg1);
		_mm512_storeu_pd(acc_gx + c, sx0), _mm512_storeu_pd(acc_gx + c + 8, sx1);
	}
}

/* pool22_dx_b(FD_ACT_RELU, 1, 0, dh, ...): dx in bf16 */
P22_TARGET static void pool22_dx_bb_avx512(int dh, const float *g, const uint8_t *code, const uint16_t *x,
					   uint16_t *dx, int64_t Wo, int64_t C, const float *k, const float *cm,
					   const float *cx, const float *mean, const float *za, const float *zb)
{
	const __m512 zero = _mm512_setzero_ps();
	for (int64_t ow = 0; ow < Wo; ow++)
		for (int64_t c = 0; c < C; c += 16) {
			int64_t o = ow * C + c;
			__m512 g0 = _mm512_add_ps(zero, _mm512_loadu_ps(g + o)); /* 0 + g: -0 made +0 */
			__m512i cd = _mm512_cvtepu8_epi32(_mm_loadu_si128((const void *)(code + o)));
			__m512 vk = _mm512_loadu_ps(k + c), vcm = _mm512_loadu_ps(cm + c), vcx = _mm512_loadu_ps(cx + c);
			__m512 vmean = _mm512_loadu_ps(mean + c), va = _mm512_loadu_ps(za + c), vb = _mm512_loadu_ps(zb + c);
			for (int j = 0; j < 2; j++) {
				int64_t i = (2 * ow + j) * C + c;
				__m512 gg = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(cd, _mm512_set1_epi32(2 * dh + j)), g0);
				__m512 xv = p22_ld(x + i);
				__m512 z = _mm512_add_ps(_mm512_mul_ps(xv, va), vb);
				__m512 d = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(z, zero, _CMP_GT_OQ), gg); /* z > 0 ? gg : +0 */
				__m512 v = _mm512_sub_ps(_mm512_sub_ps(d, vcm), _mm512_mul_ps(_mm512_sub_ps(xv, vmean), vcx));
				v = _mm512_mul_ps(vk, v);
				_mm256_storeu_si256((void *)(dx + i), (__m256i)_mm512_cvtneps_pbh(v));
			}
		}
}
#endif

/* Whether the intrinsics above run here (a bf16 context has checked
 * AVX512-BF16; asked again: reads of the CPU model libgcc filled at
 * start-up, safe from any thread) */
static int p22_fast(int64_t C)
{
#if P22_X86
	return C % 16 == 0 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
#else
	(void)C;
	return 0;
#endif
}

static void rows_shifted_bb(const uint16_t *x, int64_t n, int64_t C, const float *k, double *acc1, double *acc2)
{
#if P22_X86
	rows_shifted_bb_avx512(x, n, C, k, acc1, acc2);
#else
	rows_shifted(1, x, n, C, k, acc1, acc2);
#endif
}

static void pool22_fwd(int xb, int yb, const void *r0, const void *r1, int64_t Wo, int64_t C, const float *a,
		       const float *b, void *y, uint8_t *code, void *xm)
{
#if P22_X86
	if (xb && yb && p22_fast(C)) {
		pool22_fwd_bb_avx512(r0, r1, Wo, C, a, b, y, code, xm);
		return;
	}
#endif
	if (xb || yb)
		pool22_fwd_bf16(xb, yb, r0, r1, Wo, C, a, b, y, code, xm);
	else
		pool22_fwd_f32(r0, r1, Wo, C, a, b, y, code, xm);
}

/* The sums' terms of one input row of a pair (dh: its row in the windows)
 * from the pooled row: g, code, xm [Wo, C]. The term of a position that is
 * not its window's maximum is DZ(0) = +0, as rows_dysums gets from the
 * gather; only the maximum's is not. */
FD_AI_BODY void pool22_sums_b(const int act, const int xb, const int dh, const float *restrict g,
			      const uint8_t *restrict code, const void *restrict xm, int64_t Wo, int64_t C,
			      const double *restrict mean, const float *restrict za, const float *restrict zb,
			      double *restrict acc_g, double *restrict acc_gx)
{
	for (int64_t ow = 0; ow < Wo; ow++)
		for (int64_t c = 0; c < C; c++) {
			int64_t o = ow * C + c;
			float xv = ldx(xm, xb, o), gg = fd_vm_sel((code[o] >> 1) == dh, 0.0f + g[o], 0.0f);
			float d = DZ(act, xv, za[c], zb[c], gg);
			acc_g[c] = acc_g[c] + d;
			acc_gx[c] = acc_gx[c] + d * (xv - mean[c]);
		}
}

FD_VEC_AVX512_ONLY
static void pool22_sums_bf16(int dh, const float *g, const uint8_t *code, const void *xm, int64_t Wo, int64_t C,
			     const double *mean, const float *za, const float *zb, double *acc_g, double *acc_gx)
{
	dh ? pool22_sums_b(FD_ACT_RELU, 1, 1, g, code, xm, Wo, C, mean, za, zb, acc_g, acc_gx)
	   : pool22_sums_b(FD_ACT_RELU, 1, 0, g, code, xm, Wo, C, mean, za, zb, acc_g, acc_gx);
}

FD_VEC_CLONES
static void pool22_sums_f32(int dh, const float *g, const uint8_t *code, const void *xm, int64_t Wo, int64_t C,
			    const double *mean, const float *za, const float *zb, double *acc_g, double *acc_gx)
{
	dh ? pool22_sums_b(FD_ACT_RELU, 0, 1, g, code, xm, Wo, C, mean, za, zb, acc_g, acc_gx)
	   : pool22_sums_b(FD_ACT_RELU, 0, 0, g, code, xm, Wo, C, mean, za, zb, acc_g, acc_gx);
}

static void pool22_sums(int xb, int dh, const float *g, const uint8_t *code, const void *xm, int64_t Wo,
			int64_t C, const double *mean, const float *za, const float *zb, double *acc_g,
			double *acc_gx)
{
	if (xb)
		pool22_sums_bf16(dh, g, code, xm, Wo, C, mean, za, zb, acc_g, acc_gx);
	else
		pool22_sums_f32(dh, g, code, xm, Wo, C, mean, za, zb, acc_g, acc_gx);
}

/* dx of one input row (dh as above; x, dx [W, C]) from the pooled row g,
 * code: the gathered gradient 0 + g at the window's maximum, 0 elsewhere,
 * into rows_dx_train's (and rows_dx_train_bf16's) expression. mode 0: dx
 * bf16 (fd_ai_bf16), 1: written, 2: added. */
FD_AI_BODY void pool22_dx_b(const int act, const int xb, const int mode, const int dh, const float *restrict g,
			    const uint8_t *restrict code, const void *restrict x, void *restrict dx, int64_t Wo,
			    int64_t C, const float *restrict k, const float *restrict cm, const float *restrict cx,
			    const float *restrict mean, const float *restrict za, const float *restrict zb)
{
	for (int64_t ow = 0; ow < Wo; ow++)
		for (int j = 0; j < 2; j++)
			for (int64_t c = 0; c < C; c++) {
				int64_t o = ow * C + c, i = (2 * ow + j) * C + c;
				float gg = fd_vm_sel(code[o] == 2 * dh + j, 0.0f + g[o], 0.0f), xv = ldx(x, xb, i);
				float v = k[c] * (DZ(act, xv, za[c], zb[c], gg) - cm[c] - (xv - mean[c]) * cx[c]);
				if (mode == 0)
					((uint16_t *)dx)[i] = fd_ai_bf16(v);
				else if (mode == 1)
					((float *)dx)[i] = v;
				else
					((float *)dx)[i] += v;
			}
}

#define P22DX(XB, MODE)                                                                                       \
	(dh ? pool22_dx_b(FD_ACT_RELU, XB, MODE, 1, g, code, x, dx, Wo, C, k, cm, cx, mean, za, zb)       \
	    : pool22_dx_b(FD_ACT_RELU, XB, MODE, 0, g, code, x, dx, Wo, C, k, cm, cx, mean, za, zb))
/* a bf16 x or dx: bf16 contexts only */
FD_VEC_AVX512_ONLY
static void pool22_dx_bf16(int xb, int mode, int dh, const float *g, const uint8_t *code, const void *x, void *dx,
			   int64_t Wo, int64_t C, const float *k, const float *cm, const float *cx, const float *mean,
			   const float *za, const float *zb)
{
	if (xb)
		mode == 0 ? P22DX(1, 0) : mode == 1 ? P22DX(1, 1) : P22DX(1, 2);
	else
		P22DX(0, 0);
}

FD_VEC_CLONES
static void pool22_dx_f32(int mode, int dh, const float *g, const uint8_t *code, const void *x, void *dx,
			  int64_t Wo, int64_t C, const float *k, const float *cm, const float *cx, const float *mean,
			  const float *za, const float *zb)
{
	mode == 1 ? P22DX(0, 1) : P22DX(0, 2);
}
#undef P22DX

static void pool22_dx(int xb, int mode, int dh, const float *g, const uint8_t *code, const void *x, void *dx,
		      int64_t Wo, int64_t C, const float *k, const float *cm, const float *cx, const float *mean,
		      const float *za, const float *zb)
{
#if P22_X86
	if (xb && mode == 0 && p22_fast(C)) {
		pool22_dx_bb_avx512(dh, g, code, x, dx, Wo, C, k, cm, cx, mean, za, zb);
		return;
	}
#endif
	if (xb || mode == 0)
		pool22_dx_bf16(xb, mode, dh, g, code, x, dx, Wo, C, k, cm, cx, mean, za, zb);
	else
		pool22_dx_f32(mode, dh, g, code, x, dx, Wo, C, k, cm, cx, mean, za, zb);
}

static void rows_dy_sums(const struct rows *r, int act, const struct dysrc *src, const void *x, float *st,
			 const double *mean, const float *za, const float *zb, double *part, double *sdy,
			 double *sdyx)
{
	int64_t C = r->C;
	#pragma omp parallel for num_threads(r->threads) schedule(static) if (r->nch > 1)
	for (int64_t i = 0; i < r->nch; i++) {
		int64_t m0, n = chunk(r, i, &m0), bl = dy_block(src, n);
		float buf[GBUF];
		double *ag = part + 2 * i * C, *agx = ag + C;
		for (int64_t c = 0; c < 2 * C; c++)
			ag[c] = 0;
		if (src->code) { /* pool22: the chunk's row pairs are its pooled rows */
			int64_t W2 = 2 * (int64_t)src->ps->W, Wo = src->ps->W / 2;
#if P22_X86
			if (r->xb && act == FD_ACT_RELU && Wo <= P22_SUMS_MAXWO && p22_fast(C)) {
				for (int64_t pr = m0 / W2; pr < (m0 + n) / W2; pr++)
					pool22_sums_pair_bb_avx512(src->dy + pr * Wo * C, src->code + pr * Wo * C,
								   (const uint16_t *)src->xm + pr * Wo * C, Wo, C, mean,
								   za, zb, ag, agx);
				continue;
			}
#endif
			for (int64_t pr = m0 / W2; pr < (m0 + n) / W2; pr++)
				for (int dh = 0; dh < 2; dh++)
					pool22_sums(r->xb, dh, src->dy + pr * Wo * C, src->code + pr * Wo * C,
						    XMAT(src->xm, r->xb, pr * Wo * C), Wo, C, mean, za, zb, ag, agx);
			continue;
		}
		/* block after block into the same sums: the order of rows_dysums
		 * over the whole chunk */
		for (int64_t j = m0; j < m0 + n; j += bl) {
			int64_t nb = j + bl <= m0 + n ? bl : m0 + n - j;
			rows_dysums(act, dy_rows(src, C, buf, j, nb), r->xb, XAT(x, r->xb, j * C), st ? st + j * C : NULL,
				    nb, C, mean,
				    za, zb, ag, agx);
		}
	}
	for (int64_t c = 0; c < C; c++)
		sdy[c] = sdyx[c] = 0;
	for (int64_t i = 0; i < r->nch; i++)
		for (int64_t c = 0; c < C; c++) {
			sdy[c] += part[2 * i * C + c];
			sdyx[c] += part[2 * i * C + C + c];
		}
}

/* Arena scratch of the rows path: per-chunk partial sums (2 per channel) and
 * 8 per-channel vectors of doubles (floats use the same slots), the top of
 * the arena from *mk on; the kernel gives it back before it returns
 * (rows_scratch_done), so a step's BNs do not pile their scratch up in the
 * arena (ResNet-50 at batch 32: 16 MiB in the forward, as much in the
 * backward). */
static double *rows_scratch(struct fd_ctx *c, const struct rows *r, struct fd_arena_mark *mk)
{
	*mk = fd_arena_mark(&c->arena);
	return (double *)fd_ctx_alloc(c, FD_DEV_CPU, 2 * (2 * r->nch * r->C + 8 * r->C));
}

static void rows_scratch_done(struct fd_ctx *c, const struct fd_arena_mark *mk)
{
	fd_arena_release(&c->arena, mk, NULL, 0);
}

FD_AI_BODY void rows_affine_bf16_b(const int act, const int xb, const void *x, uint16_t *yb, int64_t n,
				   int64_t C, const float *a, const float *b)
{
	for (int64_t m = 0; m < n; m++)
		for (int64_t c = 0; c < C; c++)
			yb[m * C + c] = fd_ai_bf16(fd_ai_fwd(act, ldx(x, xb, m * C + c) * a[c] + b[c]));
}

/* rows_affine with y rounded to bf16 (fd_ai_bf16: fd_dnnl_to_bf16's bits)
 * into yb: y's floats never leave the registers. Only called in bf16
 * contexts (AVX512-BF16 checked), hence the target and its 512-bit vectors
 * (as act.c's GELU; doc/nn-kernels.md "bf16 hand-off"). */
FD_VEC_AVX512_ONLY
static void rows_affine_bf16(int act, int xb, const void *x, uint16_t *yb, int64_t n, int64_t C, const float *a,
			     const float *b)
{
#define B(K) (xb ? rows_affine_bf16_b(K, 1, x, yb, n, C, a, b) : rows_affine_bf16_b(K, 0, x, yb, n, C, a, b))
	ACT_CASES(act, B)
#undef B
}

/* The statistics pass of a train-mode forward: the batch statistics, the
 * running ones updated, save_mean, save_invstd, za, zb (when not NULL)
 * written, and the float factors of z = x a + b in *a, *b: arena scratch
 * from *mk on (rows_scratch), which the caller gives back. */
static int rows_train_factors(struct fd_ctx *ctx, const struct rows *r, const void *x, const float *weight,
			      const float *bias, float *running_mean, float *running_var, double momentum,
			      double eps, float *save_mean, float *save_invstd, float *za, float *zb,
			      struct fd_arena_mark *mk, float **fa, float **fb)
{
	int64_t C = r->C;
	double M = (double)r->M, *part = rows_scratch(ctx, r, mk);
	if (!part)
		return -1;
	double *s1 = part + 2 * r->nch * C, *s2 = s1 + C;
	float *a = (float *)(s2 + C), *b = (float *)(s2 + 2 * C), *k = (float *)(s2 + 3 * C);
	/* One pass: sums of d = x - k and d^2 about k = the channel's first
	 * value, var = E[d^2] - E[d]^2. With k a value of the data, (mean - k)^2
	 * <= M * var: the cancellation magnifies double's rounding error by at
	 * most M + 1 (by a few in practice, k lying within a few standard
	 * deviations of the mean), so the variance stays as float-exact as the
	 * two-pass sum about the mean, large means included. */
	for (int64_t c = 0; c < C; c++)
		k[c] = ldx(x, r->xb, c);
	rows_stat(r, x, k, part, s1, s2);
	for (int64_t c = 0; c < C; c++) {
		double d = s1[c] / M, mean = k[c] + d, v = s2[c] / M - d * d;
		v = v < 0 ? 0 : v; /* rounding; a NaN stays */
		double invstd = 1.0 / sqrt(v + eps);
		a[c] = (float)(weight[c] * invstd), b[c] = (float)(bias[c] - mean * weight[c] * invstd);
		running_mean[c] = (float)((1 - momentum) * running_mean[c] + momentum * mean);
		running_var[c] = (float)((1 - momentum) * running_var[c] + momentum * v * M / (M - 1));
		save_mean[c] = (float)mean;
		save_invstd[c] = (float)invstd;
		if (za)
			za[c] = a[c], zb[c] = b[c];
	}
	*fa = a, *fb = b;
	return 0;
}

/* y = act(bn(x)) (+ id before act when id; id in bf16 when r->idb), or yb
 * (bf16, y NULL) when not NULL */
static int rows_fwd_train(struct fd_ctx *ctx, const struct rows *r, int act, const void *x, const float *weight,
			  const float *bias, float *running_mean, float *running_var, double momentum,
			  double eps, float *y, uint16_t *yb, float *save_mean, float *save_invstd, float *za,
			  float *zb, const void *id)
{
	int64_t C = r->C;
	struct fd_arena_mark mk;
	float *a, *b;
	if (rows_train_factors(ctx, r, x, weight, bias, running_mean, running_var, momentum, eps, save_mean,
			       save_invstd, za, zb, &mk, &a, &b) < 0)
		return -1;
	#pragma omp parallel for num_threads(r->threads) schedule(static) if (r->nch > 1)
	for (int64_t i = 0; i < r->nch; i++) {
		int64_t m0, n = chunk(r, i, &m0);
		if (id && (r->idb || yb))
			rows_affine_add_h(act, r->xb, r->idb, yb != NULL, XAT(x, r->xb, m0 * C), XAT(id, r->idb, m0 * C),
					  yb ? (void *)(yb + m0 * C) : (void *)(y + m0 * C), n, C, a, b);
		else if (id)
			rows_affine_add(act, r->xb, XAT(x, r->xb, m0 * C), (const float *)id + m0 * C, y + m0 * C, n, C,
					a, b);
		else if (yb)
			rows_affine_bf16(act, r->xb, XAT(x, r->xb, m0 * C), yb + m0 * C, n, C, a, b);
		else
			rows_affine(act, r->xb, XAT(x, r->xb, m0 * C), y + m0 * C, n, C, a, b);
	}
	rows_scratch_done(ctx, &mk);
	return 0;
}

/* n floats rounded to bf16 (fd_ai_bf16); bf16 contexts only, as
 * rows_affine_bf16 */
FD_VEC_AVX512_ONLY
static void row_bf16(const float *y, uint16_t *yb, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		yb[i] = fd_ai_bf16(y[i]);
}

/* maxpool(act(bn(x))) with pool shape ps (channels last; r's rows are
 * ps's N*H*W positions): the statistics as rows_fwd_train, then per output
 * row of a sample the input rows its windows read go through rows_affine
 * into a per-thread block and fd_maxpool2d_nhwc_orow pools them into y (or
 * yb, rounded) and idx: act(bn(x)) is never stored whole. With code (and
 * xm; idx NULL) the pool22 kernel instead, straight from x. */
static int rows_fwd_pool(struct fd_ctx *ctx, const struct rows *r, int act, const struct fd_pool2d_shape *ps,
			 const void *x, const float *weight, const float *bias, float *running_mean,
			 float *running_var, double momentum, double eps, float *y, uint16_t *yb, int32_t *idx,
			 uint8_t *code, void *xm, float *save_mean, float *save_invstd, float *za, float *zb)
{
	int64_t C = r->C, WC = (int64_t)ps->W * C;
	int Ho, Wo, T = r->threads > 0 ? r->threads : 1, kh = ps->kh < ps->H ? ps->kh : ps->H;
	fd_pool2d_out_size(ps, &Ho, &Wo, NULL);
	struct fd_arena_mark mk;
	float *a, *b;
	if (rows_train_factors(ctx, r, x, weight, bias, running_mean, running_var, momentum, eps, save_mean,
			       save_invstd, za, zb, &mk, &a, &b) < 0)
		return -1;
	if (code) {
		int64_t ntask = (int64_t)ps->N * Ho, WoC = (int64_t)Wo * C;
		#pragma omp parallel for num_threads(T) schedule(static)
		for (int64_t q = 0; q < ntask; q++) {
			const void *r0 = XAT(x, r->xb, 2 * q * WC); /* q = n Ho + oh: rows 2q, 2q + 1 (H = 2 Ho) */
			pool22_fwd(r->xb, yb != NULL, r0, XAT(x, r->xb, (2 * q + 1) * WC), Wo, C, a, b,
				   yb ? (void *)(yb + q * WoC) : (void *)(y + q * WoC), code + q * WoC,
				   (void *)XMAT(xm, r->xb, q * WoC));
		}
		rows_scratch_done(ctx, &mk);
		return 0;
	}
	int64_t per = kh * WC + (yb ? (int64_t)Wo * C : 0), ntask = (int64_t)ps->N * Ho;
	float *buf = fd_ctx_alloc(ctx, FD_DEV_CPU, T * per);
	if (!buf) {
		rows_scratch_done(ctx, &mk);
		return -1;
	}
	#pragma omp parallel for num_threads(T) schedule(static)
	for (int t = 0; t < T; t++) {
		float *rows = buf + t * per, *yrow = rows + kh * WC;
		for (int64_t q = t; q < ntask; q += T) {
			int n = (int)(q / Ho), oh = (int)(q % Ho);
			int h0 = oh * ps->sh - ps->ph, h1 = h0 + ps->kh < ps->H ? h0 + ps->kh : ps->H;
			h0 = h0 > 0 ? h0 : 0;
			for (int ih = h0; ih < h1; ih++)
				rows_affine(act, r->xb, XAT(x, r->xb, ((int64_t)n * ps->H + ih) * WC),
					    rows + (ih - h0) * WC, ps->W, C, a, b);
			int64_t o = q * Wo * C;
			if (yb) {
				fd_maxpool2d_nhwc_orow(ps, rows, h0, oh, yrow, idx + o);
				row_bf16(yrow, yb + o, (int64_t)Wo * C);
			} else {
				fd_maxpool2d_nhwc_orow(ps, rows, h0, oh, y + o, idx + o);
			}
		}
	}
	rows_scratch_done(ctx, &mk);
	return 0;
}

static int rows_fwd_eval(struct fd_ctx *ctx, const struct rows *r, const float *x, const float *weight,
			 const float *bias, const float *running_mean, const float *running_var, double eps,
			 float *y)
{
	int64_t C = r->C;
	float *a = fd_ctx_alloc(ctx, FD_DEV_CPU, 2 * C), *b = a ? a + C : NULL;
	if (!a)
		return -1;
	for (int64_t c = 0; c < C; c++) {
		double invstd = 1.0 / sqrt((double)running_var[c] + eps);
		a[c] = (float)(weight[c] * invstd);
		b[c] = (float)(bias[c] - running_mean[c] * weight[c] * invstd);
	}
	#pragma omp parallel for num_threads(r->threads) schedule(static) if (r->nch > 1)
	for (int64_t i = 0; i < r->nch; i++) {
		int64_t m0, n = chunk(r, i, &m0);
		rows_affine(NOACT, 0, x + m0 * C, y + m0 * C, n, C, a, b);
	}
	return 0;
}

/* train (stats = batch mean and invstd; act and the forward's za, zb as in
 * batchnorm2d_bwd_train) or eval (running mean and var; act NOACT); ps,
 * idx: dy is the gradient of a max pool after the op (struct dysrc), else
 * NULL */
static int rows_bwd(struct fd_ctx *ctx, const struct rows *r, int train, int act, const float *dy,
		    const struct fd_pool2d_shape *ps, const int32_t *idx, const uint8_t *code, const void *xm,
		    const void *x, const float *weight,
		    const float *mean_in, const float *stat, const float *za, const float *zb, double eps, float *dx,
		    uint16_t *dxb, float *dweight, float *dbias, int wr)
{
	int64_t C = r->C;
	struct fd_arena_mark mk;
	double M = (double)r->M, *part = rows_scratch(ctx, r, &mk);
	if (!part)
		return -1;
	struct dysrc src = {dy, ps, idx, GBUF / C, code, xm};
	if (ps && src.gb < 1) {
		rows_scratch_done(ctx, &mk);
		fd_fail(ctx, "batchnorm2d: a pooled backward takes at most %d channels", GBUF);
		return -1;
	}
	double *mean = part + 2 * r->nch * C, *invstd = mean + C, *sdy = invstd + C, *sdyx = sdy + C;
	float *k = (float *)(sdyx + C), *cm = (float *)(sdyx + 2 * C), *cx = (float *)(sdyx + 3 * C);
	float *fmean = (float *)(sdyx + 4 * C);
	/* dz stashed in dx: SiLU's (an exp and a division a value), and any
	 * pooled one's (dy gathered from the pool's windows a value) */
	float *st = train && dx && !code && (STASH(act, wr) || (ps && wr)) ? dx : NULL;
	for (int64_t c = 0; c < C; c++) {
		mean[c] = mean_in[c];
		invstd[c] = train ? stat[c] : 1.0 / sqrt((double)stat[c] + eps);
	}
	if (train || dweight || dbias) {
		rows_dy_sums(r, act, &src, x, st, mean, za, zb, part, sdy, sdyx);
		for (int64_t c = 0; c < C; c++) {
			if (dweight)
				dweight[c] += (float)(sdyx[c] * invstd[c]);
			if (dbias)
				dbias[c] += (float)sdy[c];
		}
	}
	if (!dx && !dxb) {
		rows_scratch_done(ctx, &mk);
		return 0;
	}
	for (int64_t c = 0; c < C; c++) {
		k[c] = (float)(weight[c] * invstd[c]);
		if (train) {
			cm[c] = (float)(sdy[c] / M), cx[c] = (float)(invstd[c] * invstd[c] * sdyx[c] / M);
			fmean[c] = (float)mean[c];
		}
	}
	#pragma omp parallel for num_threads(r->threads) schedule(static) if (r->nch > 1)
	for (int64_t i = 0; i < r->nch; i++) {
		int64_t m0, n = chunk(r, i, &m0), bl = st ? n : dy_block(&src, n);
		float buf[GBUF];
		if (code) { /* pool22 (train): the chunk's whole input rows */
			int64_t W = ps->W, Wo = W / 2;
			for (int64_t row = m0 / W; row < (m0 + n) / W; row++) {
				int64_t po = row / 2 * Wo * C;
				void *d = dxb ? (void *)(dxb + row * W * C) : (void *)(dx + row * W * C);
				pool22_dx(r->xb, dxb ? 0 : wr ? 1 : 2, (int)(row % 2), dy + po, code + po,
					  XAT(x, r->xb, row * W * C), d, Wo, C, k, cm, cx, fmean, za, zb);
			}
			continue;
		}
		for (int64_t j = m0; j < m0 + n; j += bl) {
			int64_t nb = j + bl <= m0 + n ? bl : m0 + n - j;
			if (st)
				rows_dx_stashed(r->xb, XAT(x, r->xb, j * C), dx + j * C, nb, C, k, cm, cx, fmean);
			else if (dxb) /* train, fresh (bwd_train_cpu) */
				rows_dx_train_bf16(act, dy_rows(&src, C, buf, j, nb), r->xb, XAT(x, r->xb, j * C),
						   dxb + j * C, nb, C,
						   k, cm, cx, fmean, za, zb);
			else if (train)
				rows_dx_train(act, dy_rows(&src, C, buf, j, nb), r->xb, XAT(x, r->xb, j * C), dx + j * C, nb,
					      C, k, cm,
					      cx, fmean, za, zb, wr);
			else
				rows_axpy(dy_rows(&src, C, buf, j, nb), dx + j * C, nb, C, k, wr);
		}
	}
	rows_scratch_done(ctx, &mk);
	return 0;
}

/* ---------- CPU kernels (table entries batchnorm2d_fwd_train, _bwd_train, _fwd_eval, _bwd_eval) ---------- */

static int wants(const struct fd_tensor *t)
{
	return t && (t->flags & FD_T_REQUIRES_GRAD);
}

static int ctx_err(struct fd_ctx *c, const struct fd_err *e)
{
	fd_fail(c, "%s", e->msg);
	return -1;
}

static int int_sizes(struct fd_ctx *c, const char *op, int64_t a, int64_t b, int64_t d)
{
	if (a > INT32_MAX || b > INT32_MAX || d > INT32_MAX) {
		fd_fail(c, "%s: sizes beyond 2^31 are not supported", op);
		return -1;
	}
	return 0;
}

/* Whether act is one the fused kernels take (NOACT included). */
static int fusable(int act)
{
	return act == NOACT || act == FD_ACT_RELU || act == FD_ACT_SILU || act == FD_ACT_HARDSWISH;
}

/* Whether fwd_train_cpu runs the rows kernels (channels last) for these
 * sizes: the only ones that write a bf16 y. */
static int rows_path(int64_t N, int64_t C, int64_t HW)
{
	return HW == 1 && N >= 2 && C > 1;
}

/* yb: y in bf16 instead (y NULL; only where rows_path) */
static int fwd_train_cpu(struct fd_ctx *c, int act, int64_t N, int64_t C, int64_t HW, const void *x, int xb,
			 const float *w, const float *b, float *rmean, float *rvar, double momentum, double eps,
			 float *y, uint16_t *yb, float *mean, float *invstd, float *za, float *zb)
{
	struct fd_err e = {{0}};
	if (!fusable(act)) {
		fd_fail(c, "batchnorm2d: activation %d cannot be fused", act);
		return -1;
	}
	if ((yb || xb) && !rows_path(N, C, HW)) {
		fd_fail(c, "batchnorm2d: a bf16 input or output needs channels-last rows");
		return -1;
	}
	if (rows_path(N, C, HW)) {
		struct rows r = rows_of(c->threads, N, C);
		r.xb = xb;
		return rows_fwd_train(c, &r, act, x, w, b, rmean, rvar, momentum, eps, y, yb, mean, invstd, za, zb,
				      NULL);
	}
	if (int_sizes(c, "batchnorm2d", N, C, HW) < 0)
		return -1;
	return batchnorm2d_fwd_train(c->threads, act, (int)N, (int)C, (int)HW, (const float *)x, w, b, rmean, rvar, momentum,
					    eps, y, mean, invstd, za, zb, &e) < 0 ? ctx_err(c, &e) : 0;
}

int fd_batchnorm2d_fwd_train_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
			const float *w, const float *b, float *rmean, float *rvar, double momentum,
			double eps, float *y, float *mean, float *invstd)
{
	return fwd_train_cpu(c, NOACT, N, C, HW, x, 0, w, b, rmean, rvar, momentum, eps, y, NULL, mean, invstd, NULL,
			     NULL);
}

int fd_batchnorm2d_act_fwd_train_cpu(struct fd_ctx *c, int act, int64_t N, int64_t C, int64_t HW,
				     const float *x, const float *w, const float *b, float *rmean,
				     float *rvar, double momentum, double eps, float *y, float *mean,
				     float *invstd, float *za, float *zb)
{
	return fwd_train_cpu(c, act < 0 ? NOACT : act, N, C, HW, x, 0, w, b, rmean, rvar, momentum, eps, y, NULL, mean,
			     invstd, za, zb);
}

/* Backward on the CPU; wr: dx is a fresh gradient, overwritten. za, zb:
 * the forward's factors (read unless act is NOACT). */
static int bwd_train_cpu(struct fd_ctx *c, int act, int64_t N, int64_t C, int64_t HW, const void *x, int xb,
			 const float *w, const float *mean, const float *invstd, const float *za, const float *zb,
			 const float *dy, const struct fd_pool2d_shape *ps, const int32_t *idx, const uint8_t *code,
			 const void *xm, float *dx, uint16_t *dxb, float *dw, float *db, int wr)
{
	if (!fusable(act)) {
		fd_fail(c, "batchnorm2d: activation %d cannot be fused", act);
		return -1;
	}
	if ((ps || xb) && !rows_path(N, C, HW)) {
		fd_fail(c, "batchnorm2d: a pooled backward or a bf16 input needs channels-last rows");
		return -1;
	}
	if (dxb && (!rows_path(N, C, HW) || !wr || STASH(act, 1) || dx)) {
		fd_fail(c, "batchnorm2d: a bf16 dx is written fresh, on channels-last rows, without SiLU");
		return -1;
	}
	if (HW == 1 && N >= 2 && C > 1) {
		struct rows r = rows_of(c->threads, N, C);
		r.xb = xb;
		return rows_bwd(c, &r, 1, act, dy, ps, idx, code, xm, x, w, mean, invstd, za, zb, 0, dx, dxb, dw, db, wr);
	}
	batchnorm2d_bwd_train(c->threads, act, (int)N, (int)C, (int)HW, dy, (const float *)x, w, mean, invstd, za, zb, dx, dw,
			      db, wr);
	return 0;
}

static int bwd_eval_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x, const float *w,
			const float *rmean, const float *rvar, double eps, const float *dy, float *dx, float *dw,
			float *db, int wr)
{
	if (HW == 1 && C > 1) {
		struct rows r = rows_of(c->threads, N, C);
		return rows_bwd(c, &r, 0, NOACT, dy, NULL, NULL, NULL, NULL, x, w, rmean, rvar, NULL, NULL, eps, dx, NULL, dw, db,
				wr);
	}
	batchnorm2d_bwd_eval(c->threads, (int)N, (int)C, (int)HW, dy, x, w, rmean, rvar, eps, dx, dw, db, wr);
	return 0;
}

int fd_batchnorm2d_bwd_train_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
			const float *w, const float *mean, const float *invstd, const float *dy,
			float *dx, float *dw, float *db)
{
	return bwd_train_cpu(c, NOACT, N, C, HW, x, 0, w, mean, invstd, NULL, NULL, dy, NULL, NULL, NULL, NULL, dx,
			     NULL, dw, db, 0);
}

int fd_batchnorm2d_act_bwd_train_cpu(struct fd_ctx *c, int act, int64_t N, int64_t C, int64_t HW,
				     const float *x, const float *w, const float *mean, const float *invstd,
				     const float *za, const float *zb, const float *dy, float *dx, float *dw,
				     float *db)
{
	return bwd_train_cpu(c, act < 0 ? NOACT : act, N, C, HW, x, 0, w, mean, invstd, za, zb, dy, NULL, NULL, NULL,
			     NULL, dx, NULL, dw, db, 0);
}

int fd_batchnorm2d_fwd_eval_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
		       const float *w, const float *b, const float *rmean, const float *rvar,
		       double eps, float *y)
{
	if (HW == 1 && C > 1) {
		struct rows r = rows_of(c->threads, N, C);
		return rows_fwd_eval(c, &r, x, w, b, rmean, rvar, eps, y);
	}
	if (int_sizes(c, "batchnorm2d", N, C, HW) < 0)
		return -1;
	batchnorm2d_fwd_eval(c->threads, (int)N, (int)C, (int)HW, x, w, b, rmean, rvar, eps, y);
	return 0;
}

int fd_batchnorm2d_bwd_eval_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
		       const float *w, const float *rmean, const float *rvar, double eps,
		       const float *dy, float *dx, float *dw, float *db)
{
	return bwd_eval_cpu(c, N, C, HW, x, w, rmean, rvar, eps, dy, dx, dw, db, 0);
}

/* ---------- the taped op ---------- */

struct bn_saved {
	int train, act;             /* act: the fused activation (CPU train), else NOACT */
	int64_t N, C, HW;
	double eps;
	float *mean, *invstd;       /* train: batch statistics */
	float *za, *zb;             /* fused: the forward's factors, z = x za + zb */
	const float *rmean, *rvar;  /* eval: running statistics (not changed in eval) */
	int pool;                   /* a max pool fused after (fd_batchnorm2d_act_maxpool) */
	struct fd_pool2d_shape ps;  /* pool: its shape (N*H*W positions are the rows) */
	int32_t *idx;               /* pool: its indices [N, Ho, Wo, C] (NULL with code) */
	uint8_t *code;              /* pool22 (a 2x2/2 pool after ReLU): each maximum's place in its window */
	void *xm;                   /* pool22: x at each maximum, x's type, [N, Ho, Wo, C] */
	int add;                    /* y = act(bn(x) + id), id the node's in[3] (fd_batchnorm2d_add_act) */
};

/* The backward of y = act(bn(x) + id) (CPU, train mode, rows): dz =
 * act'(y) dy first, where the separate ops' activation backward writes it:
 * into id's gradient when that is fresh (the out's own block when id took
 * it over: struct fd_node's aliases), else into a scratch block added into
 * id's gradient (or only used, when id wants none); then BN's backward from
 * dz. The bits of the three ops. */
static int add_backward(struct fd_ctx *c, struct fd_node *n, float *dx, uint16_t *dxb, float *dw, float *db)
{
	const struct bn_saved *s = n->saved;
	struct fd_tensor *x = n->in[0], *w = n->in[1], *id = n->in[3], *y = n->out;
	size_t cnt = (size_t)y->numel;
	float *dz = NULL, *scratch = NULL;
	int idw = wants(id);
	if (idw && (id->flags & FD_T_GRAD_FRESH)) {
		dz = id->grad;
	} else {
		if (!(dz = scratch = fd_grad_scratch(c, (int64_t)cnt)))
			return -1;
	}
	#pragma omp parallel for num_threads(c->threads) schedule(static) if (cnt >= ((size_t)1 << 16))
	for (size_t i = 0; i < cnt; i += ((size_t)1 << 14)) {
		size_t len = cnt - i < ((size_t)1 << 14) ? cnt - i : ((size_t)1 << 14);
		if (y->flags & FD_T_BF16)
			rows_act_grad_out_b(s->act, (const uint16_t *)y->data + i, y->grad + i, dz + i, (int64_t)len);
		else
			rows_act_grad_out(s->act, y->data + i, y->grad + i, dz + i, (int64_t)len);
		if (idw && scratch)
			for (size_t j = i; j < i + len; j++)
				id->grad[j] += dz[j];
	}
	int rc = 0;
	if (dx || dxb || dw || db)
		rc = bwd_train_cpu(c, NOACT, s->N, s->C, s->HW, x->data, (x->flags & FD_T_BF16) != 0, w->data, s->mean,
				   s->invstd, NULL, NULL, dz, NULL, NULL, NULL, NULL, dxb ? NULL : dx, dxb, dw, db,
				   (x->flags & FD_T_GRAD_FRESH) != 0);
	if (scratch)
		fd_grad_scratch_put(c, scratch);
	return rc;
}

/* On the CPU a fresh dx (the node's writes bit 0, set for CPU inputs) is
 * overwritten; the device tables add, into a zeroed gradient. */
static int bn_backward(struct fd_ctx *c, struct fd_node *n)
{
	const struct bn_saved *s = n->saved;
	struct fd_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
	float *dx = wants(x) ? x->grad : NULL, *dw = wants(w) ? w->grad : NULL;
	float *db = wants(b) ? b->grad : NULL;
	int wr = (x->flags & FD_T_GRAD_FRESH) != 0;
	/* the gradient hand-off: dx in bf16 for the convolution before
	 * (FD_T_GRAD_BF16, which fd_backward keeps only for a fresh dx here) */
	uint16_t *dxb = dx && (x->flags & FD_T_GRAD_BF16) ? (uint16_t *)dx : NULL;
	if (s->add)
		return add_backward(c, n, dx, dxb, dw, db);
	if (x->dev == FD_DEV_CPU)
		return s->train ? bwd_train_cpu(c, s->act, s->N, s->C, s->HW, x->data, (x->flags & FD_T_BF16) != 0,
						w->data, s->mean, s->invstd,
						s->za, s->zb, n->out->grad, s->pool ? &s->ps : NULL, s->idx, s->code,
						s->xm, dxb ? NULL : dx, dxb, dw, db, wr)
				: bwd_eval_cpu(c, s->N, s->C, s->HW, x->data, w->data, s->rmean, s->rvar, s->eps,
					       n->out->grad, dx, dw, db, wr);
	if (s->train) {
		const struct fd_backend *be = FD_KERNEL(c, x->dev, batchnorm2d_bwd_train);
		return be ? be->batchnorm2d_bwd_train(c, s->N, s->C, s->HW, x->data, w->data, s->mean, s->invstd,
					     n->out->grad, dx, dw, db) : -1;
	}
	const struct fd_backend *be = FD_KERNEL(c, x->dev, batchnorm2d_bwd_eval);
	return be ? be->batchnorm2d_bwd_eval(c, s->N, s->C, s->HW, x->data, w->data, s->rmean, s->rvar, s->eps,
				    n->out->grad, dx, dw, db) : -1;
}

/* num_batches_tracked += 1 where the counter lives (with the parameters: a
 * device's is read back, incremented on the host and written again). */
static int bump_counter(struct fd_ctx *c, struct fd_tensor *nbt)
{
	if (nbt->dev == FD_DEV_CPU) {
		nbt->data[0] += 1.0f;
		return 0;
	}
	const struct fd_backend *be = FD_KERNEL(c, nbt->dev, copy_d2h);
	float v;
	if (!be || !be->copy_h2d || be->copy_d2h(c, &v, nbt->data, sizeof v) < 0)
		return -1;
	v += 1.0f;
	return be->copy_h2d(c, nbt->data, &v, sizeof v);
}

/* The op; act (not NOACT) or pool (the max pool fused after, its k,
 * stride and padding; ps->N..W unset) only for a CPU train-mode forward
 * (fused, channels-last rows for pool). */
static struct fd_tensor *bn_op(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w, struct fd_tensor *b,
			       struct fd_tensor *rm, struct fd_tensor *rv, struct fd_tensor *nbt, double momentum,
			       double eps, int act, const struct fd_pool2d_shape *pool, struct fd_tensor *id)
{
	static const char *const names[FD_ACT_COUNT] = {
		[FD_ACT_RELU] = "batchnorm2d_relu", [FD_ACT_SILU] = "batchnorm2d_silu",
		[FD_ACT_HARDSWISH] = "batchnorm2d_hardswish"};
	static const char *const pnames[FD_ACT_COUNT] = {
		[FD_ACT_RELU] = "batchnorm2d_relu_max_pool2d", [FD_ACT_SILU] = "batchnorm2d_silu_max_pool2d",
		[FD_ACT_HARDSWISH] = "batchnorm2d_hardswish_max_pool2d"};
	if (!x || !w || !b || !rm || !rv)
		return NULL;
	char b1[64], b2[64];
	int64_t C = x->ndim >= 2 ? x->shape[1] : -1;
	if (x->ndim < 2 || w->numel != C || b->numel != C || rm->numel != C || rv->numel != C ||
	    w->dev != x->dev || b->dev != x->dev || rm->dev != x->dev || rv->dev != x->dev)
		return fd_fail(c, "batchnorm2d: input %s and weight %s (with bias and running stats) do not match",
			       fd_tensor_shape_str(x, b1, sizeof b1), fd_tensor_shape_str(w, b2, sizeof b2));
	int64_t N = x->shape[0], HW = x->numel / (N * C);
	if (fd_is_nhwc(x)) /* channels last: one "plane" of 1 value per position */
		N *= HW, HW = 1;
	struct fd_tensor *in[4] = {x, w, b, id};
	int rec = fd_needs_grad(c, id ? 4 : 3, in);
	/* the gradient hand-off (c->bf16_dy): x is the output of the conv2d
	 * recorded just before (whose backward reads a bf16 dy as it is) and
	 * read by nothing else (the caller's word); the rows kernels write dx
	 * fresh in bf16; not SiLU's backward, which stashes dz in dx */
	int dxb = rec && c->bf16_dy && c->training && c->precision == FD_PREC_BF16 && x->dev == FD_DEV_CPU &&
		  rows_path(N, C, HW) && act != FD_ACT_SILU && !x->grad &&
		  !(x->flags & (FD_T_RETAIN_GRAD | FD_T_GRAD_BF16)) && c->tape && c->tape->out == x &&
		  strcmp(c->tape->op, "conv2d") == 0;
	struct fd_tensor *y;
	struct bn_saved sv = {c->training, act, N, C, HW, eps, NULL, NULL, NULL, NULL, rm->data, rv->data, 0,
			      {0}, NULL, NULL, NULL, 0};
	/* x in bf16 (FD_T_BF16: the convolution's output under c->bf16_y): CPU
	 * train mode on channels-last rows only, the fused kernels */
	int xbf = (x->flags & FD_T_BF16) != 0;
	if (xbf && !(x->dev == FD_DEV_CPU && c->training && rows_path(N, C, HW)))
		return fd_fail(c, "batchnorm2d: a bf16 input %s is read only by CPU train-mode channels-last BN",
			       fd_tensor_shape_str(x, b1, sizeof b1));
	if (act != NOACT || pool || xbf || id) { /* CPU, train mode (fd_batchnorm2d_act, _act_maxpool, _add_act) */
		/* asked for bf16 (nothing but convolutions reads y; backward reads x;
		 * after the add: the bf16 residual stream, whose readers take bf16
		 * and whose backward reads y's sign) */
		int yb = c->bf16_out && c->precision == FD_PREC_BF16 && rows_path(N, C, HW);
		int Ho = 0, Wo = 0;
		if (pool) {
			sv.pool = 1, sv.ps = *pool;
			sv.ps.N = (int)x->shape[0], sv.ps.C = (int)C, sv.ps.H = (int)x->shape[2];
			sv.ps.W = (int)x->shape[3];
			fd_pool2d_out_size(&sv.ps, &Ho, &Wo, NULL); /* checked by the caller */
		}
		int64_t ps[4] = {x->shape[0], C, Ho, Wo};
		y = pool ? (yb ? fd_tensor_new_bf16(c, 4, ps) : fd_tensor_new(c, x->dev, 4, ps))
			 : (yb ? fd_tensor_new_bf16(c, x->ndim, x->shape) : fd_tensor_like(c, x));
		if (y && (yb || pool))
			y->layout = x->layout;
		/* za, zb: the fused activation's factors, for its backward (none
		 * without one, nor after the add: that activation reads y) */
		int zab = act != NOACT && !id;
		sv.mean = y ? fd_ctx_alloc(c, x->dev, (zab ? 4 : 2) * C) : NULL;
		/* int32 indices in float-sized memory, as fd_maxpool2d's; pool22:
		 * a byte and an x value an output */
		int p22 = pool && pool22(N, C, act, &sv.ps);
		if (sv.mean && p22) {
			sv.code = (uint8_t *)fd_ctx_alloc(c, x->dev, (y->numel + 3) / 4);
			sv.xm = sv.code ? fd_ctx_alloc(c, x->dev, xbf ? (y->numel + 1) / 2 : y->numel) : NULL;
		} else if (sv.mean && pool) {
			sv.idx = (int32_t *)fd_ctx_alloc(c, x->dev, y->numel);
		}
		if (!sv.mean || (pool && !sv.idx && !sv.xm))
			return NULL;
		sv.invstd = sv.mean + C;
		sv.za = zab ? sv.mean + 2 * C : NULL, sv.zb = zab ? sv.mean + 3 * C : NULL;
		float *yf = yb ? NULL : y->data;
		uint16_t *y16 = yb ? (uint16_t *)y->data : NULL;
		if (id) {
			struct rows r = rows_of(c->threads, N, C);
			r.xb = xbf;
			r.idb = (id->flags & FD_T_BF16) != 0;
			sv.add = 1;
			if (rows_fwd_train(c, &r, act, x->data, w->data, b->data, rm->data, rv->data, momentum, eps, yf,
					   y16, sv.mean, sv.invstd, sv.za, sv.zb, id->data) < 0)
				return NULL;
		} else if (pool) {
			struct rows r = rows_of(c->threads, N, C);
			r.xb = xbf;
			if (rows_fwd_pool(c, &r, act, &sv.ps, x->data, w->data, b->data, rm->data, rv->data, momentum,
					  eps, yf, y16, sv.idx, sv.code, sv.xm, sv.mean, sv.invstd, sv.za, sv.zb) < 0)
				return NULL;
		} else if (fwd_train_cpu(c, act, N, C, HW, x->data, xbf, w->data, b->data, rm->data, rv->data, momentum,
					 eps, yf, y16, sv.mean, sv.invstd, sv.za, sv.zb) < 0) {
			return NULL;
		}
		if (nbt && bump_counter(c, nbt) < 0)
			return NULL;
	} else if (c->training) {
		const struct fd_backend *be = FD_KERNEL(c, x->dev, batchnorm2d_fwd_train);
		y = be ? fd_tensor_like(c, x) : NULL;
		sv.mean = y ? fd_ctx_alloc(c, x->dev, C) : NULL;
		sv.invstd = sv.mean ? fd_ctx_alloc(c, x->dev, C) : NULL;
		if (!sv.invstd || be->batchnorm2d_fwd_train(c, N, C, HW, x->data, w->data, b->data, rm->data, rv->data,
						   momentum, eps, y->data, sv.mean, sv.invstd) < 0)
			return NULL;
		if (nbt && bump_counter(c, nbt) < 0)
			return NULL;
	} else {
		const struct fd_backend *be = FD_KERNEL(c, x->dev, batchnorm2d_fwd_eval);
		y = be ? fd_tensor_like(c, x) : NULL;
		if (!y || be->batchnorm2d_fwd_eval(c, N, C, HW, x->data, w->data, b->data, rm->data, rv->data, eps,
					  y->data) < 0)
			return NULL;
	}
	if (rec) {
		const char *name = id ? (act == NOACT ? "batchnorm2d_add" : "batchnorm2d_add_relu")
				   : pool ? (act == NOACT ? "batchnorm2d_max_pool2d" : pnames[act])
				   : act == NOACT ? "batchnorm2d" : names[act];
		struct fd_node *n = fd_tape_push(c, name, bn_backward, id ? 4 : 3, in, y, sizeof sv);
		if (!n)
			return NULL;
		*(struct bn_saved *)n->saved = sv;
		/* bn_backward overwrites a fresh dx, also dy itself: per channel
		 * (plane path) or over all rows, every dy sum is taken before any dx
		 * is written, and each dx value reads dy at its place. Not with SiLU:
		 * its backward stashes dz in dx, and over dy that pass ran 7% slower
		 * on EfficientNet-B0 training (bench/results/tuned.md run 8) for 250
		 * MiB it did not need (still 15% under PyTorch's best without); nor
		 * with a pool (dy is the pool's output gradient, another size) */
		if (x->dev == FD_DEV_CPU) {
			n->writes = 1u;
			n->aliases = act == FD_ACT_SILU || pool ? 0u : 1u;
		}
		if (id) /* dz goes to id's gradient (may be out's own block); BN's dy is dz */
			n->writes = 1u | 8u, n->aliases = 8u;
		if (dxb) {
			x->flags |= FD_T_GRAD_BF16;
			n->bf16_grads = 1u;
			c->bf16_dys++;
		}
	}
	return y;
}

struct fd_tensor *fd_batchnorm2d(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w,
				 struct fd_tensor *b, struct fd_tensor *rm, struct fd_tensor *rv,
				 struct fd_tensor *nbt, double momentum, double eps)
{
	return bn_op(c, x, w, b, rm, rv, nbt, momentum, eps, NOACT, NULL, NULL);
}

struct fd_tensor *fd_batchnorm2d_act(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w,
				     struct fd_tensor *b, struct fd_tensor *rm, struct fd_tensor *rv,
				     struct fd_tensor *nbt, double momentum, double eps, int act)
{
	if (act < 0)
		return bn_op(c, x, w, b, rm, rv, nbt, momentum, eps, NOACT, NULL, NULL);
	if (x && x->dev == FD_DEV_CPU && c->training && fusable(act))
		return bn_op(c, x, w, b, rm, rv, nbt, momentum, eps, act, NULL, NULL);
	/* the separate ops; in place (fd_act_) is safe: batchnorm2d's backward
	 * does not read its output, and nothing else sees it */
	return fd_act_(c, (enum fd_act)act, bn_op(c, x, w, b, rm, rv, nbt, momentum, eps, NOACT, NULL, NULL));
}

int fd_batchnorm2d_act_pools(const struct fd_ctx *c, const struct fd_tensor *x, int act, int k, int stride,
			     int pad)
{
	if (!x || x->dev != FD_DEV_CPU || !c->training || !fusable(act < 0 ? NOACT : act) || x->ndim != 4 ||
	    !fd_is_nhwc(x) || x->numel > INT32_MAX)
		return 0;
	struct fd_pool2d_shape ps = {(int)x->shape[0], (int)x->shape[1], (int)x->shape[2], (int)x->shape[3],
				     k, k, stride, stride, pad, pad, 0, 1};
	int Ho, Wo;
	return rows_path(x->shape[0] * x->shape[2] * x->shape[3], x->shape[1], 1) && x->shape[1] <= GBUF &&
	       fd_pool2d_out_size(&ps, &Ho, &Wo, NULL) == 0 &&
	       ((k + stride - 1) / stride) * ((k + stride - 1) / stride) <= FD_MP_MAXWIN;
}

int fd_batchnorm2d_pool22(const struct fd_ctx *c, const struct fd_tensor *x, int act, int k, int stride, int pad)
{
	if (!fd_batchnorm2d_act_pools(c, x, act, k, stride, pad))
		return 0;
	struct fd_pool2d_shape ps = {(int)x->shape[0], (int)x->shape[1], (int)x->shape[2], (int)x->shape[3],
				     k, k, stride, stride, pad, pad, 0, 1};
	return pool22(x->shape[0] * x->shape[2] * x->shape[3], x->shape[1], act, &ps);
}

int fd_batchnorm2d_add_fuses(const struct fd_ctx *c, const struct fd_tensor *x, const struct fd_tensor *id,
			     int act)
{
	if (!x || !id || x->dev != FD_DEV_CPU || id->dev != FD_DEV_CPU || !c->training ||
	    (act >= 0 && act != FD_ACT_RELU) || x->ndim != 4 || !fd_is_nhwc(x) || id->layout != x->layout ||
	    ((id->flags & FD_T_BF16) && c->precision != FD_PREC_BF16) || id->ndim != 4 || id->numel != x->numel)
		return 0;
	for (int i = 0; i < 4; i++)
		if (id->shape[i] != x->shape[i])
			return 0;
	return rows_path(x->shape[0] * x->shape[2] * x->shape[3], x->shape[1], 1);
}

struct fd_tensor *fd_batchnorm2d_add_act(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w,
					 struct fd_tensor *b, struct fd_tensor *rm, struct fd_tensor *rv,
					 struct fd_tensor *nbt, double momentum, double eps, struct fd_tensor *id,
					 int act)
{
	if (!x || !id)
		return NULL;
	if (!fd_batchnorm2d_add_fuses(c, x, id, act)) {
		char b1[64], b2[64];
		return fd_fail(c, "batchnorm2d_add: input %s and residual %s (activation %d) do not fuse",
			       fd_tensor_shape_str(x, b1, sizeof b1), fd_tensor_shape_str(id, b2, sizeof b2), act);
	}
	return bn_op(c, x, w, b, rm, rv, nbt, momentum, eps, act < 0 ? NOACT : act, NULL, id);
}

struct fd_tensor *fd_batchnorm2d_act_maxpool(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w,
					     struct fd_tensor *b, struct fd_tensor *rm, struct fd_tensor *rv,
					     struct fd_tensor *nbt, double momentum, double eps, int act, int k,
					     int stride, int pad)
{
	if (!x)
		return NULL;
	if (fd_batchnorm2d_act_pools(c, x, act, k, stride, pad)) {
		struct fd_pool2d_shape ps = {0, 0, 0, 0, k, k, stride, stride, pad, pad, 0, 1};
		return bn_op(c, x, w, b, rm, rv, nbt, momentum, eps, act < 0 ? NOACT : act, &ps, NULL);
	}
	/* the two ops; BN's output is the pool's input, never bf16 */
	int keep = c->bf16_out;
	c->bf16_out = 0;
	struct fd_tensor *y = fd_batchnorm2d_act(c, x, w, b, rm, rv, nbt, momentum, eps, act);
	c->bf16_out = keep;
	return fd_maxpool2d(c, y, k, stride, pad, 0);
}

/* ---- double references ---- */

void fd_batchnorm2d_ref_forward_train(int N, int C, int HW, const double *x, const double *weight,
				      const double *bias, double eps, double *y, double *mean,
				      double *var)
{
	double M = (double)N * HW;
	for (int c = 0; c < C; c++) {
		double s = 0, ss = 0;
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++)
				s += PLANE(x, n, c)[i];
		mean[c] = s / M;
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++)
				ss += (PLANE(x, n, c)[i] - mean[c]) * (PLANE(x, n, c)[i] - mean[c]);
		var[c] = ss / M;
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++)
				PLANE(y, n, c)[i] = (PLANE(x, n, c)[i] - mean[c]) / sqrt(var[c] + eps) * weight[c] +
						    bias[c];
	}
}

void fd_batchnorm2d_ref_backward_train(int N, int C, int HW, const double *dy, const double *x,
				       const double *weight, double eps, double *dx, double *dweight,
				       double *dbias)
{
	double M = (double)N * HW;
	for (int c = 0; c < C; c++) {
		double s = 0, ss = 0, sdy = 0, sdyxh = 0;
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++)
				s += PLANE(x, n, c)[i];
		double mean = s / M;
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++)
				ss += (PLANE(x, n, c)[i] - mean) * (PLANE(x, n, c)[i] - mean);
		double invstd = 1 / sqrt(ss / M + eps);
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++) {
				sdy += PLANE(dy, n, c)[i];
				sdyxh += PLANE(dy, n, c)[i] * (PLANE(x, n, c)[i] - mean) * invstd;
			}
		dweight[c] += sdyxh;
		dbias[c] += sdy;
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++) {
				double xh = (PLANE(x, n, c)[i] - mean) * invstd;
				PLANE(dx, n, c)[i] += weight[c] * invstd *
						      (PLANE(dy, n, c)[i] - sdy / M - xh * sdyxh / M);
			}
	}
}

void fd_batchnorm2d_ref_forward_eval(int N, int C, int HW, const double *x, const double *weight,
				     const double *bias, const double *running_mean,
				     const double *running_var, double eps, double *y)
{
	for (int n = 0; n < N; n++)
		for (int c = 0; c < C; c++)
			for (int i = 0; i < HW; i++)
				PLANE(y, n, c)[i] = (PLANE(x, n, c)[i] - running_mean[c]) /
							    sqrt(running_var[c] + eps) * weight[c] +
						    bias[c];
}

void fd_batchnorm2d_ref_backward_eval(int N, int C, int HW, const double *dy, const double *x,
				      const double *weight, const double *running_mean,
				      const double *running_var, double eps, double *dx, double *dweight,
				      double *dbias)
{
	for (int n = 0; n < N; n++)
		for (int c = 0; c < C; c++) {
			double invstd = 1 / sqrt(running_var[c] + eps);
			for (int i = 0; i < HW; i++) {
				double g = PLANE(dy, n, c)[i];
				PLANE(dx, n, c)[i] += g * weight[c] * invstd;
				dweight[c] += g * (PLANE(x, n, c)[i] - running_mean[c]) * invstd;
				dbias[c] += g;
			}
		}
}
