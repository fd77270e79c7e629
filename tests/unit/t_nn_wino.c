/* t_nn_wino: fd's own Winograd F(4x4, 3x3) (lib/nn/wino.h) against PyTorch
 * fixtures (tests/ref/nn_wino.py): the forward (bias, ReLU, the add mode),
 * backward-data (overwrite and ADD) and backward-weights (dw, db: ADD) of
 * 3x3 stride-1 convolutions with
 * partial tiles, padding 0-2, odd channel counts and partial 16-channel
 * blocks, within a tolerance relative to the result's scale; the same bits
 * on 1, 2 and 3 threads; the shape rule; the conv2d plan's hook (a
 * channels-last plan with c->winograd runs it where oneDNN has no
 * Winograd); fd_conv2d_infer_add with c->winograd (act(s + conv + b)
 * against torch's, and where oneDNN's Winograd takes the sum through fd's
 * unblocking add, the same bits as its plan's y plus s, then ReLU);
 * negative controls (a perturbed, NaN or direct-only result). */
#include "nn/wino.h"
#include "fixture.h"
#include "nn_ctx.h"

/* Winograd F(4x4, 3x3) in float32: its error relative to the largest
 * |output| of a case was measured at 2e-6 to 1e-5 (worst: case 7's dx, 128
 * and 256 channels), 5-8x what torch's direct float32 convolution gives
 * on the same shapes (0.8-1.3e-6); a wrong transform entry, tap or tile
 * moves it by 1e-2 or more (the negative controls). */
#define TOL 2e-5

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

struct wcase {
	struct fd_conv2d_shape s;
	int Ho, Wo, relu;
	size_t nx, ny, nw;
	const float *x, *w, *b, *y, *sm, *ya, *dy, *dx, *dw, *db;
};

static int load(const struct fd_st *st, int i, struct wcase *k)
{
	const int32_t *v = fix_i32(st, i, "shape", 9);
	struct fd_err e = {{0}};
	k->s = (struct fd_conv2d_shape){.N = v[0], .C = v[1], .H = v[2], .W = v[3], .K = v[4], .kh = 3, .kw = 3,
					.sh = 1, .sw = 1, .ph = v[5], .pw = v[6], .dh = 1, .dw = 1, .groups = 1,
					.bias = v[7], .xl = FD_NHWC, .yl = FD_NHWC};
	k->relu = v[8];
	if (!ok(fd_conv2d_out_size(&k->s, &k->Ho, &k->Wo, &e) == 0, "case %d: shape valid %s", i, e.msg))
		return -1;
	const struct fd_conv2d_shape *s = &k->s;
	k->nx = (size_t)s->N * s->C * s->H * s->W, k->ny = (size_t)s->N * s->K * k->Ho * k->Wo;
	k->nw = (size_t)s->K * s->C * 9;
	k->x = fix_f32(st, i, "x", k->nx, 0), k->w = fix_f32(st, i, "w", k->nw, 0);
	k->b = fix_f32(st, i, "b", s->bias ? (size_t)s->K : 0, 1), k->y = fix_f32(st, i, "y", k->ny, 0);
	k->sm = fix_f32(st, i, "s", k->ny, 0), k->ya = fix_f32(st, i, "ya", k->ny, 0);
	k->dy = fix_f32(st, i, "dy", k->ny, 0), k->dx = fix_f32(st, i, "dx", k->nx, 0);
	k->dw = fix_f32(st, i, "dw", k->nw, 0), k->db = fix_f32(st, i, "db", s->bias ? (size_t)s->K : 0, 1);
	diag("case %d: N=%d C=%d %dx%d K=%d p=%d,%d bias=%d relu=%d -> %dx%d", i, s->N, s->C, s->H, s->W, s->K,
	     s->ph, s->pw, s->bias, k->relu, k->Ho, k->Wo);
	return 0;
}

/* backward-weights into buffers of ones (it adds); *dbo: db (NULL without
 * bias). */
static float *bwdw(struct fd_ctx *c, const struct wcase *k, float **dbo)
{
	float *dw = filled(k->nw, 1.0f), *db = k->s.bias ? filled((size_t)k->s.K, 1.0f) : NULL;
	if (fd_wino_bwd_weights_cpu(c, &k->s, k->x, k->dy, dw, db) < 0)
		diag("backward-weights failed: %s", c->err.msg);
	*dbo = db;
	return dw;
}

/* forward into a buffer of sevens (overwritten) */
static float *fwd(struct fd_ctx *c, const struct wcase *k)
{
	float *y = filled(k->ny, 7.0f);
	if (fd_wino_fwd_cpu(c, &k->s, k->x, k->w, k->b, k->relu, 0, y) < 0)
		diag("forward failed: %s", c->err.msg);
	return y;
}

