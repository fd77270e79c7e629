/* t_nn_dconv: fd's direct convolution forward (lib/nn/dconv.h) against
 * PyTorch fixtures (tests/ref/nn_dconv.py): y for 3x3, 5x5, 7x7 and
 * rectangular kernels, strides 1, 2 and 3 (and 2 by 1), padding 0-3,
 * partial blocks of 16 outputs, maps narrower than a block of 6 pixels,
 * several row groups, within a tolerance relative to the output's scale;
 * image layers (an NCHW image of 1-4 channels in, NHWC out: the models'
 * stems); the bias, ReLU, SiLU, hardswish and add (residual sum) modes; the
 * same bits on 1, 2 and 3 threads; the conv2d plan's hook for the shapes the
 * rule gives it; the rule itself; negative controls (a perturbed or NaN
 * result, transposed taps, fail). */
#include "nn/dconv.h"
#include "nn/layout.h"
#include "fixture.h"
#include "nn_ctx.h"

/* fp32 sums of C kh kw products by fused multiply-adds: the error relative
 * to the largest |y| of a case stays within a few float32 epsilons; a wrong
 * tap, channel or pixel moves it by O(1). */
#define TOL 2e-6

static int checked;

static int close_scaled(const char *what, int i, const float *got, const float *ref, size_t n)
{
	checked++;
	return scaled_close(what, i, got, ref, n, TOL);
}

struct dcase {
	struct fd_conv2d_shape s;
	int Ho, Wo;
	size_t nx, ny, nw;
	const float *x, *w, *b, *y, *ys, *yh;
};

static int load(const struct fd_st *st, int i, struct dcase *k)
{
	const int32_t *v = fix_i32(st, i, "shape", 13);
	struct fd_err e = {{0}};
	k->s = (struct fd_conv2d_shape){.N = v[0], .C = v[1], .H = v[2], .W = v[3], .K = v[4], .kh = v[5],
					.kw = v[6], .sh = v[7], .sw = v[8], .ph = v[9], .pw = v[10], .dh = 1, .dw = 1,
					.groups = 1, .bias = v[11], .xl = v[12] ? FD_NCHW : FD_NHWC, .yl = FD_NHWC};
	if (!ok(fd_conv2d_out_size(&k->s, &k->Ho, &k->Wo, &e) == 0, "case %d: shape valid %s", i, e.msg))
		return -1;
	const struct fd_conv2d_shape *s = &k->s;
	k->nx = (size_t)s->N * s->C * s->H * s->W, k->ny = (size_t)s->N * s->K * k->Ho * k->Wo;
	k->nw = (size_t)s->K * s->C * s->kh * s->kw;
	k->x = fix_f32(st, i, "x", k->nx, 0), k->w = fix_f32(st, i, "w", k->nw, 0);
	k->y = fix_f32(st, i, "y", k->ny, 0), k->b = fix_f32(st, i, "b", s->bias ? (size_t)s->K : 0, 1);
	k->ys = fix_f32(st, i, "ys", k->ny, 0), k->yh = fix_f32(st, i, "yh", k->ny, 0);
	diag("case %d: N=%d C=%d %dx%d K=%d k=%dx%d s=%d,%d p=%d,%d bias=%d%s -> %dx%d", i, s->N, s->C, s->H, s->W,
	     s->K, s->kh, s->kw, s->sh, s->sw, s->ph, s->pw, s->bias, s->xl == FD_NCHW ? " image (NCHW in)" : "",
	     k->Ho, k->Wo);
	return 0;
}

