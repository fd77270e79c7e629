/* t_vmath: core/fd_vmath.h's exp and erf against double-precision libm over
 * every 509th float bit pattern (the whole range: normals, subnormals, +-inf,
 * NaNs) plus 2M seeded uniform inputs where the functions bend, in ulps of the
 * float result; the special values; vectorised loops give the bits of scalar
 * calls; and lib/nn/act.c's SiLU, sigmoid and GELU (forward and backward, the
 * vectorised kernels) against their double references (fd_act_ref_*), never
 * more than 2 ulps worse at any input than the libm formulas they replaced.
 * Negative controls: a 3-ulp bias, a wrong value on 1/10^5 of the range and a
 * NaN must each fail the checks. */
#include "core/fd_rng.h"
#include "core/fd_vec.h"
#include "core/fd_vmath.h"
#include "nn/act.h"
#include "nn_ctx.h"
#include "tap.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* |f - ref| in ulps of ref as a float: subnormal ulp below 2^-126; a value
 * beyond FLT_MAX (ref or an infinite f) counts as 2^128, so an overflow to inf
 * where libm's would round to FLT_MAX costs ~1 ulp, not infinity. NaN gives NaN. */
static double ulp_err(float f, double ref)
{
	const double lim = ldexp(1.0, 128);
	double fd = isinf(f) ? copysign(lim, f) : f;
	if (fabs(ref) > lim)
		ref = copysign(lim, ref);
	int ex;
	frexp(ref, &ex); /* |ref| = m 2^ex, m in [0.5, 1) */
	if (ref == 0 || ex - 1 < -126)
		ex = -125;
	return fabs(fd - ref) / ldexp(1.0, ex - 1 - 23);
}

/* An activation's error where float32 itself cancels (1 - sigmoid near 1,
 * 1 + erf below -1, x (1 - s) for large x): ulps of the result plus ulps of
 * max(1, |x|), the scale such terms are computed at. */
static double act_err(float f, double ref, float x)
{
	double e = ulp_err(f, ref);
	double u = e > 0 ? fabs((double)f - ref) / e : 0; /* ulp(ref) */
	double scale = ldexp(fabs(x) > 1 ? fabs(x) : 1.0, -24);
	return e == e ? fabs((double)f - ref) / (u + scale) : e;
}

typedef float (*f1)(float);
static float v_exp(float x) { return fd_vm_expf(x); }
static float v_erf(float x) { return fd_vm_erff(x); }

/* negative controls: a 3-ulp bias everywhere, a 4-ulp error on
 * [0.3, 0.301] (1/10^5 of exp's swept range, ~1/10^4 of erf's), a NaN there */
static float bad_bias(float x) { return fd_vm_expf(x) * (1.0f + 3.6e-7f); }
static float bad_spot(float x) { return x >= 0.3f && x <= 0.301f ? fd_vm_erff(x) * (1.0f + 4.8e-7f) : fd_vm_erff(x); }
static float bad_nan(float x) { return x >= 0.3f && x <= 0.301f ? NAN : fd_vm_expf(x); }

struct sweep {
	double worst; /* max ulp error, NaN-aware (tap_worse) */
	float at;     /* its input */
	long n;       /* inputs checked */
	long nan_in;  /* NaN inputs, each of which gave NaN */
	int nan_bad;  /* NaN inputs that did not give NaN */
};

static void check1(struct sweep *s, f1 f, double (*ref)(double), float x)
{
	float y = f(x);
	if (x != x) {
		s->nan_in++;
		s->nan_bad += y == y;
		return;
	}
	double e = ulp_err(y, ref((double)x));
	if (!(e <= s->worst))
		s->at = x;
	s->worst = tap_worse(s->worst, e);
	s->n++;
}

/* every 509th bit pattern from a seed-dependent start, then 2M uniform on
 * [lo, hi] (Philox), then the listed edge values */
static struct sweep sweep(f1 f, double (*ref)(double), float lo, float hi, const float *edge, int nedge)
{
	struct sweep s = {0};
	for (uint64_t u = 7; u <= 0xffffffffu; u += 509)
		check1(&s, f, ref, fd_vm_float((uint32_t)u));
	struct fd_rng r;
	fd_rng_init(&r, 15, 0);
	for (int i = 0; i < 2000000; i++)
		check1(&s, f, ref, (float)(lo + (hi - lo) * fd_rng_uniform(&r)));
	for (int i = 0; i < nedge; i++)
		check1(&s, f, ref, edge[i]);
	return s;
}

