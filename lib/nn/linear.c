/* linear: y = x W^T + b on oneDNN's sgemm (row-major), backward as two more
 * sgemms with beta = 1 so gradients accumulate in place (see linear.h). */
#include "nn/linear.h"
#include "nn/fd_backend.h"

#include <stdint.h>
#include <string.h>
#include "nn/fd_dnnl.h"

static int check_sizes(int N, int in, int out, struct fd_err *e)
{
	if (N < 1 || in < 1 || out < 1)
		return fd_err_set(e, "linear N=%d in=%d out=%d: sizes must be positive", N, in, out);
	return 0;
}

static int linear_fwd(int threads, int N, int in, int out, const float *x, const float *w, const float *b,
		      float *y, struct fd_err *e)
{
	if (check_sizes(N, in, out, e))
		return -1;
	/* Start y at the bias and let the product add to it (beta = 1). */
	float beta = 0;
	if (b) {
		#pragma omp parallel for num_threads(threads)
		for (int n = 0; n < N; n++)
			memcpy(y + (size_t)n * out, b, (size_t)out * sizeof *b);
		beta = 1;
	}
	return fd_dnnl_check(dnnl_sgemm('N', 'T', N, out, in, 1.0f, x, in, w, in, beta, y, out), e,
			     "linear N=%d in=%d out=%d: forward sgemm", N, in, out);
}

static int linear_bwd_data(int threads, int N, int in, int out, const float *dy, const float *w, float *dx,
			    struct fd_err *e)
{
	if (check_sizes(N, in, out, e))
		return -1;
	return fd_dnnl_check(dnnl_sgemm('N', 'N', N, in, out, 1.0f, dy, out, w, in, 1.0f, dx, in), e,
			     "linear N=%d in=%d out=%d: backward-data sgemm", N, in, out);
}

static int linear_bwd_weights(int threads, int N, int in, int out, const float *x, const float *dy, float *dw,
			       float *db, struct fd_err *e)
{
	if (check_sizes(N, in, out, e))
		return -1;
	if (fd_dnnl_check(dnnl_sgemm('T', 'N', out, in, N, 1.0f, dy, out, x, in, 1.0f, dw, in), e,
			  "linear N=%d in=%d out=%d: backward-weights sgemm", N, in, out))
		return -1;
	if (db) {
		#pragma omp parallel for num_threads(threads)
		for (int o = 0; o < out; o++) {
			float s = 0;
			for (int n = 0; n < N; n++)
				s += dy[(size_t)n * out + o];
			db[o] += s;
		}
	}
	return 0;
}

/* ---------- bf16 (doc/nn-kernels.md "bf16") ---------- */

/* fp32 -> bf16 rounded to nearest even (a NaN stays a NaN), as torch's
 * .to(torch.bfloat16) and oneDNN's reorders round. */
static void to_bf16(int threads, int64_t n, const float *x, uint16_t *y)
{
	#pragma omp parallel for num_threads(threads) schedule(static) if (n > 65536)
	for (int64_t i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, &x[i], sizeof u);
		if ((u & 0x7fffffffu) > 0x7f800000u)
			y[i] = (uint16_t)(u >> 16 | 0x40);
		else
			y[i] = (uint16_t)((u + 0x7fffu + (u >> 16 & 1)) >> 16);
	}
}

/* A bf16 operand: rows x cols with element strides rs, cs. */
struct bf16_mat {
	const uint16_t *p;
	int64_t rows, cols, rs, cs;
};

/* C[M,N] = A[M,K] B[K,N] (+ bias[N]) (+ C when accumulate), A and B bf16,
 * products accumulated and C written in fp32 (row-major, N columns), on a
 * oneDNN matmul. The primitive is made per call: oneDNN's primitive cache
 * turns a repeated shape into a lookup. */
