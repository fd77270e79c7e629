/* t_nn_bnpool: batchnorm2d, an activation and a max pool as one op in train
 * mode (fd_batchnorm2d_act_maxpool, lib/nn/batchnorm2d.h):
 *   against PyTorch's nn.BatchNorm2d + ReLU / SiLU / Hardswish / nothing +
 *   F.max_pool2d in float64 (tests/ref/nn_bnpool.py): pooled output, input,
 *   weight and bias gradients, running statistics and the counter, for 2x2/2,
 *   3x3/2 padding 1 (ResNet's stem), overlapping 3x3/1 and 2x2/1, 3x3/3,
 *   odd sizes, planted ties; channels last (one fused op; for 2x2/2 after
 *   ReLU on even sizes its own kernels, fd_batchnorm2d_pool22) and
 *   channels first (the separate ops);
 *   against the separate taped ops (batchnorm2d, the activation, max_pool2d)
 *   bit for bit: y, gradients, running statistics; with x's gradient
 *   already holding values, dx added into it: the separate ops' bits and
 *   the seed plus the fresh dx;
 *   a bf16 output asked for in a bf16 context: y the fp32 op's y rounded,
 *   gradients the same bits; in an fp32 context, or where the op falls back
 *   to the separate ops, y stays fp32;
 *   the gather kernel (fd_maxpool2d_nhwc_grad_rows; its own path for
 *   disjoint windows, 2x2/2 and 3x3/3) in blocks of odd length against the
 *   max pool's own backward bit for bit, and its refusal of
 *   windows overlapping more than FD_MP_MAXWIN times;
 *   whole models (SimpleCNN, ResNet-18's stem): training steps with and
 *   without the fused op (m->no_bn_pool), fp32 and bf16: logits and
 *   parameter gradients bit for bit, a smaller training arena;
 *   negative controls: a perturbed reference fails. */
#include "models/fd_model.h"
#include "nn/act.h"
#include "nn/batchnorm2d.h"
#include "nn/fd_dnnl.h"
#include "nn/layout.h"
#include "nn/loss.h"
#include "nn/pool2d.h"
#include "fixture.h"
#include "nn_ctx.h"
#include "model_ab.h"

/* as t_nn_bnact */
#define TOL 2e-5

static size_t nbad(const float *a, const float *r, size_t n, double atol, double rtol)
{
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += !(fabs((double)a[i] - r[i]) <= atol + rtol * fabs((double)r[i]));
	return bad;
}

/* The same values, as floats, equal (== : a zero of either sign matches). */
static int same(const float *a, const float *b, size_t n)
{
	size_t i = 0;
	while (i < n && a[i] == b[i])
		i++;
	return n > 0 && i == n;
}

static float *fdup(const float *a, size_t n)
{
	float *d = malloc((n ? n : 1) * sizeof *d);
	memcpy(d, a, n * sizeof *d);
	return d;
}

struct pcase {
	int N, C, H, W, act, k, s, p, Ho, Wo;
	const float *x, *w, *b, *rm, *rv, *dy;
};

struct res {
	char op[48];  /* the newest tape node's op after the forward */
	int nodes;    /* tape nodes the forward recorded */
	int bf16;     /* y came out bf16 (r->y widened) */
	int p22;      /* fused, and fd_batchnorm2d_pool22 said its own 2x2 kernels run */
	float *y, *dx, *dw, *db, *rm, *rv, nbt;
};

static void res_free(struct res *r)
{
	free(r->y), free(r->dx), free(r->dw), free(r->db), free(r->rm), free(r->rv);
}

/* Case k on c, train mode: fused = fd_batchnorm2d_act_maxpool (c->bf16_out
 * = bf16_out around it), else fd_batchnorm2d, fd_act, fd_maxpool2d; x
 * channels last when nhwc; seed (NCHW, or NULL): x's gradient exists
 * before the backward with these values, so the backward adds into it.
 * Results in NCHW order into r. 0, or -1. */