/* the vectorised loop (this machine's clone of core/fd_vec.h) */
FD_VEC_CLONES
static void vec_exp(int64_t n, const float *restrict x, float *restrict y)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = fd_vm_expf(x[i]);
}

FD_VEC_CLONES
static void vec_erf(int64_t n, const float *restrict x, float *restrict y)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = fd_vm_erff(x[i]);
}

/* one call per element through a pointer: scalar code, never vectorised */
static void scalar(f1 volatile f, int64_t n, const float *x, float *y)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = f(x[i]);
}

/* The libm formulas act.c used before fd_vmath (the comparison baseline). */
static float old_fwd(enum fd_act k, float x)
{
	float s = 1.0f / (1.0f + expf(-x));
	return k == FD_ACT_SILU ? x * s : k == FD_ACT_SIGMOID ? s : 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
}

static float old_grad(enum fd_act k, float x)
{
	float s = 1.0f / (1.0f + expf(-x));
	if (k == FD_ACT_SILU)
		return s * (1.0f + x * (1.0f - s));
	if (k == FD_ACT_SIGMOID)
		return s * (1.0f - s); /* act.c: from the saved y = sigmoid(x) */
	float cdf = 0.5f * (1.0f + erff(x * (float)M_SQRT1_2));
	float pdf = expf(-0.5f * x * x) * (float)(0.5 * M_2_SQRTPI * M_SQRT1_2);
	return cdf + x * pdf;
}

/* act k, forward or backward (dy = 1 into dx = 0), on n inputs x: the worst
 * ulp error, the worst act_err and its worst excess over the libm formula's */
static void act_case(struct fd_ctx *c, enum fd_act k, int64_t n, const float *x, int bwd, double *ulp,
		     double *worst, double *excess)
{
	float *y = malloc((size_t)n * sizeof *y), *dy = malloc((size_t)n * sizeof *dy);
	float *dx = calloc((size_t)n, sizeof *dx), *got = malloc((size_t)n * sizeof *got);
	double *xd = malloc((size_t)n * sizeof *xd), *rd = calloc((size_t)n, sizeof *rd);
	double *ones = malloc((size_t)n * sizeof *ones);
	for (int64_t i = 0; i < n; i++)
		xd[i] = x[i], dy[i] = 1.0f, ones[i] = 1.0;
	int rc = fd_act_fwd_cpu(c, k, n, x, y);
	if (bwd) {
		rc |= fd_act_bwd_cpu(c, k, n, x, y, dy, dx);
		fd_act_ref_backward(k, n, xd, ones, rd);
		memcpy(got, dx, (size_t)n * sizeof *got);
	} else {
		fd_act_ref_forward(k, n, xd, rd);
		memcpy(got, y, (size_t)n * sizeof *got);
	}
	*ulp = *worst = rc ? INFINITY : 0;
	*excess = rc ? INFINITY : -INFINITY;
	for (int64_t i = 0; i < n; i++) {
		float old = bwd ? old_grad(k, x[i]) : old_fwd(k, x[i]);
		double e = act_err(got[i], rd[i], x[i]), eo = act_err(old, rd[i], x[i]);
		double d = e != e ? INFINITY : eo != eo ? -INFINITY : e - eo; /* a new NaN is the worst */
		*ulp = tap_worse(*ulp, ulp_err(got[i], rd[i]));
		*worst = tap_worse(*worst, e);
		*excess = d > *excess ? d : *excess;
	}
	free(y), free(dy), free(dx), free(got), free(xd), free(rd), free(ones);
}

