/* t_nn_batchnorm: batchnorm2d (lib/nn/batchnorm2d.h) against PyTorch's
 * nn.BatchNorm2d fixtures (tests/ref/nn_conv.py) in train and eval mode:
 * output, running-stat update, input/weight/bias gradients with ADD semantics;
 * the double references against PyTorch and by finite differences. */
#include "core/fd_rng.h"
#include "nn/batchnorm2d.h"
#include "nn/layout.h"
#include "fixture.h"
#include "nn_ctx.h"

struct fdctx {
	int N, C, HW, eval;
	const double *x, *w, *b, *rm, *rv, *dy;
	double *y, *mean, *var;
};

static double loss(void *v)
{
	struct fdctx *c = v;
	if (c->eval)
		fd_batchnorm2d_ref_forward_eval(c->N, c->C, c->HW, c->x, c->w, c->b, c->rm, c->rv, FD_BN_EPS,
						c->y);
	else
		fd_batchnorm2d_ref_forward_train(c->N, c->C, c->HW, c->x, c->w, c->b, FD_BN_EPS, c->y,
						 c->mean, c->var);
	return dot64(c->y, c->dy, (size_t)c->N * c->C * c->HW);
}

/* Big tensors on 2 threads, both kernel paths (planes: NCHW; rows: the same
 * values channels last), against the double references (checked against
 * PyTorch above): (a) offsets of 10, every output; (b) channel means up to
 * 2e4 with standard deviations down to 0.05, the statistics (mean, 1/std,
 * running variance) that a sum of squares about zero would lose. A wrong
 * 1/std must fail the same check. */
