/* t_nn_ops: every non-convolution op of lib/nn, forward, input gradient and
 * parameter gradients against PyTorch (fixtures of tests/ref/nn_core.py,
 * computed in float64 from float32 inputs), plus finite differences, the
 * broadcast reference loops, dropout/stochastic-depth semantics, the tape's
 * adding backward, intermediate gradients and "not supported" dispatch. */
#include "core/fd_progress.h"
#include "core/fd_rng.h"
#include "nn/act.h"
#include "nn/batchnorm2d.h"
#include "nn/binary.h"
#include "nn/dropout.h"
#include "nn/fd_params.h"
#include "nn/layernorm2d.h"
#include "nn/layout.h"
#include "nn/loss.h"
#include "nn/shape.h"
#include "nn/softmax.h"
#include "fixture.h"
#include "nn_ctx.h"

/* ops behind one signature for the harness */
static struct fd_tensor *f_act(struct fd_ctx *c, struct fd_tensor **in, void *arg)
{
	return fd_act(c, *(enum fd_act *)arg, in[0]);
}
static struct fd_tensor *f_prelu(struct fd_ctx *c, struct fd_tensor **in, void *arg)
{
	return fd_prelu(c, in[0], in[1]);
}
static struct fd_tensor *f_add(struct fd_ctx *c, struct fd_tensor **in, void *arg)
{
	return fd_add(c, in[0], in[1]);
}
static struct fd_tensor *f_mul(struct fd_ctx *c, struct fd_tensor **in, void *arg)
{
	return fd_mul(c, in[0], in[1]);
}
static struct fd_tensor *f_softmax(struct fd_ctx *c, struct fd_tensor **in, void *arg)
{
	return fd_softmax(c, in[0], *(int *)arg);
}
static struct fd_tensor *f_ln(struct fd_ctx *c, struct fd_tensor **in, void *arg)
{
	return fd_layernorm2d(c, in[0], in[1], in[2], 1e-6f);
}
static struct fd_tensor *f_bce(struct fd_ctx *c, struct fd_tensor **in, void *arg)
{
	return fd_bce_with_logits(c, in[0], in[1]);
}
static struct fd_tensor *f_ce(struct fd_ctx *c, struct fd_tensor **in, void *arg)
{
	return fd_cross_entropy(c, in[0], arg);
}

/* Run f on the fixture's inputs, compare y; backward with dy; compare each
 * named gradient; finite differences on each input that has a gradient. */
static void run_case(const char *fixture, fix_fn f, void *arg, const char *const *inputs, const char *const *grads,
		     int nin, double atol, double rtol)
{
	struct fd_ctx c;
	struct fd_st s;
	char what[128];
	ctx_open(&c, 2, 1);
	fix_open(&s, "nn_core", fixture);
	struct fd_tensor *in[4];
	for (int i = 0; i < nin; i++) {
		in[i] = fix_get(&c, &s, inputs[i]);
		if (grads[i])
			fd_requires_grad(in[i]);
	}
	struct fd_tensor *y = f(&c, in, arg);
	if (!y) {
		ok(0, "%s: %s", fixture, c.err.msg);
		fd_st_close(&s);
		fd_ctx_free(&c);
		return;
	}
	const char *yname = fd_st_find(&s, "y") ? "y" : "loss";
	snprintf(what, sizeof what, "%s %s", fixture, yname);
	fix_close(what, y, fix_get(&c, &s, yname), atol, rtol);
	struct fd_tensor *dy = fd_st_find(&s, "dy") ? fix_get(&c, &s, "dy") : NULL;
	float one = 1.0f;
	const float *w = dy ? dy->data : &one;
	ok(fd_backward(&c, y, dy ? dy->data : NULL) == 0, "%s backward %s", fixture, c.err.msg);
	for (int i = 0; i < nin; i++) {
		if (!grads[i])
			continue;
		snprintf(what, sizeof what, "%s %s", fixture, grads[i]);
		fix_close_grad(what, in[i], fix_get(&c, &s, grads[i]), atol, rtol);
		snprintf(what, sizeof what, "%s %s", fixture, grads[i]);
		fix_fd(what, f, arg, &c, in, i, w, 24);
	}
	fd_st_close(&s);
	fd_ctx_free(&c);
}

static void test_dispatch(void)
{
	struct fd_ctx c;
	ctx_open(&c, 1, 1);
	float buf[4] = {1, 2, 3, 4};
	int64_t shape[1] = {4};
	struct fd_tensor *x = fd_tensor_wrap(&c, FD_DEV_CUDA, buf, 1, shape);
	ok(fd_relu(&c, x) == NULL && strstr(c.err.msg, "act_fwd on cuda: not supported"),
	   "an op the device lacks is refused: %s", c.err.msg);
	ok(fd_sigmoid(&c, fd_relu(&c, x)) == NULL && c.failed, "failures propagate through chained ops");
	fd_ctx_step(&c);
	struct fd_tensor *a = fd_tensor_wrap(&c, FD_DEV_CPU, buf, 1, shape);
	int64_t s3[1] = {3};
	ok(fd_add(&c, a, fd_tensor_wrap(&c, FD_DEV_CPU, buf, 1, s3)) == NULL && strstr(c.err.msg, "do not broadcast"),
	   "mismatched shapes refused: %s", c.err.msg);
	/* memory: a device without a table has no arena, parameters or optimizer state */
	fd_ctx_step(&c);
	ok(fd_ctx_alloc(&c, FD_DEV_CUDA, 4) == NULL && strstr(c.err.msg, "tensor memory on cuda: not supported"),
	   "fd_ctx_alloc on cuda: %s", c.err.msg);
	struct fd_params p;
	struct fd_err e = {{0}};
	fd_params_init(&p);
	p.dev = FD_DEV_CUDA;
	ok(fd_params_add(&p, "w", FD_P_PARAM, 1, shape, &e) == 0 && fd_params_alloc(&p, &e) < 0 &&
	   strstr(e.msg, "parameters on cuda: not supported") && !p.data,
	   "parameters on cuda: %s", e.msg);
	fd_params_free(&p);
	/* the CPU table's memory entries: zeroed blocks, the three copies, sync */
	const struct fd_backend *be = fd_backend_of(FD_DEV_CPU);
	float *d = be->mem_alloc(4 * sizeof *d), back[4] = {0};
	int zeroed = d && d[0] == 0 && d[3] == 0;
	float *d2 = be->mem_alloc(4 * sizeof *d2);
	ok(zeroed && d2 && be->copy_h2d(&c, d, buf, sizeof buf) == 0 && be->copy_d2d(&c, d2, d, sizeof buf) == 0 &&
	   be->copy_d2h(&c, back, d2, sizeof buf) == 0 && be->sync(&c) == 0 && !memcmp(back, buf, sizeof buf) &&
	   be->mem_zero(d2, sizeof buf) == 0 && d2[2] == 0,
	   "cpu memory: alloc zeroed, host -> device -> device -> host round trip, zero, sync");
	be->mem_free(d);
	be->mem_free(d2);
	fd_ctx_free(&c);
}