static void one_case(struct fd_ctx *cs[3], const struct fd_st *st, int i)
{
	struct dcase k;
	if (load(st, i, &k))
		return;
	const struct fd_conv2d_shape *s = &k.s;
	if (!ok(fd_dconv_serves(s), "case %d: the rule takes the shape", i))
		return;
	float *y = filled(k.ny, NAN), *yr = filled(k.ny, NAN), *ya = filled(k.ny, 1.0f);
	ok(fd_dconv_fwd_cpu(cs[1], s, k.x, k.w, k.b, 0, 0, NULL, y) == 0, "case %d: forward runs %s", i, cs[1]->err.msg);
	close_scaled("y", i, y, k.y, k.ny);

	/* ReLU: the reference's negatives are zeros */
	float *ref = malloc(k.ny * sizeof *ref);
	for (size_t j = 0; j < k.ny; j++)
		ref[j] = k.y[j] > 0 ? k.y[j] : 0.0f;
	ok(fd_dconv_fwd_cpu(cs[1], s, k.x, k.w, k.b, 1, 0, NULL, yr) == 0, "case %d: forward + ReLU runs", i);
	close_scaled("relu(y)", i, yr, ref, k.ny);
	size_t zeros = 0;
	for (size_t j = 0; j < k.ny; j++)
		zeros += yr[j] == 0.0f;
	ok(zeros > k.ny / 4 && zeros < 3 * k.ny / 4, "case %d: ReLU zeroed %zu of %zu", i, zeros, k.ny);

	/* SiLU and hardswish: against torch's of its float64 y */
	float *ya2 = filled(k.ny, NAN);
	ok(fd_dconv_fwd_cpu(cs[1], s, k.x, k.w, k.b, FD_CONV_POST_SILU, 0, NULL, ya2) == 0, "case %d: + SiLU runs", i);
	close_scaled("silu(y)", i, ya2, k.ys, k.ny);
	ok(fd_dconv_fwd_cpu(cs[1], s, k.x, k.w, k.b, FD_CONV_POST_HARDSWISH, 0, NULL, ya2) == 0,
	   "case %d: + hardswish runs", i);
	close_scaled("hardswish(y)", i, ya2, k.yh, k.ny);
	free(ya2);

	/* add: into ones */
	ok(fd_dconv_fwd_cpu(cs[1], s, k.x, k.w, k.b, 0, 1, NULL, ya) == 0, "case %d: forward adding into y runs", i);
	float *g = less_ones(ya, k.ny);
	close_scaled("y (adds)", i, g, k.y, k.ny);

	/* the same bits on 1 and 3 threads */
	for (int t = 0; t < 3; t += 2) {
		float *yt = filled(k.ny, NAN);
		ok(fd_dconv_fwd_cpu(cs[t], s, k.x, k.w, k.b, 0, 0, NULL, yt) == 0 && memcmp(yt, y, k.ny * sizeof *yt) == 0,
		   "case %d: %d threads give the bits of 2", i, cs[t]->threads);
		free(yt);
	}

	/* through the conv2d plan: fd's kernel on CPUs without AVX-512 */
	void *p = NULL;
	int own = !__builtin_cpu_supports("avx512f");
	if (ok(fd_conv2d_plan_cpu(cs[1], s, &p) == 0, "case %d: plan made %s", i, cs[1]->err.msg)) {
		float *yp = filled(k.ny, NAN);
		ok(fd_conv2d_fwd_cpu(cs[1], p, k.x, k.w, k.b, yp) == 0, "case %d: plan forward runs %s", i,
		   cs[1]->err.msg);
		if (own)
			ok(memcmp(yp, y, k.ny * sizeof *yp) == 0, "case %d: the plan runs fd's kernel (same bits)", i);
		else
			close_scaled("plan (oneDNN) y", i, yp, k.y, k.ny);
		free(yp);
		fd_conv2d_plan_free_cpu(p);
	}

	if (i == 2 || i == 15) { /* negative controls (a channels-last case, an image layer) */
		float *bad = malloc(k.ny * sizeof *bad);
		memcpy(bad, y, k.ny * sizeof *bad);
		double mx = 0;
		for (size_t j = 0; j < k.ny; j++)
			mx = fabs(k.y[j]) > mx ? fabs(k.y[j]) : mx;
		bad[k.ny / 2] += (float)(3 * TOL * mx); /* three tolerances off */
		double w1 = scaled_worst(bad, k.y, k.ny, TOL);
		memcpy(bad, y, k.ny * sizeof *bad);
		bad[k.ny - 1] = NAN;
		double w2 = scaled_worst(bad, k.y, k.ny, TOL);
		/* the kernel's taps transposed (w[k][c][q][r]) */
		float *wt = malloc(k.nw * sizeof *wt);
		int kh = s->kh, kw = s->kw;
		for (size_t o = 0; o < (size_t)s->K * s->C; o++)
			for (int r = 0; r < kh; r++)
				for (int q = 0; q < kw; q++)
					wt[o * kh * kw + r * kw + q] = k.w[o * kh * kw + q * kw + r];
		fd_dconv_fwd_cpu(cs[1], s, k.x, wt, k.b, 0, 0, NULL, bad);
		double w3 = scaled_worst(bad, k.y, k.ny, TOL);
		ok(!(w1 <= 1) && !(w2 <= 1) && !(w3 <= 1),
		   "case %d: negative controls fail: one value off (%.2f), a NaN (%g), transposed taps (%.3g)", i, w1,
		   w2, w3);
		free(bad), free(wt);
	}
	free(y), free(yr), free(ya), free(ref), free(g);
}

