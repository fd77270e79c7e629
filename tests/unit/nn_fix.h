/* nn_fix.h: shared by the t_nn_* tests: load PyTorch fixtures written by
 * tests/ref/nn_core.py into arena tensors, compare, and finite differences. */
#ifndef FD_NN_FIX_H
#define FD_NN_FIX_H

#include "io/fd_safetensors.h"
#include "nn/fd_tensor.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TAP_UNUSED static const char *fix_dir(void)
{
	static char dir[512];
	const char *b = getenv("FD_BUILD");
	snprintf(dir, sizeof dir, "%s/ref/nn_core", b && *b ? b : "build");
	return dir;
}

TAP_UNUSED static void fix_open(struct fd_st *s, const char *name)
{
	char path[700];
	struct fd_err e = {{0}};
	snprintf(path, sizeof path, "%s/%s.safetensors", fix_dir(), name);
	if (fd_st_open(s, path, &e) < 0) {
		printf("Bail out! cannot open fixture: %s\n", e.msg);
		exit(1);
	}
}

TAP_UNUSED static const struct fd_st_tensor *fix_raw(const struct fd_st *s, const char *name, enum fd_dtype dt)
{
	const struct fd_st_tensor *t = fd_st_find(s, name);
	if (!t || t->dtype != dt) {
		printf("Bail out! fixture tensor '%s' missing or not %s\n", name, fd_dtype_name(dt));
		exit(1);
	}
	return t;
}

/* A fresh arena tensor holding fixture tensor `name` (F32). */
TAP_UNUSED static struct fd_tensor *fix_get(struct fd_ctx *c, const struct fd_st *s, const char *name)
{
	const struct fd_st_tensor *t = fix_raw(s, name, FD_DT_F32);
	int64_t shape[FD_MAXDIM] = {1};
	int nd = t->ndim ? t->ndim : 1;
	for (int i = 0; i < t->ndim; i++)
		shape[i] = t->shape[i];
	struct fd_tensor *x = fd_tensor_new(c, FD_DEV_CPU, nd, shape);
	if (!x) {
		printf("Bail out! %s\n", c->err.msg);
		exit(1);
	}
	memcpy(x->data, t->data, t->nbytes);
	return x;
}

/* Shape first, then values. */
TAP_UNUSED static int fix_close(const char *what, const struct fd_tensor *a, const struct fd_tensor *r, double atol,
		     double rtol)
{
	char b1[64], b2[64];
	if (!a || !a->data) {
		ok(0, "%s: missing", what);
		return 0;
	}
	if (a->numel != r->numel) {
		ok(0, "%s: shape %s vs reference %s", what, fd_tensor_shape_str(a, b1, sizeof b1),
		   fd_tensor_shape_str(r, b2, sizeof b2));
		return 0;
	}
	return tap_close_f32(what, a->data, r->data, (size_t)a->numel, atol, rtol);
}

/* Compare a gradient buffer (may be NULL = never reached) with the reference. */
TAP_UNUSED static int fix_close_grad(const char *what, const struct fd_tensor *x, const struct fd_tensor *r,
			  double atol, double rtol)
{
	if (!x->grad) {
		ok(0, "%s: no gradient", what);
		return 0;
	}
	return tap_close_f32(what, x->grad, r->data, (size_t)r->numel, atol, rtol);
}

typedef struct fd_tensor *(*fix_fn)(struct fd_ctx *c, struct fd_tensor **in, void *arg);

TAP_UNUSED static double fix_dot(const struct fd_tensor *y, const float *w)
{
	double s = 0;
	for (int64_t i = 0; i < y->numel; i++)
		s += (double)y->data[i] * w[i];
	return s;
}

/* Finite-difference check of in[k]->grad (already filled by backward seeded
 * with w) against central differences of L = sum(w * f(in)), in float32 with
 * step h on up to `count` elements spread over the tensor. Tolerance: float32
 * rounding of y (relative 6e-8, summed over <= a few thousand terms) divided
 * by 2h gives ~1e-4 at h = 1e-2; the O(h^2) truncation error is ~1e-5 for
 * these smooth ops; so 3e-3 absolute + 3e-3 relative, which a wrong formula
 * (an error of order the gradient itself) cannot meet. Elements where the two
 * one-sided differences disagree sit on a kink (relu at 0, hardswish at +-3)
 * and are skipped and counted. */
TAP_UNUSED static void fix_fd(const char *what, fix_fn f, void *arg, struct fd_ctx *c, struct fd_tensor **in, int k,
		   const float *w, int count)
{
	struct fd_tensor *x = in[k];
	const double h = 1e-2;
	int save = c->grad_enabled, checked = 0, kinks = 0, bad = 0;
	double worst = 0;
	c->grad_enabled = 0;
	int64_t stride = x->numel / count > 0 ? x->numel / count : 1;
	for (int64_t i = stride / 2; i < x->numel && checked + kinks < count; i += stride) {
		float x0 = x->data[i];
		double l0 = fix_dot(f(c, in, arg), w);
		x->data[i] = (float)(x0 + h);
		double lp = fix_dot(f(c, in, arg), w);
		x->data[i] = (float)(x0 - h);
		double lm = fix_dot(f(c, in, arg), w);
		x->data[i] = x0;
		double hp = (double)(float)(x0 + h) - x0, hm = x0 - (double)(float)(x0 - h);
		double fdv = (lp - lm) / (hp + hm), a = x->grad[i];
		double tol = 3e-3 + 3e-3 * fabs(a);
		if (fabs((lp - l0) / hp - (l0 - lm) / hm) > 20 * tol) {
			kinks++;
			continue;
		}
		checked++;
		double share = fabs(fdv - a) / tol;
		if (share > worst)
			worst = share;
		if (!(share <= 1))
			bad++;
	}
	c->grad_enabled = save;
	ok(!bad && checked > 0, "%s: finite differences on %d elements (%d kinks skipped), worst %.2f of tol", what,
	   checked, kinks, worst);
}

#endif