static int run_seeded(struct fd_ctx *c, int fused, int nhwc, int bf16_out, const struct pcase *k,
		      const float *seed, struct res *r)
{
	int64_t sx[4] = {k->N, k->C, k->H, k->W}, sc[1] = {k->C}, s1[1] = {1};
	int HW = k->H * k->W, P = k->Ho * k->Wo, C = k->C;
	size_t n = (size_t)k->N * C * HW, np = (size_t)k->N * C * P;
	struct fd_tensor *x = fd_tensor_new(c, FD_DEV_CPU, 4, sx), *w = fd_tensor_new(c, FD_DEV_CPU, 1, sc);
	struct fd_tensor *b = fd_tensor_new(c, FD_DEV_CPU, 1, sc), *rm = fd_tensor_new(c, FD_DEV_CPU, 1, sc);
	struct fd_tensor *rv = fd_tensor_new(c, FD_DEV_CPU, 1, sc), *nbt = fd_tensor_new(c, FD_DEV_CPU, 1, s1);
	float *dy = fd_ctx_alloc(c, FD_DEV_CPU, (int64_t)np);
	if (!x || !w || !b || !rm || !rv || !nbt || !dy)
		return -1;
	if (nhwc) {
		x->layout = FD_NHWC;
		fd_transpose_cpu(1, k->N, C, HW, k->x, x->data, 0);
		fd_transpose_cpu(1, k->N, C, P, k->dy, dy, 0);
	} else {
		memcpy(x->data, k->x, n * 4), memcpy(dy, k->dy, np * 4);
	}
	memcpy(w->data, k->w, C * 4), memcpy(b->data, k->b, C * 4);
	memcpy(rm->data, k->rm, C * 4), memcpy(rv->data, k->rv, C * 4);
	nbt->data[0] = 0;
	fd_requires_grad(x), fd_requires_grad(w), fd_requires_grad(b);
	if (seed) {
		if (!(x->grad = fd_ctx_alloc(c, FD_DEV_CPU, (int64_t)n)))
			return -1;
		if (nhwc)
			fd_transpose_cpu(1, k->N, C, HW, seed, x->grad, 0);
		else
			memcpy(x->grad, seed, n * 4);
	}
	c->training = 1;
	struct fd_tensor *y;
	r->p22 = 0;
	if (fused) {
		r->p22 = fd_batchnorm2d_pool22(c, x, k->act, k->k, k->s, k->p);
		c->bf16_out = bf16_out;
		y = fd_batchnorm2d_act_maxpool(c, x, w, b, rm, rv, nbt, FD_BN_MOMENTUM, FD_BN_EPS, k->act, k->k, k->s,
					       k->p);
		c->bf16_out = 0;
	} else {
		y = fd_batchnorm2d(c, x, w, b, rm, rv, nbt, FD_BN_MOMENTUM, FD_BN_EPS);
		y = k->act >= 0 ? fd_act(c, (enum fd_act)k->act, y) : y;
		y = fd_maxpool2d(c, y, k->k, k->s, k->p, 0);
	}
	if (!y || !c->tape || y->numel != (int64_t)np)
		return -1;
	snprintf(r->op, sizeof r->op, "%s", c->tape->op);
	r->nodes = 0;
	for (const struct fd_node *t = c->tape; t; t = t->prev)
		r->nodes++;
	if (fd_backward(c, y, dy) < 0)
		return -1;
	r->bf16 = (y->flags & FD_T_BF16) != 0;
	float *yf = y->data;
	if (r->bf16 && (yf = fd_ctx_alloc(c, FD_DEV_CPU, (int64_t)np)))
		fd_dnnl_from_bf16(1, (const uint16_t *)y->data, yf, np);
	if (!yf)
		return -1;
	r->y = malloc(np * 4), r->dx = malloc(n * 4);
	if (nhwc) {
		fd_transpose_cpu(1, k->N, P, C, yf, r->y, 0);
		fd_transpose_cpu(1, k->N, HW, C, x->grad, r->dx, 0);
	} else {
		memcpy(r->y, yf, np * 4), memcpy(r->dx, x->grad, n * 4);
	}
	r->dw = fdup(w->grad, C), r->db = fdup(b->grad, C), r->rm = fdup(rm->data, C), r->rv = fdup(rv->data, C);
	r->nbt = nbt->data[0];
	fd_ctx_step(c);
	return 0;
}

static int run(struct fd_ctx *c, int fused, int nhwc, int bf16_out, const struct pcase *k, struct res *r)
{
	return run_seeded(c, fused, nhwc, bf16_out, k, NULL, r);
}

static const char *pool_name(int act)
{
	return act == FD_ACT_RELU ? "batchnorm2d_relu_max_pool2d" : act == FD_ACT_SILU ? "batchnorm2d_silu_max_pool2d"
	       : act == FD_ACT_HARDSWISH ? "batchnorm2d_hardswish_max_pool2d" : "batchnorm2d_max_pool2d";
}

