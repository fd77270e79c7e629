/* batchnorm2d: plain C + OpenMP over channels (see batchnorm2d.h). One channel
 * is N strided planes of HW floats; each pass streams them in order. */
#include "nn/batchnorm2d.h"
#include "nn/layout.h"
#include "nn/fd_backend.h"

#include <math.h>
#include <stddef.h>

#include "core/fd_vec.h"

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

/* acc_g[k] += dy, acc_gx[k] += dy * (x - mean) */
FD_VEC_CLONES
static void plane_dysums(const float *g, const float *x, int n, double mean, double *acc_g,
			 double *acc_gx)
{
	int i = 0;
	for (; i + NACC <= n; i += NACC)
		for (int k = 0; k < NACC; k++) {
			acc_g[k] += g[i + k];
			acc_gx[k] += g[i + k] * (x[i + k] - mean);
		}
	for (int k = 0; i < n; i++, k++) {
		acc_g[k] += g[i];
		acc_gx[k] += g[i] * (x[i] - mean);
	}
}

FD_VEC_CLONES
static void plane_affine(const float *x, float *y, int n, float a, float b)
{
	for (int i = 0; i < n; i++)
		y[i] = x[i] * a + b;
}

/* The dx loops add into dx, or overwrite it when wr (a fresh gradient,
 * struct fd_node's writes): the same value as adding to zeros. */
FD_VEC_CLONES
static void plane_dx_train(const float *g, const float *x, float *dx, int n, float k, float cm,
			   float cx, float mean, int wr)
{
	if (wr)
		for (int i = 0; i < n; i++)
			dx[i] = k * (g[i] - cm - (x[i] - mean) * cx);
	else
		for (int i = 0; i < n; i++)
			dx[i] += k * (g[i] - cm - (x[i] - mean) * cx);
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

static int batchnorm2d_fwd_train(int threads, int N, int C, int HW, const float *x, const float *weight,
				 const float *bias, float *running_mean, float *running_var,
				 double momentum, double eps, float *y, float *save_mean,
				 float *save_invstd, struct fd_err *e)
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
			plane_affine(PLANE(x, n, c), PLANE(y, n, c), HW, a, b);
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
			plane_affine(PLANE(x, n, c), PLANE(y, n, c), HW, a, b);
		}
}

/* Per channel: sum(dy) and sum(dy * (x - mean)), in double. */
static void dy_sums(int N, int C, int HW, int c, const float *dy, const float *x, double mean,
		    double *sdy, double *sdyx)
{
	double ag[NACC] = {0}, agx[NACC] = {0};
	for (int n = 0; n < N; n++)
		plane_dysums(PLANE(dy, n, c), PLANE(x, n, c), HW, mean, ag, agx);
	*sdy = fold8(ag), *sdyx = fold8(agx);
}

