/* fixture.h: the one helper header of the C reference tests. Fixtures are the
 * folders tests/ref/SET.py writes, $FD_BUILD/ref/SET/ (ref.mk); this header
 * opens them, fetches tensors (checking dtype and size, bailing out on a
 * mismatch), compares results with tap.h's rule |a - r| <= atol + rtol |r|
 * where a NaN always fails, runs finite-difference checks, and, for tests
 * that include models/fd_model.h first, runs one model reference case
 * (tests/ref/models_common.py's keys) the same way for every model test. */
#ifndef FD_TEST_FIXTURE_H
#define FD_TEST_FIXTURE_H

#include "io/fd_safetensors.h"
#include "nn/fd_tensor.h"
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* buf = $FD_BUILD/ref/SET/FILE (FD_BUILD unset or empty: build). */
TAP_UNUSED static void fix_path(char *buf, size_t len, const char *set, const char *file)
{
	const char *b = getenv("FD_BUILD");
	snprintf(buf, len, "%s/ref/%s/%s", b && *b ? b : "build", set, file);
}

/* Open fixture SET/NAME.safetensors; bails out if it cannot. */
TAP_UNUSED static void fix_open(struct fd_st *s, const char *set, const char *name)
{
	char file[300], path[900];
	struct fd_err e = {{0}};
	snprintf(file, sizeof file, "%s.safetensors", name);
	fix_path(path, sizeof path, set, file);
	if (fd_st_open(s, path, &e) < 0) {
		printf("Bail out! cannot open fixture: %s\n", e.msg);
		exit(1);
	}
}

/* Tensor `name` of s, which must have dtype dt; bails out otherwise. */
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
		worst = tap_worse(worst, share);
		if (!(share <= 1))
			bad++;
	}
	c->grad_enabled = save;
	ok(!bad && checked > 0, "%s: finite differences on %d elements (%d kinks skipped), worst %.2f of tol", what,
	   checked, kinks, worst);
}

/* ---- case-indexed fixtures (tests/ref/nn_conv.py: "<i>.<name>") ---- */

/* The fixture's "cases" metadata (0 if absent). */
TAP_UNUSED static int fix_cases(const struct fd_st *st)
{
	const char *v = fd_st_meta(st, "cases");
	return v ? atoi(v) : 0;
}

/* Tensor "<i>.<name>" as float32 with n elements (n < 0: any), or NULL if
 * absent and optional. A wrong dtype or size bails out. */
TAP_UNUSED static const float *fix_f32(const struct fd_st *st, int i, const char *name, long n, int optional)
{
	char key[64];
	snprintf(key, sizeof key, "%d.%s", i, name);
	const struct fd_st_tensor *t = fd_st_find(st, key);
	if (!t) {
		if (optional)
			return NULL;
		printf("Bail out! fixture has no '%s'\n", key);
		exit(1);
	}
	if (t->dtype != FD_DT_F32 || (n >= 0 && t->numel != n)) {
		printf("Bail out! '%s': %s with %lld elements, want F32 with %ld\n", key,
		       fd_dtype_name(t->dtype), (long long)t->numel, n);
		exit(1);
	}
	return t->data;
}

/* Tensor "<i>.<name>" as int32 with n elements; bails out otherwise. */
TAP_UNUSED static const int32_t *fix_i32(const struct fd_st *st, int i, const char *name, long n)
{
	char key[64];
	snprintf(key, sizeof key, "%d.%s", i, name);
	const struct fd_st_tensor *t = fd_st_find(st, key);
	if (!t || t->dtype != FD_DT_I32 || t->numel != n) {
		printf("Bail out! fixture '%s' missing or not I32[%ld]\n", key, n);
		exit(1);
	}
	return t->data;
}

TAP_UNUSED static double *to_f64(const float *a, size_t n)
{
	double *d = malloc(n * sizeof *d);
	for (size_t i = 0; i < n; i++)
		d[i] = a[i];
	return d;
}

TAP_UNUSED static float *to_f32(const double *a, size_t n)
{
	float *f = malloc(n * sizeof *f);
	for (size_t i = 0; i < n; i++)
		f[i] = (float)a[i];
	return f;
}

TAP_UNUSED static float *filled(size_t n, float v)
{
	float *f = malloc(n * sizeof *f);
	for (size_t i = 0; i < n; i++)
		f[i] = v;
	return f;
}

