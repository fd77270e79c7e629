/* t_nn_batchnorm: batchnorm2d (lib/nn/batchnorm2d.h) against PyTorch's
 * nn.BatchNorm2d fixtures (tests/ref/nn_conv.py) in train and eval mode:
 * output, running-stat update, input/weight/bias gradients with ADD semantics;
 * the double references against PyTorch and by finite differences. */
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
	float one = 1, o2 = 0, o3 = 0, o4 = 0, o5 = 0, o6 = 0;
	ok(fd_batchnorm2d_fwd_train_cpu(&c0, 1, 1, 1, &one, &one, &one, &o2, &o3, 0.1, 1e-5, &o4, &o5,
					&o6) < 0 && strstr(c0.err.msg, "more than 1 value"),
	   "one value per channel refused in training: %s", c0.err.msg);
	fd_st_close(&st);
	fd_ctx_free(&c0);
	return tap_done();
}
