/* t_nn_conv: conv2d (lib/nn/conv2d.h) against PyTorch fixtures
 * (tests/ref/nn_conv.py): the oneDNN plan and the double reference, forward,
 * input gradient and weight/bias gradients; ADD semantics of backward; plan
 * reuse; finite differences of the reference in float64; bad shapes refused;
 * inference with the residual added (fd_conv2d_infer_add; ReLU, GELU or no
 * post-op). */
#include "nn/conv2d.h"
#include "nn/layout.h"
#include "fixture.h"
#include "nn_ctx.h"

struct fdctx {
	const struct fd_conv2d_shape *s;
	const double *x, *w, *b, *dy;
	double *y;
	size_t ny;
};

/* L = sum(conv(x, w, b) * dy): its gradients are exactly the backward outputs. */
static double loss(void *v)
{
	struct fdctx *c = v;
	fd_conv2d_ref_forward(c->s, c->x, c->w, c->b, c->y);
	return dot64(c->y, c->dy, c->ny);
}

/* Fixture case i's shape (N, C, H, W, K, kh, kw, sh, sw, ph, pw, dh, dw,
 * groups, bias) with the layouts xl, yl. */
static struct fd_conv2d_shape case_shape(const struct fd_st *st, int i, int xl, int yl)
{
	const int32_t *v = fix_i32(st, i, "shape", 15);
	return (struct fd_conv2d_shape){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
					v[8], v[9], v[10], v[11], v[12], v[13], v[14], xl, yl};
}

