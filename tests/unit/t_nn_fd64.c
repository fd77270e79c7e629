/* t_nn_fd64: the double-precision references of the engine-core ops (the six
 * activations, prelu, broadcast add/mul, softmax, LayerNorm2d, BCE-with-logits,
 * cross-entropy, dropout and stochastic depth given their masks):
 * (a) each reference backward against float64 central differences of the
 *     reference forward, on every element of every input, odd shapes and
 *     broadcasting shapes included;
 * (b) each float32 kernel, forward and backward through the tape, against the
 *     reference on the same (float-representable) inputs;
 * (c) negative controls: the same check rejects slightly and grossly wrong
 *     gradients.
 * Inputs are seeded Philox draws, rounded to float so (a) and (b) share them. */
#include "core/fd_rng.h"
#include "nn/act.h"
#include "nn/binary.h"
#include "nn/dropout.h"
#include "nn/layernorm2d.h"
#include "nn/loss.h"
#include "nn/softmax.h"
#include "tap.h"
#include "nn_ctx.h"

#include <string.h>

/* Central-difference step and tolerance. With h = 1e-6 the truncation error
 * is h^2 |f'''| / 6 ~ 1e-13 for these ops; the rounding error is about
 * eps * sum(|dy y|) over the outputs one input reaches, divided by 2h: under
 * 1e-9 here (the widest reach is a broadcast operand read by 84 outputs).
 * So |fd - g| <= 1e-8 + 1e-7 |g| has a margin of 10x or more, and an error of
 * 1e-6 relative in one element fails it. */
#define FD_H 1e-6
#define FD_ATOL 1e-8
#define FD_RTOL 1e-7

enum kind { K_ACT, K_PRELU, K_BIN, K_SOFTMAX, K_LN, K_BCE, K_CE, K_DROPOUT, K_ROWSCALE };

#define MAXP 3

/* One problem: inputs p[k] (shape nd[k] / shape[k]), output y [ny], seed
 * gradient dy. The scalar loss of the finite differences is L = sum(dy * y);
 * for the two losses y is the [1] loss and dy its incoming gradient g. */
struct prob {
	char name[64];
	enum kind kind;
	int np;    /* inputs that get a gradient */
	int nin;   /* all inputs (BCE's targets take no gradient) */
	double *p[MAXP];
	int nd[MAXP];
	int64_t shape[MAXP][5];
	size_t n[MAXP];
	size_t ny;
	double *y, *dy;
	/* op parameters */
	enum fd_act act;
	enum fd_binop op;
	struct fd_bcast bc;
	int dim;
	int64_t outer, C, inner; /* softmax view; prelu / layernorm use N = outer, C, inner = HW */
	double eps;
	int32_t *label;
	uint8_t *keep;
	double *f, drop_p;
	/* float32 tolerances for (b): forward, and the gradients */
	double fatol, frtol, gatol, grtol;
};

static struct fd_rng rng;

/* uniform in [lo, hi), rounded to float, kept at least 1e-2 away from the
 * kinks 0 and +-3 when avoid_kinks (relu, prelu at 0; hardswish, hardsigmoid
 * at +-3): there the one-sided derivatives differ, a central difference
 * straddling one would average them, and torch's (and our) choice of one side
 * is checked separately on exact kink values. */
static double draw(double lo, double hi, int avoid_kinks)
{
	for (;;) {
		double v = (double)(float)(lo + (hi - lo) * fd_rng_uniform(&rng));
		if (!avoid_kinks || (fabs(v) > 1e-2 && fabs(fabs(v) - 3.0) > 1e-2))
			return v;
	}
}

static size_t numel(int nd, const int64_t *s)
{
	size_t n = 1;
	for (int i = 0; i < nd; i++)
		n *= (size_t)s[i];
	return n;
}

static void add_input(struct prob *P, int nd, const int64_t *shape, double lo, double hi, int kinks)
{
	int k = P->nin++;
	P->nd[k] = nd;
	memcpy(P->shape[k], shape, (size_t)nd * sizeof *shape);
	P->n[k] = numel(nd, shape);
	P->p[k] = malloc(P->n[k] * sizeof(double));
	for (size_t i = 0; i < P->n[k]; i++)
		P->p[k][i] = draw(lo, hi, kinks);
}

