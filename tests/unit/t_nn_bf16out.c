/* t_nn_bf16out: the bf16 hand-off (doc/nn-kernels.md "bf16 hand-off"): in
 * bf16 training an op whose output only convolutions read writes it in
 * bf16 (c->bf16_out, FD_T_BF16) and conv2d reads it as it is.
 *   conv2d with a bf16 input, every channels-last case of the nn_bf16 conv
 *   fixture through the taped op: where the plan reads bf16 x itself (bit 1
 *   and, after the backward, bit 2 of fd_conv2d_takes_bf16_cpu) y, dx, dw
 *   and db are bit for bit those of the same op on the fp32 x (which
 *   rounds x to the same bf16 values), and y equals torch's on bf16-rounded
 *   inputs; every case, the plans that widen bf16 x first (depthwise fp32
 *   plans) included, is bit for bit the op on the widened x;
 *   GELU in place (fd_act_, recorded) with a bf16 output: y the fp32 op's y
 *   rounded, GELU'(x) over x and dx the same bits;
 *   the squeeze-excitation multiply (same shape and broadcast) with a bf16
 *   output: y the fp32 product rounded, gradients the same bits;
 *   whole models at 224x224 (ResNet-18, ResNet-50's bottleneck blocks,
 *   ConvNeXt mini, EfficientNet-B0, MobileNetV3-Small): bf16 training steps with and without the hand-off
 *   (m->no_bf16_out): the same logits and parameter gradients bit for bit
 *   on a CPU with AMX (where at that size every hand-off convolution reads
 *   bf16 in both passes), tensors made in bf16 counted, a smaller training
 *   arena.
 *   fd_ai_bf16 (the kernels' inline rounding) against fd_dnnl_to_bf16 (the
 *   instruction oneDNN's reorder uses, t_nn_bf16) on every 16-bit head with
 *   the tails around each rounding boundary: zeros, subnormals, NaNs,
 *   infinities, ties to even and the carry into the exponent included.
 * The batchnorm2d side (y vs torch within bf16 rounding) is in t_nn_bnact. */
#include "models/fd_model.h"
#include "nn/act.h"
#include "nn/act_inline.h"
#include "nn/binary.h"
#include "nn/layout.h"
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

struct out {
	float *y, *dx, *dw, *db;
	int takes; /* fd_conv2d_takes_bf16_cpu after the backward */
};

static void out_free(struct out *o)
{
	free(o->y), free(o->dx), free(o->dw), free(o->db);
}

/* The taped conv on x (NHWC floats; as bf16 when bf16) and its backward
 * from dy, on c; results into o. 0, or -1 with c->err. */
static int conv_run(struct fd_ctx *c, const struct fd_conv2d_shape *s, const float *x, int bf16, const float *w,
		    const float *b, const float *dy, struct out *o)
{
	int64_t sx[4] = {s->N, s->C, s->H, s->W}, sw[4] = {s->K, s->C / s->groups, s->kh, s->kw}, sb[1] = {s->K};
	size_t nx = (size_t)s->N * s->C * s->H * s->W, nw = (size_t)sw[0] * sw[1] * sw[2] * sw[3];
	struct fd_conv2d_op op;
	fd_conv2d_op_init(&op, s->sh, s->ph, s->dh, s->groups);
	op.sw = s->sw, op.pw = s->pw, op.dw = s->dw; /* uneven geometries */
	fd_ctx_step(c);
	c->channels_last = 1;
	struct fd_tensor *xt = bf16 ? fd_tensor_new_bf16(c, 4, sx) : fd_tensor_new(c, FD_DEV_CPU, 4, sx);
	struct fd_tensor *wt = fd_tensor_new(c, FD_DEV_CPU, 4, sw), *bt = s->bias ? fd_tensor_new(c, FD_DEV_CPU, 1, sb) : NULL;
	int rc = -1;
	if (!xt || !wt || (s->bias && !bt))
		goto out;
	xt->layout = FD_NHWC;
	if (bf16)
		fd_dnnl_to_bf16(1, x, (uint16_t *)xt->data, nx);
	else
		memcpy(xt->data, x, nx * sizeof *x);
	memcpy(wt->data, w, nw * sizeof *w);
	if (bt)
		memcpy(bt->data, b, (size_t)s->K * sizeof *b);
	fd_requires_grad(xt), fd_requires_grad(wt);
	if (bt)
		fd_requires_grad(bt);
	struct fd_tensor *y = fd_conv2d(c, &op, xt, wt, bt);
	if (!y || fd_backward(c, y, dy) < 0)
		goto out;
	o->y = fdup(y->data, (size_t)y->numel), o->dx = fdup(xt->grad, nx), o->dw = fdup(wt->grad, nw);
	o->db = bt ? fdup(bt->grad, (size_t)s->K) : NULL;
	o->takes = fd_conv2d_takes_bf16_cpu(op.plans[0].plan);
	rc = 0;
out:
	c->channels_last = 0;
	fd_conv2d_op_free(&op);
	return rc;
}

