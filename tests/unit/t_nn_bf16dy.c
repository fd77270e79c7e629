/* t_nn_bf16dy: between a convolution and the BN after it in bf16
 * training (doc/nn-kernels.md "bf16 convolution outputs", "bf16 gradient
 * hand-off").
 * Convolution outputs in bf16 (c->bf16_y, FD_T_BF16), as autocast's:
 *   conv2d on every channels-last case of the nn_bf16 conv fixture: where
 *   the plan has a bf16-output forward y is the fp32 op's y rounded, bit
 *   for bit, and torch's float64 y (on bf16-rounded inputs) rounded to
 *   bf16 but for values within one bf16 unit at rounding boundaries; dx,
 *   dw, db unchanged;
 *   BN + activation (train mode; fused, NOACT, pooled) on a bf16 input: y,
 *   dx, dgamma, dbeta and the running statistics bit for bit those of the
 *   same op on the widened fp32 input (the torch-checked kernels, t_nn_bnact
 *   and t_nn_bnpool); in eval mode refused;
 *   whole models (ResNet-18, MobileNetV3-Small, ConvNeXt mini whose block
 *   Linears write bf16 for GELU and the layer scale: t_nn_bf16in), with
 *   and without (m->no_bf16_y): outputs counted, logits and gradients
 *   within bf16's rounding, and not the same bits (control).
 * The gradient hand-off: the BN after a convolution writes the
 * convolution's output gradient in bf16 (c->bf16_dy, FD_T_GRAD_BF16) and
 * the convolution's backward reads it as it is.
 *   conv2d -> BN + activation on every channels-last case of the nn_bf16
 *   conv fixture, with and without the hand-off: where the plan's
 *   backward reads the bf16 dy itself (bit 4 of fd_conv2d_takes_bf16_cpu)
 *   dx, dw of the convolution and dgamma, dbeta of BN are the same bits
 *   (the convolution rounds dy to those bf16 values anyway), and db too
 *   where oneDNN's bf16 backward-weights sums it; where a matmul's column
 *   sums make db, db is the float sum, row by row, of the fp32 dy (kept
 *   from the run without) rounded to bf16, bit for bit, and some values
 *   differ from the fp32 dy's sums (the control); where it widens dy
 *   first (fp32 depthwise plans, an fp32 backward-weights) they are the
 *   same bits where every pass reads bf16 dy anyway, else within bf16's
 *   rounding of the fp32 dy's, and some differ (the control that the
 *   rounded gradient is what they read);
 *   conv2d (1x1, bias) -> GELU in place (ConvNeXt's pw1 -> GELU) on a
 *   7x7 map (a matmul's bias sums) and a 28x28 one (oneDNN's bf16
 *   backward-weights): GELU marks its input, the convolution reads the
 *   bf16 dy as it is, the gradients as above;
 *   BN's own gradients are always the same bits;
 *   a conv output read by a second op after BN: fd_backward makes its
 *   gradient in floats instead (the same bits as without); BN on a tensor
 *   not made by the convolution just recorded, or in an fp32 context:
 *   nothing marked;
 *   ConvNeXt mini, two bf16 steps with and without (m->no_bf16_dy): 6 GELU
 *   marks, the logits and every gradient but pw1's bit for bit, pw1's
 *   within bf16's rounding;
 *   whole models (ResNet-18, ResNet-50, SimpleCNN with its pooled BN,
 *   MobileNetV3-Small, EfficientNet-B0): two bf16 training steps with and
 *   without (m->no_bf16_dy): logits and parameter gradients bit for bit on
 *   a CPU with AMX, the BNs marked counted (every convolution of a ResNet);
 *   without AMX, the first convolution's gradient (fd's own kernel,
 *   lib/nn/bfw.h, rounding an fp32 dy as the hand-off does) and the logits
 *   bit for bit. */
#include "models/fd_model.h"
#include "nn/act.h"
#include "nn/batchnorm2d.h"
#include "nn/pool2d.h"
#include "nn/binary.h"
#include "nn/conv2d.h"
#include "nn/fd_dnnl.h"
#include "nn/loss.h"
#include "fixture.h"
#include "fcmp.h"
#include "nn_ctx.h"
#include "model_ab.h"

/* [N, C, HW] -> [N, HW, C] */
static float *to_nhwc(const float *v, int N, int C, int HW)
{
	float *o = malloc((size_t)N * C * HW * sizeof *o);
	for (int n = 0; n < N; n++)
		for (int c = 0; c < C; c++)
			for (int p = 0; p < HW; p++)
				o[((size_t)n * HW + p) * C + c] = v[((size_t)n * C + c) * HW + p];
	return o;
}

struct res {
	float *dx, *dw, *db, *dg, *dbeta;
	float *dy; /* without the hand-off: the convolution's output gradient (fp32, ndy values) */
	size_t ndy;
	float *y;  /* CHAIN_POOL22: the pooled output (ny values), widened when bf16 (ybf) */
	size_t ny;
	int ybf;
	int takes;      /* fd_conv2d_takes_bf16_cpu after the backward */
	int rounds;     /* every pass multiplies and sums a bf16 dy even without the
			 * hand-off: a bf16 plan whose backward-weights is oneDNN's bf16
			 * primitive (its db sums the bf16 dy it reads) */
	uint64_t marks; /* c->bf16_dys added */
};

static void res_free(struct res *r)
{
	free(r->dx), free(r->dw), free(r->db), free(r->dg), free(r->dbeta), free(r->dy), free(r->y);
}

/* act for chain_run: GELU in place (fd_act_, ConvNeXt's pw1 -> GELU) with
 * the convolution's output and GELU's in bf16, instead of BN */
#define CHAIN_GELU 100
/* act for chain_run: BN + ReLU + 2x2/2 max pool (SimpleCNN's) on the
 * convolution's bf16 output, y in bf16 (c->bf16_out) on the side with the
 * hand-off, fp32 without */
#define CHAIN_POOL22 101

