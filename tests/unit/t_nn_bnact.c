/* t_nn_bnact: batchnorm2d fused with ReLU, SiLU, Hardswish or nothing in
 * train mode (fd_batchnorm2d_act, lib/nn/batchnorm2d.h) against PyTorch's
 * nn.BatchNorm2d + activation in float64 (tests/ref/nn_bnact.py): output,
 * input/weight/bias gradients, running statistics and the counter, channels
 * first (the plane kernels) and channels last (the row kernels), through the
 * taped op (a fresh dx, overwritten) and through the CPU kernels (ADD
 * semantics); the fused op against the separate ops bit for bit; a perturbed
 * reference must fail; eval mode and other activations keep the separate ops.
 * With a bf16 output asked for (c->bf16_out in a bf16 context, the ResNet
 * blocks' hand-off to their next convolution): where the rows kernels run,
 * y is bf16, equal to torch's y within bf16's rounding and bit for bit the
 * fp32 op's y rounded (fd_dnnl_to_bf16); the gradients and running
 * statistics the same bits; elsewhere y stays fp32. */
#include "nn/act.h"
#include "nn/batchnorm2d.h"
#include "nn/fd_dnnl.h"
#include "nn/layout.h"
#include "fixture.h"
#include "nn_ctx.h"

/* as t_nn_batchnorm: float32 normalisation of O(1) values */
#define TOL 2e-5

/* How many values fail |a - r| <= atol + rtol |r| (a NaN fails): the
 * negative controls' silent form of tap_close_f32. */
static size_t nbad(const float *a, const float *r, size_t n, double atol, double rtol)
{
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += !(fabs((double)a[i] - r[i]) <= atol + rtol * fabs((double)r[i]));
	return bad;
}

struct res {
	char op[32];            /* the newest tape node's op after the forward */
	int bf16;               /* y was written in bf16 (FD_T_BF16; r->y widened) */
	int nodes;              /* tape nodes the forward recorded */
	float *y, *dx, *dw, *db, *rm, *rv, nbt;
};

struct bcase {
	int N, C, H, W, act;
	const float *x, *w, *b, *rm, *rv, *dy;
};

static void res_free(struct res *r)
{
	free(r->y), free(r->dx), free(r->dw), free(r->db), free(r->rm), free(r->rv);
}

static float *dup(const float *a, size_t n)
{
	float *d = malloc(n * sizeof *d);
	memcpy(d, a, n * sizeof *d);
	return d;
}

/* The taped forward and backward of case k in layout nhwc on c (train mode
 * unless eval): fused = fd_batchnorm2d_act, else fd_batchnorm2d then fd_act.
 * Results in NCHW order into r (malloc'd). 0, or -1 with c->err. */