/* x feeds two branches (y = x + relu(x) * x): backward must add both. */
static void test_residual(void)
{
	struct fd_ctx c;
	ctx_open(&c, 2, 1);
	int64_t shape[2] = {3, 5};
	struct fd_tensor *x = fd_tensor_new(&c, FD_DEV_CPU, 2, shape);
	for (int i = 0; i < 15; i++)
		x->data[i] = (float)(i - 7) * 0.25f;
	fd_requires_grad(x);
	struct fd_tensor *y = fd_add(&c, x, fd_mul(&c, fd_relu(&c, x), x));
	float ones[15];
	for (int i = 0; i < 15; i++)
		ones[i] = 1.0f;
	int bad = fd_backward(&c, y, ones) != 0;
	for (int i = 0; i < 15 && !bad; i++) {
		float v = x->data[i], want = v > 0 ? 1 + 2 * v : 1;
		bad |= fabsf(x->grad[i] - want) > 1e-6f;
	}
	ok(!bad, "residual branch: gradients of both uses add up");

	/* an intermediate's gradient on request: inference, then mark h */
	fd_ctx_step(&c);
	c.grad_enabled = 1;
	x = fd_tensor_new(&c, FD_DEV_CPU, 2, shape);
	for (int i = 0; i < 15; i++)
		x->data[i] = (float)(i - 7) * 0.25f;
	struct fd_tensor *h = fd_silu(&c, x);
	ok(c.tape == NULL, "nothing recorded while no input requires grad");
	fd_requires_grad(h);
	struct fd_tensor *logit = fd_mul(&c, h, h);
	ok(fd_backward(&c, logit, ones) == 0 && h->grad && !x->grad, "intermediate gradient requested");
	bad = 0;
	for (int i = 0; i < 15; i++)
		bad |= fabsf(h->grad[i] - 2 * h->data[i]) > 1e-6f;
	ok(!bad, "d(h*h)/dh = 2h at the requested activation");
	fd_ctx_free(&c);
}

static void test_dropout(void)
{
	struct fd_ctx c;
	ctx_open(&c, 2, 77);
	int64_t shape[2] = {64, 1000};
	struct fd_tensor *x = fd_tensor_new(&c, FD_DEV_CPU, 2, shape);
	for (int64_t i = 0; i < x->numel; i++)
		x->data[i] = 1.0f + (float)(i % 7);
	fd_requires_grad(x);
	float p = 0.3f, scale = 1.0f / 0.7f;
	struct fd_tensor *y = fd_dropout(&c, x, p);
	int64_t kept = 0, bad = 0;
	for (int64_t i = 0; i < y->numel; i++) {
		if (y->data[i] != 0) {
			kept++;
			bad += fabsf(y->data[i] - x->data[i] * scale) > 1e-5f * y->data[i];
		}
	}
	double frac = (double)kept / (double)y->numel; /* binomial sd ~ 0.0018 */
	ok(!bad && fabs(frac - 0.7) < 0.01, "dropout keeps %.4f (want 0.7), kept values scaled by 1/(1-p)", frac);
	float *dy = malloc((size_t)y->numel * sizeof *dy);
	for (int64_t i = 0; i < y->numel; i++)
		dy[i] = 0.5f;
	fd_backward(&c, y, dy);
	bad = 0;
	for (int64_t i = 0; i < y->numel; i++)
		bad += fabsf(x->grad[i] - (y->data[i] != 0 ? 0.5f * scale : 0.0f)) > 1e-6f;
	ok(!bad, "dropout backward uses the forward mask");
	float first = y->data[0] + y->data[1] * 3 + y->data[17] * 5;
	struct fd_tensor *y2 = fd_dropout(&c, x, p);
	int64_t same = 0;
	for (int64_t i = 0; i < y->numel; i++)
		same += (y->data[i] != 0) == (y2->data[i] != 0);
	ok(same < y->numel, "a second dropout in the same step draws a new mask");
	/* same seed, same step, one thread: identical mask */
	struct fd_ctx c1;
	ctx_open(&c1, 1, 77);
	struct fd_tensor *x1 = fd_tensor_new(&c1, FD_DEV_CPU, 2, shape);
	memcpy(x1->data, x->data, (size_t)x->numel * sizeof(float));
	struct fd_tensor *z = fd_dropout(&c1, x1, p);
	ok(memcmp(z->data, y->data, (size_t)y->numel * sizeof(float)) == 0 &&
		   first == z->data[0] + z->data[1] * 3 + z->data[17] * 5,
	   "dropout mask depends on seed and step, not on threads");
	c1.training = 0;
	ok(fd_dropout(&c1, x1, p) == x1 && fd_stochastic_depth(&c1, x1, 0.5f) == x1, "eval: identity");
	fd_ctx_free(&c1);

	/* stochastic depth: whole rows kept or zeroed */
	fd_ctx_step(&c);
	int64_t s4[4] = {4000, 2, 3, 3};
	x = fd_tensor_new(&c, FD_DEV_CPU, 4, s4);
	for (int64_t i = 0; i < x->numel; i++)
		x->data[i] = 2.0f;
	fd_requires_grad(x);
	y = fd_stochastic_depth(&c, x, 0.2f);
	int64_t rows_kept = 0;
	bad = 0;
	for (int64_t r = 0; r < 4000; r++) {
		float v0 = y->data[r * 18];
		rows_kept += v0 != 0;
		bad += v0 != 0 && fabsf(v0 - 2.0f / 0.8f) > 1e-6f;
		for (int k = 1; k < 18; k++)
			bad += y->data[r * 18 + k] != v0;
	}
	frac = (double)rows_kept / 4000.0; /* sd ~ 0.0063 */
	ok(!bad && fabs(frac - 0.8) < 0.03, "stochastic depth row mode: %.3f of rows kept (want 0.8), whole rows", frac);
	float *g = realloc(dy, (size_t)x->numel * sizeof *g);
	for (int64_t i = 0; i < x->numel; i++)
		g[i] = 1.0f;
	fd_backward(&c, y, g);
	bad = 0;
	for (int64_t i = 0; i < x->numel; i++)
		bad += x->grad[i] != y->data[i] / 2.0f;
	ok(!bad, "stochastic depth backward scales rows like the forward");
	free(g);
	fd_ctx_free(&c);
}

