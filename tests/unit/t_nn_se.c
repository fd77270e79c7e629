/* t_nn_se: the fused squeeze-excitation of inference (fd_se_infer,
 * lib/nn/se.h) against torchvision.ops.SqueezeExcitation in float64
 * (tests/ref/nn_se.py): every activation / gate pair of the fixture, NCHW
 * and channels last, 1 and 2 threads (samples split over threads: the same
 * bits); in place (the result is x); the multiply-adds counted; negative
 * controls: a reference off by 1e-4 in one value and the other gate fail;
 * refusals: an input that needs a gradient, GELU, weights of the wrong
 * shape. */
#include "nn/act.h"
#include "nn/se.h"
#include "nn/layout.h"
#include "fixture.h"
#include "nn_ctx.h"

/* float32 pooling (in double) and a float gate times x: a few ulp */
#define TOL 1e-5

/* values failing |a - r| <= TOL + TOL |r| (a NaN fails), silently */
static size_t nbad(const float *a, const float *r, size_t n)
{
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += !(fabs((double)a[i] - r[i]) <= TOL + TOL * fabs((double)r[i]));
	return bad;
}

struct scase {
	int N, C, H, W, Q, act, gate;
	const float *x, *w1, *b1, *w2, *b2;
};

/* fd_se_infer on case k in layout nhwc with gate `gate`; the result in NCHW
 * order into y. 0, or -1 with c->err. */
static int run(struct fd_ctx *c, const struct scase *k, int nhwc, int gate, float *y, uint64_t *macs)
{
	int64_t sx[4] = {k->N, k->C, k->H, k->W}, s1[4] = {k->Q, k->C, 1, 1}, s2[4] = {k->C, k->Q, 1, 1};
	int64_t sq[1] = {k->Q}, sc[1] = {k->C};
	int HW = k->H * k->W;
	size_t n = (size_t)k->N * k->C * HW;
	struct fd_tensor *x = fd_tensor_new(c, FD_DEV_CPU, 4, sx), *w1 = fd_tensor_new(c, FD_DEV_CPU, 4, s1);
	struct fd_tensor *b1 = fd_tensor_new(c, FD_DEV_CPU, 1, sq), *w2 = fd_tensor_new(c, FD_DEV_CPU, 4, s2);
	struct fd_tensor *b2 = fd_tensor_new(c, FD_DEV_CPU, 1, sc);
	if (!x || !w1 || !b1 || !w2 || !b2)
		return -1;
	if (nhwc) {
		x->layout = FD_NHWC;
		fd_transpose_cpu(1, k->N, k->C, HW, k->x, x->data, 0);
	} else {
		memcpy(x->data, k->x, n * 4);
	}
	memcpy(w1->data, k->w1, (size_t)k->Q * k->C * 4), memcpy(b1->data, k->b1, (size_t)k->Q * 4);
	memcpy(w2->data, k->w2, (size_t)k->Q * k->C * 4), memcpy(b2->data, k->b2, (size_t)k->C * 4);
	c->macs = 0;
	struct fd_tensor *r = fd_se_infer(c, x, w1, b1, w2, b2, (enum fd_act)k->act, (enum fd_act)gate);
	*macs = c->macs;
	if (!r)
		return -1;
	if (r != x)
		return fd_fail(c, "result is not x"), -1;
	if (nhwc)
		fd_transpose_cpu(1, k->N, HW, k->C, r->data, y, 0);
	else
		memcpy(y, r->data, n * 4);
	fd_ctx_step(c);
	return 0;
}