int main(void)
{
	const float inf = INFINITY;
	/* overflow / underflow thresholds and their neighbours, the subnormal
	 * boundary, signed zeros, the largest and smallest floats */
	static const float exp_edge[] = {
		0.0f, -0.0f, 1.0f, -1.0f, 88.7228317f, 88.7228394f, 88.72284f, 89.0f, 89.5f, -87.3365479f,
		-87.3365555f, -103.278931f, -103.972084f, -103.97209f, -104.0f, -150.0f, FLT_MAX, -FLT_MAX,
		FLT_MIN, -FLT_MIN, 1e-45f, -1e-45f, 0.34657359f, -0.34657359f, 1e-8f, -1e-8f,
	};
	static const float erf_edge[] = {
		0.0f, -0.0f, 0.875f, 0.87500006f, -0.875f, -0.87500006f, 3.9f, 3.92f, 4.0f, 4.0000005f,
		-4.0f, 10.0f, FLT_MAX, -FLT_MAX, FLT_MIN, -FLT_MIN, 1e-45f, -1e-45f, 1e-20f, 0.5f, 2.0f,
	};
	int ne = (int)(sizeof exp_edge / sizeof *exp_edge), nr = (int)(sizeof erf_edge / sizeof *erf_edge);

	/* special values, exactly as libm */
	ok(fd_vm_expf(inf) == inf && fd_vm_expf(-inf) == 0.0f && !signbit(fd_vm_expf(-inf)) &&
		   fd_vm_expf(0.0f) == 1.0f && fd_vm_expf(-0.0f) == 1.0f && fd_vm_expf(100.0f) == inf &&
		   fd_vm_expf(FLT_MAX) == inf && fd_vm_expf(-FLT_MAX) == 0.0f && fd_vm_expf(-110.0f) == 0.0f,
	   "exp: e^+inf = inf, e^-inf = +0, e^+-0 = 1, overflow to inf, underflow to +0");
	ok(fd_vm_expf(-100.0f) > 0 && fd_vm_expf(-100.0f) < FLT_MIN && fd_vm_expf(-103.0f) > 0,
	   "exp: e^-100, e^-103 are subnormal, not flushed: %g %g", (double)fd_vm_expf(-100.0f),
	   (double)fd_vm_expf(-103.0f));
	float nan_neg = -NAN, nan_pay = fd_vm_float(0x7f800001u); /* a negative NaN, a signalling pattern */
	ok(isnan(fd_vm_expf(NAN)) && isnan(fd_vm_expf(nan_neg)) && isnan(fd_vm_expf(nan_pay)) &&
		   isnan(fd_vm_erff(NAN)) && isnan(fd_vm_erff(nan_neg)) && isnan(fd_vm_erff(nan_pay)),
	   "exp, erf: NaN in, NaN out (positive, negative, signalling patterns)");
	ok(fd_vm_erff(inf) == 1.0f && fd_vm_erff(-inf) == -1.0f && fd_vm_erff(0.0f) == 0.0f &&
		   !signbit(fd_vm_erff(0.0f)) && signbit(fd_vm_erff(-0.0f)) && fd_vm_erff(10.0f) == 1.0f &&
		   fd_vm_erff(-FLT_MAX) == -1.0f,
	   "erf: +-inf -> +-1, +-0 -> +-0 (sign kept), saturates at +-1");

	/* the sweeps: max ulp error <= 2 (over every float: 0.989 and 1.257,
	 * doc/nn-kernels.md) */
	struct sweep s = sweep(v_exp, exp, -105.0f, 90.0f, exp_edge, ne);
	ok(s.n > 10000000 && s.worst <= 2.0, "exp: %ld inputs, max error %.3f ulp at %a (want <= 2)", s.n, s.worst,
	   (double)s.at);
	ok(s.nan_in > 1000 && s.nan_bad == 0, "exp: %ld NaN bit patterns swept, every one gives NaN", s.nan_in);
	s = sweep(v_erf, erf, -4.5f, 4.5f, erf_edge, nr);
	ok(s.n > 10000000 && s.worst <= 2.0, "erf: %ld inputs, max error %.3f ulp at %a (want <= 2)", s.n, s.worst,
	   (double)s.at);
	ok(s.nan_in > 1000 && s.nan_bad == 0, "erf: %ld NaN bit patterns swept, every one gives NaN", s.nan_in);
	int odd = 0;
	for (uint64_t u = 3; u < 0x7f800000u; u += 4099) {
		float x = fd_vm_float((uint32_t)u);
		odd += fd_vm_erff(-x) != -fd_vm_erff(x);
	}
	ok(!odd, "erf(-x) = -erf(x) exactly (%d mismatches)", odd);

	/* negative controls: each planted error fails the same check */
	s = sweep(bad_bias, exp, -105.0f, 90.0f, exp_edge, ne);
	ok(!(s.worst <= 2.0), "negative control: exp * (1 + 3.6e-7) fails (%.3f ulp)", s.worst);
	s = sweep(bad_spot, erf, -4.5f, 4.5f, erf_edge, nr);
	ok(!(s.worst <= 2.0), "negative control: erf 4 ulp off on [0.3, 0.301] only fails (%.3f ulp at %a)",
	   s.worst, (double)s.at);
	s = sweep(bad_nan, exp, -105.0f, 90.0f, exp_edge, ne);
	ok(!(s.worst <= 2.0), "negative control: exp NaN on [0.3, 0.301] only fails (%.3f)", s.worst);

	/* vector = scalar, bit for bit (no FMA, no reassociation) */
	int64_t n = 1 << 20;
	float *x = malloc((size_t)n * sizeof *x), *yv = malloc((size_t)n * sizeof *yv);
	float *ys = malloc((size_t)n * sizeof *ys);
	struct fd_rng r;
	fd_rng_init(&r, 16, 0);
	for (int64_t i = 0; i < n; i++) /* wide, mid and narrow ranges, NaNs and infs among them */
		x[i] = i % 3 == 0 ? fd_vm_float(fd_rng_u32(&r)) : (float)((fd_rng_uniform(&r) - 0.5) * (i % 3 == 1 ? 240 : 10));
	vec_exp(n, x, yv);
	scalar(v_exp, n, x, ys);
	int same_exp = memcmp(yv, ys, (size_t)n * sizeof *yv) == 0;
	vec_erf(n, x, yv);
	scalar(v_erf, n, x, ys);
	ok(same_exp && memcmp(yv, ys, (size_t)n * sizeof *yv) == 0,
	   "exp, erf: the vectorised loop gives the scalar bits on %lld inputs", (long long)n);

	/* the activation kernels (lib/nn/act.c) on [-30, 30], specials included */
	struct fd_ctx c;
	ctx_open(&c, 2, 1);
	fd_rng_init(&r, 17, 0);
	for (int64_t i = 0; i < n; i++)
		x[i] = (float)((fd_rng_uniform(&r) - 0.5) * (i % 2 ? 60 : 12));
	static const enum fd_act acts[] = {FD_ACT_SILU, FD_ACT_SIGMOID, FD_ACT_GELU};
	for (int a = 0; a < 3; a++)
		for (int bwd = 0; bwd < 2; bwd++) {
			double ulp, worst, excess;
			act_case(&c, acts[a], n, x, bwd, &ulp, &worst, &excess);
			/* ulps alone where nothing cancels: SiLU and sigmoid forward */
			int plain = !bwd && acts[a] != FD_ACT_GELU;
			ok(worst <= 4.0 && excess <= 2.0 && (!plain || ulp <= 3.0),
			   "%s %s: %lld inputs, max error %.3g ulp, %.2f in ulps of result + max(1,|x|) (want <= 4), "
			   "at most %.2f of those worse than libm's formula (want <= 2)%s",
			   fd_act_name(acts[a]), bwd ? "backward" : "forward", (long long)n, ulp, worst, excess,
			   plain ? " and <= 3 ulp" : "");
		}
	/* NaN propagates; infinities as the libm formulas give them */
	static const float sp[] = {NAN, -NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 100.0f, -100.0f};
	int spn = (int)(sizeof sp / sizeof *sp), bad = 0;
	for (int a = 0; a < 3; a++) {
		float y[8], dx[8] = {0}, dy[8];
		for (int i = 0; i < spn; i++)
			dy[i] = 1.0f;
		fd_act_fwd_cpu(&c, acts[a], spn, sp, y);
		fd_act_bwd_cpu(&c, acts[a], spn, sp, y, dy, dx);
		for (int i = 0; i < spn; i++) {
			float o = old_fwd(acts[a], sp[i]), og = old_grad(acts[a], sp[i]);
			bad += isnan(y[i]) != isnan(o) || (isinf(o) && y[i] != o) || isnan(dx[i]) != isnan(og) ||
			       (isinf(og) && dx[i] != og);
		}
	}
	ok(!bad, "silu, sigmoid, gelu: NaN in gives NaN out, +-inf and +-100 as the libm formulas (%d differ)", bad);
	fd_ctx_free(&c);
	free(x), free(yv), free(ys);
	return tap_done();
}