/* backward-data into a buffer of v, overwriting (over) or adding */
static float *bwd(struct fd_ctx *c, const struct wcase *k, float v, int over)
{
	float *dx = filled(k->nx, v);
	if (fd_wino_bwd_data_cpu(c, &k->s, k->dy, k->w, dx, over) < 0)
		diag("backward-data failed: %s", c->err.msg);
	return dx;
}

static int nwsum; /* cases run by a wsum plan (fd_conv2d_winograd_sum_cpu) */

/* fd_conv2d_infer_add of case k with c->winograd, channels last: act(s +
 * conv + b) against torch's (the fixture's ya). Where the plan is oneDNN's
 * Winograd taking the sum (wsum: oneDNN's Winograd here and K a multiple
 * of 16), the same bits as that Winograd's conv + b (py, from a plan
 * without the sum: onednn set) plus s, then ReLU, as separate passes; a
 * shape oneDNN's cannot take that way runs another plan (fd's own Winograd
 * or the direct one), still against torch. */
static void wsum_case(struct fd_ctx *c, const struct wcase *k, int i, int onednn, const float *py)
{
	const struct fd_conv2d_shape *s = &k->s;
	struct fd_conv2d_op op;
	fd_conv2d_op_init(&op, 1, s->ph, 1, 1);
	op.pw = s->pw;
	int64_t xs[4] = {s->N, s->C, s->H, s->W}, ws[4] = {s->K, s->C, 3, 3}, bs[1] = {s->K};
	int64_t ys[4] = {s->N, s->K, k->Ho, k->Wo};
	struct fd_tensor *x = fd_tensor_wrap(c, FD_DEV_CPU, (float *)k->x, 4, xs);
	struct fd_tensor *w = fd_tensor_wrap(c, FD_DEV_CPU, (float *)k->w, 4, ws);
	struct fd_tensor *b = s->bias ? fd_tensor_wrap(c, FD_DEV_CPU, (float *)k->b, 1, bs) : NULL;
	struct fd_tensor *sum = fd_tensor_new(c, FD_DEV_CPU, 4, ys);
	if (!ok(x && w && sum && (b || !s->bias), "case %d: infer_add tensors %s", i, c->err.msg))
		return;
	x->layout = sum->layout = FD_NHWC;
	memcpy(sum->data, k->sm, k->ny * sizeof *sum->data);
	c->winograd = c->channels_last = 1;
	struct fd_tensor *out =
		fd_conv2d_infer_add(c, &op, x, w, b, k->relu ? FD_CONV_POST_RELU : FD_CONV_POST_NONE, sum);
	c->winograd = c->channels_last = 0;
	void *p = op.nplans == 1 ? op.plans[0].plan : NULL;
	int wsum = p && fd_conv2d_winograd_sum_cpu(p);
	if (ok(out == sum && p, "case %d: infer_add with c->winograd runs %s", i, c->err.msg)) {
		close_scaled("infer_add with Winograd: act(s + conv + b)", i, sum->data, k->ya, k->ny);
		ok(wsum == (onednn && s->K % 16 == 0), "case %d: the sum by fd's unblocking add: %d (oneDNN's Winograd %d, K %d)",
		   i, wsum, onednn, s->K);
	}
	if (out && wsum) {
		nwsum++;
		size_t differ = 0;
		for (size_t j = 0; j < k->ny; j++) {
			float v = py[j] + k->sm[j];
			v = k->relu ? (v > 0 ? v : 0.0f) : v;
			differ += memcmp(&v, &sum->data[j], sizeof v) != 0;
		}
		ok(differ == 0, "case %d: the same bits as oneDNN's Winograd plus the sum%s as separate passes (%zu differ)",
		   i, k->relu ? ", then ReLU," : "", differ);
	}
	fd_conv2d_op_free(&op);
}

