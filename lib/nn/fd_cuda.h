/* fd_cuda: the CUDA backend of lib/nn (lib/nn/backend_cuda.cu): the device
 * context (stream, cuBLAS and cuDNN handles, shared workspace), device memory
 * helpers, the fused optimizer steps, and the op-table kernels. Plain C: no
 * CUDA type appears here. Built only where the CUDA toolkit is (lib/nn/cuda.mk,
 * doc/cuda.md). */
#ifndef FD_CUDA_H
#define FD_CUDA_H

#include <stddef.h>
#include <stdint.h>

/* the C headers get C linkage when a .cu file includes this first */
#ifdef __cplusplus
extern "C" {
#endif

#include "core/fd_err.h"
#include "nn/fd_backend.h"

struct fd_conv2d_shape;
struct fd_pool2d_shape;

/* One GPU as the kernels see it: the device, one stream every kernel, copy,
 * cuBLAS and cuDNN call of this context runs on (so they run in issue order),
 * the cuBLAS and cuDNN handles bound to that stream, the cuDNN workspace
 * shared by every conv plan (grown when a plan is made, never during a step)
 * and a small scratch block for reductions and host-given factors. Opaque;
 * one per context: fd_ctx_open(c, FD_DEV_CUDA, ...) makes it the context's
 * engine (c->engine, owned) through the table's ctx_open. */
struct fd_cuda;

/* Number of CUDA devices, 0 with e set to the runtime's reason (no driver,
 * no device, ...) when none can be used. Never fails otherwise. */
int fd_cuda_device_count(struct fd_err *e);

/* Open device `device`: select it, create the stream (blocking: ordered with the legacy default stream, on
 * which the table's context-less entries mem_zero, adamw_step, sgd_step run), the
 * cuBLAS handle (CUBLAS_PEDANTIC_MATH: fp32 products in fp32, no TF32) and
 * the cuDNN handle, both on that stream. *g is NULL on failure, with e naming
 * the call and its status. Close with fd_cuda_close. */
int fd_cuda_open(struct fd_cuda **g, int device, struct fd_err *e);
/* Synchronise, then destroy handles, stream and buffers. NULL is a no-op. */
void fd_cuda_close(struct fd_cuda *g);
/* "NVIDIA H200 (sm_90, 139.8 GiB)": for logs. */
const char *fd_cuda_device_desc(const struct fd_cuda *g);

/* Device memory. alloc: *p = bytes of uninitialised device memory (cudaMalloc,
 * 256-byte aligned; bytes 0 gives NULL and succeeds). free(NULL) is a no-op;
 * free waits for the device (cudaFree). The copies are ordered on g's stream:
 * h2d returns once src may be reused; d2h returns once dst holds the data
 * (it synchronises the stream); d2d and zero (bytes set to 0) are
 * asynchronous. sync waits for everything issued on g and reports any
 * asynchronous kernel error. Errors name the call and the CUDA status. */
int fd_cuda_alloc(struct fd_cuda *g, void **p, size_t bytes, struct fd_err *e);
void fd_cuda_free(struct fd_cuda *g, void *p);
int fd_cuda_h2d(struct fd_cuda *g, void *dst, const void *src, size_t bytes, struct fd_err *e);
int fd_cuda_d2h(struct fd_cuda *g, void *dst, const void *src, size_t bytes, struct fd_err *e);
int fd_cuda_d2d(struct fd_cuda *g, void *dst, const void *src, size_t bytes, struct fd_err *e);
int fd_cuda_zero(struct fd_cuda *g, void *p, size_t bytes, struct fd_err *e);
int fd_cuda_sync(struct fd_cuda *g, struct fd_err *e);

/* The CUDA op table (every entry of struct fd_backend; fd_backend_of
 * (FD_DEV_CUDA) returns it in programs that link the CUDA backend, see
 * fd_backend.c) and its kernels, with
 * the CPU kernels' signatures and semantics (fd_backend.h; forward
 * overwrites, backward ADDS, NULL gradient = not wanted). Every pointer is
 * device memory of the context's device except where noted: rowscale's f is host
 * memory (as on the CPU); losses write *loss to host memory (they
 * synchronise the stream); ce's label is DEVICE memory (int32 [N]); bce_bwd
 * and ce_bwd take the seed g by value. Each kernel fails
 * (c->err: the op, the call, the CUDA/cuBLAS/cuDNN status) when c is not a
 * CUDA context or a call fails; asynchronous kernel faults surface at the next
 * synchronising call (a loss, fd_cuda_d2h, fd_cuda_sync). */
extern const struct fd_backend fd_backend_cuda;

int fd_zero_cuda(struct fd_ctx *c, float *p, int64_t n);
/* context, memory, copies, optimizer steps (fd_backend.h): ctx_open makes
 * the handles of device 0 the context's engine; mem_alloc is cudaMalloc +
 * zeroing, synchronised; mem_zero, adamw_step and sgd_step run on the
 * legacy default stream (see fd_cuda_open); copy_h2d and copy_d2h return
 * when the copy is done, copy_d2d is asynchronous on c's stream; sync also
 * reports a kernel's asynchronous fault. */
int fd_ctx_open_cuda(struct fd_ctx *c, struct fd_err *e);
void fd_ctx_close_cuda(struct fd_ctx *c);
void *fd_mem_alloc_cuda(size_t bytes);
void fd_mem_free_cuda(void *p);
int fd_mem_zero_cuda(void *p, size_t bytes);
int fd_copy_h2d_cuda(struct fd_ctx *c, void *dst, const void *src, size_t bytes);
int fd_copy_d2h_cuda(struct fd_ctx *c, void *dst, const void *src, size_t bytes);
int fd_copy_d2d_cuda(struct fd_ctx *c, void *dst, const void *src, size_t bytes);
int fd_sync_cuda(struct fd_ctx *c);
int fd_adamw_step_cuda(const struct fd_opt_args *a, int64_t n, float *p, const float *g, float *m,
		       float *v);
int fd_sgd_step_cuda(const struct fd_opt_args *a, int64_t n, float *p, const float *g, float *buf);
int fd_axpy_cuda(struct fd_ctx *c, int64_t n, float alpha, const float *x, float *y);
int fd_act_fwd_cuda(struct fd_ctx *c, enum fd_act k, int64_t n, const float *x, float *y);
int fd_act_bwd_cuda(struct fd_ctx *c, enum fd_act k, int64_t n, const float *x, const float *y,
		    const float *dy, float *dx);
int fd_prelu_fwd_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t inner, const float *x,
		      const float *w, float *y);