static int run_out(struct fd_ctx *c, int fused, int nhwc, int eval, int bf16_out, const struct bcase *k,
		   struct res *r)
{
	int64_t sx[4] = {k->N, k->C, k->H, k->W}, sc[1] = {k->C}, s1[1] = {1};
	int HW = k->H * k->W, C = k->C;
	size_t n = (size_t)k->N * C * HW;
	struct fd_tensor *x = fd_tensor_new(c, FD_DEV_CPU, 4, sx), *w = fd_tensor_new(c, FD_DEV_CPU, 1, sc);
	struct fd_tensor *b = fd_tensor_new(c, FD_DEV_CPU, 1, sc), *rm = fd_tensor_new(c, FD_DEV_CPU, 1, sc);
	struct fd_tensor *rv = fd_tensor_new(c, FD_DEV_CPU, 1, sc), *nbt = fd_tensor_new(c, FD_DEV_CPU, 1, s1);
	float *dy = fd_ctx_alloc(c, FD_DEV_CPU, (int64_t)n);
	if (!x || !w || !b || !rm || !rv || !nbt || !dy)
		return -1;
	if (nhwc) {
		x->layout = FD_NHWC;
		fd_transpose_cpu(1, k->N, C, HW, k->x, x->data, 0);
		fd_transpose_cpu(1, k->N, C, HW, k->dy, dy, 0);
	} else {
		memcpy(x->data, k->x, n * 4), memcpy(dy, k->dy, n * 4);
	}
	memcpy(w->data, k->w, C * 4), memcpy(b->data, k->b, C * 4);
	memcpy(rm->data, k->rm, C * 4), memcpy(rv->data, k->rv, C * 4);
	nbt->data[0] = 0;
	fd_requires_grad(x), fd_requires_grad(w), fd_requires_grad(b);
	c->training = !eval;
	struct fd_tensor *y;
	if (fused) {
		c->bf16_out = bf16_out;
		y = fd_batchnorm2d_act(c, x, w, b, rm, rv, nbt, FD_BN_MOMENTUM, FD_BN_EPS, k->act);
		c->bf16_out = 0;
	} else {
		y = fd_batchnorm2d(c, x, w, b, rm, rv, nbt, FD_BN_MOMENTUM, FD_BN_EPS);
		y = k->act >= 0 ? fd_act(c, (enum fd_act)k->act, y) : y;
	}
	c->training = 1;
	if (!y || !c->tape)
		return -1;
	snprintf(r->op, sizeof r->op, "%s", c->tape->op);
	r->nodes = 0;
	for (const struct fd_node *t = c->tape; t; t = t->prev)
		r->nodes++;
	if (fd_backward(c, y, dy) < 0)
		return -1;
	r->y = malloc(n * 4), r->dx = malloc(n * 4);
	r->bf16 = (y->flags & FD_T_BF16) != 0;
	float *yf = y->data;
	if (r->bf16 && (yf = fd_ctx_alloc(c, FD_DEV_CPU, (int64_t)n)))
		fd_dnnl_from_bf16(1, (const uint16_t *)y->data, yf, n);
	if (!yf)
		return -1;
	if (nhwc) {
		fd_transpose_cpu(1, k->N, HW, C, yf, r->y, 0);
		fd_transpose_cpu(1, k->N, HW, C, x->grad, r->dx, 0);
	} else {
		memcpy(r->y, yf, n * 4), memcpy(r->dx, x->grad, n * 4);
	}
	r->dw = dup(w->grad, C), r->db = dup(b->grad, C), r->rm = dup(rm->data, C), r->rv = dup(rv->data, C);
	r->nbt = nbt->data[0];
	fd_ctx_step(c);
	return 0;
}

static int run(struct fd_ctx *c, int fused, int nhwc, int eval, const struct bcase *k, struct res *r)
{
	return run_out(c, fused, nhwc, eval, 0, k, r);
}

/* The same values, as floats, equal (== : a zero of either sign matches). */
static int same(const float *a, const float *b, size_t n)
{
	size_t i = 0;
	while (i < n && a[i] == b[i])
		i++;
	return n > 0 && i == n;
}

/* The CPU kernels on case k, planes (N, C, HW) or rows (N*HW, C, 1) of the
 * channels-last copy: backward ADDS into buffers of ones. */