/* One fixture case: torch, the separate ops, bf16 out. 1 when checked. */
static int fixture_case(struct fd_ctx *c, struct fd_ctx *cb, struct fd_st *st, int i, int *nbf16, int *np22)
{
	const int32_t *v = fix_i32(st, i, "shape", 8);
	struct pcase k = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], 0, 0, NULL, NULL, NULL, NULL, NULL, NULL};
	struct fd_pool2d_shape ps = {k.N, k.C, k.H, k.W, k.k, k.k, k.s, k.s, k.p, k.p, 0, 1};
	fd_pool2d_out_size(&ps, &k.Ho, &k.Wo, NULL);
	size_t n = (size_t)k.N * k.C * k.H * k.W, np = (size_t)k.N * k.C * k.Ho * k.Wo, C = (size_t)k.C;
	diag("case %d: N=%d C=%d H=%d W=%d act %s, pool %dx%d/%d pad %d", i, k.N, k.C, k.H, k.W,
	     k.act < 0 ? "none" : fd_act_name((enum fd_act)k.act), k.k, k.k, k.s, k.p);
	k.x = fix_f32(st, i, "x", (long)n, 0), k.w = fix_f32(st, i, "weight", (long)C, 0);
	k.b = fix_f32(st, i, "bias", (long)C, 0), k.rm = fix_f32(st, i, "rm", (long)C, 0);
	k.rv = fix_f32(st, i, "rv", (long)C, 0), k.dy = fix_f32(st, i, "dy", (long)np, 0);
	const char *names[] = {"y", "dx", "dweight", "dbias", "rm_new", "rv_new"};
	const float *ref[6];
	size_t len[6] = {np, n, C, C, C, C};
	for (int j = 0; j < 6; j++)
		ref[j] = fix_f32(st, i, names[j], (long)len[j], 0);
	char nm[128];
	int done = 0;
	for (int nhwc = 0; nhwc < 2; nhwc++) {
		const char *lay = nhwc ? "channels last" : "NCHW";
		struct res f, u;
		memset(&f, 0, sizeof f), memset(&u, 0, sizeof u);
		if (!ok(run(c, 1, nhwc, 0, &k, &f) == 0 && run(c, 0, nhwc, 0, &k, &u) == 0, "case %d %s: runs %s", i,
			lay, c->err.msg)) {
			fd_ctx_step(c);
			continue;
		}
		if (nhwc) {
			ok(f.nodes == 1 && !strcmp(f.op, pool_name(k.act)), "case %d %s: one node %s (got %d, %s)", i, lay,
			   pool_name(k.act), f.nodes, f.op);
			/* the 2x2 kernels: 2x2/2 after ReLU on even sizes (the fixture's
			 * chunks of rows hold whole row pairs) */
			int want = k.act == FD_ACT_RELU && k.k == 2 && k.s == 2 && k.p == 0 && k.H % 2 == 0 && k.W % 2 == 0;
			ok(f.p22 == want, "case %d %s: the 2x2 pool kernels %s", i, lay, want ? "run" : "do not run");
			*np22 += f.p22;
		} else {
			ok(f.nodes >= 2 && !strcmp(f.op, "max_pool2d"), "case %d %s: the separate ops (%d nodes, last %s)",
			   i, lay, f.nodes, f.op);
			ok(!f.p22, "case %d %s: not the 2x2 pool kernels", i, lay);
		}
		const float *got[6] = {f.y, f.dx, f.dw, f.db, f.rm, f.rv};
		for (int j = 0; j < 6; j++) {
			snprintf(nm, sizeof nm, "case %d %s: %s", i, lay, names[j]);
			tap_close_f32(nm, got[j], ref[j], len[j], TOL, TOL);
		}
		ok(f.nbt == 1.0f, "case %d %s: num_batches_tracked 1 (%g)", i, lay, f.nbt);
		ok(same(f.y, u.y, np) && same(f.dx, u.dx, n) && same(f.dw, u.dw, C) && same(f.db, u.db, C) &&
			   same(f.rm, u.rm, C) && same(f.rv, u.rv, C),
		   "case %d %s: == batchnorm2d, activation, max_pool2d bit for bit", i, lay);
		/* negative controls: a reference off by 1e-3 in one value fails */
		float *pdx = fdup(ref[1], n), *py = fdup(ref[0], np);
		pdx[n / 3] += 1e-3f * (1 + fabsf(pdx[n / 3])), py[np - 1] += 1e-3f * (1 + fabsf(py[np - 1]));
		ok(nbad(f.dx, pdx, n, TOL, TOL) == 1 && nbad(f.y, py, np, TOL, TOL) == 1,
		   "case %d %s: a dx and a y off by 1e-3 are caught", i, lay);
		free(pdx), free(py);
		/* x's gradient already holding values: the backward adds dx into
		 * it (the accumulating dx pass), fused as the separate ops do, each
		 * value the seed plus the fresh dx */
		float *seed = malloc(n * 4), *sum = malloc(n * 4);
		for (size_t j = 0; j < n; j++)
			seed[j] = (float)((double)((j * 7919u) % 101) / 50.0 - 1.0), sum[j] = seed[j] + f.dx[j];
		struct res fa, ua;
		memset(&fa, 0, sizeof fa), memset(&ua, 0, sizeof ua);
		ok(run_seeded(c, 1, nhwc, 0, &k, seed, &fa) == 0 && run_seeded(c, 0, nhwc, 0, &k, seed, &ua) == 0 &&
			   !memcmp(fa.dx, ua.dx, n * 4) && !memcmp(fa.dx, sum, n * 4) && fa.p22 == f.p22,
		   "case %d %s: into an existing dx: the separate ops' bits, the seed + the fresh dx%s", i, lay,
		   f.p22 ? " (2x2 kernels)" : "");
		free(seed), free(sum), res_free(&fa), res_free(&ua);
		/* fp32 context: a bf16 output asked for is ignored */
		struct res q;
		memset(&q, 0, sizeof q);
		ok(run(c, 1, nhwc, 1, &k, &q) == 0 && !q.bf16 && !memcmp(q.y, f.y, np * 4),
		   "case %d %s: bf16 out asked in an fp32 context: y fp32, the same bits", i, lay);
		res_free(&q);
		if (cb) {
			struct res h;
			memset(&h, 0, sizeof h);
			if (ok(run(cb, 1, nhwc, 1, &k, &h) == 0, "case %d %s bf16 out: runs %s", i, lay, cb->err.msg)) {
				uint16_t *bb = malloc(np * sizeof *bb);
				float *r = malloc(np * sizeof *r);
				fd_dnnl_to_bf16(1, f.y, bb, np);
				fd_dnnl_from_bf16(1, bb, r, np);
				ok(h.bf16 == nhwc, "case %d %s bf16 out: y %s", i, lay, h.bf16 ? "bf16" : "fp32 (separate ops)");
				ok(!memcmp(h.y, h.bf16 ? r : f.y, np * 4) && !memcmp(h.dx, f.dx, n * 4) &&
					   !memcmp(h.dw, f.dw, C * 4) && !memcmp(h.db, f.db, C * 4) &&
					   !memcmp(h.rm, f.rm, C * 4) && !memcmp(h.rv, f.rv, C * 4),
				   "case %d %s bf16 out: y the fp32 y%s, gradients and running stats the same bits", i, lay,
				   h.bf16 ? " rounded" : "");
				size_t d = 0;
				for (size_t j = 0; j < np; j++)
					d += h.y[j] != f.y[j];
				if (h.bf16)
					ok(d > np / 4, "case %d %s bf16 out: %zu of %zu values differ from fp32's", i, lay, d,
					   np);
				*nbf16 += h.bf16;
				free(bb), free(r);
			} else {
				fd_ctx_step(cb);
			}
			res_free(&h);
		}
		res_free(&f), res_free(&u);
		done++;
	}
	return done == 2;
}

