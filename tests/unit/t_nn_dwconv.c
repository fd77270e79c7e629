/* t_nn_dwconv: fd's depthwise backward-weights kernel (lib/nn/dwconv.h)
 * against PyTorch fixtures (tests/ref/nn_dwconv.py): dw and db for k = 3, 5,
 * 7, rectangular kernels, strides 1-3, padding, dilation, odd channel counts
 * and batch > 1, within a tolerance relative to the gradient's scale; ADD
 * semantics; the same bits on 1, 2 and 3 threads; the conv2d plan's hook
 * (fp32 and bf16 contexts) for the shapes the dispatch rule gives it; the
 * rule itself; negative controls (a perturbed or NaN result fails). */
#include "nn/dwconv.h"
#include "nn/layout.h"
#include "fixture.h"
#include "nn_ctx.h"

/* fp32 sums of N*Ho*Wo products, blocked per row and chunk: the error
 * relative to the largest |gradient| of a case stays near float32's epsilon;
 * a wrong tap or a lost row moves it by O(1). */
#define TOL 2e-6

static int checked;

/* max |got - ref| / (TOL * max |ref|) over n values (NaN counts as worst). */
static double share(const float *got, const float *ref, size_t n)
{
	return scaled_worst(got, ref, n, TOL);
}

static int close_scaled(const char *what, int i, const float *got, const float *ref, size_t n)
{
	checked++;
	return scaled_close(what, i, got, ref, n, TOL);
}

struct dwcase {
	struct fd_conv2d_shape s;
	int Ho, Wo;
	size_t nx, ny, nw, nb;
	const float *x, *dy, *dw, *db;
};

static int load(const struct fd_st *st, int i, struct dwcase *k)
{
	const int32_t *v = fix_i32(st, i, "shape", 13);
	struct fd_err e = {{0}};
	k->s = (struct fd_conv2d_shape){.N = v[0], .C = v[1], .H = v[2], .W = v[3], .K = v[1], .kh = v[4],
					.kw = v[5], .sh = v[6], .sw = v[7], .ph = v[8], .pw = v[9], .dh = v[10],
					.dw = v[11], .groups = v[1], .bias = v[12], .xl = FD_NHWC, .yl = FD_NHWC};
	if (!ok(fd_conv2d_out_size(&k->s, &k->Ho, &k->Wo, &e) == 0, "case %d: shape valid %s", i, e.msg))
		return -1;
	const struct fd_conv2d_shape *s = &k->s;
	k->nx = (size_t)s->N * s->C * s->H * s->W, k->ny = (size_t)s->N * s->C * k->Ho * k->Wo;
	k->nw = (size_t)s->C * s->kh * s->kw, k->nb = s->bias ? s->C : 0;
	k->x = fix_f32(st, i, "x", k->nx, 0), k->dy = fix_f32(st, i, "dy", k->ny, 0);
	k->dw = fix_f32(st, i, "dw", k->nw, 0), k->db = fix_f32(st, i, "db", k->nb, 1);
	diag("case %d: N=%d C=%d %dx%d k=%dx%d s=%d,%d p=%d,%d d=%d,%d bias=%d -> %dx%d", i, s->N, s->C, s->H, s->W,
	     s->kh, s->kw, s->sh, s->sw, s->ph, s->pw, s->dh, s->dw, s->bias, k->Ho, k->Wo);
	return 0;
}

/* The kernel called directly on a context of `threads` threads: dw and db
 * into buffers of ones. Returns dw (db in *dbo), both still holding the ones. */
static float *run(struct fd_ctx *c, const struct dwcase *k, float **dbo)
{
	float *dw = filled(k->nw, 1.0f), *db = filled(k->nb ? k->nb : 1, 1.0f);
	if (fd_dwconv_bwd_weights_cpu(c, &k->s, k->x, k->dy, dw, k->nb ? db : NULL) < 0)
		diag("kernel failed: %s", c->err.msg);
	*dbo = db;
	return dw;
}

