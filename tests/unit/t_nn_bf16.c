/* t_nn_bf16: conv2d and linear at precision bf16 (doc/nn-kernels.md "bf16")
 * against PyTorch fixtures (tests/ref/nn_bf16.py), forward, input gradient
 * and weight/bias gradients, two ways:
 *   exact: torch in float64 on the bf16-rounded inputs. fd multiplies the
 *     same bf16 values; a product of two bf16 values (8-bit significands) is
 *     exact in float32, so the only difference is float32 accumulation order:
 *     the float32 tolerances of t_nn_conv (1e-4 abs + 1e-4 rel; dw 3e-4 abs,
 *     it sums N*Ho*Wo terms) hold.
 *   autocast: PyTorch 1.13 CPU autocast, whose outputs and gradients are
 *     rounded to bf16 (fd's stay float32): one bf16 rounding is at most half
 *     a bf16 ulp, 2^-8 relative; the tolerance is one ulp (2^-7 relative) for
 *     the rounding plus torch's own accumulation order, and 1e-3 absolute for
 *     values near zero. Autocast also rounds the bias to bf16 (fd keeps it
 *     float32): y is compared after adding that known difference,
 *     bf16(b) - b. Linear's dw and db are not compared with autocast: torch
 *     1.13 reduces them with bf16 roundings on some shapes (measured: dw of
 *     the 4x7 case 2 ulps off; a 32-row bias sum 0.02 off), so dw is a
 *     diagnostic only; both are checked against the exact reference.
 * conv2d's backward-weights multiplies bf16 only on maps of at least
 * FD_CONV2D_BF16_WEIGHTS_MAP positions (AMX's kernel, or AVX512-BF16's on
 * a CPU without AMX), else fp32 (doc/nn-kernels.md "bf16", "bf16 without
 * AMX"): the plan says which, the rule is checked, and
 * an fp32 dw/db is compared with torch in float64 on the float32 inputs at
 * the fp32 tolerances.
 * Channels last (every case again with x, y, dx, dy NHWC): y, dx, dw, db
 * as above; on AMX the backward passes conv_mm's rule and the
 * flipped-forward backward-data serve (without AMX: its backward-weights and
 * 1x1 backward-data) (fd_conv2d_bf16_mm_cpu: never a pass
 * outside the rule, and counts of cases per path > 0): their dw against
 * torch on bf16-rounded inputs, a matmul plan's db (column sums of the fp32
 * dy) against torch in float64 on the float32 dy; a second backward
 * overwrites a dx full of NaN (a fresh gradient) with the same values;
 * negative controls: the transposed weight of a square 1x1 gives a dx that
 * fails, and so does the rotated kernel (taps swapped) of a strided kxk whose
 * backward-data runs as dy . W' and col2im (those cases counted, >= 2).
 * Inference fusion at bf16 (fd_mconv_bn_fwd in eval mode: BN folded into
 * the convolution in double, the folded weight rounded once to bf16, the
 * activation a oneDNN post-op): y vs torch in float64 on the same bf16
 * operands (x, the folded weight), within conv's 1e-4 tolerance (the products
 * are exact, fp32 accumulation, fp32 bias; SiLU / hardswish post-ops a few
 * float ulps); the unfused taped path (m->unfused) vs its own reference
 * (bf16(w), then BN); negative control: the fused y vs the unfused reference
 * fails (rounding w before or after folding differs by ~2^-9 relative).
 * fd_dnnl_to_bf16 (conv2d's fp32 -> bf16 input conversion) gives oneDNN's
 * reorder's bits on normal values, ties, NaN, infinities, zeros and
 * subnormals, and round-to-nearest-even's on the normal ones; control: it
 * differs from truncation.
 * The GELU post-op of a bf16 inference convolution (ConvNeXt's pw1): y vs
 * gelu(torch's y on the bf16-rounded inputs) at conv's tolerance.
 * Depthwise shapes (fd_conv2d_bf16_in_fp32: conv cases 3, 4, fused case 1)
 * run an fp32 plan in the bf16 context: y, dx against torch in float64 on
 * the float32 inputs (y32, dx32) at the fp32 tolerances, y bit for bit the
 * fp32 plan's; control: torch on the bf16-rounded inputs is far outside the
 * tolerance; counted (>= 3).
 * Also: a CPU without AVX512-BF16 refuses with the feature named; NaN fails
 * the comparison; the conv plan cache keys on the precision. */
#include "models/fd_model.h"
#include "nn/conv2d.h"
#include "nn/conv_mm.h"
#include "nn/fd_dnnl.h"
#include "nn/layout.h"
#include "nn/linear.h"
#include "fixture.h"
#include "nn_ctx.h"

#include <string.h>

#define ULP_BF16 (1.0 / 128)

/* v rounded to bf16, nearest even (finite v) */
static float bf16_round(float v)
{
	uint32_t u;
	memcpy(&u, &v, sizeof u);
	u = (u + 0x7fffu + (u >> 16 & 1)) & 0xffff0000u;
	memcpy(&v, &u, sizeof v);
	return v;
}

/* y plus what autocast's rounding of the bias adds: bias[k] of element i is
 * k = i / inner % K */
static float *with_bf16_bias(const float *y, size_t n, const float *b, size_t K, size_t inner)
{
	float *r = malloc((n ? n : 1) * sizeof *r);
	for (size_t i = 0; i < n; i++) {
		float bk = b ? b[i / inner % K] : 0;
		r[i] = y[i] + (bf16_round(bk) - bk);
	}
	return r;
}

/* The worst error share of a against r (tap_close_f32's measure, NaN = inf)
 * without a TAP line; *differ counts elements beyond the tolerance. */
static double worst_share(const float *a, const float *r, size_t n, double atol, double rtol, size_t *differ)
{
	double worst = 0;
	*differ = 0;
	for (size_t i = 0; i < n; i++) {
		double err = fabs((double)a[i] - (double)r[i]);
		double share = err / (atol + rtol * fabs((double)r[i]));
		if (!(share <= 1))
			(*differ)++;
		worst = tap_worse(worst, share);
	}
	return worst;
}