/* fd_maxpool2d_nhwc_grad_rows in blocks of 7 positions against the pool's
 * backward on a zeroed dx (and the written form for disjoint windows). */
static void gather_case(struct fd_ctx *c, int N, int C, int H, int W, int k, int s, int p)
{
	struct fd_pool2d_shape ps = {N, C, H, W, k, k, s, s, p, p, 0, 1};
	int Ho, Wo;
	fd_pool2d_out_size(&ps, &Ho, &Wo, NULL);
	size_t n = (size_t)N * H * W * C, np = (size_t)N * Ho * Wo * C;
	float *x = malloc(n * 4), *dy = malloc(np * 4), *y = malloc(np * 4), *ref = calloc(n, 4), *g = malloc(n * 4);
	float *wr = malloc(n * 4);
	int32_t *idx = malloc(np * 4);
	for (size_t i = 0; i < n; i++) /* few distinct values: ties */
		x[i] = (float)((i * 2654435761u) % 13);
	for (size_t i = 0; i < np; i++)
		dy[i] = (float)((double)((i * 40503u) % 1000) / 250.0 - 2.0);
	fd_maxpool2d_nhwc_fwd_cpu(c, &ps, x, y, idx);
	fd_maxpool2d_nhwc_bwd_cpu(c, &ps, dy, idx, ref);
	int rc = 0;
	for (int64_t m = 0; m < (int64_t)N * H * W && rc == 0; m += 7) {
		int64_t len = m + 7 <= (int64_t)N * H * W ? 7 : (int64_t)N * H * W - m;
		rc = fd_maxpool2d_nhwc_grad_rows(&ps, m, len, dy, idx, g + m * C);
	}
	size_t routed = 0;
	for (size_t i = 0; i < n; i++)
		routed += ref[i] != 0;
	ok(rc == 0 && !memcmp(g, ref, n * 4) && routed >= np / 4,
	   "gather %dx%d/%d pad %d on %dx%dx%dx%d: the backward's bits in blocks of 7 (%zu positions routed)", k, k,
	   s, p, N, C, H, W, routed);
	if (fd_maxpool2d_disjoint(&ps)) {
		fd_maxpool2d_nhwc_bwd_write_cpu(c, &ps, dy, idx, wr);
		ok(!memcmp(g, wr, n * 4), "gather %dx%d/%d: the written backward's bits", k, k, s);
	}
	free(x), free(dy), free(y), free(ref), free(g), free(wr), free(idx);
}