static void one_case(struct fd_ctx *cx, const struct fd_st *st, int i)
{
	struct fd_conv2d_shape s = case_shape(st, i, FD_NCHW, FD_NCHW);
	void *p = NULL;
	struct fd_err e = {{0}};
	int Ho, Wo;
	char nm[96];
	if (!ok(fd_conv2d_out_size(&s, &Ho, &Wo, &e) == 0, "case %d: shape valid", i))
		return;
	size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.K * Ho * Wo;
	size_t nw = (size_t)s.K * (s.C / s.groups) * s.kh * s.kw, nb = s.bias ? s.K : 0;
	const float *x = fix_f32(st, i, "x", nx, 0), *w = fix_f32(st, i, "w", nw, 0);
	const float *b = fix_f32(st, i, "b", nb, 1), *y = fix_f32(st, i, "y", ny, 0);
	const float *dy = fix_f32(st, i, "dy", ny, 0), *dx = fix_f32(st, i, "dx", nx, 0);
	const float *dw = fix_f32(st, i, "dw", nw, 0), *db = fix_f32(st, i, "db", nb, 1);
	diag("case %d: N=%d C=%d %dx%d K=%d k=%dx%d s=%d,%d p=%d,%d d=%d,%d g=%d bias=%d -> %dx%d", i,
	     s.N, s.C, s.H, s.W, s.K, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, s.dh, s.dw, s.groups, s.bias,
	     Ho, Wo);

	/* fast path (oneDNN) */
	if (!ok(fd_conv2d_plan_cpu(cx, &s, &p) == 0, "case %d: plan made %s", i, cx->err.msg))
		return;
	float *oy = filled(ny, 7.0f), *odx = filled(nx, 1.0f), *odw = filled(nw, 1.0f);
	float *odb = filled(nb ? nb : 1, 1.0f);
	float *edx = ones_plus(dx, nx), *edw = ones_plus(dw, nw), *edb = nb ? ones_plus(db, nb) : NULL;
	ok(fd_conv2d_fwd_cpu(cx, p, x, w, b, oy) == 0, "case %d: forward runs", i);
	snprintf(nm, sizeof nm, "case %d fast y", i);
	tap_close_f32(nm, oy, y, ny, 1e-4, 1e-4);
	ok(fd_conv2d_bwd_cpu(cx, p, NULL, w, dy, odx, NULL, NULL) == 0, "case %d: backward-data runs", i);
	snprintf(nm, sizeof nm, "case %d fast ones+dx (adds)", i);
	tap_close_f32(nm, odx, edx, nx, 1e-4, 1e-4);
	ok(fd_conv2d_bwd_cpu(cx, p, x, NULL, dy, NULL, odw, nb ? odb : NULL) == 0,
	   "case %d: backward-weights runs", i);
	/* dw sums over N*Ho*Wo products: float32 accumulation error grows with it */
	snprintf(nm, sizeof nm, "case %d fast ones+dw (adds)", i);
	tap_close_f32(nm, odw, edw, nw, 3e-4, 1e-4);
	if (nb) {
		snprintf(nm, sizeof nm, "case %d fast ones+db (adds)", i);
		tap_close_f32(nm, odb, edb, nb, 1e-4, 1e-4);
	}
	/* the plan is reused: a second forward and an accumulation on top */
	float *oy2 = filled(ny, -3.0f);
	ok(fd_conv2d_fwd_cpu(cx, p, x, w, b, oy2) == 0 && memcmp(oy, oy2, ny * sizeof *oy) == 0,
	   "case %d: forward reuse gives identical y (overwrites)", i);
	float *odx2 = filled(nx, 1.0f);
	fd_conv2d_bwd_cpu(cx, p, NULL, w, dy, odx2, NULL, NULL);
	fd_conv2d_bwd_cpu(cx, p, NULL, w, dy, odx2, NULL, NULL);
	for (size_t j = 0; j < nx; j++)
		edx[j] = 1.0f + 2.0f * dx[j];
	snprintf(nm, sizeof nm, "case %d fast two backward-data calls accumulate", i);
	tap_close_f32(nm, odx2, edx, nx, 2e-4, 1e-4);
	fd_conv2d_plan_free_cpu(p);

	/* reference (double) against torch, and the fast path against it */
	double *X = to_f64(x, nx), *Wd = to_f64(w, nw), *B = nb ? to_f64(b, nb) : NULL;
	double *DY = to_f64(dy, ny), *RY = calloc(ny, sizeof *RY), *RDX = calloc(nx, sizeof *RDX);
	double *RDW = calloc(nw, sizeof *RDW), *RDB = calloc(nb ? nb : 1, sizeof *RDB);
	fd_conv2d_ref_forward(&s, X, Wd, B, RY);
	fd_conv2d_ref_backward_data(&s, DY, Wd, RDX);
	fd_conv2d_ref_backward_weights(&s, X, DY, RDW, RDB);
	float *ry = to_f32(RY, ny), *rdx = to_f32(RDX, nx), *rdw = to_f32(RDW, nw), *rdb = to_f32(RDB, nb);
	snprintf(nm, sizeof nm, "case %d ref y", i);
	tap_close_f32(nm, ry, y, ny, 1e-6, 1e-6);
	snprintf(nm, sizeof nm, "case %d ref dx", i);
	tap_close_f32(nm, rdx, dx, nx, 1e-6, 1e-6);
	snprintf(nm, sizeof nm, "case %d ref dw", i);
	tap_close_f32(nm, rdw, dw, nw, 1e-6, 1e-6);
	if (nb) {
		snprintf(nm, sizeof nm, "case %d ref db", i);
		tap_close_f32(nm, rdb, db, nb, 1e-6, 1e-6);
	}
	snprintf(nm, sizeof nm, "case %d fast y vs ref", i);
	tap_close_f32(nm, oy, ry, ny, 1e-4, 1e-4);

	/* finite differences of the reference in float64 */
	struct fdctx c = {&s, X, Wd, B, DY, calloc(ny, sizeof(double)), ny};
	snprintf(nm, sizeof nm, "case %d ref dx", i);
	fd_check(nm, X, nx, RDX, 12, loss, &c);
	snprintf(nm, sizeof nm, "case %d ref dw", i);
	fd_check(nm, Wd, nw, RDW, 12, loss, &c);
	if (nb) {
		snprintf(nm, sizeof nm, "case %d ref db", i);
		fd_check(nm, B, nb, RDB, 6, loss, &c);
	}
	if (i == 0) { /* negative control: a NaN in the gradient fails the check */
		double *G = malloc(nw * sizeof *G);
		size_t wi;
		int probed;
		memcpy(G, RDW, nw * sizeof *G);
		G[0] = NAN;
		double w = fd_check_worst(Wd, nw, G, 12, loss, &c, &wi, &probed);
		ok(!(w < 1e-6) && probed > 0, "case 0: negative control: a NaN in dw fails the finite differences (%g)", w);
		free(G);
	}
	free(c.y);
	free(oy), free(odx), free(odw), free(odb), free(edx), free(edw), free(edb), free(oy2), free(odx2);
	free(X), free(Wd), free(B), free(DY), free(RY), free(RDX), free(RDW), free(RDB);
	free(ry), free(rdx), free(rdw), free(rdb);
}

