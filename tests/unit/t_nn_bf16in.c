/* t_nn_bf16in: the ops besides conv2d and BN that read bf16 tensors in bf16
 * training (doc/nn-kernels.md "bf16 in the ConvNeXt block", "bf16
 * squeeze-excitation input"), each against the same op on the widened
 * (exact) fp32 input, whose kernels are checked against torch elsewhere
 * (t_nn_ops, t_nn_layers, t_nn_pool, t_nn_fd64):
 *   GELU in place (fd_act_, recorded) on a bf16 x (pw1's output under
 *   c->bf16_y), y in fp32 and in bf16: y the same bits; GELU'(x) written
 *   over x is the fp32 op's GELU'(x) rounded to bf16, bit for bit; dx is
 *   dy times that rounded value, bit for bit, and within bf16's rounding of
 *   the float64 oracle's dy GELU'(x); control: dx differs from the fp32
 *   op's in a quarter of the values or more. The same on every finite
 *   bf16 value (y in bf16 there runs act.c's intrinsics kernel: its bits
 *   must be the portable loop's on every input). Refused: the not-in-place
 *   form, ReLU, an unrecorded GELU, an fp32 context.
 *   LayerNorm over channels-last rows with a bf16 output (c->bf16_out):
 *   y the fp32 op's y rounded, bit for bit (a quarter of the values or
 *   more change: control); dx, dw, db the same bits. Not taken in NCHW
 *   (y fp32). On a bf16 x (the depthwise output under c->bf16_y; C 13,
 *   40, 768), y fp32 and bf16: y, dx, dw, db the same bits as on the
 *   widened x. Refused: a bf16 x in NCHW, with more than FD_LN_BF16_MAXC
 *   channels, in an fp32 context.
 *   The layer scale's mul (gamma [C, 1, 1] times a channels-last
 *   [N, C, H, W]) and a same-shape mul with the bf16 operand either side:
 *   y and both gradients the same bits as the op on the widened operand.
 *   The squeeze-excitation's multiply (a bf16 [N, C, H, W] times an fp32
 *   [N, C, 1, 1], channels last) with an fp32 and a bf16 output (the
 *   hand-off): y (rounded) and both gradients the same bits.
 *   Refused: add, a broadcast bf16 operand, a bf16 operand beside one
 *   broadcast along the innermost dim, an fp32 context.
 *   The global average pool of a channels-last bf16 x: y and dx the same
 *   bits; refused in NCHW, to a size other than 1x1, in an fp32 context.
 *   EfficientNet-B0 and MobileNetV3-Small one bf16 step with and without
 *   the bf16 SE input (m->no_bf16_se): 16 and 9 more bf16 tensors, a
 *   smaller arena, logits and gradients moved by no more than twice what
 *   fp32 against bf16 moves them, and moved (model_ab_rounding).
 *   ResNet-18 and ResNet-50 likewise with and without the bf16 residual
 *   stream (m->no_bf16_res): 9 and 17 more bf16 tensors (the stem's pooled
 *   output and every block's). The op's side (BN + add + ReLU with a bf16
 *   residual and output) is t_nn_bnadd's.
 * ConvNeXt's depthwise, pw1 and pw2 outputs in bf16 are t_nn_bf16dy's. */
#include "models/fd_model.h"
#include "nn/act.h"
#include "nn/binary.h"
#include "nn/pool2d.h"
#include "nn/fd_dnnl.h"
#include "nn/layernorm2d.h"
#include "fcmp.h"
#include "nn_ctx.h"
#include "tap.h"
#include "model_ab.h"

#include <math.h>

/* n values in [lo, lo + span), hashed from the index, rounded to bf16: xb
 * gets the bf16 values, xf the same widened */
static void bf16_values(size_t n, unsigned mul, double lo, double span, uint16_t *xb, float *xf)
{
	for (size_t i = 0; i < n; i++)
		xf[i] = (float)(lo + span * (double)((i * mul) % 2003) / 2003.0);
	fd_dnnl_to_bf16(1, xf, xb, n);
	fd_dnnl_from_bf16(1, xb, xf, n);
}