/* conv2d (channels last) -> BN + act (c->bf16_dy = on) [-> + the conv
 * output again, when tee] and the backward from a fixed dy, on c. 0, or -1
 * with c->err. */
static int chain_run(struct fd_ctx *c, const struct fd_conv2d_shape *s, const float *x, const float *w,
		     const float *b, int act, int on, int tee, struct res *r)
{
	int64_t sx[4] = {s->N, s->C, s->H, s->W}, sw[4] = {s->K, s->C / s->groups, s->kh, s->kw}, sk[1] = {s->K};
	int64_t s1[1] = {1};
	size_t nx = (size_t)s->N * s->C * s->H * s->W, nw = (size_t)sw[0] * sw[1] * sw[2] * sw[3];
	struct fd_conv2d_op op;
	fd_conv2d_op_init(&op, s->sh, s->ph, s->dh, s->groups);
	op.sw = s->sw, op.pw = s->pw, op.dw = s->dw;
	fd_ctx_step(c);
	c->channels_last = 1;
	int rc = -1;
	struct fd_tensor *xt = fd_tensor_new(c, FD_DEV_CPU, 4, sx), *wt = fd_tensor_new(c, FD_DEV_CPU, 4, sw);
	struct fd_tensor *bt = s->bias ? fd_tensor_new(c, FD_DEV_CPU, 1, sk) : NULL;
	struct fd_tensor *g = fd_tensor_new(c, FD_DEV_CPU, 1, sk), *be = fd_tensor_new(c, FD_DEV_CPU, 1, sk);
	struct fd_tensor *rm = fd_tensor_new(c, FD_DEV_CPU, 1, sk), *rv = fd_tensor_new(c, FD_DEV_CPU, 1, sk);
	struct fd_tensor *nbt = fd_tensor_new(c, FD_DEV_CPU, 1, s1);
	if (!xt || !wt || (s->bias && !bt) || !g || !be || !rm || !rv || !nbt)
		goto out;
	xt->layout = FD_NHWC;
	memcpy(xt->data, x, nx * sizeof *x);
	memcpy(wt->data, w, nw * sizeof *w);
	if (bt)
		memcpy(bt->data, b, (size_t)s->K * sizeof *b);
	for (int k = 0; k < s->K; k++) {
		g->data[k] = 0.75f + 0.5f * (float)k / (float)s->K;
		be->data[k] = 0.1f * (float)(k % 5) - 0.2f;
		rm->data[k] = 0, rv->data[k] = 1;
	}
	nbt->data[0] = 0;
	fd_requires_grad(xt), fd_requires_grad(wt), fd_requires_grad(g), fd_requires_grad(be);
	if (bt)
		fd_requires_grad(bt);
	/* GELU's hand-off takes a bf16 x (pw1's under c->bf16_y); the 2x2 pool's
	 * runs read one on both sides */
	c->bf16_y = act == CHAIN_GELU || act == CHAIN_POOL22;
	struct fd_tensor *y = fd_conv2d(c, &op, xt, wt, bt);
	c->bf16_y = 0;
	if (y && !on) /* the convolution's fp32 dy, for direct_check's bias sums */
		y->flags |= FD_T_RETAIN_GRAD;
	uint64_t m0 = c->bf16_dys;
	c->bf16_dy = on;
	c->bf16_out = act == CHAIN_GELU || (act == CHAIN_POOL22 && on);
	struct fd_tensor *z = act == CHAIN_GELU	  ? fd_act_(c, FD_ACT_GELU, y)
			      : act == CHAIN_POOL22 ? fd_batchnorm2d_act_maxpool(c, y, g, be, rm, rv, nbt, 0.1, 1e-5,
										    FD_ACT_RELU, 2, 2, 0)
						    : fd_batchnorm2d_act(c, y, g, be, rm, rv, nbt, 0.1, 1e-5, act);
	if (z && act == CHAIN_POOL22) { /* y, widened where it is bf16 */
		r->ny = (size_t)z->numel;
		r->y = malloc(r->ny * sizeof *r->y);
		if (z->flags & FD_T_BF16)
			fd_dnnl_from_bf16(1, (const uint16_t *)z->data, r->y, r->ny);
		else
			memcpy(r->y, z->data, r->ny * sizeof *r->y);
		r->ybf = (z->flags & FD_T_BF16) != 0;
	}
	c->bf16_out = 0;
	c->bf16_dy = 0;
	r->marks = c->bf16_dys - m0;
	if (tee)
		z = fd_add(c, z, y);
	if (!z)
		goto out;
	float *dz = malloc((size_t)z->numel * sizeof *dz);
	for (int64_t i = 0; i < z->numel; i++)
		dz[i] = (float)((double)((i * 2654435761u) % 2001) / 1000.0 - 1.0);
	rc = fd_backward(c, z, dz);
	free(dz);
	if (rc < 0)
		goto out;
	r->dx = fdup(xt->grad, nx), r->dw = fdup(wt->grad, nw);
	r->db = bt ? fdup(bt->grad, (size_t)s->K) : NULL;
	if (!on && y->grad && !(y->flags & FD_T_GRAD_BF16))
		r->dy = fdup(y->grad, (size_t)y->numel), r->ndy = (size_t)y->numel;
	if (act != CHAIN_GELU)
		r->dg = fdup(g->grad, (size_t)s->K), r->dbeta = fdup(be->grad, (size_t)s->K);
	void *pl = op.plans[0].plan;
	r->takes = fd_conv2d_takes_bf16_cpu(pl);
	r->rounds = fd_conv2d_bf16_cpu(pl) && fd_conv2d_bf16_weights_cpu(pl) && !(fd_conv2d_bf16_mm_cpu(pl) & 2);
out:
	c->channels_last = 0;
	fd_conv2d_op_free(&op);
	return rc;
}