/* [N, C, HW] -> [N, HW, C] when L is NHWC (a copy either way) */
static float *in_layout(const float *v, int N, int C, int HW, enum fd_layout L)
{
	float *o = malloc((size_t)N * C * HW * sizeof *o);
	if (L == FD_NHWC)
		fd_transpose_cpu(2, N, C, HW, v, o, 0);
	else
		memcpy(o, v, (size_t)N * C * HW * sizeof *o);
	return o;
}

/* The fixture case with x (and dx) in layout xl and y (and dy) in yl:
 * the same torch values, transposed, within the NCHW tolerances. */
static int layout_case(struct fd_ctx *cx, const struct fd_st *st, int i, enum fd_layout xl, enum fd_layout yl)
{
	struct fd_conv2d_shape s = case_shape(st, i, xl, yl);
	int Ho, Wo;
	void *p = NULL;
	struct fd_err e = {{0}};
	char nm[96];
	if (fd_conv2d_out_size(&s, &Ho, &Wo, &e) < 0)
		return 0;
	size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.K * Ho * Wo;
	size_t nw = (size_t)s.K * (s.C / s.groups) * s.kh * s.kw, nb = s.bias ? s.K : 0;
	const float *w = fix_f32(st, i, "w", nw, 0), *b = fix_f32(st, i, "b", nb, 1);
	float *x = in_layout(fix_f32(st, i, "x", nx, 0), s.N, s.C, s.H * s.W, xl);
	float *y = in_layout(fix_f32(st, i, "y", ny, 0), s.N, s.K, Ho * Wo, yl);
	float *dy = in_layout(fix_f32(st, i, "dy", ny, 0), s.N, s.K, Ho * Wo, yl);
	float *dx = in_layout(fix_f32(st, i, "dx", nx, 0), s.N, s.C, s.H * s.W, xl);
	const float *dw = fix_f32(st, i, "dw", nw, 0), *db = fix_f32(st, i, "db", nb, 1);
	if (!ok(fd_conv2d_plan_cpu(cx, &s, &p) == 0, "case %d layouts %d,%d: plan made %s", i, xl, yl, cx->err.msg))
		return 0;
	float *oy = filled(ny, 7.0f), *odx = filled(nx, 1.0f), *odw = filled(nw, 1.0f);
	float *odb = filled(nb ? nb : 1, 1.0f);
	float *edx = ones_plus(dx, nx), *edw = ones_plus(dw, nw), *edb = nb ? ones_plus(db, nb) : NULL;
	ok(fd_conv2d_fwd_cpu(cx, p, x, w, b, oy) == 0 && fd_conv2d_bwd_cpu(cx, p, x, w, dy, odx, odw, nb ? odb : NULL) == 0,
	   "case %d layouts %d,%d: forward and backward run", i, xl, yl);
	snprintf(nm, sizeof nm, "case %d layouts %d,%d y", i, xl, yl);
	tap_close_f32(nm, oy, y, ny, 1e-4, 1e-4);
	snprintf(nm, sizeof nm, "case %d layouts %d,%d ones+dx", i, xl, yl);
	tap_close_f32(nm, odx, edx, nx, 1e-4, 1e-4);
	snprintf(nm, sizeof nm, "case %d layouts %d,%d ones+dw", i, xl, yl);
	tap_close_f32(nm, odw, edw, nw, 3e-4, 1e-4);
	if (nb) {
		snprintf(nm, sizeof nm, "case %d layouts %d,%d ones+db", i, xl, yl);
		tap_close_f32(nm, odb, edb, nb, 1e-4, 1e-4);
	}
	fd_conv2d_plan_free_cpu(p);
	free(x), free(y), free(dy), free(dx), free(oy), free(odx), free(odw), free(odb), free(edx), free(edw), free(edb);
	return 1;
}

/* The post-op's activation in double: relu, gelu (erf form), or none. */
static double post_ref(enum fd_conv_post post, double a)
{
	return post == FD_CONV_POST_RELU ? (a < 0 ? 0 : a)
	       : post == FD_CONV_POST_GELU ? 0.5 * a * (1 + erf(a / sqrt(2.0))) : a;
}

/* fd_conv2d_infer_add on fixture case i: act(conv(x) + sum) written into
 * sum, for x in layout xl and the context's channels_last cl (the sum and
 * output in that layout; NCHW x with cl = 1 is the stem's blocked plan),
 * against torch's conv output plus the sum (the fixture's dy, N(0, 1)) with
 * the layout cases' tolerances. Control: the result is not act(conv(x))
 * alone (the sum moved it by more than 0.1). 1 when checked. */
