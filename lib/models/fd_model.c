/* fd_model: life cycle, initialisation, layer helpers, weights in and out
 * (fd checkpoints, safetensors, torch .pth) and the MAC count. */
#include "models/fd_model.h"
#include "models/fd_model_file.h"
#include "core/fd_vec.h"
#include "io/fd_pth.h"
#include "io/fd_safetensors.h"
#include "nn/ckpt.h"
#include "nn/act.h"
#include "nn/binary.h"
#include "nn/layout.h"
#include "nn/init.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- views and initialisation ---------- */

int fd_model_param(struct fd_model *m, const char *name, enum fd_pkind kind, int ndim,
		   const int64_t *shape, struct fd_minit init, struct fd_err *e)
{
	if (m->p.n == m->capinit) {
		int nc = m->capinit ? 2 * m->capinit : 64;
		struct fd_minit *ni = realloc(m->init, (size_t)nc * sizeof *ni);
		if (!ni)
			return fd_err_set(e, "out of memory");
		m->init = ni;
		m->capinit = nc;
	}
	int i = fd_params_add(&m->p, name, kind, ndim, shape, e);
	if (i < 0)
		return -1;
	m->init[i] = init;
	return i;
}

static int init_view(struct fd_model *m, int i, uint64_t seed, struct fd_err *e)
{
	struct fd_pview *v = &m->p.v[i];
	const struct fd_minit *in = &m->init[i];
	struct fd_tensor *t = &v->t;
	struct fd_rng r;
	fd_init_rng(&r, seed, v->name);
	int rc = 0;
	switch (in->kind) {
	case FD_MI_ZEROS: fd_init_constant(t, 0.0f); break;
	case FD_MI_ONES: fd_init_constant(t, 1.0f); break;
	case FD_MI_CONSTANT: fd_init_constant(t, (float)in->a); break;
	case FD_MI_TORCH_WEIGHT: rc = fd_init_kaiming_uniform(t, sqrt(5.0), &r, e); break;
	case FD_MI_TORCH_BIAS: rc = fd_init_bias_default(t, &m->p.v[in->ref].t, &r, e); break;
	case FD_MI_KAIMING_OUT: rc = fd_init_kaiming_normal_fan_out(t, &r, e); break;
	case FD_MI_NORMAL: fd_init_normal(t, 0.0, in->a, &r); break;
	case FD_MI_UNIFORM: fd_init_uniform(t, -in->a, in->a, &r); break;
	case FD_MI_TRUNC_NORMAL: rc = fd_init_trunc_normal(t, 0.0, in->a, -in->b, in->b, &r, e); break;
	default: rc = fd_err_set(e, "%s: unknown initialiser %d", v->name, (int)in->kind);
	}
	return rc < 0 ? fd_err_ctx(e, "initialising %s", v->name) : 0;
}

int fd_model_reinit(struct fd_model *m, const char *prefix, uint64_t seed, struct fd_err *e)
{
	int n = 0;
	size_t pl = strlen(prefix);
	for (int i = 0; i < m->p.n; i++)
		if (!strncmp(m->p.v[i].name, prefix, pl)) {
			if (init_view(m, i, seed, e) < 0)
				return -1;
			n++;
		}
	return n;
}

/* ---------- layer helpers ---------- */

static int name2(char *buf, size_t len, const char *a, const char *b, struct fd_err *e)
{
	if ((size_t)snprintf(buf, len, "%s.%s", a, b) >= len)
		return fd_err_set(e, "parameter name '%s.%s' too long", a, b);
	return 0;
}

int fd_model_conv_op(struct fd_model *m, struct fd_conv2d_op *op, struct fd_err *e)
{
	if (m->nconvs == m->capconvs) {
		int nc = m->capconvs ? 2 * m->capconvs : 32;
		struct fd_conv2d_op **n = realloc(m->convs, (size_t)nc * sizeof *n);
		if (!n)
			return fd_err_set(e, "out of memory");
		m->convs = n;
		m->capconvs = nc;
	}
	m->convs[m->nconvs++] = op;
	return 0;
}

int fd_mconv_add(struct fd_model *m, struct fd_mconv *l, const char *name, int cin, int cout, int k,
		 int stride, int pad, int groups, int bias, enum fd_minit_kind init, struct fd_err *e)
{
	char nm[256];
	if (groups < 1 || cin % groups || cout % groups)
		return fd_err_set(e, "%s: %d -> %d channels in %d groups", name, cin, cout, groups);
	int64_t ws[4] = {cout, cin / groups, k, k}, bs[1] = {cout};
	fd_conv2d_op_init(&l->op, stride, pad, 1, groups);
	l->b = -1;
	struct fd_minit wi = {init, 0, 0, 0};
	if (name2(nm, sizeof nm, name, "weight", e) < 0 ||
	    (l->w = fd_model_param(m, nm, FD_P_PARAM, 4, ws, wi, e)) < 0)
		return -1;
	if (bias) {
		struct fd_minit bi = {init == FD_MI_TORCH_WEIGHT ? FD_MI_TORCH_BIAS : FD_MI_ZEROS, 0, 0, l->w};
		if (name2(nm, sizeof nm, name, "bias", e) < 0 ||
		    (l->b = fd_model_param(m, nm, FD_P_PARAM, 1, bs, bi, e)) < 0)
			return -1;
	}
	return fd_model_conv_op(m, &l->op, e);
}