int main(void)
{
	struct fd_st st;
	struct fd_ctx c1, c2;
	ctx_open(&c1, 1, 1);
	ctx_open(&c2, 2, 1);
	char nm[128];
	fix_open(&st, "nn_se", "se");
	int cases = fix_cases(&st), checked = 0, pairs[5][5] = {{0}};
	ok(cases >= 8, "fixture has %d cases", cases);
	for (int i = 0; i < cases; i++) {
		const int32_t *v = fix_i32(&st, i, "shape", 7);
		struct scase k = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], NULL, NULL, NULL, NULL, NULL};
		size_t n = (size_t)k.N * k.C * k.H * k.W, C = (size_t)k.C, Q = (size_t)k.Q;
		diag("case %d: N=%d C=%d H=%d W=%d Csq=%d %s, %s", i, k.N, k.C, k.H, k.W, k.Q,
		     fd_act_name((enum fd_act)k.act), fd_act_name((enum fd_act)k.gate));
		k.x = fix_f32(&st, i, "x", (long)n, 0), k.w1 = fix_f32(&st, i, "w1", (long)(Q * C), 0);
		k.b1 = fix_f32(&st, i, "b1", (long)Q, 0), k.w2 = fix_f32(&st, i, "w2", (long)(Q * C), 0);
		k.b2 = fix_f32(&st, i, "b2", (long)C, 0);
		const float *ref = fix_f32(&st, i, "y", (long)n, 0);
		float *y1 = malloc(n * 4), *y2 = malloc(n * 4), *yo = malloc(n * 4);
		pairs[k.act][k.gate]++;
		for (int nhwc = 0; nhwc < 2; nhwc++) {
			const char *lay = nhwc ? "channels last" : "NCHW";
			uint64_t m1 = 0, m2 = 0, mo = 0;
			int other = k.gate == FD_ACT_SIGMOID ? FD_ACT_HARDSIGMOID : FD_ACT_SIGMOID;
			if (run(&c1, &k, nhwc, k.gate, y1, &m1) < 0 || run(&c2, &k, nhwc, k.gate, y2, &m2) < 0 ||
			    run(&c2, &k, nhwc, other, yo, &mo) < 0) {
				ok(0, "case %d %s: runs: %s %s", i, lay, c1.err.msg, c2.err.msg);
				fd_ctx_step(&c1), fd_ctx_step(&c2);
				continue;
			}
			snprintf(nm, sizeof nm, "case %d %s: y vs torch", i, lay);
			tap_close_f32(nm, y2, ref, n, TOL, TOL);
			ok(!memcmp(y1, y2, n * 4), "case %d %s: 1 and 2 threads give the same bits", i, lay);
			ok(m2 == (uint64_t)(2 * k.N * C * Q), "case %d %s: %llu multiply-adds counted (2 N C Csq)", i,
			   lay, (unsigned long long)m2);
			/* negative controls */
			float *p = malloc(n * 4);
			memcpy(p, ref, n * 4);
			p[n / 2] += 1e-4f * (1 + fabsf(p[n / 2]));
			ok(nbad(y2, p, n) == 1, "case %d %s control: a reference off by 1e-4 in one value is caught", i,
			   lay);
			size_t bo = nbad(yo, ref, n);
			ok(bo > n / 4, "case %d %s control: the other gate (%s) fails on %zu of %zu values", i, lay,
			   fd_act_name((enum fd_act)other), bo, n);
			free(p);
			checked++;
		}
		free(y1), free(y2), free(yo);
	}
	ok(checked == 2 * cases && pairs[FD_ACT_SILU][FD_ACT_SIGMOID] && pairs[FD_ACT_RELU][FD_ACT_HARDSIGMOID] &&
		   pairs[FD_ACT_HARDSWISH][FD_ACT_SIGMOID] && pairs[FD_ACT_SIGMOID][FD_ACT_HARDSWISH],
	   "%d case-layouts checked, EfficientNet's and MobileNetV3's pairs among them", checked);

	/* refusals */
	int64_t sx[4] = {2, 4, 3, 3}, s1[2] = {2, 4}, s2[2] = {4, 2}, s3[2] = {3, 2}, sq[1] = {2}, sc[1] = {4};
	struct fd_tensor *x = fd_tensor_new(&c2, FD_DEV_CPU, 4, sx), *w1 = fd_tensor_new(&c2, FD_DEV_CPU, 2, s1);
	struct fd_tensor *w2 = fd_tensor_new(&c2, FD_DEV_CPU, 2, s2), *bad = fd_tensor_new(&c2, FD_DEV_CPU, 2, s3);
	struct fd_tensor *b1 = fd_tensor_new(&c2, FD_DEV_CPU, 1, sq), *b2 = fd_tensor_new(&c2, FD_DEV_CPU, 1, sc);
	for (int64_t j = 0; x && j < x->numel; j++)
		x->data[j] = 1;
	ok(x && w1 && w2 && bad && b1 && b2 && fd_se_infer(&c2, x, w1, b1, w2, b2, FD_ACT_RELU, FD_ACT_SIGMOID) == x,
	   "2-D weights accepted %s", c2.err.msg);
	c2.failed = 0;
	ok(!fd_se_infer(&c2, x, w1, b1, bad, b2, FD_ACT_RELU, FD_ACT_SIGMOID) && strstr(c2.err.msg, "do not fit"),
	   "fc2 weight [3, 2] for C = 4 refused: %s", c2.err.msg);
	c2.failed = 0;
	ok(!fd_se_infer(&c2, x, w1, b1, w2, b2, FD_ACT_GELU, FD_ACT_SIGMOID) && strstr(c2.err.msg, "not supported"),
	   "gelu refused: %s", c2.err.msg);
	c2.failed = 0;
	fd_requires_grad(w1);
	ok(!fd_se_infer(&c2, x, w1, b1, w2, b2, FD_ACT_RELU, FD_ACT_SIGMOID) &&
		   strstr(c2.err.msg, "records no gradient"),
	   "an input that needs a gradient refused: %s", c2.err.msg);
	fd_st_close(&st);
	fd_ctx_free(&c1);
	fd_ctx_free(&c2);
	return tap_done();
}