static void set_output(struct prob *P, size_t ny)
{
	P->ny = ny;
	P->y = calloc(ny, sizeof(double));
	P->dy = malloc(ny * sizeof(double));
	for (size_t i = 0; i < ny; i++)
		P->dy[i] = draw(-1, 1, 0);
}

static void prob_free(struct prob *P)
{
	for (int k = 0; k < P->nin; k++)
		free(P->p[k]);
	free(P->y);
	free(P->dy);
	free(P->label);
	free(P->keep);
	free(P->f);
}

/* The reference forward: fills P->y from P->p. */
static void ref_forward(struct prob *P)
{
	double **p = P->p;
	switch (P->kind) {
	case K_ACT:
		fd_act_ref_forward(P->act, (int64_t)P->n[0], p[0], P->y);
		break;
	case K_PRELU:
		fd_prelu_ref_forward(P->outer, P->C, P->inner, p[0], p[1], P->y);
		break;
	case K_BIN:
		fd_bin_ref_forward(P->op, &P->bc, p[0], p[1], P->y);
		break;
	case K_SOFTMAX:
		fd_softmax_ref_forward(P->outer, P->C, P->inner, p[0], P->y);
		break;
	case K_LN:
		fd_layernorm2d_ref_forward(P->outer, P->C, P->inner, P->eps, p[0], p[1], p[2], P->y);
		break;
	case K_BCE:
		P->y[0] = fd_bce_ref_forward((int64_t)P->n[0], p[0], p[1]);
		break;
	case K_CE:
		P->y[0] = fd_ce_ref_forward(P->outer, P->C, p[0], P->label);
		break;
	case K_DROPOUT:
		fd_dropout_ref_forward((int64_t)P->n[0], 1.0 / (1.0 - P->drop_p), P->keep, p[0], P->y);
		break;
	case K_ROWSCALE:
		fd_rowscale_ref_forward(P->outer, P->inner, P->f, p[0], P->y);
		break;
	}
}

/* The reference backward: ADDS into g[k] (one per input with a gradient). */
static void ref_backward(struct prob *P, double **g)
{
	double **p = P->p;
	ref_forward(P); /* softmax's backward reads y */
	switch (P->kind) {
	case K_ACT:
		fd_act_ref_backward(P->act, (int64_t)P->n[0], p[0], P->dy, g[0]);
		break;
	case K_PRELU:
		fd_prelu_ref_backward(P->outer, P->C, P->inner, p[0], p[1], P->dy, g[0], g[1]);
		break;
	case K_BIN:
		fd_bin_ref_backward(P->op, &P->bc, p[0], p[1], P->dy, g[0], g[1]);
		break;
	case K_SOFTMAX:
		fd_softmax_ref_backward(P->outer, P->C, P->inner, P->y, P->dy, g[0]);
		break;
	case K_LN:
		fd_layernorm2d_ref_backward(P->outer, P->C, P->inner, P->eps, p[0], p[1], P->dy, g[0], g[1], g[2]);
		break;
	case K_BCE:
		fd_bce_ref_backward((int64_t)P->n[0], p[0], p[1], P->dy[0], g[0]);
		break;
	case K_CE:
		fd_ce_ref_backward(P->outer, P->C, p[0], P->label, P->dy[0], g[0]);
		break;
	case K_DROPOUT:
		fd_dropout_ref_backward((int64_t)P->n[0], 1.0 / (1.0 - P->drop_p), P->keep, P->dy, g[0]);
		break;
	case K_ROWSCALE:
		fd_rowscale_ref_backward(P->outer, P->inner, P->f, P->dy, g[0]);
		break;
	}
}

static double loss(struct prob *P)
{
	ref_forward(P);
	long double s = 0; /* long double keeps the sum's own rounding out of the differences */
	for (size_t i = 0; i < P->ny; i++)
		s += (long double)P->dy[i] * P->y[i];
	return (double)s;
}

/* Largest |fd - g| / (FD_ATOL + FD_RTOL |g|) over every element of input k,
 * fd the central difference of L; its index in *wi. */
static double fd_worst(struct prob *P, int k, const double *g, size_t *wi)
{
	double worst = 0;
	*wi = 0;
	for (size_t i = 0; i < P->n[k]; i++) {
		double keep = P->p[k][i];
		P->p[k][i] = keep + FD_H;
		double lp = loss(P);
		P->p[k][i] = keep - FD_H;
		double lm = loss(P);
		P->p[k][i] = keep;
		double num = (lp - lm) / (2 * FD_H);
		double share = fabs(num - g[i]) / (FD_ATOL + FD_RTOL * fabs(g[i]));
		if (!(share <= worst))
			worst = share, *wi = i;
	}
	return worst;
}

