/* layernorm2d: statistics over C at stride HW. Work is split into (n, block
 * of 64 positions) tiles so the inner loops run along contiguous memory. */
#include "nn/layernorm2d.h"
#include "nn/layout.h"
#include "nn/fd_backend.h"

#include <math.h>

#include "core/fd_vec.h"
#include "nn/act_inline.h"

#define TILE 64

/* ---------- channels last: [M, C] rows (HW == 1) ----------
 * Each row's statistics are a reduction along contiguous memory: the row
 * kernels below sum in double over NACC interleaved accumulators (element i
 * to accumulator i % NACC, folded pairwise: a fixed order, so every clone
 * gives the same bits) while the row sits in L1, and the backward's
 * parameter sums go to per-chunk double rows (at most MAXCH chunks of at
 * least RCHUNK values, fixed by M and C) added in order: no strided walks,
 * one read of x and dy per pass, results independent of the thread count. */
#define NACC 8
#define RCHUNK 16384
#define MAXCH 64

static double fold8(const double *a)
{
	return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* mean and 1/sqrt(var + eps) of one row, two passes about the mean */
FD_VEC_CLONES
static void row_stats(const float *x, int64_t C, double eps, float *mean, float *rstd)
{
	double a[NACC] = {0}, v[NACC] = {0};
	int64_t i = 0;
	for (; i + NACC <= C; i += NACC)
		for (int k = 0; k < NACC; k++)
			a[k] += x[i + k];
	for (int k = 0; i < C; i++, k++)
		a[k] += x[i];
	double m = fold8(a) / (double)C;
	for (i = 0; i + NACC <= C; i += NACC)
		for (int k = 0; k < NACC; k++) {
			double d = x[i + k] - m;
			v[k] += d * d;
		}
	for (int k = 0; i < C; i++, k++) {
		double d = x[i] - m;
		v[k] += d * d;
	}
	*mean = (float)m;
	*rstd = (float)(1.0 / sqrt(fold8(v) / (double)C + eps));
}

FD_VEC_CLONES
static void row_affine(const float *x, float *y, int64_t C, float m, float r, const float *w, const float *b)
{
	for (int64_t i = 0; i < C; i++)
		y[i] = (x[i] - m) * r * w[i] + b[i];
}

/* sg = sum dy w, sgx = sum dy w xhat over one row (xhat = (x - m) r) */
FD_VEC_CLONES
static void row_dsums(const float *x, const float *g, const float *w, int64_t C, float m, float r,
		      double *sg, double *sgx)
{
	double a[NACC] = {0}, b[NACC] = {0};
	int64_t i = 0;
	for (; i + NACC <= C; i += NACC)
		for (int k = 0; k < NACC; k++) {
			double gw = (double)g[i + k] * w[i + k];
			a[k] += gw;
			b[k] += gw * ((x[i + k] - m) * r);
		}
	for (int k = 0; i < C; i++, k++) {
		double gw = (double)g[i] * w[i];
		a[k] += gw;
		b[k] += gw * ((x[i] - m) * r);
	}
	*sg = fold8(a), *sgx = fold8(b);
}

/* dx += r (dy w - a - xhat bq) (wr: dx = ..., a fresh gradient) */
FD_VEC_CLONES
static void row_dx(const float *x, const float *g, const float *w, float *dx, int64_t C, float m, float r,
		   float a, float bq, int wr)
{
	if (wr)
		for (int64_t i = 0; i < C; i++) {
			float xh = (x[i] - m) * r;
			dx[i] = r * (g[i] * w[i] - a - xh * bq);
		}
	else
		for (int64_t i = 0; i < C; i++) {
			float xh = (x[i] - m) * r;
			dx[i] += r * (g[i] * w[i] - a - xh * bq);
		}
}

/* aw += dy xhat, ab += dy (either NULL) */

FD_VEC_CLONES
static void row_param(const float *x, const float *g, int64_t C, float m, float r, double *aw, double *ab)
{
	if (aw)
		for (int64_t i = 0; i < C; i++)
			aw[i] += (double)g[i] * ((x[i] - m) * r);
	if (ab)
		for (int64_t i = 0; i < C; i++)
			ab[i] += g[i];
}

/* row_param with both sums and row_dsums in one pass over the row: each
 * sum receives the same terms in the same order as there (the same bits),
 * x and dy read and xhat formed once */
FD_VEC_CLONES
static void row_param_dsums(const float *restrict x, const float *restrict g, const float *restrict w, int64_t C,
			    float m, float r, double *restrict aw, double *restrict ab, double *sg, double *sgx)
{
	double a[NACC] = {0}, b[NACC] = {0};
	int64_t i = 0;
	for (; i + NACC <= C; i += NACC)
		for (int k = 0; k < NACC; k++) {
			float xh = (x[i + k] - m) * r;
			double gw = (double)g[i + k] * w[i + k];
			aw[i + k] += (double)g[i + k] * xh;
			ab[i + k] += g[i + k];
			a[k] += gw;
			b[k] += gw * xh;
		}
	for (int k = 0; i < C; i++, k++) {
		float xh = (x[i] - m) * r;
		double gw = (double)g[i] * w[i];
		aw[i] += (double)g[i] * xh;
		ab[i] += g[i];
		a[k] += gw;
		b[k] += gw * xh;
	}
	*sg = fold8(a), *sgx = fold8(b);
}

/* row_affine with y rounded to bf16 (fd_ai_bf16) in the registers: bf16
 * contexts only (AVX512-BF16 checked), hence the target */
FD_VEC_AVX512_ONLY
static void row_affine_b(const float *x, uint16_t *y, int64_t C, float m, float r, const float *w, const float *b)
{
	for (int64_t i = 0; i < C; i++)
		y[i] = fd_ai_bf16((x[i] - m) * r * w[i] + b[i]);
}

/* y = (x - m) r (normalize only; y may be x) */
FD_VEC_CLONES
static void row_norm(const float *x, float *y, int64_t C, float m, float r)
{
	for (int64_t i = 0; i < C; i++)
		y[i] = (x[i] - m) * r;
}

static int64_t rows_per_chunk(int64_t M, int64_t C)
{
	int64_t rpc = RCHUNK / C > 0 ? RCHUNK / C : 1;
	return rpc < (M + MAXCH - 1) / MAXCH ? (M + MAXCH - 1) / MAXCH : rpc;
}

/* Row m of x: the floats themselves, or (xb: x holds bf16 values) the
 * row widened exactly into buf (C floats): the row kernels then do the
 * fp32 arithmetic on the widened values */
static const float *row_x(const void *x, int xb, int64_t m, int64_t C, float *buf)
{
	if (!xb)
		return (const float *)x + m * C;
	const uint16_t *r = (const uint16_t *)x + m * C;
	for (int64_t i = 0; i < C; i++) {
		uint32_t u = (uint32_t)r[i] << 16;
		__builtin_memcpy(buf + i, &u, sizeof u);
	}
	return buf;
}

/* The rows' forward; yb: y in bf16 instead (y NULL; w and b given); xb:
 * x holds bf16 values (C <= FD_LN_BF16_MAXC, row_x) */
static void rows_fwd(int threads, int64_t M, int64_t C, float eps, const void *x, int xb, const float *w,
		     const float *b, float *y, uint16_t *yb, float *mean, float *rstd)
{
	int64_t rpc = rows_per_chunk(M, C), nch = (M + rpc - 1) / rpc;
#pragma omp parallel for num_threads(threads) schedule(static) if (nch > 1)
	for (int64_t i = 0; i < nch; i++) {
		float buf[xb ? C : 1];
		for (int64_t m = i * rpc; m < M && m < (i + 1) * rpc; m++) {
			const float *xr = row_x(x, xb, m, C, buf);
			float mm, rr;
			row_stats(xr, C, (double)eps, &mm, &rr);
			if (mean)
				mean[m] = mm, rstd[m] = rr;
			if (yb)
				row_affine_b(xr, yb + m * C, C, mm, rr, w, b);
			else if (w)
				row_affine(xr, y + m * C, C, mm, rr, w, b);
			else
				row_norm(xr, y + m * C, C, mm, rr);
		}
	}
}

static int rows_bwd(struct fd_ctx *c, int64_t M, int64_t C, const void *x, int xb, const float *w,
		    const float *mean, const float *rstd, const float *dy, float *dx, float *dw, float *db, int wr)
{
	int64_t rpc = rows_per_chunk(M, C), nch = (M + rpc - 1) / rpc;
	double *part = NULL;
	if ((dw || db) && !(part = (double *)fd_ctx_alloc(c, FD_DEV_CPU, 4 * nch * C)))
		return -1;
#pragma omp parallel for num_threads(c->threads) schedule(static) if (nch > 1)
	for (int64_t i = 0; i < nch; i++) {
		double *aw = dw ? part + 2 * i * C : NULL, *ab = db ? part + 2 * i * C + C : NULL;
		if (part)
			for (int64_t j = 0; j < 2 * C; j++)
				part[2 * i * C + j] = 0;
		float buf[xb ? C : 1];
		for (int64_t m = i * rpc; m < M && m < (i + 1) * rpc; m++) {
			const float *xr = row_x(x, xb, m, C, buf), *gr = dy + m * C;
			double sg, sgx;
			if (aw && ab && dx) {
				row_param_dsums(xr, gr, w, C, mean[m], rstd[m], aw, ab, &sg, &sgx);
			} else {
				if (part)
					row_param(xr, gr, C, mean[m], rstd[m], aw, ab);
				if (!dx)
					continue;
				row_dsums(xr, gr, w, C, mean[m], rstd[m], &sg, &sgx);
			}
			row_dx(xr, gr, w, dx + m * C, C, mean[m], rstd[m], (float)(sg / (double)C),
			       (float)(sgx / (double)C), wr);
		}
	}
	for (int64_t j = 0; part && j < C; j++) {
		double sw = 0, sb = 0;
		for (int64_t i = 0; i < nch; i++)
			sw += part[2 * i * C + j], sb += part[2 * i * C + C + j];
		if (dw)
			dw[j] += (float)sw;
		if (db)
			db[j] += (float)sb;
	}
	return 0;
}

int fd_layernorm2d_fwd_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, float eps, const float *x,
		    const float *w, const float *b, float *y, float *mean, float *rstd)
{
	if (HW == 1) {
		rows_fwd(c->threads, N, C, eps, x, 0, w, b, y, NULL, mean, rstd);
		return 0;
	}
	int64_t nt = (HW + TILE - 1) / TILE;
#pragma omp parallel for collapse(2) num_threads(c->threads) schedule(static)
	for (int64_t n = 0; n < N; n++)
		for (int64_t t = 0; t < nt; t++) {
			int64_t p0 = t * TILE, np = HW - p0 < TILE ? HW - p0 : TILE;
			double s[TILE] = {0}, v[TILE] = {0};
			const float *xn = x + n * C * HW + p0;
			for (int64_t ch = 0; ch < C; ch++)
				for (int64_t p = 0; p < np; p++)
					s[p] += xn[ch * HW + p];
			for (int64_t p = 0; p < np; p++)
				s[p] /= (double)C;
			for (int64_t ch = 0; ch < C; ch++)
				for (int64_t p = 0; p < np; p++) {
					double d = xn[ch * HW + p] - s[p];
					v[p] += d * d;
				}
			float m[TILE], r[TILE];
			for (int64_t p = 0; p < np; p++) {
				m[p] = (float)s[p];
				r[p] = (float)(1.0 / sqrt(v[p] / (double)C + (double)eps));
				if (mean)
					mean[n * HW + p0 + p] = m[p], rstd[n * HW + p0 + p] = r[p];
			}
			float *yn = y + n * C * HW + p0;
			for (int64_t ch = 0; ch < C; ch++) {
				if (!w) {
					for (int64_t p = 0; p < np; p++)
						yn[ch * HW + p] = (xn[ch * HW + p] - m[p]) * r[p];
					continue;
				}
				float wc = w[ch], bc = b[ch];
				for (int64_t p = 0; p < np; p++)
					yn[ch * HW + p] = (xn[ch * HW + p] - m[p]) * r[p] * wc + bc;
			}
		}
	return 0;
}

