/* t_nn_mbback: the fused squeeze-excitation + projection + residual add of
 * an inverted residual block at inference (fd_mbback_infer,
 * lib/nn/mbback.h) against torchvision's SqueezeExcitation and a 1x1
 * convolution in float64 (tests/ref/nn_mbback.py): every case on 1 and 2
 * threads (the same bits), in place into the residual where the case has
 * one, the multiply-adds counted; negative controls: a reference off by 10
 * tolerances in one value and the other gate fail; refusals: an input that
 * needs a gradient, NCHW, GELU, misfit weights, a residual of the wrong
 * shape. On a CPU without AVX-512F only the refusal is checked (the models
 * then keep fd_se_infer and oneDNN's projection). */
#include "nn/act.h"
#include "nn/layout.h"
#include "nn/mbback.h"
#include "fixture.h"
#include "nn_ctx.h"

/* |y - r| <= TOL mag: fp32 products summed over C against float64, the
 * gate from a double SE rounded to float */
#define TOL 5e-7

struct bcase {
	int N, C, H, W, Q, K, res, act, gate;
	const float *x, *w1, *b1, *w2, *b2, *wp, *bp, *r;
};

/* values failing |a - r| <= TOL mag (fix_nbad_mag) */
static size_t nbad(const float *a, const float *r, const float *mag, size_t n, double *worst)
{
	return fix_nbad_mag(a, r, mag, n, TOL, worst);
}

static struct fd_tensor *mk(struct fd_ctx *c, int ndim, int64_t a, int64_t b, int64_t h, int64_t w, const float *v)
{
	int64_t s[4] = {a, b, h, w};
	struct fd_tensor *t = fd_tensor_new(c, FD_DEV_CPU, ndim, s);
	if (t && v)
		memcpy(t->data, v, (size_t)t->numel * 4);
	return t;
}

/* fd_mbback_infer on case k with gate `gate`; y in NCHW order. 0, or -1
 * with c->err. */
static int run(struct fd_ctx *c, const struct bcase *k, int gate, float *y, uint64_t *macs)
{
	int HW = k->H * k->W;
	struct fd_tensor *x = mk(c, 4, k->N, k->C, k->H, k->W, NULL), *w1 = mk(c, 4, k->Q, k->C, 1, 1, k->w1);
	struct fd_tensor *b1 = mk(c, 1, k->Q, 0, 0, 0, k->b1), *w2 = mk(c, 4, k->C, k->Q, 1, 1, k->w2);
	struct fd_tensor *b2 = mk(c, 1, k->C, 0, 0, 0, k->b2), *wp = mk(c, 4, k->K, k->C, 1, 1, k->wp);
	struct fd_tensor *bp = mk(c, 1, k->K, 0, 0, 0, k->bp), *r = mk(c, 4, k->N, k->K, k->H, k->W, NULL);
	double *sums = (double *)fd_ctx_alloc(c, FD_DEV_CPU, 2 * (int64_t)k->N * k->C);
	if (!x || !w1 || !b1 || !w2 || !b2 || !wp || !bp || !r || !sums)
		return -1;
	x->layout = r->layout = FD_NHWC;
	fd_transpose_cpu(1, k->N, k->C, HW, k->x, x->data, 0);
	fd_transpose_cpu(1, k->N, k->K, HW, k->r, r->data, 0);
	/* the channel sums the front kernel would hand over, in double */
	for (int n = 0; n < k->N; n++)
		for (int ch = 0; ch < k->C; ch++) {
			double s = 0;
			for (int q = 0; q < HW; q++)
				s += k->x[((size_t)n * k->C + ch) * HW + q];
			sums[(size_t)n * k->C + ch] = s;
		}
	c->macs = 0;
	struct fd_tensor *o = fd_mbback_infer(c, x, sums, w1, b1, w2, b2, k->act, gate, wp, bp, k->res ? r : NULL,
					      k->res);
	*macs = c->macs;
	if (!o)
		return -1;
	if ((k->res && o != r) || o->shape[1] != k->K || o->layout != FD_NHWC)
		return fd_fail(c, "output: not the residual, or its shape or layout"), -1;
	fd_transpose_cpu(1, k->N, HW, k->K, o->data, y, 0);
	fd_ctx_step(c);
	return 0;
}

