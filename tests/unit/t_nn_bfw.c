/* t_nn_bfw: fd's bf16 convolution backward-weights (lib/nn/bfw.h)
 * against PyTorch fixtures (tests/ref/nn_bfw.py: dw of bf16-rounded x and
 * dy in float64, and the sum of |products| of each weight): the models'
 * stems and shapes covering every register tile (16-channel blocks 1 to
 * 8, and 4 at a time past 8), odd output widths, padding beyond the
 * kernel, rectangular kernels, strides 1-4, 1 to 40 channels, 1x1, more
 * rows than chunks; within a tolerance relative to each weight's sum of
 * |products|. fp32 and bf16 x and dy in
 * every mix give the same bits (the kernel rounds as fd_dnnl_to_bf16); the
 * same bits on 1, 2 and 3 threads; ADD semantics (a seeded dw ends as seed
 * + the fresh dw, bit for bit); the conv2d plan of a bf16 context runs it
 * (fd_conv2d_bfw_cpu) with the same bits where the rule serves the shape
 * (image layers), else oneDNN's (other bits), an fp32 context's never; the
 * rule and the refusals; negative controls (one value off, a NaN, taps
 * in torch's order read as the kernel's). On a CPU without AVX512-BF16 (or
 * with AMX) only the rule's and the refusals' checks run. */
#include "nn/bfw.h"
#include "nn/fd_dnnl.h"
#include "fixture.h"
#include "nn_ctx.h"

/* bf16 products are exact in fp32; sums by pairs in fp32 over groups of
 * rows (a few hundred products here), groups in double: the error of a
 * weight stays within a few float32 epsilons of its sum of |products|. A
 * wrong tap or a lost row moves it by about |dw| (here 2-30% of that sum). */
#define TOL 1e-6

static int checked;

/* max over i of |got - ref| / (TOL * abs[i]) (NaN counts as the worst) */
static double worst(const float *got, const float *ref, const float *abs, size_t n)
{
	double w = 0;
	for (size_t i = 0; i < n; i++)
		w = tap_worse(w, fabs((double)got[i] - (double)ref[i]) / (TOL * ((double)abs[i] + 1e-30)));
	return w;
}

struct iwcase {
	struct fd_conv2d_shape s;
	int Ho, Wo;
	size_t nx, ny, nw;
	const float *x, *dy, *dw, *dwabs;
	uint16_t *xb, *dyb;
};

static int load(const struct fd_st *st, int i, struct iwcase *k)
{
	const int32_t *v = fix_i32(st, i, "shape", 11);
	struct fd_err e = {{0}};
	k->s = (struct fd_conv2d_shape){.N = v[0], .C = v[1], .H = v[2], .W = v[3], .K = v[4], .kh = v[5],
					.kw = v[6], .sh = v[7], .sw = v[8], .ph = v[9], .pw = v[10], .dh = 1,
					.dw = 1, .groups = 1, .bias = 0, .xl = FD_NHWC, .yl = FD_NHWC};
	if (!ok(fd_conv2d_out_size(&k->s, &k->Ho, &k->Wo, &e) == 0, "case %d: shape valid %s", i, e.msg))
		return -1;
	const struct fd_conv2d_shape *s = &k->s;
	k->nx = (size_t)s->N * s->C * s->H * s->W, k->ny = (size_t)s->N * s->K * k->Ho * k->Wo;
	k->nw = (size_t)s->K * s->C * s->kh * s->kw;
	k->x = fix_f32(st, i, "x", k->nx, 0), k->dy = fix_f32(st, i, "dy", k->ny, 0);
	k->dw = fix_f32(st, i, "dw", k->nw, 0), k->dwabs = fix_f32(st, i, "dwabs", k->nw, 0);
	k->xb = malloc(k->nx * sizeof *k->xb), k->dyb = malloc(k->ny * sizeof *k->dyb);
	diag("case %d: N=%d C=%d %dx%d K=%d k=%dx%d s=%d,%d p=%d,%d -> %dx%d", i, s->N, s->C, s->H, s->W, s->K,
	     s->kh, s->kw, s->sh, s->sw, s->ph, s->pw, k->Ho, k->Wo);
	return 0;
}

/* the kernel on c into a dw of zeros (x or xb, dy or dyb); NULL if it failed */
static float *run(struct fd_ctx *c, const struct iwcase *k, int xbf, int dybf)
{
	float *dw = filled(k->nw, 0.0f);
	if (fd_bfw_bwd_weights_cpu(c, &k->s, xbf ? NULL : k->x, xbf ? k->xb : NULL, dybf ? NULL : k->dy,
				    dybf ? k->dyb : NULL, dw) < 0) {
		diag("kernel failed: %s", c->err.msg);
		free(dw);
		return NULL;
	}
	return dw;
}