static void kernels(struct fd_ctx *c, const struct bcase *k, int rows, const float *const *ref, int i)
{
	int HW = k->H * k->W, C = k->C;
	size_t n = (size_t)k->N * C * HW;
	float *x = malloc(n * 4), *dy = malloc(n * 4), *y = filled(n, 9), *dx = filled(n, 1), *t = malloc(n * 4);
	float *dw = filled(C, 1), *db = filled(C, 1), *rm = dup(k->rm, C), *rv = dup(k->rv, C);
	float *mean = filled(C, 0), *inv = filled(C, 0), *za = filled(C, 0), *zb = filled(C, 0);
	if (rows) {
		fd_transpose_cpu(1, k->N, C, HW, k->x, x, 0);
		fd_transpose_cpu(1, k->N, C, HW, k->dy, dy, 0);
	} else {
		memcpy(x, k->x, n * 4), memcpy(dy, k->dy, n * 4);
	}
	int64_t n1 = rows ? (int64_t)k->N * HW : k->N, h1 = rows ? 1 : HW;
	char nm[96];
	ok(fd_batchnorm2d_act_fwd_train_cpu(c, k->act, n1, C, h1, x, k->w, k->b, rm, rv, FD_BN_MOMENTUM, FD_BN_EPS,
					    y, mean, inv, za, zb) == 0 &&
		   fd_batchnorm2d_act_bwd_train_cpu(c, k->act, n1, C, h1, x, k->w, mean, inv, za, zb, dy, dx, dw,
						    db) == 0,
	   "case %d kernels %s run %s", i, rows ? "rows" : "planes", c->err.msg);
	if (rows) {
		fd_transpose_cpu(1, k->N, HW, C, y, t, 0), memcpy(y, t, n * 4);
		fd_transpose_cpu(1, k->N, HW, C, dx, t, 0), memcpy(dx, t, n * 4);
	}
	float *edx = ones_plus(ref[1], n), *edw = ones_plus(ref[2], C), *edb = ones_plus(ref[3], C);
	snprintf(nm, sizeof nm, "case %d kernels %s: y", i, rows ? "rows" : "planes");
	tap_close_f32(nm, y, ref[0], n, TOL, TOL);
	snprintf(nm, sizeof nm, "case %d kernels %s: ones+dx (adds)", i, rows ? "rows" : "planes");
	tap_close_f32(nm, dx, edx, n, TOL, TOL);
	snprintf(nm, sizeof nm, "case %d kernels %s: ones+dweight, ones+dbias (add)", i, rows ? "rows" : "planes");
	ok(nbad(dw, edw, C, TOL, TOL) == 0 && nbad(db, edb, C, TOL, TOL) == 0, "%s", nm);
	free(x), free(dy), free(y), free(dx), free(t), free(dw), free(db), free(rm), free(rv), free(mean);
	free(inv), free(za), free(zb), free(edx), free(edw), free(edb);
}

static const char *fused_name(int act)
{
	return act == FD_ACT_RELU ? "batchnorm2d_relu" : act == FD_ACT_SILU ? "batchnorm2d_silu"
	       : act == FD_ACT_HARDSWISH ? "batchnorm2d_hardswish" : "batchnorm2d";
}

/* Case k through the fused op asked for a bf16 output (c->bf16_out) in the
 * bf16 context cb, against f (the fp32 context's run) and torch's y. 1 when
 * y came out bf16. */
static int bf16_out_case(struct fd_ctx *cb, int nhwc, const struct bcase *k, const struct res *f, const float *ry,
			 int i)
{
	const char *lay = nhwc ? "channels last" : "NCHW";
	size_t n = (size_t)k->N * k->C * k->H * k->W, C = (size_t)k->C;
	struct res h;
	memset(&h, 0, sizeof h);
	if (!ok(run_out(cb, 1, nhwc, 0, 1, k, &h) == 0, "case %d %s bf16 out: runs %s", i, lay, cb->err.msg)) {
		fd_ctx_step(cb);
		return 0;
	}
	/* the rows kernels of the fused op (no activation: batchnorm2d's own op) */
	int want = (nhwc || k->H * k->W == 1) && k->act >= 0;
	ok(h.bf16 == want, "case %d %s bf16 out: y %s (%s)", i, lay, h.bf16 ? "bf16" : "fp32",
	   want ? "fused rows kernels" : k->act < 0 ? "no activation: not fused, stays fp32"
						  : "plane kernels keep fp32");
	/* f.y rounded as conv2d would round it */
	uint16_t *b = malloc(n * sizeof *b);
	float *r = malloc(n * sizeof *r);
	fd_dnnl_to_bf16(1, f->y, b, n);
	fd_dnnl_from_bf16(1, b, r, n);
	const float *want_y = h.bf16 ? r : f->y;
	ok(!memcmp(h.y, want_y, n * sizeof *r) && !memcmp(h.dx, f->dx, n * 4) && !memcmp(h.dw, f->dw, C * 4) &&
		   !memcmp(h.db, f->db, C * 4) && !memcmp(h.rm, f->rm, C * 4) && !memcmp(h.rv, f->rv, C * 4),
	   "case %d %s bf16 out: y the fp32 op's %s, gradients and running stats the same bits", i, lay,
	   h.bf16 ? "rounded to bf16" : "itself");
	if (h.bf16) {
		/* torch's y within bf16's rounding (its unit roundoff: 2^-8 relative,
		 * 8 significant bits) plus the float32 tolerance */
		char nm[96];
		snprintf(nm, sizeof nm, "case %d %s bf16 out: y vs torch within bf16 rounding", i, lay);
		tap_close_f32(nm, h.y, ry, n, TOL, 1.0 / 256 + TOL);
		/* negative control: fp32's y itself differs from the bf16 y (it was rounded) */
		size_t d = 0;
		for (size_t j = 0; j < n; j++)
			d += h.y[j] != f->y[j];
		ok(d > n / 4, "case %d %s bf16 out: %zu of %zu values differ from fp32's y", i, lay, d, n);
	}
	free(b), free(r);
	res_free(&h);
	return h.bf16;
}