/* Training steps of model a (size x size inputs, precision prec) with and
 * without the fused op. */
static uint64_t bf16_outs(const struct fd_ctx *c)
{
	return c->bf16_outs;
}

static void model_case(const char *name, int size, enum fd_precision prec, int amx)
{
	struct fd_err e = {{0}};
	struct fd_model *m;
	struct model_ab r;
	const char *pn = prec == FD_PREC_BF16 ? "bf16" : "fp32";
	if (!ok(fd_model_new_arch(fd_model_arch_find(name), 3, 7, &m, &e) == 0, "%s: built %s", name, e.msg))
		return;
	m->no_bf16_res = 1; /* ResNet's pooled stem output joins the bf16 residual stream only fused: off */
	if (model_ab_run(name, m, size, prec, &m->no_bn_pool, bf16_outs, "_max_pool2d", &r)) {
		int want = !strcmp(name, "simplecnn") ? 4 : 1;
		/* SimpleCNN's ReLU outputs were arena tensors; ResNet's stem output
		 * was a gradient-pool block (fd_mconv_bn_fwd_transient) */
		ok(r.ops[0] == 0 && r.ops[1] == want && (want == 4 ? r.peak[1] < r.peak[0] : r.peak[1] <= r.peak[0]),
		   "%s %s: %d fused ops a step (0 without); training arena peak %.2f MiB (%.2f without)", name, pn,
		   r.ops[1], r.peak[1] / 1048576.0, r.peak[0] / 1048576.0);
		if (prec == FD_PREC_BF16 && !strcmp(name, "simplecnn"))
			ok(r.count[1] == r.count[0] + 3,
			   "%s bf16: the 3 pools that feed a convolution handed off in bf16 (%llu, %llu without)", name,
			   (unsigned long long)r.count[1], (unsigned long long)r.count[0]);
		if (prec == FD_PREC_FP32 || amx)
			ok(model_ab_same(&r), "%s %s: logits and parameter gradients bit for bit with and without the fused op",
			   name, pn);
		else
			diag("%s bf16: no AMX: convolutions whose backward-weights runs fp32 see the bf16 x (not compared)",
			     name);
	}
	model_ab_free(&r);
	fd_model_free(m);
}