/* The reference gradients of every input, computed into buffers pre-filled
 * with 0.25 (the backward must add) and returned with the 0.25 removed. */
static void ref_grads(struct prob *P, double **g)
{
	for (int k = 0; k < P->np; k++) {
		g[k] = malloc(P->n[k] * sizeof(double));
		for (size_t i = 0; i < P->n[k]; i++)
			g[k][i] = 0.25;
	}
	ref_backward(P, g);
	for (int k = 0; k < P->np; k++)
		for (size_t i = 0; i < P->n[k]; i++)
			g[k][i] -= 0.25;
}

/* (a) */
static void check_fd(struct prob *P)
{
	double *g[MAXP] = {0};
	ref_grads(P, g);
	for (int k = 0; k < P->np; k++) {
		size_t wi;
		double w = fd_worst(P, k, g[k], &wi);
		ok(w <= 1, "%s: d%s vs float64 finite differences, %zu values, worst [%zu] %.3g of tol", P->name,
		   k == 0 ? "x" : k == 1 ? (P->kind == K_BIN ? "b" : "w") : "b", P->n[k], wi, w);
		free(g[k]);
	}
}

static struct fd_tensor *tensor32(struct fd_ctx *c, const struct prob *P, int k)
{
	struct fd_tensor *t = fd_tensor_new(c, FD_DEV_CPU, P->nd[k], P->shape[k]);
	if (t)
		for (size_t i = 0; i < P->n[k]; i++)
			t->data[i] = (float)P->p[k][i];
	return t;
}

/* Dropout and stochastic depth draw their own masks: read them back from the
 * float32 output (inputs are never 0), insisting each row of stochastic depth
 * be wholly dropped or wholly kept, and that both cases occur. */
static int masks_from(struct prob *P, const float *y)
{
	size_t kept = 0, n = P->n[0];
	if (P->kind == K_DROPOUT) {
		for (size_t i = 0; i < n; i++)
			kept += P->keep[i] = y[i] != 0.0f;
		return ok(kept > 0 && kept < n, "%s: float32 mask keeps %zu of %zu", P->name, kept, n);
	}
	int whole = 1;
	for (int64_t r = 0; r < P->outer; r++) {
		size_t nz = 0;
		for (int64_t i = 0; i < P->inner; i++)
			nz += y[r * P->inner + i] != 0.0f;
		whole &= nz == 0 || nz == (size_t)P->inner;
		P->f[r] = nz ? 1.0 / (1.0 - P->drop_p) : 0.0;
		kept += nz != 0;
	}
	return ok(whole && kept > 0 && kept < (size_t)P->outer, "%s: float32 keeps %zu of %lld whole rows",
		  P->name, kept, (long long)P->outer);
}

static void close_d(const char *what, const struct prob *P, const float *a, const double *r, size_t n,
		    double atol, double rtol)
{
	char name[128];
	float *rf = malloc(n * sizeof *rf);
	for (size_t i = 0; i < n; i++)
		rf[i] = (float)r[i];
	snprintf(name, sizeof name, "%s: float32 %s vs double reference", P->name, what);
	tap_close_f32(name, a, rf, n, atol, rtol);
	free(rf);
}

/* (b): the op through the tape in float32, seeded with dy, against the
 * reference on the same inputs. */