static int checked, fp32_plan_cases, bf16_weights_cases, mm_data_cases, mm_weights_cases, flip_cases, over_cases, col2im_cases;

/* got vs exact; and, ac != NULL, vs autocast (got_ac: got with autocast's
 * bias rounding, NULL = got) */
static void both(const char *what, int i, const float *got, const float *exact, const float *got_ac,
		 const float *ac, size_t n, double atol)
{
	char nm[96];
	snprintf(nm, sizeof nm, "case %d %s vs torch on bf16-rounded inputs", i, what);
	checked += tap_close_f32(nm, got, exact, n, atol, 1e-4);
	if (!ac)
		return;
	snprintf(nm, sizeof nm, "case %d %s vs torch CPU autocast", i, what);
	checked += tap_close_f32(nm, got_ac ? got_ac : got, ac, n, 1e-3, ULP_BF16);
}

/* The fixture tensor a bf16 context's plan for s is checked against: its
 * name for torch on bf16-rounded inputs, or for a shape that runs fp32 in
 * a bf16 context (fd_conv2d_bf16_in_fp32: depthwise) the float32 inputs'
 * ("y" -> "y32", "dx" -> "dx32") */
static const char *ref(const struct fd_conv2d_shape *s, const char *name)
{
	if (!fd_conv2d_bf16_in_fp32(s))
		return name;
	return !strcmp(name, "y") ? "y32" : !strcmp(name, "dx") ? "dx32" : name;
}

static void conv_case(struct fd_ctx *cb, struct fd_ctx *c32, const struct fd_st *st, int i)
{
	const int32_t *v = fix_i32(st, i, "shape", 15);
	struct fd_conv2d_shape s = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
				    v[8], v[9], v[10], v[11], v[12], v[13], v[14], FD_NCHW, FD_NCHW};
	struct fd_err e = {{0}};
	void *p = NULL, *p32 = NULL;
	int Ho, Wo;
	if (!ok(fd_conv2d_out_size(&s, &Ho, &Wo, &e) == 0, "conv case %d: shape valid", i))
		return;
	size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.K * Ho * Wo;
	size_t nw = (size_t)s.K * (s.C / s.groups) * s.kh * s.kw, nb = s.bias ? s.K : 0;
	const float *x = fix_f32(st, i, "x", nx, 0), *w = fix_f32(st, i, "w", nw, 0), *b = fix_f32(st, i, "b", nb, 1);
	const float *dy = fix_f32(st, i, "dy", ny, 0);
	diag("conv case %d: N=%d C=%d %dx%d K=%d k=%dx%d s=%d,%d p=%d,%d d=%d,%d g=%d bias=%d", i, s.N, s.C, s.H,
	     s.W, s.K, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, s.dh, s.dw, s.groups, s.bias);
	if (!ok(fd_conv2d_plan_cpu(cb, &s, &p) == 0 && fd_conv2d_plan_cpu(c32, &s, &p32) == 0,
		"conv case %d: bf16 and fp32 plans made %s", i, cb->err.msg))
		return;
	float *y = filled(ny, 7.0f), *y32 = filled(ny, 7.0f), *dx = filled(nx, 1.0f), *dw = filled(nw, 1.0f);
	float *db = filled(nb ? nb : 1, 1.0f);
	ok(fd_conv2d_fwd_cpu(cb, p, x, w, b, y) == 0 && fd_conv2d_fwd_cpu(c32, p32, x, w, b, y32) == 0 &&
	   fd_conv2d_bwd_cpu(cb, p, x, w, dy, dx, dw, nb ? db : NULL) == 0,
	   "conv case %d: bf16 forward and backward run %s", i, cb->err.msg);
	float *gdx = less_ones(dx, nx), *gdw = less_ones(dw, nw), *gdb = less_ones(db, nb);
	float *yac = with_bf16_bias(y, ny, b, s.K, (size_t)Ho * Wo);
	int f32 = fd_conv2d_bf16_in_fp32(&s); /* depthwise: an fp32 plan */
	ok(fd_conv2d_bf16_cpu(p) == !f32 && !fd_conv2d_bf16_cpu(p32), "conv case %d: the bf16 context's plan is %s",
	   i, f32 ? "fp32 (depthwise)" : "bf16");
	fp32_plan_cases += f32;
	if (f32) {
		char nm[96];
		snprintf(nm, sizeof nm, "case %d y (fp32 plan) vs torch on float32 inputs", i);
		checked += tap_close_f32(nm, y, fix_f32(st, i, "y32", ny, 0), ny, 1e-4, 1e-4);
		snprintf(nm, sizeof nm, "case %d dx (adds, fp32 plan) vs torch on float32 inputs", i);
		checked += tap_close_f32(nm, gdx, fix_f32(st, i, "dx32", nx, 0), nx, 1e-4, 1e-4);
	} else {
		both("y", i, y, fix_f32(st, i, "y", ny, 0), yac, fix_f32(st, i, "ac_y", ny, 0), ny, 1e-4);
		both("dx (adds)", i, gdx, fix_f32(st, i, "dx", nx, 0), NULL, fix_f32(st, i, "ac_dx", nx, 0), nx, 1e-4);
	}
	int bw = fd_conv2d_bf16_weights_cpu(p);
	/* AMX's kernel there, or without AMX (Zen 4) the AVX512-BF16 one */
	int want_bw = !f32 && (int64_t)Ho * Wo >= FD_CONV2D_BF16_WEIGHTS_MAP;
	ok(bw == want_bw, "conv case %d: backward-weights in %s (map %dx%d, amx_bf16 %s)", i, bw ? "bf16" : "fp32",
	   Ho, Wo, cpu_has("amx_bf16") ? "yes" : "no");
	bf16_weights_cases += bw;
	if (bw) {
		both("dw (adds)", i, gdw, fix_f32(st, i, "dw", nw, 0), NULL, fix_f32(st, i, "ac_dw", nw, 0), nw, 3e-4);
		if (nb)
			both("db (adds)", i, gdb, fix_f32(st, i, "db", nb, 0), NULL, fix_f32(st, i, "ac_db", nb, 0), nb,
			     3e-4);
	} else {
		both("fp32 dw (adds)", i, gdw, fix_f32(st, i, "dw32", nw, 0), NULL, NULL, nw, 3e-4);
		if (nb)
			both("fp32 db (adds)", i, gdb, fix_f32(st, i, "db32", nb, 0), NULL, NULL, nb, 1e-4);
	}
	free(yac);
	size_t differ;
	if (f32) {
		/* the fp32 plan's bits; control: torch on bf16-rounded inputs
		 * (what a bf16 plan would match) is not within the tolerance */
		double ws = worst_share(y, fix_f32(st, i, "y", ny, 0), ny, 1e-4, 1e-4, &differ);
		ok(memcmp(y, y32, ny * sizeof *y) == 0 && ws > 1 && differ > 0,
		   "conv case %d: depthwise in a bf16 context: the fp32 plan's y bit for bit; torch on bf16-rounded "
		   "inputs %.3g x the tolerance away at %zu of %zu",
		   i, ws, differ, ny);
	} else {
		/* bf16 is in effect: the fp32 plan's y differs beyond float32 noise */
		worst_share(y, y32, ny, 1e-4, 1e-4, &differ);
		ok(differ > 0, "conv case %d: bf16 y differs from fp32 y beyond 1e-4 at %zu of %zu", i, differ, ny);
	}
	if (i == 0) { /* negative control: a NaN in x reaches y, and the comparison fails */
		float *xn = malloc(nx * sizeof *xn);
		memcpy(xn, x, nx * sizeof *xn);
		xn[0] = NAN;
		fd_conv2d_fwd_cpu(cb, p, xn, w, b, y);
		double ws = worst_share(y, fix_f32(st, i, "y", ny, 0), ny, 1e-4, 1e-4, &differ);
		ok(!(ws <= 1) && differ > 0, "conv case 0: negative control: a NaN in x fails the comparison (%g, %zu)",
		   ws, differ);
		free(xn);
	}
	fd_conv2d_plan_free_cpu(p);
	fd_conv2d_plan_free_cpu(p32);
	free(y), free(y32), free(dx), free(dw), free(db), free(gdx), free(gdw), free(gdb);
}