/* The plain 5-D reference loops (double) agree with PyTorch on every fixture shape. */
static void test_bcast_ref(const char *fixture, enum fd_binop op)
{
	struct fd_ctx c;
	struct fd_st s;
	ctx_open(&c, 2, 1);
	fix_open(&s, "nn_core", fixture);
	struct fd_tensor *a = fix_get(&c, &s, "a"), *b = fix_get(&c, &s, "b"), *y = fix_get(&c, &s, "y");
	struct fd_tensor *dy = fix_get(&c, &s, "dy");
	struct fd_bcast bc;
	int nd;
	fd_bcast_init(&c, &bc, a, b, &nd);
	size_t na = (size_t)a->numel, nb = (size_t)b->numel, ny = (size_t)bc.n;
	double *A = malloc(na * 8), *B = malloc(nb * 8), *DY = malloc(ny * 8);
	double *Y = calloc(ny, 8), *DA = calloc(na, 8), *DB = calloc(nb, 8);
	for (size_t i = 0; i < na; i++)
		A[i] = a->data[i];
	for (size_t i = 0; i < nb; i++)
		B[i] = b->data[i];
	for (size_t i = 0; i < ny; i++)
		DY[i] = dy->data[i];
	fd_bin_ref_forward(op, &bc, A, B, Y);
	fd_bin_ref_backward(op, &bc, A, B, DY, DA, DB);
	float *yr = malloc(ny * 4), *da = malloc(na * 4), *db = malloc(nb * 4);
	for (size_t i = 0; i < ny; i++)
		yr[i] = (float)Y[i];
	for (size_t i = 0; i < na; i++)
		da[i] = (float)DA[i];
	for (size_t i = 0; i < nb; i++)
		db[i] = (float)DB[i];
	free(A), free(B), free(DY), free(Y), free(DA), free(DB);
	char what[96];
	snprintf(what, sizeof what, "%s reference loop y", fixture);
	tap_close_f32(what, yr, y->data, (size_t)y->numel, 1e-6, 1e-6);
	snprintf(what, sizeof what, "%s reference loop da", fixture);
	tap_close_f32(what, da, fix_get(&c, &s, "da")->data, (size_t)a->numel, 1e-5, 1e-5);
	snprintf(what, sizeof what, "%s reference loop db", fixture);
	tap_close_f32(what, db, fix_get(&c, &s, "db")->data, (size_t)b->numel, 1e-5, 1e-5);
	free(yr);
	free(da);
	free(db);
	fd_st_close(&s);
	fd_ctx_free(&c);
}

/* How many of n floats lie outside |a - r| <= atol + rtol*|r| (NaN: outside). */
static size_t count_far(const float *a, const float *r, size_t n, double atol, double rtol)
{
	size_t far = 0;
	for (size_t i = 0; i < n; i++)
		far += !(fabs((double)a[i] - (double)r[i]) <= atol + rtol * fabs((double)r[i]));
	return far;
}

/* The table's CPU kernels (2 threads) against the reference loops on shapes
 * big enough for their parallel and tiled paths: the channels-last SE scale
 * [N,H,W,C] * [N,1,1,C] (the reduction keeps the innermost dim, C = 300 is
 * three tiles, the last partial), a bias [C] added to [M, C], and the NCHW SE
 * scale (reduces the innermost dim). A wrong db element must be caught. */
static void test_bcast_kernels(void)
{
	static const struct {
		enum fd_binop op;
		int na, nb;
		int64_t sa[4], sb[4];
	} k[] = {{FD_BIN_MUL, 4, 4, {4, 9, 9, 300}, {4, 1, 1, 300}},
		 {FD_BIN_ADD, 2, 1, {200, 260}, {260}},
		 {FD_BIN_MUL, 4, 4, {4, 300, 9, 9}, {4, 300, 1, 1}},
		 {FD_BIN_MUL, 4, 4, {4, 1, 1, 300}, {4, 9, 9, 300}}};
	struct fd_rng r;
	fd_rng_init(&r, 77, 0);
	for (size_t t = 0; t < sizeof k / sizeof *k; t++) {
		struct fd_ctx c;
		ctx_open(&c, 2, 1);
		struct fd_tensor *a = fd_tensor_new(&c, FD_DEV_CPU, k[t].na, k[t].sa);
		struct fd_tensor *b = fd_tensor_new(&c, FD_DEV_CPU, k[t].nb, k[t].sb);
		struct fd_bcast bc;
		int nd;
		if (!a || !b || fd_bcast_init(&c, &bc, a, b, &nd) < 0) {
			ok(0, "kernel case %zu: tensors %s", t, c.err.msg);
			fd_ctx_free(&c);
			continue;
		}
		size_t na = (size_t)bc.na, nb = (size_t)bc.nb, ny = (size_t)bc.n;
		float *dy = malloc(ny * 4), *y = malloc(ny * 4), *da = calloc(na, 4), *db = calloc(nb, 4);
		double *A = malloc(na * 8), *B = malloc(nb * 8), *DY = malloc(ny * 8), *Y = malloc(ny * 8);
		double *DA = calloc(na, 8), *DB = calloc(nb, 8);
		for (size_t i = 0; i < na; i++)
			A[i] = a->data[i] = (float)(fd_rng_uniform(&r) * 4 - 2);
		for (size_t i = 0; i < nb; i++)
			B[i] = b->data[i] = (float)(fd_rng_uniform(&r) * 4 - 2);
		for (size_t i = 0; i < ny; i++)
			DY[i] = dy[i] = (float)(fd_rng_uniform(&r) * 2 - 1);
		fd_bin_ref_forward(k[t].op, &bc, A, B, Y);
		fd_bin_ref_backward(k[t].op, &bc, A, B, DY, DA, DB);
		fd_binary_fwd_cpu(&c, k[t].op, &bc, a->data, b->data, y);
		fd_binary_bwd_cpu(&c, k[t].op, &bc, a->data, b->data, dy, da, db);
		float *yr = to_f32(Y, ny), *dar = to_f32(DA, na), *dbr = to_f32(DB, nb);
		char what[96];
		snprintf(what, sizeof what, "kernel case %zu (%zu outputs): y", t, ny);
		tap_close_f32(what, y, yr, ny, 1e-6, 1e-6);
		snprintf(what, sizeof what, "kernel case %zu: da", t);
		tap_close_f32(what, da, dar, na, 1e-5, 1e-5);
		snprintf(what, sizeof what, "kernel case %zu: db", t);
		tap_close_f32(what, db, dbr, nb, 1e-5, 1e-5);
		db[nb - 1] += 1e-3f; /* negative control */
		ok(count_far(db, dbr, nb, 1e-5, 1e-5) == 1, "kernel case %zu: a db off by 1e-3 is caught", t);
		free(yr), free(dar), free(dbr), free(A), free(B), free(DY), free(Y), free(DA), free(DB);
		free(dy), free(y), free(da), free(db);
		fd_ctx_free(&c);
	}
}

/* The layernorm kernels on channels-last rows (HW == 1: the rows path) of a
 * size with several chunks and 2 threads, C not a multiple of 8, against the
 * double reference loops (checked against PyTorch by the ln2d fixtures):
 * forward, dx, dw, db, with means of 0 and 50. A wrong dw must fail. */
