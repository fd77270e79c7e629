/* dropout: element masks from Philox blocks (4 words per block), row masks
 * for stochastic depth drawn on the host (one number per sample). */
#include "nn/dropout.h"
#include "nn/layout.h"
#include "nn/fd_backend.h"
#include "core/fd_rng.h"
#include "core/fd_vec.h"

int fd_dropout_fwd_cpu(struct fd_ctx *c, int64_t n, float p, uint64_t seed, uint64_t stream,
		       const float *x, float *y, uint8_t *keep)
{
	/* keep when u < 1 - p with u = word / 2^32, compared in double */
	double q = 1.0 - (double)p;
	float scale = p < 1.0f ? (float)(1.0 / q) : 0.0f;
	int64_t nb = (n + 3) / 4;
#pragma omp parallel for num_threads(c->threads) schedule(static)
	for (int64_t blk = 0; blk < nb; blk++) {
		uint32_t r[4];
		fd_philox(seed, stream, (uint64_t)blk, r);
		for (int k = 0; k < 4 && blk * 4 + k < n; k++) {
			int64_t i = blk * 4 + k;
			keep[i] = (double)r[k] * (1.0 / 4294967296.0) < q;
			y[i] = keep[i] ? x[i] * scale : 0.0f;
		}
	}
	return 0;
}

int fd_dropout_bwd_cpu(struct fd_ctx *c, int64_t n, float scale, const uint8_t *keep,
		       const float *dy, float *dx)
{
#pragma omp parallel for num_threads(c->threads) schedule(static)
	for (int64_t i = 0; i < n; i++)
		dx[i] += keep[i] ? dy[i] * scale : 0.0f;
	return 0;
}

/* The row scalings run over (row, chunk of CHUNK values) items, each
 * chunk in a function with an AVX-512 and an AVX2 clone (core/fd_vec.h):
 * elementwise products, the same bits in every clone. */
#define CHUNK 16384

/* y = x f over one chunk (y may be x: each value is read before written) */
FD_VEC_CLONES
static void scale_chunk(int64_t n, float f, const float *x, float *y)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = x[i] * f;
}

/* dx += dy f, or dx = 0 + dy f when wr (a fresh gradient: the bits adding
 * to zeros gives, without reading dx); dx may be dy (each dy[i] is read
 * before dx[i] is written) */
FD_VEC_CLONES
static void scale_bwd_chunk(int64_t n, float f, const float *dy, float *dx, int wr)
{
	if (wr)
		for (int64_t i = 0; i < n; i++)
			dx[i] = 0.0f + dy[i] * f;
	else
		for (int64_t i = 0; i < n; i++)
			dx[i] += dy[i] * f;
}

/* fd_rowscale_bwd_cpu (wr = 0) or its overwriting form (wr = 1), or the
 * forward (bwd = 0: y = x f, y = dx, x = dy) */
static void rowscale(struct fd_ctx *c, int64_t rows, int64_t inner, const float *f, const float *x, float *y,
		     int bwd, int wr)
{
	int64_t nc = (inner + CHUNK - 1) / CHUNK;
#pragma omp parallel for num_threads(c->threads) schedule(static) if (rows * nc > 1)
	for (int64_t b = 0; b < rows * nc; b++) {
		int64_t r = b / nc, o = r * inner + b % nc * CHUNK;
		int64_t m = inner - b % nc * CHUNK < CHUNK ? inner - b % nc * CHUNK : CHUNK;
		if (bwd)
			scale_bwd_chunk(m, f[r], x + o, y + o, wr);
		else
			scale_chunk(m, f[r], x + o, y + o);
	}
}

int fd_rowscale_fwd_cpu(struct fd_ctx *c, int64_t rows, int64_t inner, const float *f,
			const float *x, float *y)
{
	rowscale(c, rows, inner, f, x, y, 0, 0);
	return 0;
}

int fd_rowscale_bwd_cpu(struct fd_ctx *c, int64_t rows, int64_t inner, const float *f,
			const float *dy, float *dx)
{
	rowscale(c, rows, inner, f, dy, dx, 1, 0);
	return 0;
}

struct drop_saved {
	float scale;
	uint8_t *keep;
};

static int dropout_backward(struct fd_ctx *c, struct fd_node *n)
{
	const struct drop_saved *s = n->saved;
	const struct fd_backend *be = FD_KERNEL(c, n->out->dev, dropout_bwd);
	return be ? be->dropout_bwd(c, n->out->numel, s->scale, s->keep, n->out->grad, n->in[0]->grad) : -1;
}

