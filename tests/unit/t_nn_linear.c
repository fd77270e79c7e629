/* t_nn_linear: linear (lib/nn/linear.h) against PyTorch fixtures
 * (tests/ref/nn_conv.py): sgemm path and double reference, forward, input,
 * weight and bias gradients, ADD semantics, finite differences in float64. */
#include "nn/linear.h"
#include "fixture.h"
#include "nn_ctx.h"

struct fdctx {
	int N, in, out;
	const double *x, *w, *b, *dy;
	double *y;
};

static double loss(void *v)
{
	struct fdctx *c = v;
	fd_linear_ref_forward(c->N, c->in, c->out, c->x, c->w, c->b, c->y);
	return dot64(c->y, c->dy, (size_t)c->N * c->out);
}

int main(void)
{
	struct fd_st st;
	struct fd_ctx c0;
	ctx_open(&c0, 2, 1);
	char nm[96];
	fix_open(&st, "nn_conv", "linear");
	int cases = fix_cases(&st);
	ok(cases >= 5, "fixture has %d linear cases", cases);
	for (int i = 0; i < cases; i++) {
		const int32_t *v = fix_i32(&st, i, "shape", 4);
		int N = v[0], in = v[1], out = v[2], bias = v[3];
		size_t nx = (size_t)N * in, nw = (size_t)out * in, ny = (size_t)N * out, nb = bias ? out : 0;
		const float *x = fix_f32(&st, i, "x", nx, 0), *w = fix_f32(&st, i, "w", nw, 0);
		const float *b = fix_f32(&st, i, "b", nb, 1), *y = fix_f32(&st, i, "y", ny, 0);
		const float *dy = fix_f32(&st, i, "dy", ny, 0), *dx = fix_f32(&st, i, "dx", nx, 0);
		const float *dw = fix_f32(&st, i, "dw", nw, 0), *db = fix_f32(&st, i, "db", nb, 1);
		diag("case %d: N=%d in=%d out=%d bias=%d", i, N, in, out, bias);
		float *oy = filled(ny, 5), *odx = filled(nx, 1), *odw = filled(nw, 1), *odb = filled(out, 1);
		float *edx = ones_plus(dx, nx), *edw = ones_plus(dw, nw), *edb = nb ? ones_plus(db, nb) : NULL;
		ok(fd_linear_fwd_cpu(&c0, N, in, out, x, w, b, oy) == 0, "case %d forward runs %s", i, c0.err.msg);
		snprintf(nm, sizeof nm, "case %d y", i);
		tap_close_f32(nm, oy, y, ny, 1e-5, 1e-5);
		ok(fd_linear_bwd_cpu(&c0, N, in, out, NULL, w, dy, odx, NULL, NULL) == 0, "case %d backward-data runs", i);
		snprintf(nm, sizeof nm, "case %d ones+dx (adds)", i);
		tap_close_f32(nm, odx, edx, nx, 1e-5, 1e-5);
		ok(fd_linear_bwd_cpu(&c0, N, in, out, x, NULL, dy, NULL, odw, nb ? odb : NULL) == 0,
		   "case %d backward-weights runs", i);
		snprintf(nm, sizeof nm, "case %d ones+dw (adds)", i);
		tap_close_f32(nm, odw, edw, nw, 1e-5, 1e-5);
		if (nb) {
			snprintf(nm, sizeof nm, "case %d ones+db (adds)", i);
			tap_close_f32(nm, odb, edb, nb, 1e-5, 1e-5);
		}

		double *X = to_f64(x, nx), *Wd = to_f64(w, nw), *B = nb ? to_f64(b, nb) : NULL;
		double *DY = to_f64(dy, ny), *RY = calloc(ny, 8), *RDX = calloc(nx, 8), *RDW = calloc(nw, 8);
		double *RDB = calloc(out, 8);
		fd_linear_ref_forward(N, in, out, X, Wd, B, RY);
		fd_linear_ref_backward_data(N, in, out, DY, Wd, RDX);
		fd_linear_ref_backward_weights(N, in, out, X, DY, RDW, nb ? RDB : NULL);
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
		struct fdctx c = {N, in, out, X, Wd, B, DY, calloc(ny, 8)};
		snprintf(nm, sizeof nm, "case %d ref dx", i);
		fd_check(nm, X, nx, RDX, 12, loss, &c);
		snprintf(nm, sizeof nm, "case %d ref dw", i);
		fd_check(nm, Wd, nw, RDW, 12, loss, &c);
		if (nb) {
			snprintf(nm, sizeof nm, "case %d ref db", i);
			fd_check(nm, B, nb, RDB, 6, loss, &c);
		}
		free(c.y), free(oy), free(odx), free(odw), free(odb), free(edx), free(edw), free(edb);
		free(X), free(Wd), free(B), free(DY), free(RY), free(RDX), free(RDW), free(RDB);
		free(ry), free(rdx), free(rdw), free(rdb);
	}
	float z = 0;
	ok(fd_linear_fwd_cpu(&c0, 0, 3, 3, &z, &z, NULL, &z) < 0 && strstr(c0.err.msg, "positive"),
	   "N=0 refused: %s", c0.err.msg);
	fd_st_close(&st);
	fd_ctx_free(&c0);
	return tap_done();
}
