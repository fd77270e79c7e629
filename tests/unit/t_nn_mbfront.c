/* t_nn_mbfront: the fused expansion + depthwise front of an inverted
 * residual block at inference (fd_mbfront_infer, lib/nn/mbfront.h) against
 * torch in float64 (tests/ref/nn_mbfront.py): every case on 1 and 2
 * threads (the same bits), the multiply-adds counted; negative controls: a
 * reference off by 10 tolerances in one value and the other activation
 * fail; refusals: an input that needs a gradient, NCHW, an even kernel,
 * an expansion weight without its bias, depthwise weights that do not fit,
 * stride 3, GELU, misfit weights. On a CPU without AVX-512F only the
 * refusal of fd_mbfront_serves is checked (the models then keep oneDNN's
 * two convolutions). */
#include "nn/act.h"
#include "nn/layout.h"
#include "nn/mbfront.h"
#include "fixture.h"
#include "nn_ctx.h"

/* |y - r| <= TOL mag: fp32 sums over Cin + k^2 terms against float64,
 * mag bounding the sum of the terms' magnitudes */
#define TOL 5e-7

struct mcase {
	int N, Cin, C, H, W, k, s, act, expand;
	const float *x, *we, *be, *wd, *bd;
};

/* values failing |a - r| <= TOL mag (fix_nbad_mag) */
static size_t nbad(const float *a, const float *r, const float *mag, size_t n, double *worst)
{
	return fix_nbad_mag(a, r, mag, n, TOL, worst);
}

static int out_size(int n, int k, int s)
{
	return (n + 2 * ((k - 1) / 2) - k) / s + 1;
}

/* fd_mbfront_infer on case k with activation act; y in NCHW order. 0, or
 * -1 with c->err. */
static int run(struct fd_ctx *c, const struct mcase *k, int act, float *y, uint64_t *macs, double *sums)
{
	int64_t sx[4] = {k->N, k->Cin, k->H, k->W}, se[4] = {k->C, k->Cin, 1, 1}, sd[4] = {k->C, 1, k->k, k->k};
	int64_t sc[1] = {k->C};
	int HW = k->H * k->W, Ho = out_size(k->H, k->k, k->s), Wo = out_size(k->W, k->k, k->s);
	struct fd_tensor *x = fd_tensor_new(c, FD_DEV_CPU, 4, sx), *we = fd_tensor_new(c, FD_DEV_CPU, 4, se);
	struct fd_tensor *be = fd_tensor_new(c, FD_DEV_CPU, 1, sc), *wd = fd_tensor_new(c, FD_DEV_CPU, 4, sd);
	struct fd_tensor *bd = fd_tensor_new(c, FD_DEV_CPU, 1, sc);
	if (!x || !we || !be || !wd || !bd)
		return -1;
	x->layout = FD_NHWC;
	fd_transpose_cpu(1, k->N, k->Cin, HW, k->x, x->data, 0);
	memcpy(we->data, k->we, (size_t)k->C * k->Cin * 4), memcpy(be->data, k->be, (size_t)k->C * 4);
	if (!k->expand)
		we = be = NULL;
	memcpy(wd->data, k->wd, (size_t)k->C * k->k * k->k * 4), memcpy(bd->data, k->bd, (size_t)k->C * 4);
	c->macs = 0;
	struct fd_tensor *r = fd_mbfront_infer(c, x, we, be, wd, bd, k->s, act, sums);
	*macs = c->macs;
	if (!r)
		return -1;
	if (r->shape[0] != k->N || r->shape[1] != k->C || r->shape[2] != Ho || r->shape[3] != Wo ||
	    r->layout != FD_NHWC)
		return fd_fail(c, "output shape or layout"), -1;
	fd_transpose_cpu(1, k->N, Ho * Wo, k->C, r->data, y, 0);
	fd_ctx_step(c);
	return 0;
}

/* the small tensors of the refusal checks: x [2, 8, 6, 6] channels last,
 * an expansion to 16 channels, 3x3 and 4x4 depthwise weights, a misfit
 * expansion weight */
static void small(struct fd_ctx *c, struct fd_tensor **x, struct fd_tensor **we, struct fd_tensor **be,
		  struct fd_tensor **wd, struct fd_tensor **bd, struct fd_tensor **wd4, struct fd_tensor **bad)
{
	int64_t sx[4] = {2, 8, 6, 6}, se[4] = {16, 8, 1, 1}, sd[4] = {16, 1, 3, 3}, sd4[4] = {16, 1, 4, 4};
	int64_t sb[4] = {12, 8, 1, 1}, sc[1] = {16};
	*x = fd_tensor_new(c, FD_DEV_CPU, 4, sx), *we = fd_tensor_new(c, FD_DEV_CPU, 4, se);
	*be = fd_tensor_new(c, FD_DEV_CPU, 1, sc), *wd = fd_tensor_new(c, FD_DEV_CPU, 4, sd);
	*bd = fd_tensor_new(c, FD_DEV_CPU, 1, sc), *wd4 = fd_tensor_new(c, FD_DEV_CPU, 4, sd4);
	*bad = fd_tensor_new(c, FD_DEV_CPU, 4, sb);
	if (!*x || !*we || !*be || !*wd || !*bd || !*wd4 || !*bad) {
		printf("Bail out! tensors\n");
		exit(1);
	}
	(*x)->layout = FD_NHWC;
}