int main(void)
{
	struct fd_st st;
	struct fd_ctx c, cb;
	ctx_open(&c, 2, 1);
	ctx_open(&cb, 2, 1);
	struct fd_err e = {{0}};
	int bf16 = fd_ctx_set_precision(&cb, FD_PREC_BF16, &e) == 0, nbf16 = 0, nbf16_runs = 0;
	if (!bf16)
		diag("no bf16 on this CPU (%s): the bf16 output cases are skipped", e.msg);
	char nm[128];
	fix_open(&st, "nn_bnact", "bnact");
	int cases = fix_cases(&st), checked = 0, acts[4] = {0};
	ok(cases >= 8, "fixture has %d cases", cases);
	for (int i = 0; i < cases; i++) {
		const int32_t *v = fix_i32(&st, i, "shape", 5);
		struct bcase k = {v[0], v[1], v[2], v[3], v[4], NULL, NULL, NULL, NULL, NULL, NULL};
		size_t n = (size_t)k.N * k.C * k.H * k.W, C = (size_t)k.C;
		diag("case %d: N=%d C=%d H=%d W=%d act %s", i, k.N, k.C, k.H, k.W,
		     k.act < 0 ? "none" : fd_act_name((enum fd_act)k.act));
		k.x = fix_f32(&st, i, "x", (long)n, 0), k.w = fix_f32(&st, i, "weight", (long)C, 0);
		k.b = fix_f32(&st, i, "bias", (long)C, 0), k.rm = fix_f32(&st, i, "rm", (long)C, 0);
		k.rv = fix_f32(&st, i, "rv", (long)C, 0), k.dy = fix_f32(&st, i, "dy", (long)n, 0);
		const char *names[] = {"y", "dx", "dweight", "dbias", "rm_new", "rv_new"};
		const float *ref[6];
		for (int j = 0; j < 6; j++)
			ref[j] = fix_f32(&st, i, names[j], j < 2 ? (long)n : (long)C, 0);
		acts[k.act == FD_ACT_RELU ? 0 : k.act == FD_ACT_SILU ? 1 : k.act == FD_ACT_HARDSWISH ? 2 : 3]++;
		for (int nhwc = 0; nhwc < 2; nhwc++) {
			const char *lay = nhwc ? "channels last" : "NCHW";
			struct res f, u;
			memset(&f, 0, sizeof f), memset(&u, 0, sizeof u);
			if (run(&c, 1, nhwc, 0, &k, &f) < 0 || run(&c, 0, nhwc, 0, &k, &u) < 0) {
				ok(0, "case %d %s: runs: %s", i, lay, c.err.msg);
				fd_ctx_step(&c);
				continue;
			}
			ok(f.nodes == 1 && !strcmp(f.op, fused_name(k.act)), "case %d %s: one node %s (got %d, %s)", i,
			   lay, fused_name(k.act), f.nodes, f.op);
			const float *got[6] = {f.y, f.dx, f.dw, f.db, f.rm, f.rv};
			for (int j = 0; j < 6; j++) {
				snprintf(nm, sizeof nm, "case %d %s: %s", i, lay, names[j]);
				tap_close_f32(nm, got[j], ref[j], j < 2 ? n : C, TOL, TOL);
			}
			ok(f.nbt == 1.0f, "case %d %s: num_batches_tracked 1 (%g)", i, lay, f.nbt);
			if (bf16) {
				nbf16 += bf16_out_case(&cb, nhwc, &k, &f, ref[0], i);
				nbf16_runs++;
			}
			/* fp32 context: the request is ignored (y fp32, same bits) */
			struct res q;
			memset(&q, 0, sizeof q);
			ok(run_out(&c, 1, nhwc, 0, 1, &k, &q) == 0 && !q.bf16 && !memcmp(q.y, f.y, n * 4),
			   "case %d %s: bf16 out asked in an fp32 context: y fp32, the same bits", i, lay);
			res_free(&q);
			/* the separate ops: the same bits (signs of zeros aside) */
			ok(same(f.y, u.y, n) && same(f.dx, u.dx, n) && same(f.dw, u.dw, C) && same(f.db, u.db, C) &&
				   same(f.rm, u.rm, C) && same(f.rv, u.rv, C),
			   "case %d %s: fused == batchnorm2d then activation, bit for bit", i, lay);
			/* negative controls: a reference off by 1e-3 in one value fails */
			float *pdx = dup(ref[1], n), *pdw = dup(ref[2], C);
			pdx[n / 2] += 1e-3f * (1 + fabsf(pdx[n / 2])), pdw[C - 1] += 1e-3f * (1 + fabsf(pdw[C - 1]));
			ok(nbad(f.dx, pdx, n, TOL, TOL) == 1 && nbad(f.dw, pdw, C, TOL, TOL) == 1,
			   "case %d %s: a dx and a dweight off by 1e-3 are caught", i, lay);
			free(pdx), free(pdw);
			res_free(&f), res_free(&u);
			checked++;
		}
		kernels(&c, &k, 0, ref, i);
		kernels(&c, &k, 1, ref, i);
	}
	ok(checked == 2 * cases && acts[0] && acts[1] && acts[2] && acts[3],
	   "%d case-layouts checked, every activation and none", checked);
	if (bf16)
		ok(nbf16_runs == 2 * cases && nbf16 >= cases, "bf16 out: %d of %d case-layouts wrote a bf16 y", nbf16,
		   nbf16_runs);

	/* eval mode, or an activation the kernels do not fuse: the separate ops */
	const float *x = fix_f32(&st, 0, "x", -1, 0);
	const int32_t *v = fix_i32(&st, 0, "shape", 5);
	struct bcase k = {v[0], v[1], v[2], v[3], FD_ACT_SILU, x, fix_f32(&st, 0, "weight", v[1], 0),
			  fix_f32(&st, 0, "bias", v[1], 0), fix_f32(&st, 0, "rm", v[1], 0),
			  fix_f32(&st, 0, "rv", v[1], 0), fix_f32(&st, 0, "dy", -1, 0)};
	struct res r, g;
	memset(&r, 0, sizeof r), memset(&g, 0, sizeof g);
	int rc = run(&c, 1, 0, 1, &k, &r);
	ok(rc == 0 && r.nodes == 2 && !strcmp(r.op, "silu") && r.nbt == 0,
	   "eval mode: batchnorm2d then silu, counter untouched (%d nodes, %s)", r.nodes, r.op);
	res_free(&r);
	k.act = FD_ACT_GELU;

	rc = run(&c, 1, 1, 0, &k, &g);
	ok(rc == 0 && g.nodes == 2 && !strcmp(g.op, "gelu"),
	   "gelu in train mode: batchnorm2d then gelu (%d nodes, %s)", g.nodes, g.op);
	res_free(&g);
	float one = 1;
	ok(fd_batchnorm2d_act_fwd_train_cpu(&c, FD_ACT_GELU, 2, 1, 1, &one, &one, &one, &one, &one, 0.1, 1e-5, &one,
					    &one, &one, &one, &one) < 0 &&
		   strstr(c.err.msg, "cannot be fused"),
	   "kernel refuses an activation it cannot fuse: %s", c.err.msg);
	fd_st_close(&st);
	fd_ctx_free(&c);
	fd_ctx_free(&cb);
	return tap_done();
}