static void test_big(struct fd_ctx *c0, int large)
{
	const int N = 8, C = 24, HW = 37 * 37;
	size_t n = (size_t)N * C * HW;
	struct fd_rng rng;
	fd_rng_init(&rng, 99 + large, 0);
	float *x = malloc(n * 4), *dy = malloc(n * 4), *w = malloc(C * 4), *b = malloc(C * 4);
	for (int ch = 0; ch < C; ch++) {
		w[ch] = (float)(0.5 + fd_rng_uniform(&rng)), b[ch] = (float)(fd_rng_uniform(&rng) - 0.5);
		double off = large ? 1000.0 + 1e4 * (ch % 3) : 10, sd = large && ch % 2 ? 0.05 : 2;
		for (int k = 0; k < N; k++)
			for (int i = 0; i < HW; i++) {
				x[((size_t)k * C + ch) * HW + i] = (float)(off + sd * (2 * fd_rng_uniform(&rng) - 1));
				dy[((size_t)k * C + ch) * HW + i] = (float)(2 * fd_rng_uniform(&rng) - 1);
			}
	}
	double *X = to_f64(x, n), *W = to_f64(w, C), *B = to_f64(b, C), *DY = to_f64(dy, n);
	double *Y = calloc(n, 8), *M = calloc(C, 8), *V = calloc(C, 8), *DX = calloc(n, 8);
	double *DW = calloc(C, 8), *DB = calloc(C, 8), *IS = calloc(C, 8), *RV = calloc(C, 8);
	fd_batchnorm2d_ref_forward_train(N, C, HW, X, W, B, FD_BN_EPS, Y, M, V);
	fd_batchnorm2d_ref_backward_train(N, C, HW, DY, X, W, FD_BN_EPS, DX, DW, DB);
	for (int ch = 0; ch < C; ch++) {
		IS[ch] = 1 / sqrt(V[ch] + FD_BN_EPS);
		RV[ch] = 0.9 + 0.1 * V[ch] * (N * HW) / (N * HW - 1.0);
	}
	float *xt = malloc(n * 4), *dyt = malloc(n * 4), *t = malloc(n * 4);
	fd_transpose_cpu(2, N, C, HW, x, xt, 0);
	fd_transpose_cpu(2, N, C, HW, dy, dyt, 0);
	for (int rows = 0; rows < 2; rows++) {
		float *y = filled(n, 9), *dx = filled(n, 0), *dw = filled(C, 0), *db = filled(C, 0);
		float *rm = filled(C, 0), *rv = filled(C, 1), *sm = filled(C, 0), *si = filled(C, 0);
		int64_t n1 = rows ? (int64_t)N * HW : N, h1 = rows ? 1 : HW;
		ok(fd_batchnorm2d_fwd_train_cpu(c0, n1, C, h1, rows ? xt : x, w, b, rm, rv, FD_BN_MOMENTUM, FD_BN_EPS,
						y, sm, si) == 0 &&
			   fd_batchnorm2d_bwd_train_cpu(c0, n1, C, h1, rows ? xt : x, w, sm, si, rows ? dyt : dy, dx, dw,
							db) == 0,
		   "big %s: runs %s", rows ? "rows" : "planes", c0->err.msg);
		const char *what = large ? "large means" : "offset 10";
		char nm[96];
		if (rows) {
			fd_transpose_cpu(2, N, HW, C, y, t, 0), memcpy(y, t, n * 4);
			fd_transpose_cpu(2, N, HW, C, dx, t, 0), memcpy(dx, t, n * 4);
		}
		snprintf(nm, sizeof nm, "big %s %s: mean", rows ? "rows" : "planes", what);
		close64(nm, M, sm, C, 0, 1e-7);
		snprintf(nm, sizeof nm, "big %s %s: 1/std", rows ? "rows" : "planes", what);
		close64(nm, IS, si, C, 0, 2e-6);
		snprintf(nm, sizeof nm, "big %s %s: running_var", rows ? "rows" : "planes", what);
		close64(nm, RV, rv, C, 0, 2e-6);
		float *isr = to_f32(IS, C);
		si[C - 1] *= 1 + 1e-5f; /* negative control */
		size_t far = 0;
		for (int ch = 0; ch < C; ch++)
			far += !(fabs((double)si[ch] - isr[ch]) <= 2e-6 * fabs((double)isr[ch]));
		ok(far == 1, "big %s %s: a 1/std off by 1e-5 is caught", rows ? "rows" : "planes", what);
		if (!large) {
			snprintf(nm, sizeof nm, "big %s %s: y", rows ? "rows" : "planes", what);
			close64(nm, Y, y, n, 2e-5, 2e-5);
			snprintf(nm, sizeof nm, "big %s %s: dx", rows ? "rows" : "planes", what);
			close64(nm, DX, dx, n, 2e-5, 2e-5);
			snprintf(nm, sizeof nm, "big %s %s: dweight", rows ? "rows" : "planes", what);
			close64(nm, DW, dw, C, 2e-5, 2e-5);
			snprintf(nm, sizeof nm, "big %s %s: dbias", rows ? "rows" : "planes", what);
			close64(nm, DB, db, C, 2e-5, 2e-5);
		}
		free(isr), free(y), free(dx), free(dw), free(db), free(rm), free(rv), free(sm), free(si);
	}
	free(x), free(dy), free(w), free(b), free(X), free(W), free(B), free(DY), free(Y), free(M), free(V);
	free(DX), free(DW), free(DB), free(IS), free(RV), free(xt), free(dyt), free(t);
}