struct fd_tensor *fd_model_tap_at(struct fd_model *m, struct fd_ctx *c, struct fd_tensor *t,
				  const char *fmt, ...)
{
	if (!t || c->failed || !m->tap)
		return t;
	char name[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof name, fmt, ap);
	va_end(ap);
	/* a tap sees what torch's hook sees: NCHW (the forward goes on with
	 * this tensor, so a gradient asked of it is the one that flows) */
	if (!(t = fd_to_layout(c, t, FD_NCHW)))
		return NULL;
	if (m->tap->fn(m->tap->arg, c, name, t) < 0) {
		c->failed = 1;
		return NULL;
	}
	return t;
}

/* The module name of a layer: its weight view's name without ".weight". */
static int module_len(const struct fd_model *m, int w)
{
	const char *n = m->p.v[w].name;
	size_t len = strlen(n);
	return (int)(len > 7 && strcmp(n + len - 7, ".weight") == 0 ? len - 7 : len);
}

struct fd_tensor *fd_mconv_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *l,
			       struct fd_tensor *x)
{
	struct fd_tensor *y = fd_conv2d(c, &l->op, x, fd_model_t(m, l->w), l->b >= 0 ? fd_model_t(m, l->b) : NULL);
	return FD_TAP(m, c, y, "%.*s", module_len(m, l->w), m->p.v[l->w].name);
}

int fd_mbn_add(struct fd_model *m, struct fd_mbn *l, const char *name, int C, double eps,
	       double momentum, struct fd_err *e)
{
	char nm[256];
	int64_t s[1] = {C};
	struct fd_minit one = {FD_MI_ONES, 0, 0, 0}, zero = {FD_MI_ZEROS, 0, 0, 0};
	l->eps = eps;
	l->momentum = momentum;
	if (name2(nm, sizeof nm, name, "weight", e) < 0 || (l->w = fd_model_param(m, nm, FD_P_PARAM, 1, s, one, e)) < 0 ||
	    name2(nm, sizeof nm, name, "bias", e) < 0 || (l->b = fd_model_param(m, nm, FD_P_PARAM, 1, s, zero, e)) < 0 ||
	    name2(nm, sizeof nm, name, "running_mean", e) < 0 ||
	    (l->rm = fd_model_param(m, nm, FD_P_BUFFER, 1, s, zero, e)) < 0 ||
	    name2(nm, sizeof nm, name, "running_var", e) < 0 ||
	    (l->rv = fd_model_param(m, nm, FD_P_BUFFER, 1, s, one, e)) < 0 ||
	    name2(nm, sizeof nm, name, "num_batches_tracked", e) < 0 ||
	    (l->nbt = fd_model_param(m, nm, FD_P_COUNTER, 0, NULL, zero, e)) < 0)
		return -1;
	return 0;
}

struct fd_tensor *fd_mbn_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mbn *l,
			     struct fd_tensor *x)
{
	return fd_batchnorm2d(c, x, fd_model_t(m, l->w), fd_model_t(m, l->b), fd_model_t(m, l->rm),
			      fd_model_t(m, l->rv), fd_model_t(m, l->nbt), l->momentum, l->eps);
}

/* v rounded once to bf16 (8 significant bits, nearest even), as a float:
 * from double directly, not through float (which could round twice). In
 * float's normal range (double exponents 2^-126 .. 2^127) on the bits: the
 * 45 low fraction bits of 52 dropped, with half of the dropped unit minus
 * one plus the kept last bit added first (the float -> bf16 trick, for
 * double); else (zero, subnormal, inf, NaN: rare) by frexp. */
static float bf16_of_double(double v)
{
	uint64_t u;
	memcpy(&u, &v, sizeof u);
	if ((uint32_t)(u >> 52 & 0x7ff) - 897u <= 253u) {
		u = (u + 0xfffffffffffull + (u >> 45 & 1)) & ~0x1fffffffffffull;
		memcpy(&v, &u, sizeof v);
		return (float)v; /* exact, or inf past bf16's largest */
	}
	int ex;
	if (!isfinite(v))
		return (float)v;
	frexp(v, &ex); /* |v| = m 2^ex, 0.5 <= m < 1: 8 bits from 2^(ex-1) down */
	if (ex < -125)  /* bf16's subnormals: spacing 2^-133 */
		ex = -125;
	return (float)ldexp(nearbyint(ldexp(v, 8 - ex)), ex - 8);
}

/* One output channel's row of a folded weight: o = (sc w) s (s NULL: 1;
 * the products of fold_bn and fd_model_fold_pw, in their order), rounded
 * to float; the bodies take s's presence as a constant. */
static inline __attribute__((always_inline)) void fold_row_b(const int hs, const float *w, double sc,
							     const float *s, float *o, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		o[i] = (float)(sc * w[i] * (hs ? s[i] : 1.0));
}

FD_VEC_CLONES
static void fold_row(const float *w, double sc, const float *s, float *o, int64_t n)
{
	if (s)
		fold_row_b(1, w, sc, s, o, n);
	else
		fold_row_b(0, w, sc, NULL, o, n);
}

/* The same rounded to bf16 by bf16_of_double's fast path (integer
 * operations: the loop vectorises); 1 when a value lies off it (zero,
 * subnormal, inf, NaN), for the caller to redo the row by bf16_of_double
 * itself. */