/* [N, C, HW] <-> [N, HW, C] (to: NCHW -> NHWC; back: NHWC -> NCHW) */
static float *nhwc(const float *v, int N, int C, int HW, int back)
{
	size_t nel = (size_t)N * C * HW;
	float *o = malloc((nel ? nel : 1) * sizeof *o);
	if (back)
		fd_transpose_cpu(2, N, HW, C, v, o, 0);
	else
		fd_transpose_cpu(2, N, C, HW, v, o, 0);
	return o;
}

/* dx of conv case i vs torch on bf16-rounded inputs (NHWC dx, adds: less
 * the ones it started at); the worst share of the tolerance */
static double dx_share(const struct fd_st *st, int i, const struct fd_conv2d_shape *s, const float *dx, int adds,
		       size_t *differ)
{
	size_t nx = (size_t)s->N * s->C * s->H * s->W;
	float *d0 = adds ? less_ones(dx, nx) : NULL, *dc = nhwc(adds ? d0 : dx, s->N, s->C, s->H * s->W, 1);
	double ws = worst_share(dc, fix_f32(st, i, ref(s, "dx"), nx, 0), nx, 1e-4, 1e-4, differ);
	free(d0), free(dc);
	return ws;
}

/* The conv case in channels last (x, y, dx and dy NHWC: the layout the
 * MBConv, ConvNeXt and ResNet forwards run in, doc/nn-kernels.md
 * "Layouts") at bf16: y, dx, dw and db equal torch's as the NCHW plan's do.
 * On AMX the passes of conv_mm's rule run as matmuls (fd_conv2d_bf16_mm_cpu
 * says so): their dw against torch on bf16-rounded x and dy, their db
 * (column sums of the fp32 dy) against torch in float64 on the float32 dy;
 * oneDNN's bf16 backward-weights the same dw and its db of the bf16 dy; an
 * fp32 one dw32, db32. A second backward overwrites a dx full of NaN (a
 * fresh gradient) with the same values. */
