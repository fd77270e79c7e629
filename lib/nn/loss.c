/* loss: the two training losses; sums in double. */
#include "nn/loss.h"
#include "nn/fd_backend.h"

#include <math.h>
#include <string.h>

int fd_bce_fwd_cpu(struct fd_ctx *c, int64_t n, const float *x, const float *t, double *loss)
{
	double s = 0;
#pragma omp parallel for reduction(+ : s) num_threads(c->threads) schedule(static)
	for (int64_t i = 0; i < n; i++) {
		double v = x[i];
		s += (v > 0 ? v : 0) - v * t[i] + log1p(exp(-fabs(v)));
	}
	*loss = s / (double)n;
	return 0;
}

int fd_bce_bwd_cpu(struct fd_ctx *c, int64_t n, const float *x, const float *t, float g, float *dx)
{
	float k = g / (float)n;
#pragma omp parallel for num_threads(c->threads) schedule(static)
	for (int64_t i = 0; i < n; i++)
		dx[i] += k * (1.0f / (1.0f + expf(-x[i])) - t[i]);
	return 0;
}

int fd_ce_fwd_cpu(struct fd_ctx *c, int64_t N, int64_t K, const float *x, const int32_t *label,
		  float *prob, double *loss)
{
	double s = 0;
#pragma omp parallel for reduction(+ : s) num_threads(c->threads) schedule(static)
	for (int64_t n = 0; n < N; n++) {
		const float *xp = x + n * K;
		float m = xp[0];
		for (int64_t k = 1; k < K; k++)
			m = fmaxf(m, xp[k]);
		double z = 0;
		for (int64_t k = 0; k < K; k++)
			z += exp((double)xp[k] - m);
		for (int64_t k = 0; k < K; k++)
			prob[n * K + k] = (float)(exp((double)xp[k] - m) / z);
		s += log(z) + m - xp[label[n]];
	}
	*loss = s / (double)N;
	return 0;
}

int fd_ce_bwd_cpu(struct fd_ctx *c, int64_t N, int64_t K, const float *prob, const int32_t *label,
		  float g, float *dx)
{
	float k = g / (float)N;
#pragma omp parallel for num_threads(c->threads) schedule(static)
	for (int64_t n = 0; n < N; n++)
		for (int64_t j = 0; j < K; j++)
			dx[n * K + j] += k * (prob[n * K + j] - (j == label[n] ? 1.0f : 0.0f));
	return 0;
}

/* The [1] loss tensor lives on the logits' device; its value is read back
 * from the host double the kernel returned. */
static struct fd_tensor *scalar(struct fd_ctx *c, enum fd_dev dev, double v)
{
	int64_t one = 1;
	struct fd_tensor *y = fd_tensor_new(c, dev, 1, &one);
	const struct fd_backend *be = y ? FD_KERNEL(c, dev, copy_h2d) : NULL;
	float f = (float)v;
	if (!be || be->copy_h2d(c, y->data, &f, sizeof f) < 0)
		return NULL;
	return y;
}

/* The loss's seed gradient (on its device) as the host float the backward
 * kernels take by value. */
static int seed_of(struct fd_ctx *c, const struct fd_tensor *y, float *g)
{
	if (y->dev == FD_DEV_CPU) {
		*g = y->grad[0];
		return 0;
	}
	const struct fd_backend *be = FD_KERNEL(c, y->dev, copy_d2h);
	return be ? be->copy_d2h(c, g, y->grad, sizeof *g) : -1;
}

static int bce_backward(struct fd_ctx *c, struct fd_node *n)
{
	struct fd_tensor *x = n->in[0], *t = n->in[1];
	const struct fd_backend *be = FD_KERNEL(c, x->dev, bce_bwd);
	float g;
	if (!be || seed_of(c, n->out, &g) < 0)
		return -1;
	return be->bce_bwd(c, x->numel, x->data, t->data, g, x->grad);
}

struct fd_tensor *fd_bce_with_logits(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *t)
{
	if (!x || !t)
		return NULL;
	char b1[64], b2[64];
	if (x->numel != t->numel || x->dev != t->dev)
		return fd_fail(c, "bce_with_logits: logits %s and targets %s do not match",
			       fd_tensor_shape_str(x, b1, sizeof b1), fd_tensor_shape_str(t, b2, sizeof b2));
	double loss;
	const struct fd_backend *be = FD_KERNEL(c, x->dev, bce_fwd);
	if (!be || be->bce_fwd(c, x->numel, x->data, t->data, &loss) < 0)
		return NULL;
	struct fd_tensor *y = scalar(c, x->dev, loss);
	if (!y)
		return NULL;
	struct fd_tensor *in[2] = {x, t};
	if (fd_needs_grad(c, 1, &x) && !fd_tape_push(c, "bce_with_logits", bce_backward, 2, in, y, 0))
		return NULL;
	return y;
}