static inline __attribute__((always_inline)) int fold_row_bf16_b(const int hs, const float *w, double sc,
								 const float *s, float *o, int64_t n)
{
	int off = 0;
	for (int64_t i = 0; i < n; i++) {
		double v = sc * w[i] * (hs ? s[i] : 1.0);
		uint64_t u;
		memcpy(&u, &v, sizeof u);
		off |= (uint32_t)(u >> 52 & 0x7ff) - 897u > 253u;
		u = (u + 0xfffffffffffull + (u >> 45 & 1)) & ~0x1fffffffffffull;
		memcpy(&v, &u, sizeof v);
		o[i] = (float)v;
	}
	return off;
}

FD_VEC_CLONES
static int fold_row_bf16(const float *w, double sc, const float *s, float *o, int64_t n)
{
	return s ? fold_row_bf16_b(1, w, sc, s, o, n) : fold_row_bf16_b(0, w, sc, NULL, o, n);
}

/* fold_row or fold_row_bf16 (bf16), the rare row by bf16_of_double */
static void fold_row_any(int bf16, const float *w, double sc, const float *s, float *o, int64_t n)
{
	if (!bf16)
		fold_row(w, sc, s, o, n);
	else if (fold_row_bf16(w, sc, s, o, n))
		for (int64_t i = 0; i < n; i++)
			o[i] = bf16_of_double(sc * w[i] * (s ? s[i] : 1.0));
}

/* bn folded into cv (see fd_model.h): the new weight [K, C/g, kh, kw] and
 * bias [K] in the arena; in a bf16 context (but for a depthwise cv, whose
 * plan runs fp32) the weight is rounded to bf16 here, from the double
 * product (the convolution's reorder to bf16 is then exact), the bias
 * stays float. Output channels split over c's threads
 * (each value computed alone: the same bits for any thread count). */
static int fold_bn(struct fd_model *m, struct fd_ctx *c, const struct fd_mconv *cv, const struct fd_mbn *bn,
		   struct fd_tensor **wf, struct fd_tensor **bf)
{
	const struct fd_tensor *w = fd_model_t(m, cv->w);
	const float *cb = cv->b >= 0 ? fd_model_t(m, cv->b)->data : NULL;
	const float *g = fd_model_t(m, bn->w)->data, *be = fd_model_t(m, bn->b)->data;
	const float *rm = fd_model_t(m, bn->rm)->data, *rv = fd_model_t(m, bn->rv)->data;
	int64_t K = w->shape[0], per = w->numel / K, nb[1] = {K};
	/* a depthwise plan runs fp32 in a bf16 context (fd_conv2d_bf16_in_fp32) */
	struct fd_conv2d_shape s = {.C = (int)w->shape[1] * cv->op.groups, .groups = cv->op.groups};
	int bf16 = c->precision == FD_PREC_BF16 && !fd_conv2d_bf16_in_fp32(&s);
	if (!(*wf = fd_tensor_new(c, FD_DEV_CPU, 4, w->shape)) || !(*bf = fd_tensor_new(c, FD_DEV_CPU, 1, nb)))
		return -1;
	float *wo = (*wf)->data, *bo = (*bf)->data;
#pragma omp parallel for num_threads(c->threads) schedule(static) if (w->numel >= 65536)
	for (int64_t k = 0; k < K; k++) {
		double sc = g[k] / sqrt((double)rv[k] + bn->eps);
		fold_row_any(bf16, w->data + k * per, sc, NULL, wo + k * per, per);
		bo[k] = (float)(((cb ? cb[k] : 0.0) - rm[k]) * sc + be[k]);
	}
	return 0;
}

int fd_model_fold_pw(struct fd_ctx *c, const struct fd_tensor *w, const struct fd_tensor *b,
		     const struct fd_tensor *is, const struct fd_tensor *ish, const struct fd_tensor *os,
		     struct fd_tensor **wf, struct fd_tensor **bf)
{
	int64_t K = w->shape[0], Ci = w->numel / K, ws[4] = {K, Ci, 1, 1}, bs[1] = {K};
	if (w->dev != FD_DEV_CPU || (b && b->numel != K) || (is && is->numel != Ci) || (ish && ish->numel != Ci) ||
	    (os && os->numel != K))
		return fd_fail(c, "fold_pw: weight [%lld, %lld] and the scales do not match", (long long)K,
			       (long long)Ci), -1;
	if (!(*wf = fd_tensor_new(c, FD_DEV_CPU, 4, ws)) || !(*bf = fd_tensor_new(c, FD_DEV_CPU, 1, bs)))
		return -1;
	const float *W = w->data, *B = b ? b->data : NULL, *S = is ? is->data : NULL;
	const float *T = ish ? ish->data : NULL, *O = os ? os->data : NULL;
	float *wo = (*wf)->data, *bo = (*bf)->data;
	int bf16 = c->precision == FD_PREC_BF16;
#pragma omp parallel for num_threads(c->threads) schedule(static) if (w->numel >= 65536)
	for (int64_t k = 0; k < K; k++) {
		double o = O ? O[k] : 1.0, t = B ? B[k] : 0.0;
		const float *wk = W + k * Ci;
		fold_row_any(bf16, wk, o, S, wo + k * Ci, Ci);
		for (int64_t i = 0; T && i < Ci; i++)
			t += (double)wk[i] * T[i];
		bo[k] = (float)(o * t);
	}
	return 0;
}

/* Whether fd_mconv_bn_fwd folds bn into cv for input x (and the residual
 * id, when not NULL): CPU inference (fp32 or bf16) without a tap
 * (fd_model.h). */