static void test_ln_rows(void)
{
	const int64_t M = 1100, C = 100;
	size_t n = (size_t)(M * C);
	struct fd_rng r;
	fd_rng_init(&r, 78, 0);
	for (int off = 0; off <= 50; off += 50) {
		struct fd_ctx c;
		ctx_open(&c, 2, 1);
		float *x = malloc(n * 4), *dy = malloc(n * 4), *y = malloc(n * 4), *dx = malloc(n * 4);
		float *w = malloc(C * 4), *b = malloc(C * 4), *dw = malloc(C * 4), *db = malloc(C * 4);
		float *mean = malloc(M * 4), *rstd = malloc(M * 4);
		for (size_t i = 0; i < n; i++) {
			x[i] = (float)(off + 3 * (2 * fd_rng_uniform(&r) - 1));
			dy[i] = (float)(2 * fd_rng_uniform(&r) - 1);
			dx[i] = 1;
		}
		for (int64_t i = 0; i < C; i++) {
			w[i] = (float)(0.5 + fd_rng_uniform(&r)), b[i] = (float)(fd_rng_uniform(&r) - 0.5);
			dw[i] = db[i] = 1;
		}
		double *X = to_f64(x, n), *W = to_f64(w, C), *B = to_f64(b, C), *DY = to_f64(dy, n);
		double *Y = calloc(n, 8), *DX = calloc(n, 8), *DW = calloc(C, 8), *DB = calloc(C, 8);
		for (size_t i = 0; i < n; i++)
			DX[i] = 1;
		for (int64_t i = 0; i < C; i++)
			DW[i] = DB[i] = 1;
		/* the reference's [N, C, HW] with HW = 1 is the same memory as the rows */
		fd_layernorm2d_ref_forward(M, C, 1, (double)1e-6f, X, W, B, Y);
		fd_layernorm2d_ref_backward(M, C, 1, (double)1e-6f, X, W, DY, DX, DW, DB);
		ok(fd_layernorm2d_fwd_cpu(&c, M, C, 1, 1e-6f, x, w, b, y, mean, rstd) == 0 &&
			   fd_layernorm2d_bwd_cpu(&c, M, C, 1, x, w, mean, rstd, dy, dx, dw, db) == 0,
		   "ln rows mean %d: runs %s", off, c.err.msg);
		char what[64];
		snprintf(what, sizeof what, "ln rows mean %d: y", off);
		close64(what, Y, y, n, 1e-5, 1e-5);
		snprintf(what, sizeof what, "ln rows mean %d: 1+dx (adds)", off);
		close64(what, DX, dx, n, 1e-5, 1e-4);
		snprintf(what, sizeof what, "ln rows mean %d: 1+dw (adds)", off);
		close64(what, DW, dw, C, 1e-4, 1e-4); /* sums of 1100 terms of float xhat */
		snprintf(what, sizeof what, "ln rows mean %d: 1+db (adds)", off);
		close64(what, DB, db, C, 1e-4, 1e-4);
		/* all three gradients run one pass for the parameter sums and the
		 * row sums of dx (row_param_dsums): bit for bit the separate passes
		 * that dx alone and dw, db alone take */
		float *dx2 = malloc(n * 4), *dw2 = malloc(C * 4), *db2 = malloc(C * 4);
		for (size_t i = 0; i < n; i++)
			dx2[i] = 1;
		for (int64_t i = 0; i < C; i++)
			dw2[i] = db2[i] = 1;
		ok(fd_layernorm2d_bwd_cpu(&c, M, C, 1, x, w, mean, rstd, dy, dx2, NULL, NULL) == 0 &&
			   fd_layernorm2d_bwd_cpu(&c, M, C, 1, x, w, mean, rstd, dy, NULL, dw2, db2) == 0 &&
			   !memcmp(dx2, dx, n * 4) && !memcmp(dw2, dw, C * 4) && !memcmp(db2, db, C * 4),
		   "ln rows mean %d: dx, dw, db in one call bit for bit the separate calls'", off);
		free(dx2), free(dw2), free(db2);
		float *dwr = to_f32(DW, C);
		dw[C / 2] += 1e-2f; /* negative control */
		ok(count_far(dw, dwr, C, 1e-4, 1e-4) == 1, "ln rows mean %d: a dw off by 1e-2 is caught", off);
		free(dwr), free(X), free(W), free(B), free(DY), free(Y), free(DX), free(DW), free(DB);
		free(x), free(dy), free(y), free(dx), free(w), free(b), free(dw), free(db), free(mean), free(rstd);
		fd_ctx_free(&c);
	}
}

/* fd_layernorm2d_norm_ (inference: normalise only, in place) on [2, 100,
 * 25, 22] in both layouts (channels last: the rows path; NCHW: the tiles),
 * mean 50, against the double reference with w = 1, b = 0 (checked against
 * PyTorch by the ln2d fixtures). Controls: one reference value moved by 1e-3
 * is caught; an input that needs a gradient is refused. */
static void test_ln_norm(void)
{
	const int64_t N = 2, C = 100, H = 25, W = 22, HW = H * W;
	size_t n = (size_t)(N * C * HW);
	int64_t xs[4] = {N, C, H, W};
	struct fd_rng r;
	fd_rng_init(&r, 79, 0);
	struct fd_ctx c;
	ctx_open(&c, 2, 1);
	c.grad_enabled = 0;
	double *X = malloc(n * 8), *Y = malloc(n * 8), *one = malloc(C * 8), *zero = calloc(C, 8);
	for (size_t i = 0; i < n; i++)
		X[i] = (float)(50 + 3 * (2 * fd_rng_uniform(&r) - 1));
	for (int64_t i = 0; i < C; i++)
		one[i] = 1;
	fd_layernorm2d_ref_forward(N, C, HW, (double)1e-6f, X, one, zero, Y); /* NCHW */
	for (int cl = 0; cl < 2; cl++) {
		struct fd_tensor *x = fd_tensor_new(&c, FD_DEV_CPU, 4, xs);
		float *want = malloc(n * 4);
		for (int64_t b = 0; x && b < N; b++)
			for (int64_t ch = 0; ch < C; ch++)
				for (int64_t p = 0; p < HW; p++) {
					size_t src = (size_t)((b * C + ch) * HW + p);
					size_t dst = cl ? (size_t)((b * HW + p) * C + ch) : src;
					x->data[dst] = (float)X[src];
					want[dst] = (float)Y[src];
				}
		if (x)
			x->layout = cl ? FD_NHWC : FD_NCHW;
		struct fd_tensor *y = fd_layernorm2d_norm_(&c, x, 1e-6f);
		char what[64];
		ok(y && y->data == x->data, "ln norm_ %s: runs in place %s", cl ? "NHWC" : "NCHW", c.err.msg);
		snprintf(what, sizeof what, "ln norm_ %s: y", cl ? "NHWC" : "NCHW");
		if (y)
			tap_close_f32(what, y->data, want, n, 1e-5, 1e-5);
		want[n / 2] += 1e-3f;
		ok(y && count_far(y->data, want, n, 1e-5, 1e-5) == 1, "ln norm_ %s: a value off by 1e-3 is caught",
		   cl ? "NHWC" : "NCHW");
		free(want);
		fd_ctx_step(&c);
	}
	c.grad_enabled = 1;
	struct fd_tensor *x = fd_tensor_zeros(&c, FD_DEV_CPU, 4, xs);
	fd_requires_grad(x);
	ok(!fd_layernorm2d_norm_(&c, x, 1e-6f) && strstr(c.err.msg, "inference only"),
	   "ln norm_: an input needing a gradient refused: %s", c.err.msg);
	free(X), free(Y), free(one), free(zero);
	fd_ctx_free(&c);
}