int fd_prelu_bwd_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t inner, const float *x,
		      const float *w, const float *dy, float *dx, float *dw);
int fd_binary_fwd_cuda(struct fd_ctx *c, enum fd_binop op, const struct fd_bcast *bc, const float *a,
		    const float *b, float *y);
int fd_binary_bwd_cuda(struct fd_ctx *c, enum fd_binop op, const struct fd_bcast *bc, const float *a,
		    const float *b, const float *dy, float *da, float *db);
int fd_softmax_fwd_cuda(struct fd_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *x,
			float *y);
int fd_softmax_bwd_cuda(struct fd_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *y,
			const float *dy, float *dx);
int fd_layernorm2d_fwd_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, float eps, const float *x,
		     const float *w, const float *b, float *y, float *mean, float *rstd);
int fd_layernorm2d_bwd_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
		     const float *w, const float *mean, const float *rstd, const float *dy, float *dx,
		     float *dw, float *db);
int fd_dropout_fwd_cuda(struct fd_ctx *c, int64_t n, float p, uint64_t seed, uint64_t stream,
			const float *x, float *y, uint8_t *keep);
int fd_dropout_bwd_cuda(struct fd_ctx *c, int64_t n, float scale, const uint8_t *keep,
			const float *dy, float *dx);
int fd_rowscale_fwd_cuda(struct fd_ctx *c, int64_t rows, int64_t inner, const float *f,
			 const float *x, float *y);
int fd_rowscale_bwd_cuda(struct fd_ctx *c, int64_t rows, int64_t inner, const float *f,
			 const float *dy, float *dx);
int fd_bce_fwd_cuda(struct fd_ctx *c, int64_t n, const float *x, const float *t, double *loss);
int fd_bce_bwd_cuda(struct fd_ctx *c, int64_t n, const float *x, const float *t, float g, float *dx);
int fd_ce_fwd_cuda(struct fd_ctx *c, int64_t N, int64_t K, const float *x, const int32_t *label,
		   float *prob, double *loss);
int fd_ce_bwd_cuda(struct fd_ctx *c, int64_t N, int64_t K, const float *prob, const int32_t *label,
		   float g, float *dx);
/* conv2d through cuDNN: a plan holds the descriptors of one full shape, the
 * forward, backward-data and backward-filter algorithms cuDNN's heuristics
 * rank first among those that use plain fp32 FMA math (CUDNN_FMA_MATH: no
 * TF32) and are deterministic (when one is offered), and their workspace
 * sizes; making it grows the context's shared workspace. */
int fd_conv2d_plan_cuda(struct fd_ctx *c, const struct fd_conv2d_shape *s, void **plan);
void fd_conv2d_plan_free_cuda(void *plan);
int fd_conv2d_fwd_cuda(struct fd_ctx *c, void *plan, const float *x, const float *w, const float *b,
		       float *y);
int fd_conv2d_bwd_cuda(struct fd_ctx *c, void *plan, const float *x, const float *w, const float *dy,
		       float *dx, float *dw, float *db);
/* linear through cuBLAS sgemm (row-major x [N,in] w [out,in]^T). */
int fd_linear_fwd_cuda(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
		       const float *w, const float *b, float *y);
int fd_linear_bwd_cuda(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
		       const float *w, const float *dy, float *dx, float *dw, float *db);
int fd_batchnorm2d_fwd_train_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
			 const float *w, const float *b, float *rmean, float *rvar, double momentum,
			 double eps, float *y, float *mean, float *invstd);
int fd_batchnorm2d_bwd_train_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
			 const float *w, const float *mean, const float *invstd, const float *dy,
			 float *dx, float *dw, float *db);
int fd_batchnorm2d_fwd_eval_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
			const float *w, const float *b, const float *rmean, const float *rvar,
			double eps, float *y);
int fd_batchnorm2d_bwd_eval_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
			const float *w, const float *rmean, const float *rvar, double eps,
			const float *dy, float *dx, float *dw, float *db);
int fd_maxpool2d_fwd_cuda(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *x, float *y,
			int32_t *idx);
int fd_maxpool2d_bwd_cuda(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy,
			const int32_t *idx, float *dx);
int fd_avgpool2d_fwd_cuda(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *x, float *y);
int fd_avgpool2d_bwd_cuda(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy, float *dx);
int fd_adaptive_avgpool2d_fwd_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t H, int64_t W, int64_t Ho,
			int64_t Wo, const float *x, float *y);
int fd_adaptive_avgpool2d_bwd_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t H, int64_t W, int64_t Ho,
			int64_t Wo, const float *dy, float *dx);

#ifdef __cplusplus
}
#endif

#endif