static int folds(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *cv, struct fd_mbn *bn,
		 struct fd_tensor *x, struct fd_tensor *id)
{
	struct fd_tensor *in[6] = {x, fd_model_t(m, cv->w), fd_model_t(m, bn->w), fd_model_t(m, bn->b),
				   cv->b >= 0 ? fd_model_t(m, cv->b) : NULL, id}; /* NULLs: none */
	return c->dev == FD_DEV_CPU && !c->training && !m->tap && !m->unfused && !fd_needs_grad(c, 6, in);
}

int fd_mconv_bn_folds(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *cv, struct fd_mbn *bn,
		      struct fd_tensor *x)
{
	return folds(m, c, cv, bn, x, NULL);
}

int fd_mconv_bn_fold(struct fd_model *m, struct fd_ctx *c, const struct fd_mconv *cv, const struct fd_mbn *bn,
		     struct fd_tensor **wf, struct fd_tensor **bf)
{
	return fold_bn(m, c, cv, bn, wf, bf);
}

/* The eltwise post-op of act (enum fd_act, or -1), FD_CONV_POST_NONE when
 * oneDNN has none for it. */
static enum fd_conv_post post_of(int act)
{
	return act == FD_ACT_RELU ? FD_CONV_POST_RELU
	       : act == FD_ACT_SILU ? FD_CONV_POST_SILU
	       : act == FD_ACT_HARDSWISH ? FD_CONV_POST_HARDSWISH : FD_CONV_POST_NONE;
}

int fd_model_bf16_dy(const struct fd_model *m, const struct fd_ctx *c)
{
	return c->dev == FD_DEV_CPU && c->training && c->precision == FD_PREC_BF16 && !m->tap && !m->unfused &&
	       !m->no_bf16_dy;
}

int fd_model_bf16_y(const struct fd_model *m, const struct fd_ctx *c)
{
	return c->dev == FD_DEV_CPU && c->training && c->precision == FD_PREC_BF16 && !m->tap && !m->unfused &&
	       !m->no_bf16_y;
}

/* cv's convolution of x for the BN after it (its only reader): under
 * fd_model_bf16_y its output in bf16 where the plan can (c->bf16_y) */
static struct fd_tensor *conv_for_bn(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *cv,
				     struct fd_tensor *x)
{
	c->bf16_y = fd_model_bf16_y(m, c);
	struct fd_tensor *h = fd_mconv_fwd(m, c, cv, x);
	c->bf16_y = 0;
	return h;
}

/* c->bf16_dy for the BN after cv: fd_model_bf16_dy, and cv ungrouped (a
 * depthwise convolution runs fp32 in bf16 contexts, so its backward would
 * widen a bf16 dy again) */
static int conv_bf16_dy(const struct fd_model *m, const struct fd_ctx *c, const struct fd_mconv *cv)
{
	return fd_model_bf16_dy(m, c) && cv->op.groups == 1;
}

/* The training path's BN and act (one op) on h, cv's output: c->bf16_dy
 * as conv_bf16_dy, and *flag (not NULL) set around it, the BN op's output
 * being its only fd_tensor_new: c->bf16_out or c->pool_outputs. */
static struct fd_tensor *bn_after_conv(struct fd_model *m, struct fd_ctx *c, const struct fd_mconv *cv,
				       struct fd_mbn *bn, int act, struct fd_tensor *h, int *flag)
{
	if (!h)
		return NULL;
	if (flag)
		*flag = 1;
	c->bf16_dy = conv_bf16_dy(m, c, cv);
	struct fd_tensor *y = fd_batchnorm2d_act(c, h, fd_model_t(m, bn->w), fd_model_t(m, bn->b),
						 fd_model_t(m, bn->rm), fd_model_t(m, bn->rv),
						 fd_model_t(m, bn->nbt), bn->momentum, bn->eps, act);
	if (flag)
		*flag = 0;
	c->bf16_dy = 0;
	return y;
}

/* The training path of fd_mconv_bn_fwd: the conv (conv_for_bn), then
 * bn_after_conv. */
static struct fd_tensor *conv_bn_flagged(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *cv,
					 struct fd_mbn *bn, int act, struct fd_tensor *x, int *flag)
{
	return bn_after_conv(m, c, cv, bn, act, conv_for_bn(m, c, cv, x), flag);
}

struct fd_tensor *fd_mconv_bn_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *cv,
				  struct fd_mbn *bn, int act, struct fd_tensor *x)
{
	if (!x)
		return NULL;
	if (folds(m, c, cv, bn, x, NULL)) {
		struct fd_tensor *wf, *bf;
		if (fold_bn(m, c, cv, bn, &wf, &bf) < 0)
			return NULL;
		m->nfused++;
		enum fd_conv_post post = post_of(act);
		struct fd_tensor *y = fd_conv2d_infer(c, &cv->op, x, wf, bf, post);
		return act >= 0 && post == FD_CONV_POST_NONE ? fd_act_(c, (enum fd_act)act, y) : y;
	}
	if (c->training && !m->tap && !m->unfused) /* BN + activation fused (CPU) */
		return conv_bn_flagged(m, c, cv, bn, act, x, NULL);
	struct fd_tensor *y = fd_mbn_fwd(m, c, bn, fd_mconv_fwd(m, c, cv, x));
	return act >= 0 ? fd_act_(c, (enum fd_act)act, y) : y;
}

int fd_model_bf16_out(const struct fd_model *m, const struct fd_ctx *c)
{
	return c->dev == FD_DEV_CPU && c->training && c->precision == FD_PREC_BF16 && !m->tap && !m->unfused &&
	       !m->no_bf16_out;
}