static int direct_fwd, direct_both, widened;

static void conv_case(struct fd_ctx *cb, const struct fd_st *st, int i)
{
	const int32_t *v = fix_i32(st, i, "shape", 15);
	struct fd_conv2d_shape s = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
				    v[8], v[9], v[10], v[11], v[12], v[13], v[14], FD_NHWC, FD_NHWC};
	struct fd_err e = {{0}};
	int Ho, Wo;
	if (s.dh != 1 || s.dw != 1 || fd_conv2d_out_size(&s, &Ho, &Wo, &e) != 0)
		return;
	size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.K * Ho * Wo;
	size_t nw = (size_t)s.K * (s.C / s.groups) * s.kh * s.kw;
	float *x = to_nhwc(fix_f32(st, i, "x", (long)nx, 0), s.N, s.C, s.H * s.W);
	float *dy = to_nhwc(fix_f32(st, i, "dy", (long)ny, 0), s.N, s.K, Ho * Wo);
	const float *w = fix_f32(st, i, "w", (long)nw, 0), *b = s.bias ? fix_f32(st, i, "b", s.K, 0) : NULL;
	/* x rounded to bf16 and widened back: what the bf16 tensor holds */
	uint16_t *xb = malloc(nx * sizeof *xb);
	float *xw = malloc(nx * sizeof *xw);
	fd_dnnl_to_bf16(1, x, xb, nx);
	fd_dnnl_from_bf16(1, xb, xw, nx);
	struct out a = {0}, h = {0}, wd = {0};
	if (!ok(conv_run(cb, &s, x, 0, w, b, dy, &a) == 0 && conv_run(cb, &s, x, 1, w, b, dy, &h) == 0 &&
		conv_run(cb, &s, xw, 0, w, b, dy, &wd) == 0,
		"case %d: taped conv on fp32, bf16 and widened x %s", i, cb->err.msg))
		goto done;
	size_t nb = s.bias ? (size_t)s.K : 0;
	ok(same(h.y, wd.y, ny) && same(h.dx, wd.dx, nx) && same(h.dw, wd.dw, nw) && same(h.db, wd.db, nb),
	   "case %d: bf16 x == the widened x bit for bit (y, dx, dw, db; plan reads bf16: %s%s)", i,
	   h.takes & 1 ? "forward" : "", h.takes & 2 ? " backward-weights" : "");
	if (h.takes & 1) {
		direct_fwd++;
		char nm[96];
		snprintf(nm, sizeof nm, "case %d: y from bf16 x vs torch on bf16-rounded inputs", i);
		float *ref = to_nhwc(fix_f32(st, i, "y", (long)ny, 0), s.N, s.K, Ho * Wo);
		tap_close_f32(nm, h.y, ref, ny, 1e-4, 1e-4);
		free(ref);
		ok(same(h.y, a.y, ny) && same(h.dx, a.dx, nx), "case %d: y and dx bit for bit the fp32 x's", i);
	}
	if ((h.takes & 3) == 3) {
		direct_both++;
		ok(same(h.dw, a.dw, nw) && same(h.db, a.db, nb),
		   "case %d: dw, db (backward-weights reads bf16) bit for bit the fp32 x's", i);
	}
	if (!(h.takes & 1)) {
		widened++;
		/* an fp32 plan (depthwise) gives another y on the unrounded x
		 * (negative control); a bf16 plan that widens a bf16 x (oneDNN's
		 * blocked layouts, an SE block's 1x1 on 1x1 maps without AMX)
		 * rounds the fp32 x to the same values itself: the same y */
		size_t d = 0;
		for (size_t k = 0; k < ny; k++)
			d += h.y[k] != a.y[k];
		if (fd_conv2d_bf16_in_fp32(&s))
			ok(d > 0, "case %d: an fp32 plan (depthwise): y from the rounded x differs from fp32 x's at %zu of %zu",
			   i, d, ny);
		else
			ok(d == 0, "case %d: a bf16 plan that widens x: y from the rounded x the fp32 x's (%zu of %zu differ)",
			   i, d, ny);
	}
