/* layernorm2d: statistics over C at stride HW. Work is split into (n, block
 * of 64 positions) tiles so the inner loops run along contiguous memory. */
#include "nn/layernorm2d.h"
#include "nn/layout.h"
#include "nn/fd_backend.h"

#include <math.h>

#define TILE 64

int fd_layernorm2d_fwd_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, float eps, const float *x,
		    const float *w, const float *b, float *y, float *mean, float *rstd)
{
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
				mean[n * HW + p0 + p] = m[p];
				rstd[n * HW + p0 + p] = r[p];
			}
			float *yn = y + n * C * HW + p0;
			for (int64_t ch = 0; ch < C; ch++) {
				float wc = w[ch], bc = b[ch];
				for (int64_t p = 0; p < np; p++)
					yn[ch * HW + p] = (xn[ch * HW + p] - m[p]) * r[p] * wc + bc;
			}
		}
	return 0;
}

int fd_layernorm2d_bwd_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
		    const float *w, const float *mean, const float *rstd, const float *dy, float *dx,
		    float *dw, float *db)
{
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
					dn[ch * HW + p] += r[p] * (gn[ch * HW + p] * wc - a[p] - xh * bq[p]);
				}
			}
		}
	return 0;
}

struct ln_saved {
	int64_t N, C, HW;
	float *mean, *rstd;
};

static struct fd_tensor *grad_of(struct fd_tensor *t)
{
	return (t->flags & FD_T_REQUIRES_GRAD) ? t : NULL;
}

static int ln_backward(struct fd_ctx *c, struct fd_node *n)
{
	const struct ln_saved *s = n->saved;
	struct fd_tensor *x = n->in[0], *w = n->in[1], *b = n->in[2];
	const struct fd_backend *be = FD_KERNEL(c, x->dev, layernorm2d_bwd);
	if (!be)
		return -1;
	return be->layernorm2d_bwd(c, s->N, s->C, s->HW, x->data, w->data, s->mean, s->rstd, n->out->grad,
			    grad_of(x) ? x->grad : NULL, grad_of(w) ? w->grad : NULL,
			    grad_of(b) ? b->grad : NULL);
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
	const struct fd_backend *be = FD_KERNEL(c, x->dev, layernorm2d_fwd);
	struct fd_tensor *y = be ? fd_tensor_like(c, x) : NULL;
	float *mean = y ? fd_ctx_alloc(c, x->dev, N * HW) : NULL;
	float *rstd = mean ? fd_ctx_alloc(c, x->dev, N * HW) : NULL;
	if (!rstd || be->layernorm2d_fwd(c, N, C, HW, eps, x->data, w->data, b->data, y->data, mean, rstd) < 0)
		return NULL;
	struct fd_tensor *in[3] = {x, w, b};
	if (fd_needs_grad(c, 3, in)) {
		struct fd_node *n = fd_tape_push(c, "layernorm2d", ln_backward, 3, in, y, sizeof(struct ln_saved));
		if (!n)
			return NULL;
		*(struct ln_saved *)n->saved = (struct ln_saved){N, C, HW, mean, rstd};
	}
	return y;
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