static int conv_case_nhwc(struct fd_ctx *cb, const struct fd_st *st, int i)
{
	const int32_t *v = fix_i32(st, i, "shape", 15);
	struct fd_conv2d_shape s = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
				    v[8], v[9], v[10], v[11], v[12], v[13], v[14], FD_NHWC, FD_NHWC};
	struct fd_err e = {{0}};
	void *p = NULL;
	int Ho, Wo;
	if (fd_conv2d_out_size(&s, &Ho, &Wo, &e) != 0)
		return 0;
	int HWi = s.H * s.W, HWo = Ho * Wo;
	size_t nx = (size_t)s.N * s.C * HWi, ny = (size_t)s.N * s.K * HWo;
	size_t nw = (size_t)s.K * (s.C / s.groups) * s.kh * s.kw, nb = s.bias ? s.K : 0;
	const float *w = fix_f32(st, i, "w", nw, 0), *b = fix_f32(st, i, "b", nb, 1);
	float *x = nhwc(fix_f32(st, i, "x", nx, 0), s.N, s.C, HWi, 0);
	float *dy = nhwc(fix_f32(st, i, "dy", ny, 0), s.N, s.K, HWo, 0);
	if (!ok(fd_conv2d_plan_cpu(cb, &s, &p) == 0, "conv case %d NHWC: bf16 plan made %s", i, cb->err.msg)) {
		free(x), free(dy);
		return 0;
	}
	float *y = filled(ny, 7.0f), *dx = filled(nx, 1.0f), *dw = filled(nw, 1.0f), *db = filled(nb ? nb : 1, 1.0f);
	ok(fd_conv2d_fwd_cpu(cb, p, x, w, b, y) == 0 && fd_conv2d_bwd_cpu(cb, p, x, w, dy, dx, dw, nb ? db : NULL) == 0,
	   "conv case %d NHWC: bf16 forward and backward run %s", i, cb->err.msg);
	float *yc = nhwc(y, s.N, s.K, HWo, 1), *dxc0 = less_ones(dx, nx), *dxc = nhwc(dxc0, s.N, s.C, HWi, 1);
	char nm[96];
	const char *on = fd_conv2d_bf16_in_fp32(&s) ? "float32 (an fp32 plan)" : "bf16-rounded";
	snprintf(nm, sizeof nm, "case %d NHWC bf16 y vs torch on %s inputs", i, on);
	checked += tap_close_f32(nm, yc, fix_f32(st, i, ref(&s, "y"), ny, 0), ny, 1e-4, 1e-4);
	snprintf(nm, sizeof nm, "case %d NHWC bf16 dx (adds) vs torch on %s inputs", i, on);
	checked += tap_close_f32(nm, dxc, fix_f32(st, i, ref(&s, "dx"), nx, 0), nx, 1e-4, 1e-4);
	/* the rule's passes, each where oneDNN's matmul for it is AMX (not on
	 * the smallest products: tiny or 16-deep ones run its AVX512-BF16
	 * kernel); without AMX (Zen 4) backward-weights and a 1x1's
	 * backward-data where the matmul is AVX512-BF16's */
	int amx = cpu_has("amx_bf16"), mm = fd_conv2d_bf16_mm_cpu(p);
	int rule = amx ? fd_conv_mm_rule(&s, Ho, Wo) : fd_conv_mm_nonamx(&s, Ho, Wo);
	if (!amx) { /* that part written out: no kxk backward-data, no 1x1 weights on maps >= 28x28 */
		int k1 = s.kh * s.kw == 1, big = HWo >= FD_CONV2D_BF16_WEIGHTS_MAP && !((s.sh > 1 || s.sw > 1) && s.C >= 96);
		int drop = (k1 ? 0 : FD_CONV_MM_DATA) | (k1 && big ? FD_CONV_MM_WEIGHTS : 0);
		ok(rule == (fd_conv_mm_rule(&s, Ho, Wo) & ~drop), "conv case %d NHWC: without AMX the rule's part", i);
	}
	int bw = fd_conv2d_bf16_weights_cpu(p);
	int want_bw = !fd_conv2d_bf16_in_fp32(&s) &&
		      ((mm & FD_CONV_MM_WEIGHTS) || (int64_t)HWo >= FD_CONV2D_BF16_WEIGHTS_MAP);
	int flip = amx && s.groups == 1 && s.sh == 1 && s.sw == 1 && s.dh == 1 && s.dw == 1 && s.kh * s.kw > 1 &&
		   s.ph < s.kh && s.pw < s.kw && HWo >= 256 ? FD_CONV_MM_FLIP : 0;
	ok((mm & ~(rule | flip)) == 0 && bw == want_bw,
	   "conv case %d NHWC: backward-data %s, backward-weights %s in %s (rule %d, map %dx%d, amx_bf16 %s)", i,
	   mm & FD_CONV_MM_DATA ? "a matmul" : mm & FD_CONV_MM_FLIP ? "a forward of dy" : "oneDNN's", mm & FD_CONV_MM_WEIGHTS ? "a matmul" : "oneDNN's",
	   bw ? "bf16" : "fp32", rule, Ho, Wo, amx ? "yes" : "no");
	mm_data_cases += (mm & FD_CONV_MM_DATA) != 0;
	int col2im = (mm & FD_CONV_MM_DATA) && s.kh * s.kw > 1; /* a strided kxk: dy . W' and col2im */
	col2im_cases += col2im;
	mm_weights_cases += (mm & FD_CONV_MM_WEIGHTS) != 0;
	flip_cases += (mm & FD_CONV_MM_FLIP) != 0;
	float *dwg = less_ones(dw, nw), *dbg = less_ones(db, nb);
	snprintf(nm, sizeof nm, "case %d NHWC %s dw (adds) vs torch on %s inputs", i, bw ? "bf16" : "fp32",
		 bw ? "bf16-rounded" : "float32");
	checked += tap_close_f32(nm, dwg, fix_f32(st, i, bw ? "dw" : "dw32", nw, 0), nw, 3e-4, 1e-4);
	if (nb) {
		int bf16_db = bw && !(mm & FD_CONV_MM_WEIGHTS); /* oneDNN's sums the bf16 dy */
		snprintf(nm, sizeof nm, "case %d NHWC db (adds) vs torch on the %s dy", i, bf16_db ? "bf16" : "float32");
		checked += tap_close_f32(nm, dbg, fix_f32(st, i, bf16_db ? "db" : "db32", nb, 0), nb, bf16_db ? 3e-4 : 1e-4,
					 1e-4);
	}
	/* a fresh gradient: every value of dx written, none read */
	size_t differ;
	for (size_t k = 0; k < nx; k++)
		dx[k] = NAN;
	double ws = fd_conv2d_bwd_fresh_cpu(cb, p, x, w, dy, dx, NULL, NULL) == 0 ? dx_share(st, i, &s, dx, 0, &differ)
										   : NAN;
	ok(ws <= 1, "case %d NHWC bf16 dx overwritten (a fresh gradient, NaN before) vs torch: %.3g of the tolerance", i,
	   ws);
	over_cases += ws <= 1;
	if (s.kh == 1 && s.kw == 1 && s.K == s.C && s.groups == 1) {
		/* negative control: the weight transposed gives a dx that fails */
		float *wt = malloc(nw * sizeof *wt);
		for (int k = 0; k < s.K; k++)
			for (int c = 0; c < s.C; c++)
				wt[(size_t)c * s.K + k] = w[(size_t)k * s.C + c];
		ws = fd_conv2d_bwd_fresh_cpu(cb, p, x, wt, dy, dx, NULL, NULL) == 0 ? dx_share(st, i, &s, dx, 0, &differ)
										   : NAN;
		ok(ws > 1 && differ > nx / 4, "case %d NHWC: negative control: the transposed weight's dx fails (%.3g, %zu of %zu)",
		   i, ws, differ, nx);
		free(wt);
	}
	if (col2im) {
		/* negative control: the kernel rotated by 180 degrees (the taps'
		 * positions swapped) gives a dx that fails */
		float *wr = malloc(nw * sizeof *wr);
		for (size_t kc = 0; kc < (size_t)s.K * s.C; kc++)
			for (int t = 0; t < s.kh * s.kw; t++)
				wr[kc * s.kh * s.kw + t] = w[kc * s.kh * s.kw + s.kh * s.kw - 1 - t];
		ws = fd_conv2d_bwd_fresh_cpu(cb, p, x, wr, dy, dx, NULL, NULL) == 0 ? dx_share(st, i, &s, dx, 0, &differ)
										   : NAN;
		ok(ws > 1 && differ > nx / 4, "case %d NHWC: negative control: the rotated kernel's dx fails (%.3g, %zu of %zu)",
		   i, ws, differ, nx);
		free(wr);
	}
	fd_conv2d_plan_free_cpu(p);
	free(x), free(dy), free(y), free(dx), free(dw), free(db), free(yc), free(dxc0), free(dxc), free(dwg), free(dbg);
	return 1;
}