done:
	out_free(&a), out_free(&h), out_free(&wd);
	free(x), free(dy), free(xb), free(xw);
}

static void rounding_case(void)
{
	static const uint32_t tails[] = {0x0000, 0x0001, 0x3fff, 0x7fff, 0x8000, 0x8001, 0xbfff, 0xffff};
	enum { NT = sizeof tails / sizeof tails[0] };
	size_t n = (size_t)65536 * NT, bad = 0;
	float *x = malloc(n * sizeof *x);
	uint16_t *r = malloc(n * sizeof *r);
	for (uint32_t h = 0; h < 65536; h++)
		for (int t = 0; t < NT; t++) {
			uint32_t u = h << 16 | tails[t];
			memcpy(x + (size_t)h * NT + t, &u, sizeof u);
		}
	fd_dnnl_to_bf16(2, x, r, n);
	for (size_t i = 0; i < n; i++)
		bad += fd_ai_bf16(x[i]) != r[i];
	ok(bad == 0 && n == 524288, "fd_ai_bf16 == fd_dnnl_to_bf16 on %zu values around every boundary (%zu differ)", n,
	   bad);
	/* control: truncation instead of rounding differs on the tails above half */
	size_t trunc = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, x + i, sizeof u);
		trunc += (uint16_t)(u >> 16) != r[i];
	}
	ok(trunc > n / 4, "control: truncating differs from the rounding at %zu of %zu", trunc, n);
	free(x), free(r);
}

/* GELU in place with a bf16 output against the fp32 output */
static void gelu_case(struct fd_ctx *cb)
{
	int64_t sh[4] = {3, 40, 5, 7};
	size_t n = 3 * 40 * 5 * 7;
	float *x0 = malloc(n * sizeof *x0), *g = malloc(n * sizeof *g);
	for (size_t i = 0; i < n; i++)
		x0[i] = (float)((double)((i * 7919) % 2003) / 160.0 - 6.2), g[i] = (float)((i % 13) * 0.25 - 1.5);
	float *y[2], *d[2], *dx[2];
	int isbf[2];
	for (int v = 0; v < 2; v++) {
		fd_ctx_step(cb);
		struct fd_tensor *x = fd_tensor_new(cb, FD_DEV_CPU, 4, sh);
		memcpy(x->data, x0, n * sizeof *x0);
		fd_requires_grad(x);
		cb->bf16_out = v; /* recorded: GELU'(x) over x */
		struct fd_tensor *t = fd_act_(cb, FD_ACT_GELU, x);
		cb->bf16_out = 0;
		if (!ok(t && fd_backward(cb, t, g) == 0, "gelu %s: runs %s", v ? "bf16 out" : "fp32", cb->err.msg))
			return;
		isbf[v] = (t->flags & FD_T_BF16) != 0;
		y[v] = malloc(n * sizeof *y[v]);
		if (isbf[v])
			fd_dnnl_from_bf16(1, (const uint16_t *)t->data, y[v], n);
		else
			memcpy(y[v], t->data, n * sizeof *y[v]);
		d[v] = fdup(x->data, n), dx[v] = fdup(x->grad, n);
	}
	uint16_t *r = malloc(n * sizeof *r);
	float *rw = malloc(n * sizeof *rw);
	fd_dnnl_to_bf16(1, y[0], r, n);
	fd_dnnl_from_bf16(1, r, rw, n);
	size_t differ = 0;
	for (size_t i = 0; i < n; i++)
		differ += y[1][i] != y[0][i];
	ok(!isbf[0] && isbf[1] && same(y[1], rw, n) && differ > n / 4,
	   "gelu bf16 out: y the fp32 y rounded (%zu of %zu values differ from fp32's)", differ, n);
	ok(same(d[0], d[1], n) && same(dx[0], dx[1], n), "gelu bf16 out: GELU'(x) saved and dx bit for bit");
	for (int v = 0; v < 2; v++)
		free(y[v]), free(d[v]), free(dx[v]);
	free(x0), free(g), free(r), free(rw);
}