static int infer_add_case(struct fd_ctx *cx, const struct fd_st *st, int i, enum fd_layout xl, int cl,
			  enum fd_conv_post post)
{
	struct fd_conv2d_shape s = case_shape(st, i, FD_NCHW, FD_NCHW);
	int Ho, Wo;
	struct fd_err e = {{0}};
	char nm[96];
	if (fd_conv2d_out_size(&s, &Ho, &Wo, &e) < 0)
		return 0;
	enum fd_layout yl = cl ? FD_NHWC : FD_NCHW;
	size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.K * Ho * Wo;
	size_t nw = (size_t)s.K * (s.C / s.groups) * s.kh * s.kw;
	struct fd_conv2d_op op;
	fd_conv2d_op_init(&op, 1, 0, 1, s.groups);
	op.sh = s.sh, op.sw = s.sw, op.ph = s.ph, op.pw = s.pw, op.dh = s.dh, op.dw = s.dw;
	int64_t xs[4] = {s.N, s.C, s.H, s.W}, ws[4] = {s.K, s.C / s.groups, s.kh, s.kw}, bs[1] = {s.K};
	int64_t ys[4] = {s.N, s.K, Ho, Wo};
	float *xv = in_layout(fix_f32(st, i, "x", nx, 0), s.N, s.C, s.H * s.W, xl);
	float *yr = in_layout(fix_f32(st, i, "y", ny, 0), s.N, s.K, Ho * Wo, yl);
	float *sv = in_layout(fix_f32(st, i, "dy", ny, 0), s.N, s.K, Ho * Wo, yl);
	struct fd_tensor *x = fd_tensor_wrap(cx, FD_DEV_CPU, xv, 4, xs);
	struct fd_tensor *w = fd_tensor_wrap(cx, FD_DEV_CPU, (float *)fix_f32(st, i, "w", nw, 0), 4, ws);
	struct fd_tensor *b = s.bias ? fd_tensor_wrap(cx, FD_DEV_CPU, (float *)fix_f32(st, i, "b", s.K, 1), 1, bs) : NULL;
	struct fd_tensor *sum = fd_tensor_new(cx, FD_DEV_CPU, 4, ys);
	float *want = malloc(ny * sizeof *want);
	double moved = 0;
	for (size_t j = 0; j < ny; j++) {
		double a = (double)yr[j] + sv[j], r = post_ref(post, a), alone = post_ref(post, yr[j]);
		want[j] = (float)r;
		moved = fmax(moved, fabs(r - alone));
	}
	x->layout = xl;
	cx->channels_last = cl;
	if (sum) {
		memcpy(sum->data, sv, ny * sizeof *sv);
		sum->layout = yl;
	}
	struct fd_tensor *out = sum ? fd_conv2d_infer_add(cx, &op, x, w, b, post, sum) : NULL;
	ok(out == sum && out, "infer_add case %d x %s, channels last %d, post %d: runs, returns sum %s", i,
	   xl == FD_NHWC ? "NHWC" : "NCHW", cl, post, cx->err.msg);
	snprintf(nm, sizeof nm, "infer_add case %d x %s, channels last %d, post %d: y", i,
		 xl == FD_NHWC ? "NHWC" : "NCHW", cl, post);
	if (out)
		tap_close_f32(nm, out->data, want, ny, 1e-4, 1e-4);
	ok(moved > 0.1, "infer_add case %d control: the sum moves the output by %.3g (> 0.1)", i, moved);
	cx->channels_last = 0;
	fd_conv2d_op_free(&op);
	fd_ctx_step(cx);
	free(xv), free(yr), free(sv), free(want);
	return out != NULL;
}

/* In a bf16 context (cb): fd_conv2d_infer_add of fixture case i (x
 * channels last, ReLU or none) against the bf16 plan without the sum,
 * then + sum, then ReLU, in float: equal within float rounding (the
 * primitive adds bias, accumulator and sum in fp32, in its own order on
 * some plans; bit for bit on most). Control: the sum moved the output. 1
 * when checked. */