/* The GELU post-op of a bf16 inference convolution (fd_conv2d_infer, NHWC,
 * FD_CONV_POST_GELU: ConvNeXt's pw1 at bf16) on conv case i: y vs
 * gelu(torch's y on the bf16-rounded inputs), erf form in double, within
 * conv's tolerance (GELU's slope is at most 1.13: the products stay exact,
 * the fp32 accumulation order and oneDNN's erf a few ulps). Control: the
 * same y against torch's y without GELU fails. 1 when checked. */
static int gelu_case_nhwc(struct fd_ctx *cb, const struct fd_st *st, int i)
{
	const int32_t *v = fix_i32(st, i, "shape", 15);
	struct fd_conv2d_shape s = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
				    v[8], v[9], v[10], v[11], v[12], v[13], v[14], FD_NHWC, FD_NHWC};
	struct fd_err e = {{0}};
	int Ho, Wo;
	if (fd_conv2d_out_size(&s, &Ho, &Wo, &e) != 0)
		return 0;
	int HWi = s.H * s.W, HWo = Ho * Wo;
	size_t nx = (size_t)s.N * s.C * HWi, ny = (size_t)s.N * s.K * HWo;
	size_t nw = (size_t)s.K * (s.C / s.groups) * s.kh * s.kw;
	int64_t xs[4] = {s.N, s.C, s.H, s.W}, ws[4] = {s.K, s.C / s.groups, s.kh, s.kw}, bs[1] = {s.K};
	float *xv = nhwc(fix_f32(st, i, "x", nx, 0), s.N, s.C, HWi, 0);
	const float *yr = fix_f32(st, i, ref(&s, "y"), ny, 0);
	struct fd_conv2d_op op;
	fd_conv2d_op_init(&op, 1, 0, 1, s.groups);
	op.sh = s.sh, op.sw = s.sw, op.ph = s.ph, op.pw = s.pw, op.dh = s.dh, op.dw = s.dw;
	struct fd_tensor *x = fd_tensor_wrap(cb, FD_DEV_CPU, xv, 4, xs);
	struct fd_tensor *w = fd_tensor_wrap(cb, FD_DEV_CPU, (float *)fix_f32(st, i, "w", nw, 0), 4, ws);
	struct fd_tensor *b = s.bias ? fd_tensor_wrap(cb, FD_DEV_CPU, (float *)fix_f32(st, i, "b", s.K, 1), 1, bs) : NULL;
	if (x)
		x->layout = FD_NHWC;
	int cl = cb->channels_last, ge = cb->grad_enabled;
	cb->channels_last = 1;
	cb->grad_enabled = 0;
	struct fd_tensor *y = fd_conv2d_infer(cb, &op, x, w, b, FD_CONV_POST_GELU);
	cb->channels_last = cl;
	cb->grad_enabled = ge;
	ok(y != NULL, "case %d NHWC bf16 GELU post-op runs %s", i, cb->err.msg);
	float *want = malloc(ny * sizeof *want), *yc = y ? nhwc(y->data, s.N, s.K, HWo, 1) : NULL;
	for (size_t j = 0; j < ny; j++)
		want[j] = (float)(0.5 * yr[j] * (1 + erf(yr[j] / sqrt(2.0))));
	char nm[96];
	snprintf(nm, sizeof nm, "case %d NHWC bf16 GELU post-op y vs gelu(torch on %s inputs)", i,
		 fd_conv2d_bf16_in_fp32(&s) ? "float32 (an fp32 plan)" : "bf16-rounded");
	if (yc)
		checked += tap_close_f32(nm, yc, want, ny, 1e-4, 1e-4);
	size_t differ = 0;
	if (yc)
		worst_share(yc, yr, ny, 1e-4, 1e-4, &differ);
	ok(differ > 0, "case %d control: the GELU post-op's y differs from torch's y without GELU at %zu of %zu", i,
	   differ, ny);
	fd_conv2d_op_free(&op);
	fd_ctx_step(cb);
	free(xv), free(want), free(yc);
	return yc != NULL;
}