static void one_case(struct fd_ctx *cs[3], const struct fd_st *st, int i)
{
	struct wcase k;
	if (load(st, i, &k))
		return;
	ok(fd_wino_serves(&k.s), "case %d: the rule serves it", i);

	float *y = fwd(cs[1], &k);
	close_scaled(k.relu ? "y = relu(conv + b)" : "y = conv + b", i, y, k.y, k.ny);
	float *ya = malloc(k.ny * sizeof *ya);
	memcpy(ya, k.sm, k.ny * sizeof *ya);
	ok(fd_wino_fwd_cpu(cs[1], &k.s, k.x, k.w, k.b, k.relu, 1, ya) == 0, "case %d: add mode runs %s", i,
	   cs[1]->err.msg);
	close_scaled("add mode: act(s + conv + b)", i, ya, k.ya, k.ny);

	float *dx = bwd(cs[1], &k, 7.0f, 1);
	close_scaled("dx (overwrites)", i, dx, k.dx, k.nx);
	float *dxa = bwd(cs[1], &k, 1.0f, 0), *ref1 = ones_plus(k.dx, k.nx);
	close_scaled("dx (adds into ones)", i, dxa, ref1, k.nx);

	float *db2, *dw2 = bwdw(cs[1], &k, &db2), *gdw = less_ones(dw2, k.nw);
	close_scaled("dw (adds into ones)", i, gdw, k.dw, k.nw);
	if (db2) {
		float *gdb = less_ones(db2, (size_t)k.s.K);
		close_scaled("db (adds into ones)", i, gdb, k.db, (size_t)k.s.K);
		free(gdb);
		float *db1 = filled((size_t)k.s.K, 1.0f);
		ok(fd_wino_bwd_weights_cpu(cs[1], &k.s, k.x, k.dy, NULL, db1) == 0 &&
			   memcmp(db1, db2, (size_t)k.s.K * sizeof *db1) == 0,
		   "case %d: db without dw: the same db", i);
		free(db1);
	}

	/* the same bits on 1 and 3 threads */
	for (int t = 0; t < 3; t += 2) {
		float *yt = fwd(cs[t], &k), *dxt = bwd(cs[t], &k, 7.0f, 1), *dbt, *dwt = bwdw(cs[t], &k, &dbt);
		ok(memcmp(yt, y, k.ny * sizeof *y) == 0 && memcmp(dxt, dx, k.nx * sizeof *dx) == 0 &&
			   memcmp(dwt, dw2, k.nw * sizeof *dwt) == 0 &&
			   (!dbt || memcmp(dbt, db2, (size_t)k.s.K * sizeof *dbt) == 0),
		   "case %d: %d threads give the bits of 2 (y, dx, dw, db)", i, cs[t]->threads);
		free(yt), free(dxt), free(dwt), free(dbt);
	}

	/* through a channels-last conv2d plan with c->winograd: fd's kernel
	 * where oneDNN has no Winograd (the same bits), oneDNN's else */
	struct fd_ctx *c = cs[1];
	void *p = NULL;
	c->winograd = 1;
	int made = fd_conv2d_plan_cpu(c, &k.s, &p) == 0;
	c->winograd = 0;
	if (ok(made, "case %d: winograd plan made %s", i, c->err.msg)) {
		/* fd's where oneDNN has none: another CPU, or a shape oneDNN 2.x
		 * refuses on AVX-512 */
		int own = fd_conv2d_own_winograd_cpu(p);
		ok(fd_conv2d_winograd_cpu(p), "case %d: the plan is Winograd (%s)", i, own ? "fd's" : "oneDNN's");
		if (!fd_conv2d_winograd_available())
			ok(own, "case %d: no Winograd in oneDNN here: fd's own", i);
		float *py = filled(k.ny, 7.0f), *pdx = filled(k.nx, 1.0f), *pdw = filled(k.nw, 1.0f);
		float *pdb = filled(k.s.bias ? (size_t)k.s.K : 1, 1.0f);
		ok(fd_conv2d_fwd_cpu(c, p, k.x, k.w, k.b, py) == 0 &&
		   fd_conv2d_bwd_cpu(c, p, k.x, k.w, k.dy, pdx, pdw, k.s.bias ? pdb : NULL) == 0,
		   "case %d: plan forward and backward run %s", i, c->err.msg);
		if (own && !k.relu)
			ok(memcmp(py, y, k.ny * sizeof *y) == 0 && memcmp(pdx, dxa, k.nx * sizeof *dx) == 0 &&
				   memcmp(pdw, dw2, k.nw * sizeof *pdw) == 0 &&
				   (!db2 || memcmp(pdb, db2, (size_t)k.s.K * sizeof *pdb) == 0),
			   "case %d: the plan runs fd's kernels (same bits of y, dx, dw, db)", i);
		if (!k.relu)
			close_scaled("plan y", i, py, k.y, k.ny);
		wsum_case(c, &k, i, !own, py);
		close_scaled("plan dx (adds)", i, pdx, ref1, k.nx);
		float *pg = less_ones(pdw, k.nw);
		close_scaled("plan dw (adds)", i, pg, k.dw, k.nw);
		free(pg), free(pdb);
		free(py), free(pdx), free(pdw);
		fd_conv2d_plan_free_cpu(p);
	}

	if (i == 1) { /* negative controls: a perturbed or NaN result fails the check */
		float *bad = malloc(k.ny * sizeof *bad);
		memcpy(bad, y, k.ny * sizeof *bad);
		size_t j = 0;
		for (size_t q = 0; q < k.ny; q++)
			if (fabs(k.y[q]) > fabs(k.y[j]))
				j = q;
		bad[k.ny / 2] += (float)(3 * TOL * fabs(k.y[j]));
		double w1 = share(bad, k.y, k.ny);
		memcpy(bad, y, k.ny * sizeof *bad);
		bad[k.ny - 1] = NAN;
		double w2 = share(bad, k.y, k.ny);
		ok(!(w1 <= 1) && !(w2 <= 1), "case 1: negative controls fail: one value off by 3x tol (%.2f), a NaN (%g)",
		   w1, w2);
		/* the kernels rotated by 180 degrees (backward-data's weights used
		 * in the forward) fail too */
		float *wr = malloc(k.nw * sizeof *wr);
		for (size_t q = 0; q < k.nw; q += 9)
			for (int t = 0; t < 9; t++)
				wr[q + t] = k.w[q + 8 - t];
		ok(fd_wino_fwd_cpu(cs[1], &k.s, k.x, wr, k.b, k.relu, 0, bad) == 0 && !(share(bad, k.y, k.ny) <= 1),
		   "case 1: negative control: rotated kernels fail (%.3g of tol)", share(bad, k.y, k.ny));
		free(wr);
		/* dw with its taps rotated by 180 degrees fails */
		float *dr = malloc(k.nw * sizeof *dr);
		for (size_t q = 0; q < k.nw; q += 9)
			for (int t = 0; t < 9; t++)
				dr[q + t] = gdw[q + 8 - t];
		ok(!(share(dr, k.dw, k.nw) <= 1), "case 1: negative control: dw with rotated taps fails (%.3g of tol)",
		   share(dr, k.dw, k.nw));
		free(dr);
		free(bad);
	}
	free(y), free(ya), free(dx), free(dxa), free(ref1), free(dw2), free(db2), free(gdw);
}