static void one_case(struct fd_ctx *cs[3], struct fd_ctx *cb, const struct fd_st *st, int i)
{
	struct dwcase k;
	char nm[96];
	if (load(st, i, &k))
		return;
	const struct fd_conv2d_shape *s = &k.s;

	/* direct, 2 threads: ADD into ones, against torch */
	float *db2, *dw2 = run(cs[1], &k, &db2);
	float *gdw = less_ones(dw2, k.nw), *gdb = less_ones(db2, k.nb);
	close_scaled("dw (adds)", i, gdw, k.dw, k.nw);
	if (k.nb)
		close_scaled("db (adds)", i, gdb, k.db, k.nb);

	/* the same bits on 1 and 3 threads */
	for (int t = 0; t < 3; t += 2) {
		float *dbt, *dwt = run(cs[t], &k, &dbt);
		ok(memcmp(dwt, dw2, k.nw * sizeof *dwt) == 0 && (!k.nb || memcmp(dbt, db2, k.nb * sizeof *dbt) == 0),
		   "case %d: %d threads give the bits of 2", i, cs[t]->threads);
		free(dwt), free(dbt);
	}

	/* db alone (dw not wanted) */
	if (k.nb) {
		float *db = filled(k.nb, 1.0f);
		ok(fd_dwconv_bwd_weights_cpu(cs[1], s, k.x, k.dy, NULL, db) == 0 && memcmp(db, db2, k.nb * sizeof *db) == 0,
		   "case %d: db without dw: the same db", i);
		free(db);
	}

	/* through the conv2d plan: fd's kernel where the rule says, oneDNN else */
	int serves = fd_dwconv_serves(s);
	ok(serves == (s->kh * s->kw >= FD_DWCONV_MIN_TAPS), "case %d: rule serves %dx%d: %s", i, s->kh, s->kw,
	   serves ? "yes" : "no");
	void *p = NULL;
	if (ok(fd_conv2d_plan_cpu(cs[1], s, &p) == 0, "case %d: plan made %s", i, cs[1]->err.msg)) {
		float *dw = filled(k.nw, 1.0f), *db = filled(k.nb ? k.nb : 1, 1.0f);
		ok(fd_conv2d_bwd_cpu(cs[1], p, k.x, NULL, k.dy, NULL, dw, k.nb ? db : NULL) == 0,
		   "case %d: plan backward-weights runs %s", i, cs[1]->err.msg);
		if (serves)
			ok(memcmp(dw, dw2, k.nw * sizeof *dw) == 0 && (!k.nb || memcmp(db, db2, k.nb * sizeof *db) == 0),
			   "case %d: the plan runs fd's kernel (same bits)", i);
		float *g = less_ones(dw, k.nw);
		snprintf(nm, sizeof nm, "plan %s dw (adds)", serves ? "fd" : "oneDNN");
		close_scaled(nm, i, g, k.dw, k.nw);
		free(g), free(dw), free(db);
		fd_conv2d_plan_free_cpu(p);
	}

	/* a bf16 context: depthwise backward-weights stays fp32 (doc/nn-kernels.md "bf16") */
	if (cb && serves && fd_conv2d_plan_cpu(cb, s, &p) == 0) {
		float *dw = filled(k.nw, 1.0f), *db = filled(k.nb ? k.nb : 1, 1.0f);
		ok(fd_conv2d_bwd_cpu(cb, p, k.x, NULL, k.dy, NULL, dw, k.nb ? db : NULL) == 0 &&
		   memcmp(dw, dw2, k.nw * sizeof *dw) == 0 && (!k.nb || memcmp(db, db2, k.nb * sizeof *db) == 0),
		   "case %d: bf16 context: fd's kernel in fp32 (same bits) %s", i, cb->err.msg);
		fd_conv2d_plan_free_cpu(p);
		free(dw), free(db);
	}

	if (i == 1) { /* negative controls: a perturbed or NaN result fails the check */
		float *bad = malloc(k.nw * sizeof *bad);
		memcpy(bad, gdw, k.nw * sizeof *bad);
		bad[k.nw / 2] += (float)(3 * TOL * fabs(k.dw[k.nw / 2]) + 3 * TOL);
		double w1 = share(bad, k.dw, k.nw);
		memcpy(bad, gdw, k.nw * sizeof *bad);
		bad[k.nw - 1] = NAN;
		double w2 = share(bad, k.dw, k.nw);
		ok(!(w1 <= 1) && !(w2 <= 1), "case 1: negative controls fail: one value off by 3x tol (%.2f), a NaN (%g)",
		   w1, w2);
		/* a transposed result ([kh*kw][C] instead of [C][kh*kw]) fails too */
		for (int c = 0; c < s->C; c++)
			for (int t = 0; t < s->kh * s->kw; t++)
				bad[(size_t)t * s->C + c] = gdw[(size_t)c * s->kh * s->kw + t];
		double w3 = share(bad, k.dw, k.nw);
		ok(!(w3 <= 1), "case 1: negative control: taps in the wrong order fail (%.3g of tol)", w3);
		free(bad);
	}
	free(dw2), free(db2), free(gdw), free(gdb);
}