struct ce_saved {
	float *prob;
	int32_t *label;
};

static int ce_backward(struct fd_ctx *c, struct fd_node *n)
{
	const struct ce_saved *s = n->saved;
	struct fd_tensor *x = n->in[0];
	const struct fd_backend *be = FD_KERNEL(c, x->dev, ce_bwd);
	float g;
	if (!be || seed_of(c, n->out, &g) < 0)
		return -1;
	return be->ce_bwd(c, x->shape[0], x->shape[1], s->prob, s->label, g, x->grad);
}

struct fd_tensor *fd_cross_entropy(struct fd_ctx *c, struct fd_tensor *x, const int32_t *label)
{
	if (!x)
		return NULL;
	char b1[64];
	if (x->ndim != 2)
		return fd_fail(c, "cross_entropy: logits %s are not [N,K]", fd_tensor_shape_str(x, b1, sizeof b1));
	int64_t N = x->shape[0], K = x->shape[1];
	for (int64_t i = 0; i < N; i++)
		if (label[i] < 0 || label[i] >= K)
			return fd_fail(c, "cross_entropy: label %d of row %lld outside [0, %lld)", (int)label[i],
				       (long long)i, (long long)K);
	/* the labels (host memory, checked above) go to the logits' device, in
	 * the step arena: int32 as the floats' 4 bytes */
	int32_t *lab = (int32_t *)fd_ctx_alloc(c, x->dev, N);
	float *prob = lab ? fd_ctx_alloc(c, x->dev, N * K) : NULL;
	const struct fd_backend *bc = prob ? FD_KERNEL(c, x->dev, copy_h2d) : NULL;
	if (!bc || bc->copy_h2d(c, lab, label, (size_t)N * sizeof *lab) < 0)
		return NULL;
	double loss;
	const struct fd_backend *be = FD_KERNEL(c, x->dev, ce_fwd);
	if (!be || be->ce_fwd(c, N, K, x->data, lab, prob, &loss) < 0)
		return NULL;
	struct fd_tensor *y = scalar(c, x->dev, loss);
	if (!y)
		return NULL;
	if (fd_needs_grad(c, 1, &x)) {
		struct fd_node *n = fd_tape_push(c, "cross_entropy", ce_backward, 1, &x, y, sizeof(struct ce_saved));
		if (!n)
			return NULL;
		*(struct ce_saved *)n->saved = (struct ce_saved){prob, lab};
	}
	return y;
}

double fd_bce_ref_forward(int64_t n, const double *x, const double *t)
{
	double s = 0;
	for (int64_t i = 0; i < n; i++)
		s += fmax(x[i], 0.0) - x[i] * t[i] + log1p(exp(-fabs(x[i])));
	return s / (double)n;
}

void fd_bce_ref_backward(int64_t n, const double *x, const double *t, double g, double *dx)
{
	for (int64_t i = 0; i < n; i++)
		dx[i] += g / (double)n * (1.0 / (1.0 + exp(-x[i])) - t[i]);
}

/* max and sum of exp(x - max) of one row */
static double ce_ref_row(int64_t K, const double *xp, double *z)
{
	double m = xp[0];
	for (int64_t k = 1; k < K; k++)
		m = fmax(m, xp[k]);
	*z = 0;
	for (int64_t k = 0; k < K; k++)
		*z += exp(xp[k] - m);
	return m;
}

double fd_ce_ref_forward(int64_t N, int64_t K, const double *x, const int32_t *label)
{
	double s = 0;
	for (int64_t n = 0; n < N; n++) {
		double z, m = ce_ref_row(K, x + n * K, &z);
		s += log(z) + m - x[n * K + label[n]];
	}
	return s / (double)N;
}

void fd_ce_ref_backward(int64_t N, int64_t K, const double *x, const int32_t *label, double g,
			double *dx)
{
	for (int64_t n = 0; n < N; n++) {
		double z, m = ce_ref_row(K, x + n * K, &z);
		for (int64_t k = 0; k < K; k++)
			dx[n * K + k] += g / (double)N * (exp(x[n * K + k] - m) / z - (k == label[n] ? 1.0 : 0.0));
	}
}