/* Fresh gradients (struct fd_node's writes: batchnorm2d, layernorm2d, add and
 * mul overwrite a new gradient instead of zeroing and adding) against the
 * double reference loops chained by hand, on h1 = x * s (SE broadcast),
 * h2 = bn(h1), h3 = h2 + h1 (h1 used twice: add writes its gradient, bn
 * must add), h4 = ln(h3), y = h4 * h4 (one tensor as both operands: no
 * write). Two steps, so the second reuses pool blocks holding the first's
 * gradients. Dropping bn's share of dh1 must fail the check. */
static void test_fresh_grads(void)
{
	enum { N = 2, C = 3, HW = 16, NX = N * C * HW };
	const int64_t sx[4] = {N, C, 4, 4}, ss[4] = {N, C, 1, 1}, sc[1] = {C};
	struct fd_rng r;
	fd_rng_init(&r, 79, 0);
	struct fd_ctx c;
	ctx_open(&c, 2, 1);
	float xv[NX], sv[N * C], dyv[NX], wv[C], bv[C];
	for (int i = 0; i < NX; i++)
		xv[i] = (float)(2 * fd_rng_uniform(&r) - 1), dyv[i] = (float)(2 * fd_rng_uniform(&r) - 1);
	for (int i = 0; i < N * C; i++)
		sv[i] = (float)(0.5 + fd_rng_uniform(&r));
	for (int i = 0; i < C; i++)
		wv[i] = (float)(0.5 + fd_rng_uniform(&r)), bv[i] = (float)(fd_rng_uniform(&r) - 0.5);
	/* the reference */
	double X[NX], S[N * C], DY[NX], W[C], B[C], H1[NX], H2[NX], H3[NX], H4[NX], M[C], V[C];
	double DH4[NX], DH3[NX] = {0}, DH1[NX] = {0}, DX[NX] = {0}, DS[N * C] = {0}, DW[C] = {0}, DB[C] = {0};
	for (int i = 0; i < NX; i++)
		X[i] = xv[i], DY[i] = dyv[i];
	for (int i = 0; i < N * C; i++)
		S[i] = sv[i];
	for (int i = 0; i < C; i++)
		W[i] = wv[i], B[i] = bv[i];
	struct fd_tensor *tx = fd_tensor_wrap(&c, FD_DEV_CPU, xv, 4, sx), *ts = fd_tensor_wrap(&c, FD_DEV_CPU, sv, 4, ss);
	struct fd_bcast bc;
	int nd;
	fd_bcast_init(&c, &bc, tx, ts, &nd);
	fd_bin_ref_forward(FD_BIN_MUL, &bc, X, S, H1);
	fd_batchnorm2d_ref_forward_train(N, C, HW, H1, W, B, FD_BN_EPS, H2, M, V);
	for (int i = 0; i < NX; i++)
		H3[i] = H2[i] + H1[i];
	fd_layernorm2d_ref_forward(N, C, HW, (double)1e-6f, H3, W, B, H4);
	for (int i = 0; i < NX; i++)
		DH4[i] = 2 * H4[i] * DY[i];
	fd_layernorm2d_ref_backward(N, C, HW, (double)1e-6f, H3, W, DH4, DH3, DW, DB);
	fd_batchnorm2d_ref_backward_train(N, C, HW, DH3, H1, W, FD_BN_EPS, DH1, DW, DB);
	double DH1_nobn[NX], DX_nobn[NX] = {0}, DS_nobn[N * C] = {0};
	for (int i = 0; i < NX; i++)
		DH1_nobn[i] = DH3[i], DH1[i] += DH3[i];
	fd_bin_ref_backward(FD_BIN_MUL, &bc, X, S, DH1, DX, DS);
	fd_bin_ref_backward(FD_BIN_MUL, &bc, X, S, DH1_nobn, DX_nobn, DS_nobn);
	float *dxr = to_f32(DX, NX), *dsr = to_f32(DS, N * C), *dxn = to_f32(DX_nobn, NX);
	for (int step = 0; step < 2; step++) {
		fd_ctx_step(&c);
		struct fd_tensor *x = fd_tensor_new(&c, FD_DEV_CPU, 4, sx), *sc_ = fd_tensor_new(&c, FD_DEV_CPU, 4, ss);
		struct fd_tensor *w = fd_tensor_new(&c, FD_DEV_CPU, 1, sc), *b = fd_tensor_new(&c, FD_DEV_CPU, 1, sc);
		struct fd_tensor *rm = fd_tensor_new(&c, FD_DEV_CPU, 1, sc), *rv = fd_tensor_new(&c, FD_DEV_CPU, 1, sc);
		memcpy(x->data, xv, sizeof xv), memcpy(sc_->data, sv, sizeof sv);
		memcpy(w->data, wv, sizeof wv), memcpy(b->data, bv, sizeof bv);
		for (int i = 0; i < C; i++)
			rm->data[i] = 0, rv->data[i] = 1;
		fd_requires_grad(x), fd_requires_grad(sc_);
		struct fd_tensor *h1 = fd_mul(&c, x, sc_);
		struct fd_tensor *h3 = fd_add(&c, fd_batchnorm2d(&c, h1, w, b, rm, rv, NULL, 0.1, FD_BN_EPS), h1);
		struct fd_tensor *h4 = fd_layernorm2d(&c, h3, w, b, 1e-6f);
		struct fd_tensor *y = fd_mul(&c, h4, h4);
		ok(y && fd_backward(&c, y, dyv) == 0, "fresh gradients step %d: backward %s", step, c.err.msg);
		if (!y || !x->grad || !sc_->grad)
			continue;
		char what[64];
		snprintf(what, sizeof what, "fresh gradients step %d: dx", step);
		tap_close_f32(what, x->grad, dxr, NX, 1e-5, 1e-4);
		snprintf(what, sizeof what, "fresh gradients step %d: ds", step);
		tap_close_f32(what, sc_->grad, dsr, N * C, 1e-5, 1e-4);
		ok(count_far(x->grad, dxn, NX, 1e-5, 1e-4) > NX / 2,
		   "fresh gradients step %d: without bn's share dx would fail", step);
	}
	free(dxr), free(dsr), free(dxn);
	fd_ctx_free(&c);
}