/* the largest |a[k]| of n floats (NaN when one is) */
static double amax(const float *a, size_t n)
{
	double m = 0;
	for (size_t k = 0; k < n; k++)
		m = a[k] != a[k] ? NAN : fabs(a[k]) > m ? fabs(a[k]) : m;
	return m;
}

static float widen1(uint16_t b)
{
	float f;
	fd_dnnl_from_bf16(1, &b, &f, 1);
	return f;
}

static int direct, widened, marked, bias_sums;

/* A backward that read the bf16 dy as it is against the same without the
 * hand-off: dx and dw the same bits (the passes rounded dy to those values
 * anyway); db too where both summed the bf16 dy (none, or oneDNN's bf16
 * backward-weights), else (a matmul's column sums, of the fp32 dy without
 * the hand-off) within bf16's rounding and not the same (the control) */
static void direct_check(int i, const struct fd_conv2d_shape *s, const struct res *on, const struct res *off,
			 size_t nx, size_t nw, size_t nb)
{
	int dbs = !s->bias || on->rounds;
	ok(same(on->dx, off->dx, nx) && same(on->dw, off->dw, nw) && (!dbs || same(on->db, off->db, nb)),
	   "case %d: the backward reads the bf16 dy as it is: dx, dw%s the same bits", i, dbs ? ", db" : "");
	if (dbs)
		return;
	bias_sums++;
	/* the hand-off's dy is the fp32 dy rounded (BN's and GELU's dx
	 * rounded in registers), summed as floats row by row (col_sums_b) */
	size_t K = (size_t)s->K, P = off->ndy / (K ? K : 1), bad = 0;
	float *want = calloc(K, sizeof *want);
	uint16_t *r = malloc((off->ndy ? off->ndy : 1) * sizeof *r);
	if (off->dy)
		fd_dnnl_to_bf16(1, off->dy, r, off->ndy);
	for (size_t k = 0; k < K && off->dy; k++) {
		float acc = 0.0f;
		for (size_t p = 0; p < P; p++)
			acc += widen1(r[p * K + k]);
		want[k] = 0.0f + acc;
		bad += memcmp(&want[k], &on->db[k], sizeof want[k]) != 0;
	}
	ok(off->dy && P > 0 && bad == 0 && nb == K,
	   "case %d: db = the column sums of the fp32 dy rounded to bf16, bit for bit (%zu of %zu off, %zu rows)", i,
	   bad, K, P);
	ok(ndiff(on->db, off->db, nb) > 0, "case %d: control: %zu of %zu db values differ from the fp32 dy's sums", i,
	   ndiff(on->db, off->db, nb), nb);
	free(want), free(r);
}

/* ConvNeXt's pw1 -> GELU: a 1x1 with a bias, N x H x W positions, C -> K;
 * GELU writes its dx in bf16 under the hand-off (one mark), the
 * convolution reads it as it is (bit 4), direct_check's gradients.
 * mm_weights: whether the shape's backward-weights is expected to be a
 * matmul (small maps; doc/nn-kernels.md "bf16 without AMX") */
static void gelu_chain_case(struct fd_ctx *cb, int N, int H, int W, int C, int K)
{
	struct fd_conv2d_shape s = {N, C, H, W, K, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, FD_NHWC, FD_NHWC};
	size_t nx = (size_t)N * C * H * W, nw = (size_t)K * C, nb = (size_t)K;
	float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *b = malloc(nb * sizeof *b);
	for (size_t i = 0; i < nx; i++)
		x[i] = (float)((double)((i * 7919) % 1013) / 506.0 - 1.0);
	for (size_t i = 0; i < nw; i++)
		w[i] = (float)((double)((i * 104729) % 997) / 997.0 - 0.5) * 0.3f;
	for (size_t i = 0; i < nb; i++)
		b[i] = 0.05f * (float)(i % 7) - 0.15f;
	struct res off = {0}, on = {0};
	int id = 1000 + H;
	if (ok(chain_run(cb, &s, x, w, b, CHAIN_GELU, 0, 0, &off) == 0 &&
		   chain_run(cb, &s, x, w, b, CHAIN_GELU, 1, 0, &on) == 0,
	       "gelu case %d: conv2d (bias) -> GELU with and without the gradient hand-off %s", id, cb->err.msg)) {
		ok(off.marks == 0 && on.marks == 1 && (on.takes & 4),
		   "gelu case %d: GELU's input marked (%llu; 0 without), the convolution reads the bf16 dy as it is "
		   "(%d)", id, (unsigned long long)on.marks, on.takes);
		if (on.marks == 1 && (on.takes & 4))
			direct_check(id, &s, &on, &off, nx, nw, nb);
	}
	res_free(&off), res_free(&on);
	free(x), free(w), free(b);
}