static float widen1(uint16_t b)
{
	float f;
	fd_dnnl_from_bf16(1, &b, &f, 1);
	return f;
}

/* GELU on the bf16 x of shape sh (n values; xf the same widened), dy
 * hashed from the index; ctrl: the least number of dx values that must
 * differ from the fp32 op's (the control) */
static void gelu_x_case(struct fd_ctx *cb, const char *what, const int64_t *sh, size_t n, const uint16_t *xb,
			const float *xf, size_t ctrl)
{
	float *g = malloc(n * sizeof *g);
	for (size_t i = 0; i < n; i++)
		g[i] = (float)((double)((i * 104729) % 1999) / 999.0 - 1.0);
	for (int yo = 0; yo < 2; yo++) {
		float *y[2] = {NULL, NULL}, *dx[2] = {NULL, NULL}, *gs = NULL;
		uint16_t *gb = malloc(n * sizeof *gb);
		int good = 1;
		for (int v = 0; v < 2 && good; v++) {
			fd_ctx_step(cb);
			struct fd_tensor *x = v ? fd_tensor_new_bf16(cb, 4, sh) : fd_tensor_new(cb, FD_DEV_CPU, 4, sh);
			x->layout = FD_NHWC;
			memcpy(x->data, v ? (const void *)xb : (const void *)xf, fd_tensor_bytes(x));
			fd_requires_grad(x);
			cb->bf16_out = yo;
			struct fd_tensor *t = fd_act_(cb, FD_ACT_GELU, x);
			cb->bf16_out = 0;
			good = ok(t && fd_backward(cb, t, g) == 0 && ((t->flags & FD_T_BF16) != 0) == yo,
				  "gelu (%s) on %s x, %s y: runs %s", what, v ? "bf16" : "fp32", yo ? "bf16" : "fp32",
				  cb->err.msg);
			if (!good)
				break;
			y[v] = malloc(n * sizeof *y[v]);
			if (yo)
				fd_dnnl_from_bf16(1, (const uint16_t *)t->data, y[v], n);
			else
				memcpy(y[v], t->data, n * sizeof *y[v]);
			dx[v] = fdup(x->grad, n);
			if (v)
				memcpy(gb, x->data, n * sizeof *gb);
			else
				gs = fdup(x->data, n);
		}
		if (good) {
			uint16_t *want = malloc(n * sizeof *want);
			fd_dnnl_to_bf16(1, gs, want, n);
			size_t bad = 0, dif = 0, far = 0, nt = 0;
			double *xd = malloc(n * sizeof *xd), *dd = malloc(n * sizeof *dd), *rd = calloc(n, sizeof *rd);
			for (size_t i = 0; i < n; i++)
				xd[i] = xf[i], dd[i] = g[i];
			fd_act_ref_backward(FD_ACT_GELU, (int64_t)n, xd, dd, rd);
			for (size_t i = 0; i < n; i++) {
				float e = 0.0f + g[i] * widen1(want[i]);
				bad += memcmp(&e, &dx[1][i], sizeof e) != 0;
				dif += dx[1][i] != dx[0][i];
				double gp = rd[i] / (g[i] != 0 ? (double)g[i] : 1.0); /* the oracle's GELU'(x) */
				double tol = fabs((double)g[i]) * (ldexp(fabs(gp), -8) + 1e-6) /* bf16's unit roundoff 2^-8 */;
				far += !(fabs(dx[1][i] - rd[i]) <= tol);

				nt += g[i] != 0;
			}
			ok(same(y[0], y[1], n), "gelu (%s) bf16 x, %s y: y the same bits as on the widened x", what,
			   yo ? "bf16" : "fp32");
			ok(!memcmp(gb, want, n * sizeof *gb),
			   "gelu (%s) bf16 x, %s y: GELU'(x) over x is the fp32 op's rounded to bf16", what,
			   yo ? "bf16" : "fp32");
			ok(bad == 0 && far == 0 && nt > n / 2,
			   "gelu (%s) bf16 x, %s y: dx = dy GELU'(x) rounded, bit for bit (%zu off), within bf16's rounding "
			   "of the float64 oracle (%zu beyond, of %zu)", what, yo ? "bf16" : "fp32", bad, far, nt);
			ok(dif > ctrl, "gelu (%s) bf16 x: control: %zu of %zu dx differ from the fp32 op's (more than %zu)",
			   what, dif, n, ctrl);
			free(want), free(xd), free(dd), free(rd);
		}
		for (int v = 0; v < 2; v++)
			free(y[v]), free(dx[v]);
		free(gs), free(gb);
	}
	/* refusals */
	struct { const char *what; int inplace, k, grad; } r[3] = {
		{"gelu not in place", 0, FD_ACT_GELU, 1}, {"relu in place", 1, FD_ACT_RELU, 1}, {"gelu unrecorded", 1, FD_ACT_GELU, 0}};
	for (int i = 0; i < 3; i++) {
		fd_ctx_step(cb);
		struct fd_tensor *x = fd_tensor_new_bf16(cb, 4, sh);
		memcpy(x->data, xb, n * sizeof *xb);
		if (r[i].grad)
			fd_requires_grad(x);
		struct fd_tensor *t = r[i].inplace ? fd_act_(cb, r[i].k, x) : fd_act(cb, r[i].k, x);
		ok(!t && cb->failed && strstr(cb->err.msg, "bf16"), "%s on a bf16 x refused: %s", r[i].what, cb->err.msg);
	}
	fd_ctx_step(cb);
	free(g);
}