/* Backward on the CPU; wr: dx is a fresh gradient, overwritten; xb: x
 * holds bf16 values (rows only: HW == 1) */
static int bwd_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const void *xv, int xb, const float *w,
		   const float *mean, const float *rstd, const float *dy, float *dx, float *dw, float *db, int wr)
{
	if (HW == 1)
		return rows_bwd(c, N, C, xv, xb, w, mean, rstd, dy, dx, dw, db, wr);
	const float *x = xv;
	if (dw || db) {
#pragma omp parallel for num_threads(c->threads) schedule(static)
		for (int64_t ch = 0; ch < C; ch++) {
			double sw = 0, sb = 0;
			for (int64_t n = 0; n < N; n++) {
				const float *xp = x + (n * C + ch) * HW, *g = dy + (n * C + ch) * HW;
				const float *m = mean + n * HW, *r = rstd + n * HW;
				for (int64_t p = 0; p < HW; p++) {
					sw += (double)g[p] * ((xp[p] - m[p]) * r[p]);
					sb += g[p];
				}
			}
			if (dw)
				dw[ch] += (float)sw;
			if (db)
				db[ch] += (float)sb;
		}
	}
	if (!dx)
		return 0;
	int64_t nt = (HW + TILE - 1) / TILE;
#pragma omp parallel for collapse(2) num_threads(c->threads) schedule(static)
	for (int64_t n = 0; n < N; n++)
		for (int64_t t = 0; t < nt; t++) {
			int64_t p0 = t * TILE, np = HW - p0 < TILE ? HW - p0 : TILE;
			double sg[TILE] = {0}, sgx[TILE] = {0};
			const float *xn = x + n * C * HW + p0, *gn = dy + n * C * HW + p0;
			const float *m = mean + n * HW + p0, *r = rstd + n * HW + p0;
			for (int64_t ch = 0; ch < C; ch++) {
				float wc = w[ch];
				for (int64_t p = 0; p < np; p++) {
					double g = (double)gn[ch * HW + p] * wc;
					sg[p] += g;
					sgx[p] += g * ((xn[ch * HW + p] - m[p]) * r[p]);
				}
			}
			float a[TILE], bq[TILE];
			for (int64_t p = 0; p < np; p++) {
				a[p] = (float)(sg[p] / (double)C);
				bq[p] = (float)(sgx[p] / (double)C);
			}
			float *dn = dx + n * C * HW + p0;
			for (int64_t ch = 0; ch < C; ch++) {
				float wc = w[ch];
				for (int64_t p = 0; p < np; p++) {
					float xh = (xn[ch * HW + p] - m[p]) * r[p];
					float v = r[p] * (gn[ch * HW + p] * wc - a[p] - xh * bq[p]);
					dn[ch * HW + p] = wr ? v : dn[ch * HW + p] + v;
				}
			}
		}
	return 0;
}