static void check_f32(struct prob *P)
{
	struct fd_ctx c;
	ctx_open(&c, 2, 7);
	struct fd_tensor *in[MAXP] = {0}, *y = NULL;
	for (int k = 0; k < P->nin; k++) {
		in[k] = tensor32(&c, P, k);
		if (in[k] && k < P->np)
			fd_requires_grad(in[k]);
	}
	switch (P->kind) {
	case K_ACT:
		y = fd_act(&c, P->act, in[0]);
		break;
	case K_PRELU:
		y = fd_prelu(&c, in[0], in[1]);
		break;
	case K_BIN:
		y = P->op == FD_BIN_ADD ? fd_add(&c, in[0], in[1]) : fd_mul(&c, in[0], in[1]);
		break;
	case K_SOFTMAX:
		y = fd_softmax(&c, in[0], P->dim);
		break;
	case K_LN:
		y = fd_layernorm2d(&c, in[0], in[1], in[2], (float)P->eps);
		break;
	case K_BCE:
		y = fd_bce_with_logits(&c, in[0], in[1]);
		break;
	case K_CE:
		y = fd_cross_entropy(&c, in[0], P->label);
		break;
	case K_DROPOUT:
		y = fd_dropout(&c, in[0], (float)P->drop_p);
		break;
	case K_ROWSCALE:
		y = fd_stochastic_depth(&c, in[0], (float)P->drop_p);
		break;
	}
	float *dy = malloc(P->ny * sizeof *dy);
	for (size_t i = 0; i < P->ny; i++)
		dy[i] = (float)P->dy[i];
	int run = y && (size_t)y->numel == P->ny && fd_backward(&c, y, dy) == 0;
	if (!ok(run, "%s: float32 forward and backward run %s", P->name, c.err.msg) ||
	    ((P->kind == K_DROPOUT || P->kind == K_ROWSCALE) && !masks_from(P, y->data))) {
		free(dy);
		fd_ctx_free(&c);
		return;
	}
	double *g[MAXP] = {0};
	ref_grads(P, g);
	ref_forward(P);
	close_d("y", P, y->data, P->y, P->ny, P->fatol, P->frtol);
	for (int k = 0; k < P->np; k++) {
		char what[16];
		snprintf(what, sizeof what, "d%s", k == 0 ? "x" : k == 1 ? (P->kind == K_BIN ? "b" : "w") : "b");
		close_d(what, P, in[k]->grad, g[k], P->n[k], P->gatol, P->grtol);
		free(g[k]);
	}
	free(dy);
	fd_ctx_free(&c);
}

static void run(struct prob *P)
{
	check_fd(P);
	check_f32(P);
	prob_free(P);
}

/* float32 tolerances. Elementwise ops: the kernels evaluate expf/erff and a
 * few roundings in float, a few ulps: 1e-6 + 1e-5 |r|. Ops whose gradients
 * sum over many terms in float (prelu's dw, broadcast reductions, softmax's
 * and LayerNorm's centred sums, both summed in double but differencing float
 * terms) get 1e-5 absolute; LayerNorm's dx is a difference of sums scaled by
 * rstd and gets 1e-4 relative as in t_nn_ops. */
static void tol(struct prob *P, double fatol, double frtol, double gatol, double grtol)
{
	P->fatol = fatol, P->frtol = frtol, P->gatol = gatol, P->grtol = grtol;
}

static void act_case(enum fd_act k)
{
	struct prob P = {.kind = K_ACT, .np = 1, .act = k};
	const int64_t s[] = {3, 5, 7};
	snprintf(P.name, sizeof P.name, "%s [3,5,7]", fd_act_name(k));
	add_input(&P, 3, s, -5, 5, 1);
	set_output(&P, P.n[0]);
	tol(&P, 1e-6, 1e-5, 1e-6, 1e-5);
	run(&P);
}

static void prelu_case(void)
{
	struct prob P = {.kind = K_PRELU, .np = 2, .outer = 3, .C = 4, .inner = 15};
	const int64_t s[] = {3, 4, 5, 3}, sw[] = {4};
	snprintf(P.name, sizeof P.name, "prelu [3,4,5,3]");
	add_input(&P, 4, s, -2, 2, 1);
	add_input(&P, 1, sw, -0.5, 0.5, 0);
	set_output(&P, P.n[0]);
	tol(&P, 1e-6, 1e-5, 1e-5, 1e-5);
	run(&P);
}

static void bin_case(enum fd_binop op, int na, const int64_t *sa, int nb, const int64_t *sb)
{
	struct prob P = {.kind = K_BIN, .np = 2, .op = op};
	struct fd_ctx c;
	ctx_open(&c, 1, 1);
	add_input(&P, na, sa, -2, 2, 0);
	add_input(&P, nb, sb, -2, 2, 0);
	struct fd_tensor *a = tensor32(&c, &P, 0), *b = tensor32(&c, &P, 1);
	int nd;
	char b1[64], b2[64];
	snprintf(P.name, sizeof P.name, "%s %s %s", op == FD_BIN_ADD ? "add" : "mul",
		 fd_tensor_shape_str(a, b1, sizeof b1), fd_tensor_shape_str(b, b2, sizeof b2));
	if (!ok(fd_bcast_init(&c, &P.bc, a, b, &nd) == 0, "%s: shapes broadcast %s", P.name, c.err.msg)) {
		fd_ctx_free(&c);
		prob_free(&P);
		return;
	}
	fd_ctx_free(&c);
	set_output(&P, (size_t)P.bc.n);
	tol(&P, 1e-6, 1e-6, 1e-5, 1e-5);
	run(&P);
}