int fd_model_bf16_se(const struct fd_model *m, const struct fd_ctx *c)
{
	return fd_model_bf16_out(m, c) && !m->no_bf16_se;
}

struct fd_tensor *fd_mconv_bn_fwd_conv(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *cv,
				       struct fd_mbn *bn, int act, struct fd_tensor *x)
{
	if (!x || !fd_model_bf16_out(m, c))
		return fd_mconv_bn_fwd(m, c, cv, bn, act, x);
	return conv_bn_flagged(m, c, cv, bn, act, x, &c->bf16_out);
}

struct fd_tensor *fd_mconv_bn_fwd_transient(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *cv,
					    struct fd_mbn *bn, int act, struct fd_tensor *x)
{
	if (!x || !c->training || c->dev != FD_DEV_CPU || m->tap || m->unfused || m->no_transient)
		return fd_mconv_bn_fwd(m, c, cv, bn, act, x);
	return conv_bn_flagged(m, c, cv, bn, act, x, &c->pool_outputs);
}

int fd_model_bn_pools(const struct fd_model *m, const struct fd_ctx *c)
{
	return c->dev == FD_DEV_CPU && c->training && !m->tap && !m->unfused && !m->no_bn_pool;
}

struct fd_tensor *fd_mconv_bn_pool_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *cv,
				       struct fd_mbn *bn, int act, struct fd_tensor *x, int k, int stride, int pad,
				       int to_conv)
{
	struct fd_tensor *h = conv_for_bn(m, c, cv, x);
	if (!h)
		return NULL;
	int bf = to_conv && fd_model_bf16_out(m, c);
	c->bf16_out = bf;
	c->bf16_dy = conv_bf16_dy(m, c, cv);
	struct fd_tensor *y = fd_batchnorm2d_act_maxpool(c, h, fd_model_t(m, bn->w), fd_model_t(m, bn->b),
							 fd_model_t(m, bn->rm), fd_model_t(m, bn->rv),
							 fd_model_t(m, bn->nbt), bn->momentum, bn->eps, act, k, stride,
							 pad);
	c->bf16_out = 0;
	c->bf16_dy = 0;
	return y;
}

int fd_model_bf16_res(const struct fd_model *m, const struct fd_ctx *c)
{
	return fd_model_bf16_out(m, c) && c->channels_last && !m->no_bf16_res && !m->no_bn_add;
}

/* fd_mconv_bn_add_fwd; res: the fused op's output in bf16 (c->bf16_out) */
static struct fd_tensor *bn_add_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *cv, struct fd_mbn *bn,
				    int act, struct fd_tensor *x, struct fd_tensor *id, int res)
{
	if (!x || !id)
		return NULL;
	char nm[64];
	/* fp32 and bf16 (the sum is added to the fp32 accumulator; t_nn_conv
	 * checks it against the separate add); no activation (act < 0, MBConv's
	 * projection) is the sum post-op alone; not where the convolution runs
	 * a Winograd that cannot take the sum (faster than the sum it saves) */
	if (folds(m, c, cv, bn, x, id) &&
	    (act < 0 || post_of(act) != FD_CONV_POST_NONE) &&
	    !fd_conv2d_wants_winograd(c, &cv->op, fd_model_t(m, cv->w))) {
		struct fd_tensor *wf, *bf;
		if (fold_bn(m, c, cv, bn, &wf, &bf) < 0)
			return NULL;
		m->nfused++;
		m->nfused_add++;
		return fd_conv2d_infer_add(c, &cv->op, x, wf, bf, act < 0 ? FD_CONV_POST_NONE : post_of(act), id);
	}
	if (c->training && !m->tap && !m->unfused && !m->no_bn_add && (act < 0 || act == FD_ACT_RELU)) {
		/* BN, the residual add and ReLU as one op where it fuses (CPU) */
		struct fd_tensor *h = conv_for_bn(m, c, cv, x);
		if (h && fd_batchnorm2d_add_fuses(c, h, id, act)) {
			c->bf16_dy = conv_bf16_dy(m, c, cv);
			c->bf16_out = res;
			struct fd_tensor *y = fd_batchnorm2d_add_act(c, h, fd_model_t(m, bn->w), fd_model_t(m, bn->b),
								     fd_model_t(m, bn->rm), fd_model_t(m, bn->rv),
								     fd_model_t(m, bn->nbt), bn->momentum, bn->eps,
								     id, act);
			c->bf16_out = 0;
			c->bf16_dy = 0;
			return y;
		}
		if (h && (id->flags & FD_T_BF16)) /* the bf16 residual stream's reader must fuse */
			return fd_fail(c, "residual add: a bf16 identity %s beside an unfused BN",
				       fd_tensor_shape_str(id, nm, sizeof nm));
		struct fd_tensor *z = fd_add_(c, bn_after_conv(m, c, cv, bn, -1, h, NULL), id);
		return act >= 0 ? fd_act_(c, (enum fd_act)act, z) : z;
	}
	if (id->flags & FD_T_BF16)
		return fd_fail(c, "residual add: a bf16 identity %s outside bf16 training",
			       fd_tensor_shape_str(id, nm, sizeof nm));
	struct fd_tensor *y = fd_add_(c, fd_mconv_bn_fwd(m, c, cv, bn, -1, x), id);
	return act >= 0 ? fd_act_(c, (enum fd_act)act, y) : y;
}

struct fd_tensor *fd_mconv_bn_add_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *cv,
				      struct fd_mbn *bn, int act, struct fd_tensor *x, struct fd_tensor *id)
{
	return bn_add_fwd(m, c, cv, bn, act, x, id, 0);
}

