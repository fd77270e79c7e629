/* se: squeeze-excitation forward in one kernel at inference (see se.h). */
#include "nn/se.h"
#include "core/fd_vec.h"
#include "nn/act.h"

#include <math.h>

/* act(v) in double, for the activations se.h allows (NaN propagates) */
static double act_d(enum fd_act k, double v)
{
	double t;
	switch (k) {
	case FD_ACT_RELU:
		return v < 0 ? 0.0 : v;
	case FD_ACT_HARDSWISH:
		t = v + 3.0;
		t = t < 0 ? 0.0 : t > 6.0 ? 6.0 : t;
		return v * t / 6.0;
	case FD_ACT_HARDSIGMOID: /* relu6(v + 3) / 6, torch's F.hardsigmoid */
		t = v + 3.0;
		t = t < 0 ? 0.0 : t > 6.0 ? 6.0 : t;
		return t / 6.0;
	case FD_ACT_SILU:
		return v / (1.0 + exp(-v));
	default: /* FD_ACT_SIGMOID */
		return 1.0 / (1.0 + exp(-v));
	}
}

static int act_ok(enum fd_act k)
{
	return k == FD_ACT_RELU || k == FD_ACT_HARDSWISH || k == FD_ACT_HARDSIGMOID || k == FD_ACT_SILU ||
	       k == FD_ACT_SIGMOID;
}

/* sum_i w[i] b[i] over i < n in double: lane k of 8 partial sums takes i = k
 * mod 8, the lanes added in a fixed order, so every clone gives the same
 * bits */
FD_VEC_CLONES static double dot8(int64_t n, const float *restrict w, const double *restrict b)
{
	double s[8] = {0};
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (int k = 0; k < 8; k++)
			s[k] += (double)w[i + k] * b[i + k];
	for (int k = 0; i < n; i++, k++)
		s[k] += (double)w[i] * b[i];
	return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* channel sums of one sample: x [HW, C] (vectorised over channels: four
 * rows summed in float, (r0 + r1) + (r2 + r3), then added to the double
 * sums in row order; one double load-add-store per row made it slower
 * than the float pooling it replaced) or [C, HW] (each plane in order) */
FD_VEC_CLONES static void pool(int nhwc, int64_t HW, int64_t C, const float *restrict x, double *restrict p)
{
	for (int64_t k = 0; k < C; k++)
		p[k] = 0;
	if (nhwc) {
		int64_t i = 0;
		for (; i + 4 <= HW; i += 4) {
			const float *r = x + i * C;
			for (int64_t k = 0; k < C; k++)
				p[k] += (double)((r[k] + r[C + k]) + (r[2 * C + k] + r[3 * C + k]));
		}
		for (; i < HW; i++)
			for (int64_t k = 0; k < C; k++)
				p[k] += x[i * C + k];
		return;
	}
	for (int64_t k = 0; k < C; k++)
		for (int64_t i = 0; i < HW; i++)
			p[k] += x[k * HW + i];
}

FD_VEC_CLONES static void scale(int nhwc, int64_t HW, int64_t C, float *restrict x, const float *restrict s)
{
	if (nhwc) {
		for (int64_t i = 0; i < HW; i++)
			for (int64_t k = 0; k < C; k++)
				x[i * C + k] *= s[k];
		return;
	}
	for (int64_t k = 0; k < C; k++)
		for (int64_t i = 0; i < HW; i++)
			x[k * HW + i] *= s[k];
}

void fd_se_gate(int64_t C, int64_t Q, const double *mean, const float *W1, const float *B1, const float *W2,
		const float *B2, enum fd_act act, enum fd_act gate, double *h, float *g)
{
	for (int64_t j = 0; j < Q; j++)
		h[j] = act_d(act, B1[j] + dot8(C, W1 + j * C, mean));
	for (int64_t k = 0; k < C; k++)
		g[k] = (float)act_d(gate, B2[k] + dot8(Q, W2 + k * Q, h));
}

int fd_se_act_ok(enum fd_act k)
{
	return act_ok(k);
}

/* t is [rows, cols] or [rows, cols, 1, 1] */
static int is_mat(const struct fd_tensor *t, int64_t rows, int64_t cols)
{
	return t && t->shape[0] == rows && t->numel == rows * cols &&
	       (t->ndim == 2 || (t->ndim == 4 && t->shape[1] == cols));
}

struct fd_tensor *fd_se_infer(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w1, struct fd_tensor *b1,
			      struct fd_tensor *w2, struct fd_tensor *b2, enum fd_act act, enum fd_act gate)
{
	if (!x || !w1 || !b1 || !w2 || !b2)
		return NULL;
	struct fd_tensor *in[5] = {x, w1, b1, w2, b2};
	for (int i = 0; i < 5; i++)
		if (in[i]->dev != FD_DEV_CPU)
			return fd_fail(c, "se_infer: tensors must be on the cpu");
	if (fd_needs_grad(c, 5, in))
		return fd_fail(c, "se_infer records no gradient: an input needs one");
	if (!act_ok(act) || !act_ok(gate))
		return fd_fail(c, "se_infer: activation %s or gate %s not supported", fd_act_name(act),
			       fd_act_name(gate));
	char b[64];
	if (x->ndim != 4)
		return fd_fail(c, "se_infer: x %s is not [N, C, H, W]", fd_tensor_shape_str(x, b, sizeof b));
	int64_t N = x->shape[0], C = x->shape[1], HW = x->shape[2] * x->shape[3], Q = w1->shape[0];
	if (!is_mat(w1, Q, C) || b1->numel != Q || !is_mat(w2, C, Q) || b2->numel != C)
		return fd_fail(c, "se_infer: weights [%lld, %lld], [%lld], [%lld, %lld], [%lld] do not fit x %s",
			       (long long)w1->shape[0], (long long)(w1->ndim > 1 ? w1->shape[1] : 0),
			       (long long)b1->numel, (long long)w2->shape[0],
			       (long long)(w2->ndim > 1 ? w2->shape[1] : 0), (long long)b2->numel,
			       fd_tensor_shape_str(x, b, sizeof b));
	/* per sample: channel means (double), squeezed (double), gates (float) */
	double *pm = (double *)fd_ctx_alloc(c, FD_DEV_CPU, 2 * N * (C + Q));
	float *g = fd_ctx_alloc(c, FD_DEV_CPU, N * C);
	if (!pm || !g)
		return NULL;
	int nhwc = x->layout == FD_NHWC;
	const float *W1 = w1->data, *B1 = b1->data, *W2 = w2->data, *B2 = b2->data;
	#pragma omp parallel for num_threads(c->threads) schedule(static)
	for (int64_t n = 0; n < N; n++) {
		float *xn = x->data + n * C * HW, *gn = g + n * C;
		double *p = pm + n * (C + Q), *h = p + C;
		pool(nhwc, HW, C, xn, p);
		for (int64_t k = 0; k < C; k++)
			p[k] /= (double)HW;
		fd_se_gate(C, Q, p, W1, B1, W2, B2, act, gate, h, gn);
		scale(nhwc, HW, C, xn, gn);
	}
	c->macs += (uint64_t)(2 * N * C * Q); /* the two 1x1 convolutions', as fd_conv2d counts them */
	return x;
}