static void softmax_case(int nd, const int64_t *s, int dim)
{
	struct prob P = {.kind = K_SOFTMAX, .np = 1, .dim = dim, .outer = 1, .inner = 1};
	add_input(&P, nd, s, -4, 4, 0);
	P.C = s[dim];
	for (int i = 0; i < dim; i++)
		P.outer *= s[i];
	for (int i = dim + 1; i < nd; i++)
		P.inner *= s[i];
	snprintf(P.name, sizeof P.name, "softmax dim %d of %zu values", dim, P.n[0]);
	set_output(&P, P.n[0]);
	tol(&P, 1e-6, 1e-5, 1e-6, 1e-5);
	run(&P);
}

static void ln_case(int nd, const int64_t *s)
{
	struct prob P = {.kind = K_LN, .np = 3, .outer = s[0], .C = s[1], .eps = (double)1e-6f};
	const int64_t sw[] = {s[1]};
	add_input(&P, nd, s, -3, 3, 0);
	add_input(&P, 1, sw, 0.5, 1.5, 0);
	add_input(&P, 1, sw, -0.5, 0.5, 0);
	P.inner = (int64_t)P.n[0] / (s[0] * s[1]);
	snprintf(P.name, sizeof P.name, "layernorm2d N=%lld C=%lld HW=%lld", (long long)s[0], (long long)s[1],
		 (long long)P.inner);
	set_output(&P, P.n[0]);
	tol(&P, 1e-5, 1e-5, 1e-5, 1e-4);
	run(&P);
}

static void bce_case(void)
{
	struct prob P = {.kind = K_BCE, .np = 1};
	const int64_t s[] = {37};
	snprintf(P.name, sizeof P.name, "bce_with_logits [37]");
	add_input(&P, 1, s, -6, 6, 0);
	add_input(&P, 1, s, 0, 1, 0); /* soft targets; no gradient */
	P.p[1][0] = 0, P.p[1][1] = 1;  /* and the hard ones */
	set_output(&P, 1);
	P.dy[0] = 0.75;
	tol(&P, 1e-6, 1e-6, 1e-7, 1e-5);
	run(&P);
}

static void ce_case(void)
{
	struct prob P = {.kind = K_CE, .np = 1, .outer = 6, .C = 9};
	const int64_t s[] = {6, 9};
	snprintf(P.name, sizeof P.name, "cross_entropy [6,9]");
	add_input(&P, 2, s, -5, 5, 0);
	P.label = malloc(6 * sizeof *P.label);
	for (int i = 0; i < 6; i++)
		P.label[i] = (int32_t)fd_rng_below(&rng, 9);
	set_output(&P, 1);
	P.dy[0] = 0.75;
	tol(&P, 1e-6, 1e-6, 1e-7, 1e-5);
	run(&P);
}

/* (a) uses a drawn mask; (b) replaces it with the one the kernel drew. */
static void dropout_case(void)
{
	struct prob P = {.kind = K_DROPOUT, .np = 1, .drop_p = 0.3};
	const int64_t s[] = {5, 7, 3};
	snprintf(P.name, sizeof P.name, "dropout p=0.3 [5,7,3]");
	add_input(&P, 3, s, -2, 2, 1);
	P.keep = malloc(P.n[0]);
	for (size_t i = 0; i < P.n[0]; i++)
		P.keep[i] = fd_rng_uniform(&rng) < 0.7;
	set_output(&P, P.n[0]);
	tol(&P, 1e-6, 1e-6, 1e-6, 1e-6);
	run(&P);
}