/* The squeeze-excitation scaling multiply (fd_mul of [N, C, H, W] by
 * [N, C, 1, 1], channels last, and a same-shape one) with a bf16 output
 * asked for: y bf16, the fp32 product rounded (fd_dnnl_to_bf16), gradients
 * of both operands the same bits; control: a quarter of the values differ
 * from the fp32 product. In an fp32 context the request is ignored. */
static void mul_case(struct fd_ctx *cb, struct fd_ctx *cf)
{
	int64_t sx[4] = {2, 24, 9, 11}, ss[4] = {2, 24, 1, 1};
	size_t n = 2 * 24 * 9 * 11; /* over one 4096-float block of the same-shape path */
	for (int bc = 0; bc < 2; bc++) {
		const int64_t *sh = bc ? ss : sx;
		size_t ns = bc ? 2 * 24 : n;
		float *y[2] = {NULL, NULL}, *da[2] = {NULL, NULL}, *db[2] = {NULL, NULL};
		int isbf[2] = {0, 0}, good = 1;
		for (int v = 0; v < 2 && good; v++) {
			fd_ctx_step(cb);
			struct fd_tensor *a = fd_tensor_new(cb, FD_DEV_CPU, 4, sx), *b = fd_tensor_new(cb, FD_DEV_CPU, 4, sh);
			for (size_t i = 0; i < n; i++)
				a->data[i] = (float)((double)((i * 7919) % 2003) / 160.0 - 6.2);
			for (size_t i = 0; i < ns; i++)
				b->data[i] = (float)((double)((i * 104729) % 997) / 331.0 - 1.3);
			a->layout = FD_NHWC;
			b->layout = bc ? FD_NCHW : FD_NHWC;
			fd_requires_grad(a), fd_requires_grad(b);
			cb->bf16_out = v;
			struct fd_tensor *t = fd_mul(cb, a, b);
			cb->bf16_out = 0;
			float *g = fd_ctx_alloc(cb, FD_DEV_CPU, (int64_t)n);
			for (size_t i = 0; g && i < n; i++)
				g[i] = (float)((i % 13) * 0.25 - 1.5);
			good = t && g && fd_backward(cb, t, g) == 0;
			if (!good)
				break;
			isbf[v] = (t->flags & FD_T_BF16) != 0;
			y[v] = malloc(n * sizeof(float));
			if (isbf[v])
				fd_dnnl_from_bf16(1, (const uint16_t *)t->data, y[v], n);
			else
				memcpy(y[v], t->data, n * sizeof(float));
			da[v] = malloc(n * sizeof(float)), db[v] = malloc(ns * sizeof(float));
			memcpy(da[v], a->grad, n * sizeof(float)), memcpy(db[v], b->grad, ns * sizeof(float));
		}
		if (!ok(good, "mul %s bf16 out: runs %s", bc ? "broadcast" : "same shape", cb->err.msg)) {
			fd_ctx_step(cb);
			continue;
		}
		uint16_t *r16 = malloc(n * sizeof *r16);
		float *r = malloc(n * sizeof *r);
		fd_dnnl_to_bf16(1, y[0], r16, n);
		fd_dnnl_from_bf16(1, r16, r, n);
		size_t differ = 0;
		for (size_t i = 0; i < n; i++)
			differ += y[1][i] != y[0][i];
		ok(!isbf[0] && isbf[1] && same(y[1], r, n) && differ > n / 4,
		   "mul %s bf16 out: y the fp32 product rounded (%zu of %zu values differ from it)",
		   bc ? "broadcast" : "same shape", differ, n);
		ok(same(da[0], da[1], n) && same(db[0], db[1], ns), "mul %s bf16 out: da, db the same bits",
		   bc ? "broadcast" : "same shape");
		for (int v = 0; v < 2; v++)
			free(y[v]), free(da[v]), free(db[v]);
		free(r16), free(r);
	}
	/* fp32 context: ignored */
	fd_ctx_step(cf);
	struct fd_tensor *a = fd_tensor_new(cf, FD_DEV_CPU, 4, sx), *b = fd_tensor_new(cf, FD_DEV_CPU, 4, sx);
	for (size_t i = 0; i < n; i++)
		a->data[i] = b->data[i] = 1.0f + (float)i / 7.0f;
	cf->bf16_out = 1;
	struct fd_tensor *t = fd_mul(cf, a, b);
	cf->bf16_out = 0;
	ok(t && !(t->flags & FD_T_BF16) && t->data[5] == a->data[5] * b->data[5],
	   "mul bf16 out asked in an fp32 context: y fp32");
	fd_ctx_step(cf);
}

