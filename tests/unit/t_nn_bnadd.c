/* t_nn_bnadd: BN + residual add + activation as one training op
 * (fd_batchnorm2d_add_act, doc/nn-kernels.md "BN + add + ReLU").
 *   The op against the three ops it replaces (batchnorm2d, the in-place
 *   add, the in-place ReLU; each checked against torch in t_nn_bnact and
 *   t_nn_ops), train mode, channels last: y, dx, the residual's gradient,
 *   dgamma, dbeta and the running statistics bit for bit; ReLU and none;
 *   fp32 and bf16 input x (c->bf16_y's outputs); the residual's gradient
 *   fresh (written) and already holding values (added into); a perturbed
 *   residual gradient is caught (control).
 *   The bf16 residual stream (doc/nn-kernels.md "bf16 residual stream"):
 *   the op with the residual in bf16 and/or its output in bf16
 *   (c->bf16_out) against the op on the widened residual with an fp32
 *   output: y the same (or the fp32 y rounded), every gradient and the
 *   running statistics bit for bit; fp32 and bf16 x; ReLU and none.
 *   fd_batchnorm2d_add_fuses: refuses another activation, a residual of
 *   another shape, NCHW, eval mode, a bf16 residual in an fp32 context; the
 *   op then fails with a message.
 *   ResNet-18 (basic blocks) and ResNet-50 (bottlenecks) training steps
 *   with and without it (m->no_bn_add), fp32 and bf16: logits and parameter
 *   gradients bit for bit, every block's add fused, no larger arena. */
#include "models/fd_model.h"
#include "nn/act.h"
#include "nn/batchnorm2d.h"
#include "nn/binary.h"
#include "nn/fd_dnnl.h"
#include "nn/loss.h"
#include "fixture.h"
#include "nn_ctx.h"
#include "model_ab.h"

static float *fdup(const float *a, size_t n)
{
	float *d = malloc((n ? n : 1) * sizeof *d);
	if (a)
		memcpy(d, a, n * sizeof *d);
	return d;
}

static int same(const float *a, const float *b, size_t n)
{
	return a && b && !memcmp(a, b, n * sizeof *a);
}

enum { R_Y, R_DX, R_DID, R_DG, R_DB, R_RM, R_RV, R_N };

/* The bf16 residual stream's variants of run (below): id's values rounded
 * to bf16 (round), id stored in bf16 (idb), y asked in bf16 (yo:
 * c->bf16_out); 0 each by default */
static int h_round, h_idb, h_yo;

/* y = act(bn(x) + id) fused (v = 1) or as the three ops (v = 0); with
 * tee, id is also added to y after (its gradient then holds values when
 * the op's backward runs). Results into r (y widened where bf16). 0, or -1. */