/* gelu_x_case on hashed values in [-6.2, 6.3), and on every finite bf16
 * value (65280 of them): where y is bf16 too the op runs the intrinsics
 * kernel (act.c gelu_save_bb_avx512), whose bits must be the portable
 * loop's on every input. Their control is weaker: GELU'(x) is exactly 0
 * or 1 (and the same in bf16) for most of the exponents. */
static void gelu_x_cases(struct fd_ctx *cb)
{
	int64_t sh[4] = {3, 40, 5, 7};
	size_t n = 3 * 40 * 5 * 7;
	uint16_t *xb = malloc(n * sizeof *xb);
	float *xf = malloc(n * sizeof *xf);
	bf16_values(n, 7919, -6.2, 12.5, xb, xf);
	gelu_x_case(cb, "hashed", sh, n, xb, xf, n / 4);
	free(xb), free(xf);

	ok(fd_act_gelu_bf16_fast() == cpu_has("avx512_bf16"), "the intrinsics GELU runs where AVX512-BF16 is (%d)",
	   fd_act_gelu_bf16_fast());
	int64_t sa[4] = {1, 16, 60, 68};
	size_t na = 0;
	xb = malloc(65536 * sizeof *xb);
	xf = malloc(65536 * sizeof *xf);
	for (uint32_t b = 0; b < 65536; b++)
		if ((b & 0x7f80u) != 0x7f80u) { /* not an infinity or a NaN */
			xb[na] = (uint16_t)b;
			xf[na] = widen1((uint16_t)b);
			na++;
		}
	ok(na == 65280 && na == (size_t)(sa[1] * sa[2] * sa[3]), "every finite bf16 value: %zu", na);
	if (na == 65280)
		gelu_x_case(cb, "every finite bf16", sa, na, xb, xf, na / 20);
	free(xb), free(xf);
}