static int infer_add_bf16_case(struct fd_ctx *cb, const struct fd_st *st, int i, enum fd_conv_post post)
{
	struct fd_conv2d_shape s = case_shape(st, i, FD_NCHW, FD_NCHW);
	int Ho, Wo;
	struct fd_err e = {{0}};
	if (fd_conv2d_out_size(&s, &Ho, &Wo, &e) < 0)
		return 0;
	size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.K * Ho * Wo;
	size_t nw = (size_t)s.K * (s.C / s.groups) * s.kh * s.kw;
	struct fd_conv2d_op op;
	fd_conv2d_op_init(&op, 1, 0, 1, s.groups);
	op.sh = s.sh, op.sw = s.sw, op.ph = s.ph, op.pw = s.pw, op.dh = s.dh, op.dw = s.dw;
	int64_t xs[4] = {s.N, s.C, s.H, s.W}, ws[4] = {s.K, s.C / s.groups, s.kh, s.kw}, bs[1] = {s.K};
	int64_t ys[4] = {s.N, s.K, Ho, Wo};
	float *xv = in_layout(fix_f32(st, i, "x", nx, 0), s.N, s.C, s.H * s.W, FD_NHWC);
	float *sv = in_layout(fix_f32(st, i, "dy", ny, 0), s.N, s.K, Ho * Wo, FD_NHWC);
	struct fd_tensor *x = fd_tensor_wrap(cb, FD_DEV_CPU, xv, 4, xs);
	struct fd_tensor *w = fd_tensor_wrap(cb, FD_DEV_CPU, (float *)fix_f32(st, i, "w", nw, 0), 4, ws);
	struct fd_tensor *b = s.bias ? fd_tensor_wrap(cb, FD_DEV_CPU, (float *)fix_f32(st, i, "b", s.K, 1), 1, bs) : NULL;
	x->layout = FD_NHWC;
	cb->channels_last = 1;
	struct fd_tensor *sum = fd_tensor_new(cb, FD_DEV_CPU, 4, ys);
	struct fd_tensor *y = fd_conv2d_infer(cb, &op, x, w, b, FD_CONV_POST_NONE);
	int good = sum && y;
	if (good) {
		memcpy(sum->data, sv, ny * sizeof *sv);
		sum->layout = FD_NHWC;
		good = fd_conv2d_infer_add(cb, &op, x, w, b, post, sum) == sum;
	}
	size_t differ = 0, moved = 0, bad = 0;
	double worst = 0;
	for (size_t j = 0; good && j < ny; j++) {
		float a = y->data[j] + sv[j];
		a = post == FD_CONV_POST_RELU && a < 0 ? 0.0f : a;
		differ += memcmp(&a, &sum->data[j], sizeof a) != 0;
		moved += fabsf(a - y->data[j]) > 0.1f;
		/* the primitive may add bias, accumulator and sum in another
		 * float order: within a few units of float rounding */
		double d = fabs((double)a - sum->data[j]), tol = 1e-6 * (1 + fabs((double)a) + fabs((double)sv[j]));
		bad += !(d <= tol);
		worst = fmax(worst, d);
	}
	ok(good && bad == 0 && moved > 0,
	   "infer_add bf16 case %d, post %d: conv + sum%s within float rounding (%zu differ in bits, worst %.3g; the sum moved %zu of %zu) %s",
	   i, post, post == FD_CONV_POST_RELU ? " + ReLU" : "", differ, worst, moved, ny, cb->err.msg);
	cb->channels_last = 0;
	fd_conv2d_op_free(&op);
	fd_ctx_step(cb);
	free(xv), free(sv);
	return good;
}

/* fd_conv2d_infer_add refuses a sum of the wrong shape or layout, one
 * overlapping x, one needing a gradient; the message names the problem. */
/* Case i with c->winograd set, in layout l (x and y): the plan is Winograd
 * exactly when the shape allows it (fp32, ungrouped 3x3, stride 1, no
 * dilation, at least FD_CONV2D_WINO_MIN_C channels) and either oneDNN has
 * a Winograd here (2.x on AVX-512) or the layout is channels last with
 * padding <= 2 (fd's own, lib/nn/wino.h); its forward, backward-data and
 * backward-weights against torch's float64 result with the direct path's
 * tolerances. Returns 1 when the plan was Winograd. */