static void rowscale_case(void)
{
	struct prob P = {.kind = K_ROWSCALE, .np = 1, .drop_p = 0.5, .outer = 8, .inner = 15};
	const int64_t s[] = {8, 3, 5};
	snprintf(P.name, sizeof P.name, "stochastic_depth p=0.5 [8,3,5]");
	add_input(&P, 3, s, -2, 2, 1);
	P.f = malloc(8 * sizeof *P.f);
	for (int r = 0; r < 8; r++)
		P.f[r] = r % 3 ? 2.0 : 0.0;
	set_output(&P, P.n[0]);
	tol(&P, 1e-6, 1e-6, 1e-6, 1e-6);
	run(&P);
}

/* At the kinks themselves the float32 kernels and the references pick the
 * same one-sided derivative (torch's): relu 0 at 0, hardswish 1/2 +- 1 at
 * +-3 (closed interval), hardsigmoid 0 at +-3 (open), prelu's w at 0. */
static void kinks(void)
{
	static const float xs[] = {0.0f, -3.0f, 3.0f, -0.0f};
	struct fd_ctx c;
	ctx_open(&c, 1, 1);
	for (int k = 0; k < FD_ACT_COUNT; k++) {
		float dx[4] = {0}, dy[4] = {1, 1, 1, 1};
		double X[4], DY[4] = {1, 1, 1, 1}, DX[4] = {0};
		float y32[4];
		for (int i = 0; i < 4; i++)
			X[i] = xs[i];
		fd_act_fwd_cpu(&c, (enum fd_act)k, 4, xs, y32);
		fd_act_bwd_cpu(&c, (enum fd_act)k, 4, xs, y32, dy, dx);
		fd_act_ref_backward((enum fd_act)k, 4, X, DY, DX);
		int same = 1;
		for (int i = 0; i < 4; i++)
			same &= fabs(dx[i] - DX[i]) <= 1e-6;
		ok(same, "%s: float32 and reference derivatives agree at 0, -3, 3, -0 (%g %g %g %g)",
		   fd_act_name(k), DX[0], DX[1], DX[2], DX[3]);
	}
	float w = 0.25f, dx[2] = {0}, dw = 0, dy[2] = {1, 1}, x2[2] = {0.0f, -0.0f};
	double W = 0.25, DX[2] = {0}, DW = 0, DY[2] = {1, 1}, X2[2] = {0, -0.0};
	fd_prelu_bwd_cpu(&c, 1, 1, 2, x2, &w, dy, dx, &dw);
	fd_prelu_ref_backward(1, 1, 2, X2, &W, DY, DX, &DW);
	ok(dx[0] == 0.25f && DX[0] == 0.25 && dx[1] == 0.25f && DX[1] == 0.25 && dw == 0 && DW == 0,
	   "prelu: both take the w branch at 0 (dx %g/%g, dw %g/%g)", dx[0], DX[0], dw, DW);
	fd_ctx_free(&c);
}

/* (c) The finite-difference check is not blind: gelu's exact gradient with
 * its largest element off by 1e-6 relative, and the hardswish derivative standing in
 * for silu's (close functions), are both rejected; and the float32 comparison
 * rejects a LayerNorm dx missing its mean-of-g term. */