static void ln_case(struct fd_ctx *cb)
{
	enum { N = 3, C = 40, H = 5, W = 7 };
	int64_t sh[4] = {N, C, H, W}, sc[1] = {C};
	size_t n = (size_t)N * C * H * W;
	float *x0 = malloc(n * sizeof *x0), *g = malloc(n * sizeof *g), *res[2][4] = {{0}};
	for (size_t i = 0; i < n; i++) {
		x0[i] = (float)((double)((i * 7919) % 2003) / 300.0 - 3.1);
		g[i] = (float)((double)((i * 104729) % 1999) / 999.0 - 1.0);
	}
	int good = 1, isbf[2] = {0, 0};
	for (int v = 0; v < 2 && good; v++) {
		fd_ctx_step(cb);
		struct fd_tensor *x = fd_tensor_new(cb, FD_DEV_CPU, 4, sh);
		struct fd_tensor *w = fd_tensor_new(cb, FD_DEV_CPU, 1, sc), *b = fd_tensor_new(cb, FD_DEV_CPU, 1, sc);
		memcpy(x->data, x0, n * sizeof *x0);
		x->layout = FD_NHWC;
		for (int k = 0; k < C; k++)
			w->data[k] = 0.6f + 0.02f * (float)k, b->data[k] = 0.05f * (float)(k % 9) - 0.2f;
		fd_requires_grad(x), fd_requires_grad(w), fd_requires_grad(b);
		cb->bf16_out = v;
		struct fd_tensor *y = fd_layernorm2d(cb, x, w, b, 1e-6f);
		cb->bf16_out = 0;
		good = ok(y && fd_backward(cb, y, g) == 0, "layernorm2d channels last, %s y: runs %s", v ? "bf16" : "fp32",
			  cb->err.msg);
		if (!good)
			break;
		isbf[v] = (y->flags & FD_T_BF16) != 0;
		res[v][0] = malloc(n * sizeof(float));
		if (isbf[v])
			fd_dnnl_from_bf16(1, (const uint16_t *)y->data, res[v][0], n);
		else
			memcpy(res[v][0], y->data, n * sizeof(float));
		res[v][1] = fdup(x->grad, n), res[v][2] = fdup(w->grad, C), res[v][3] = fdup(b->grad, C);
	}
	if (good) {
		uint16_t *r = malloc(n * sizeof *r);
		float *rw = malloc(n * sizeof *rw);
		fd_dnnl_to_bf16(1, res[0][0], r, n);
		fd_dnnl_from_bf16(1, r, rw, n);
		size_t dif = ndiff(res[0][0], res[1][0], n);
		ok(!isbf[0] && isbf[1] && same(res[1][0], rw, n) && dif > n / 4,
		   "layernorm2d bf16 out: y the fp32 y rounded (%zu of %zu values differ from fp32's)", dif, n);
		ok(same(res[0][1], res[1][1], n) && same(res[0][2], res[1][2], C) && same(res[0][3], res[1][3], C),
		   "layernorm2d bf16 out: dx, dw, db the same bits");
		free(r), free(rw);
	}
	for (int v = 0; v < 2; v++)
		for (int k = 0; k < 4; k++)
			free(res[v][k]);
	/* NCHW: not taken; a bf16 input: refused */
	fd_ctx_step(cb);
	struct fd_tensor *x = fd_tensor_new(cb, FD_DEV_CPU, 4, sh);
	struct fd_tensor *w = fd_tensor_new(cb, FD_DEV_CPU, 1, sc), *b = fd_tensor_new(cb, FD_DEV_CPU, 1, sc);
	memcpy(x->data, x0, n * sizeof *x0);
	for (int k = 0; k < C; k++)
		w->data[k] = 1, b->data[k] = 0;
	cb->bf16_out = 1;
	struct fd_tensor *y = fd_layernorm2d(cb, x, w, b, 1e-6f);
	cb->bf16_out = 0;
	ok(y && !(y->flags & FD_T_BF16), "layernorm2d NCHW: bf16 out not taken (y fp32)");
	fd_ctx_step(cb);
	free(x0), free(g);
}

/* LayerNorm over channels-last rows of C channels on a bf16 x (the
 * depthwise output under c->bf16_y), y fp32 or bf16, against the same op on
 * the widened floats */