int fd_layernorm2d_bwd_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
		    const float *w, const float *mean, const float *rstd, const float *dy, float *dx,
		    float *dw, float *db)
{
	return bwd_cpu(c, N, C, HW, x, 0, w, mean, rstd, dy, dx, dw, db, 0);
}

struct ln_saved {
	int64_t N, C, HW;
	float *mean, *rstd;
};

static struct fd_tensor *grad_of(struct fd_tensor *t)
{
	return (t->flags & FD_T_REQUIRES_GRAD) ? t : NULL;
}

/* On the CPU a fresh dx (the node's writes bit 0, set for CPU inputs) is
 * overwritten; the device tables add, into a zeroed gradient. */
static int ln_backward(struct fd_ctx *c, struct fd_node *n)
{
	const struct ln_saved *s = n->saved;
	struct fd_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
	float *dx = grad_of(x) ? x->grad : NULL, *dw = grad_of(w) ? w->grad : NULL;
	float *db = grad_of(b) ? b->grad : NULL;
	if (x->dev == FD_DEV_CPU)
		return bwd_cpu(c, s->N, s->C, s->HW, x->data, (x->flags & FD_T_BF16) != 0, w->data, s->mean, s->rstd,
			       n->out->grad, dx, dw, db, (x->flags & FD_T_GRAD_FRESH) != 0);
	const struct fd_backend *be = FD_KERNEL(c, x->dev, layernorm2d_bwd);
	if (!be)
		return -1;
	return be->layernorm2d_bwd(c, s->N, s->C, s->HW, x->data, w->data, s->mean, s->rstd, n->out->grad, dx,
				   dw, db);
}