static int wino_case(struct fd_ctx *cx, const struct fd_st *st, int i, enum fd_layout l)
{
	struct fd_conv2d_shape s = case_shape(st, i, l, l);
	void *p = NULL;
	struct fd_err e = {{0}};
	int Ho, Wo;
	char nm[96];
	fd_conv2d_out_size(&s, &Ho, &Wo, &e);
	int want = (fd_conv2d_winograd_available() || (l == FD_NHWC && s.ph <= 2 && s.pw <= 2)) && s.groups == 1 &&
		   s.kh == 3 && s.kw == 3 && s.sh == 1 && s.sw == 1 && s.dh == 1 && s.dw == 1 &&
		   s.C >= FD_CONV2D_WINO_MIN_C && s.K >= FD_CONV2D_WINO_MIN_C;
	cx->winograd = 1;
	int made = fd_conv2d_plan_cpu(cx, &s, &p) == 0;
	cx->winograd = 0;
	if (!ok(made, "case %d winograd: plan made %s", i, cx->err.msg))
		return 0;
	int wino = fd_conv2d_winograd_cpu(p);
	ok(wino == want, "case %d winograd: plan is %s (want %s)", i, wino ? "Winograd" : "direct",
	   want ? "Winograd" : "direct");
	if (wino) {
		size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.K * Ho * Wo;
		size_t nw = (size_t)s.K * (s.C / s.groups) * s.kh * s.kw, nb = s.bias ? s.K : 0;
		const float *w = fix_f32(st, i, "w", nw, 0), *b = fix_f32(st, i, "b", nb, 1);
		float *x = in_layout(fix_f32(st, i, "x", nx, 0), s.N, s.C, s.H * s.W, l);
		float *y = in_layout(fix_f32(st, i, "y", ny, 0), s.N, s.K, Ho * Wo, l);
		float *dy = in_layout(fix_f32(st, i, "dy", ny, 0), s.N, s.K, Ho * Wo, l);
		float *dx = in_layout(fix_f32(st, i, "dx", nx, 0), s.N, s.C, s.H * s.W, l);
		const float *dw = fix_f32(st, i, "dw", nw, 0), *db = fix_f32(st, i, "db", nb, 1);
		float *oy = filled(ny, 7.0f), *odx = calloc(nx, sizeof *odx), *odw = calloc(nw, sizeof *odw);
		float *odb = calloc(nb ? nb : 1, sizeof *odb);
		ok(fd_conv2d_fwd_cpu(cx, p, x, w, b, oy) == 0 &&
		   fd_conv2d_bwd_cpu(cx, p, x, w, dy, odx, odw, nb ? odb : NULL) == 0,
		   "case %d winograd: forward and backward run %s", i, cx->err.msg);
		snprintf(nm, sizeof nm, "case %d winograd (layout %d) y", i, l);
		tap_close_f32(nm, oy, y, ny, 1e-4, 1e-4);
		snprintf(nm, sizeof nm, "case %d winograd (layout %d) dx", i, l);
		tap_close_f32(nm, odx, dx, nx, 1e-4, 1e-4);
		snprintf(nm, sizeof nm, "case %d winograd (layout %d) dw", i, l);
		tap_close_f32(nm, odw, dw, nw, 3e-4, 1e-4);
		if (nb) {
			snprintf(nm, sizeof nm, "case %d winograd (layout %d) db", i, l);
			tap_close_f32(nm, odb, db, nb, 1e-4, 1e-4);
		}
		free(oy), free(odx), free(odw), free(odb), free(x), free(y), free(dy), free(dx);
	}
	fd_conv2d_plan_free_cpu(p);
	return wino;
}

static void infer_add_refusals(struct fd_ctx *cx)
{
	struct fd_conv2d_op op;
	fd_conv2d_op_init(&op, 1, 1, 1, 1);
	int64_t xs[4] = {1, 4, 5, 5}, ws[4] = {4, 4, 3, 3}, ss[4] = {1, 4, 5, 4};
	struct fd_tensor *x = fd_tensor_zeros(cx, FD_DEV_CPU, 4, xs), *w = fd_tensor_zeros(cx, FD_DEV_CPU, 4, ws);
	struct fd_tensor *bad = fd_tensor_zeros(cx, FD_DEV_CPU, 4, ss), *sum = fd_tensor_zeros(cx, FD_DEV_CPU, 4, xs);
	ok(!fd_conv2d_infer_add(cx, &op, x, w, NULL, FD_CONV_POST_RELU, bad) && strstr(cx->err.msg, "not the output"),
	   "infer_add: sum [1,4,5,4] for output [1,4,5,5] refused: %s", cx->err.msg);
	fd_ctx_step(cx);
	x = fd_tensor_zeros(cx, FD_DEV_CPU, 4, xs), w = fd_tensor_zeros(cx, FD_DEV_CPU, 4, ws);
	sum = fd_tensor_zeros(cx, FD_DEV_CPU, 4, xs);
	sum->layout = FD_NHWC;
	ok(!fd_conv2d_infer_add(cx, &op, x, w, NULL, FD_CONV_POST_RELU, sum) && strstr(cx->err.msg, "(NCHW)"),
	   "infer_add: NHWC sum for an NCHW output refused: %s", cx->err.msg);
	fd_ctx_step(cx);
	x = fd_tensor_zeros(cx, FD_DEV_CPU, 4, xs), w = fd_tensor_zeros(cx, FD_DEV_CPU, 4, ws);
	ok(!fd_conv2d_infer_add(cx, &op, x, w, NULL, FD_CONV_POST_RELU, x) && strstr(cx->err.msg, "overlaps"),
	   "infer_add: sum = x refused: %s", cx->err.msg);
	fd_ctx_step(cx);
	x = fd_tensor_zeros(cx, FD_DEV_CPU, 4, xs), w = fd_tensor_zeros(cx, FD_DEV_CPU, 4, ws);
	sum = fd_tensor_zeros(cx, FD_DEV_CPU, 4, xs);
	fd_requires_grad(sum);
	ok(!fd_conv2d_infer_add(cx, &op, x, w, NULL, FD_CONV_POST_RELU, sum) && strstr(cx->err.msg, "records no gradient"),
	   "infer_add: a sum needing a gradient refused: %s", cx->err.msg);
	fd_ctx_step(cx);
	fd_conv2d_op_free(&op);
}