struct fd_tensor *fd_mconv_bn_add_fwd_res(struct fd_model *m, struct fd_ctx *c, struct fd_mconv *cv,
					  struct fd_mbn *bn, int act, struct fd_tensor *x, struct fd_tensor *id)
{
	return bn_add_fwd(m, c, cv, bn, act, x, id, fd_model_bf16_res(m, c));
}

int fd_mlinear_add(struct fd_model *m, struct fd_mlinear *l, const char *name, int in, int out,
		   int bias, struct fd_minit winit, struct fd_err *e)
{
	char nm[256];
	int64_t ws[2] = {out, in}, bs[1] = {out};
	l->b = -1;
	if (name2(nm, sizeof nm, name, "weight", e) < 0 ||
	    (l->w = fd_model_param(m, nm, FD_P_PARAM, 2, ws, winit, e)) < 0)
		return -1;
	if (bias) {
		struct fd_minit bi = {winit.kind == FD_MI_TORCH_WEIGHT ? FD_MI_TORCH_BIAS : FD_MI_ZEROS, 0, 0, l->w};
		if (name2(nm, sizeof nm, name, "bias", e) < 0 ||
		    (l->b = fd_model_param(m, nm, FD_P_PARAM, 1, bs, bi, e)) < 0)
			return -1;
	}
	return 0;
}

struct fd_tensor *fd_mlinear_fwd(struct fd_model *m, struct fd_ctx *c, struct fd_mlinear *l,
				 struct fd_tensor *x)
{
	struct fd_tensor *y = fd_linear(c, x, fd_model_t(m, l->w), l->b >= 0 ? fd_model_t(m, l->b) : NULL);
	return FD_TAP(m, c, y, "%.*s", module_len(m, l->w), m->p.v[l->w].name);
}

/* ---------- life cycle ---------- */

int fd_model_new(const char *name, int num_classes, uint64_t seed, struct fd_model **out,
		 struct fd_err *e)
{
	*out = NULL;
	const struct fd_model_arch *a = fd_model_arch_find(name);
	if (!a) {
		char known[512] = "";
		size_t k = 0;
		for (int i = 0; i < fd_model_count() && k < sizeof known; i++)
			k += (size_t)snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "",
					      fd_model_arch_at(i)->name);
		return fd_err_set(e, "unknown model '%s' (known: %s)", name, known);
	}
	return fd_model_new_arch(a, num_classes, seed, out, e);
}

int fd_model_new_arch(const struct fd_model_arch *a, int num_classes, uint64_t seed,
		      struct fd_model **out, struct fd_err *e)
{
	const char *name = a->name;
	*out = NULL;
	if (num_classes < 1)
		return fd_err_set(e, "%s: num_classes must be at least 1, not %d", name, num_classes);
	struct fd_model *m = calloc(1, sizeof *m);
	if (!m)
		return fd_err_set(e, "out of memory");
	m->arch = a;
	m->num_classes = num_classes;
	m->seed = seed;
	fd_params_init(&m->p);
	if (a->build(m, e) < 0 || fd_params_alloc(&m->p, e) < 0 || fd_model_reinit(m, "", seed, e) < 0) {
		fd_err_ctx(e, "building %s", name);
		fd_model_free(m);
		return -1;
	}
	*out = m;
	return 0;
}

void fd_model_free(struct fd_model *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->nconvs; i++)
		fd_conv2d_op_free(m->convs[i]);
	free(m->convs);
	free(m->priv);
	free(m->init);
	fd_params_free(&m->p);
	free(m);
}

struct fd_tensor *fd_model_forward(struct fd_model *m, struct fd_ctx *c, struct fd_tensor *x)
{
	if (!x)
		return NULL;
	char b1[64];
	if (x->ndim != 4 || x->shape[1] != 3)
		return fd_fail(c, "%s: input %s is not [N, 3, H, W]", m->arch->name,
			       fd_tensor_shape_str(x, b1, sizeof b1));
	/* channels last inside the forward on the CPU (doc/nn-kernels.md
	 * "Layouts"): its convolutions write NHWC and the ops after them keep
	 * it; the logits are 2-D, so nothing outside sees a layout */
	int cl = c->channels_last;
	c->channels_last = c->dev == FD_DEV_CPU;
	m->nfused = m->nfused_add = m->nfused_se = m->nfused_front = m->nfused_back = 0;
	/* channels last from the image on: the stem convolution then runs
	 * oneDNN's NHWC kernel (brgconv), 1.2-3x faster than its NCHW-input
	 * kernel plus the reorder of the stem's output into NHWC. Where fd's
	 * direct forward runs (AVX2 without AVX-512: fd_conv2d_direct_cpu) an
	 * fp32 inference forward (nothing taped, no tap) hands it the image as
	 * it is: its image-layer kernel reads NCHW and writes NHWC, saving the
	 * transpose (doc/nn-kernels.md "fd's direct forward") */
	int img = c->channels_last && !c->training && !c->grad_enabled && !m->tap && !m->unfused &&
		  c->precision != FD_PREC_BF16 && fd_conv2d_direct_cpu();
	m->img_nchw = img;
	if (c->channels_last && !img && !(x = fd_to_layout(c, x, FD_NHWC))) {
		c->channels_last = cl;
		return NULL;
	}
	struct fd_tensor *y = m->arch->forward(m, c, x);
	c->channels_last = cl;
	if (y && (y->ndim != 2 || y->shape[0] != x->shape[0] || y->shape[1] != m->num_classes))
		return fd_fail(c, "%s: forward gave %s, not [%lld, %d]", m->arch->name,
			       fd_tensor_shape_str(y, b1, sizeof b1), (long long)x->shape[0], m->num_classes);
	return y;
}