static void ln_x_case(struct fd_ctx *cb, int C)
{
	int64_t sh[4] = {3, C, 5, 7}, sc[1] = {C};
	size_t n = (size_t)3 * C * 5 * 7;
	uint16_t *xb = malloc(n * sizeof *xb);
	float *xf = malloc(n * sizeof *xf), *g = malloc(n * sizeof *g);
	bf16_values(n, 7919, -3.1, 6.7, xb, xf);
	for (size_t i = 0; i < n; i++)
		g[i] = (float)((double)((i * 104729) % 1999) / 999.0 - 1.0);
	for (int yo = 0; yo < 2; yo++) {
		float *res[2][4] = {{0}};
		int good = 1;
		for (int v = 0; v < 2 && good; v++) {
			fd_ctx_step(cb);
			struct fd_tensor *x = v ? fd_tensor_new_bf16(cb, 4, sh) : fd_tensor_new(cb, FD_DEV_CPU, 4, sh);
			struct fd_tensor *w = fd_tensor_new(cb, FD_DEV_CPU, 1, sc), *b = fd_tensor_new(cb, FD_DEV_CPU, 1, sc);
			memcpy(x->data, v ? (const void *)xb : (const void *)xf, fd_tensor_bytes(x));
			x->layout = FD_NHWC;
			for (int k = 0; k < C; k++)
				w->data[k] = 0.6f + 0.9f * (float)(k % 11) / 11.0f, b->data[k] = 0.05f * (float)(k % 9) - 0.2f;
			fd_requires_grad(x), fd_requires_grad(w), fd_requires_grad(b);
			cb->bf16_out = yo;
			struct fd_tensor *y = fd_layernorm2d(cb, x, w, b, 1e-6f);
			cb->bf16_out = 0;
			good = ok(y && fd_backward(cb, y, g) == 0 && ((y->flags & FD_T_BF16) != 0) == yo,
				  "layernorm2d C %d on %s x, %s y: runs %s", C, v ? "bf16" : "fp32", yo ? "bf16" : "fp32",
				  cb->err.msg);
			if (!good)
				break;
			res[v][0] = malloc(n * sizeof(float));
			if (yo)
				fd_dnnl_from_bf16(1, (const uint16_t *)y->data, res[v][0], n);
			else
				memcpy(res[v][0], y->data, n * sizeof(float));
			res[v][1] = fdup(x->grad, n), res[v][2] = fdup(w->grad, C), res[v][3] = fdup(b->grad, C);
		}
		if (good)
			ok(same(res[0][0], res[1][0], n) && same(res[0][1], res[1][1], n) && same(res[0][2], res[1][2], C) &&
			   same(res[0][3], res[1][3], C),
			   "layernorm2d C %d, %s y: bf16 x gives the widened x's y, dx, dw, db bit for bit", C,
			   yo ? "bf16" : "fp32");
		for (int v = 0; v < 2; v++)
			for (int k = 0; k < 4; k++)
				free(res[v][k]);
	}
	free(xb), free(xf), free(g);
}

/* LayerNorm refuses a bf16 x in NCHW, with too many channels, in an fp32
 * context */
static void ln_x_refused(struct fd_ctx *cb, struct fd_ctx *cf)
{
	int64_t s1[4] = {2, 8, 3, 5}, s2[4] = {1, FD_LN_BF16_MAXC + 1, 1, 1}, c1[1] = {8}, c2[1] = {FD_LN_BF16_MAXC + 1};
	struct { const char *what; const int64_t *sh, *sc; int nhwc; struct fd_ctx *c; } r[3] = {
		{"NCHW", s1, c1, 0, cb}, {"more than FD_LN_BF16_MAXC channels", s2, c2, 1, cb}, {"an fp32 context", s1, c1, 1, cf}};
	for (int i = 0; i < 3; i++) {
		struct fd_ctx *c = r[i].c;
		fd_ctx_step(c);
		struct fd_tensor *x = fd_tensor_new_bf16(c, 4, r[i].sh);
		struct fd_tensor *w = fd_tensor_new(c, FD_DEV_CPU, 1, r[i].sc), *b = fd_tensor_new(c, FD_DEV_CPU, 1, r[i].sc);
		memset(x->data, 0, fd_tensor_bytes(x));
		for (int64_t k = 0; k < w->numel; k++)
			w->data[k] = 1, b->data[k] = 0;
		x->layout = r[i].nhwc ? FD_NHWC : FD_NCHW;
		ok(!fd_layernorm2d(c, x, w, b, 1e-6f) && c->failed && strstr(c->err.msg, "bf16"),
		   "layernorm2d refuses a bf16 x: %s: %s", r[i].what, c->err.msg);
		fd_ctx_step(c);
	}
}