/* a - 1: what an ADD-semantics backward added into a buffer pre-filled
 * with ones. */
TAP_UNUSED static float *less_ones(const float *a, size_t n)
{
	float *r = malloc((n ? n : 1) * sizeof *r);
	for (size_t i = 0; i < n; i++)
		r[i] = a[i] - 1.0f;
	return r;
}

/* max |got - ref| / (tol * max |ref|) over n values: the error relative to
 * the result's scale, in units of tol (NaN counts as the worst). */
TAP_UNUSED static double scaled_worst(const float *got, const float *ref, size_t n, double tol)
{
	double scale = 0, worst = 0;
	for (size_t i = 0; i < n; i++)
		scale = fmax(scale, fabs((double)ref[i]));
	for (size_t i = 0; i < n; i++)
		worst = tap_worse(worst, fabs((double)got[i] - (double)ref[i]) / (tol * (scale > 0 ? scale : 1)));
	return worst;
}

/* ok() when n > 0 and got is within tol * max |ref| of ref everywhere
 * (scaled_worst <= 1); the line names case i and what. */
TAP_UNUSED static int scaled_close(const char *what, int i, const float *got, const float *ref, size_t n, double tol)
{
	double w = scaled_worst(got, ref, n, tol);
	return ok(n > 0 && w <= 1, "case %d %s: %zu values, worst %.3f of tol (%g x max|ref|)", i, what, n, w, tol);
}

/* ones + r: what an ADD-semantics backward must leave in a buffer pre-filled
 * with ones. */
TAP_UNUSED static float *ones_plus(const float *r, size_t n)
{
	float *f = malloc(n * sizeof *f);
	for (size_t i = 0; i < n; i++)
		f[i] = 1.0f + r[i];
	return f;
}

/* tap_close_f32 for a double result (rounded to float) against r. */
TAP_UNUSED static int close64(const char *name, const double *a, const float *r, size_t n, double atol, double rtol)
{
	float *f = to_f32(a, n);
	int c = tap_close_f32(name, f, r, n, atol, rtol);
	free(f);
	return c;
}

