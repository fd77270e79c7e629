/* t_nn_pool: max, average and adaptive average pooling (lib/nn/pool2d.h)
 * against PyTorch fixtures (tests/ref/nn_conv.py): output, max indices, input
 * gradient with ADD semantics; the double references against PyTorch and by
 * finite differences in float64; bad geometry refused. Max pooling's fast
 * paths (2x2 s2, 3x3 s2 p1) and channels-last kernel against PyTorch on
 * inputs full of ties and NaNs (tests/ref/nn_pool.py): same values, same
 * indices (PyTorch's rule: first of equal maxima, last NaN), same gradient;
 * negative controls show the fixture tells those rules from their
 * neighbours and a one-index error fails. */
#include "nn/layout.h"
#include "nn/pool2d.h"
#include "fixture.h"
#include "nn_ctx.h"

struct fdctx {
	const struct fd_pool2d_shape *s;
	int kind; /* 0 max, 1 avg, 2 adaptive */
	int ad[6];
	const double *x, *dy;
	double *y;
	size_t ny;
};

static double loss(void *v)
{
	struct fdctx *c = v;
	if (c->kind == 0)
		fd_maxpool2d_ref_forward(c->s, c->x, c->y);
	else if (c->kind == 1)
		fd_avgpool2d_ref_forward(c->s, c->x, c->y);
	else
		fd_adaptive_avgpool2d_ref_forward(c->ad[0], c->ad[1], c->ad[2], c->ad[3], c->ad[4], c->ad[5],
						  c->x, c->y);
	return dot64(c->y, c->dy, c->ny);
}

static void check_ref(const char *what, int i, int kind, const struct fd_pool2d_shape *s, const int *ad,
		      const float *x, size_t nx, const float *y, const float *dy, const float *dx, size_t ny)
{
	char nm[96];
	double *X = to_f64(x, nx), *DY = to_f64(dy, ny), *Y = calloc(ny, 8), *DX = calloc(nx, 8);
	struct fdctx c = {s, kind, {0}, X, DY, Y, ny};
	if (ad)
		memcpy(c.ad, ad, sizeof c.ad);
	loss(&c);
	if (kind == 0)
		fd_maxpool2d_ref_backward(s, X, DY, DX);
	else if (kind == 1)
		fd_avgpool2d_ref_backward(s, DY, DX);
	else
		fd_adaptive_avgpool2d_ref_backward(ad[0], ad[1], ad[2], ad[3], ad[4], ad[5], DY, DX);
	snprintf(nm, sizeof nm, "case %d ref %s y", i, what);
	close64(nm, Y, y, ny, 1e-6, 1e-6);
	snprintf(nm, sizeof nm, "case %d ref %s dx", i, what);
	close64(nm, DX, dx, nx, 1e-6, 1e-6);
	snprintf(nm, sizeof nm, "case %d ref %s dx", i, what);
	fd_check(nm, X, nx, DX, 16, loss, &c);
	free(X), free(DY), free(Y), free(DX);
}

/* Same float (NaN equal to NaN, so NaN positions must match) over n. */
static int same_f32(const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!(a[i] == b[i] || (isnan(a[i]) && isnan(b[i]))))
			return 0;
	return n > 0;
}

/* NCHW [n, C, HW] <-> NHWC [n, HW, C], float or int32 (same size) */
static void *nhwc_of(const void *src, int n, int rows, int cols)
{
	float *d = malloc((size_t)n * rows * cols * 4);
	fd_transpose_cpu(1, n, rows, cols, src, d, 0);
	return d;
}

/* The index of window (oh, ow) of plane xp under a rule other than
 * PyTorch's: first_nan (the first NaN ends the scan) or last_tie (a value
 * equal to the maximum replaces it): the negative controls. */
static int32_t other_rule(const struct fd_pool2d_shape *s, const float *xp, int oh, int ow, int last_tie)
{
	int32_t mi = -1;
	float m = -INFINITY;
	for (int r = 0; r < s->kh; r++)
		for (int q = 0; q < s->kw; q++) {
			int ih = oh * s->sh - s->ph + r, iw = ow * s->sw - s->pw + q;
			if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W)
				continue;
			float v = xp[ih * s->W + iw];
			if (mi < 0)
				mi = ih * s->W + iw;
			if (isnan(m))
				continue;
			if (v > m || isnan(v) || (last_tie && v == m))
				m = v, mi = ih * s->W + iw;
		}
	return mi;
}