/* fd_mul of an fp32 operand (shape so) and a channels-last [N, C, H, W] in
 * bf16 (hfirst: the bf16 one is a), y in bf16 when yo (c->bf16_out),
 * against the same with the widened floats */
static void mul_b_case(struct fd_ctx *cb, int C, const int64_t *so, int ndo, int hfirst, int yo, const char *what)
{
	int64_t sh[4] = {2, C, 9, 11};
	size_t n = (size_t)2 * C * 9 * 11, no = 1;
	for (int i = 0; i < ndo; i++)
		no *= (size_t)so[i];
	uint16_t *hb = malloc(n * sizeof *hb);
	float *hf = malloc(n * sizeof *hf), *o = malloc(no * sizeof *o), *g = malloc(n * sizeof *g);
	bf16_values(n, 7919, -5.0, 10.0, hb, hf);
	for (size_t i = 0; i < no; i++)
		o[i] = (float)((double)((i * 104729) % 997) / 331.0 - 1.3);
	for (size_t i = 0; i < n; i++)
		g[i] = (float)((double)((i * 40503) % 1999) / 999.0 - 1.0);
	float *res[2][3] = {{0}};
	int good = 1;
	for (int v = 0; v < 2 && good; v++) {
		fd_ctx_step(cb);
		struct fd_tensor *h = v ? fd_tensor_new_bf16(cb, 4, sh) : fd_tensor_new(cb, FD_DEV_CPU, 4, sh);
		struct fd_tensor *t = fd_tensor_new(cb, FD_DEV_CPU, ndo, so);
		h->layout = FD_NHWC;
		if (ndo == 4)
			t->layout = FD_NHWC;
		memcpy(h->data, v ? (const void *)hb : (const void *)hf, fd_tensor_bytes(h));
		memcpy(t->data, o, no * sizeof *o);
		fd_requires_grad(h), fd_requires_grad(t);
		cb->bf16_out = yo;
		struct fd_tensor *y = hfirst ? fd_mul(cb, h, t) : fd_mul(cb, t, h);
		cb->bf16_out = 0;
		good = ok(y && ((y->flags & FD_T_BF16) != 0) == yo && fd_backward(cb, y, g) == 0,
			  "mul %s, %s operand: runs %s", what, v ? "bf16" : "fp32", cb->err.msg);
		if (good) {
			res[v][0] = malloc(n * sizeof(float));
			if (yo)
				fd_dnnl_from_bf16(1, (const uint16_t *)y->data, res[v][0], n);
			else
				memcpy(res[v][0], y->data, n * sizeof(float));
			res[v][1] = fdup(h->grad, n), res[v][2] = fdup(t->grad, no);
		}
	}
	if (good)
		ok(same(res[0][0], res[1][0], n) && same(res[0][1], res[1][1], n) && same(res[0][2], res[1][2], no),
		   "mul %s: y and both gradients with the bf16 operand the same bits as with it widened", what);
	for (int v = 0; v < 2; v++)
		for (int k = 0; k < 3; k++)
			free(res[v][k]);
	free(hb), free(hf), free(o), free(g);
}

