/* nn_kfix.h: shared helpers of the lib/nn kernel tests: open a reference
 * fixture written by tests/ref/nn_conv.py, fetch its float32 / int32 tensors by
 * case and name (checking dtype and element count first), convert to double,
 * and the float64 finite-difference comparison. */
#ifndef FD_NN_KFIX_H
#define FD_NN_KFIX_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "io/fd_safetensors.h"
#include "tap.h"

TAP_UNUSED static const char *fix_dir(void)
{
	static char dir[512];
	const char *b = getenv("FD_BUILD");
	snprintf(dir, sizeof dir, "%s/ref/nn_conv", b ? b : "build");
	return dir;
}

TAP_UNUSED static int fix_open(struct fd_st *st, const char *file)
{
	struct fd_err e;
	char path[700];
	snprintf(path, sizeof path, "%s/%s", fix_dir(), file);
	if (fd_st_open(st, path, &e)) {
		printf("Bail out! %s\n", e.msg);
		exit(1);
	}
	return 0;
}

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
 * entries of p (n of them), against the analytic gradient g; h = 1e-6 in double.
 * Reports the largest relative error (scale max(1, |g|)). */
TAP_UNUSED static int fd_check(const char *name, double *p, size_t n, const double *g, int probes,
		    double (*loss)(void *), void *ctx)
{
	double worst = 0;
	size_t wi = 0, step = n > (size_t)probes ? n / probes : 1;
	for (size_t i = 0; i < n; i += step) {
		double keep = p[i], h = 1e-6;
		p[i] = keep + h;
		double lp = loss(ctx);
		p[i] = keep - h;
		double lm = loss(ctx);
		p[i] = keep;
		double num = (lp - lm) / (2 * h);
		double err = fabs(num - g[i]) / fmax(1.0, fabs(g[i]));
		if (err > worst)
			worst = err, wi = i;
	}
	return ok(worst < 1e-6, "%s: finite differences, worst rel err %.3g at [%zu]", name, worst, wi);
}

#endif