int main(void)
{
	struct fd_st st;
	struct fd_ctx c1, c2;
	ctx_open(&c1, 1, 1);
	ctx_open(&c2, 2, 1);
	if (!cpu_has("avx512f")) {
		struct fd_tensor *x = mk(&c2, 4, 2, 8, 3, 3, NULL);
		x->layout = FD_NHWC;
		ok(x && !fd_mbback_serves(&c2, x, FD_ACT_SILU, FD_ACT_SIGMOID), "no AVX-512F: not served");
		fd_ctx_free(&c1);
		fd_ctx_free(&c2);
		return tap_done();
	}
	fix_open(&st, "nn_mbback", "mbback");
	int cases = fix_cases(&st), checked = 0, res = 0, tails = 0, gx = 0, gw = 0, pairs[5] = {0};
	ok(cases >= 10, "fixture has %d cases", cases);
	for (int i = 0; i < cases; i++) {
		const int32_t *v = fix_i32(&st, i, "shape", 9);
		struct bcase k = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
		size_t HW = (size_t)k.H * k.W, nx = (size_t)k.N * k.C * HW, n = (size_t)k.N * k.K * HW;
		size_t C = (size_t)k.C, Q = (size_t)k.Q, K = (size_t)k.K;
		diag("case %d: N=%d C=%d %dx%d Csq=%d Cout=%d%s %s, %s", i, k.N, k.C, k.H, k.W, k.Q, k.K,
		     k.res ? " +residual" : "", fd_act_name((enum fd_act)k.act), fd_act_name((enum fd_act)k.gate));
		k.x = fix_f32(&st, i, "x", (long)nx, 0), k.w1 = fix_f32(&st, i, "w1", (long)(Q * C), 0);
		k.b1 = fix_f32(&st, i, "b1", (long)Q, 0), k.w2 = fix_f32(&st, i, "w2", (long)(Q * C), 0);
		k.b2 = fix_f32(&st, i, "b2", (long)C, 0), k.wp = fix_f32(&st, i, "wp", (long)(K * C), 0);
		k.bp = fix_f32(&st, i, "bp", (long)K, 0), k.r = fix_f32(&st, i, "r", (long)n, 0);
		const float *ref = fix_f32(&st, i, "y", (long)n, 0), *mag = fix_f32(&st, i, "mag", (long)n, 0);
		float *y1 = malloc(n * 4), *y2 = malloc(n * 4), *yo = malloc(n * 4);
		uint64_t m1 = 0, m2 = 0, mo = 0;
		int other = k.gate == FD_ACT_SIGMOID ? FD_ACT_HARDSIGMOID : FD_ACT_SIGMOID;
		if (run(&c1, &k, k.gate, y1, &m1) < 0 || run(&c2, &k, k.gate, y2, &m2) < 0 ||
		    run(&c2, &k, other, yo, &mo) < 0) {
			ok(0, "case %d: runs: %s %s", i, c1.err.msg, c2.err.msg);
			fd_ctx_step(&c1), fd_ctx_step(&c2);
			free(y1), free(y2), free(yo);
			continue;
		}
		double worst = 0;
		size_t b2 = nbad(y2, ref, mag, n, &worst);
		ok(b2 == 0, "case %d: y vs torch float64 within %g x mag: %zu of %zu values off, worst %.3f of tol", i,
		   TOL, b2, n, worst);
		ok(!memcmp(y1, y2, n * 4), "case %d: 1 and 2 threads give the same bits", i);
		uint64_t want = (uint64_t)(2 * k.N * C * Q) + (uint64_t)(k.N * HW) * (uint64_t)(K * C);
		ok(m2 == want, "case %d: %llu multiply-adds counted (want %llu)", i, (unsigned long long)m2,
		   (unsigned long long)want);
		fix_mag_controls(i, y2, ref, mag, n, TOL, yo, "gate", fd_act_name((enum fd_act)other));
		checked++;
		res += k.res, tails += k.K % 16 != 0, pairs[k.act]++;
		/* which operand the gates scale (mbback.c: the smaller per band) */
		if ((int)HW < (k.K + 15) / 16 * 16)
			gx++;
		else
			gw++;
		free(y1), free(y2), free(yo);
	}
	ok(checked == cases && res >= 2 && tails >= 2 && gx >= 2 && gw >= 2 && pairs[FD_ACT_SILU] && pairs[FD_ACT_RELU],
	   "%d cases checked: %d with the residual, %d with a masked last block, %d gating pixels, %d gating weights",
	   checked, res, tails, gx, gw);
	fd_st_close(&st);

	/* refusals */
	struct fd_tensor *x = mk(&c2, 4, 2, 8, 3, 3, NULL), *w1 = mk(&c2, 4, 2, 8, 1, 1, NULL);
	struct fd_tensor *b1 = mk(&c2, 1, 2, 0, 0, 0, NULL), *w2 = mk(&c2, 4, 8, 2, 1, 1, NULL);
	struct fd_tensor *b2 = mk(&c2, 1, 8, 0, 0, 0, NULL), *wp = mk(&c2, 4, 4, 8, 1, 1, NULL);
	struct fd_tensor *bp = mk(&c2, 1, 4, 0, 0, 0, NULL), *bad = mk(&c2, 4, 4, 6, 1, 1, NULL);
	struct fd_tensor *r = mk(&c2, 4, 2, 4, 3, 3, NULL), *r2 = mk(&c2, 4, 2, 5, 3, 3, NULL);
	double sums[16] = {0};
	if (!x || !w1 || !b1 || !w2 || !b2 || !wp || !bp || !bad || !r || !r2) {
		printf("Bail out! tensors\n");
		return 1;
	}
	struct fd_tensor *all[10] = {x, w1, b1, w2, b2, wp, bp, bad, r, r2};
	for (int j = 0; j < 10; j++)
		memset(all[j]->data, 0, (size_t)all[j]->numel * 4);
	x->layout = r->layout = r2->layout = FD_NHWC;
	struct fd_tensor *y = fd_mbback_infer(&c2, x, sums, w1, b1, w2, b2, FD_ACT_SILU, FD_ACT_SIGMOID, wp, bp, r, 1);
	ok(y == r, "a plain call runs, into the residual %s", c2.err.msg);
	/* an output given (add 0): written over, the same values as a new one */
	for (int64_t j = 0; j < r->numel; j++)
		r->data[j] = 7, bp->data[j % 4] = 0.5f;
	for (int64_t j = 0; j < x->numel; j++)
		x->data[j] = 0.25f * (float)(j % 5);
	for (int j = 0; j < 16; j++)
		sums[j] = 0.1 * j;
	struct fd_tensor *yn = fd_mbback_infer(&c2, x, sums, w1, b1, w2, b2, FD_ACT_SILU, FD_ACT_SIGMOID, wp, bp, NULL, 0);
	y = fd_mbback_infer(&c2, x, sums, w1, b1, w2, b2, FD_ACT_SILU, FD_ACT_SIGMOID, wp, bp, r, 0);
	ok(y == r && yn && !memcmp(yn->data, r->data, (size_t)r->numel * 4) && r->data[0] == 0.5f,
	   "an output given without the add: written over (%g), the bits of a new one %s", y ? r->data[0] : -1.0,
	   c2.err.msg);
	c2.failed = 0;
	ok(!fd_mbback_infer(&c2, x, sums, w1, b1, w2, b2, FD_ACT_GELU, FD_ACT_SIGMOID, wp, bp, NULL, 0) &&
		   strstr(c2.err.msg, "not for this"),
	   "gelu refused: %s", c2.err.msg);
	c2.failed = 0;
	ok(!fd_mbback_infer(&c2, x, sums, w1, b1, w2, b2, FD_ACT_SILU, FD_ACT_SIGMOID, bad, bp, NULL, 0) &&
		   strstr(c2.err.msg, "do not fit"),
	   "a projection [4, 6] for 8 channels refused: %s", c2.err.msg);
	c2.failed = 0;
	ok(!fd_mbback_infer(&c2, x, sums, w1, b1, w2, b2, FD_ACT_SILU, FD_ACT_SIGMOID, wp, bp, r2, 1) &&
		   strstr(c2.err.msg, "output"),
	   "a residual with 5 channels for 4 refused: %s", c2.err.msg);
	c2.failed = 0;
	x->layout = FD_NCHW;
	ok(!fd_mbback_infer(&c2, x, sums, w1, b1, w2, b2, FD_ACT_SILU, FD_ACT_SIGMOID, wp, bp, NULL, 0) &&
		   strstr(c2.err.msg, "not for this"),
	   "NCHW input refused: %s", c2.err.msg);
	x->layout = FD_NHWC;
	c2.failed = 0;
	fd_requires_grad(wp);
	ok(!fd_mbback_infer(&c2, x, sums, w1, b1, w2, b2, FD_ACT_SILU, FD_ACT_SIGMOID, wp, bp, NULL, 0) &&
		   strstr(c2.err.msg, "records no gradient"),
	   "an input that needs a gradient refused: %s", c2.err.msg);
	fd_ctx_free(&c1);
	fd_ctx_free(&c2);
	return tap_done();
}