static void mul_refused(struct fd_ctx *cb, struct fd_ctx *cf)
{
	int64_t sh[4] = {2, 8, 3, 5}, sb[4] = {2, 8, 3, 1}, sw[4] = {2, 1, 3, 5};
	struct { const char *what; int add; const int64_t *hs, *os; struct fd_ctx *c; } r[4] = {
		{"add", 1, sh, sh, cb},
		{"a broadcast bf16 operand", 0, sb, sh, cb},
		{"beside an operand broadcast along the innermost dim", 0, sh, sw, cb},
		{"an fp32 context", 0, sh, sh, cf},
	};
	for (int i = 0; i < 4; i++) {
		struct fd_ctx *c = r[i].c;
		fd_ctx_step(c);
		struct fd_tensor *h = fd_tensor_new_bf16(c, 4, r[i].hs), *t = fd_tensor_new(c, FD_DEV_CPU, 4, r[i].os);
		memset(h->data, 0, fd_tensor_bytes(h));
		memset(t->data, 0, fd_tensor_bytes(t));
		h->layout = t->layout = FD_NHWC;
		struct fd_tensor *y = r[i].add ? fd_add(c, t, h) : fd_mul(c, t, h);
		ok(!y && c->failed && strstr(c->err.msg, "bf16"), "bf16 operand: %s refused: %s", r[i].what, c->err.msg);
		fd_ctx_step(c);
	}
}

/* The global average pool of a channels-last bf16 x against the widened x */
static void gap_case(struct fd_ctx *cb, struct fd_ctx *cf)
{
	int64_t sh[4] = {3, 40, 9, 7};
	size_t n = 3 * 40 * 9 * 7, ny = 3 * 40;
	uint16_t *xb = malloc(n * sizeof *xb);
	float *xf = malloc(n * sizeof *xf), g[3 * 40], *res[2][2] = {{0}};
	bf16_values(n, 7919, -4.0, 9.0, xb, xf);
	for (size_t i = 0; i < ny; i++)
		g[i] = (float)((double)((i * 104729) % 1999) / 999.0 - 1.0);
	int good = 1;
	for (int v = 0; v < 2 && good; v++) {
		fd_ctx_step(cb);
		struct fd_tensor *x = v ? fd_tensor_new_bf16(cb, 4, sh) : fd_tensor_new(cb, FD_DEV_CPU, 4, sh);
		memcpy(x->data, v ? (const void *)xb : (const void *)xf, fd_tensor_bytes(x));
		x->layout = FD_NHWC;
		fd_requires_grad(x);
		struct fd_tensor *y = fd_adaptive_avgpool2d(cb, x, 1, 1);
		good = ok(y && fd_backward(cb, y, g) == 0, "global average pool on %s x: runs %s", v ? "bf16" : "fp32",
			  cb->err.msg);
		if (good)
			res[v][0] = fdup(y->data, ny), res[v][1] = fdup(x->grad, n);
	}
	if (good)
		ok(same(res[0][0], res[1][0], ny) && same(res[0][1], res[1][1], n),
		   "global average pool: bf16 x gives the widened x's y and dx bit for bit");
	for (int v = 0; v < 2; v++)
		free(res[v][0]), free(res[v][1]);
	struct { const char *what; int nhwc, ho; struct fd_ctx *c; } r[3] = {
		{"NCHW", 0, 1, cb}, {"to 2x2", 1, 2, cb}, {"an fp32 context", 1, 1, cf}};
	for (int i = 0; i < 3; i++) {
		fd_ctx_step(r[i].c);
		struct fd_tensor *x = fd_tensor_new_bf16(r[i].c, 4, sh);
		memcpy(x->data, xb, n * sizeof *xb);
		x->layout = r[i].nhwc ? FD_NHWC : FD_NCHW;
		ok(!fd_adaptive_avgpool2d(r[i].c, x, r[i].ho, r[i].ho) && r[i].c->failed && strstr(r[i].c->err.msg, "bf16"),
		   "global average pool refuses a bf16 x %s: %s", r[i].what, r[i].c->err.msg);
		fd_ctx_step(r[i].c);
	}
	free(xb), free(xf);
}

static uint64_t bf16_outs(const struct fd_ctx *c)
{
	return c->bf16_outs;
}

/* one bf16 step with and without the SE's bf16 input */
static void se_model_case(const char *name, int size, int want, int amx)
{
	struct fd_err e = {{0}};
	struct fd_model *m;
	if (!ok(fd_model_new_arch(fd_model_arch_find(name), 3, 7, &m, &e) == 0, "%s: built %s", name, e.msg))
		return;
	model_ab_rounding(name, m, size, &m->no_bf16_se, bf16_outs, want, amx, "squeeze-excitation inputs");
	fd_model_free(m);
}