static void linear_case(struct fd_ctx *cb, const struct fd_st *st, int i)
{
	const int32_t *v = fix_i32(st, i, "shape", 4);
	int N = v[0], in = v[1], out = v[2], bias = v[3];
	size_t nx = (size_t)N * in, ny = (size_t)N * out, nw = (size_t)out * in, nb = bias ? out : 0;
	const float *x = fix_f32(st, i, "x", nx, 0), *w = fix_f32(st, i, "w", nw, 0), *b = fix_f32(st, i, "b", nb, 1);
	const float *dy = fix_f32(st, i, "dy", ny, 0);
	diag("linear case %d: N=%d in=%d out=%d bias=%d", i, N, in, out, bias);
	fd_ctx_step(cb);
	float *y = filled(ny, 7.0f), *dx = filled(nx, 1.0f), *dw = filled(nw, 1.0f), *db = filled(nb ? nb : 1, 1.0f);
	ok(fd_linear_fwd_cpu(cb, N, in, out, x, w, b, y) == 0 &&
	   fd_linear_bwd_cpu(cb, N, in, out, x, w, dy, dx, dw, nb ? db : NULL) == 0,
	   "linear case %d: bf16 forward and backward run %s", i, cb->err.msg);
	float *gdx = less_ones(dx, nx), *gdw = less_ones(dw, nw), *gdb = less_ones(db, nb);
	float *yac = with_bf16_bias(y, ny, b, out, 1);
	both("linear y", i, y, fix_f32(st, i, "y", ny, 0), yac, fix_f32(st, i, "ac_y", ny, 0), ny, 1e-4);
	both("linear dx (adds)", i, gdx, fix_f32(st, i, "dx", nx, 0), NULL, fix_f32(st, i, "ac_dx", nx, 0), nx,
	     1e-4);
	both("linear dw (adds)", i, gdw, fix_f32(st, i, "dw", nw, 0), NULL, NULL, nw, 3e-4);
	if (nb)
		both("linear db (adds)", i, gdb, fix_f32(st, i, "db", nb, 0), NULL, NULL, nb, 1e-4);
	size_t differ;
	double ws = worst_share(gdw, fix_f32(st, i, "ac_dw", nw, 0), nw, 1e-3, ULP_BF16, &differ);
	diag("linear case %d: dw vs autocast's (bf16-accumulated): %.2f of the 1-ulp tolerance, %zu of %zu beyond",
	     i, ws, differ, nw);
	free(yac);
	free(y), free(dx), free(dw), free(db), free(gdx), free(gdw), free(gdb);
}

/* fd_dnnl_to_bf16 against oneDNN's f32 -> bf16 reorder (what conv2d ran
 * before it) and against nearest even on the normal values. */
static void to_bf16_case(void)
{
	enum { N = 100003 }; /* odd: the masked tail; > 2048 x 32: threads */
	static float x[N];
	static uint16_t got[N], want[N];
	const uint32_t special[] = {0x3f808000u, 0x3f818000u, 0xbf808000u, 0x7f7fffffu, 0x7f7f8000u, 0x7f800000u,
				    0xff800000u, 0x7fc00000u, 0x7f800001u, 0xffa00000u, 0x00000000u, 0x80000000u,
				    0x00000001u, 0x00400000u, 0x807fffffu, 0x00800000u, 0x007fffffu, 0x3f7fffffu};
	size_t ns = sizeof special / sizeof special[0];
	uint64_t r = 88172645463325252ull;
	for (size_t i = 0; i < N; i++) {
		r ^= r << 13, r ^= r >> 7, r ^= r << 17;
		uint32_t u = i < ns ? special[i] : (uint32_t)(r >> 32);
		if (i >= ns && i % 3 == 0) /* every third a tie or near one */
			u = (u & 0xffff0000u) | (i % 2 ? 0x8000u : 0x7fffu);
		memcpy(&x[i], &u, sizeof u);
	}
	dnnl_engine_t eng = NULL;
	dnnl_stream_t str = NULL;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_primitive_t rp = NULL;
	dnnl_memory_t mf = NULL, mt = NULL;
	fd_md df = NULL, dt = NULL;
	dnnl_dims_t dims = {N};
	int made = fd_md_tag(&df, 1, dims, dnnl_f32, dnnl_a, NULL) == 0 &&
		   fd_md_tag(&dt, 1, dims, dnnl_bf16, dnnl_a, NULL) == 0 &&
		   dnnl_engine_create(&eng, dnnl_cpu, 0) == dnnl_success &&
		   dnnl_stream_create(&str, eng, dnnl_stream_default_flags) == dnnl_success &&
		   dnnl_reorder_primitive_desc_create(&pd, df, eng, dt, eng, NULL) == dnnl_success &&
		   dnnl_primitive_create(&rp, pd) == dnnl_success &&
		   dnnl_memory_create(&mf, df, eng, x) == dnnl_success &&
		   dnnl_memory_create(&mt, dt, eng, want) == dnnl_success;
	dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, mf}, {DNNL_ARG_TO, mt}};
	made = made && dnnl_primitive_execute(rp, str, 2, a) == dnnl_success && dnnl_stream_wait(str) == dnnl_success;
	int rc = fd_dnnl_to_bf16(2, x, got, N);
	size_t diff = 0, diff_rne = 0, normal = 0, diff_trunc = 0;
	for (size_t i = 0; i < N; i++) {
		uint32_t u;
		memcpy(&u, &x[i], sizeof u);
		diff += got[i] != want[i];
		diff_trunc += got[i] != (uint16_t)(u >> 16);
		uint32_t ex = u >> 23 & 0xff;
		if (ex > 0 && ex < 0xfe) { /* normal, far from overflow */
			normal++;
			diff_rne += got[i] != (uint16_t)((u + 0x7fffu + (u >> 16 & 1)) >> 16);
		}
	}
	ok(made && rc == 0 && diff == 0, "fd_dnnl_to_bf16: %d values, %zu differ from oneDNN's reorder (specials included)",
	   N, diff);
	ok(rc == 0 && normal > N / 2 && diff_rne == 0, "fd_dnnl_to_bf16: %zu normal values, %zu differ from nearest even",
	   normal, diff_rne);
	ok(rc == 0 && diff_trunc > N / 4, "fd_dnnl_to_bf16 control: %zu of %d differ from truncation", diff_trunc, N);
	if (mf)
		dnnl_memory_destroy(mf);
	if (mt)
		dnnl_memory_destroy(mt);
	if (rp)
		dnnl_primitive_destroy(rp);
	if (pd)
		dnnl_primitive_desc_destroy(pd);
	if (str)
		dnnl_stream_destroy(str);
	if (eng)
		dnnl_engine_destroy(eng);
	fd_md_free(df);
	fd_md_free(dt);
}