struct fd_tensor *fd_layernorm2d(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w,
				 struct fd_tensor *b, float eps)
{
	if (!x || !w || !b)
		return NULL;
	char b1[64], b2[64], b3[64];
	if (x->ndim < 2 || w->numel != x->shape[1] || b->numel != x->shape[1] || w->dev != x->dev ||
	    b->dev != x->dev)
		return fd_fail(c, "layernorm2d: input %s, weight %s and bias %s do not match",
			       fd_tensor_shape_str(x, b1, sizeof b1), fd_tensor_shape_str(w, b2, sizeof b2),
			       fd_tensor_shape_str(b, b3, sizeof b3));
	int64_t N = x->shape[0], C = x->shape[1], HW = x->numel / (N * C);
	if (fd_is_nhwc(x)) /* channels last: N*H*W positions of C contiguous values */
		N *= HW, HW = 1;
	/* x in bf16 (a depthwise convolution's output under c->bf16_y): CPU,
	 * channels-last rows, a bf16 context */
	int xb = (x->flags & FD_T_BF16) != 0;
	if (xb && (x->dev != FD_DEV_CPU || HW != 1 || C > FD_LN_BF16_MAXC || c->precision != FD_PREC_BF16))
		return fd_fail(c, "layernorm2d: input %s in bf16: only channels last with at most %d channels on the "
				  "CPU in a bf16 context",
			       fd_tensor_shape_str(x, b1, sizeof b1), FD_LN_BF16_MAXC);
	/* y in bf16 under c->bf16_out, channels last on the CPU (backward reads x only) */
	int yb = c->bf16_out && c->precision == FD_PREC_BF16 && x->dev == FD_DEV_CPU && HW == 1;
	const struct fd_backend *be = FD_KERNEL(c, x->dev, layernorm2d_fwd);
	struct fd_tensor *y = !be ? NULL : yb ? fd_tensor_new_bf16(c, x->ndim, x->shape) : fd_tensor_like(c, x);
	if (y && yb)
		y->layout = x->layout;
	float *mean = y ? fd_ctx_alloc(c, x->dev, N * HW) : NULL;
	float *rstd = mean ? fd_ctx_alloc(c, x->dev, N * HW) : NULL;
	if (!rstd)
		return NULL;
	if (yb || xb)
		rows_fwd(c->threads, N, C, eps, x->data, xb, w->data, b->data, yb ? NULL : y->data,
			 yb ? (uint16_t *)y->data : NULL, mean, rstd);
	else if (be->layernorm2d_fwd(c, N, C, HW, eps, x->data, w->data, b->data, y->data, mean, rstd) < 0)
		return NULL;
	struct fd_tensor *in[3] = {x, w, b};
	if (fd_needs_grad(c, 3, in)) {
		struct fd_node *n = fd_tape_push(c, "layernorm2d", ln_backward, 3, in, y, sizeof(struct ln_saved));
		if (!n)
			return NULL;
		*(struct ln_saved *)n->saved = (struct ln_saved){N, C, HW, mean, rstd};
		if (x->dev == FD_DEV_CPU)
			n->writes = n->aliases = 1u; /* ln_backward overwrites a fresh dx, also dy itself:
						      * dw, db and each row's (tile's) sums are taken
						      * before that row's dx is written */
	}
	return y;
}

