/* fd_backend: the op table. Each device has one struct of kernel pointers over
 * raw device memory; the taped ops (relu.h, binary.h, ...) do shapes, the tape
 * and the arena, then call the kernel of their tensors' device. A NULL entry
 * means the device lacks the op: the dispatcher reports "not supported", it
 * never falls back to another device. Kernels that take a gradient output ADD
 * into it; a NULL gradient pointer means "not wanted". */
#ifndef FD_BACKEND_H
#define FD_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include "nn/fd_tensor.h"

struct fd_conv2d_shape;
struct fd_pool2d_shape;

enum fd_act {
	FD_ACT_RELU, FD_ACT_HARDSWISH, FD_ACT_HARDSIGMOID, FD_ACT_SILU, FD_ACT_SIGMOID,
	FD_ACT_GELU, FD_ACT_COUNT
};

enum fd_binop { FD_BIN_ADD, FD_BIN_MUL };

/* Broadcast of two operands to a 5-D output shape (right-aligned, numpy
 * rules). sa/sb are element strides per output dim, 0 where the operand has 1. */
struct fd_bcast {
	int64_t shape[FD_MAXDIM];
	int64_t sa[FD_MAXDIM], sb[FD_MAXDIM];
	int64_t n, na, nb;
};

/* The scalars of one optimizer update of one parameter group, in float as
 * the kernels use them (optim.c computes them in double, as torch does, then
 * rounds). threads: host threads a CPU kernel may use. */
struct fd_opt_args {
	int threads;
	/* AdamW: p *= decay; m = b1 m + a1 g; v = b2 v + a2 g^2;
	 * p += -step_size * (m / (sqrt(v) / bc2s + eps)) */
	float decay, b1, b2, a1, a2, step_size, bc2s, eps;
	/* SGD: d = g + wd p (wd != 0); buf = first ? d : mom buf + damp d;
	 * d = nesterov ? d + mom buf : buf (with a buffer); p += -lr d */
	float lr, wd, mom, damp;
	int nesterov, first;
};