static void batchnorm2d_bwd_train(int threads, int N, int C, int HW, const float *dy, const float *x,
				   const float *weight, const float *save_mean, const float *save_invstd,
				   float *dx, float *dweight, float *dbias, int wr)
{
	double M = (double)N * HW;
	#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
	for (int c = 0; c < C; c++) {
		double mean = save_mean[c], invstd = save_invstd[c], sdy, sdyx;
		dy_sums(N, C, HW, c, dy, x, mean, &sdy, &sdyx);
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
			plane_dx_train(PLANE(dy, n, c), PLANE(x, n, c), PLANE(dx, n, c), HW, k, cm, cx, fmean, wr);
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
			dy_sums(N, C, HW, c, dy, x, running_mean[c], &sdy, &sdyx);
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
};

static struct rows rows_of(int threads, int64_t M, int64_t C)
{
	struct rows r = {threads, M, C, RCHUNK / C > 0 ? RCHUNK / C : 1, 0};
	if (r.rpc < (M + MAXCH - 1) / MAXCH)
		r.rpc = (M + MAXCH - 1) / MAXCH;
	r.nch = (M + r.rpc - 1) / r.rpc;
	return r;
}

/* acc1[c] += x - k[c], acc2[c] += (x - k[c])^2: the statistics' one pass
 * (see rows_fwd_train for why the shift keeps the variance accurate) */
FD_VEC_CLONES
static void rows_shifted(const float *x, int64_t n, int64_t C, const float *k, double *acc1, double *acc2)
{
	for (int64_t m = 0; m < n; m++)
		for (int64_t c = 0; c < C; c++) {
			double d = (double)x[m * C + c] - k[c];
			acc1[c] += d;
			acc2[c] += d * d;
		}
}

FD_VEC_CLONES
static void rows_dysums(const float *g, const float *x, int64_t n, int64_t C, const double *mean,
			double *acc_g, double *acc_gx)
{
	for (int64_t m = 0; m < n; m++)
		for (int64_t c = 0; c < C; c++) {
			acc_g[c] += g[m * C + c];
			acc_gx[c] += g[m * C + c] * (x[m * C + c] - mean[c]);
		}
}

FD_VEC_CLONES
static void rows_affine(const float *x, float *y, int64_t n, int64_t C, const float *a, const float *b)
{
	for (int64_t m = 0; m < n; m++)
		for (int64_t c = 0; c < C; c++)
			y[m * C + c] = x[m * C + c] * a[c] + b[c];
}

FD_VEC_CLONES
static void rows_dx_train(const float *g, const float *x, float *dx, int64_t n, int64_t C, const float *k,
			  const float *cm, const float *cx, const float *mean, int wr)
{
	if (wr)
		for (int64_t m = 0; m < n; m++)
			for (int64_t c = 0; c < C; c++)
				dx[m * C + c] = k[c] * (g[m * C + c] - cm[c] - (x[m * C + c] - mean[c]) * cx[c]);
	else
		for (int64_t m = 0; m < n; m++)
			for (int64_t c = 0; c < C; c++)
				dx[m * C + c] += k[c] * (g[m * C + c] - cm[c] - (x[m * C + c] - mean[c]) * cx[c]);
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

/* s1[c] = sum (x - k[c]), s2[c] = sum (x - k[c])^2 over the rows */
static void rows_stat(const struct rows *r, const float *x, const float *k, double *part, double *s1, double *s2)
{
	int64_t C = r->C;
	#pragma omp parallel for num_threads(r->threads) schedule(static) if (r->nch > 1)
	for (int64_t i = 0; i < r->nch; i++) {
		int64_t m0, n = chunk(r, i, &m0);
		double *a1 = part + 2 * i * C, *a2 = a1 + C;
		for (int64_t c = 0; c < 2 * C; c++)
			a1[c] = 0;
		rows_shifted(x + m0 * C, n, C, k, a1, a2);
	}
	for (int64_t c = 0; c < C; c++)
		s1[c] = s2[c] = 0;
	for (int64_t i = 0; i < r->nch; i++)
		for (int64_t c = 0; c < C; c++) {
			s1[c] += part[2 * i * C + c];
			s2[c] += part[2 * i * C + C + c];
		}
}

static void rows_dy_sums(const struct rows *r, const float *dy, const float *x, const double *mean,
			 double *part, double *sdy, double *sdyx)
{
	int64_t C = r->C;
	#pragma omp parallel for num_threads(r->threads) schedule(static) if (r->nch > 1)
	for (int64_t i = 0; i < r->nch; i++) {
		int64_t m0, n = chunk(r, i, &m0);
		double *ag = part + 2 * i * C, *agx = ag + C;
		for (int64_t c = 0; c < 2 * C; c++)
			ag[c] = 0;
		rows_dysums(dy + m0 * C, x + m0 * C, n, C, mean, ag, agx);
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
 * 8 per-channel vectors of doubles (floats use the same slots). */
static double *rows_scratch(struct fd_ctx *c, const struct rows *r)
{
	double *p = (double *)fd_ctx_alloc(c, FD_DEV_CPU, 2 * (2 * r->nch * r->C + 8 * r->C));
	return p;
}

static int rows_fwd_train(struct fd_ctx *ctx, const struct rows *r, const float *x, const float *weight,
			  const float *bias, float *running_mean, float *running_var, double momentum,
			  double eps, float *y, float *save_mean, float *save_invstd)
{
	int64_t C = r->C;
	double M = (double)r->M, *part = rows_scratch(ctx, r);
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
		k[c] = x[c];
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
	}
	#pragma omp parallel for num_threads(r->threads) schedule(static) if (r->nch > 1)
	for (int64_t i = 0; i < r->nch; i++) {
		int64_t m0, n = chunk(r, i, &m0);
		rows_affine(x + m0 * C, y + m0 * C, n, C, a, b);
	}
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
		rows_affine(x + m0 * C, y + m0 * C, n, C, a, b);
	}
	return 0;
}

/* train (stats = batch mean and invstd) or eval (running mean and var) */
static int rows_bwd(struct fd_ctx *ctx, const struct rows *r, int train, const float *dy, const float *x,
		    const float *weight, const float *mean_in, const float *stat, double eps, float *dx,
		    float *dweight, float *dbias, int wr)
{
	int64_t C = r->C;
	double M = (double)r->M, *part = rows_scratch(ctx, r);
	if (!part)
		return -1;
	double *mean = part + 2 * r->nch * C, *invstd = mean + C, *sdy = invstd + C, *sdyx = sdy + C;
	float *k = (float *)(sdyx + C), *cm = (float *)(sdyx + 2 * C), *cx = (float *)(sdyx + 3 * C);
	float *fmean = (float *)(sdyx + 4 * C);
	for (int64_t c = 0; c < C; c++) {
		mean[c] = mean_in[c];
		invstd[c] = train ? stat[c] : 1.0 / sqrt((double)stat[c] + eps);
	}
	if (train || dweight || dbias) {
		rows_dy_sums(r, dy, x, mean, part, sdy, sdyx);
		for (int64_t c = 0; c < C; c++) {
			if (dweight)
				dweight[c] += (float)(sdyx[c] * invstd[c]);
			if (dbias)
				dbias[c] += (float)sdy[c];
		}
	}
	if (!dx)
		return 0;
	for (int64_t c = 0; c < C; c++) {
		k[c] = (float)(weight[c] * invstd[c]);
		if (train) {
			cm[c] = (float)(sdy[c] / M), cx[c] = (float)(invstd[c] * invstd[c] * sdyx[c] / M);
			fmean[c] = (float)mean[c];
		}
	}
	#pragma omp parallel for num_threads(r->threads) schedule(static) if (r->nch > 1)
	for (int64_t i = 0; i < r->nch; i++) {
		int64_t m0, n = chunk(r, i, &m0);
		if (train)
			rows_dx_train(dy + m0 * C, x + m0 * C, dx + m0 * C, n, C, k, cm, cx, fmean, wr);
		else
			rows_axpy(dy + m0 * C, dx + m0 * C, n, C, k, wr);
	}
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

int fd_batchnorm2d_fwd_train_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
			const float *w, const float *b, float *rmean, float *rvar, double momentum,
			double eps, float *y, float *mean, float *invstd)
{
	struct fd_err e = {{0}};
	if (HW == 1 && N >= 2 && C > 1) {
		struct rows r = rows_of(c->threads, N, C);
		return rows_fwd_train(c, &r, x, w, b, rmean, rvar, momentum, eps, y, mean, invstd);
	}
	if (int_sizes(c, "batchnorm2d", N, C, HW) < 0)
		return -1;
	return batchnorm2d_fwd_train(c->threads, (int)N, (int)C, (int)HW, x, w, b, rmean, rvar, momentum,
					    eps, y, mean, invstd, &e) < 0 ? ctx_err(c, &e) : 0;
}

/* Backward on the CPU; wr: dx is a fresh gradient, overwritten. */
static int bwd_train_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x, const float *w,
			 const float *mean, const float *invstd, const float *dy, float *dx, float *dw, float *db,
			 int wr)
{
	if (HW == 1 && N >= 2 && C > 1) {
		struct rows r = rows_of(c->threads, N, C);
		return rows_bwd(c, &r, 1, dy, x, w, mean, invstd, 0, dx, dw, db, wr);
	}
	batchnorm2d_bwd_train(c->threads, (int)N, (int)C, (int)HW, dy, x, w, mean, invstd, dx, dw, db, wr);
	return 0;
}

static int bwd_eval_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x, const float *w,
			const float *rmean, const float *rvar, double eps, const float *dy, float *dx, float *dw,
			float *db, int wr)
{
	if (HW == 1 && C > 1) {
		struct rows r = rows_of(c->threads, N, C);
		return rows_bwd(c, &r, 0, dy, x, w, rmean, rvar, eps, dx, dw, db, wr);
	}
	batchnorm2d_bwd_eval(c->threads, (int)N, (int)C, (int)HW, dy, x, w, rmean, rvar, eps, dx, dw, db, wr);
	return 0;
}

