/* softmax: max-subtracted, sums in double; parallel over (outer, inner) lines. */
#include "nn/softmax.h"
#include "nn/layout.h"
#include "nn/fd_backend.h"

#include <math.h>

int fd_softmax_fwd_cpu(struct fd_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *x,
		       float *y)
{
#pragma omp parallel for collapse(2) num_threads(c->threads) schedule(static)
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			const float *xp = x + o * C * inner + i;
			float *yp = y + o * C * inner + i;
			float m = xp[0];
			for (int64_t k = 1; k < C; k++)
				m = fmaxf(m, xp[k * inner]);
			double s = 0;
			for (int64_t k = 0; k < C; k++) {
				float e = expf(xp[k * inner] - m);
				yp[k * inner] = e;
				s += e;
			}
			float r = (float)(1.0 / s);
			for (int64_t k = 0; k < C; k++)
				yp[k * inner] *= r;
		}
	return 0;
}

int fd_softmax_bwd_cpu(struct fd_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *y,
		       const float *dy, float *dx)
{
#pragma omp parallel for collapse(2) num_threads(c->threads) schedule(static)
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			int64_t base = o * C * inner + i;
			double s = 0;
			for (int64_t k = 0; k < C; k++)
				s += (double)dy[base + k * inner] * y[base + k * inner];
			for (int64_t k = 0; k < C; k++)
				dx[base + k * inner] += y[base + k * inner] * (dy[base + k * inner] - (float)s);
		}
	return 0;
}

struct softmax_saved {
	int64_t outer, C, inner;
};

static int softmax_backward(struct fd_ctx *c, struct fd_node *n)
{
	const struct softmax_saved *s = n->saved;
	const struct fd_backend *be = FD_KERNEL(c, n->out->dev, softmax_bwd);
	return be ? be->softmax_bwd(c, s->outer, s->C, s->inner, n->out->data, n->out->grad,
				    n->in[0]->grad)
		  : -1;
}

struct fd_tensor *fd_softmax(struct fd_ctx *c, struct fd_tensor *x, int dim)
{
	if (!x)
		return NULL;
	if (!(x = fd_to_layout(c, x, FD_NCHW)))
		return NULL;
	if (dim < 0 || dim >= x->ndim)
		return fd_fail(c, "softmax over dim %d of a %d-dim tensor", dim, x->ndim);
	struct softmax_saved g = {1, x->shape[dim], 1};
	for (int i = 0; i < dim; i++)
		g.outer *= x->shape[i];
	for (int i = dim + 1; i < x->ndim; i++)
		g.inner *= x->shape[i];
	const struct fd_backend *be = FD_KERNEL(c, x->dev, softmax_fwd);
	struct fd_tensor *y = be ? fd_tensor_new(c, x->dev, x->ndim, x->shape) : NULL;
	if (!y || be->softmax_fwd(c, g.outer, g.C, g.inner, x->data, y->data) < 0)
		return NULL;
	if (fd_needs_grad(c, 1, &x)) {
		struct fd_node *n = fd_tape_push(c, "softmax", softmax_backward, 1, &x, y, sizeof g);
		if (!n)
			return NULL;
		*(struct softmax_saved *)n->saved = g;
	}
	return y;
}

void fd_softmax_ref_forward(int64_t outer, int64_t C, int64_t inner, const double *x, double *y)
{
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			const double *xp = x + o * C * inner + i;
			double *yp = y + o * C * inner + i;
			double m = xp[0], s = 0;
			for (int64_t k = 1; k < C; k++)
				m = fmax(m, xp[k * inner]);
			for (int64_t k = 0; k < C; k++)
				s += yp[k * inner] = exp(xp[k * inner] - m);
			for (int64_t k = 0; k < C; k++)
				yp[k * inner] /= s;
		}
}

void fd_softmax_ref_backward(int64_t outer, int64_t C, int64_t inner, const double *y, const double *dy,
			     double *dx)
{
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			int64_t base = o * C * inner + i;
			double s = 0;
			for (int64_t k = 0; k < C; k++)
				s += dy[base + k * inner] * y[base + k * inner];
			for (int64_t k = 0; k < C; k++)
				dx[base + k * inner] += y[base + k * inner] * (dy[base + k * inner] - s);
		}
}