int main(void)
{
	struct fd_ctx c1, c2, c3;
	struct fd_ctx *cs[3] = {&c1, &c2, &c3};
	struct fd_st st;
	ctx_open(&c1, 1, 1), ctx_open(&c2, 2, 1), ctx_open(&c3, 3, 1);
	fix_open(&st, "nn_wino", "wino");
	int n = fix_cases(&st);
	ok(n >= 10, "fixture has %d Winograd cases", n);
	for (int i = 0; i < n; i++) {
		one_case(cs, &st, i);
		for (int t = 0; t < 3; t++)
			fd_ctx_step(cs[t]);
	}
	ok(checked >= 4 * n, "%d comparisons with torch checked", checked);
	if (fd_conv2d_winograd_available()) /* cases 0, 4, 6-9: K a multiple of 16, padding 1 */
		ok(nwsum >= 6, "%d cases by oneDNN's Winograd with fd's unblocking add", nwsum);
	else
		ok(nwsum == 0, "no oneDNN Winograd here: no case by its unblocking add (%d)", nwsum);

	/* the rule: 3x3, stride 1, no dilation, padding <= 2, channels last, >= 16 channels */
	struct fd_conv2d_shape r = {2, 16, 9, 9, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, FD_NHWC, FD_NHWC};
	ok(fd_wino_serves(&r), "3x3 stride-1 NHWC served");
	r.xl = FD_NCHW;
	ok(!fd_wino_serves(&r), "NCHW input not served");
	r.xl = FD_NHWC, r.sh = r.sw = 2;
	ok(!fd_wino_serves(&r), "stride 2 not served");
	r.sh = r.sw = 1, r.dh = r.dw = 2;
	ok(!fd_wino_serves(&r), "dilation 2 not served");
	r.dh = r.dw = 1, r.ph = 3;
	ok(!fd_wino_serves(&r), "padding 3 not served");
	r.ph = 1, r.groups = 2;
	ok(!fd_wino_serves(&r), "grouped not served");
	r.groups = 1, r.C = 8;
	ok(!fd_wino_serves(&r), "8 input channels not served");
	r.C = 16, r.kh = r.kw = 5;
	ok(!fd_wino_serves(&r), "5x5 not served");
	r.kh = r.kw = 3;
	struct fd_ctx *c = &c2;
	float z[16 * 9] = {0};
	ok(fd_wino_fwd_cpu(c, &(struct fd_conv2d_shape){1, 16, 4, 4, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0, FD_NHWC, FD_NHWC},
			   z, z, NULL, 0, 0, z) < 0 &&
		   strstr(c->err.msg, "winograd"),
	   "a stride-2 call refused: %s", c->err.msg);
	fd_st_close(&st);
	fd_ctx_free(&c1), fd_ctx_free(&c2), fd_ctx_free(&c3);
	return tap_done();
}