/* bf16 training steps of model a with and without the hand-off */
static uint64_t bf16_outs(const struct fd_ctx *c)
{
	return c->bf16_outs;
}

static void model_case(const char *name, const struct fd_model_arch *a, int size, int amx)
{
	struct fd_err e = {{0}};
	struct fd_model *m;
	struct model_ab r;
	if (!ok(fd_model_new_arch(a, 3, 7, &m, &e) == 0, "%s: built %s", name, e.msg))
		return;
	/* the SE's bf16 input is read by non-convolutions, which then see
	 * rounded values (t_nn_bf16in): off on both sides */
	m->no_bf16_se = 1;
	m->no_bf16_res = 1; /* likewise the residual stream (read by the residual add) */
	if (model_ab_run(name, m, size, FD_PREC_BF16, &m->no_bf16_out, bf16_outs, NULL, &r)) {
		ok(r.count[0] == 0 && r.count[1] > 0 && r.peak[1] < r.peak[0],
		   "%s: %llu outputs handed off in bf16 a step (0 without); training arena peak %.2f MiB (%.2f without)",
		   name, (unsigned long long)r.count[1], r.peak[1] / 1048576.0, r.peak[0] / 1048576.0);
		if (amx)
			ok(model_ab_same(&r), "%s: logits and parameter gradients bit for bit with and without the hand-off",
			   name);
		else
			diag("%s: no AMX: convolutions whose backward-weights runs fp32 see the bf16 x (not compared)",
			     name);
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
	struct fd_st st;
	fix_open(&st, "nn_bf16", "conv");
	int n = fix_cases(&st);
	for (int i = 0; i < n; i++)
		conv_case(&cb, &st, i);
	fd_st_close(&st);
	int amx = cpu_has("amx_bf16");
	ok(direct_fwd >= 8 && widened >= 2 && (!amx || direct_both >= 6),
	   "%d of %d conv cases read bf16 x in the forward, %d in both passes, %d widened it (fp32 plans)", direct_fwd,
	   n, direct_both, widened);
	rounding_case();
	gelu_case(&cb);
	{
		struct fd_ctx cf;
		ctx_open(&cf, 2, 1);
		mul_case(&cb, &cf);
		fd_ctx_free(&cf);
	}
	fd_ctx_free(&cb);
	model_case("resnet18", fd_model_arch_find("resnet18"), 224, amx);
	model_case("resnet50", fd_model_arch_find("resnet50"), 224, amx);
	model_case("convnext_mini", &fd_arch_convnext_mini, 224, amx);
	model_case("efficientnet_b0", fd_model_arch_find("efficientnet_b0"), 224, amx);
	model_case("mobilenet_v3_small", fd_model_arch_find("mobilenet_v3_small"), 224, amx);
	return tap_done();
}