/* fd_stochastic_depth_'s backward writes a fresh dx (0 + dy f: the bits
 * of adding to a zeroed gradient), also over dy itself, and adds into one
 * that holds values: p -> x = p + 0 -> y = sd_(x) -> z = y w, dx written
 * fresh, aliased (c->reuse_activations) and added (x also feeds a later
 * u = z + x, whose backward writes dx = du first), over rows of several
 * chunks on 2 threads, against the float loops of each. */
static void test_sd_grads(void)
{
	enum { R = 6, IN = 2 * 16384 + 5, NX = R * IN };
	const int64_t sx[2] = {R, IN};
	static float pv[NX], wv[NX], dzv[NX], want[NX];
	struct fd_rng r;
	fd_rng_init(&r, 82, 0);
	for (int i = 0; i < NX; i++) {
		pv[i] = (float)(1 + fd_rng_uniform(&r));
		wv[i] = (float)(2 * fd_rng_uniform(&r) - 1), dzv[i] = (float)(2 * fd_rng_uniform(&r) - 1);
	}
	static const char *const how[3] = {"fresh", "aliased", "added"};
	int kept = 0, dropped = 0;
	for (int mode = 0; mode < 3; mode++) {
		struct fd_ctx c;
		ctx_open(&c, 2, 3);
		c.training = 1;
		c.reuse_activations = mode == 1;
		struct fd_tensor *p = fd_tensor_new(&c, FD_DEV_CPU, 2, sx), *q = fd_tensor_new(&c, FD_DEV_CPU, 2, sx);
		struct fd_tensor *w = fd_tensor_new(&c, FD_DEV_CPU, 2, sx);
		memcpy(p->data, pv, sizeof pv), memcpy(w->data, wv, sizeof wv);
		memset(q->data, 0, sizeof pv);
		fd_requires_grad(p);
		struct fd_tensor *x = fd_add(&c, p, q);
		struct fd_tensor *y = fd_stochastic_depth_(&c, x, 0.5f);
		struct fd_tensor *z = fd_mul(&c, y, w);
		if (mode == 2)
			z = fd_add(&c, z, x);
		int rc = z && y && y->data == x->data ? fd_backward(&c, z, dzv) : -1;
		ok(rc == 0, "stochastic depth %s: forward (in place) and backward %s", how[mode], c.err.msg);
		if (rc == 0) {
			for (int i = 0; i < NX; i++) {
				float f = y->data[i / IN * IN] / pv[i / IN * IN]; /* 0 or 2 exactly */
				kept += i % IN == 0 && f == 2.0f, dropped += i % IN == 0 && f == 0.0f;
				float dy = dzv[i] * wv[i];
				want[i] = 0.0f + (mode == 2 ? dzv[i] + dy * f : 0.0f + dy * f);
			}
			ok(!memcmp(p->grad, want, sizeof want), "stochastic depth %s: dx bit for bit the float loop's",
			   how[mode]);
		}
		fd_ctx_free(&c);
	}
	ok(kept > 0 && dropped > 0, "stochastic depth: %d rows kept, %d dropped over the three", kept, dropped);
}

/* fd_act_ with gelu, recorded (ConvNeXt's training forward): y and the
 * gradients are bit for bit those of fd_gelu, whose backward recomputes
 * GELU'(x) from x, while fd_act_ saves it over x in the forward. The same
 * graph p -> x = p + 0 -> y = gelu(x) -> z = y w is built twice, once with
 * each, over three chunks on 2 threads, in the three ways dx is made:
 * written fresh, written over dy (c->reuse_activations: aliased) and added
 * (x also feeds a later u = z + x, whose backward writes dx first; its
 * values are not compared, since x then holds GELU'(x)). Also: x holds
 * GELU'(x) afterwards (against the double reference); without a tape x is
 * left alone; torch's act_gelu fixture through fd_act_; control: a
 * backward with GELU'(x) from double precision differs in its bits. */
static void test_gelu_saved(void)
{
	enum { NX = 2 * 16384 + 1001 };
	const int64_t sx[1] = {NX};
	static float pv[NX], wv[NX], dzv[NX], yref[NX], dref[NX];
	static double X[NX], ONE[NX], G[NX];
	struct fd_rng r;
	fd_rng_init(&r, 81, 0);
	for (int i = 0; i < NX; i++) {
		pv[i] = (float)(16 * fd_rng_uniform(&r) - 8);
		wv[i] = (float)(2 * fd_rng_uniform(&r) - 1), dzv[i] = (float)(2 * fd_rng_uniform(&r) - 1);
	}
	pv[0] = 0.0f, pv[1] = -0.0f, pv[2] = 1e-30f, pv[3] = -1e-30f, pv[4] = 40.0f, pv[5] = -40.0f;
	static const char *const how[3] = {"fresh", "aliased", "added"};
	int compared = 0;
	for (int mode = 0; mode < 3; mode++)
		for (int saved = 0; saved < 2; saved++) {
			struct fd_ctx c;
			ctx_open(&c, 2, 1);
			c.reuse_activations = mode == 1;
			struct fd_tensor *p = fd_tensor_new(&c, FD_DEV_CPU, 1, sx), *q = fd_tensor_new(&c, FD_DEV_CPU, 1, sx);
			struct fd_tensor *w = fd_tensor_new(&c, FD_DEV_CPU, 1, sx);
			memcpy(p->data, pv, sizeof pv), memcpy(w->data, wv, sizeof wv);
			memset(q->data, 0, sizeof pv);
			fd_requires_grad(p);
			struct fd_tensor *x = fd_add(&c, p, q);
			struct fd_tensor *y = saved ? fd_act_(&c, FD_ACT_GELU, x) : fd_gelu(&c, x);
			struct fd_tensor *z = fd_mul(&c, y, w);
			if (mode == 2)
				z = fd_add(&c, z, x);
			int rc = z && y != x ? fd_backward(&c, z, dzv) : -1;
			ok(rc == 0, "gelu %s, %s: forward and backward %s", saved ? "saved" : "from x", how[mode], c.err.msg);
			if (rc == 0 && !saved) {
				memcpy(yref, y->data, sizeof yref), memcpy(dref, p->grad, sizeof dref);
			} else if (rc == 0) {
				ok(!memcmp(y->data, yref, sizeof yref), "gelu saved, %s: y bit for bit fd_gelu's", how[mode]);
				ok(!memcmp(p->grad, dref, sizeof dref), "gelu saved, %s: dx bit for bit fd_gelu's", how[mode]);
				compared++;
				if (mode == 0) {
					for (int i = 0; i < NX; i++)
						X[i] = pv[i], ONE[i] = 1, G[i] = 0;
					fd_act_ref_backward(FD_ACT_GELU, NX, X, ONE, G);
					char what[64];
					snprintf(what, sizeof what, "gelu saved: x holds GELU'(x)");
					float *gf = to_f32(G, NX);
					tap_close_f32(what, x->data, gf, NX, 1e-6, 1e-5);
					/* control: dx from GELU'(x) computed in double */
					size_t diff = 0;
					for (int i = 0; i < NX; i++) {
						float d = 0.0f + dzv[i] * wv[i] * gf[i];
						diff += memcmp(&d, &p->grad[i], sizeof d) != 0;
					}
					ok(diff > 0, "gelu saved control: GELU' from double differs in %zu of %d dx", diff, NX);
					free(gf);
				}
			}
			fd_ctx_free(&c);
		}
	ok(compared == 3, "gelu saved: %d ways compared", compared);
	/* without a tape: x untouched, y as fd_gelu's */
	struct fd_ctx c;
	ctx_open(&c, 2, 1);
	struct fd_tensor *x = fd_tensor_new(&c, FD_DEV_CPU, 1, sx);
	memcpy(x->data, pv, sizeof pv);
	struct fd_tensor *y = fd_act_(&c, FD_ACT_GELU, x), *y2 = fd_gelu(&c, x);
	ok(y && y2 && y != x && !memcmp(x->data, pv, sizeof pv) && !memcmp(y->data, y2->data, sizeof pv),
	   "gelu without a tape: fd_act_ leaves x alone, y bit for bit fd_gelu's");
	fd_ctx_free(&c);
	/* torch: the act_gelu fixture through the saving path */
	struct fd_st s;
	ctx_open(&c, 2, 1);
	fix_open(&s, "nn_core", "act_gelu");
	x = fix_get(&c, &s, "x");
	fd_requires_grad(x);
	y = fd_act_(&c, FD_ACT_GELU, x);
	ok(y && fd_backward(&c, y, fix_get(&c, &s, "dy")->data) == 0, "act_gelu through fd_act_: backward %s",
	   c.err.msg);
	if (y) {
		fix_close("act_gelu through fd_act_: y", y, fix_get(&c, &s, "y"), 1e-6, 1e-5);
		fix_close_grad("act_gelu through fd_act_: dx", x, fix_get(&c, &s, "dx"), 1e-6, 1e-5);
	}
	fd_st_close(&s);
	fd_ctx_free(&c);
}