/* one bf16 step with and without the bf16 residual stream */
static void res_model_case(const char *name, int size, int want, int amx)
{
	struct fd_err e = {{0}};
	struct fd_model *m;
	if (!ok(fd_model_new_arch(fd_model_arch_find(name), 3, 7, &m, &e) == 0, "%s: built %s", name, e.msg))
		return;
	model_ab_rounding(name, m, size, &m->no_bf16_res, bf16_outs, want, amx, "residual stream");
	fd_model_free(m);
}

int main(void)
{
	struct fd_ctx cb, cf;
	struct fd_err e = {{0}};
	ctx_open(&cb, 2, 1);
	if (fd_ctx_set_precision(&cb, FD_PREC_BF16, &e) != 0) {
		ok(!cpu_has("avx512_bf16"), "no bf16 on this CPU (%s): no bf16 tensors", e.msg);
		fd_ctx_free(&cb);
		return tap_done();
	}
	cb.training = 1;
	gelu_x_cases(&cb);
	{ /* an fp32 context refuses a bf16 x */
		ctx_open(&cf, 2, 1);
		fd_ctx_step(&cf);
		int64_t sh[1] = {8};
		struct fd_tensor *x = fd_tensor_new_bf16(&cf, 1, sh);
		memset(x->data, 0, 8 * sizeof(uint16_t));
		fd_requires_grad(x);
		ok(!fd_act_(&cf, FD_ACT_GELU, x) && cf.failed && strstr(cf.err.msg, "bf16"),
		   "gelu on a bf16 x in an fp32 context refused: %s", cf.err.msg);
	}
	ln_case(&cb);
	ln_x_case(&cb, 40);
	ln_x_case(&cb, 13); /* a tail after the 8-wide sums */
	ln_x_case(&cb, 768); /* ConvNeXt-Tiny's last stage */
	ln_x_refused(&cb, &cf);
	int64_t s_scale[3] = {24, 1, 1}, s_full[4] = {2, 24, 9, 11}, s_wide[3] = {200, 1, 1}, s_se[4] = {2, 24, 1, 1};
	mul_b_case(&cb, 24, s_scale, 3, 0, 0, "layer scale [24,1,1] * bf16 [2,24,9,11]");
	mul_b_case(&cb, 24, s_scale, 3, 1, 0, "bf16 [2,24,9,11] * layer scale [24,1,1]");
	mul_b_case(&cb, 200, s_wide, 3, 0, 0, "layer scale [200,1,1] * bf16 [2,200,9,11] (two tiles of sums)");
	mul_b_case(&cb, 24, s_full, 4, 0, 0, "fp32 [2,24,9,11] * bf16 [2,24,9,11]");
	mul_b_case(&cb, 24, s_full, 4, 1, 0, "bf16 [2,24,9,11] * fp32 [2,24,9,11]");
	mul_b_case(&cb, 24, s_se, 4, 1, 0, "SE: bf16 [2,24,9,11] * fp32 [2,24,1,1]");
	mul_b_case(&cb, 24, s_se, 4, 1, 1, "SE: bf16 [2,24,9,11] * fp32 [2,24,1,1], bf16 y");
	mul_b_case(&cb, 200, s_wide, 3, 0, 1, "layer scale [200,1,1] * bf16 [2,200,9,11], bf16 y");
	mul_refused(&cb, &cf);
	gap_case(&cb, &cf);
	fd_ctx_free(&cf);
	fd_ctx_free(&cb);
	int amx = cpu_has("amx_bf16");
	se_model_case("efficientnet_b0", 96, 16, amx); /* every MBConv block has an SE */
	se_model_case("mobilenet_v3_small", 128, 9, amx); /* blocks 1 and 4-11 */
	res_model_case("resnet18", 96, 9, amx);  /* the stem's pooled output and 8 block outputs */
	res_model_case("resnet50", 64, 17, amx); /* and 16 */
	return tap_done();
}