static int run(int v, int N, int C, int H, int W, int act, int bf16, int tee, struct fd_ctx *c, float *r[R_N])
{
	int64_t sh[4] = {N, C, H, W}, sk[1] = {C}, s1[1] = {1};
	size_t n = (size_t)N * C * H * W;
	fd_ctx_step(c);
	c->training = 1;
	struct fd_tensor *x = bf16 ? fd_tensor_new_bf16(c, 4, sh) : fd_tensor_new(c, FD_DEV_CPU, 4, sh);
	struct fd_tensor *id = h_idb ? fd_tensor_new_bf16(c, 4, sh) : fd_tensor_new(c, FD_DEV_CPU, 4, sh);
	struct fd_tensor *g = fd_tensor_new(c, FD_DEV_CPU, 1, sk);
	struct fd_tensor *be = fd_tensor_new(c, FD_DEV_CPU, 1, sk), *rm = fd_tensor_new(c, FD_DEV_CPU, 1, sk);
	struct fd_tensor *rv = fd_tensor_new(c, FD_DEV_CPU, 1, sk), *nbt = fd_tensor_new(c, FD_DEV_CPU, 1, s1);
	x->layout = id->layout = FD_NHWC;
	float *xf = malloc(n * sizeof *xf), *idf = malloc(n * sizeof *idf);
	for (size_t i = 0; i < n; i++) {
		xf[i] = (float)((double)((i * 2654435761u) % 4001) / 1000.0 - 1.7);
		idf[i] = (float)((double)((i * 40503u) % 3001) / 1500.0 - 0.9);
	}
	if (h_round || h_idb) {
		uint16_t *t = malloc(n * sizeof *t);
		fd_dnnl_to_bf16(1, idf, t, n);
		fd_dnnl_from_bf16(1, t, idf, n);
		if (h_idb)
			memcpy(id->data, t, n * sizeof *t);
		free(t);
	}
	if (!h_idb)
		memcpy(id->data, idf, n * sizeof *idf);
	free(idf);
	if (bf16)
		fd_dnnl_to_bf16(1, xf, (uint16_t *)x->data, n);
	else
		memcpy(x->data, xf, n * sizeof *xf);
	free(xf);
	for (int k = 0; k < C; k++) {
		g->data[k] = 0.8f + 0.4f * (float)k / (float)C, be->data[k] = 0.05f * (float)(k % 7) - 0.1f;
		rm->data[k] = 0.1f, rv->data[k] = 1.5f;
	}
	nbt->data[0] = 0;
	fd_requires_grad(x), fd_requires_grad(id), fd_requires_grad(g), fd_requires_grad(be);
	struct fd_tensor *y;
	if (v) {
		c->bf16_out = h_yo;
		y = fd_batchnorm2d_add_act(c, x, g, be, rm, rv, nbt, 0.1, 1e-5, id, act);
		c->bf16_out = 0;
		if (y && ((y->flags & FD_T_BF16) != 0) != h_yo)
			return -1;
	} else {
		y = fd_add_(c, fd_batchnorm2d_act(c, x, g, be, rm, rv, nbt, 0.1, 1e-5, -1), id);
		y = act >= 0 ? fd_act_(c, (enum fd_act)act, y) : y;
	}
	if (!y)
		return -1;
	r[R_Y] = fdup(y->flags & FD_T_BF16 ? NULL : y->data, n);
	if (y->flags & FD_T_BF16)
		fd_dnnl_from_bf16(1, (const uint16_t *)y->data, r[R_Y], n);
	struct fd_tensor *out = tee ? fd_add(c, y, id) : y;
	float *dy = malloc(n * sizeof *dy);
	for (size_t i = 0; i < n; i++)
		dy[i] = (float)((double)((i * 69069u) % 1999) / 999.0 - 1.0);
	int rc = out ? fd_backward(c, out, dy) : -1;
	free(dy);
	if (rc < 0)
		return -1;
	r[R_DX] = fdup(x->grad, n), r[R_DID] = fdup(id->grad, n), r[R_DG] = fdup(g->grad, C);
	r[R_DB] = fdup(be->grad, C), r[R_RM] = fdup(rm->data, C), r[R_RV] = fdup(rv->data, C);
	return 0;
}

static void op_case(int N, int C, int H, int W, int act, int bf16, int tee)
{
	struct fd_ctx c;
	struct fd_err e = {{0}};
	ctx_open(&c, 2, 1);
	if (bf16 && fd_ctx_set_precision(&c, FD_PREC_BF16, &e) != 0) {
		fd_ctx_free(&c);
		return;
	}
	float *r[2][R_N] = {{0}};
	size_t n = (size_t)N * C * H * W, len[R_N] = {n, n, n, (size_t)C, (size_t)C, (size_t)C, (size_t)C};
	int good = ok(run(0, N, C, H, W, act, bf16, tee, &c, r[0]) == 0 && run(1, N, C, H, W, act, bf16, tee, &c, r[1]) == 0,
		      "%dx%dx%dx%d act %d%s%s: separate ops and the fused op ran %s", N, C, H, W, act,
		      bf16 ? " bf16 x" : "", tee ? " (residual read twice)" : "", c.err.msg);
	if (good) {
		int all = 1;
		for (int k = 0; k < R_N; k++)
			all &= same(r[0][k], r[1][k], len[k]);
		ok(all, "%dx%dx%dx%d act %d%s%s: y, dx, d(residual), dgamma, dbeta, running stats bit for bit", N, C, H,
		   W, act, bf16 ? " bf16 x" : "", tee ? " (residual gradient added into)" : "");
		if (!tee && act >= 0) {
			/* control: a residual gradient off by one ulp somewhere is caught */
			float *p = fdup(r[1][R_DID], n);
			size_t at = n / 3;
			p[at] = nextafterf(p[at] == 0 ? 1.0f : p[at], 2 * p[at] + 1);
			ok(!same(r[0][R_DID], p, n), "control: a perturbed residual gradient differs");
			free(p);
		}
	}
	for (int v = 0; v < 2; v++)
		for (int k = 0; k < R_N; k++)
			free(r[v][k]);
	fd_ctx_free(&c);
}