int64_t fd_model_params(const struct fd_model *m)
{
	return fd_params_count(&m->p);
}

int fd_model_macs(struct fd_model *m, int size, uint64_t *macs, struct fd_err *e)
{
	struct fd_ctx c;
	if (size < 1)
		return fd_err_set(e, "%s: input size %d", m->arch->name, size);
	if (fd_ctx_open(&c, FD_DEV_CPU, 1, 0, e) < 0)
		return -1;
	c.training = 0;
	c.grad_enabled = 0;
	int rc = -1;
	int64_t shape[4] = {1, 3, size, size};
	struct fd_tensor *x = fd_tensor_zeros(&c, FD_DEV_CPU, 4, shape);
	if (fd_model_forward(m, &c, x)) {
		*macs = c.macs;
		rc = 0;
	} else {
		fd_err_set(e, "%s", c.err.msg);
	}
	/* plans were made on this context's private engine: drop them before it goes */
	for (int i = 0; i < m->nconvs; i++)
		fd_conv2d_op_free(m->convs[i]);
	fd_ctx_free(&c);
	return rc;
}

/* ---------- weights in and out ---------- */

int fd_model_save(const struct fd_model *m, const char *path, const char *const *meta,
		  struct fd_err *e)
{
	const char *all[66];
	char nc[32];
	snprintf(nc, sizeof nc, "%d", m->num_classes);
	int k = 0;
	all[k++] = "fd.arch";
	all[k++] = m->arch->name;
	all[k++] = "fd.num_classes";
	all[k++] = nc;
	for (int i = 0; meta && meta[i] && meta[i + 1] && k < 64; i += 2) {
		all[k++] = meta[i];
		all[k++] = meta[i + 1];
	}
	if (meta) {
		int n = 0;
		while (meta[n])
			n++;
		if (n % 2 || n > 60)
			return fd_err_set(e, "cannot write '%s': metadata must be at most 30 key/value pairs", path);
	}
	all[k] = NULL;
	return fd_ckpt_save(&m->p, path, all, e);
}

/* A tensor of the file, whatever container it came from. */
struct src {
	const char *name;
	enum fd_dtype dtype;
	int ndim;
	const int64_t *shape;
	int64_t numel;
	const void *data;
	size_t nbytes;
};

static void shape_str(char *buf, size_t len, int ndim, const int64_t *shape)
{
	size_t k = (size_t)snprintf(buf, len, "[");
	for (int i = 0; i < ndim && k < len; i++)
		k += (size_t)snprintf(buf + k, len - k, i ? ",%lld" : "%lld", (long long)shape[i]);
	if (k < len)
		snprintf(buf + k, len - k, "]");
}

struct problems {
	char buf[1700];
	size_t len;
	int n, dropped;
};

static void problem(struct problems *pr, const char *one)
{
	if (pr->len + strlen(one) + 3 >= sizeof pr->buf) {
		pr->dropped++;
		return;
	}
	pr->len += (size_t)snprintf(pr->buf + pr->len, sizeof pr->buf - pr->len, "%s%s", pr->n ? "; " : "", one);
	pr->n++;
}

static int is_head(const struct fd_model *m, const char *name)
{
	for (int i = 0; m->arch->head && m->arch->head[i]; i++)
		if (!strcmp(m->arch->head[i], name))
			return 1;
	return 0;
}

static const struct src *src_find(const struct src *s, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(s[i].name, name))
			return &s[i];
	return NULL;
}

static int to_f32(const struct src *s, float *dst, int64_t n, struct fd_err *e)
{
	struct fd_pth_tensor t = {(char *)s->name, s->dtype, s->ndim, {0}, s->numel, (void *)s->data, s->nbytes};
	memcpy(t.shape, s->shape, (size_t)s->ndim * sizeof *s->shape);
	return fd_pth_to_f32(&t, dst, n, e);
}

/* Copy the views from the file (not the head's when head_diff). */
static int copy_views(struct fd_model *m, const struct src *s, int n, const char *path, int head_diff,
		      struct fd_err *e)
{
	for (int i = 0; i < m->p.n; i++) {
		struct fd_pview *v = &m->p.v[i];
		const struct src *t = src_find(s, n, v->name);
		if (head_diff && is_head(m, v->name))
			continue;
		if (v->kind == FD_P_COUNTER) {
			int64_t c;
			memcpy(&c, t->data, sizeof c);
			v->t.data[0] = (float)c;
		} else if (to_f32(t, v->t.data, v->t.numel, e) < 0) {
			return fd_err_ctx(e, "cannot load '%s'", path);
		}
	}
	return 0;
}