struct fd_tensor *fd_layernorm2d_norm_(struct fd_ctx *c, struct fd_tensor *x, float eps)
{
	if (!x)
		return NULL;
	char b1[64];
	if (x->ndim < 2 || x->dev != FD_DEV_CPU || c->dev != FD_DEV_CPU || fd_needs_grad(c, 1, &x))
		return fd_fail(c, "layernorm2d_norm_: input %s: CPU inference only (records no gradient)",
			       fd_tensor_shape_str(x, b1, sizeof b1));
	int64_t N = x->shape[0], C = x->shape[1], HW = x->numel / (N * C);
	if (fd_is_nhwc(x))
		N *= HW, HW = 1;
	fd_layernorm2d_fwd_cpu(c, N, C, HW, eps, x->data, NULL, NULL, x->data, NULL, NULL);
	return x;
}

/* mean and 1/sqrt(var + eps) over C at position p of sample n */
static void ln_ref_stats(int64_t C, int64_t HW, double eps, const double *xn, int64_t p, double *mean,
			 double *rstd)
{
	double s = 0, v = 0;
	for (int64_t ch = 0; ch < C; ch++)
		s += xn[ch * HW + p];
	s /= (double)C;
	for (int64_t ch = 0; ch < C; ch++)
		v += (xn[ch * HW + p] - s) * (xn[ch * HW + p] - s);
	*mean = s;
	*rstd = 1.0 / sqrt(v / (double)C + eps);
}