int main(void)
{
	struct fd_ctx c1, c2, c3;
	struct fd_ctx *cs[3] = {&c1, &c2, &c3};
	struct fd_st st;
	ctx_open(&c1, 1, 1), ctx_open(&c2, 2, 1), ctx_open(&c3, 3, 1);
	struct fd_conv2d_shape r = {2, 16, 9, 9, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0, FD_NHWC, FD_NHWC};
	if (!fd_dconv_serves(&r)) {
		diag("no AVX2 + FMA on this CPU: the direct kernel does not run here");
		ok(!fd_dconv_serves(&r), "the rule takes nothing without AVX2 + FMA");
		return tap_done();
	}
	fix_open(&st, "nn_dconv", "dconv");
	int n = fix_cases(&st);
	ok(n >= 19, "fixture has %d cases", n);
	for (int i = 0; i < n; i++) {
		one_case(cs, &st, i);
		for (int t = 0; t < 3; t++)
			fd_ctx_step(cs[t]);
	}
	ok(checked >= 5 * n, "%d comparisons with torch checked", checked);

	/* the rule: ungrouped, undilated, channels last, 2-49 taps, C >= 16 */
	ok(fd_dconv_serves(&r), "3x3 stride 2 NHWC served");
	r.sh = r.sw = 1;
	ok(fd_dconv_serves(&r), "3x3 stride 1 NHWC served");
	r.sh = 2, r.groups = 2;
	ok(!fd_dconv_serves(&r), "grouped not served");
	r.groups = 1, r.xl = FD_NCHW;
	ok(!fd_dconv_serves(&r), "NCHW input of 16 channels not served");
	r.C = 3;
	ok(fd_dconv_serves(&r), "an NCHW image of 3 channels, NHWC out, served");
	r.C = FD_DCONV_IMG_MAX_C + 1;
	ok(!fd_dconv_serves(&r), "an NCHW image of %d channels not served", r.C);
	r.C = 3, r.yl = FD_NCHW;
	ok(!fd_dconv_serves(&r), "an NCHW image with NCHW output not served");
	r.C = 16, r.yl = FD_NHWC;
	r.xl = FD_NHWC, r.yl = FD_NCHW;
	ok(!fd_dconv_serves(&r), "NCHW output not served");
	r.yl = FD_NHWC, r.dh = 2;
	ok(!fd_dconv_serves(&r), "dilation not served");
	r.dh = 1, r.kh = r.kw = 1, r.ph = r.pw = 0;
	ok(!fd_dconv_serves(&r), "1x1 not served");
	r.kh = r.kw = 3, r.ph = r.pw = 1, r.C = 8;
	ok(!fd_dconv_serves(&r), "8 input channels not served");
	r.C = 16, r.kh = r.kw = 9, r.ph = r.pw = 4;
	ok(!fd_dconv_serves(&r), "9x9 (81 taps) not served");
	/* the kernel refuses what it cannot compute, with a message */
	r.kh = r.kw = 3, r.ph = r.pw = 1, r.groups = 2;
	float buf[2 * 16 * 9 * 9] = {0};
	ok(fd_dconv_fwd_cpu(&c2, &r, buf, buf, NULL, 0, 0, NULL, buf) < 0 && strstr(c2.err.msg, "direct convolution"),
	   "a grouped shape refused: %s", c2.err.msg);
	r.groups = 1, c2.err.msg[0] = 0, c2.failed = 0; /* the first message stays until cleared */
	ok(fd_dconv_fwd_cpu(&c2, &r, buf, buf, NULL, FD_CONV_POST_GELU, 0, NULL, buf) < 0 &&
		   strstr(c2.err.msg, "activation"),
	   "an activation it lacks (GELU) refused: %s", c2.err.msg);
	fd_st_close(&st);
	fd_ctx_free(&c1), fd_ctx_free(&c2), fd_ctx_free(&c3);
	return tap_done();
}