int main(void)
{
	struct fd_st st;
	struct fd_ctx c1, c2;
	ctx_open(&c1, 1, 1);
	ctx_open(&c2, 2, 1);
	struct fd_tensor *x, *we, *be, *wd, *bd, *wd4, *bad;
	if (!cpu_has("avx512f")) {
		small(&c2, &x, &we, &be, &wd, &bd, &wd4, &bad);
		ok(!fd_mbfront_serves(&c2, x, 3, 1, FD_ACT_SILU) &&
			   !fd_mbfront_infer(&c2, x, we, be, wd, bd, 1, FD_ACT_SILU, NULL) &&
			   strstr(c2.err.msg, "not for this"),
		   "no AVX-512F: not served, refused: %s", c2.err.msg);
		fd_ctx_free(&c1);
		fd_ctx_free(&c2);
		return tap_done();
	}

	fix_open(&st, "nn_mbfront", "mbfront");
	int cases = fix_cases(&st), checked = 0, acts[4] = {0}, tails = 0, banded = 0, noexp = 0;
	ok(cases >= 17, "fixture has %d cases", cases);
	for (int i = 0; i < cases; i++) {
		const int32_t *v = fix_i32(&st, i, "shape", 9);
		struct mcase k = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], NULL, NULL, NULL, NULL, NULL};
		int Ho = out_size(k.H, k.k, k.s), Wo = out_size(k.W, k.k, k.s);
		size_t nx = (size_t)k.N * k.Cin * k.H * k.W, n = (size_t)k.N * k.C * Ho * Wo, C = (size_t)k.C;
		diag("case %d: N=%d Cin=%d Cexp=%d %dx%d k=%d stride %d %s%s", i, k.N, k.Cin, k.C, k.H, k.W, k.k, k.s,
		     fd_act_name((enum fd_act)k.act), k.expand ? "" : ", no expansion");
		k.x = fix_f32(&st, i, "x", (long)nx, 0), k.we = fix_f32(&st, i, "we", (long)(C * k.Cin), 0);
		k.be = fix_f32(&st, i, "be", (long)C, 0), k.wd = fix_f32(&st, i, "wd", (long)(C * k.k * k.k), 0);
		k.bd = fix_f32(&st, i, "bd", (long)C, 0);
		const float *ref = fix_f32(&st, i, "y", (long)n, 0), *mag = fix_f32(&st, i, "mag", (long)n, 0);
		float *y1 = malloc(n * 4), *y2 = malloc(n * 4), *yo = malloc(n * 4);
		double *s1 = malloc((size_t)k.N * C * 8), *s2 = malloc((size_t)k.N * C * 8);
		uint64_t m1 = 0, m2 = 0, mo = 0;
		int other = k.act == FD_ACT_SILU ? FD_ACT_HARDSWISH : FD_ACT_SILU;
		if (run(&c1, &k, k.act, y1, &m1, s1) < 0 || run(&c2, &k, k.act, y2, &m2, s2) < 0 ||
		    run(&c2, &k, other, yo, &mo, NULL) < 0) {
			ok(0, "case %d: runs: %s %s", i, c1.err.msg, c2.err.msg);
			fd_ctx_step(&c1), fd_ctx_step(&c2);
			free(y1), free(y2), free(yo), free(s1), free(s2);
			continue;
		}
		double worst = 0;
		size_t b2 = nbad(y2, ref, mag, n, &worst);
		ok(b2 == 0, "case %d: y vs torch float64 within %g x mag: %zu of %zu values off, worst %.3f of tol", i,
		   TOL, b2, n, worst);
		ok(!memcmp(y1, y2, n * 4), "case %d: 1 and 2 threads give the same bits", i);
		/* the channel sums against the reference's, each within the sum of
		 * its values' tolerances */
		size_t sbad = 0, HWo = (size_t)Ho * Wo;
		for (size_t b = 0; b < (size_t)k.N * C; b++) {
			size_t nn = b / C, ch = b % C;
			double r = 0, t = 0;
			for (size_t q = 0; q < HWo; q++) {
				size_t at = (nn * C + ch) * HWo + q;
				r += ref[at], t += TOL * mag[at];
			}
			sbad += !(fabs(s2[b] - r) <= t + 1e-6 * fabs(r));
		}
		ok(sbad == 0 && !memcmp(s1, s2, (size_t)k.N * C * 8),
		   "case %d: channel sums vs the reference's: %zu of %zu off; 1 and 2 threads the same bits", i, sbad,
		   (size_t)k.N * C);
		uint64_t want = (k.expand ? (uint64_t)k.N * k.H * k.W * C * k.Cin : 0) + (uint64_t)n * k.k * k.k;
		ok(m2 == want, "case %d: %llu multiply-adds counted (want %llu)", i, (unsigned long long)m2,
		   (unsigned long long)want);
		/* negative controls */
		fix_mag_controls(i, y2, ref, mag, n, TOL, yo, "activation", fd_act_name((enum fd_act)other));
		acts[k.act]++;
		noexp += !k.expand;
		tails += k.C % 16 != 0;
		banded += k.N < 4;
		checked++;
		free(y1), free(y2), free(yo), free(s1), free(s2);
	}
	ok(checked == cases && acts[FD_ACT_SILU] && acts[FD_ACT_RELU] && acts[FD_ACT_HARDSWISH] && tails >= 3 &&
		   banded >= 1 && noexp >= 3,
	   "%d cases checked: silu %d, relu %d, hardswish %d; %d with a padded channel block, %d split in bands, "
	   "%d without an expansion",
	   checked, acts[FD_ACT_SILU], acts[FD_ACT_RELU], acts[FD_ACT_HARDSWISH], tails, banded, noexp);
	fd_st_close(&st);

	/* refusals */
	small(&c2, &x, &we, &be, &wd, &bd, &wd4, &bad);
	for (int64_t j = 0; j < x->numel; j++)
		x->data[j] = 1;
	memset(we->data, 0, (size_t)we->numel * 4), memset(be->data, 0, 64), memset(bd->data, 0, 64);
	memset(wd->data, 0, (size_t)wd->numel * 4), memset(wd4->data, 0, (size_t)wd4->numel * 4);
	struct fd_tensor *y = fd_mbfront_infer(&c2, x, we, be, wd, bd, 1, FD_ACT_RELU, NULL);
	ok(y && y->shape[1] == 16 && y->shape[2] == 6, "a plain call runs %s", c2.err.msg);
	c2.failed = 0;
	ok(!fd_mbfront_infer(&c2, x, we, be, wd4, bd, 1, FD_ACT_RELU, NULL) && strstr(c2.err.msg, "not for this"),
	   "a 4x4 kernel refused: %s", c2.err.msg);
	c2.failed = 0;
	ok(!fd_mbfront_infer(&c2, x, we, be, wd, bd, 3, FD_ACT_RELU, NULL) && strstr(c2.err.msg, "stride 3"),
	   "stride 3 refused: %s", c2.err.msg);
	c2.failed = 0;
	ok(!fd_mbfront_infer(&c2, x, we, be, wd, bd, 1, FD_ACT_GELU, NULL) && strstr(c2.err.msg, "not for this"),
	   "gelu refused: %s", c2.err.msg);
	c2.failed = 0;
	ok(!fd_mbfront_infer(&c2, x, we, NULL, wd, bd, 1, FD_ACT_RELU, NULL) && strstr(c2.err.msg, "without its bias"),
	   "an expansion weight without its bias refused: %s", c2.err.msg);
	c2.failed = 0;
	ok(!fd_mbfront_infer(&c2, x, NULL, NULL, wd, bd, 1, FD_ACT_RELU, NULL) && strstr(c2.err.msg, "do not fit"),
	   "no expansion with 16-channel depthwise weights for 8 channels refused: %s", c2.err.msg);
	c2.failed = 0;
	ok(!fd_mbfront_infer(&c2, x, bad, be, wd, bd, 1, FD_ACT_RELU, NULL) && strstr(c2.err.msg, "do not fit"),
	   "an expansion weight [12, 8] for 16 channels refused: %s", c2.err.msg);
	c2.failed = 0;
	x->layout = FD_NCHW;
	ok(!fd_mbfront_serves(&c2, x, 3, 1, FD_ACT_RELU) && !fd_mbfront_infer(&c2, x, we, be, wd, bd, 1, FD_ACT_RELU, NULL),
	   "NCHW input refused: %s", c2.err.msg);
	x->layout = FD_NHWC;
	c2.failed = 0;
	fd_requires_grad(we);
	ok(!fd_mbfront_infer(&c2, x, we, be, wd, bd, 1, FD_ACT_RELU, NULL) && strstr(c2.err.msg, "records no gradient"),
	   "an input that needs a gradient refused: %s", c2.err.msg);
	fd_ctx_free(&c1);
	fd_ctx_free(&c2);
	return tap_done();
}