void fd_layernorm2d_ref_forward(int64_t N, int64_t C, int64_t HW, double eps, const double *x,
				const double *w, const double *b, double *y)
{
	for (int64_t n = 0; n < N; n++)
		for (int64_t p = 0; p < HW; p++) {
			const double *xn = x + n * C * HW;
			double m, r;
			ln_ref_stats(C, HW, eps, xn, p, &m, &r);
			for (int64_t ch = 0; ch < C; ch++)
				y[n * C * HW + ch * HW + p] = (xn[ch * HW + p] - m) * r * w[ch] + b[ch];
		}
}

void fd_layernorm2d_ref_backward(int64_t N, int64_t C, int64_t HW, double eps, const double *x,
				 const double *w, const double *dy, double *dx, double *dw, double *db)
{
	for (int64_t n = 0; n < N; n++)
		for (int64_t p = 0; p < HW; p++) {
			const double *xn = x + n * C * HW, *gn = dy + n * C * HW;
			double m, r, sg = 0, sgx = 0;
			ln_ref_stats(C, HW, eps, xn, p, &m, &r);
			for (int64_t ch = 0; ch < C; ch++) {
				double xh = (xn[ch * HW + p] - m) * r, g = gn[ch * HW + p];
				sg += g * w[ch];
				sgx += g * w[ch] * xh;
				if (dw)
					dw[ch] += g * xh;
				if (db)
					db[ch] += g;
			}
			sg /= (double)C;
			sgx /= (double)C;
			if (dx)
				for (int64_t ch = 0; ch < C; ch++) {
					double xh = (xn[ch * HW + p] - m) * r;
					dx[n * C * HW + ch * HW + p] += r * (gn[ch * HW + p] * w[ch] - sg - xh * sgx);
				}
		}
}