static void chain_case(struct fd_ctx *cb, const struct fd_st *st, int i)
{
	static const int acts[3] = {FD_ACT_RELU, -1, FD_ACT_HARDSWISH};
	const int32_t *v = fix_i32(st, i, "shape", 15);
	struct fd_conv2d_shape s = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
				    v[8], v[9], v[10], v[11], v[12], v[13], v[14], FD_NHWC, FD_NHWC};
	struct fd_err e = {{0}};
	int Ho, Wo, act = acts[i % 3];
	if (s.dh != 1 || s.dw != 1 || fd_conv2d_out_size(&s, &Ho, &Wo, &e) != 0)
		return;
	size_t nx = (size_t)s.N * s.C * s.H * s.W, nw = (size_t)s.K * (s.C / s.groups) * s.kh * s.kw;
	size_t nb = s.bias ? (size_t)s.K : 0, nk = (size_t)s.K;
	float *x = to_nhwc(fix_f32(st, i, "x", (long)nx, 0), s.N, s.C, s.H * s.W);
	const float *w = fix_f32(st, i, "w", (long)nw, 0), *b = s.bias ? fix_f32(st, i, "b", s.K, 0) : NULL;
	struct res off = {0}, on = {0};
	if (!ok(chain_run(cb, &s, x, w, b, act, 0, 0, &off) == 0 && chain_run(cb, &s, x, w, b, act, 1, 0, &on) == 0,
		"case %d: conv2d -> BN (act %d) with and without the gradient hand-off %s", i, act, cb->err.msg))
		goto done;
	int rows = (int64_t)s.N * Ho * Wo >= 2 && s.K > 1;
	ok(off.marks == 0 && on.marks == (uint64_t)rows, "case %d: %llu marked (%d expected; 0 without)", i,
	   (unsigned long long)on.marks, rows);
	marked += (int)on.marks;
	ok(same(on.dg, off.dg, nk) && same(on.dbeta, off.dbeta, nk), "case %d: BN's dgamma, dbeta the same bits", i);
	if (!on.marks)
		goto done;
	if (on.takes & 4) {
		direct++;
		direct_check(i, &s, &on, &off, nx, nw, nb);
	} else if (on.rounds) {
		widened++;
		ok(same(on.dx, off.dx, nx) && same(on.dw, off.dw, nw) && same(on.db, off.db, nb),
		   "case %d: dy widened (bias), every pass bf16: dx, dw, db the same bits", i);
	} else {
		widened++;
		char nm[128];
		snprintf(nm, sizeof nm, "case %d: dy widened (%s): dx within bf16 rounding", i,
			 s.bias ? "bias" : "fp32 plan");
		/* each gradient value sums many products of dy; rounding dy
		 * moves each by at most 2^-9 of itself, so a sum by a share of
		 * the sum of its terms' magnitudes: relative to the tensor's
		 * largest value, not to each value (a cancelling sum of an
		 * fp32 backward-weights, 2x28x28 pixels: 0.046 off a 0.177,
		 * on a CPU without AMX) */
		tap_close_f32(nm, on.dx, off.dx, nx, 1e-2 * amax(off.dx, nx), 1e-2);
		snprintf(nm, sizeof nm, "case %d: dy widened: dw within bf16 rounding", i);
		tap_close_f32(nm, on.dw, off.dw, nw, 1e-2 * amax(off.dw, nw), 1e-2);
		size_t d = ndiff(on.dx, off.dx, nx) + ndiff(on.dw, off.dw, nw) + ndiff(on.db, off.db, nb);
		ok(d > 0, "case %d: control: %zu gradient values differ from the fp32 dy's (the rounded dy was read)",
		   i, d);
	}
done:
	res_free(&off), res_free(&on);
	free(x);
}

/* The conv output also read after BN (an add): its gradient is made in
 * floats by the add's backward, and BN adds into it */
static void tee_case(struct fd_ctx *cb)
{
	struct fd_conv2d_shape s = {4, 16, 12, 12, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, FD_NHWC, FD_NHWC};
	size_t nx = (size_t)4 * 16 * 144, nw = (size_t)32 * 16 * 9;
	float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w);
	for (size_t i = 0; i < nx; i++)
		x[i] = (float)((double)((i * 40503u) % 997) / 498.5 - 1.0);
	for (size_t i = 0; i < nw; i++)
		w[i] = (float)((double)((i * 69069u) % 991) / 4955.0 - 0.1);
	struct res off = {0}, on = {0};
	if (ok(chain_run(cb, &s, x, w, NULL, FD_ACT_RELU, 0, 1, &off) == 0 &&
	       chain_run(cb, &s, x, w, NULL, FD_ACT_RELU, 1, 1, &on) == 0,
	       "tee: conv2d -> BN -> + conv output, with and without %s", cb->err.msg))
		ok(on.marks == 1 && same(on.dx, off.dx, nx) && same(on.dw, off.dw, nw) && same(on.dg, off.dg, 32) &&
		   same(on.dbeta, off.dbeta, 32),
		   "tee: marked, then made in floats by the add's backward: every gradient the same bits");
	res_free(&off), res_free(&on);
	/* BN on a leaf (no conv recorded before it): nothing marked */
	fd_ctx_step(cb);
	int64_t sh[4] = {4, 16, 6, 6}, sk[1] = {16}, s1[1] = {1};
	struct fd_tensor *t = fd_tensor_new(cb, FD_DEV_CPU, 4, sh), *g = fd_tensor_new(cb, FD_DEV_CPU, 1, sk);
	struct fd_tensor *be = fd_tensor_new(cb, FD_DEV_CPU, 1, sk), *rm = fd_tensor_new(cb, FD_DEV_CPU, 1, sk);
	struct fd_tensor *rv = fd_tensor_new(cb, FD_DEV_CPU, 1, sk), *nbt = fd_tensor_new(cb, FD_DEV_CPU, 1, s1);
	t->layout = FD_NHWC;
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = (float)(i % 13) / 13.0f;
	for (int k = 0; k < 16; k++)
		g->data[k] = 1, be->data[k] = rm->data[k] = 0, rv->data[k] = 1;
	nbt->data[0] = 0;
	fd_requires_grad(t), fd_requires_grad(g);
	uint64_t m0 = cb->bf16_dys;
	cb->bf16_dy = 1;
	struct fd_tensor *z = fd_batchnorm2d_act(cb, t, g, be, rm, rv, nbt, 0.1, 1e-5, FD_ACT_RELU);
	cb->bf16_dy = 0;
	ok(z && cb->bf16_dys == m0 && !(t->flags & FD_T_GRAD_BF16), "BN on a leaf under bf16_dy: nothing marked");
	free(x), free(w);
}

static int ybf_cases;