struct fd_tensor *fd_dropout(struct fd_ctx *c, struct fd_tensor *x, float p)
{
	if (!x)
		return NULL;
	if (!(p >= 0.0f && p <= 1.0f))
		return fd_fail(c, "dropout probability %g outside [0, 1]", (double)p);
	if (!c->training || c->dropout_off || p == 0.0f)
		return x;
	const struct fd_backend *be = FD_KERNEL(c, x->dev, dropout_fwd);
	struct fd_tensor *y = be ? fd_tensor_like(c, x) : NULL;
	/* the mask in the device's memory (whole floats of the step arena) */
	uint8_t *keep = y ? (uint8_t *)fd_ctx_alloc(c, x->dev, (x->numel + 3) / 4) : NULL;
	if (!keep || be->dropout_fwd(c, x->numel, p, c->seed, fd_ctx_stream(c), x->data, y->data, keep) < 0)
		return NULL;
	if (fd_needs_grad(c, 1, &x)) {
		struct fd_node *n = fd_tape_push(c, "dropout", dropout_backward, 1, &x, y, sizeof(struct drop_saved));
		if (!n)
			return NULL;
		*(struct drop_saved *)n->saved =
			(struct drop_saved){p < 1.0f ? (float)(1.0 / (1.0 - (double)p)) : 0.0f, keep};
	}
	return y;
}

static int sd_backward(struct fd_ctx *c, struct fd_node *n)
{
	const float *f = n->saved;
	struct fd_tensor *x = n->in[0];
	if (x->dev == FD_DEV_CPU) { /* a fresh dx (writes bit 0), maybe dy itself, is overwritten */
		rowscale(c, x->shape[0], x->numel / x->shape[0], f, n->out->grad, x->grad, 1,
			 (x->flags & FD_T_GRAD_FRESH) != 0);
		return 0;
	}
	const struct fd_backend *be = FD_KERNEL(c, x->dev, rowscale_bwd);
	return be ? be->rowscale_bwd(c, x->shape[0], x->numel / x->shape[0], f, n->out->grad, x->grad) : -1;
}

static struct fd_tensor *sd(struct fd_ctx *c, struct fd_tensor *x, float p, int inplace)
{
	if (!x)
		return NULL;
	if (!(p >= 0.0f && p <= 1.0f))
		return fd_fail(c, "stochastic depth probability %g outside [0, 1]", (double)p);
	if (!c->training || c->dropout_off || p == 0.0f)
		return x;
	int64_t rows = x->shape[0], inner = x->numel / rows;
	float *f = fd_arena_alloc(&c->arena, (size_t)rows * sizeof *f);
	if (!f)
		return fd_fail(c, "out of memory");
	double q = 1.0 - (double)p;
	struct fd_rng r;
	fd_rng_init(&r, c->seed, fd_ctx_stream(c));
	for (int64_t i = 0; i < rows; i++)
		f[i] = fd_rng_uniform(&r) < q ? (float)(1.0 / q) : 0.0f; /* q = 0 never keeps */
	const struct fd_backend *be = FD_KERNEL(c, x->dev, rowscale_fwd);
	/* rows are samples in any layout; in place, each value is read before
	 * it is written over (the backward reads neither x nor y) */
	struct fd_tensor *y = !be ? NULL : inplace ? fd_tensor_wrap(c, x->dev, x->data, x->ndim, x->shape)
					 : fd_tensor_like(c, x);
	if (y && inplace)
		y->layout = x->layout;
	if (!y || be->rowscale_fwd(c, rows, inner, f, x->data, y->data) < 0)
		return NULL;
	if (fd_needs_grad(c, 1, &x)) {
		struct fd_node *n = fd_tape_push(c, "stochastic_depth", sd_backward, 1, &x, y, 0);
		if (!n)
			return NULL;
		n->saved = f;
		if (x->dev == FD_DEV_CPU)
			n->writes = n->aliases = 1u; /* sd_backward overwrites a fresh dx, also dy itself */
	}
	return y;
}

struct fd_tensor *fd_stochastic_depth(struct fd_ctx *c, struct fd_tensor *x, float p) { return sd(c, x, p, 0); }
struct fd_tensor *fd_stochastic_depth_(struct fd_ctx *c, struct fd_tensor *x, float p) { return sd(c, x, p, 1); }

void fd_dropout_ref_forward(int64_t n, double scale, const uint8_t *keep, const double *x, double *y)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = keep[i] ? x[i] * scale : 0.0;
}

void fd_dropout_ref_backward(int64_t n, double scale, const uint8_t *keep, const double *dy, double *dx)
{
	for (int64_t i = 0; i < n; i++)
		dx[i] += keep[i] ? dy[i] * scale : 0.0;
}

void fd_rowscale_ref_forward(int64_t rows, int64_t inner, const double *f, const double *x, double *y)
{
	for (int64_t r = 0; r < rows; r++)
		for (int64_t i = 0; i < inner; i++)
			y[r * inner + i] = x[r * inner + i] * f[r];
}

void fd_rowscale_ref_backward(int64_t rows, int64_t inner, const double *f, const double *dy,
			      double *dx)
{
	for (int64_t r = 0; r < rows; r++)
		for (int64_t i = 0; i < inner; i++)
			dx[r * inner + i] += dy[r * inner + i] * f[r];
}