/* Check every view against the file; copy only when everything fits. */
static int load_from(struct fd_model *m, const struct src *s, int n, const char *path, char *note,
		     size_t notelen, struct fd_err *e)
{
	struct problems pr = {.len = 0};
	char one[600], fs[128], ms[128], head_note[400] = "";
	int head_diff = 0;
	for (int i = 0; i < m->p.n; i++) {
		const struct fd_pview *v = &m->p.v[i];
		const struct src *t = src_find(s, n, v->name);
		if (!t) {
			snprintf(one, sizeof one, "missing %s", v->name);
			problem(&pr, one);
			continue;
		}
		int same = t->ndim == v->t.ndim;
		for (int d = 0; same && d < t->ndim; d++)
			same = t->shape[d] == v->t.shape[d];
		if (v->kind == FD_P_COUNTER) {
			if (t->dtype != FD_DT_I64 || t->numel != 1) {
				snprintf(one, sizeof one, "%s is not an int64 scalar in the file", v->name);
				problem(&pr, one);
			}
			continue;
		}
		if (t->dtype != FD_DT_F32 && t->dtype != FD_DT_F64 && t->dtype != FD_DT_F16 &&
		    t->dtype != FD_DT_BF16) {
			snprintf(one, sizeof one, "%s is %s in the file, not a float", v->name, fd_dtype_name(t->dtype));
			problem(&pr, one);
			continue;
		}
		if (same)
			continue;
		shape_str(fs, sizeof fs, t->ndim, t->shape);
		shape_str(ms, sizeof ms, v->t.ndim, v->t.shape);
		if (is_head(m, v->name) && v->kind == FD_P_PARAM) {
			if (!head_diff++)
				snprintf(head_note, sizeof head_note, "%s is %s in '%s', %s here", v->name, fs, path, ms);
			continue;
		}
		snprintf(one, sizeof one, "%s is %s in the file, %s here", v->name, fs, ms);
		problem(&pr, one);
	}
	for (int i = 0; i < n; i++)
		if (fd_params_index(&m->p, s[i].name) < 0) {
			snprintf(one, sizeof one, "extra %s", s[i].name);
			problem(&pr, one);
		}
	if (pr.n || pr.dropped)
		return fd_err_set(e, "cannot load '%s' into %s: %s%s", path, m->arch->name, pr.buf,
				  pr.dropped ? "; and more" : "");
	/* copy over a backup: values fd_ckpt_check refuses (NaN, inf, a negative
	 * variance or counter) or a failed conversion leave the model as it was */
	float *keep = malloc((size_t)m->p.ntotal * sizeof *keep + 1);
	if (!keep)
		return fd_err_set(e, "out of memory");
	memcpy(keep, m->p.data, (size_t)m->p.ntotal * sizeof *keep);
	int rc = copy_views(m, s, n, path, head_diff, e);
	if (rc == 0)
		rc = fd_ckpt_check(&m->p, path, e);
	if (rc < 0)
		memcpy(m->p.data, keep, (size_t)m->p.ntotal * sizeof *keep);
	free(keep);
	if (rc < 0)
		return -1;
	if (note && notelen)
		note[0] = 0;
	if (head_diff) {
		char names[300] = "";
		size_t k = 0;
		for (int i = 0; m->arch->head[i] && k < sizeof names; i++) {
			if (init_view(m, fd_params_index(&m->p, m->arch->head[i]), m->seed, e) < 0)
				return -1;
			k += (size_t)snprintf(names + k, sizeof names - k, "%s%s", i ? ", " : "", m->arch->head[i]);
		}
		if (note && notelen)
			snprintf(note, notelen, "%s: backbone loaded, head (%s) freshly initialised", head_note, names);
	}
	return 0;
}

static int sniff(const char *path, unsigned char *b, struct fd_err *e)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return fd_err_sys(e, errno, "cannot open '%s'", path);
	size_t got = fread(b, 1, 4, f);
	fclose(f);
	if (got < 4)
		return fd_err_set(e, "cannot read '%s': file is too short for weights", path);
	return 0;
}

int fd_model_load(struct fd_model *m, const char *path, char *note, size_t notelen,
		  struct fd_err *e)
{
	unsigned char magic[4];
	if (note && notelen)
		note[0] = 0;
	if (sniff(path, magic, e) < 0)
		return -1;
	int rc;
	/* a torch .pth is a zip (PK\3\4) or a legacy pickle stream (\x80 PROTO);
	 * a safetensors file starts with its little-endian header length */
	if ((magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4) || magic[0] == 0x80) {
		struct fd_pth p;
		if (fd_pth_load(&p, path, e) < 0)
			return -1;
		struct src *s = calloc((size_t)p.n + 1, sizeof *s);
		if (!s) {
			fd_pth_free(&p);
			return fd_err_set(e, "out of memory");
		}
		for (int i = 0; i < p.n; i++)
			s[i] = (struct src){p.t[i].name, p.t[i].dtype, p.t[i].ndim, p.t[i].shape, p.t[i].numel,
					    p.t[i].data, p.t[i].nbytes};
		rc = load_from(m, s, p.n, path, note, notelen, e);
		free(s);
		fd_pth_free(&p);
		return rc;
	}
	struct fd_st st;
	if (fd_st_open(&st, path, e) < 0)
		return -1;
	const char *arch = fd_st_meta(&st, "fd.arch");
	if (arch && strcmp(arch, m->arch->name)) {
		fd_err_set(e, "cannot load '%s': it is a %s checkpoint, not %s", path, arch, m->arch->name);
		fd_st_close(&st);
		return -1;
	}
	struct src *s = calloc((size_t)st.n + 1, sizeof *s);
	if (!s) {
		fd_st_close(&st);
		return fd_err_set(e, "out of memory");
	}
	for (int i = 0; i < st.n; i++)
		s[i] = (struct src){st.t[i].name, st.t[i].dtype, st.t[i].ndim, st.t[i].shape, st.t[i].numel,
				    st.t[i].data, st.t[i].nbytes};
	rc = load_from(m, s, st.n, path, note, notelen, e);
	free(s);
	fd_st_close(&st);
	return rc;
}