TAP_UNUSED static double dot64(const double *a, const double *b, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

/* Central differences of L(p) = loss(ctx) at up to `probes` evenly spread
 * entries of p (n of them), against the analytic gradient g; h = 1e-6 in
 * double. Returns the largest relative error (scale max(1, |g|)), INFINITY
 * if any was NaN, and its index in *wi; *probed counts the entries. */
TAP_UNUSED static double fd_check_worst(double *p, size_t n, const double *g, int probes, double (*loss)(void *),
					void *ctx, size_t *wi, int *probed)
{
	double worst = 0;
	size_t step = n > (size_t)probes ? n / probes : 1;
	*wi = 0;
	*probed = 0;
	for (size_t i = 0; i < n; i += step) {
		double keep = p[i], h = 1e-6;
		p[i] = keep + h;
		double lp = loss(ctx);
		p[i] = keep - h;
		double lm = loss(ctx);
		p[i] = keep;
		double num = (lp - lm) / (2 * h);
		double err = fabs(num - g[i]) / fmax(1.0, fabs(g[i]));
		if (!(err <= worst))
			*wi = i;
		worst = tap_worse(worst, err);
		++*probed;
	}
	return worst;
}

/* fd_check_worst as one TAP line: passes if every probe is within 1e-6. */
TAP_UNUSED static int fd_check(const char *name, double *p, size_t n, const double *g, int probes,
			       double (*loss)(void *), void *ctx)
{
	size_t wi;
	int probed;
	double worst = fd_check_worst(p, n, g, probes, loss, ctx, &wi, &probed);
	return ok(worst < 1e-6 && probed > 0, "%s: finite differences at %d entries, worst rel err %.3g at [%zu]", name,
		  probed, worst, wi);
}

/* ---- model reference cases (tests/ref/models*.py, models_common.py) ---- */
/* Values failing |a - r| <= tol mag (a NaN fails), mag a bound on the
 * magnitudes of the terms each reference value sums; the worst |a - r| /
 * (tol mag) into *worst (not NULL). Silent. */
TAP_UNUSED static size_t fix_nbad_mag(const float *a, const float *r, const float *mag, size_t n, double tol,
				      double *worst)
{
	size_t bad = 0;
	double w = 0;
	for (size_t i = 0; i < n; i++) {
		double t = tol * mag[i] + 1e-30, e = fabs((double)a[i] - r[i]);
		bad += !(e <= t);
		if (e / t > w)
			w = e / t;
	}
	if (worst)
		*worst = w;
	return bad;
}

/* The two negative controls of a fix_nbad_mag comparison of y with ref
 * (case i), as tests: the reference moved by 10 tolerances in one value
 * fails exactly there, and yo (y computed with the other variant, named
 * what / other) fails on more than an eighth of the n values */
TAP_UNUSED static void fix_mag_controls(int i, const float *y, const float *ref, const float *mag, size_t n,
					double tol, const float *yo, const char *what, const char *other)
{
	float *p = malloc(n * sizeof *p);
	memcpy(p, ref, n * sizeof *p);
	p[n / 2] += (float)(10 * tol * mag[n / 2]) + 1e-30f;
	ok(fix_nbad_mag(y, p, mag, n, tol, NULL) == 1,
	   "case %d control: a reference off by 10 tolerances in one value is caught", i);
	size_t bo = fix_nbad_mag(yo, ref, mag, n, tol, NULL);
	ok(bo > n / 8, "case %d control: the other %s (%s) fails on %zu of %zu values", i, what, other, bo, n);
	free(p);
}

#ifdef FD_MODEL_H
#include "nn/loss.h"
#include "nn/optim.h"
#include "model_relumask.h"

TAP_UNUSED static double fix_rms(const struct fd_st_tensor *t)
{
	const float *r = t->data;
	double s = 0;
	for (int64_t i = 0; i < t->numel; i++)
		s += (double)r[i] * r[i];
	return t->numel ? sqrt(s / (double)t->numel) : 0;
}

/* atol of model reference tensor `key` (rtol 1e-4 goes with it): fd runs in
 * float32 against torch's float64, so k32 x torch's own float32 error on that
 * tensor (err32.KEY; k32 0: not used) + 1e-4 x the tensor's RMS + 1e-7. */
TAP_UNUSED static double fix_atol(const struct fd_st *s, const char *key, double k32)
{
	double a = 1e-4 * fix_rms(fix_raw(s, key, FD_DT_F32)) + 1e-7;
	if (k32 > 0) {
		char k[320];
		snprintf(k, sizeof k, "err32.%s", key);
		a += k32 * ((const float *)fix_raw(s, k, FD_DT_F32)->data)[0];
	}
	return a;
}

/* tap_close_f32 of a against reference tensor `key` with fix_atol's rule. */
TAP_UNUSED static int fix_close_ref(const char *what, const float *a, const struct fd_st *s, const char *key,
				    double k32)
{
	const struct fd_st_tensor *r = fix_raw(s, key, FD_DT_F32);
	return tap_close_f32(what, a, r->data, (size_t)r->numel, fix_atol(s, key, k32), 1e-4);
}

/* fix_close_ref against the values of `key` in vals (another reference of
 * the same computation), with the tolerance fix_atol gives it in s. */
TAP_UNUSED static int fix_close_ref_in(const char *what, const float *a, const struct fd_st *s,
				       const struct fd_st *vals, const char *key, double k32)
{
	const struct fd_st_tensor *r = fix_raw(vals, key, FD_DT_F32), *rs = fix_raw(s, key, FD_DT_F32);
	if (r->numel != rs->numel)
		return ok(0, "%s: %lld values, the fixture %lld", what, (long long)r->numel, (long long)rs->numel);
	return tap_close_f32(what, a, r->data, (size_t)r->numel, fix_atol(s, key, k32), 1e-4);
}

/* The worst share of tolerance of n values a against r (INFINITY if a is
 * NULL or any error is NaN); its index in *wi. */
TAP_UNUSED static double fix_share(const float *a, const float *r, int64_t n, double atol, double rtol, int64_t *wi)
{
	double worst = a ? 0 : INFINITY;
	*wi = 0;
	for (int64_t j = 0; a && j < n; j++) {
		double share = fabs((double)a[j] - r[j]) / (atol + rtol * fabs(r[j]));
		if (!(share <= worst))
			*wi = j;
		worst = tap_worse(worst, share);
	}
	return worst;
}

/* One model reference case: fixture SET/NAME_SIZE.safetensors with torch's
 * weights in SET/NAME_SIZE_w.safetensors. */
struct fix_case {
	const char *set, *name;
	int size;
	double k32;	     /* fix_atol's multiple of torch's float32 error */
	const char *control; /* view whose gradient the negative control scales */
	struct fix_relu *relu; /* NULL, or (ResNet) the server of the train-mode
				* check's reference taking fd's ReLU decisions
				* (model_relumask.h) */
};

/* The outcome of comparing every gradient and running statistic. */
struct fix_grads {
	int n, bad;
	double worst, tolrms; /* worst share of tolerance; largest atol / RMS
			       * (of tensors with an RMS over 1e-6) */
	char wname[300], tname[300];
};

/* Compare each gradient (PREFIX.NAME, PREFIX "grad" or "egrad") and, with
 * stats, each running statistic (after.NAME) of m with the fixture s, or with
 * the values of the same keys in vals (not NULL) under s's tolerances. */
TAP_UNUSED static void fix_model_cmp(const struct fd_model *m, const struct fd_st *s, const struct fd_st *vals,
				     const char *prefix, int stats, double k32, struct fix_grads *g)
{
	memset(g, 0, sizeof *g);
	for (int i = 0; i < m->p.n; i++) {
		const struct fd_pview *v = &m->p.v[i];
		char key[300];
		if (v->kind == FD_P_COUNTER || (v->kind == FD_P_BUFFER && !stats))
			continue;
		snprintf(key, sizeof key, "%s.%s", v->kind == FD_P_PARAM ? prefix : "after", v->name);
		const struct fd_st_tensor *r = fix_raw(vals ? vals : s, key, FD_DT_F32);
		const float *a = v->kind == FD_P_PARAM ? v->t.grad : v->t.data;
		double atol = fix_atol(s, key, k32), rms = fix_rms(fix_raw(s, key, FD_DT_F32)), share = INFINITY;
		int64_t wi;
		if (r->numel == v->t.numel && fix_raw(s, key, FD_DT_F32)->numel == v->t.numel)
			share = fix_share(a, r->data, r->numel, atol, 1e-4, &wi);
		g->n++;
		if (!(share <= 1))
			g->bad++;
		if (!(share <= g->worst))
			snprintf(g->wname, sizeof g->wname, "%s", key);
		g->worst = tap_worse(g->worst, share);
		if (rms > 1e-6 && atol / rms > g->tolrms) { /* below: zero up to rounding */
			g->tolrms = atol / rms;
			snprintf(g->tname, sizeof g->tname, "%s", key);
		}
	}
}

/* fix_model_cmp (vals: NULL or the values to compare with) as one TAP line;
 * with k->control (a view name), also the negative controls: that view's
 * gradient scaled by 1.01, and then one NaN in it, must each fail the
 * comparison (the gradient is restored). */
TAP_UNUSED static int fix_model_grads(const char *what, struct fd_model *m, const struct fd_st *s,
				      const struct fd_st *vals, const char *prefix, int stats,
				      const struct fix_case *k)
{
	struct fix_grads g;
	fix_model_cmp(m, s, vals, prefix, stats, k->k32, &g);
	diag("%s: the loosest tolerance is %s's, %.3g x its RMS", what, g.tname, g.tolrms);
	int pass = ok(!g.bad && g.n > 0, "%s: %d %s each within tolerance (%d not), worst %s %.3f of tol", what, g.n,
		      stats ? "gradients and running stats" : "gradients", g.bad, g.wname, g.worst);
	if (!k->control)
		return pass;
	struct fd_pview *v = NULL;
	for (int i = 0; i < m->p.n; i++)
		if (!strcmp(m->p.v[i].name, k->control))
			v = &m->p.v[i];
	if (!ok(v && v->t.grad, "%s: negative control view %s has a gradient", what, k->control))
		return 0;
	float keep = v->t.grad[0];
	for (int64_t j = 0; j < v->t.numel; j++)
		v->t.grad[j] *= 1.01f;
	struct fix_grads bad;
	fix_model_cmp(m, s, vals, prefix, stats, k->k32, &bad);
	ok(bad.bad == 1 && !strcmp(bad.wname + strlen(prefix) + 1, k->control),
	   "%s: negative control: %s's gradient x 1.01 fails (%s %.2f of tol)", what, k->control, bad.wname, bad.worst);
	for (int64_t j = 0; j < v->t.numel; j++)
		v->t.grad[j] /= 1.01f;
	v->t.grad[0] = NAN;
	fix_model_cmp(m, s, vals, prefix, stats, k->k32, &bad);
	ok(bad.bad == 1 && isinf(bad.worst), "%s: negative control: one NaN in %s's gradient fails (%.2f of tol)", what,
	   k->control, bad.worst);
	v->t.grad[0] = keep;
	return pass;
}

/* Load torch's state dict SET/NAME_SIZE_w.safetensors into m strictly (every
 * name and shape, nothing left over): one TAP line. */
TAP_UNUSED static int fix_model_load(struct fd_model *m, const struct fix_case *k)
{
	char file[300], path[900], note[512] = "x";
	struct fd_err e = {{0}};
	snprintf(file, sizeof file, "%s_%d_w.safetensors", k->name, k->size);
	fix_path(path, sizeof path, k->set, file);
	return ok(fd_model_load(m, path, note, sizeof note, &e) == 0 && !note[0],
		  "%s@%d: torch state dict loaded strictly %s%s", k->name, k->size, e.msg, note);
}

/* Zeroed gradients, forward of the fixture's x in c's mode, the BCE loss
 * against t and backward; the logits in *y; with relu (not NULL) the
 * forward's ReLU decisions recorded in it before backward, from a forward
 * that keeps every output in the arena (m->no_transient, m->no_bn_pool:
 * ResNet's stem ReLU output is otherwise gone once the max pool ran, or
 * never stored; m->no_bn_add: each block's last ReLU is otherwise inside
 * the fused BN + add + ReLU; t_nn_mem, t_nn_bnpool and t_nn_bnadd check
 * the forwards and backwards bit for bit). NULL with c->err on failure. */
TAP_UNUSED static struct fd_tensor *fix_model_loss(struct fd_ctx *c, struct fd_model *m, const struct fd_st *s,
						   struct fd_tensor **y, struct fix_relu *relu)
{
	fd_ctx_step(c);
	fd_params_zero_grad(&m->p);
	m->no_transient = m->no_bn_pool = m->no_bn_add = relu != NULL;
	*y = fd_model_forward(m, c, fix_get(c, s, "x"));
	m->no_transient = m->no_bn_pool = m->no_bn_add = 0;
	struct fd_tensor *loss = fd_bce_with_logits(c, *y, fix_get(c, s, "t"));
	if (loss && relu && fix_relu_capture(relu, c) < 0) {
		fd_fail(c, "cannot record the ReLU decisions (over %d calls, or not 4-D)", FIX_MAXRELU);
		return NULL;
	}
	return loss && fd_backward(c, loss, NULL) == 0 ? loss : NULL;
}

/* The reference values of case k's train-mode check (eval: its eval-mode
 * batchnorm check, the server's "efull": eloss and egrad.NAME), fd's ReLU
 * decisions having been recorded in k->relu by fix_model_loss in that mode
 * (model_relumask.h): asks the server for torch's float64 run with those
 * decisions, and checks (one TAP line) that every decision differing from
 * float64's own lies within 4 x torch's float32 error of zero at its ReLU
 * input; the first time for this server also the negative control, that
 * flipping the decision at one call's largest output fails that check.
 * Returns s itself where no decision differs (the plain float64 reference
 * holds; also when the server gave nothing, which has failed), else the
 * masked run's values, opened in *ref (for fd_st_close). */
TAP_UNUSED static const struct fd_st *fix_relu_ref(const struct fix_case *k, const struct fd_st *s, struct fd_st *ref,
						   int eval)
{
	struct fix_relu *r = k->relu;
	char msg[2400] = "";
	int64_t el = 0, dis = 0;
	double worst;
	int wk;
	const char *mode = eval ? "eval-mode batchnorm" : "train mode";
	if (!ok(fix_relu_ask(r, k->set, k->name, k->size, -1, 0, eval ? "efull" : "full", ref, msg, sizeof msg) == 0,
		"%s@%d %s: torch's float64 run with fd's ReLU decisions %s", k->name, k->size, mode, msg))
		return s;
	int n = fix_relu_verdict(r, ref, &el, &dis, &worst, &wk);
	ok(n > 0 && el > 0 && worst <= 1,
	   "%s@%d %s: %d ReLU calls (server: %d), %lld decisions, %lld differ from float64's, each within "
	   "float32 rounding of zero (worst |z64| %.3g of 4 x torch32 error, call %d)",
	   k->name, k->size, mode, r->n, n, (long long)el, (long long)dis, worst, wk);
	if (!r->controlled && r->n > 0) {
		struct fd_st cr;
		int fk = 0;
		r->controlled = 1;
		for (int i = 1; i < r->n; i++)
			if (r->top[i] > r->top[fk])
				fk = i;
		if (ok(fix_relu_ask(r, k->set, k->name, k->size, fk, r->top_i[fk], "check", &cr, msg, sizeof msg) == 0,
		       "%s@%d: negative control answered %s", k->name, k->size, msg)) {
			char key[32];
			int64_t cel, cdis;
			double cw;
			int cwk;
			snprintf(key, sizeof key, "worst.%d", fk);
			double wf = ((const float *)fix_raw(&cr, key, FD_DT_F32)->data)[0];
			fix_relu_verdict(r, &cr, &cel, &cdis, &cw, &cwk);
			ok(wf > 1 && !(cw <= 1), "%s@%d: negative control: call %d's decision at its largest output "
			   "(%.3g) flipped fails (%lld differ; that one %.3g x the bound)", k->name, k->size, fk,
			   (double)r->top[fk], (long long)cdis, wf);
			fd_st_close(&cr);
		}
	}
	if (dis > 0)
		return ref;
	fd_st_close(ref);
	memset(ref, 0, sizeof *ref);
	return s;
}

/* One model case (m built with 1 logit): torch's weights loaded strictly;
 * eval logits; where the fixture has eloss, the loss and every gradient with
 * batchnorm in eval mode (egrad.NAME); train mode with dropout and
 * stochastic depth off: logits, loss, every gradient and running statistic;
 * where it has losses, the losses of 5 AdamW steps from torch's weights (lr:
 * the fixture's "lr" if any, else 1e-3; eps its "eps", else 1e-8; weight
 * decay 1e-2), in eval mode
 * where it has eloss. Tolerances: fix_atol with k->k32, rtol 1e-4; the
 * losses k32 x torch's float32 error + 1e-5 + 1e-4 relative. With k->relu
 * the train-mode logits, loss, gradients and running statistics are
 * compared, under the same tolerances, with fix_relu_ref's reference. Leaves
 * c in train mode with dropout on. */
TAP_UNUSED static void fix_model_case(struct fd_ctx *c, struct fd_model *m, const struct fix_case *k)
{
	char file[300], nm[400];
	struct fd_err e = {{0}};
	struct fd_st s, mref = {0};
	struct fd_tensor *y, *loss;
	if (!fix_model_load(m, k))
		return;
	snprintf(file, sizeof file, "%s_%d", k->name, k->size);
	fix_open(&s, k->set, file);
	int bn_eval = fd_st_find(&s, "eloss") != NULL;

	fd_ctx_step(c);
	c->training = 0;
	c->grad_enabled = 0;
	y = fd_model_forward(m, c, fix_get(c, &s, "x"));
	snprintf(nm, sizeof nm, "%s@%d eval logits", k->name, k->size);
	if (ok(y != NULL, "%s@%d: eval forward %s", k->name, k->size, c->err.msg))
		fix_close_ref(nm, y->data, &s, "logits_eval", k->k32);
	c->grad_enabled = 1;
	if (bn_eval) {
		loss = fix_model_loss(c, m, &s, &y, k->relu);
		if (ok(loss != NULL, "%s@%d: eval-mode forward, backward %s", k->name, k->size, c->err.msg)) {
			const struct fd_st *ev = k->relu ? fix_relu_ref(k, &s, &mref, 1) : &s;
			const char *ag = ev == &s ? "" : " (against float64 with fd's ReLU decisions)";
			snprintf(nm, sizeof nm, "%s@%d eval-mode loss%s", k->name, k->size, ag);
			fix_close_ref_in(nm, loss->data, &s, ev, "eloss", k->k32);
			snprintf(nm, sizeof nm, "%s@%d eval-mode batchnorm%s", k->name, k->size, ag);
			fix_model_grads(nm, m, &s, ev == &s ? NULL : ev, "egrad", 0, k);
			fd_st_close(&mref);
			memset(&mref, 0, sizeof mref);
		}
	}

	c->training = 1;
	c->dropout_off = 1;
	loss = fix_model_loss(c, m, &s, &y, k->relu);
	if (!ok(loss != NULL, "%s@%d: train forward, backward %s", k->name, k->size, c->err.msg))
		goto out;
	const struct fd_st *vals = k->relu ? fix_relu_ref(k, &s, &mref, 0) : &s;
	const char *against = vals == &s ? "" : " (against float64 with fd's ReLU decisions)";
	snprintf(nm, sizeof nm, "%s@%d train logits%s", k->name, k->size, against);
	fix_close_ref_in(nm, y->data, &s, vals, "logits_train", k->k32);
	snprintf(nm, sizeof nm, "%s@%d loss%s", k->name, k->size, against);
	fix_close_ref_in(nm, loss->data, &s, vals, "loss", k->k32);
	snprintf(nm, sizeof nm, "%s@%d train mode%s", k->name, k->size, against);
	fix_model_grads(nm, m, &s, vals == &s ? NULL : vals, "grad", 1,
			bn_eval ? &(struct fix_case){k->set, k->name, k->size, k->k32, NULL, NULL} : k);
	fd_st_close(&mref);

	if (!fd_st_find(&s, "losses"))
		goto out;
	struct fd_optim o;
	double lr = 1e-3, eps = 1e-8;
	if (fd_st_find(&s, "lr")) { /* float32 in the fixture; torch ran the decimal */
		char lrs[32];
		snprintf(lrs, sizeof lrs, "%.6g", ((const float *)fix_raw(&s, "lr", FD_DT_F32)->data)[0]);
		lr = strtod(lrs, NULL);
	}
	if (fd_st_find(&s, "eps")) { /* AdamW's eps, the same way (models.py BN_EVAL_EPS) */
		char es[32];
		snprintf(es, sizeof es, "%.6g", ((const float *)fix_raw(&s, "eps", FD_DT_F32)->data)[0]);
		eps = strtod(es, NULL);
	}
	fix_path(nm, sizeof nm, k->set, file);
	snprintf(nm + strlen(nm), sizeof nm - strlen(nm), "_w.safetensors");
	if (fd_model_load(m, nm, NULL, 0, &e) < 0 || fd_optim_adamw(&o, &m->p, lr, 0.9, 0.999, eps, 1e-2, &e) < 0) {
		ok(0, "%s: reload and optimizer %s", k->name, e.msg);
		goto out;
	}
	const float *ref = fix_raw(&s, "losses", FD_DT_F32)->data;
	const float *e32 = fix_raw(&s, "err32.losses", FD_DT_F32)->data;
	double worst = 0;
	int steps = 0;
	c->training = !bn_eval;
	for (; steps < 5; steps++) {
		loss = fix_model_loss(c, m, &s, &y, NULL);
		if (!loss || fd_optim_step(&o, &m->p, &e) < 0)
			break;
		double tol = k->k32 * e32[steps] + 1e-5 + 1e-4 * fabs(ref[steps]);
		diag("%s@%d step %d: loss %.7f torch64 %.7f (torch32 off by %.2g, tol %.2g)", k->name, k->size, steps,
		     loss->data[0], ref[steps], e32[steps], tol);
		worst = tap_worse(worst, fabs(loss->data[0] - ref[steps]) / tol);
	}
	ok(steps == 5 && worst <= 1, "%s@%d: 5 AdamW losses%s, worst %.3f of tol (%g x torch32 error + 1e-5 + 1e-4 rel) %s",
	   k->name, k->size, bn_eval ? " (eval-mode batchnorm)" : "", worst, k->k32, steps == 5 ? "" : c->err.msg);
	fd_optim_free(&o);
out:
	c->training = 1;
	c->grad_enabled = 1;
	c->dropout_off = 0;
	fd_st_close(&s);
}
#endif /* FD_MODEL_H */

#endif