int fd_batchnorm2d_bwd_train_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
			const float *w, const float *mean, const float *invstd, const float *dy,
			float *dx, float *dw, float *db)
{
	return bwd_train_cpu(c, N, C, HW, x, w, mean, invstd, dy, dx, dw, db, 0);
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
	int train;
	int64_t N, C, HW;
	double eps;
	float *mean, *invstd;       /* train: batch statistics */
	const float *rmean, *rvar;  /* eval: running statistics (not changed in eval) */
};

/* On the CPU a fresh dx (the node's writes bit 0, set for CPU inputs) is
 * overwritten; the device tables add, into a zeroed gradient. */
static int bn_backward(struct fd_ctx *c, struct fd_node *n)
{
	const struct bn_saved *s = n->saved;
	struct fd_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
	float *dx = wants(x) ? x->grad : NULL, *dw = wants(w) ? w->grad : NULL;
	float *db = wants(b) ? b->grad : NULL;
	int wr = (x->flags & FD_T_GRAD_FRESH) != 0;
	if (x->dev == FD_DEV_CPU)
		return s->train ? bwd_train_cpu(c, s->N, s->C, s->HW, x->data, w->data, s->mean, s->invstd,
						n->out->grad, dx, dw, db, wr)
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

struct fd_tensor *fd_batchnorm2d(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w,
				 struct fd_tensor *b, struct fd_tensor *rm, struct fd_tensor *rv,
				 struct fd_tensor *nbt, double momentum, double eps)
{
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
	struct fd_tensor *in[3] = {x, w, b};
	int rec = fd_needs_grad(c, 3, in);
	struct fd_tensor *y;
	struct bn_saved sv = {c->training, N, C, HW, eps, NULL, NULL, rm->data, rv->data};
	if (c->training) {
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
		struct fd_node *n = fd_tape_push(c, "batchnorm2d", bn_backward, 3, in, y, sizeof sv);
		if (!n)
			return NULL;
		*(struct bn_saved *)n->saved = sv;
		if (x->dev == FD_DEV_CPU)
			n->writes = 1u; /* bn_backward overwrites a fresh dx */
	}
	return y;
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