int main(void)
{
	struct fd_st st;
	struct fd_ctx c, cb;
	struct fd_err e = {{0}};
	ctx_open(&c, 2, 1);
	ctx_open(&cb, 2, 1);
	int bf16 = fd_ctx_set_precision(&cb, FD_PREC_BF16, &e) == 0, nbf16 = 0, np22 = 0;
	if (!bf16)
		diag("no bf16 on this CPU (%s): the bf16 cases are skipped", e.msg);
	fix_open(&st, "nn_bnpool", "bnpool");
	int cases = fix_cases(&st), checked = 0;
	ok(cases >= 8, "fixture has %d cases", cases);
	for (int i = 0; i < cases; i++)
		checked += fixture_case(&c, bf16 ? &cb : NULL, &st, i, &nbf16, &np22);
	ok(checked == cases, "%d of %d cases checked in both layouts", checked, cases);
	ok(np22 >= 2, "%d channels-last cases ran the 2x2 pool kernels (ties, several chunks)", np22);
	if (bf16)
		ok(nbf16 == cases, "bf16 out: %d of %d channels-last cases wrote a bf16 y", nbf16, cases);

	/* eval mode: the separate ops, counter untouched */
	const int32_t *v = fix_i32(&st, 1, "shape", 8);
	int64_t sx[4] = {v[0], v[1], v[2], v[3]}, sc[1] = {v[1]};
	struct fd_tensor *x = fd_tensor_new(&c, FD_DEV_CPU, 4, sx), *w = fd_tensor_new(&c, FD_DEV_CPU, 1, sc);
	struct fd_tensor *b = fd_tensor_new(&c, FD_DEV_CPU, 1, sc), *rm = fd_tensor_new(&c, FD_DEV_CPU, 1, sc);
	struct fd_tensor *rv = fd_tensor_new(&c, FD_DEV_CPU, 1, sc);
	memcpy(x->data, fix_f32(&st, 1, "x", -1, 0), x->numel * 4);
	memcpy(w->data, fix_f32(&st, 1, "weight", v[1], 0), v[1] * 4);
	memcpy(b->data, fix_f32(&st, 1, "bias", v[1], 0), v[1] * 4);
	memcpy(rm->data, fix_f32(&st, 1, "rm", v[1], 0), v[1] * 4);
	memcpy(rv->data, fix_f32(&st, 1, "rv", v[1], 0), v[1] * 4);
	x->layout = FD_NHWC;
	fd_requires_grad(x);
	c.training = 0;
	ok(!fd_batchnorm2d_act_pools(&c, x, FD_ACT_RELU, 3, 2, 1), "eval mode: not fused");
	struct fd_tensor *y = fd_batchnorm2d_act_maxpool(&c, x, w, b, rm, rv, NULL, 0.1, 1e-5, FD_ACT_RELU, 3, 2, 1);
	ok(y && c.tape && !strcmp(c.tape->op, "max_pool2d") && c.tape->prev && !strcmp(c.tape->prev->op, "relu"),
	   "eval mode: batchnorm2d, relu, max_pool2d (%s)", c.tape ? c.tape->op : c.err.msg);
	c.training = 1;
	/* windows overlapping more than FD_MP_MAXWIN times: the separate ops */
	ok(fd_batchnorm2d_act_pools(&c, x, FD_ACT_RELU, 3, 2, 1) && !fd_batchnorm2d_act_pools(&c, x, FD_ACT_RELU, 5, 1, 2),
	   "train mode: 3x3/2 fused, 5x5/1 (25 windows a position) not");
	struct fd_pool2d_shape p5 = {1, 1, 5, 5, 5, 5, 1, 1, 2, 2, 0, 1};
	float z[25] = {0}, gz[25];
	int32_t iz[25] = {0};
	ok(fd_maxpool2d_nhwc_grad_rows(&p5, 0, 25, z, iz, gz) == -1, "gather refuses 5x5/1 (more than %d windows)",
	   FD_MP_MAXWIN);
	fd_ctx_step(&c);
	fd_st_close(&st);

	gather_case(&c, 2, 17, 9, 11, 2, 2, 0);
	gather_case(&c, 2, 17, 9, 11, 3, 2, 1);
	gather_case(&c, 1, 5, 8, 7, 3, 1, 1);
	gather_case(&c, 1, 5, 8, 7, 2, 1, 0);
	gather_case(&c, 2, 6, 11, 10, 3, 3, 0); /* disjoint, rows and columns in no window */
	fd_ctx_free(&c);
	fd_ctx_free(&cb);

	int amx = cpu_has("amx_bf16");
	model_case("simplecnn", 64, FD_PREC_FP32, amx);
	model_case("resnet18", 64, FD_PREC_FP32, amx);
	if (bf16) {
		model_case("simplecnn", 224, FD_PREC_BF16, amx);
		model_case("resnet18", 224, FD_PREC_BF16, amx);
	}
	return tap_done();
}