static int same(const float *a, const float *b, size_t n)
{
	return a && b && memcmp(a, b, n * sizeof *a) == 0;
}

static void one_case(struct fd_ctx *cs[3], struct fd_ctx *cb, const struct fd_st *st, int i)
{
	struct iwcase k;
	if (load(st, i, &k))
		return;
	const struct fd_conv2d_shape *s = &k.s;
	const int serves = s->C <= FD_BFW_IMG_C;
	ok(fd_bfw_computes(s) && fd_bfw_serves(s) == serves, "case %d: computed; served: %s", i,
	   serves ? "yes (an image layer)" : "no");
	if (!ok(fd_dnnl_to_bf16(1, k.x, k.xb, k.nx) == 0 && fd_dnnl_to_bf16(1, k.dy, k.dyb, k.ny) == 0,
		"case %d: x and dy rounded to bf16", i))
		goto out;

	/* 2 threads, fp32 x and dy, against torch */
	float *dw2 = run(cs[1], &k, 0, 0);
	if (!ok(dw2 != NULL, "case %d: kernel runs", i))
		goto out;
	double w = worst(dw2, k.dw, k.dwabs, k.nw);
	checked++;
	ok(k.nw > 0 && w <= 1, "case %d dw: %zu values, worst %.3f of tol (%g x sum |products|)", i, k.nw, w, TOL);

	/* bf16 inputs in every mix: the same bits */
	for (int m = 1; m < 4; m++) {
		float *d = run(cs[1], &k, m & 1, m >> 1 & 1);
		ok(same(d, dw2, k.nw), "case %d: x %s, dy %s: the same bits", i, m & 1 ? "bf16" : "fp32",
		   m & 2 ? "bf16" : "fp32");
		free(d);
	}
	/* the same bits on 1 and 3 threads */
	for (int t = 0; t < 3; t += 2) {
		float *d = run(cs[t], &k, 0, 1);
		ok(same(d, dw2, k.nw), "case %d: %d threads give the bits of 2", i, cs[t]->threads);
		free(d);
	}
	/* ADD: a seeded dw ends as seed + the fresh one */
	float *seed = malloc(k.nw * sizeof *seed), *want = malloc(k.nw * sizeof *want);
	for (size_t j = 0; j < k.nw; j++)
		seed[j] = (float)((int)(j % 7) - 3) * 0.375f, want[j] = seed[j] + dw2[j];
	ok(fd_bfw_bwd_weights_cpu(cs[1], s, k.x, NULL, NULL, k.dyb, seed) == 0 && same(seed, want, k.nw),
	   "case %d: adds into a seeded dw (seed + fresh, bit for bit)", i);
	free(seed), free(want);

	/* through the conv2d plans: a bf16 context's runs the kernel where the
	 * rule serves the shape, an fp32 one's never (oneDNN's: within the bf16
	 * rounding of its inputs, 2 x 2^-9 of the sum of |products|, 3900 tol,
	 * in case a plan multiplies fp32) */
	void *p = NULL;
	if (cb && ok(fd_conv2d_plan_cpu(cb, s, &p) == 0, "case %d: bf16 plan made %s", i, cb->err.msg)) {
		float *dw = filled(k.nw, 0.0f);
		int rc = fd_conv2d_bwd_cpu(cb, p, k.x, NULL, k.dy, NULL, dw, NULL);
		double wd = worst(dw, k.dw, k.dwabs, k.nw);
		if (serves)
			ok(rc == 0 && fd_conv2d_bfw_cpu(p) == 1 && fd_conv2d_bf16_weights_cpu(p) == 1 &&
				   same(dw, dw2, k.nw),
			   "case %d: the bf16 plan runs the kernel (same bits) %s", i, cb->err.msg);
		else
			ok(rc == 0 && fd_conv2d_bfw_cpu(p) == 0 && !same(dw, dw2, k.nw) && wd <= 4e3,
			   "case %d: the bf16 plan runs oneDNN's (other bits; %.3g of tol) %s", i, wd, cb->err.msg);
		free(dw);
		fd_conv2d_plan_free_cpu(p);
	}
	if (ok(fd_conv2d_plan_cpu(cs[1], s, &p) == 0, "case %d: fp32 plan made %s", i, cs[1]->err.msg)) {
		float *dw = filled(k.nw, 0.0f);
		ok(fd_conv2d_bwd_cpu(cs[1], p, k.x, NULL, k.dy, NULL, dw, NULL) == 0 && fd_conv2d_bfw_cpu(p) == 0,
		   "case %d: the fp32 plan does not run it %s", i, cs[1]->err.msg);
		free(dw);
		fd_conv2d_plan_free_cpu(p);
	}

	if (i == 1) { /* negative controls: a perturbed or NaN result fails the check */
		float *bad = malloc(k.nw * sizeof *bad);
		memcpy(bad, dw2, k.nw * sizeof *bad);
		bad[k.nw / 2] += (float)(3 * TOL * k.dwabs[k.nw / 2]);
		double w1 = worst(bad, k.dw, k.dwabs, k.nw);
		memcpy(bad, dw2, k.nw * sizeof *bad);
		bad[k.nw - 1] = NAN;
		double w2 = worst(bad, k.dw, k.dwabs, k.nw);
		/* [K][(r, q, c)] (the kernel's tap order) read as torch's [K][C][kh][kw] */
		const int C = s->C, kk = s->kh * s->kw;
		for (int kc = 0; kc < s->K; kc++)
			for (int c = 0; c < C; c++)
				for (int t = 0; t < kk; t++)
					bad[((size_t)kc * kk + t) * C + c] = dw2[((size_t)kc * C + c) * kk + t];
		double w3 = worst(bad, k.dw, k.dwabs, k.nw);
		ok(!(w1 <= 1) && !(w2 <= 1) && !(w3 <= 1),
		   "case 1: negative controls fail: one value off by 3x tol (%.2f), a NaN (%g), taps in the kernel's "
		   "order (%.3g)", w1, w2, w3);
		free(bad);
	}
	free(dw2);
out:
	free(k.xb), free(k.dyb);
}