static int matmul_bf16(struct fd_dnnl *d, const struct bf16_mat *A, const struct bf16_mat *B,
		       const float *bias, float *C, int accumulate, struct fd_err *e)
{
	fd_md am = NULL, bm = NULL, biasm = NULL, cm = NULL;
	dnnl_dims_t ad = {A->rows, A->cols}, as = {A->rs, A->cs}, bd = {B->rows, B->cols}, bs = {B->rs, B->cs};
	dnnl_dims_t cd = {A->rows, B->cols}, cs = {B->cols, 1}, biasd = {1, B->cols}, biass = {B->cols, 1};
	dnnl_primitive_attr_t attr = NULL;
	dnnl_post_ops_t po = NULL;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_primitive_t prim = NULL;
	dnnl_memory_t mem[4] = {NULL, NULL, NULL, NULL};
	int rc = -1;
	if (fd_md_strides(&am, 2, ad, dnnl_bf16, as, e) || fd_md_strides(&bm, 2, bd, dnnl_bf16, bs, e) ||
	    fd_md_strides(&cm, 2, cd, dnnl_f32, cs, e) ||
	    (bias && fd_md_strides(&biasm, 2, biasd, dnnl_f32, biass, e)) ||
	    fd_dnnl_check(dnnl_primitive_attr_create(&attr), e, "bf16 matmul attr"))
		goto out;
	if (accumulate &&
	    (fd_dnnl_check(dnnl_post_ops_create(&po), e, "bf16 matmul post-ops") ||
	     fd_dnnl_check(fd_po_sum(po), e, "bf16 matmul sum post-op") ||
	     fd_dnnl_check(dnnl_primitive_attr_set_post_ops(attr, po), e, "bf16 matmul attr post-ops")))
		goto out;
	if (fd_dnnl_check(fd_matmul_pd(&pd, d->engine, am, bm, biasm, cm, attr), e,
			  "bf16 matmul primitive descriptor") ||
	    fd_dnnl_check(dnnl_primitive_create(&prim, pd), e, "bf16 matmul primitive") ||
	    fd_dnnl_check(dnnl_memory_create(&mem[0], am, d->engine, (void *)A->p), e, "bf16 matmul memory") ||
	    fd_dnnl_check(dnnl_memory_create(&mem[1], bm, d->engine, (void *)B->p), e, "bf16 matmul memory") ||
	    fd_dnnl_check(dnnl_memory_create(&mem[2], cm, d->engine, C), e, "bf16 matmul memory") ||
	    (bias && fd_dnnl_check(dnnl_memory_create(&mem[3], biasm, d->engine, (void *)bias), e,
				   "bf16 matmul memory")))
		goto out;
	dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, mem[0]}, {DNNL_ARG_WEIGHTS, mem[1]}, {DNNL_ARG_DST, mem[2]},
				{DNNL_ARG_BIAS, mem[3]}};
	rc = fd_dnnl_exec(d, prim, bias ? 4 : 3, a, e);
out:
	fd_md_free(am);
	fd_md_free(bm);
	fd_md_free(biasm);
	fd_md_free(cm);
	for (int i = 0; i < 4; i++)
		if (mem[i])
			dnnl_memory_destroy(mem[i]);
	if (prim)
		dnnl_primitive_destroy(prim);
	if (pd)
		dnnl_primitive_desc_destroy(pd);
	if (po)
		dnnl_post_ops_destroy(po);
	if (attr)
		dnnl_primitive_attr_destroy(attr);
	return rc;
}

/* n bf16 values of scratch from c's arena (freed at the next step). */
static uint16_t *bf16_scratch(struct fd_ctx *c, int64_t n)
{
	return (uint16_t *)fd_ctx_alloc(c, FD_DEV_CPU, (n + 1) / 2);
}

/* y = bf16(x) bf16(w)^T + b, fp32 accumulation and result */
static int linear_fwd_bf16(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
			   const float *w, const float *b, float *y)
{
	struct fd_err e = {{0}};
	uint16_t *xb = bf16_scratch(c, N * in), *wb = bf16_scratch(c, out * in);
	if (!xb || !wb)
		return -1;
	to_bf16(c->threads, N * in, x, xb);
	to_bf16(c->threads, out * in, w, wb);
	struct bf16_mat A = {xb, N, in, in, 1}, B = {wb, in, out, 1, in}; /* B = w^T */
	if (matmul_bf16(c->engine, &A, &B, b, y, 0, &e) < 0)
		return fd_fail(c, "linear N=%lld in=%lld out=%lld: forward: %s", (long long)N, (long long)in,
			       (long long)out, e.msg), -1;
	return 0;
}