/* conv2d alone with c->bf16_y on fixture case i against the fp32 output */
static void conv_y_case(struct fd_ctx *cb, const struct fd_st *st, int i)
{
	const int32_t *v = fix_i32(st, i, "shape", 15);
	struct fd_conv2d_shape s = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
				    v[8], v[9], v[10], v[11], v[12], v[13], v[14], FD_NHWC, FD_NHWC};
	struct fd_err e = {{0}};
	int Ho, Wo;
	if (s.dh != 1 || s.dw != 1 || fd_conv2d_out_size(&s, &Ho, &Wo, &e) != 0)
		return;
	int64_t sx[4] = {s.N, s.C, s.H, s.W}, sw[4] = {s.K, s.C / s.groups, s.kh, s.kw}, sk[1] = {s.K};
	size_t nx = (size_t)s.N * s.C * s.H * s.W, nw = (size_t)s.K * (s.C / s.groups) * s.kh * s.kw;
	size_t ny = (size_t)s.N * s.K * Ho * Wo;
	float *x = to_nhwc(fix_f32(st, i, "x", (long)nx, 0), s.N, s.C, s.H * s.W);
	float *dy = to_nhwc(fix_f32(st, i, "dy", (long)ny, 0), s.N, s.K, Ho * Wo);
	/* torch's float64 y on the bf16-rounded inputs; a depthwise plan runs
	 * fp32 in a bf16 context (its y rounded after): on the float32 inputs */
	int dwp = fd_conv2d_bf16_in_fp32(&s);
	float *ref = to_nhwc(fix_f32(st, i, dwp ? "y32" : "y", (long)ny, 0), s.N, s.K, Ho * Wo);
	const float *w = fix_f32(st, i, "w", (long)nw, 0), *b = s.bias ? fix_f32(st, i, "b", s.K, 0) : NULL;
	float *y[2] = {NULL, NULL}, *dx[2] = {NULL, NULL}, *dw[2] = {NULL, NULL};
	int bf[2] = {0, 0}, good = 1;
	for (int v2 = 0; v2 < 2 && good; v2++) {
		struct fd_conv2d_op op;
		fd_conv2d_op_init(&op, s.sh, s.ph, s.dh, s.groups);
		op.sw = s.sw, op.pw = s.pw, op.dw = s.dw;
		fd_ctx_step(cb);
		cb->channels_last = 1;
		struct fd_tensor *xt = fd_tensor_new(cb, FD_DEV_CPU, 4, sx), *wt = fd_tensor_new(cb, FD_DEV_CPU, 4, sw);
		struct fd_tensor *bt = s.bias ? fd_tensor_new(cb, FD_DEV_CPU, 1, sk) : NULL;
		xt->layout = FD_NHWC;
		memcpy(xt->data, x, nx * sizeof *x);
		memcpy(wt->data, w, nw * sizeof *w);
		if (bt)
			memcpy(bt->data, b, (size_t)s.K * sizeof *b);
		fd_requires_grad(xt), fd_requires_grad(wt);
		cb->bf16_y = v2;
		struct fd_tensor *yt = fd_conv2d(cb, &op, xt, wt, bt);
		cb->bf16_y = 0;
		good = ok(yt && fd_backward(cb, yt, dy) == 0, "case %d: conv2d%s %s", i, v2 ? " with bf16_y" : "",
			  cb->err.msg);
		if (good) {
			bf[v2] = (yt->flags & FD_T_BF16) != 0;
			y[v2] = malloc(ny * sizeof(float));
			if (bf[v2])
				fd_dnnl_from_bf16(1, (const uint16_t *)yt->data, y[v2], ny);
			else
				memcpy(y[v2], yt->data, ny * sizeof(float));
			dx[v2] = fdup(xt->grad, nx), dw[v2] = fdup(wt->grad, nw);
		}
		cb->channels_last = 0;
		fd_conv2d_op_free(&op);
	}
	if (good && bf[1]) {
		ybf_cases++;
		uint16_t *r16 = malloc(ny * sizeof *r16), *t16 = malloc(ny * sizeof *t16);
		float *rw = malloc(ny * sizeof *rw), *tw = malloc(ny * sizeof *tw);
		fd_dnnl_to_bf16(1, y[0], r16, ny);
		fd_dnnl_from_bf16(1, r16, rw, ny);
		ok(same(y[1], rw, ny) && same(dx[0], dx[1], nx) && same(dw[0], dw[1], nw),
		   "case %d: y in bf16: the fp32 op's y rounded, bit for bit; dx, dw unchanged", i);
		/* torch's y (float64 on the bf16-rounded inputs, or the float32
		 * ones for a depthwise plan) rounded to bf16 */
		fd_dnnl_to_bf16(1, ref, t16, ny);
		fd_dnnl_from_bf16(1, t16, tw, ny);
		/* a bf16 unit of torch's y, and the fp32 sums' own error (their
		 * order is the kernel's: near zero a sum that cancels moves a
		 * small y by more than its unit) */
		size_t off = 0, far = 0;
		double floor32 = 1e-6 * amax(ref, ny);
		for (size_t k = 0; k < ny; k++)
			if (y[1][k] != tw[k]) {
				off++;
				far += !(fabsf(y[1][k] - tw[k]) <= fabsf(tw[k]) * (1.0f / 128) + floor32 + 1e-30);
			}
		ok(far == 0 && off * 100 <= ny, "case %d: y = torch's y rounded to bf16 but at %zu of %zu values, each "
		   "within a bf16 unit (%zu beyond)", i, off, ny, far);
		free(r16), free(t16), free(rw), free(tw);
	}
	for (int k = 0; k < 2; k++)
		free(y[k]), free(dx[k]), free(dw[k]);
	free(x), free(dy), free(ref);
}

/* BN (+ act, + pool) in train mode on a bf16 input against the same op on
 * the widened floats */