/* the rule's and the kernel's refusals of shape r */
static void refuse(struct fd_ctx *c, struct fd_conv2d_shape r, const char *what)
{
	static float buf[2 * 600 * 16 * 16], dw[576 * 600 * 9];
	fd_ctx_step(c); /* a fresh message */
	ok(!fd_bfw_serves(&r) && !fd_bfw_computes(&r) && fd_bfw_bwd_weights_cpu(c, &r, buf, NULL, buf, NULL, dw) < 0 &&
		   strstr(c->err.msg, "fd's bf16 backward-weights"),
	   "%s: not served, refused: %s", what, c->err.msg);
}

int main(void)
{
	struct fd_ctx c1, c2, c3, cbf;
	struct fd_ctx *cs[3] = {&c1, &c2, &c3}, *cb = &cbf;
	struct fd_err e = {{0}};
	struct fd_st st;
	ctx_open(&c1, 1, 1), ctx_open(&c2, 2, 1), ctx_open(&c3, 3, 1), ctx_open(&cbf, 2, 1);
	if (fd_ctx_set_precision(&cbf, FD_PREC_BF16, &e) < 0) {
		diag("no bf16 context on this CPU (%s): plan checks skipped", e.msg);
		cb = NULL;
	}
	struct fd_conv2d_shape r = {2, 3, 16, 16, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, FD_NHWC, FD_NHWC};
	int cpu = fd_bfw_serves(&r);
	fix_open(&st, "nn_bfw", "bfw");
	int n = fix_cases(&st);
	ok(n >= 17, "fixture has %d cases", n);
	if (cpu) {
		for (int i = 0; i < n; i++) {
			one_case(cs, cb, &st, i);
			for (int t = 0; t < 3; t++)
				fd_ctx_step(cs[t]);
			if (cb)
				fd_ctx_step(cb);
		}
		ok(checked == n, "%d comparisons with torch checked", checked);
	} else {
		diag("this CPU has no AVX512-BF16 or has AMX: the kernel is not used; only the refusals run");
	}

	/* the rule, and the kernel's refusals with a message */
	struct fd_conv2d_shape q = r;
	q.bias = 1, refuse(&c2, q, "with bias");
	q = r, q.C = 6, q.groups = 2, refuse(&c2, q, "grouped");
	q = r, q.C = 600, refuse(&c2, q, "600 channels (over FD_BFW_MAX_C)");
	q = r, q.K = 24, refuse(&c2, q, "K not a multiple of 16");
	q = r, q.K = 144, refuse(&c2, q, "K over 128 and not a multiple of 64");
	q = r, q.K = 576, refuse(&c2, q, "K over FD_BFW_MAX_K");
	q = r, q.dh = q.dw = 2, refuse(&c2, q, "dilated");
	q = r, q.xl = FD_NCHW, refuse(&c2, q, "NCHW x");
	q = r, q.yl = FD_NCHW, refuse(&c2, q, "NCHW y");
	q = r, q.C = 5;
	ok(!cpu || (fd_bfw_computes(&q) && !fd_bfw_serves(&q)), "5 channels: computed, not served");
	if (!cpu)
		refuse(&c2, r, "this CPU");
	fd_st_close(&st);
	fd_ctx_free(&c1), fd_ctx_free(&c2), fd_ctx_free(&c3), fd_ctx_free(&cbf);
	return tap_done();
}