/* The bf16 residual stream: the fused op with id in bf16 and/or y in bf16
 * against the fused op on the widened id with an fp32 y (run's variants):
 * y the same (rounded: the fp32 y rounded), every gradient and the running
 * statistics bit for bit */
static void res_case(int N, int C, int H, int W, int act, int bf16x, int idb, int yo)
{
	struct fd_ctx c;
	struct fd_err e = {{0}};
	ctx_open(&c, 2, 1);
	if (fd_ctx_set_precision(&c, FD_PREC_BF16, &e) != 0) {
		fd_ctx_free(&c);
		return;
	}
	float *r[2][R_N] = {{0}};
	size_t n = (size_t)N * C * H * W, len[R_N] = {n, n, n, (size_t)C, (size_t)C, (size_t)C, (size_t)C};
	h_round = 1;
	int good = run(1, N, C, H, W, act, bf16x, 0, &c, r[0]) == 0;
	h_idb = idb, h_yo = yo;
	good = good && run(1, N, C, H, W, act, bf16x, 0, &c, r[1]) == 0;
	h_round = h_idb = h_yo = 0;
	good = ok(good, "%dx%dx%dx%d act %d%s: fused op with%s%s ran %s", N, C, H, W, act, bf16x ? " bf16 x" : "",
		  idb ? " a bf16 residual" : "", yo ? " a bf16 output" : "", c.err.msg);
	if (good) {
		if (yo) { /* the reference's y rounded */
			uint16_t *t = malloc(n * sizeof *t);
			fd_dnnl_to_bf16(1, r[0][R_Y], t, n);
			fd_dnnl_from_bf16(1, t, r[0][R_Y], n);
			free(t);
		}
		int all = 1;
		for (int k = 0; k < R_N; k++)
			all &= same(r[0][k], r[1][k], len[k]);
		ok(all, "%dx%dx%dx%d act %d%s%s%s: y%s, dx, d(residual), dgamma, dbeta, running stats bit for bit", N, C,
		   H, W, act, bf16x ? " bf16 x" : "", idb ? " bf16 residual" : "", yo ? " bf16 y" : "",
		   yo ? " (the fp32 y rounded)" : "");
	}
	for (int v = 0; v < 2; v++)
		for (int k = 0; k < R_N; k++)
			free(r[v][k]);
	fd_ctx_free(&c);
}