/* A layer scale [C, 1, 1] times a channels-last [N, C, H, W] (ConvNeXt)
 * stays channels last: one mul node on the tape (no layout conversions),
 * values and gradients as the NCHW product's (the reference loops). */
static void test_scale_nhwc(void)
{
	enum { N = 2, C = 5, H = 3, W = 4, NX = N * C * H * W };
	const int64_t sx[4] = {N, C, H, W}, sg[3] = {C, 1, 1};
	struct fd_ctx c;
	ctx_open(&c, 2, 1);
	struct fd_rng r;
	fd_rng_init(&r, 80, 0);
	struct fd_tensor *xn = fd_tensor_new(&c, FD_DEV_CPU, 4, sx), *g = fd_tensor_new(&c, FD_DEV_CPU, 3, sg);
	double X[NX], G[C], Y[NX], DY[NX], DX[NX] = {0}, DG[C] = {0};
	for (int i = 0; i < NX; i++)
		X[i] = xn->data[i] = (float)(2 * fd_rng_uniform(&r) - 1), DY[i] = 1 + i % 7;
	for (int i = 0; i < C; i++)
		G[i] = g->data[i] = (float)(0.5 + fd_rng_uniform(&r));
	struct fd_bcast bc;
	int nd;
	fd_bcast_init(&c, &bc, g, xn, &nd);
	fd_bin_ref_forward(FD_BIN_MUL, &bc, G, X, Y);
	fd_bin_ref_backward(FD_BIN_MUL, &bc, G, X, DY, DG, DX);
	/* x channels last, a leaf: [N, H, W, C] memory */
	struct fd_tensor *x = fd_tensor_new(&c, FD_DEV_CPU, 4, sx);
	x->layout = FD_NHWC;
	float dy[NX], t[NX];
	for (int n = 0; n < N; n++)
		for (int ch = 0; ch < C; ch++)
			for (int p = 0; p < H * W; p++) {
				x->data[(n * H * W + p) * C + ch] = xn->data[(n * C + ch) * H * W + p];
				dy[(n * H * W + p) * C + ch] = (float)DY[(n * C + ch) * H * W + p];
			}
	fd_requires_grad(x), fd_requires_grad(g);
	struct fd_tensor *y = fd_mul(&c, g, x);
	ok(y && fd_is_nhwc(y) && c.tape && !strcmp(c.tape->op, "mul") && c.tape->in[1] == x && !c.tape->prev,
	   "layer scale [C,1,1] * channels-last x: one mul node, output channels last");
	if (!y || fd_backward(&c, y, dy) < 0) {
		ok(0, "layer scale backward %s", c.err.msg);
		fd_ctx_free(&c);
		return;
	}
	float *yr = to_f32(Y, NX), *dxr = to_f32(DX, NX), *dgr = to_f32(DG, C);
	for (int n = 0; n < N; n++)
		for (int ch = 0; ch < C; ch++)
			for (int p = 0; p < H * W; p++)
				t[(n * C + ch) * H * W + p] = y->data[(n * H * W + p) * C + ch];
	tap_close_f32("layer scale channels last: y", t, yr, NX, 1e-6, 1e-6);
	for (int n = 0; n < N; n++)
		for (int ch = 0; ch < C; ch++)
			for (int p = 0; p < H * W; p++)
				t[(n * C + ch) * H * W + p] = x->grad[(n * H * W + p) * C + ch];
	tap_close_f32("layer scale channels last: dx", t, dxr, NX, 1e-6, 1e-6);
	tap_close_f32("layer scale channels last: dgamma", g->grad, dgr, C, 1e-5, 1e-5);
	free(yr), free(dxr), free(dgr);
	fd_ctx_free(&c);
}

/* fd_transpose_cpu against index arithmetic, exactly: 3 rows without add
 * (the RGB image's own loop, with a column count that is not a multiple of
 * its 4096-column chunks) and with add, and 5 rows (tiles), 1 and 2
 * threads; control: a result with two values swapped is caught. */
static void test_transpose(void)
{
	enum { N = 2, COLS = 4096 + 37, MAXR = 5 };
	static float src[N * MAXR * COLS], dst[N * MAXR * COLS], want[N * MAXR * COLS];
	int checked = 0;
	for (int rows = 3; rows <= MAXR; rows += 2)
		for (int add = 0; add < 2; add++)
			for (int th = 1; th <= 2; th++) {
				int64_t n = (int64_t)N * rows * COLS;
				for (int64_t i = 0; i < n; i++)
					src[i] = (float)i, dst[i] = add ? 0.5f : -1.0f;
				for (int m = 0; m < N; m++)
					for (int r = 0; r < rows; r++)
						for (int j = 0; j < COLS; j++)
							want[(int64_t)m * rows * COLS + (int64_t)j * rows + r] =
								(add ? 0.5f : 0.0f) + src[(int64_t)m * rows * COLS + (int64_t)r * COLS + j];
				fd_transpose_cpu(th, N, rows, COLS, src, dst, add);
				ok(!memcmp(dst, want, (size_t)n * sizeof *dst), "transpose %d x %d (x%d), add %d, %d threads",
				   rows, COLS, N, add, th);
				checked++;
				if (rows == 3 && !add && th == 2) {
					float t = dst[1];
					dst[1] = dst[2], dst[2] = t;
					ok(memcmp(dst, want, (size_t)n * sizeof *dst) != 0,
					   "transpose control: two swapped values are caught");
				}
			}
	ok(checked == 8, "%d transposes checked", checked);
}