int main(void)
{
	struct fd_st st;
	struct fd_ctx c0;
	ctx_open(&c0, 2, 1);
	char nm[96];
	fix_open(&st, "nn_conv", "batchnorm");
	int cases = fix_cases(&st);
	ok(cases >= 5, "fixture has %d batchnorm cases", cases);
	int nrows = 0;
	for (int i = 0; i < cases; i++) {
		const int32_t *v = fix_i32(&st, i, "shape", 5);
		int N = v[0], C = v[1], HW = v[2] * v[3];
		size_t n = (size_t)N * C * HW;
		diag("case %d: N=%d C=%d H=%d W=%d offset %d", i, N, C, v[2], v[3], v[4]);
		const float *x = fix_f32(&st, i, "x", n, 0), *w = fix_f32(&st, i, "weight", C, 0);
		const float *b = fix_f32(&st, i, "bias", C, 0), *rm = fix_f32(&st, i, "rm", C, 0);
		const float *rv = fix_f32(&st, i, "rv", C, 0), *dy = fix_f32(&st, i, "dy", n, 0);
		const char *names[] = {"y", "dx", "dweight", "dbias", "rm_new", "rv_new",
				       "y_eval", "dx_eval", "dweight_eval", "dbias_eval"};
		const float *r[10];
		for (int k = 0; k < 10; k++)
			r[k] = fix_f32(&st, i, names[k], (k == 0 || k == 1 || k == 6 || k == 7) ? (long)n : C, 0);

		/* train mode */
		float *y = filled(n, 9), *dx = filled(n, 1), *dw = filled(C, 1), *db = filled(C, 1);
		float *crm = malloc(C * 4), *crv = malloc(C * 4), *sm = malloc(C * 4), *si = malloc(C * 4);
		memcpy(crm, rm, C * 4), memcpy(crv, rv, C * 4);
		ok(fd_batchnorm2d_fwd_train_cpu(&c0, N, C, HW, x, w, b, crm, crv, FD_BN_MOMENTUM, FD_BN_EPS, y,
						sm, si) == 0,
		   "case %d train forward runs %s", i, c0.err.msg);
		fd_batchnorm2d_bwd_train_cpu(&c0, N, C, HW, x, w, sm, si, dy, dx, dw, db);
		float *edx = ones_plus(r[1], n), *edw = ones_plus(r[2], C), *edb = ones_plus(r[3], C);
		struct { const char *n; const float *a, *r; size_t len; } chk[] = {
			{"train y", y, r[0], n}, {"train ones+dx (adds)", dx, edx, n},
			{"train ones+dweight (adds)", dw, edw, C}, {"train ones+dbias (adds)", db, edb, C},
			{"running_mean", crm, r[4], C}, {"running_var", crv, r[5], C}};
		for (int k = 0; k < 6; k++) {
			snprintf(nm, sizeof nm, "case %d %s", i, chk[k].n);
			/* float32 normalisation of O(1) values: 1e-5 relative */
			tap_close_f32(nm, chk[k].a, chk[k].r, chk[k].len, 2e-5, 2e-5);
		}
		/* eval mode */
		float *ye = filled(n, 9), *dxe = filled(n, 1), *dwe = filled(C, 1), *dbe = filled(C, 1);
		fd_batchnorm2d_fwd_eval_cpu(&c0, N, C, HW, x, w, b, rm, rv, FD_BN_EPS, ye);
		fd_batchnorm2d_bwd_eval_cpu(&c0, N, C, HW, x, w, rm, rv, FD_BN_EPS, dy, dxe, dwe, dbe);
		float *edxe = ones_plus(r[7], n), *edwe = ones_plus(r[8], C), *edbe = ones_plus(r[9], C);
		snprintf(nm, sizeof nm, "case %d eval y", i);
		tap_close_f32(nm, ye, r[6], n, 2e-5, 2e-5);
		snprintf(nm, sizeof nm, "case %d eval ones+dx (adds)", i);
		tap_close_f32(nm, dxe, edxe, n, 2e-5, 2e-5);
		snprintf(nm, sizeof nm, "case %d eval ones+dweight (adds)", i);
		tap_close_f32(nm, dwe, edwe, C, 2e-5, 2e-5);
		snprintf(nm, sizeof nm, "case %d eval ones+dbias (adds)", i);
		tap_close_f32(nm, dbe, edbe, C, 2e-5, 2e-5);

		/* channels last: the same values as [N*H*W, C] rows (HW == 1), the
		 * kernels' rows path (doc/nn-kernels.md "Layouts"), same tolerances */
		if (HW > 1) {
			float *xt = malloc(n * 4), *dyt = malloc(n * 4), *t = malloc(n * 4);
			fd_transpose_cpu(2, N, C, HW, x, xt, 0);
			fd_transpose_cpu(2, N, C, HW, dy, dyt, 0);
			float *yt = filled(n, 9), *dxt = filled(n, 1), *dwt = filled(C, 1), *dbt = filled(C, 1);
			memcpy(crm, rm, C * 4), memcpy(crv, rv, C * 4);
			ok(fd_batchnorm2d_fwd_train_cpu(&c0, (int64_t)N * HW, C, 1, xt, w, b, crm, crv, FD_BN_MOMENTUM,
							FD_BN_EPS, yt, sm, si) == 0 &&
				   fd_batchnorm2d_bwd_train_cpu(&c0, (int64_t)N * HW, C, 1, xt, w, sm, si, dyt, dxt, dwt, dbt) == 0,
			   "case %d channels-last train runs %s", i, c0.err.msg);
			fd_transpose_cpu(2, N, HW, C, yt, t, 0);
			snprintf(nm, sizeof nm, "case %d channels-last train y", i);
			tap_close_f32(nm, t, r[0], n, 2e-5, 2e-5);
			fd_transpose_cpu(2, N, HW, C, dxt, t, 0);
			snprintf(nm, sizeof nm, "case %d channels-last train ones+dx", i);
			tap_close_f32(nm, t, edx, n, 2e-5, 2e-5);
			snprintf(nm, sizeof nm, "case %d channels-last train ones+dweight", i);
			tap_close_f32(nm, dwt, edw, C, 2e-5, 2e-5);
			snprintf(nm, sizeof nm, "case %d channels-last train ones+dbias", i);
			tap_close_f32(nm, dbt, edb, C, 2e-5, 2e-5);
			snprintf(nm, sizeof nm, "case %d channels-last running_mean", i);
			tap_close_f32(nm, crm, r[4], C, 2e-5, 2e-5);
			snprintf(nm, sizeof nm, "case %d channels-last running_var", i);
			tap_close_f32(nm, crv, r[5], C, 2e-5, 2e-5);
			for (size_t j = 0; j < n; j++)
				dxt[j] = 1;
			for (int64_t j = 0; j < C; j++)
				dwt[j] = dbt[j] = 1;
			ok(fd_batchnorm2d_fwd_eval_cpu(&c0, (int64_t)N * HW, C, 1, xt, w, b, rm, rv, FD_BN_EPS, yt) == 0 &&
				   fd_batchnorm2d_bwd_eval_cpu(&c0, (int64_t)N * HW, C, 1, xt, w, rm, rv, FD_BN_EPS, dyt, dxt,
							       dwt, dbt) == 0,
			   "case %d channels-last eval runs %s", i, c0.err.msg);
			fd_transpose_cpu(2, N, HW, C, yt, t, 0);
			snprintf(nm, sizeof nm, "case %d channels-last eval y", i);
			tap_close_f32(nm, t, r[6], n, 2e-5, 2e-5);
			fd_transpose_cpu(2, N, HW, C, dxt, t, 0);
			snprintf(nm, sizeof nm, "case %d channels-last eval ones+dx", i);
			tap_close_f32(nm, t, edxe, n, 2e-5, 2e-5);
			snprintf(nm, sizeof nm, "case %d channels-last eval ones+dweight", i);
			tap_close_f32(nm, dwt, edwe, C, 2e-5, 2e-5);
			snprintf(nm, sizeof nm, "case %d channels-last eval ones+dbias", i);
			tap_close_f32(nm, dbt, edbe, C, 2e-5, 2e-5);
			nrows++;
			free(xt), free(dyt), free(t), free(yt), free(dxt), free(dwt), free(dbt);
		}

		/* double references */
		double *X = to_f64(x, n), *W = to_f64(w, C), *B = to_f64(b, C), *RM = to_f64(rm, C);
		double *RV = to_f64(rv, C), *DY = to_f64(dy, n), *Y = calloc(n, 8), *M = calloc(C, 8);
		double *V = calloc(C, 8), *DX = calloc(n, 8), *DW = calloc(C, 8), *DB = calloc(C, 8);
		fd_batchnorm2d_ref_forward_train(N, C, HW, X, W, B, FD_BN_EPS, Y, M, V);
		fd_batchnorm2d_ref_backward_train(N, C, HW, DY, X, W, FD_BN_EPS, DX, DW, DB);
			snprintf(nm, sizeof nm, "case %d ref train y", i);
		close64(nm, Y, r[0], n, 1e-6, 1e-6);
		snprintf(nm, sizeof nm, "case %d ref train dx", i);
		close64(nm, DX, r[1], n, 1e-6, 1e-6);
		snprintf(nm, sizeof nm, "case %d ref train dweight", i);
		close64(nm, DW, r[2], C, 1e-6, 1e-6);
		snprintf(nm, sizeof nm, "case %d ref train dbias", i);
		close64(nm, DB, r[3], C, 1e-6, 1e-6);
		struct fdctx c = {N, C, HW, 0, X, W, B, RM, RV, DY, calloc(n, 8), calloc(C, 8), calloc(C, 8)};
		snprintf(nm, sizeof nm, "case %d ref train dx", i);
		fd_check(nm, X, n, DX, 12, loss, &c);
		snprintf(nm, sizeof nm, "case %d ref train dweight", i);
		fd_check(nm, W, C, DW, 6, loss, &c);
		snprintf(nm, sizeof nm, "case %d ref train dbias", i);
		fd_check(nm, B, C, DB, 6, loss, &c);
		memset(DX, 0, n * 8), memset(DW, 0, C * 8), memset(DB, 0, C * 8);
		fd_batchnorm2d_ref_forward_eval(N, C, HW, X, W, B, RM, RV, FD_BN_EPS, Y);
		fd_batchnorm2d_ref_backward_eval(N, C, HW, DY, X, W, RM, RV, FD_BN_EPS, DX, DW, DB);
		snprintf(nm, sizeof nm, "case %d ref eval y", i);
		close64(nm, Y, r[6], n, 1e-6, 1e-6);
		snprintf(nm, sizeof nm, "case %d ref eval dx", i);
		close64(nm, DX, r[7], n, 1e-6, 1e-6);
		snprintf(nm, sizeof nm, "case %d ref eval dweight", i);
		close64(nm, DW, r[8], C, 1e-6, 1e-6);
		c.eval = 1;
		snprintf(nm, sizeof nm, "case %d ref eval dx", i);
		fd_check(nm, X, n, DX, 12, loss, &c);
		snprintf(nm, sizeof nm, "case %d ref eval dweight", i);
		fd_check(nm, W, C, DW, 6, loss, &c);
		free(c.y), free(c.mean), free(c.var);
		free(y), free(dx), free(dw), free(db), free(crm), free(crv), free(sm), free(si);
		free(edx), free(edw), free(edb), free(ye), free(dxe), free(dwe), free(dbe);
		free(edxe), free(edwe), free(edbe);
		free(X), free(W), free(B), free(RM), free(RV), free(DY), free(Y), free(M), free(V);
		free(DX), free(DW), free(DB);
	}
	ok(nrows >= 4, "%d cases checked in channels-last rows", nrows);
	test_big(&c0, 0);
	test_big(&c0, 1);
	float one = 1, o2 = 0, o3 = 0, o4 = 0, o5 = 0, o6 = 0;
	ok(fd_batchnorm2d_fwd_train_cpu(&c0, 1, 1, 1, &one, &one, &one, &o2, &o3, 0.1, 1e-5, &o4, &o5,
					&o6) < 0 && strstr(c0.err.msg, "more than 1 value"),
	   "one value per channel refused in training: %s", c0.err.msg);
	fd_st_close(&st);
	fd_ctx_free(&c0);
	return tap_done();
}