static void bn_x_case(int N, int C, int H, int W, int act, int pool)
{
	int64_t sh[4] = {N, C, H, W}, sk[1] = {C}, s1[1] = {1};
	size_t n = (size_t)N * C * H * W;
	uint16_t *xb = malloc(n * sizeof *xb);
	float *xf = malloc(n * sizeof *xf), *res[2][6] = {{0}};
	for (size_t i = 0; i < n; i++)
		xf[i] = (float)((double)((i * 2654435761u) % 4001) / 1000.0 - 1.7);
	fd_dnnl_to_bf16(1, xf, xb, n);
	fd_dnnl_from_bf16(1, xb, xf, n);
	size_t ny = 0;
	int good = 1;
	for (int v = 0; v < 2 && good; v++) {
		struct fd_ctx c;
		struct fd_err e = {{0}};
		ctx_open(&c, 2, 1);
		fd_ctx_set_precision(&c, FD_PREC_BF16, &e);
		fd_ctx_step(&c);
		c.training = 1;
		struct fd_tensor *x = v ? fd_tensor_new_bf16(&c, 4, sh) : fd_tensor_new(&c, FD_DEV_CPU, 4, sh);
		struct fd_tensor *g = fd_tensor_new(&c, FD_DEV_CPU, 1, sk), *be = fd_tensor_new(&c, FD_DEV_CPU, 1, sk);
		struct fd_tensor *rm = fd_tensor_new(&c, FD_DEV_CPU, 1, sk), *rv = fd_tensor_new(&c, FD_DEV_CPU, 1, sk);
		struct fd_tensor *nbt = fd_tensor_new(&c, FD_DEV_CPU, 1, s1);
		x->layout = FD_NHWC;
		if (v)
			memcpy(x->data, xb, n * sizeof *xb);
		else
			memcpy(x->data, xf, n * sizeof *xf);
		for (int k = 0; k < C; k++) {
			g->data[k] = 0.8f + 0.4f * (float)k / (float)C, be->data[k] = 0.05f * (float)(k % 7) - 0.1f;
			rm->data[k] = 0.1f, rv->data[k] = 1.5f;
		}
		nbt->data[0] = 0;
		fd_requires_grad(x), fd_requires_grad(g), fd_requires_grad(be);
		struct fd_tensor *y = pool == 2 ? fd_batchnorm2d_act_maxpool(&c, x, g, be, rm, rv, nbt, 0.1, 1e-5, act, 2, 2, 0)
				      : pool ? fd_batchnorm2d_act_maxpool(&c, x, g, be, rm, rv, nbt, 0.1, 1e-5, act, 3, 2, 1)
					     : fd_batchnorm2d_act(&c, x, g, be, rm, rv, nbt, 0.1, 1e-5, act);
		float *dy = y ? malloc((size_t)y->numel * sizeof *dy) : NULL;
		for (int64_t i = 0; y && i < y->numel; i++)
			dy[i] = (float)((double)((i * 40503u) % 1999) / 999.0 - 1.0);
		good = ok(y && fd_backward(&c, y, dy) == 0, "bn %dx%dx%dx%d act %d%s on %s x %s", N, C, H, W, act,
			  pool == 2 ? " + 2x2 max pool" : pool ? " + max pool" : "", v ? "bf16" : "fp32", c.err.msg);
		if (good) {
			ny = (size_t)y->numel;
			res[v][0] = fdup(y->data, ny), res[v][1] = fdup(x->grad, n), res[v][2] = fdup(g->grad, C);
			res[v][3] = fdup(be->grad, C), res[v][4] = fdup(rm->data, C), res[v][5] = fdup(rv->data, C);
		}
		free(dy);
		fd_ctx_free(&c);
	}
	if (good)
		ok(same(res[0][0], res[1][0], ny) && same(res[0][1], res[1][1], n) && same(res[0][2], res[1][2], C) &&
		   same(res[0][3], res[1][3], C) && same(res[0][4], res[1][4], C) && same(res[0][5], res[1][5], C),
		   "bn act %d%s: bf16 x == widened x bit for bit (y, dx, dgamma, dbeta, running stats)", act,
		   pool == 2 ? " + 2x2 max pool" : pool ? " + max pool" : "");
	for (int v = 0; v < 2; v++)
		for (int k = 0; k < 6; k++)
			free(res[v][k]);
	free(xb), free(xf);
}

static void bn_x_eval_refused(void)
{
	struct fd_ctx c;
	struct fd_err e = {{0}};
	ctx_open(&c, 2, 1);
	fd_ctx_set_precision(&c, FD_PREC_BF16, &e);
	fd_ctx_step(&c);
	int64_t sh[4] = {2, 8, 3, 3}, sk[1] = {8};
	struct fd_tensor *x = fd_tensor_new_bf16(&c, 4, sh), *g = fd_tensor_new(&c, FD_DEV_CPU, 1, sk);
	struct fd_tensor *be = fd_tensor_new(&c, FD_DEV_CPU, 1, sk), *rm = fd_tensor_new(&c, FD_DEV_CPU, 1, sk);
	struct fd_tensor *rv = fd_tensor_new(&c, FD_DEV_CPU, 1, sk);
	x->layout = FD_NHWC;
	memset(x->data, 0, 2 * 8 * 9 * sizeof(uint16_t));
	for (int k = 0; k < 8; k++)
		g->data[k] = rv->data[k] = 1, be->data[k] = rm->data[k] = 0;
	c.training = 0;
	struct fd_tensor *y = fd_batchnorm2d(&c, x, g, be, rm, rv, NULL, 0.1, 1e-5);
	ok(!y && c.failed && strstr(c.err.msg, "bf16"), "eval-mode BN refuses a bf16 input: %s", c.err.msg);
	fd_ctx_free(&c);
}

/* bf16 training steps of model a with and without fp32 convolution outputs */
static uint64_t bf16_ys(const struct fd_ctx *c)
{
	return c->bf16_ys;
}

static void model_y_case(const char *name, const struct fd_model_arch *a, int size, int amx, int want)
{
	struct fd_err e = {{0}};
	struct fd_model *m;
	if (!ok(fd_model_new_arch(a, 3, 7, &m, &e) == 0, "%s: built %s", name, e.msg))
		return;
	model_ab_rounding(name, m, size, &m->no_bf16_y, bf16_ys, want, amx, "convolution outputs");
	fd_model_free(m);
}

/* bf16 training steps of model name with and without the hand-off */
static uint64_t bf16_dys(const struct fd_ctx *c)
{
	return c->bf16_dys;
}