/* c->op_timer (bench/models --ops): every taped op reported once in the
 * forward, in tape order, and once in the backward, in reverse, with times
 * >= 0 that add up to no more than the wall time; nothing reported with
 * the timer off. */
struct optrace {
	const char *op[16];
	int bwd[16];
	double s[16];
	int n;
};

static void trace_op(void *arg, const char *op, int bwd, double sec)
{
	struct optrace *t = arg;
	if (t->n < 16) {
		t->op[t->n] = op, t->bwd[t->n] = bwd, t->s[t->n] = sec;
	}
	t->n++;
}

static void test_op_timer(void)
{
	struct fd_ctx c;
	ctx_open(&c, 2, 1);
	int64_t n = 1000;
	struct optrace tr;
	for (int on = 0; on < 2; on++) {
		fd_ctx_step(&c);
		struct fd_tensor *a = fd_tensor_new(&c, FD_DEV_CPU, 1, &n), *b = fd_tensor_new(&c, FD_DEV_CPU, 1, &n);
		if (!ok(a && b, "op_timer: tensors"))
			return;
		for (int64_t i = 0; i < n; i++)
			a->data[i] = (float)(i % 17) - 8, b->data[i] = (float)(i % 5) * 0.25f;
		fd_requires_grad(a), fd_requires_grad(b);
		memset(&tr, 0, sizeof tr);
		c.op_timer = on ? trace_op : NULL;
		c.op_timer_arg = &tr;
		double t0 = fd_now();
		c.op_timer_t0 = t0;
		struct fd_tensor *y = fd_act(&c, FD_ACT_GELU, fd_mul(&c, a, b));
		float *seed = fd_ctx_alloc(&c, FD_DEV_CPU, n);
		for (int64_t i = 0; seed && i < n; i++)
			seed[i] = 1;
		int rc = y && seed ? fd_backward(&c, y, seed) : -1;
		double wall = fd_now() - t0;
		c.op_timer = NULL;
		if (!ok(rc == 0, "op_timer %s: forward and backward %s", on ? "on" : "off", c.err.msg))
			return;
		if (!on) {
			ok(tr.n == 0, "op_timer off: nothing reported (%d)", tr.n);
			continue;
		}
		double sum = 0;
		int good = tr.n == 4;
		for (int i = 0; i < 4 && good; i++) {
			good = tr.s[i] >= 0 && tr.bwd[i] == (i >= 2);
			sum += tr.s[i];
		}
		ok(good && !strcmp(tr.op[0], "mul") && !strcmp(tr.op[1], "gelu") && !strcmp(tr.op[2], "gelu") &&
			   !strcmp(tr.op[3], "mul"),
		   "op_timer on: %d reports: mul, gelu forward, then gelu, mul backward", tr.n);
		ok(sum <= wall, "op_timer on: the reported %.6f s within the wall time %.6f s", sum, wall);
	}
	fd_ctx_free(&c);
}

int main(void)
{
	static const char *const x1[] = {"x"}, *const dx1[] = {"dx"};
	static const char *const names[] = {"relu", "hardswish", "hardsigmoid", "silu", "sigmoid", "gelu"};
	for (int k = 0; k < FD_ACT_COUNT; k++) {
		char fx[64];
		enum fd_act a = (enum fd_act)k;
		snprintf(fx, sizeof fx, "act_%s", names[k]);
		/* float32 transcendental vs float64 reference: a few ulps */
		run_case(fx, f_act, &a, x1, dx1, 1, 1e-6, 1e-5);
	}
	static const char *const pin[] = {"x", "w"}, *const pgr[] = {"dx", "dw"};
	run_case("prelu", f_prelu, NULL, pin, pgr, 2, 1e-5, 1e-5);

	static const char *const bin[] = {"a", "b"}, *const bgr[] = {"da", "db"};
	static const struct {
		const char *name;
		enum fd_binop op;
	} bcases[] = {{"bin_add_same", FD_BIN_ADD}, {"bin_mul_se", FD_BIN_MUL}, {"bin_mul_ls", FD_BIN_MUL},
		      {"bin_add_bias", FD_BIN_ADD}, {"bin_mul_rev", FD_BIN_MUL}, {"bin_add_mixed", FD_BIN_ADD},
		      {"bin_mul_5d", FD_BIN_MUL}};
	for (size_t i = 0; i < sizeof bcases / sizeof *bcases; i++) {
		run_case(bcases[i].name, bcases[i].op == FD_BIN_ADD ? f_add : f_mul, NULL, bin, bgr, 2, 1e-5, 1e-5);
		test_bcast_ref(bcases[i].name, bcases[i].op);
	}
	test_bcast_kernels();

	static const char *const sm[] = {"softmax_2d", "softmax_4d", "softmax_last"};
	for (int i = 0; i < 3; i++) {
		struct fd_st s;
		fix_open(&s, "nn_core", sm[i]);
		int dim = *(const int32_t *)fix_raw(&s, "dim", FD_DT_I32)->data;
		fd_st_close(&s);
		run_case(sm[i], f_softmax, &dim, x1, dx1, 1, 1e-6, 1e-5);
	}

	static const char *const lin[] = {"x", "w", "b"}, *const lgr[] = {"dx", "dw", "db"};
	run_case("ln2d", f_ln, NULL, lin, lgr, 3, 1e-5, 1e-4);
	run_case("ln2d_head", f_ln, NULL, lin, lgr, 3, 1e-5, 1e-4);
	run_case("ln2d_wide", f_ln, NULL, lin, lgr, 3, 1e-5, 1e-4);
	test_ln_rows();
	test_ln_norm();
	test_fresh_grads();
	test_gelu_saved();
	test_sd_grads();
	test_scale_nhwc();
	test_transpose();

	static const char *const bcein[] = {"x", "t"}, *const bcegr[] = {"dx", NULL};
	run_case("bce", f_bce, NULL, bcein, bcegr, 2, 1e-6, 1e-5);
	{
		struct fd_st s;
		fix_open(&s, "nn_core", "ce");
		int32_t lab[7];
		memcpy(lab, fix_raw(&s, "label", FD_DT_I32)->data, sizeof lab);
		fd_st_close(&s);
		run_case("ce", f_ce, lab, x1, dx1, 1, 1e-6, 1e-5);
	}

	test_dispatch();
	test_residual();
	test_dropout();
	test_op_timer();
	return tap_done();
}