/* dx += bf16(dy) bf16(w); dw += bf16(dy)^T bf16(x); db += column sums of dy (fp32) */
static int linear_bwd_bf16(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
			   const float *w, const float *dy, float *dx, float *dw, float *db)
{
	struct fd_err e = {{0}};
	uint16_t *dyb = bf16_scratch(c, N * out);
	if (!dyb)
		return -1;
	to_bf16(c->threads, N * out, dy, dyb);
	if (dx) {
		uint16_t *wb = bf16_scratch(c, out * in);
		if (!wb)
			return -1;
		to_bf16(c->threads, out * in, w, wb);
		struct bf16_mat A = {dyb, N, out, out, 1}, B = {wb, out, in, in, 1};
		if (matmul_bf16(c->engine, &A, &B, NULL, dx, 1, &e) < 0)
			goto fail;
	}
	if (dw) {
		uint16_t *xb = bf16_scratch(c, N * in);
		if (!xb)
			return -1;
		to_bf16(c->threads, N * in, x, xb);
		struct bf16_mat A = {dyb, out, N, 1, out}, B = {xb, N, in, in, 1}; /* A = dy^T */
		if (matmul_bf16(c->engine, &A, &B, NULL, dw, 1, &e) < 0)
			goto fail;
	}
	if (db) {
		#pragma omp parallel for num_threads(c->threads)
		for (int64_t o = 0; o < out; o++) {
			float s = 0;
			for (int64_t n = 0; n < N; n++)
				s += dy[n * out + o];
			db[o] += s;
		}
	}
	return 0;
fail:
	fd_fail(c, "linear N=%lld in=%lld out=%lld: backward: %s", (long long)N, (long long)in, (long long)out,
		e.msg);
	return -1;
}

/* ---------- CPU kernels (table entries linear_fwd, linear_bwd) ---------- */

static int wants(const struct fd_tensor *t)
{
	return t && (t->flags & FD_T_REQUIRES_GRAD);
}

static int ctx_err(struct fd_ctx *c, const struct fd_err *e)
{
	fd_fail(c, "%s", e->msg);
	return -1;
}

static int int_sizes(struct fd_ctx *c, const char *op, int64_t a, int64_t b, int64_t d)
{
	if (a > INT32_MAX || b > INT32_MAX || d > INT32_MAX) {
		fd_fail(c, "%s: sizes beyond 2^31 are not supported", op);
		return -1;
	}
	return 0;
}

static int linear_fwd_body(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
		      const float *w, const float *b, float *y)
{
	struct fd_err e = {{0}};
	if (int_sizes(c, "linear", N, in, out) < 0)
		return -1;
	return linear_fwd(c->threads, (int)N, (int)in, (int)out, x, w, b, y, &e) < 0 ? ctx_err(c, &e) : 0;
}

/* sgemm runs on c->threads for this call only (fd_dnnl.h) */
int fd_linear_fwd_cpu(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
		      const float *w, const float *b, float *y)
{
	int prev = fd_dnnl_threads_enter(c->threads);
	int rc = c->precision == FD_PREC_BF16 ? linear_fwd_bf16(c, N, in, out, x, w, b, y)
					      : linear_fwd_body(c, N, in, out, x, w, b, y);
	fd_dnnl_threads_leave(prev);
	return rc;
}

static int linear_bwd_body(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
		      const float *w, const float *dy, float *dx, float *dw, float *db)
{
	struct fd_err e = {{0}};
	if (int_sizes(c, "linear", N, in, out) < 0)
		return -1;
	if (dx && linear_bwd_data(c->threads, (int)N, (int)in, (int)out, dy, w, dx, &e) < 0)
		return ctx_err(c, &e);
	if (!dw && db) {
		/* rare (frozen weight, trained bias): column sums of dy */
		for (int64_t i = 0; i < N; i++)
			for (int64_t j = 0; j < out; j++)
				db[j] += dy[i * out + j];
		return 0;
	}
	if (dw && linear_bwd_weights(c->threads, (int)N, (int)in, (int)out, x, dy, dw, db, &e) < 0)
		return ctx_err(c, &e);
	return 0;
}