static void model_case(const char *name, const char *stem, int size, int want, int amx)
{
	struct fd_err e = {{0}};
	struct fd_model *m;
	struct model_ab r;
	if (!ok(fd_model_new_arch(fd_model_arch_find(name), 3, 7, &m, &e) == 0, "%s: built %s", name, e.msg))
		return;
	if (model_ab_run(name, m, size, FD_PREC_BF16, &m->no_bf16_dy, bf16_dys, NULL, &r)) {
		ok(r.count[0] == 0 && r.count[1] == (uint64_t)want,
		   "%s: %llu gradients handed off in bf16 a step (%d expected, 0 without)", name,
		   (unsigned long long)r.count[1], want);
		if (amx)
			ok(model_ab_same(&r),
			   "%s: logits and parameter gradients bit for bit with and without the gradient hand-off", name);
		else {
			diag("%s: no AMX: convolutions whose backward-weights runs fp32 read the rounded dy (not "
			     "compared)", name);
			/* the first convolution's backward-weights is fd's image-layer
			 * kernel (lib/nn/bfw.h), which rounds an fp32 dy to the bf16
			 * the hand-off gives it: its gradient is the same bits (every
			 * backward-data pass reads the rounded dy either way, so the
			 * stem's dy is the same) */
			int pi = fd_params_index(&m->p, stem);
			const struct fd_pview *v = pi >= 0 ? &m->p.v[pi] : NULL;
			ok(v && v->t.numel > 0 &&
				   !memcmp(r.g[0] + v->off, r.g[1] + v->off, (size_t)v->t.numel * sizeof(float)) &&
				   !memcmp(r.lg[0], r.lg[1], sizeof r.lg[0]),
			   "%s: no AMX: %s's gradient (fd's image-layer kernel) and the logits bit for bit with and "
			   "without the hand-off", name, stem);
		}
	}
	model_ab_free(&r);
	fd_model_free(m);
}

/* SimpleCNN's stage: conv2d 3x3 (no bias) -> BN + ReLU + 2x2/2 max pool,
 * on a bf16 convolution output, with y and BN's dx in bf16 (the hand-offs)
 * and without (y and dx in floats): the pooled kernels for a bf16 x, y and
 * dx are batchnorm2d.c's intrinsics where C is a multiple of 16, the
 * portable loops otherwise and on the side without; y is the fp32 side's
 * y rounded, bit for bit; BN's dgamma, dbeta and the convolution's dx, dw
 * the same bits (direct_check) */
static void pool22_chain_case(struct fd_ctx *cb, int N, int H, int C, int K)
{
	struct fd_conv2d_shape s = {N, C, H, H, K, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, FD_NHWC, FD_NHWC};
	size_t nx = (size_t)N * C * H * H, nw = (size_t)K * C * 9;
	float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w);
	for (size_t i = 0; i < nx; i++)
		x[i] = (float)((double)((i * 7919) % 1013) / 506.0 - 1.0);
	for (size_t i = 0; i < nw; i++)
		w[i] = (float)((double)((i * 104729) % 997) / 997.0 - 0.5) * 0.2f;
	struct res off = {0}, on = {0};
	int id = 2000 + K;
	if (ok(chain_run(cb, &s, x, w, NULL, CHAIN_POOL22, 0, 0, &off) == 0 &&
		   chain_run(cb, &s, x, w, NULL, CHAIN_POOL22, 1, 0, &on) == 0,
	       "pool22 case %d: conv2d -> BN + ReLU + 2x2 pool with and without the hand-offs %s", id, cb->err.msg)) {
		size_t ny = off.ny, bad = 0;
		uint16_t *want = malloc(ny * sizeof *want);
		fd_dnnl_to_bf16(1, off.y, want, ny);
		for (size_t i = 0; i < ny; i++)
			bad += widen1(want[i]) != on.y[i] || on.y[i] != on.y[i];
		ok(on.ybf && !off.ybf && ny == (size_t)N * K * (H / 2) * (H / 2) && bad == 0,
		   "pool22 case %d: y in bf16 is the fp32 side's y rounded, bit for bit (%zu of %zu off)", id, bad, ny);
		ok(on.marks == 1 && same(on.dg, off.dg, (size_t)K) && same(on.dbeta, off.dbeta, (size_t)K),
		   "pool22 case %d: BN's dx handed off in bf16 (%llu), dgamma and dbeta the same bits", id,
		   (unsigned long long)on.marks);
		if (on.takes & 4)
			direct_check(id, &s, &on, &off, nx, nw, 0);
		free(want);
	}
	res_free(&off), res_free(&on);
	free(x), free(w);
}

/* ConvNeXt mini, two bf16 training steps with and without the hand-off
 * (m->no_bf16_dy): each block's GELU hands its gradient to pw1 in bf16 (6
 * marks); the logits and every parameter gradient but pw1's the same bits
 * (pw1's dx multiplies the bf16 dy either way); pw1's weight and bias
 * gradients within bf16's rounding: the bias summed from the rounded dy
 * where pw1's backward-weights is a matmul, and both from it where that
 * pass runs fp32 (mini's first stage: 16 channels on a 16x16 map) */