struct fd_backend {
	const char *name;
	/* context: make the device's engine in c->engine (c->threads is set);
	 * close releases it */
	int (*ctx_open)(struct fd_ctx *c, struct fd_err *e);
	void (*ctx_close)(struct fd_ctx *c);
	/* whether c's device can run its matrix products at precision p other
	 * than fp32 (fd_ctx_set_precision); 0, or -1 with e naming what is
	 * missing. NULL: fp32 only */
	int (*precision_ok)(struct fd_ctx *c, enum fd_precision p, struct fd_err *e);
	/* memory: buffers that outlive a step (parameters, gradients, optimizer
	 * moments; the blocks of a device arena), with no context: mem_alloc
	 * gives `bytes` zeroed, 64-byte aligned (NULL when exhausted); mem_free
	 * (NULL: no-op) and mem_zero take what mem_alloc gave */
	void *(*mem_alloc)(size_t bytes);
	void (*mem_free)(void *p);
	int (*mem_zero)(void *p, size_t bytes);
	/* transfers of `bytes` on c's stream: host -> device, device -> host,
	 * device -> device; sync waits until every kernel issued on c is done
	 * (the CPU runs everything synchronously) */
	int (*copy_h2d)(struct fd_ctx *c, void *dst, const void *src, size_t bytes);
	int (*copy_d2h)(struct fd_ctx *c, void *dst, const void *src, size_t bytes);
	int (*copy_d2d)(struct fd_ctx *c, void *dst, const void *src, size_t bytes);
	int (*sync)(struct fd_ctx *c);
	int (*zero)(struct fd_ctx *c, float *p, int64_t n);
	int (*axpy)(struct fd_ctx *c, int64_t n, float alpha, const float *x, float *y); /* y += alpha x */
	/* optimizer updates (fused: one pass over n parameters p, gradients g and
	 * moments, in place; optim.c has the formulas and computes the scalars) */
	int (*adamw_step)(const struct fd_opt_args *a, int64_t n, float *p, const float *g, float *m,
			  float *v);
	int (*sgd_step)(const struct fd_opt_args *a, int64_t n, float *p, const float *g, float *buf);
	/* elementwise activations: y = f(x); dx += dy * f'(x) (y is f(x), for ops that use it);
	 * fwd may run in place (y == x) for relu only, whose bwd may be given y as x */
	int (*act_fwd)(struct fd_ctx *c, enum fd_act k, int64_t n, const float *x, float *y);
	int (*act_bwd)(struct fd_ctx *c, enum fd_act k, int64_t n, const float *x, const float *y,
		       const float *dy, float *dx);
	/* prelu over [N, C, inner] with w[C] */
	int (*prelu_fwd)(struct fd_ctx *c, int64_t N, int64_t C, int64_t inner, const float *x,
			 const float *w, float *y);
	int (*prelu_bwd)(struct fd_ctx *c, int64_t N, int64_t C, int64_t inner, const float *x,
			 const float *w, const float *dy, float *dx, float *dw);
	/* y = a op b with broadcasting; da/db receive the reduced gradients */
	int (*binary_fwd)(struct fd_ctx *c, enum fd_binop op, const struct fd_bcast *bc, const float *a,
		       const float *b, float *y);
	int (*binary_bwd)(struct fd_ctx *c, enum fd_binop op, const struct fd_bcast *bc, const float *a,
		       const float *b, const float *dy, float *da, float *db);
	/* softmax over the middle dim of [outer, C, inner] */
	int (*softmax_fwd)(struct fd_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *x,
			   float *y);
	int (*softmax_bwd)(struct fd_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *y,
			   const float *dy, float *dx);
	/* LayerNorm over C at every (n, h, w) of NCHW; mean/rstd [N*HW] saved */
	int (*layernorm2d_fwd)(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, float eps, const float *x,
			const float *w, const float *b, float *y, float *mean, float *rstd);
	int (*layernorm2d_bwd)(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
			const float *w, const float *mean, const float *rstd, const float *dy, float *dx,
			float *dw, float *db);
	/* dropout: keep[i] from Philox(seed, stream); y = x * keep * scale */
	int (*dropout_fwd)(struct fd_ctx *c, int64_t n, float p, uint64_t seed, uint64_t stream,
			   const float *x, float *y, uint8_t *keep);
	int (*dropout_bwd)(struct fd_ctx *c, int64_t n, float scale, const uint8_t *keep,
			   const float *dy, float *dx);
	/* y[r, :] = x[r, :] * f[r] over [rows, inner]; f is host memory (stochastic depth) */
	int (*rowscale_fwd)(struct fd_ctx *c, int64_t rows, int64_t inner, const float *f,
			    const float *x, float *y);
	int (*rowscale_bwd)(struct fd_ctx *c, int64_t rows, int64_t inner, const float *f,
			    const float *dy, float *dx);
	/* losses (mean over the batch); loss written to host memory */
	int (*bce_fwd)(struct fd_ctx *c, int64_t n, const float *x, const float *t, double *loss);
	int (*bce_bwd)(struct fd_ctx *c, int64_t n, const float *x, const float *t, float g, float *dx);
	int (*ce_fwd)(struct fd_ctx *c, int64_t N, int64_t K, const float *x, const int32_t *label,
		      float *prob, double *loss);
	int (*ce_bwd)(struct fd_ctx *c, int64_t N, int64_t K, const float *prob, const int32_t *label,
		      float g, float *dx);
	/* conv2d (conv2d.h): a plan is the device's own object for one full
	 * shape, made once (expensive) and reused; plan_free(NULL) is a no-op.
	 * bwd adds into dx, dw, db (each NULL = not wanted). */
	int (*conv2d_plan)(struct fd_ctx *c, const struct fd_conv2d_shape *s, void **plan);
	void (*conv2d_plan_free)(void *plan);
	int (*conv2d_fwd)(struct fd_ctx *c, void *plan, const float *x, const float *w, const float *b,
			  float *y);
	int (*conv2d_bwd)(struct fd_ctx *c, void *plan, const float *x, const float *w, const float *dy,
			  float *dx, float *dw, float *db);
	/* linear: y [N,out] = x [N,in] w^T + b (b may be NULL) */
	int (*linear_fwd)(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
			  const float *w, const float *b, float *y);
	int (*linear_bwd)(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
			  const float *w, const float *dy, float *dx, float *dw, float *db);
	/* batchnorm2d over [N, C, HW]: train updates running stats in place and
	 * writes mean/invstd [C] for its backward; eval reads running stats */
	int (*batchnorm2d_fwd_train)(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
			    const float *w, const float *b, float *rmean, float *rvar, double momentum,
			    double eps, float *y, float *mean, float *invstd);
	int (*batchnorm2d_bwd_train)(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
			    const float *w, const float *mean, const float *invstd, const float *dy,
			    float *dx, float *dw, float *db);
	int (*batchnorm2d_fwd_eval)(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
			   const float *w, const float *b, const float *rmean, const float *rvar,
			   double eps, float *y);
	int (*batchnorm2d_bwd_eval)(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
			   const float *w, const float *rmean, const float *rvar, double eps,
			   const float *dy, float *dx, float *dw, float *db);
	/* pooling; max pool indices are int32 flat positions in the input plane */
	int (*maxpool2d_fwd)(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *x, float *y,
			   int32_t *idx);
	int (*maxpool2d_bwd)(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy,
			   const int32_t *idx, float *dx);
	int (*avgpool2d_fwd)(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *x, float *y);
	int (*avgpool2d_bwd)(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy, float *dx);
	int (*adaptive_avgpool2d_fwd)(struct fd_ctx *c, int64_t N, int64_t C, int64_t H, int64_t W, int64_t Ho,
			   int64_t Wo, const float *x, float *y);
	int (*adaptive_avgpool2d_bwd)(struct fd_ctx *c, int64_t N, int64_t C, int64_t H, int64_t W, int64_t Ho,
			   int64_t Wo, const float *dy, float *dx);
};

/* The table of a device, or NULL when fd was built without it. */
const struct fd_backend *fd_backend_of(enum fd_dev d);

/* The kernel `fn` of `dev`'s table, or a "not supported" failure recorded in
 * c (and NULL). Usage: `FD_KERNEL(c, dev, act_fwd)`. */
const struct fd_backend *fd_backend_need(struct fd_ctx *c, enum fd_dev d, int has, const char *what);
#define FD_KERNEL(c, dev, fn) \
	fd_backend_need((c), (dev), fd_backend_of(dev) && fd_backend_of(dev)->fn != NULL, #fn)

/* What the CPU kernels run on: oneDNN's version into buf ("2.6.3") and,
 * returned, the instruction set its kernels dispatch on this CPU ("avx2",
 * "avx512_core_amx", ...; fd_dnnl_describe). For run records: an AVX2 and an
 * AVX-512 machine run different kernels, which round differently. */
const char *fd_backend_cpu_describe(char *buf, size_t n);
/* Drop what the CPU kernels' library keeps process-wide between plans
 * (oneDNN's primitive cache: up to 1024 primitives with their JIT code and
 * buffers; fd_dnnl_cache_flush), so that after a failure for lack of memory
 * the next work has what a fresh process has. Primitives in use by other
 * threads' plans stay alive; later plans are made anew. */
void fd_backend_cpu_flush(void);

/* The CPU table (plain C + OpenMP). */
extern const struct fd_backend fd_backend_cpu;

#endif