/* Fused conv + BN (+ act) case i of nn_bf16/fused (see the file comment),
 * channels last as the models run it: one conv-BN unit in a hand-built
 * model. Returns 1 when checked. */
static int fused_case(struct fd_ctx *cb, const struct fd_st *st, int i)
{
	const int32_t *v = fix_i32(st, i, "shape", 11);
	int N = v[0], C = v[1], H = v[2], W = v[3], K = v[4], k = v[5], G = v[8], bias = v[9], act = v[10];
	struct fd_err e = {{0}};
	struct fd_model *m = calloc(1, sizeof *m);
	struct fd_mconv cv;
	struct fd_mbn bn;
	fd_params_init(&m->p);
	if (!ok(fd_mconv_add(m, &cv, "c", C, K, k, v[6], v[7], G, bias, FD_MI_ZEROS, &e) == 0 &&
		    fd_mbn_add(m, &bn, "bn", K, 1e-5, 0.1, &e) == 0 && fd_params_alloc(&m->p, &e) == 0,
		"fused case %d: conv-BN unit built %s", i, e.msg)) {
		fd_model_free(m);
		return 0;
	}
	struct fd_tensor *wt = fd_model_t(m, cv.w);
	memcpy(wt->data, fix_f32(st, i, "w", (size_t)wt->numel, 0), (size_t)wt->numel * sizeof(float));
	if (bias)
		memcpy(fd_model_t(m, cv.b)->data, fix_f32(st, i, "b", K, 0), (size_t)K * sizeof(float));
	const char *bnv[4] = {"gamma", "beta", "mean", "var"};
	int bni[4] = {bn.w, bn.b, bn.rm, bn.rv};
	for (int j = 0; j < 4; j++)
		memcpy(fd_model_t(m, bni[j])->data, fix_f32(st, i, bnv[j], K, 0), (size_t)K * sizeof(float));
	int Ho = (H + 2 * v[7] - k) / v[6] + 1, Wo = (W + 2 * v[7] - k) / v[6] + 1;
	size_t nx = (size_t)N * C * H * W, ny = (size_t)N * K * Ho * Wo;
	float *xl = nhwc(fix_f32(st, i, "x", nx, 0), N, C, H * W, 0), *yc[2] = {NULL, NULL};
	int64_t xs[4] = {N, C, H, W};
	int nf[2] = {-1, -1};
	cb->training = 0;
	cb->grad_enabled = 0;
	cb->channels_last = 1;
	for (int u = 0; u < 2; u++) { /* fused, then unfused (taped ops, no gradient) */
		m->unfused = u;
		m->nfused = 0;
		fd_ctx_step(cb);
		struct fd_tensor *x = fd_tensor_wrap(cb, FD_DEV_CPU, xl, 4, xs);
		if (x)
			x->layout = FD_NHWC;
		struct fd_tensor *y = fd_mconv_bn_fwd(m, cb, &cv, &bn, act, x);
		if (y && fd_is_nhwc(y) && y->numel == (int64_t)ny) {
			yc[u] = nhwc(y->data, N, K, Ho * Wo, 1);
			nf[u] = m->nfused;
		}
	}
	cb->channels_last = 0;
	cb->training = 1;
	cb->grad_enabled = 1;
	fd_ctx_step(cb);
	int okay = ok(yc[0] && yc[1] && nf[0] == 1 && nf[1] == 0,
		      "fused case %d (k=%d g=%d act %d): bf16 eval forward folded (%d), unfused (%d) %s", i, k, G,
		      act, nf[0], nf[1], cb->err.msg);
	if (okay) {
		/* depthwise: an fp32 plan in a bf16 context (fd_conv2d_bf16_in_fp32),
		 * both paths against torch in float64 on the float32 operands, and
		 * the control is torch on the bf16 ones; else the fused path against
		 * folded-then-bf16, the unfused against bf16-then-BN, and the
		 * control is the fused y against the unfused reference */
		int dwise = G > 1 && G == C;
		const float *ref = fix_f32(st, i, "y", ny, 0), *refu = fix_f32(st, i, "y_unfused", ny, 0);
		const float *r32 = dwise ? fix_f32(st, i, "y32", ny, 0) : NULL;
		const float *rf = dwise ? r32 : ref, *ru = dwise ? r32 : refu, *rc = dwise ? ref : refu;
		char nm[128];
		size_t differ;
		fp32_plan_cases += dwise;
		snprintf(nm, sizeof nm, "fused case %d: %s fused y vs torch (%s)", i, dwise ? "depthwise" : "bf16",
			 dwise ? "fp32 plan, float64" : "folded, then bf16");
		checked += tap_close_f32(nm, yc[0], rf, ny, 1e-4, 1e-4);
		snprintf(nm, sizeof nm, "fused case %d: %s unfused y vs torch (%s)", i, dwise ? "depthwise" : "bf16",
			 dwise ? "fp32 plan, float64" : "bf16, then BN");
		checked += tap_close_f32(nm, yc[1], ru, ny, 1e-4, 1e-4);
		double ws = worst_share(yc[0], rc, ny, 1e-4, 1e-4, &differ);
		ok(!(ws <= 1) && differ > 0, "fused case %d control: fused y vs %s fails (worst %.3g x tol, %zu of %zu)", i,
		   dwise ? "torch on the bf16 operands" : "the unfused reference", ws, differ, ny);
	}
	free(xl), free(yc[0]), free(yc[1]);
	fd_model_free(m);
	return okay;
}