static void negative_controls(void)
{
	struct prob P = {.kind = K_ACT, .np = 1, .act = FD_ACT_GELU};
	const int64_t s[] = {41};
	add_input(&P, 1, s, -4, 4, 0);
	set_output(&P, P.n[0]);
	double *g[1];
	size_t wi;
	ref_grads(&P, g);
	double good = fd_worst(&P, 0, g[0], &wi);
	size_t big = 0;
	for (size_t i = 1; i < P.n[0]; i++)
		if (fabs(g[0][i]) > fabs(g[0][big]))
			big = i;
	g[0][big] *= 1 + 1e-6;
	double bad = fd_worst(&P, 0, g[0], &wi);
	ok(good <= 1 && bad > 1 && wi == big,
	   "negative control: gelu dx off by 1e-6 relative at [%zu] (|g| %.3g) fails (%.3g of tol at [%zu]; exact %.3g)",
	   big, fabs(g[0][big]), bad, wi, good);
	free(g[0]);

	P.act = FD_ACT_SILU;
	g[0] = calloc(P.n[0], sizeof(double));
	fd_act_ref_backward(FD_ACT_HARDSWISH, (int64_t)P.n[0], P.p[0], P.dy, g[0]);
	bad = fd_worst(&P, 0, g[0], &wi);
	ok(bad > 1, "negative control: hardswish's derivative as silu's fails (%.3g of tol at [%zu])", bad, wi);
	free(g[0]);
	prob_free(&P);

	/* LayerNorm: float32 dx through the tape vs a reference dx without the
	 * -mean(g) term, computed as ref(dy) minus rstd mean(dy w) */
	struct fd_ctx c;
	ctx_open(&c, 1, 1);
	const int64_t sx[] = {2, 5, 3};
	struct prob L = {.kind = K_LN, .np = 3, .outer = 2, .C = 5, .inner = 3, .eps = (double)1e-6f};
	const int64_t sw[] = {5};
	add_input(&L, 3, sx, -3, 3, 0);
	add_input(&L, 1, sw, 0.5, 1.5, 0);
	add_input(&L, 1, sw, -0.5, 0.5, 0);
	set_output(&L, L.n[0]);
	struct fd_tensor *x = tensor32(&c, &L, 0), *w = tensor32(&c, &L, 1), *b = tensor32(&c, &L, 2);
	fd_requires_grad(x);
	struct fd_tensor *y = fd_layernorm2d(&c, x, w, b, (float)L.eps);
	float dy[30];
	for (int i = 0; i < 30; i++)
		dy[i] = (float)L.dy[i];
	double *gl[3] = {0}; /* dx only: dw, db NULL */
	if (!ok(y && fd_backward(&c, y, dy) == 0, "negative control: layernorm float32 runs %s", c.err.msg)) {
		fd_ctx_free(&c);
		prob_free(&L);
		return;
	}
	L.np = 1;
	ref_grads(&L, gl);
	for (int n = 0; n < 2; n++)
		for (int p = 0; p < 3; p++) {
			double sg = 0, m = 0, v = 0;
			for (int ch = 0; ch < 5; ch++)
				m += L.p[0][n * 15 + ch * 3 + p] / 5;
			for (int ch = 0; ch < 5; ch++) {
				double d = L.p[0][n * 15 + ch * 3 + p] - m;
				v += d * d / 5;
				sg += L.dy[n * 15 + ch * 3 + p] * L.p[1][ch] / 5;
			}
			for (int ch = 0; ch < 5; ch++)
				gl[0][n * 15 + ch * 3 + p] += sg / sqrt(v + L.eps);
		}
	float wrong[30];
	for (int i = 0; i < 30; i++)
		wrong[i] = (float)gl[0][i];
	int bad_ln = 0;
	for (int i = 0; i < 30; i++)
		bad_ln += !(fabs(x->grad[i] - wrong[i]) <= 1e-5 + 1e-4 * fabs(wrong[i]));
	ok(bad_ln > 0, "negative control: float32 layernorm dx vs a dx without -mean(g): %d of 30 differ", bad_ln);
	free(gl[0]);
	fd_ctx_free(&c);
	prob_free(&L);
}

int main(void)
{
	fd_rng_init(&rng, 20240611, 64);
	for (int k = 0; k < FD_ACT_COUNT; k++)
		act_case((enum fd_act)k);
	prelu_case();
	{
		const int64_t a1[] = {3, 5, 4, 7}, b1[] = {5, 1, 1};
		const int64_t a2[] = {2, 3, 1, 5}, b2[] = {1, 3, 4, 1};
		const int64_t a3[] = {2, 3, 1, 2, 3}, b3[] = {3, 4, 1, 1};
		const int64_t a4[] = {3, 1}, b4[] = {2, 1, 4};
		const int64_t a5[] = {4, 6};
		for (int op = 0; op < 2; op++) {
			enum fd_binop o = op ? FD_BIN_MUL : FD_BIN_ADD;
			bin_case(o, 4, a1, 3, b1);
			bin_case(o, 4, a2, 4, b2);
			bin_case(o, 5, a3, 4, b3);
			bin_case(o, 2, a4, 3, b4);
			bin_case(o, 2, a5, 2, a5);
		}
	}
	{
		const int64_t s3[] = {3, 7, 5}, s4[] = {2, 5, 3, 3};
		softmax_case(3, s3, 0);
		softmax_case(3, s3, 1);
		softmax_case(3, s3, 2);
		softmax_case(4, s4, 1);
	}
	{
		const int64_t s4[] = {3, 7, 5, 3}, s2[] = {5, 9};
		ln_case(4, s4);
		ln_case(2, s2);
	}
	bce_case();
	ce_case();
	dropout_case();
	rowscale_case();
	kinks();
	negative_controls();
	return tap_done();
}