static void refusals(void)
{
	struct fd_ctx c;
	ctx_open(&c, 2, 1);
	fd_ctx_step(&c);
	c.training = 1;
	int64_t sh[4] = {2, 8, 4, 4}, so[4] = {2, 8, 4, 2}, sk[1] = {8};
	struct fd_tensor *x = fd_tensor_new(&c, FD_DEV_CPU, 4, sh), *id = fd_tensor_new(&c, FD_DEV_CPU, 4, sh);
	struct fd_tensor *o = fd_tensor_new(&c, FD_DEV_CPU, 4, so), *xn = fd_tensor_new(&c, FD_DEV_CPU, 4, sh);
	x->layout = id->layout = o->layout = FD_NHWC;
	ok(fd_batchnorm2d_add_fuses(&c, x, id, FD_ACT_RELU) && fd_batchnorm2d_add_fuses(&c, x, id, -1),
	   "fuses: ReLU and none, channels last, same shape");
	ok(!fd_batchnorm2d_add_fuses(&c, x, id, FD_ACT_SILU) && !fd_batchnorm2d_add_fuses(&c, x, o, FD_ACT_RELU) &&
	   !fd_batchnorm2d_add_fuses(&c, xn, xn, FD_ACT_RELU),
	   "does not fuse: SiLU, a residual of another shape, NCHW");
	struct fd_tensor *idh = fd_tensor_new_bf16(&c, 4, sh);
	idh->layout = FD_NHWC;
	ok(!fd_batchnorm2d_add_fuses(&c, x, idh, FD_ACT_RELU), "does not fuse: a bf16 residual in an fp32 context");
	c.training = 0;
	ok(!fd_batchnorm2d_add_fuses(&c, x, id, FD_ACT_RELU), "does not fuse: eval mode");
	struct fd_tensor *g = fd_tensor_new(&c, FD_DEV_CPU, 1, sk);
	struct fd_tensor *y = fd_batchnorm2d_add_act(&c, x, g, g, g, g, NULL, 0.1, 1e-5, id, FD_ACT_RELU);
	ok(!y && c.failed && strstr(c.err.msg, "do not fuse"), "the op refuses with a message: %s", c.err.msg);
	fd_ctx_free(&c);
}

/* training steps of model name with and without the fused op */
static void model_case(const char *name, int size, enum fd_precision prec, int want, int amx)
{
	struct fd_err e = {{0}};
	struct fd_model *m;
	struct model_ab r;
	const char *pn = prec == FD_PREC_BF16 ? "bf16" : "fp32";
	if (!ok(fd_model_new_arch(fd_model_arch_find(name), 3, 7, &m, &e) == 0, "%s: built %s", name, e.msg))
		return;
	m->no_bf16_res = 1; /* a bf16 residual stream needs the fused op: off on both sides */
	if (model_ab_run(name, m, size, prec, &m->no_bn_add, NULL, "batchnorm2d_add", &r)) {
		ok(r.ops[0] == 0 && r.ops[1] == want && r.peak[1] <= r.peak[0],
		   "%s %s: %d fused BN + add + ReLU a step (%d expected, 0 without); arena peak %.2f MiB (%.2f without)",
		   name, pn, r.ops[1], want, r.peak[1] / 1048576.0, r.peak[0] / 1048576.0);
		if (prec == FD_PREC_FP32 || amx)
			ok(model_ab_same(&r), "%s %s: logits and parameter gradients bit for bit with and without", name,
			   pn);
	}
	model_ab_free(&r);
	fd_model_free(m);
}

int main(void)
{
	int amx = cpu_has("amx_bf16");
	for (int bf = 0; bf < 2; bf++)
		for (int tee = 0; tee < 2; tee++) {
			op_case(4, 24, 9, 7, FD_ACT_RELU, bf, tee);
			op_case(3, 40, 5, 6, -1, bf, tee);
			op_case(2, 64, 17, 17, FD_ACT_RELU, bf, tee);
		}
	for (int bx = 0; bx < 2; bx++) {
		res_case(4, 24, 9, 7, FD_ACT_RELU, bx, 1, 0);
		res_case(4, 24, 9, 7, FD_ACT_RELU, bx, 0, 1);
		res_case(4, 24, 9, 7, FD_ACT_RELU, bx, 1, 1);
		res_case(2, 64, 17, 17, FD_ACT_RELU, bx, 1, 1);
		res_case(3, 40, 5, 6, -1, bx, 1, 1);
	}
	refusals();
	model_case("resnet18", 96, FD_PREC_FP32, 8, amx);
	model_case("resnet50", 64, FD_PREC_FP32, 16, amx);
	struct fd_ctx cb;
	struct fd_err e = {{0}};
	ctx_open(&cb, 2, 1);
	int bf16 = fd_ctx_set_precision(&cb, FD_PREC_BF16, &e) == 0;
	fd_ctx_free(&cb);
	if (bf16) {
		model_case("resnet18", 224, FD_PREC_BF16, 8, amx);
		model_case("resnet50", 160, FD_PREC_BF16, 16, amx);
	}
	return tap_done();
}