int fd_linear_bwd_cpu(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
		      const float *w, const float *dy, float *dx, float *dw, float *db)
{
	int prev = fd_dnnl_threads_enter(c->threads);
	int rc = c->precision == FD_PREC_BF16 ? linear_bwd_bf16(c, N, in, out, x, w, dy, dx, dw, db)
					      : linear_bwd_body(c, N, in, out, x, w, dy, dx, dw, db);
	fd_dnnl_threads_leave(prev);
	return rc;
}

/* ---------- the taped op ---------- */

static int linear_backward(struct fd_ctx *c, struct fd_node *n)
{
	struct fd_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
	const struct fd_backend *be = FD_KERNEL(c, x->dev, linear_bwd);
	if (!be)
		return -1;
	return be->linear_bwd(c, x->shape[0], x->shape[1], w->shape[0], x->data, w->data, n->out->grad,
			      wants(x) ? x->grad : NULL, wants(w) ? w->grad : NULL,
			      wants(b) ? b->grad : NULL);
}

struct fd_tensor *fd_linear(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w,
			    struct fd_tensor *b)
{
	if (!x || !w)
		return NULL;
	char b1[64], b2[64], b3[64] = "none";
	if (b)
		fd_tensor_shape_str(b, b3, sizeof b3);
	if (x->ndim != 2 || w->ndim != 2 || x->shape[1] != w->shape[1] ||
	    (b && (b->numel != w->shape[0] || b->dev != x->dev)) || w->dev != x->dev)
		return fd_fail(c, "linear: input %s, weight %s and bias %s do not match",
			       fd_tensor_shape_str(x, b1, sizeof b1), fd_tensor_shape_str(w, b2, sizeof b2), b3);
	const struct fd_backend *be = FD_KERNEL(c, x->dev, linear_fwd);
	int64_t shape[2] = {x->shape[0], w->shape[0]};
	struct fd_tensor *y = be ? fd_tensor_new(c, x->dev, 2, shape) : NULL;
	if (!y || be->linear_fwd(c, x->shape[0], x->shape[1], w->shape[0], x->data, w->data,
				 b ? b->data : NULL, y->data) < 0)
		return NULL;
	c->macs += (uint64_t)x->numel * (uint64_t)w->shape[0];
	struct fd_tensor *in[3] = {x, w, b};
	int nin = b ? 3 : 2;
	if (fd_needs_grad(c, nin, in) && !fd_tape_push(c, "linear", linear_backward, nin, in, y, 0))
		return NULL;
	return y;
}


void fd_linear_ref_forward(int N, int in, int out, const double *x, const double *w, const double *b,
			   double *y)
{
	for (int n = 0; n < N; n++)
		for (int o = 0; o < out; o++) {
			double s = b ? b[o] : 0;
			for (int i = 0; i < in; i++)
				s += x[(size_t)n * in + i] * w[(size_t)o * in + i];
			y[(size_t)n * out + o] = s;
		}
}

void fd_linear_ref_backward_data(int N, int in, int out, const double *dy, const double *w, double *dx)
{
	for (int n = 0; n < N; n++)
		for (int o = 0; o < out; o++)
			for (int i = 0; i < in; i++)
				dx[(size_t)n * in + i] += dy[(size_t)n * out + o] * w[(size_t)o * in + i];
}

void fd_linear_ref_backward_weights(int N, int in, int out, const double *x, const double *dy,
				    double *dw, double *db)
{
	for (int n = 0; n < N; n++)
		for (int o = 0; o < out; o++) {
			double g = dy[(size_t)n * out + o];
			if (db)
				db[o] += g;
			for (int i = 0; i < in; i++)
				dw[(size_t)o * in + i] += g * x[(size_t)n * in + i];
		}
}