static void maxpool_fast(struct fd_ctx *c)
{
	struct fd_st st;
	char nm[128];
	fix_open(&st, "nn_pool", "maxpool");
	int cases = fix_cases(&st), nan2 = 0, ties = 0, checked = 0, disjoint = 0;
	ok(cases >= 7, "fixture has %d max pool cases", cases);
	for (int i = 0; i < cases; i++) {
		const int32_t *v = fix_i32(&st, i, "shape", 11);
		struct fd_pool2d_shape s = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], 1};
		int Ho, Wo;
		struct fd_err e = {{0}};
		if (!ok(fd_pool2d_out_size(&s, &Ho, &Wo, &e) == 0, "case %d geometry %s", i, e.msg))
			continue;
		int HW = s.H * s.W, P = Ho * Wo;
		size_t nx = (size_t)s.N * s.C * HW, ny = (size_t)s.N * s.C * P;
		const float *x = fix_f32(&st, i, "x", nx, 0), *ry = fix_f32(&st, i, "y", ny, 0);
		const float *dy = fix_f32(&st, i, "dy", ny, 0), *rdx = fix_f32(&st, i, "dx", nx, 0);
		const int32_t *ridx = fix_i32(&st, i, "idx", ny);
		diag("case %d: N=%d C=%d %dx%d k=%dx%d s=%d,%d p=%d,%d ceil=%d", i, s.N, s.C, s.H, s.W, s.kh,
		     s.kw, s.sh, s.sw, s.ph, s.pw, s.ceil_mode);
		/* the fixture exercises both rules: windows where another rule picks another index */
		int d_nan = 0, d_tie = 0;
		for (int pl = 0; pl < s.N * s.C; pl++)
			for (int o = 0; o < P; o++) {
				const float *xp = x + (size_t)pl * HW;
				d_nan += other_rule(&s, xp, o / Wo, o % Wo, 0) != ridx[(size_t)pl * P + o];
				d_tie += other_rule(&s, xp, o / Wo, o % Wo, 1) != ridx[(size_t)pl * P + o] &&
					 !isnan(ry[(size_t)pl * P + o]);
			}
		nan2 += d_nan, ties += d_tie;

		float *y = filled(ny, 9), *dx = filled(nx, 1), *edx = ones_plus(rdx, nx);
		int32_t *idx = malloc(ny * 4);
		fd_maxpool2d_fwd_cpu(c, &s, x, y, idx);
		ok(same_f32(y, ry, ny), "case %d NCHW max y equals PyTorch's (NaNs included)", i);
		ok(memcmp(idx, ridx, ny * 4) == 0, "case %d NCHW indices equal PyTorch's", i);
		fd_maxpool2d_bwd_cpu(c, &s, dy, idx, dx);
		snprintf(nm, sizeof nm, "case %d NCHW ones+dx (adds)", i);
		tap_close_f32(nm, dx, edx, nx, 1e-6, 1e-6);

		/* channels last: the same tensors transposed */
		float *xl = nhwc_of(x, s.N, s.C, HW), *dyl = nhwc_of(dy, s.N, s.C, P), *dxl = filled(nx, 1);
		float *yl = filled(ny, 9);
		int32_t *il = malloc(ny * 4);
		fd_maxpool2d_nhwc_fwd_cpu(c, &s, xl, yl, il);
		/* inference: no indices kept, the same values (NaNs included) */
		float *yv = filled(ny, 9);
		fd_maxpool2d_nhwc_fwd_cpu(c, &s, xl, yv, NULL);
		ok(memcmp(yv, yl, ny * sizeof *yv) == 0, "case %d NHWC max without indices: the same bits", i);
		free(yv);
		float *yb = nhwc_of(yl, s.N, P, s.C);
		int32_t *ib = nhwc_of(il, s.N, P, s.C);
		ok(same_f32(yb, ry, ny), "case %d NHWC max y equals PyTorch's (NaNs included)", i);
		ok(memcmp(ib, ridx, ny * 4) == 0, "case %d NHWC indices equal PyTorch's", i);
		fd_maxpool2d_nhwc_bwd_cpu(c, &s, dyl, il, dxl);
		float *dxb = nhwc_of(dxl, s.N, HW, s.C);
		snprintf(nm, sizeof nm, "case %d NHWC ones+dx (adds)", i);
		tap_close_f32(nm, dxb, edx, nx, 1e-6, 1e-6);
		if (fd_maxpool2d_disjoint(&s)) {
			/* a fresh dx (NaN before) written, not added into: the
			 * scatter-on-zeros bits, torch's dx exactly */
			float *dw = filled(nx, NAN), *dz = filled(nx, 0);
			fd_maxpool2d_nhwc_bwd_write_cpu(c, &s, dyl, il, dw);
			fd_maxpool2d_nhwc_bwd_cpu(c, &s, dyl, il, dz);
			float *dwb = nhwc_of(dw, s.N, HW, s.C);
			ok(memcmp(dw, dz, nx * sizeof *dw) == 0,
			   "case %d NHWC disjoint windows: the written dx has the bits of the scatter into zeros", i);
			snprintf(nm, sizeof nm, "case %d NHWC disjoint windows: written dx vs PyTorch's", i);
			tap_close_f32(nm, dwb, rdx, nx, 0, 0);
			/* control: the scatter into the NaN-filled dx leaves NaNs (the
			 * write really replaced every element) */
			float *dn = filled(nx, NAN);
			fd_maxpool2d_nhwc_bwd_cpu(c, &s, dyl, il, dn);
			ok(isnan(dn[0]) && isnan(dn[nx - 1]), "case %d control: the scatter into NaN keeps NaN", i);
			disjoint++;
			free(dw), free(dz), free(dwb), free(dn);
		}
		/* negative control: one index off by one fails the comparison */
		ib[ny / 2] += 1;
		ok(memcmp(ib, ridx, ny * 4) != 0, "case %d control: an index moved by one is caught", i);
		checked++;
		free(y), free(dx), free(edx), free(idx), free(xl), free(dyl), free(dxl), free(yl), free(il);
		free(yb), free(ib), free(dxb);
	}
	ok(checked == cases && checked > 0, "%d max pool cases checked", checked);
	ok(disjoint >= 3, "%d cases with disjoint windows checked the written backward", disjoint);
	ok(nan2 > 0, "control: %d windows where 'the first NaN wins' picks another index than PyTorch", nan2);
	ok(ties > 0, "control: %d windows where 'the last of equal maxima wins' picks another index", ties);
	fd_st_close(&st);
}