int main(void)
{
	char nm[96];
	struct fd_ctx c;
	struct fd_err e;
	struct fd_st st;
	ctx_open(&c, 2, 1);
	fix_open(&st, "nn_conv", "conv");
	int n = fix_cases(&st);
	ok(n >= 12, "fixture has %d conv cases", n);
	for (int i = 0; i < n; i++)
		one_case(&c, &st, i);
	/* channels last (doc/nn-kernels.md "Layouts"): every case, each mix */
	int nl = 0;
	for (int i = 0; i < n; i++) {
		nl += layout_case(&c, &st, i, FD_NCHW, FD_NHWC);
		nl += layout_case(&c, &st, i, FD_NHWC, FD_NHWC);
		nl += layout_case(&c, &st, i, FD_NHWC, FD_NCHW);
	}
	ok(nl == 3 * n, "%d of %d layout cases checked", nl, 3 * n);
	/* Winograd (c->winograd; doc/nn-kernels.md "Winograd") */
	int nw = 0, nwl = 0;
	for (int i = 0; i < n; i++)
		nw += wino_case(&c, &st, i, FD_NCHW), nwl += wino_case(&c, &st, i, FD_NHWC);
	ok(nw >= (fd_conv2d_winograd_available() ? 1 : 0), "%d NCHW Winograd plans checked against torch", nw);
	ok(nwl >= 1, "%d channels-last Winograd plans (%s) checked against torch", nwl,
	   fd_conv2d_winograd_available() ? "oneDNN's" : "fd's own");
	/* inference with the residual added (fd_conv2d_infer_add) */
	int na = 0;
	for (int i = 0; i < n; i++) {
		na += infer_add_case(&c, &st, i, FD_NHWC, 1, FD_CONV_POST_RELU);
		na += infer_add_case(&c, &st, i, FD_NCHW, 1, FD_CONV_POST_RELU);
		na += infer_add_case(&c, &st, i, FD_NCHW, 0, FD_CONV_POST_NONE);
		na += infer_add_case(&c, &st, i, FD_NHWC, 1, FD_CONV_POST_GELU);
	}
	ok(na == 4 * n, "%d of %d infer_add cases checked", na, 4 * n);
	infer_add_refusals(&c);
	/* the same in a bf16 context (ResNet's bf16 inference) */
	{
		struct fd_ctx cb;
		struct fd_err e = {{0}};
		ctx_open(&cb, 2, 1);
		if (fd_ctx_set_precision(&cb, FD_PREC_BF16, &e) == 0) {
			int nb = 0;
			for (int i = 0; i < n; i++) {
				nb += infer_add_bf16_case(&cb, &st, i, FD_CONV_POST_RELU);
				nb += infer_add_bf16_case(&cb, &st, i, FD_CONV_POST_NONE);
			}
			ok(nb == 2 * n, "%d of %d bf16 infer_add cases checked", nb, 2 * n);
		} else {
			diag("no bf16 on this CPU (%s): bf16 infer_add not checked", e.msg);
		}
		fd_ctx_free(&cb);
	}

	/* two live plans share the context's buffers: interleaved calls stay right */
	{
		int ci[2] = {10, 3};
		void *pp[2] = {NULL, NULL};
		struct fd_conv2d_shape ss[2];
		int Ho[2], Wo[2];
		int made = 1;
		for (int k = 0; k < 2; k++) {
			const int32_t *v = fix_i32(&st, ci[k], "shape", 15);
			ss[k] = (struct fd_conv2d_shape){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
							 v[8], v[9], v[10], v[11], v[12], v[13], v[14], FD_NCHW, FD_NCHW};
			made &= fd_conv2d_out_size(&ss[k], &Ho[k], &Wo[k], &e) == 0 &&
				fd_conv2d_plan_cpu(&c, &ss[k], &pp[k]) == 0;
		}
		if (ok(made, "two plans alive at once")) {
			for (int k = 0; k < 2; k++) {
				void *q = pp[k], *other = pp[1 - k];
				const struct fd_conv2d_shape *s = &ss[k];
				size_t nx = (size_t)s->N * s->C * s->H * s->W, ny = (size_t)s->N * s->K * Ho[k] * Wo[k];
				size_t nw = (size_t)s->K * (s->C / s->groups) * s->kh * s->kw;
				const float *x = fix_f32(&st, ci[k], "x", nx, 0), *w = fix_f32(&st, ci[k], "w", nw, 0);
				const float *b = fix_f32(&st, ci[k], "b", s->K, 0), *dy = fix_f32(&st, ci[k], "dy", ny, 0);
				const struct fd_conv2d_shape *o = &ss[1 - k];
				size_t onx = (size_t)o->N * o->C * o->H * o->W, ony = (size_t)o->N * o->K * Ho[1 - k] * Wo[1 - k];
				size_t onw = (size_t)o->K * (o->C / o->groups) * o->kh * o->kw;
				float *y = calloc(ny, 4), *dx = calloc(nx, 4), *oy = calloc(ony, 4), *odx = calloc(onx, 4);
				float *odw = calloc(onw, 4), *odb = calloc(o->K, 4);
				fd_conv2d_fwd_cpu(&c, q, x, w, b, y);
				/* the other plan runs in between with its own inputs */
				fd_conv2d_fwd_cpu(&c, other, fix_f32(&st, ci[1 - k], "x", onx, 0),
						  fix_f32(&st, ci[1 - k], "w", onw, 0), fix_f32(&st, ci[1 - k], "b", o->K, 0),
						  oy);
				fd_conv2d_bwd_cpu(&c, other, fix_f32(&st, ci[1 - k], "x", onx, 0), NULL,
						  fix_f32(&st, ci[1 - k], "dy", ony, 0), NULL, odw, odb);
				fd_conv2d_bwd_cpu(&c, q, NULL, w, dy, dx, NULL, NULL);
				snprintf(nm, sizeof nm, "case %d interleaved with case %d: y", ci[k], ci[1 - k]);
				tap_close_f32(nm, y, fix_f32(&st, ci[k], "y", ny, 0), ny, 1e-4, 1e-4);
				snprintf(nm, sizeof nm, "case %d interleaved with case %d: dx", ci[k], ci[1 - k]);
				tap_close_f32(nm, dx, fix_f32(&st, ci[k], "dx", nx, 0), nx, 1e-4, 1e-4);
				snprintf(nm, sizeof nm, "case %d interleaved: dw", ci[1 - k]);
				tap_close_f32(nm, odw, fix_f32(&st, ci[1 - k], "dw", onw, 0), onw, 3e-4, 1e-4);
				free(y), free(dx), free(oy), free(odx), free(odw), free(odb);
			}
		}
		fd_conv2d_plan_free_cpu(pp[0]);
		fd_conv2d_plan_free_cpu(pp[1]);
	}

	/* bad shapes are refused with the shape named, and free is safe after */
	void *p = NULL;
	fd_ctx_step(&c);
	struct fd_conv2d_shape bad = {1, 6, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4, 0, FD_NCHW, FD_NCHW};
	ok(fd_conv2d_plan_cpu(&c, &bad, &p) < 0 && !p && strstr(c.err.msg, "groups must divide"),
	   "groups not dividing C refused: %s", c.err.msg);
	fd_conv2d_plan_free_cpu(p);
	fd_ctx_step(&c);
	struct fd_conv2d_shape big = {1, 1, 2, 2, 1, 5, 5, 1, 1, 0, 0, 1, 1, 1, 0, FD_NCHW, FD_NCHW};
	ok(fd_conv2d_plan_cpu(&c, &big, &p) < 0 && !p && strstr(c.err.msg, "kernel larger"),
	   "kernel larger than input refused: %s", c.err.msg);
	fd_conv2d_plan_free_cpu(p);
	fd_st_close(&st);
	fd_ctx_free(&c);
	return tap_done();
}