int main(void)
{
	struct fd_ctx cb, c32;
	struct fd_err e = {{0}};
	struct fd_st st;
	ctx_open(&cb, 2, 1);
	ctx_open(&c32, 2, 1);
	int rc = fd_ctx_set_precision(&cb, FD_PREC_BF16, &e);
	if (!cpu_has("avx512_bf16")) {
		ok(rc < 0 && strstr(e.msg, "lacks AVX") && cb.precision == FD_PREC_FP32,
		   "no avx512_bf16 in /proc/cpuinfo: bf16 refused naming the feature: %s", e.msg);
		fd_ctx_free(&cb);
		fd_ctx_free(&c32);
		return tap_done();
	}
	if (!ok(rc == 0 && cb.precision == FD_PREC_BF16, "avx512_bf16 in /proc/cpuinfo: bf16 accepted %s", e.msg))
		return tap_done();

	to_bf16_case();
	fix_open(&st, "nn_bf16", "conv");
	int n = fix_cases(&st);
	ok(n >= 17, "fixture has %d conv cases", n);
	for (int i = 0; i < n; i++)
		conv_case(&cb, &c32, &st, i);
	int nn = 0;
	for (int i = 0; i < n; i++)
		nn += conv_case_nhwc(&cb, &st, i);
	ok(nn == n, "%d of %d conv cases also checked in channels last at bf16", nn, n);
	int ng = 0;
	for (int i = 0; i < n; i++)
		ng += gelu_case_nhwc(&cb, &st, i);
	ok(ng == n, "%d of %d conv cases checked with the GELU post-op at bf16", ng, n);
	ok(over_cases == n, "%d of %d NHWC cases overwrote a fresh dx", over_cases, n);
	ok(bf16_weights_cases >= 2, "%d cases ran backward-weights in bf16", bf16_weights_cases);
	if (!cpu_has("amx_bf16"))
		ok(mm_data_cases >= 2 && mm_weights_cases >= 7,
		   "no AMX: %d NHWC cases ran a 1x1's backward-data, %d backward-weights as matmuls", mm_data_cases,
		   mm_weights_cases);
	if (cpu_has("amx_bf16")) {
		ok(mm_data_cases >= 3 && mm_weights_cases >= 7 && flip_cases >= 2,
		   "AMX: %d NHWC cases ran backward-data, %d backward-weights as matmuls, %d backward-data as a forward",
		   mm_data_cases, mm_weights_cases, flip_cases);
		ok(col2im_cases >= 2, "AMX: %d NHWC cases ran a strided kxk backward-data as a matmul and col2im",
		   col2im_cases);
	}

	/* the taped path's plan cache keys on the precision: one op, fp32 then
	 * bf16 then fp32 again gives the fp32 result, the bf16 one, the fp32 one */
	{
		const int32_t *v = fix_i32(&st, 6, "shape", 15);
		struct fd_conv2d_shape s = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
					    v[8], v[9], v[10], v[11], v[12], v[13], v[14], FD_NCHW, FD_NCHW};
		int Ho, Wo;
		fd_conv2d_out_size(&s, &Ho, &Wo, &e);
		size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.K * Ho * Wo;
		size_t nw = (size_t)s.K * (s.C / s.groups) * s.kh * s.kw;
		const float *x = fix_f32(&st, 6, "x", nx, 0), *w = fix_f32(&st, 6, "w", nw, 0);
		float *y[3] = {filled(ny, 0), filled(ny, 0), filled(ny, 0)};
		struct fd_conv2d_op op;
		fd_conv2d_op_init(&op, s.sh, s.ph, s.dh, s.groups);
		enum fd_precision pr[3] = {FD_PREC_FP32, FD_PREC_BF16, FD_PREC_FP32};
		int run = 1;
		for (int k = 0; k < 3; k++)
			run &= fd_ctx_set_precision(&cb, pr[k], &e) == 0 &&
			       fd_conv2d_apply(&cb, &op, FD_DEV_CPU, &s, x, w, NULL, y[k]) == 0;
		size_t d01;
		worst_share(y[1], y[0], ny, 1e-4, 1e-4, &d01);
		ok(run && op.nplans == 2 && d01 > 0 && memcmp(y[2], y[0], ny * sizeof *y[0]) == 0,
		   "one conv op: fp32, bf16, fp32 again: %d plans, bf16 differs at %zu of %zu, fp32 repeats exactly",
		   op.nplans, d01, ny);
		fd_conv2d_op_free(&op);
		free(y[0]), free(y[1]), free(y[2]);
		fd_ctx_set_precision(&cb, FD_PREC_BF16, &e);
	}
	fd_st_close(&st);

	fix_open(&st, "nn_bf16", "fused");
	n = fix_cases(&st);
	int nfc = 0;
	for (int i = 0; i < n; i++)
		nfc += fused_case(&cb, &st, i);
	ok(n >= 5 && nfc == n, "%d of %d fused conv-BN cases checked at bf16", nfc, n);
	/* conv cases 3, 4 (NCHW, counted once) and fused case 1 are depthwise */
	ok(fp32_plan_cases >= 3, "%d depthwise cases ran an fp32 plan in the bf16 context", fp32_plan_cases);
	fd_st_close(&st);

	fix_open(&st, "nn_bf16", "linear");
	n = fix_cases(&st);
	ok(n >= 5, "fixture has %d linear cases", n);
	for (int i = 0; i < n; i++)
		linear_case(&cb, &st, i);
	fd_st_close(&st);
	ok(checked > 0, "%d comparisons with torch passed", checked);
	fd_ctx_free(&cb);
	fd_ctx_free(&c32);
	return tap_done();
}