int main(void)
{
	struct fd_ctx c1, c2, c3, cbf;
	struct fd_ctx *cs[3] = {&c1, &c2, &c3}, *cb = &cbf;
	struct fd_err e = {{0}};
	struct fd_st st;
	ctx_open(&c1, 1, 1), ctx_open(&c2, 2, 1), ctx_open(&c3, 3, 1), ctx_open(&cbf, 2, 1);
	if (fd_ctx_set_precision(&cbf, FD_PREC_BF16, &e) < 0) {
		diag("no bf16 context on this CPU (%s): bf16 checks skipped", e.msg);
		cb = NULL;
	}
	fix_open(&st, "nn_dwconv", "dwconv");
	int n = fix_cases(&st);
	ok(n >= 13, "fixture has %d depthwise cases", n);
	for (int i = 0; i < n; i++) {
		one_case(cs, cb, &st, i);
		for (int t = 0; t < 3; t++)
			fd_ctx_step(cs[t]);
		if (cb)
			fd_ctx_step(cb);
	}
	ok(checked >= 2 * n, "%d comparisons with torch checked", checked);

	/* the rule: channels last both sides, multiplier 1, >= FD_DWCONV_MIN_TAPS taps */
	struct fd_conv2d_shape r = {2, 8, 9, 9, 8, 5, 5, 1, 1, 2, 2, 1, 1, 8, 0, FD_NHWC, FD_NHWC};
	ok(fd_dwconv_serves(&r), "5x5 depthwise NHWC served");
	r.xl = FD_NCHW;
	ok(!fd_dwconv_serves(&r), "NCHW input not served");
	r.xl = FD_NHWC, r.yl = FD_NCHW;
	ok(!fd_dwconv_serves(&r), "NCHW output not served");
	r.yl = FD_NHWC, r.K = 16;
	ok(!fd_dwconv_serves(&r), "depth multiplier 2 not served");
	r.K = 8, r.groups = 4;
	ok(!fd_dwconv_serves(&r), "grouped (not depthwise) not served");
	r.groups = 8, r.kh = r.kw = 3, r.ph = r.pw = 1;
	ok(!fd_dwconv_serves(&r), "3x3 stays on oneDNN");
	/* the kernel refuses what it cannot compute, with a message */
	float buf[8 * 9 * 9 * 2] = {0}, dw[8 * 9] = {0};
	r.groups = 4;
	ok(fd_dwconv_bwd_weights_cpu(&c2, &r, buf, buf, dw, NULL) < 0 && strstr(c2.err.msg, "depthwise"),
	   "a grouped shape refused: %s", c2.err.msg);
	fd_st_close(&st);
	fd_ctx_free(&c1), fd_ctx_free(&c2), fd_ctx_free(&c3), fd_ctx_free(&cbf);
	return tap_done();
}