int main(void)
{
	struct fd_st st;
	struct fd_err e = {{0}};
	struct fd_ctx c0;
	ctx_open(&c0, 2, 1);
	char nm[96];
	fix_open(&st, "nn_conv", "pool");
	int cases = fix_cases(&st);
	ok(cases >= 8, "fixture has %d pool cases", cases);
	for (int i = 0; i < cases; i++) {
		const int32_t *v = fix_i32(&st, i, "shape", 12);
		struct fd_pool2d_shape s = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]};
		int Ho, Wo;
		diag("case %d: N=%d C=%d %dx%d k=%dx%d s=%d,%d p=%d,%d ceil=%d count_include_pad=%d", i, s.N,
		     s.C, s.H, s.W, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, s.ceil_mode, s.count_include_pad);
		if (!ok(fd_pool2d_out_size(&s, &Ho, &Wo, &e) == 0, "case %d geometry valid %s", i, e.msg))
			continue;
		size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.C * Ho * Wo;
		const float *x = fix_f32(&st, i, "x", nx, 0);
		const float *my = fix_f32(&st, i, "max_y", ny, 0), *mdy = fix_f32(&st, i, "max_dy", ny, 0);
		const float *mdx = fix_f32(&st, i, "max_dx", nx, 0);
		const int32_t *midx = fix_i32(&st, i, "max_idx", ny);
		const float *ay = fix_f32(&st, i, "avg_y", ny, 0), *ady = fix_f32(&st, i, "avg_dy", ny, 0);
		const float *adx = fix_f32(&st, i, "avg_dx", nx, 0);

		float *y = filled(ny, 9), *dx = filled(nx, 1), *edx = ones_plus(mdx, nx);
		int32_t *idx = malloc(ny * 4);
		fd_maxpool2d_fwd_cpu(&c0, &s, x, y, idx);
		snprintf(nm, sizeof nm, "case %d max y", i);
		tap_close_f32(nm, y, my, ny, 0, 0);
		ok(memcmp(idx, midx, ny * 4) == 0, "case %d max indices equal PyTorch's", i);
		fd_maxpool2d_bwd_cpu(&c0, &s, mdy, idx, dx);
		snprintf(nm, sizeof nm, "case %d max ones+dx (adds)", i);
		tap_close_f32(nm, dx, edx, nx, 1e-6, 1e-6);
		check_ref("max", i, 0, &s, NULL, x, nx, my, mdy, mdx, ny);

		free(edx);
		edx = ones_plus(adx, nx);
		for (size_t j = 0; j < nx; j++)
			dx[j] = 1;
		fd_avgpool2d_fwd_cpu(&c0, &s, x, y);
		snprintf(nm, sizeof nm, "case %d avg y", i);
		tap_close_f32(nm, y, ay, ny, 1e-6, 1e-5);
		fd_avgpool2d_bwd_cpu(&c0, &s, ady, dx);
		snprintf(nm, sizeof nm, "case %d avg ones+dx (adds)", i);
		tap_close_f32(nm, dx, edx, nx, 1e-6, 1e-5);
		check_ref("avg", i, 1, &s, NULL, x, nx, ay, ady, adx, ny);
		free(y), free(dx), free(edx), free(idx);
	}
	fd_st_close(&st);

	fix_open(&st, "nn_conv", "adaptive");
	cases = fix_cases(&st);
	ok(cases >= 6, "fixture has %d adaptive cases", cases);
	for (int i = 0; i < cases; i++) {
		const int32_t *v = fix_i32(&st, i, "shape", 6);
		int ad[6] = {v[0], v[1], v[2], v[3], v[4], v[5]};
		size_t nx = (size_t)v[0] * v[1] * v[2] * v[3], ny = (size_t)v[0] * v[1] * v[4] * v[5];
		diag("case %d: N=%d C=%d %dx%d -> %dx%d", i, v[0], v[1], v[2], v[3], v[4], v[5]);
		const float *x = fix_f32(&st, i, "x", nx, 0), *ry = fix_f32(&st, i, "y", ny, 0);
		const float *dy = fix_f32(&st, i, "dy", ny, 0), *rdx = fix_f32(&st, i, "dx", nx, 0);
		float *y = filled(ny, 9), *dx = filled(nx, 1), *edx = ones_plus(rdx, nx);
		ok(fd_adaptive_avgpool2d_fwd_cpu(&c0, v[0], v[1], v[2], v[3], v[4], v[5], x, y) == 0,
		   "case %d adaptive forward runs", i);
		snprintf(nm, sizeof nm, "case %d adaptive y", i);
		tap_close_f32(nm, y, ry, ny, 1e-6, 1e-5);
		ok(fd_adaptive_avgpool2d_bwd_cpu(&c0, v[0], v[1], v[2], v[3], v[4], v[5], dy, dx) == 0,
		   "case %d adaptive backward runs", i);
		snprintf(nm, sizeof nm, "case %d adaptive ones+dx (adds)", i);
		tap_close_f32(nm, dx, edx, nx, 1e-6, 1e-5);
		check_ref("adaptive", i, 2, NULL, ad, x, nx, ry, dy, rdx, ny);
		free(y), free(dx), free(edx);
	}
	fd_st_close(&st);

	struct fd_pool2d_shape bad = {1, 1, 8, 8, 3, 3, 1, 1, 2, 2, 0, 1};
	int Ho, Wo;
	ok(fd_pool2d_out_size(&bad, &Ho, &Wo, &e) < 0 && strstr(e.msg, "half the kernel"),
	   "padding over half the kernel refused: %s", e.msg);
	struct fd_pool2d_shape big = {1, 1, 2, 2, 5, 5, 1, 1, 1, 1, 0, 1};
	ok(fd_pool2d_out_size(&big, &Ho, &Wo, &e) < 0 && strstr(e.msg, "kernel larger"),
	   "kernel larger than padded input refused: %s", e.msg);
	/* a NaN wins its window, as in PyTorch */
	struct fd_pool2d_shape s1 = {1, 1, 2, 2, 2, 2, 2, 2, 0, 0, 0, 1};
	float xn[4] = {1, NAN, 5, 2}, yn;
	int32_t in;
	fd_maxpool2d_fwd_cpu(&c0, &s1, xn, &yn, &in);
	ok(isnan(yn) && in == 1, "max pool propagates NaN with its index (%g at %d)", yn, in);
	ok(fd_adaptive_avgpool2d_fwd_cpu(&c0, 1, 1, 4, 4, 0, 1, xn, &yn) < 0 && strstr(c0.err.msg, "positive"),
	   "adaptive output 0 refused: %s", c0.err.msg);
	maxpool_fast(&c0);
	fd_ctx_free(&c0);
	return tap_done();
}