static void convnext_case(void)
{
	struct fd_err e = {{0}};
	struct fd_model *m;
	struct model_ab r;
	if (!ok(fd_model_new_arch(&fd_arch_convnext_mini, 3, 7, &m, &e) == 0, "convnext_mini: built %s", e.msg))
		return;
	if (model_ab_run("convnext_mini", m, 64, FD_PREC_BF16, &m->no_bf16_dy, bf16_dys, NULL, &r)) {
		ok(r.count[0] == 0 && r.count[1] == 6, "convnext_mini: %llu GELU gradients handed off in bf16 a step "
		   "(6 expected, 0 without)", (unsigned long long)r.count[1]);
		size_t bad = 0, other = 0, nbias = 0;
		for (int i = 0; i < m->p.n; i++) {
			const struct fd_pview *v = &m->p.v[i];
			if (v->kind != FD_P_PARAM)
				continue;
			const char *nm = v->name;
			size_t L = strlen(nm), n = (size_t)v->t.numel;
			if ((L >= 12 && !strcmp(nm + L - 12, "block.3.bias")) ||
			    (L >= 14 && !strcmp(nm + L - 14, "block.3.weight"))) {
				nbias++;
				char t[160];
				snprintf(t, sizeof t, "convnext_mini: %s's gradient within bf16 rounding", nm);
				tap_close_f32(t, r.g[1] + v->off, r.g[0] + v->off, n, 1e-2 * amax(r.g[0] + v->off, n), 1e-2);
			} else {
				other++;
				if (memcmp(r.g[0] + v->off, r.g[1] + v->off, n * sizeof(float)) != 0)
					bad++, diag("convnext_mini: %s differs", nm);
			}
		}
		ok(!memcmp(r.lg[0], r.lg[1], sizeof r.lg[0]) && bad == 0 && other > 20 && nbias == 12,
		   "convnext_mini: logits and the gradients of %zu parameters bit for bit (%zu differ), pw1's %zu "
		   "compared apart", other, bad, nbias);
	}
	model_ab_free(&r);
	fd_model_free(m);
}

int main(void)
{
	struct fd_ctx cb;
	struct fd_err e = {{0}};
	ctx_open(&cb, 2, 1);
	if (fd_ctx_set_precision(&cb, FD_PREC_BF16, &e) != 0) {
		ok(!cpu_has("avx512_bf16"), "no bf16 on this CPU (%s): nothing to hand off", e.msg);
		fd_ctx_free(&cb);
		return tap_done();
	}
	int amx = cpu_has("amx_bf16");
	struct fd_st st;
	fix_open(&st, "nn_bf16", "conv");
	int n = fix_cases(&st);
	for (int i = 0; i < n; i++)
		conv_y_case(&cb, &st, i);
	ok(ybf_cases >= (amx ? 8 : 1), "%d of %d conv cases wrote y in bf16", ybf_cases, n);
	for (int i = 0; i < n; i++)
		chain_case(&cb, &st, i);
	fd_st_close(&st);
	static const int acts[4] = {FD_ACT_RELU, FD_ACT_SILU, FD_ACT_HARDSWISH, -1};
	for (int a = 0; a < 4; a++) {
		bn_x_case(4, 24, 9, 7, acts[a], 0);
		bn_x_case(3, 40, 8, 8, acts[a], 1);
	}
	bn_x_case(2, 64, 17, 17, FD_ACT_RELU, 0); /* more than four rows a chunk, odd rows */
	bn_x_case(2, 176, 5, 7, FD_ACT_RELU, 0);  /* the bf16 statistics' intrinsics: 64 + 64 + 48 channels */
	/* SimpleCNN's 2x2/2 pool: on a bf16 x with 16k channels its backward
	 * sums run in one walk (batchnorm2d.c pool22_sums_pair_bb_avx512) */
	bn_x_case(2, 32, 8, 12, FD_ACT_RELU, 2);
	bn_x_case(3, 48, 6, 6, FD_ACT_RELU, 2);
	bn_x_eval_refused();
	ok(marked >= 8 && widened >= 2 && (!amx || direct >= 6),
	   "%d of %d conv cases handed a bf16 dy off: %d read it as it is, %d widened it", marked, n, direct,
	   widened);
	tee_case(&cb);
	pool22_chain_case(&cb, 4, 16, 16, 32); /* the intrinsics (C a multiple of 16) */
	pool22_chain_case(&cb, 2, 12, 8, 48);
	pool22_chain_case(&cb, 2, 8, 8, 24);   /* the portable loops on both sides */
	int bs0 = bias_sums;
	gelu_chain_case(&cb, 2, 7, 7, 32, 128);   /* a matmul's bias sums (AVX512-BF16 without AMX) */
	gelu_chain_case(&cb, 2, 28, 28, 32, 128); /* oneDNN's bf16 backward-weights (without AMX) */
	ok(bias_sums - bs0 >= (amx ? 0 : 1), "%d GELU chains summed the bias from the bf16 dy", bias_sums - bs0);
	fd_ctx_free(&cb);
	{ /* an fp32 context ignores the flag */
		struct fd_ctx cf;
		ctx_open(&cf, 2, 1);
		struct fd_conv2d_shape s = {2, 8, 6, 6, 8, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, FD_NHWC, FD_NHWC};
		float x[2 * 8 * 36], w[64];
		for (int i = 0; i < 2 * 8 * 36; i++)
			x[i] = (float)(i % 7) / 7.0f;
		for (int i = 0; i < 64; i++)
			w[i] = (float)(i % 5) / 10.0f - 0.2f;
		struct res r = {0};
		ok(chain_run(&cf, &s, x, w, NULL, FD_ACT_RELU, 1, 0, &r) == 0 && r.marks == 0,
		   "fp32 context: bf16_dy ignored, nothing marked");
		res_free(&r);
		fd_ctx_free(&cf);
	}
	model_y_case("resnet18", fd_model_arch_find("resnet18"), 128, amx, 0);
	model_y_case("mobilenet_v3_small", fd_model_arch_find("mobilenet_v3_small"), 128, amx, 0);
	/* the depthwise convolution (read by the LayerNorm), pw1 (read by GELU)
	 * and pw2 (read by the layer scale) of its 6 blocks */
	model_y_case("convnext_mini", &fd_arch_convnext_mini, 64, amx, 18);
	convnext_case();
	model_case("resnet18", "conv1.weight", 224, 20, amx);
	model_case("resnet50", "conv1.weight", 160, 53, amx);
	model_case("simplecnn", "features.0.weight", 128, 4, amx);
	model_case("mobilenet_v3_small", "features.0.0.weight", 224, 23, amx);
	model_case("efficientnet_b0", "features.0.0.weight", 160, 16, amx);
	return tap_done();
}
