/* backend_cuda: the CUDA op table (fd_cuda.h): the device context, memory
 * helpers, optimizer steps and every kernel of struct fd_backend, with the CPU
 * kernels' semantics. Own kernels for everything but conv2d (cuDNN) and
 * linear (cuBLAS). Built with --fmad=false (cuda.mk) so a*b+c rounds twice,
 * as the CPU code compiled as ISO C does; every reduction runs in a fixed
 * order (no atomics), so results are the same run to run. doc/cuda.md. */
extern "C" {
#include "nn/conv2d.h"
#include "nn/fd_backend.h"
#include "nn/fd_cuda.h"
#include "nn/fd_tensor.h"
#include "nn/pool2d.h"
}

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fd_cuda {
	int device;
	char desc[320];
	cudaStream_t stream;
	cublasHandle_t blas;
	cudnnHandle_t dnn;
	void *ws; /* cuDNN workspace shared by every conv plan */
	size_t ws_size;
	void *scratch; /* reductions' partial sums, rowscale's factors */
	size_t scratch_size;
};

/* ---------------------------------------------------------------- errors */

static const char *blas_status(cublasStatus_t st)
{
	switch (st) {
	case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
	case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
	case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
	case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
	case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
	case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
	case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
	case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
	case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
	case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
	default: return "unknown cuBLAS status";
	}
}

/* "<what>: <call>: <name> (<description>)" into e; -1 */
static int err_cuda(struct fd_err *e, const char *what, const char *call, cudaError_t st)
{
	return fd_err_set(e, "%s: %s: %s (%s)", what, call, cudaGetErrorName(st), cudaGetErrorString(st));
}

static int ctx_fail(struct fd_ctx *c, const struct fd_err *e)
{
	fd_fail(c, "%s", e->msg);
	return -1;
}

static int fail_cuda(struct fd_ctx *c, const char *what, const char *call, cudaError_t st)
{
	struct fd_err e;
	err_cuda(&e, what, call, st);
	return ctx_fail(c, &e);
}

static int fail_blas(struct fd_ctx *c, const char *what, const char *call, cublasStatus_t st)
{
	fd_fail(c, "%s: %s: %s", what, call, blas_status(st));
	return -1;
}

static int fail_dnn(struct fd_ctx *c, const char *what, const char *call, cudnnStatus_t st)
{
	fd_fail(c, "%s: %s: %s", what, call, cudnnGetErrorString(st));
	return -1;
}

/* Check a call where it is made: `CK(c, what, cudaMemsetAsync(...))`. */
#define CK(c, what, call)                                                   \
	do {                                                                \
		cudaError_t st_ = (call);                                   \
		if (st_ != cudaSuccess)                                     \
			return fail_cuda((c), (what), #call, st_);          \
	} while (0)
#define CKB(c, what, call)                                                  \
	do {                                                                \
		cublasStatus_t st_ = (call);                                \
		if (st_ != CUBLAS_STATUS_SUCCESS)                           \
			return fail_blas((c), (what), #call, st_);          \
	} while (0)
#define CKD(c, what, call)                                                  \
	do {                                                                \
		cudnnStatus_t st_ = (call);                                 \
		if (st_ != CUDNN_STATUS_SUCCESS)                            \
			return fail_dnn((c), (what), #call, st_);           \
	} while (0)

/* A launch's configuration error (the kernel's own faults show later). */
static int launched(struct fd_ctx *c, const char *what)
{
	cudaError_t st = cudaGetLastError();
	return st == cudaSuccess ? 0 : fail_cuda(c, what, "kernel launch", st);
}

/* The context's device handles, or a failure naming the op. */
static struct fd_cuda *gpu(struct fd_ctx *c, const char *what)
{
	if (c->dev != FD_DEV_CUDA || !c->engine) {
		fd_fail(c, "%s on cuda: the context is not a CUDA context (fd_ctx_open(c, FD_DEV_CUDA, ...))",
			what);
		return NULL;
	}
	return (struct fd_cuda *)c->engine;
}

#define THREADS 256
/* Grid for n items at THREADS per block; kernels loop grid-stride. */
static unsigned grid_for(int64_t n)
{
	int64_t b = (n + THREADS - 1) / THREADS;
	return (unsigned)(b < 1 ? 1 : b > (1 << 20) ? (1 << 20) : b);
}

#define GRID_LOOP(i, n)                                                                  \
	for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);       \
	     i += (int64_t)gridDim.x * blockDim.x)

/* Sum of v over the block (THREADS threads), the same tree every call: a
 * deterministic order. Every thread gets the sum. */
__device__ static double block_sum(double v, double *sh)
{
	sh[threadIdx.x] = v;
	__syncthreads();
	for (int s = THREADS / 2; s > 0; s >>= 1) {
		if ((int)threadIdx.x < s)
			sh[threadIdx.x] += sh[threadIdx.x + s];
		__syncthreads();
	}
	double r = sh[0];
	__syncthreads();
	return r;
}

/* Grow g's scratch block to bytes (synchronising when it reallocates). */
static int scratch(struct fd_ctx *c, struct fd_cuda *g, size_t bytes, const char *what)
{
	if (g->scratch_size >= bytes)
		return 0;
	CK(c, what, cudaStreamSynchronize(g->stream));
	CK(c, what, cudaFree(g->scratch));
	g->scratch = NULL;
	g->scratch_size = 0;
	size_t want = bytes < 65536 ? 65536 : bytes;
	CK(c, what, cudaMalloc(&g->scratch, want));
	g->scratch_size = want;
	return 0;
}

/* ---------------------------------------------------------------- context */

extern "C" int fd_cuda_device_count(struct fd_err *e)
{
	int n = 0;
	cudaError_t st = cudaGetDeviceCount(&n);
	if (st != cudaSuccess) {
		err_cuda(e, "cuda", "cudaGetDeviceCount", st);
		return 0;
	}
	if (n == 0)
		fd_err_set(e, "cuda: cudaGetDeviceCount: no device");
	return n;
}

extern "C" int fd_cuda_open(struct fd_cuda **out, int device, struct fd_err *e)
{
	*out = NULL;
	struct fd_cuda *g = (struct fd_cuda *)calloc(1, sizeof *g);
	if (!g)
		return fd_err_set(e, "cuda: out of memory");
	g->device = device;
	cudaError_t st;
	cudaDeviceProp prop;
	const char *what = "cuda: open device";
	if ((st = cudaSetDevice(device)) != cudaSuccess) {
		free(g);
		return err_cuda(e, what, "cudaSetDevice", st);
	}
	if ((st = cudaGetDeviceProperties(&prop, device)) != cudaSuccess) {
		free(g);
		return err_cuda(e, what, "cudaGetDeviceProperties", st);
	}
	snprintf(g->desc, sizeof g->desc, "%s (sm_%d%d, %.1f GiB)", prop.name, prop.major, prop.minor,
		 (double)prop.totalGlobalMem / (1024.0 * 1024 * 1024));
	if ((st = cudaStreamCreate(&g->stream)) != cudaSuccess) {
		free(g);
		return err_cuda(e, what, "cudaStreamCreate", st);
	}
	cublasStatus_t bs = cublasCreate(&g->blas);
	if (bs != CUBLAS_STATUS_SUCCESS) {
		g->blas = NULL;
		fd_cuda_close(g);
		return fd_err_set(e, "%s: cublasCreate: %s", what, blas_status(bs));
	}
	if ((bs = cublasSetStream(g->blas, g->stream)) != CUBLAS_STATUS_SUCCESS ||
	    (bs = cublasSetMathMode(g->blas, CUBLAS_PEDANTIC_MATH)) != CUBLAS_STATUS_SUCCESS) {
		fd_cuda_close(g);
		return fd_err_set(e, "%s: cublasSetStream/cublasSetMathMode: %s", what, blas_status(bs));
	}
	cudnnStatus_t ds = cudnnCreate(&g->dnn);
	if (ds != CUDNN_STATUS_SUCCESS) {
		g->dnn = NULL;
		fd_cuda_close(g);
		return fd_err_set(e, "%s: cudnnCreate: %s", what, cudnnGetErrorString(ds));
	}
	if ((ds = cudnnSetStream(g->dnn, g->stream)) != CUDNN_STATUS_SUCCESS) {
		fd_cuda_close(g);
		return fd_err_set(e, "%s: cudnnSetStream: %s", what, cudnnGetErrorString(ds));
	}
	*out = g;
	return 0;
}

extern "C" void fd_cuda_close(struct fd_cuda *g)
{
	if (!g)
		return;
	/* teardown: statuses cannot be acted on; the stream is drained first */
	cudaSetDevice(g->device);
	if (g->stream)
		cudaStreamSynchronize(g->stream);
	if (g->dnn)
		cudnnDestroy(g->dnn);
	if (g->blas)
		cublasDestroy(g->blas);
	cudaFree(g->ws);
	cudaFree(g->scratch);
	if (g->stream)
		cudaStreamDestroy(g->stream);
	free(g);
}

extern "C" const char *fd_cuda_device_desc(const struct fd_cuda *g)
{
	return g->desc;
}

/* ---------------------------------------------------------------- memory */

extern "C" int fd_cuda_alloc(struct fd_cuda *g, void **p, size_t bytes, struct fd_err *e)
{
	*p = NULL;
	if (bytes == 0)
		return 0;
	cudaError_t st = cudaMalloc(p, bytes);
	if (st != cudaSuccess) {
		*p = NULL;
		char what[64];
		snprintf(what, sizeof what, "cuda: allocate %zu bytes", bytes);
		return err_cuda(e, what, "cudaMalloc", st);
	}
	return 0;
}

extern "C" void fd_cuda_free(struct fd_cuda *g, void *p)
{
	if (p)
		cudaFree(p); /* a failure here leaves nothing to recover */
}

static int copy_checked(struct fd_cuda *g, void *dst, const void *src, size_t bytes, cudaMemcpyKind k,
			const char *what, struct fd_err *e)
{
	if (bytes == 0)
		return 0;
	cudaError_t st = cudaMemcpyAsync(dst, src, bytes, k, g->stream);
	return st == cudaSuccess ? 0 : err_cuda(e, what, "cudaMemcpyAsync", st);
}

extern "C" int fd_cuda_h2d(struct fd_cuda *g, void *dst, const void *src, size_t bytes, struct fd_err *e)
{
	return copy_checked(g, dst, src, bytes, cudaMemcpyHostToDevice, "cuda: copy host to device", e);
}

extern "C" int fd_cuda_d2h(struct fd_cuda *g, void *dst, const void *src, size_t bytes, struct fd_err *e)
{
	if (copy_checked(g, dst, src, bytes, cudaMemcpyDeviceToHost, "cuda: copy device to host", e) < 0)
		return -1;
	cudaError_t st = cudaStreamSynchronize(g->stream);
	return st == cudaSuccess ? 0 : err_cuda(e, "cuda: copy device to host", "cudaStreamSynchronize", st);
}

extern "C" int fd_cuda_d2d(struct fd_cuda *g, void *dst, const void *src, size_t bytes, struct fd_err *e)
{
	return copy_checked(g, dst, src, bytes, cudaMemcpyDeviceToDevice, "cuda: copy device to device", e);
}

extern "C" int fd_cuda_zero(struct fd_cuda *g, void *p, size_t bytes, struct fd_err *e)
{
	if (bytes == 0)
		return 0;
	cudaError_t st = cudaMemsetAsync(p, 0, bytes, g->stream);
	return st == cudaSuccess ? 0 : err_cuda(e, "cuda: zero", "cudaMemsetAsync", st);
}

extern "C" int fd_cuda_sync(struct fd_cuda *g, struct fd_err *e)
{
	cudaError_t st = cudaStreamSynchronize(g->stream);
	if (st == cudaSuccess)
		st = cudaGetLastError();
	return st == cudaSuccess ? 0 : err_cuda(e, "cuda: synchronise", "cudaStreamSynchronize", st);
}

/* ---------------------------------------------------------------- optimizers */

__global__ static void k_adamw(int64_t n, float *p, const float *g, float *m, float *v, float decay,
			       float b1, float b2, float a1, float a2, float step_size, float bc2s,
			       float eps)
{
	GRID_LOOP(i, n)
	{
		float pi = p[i] * decay;
		float mi = m[i] * b1 + g[i] * a1;
		float vi = v[i] * b2 + a2 * g[i] * g[i];
		float denom = sqrtf(vi) / bc2s + eps;
		pi += -step_size * (mi / denom);
		p[i] = pi, m[i] = mi, v[i] = vi;
	}
}

__global__ static void k_sgd(int64_t n, float *p, const float *g, float *buf, float lr, float w,
			     float mom, float damp, int first, int nesterov)
{
	GRID_LOOP(i, n)
	{
		float d = w != 0 ? g[i] + w * p[i] : g[i];
		if (buf) {
			float b = first ? d : buf[i] * mom + damp * d;
			buf[i] = b;
			d = nesterov ? d + mom * b : b;
		}
		p[i] += -lr * d;
	}
}

/* ---------------------------------------------------------------- table: memory */

extern "C" int fd_zero_cuda(struct fd_ctx *c, float *p, int64_t n)
{
	struct fd_cuda *g = gpu(c, "zero");
	if (!g)
		return -1;
	if (n > 0)
		CK(c, "zero", cudaMemsetAsync(p, 0, (size_t)n * sizeof *p, g->stream));
	return 0;
}

__global__ static void k_axpy(int64_t n, float alpha, const float *x, float *y)
{
	GRID_LOOP(i, n)
	y[i] += alpha * x[i];
}

extern "C" int fd_axpy_cuda(struct fd_ctx *c, int64_t n, float alpha, const float *x, float *y)
{
	struct fd_cuda *g = gpu(c, "axpy");
	if (!g)
		return -1;
	if (n <= 0)
		return 0;
	k_axpy<<<grid_for(n), THREADS, 0, g->stream>>>(n, alpha, x, y);
	return launched(c, "axpy");
}

/* ---------------------------------------------------------------- activations */

__device__ static inline float sigm(float x)
{
	return 1.0f / (1.0f + expf(-x));
}

/* comparisons, not fminf/fmaxf: a NaN input gives NaN, as on the CPU */
__device__ static inline float clamp06(float t)
{
	t = t < 0.0f ? 0.0f : t;
	return t > 6.0f ? 6.0f : t;
}

#define SQRT1_2F 0.70710678118654752440f

__global__ static void k_act_fwd(int k, int64_t n, const float *x, float *y)
{
	GRID_LOOP(i, n)
	{
		float v = x[i], r;
		switch (k) {
		case FD_ACT_RELU: r = v > 0 ? v : 0.0f; break;
		case FD_ACT_HARDSWISH: r = v * clamp06(v + 3.0f) / 6.0f; break;
		case FD_ACT_HARDSIGMOID: r = clamp06(v + 3.0f) / 6.0f; break;
		case FD_ACT_SILU: r = v * sigm(v); break;
		case FD_ACT_SIGMOID: r = sigm(v); break;
		default: r = 0.5f * v * (1.0f + erff(v * SQRT1_2F)); break; /* gelu */
		}
		y[i] = r;
	}
}

__global__ static void k_act_bwd(int k, int64_t n, const float *x, const float *y, const float *dy,
				 float *dx, float k_beta)
{
	GRID_LOOP(i, n)
	{
		float g = dy[i], r;
		switch (k) {
		case FD_ACT_RELU: r = x[i] > 0 ? g : 0.0f; break;
		case FD_ACT_HARDSWISH: {
			float v = x[i];
			r = v < -3.0f ? 0.0f : v <= 3.0f ? g * (v / 3.0f + 0.5f) : g;
			break;
		}
		case FD_ACT_HARDSIGMOID: r = (x[i] > -3.0f && x[i] < 3.0f) ? g / 6.0f : 0.0f; break;
		case FD_ACT_SILU: {
			float v = x[i], s = sigm(v);
			r = g * s * (1.0f + v * (1.0f - s));
			break;
		}
		case FD_ACT_SIGMOID: r = g * y[i] * (1.0f - y[i]); break;
		default: { /* gelu */
			float v = x[i];
			float cdf = 0.5f * (1.0f + erff(v * SQRT1_2F));
			float pdf = expf(-0.5f * v * v) * k_beta;
			r = g * (cdf + v * pdf);
			break;
		}
		}
		dx[i] += r;
	}
}

static const char *const act_names[FD_ACT_COUNT] = {
	"relu", "hardswish", "hardsigmoid", "silu", "sigmoid", "gelu",
};

extern "C" int fd_act_fwd_cuda(struct fd_ctx *c, enum fd_act k, int64_t n, const float *x, float *y)
{
	struct fd_cuda *g = gpu(c, "act_fwd");
	if (!g)
		return -1;
	if ((unsigned)k >= FD_ACT_COUNT) {
		fd_fail(c, "activation %d: unknown", (int)k);
		return -1;
	}
	if (x == y && k != FD_ACT_RELU) {
		fd_fail(c, "%s: not available in place", act_names[k]);
		return -1;
	}
	if (n <= 0)
		return 0;
	k_act_fwd<<<grid_for(n), THREADS, 0, g->stream>>>((int)k, n, x, y);
	return launched(c, act_names[k]);
}

extern "C" int fd_act_bwd_cuda(struct fd_ctx *c, enum fd_act k, int64_t n, const float *x,
			       const float *y, const float *dy, float *dx)
{
	struct fd_cuda *g = gpu(c, "act_bwd");
	if (!g)
		return -1;
	if ((unsigned)k >= FD_ACT_COUNT) {
		fd_fail(c, "activation %d: unknown", (int)k);
		return -1;
	}
	if (n <= 0)
		return 0;
	const float k_beta = (float)(0.5 * M_2_SQRTPI * M_SQRT1_2); /* 1/sqrt(2 pi), as act.c */
	k_act_bwd<<<grid_for(n), THREADS, 0, g->stream>>>((int)k, n, x, y, dy, dx, k_beta);
	return launched(c, act_names[k]);
}

/* ---------------------------------------------------------------- prelu */

__global__ static void k_prelu_fwd(int64_t n, int64_t C, int64_t inner, const float *x, const float *w,
				   float *y)
{
	GRID_LOOP(i, n)
	{
		float v = x[i];
		y[i] = v > 0 ? v : w[(i / inner) % C] * v;
	}
}

__global__ static void k_prelu_dx(int64_t n, int64_t C, int64_t inner, const float *x, const float *w,
				  const float *dy, float *dx)
{
	GRID_LOOP(i, n)
	dx[i] += x[i] > 0 ? dy[i] : w[(i / inner) % C] * dy[i];
}

/* one block per channel: dw[ch] += sum of x dy where x <= 0 (or NaN) */
__global__ static void k_prelu_dw(int64_t N, int64_t C, int64_t inner, const float *x, const float *dy,
				  float *dw)
{
	__shared__ double sh[THREADS];
	int64_t ch = blockIdx.x, M = N * inner;
	double acc = 0;
	for (int64_t e = threadIdx.x; e < M; e += THREADS) {
		int64_t j = ((e / inner) * C + ch) * inner + e % inner;
		if (!(x[j] > 0))
			acc += (double)x[j] * dy[j];
	}
	acc = block_sum(acc, sh);
	if (threadIdx.x == 0)
		dw[ch] += (float)acc;
}

extern "C" int fd_prelu_fwd_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t inner, const float *x,
				 const float *w, float *y)
{
	struct fd_cuda *g = gpu(c, "prelu_fwd");
	if (!g)
		return -1;
	int64_t n = N * C * inner;
	if (n <= 0)
		return 0;
	k_prelu_fwd<<<grid_for(n), THREADS, 0, g->stream>>>(n, C, inner, x, w, y);
	return launched(c, "prelu forward");
}

extern "C" int fd_prelu_bwd_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t inner, const float *x,
				 const float *w, const float *dy, float *dx, float *dw)
{
	struct fd_cuda *g = gpu(c, "prelu_bwd");
	if (!g)
		return -1;
	int64_t n = N * C * inner;
	if (n <= 0)
		return 0;
	if (dx) {
		k_prelu_dx<<<grid_for(n), THREADS, 0, g->stream>>>(n, C, inner, x, w, dy, dx);
		if (launched(c, "prelu backward (dx)") < 0)
			return -1;
	}
	if (dw) {
		k_prelu_dw<<<(unsigned)C, THREADS, 0, g->stream>>>(N, C, inner, x, dy, dw);
		if (launched(c, "prelu backward (dw)") < 0)
			return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- broadcast binary */

/* offset of output element k in an operand of strides st (shape s, last dim fastest) */
__device__ static inline int64_t bc_offset(const struct fd_bcast &bc, const int64_t *st, int64_t k)
{
	int64_t off = 0;
	for (int d = FD_MAXDIM - 1; d >= 0; d--) {
		int64_t i = k % bc.shape[d];
		k /= bc.shape[d];
		off += i * st[d];
	}
	return off;
}

__global__ static void k_bin_fwd(int op, struct fd_bcast bc, const float *a, const float *b, float *y)
{
	int same = bc.na == bc.n && bc.nb == bc.n;
	GRID_LOOP(k, bc.n)
	{
		float va = same ? a[k] : a[bc_offset(bc, bc.sa, k)];
		float vb = same ? b[k] : b[bc_offset(bc, bc.sb, k)];
		y[k] = op == FD_BIN_ADD ? va + vb : va * vb;
	}
}

/* x not broadcast (nx == n): each dx element receives exactly one term;
 * is_b: x is operand b (strides sb), the other one a */
__global__ static void k_bin_bwd_full(int op, struct fd_bcast bc, int is_b, const float *other,
				      const float *dy, float *dx)
{
	const int64_t *sx = is_b ? bc.sb : bc.sa, *so = is_b ? bc.sa : bc.sb;
	GRID_LOOP(k, bc.n)
	{
		int64_t ox = bc_offset(bc, sx, k);
		if (op == FD_BIN_ADD)
			dx[ox] += dy[k];
		else
			dx[ox] += dy[k] * other[bc_offset(bc, so, k)];
	}
}

/* dx[j] += sum over the R output positions that read x[j], in the CPU's
 * (lexicographic) order when one thread does a j; a block per j otherwise. */
struct bc_red {
	int64_t xs[FD_MAXDIM];  /* x's own extent per dim (1 where broadcast) */
	int64_t rs[FD_MAXDIM];  /* extent of the reduced dims (1 where x is not broadcast) */
	int64_t sy[FD_MAXDIM];  /* dy's strides */
	int64_t so[FD_MAXDIM];  /* the other operand's strides */
	int64_t nx, R;
};

__device__ static inline double red_term(int op, const struct bc_red &r, const float *other,
					 const float *dy, const int64_t *cx, int64_t q)
{
	int64_t py = 0, po = 0;
	for (int d = FD_MAXDIM - 1; d >= 0; d--) {
		int64_t i = r.rs[d] > 1 ? q % r.rs[d] : 0;
		if (r.rs[d] > 1)
			q /= r.rs[d];
		i += cx[d];
		py += i * r.sy[d];
		po += i * r.so[d];
	}
	return op == FD_BIN_ADD ? (double)dy[py] : (double)dy[py] * other[po];
}

__device__ static inline void red_coords(const struct bc_red &r, int64_t j, int64_t *cx)
{
	for (int d = FD_MAXDIM - 1; d >= 0; d--) {
		cx[d] = j % r.xs[d];
		j /= r.xs[d];
	}
}

__global__ static void k_bin_red_thread(int op, struct bc_red r, const float *other, const float *dy,
					float *dx)
{
	GRID_LOOP(j, r.nx)
	{
		int64_t cx[FD_MAXDIM];
		red_coords(r, j, cx);
		double acc = 0;
		for (int64_t q = 0; q < r.R; q++)
			acc += red_term(op, r, other, dy, cx, q);
		dx[j] += (float)acc;
	}
}

__global__ static void k_bin_red_block(int op, struct bc_red r, const float *other, const float *dy,
				       float *dx)
{
	__shared__ double sh[THREADS];
	for (int64_t j = blockIdx.x; j < r.nx; j += gridDim.x) {
		int64_t cx[FD_MAXDIM];
		red_coords(r, j, cx);
		double acc = 0;
		for (int64_t q = threadIdx.x; q < r.R; q += THREADS)
			acc += red_term(op, r, other, dy, cx, q);
		acc = block_sum(acc, sh);
		if (threadIdx.x == 0)
			dx[j] += (float)acc;
	}
}

extern "C" int fd_binary_fwd_cuda(struct fd_ctx *c, enum fd_binop op, const struct fd_bcast *bc,
			       const float *a, const float *b, float *y)
{
	struct fd_cuda *g = gpu(c, "binary_fwd");
	if (!g)
		return -1;
	if (bc->n <= 0)
		return 0;
	k_bin_fwd<<<grid_for(bc->n), THREADS, 0, g->stream>>>((int)op, *bc, a, b, y);
	return launched(c, op == FD_BIN_ADD ? "add" : "mul");
}

/* dx (the operand of strides sx, nx elements; `is_b` says which) += its
 * reduced gradient; `other` is the other operand, strides so. */
static int bin_reduce(struct fd_ctx *c, struct fd_cuda *g, enum fd_binop op, const struct fd_bcast *bc,
		      int is_b, const float *other, const float *dy, float *dx)
{
	const int64_t *sx = is_b ? bc->sb : bc->sa, *so = is_b ? bc->sa : bc->sb;
	int64_t nx = is_b ? bc->nb : bc->na;
	const char *what = op == FD_BIN_ADD ? "add backward" : "mul backward";
	if (nx == bc->n) {
		k_bin_bwd_full<<<grid_for(bc->n), THREADS, 0, g->stream>>>((int)op, *bc, is_b, other, dy, dx);
		return launched(c, what);
	}
	struct bc_red r;
	int64_t ry = 1;
	for (int d = FD_MAXDIM - 1; d >= 0; d--) {
		r.xs[d] = sx[d] ? bc->shape[d] : 1;
		r.rs[d] = sx[d] ? 1 : bc->shape[d];
		r.sy[d] = ry;
		ry *= bc->shape[d];
		r.so[d] = so[d];
	}
	r.nx = nx;
	r.R = bc->n / nx;
	if (r.R < 64) {
		k_bin_red_thread<<<grid_for(nx), THREADS, 0, g->stream>>>((int)op, r, other, dy, dx);
	} else {
		unsigned blocks = (unsigned)(nx < (1 << 20) ? nx : (1 << 20));
		k_bin_red_block<<<blocks, THREADS, 0, g->stream>>>((int)op, r, other, dy, dx);
	}
	return launched(c, what);
}

extern "C" int fd_binary_bwd_cuda(struct fd_ctx *c, enum fd_binop op, const struct fd_bcast *bc,
			       const float *a, const float *b, const float *dy, float *da, float *db)
{
	struct fd_cuda *g = gpu(c, "binary_bwd");
	if (!g)
		return -1;
	if (bc->n <= 0)
		return 0;
	if (da && bin_reduce(c, g, op, bc, 0, b, dy, da) < 0)
		return -1;
	if (db && bin_reduce(c, g, op, bc, 1, a, dy, db) < 0)
		return -1;
	return 0;
}

/* ---------------------------------------------------------------- softmax */

__global__ static void k_softmax_fwd(int64_t outer, int64_t C, int64_t inner, const float *x, float *y)
{
	GRID_LOOP(l, outer * inner)
	{
		int64_t o = l / inner, i = l % inner;
		const float *xp = x + o * C * inner + i;
		float *yp = y + o * C * inner + i;
		float m = xp[0];
		for (int64_t k = 1; k < C; k++)
			m = fmaxf(m, xp[k * inner]);
		double s = 0;
		for (int64_t k = 0; k < C; k++) {
			float e = expf(xp[k * inner] - m);
			yp[k * inner] = e;
			s += e;
		}
		float r = (float)(1.0 / s);
		for (int64_t k = 0; k < C; k++)
			yp[k * inner] *= r;
	}
}

__global__ static void k_softmax_bwd(int64_t outer, int64_t C, int64_t inner, const float *y,
				     const float *dy, float *dx)
{
	GRID_LOOP(l, outer * inner)
	{
		int64_t base = (l / inner) * C * inner + l % inner;
		double s = 0;
		for (int64_t k = 0; k < C; k++)
			s += (double)dy[base + k * inner] * y[base + k * inner];
		for (int64_t k = 0; k < C; k++)
			dx[base + k * inner] += y[base + k * inner] * (dy[base + k * inner] - (float)s);
	}
}

extern "C" int fd_softmax_fwd_cuda(struct fd_ctx *c, int64_t outer, int64_t C, int64_t inner,
				   const float *x, float *y)
{
	struct fd_cuda *g = gpu(c, "softmax_fwd");
	if (!g)
		return -1;
	if (outer * inner <= 0 || C <= 0)
		return 0;
	k_softmax_fwd<<<grid_for(outer * inner), THREADS, 0, g->stream>>>(outer, C, inner, x, y);
	return launched(c, "softmax forward");
}

extern "C" int fd_softmax_bwd_cuda(struct fd_ctx *c, int64_t outer, int64_t C, int64_t inner,
				   const float *y, const float *dy, float *dx)
{
	struct fd_cuda *g = gpu(c, "softmax_bwd");
	if (!g)
		return -1;
	if (outer * inner <= 0 || C <= 0)
		return 0;
	k_softmax_bwd<<<grid_for(outer * inner), THREADS, 0, g->stream>>>(outer, C, inner, y, dy, dx);
	return launched(c, "softmax backward");
}

/* ---------------------------------------------------------------- layernorm2d */

/* one thread per (n, position): statistics over C, double sums in C order */
__global__ static void k_ln_fwd(int64_t N, int64_t C, int64_t HW, float eps, const float *x,
				const float *w, const float *b, float *y, float *mean, float *rstd)
{
	GRID_LOOP(l, N * HW)
	{
		int64_t n = l / HW, p = l % HW;
		const float *xn = x + n * C * HW + p;
		double s = 0, v = 0;
		for (int64_t ch = 0; ch < C; ch++)
			s += xn[ch * HW];
		s /= (double)C;
		for (int64_t ch = 0; ch < C; ch++) {
			double d = xn[ch * HW] - s;
			v += d * d;
		}
		float m = (float)s, r = (float)(1.0 / sqrt(v / (double)C + (double)eps));
		mean[l] = m;
		rstd[l] = r;
		float *yn = y + n * C * HW + p;
		for (int64_t ch = 0; ch < C; ch++)
			yn[ch * HW] = (xn[ch * HW] - m) * r * w[ch] + b[ch];
	}
}

/* one block per channel: dw, db */
__global__ static void k_ln_dwdb(int64_t N, int64_t C, int64_t HW, const float *x, const float *mean,
				 const float *rstd, const float *dy, float *dw, float *db)
{
	__shared__ double sh[THREADS];
	int64_t ch = blockIdx.x, M = N * HW;
	double sw = 0, sb = 0;
	for (int64_t e = threadIdx.x; e < M; e += THREADS) {
		int64_t n = e / HW, p = e % HW, j = (n * C + ch) * HW + p;
		float g = dy[j];
		sw += (double)g * ((x[j] - mean[e]) * rstd[e]);
		sb += g;
	}
	sw = block_sum(sw, sh);
	sb = block_sum(sb, sh);
	if (threadIdx.x == 0) {
		if (dw)
			dw[ch] += (float)sw;
		if (db)
			db[ch] += (float)sb;
	}
}

__global__ static void k_ln_dx(int64_t N, int64_t C, int64_t HW, const float *x, const float *w,
			       const float *mean, const float *rstd, const float *dy, float *dx)
{
	GRID_LOOP(l, N * HW)
	{
		int64_t n = l / HW, p = l % HW;
		const float *xn = x + n * C * HW + p, *gn = dy + n * C * HW + p;
		float m = mean[l], r = rstd[l];
		double sg = 0, sgx = 0;
		for (int64_t ch = 0; ch < C; ch++) {
			double gg = (double)gn[ch * HW] * w[ch];
			sg += gg;
			sgx += gg * ((xn[ch * HW] - m) * r);
		}
		float a = (float)(sg / (double)C), bq = (float)(sgx / (double)C);
		float *dn = dx + n * C * HW + p;
		for (int64_t ch = 0; ch < C; ch++) {
			float xh = (xn[ch * HW] - m) * r;
			dn[ch * HW] += r * (gn[ch * HW] * w[ch] - a - xh * bq);
		}
	}
}

extern "C" int fd_layernorm2d_fwd_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, float eps,
				const float *x, const float *w, const float *b, float *y, float *mean,
				float *rstd)
{
	struct fd_cuda *g = gpu(c, "layernorm2d_fwd");
	if (!g)
		return -1;
	if (N * HW <= 0 || C <= 0)
		return 0;
	k_ln_fwd<<<grid_for(N * HW), THREADS, 0, g->stream>>>(N, C, HW, eps, x, w, b, y, mean, rstd);
	return launched(c, "layernorm2d forward");
}

extern "C" int fd_layernorm2d_bwd_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
				const float *w, const float *mean, const float *rstd, const float *dy,
				float *dx, float *dw, float *db)
{
	struct fd_cuda *g = gpu(c, "layernorm2d_bwd");
	if (!g)
		return -1;
	if (N * HW <= 0 || C <= 0)
		return 0;
	if (dw || db) {
		k_ln_dwdb<<<(unsigned)C, THREADS, 0, g->stream>>>(N, C, HW, x, mean, rstd, dy, dw, db);
		if (launched(c, "layernorm2d backward (dw, db)") < 0)
			return -1;
	}
	if (dx) {
		k_ln_dx<<<grid_for(N * HW), THREADS, 0, g->stream>>>(N, C, HW, x, w, mean, rstd, dy, dx);
		if (launched(c, "layernorm2d backward (dx)") < 0)
			return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- dropout, rowscale */

/* Philox4x32-10, word for word lib/core/fd_rng.c's fd_philox */
__device__ static void philox(uint64_t seed, uint64_t stream, uint64_t ctr, uint32_t out[4])
{
	uint32_t c0 = (uint32_t)ctr, c1 = (uint32_t)(ctr >> 32);
	uint32_t c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
	uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
	for (int i = 0; i < 10; i++) {
		uint64_t p0 = (uint64_t)0xD2511F53u * c0;
		uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
		uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
		uint32_t n1 = (uint32_t)p1;
		uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
		uint32_t n3 = (uint32_t)p0;
		c0 = n0, c1 = n1, c2 = n2, c3 = n3;
		k0 += 0x9E3779B9u;
		k1 += 0xBB67AE85u;
	}
	out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

/* one thread per Philox block of 4 elements, as dropout.c */
__global__ static void k_dropout_fwd(int64_t n, double q, float scale, uint64_t seed, uint64_t stream,
				     const float *x, float *y, uint8_t *keep)
{
	GRID_LOOP(blk, (n + 3) / 4)
	{
		uint32_t r[4];
		philox(seed, stream, (uint64_t)blk, r);
		for (int k = 0; k < 4 && blk * 4 + k < n; k++) {
			int64_t i = blk * 4 + k;
			uint8_t kp = (double)r[k] * (1.0 / 4294967296.0) < q;
			keep[i] = kp;
			y[i] = kp ? x[i] * scale : 0.0f;
		}
	}
}

__global__ static void k_dropout_bwd(int64_t n, float scale, const uint8_t *keep, const float *dy,
				     float *dx)
{
	GRID_LOOP(i, n)
	dx[i] += keep[i] ? dy[i] * scale : 0.0f;
}

extern "C" int fd_dropout_fwd_cuda(struct fd_ctx *c, int64_t n, float p, uint64_t seed, uint64_t stream,
				   const float *x, float *y, uint8_t *keep)
{
	struct fd_cuda *g = gpu(c, "dropout_fwd");
	if (!g)
		return -1;
	if (n <= 0)
		return 0;
	double q = 1.0 - (double)p;
	float scale = p < 1.0f ? (float)(1.0 / q) : 0.0f;
	k_dropout_fwd<<<grid_for((n + 3) / 4), THREADS, 0, g->stream>>>(n, q, scale, seed, stream, x, y, keep);
	return launched(c, "dropout forward");
}

extern "C" int fd_dropout_bwd_cuda(struct fd_ctx *c, int64_t n, float scale, const uint8_t *keep,
				   const float *dy, float *dx)
{
	struct fd_cuda *g = gpu(c, "dropout_bwd");
	if (!g)
		return -1;
	if (n <= 0)
		return 0;
	k_dropout_bwd<<<grid_for(n), THREADS, 0, g->stream>>>(n, scale, keep, dy, dx);
	return launched(c, "dropout backward");
}

__global__ static void k_rowscale(int64_t rows, int64_t inner, const float *f, const float *x, float *y,
				  int add)
{
	GRID_LOOP(i, rows * inner)
	{
		float v = x[i] * f[i / inner];
		if (add)
			y[i] += v;
		else
			y[i] = v;
	}
}

/* f (host, rows floats) goes to the scratch block first */
static int rowscale(struct fd_ctx *c, const char *what, int64_t rows, int64_t inner, const float *f,
		    const float *x, float *y, int add)
{
	struct fd_cuda *g = gpu(c, what);
	if (!g)
		return -1;
	if (rows * inner <= 0)
		return 0;
	if (scratch(c, g, (size_t)rows * sizeof *f, what) < 0)
		return -1;
	CK(c, what, cudaMemcpyAsync(g->scratch, f, (size_t)rows * sizeof *f, cudaMemcpyHostToDevice, g->stream));
	k_rowscale<<<grid_for(rows * inner), THREADS, 0, g->stream>>>(rows, inner, (const float *)g->scratch,
								     x, y, add);
	return launched(c, what);
}

extern "C" int fd_rowscale_fwd_cuda(struct fd_ctx *c, int64_t rows, int64_t inner, const float *f,
				    const float *x, float *y)
{
	return rowscale(c, "rowscale_fwd", rows, inner, f, x, y, 0);
}

extern "C" int fd_rowscale_bwd_cuda(struct fd_ctx *c, int64_t rows, int64_t inner, const float *f,
				    const float *dy, float *dx)
{
	return rowscale(c, "rowscale_bwd", rows, inner, f, dy, dx, 1);
}

/* ---------------------------------------------------------------- losses */

#define RED_BLOCKS 256

__global__ static void k_bce_partial(int64_t n, const float *x, const float *t, double *part)
{
	__shared__ double sh[THREADS];
	double s = 0;
	GRID_LOOP(i, n)
	{
		double v = x[i];
		s += (v > 0 ? v : 0) - v * t[i] + log1p(exp(-fabs(v)));
	}
	s = block_sum(s, sh);
	if (threadIdx.x == 0)
		part[blockIdx.x] = s;
}

/* one block: out[0] = sum of part[0..m) in a fixed order */
__global__ static void k_sum_parts(int64_t m, const double *part, double *out)
{
	__shared__ double sh[THREADS];
	double s = 0;
	for (int64_t i = threadIdx.x; i < m; i += THREADS)
		s += part[i];
	s = block_sum(s, sh);
	if (threadIdx.x == 0)
		out[0] = s;
}

/* sum the m partials at scratch[0..m) into a host double (synchronises) */
static int finish_sum(struct fd_ctx *c, struct fd_cuda *g, int64_t m, const char *what, double *sum)
{
	double *part = (double *)g->scratch;
	k_sum_parts<<<1, THREADS, 0, g->stream>>>(m, part, part + m);
	if (launched(c, what) < 0)
		return -1;
	CK(c, what, cudaMemcpyAsync(sum, part + m, sizeof *sum, cudaMemcpyDeviceToHost, g->stream));
	CK(c, what, cudaStreamSynchronize(g->stream));
	return 0;
}

extern "C" int fd_bce_fwd_cuda(struct fd_ctx *c, int64_t n, const float *x, const float *t, double *loss)
{
	const char *what = "bce_with_logits forward";
	struct fd_cuda *g = gpu(c, "bce_fwd");
	if (!g)
		return -1;
	if (n <= 0) {
		fd_fail(c, "%s: no elements", what);
		return -1;
	}
	unsigned blocks = grid_for(n) < RED_BLOCKS ? grid_for(n) : RED_BLOCKS;
	if (scratch(c, g, (blocks + 1) * sizeof(double), what) < 0)
		return -1;
	k_bce_partial<<<blocks, THREADS, 0, g->stream>>>(n, x, t, (double *)g->scratch);
	double s;
	if (launched(c, what) < 0 || finish_sum(c, g, blocks, what, &s) < 0)
		return -1;
	*loss = s / (double)n;
	return 0;
}

__global__ static void k_bce_bwd(int64_t n, const float *x, const float *t, float k, float *dx)
{
	GRID_LOOP(i, n)
	dx[i] += k * (1.0f / (1.0f + expf(-x[i])) - t[i]);
}

extern "C" int fd_bce_bwd_cuda(struct fd_ctx *c, int64_t n, const float *x, const float *t, float g_,
			       float *dx)
{
	struct fd_cuda *g = gpu(c, "bce_bwd");
	if (!g)
		return -1;
	if (n <= 0)
		return 0;
	k_bce_bwd<<<grid_for(n), THREADS, 0, g->stream>>>(n, x, t, g_ / (float)n, dx);
	return launched(c, "bce_with_logits backward");
}

/* one thread per row: probabilities and the row's loss (NaN for a label
 * outside [0, K), which the host-side op refuses before this runs) */
__global__ static void k_ce_fwd(int64_t N, int64_t K, const float *x, const int32_t *label, float *prob,
				double *rowloss)
{
	GRID_LOOP(n, N)
	{
		const float *xp = x + n * K;
		float m = xp[0];
		for (int64_t k = 1; k < K; k++)
			m = fmaxf(m, xp[k]);
		double z = 0;
		for (int64_t k = 0; k < K; k++)
			z += exp((double)xp[k] - m);
		for (int64_t k = 0; k < K; k++)
			prob[n * K + k] = (float)(exp((double)xp[k] - m) / z);
		int32_t l = label[n];
		rowloss[n] = l >= 0 && l < K ? log(z) + m - xp[l] : (double)NAN;
	}
}

extern "C" int fd_ce_fwd_cuda(struct fd_ctx *c, int64_t N, int64_t K, const float *x,
			      const int32_t *label, float *prob, double *loss)
{
	const char *what = "cross_entropy forward";
	struct fd_cuda *g = gpu(c, "ce_fwd");
	if (!g)
		return -1;
	if (N <= 0 || K <= 0) {
		fd_fail(c, "%s: N=%lld K=%lld", what, (long long)N, (long long)K);
		return -1;
	}
	if (scratch(c, g, (size_t)(N + 1) * sizeof(double), what) < 0)
		return -1;
	k_ce_fwd<<<grid_for(N), THREADS, 0, g->stream>>>(N, K, x, label, prob, (double *)g->scratch);
	double s;
	if (launched(c, what) < 0 || finish_sum(c, g, N, what, &s) < 0)
		return -1;
	*loss = s / (double)N;
	return 0;
}

__global__ static void k_ce_bwd(int64_t N, int64_t K, const float *prob, const int32_t *label, float k,
				float *dx)
{
	GRID_LOOP(i, N * K)
	{
		int64_t n = i / K, j = i % K;
		dx[i] += k * (prob[i] - (j == label[n] ? 1.0f : 0.0f));
	}
}

extern "C" int fd_ce_bwd_cuda(struct fd_ctx *c, int64_t N, int64_t K, const float *prob,
			      const int32_t *label, float g_, float *dx)
{
	struct fd_cuda *g = gpu(c, "ce_bwd");
	if (!g)
		return -1;
	if (N * K <= 0)
		return 0;
	k_ce_bwd<<<grid_for(N * K), THREADS, 0, g->stream>>>(N, K, prob, label, g_ / (float)N, dx);
	return launched(c, "cross_entropy backward");
}

/* ---------------------------------------------------------------- per-channel helpers */

/* y[(n*C + ch)*HW + p] += b[ch] */
__global__ static void k_add_bias(int64_t n, int64_t C, int64_t HW, const float *b, float *y)
{
	GRID_LOOP(i, n)
	y[i] += b[(i / HW) % C];
}

/* one block per channel: db[ch] += sum over N and HW of dy, in double */
__global__ static void k_chan_sum(int64_t N, int64_t C, int64_t HW, const float *dy, float *db)
{
	__shared__ double sh[THREADS];
	int64_t ch = blockIdx.x, M = N * HW;
	double s = 0;
	for (int64_t e = threadIdx.x; e < M; e += THREADS)
		s += dy[((e / HW) * C + ch) * HW + e % HW];
	s = block_sum(s, sh);
	if (threadIdx.x == 0)
		db[ch] += (float)s;
}

/* ---------------------------------------------------------------- conv2d (cuDNN) */

struct cuda_conv {
	struct fd_conv2d_shape s;
	int Ho, Wo;
	cudnnTensorDescriptor_t xd, yd;
	cudnnFilterDescriptor_t wd;
	cudnnConvolutionDescriptor_t cd;
	cudnnConvolutionFwdAlgo_t fwd;
	cudnnConvolutionBwdDataAlgo_t bwd_data;
	cudnnConvolutionBwdFilterAlgo_t bwd_filter;
	size_t ws_fwd, ws_data, ws_filter;
	char what[160]; /* "conv2d N=.. C=.. ..." for messages */
};

/* Algorithms cuDNN may hand out with tensor-core (TF32) math are refused:
 * fp32 here means fp32 products (doc/cuda.md). */
static int plain_math(cudnnMathType_t m)
{
	return m != CUDNN_TENSOR_OP_MATH && m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

/* Workspace a single plan may ask for; an algorithm wanting more is skipped. */
#define CONV_WS_MAX ((size_t)1 << 30)

/* Index of the heuristics' first successful plain-math algorithm within the
 * workspace limit, a deterministic one if any is offered; -1 when none. */
template <typename Perf> static int pick_algo(const Perf *perf, int n)
{
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < n; i++)
			if (perf[i].status == CUDNN_STATUS_SUCCESS && plain_math(perf[i].mathType) &&
			    perf[i].memory <= CONV_WS_MAX &&
			    (pass == 1 || perf[i].determinism == CUDNN_DETERMINISTIC))
				return i;
	return -1;
}

extern "C" void fd_conv2d_plan_free_cuda(void *plan)
{
	struct cuda_conv *p = (struct cuda_conv *)plan;
	if (!p)
		return;
	/* descriptors only hold host memory; their statuses carry nothing to act on */
	if (p->xd)
		cudnnDestroyTensorDescriptor(p->xd);
	if (p->yd)
		cudnnDestroyTensorDescriptor(p->yd);
	if (p->wd)
		cudnnDestroyFilterDescriptor(p->wd);
	if (p->cd)
		cudnnDestroyConvolutionDescriptor(p->cd);
	free(p);
}

static int conv_plan(struct fd_ctx *c, struct fd_cuda *g, struct cuda_conv *p)
{
	const struct fd_conv2d_shape *s = &p->s;
	const char *w = p->what;
	CKD(c, w, cudnnCreateTensorDescriptor(&p->xd));
	CKD(c, w, cudnnCreateTensorDescriptor(&p->yd));
	CKD(c, w, cudnnCreateFilterDescriptor(&p->wd));
	CKD(c, w, cudnnCreateConvolutionDescriptor(&p->cd));
	CKD(c, w, cudnnSetTensor4dDescriptor(p->xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->N, s->C, s->H, s->W));
	CKD(c, w, cudnnSetTensor4dDescriptor(p->yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->N, s->K, p->Ho, p->Wo));
	CKD(c, w, cudnnSetFilter4dDescriptor(p->wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s->K, s->C / s->groups,
					     s->kh, s->kw));
	CKD(c, w, cudnnSetConvolution2dDescriptor(p->cd, s->ph, s->pw, s->sh, s->sw, s->dh, s->dw,
						  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
	CKD(c, w, cudnnSetConvolutionGroupCount(p->cd, s->groups));
	CKD(c, w, cudnnSetConvolutionMathType(p->cd, CUDNN_FMA_MATH));
	int n, k, h, wo;
	CKD(c, w, cudnnGetConvolution2dForwardOutputDim(p->cd, p->xd, p->wd, &n, &k, &h, &wo));
	if (n != s->N || k != s->K || h != p->Ho || wo != p->Wo) {
		fd_fail(c, "%s: cuDNN output %dx%dx%dx%d, PyTorch's is %dx%dx%dx%d", w, n, k, h, wo, s->N, s->K,
			p->Ho, p->Wo);
		return -1;
	}

	int got, at;
	cudnnConvolutionFwdAlgoPerf_t pf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
	CKD(c, w, cudnnGetConvolutionForwardAlgorithm_v7(g->dnn, p->xd, p->wd, p->cd, p->yd,
							 CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, pf));
	at = pick_algo(pf, got);
	if (at < 0) {
		fd_fail(c, "%s: cuDNN offers no fp32 (non-TF32) forward algorithm", w);
		return -1;
	}
	p->fwd = pf[at].algo;
	CKD(c, w, cudnnGetConvolutionForwardWorkspaceSize(g->dnn, p->xd, p->wd, p->cd, p->yd, p->fwd, &p->ws_fwd));

	cudnnConvolutionBwdDataAlgoPerf_t pd[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
	CKD(c, w, cudnnGetConvolutionBackwardDataAlgorithm_v7(g->dnn, p->wd, p->yd, p->cd, p->xd,
							      CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &got, pd));
	at = pick_algo(pd, got);
	if (at < 0) {
		fd_fail(c, "%s: cuDNN offers no fp32 (non-TF32) backward-data algorithm", w);
		return -1;
	}
	p->bwd_data = pd[at].algo;
	CKD(c, w, cudnnGetConvolutionBackwardDataWorkspaceSize(g->dnn, p->wd, p->yd, p->cd, p->xd, p->bwd_data,
							       &p->ws_data));

	cudnnConvolutionBwdFilterAlgoPerf_t pw[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
	CKD(c, w, cudnnGetConvolutionBackwardFilterAlgorithm_v7(g->dnn, p->xd, p->yd, p->cd, p->wd,
								CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &got, pw));
	at = pick_algo(pw, got);
	if (at < 0) {
		fd_fail(c, "%s: cuDNN offers no fp32 (non-TF32) backward-filter algorithm", w);
		return -1;
	}
	p->bwd_filter = pw[at].algo;
	CKD(c, w, cudnnGetConvolutionBackwardFilterWorkspaceSize(g->dnn, p->xd, p->yd, p->cd, p->wd,
								 p->bwd_filter, &p->ws_filter));

	size_t need = p->ws_fwd;
	need = p->ws_data > need ? p->ws_data : need;
	need = p->ws_filter > need ? p->ws_filter : need;
	if (need > g->ws_size) {
		/* plans are made before the step's kernels: growing here costs one sync */
		CK(c, w, cudaStreamSynchronize(g->stream));
		CK(c, w, cudaFree(g->ws));
		g->ws = NULL;
		g->ws_size = 0;
		CK(c, w, cudaMalloc(&g->ws, need));
		g->ws_size = need;
	}
	return 0;
}

extern "C" int fd_conv2d_plan_cuda(struct fd_ctx *c, const struct fd_conv2d_shape *s, void **plan)
{
	*plan = NULL;
	struct fd_cuda *g = gpu(c, "conv2d_plan");
	if (!g)
		return -1;
	struct fd_err e = {{0}};
	int Ho, Wo;
	if (fd_conv2d_out_size(s, &Ho, &Wo, &e) < 0)
		return ctx_fail(c, &e);
	struct cuda_conv *p = (struct cuda_conv *)calloc(1, sizeof *p);
	if (!p) {
		fd_fail(c, "conv2d plan: out of memory");
		return -1;
	}
	p->s = *s;
	p->Ho = Ho;
	p->Wo = Wo;
	snprintf(p->what, sizeof p->what,
		 "conv2d N=%d C=%d H=%d W=%d K=%d k=%dx%d s=%d,%d p=%d,%d d=%d,%d g=%d on cuda", s->N, s->C, s->H,
		 s->W, s->K, s->kh, s->kw, s->sh, s->sw, s->ph, s->pw, s->dh, s->dw, s->groups);
	if (conv_plan(c, g, p) < 0) {
		fd_conv2d_plan_free_cuda(p);
		return -1;
	}
	*plan = p;
	return 0;
}

extern "C" int fd_conv2d_fwd_cuda(struct fd_ctx *c, void *plan, const float *x, const float *w,
				  const float *b, float *y)
{
	struct cuda_conv *p = (struct cuda_conv *)plan;
	struct fd_cuda *g = gpu(c, "conv2d_fwd");
	if (!g)
		return -1;
	const float one = 1.0f, zero = 0.0f;
	CKD(c, p->what, cudnnConvolutionForward(g->dnn, &one, p->xd, x, p->wd, w, p->cd, p->fwd, g->ws, p->ws_fwd,
						&zero, p->yd, y));
	if (p->s.bias && b) {
		int64_t HW = (int64_t)p->Ho * p->Wo, n = (int64_t)p->s.N * p->s.K * HW;
		k_add_bias<<<grid_for(n), THREADS, 0, g->stream>>>(n, p->s.K, HW, b, y);
		return launched(c, p->what);
	}
	return 0;
}

extern "C" int fd_conv2d_bwd_cuda(struct fd_ctx *c, void *plan, const float *x, const float *w,
				  const float *dy, float *dx, float *dw, float *db)
{
	struct cuda_conv *p = (struct cuda_conv *)plan;
	struct fd_cuda *g = gpu(c, "conv2d_bwd");
	if (!g)
		return -1;
	const float one = 1.0f; /* beta 1: cuDNN adds into dx and dw */
	if (dx)
		CKD(c, p->what, cudnnConvolutionBackwardData(g->dnn, &one, p->wd, w, p->yd, dy, p->cd, p->bwd_data,
							     g->ws, p->ws_data, &one, p->xd, dx));
	if (dw)
		CKD(c, p->what, cudnnConvolutionBackwardFilter(g->dnn, &one, p->xd, x, p->yd, dy, p->cd,
							       p->bwd_filter, g->ws, p->ws_filter, &one, p->wd,
							       dw));
	if (p->s.bias && db) {
		k_chan_sum<<<(unsigned)p->s.K, THREADS, 0, g->stream>>>(p->s.N, p->s.K, (int64_t)p->Ho * p->Wo,
									 dy, db);
		return launched(c, p->what);
	}
	return 0;
}

/* ---------------------------------------------------------------- linear (cuBLAS) */

static int int_sizes(struct fd_ctx *c, const char *op, int64_t a, int64_t b, int64_t d)
{
	if (a < 1 || b < 1 || d < 1 || a > INT32_MAX || b > INT32_MAX || d > INT32_MAX) {
		fd_fail(c, "%s: sizes %lld, %lld, %lld must lie in [1, 2^31)", op, (long long)a, (long long)b,
			(long long)d);
		return -1;
	}
	return 0;
}

/* y[n, o] = b[o] */
__global__ static void k_rows_of(int64_t N, int64_t out, const float *b, float *y)
{
	GRID_LOOP(i, N * out)
	y[i] = b[i % out];
}

/* db[o] += sum over n of dy[n, o], one float sum per column in n order (as linear.c) */
__global__ static void k_col_sum(int64_t N, int64_t out, const float *dy, float *db)
{
	GRID_LOOP(o, out)
	{
		float s = 0;
		for (int64_t n = 0; n < N; n++)
			s += dy[n * out + o];
		db[o] += s;
	}
}

extern "C" int fd_linear_fwd_cuda(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
				  const float *w, const float *b, float *y)
{
	const char *what = "linear forward";
	struct fd_cuda *g = gpu(c, "linear_fwd");
	if (!g || int_sizes(c, what, N, in, out) < 0)
		return -1;
	float one = 1.0f, beta = 0.0f;
	if (b) {
		k_rows_of<<<grid_for(N * out), THREADS, 0, g->stream>>>(N, out, b, y);
		if (launched(c, what) < 0)
			return -1;
		beta = 1.0f;
	}
	/* column-major view: y^T [out, N] = w [out, in] (stored as w^T, ld in) op T x^T [in, N] */
	CKB(c, what, cublasSgemm(g->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)out, (int)N, (int)in, &one, w, (int)in,
				 x, (int)in, &beta, y, (int)out));
	return 0;
}

extern "C" int fd_linear_bwd_cuda(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
				  const float *w, const float *dy, float *dx, float *dw, float *db)
{
	const char *what = "linear backward";
	struct fd_cuda *g = gpu(c, "linear_bwd");
	if (!g || int_sizes(c, what, N, in, out) < 0)
		return -1;
	float one = 1.0f;
	/* dx^T [in, N] += w^T [in, out] dy^T [out, N] */
	if (dx)
		CKB(c, what, cublasSgemm(g->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)in, (int)N, (int)out, &one, w,
					 (int)in, dy, (int)out, &one, dx, (int)in));
	/* dw^T [in, out] += x^T [in, N] (dy^T [out, N])^T */
	if (dw)
		CKB(c, what, cublasSgemm(g->blas, CUBLAS_OP_N, CUBLAS_OP_T, (int)in, (int)out, (int)N, &one, x,
					 (int)in, dy, (int)out, &one, dw, (int)in));
	if (db) {
		k_col_sum<<<grid_for(out), THREADS, 0, g->stream>>>(N, out, dy, db);
		return launched(c, what);
	}
	return 0;
}

/* ---------------------------------------------------------------- batchnorm2d */

#define BN_AT(e) ((((e) / HW) * C + ch) * HW + (e) % HW)

/* one block per channel; the arithmetic of batchnorm2d.c (double sums, two
 * passes, float affine) with the sums in a different but fixed order */
__global__ static void k_bn_fwd_train(int64_t N, int64_t C, int64_t HW, const float *x, const float *w,
				      const float *b, float *rmean, float *rvar, double momentum, double eps,
				      float *y, float *save_mean, float *save_invstd)
{
	__shared__ double sh[THREADS];
	int64_t ch = blockIdx.x, Me = N * HW;
	double M = (double)N * HW;
	double s = 0;
	for (int64_t e = threadIdx.x; e < Me; e += THREADS)
		s += x[BN_AT(e)];
	double mean = block_sum(s, sh) / M;
	double s2 = 0;
	for (int64_t e = threadIdx.x; e < Me; e += THREADS) {
		double d = x[BN_AT(e)] - mean;
		s2 += d * d;
	}
	double var = block_sum(s2, sh) / M, invstd = 1.0 / sqrt(var + eps);
	float a = (float)(w[ch] * invstd), bb = (float)(b[ch] - mean * w[ch] * invstd);
	for (int64_t e = threadIdx.x; e < Me; e += THREADS)
		y[BN_AT(e)] = x[BN_AT(e)] * a + bb;
	if (threadIdx.x == 0) {
		rmean[ch] = (float)((1 - momentum) * rmean[ch] + momentum * mean);
		rvar[ch] = (float)((1 - momentum) * rvar[ch] + momentum * var * M / (M - 1));
		save_mean[ch] = (float)mean;
		save_invstd[ch] = (float)invstd;
	}
}

/* sum(dy) and sum(dy * (x - mean)) of channel ch, in double */
__device__ static void bn_dy_sums(int64_t N, int64_t C, int64_t HW, int64_t ch, const float *dy,
				  const float *x, double mean, double *sh, double *sdy, double *sdyx)
{
	double a = 0, b = 0;
	for (int64_t e = threadIdx.x; e < N * HW; e += THREADS) {
		float g = dy[BN_AT(e)];
		a += g;
		b += g * (x[BN_AT(e)] - mean);
	}
	*sdy = block_sum(a, sh);
	*sdyx = block_sum(b, sh);
}

__global__ static void k_bn_bwd_train(int64_t N, int64_t C, int64_t HW, const float *x, const float *w,
				      const float *save_mean, const float *save_invstd, const float *dy,
				      float *dx, float *dw, float *db)
{
	__shared__ double sh[THREADS];
	int64_t ch = blockIdx.x;
	double M = (double)N * HW, mean = save_mean[ch], invstd = save_invstd[ch], sdy, sdyx;
	bn_dy_sums(N, C, HW, ch, dy, x, mean, sh, &sdy, &sdyx);
	if (threadIdx.x == 0) {
		if (dw)
			dw[ch] += (float)(sdyx * invstd);
		if (db)
			db[ch] += (float)sdy;
	}
	if (!dx)
		return;
	float k = (float)(w[ch] * invstd);
	float cm = (float)(sdy / M), cx = (float)(invstd * invstd * sdyx / M);
	float fmean = (float)mean;
	for (int64_t e = threadIdx.x; e < N * HW; e += THREADS) {
		int64_t j = BN_AT(e);
		dx[j] += k * (dy[j] - cm - (x[j] - fmean) * cx);
	}
}

/* eval: per element, the channel's coefficients as batchnorm2d.c makes them */
__global__ static void k_bn_fwd_eval(int64_t n, int64_t C, int64_t HW, const float *x, const float *w,
				     const float *b, const float *rmean, const float *rvar, double eps, float *y)
{
	GRID_LOOP(i, n)
	{
		int64_t ch = (i / HW) % C;
		double invstd = 1.0 / sqrt((double)rvar[ch] + eps);
		float a = (float)(w[ch] * invstd);
		float bb = (float)(b[ch] - rmean[ch] * w[ch] * invstd);
		y[i] = x[i] * a + bb;
	}
}

__global__ static void k_bn_eval_dwdb(int64_t N, int64_t C, int64_t HW, const float *x, const float *rmean,
				      const float *rvar, double eps, const float *dy, float *dw, float *db)
{
	__shared__ double sh[THREADS];
	int64_t ch = blockIdx.x;
	double invstd = 1.0 / sqrt((double)rvar[ch] + eps), sdy, sdyx;
	bn_dy_sums(N, C, HW, ch, dy, x, rmean[ch], sh, &sdy, &sdyx);
	if (threadIdx.x == 0) {
		if (dw)
			dw[ch] += (float)(sdyx * invstd);
		if (db)
			db[ch] += (float)sdy;
	}
}

__global__ static void k_bn_eval_dx(int64_t n, int64_t C, int64_t HW, const float *w, const float *rvar,
				    double eps, const float *dy, float *dx)
{
	GRID_LOOP(i, n)
	{
		int64_t ch = (i / HW) % C;
		double invstd = 1.0 / sqrt((double)rvar[ch] + eps);
		float k = (float)(w[ch] * invstd);
		dx[i] += k * dy[i];
	}
}

extern "C" int fd_batchnorm2d_fwd_train_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
				    const float *w, const float *b, float *rmean, float *rvar,
				    double momentum, double eps, float *y, float *mean, float *invstd)
{
	const char *what = "batchnorm2d forward (train)";
	struct fd_cuda *g = gpu(c, "batchnorm2d_fwd_train");
	if (!g || int_sizes(c, what, N, C, HW) < 0)
		return -1;
	if (N * HW < 2) {
		fd_fail(c, "batchnorm2d N=%lld C=%lld HW=%lld: training needs more than 1 value per channel",
			(long long)N, (long long)C, (long long)HW);
		return -1;
	}
	k_bn_fwd_train<<<(unsigned)C, THREADS, 0, g->stream>>>(N, C, HW, x, w, b, rmean, rvar, momentum, eps, y,
								mean, invstd);
	return launched(c, what);
}

extern "C" int fd_batchnorm2d_bwd_train_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
				    const float *w, const float *mean, const float *invstd, const float *dy,
				    float *dx, float *dw, float *db)
{
	const char *what = "batchnorm2d backward (train)";
	struct fd_cuda *g = gpu(c, "batchnorm2d_bwd_train");
	if (!g || int_sizes(c, what, N, C, HW) < 0)
		return -1;
	if (!dx && !dw && !db)
		return 0;
	k_bn_bwd_train<<<(unsigned)C, THREADS, 0, g->stream>>>(N, C, HW, x, w, mean, invstd, dy, dx, dw, db);
	return launched(c, what);
}

extern "C" int fd_batchnorm2d_fwd_eval_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
				   const float *w, const float *b, const float *rmean, const float *rvar,
				   double eps, float *y)
{
	const char *what = "batchnorm2d forward (eval)";
	struct fd_cuda *g = gpu(c, "batchnorm2d_fwd_eval");
	if (!g || int_sizes(c, what, N, C, HW) < 0)
		return -1;
	int64_t n = N * C * HW;
	k_bn_fwd_eval<<<grid_for(n), THREADS, 0, g->stream>>>(n, C, HW, x, w, b, rmean, rvar, eps, y);
	return launched(c, what);
}

extern "C" int fd_batchnorm2d_bwd_eval_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
				   const float *w, const float *rmean, const float *rvar, double eps,
				   const float *dy, float *dx, float *dw, float *db)
{
	const char *what = "batchnorm2d backward (eval)";
	struct fd_cuda *g = gpu(c, "batchnorm2d_bwd_eval");
	if (!g || int_sizes(c, what, N, C, HW) < 0)
		return -1;
	if (dw || db) {
		k_bn_eval_dwdb<<<(unsigned)C, THREADS, 0, g->stream>>>(N, C, HW, x, rmean, rvar, eps, dy, dw, db);
		if (launched(c, what) < 0)
			return -1;
	}
	if (dx) {
		int64_t n = N * C * HW;
		k_bn_eval_dx<<<grid_for(n), THREADS, 0, g->stream>>>(n, C, HW, w, rvar, eps, dy, dx);
		return launched(c, what);
	}
	return 0;
}

/* ---------------------------------------------------------------- pooling */

struct pool_geo {
	struct fd_pool2d_shape s;
	int Ho, Wo;
};

__device__ static inline int imin_d(int a, int b) { return a < b ? a : b; }
__device__ static inline int imax_d(int a, int b) { return a > b ? a : b; }

/* one thread per output: pool2d.c's scan order and NaN rule */
__global__ static void k_maxpool_fwd(struct pool_geo q, const float *x, float *y, int32_t *idx)
{
	const struct fd_pool2d_shape &s = q.s;
	int64_t n = (int64_t)s.N * s.C * q.Ho * q.Wo;
	GRID_LOOP(o, n)
	{
		int ow = (int)(o % q.Wo), oh = (int)((o / q.Wo) % q.Ho);
		int64_t pl = o / ((int64_t)q.Ho * q.Wo);
		const float *xp = x + pl * s.H * s.W;
		int h0 = oh * s.sh - s.ph, h1 = imin_d(h0 + s.kh, s.H);
		int w0 = ow * s.sw - s.pw, w1 = imin_d(w0 + s.kw, s.W);
		h0 = imax_d(h0, 0);
		w0 = imax_d(w0, 0);
		float m = -INFINITY;
		int32_t mi = h0 * s.W + w0;
		for (int ih = h0; ih < h1; ih++)
			for (int iw = w0; iw < w1; iw++) {
				float v = xp[ih * s.W + iw];
				if (v > m || isnan(v)) {
					m = v;
					mi = ih * s.W + iw;
					if (isnan(v))
						goto done;
				}
			}
done:
		y[o] = m;
		idx[o] = mi;
	}
}

/* Output rows whose window covers input row i: [lo, hi] (may be empty). */
__device__ static inline void covering(int i, int k, int st, int p, int out, int *lo, int *hi)
{
	/* o*st - p <= i < o*st - p + k */
	int a = i + p - k + 1;
	*lo = a <= 0 ? 0 : (a + st - 1) / st;
	*hi = imin_d((i + p) / st, out - 1);
}

/* one thread per input: gathers, in the CPU's (oh, ow) order, the dy of the
 * windows whose max it is: the same sum as pool2d.c's scatter, no atomics */
__global__ static void k_maxpool_bwd(struct pool_geo q, const float *dy, const int32_t *idx, float *dx)
{
	const struct fd_pool2d_shape &s = q.s;
	int64_t n = (int64_t)s.N * s.C * s.H * s.W;
	GRID_LOOP(i, n)
	{
		int iw = (int)(i % s.W), ih = (int)((i / s.W) % s.H);
		int64_t pl = i / ((int64_t)s.H * s.W);
		int32_t me = ih * s.W + iw;
		int oh0, oh1, ow0, ow1;
		covering(ih, s.kh, s.sh, s.ph, q.Ho, &oh0, &oh1);
		covering(iw, s.kw, s.sw, s.pw, q.Wo, &ow0, &ow1);
		const float *gp = dy + pl * q.Ho * q.Wo;
		const int32_t *ip = idx + pl * q.Ho * q.Wo;
		float acc = dx[i];
		for (int oh = oh0; oh <= oh1; oh++)
			for (int ow = ow0; ow <= ow1; ow++)
				if (ip[oh * q.Wo + ow] == me)
					acc += gp[oh * q.Wo + ow];
		dx[i] = acc;
	}
}

/* pool2d.c's avg_window: the clipped window and PyTorch's divisor */
__device__ static inline int avg_window(const struct fd_pool2d_shape &s, int oh, int ow, int *h0, int *h1,
					int *w0, int *w1)
{
	int hs = oh * s.sh - s.ph, ws = ow * s.sw - s.pw;
	int he = imin_d(hs + s.kh, s.H + s.ph), we = imin_d(ws + s.kw, s.W + s.pw);
	int padded = (he - hs) * (we - ws);
	*h0 = imax_d(hs, 0), *w0 = imax_d(ws, 0), *h1 = imin_d(he, s.H), *w1 = imin_d(we, s.W);
	return s.count_include_pad ? padded : (*h1 - *h0) * (*w1 - *w0);
}

__global__ static void k_avgpool_fwd(struct pool_geo q, const float *x, float *y)
{
	const struct fd_pool2d_shape &s = q.s;
	int64_t n = (int64_t)s.N * s.C * q.Ho * q.Wo;
	GRID_LOOP(o, n)
	{
		int ow = (int)(o % q.Wo), oh = (int)((o / q.Wo) % q.Ho);
		const float *xp = x + (o / ((int64_t)q.Ho * q.Wo)) * s.H * s.W;
		int h0, h1, w0, w1, div = avg_window(s, oh, ow, &h0, &h1, &w0, &w1);
		float acc = 0;
		for (int ih = h0; ih < h1; ih++)
			for (int iw = w0; iw < w1; iw++)
				acc += xp[ih * s.W + iw];
		y[o] = acc / div;
	}
}

__global__ static void k_avgpool_bwd(struct pool_geo q, const float *dy, float *dx)
{
	const struct fd_pool2d_shape &s = q.s;
	int64_t n = (int64_t)s.N * s.C * s.H * s.W;
	GRID_LOOP(i, n)
	{
		int iw = (int)(i % s.W), ih = (int)((i / s.W) % s.H);
		const float *gp = dy + (i / ((int64_t)s.H * s.W)) * q.Ho * q.Wo;
		int oh0, oh1, ow0, ow1;
		covering(ih, s.kh, s.sh, s.ph, q.Ho, &oh0, &oh1);
		covering(iw, s.kw, s.sw, s.pw, q.Wo, &ow0, &ow1);
		float acc = dx[i];
		for (int oh = oh0; oh <= oh1; oh++)
			for (int ow = ow0; ow <= ow1; ow++) {
				int h0, h1, w0, w1, div = avg_window(s, oh, ow, &h0, &h1, &w0, &w1);
				if (ih >= h0 && ih < h1 && iw >= w0 && iw < w1)
					acc += gp[oh * q.Wo + ow] / div;
			}
		dx[i] = acc;
	}
}

static int pool_geo(struct fd_ctx *c, const struct fd_pool2d_shape *s, struct pool_geo *q)
{
	struct fd_err e = {{0}};
	q->s = *s;
	if (fd_pool2d_out_size(s, &q->Ho, &q->Wo, &e) < 0)
		return ctx_fail(c, &e);
	return 0;
}

extern "C" int fd_maxpool2d_fwd_cuda(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *x,
				   float *y, int32_t *idx)
{
	struct pool_geo q;
	struct fd_cuda *g = gpu(c, "maxpool2d_fwd");
	if (!g || pool_geo(c, s, &q) < 0)
		return -1;
	k_maxpool_fwd<<<grid_for((int64_t)s->N * s->C * q.Ho * q.Wo), THREADS, 0, g->stream>>>(q, x, y, idx);
	return launched(c, "max_pool2d forward");
}

extern "C" int fd_maxpool2d_bwd_cuda(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy,
				   const int32_t *idx, float *dx)
{
	struct pool_geo q;
	struct fd_cuda *g = gpu(c, "maxpool2d_bwd");
	if (!g || pool_geo(c, s, &q) < 0)
		return -1;
	k_maxpool_bwd<<<grid_for((int64_t)s->N * s->C * s->H * s->W), THREADS, 0, g->stream>>>(q, dy, idx, dx);
	return launched(c, "max_pool2d backward");
}

extern "C" int fd_avgpool2d_fwd_cuda(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *x,
				   float *y)
{
	struct pool_geo q;
	struct fd_cuda *g = gpu(c, "avgpool2d_fwd");
	if (!g || pool_geo(c, s, &q) < 0)
		return -1;
	k_avgpool_fwd<<<grid_for((int64_t)s->N * s->C * q.Ho * q.Wo), THREADS, 0, g->stream>>>(q, x, y);
	return launched(c, "avg_pool2d forward");
}

extern "C" int fd_avgpool2d_bwd_cuda(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy,
				   float *dx)
{
	struct pool_geo q;
	struct fd_cuda *g = gpu(c, "avgpool2d_bwd");
	if (!g || pool_geo(c, s, &q) < 0)
		return -1;
	k_avgpool_bwd<<<grid_for((int64_t)s->N * s->C * s->H * s->W), THREADS, 0, g->stream>>>(q, dy, dx);
	return launched(c, "avg_pool2d backward");
}

/* adaptive windows: rows floor(o*in/out) .. ceil((o+1)*in/out) - 1 */
__device__ static inline int a_start(int o, int in, int out) { return (int)((long long)o * in / out); }
__device__ static inline int a_end(int o, int in, int out)
{
	return (int)(((long long)(o + 1) * in + out - 1) / out);
}

__global__ static void k_adapool_fwd(int64_t NC, int H, int W, int Ho, int Wo, const float *x, float *y)
{
	GRID_LOOP(o, NC * Ho * Wo)
	{
		int ow = (int)(o % Wo), oh = (int)((o / Wo) % Ho);
		const float *xp = x + (o / ((int64_t)Ho * Wo)) * H * W;
		int h0 = a_start(oh, H, Ho), h1 = a_end(oh, H, Ho);
		int w0 = a_start(ow, W, Wo), w1 = a_end(ow, W, Wo);
		float acc = 0;
		for (int ih = h0; ih < h1; ih++)
			for (int iw = w0; iw < w1; iw++)
				acc += xp[ih * W + iw];
		y[o] = acc / ((h1 - h0) * (w1 - w0));
	}
}

__global__ static void k_adapool_bwd(int64_t NC, int H, int W, int Ho, int Wo, const float *dy, float *dx)
{
	GRID_LOOP(i, NC * H * W)
	{
		int iw = (int)(i % W), ih = (int)((i / W) % H);
		const float *gp = dy + (i / ((int64_t)H * W)) * Ho * Wo;
		/* candidate cells: floor(i*out/in) .. floor((i+1)*out/in), checked */
		int oh0 = (int)((long long)ih * Ho / H), oh1 = imin_d((int)((long long)(ih + 1) * Ho / H), Ho - 1);
		int ow0 = (int)((long long)iw * Wo / W), ow1 = imin_d((int)((long long)(iw + 1) * Wo / W), Wo - 1);
		float acc = dx[i];
		for (int oh = oh0; oh <= oh1; oh++) {
			int h0 = a_start(oh, H, Ho), h1 = a_end(oh, H, Ho);
			if (ih < h0 || ih >= h1)
				continue;
			for (int ow = ow0; ow <= ow1; ow++) {
				int w0 = a_start(ow, W, Wo), w1 = a_end(ow, W, Wo);
				if (iw >= w0 && iw < w1)
					acc += gp[oh * Wo + ow] / ((h1 - h0) * (w1 - w0));
			}
		}
		dx[i] = acc;
	}
}

static int adapool_sizes(struct fd_ctx *c, int64_t N, int64_t C, int64_t H, int64_t W, int64_t Ho,
			 int64_t Wo)
{
	if (N < 1 || C < 1 || H < 1 || W < 1 || Ho < 1 || Wo < 1 || N * C > INT32_MAX || H > INT32_MAX ||
	    W > INT32_MAX || Ho > INT32_MAX || Wo > INT32_MAX) {
		fd_fail(c, "adaptive_avg_pool2d N=%lld C=%lld H=%lld W=%lld out=%lldx%lld: sizes must be positive "
			   "and below 2^31",
			(long long)N, (long long)C, (long long)H, (long long)W, (long long)Ho, (long long)Wo);
		return -1;
	}
	return 0;
}

extern "C" int fd_adaptive_avgpool2d_fwd_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t H, int64_t W,
				   int64_t Ho, int64_t Wo, const float *x, float *y)
{
	struct fd_cuda *g = gpu(c, "adaptive_avgpool2d_fwd");
	if (!g || adapool_sizes(c, N, C, H, W, Ho, Wo) < 0)
		return -1;
	k_adapool_fwd<<<grid_for(N * C * Ho * Wo), THREADS, 0, g->stream>>>(N * C, (int)H, (int)W, (int)Ho,
									 (int)Wo, x, y);
	return launched(c, "adaptive_avg_pool2d forward");
}

extern "C" int fd_adaptive_avgpool2d_bwd_cuda(struct fd_ctx *c, int64_t N, int64_t C, int64_t H, int64_t W,
				   int64_t Ho, int64_t Wo, const float *dy, float *dx)
{
	struct fd_cuda *g = gpu(c, "adaptive_avgpool2d_bwd");
	if (!g || adapool_sizes(c, N, C, H, W, Ho, Wo) < 0)
		return -1;
	k_adapool_bwd<<<grid_for(N * C * H * W), THREADS, 0, g->stream>>>(N * C, (int)H, (int)W, (int)Ho,
									(int)Wo, dy, dx);
	return launched(c, "adaptive_avg_pool2d backward");
}

/* ---------------------------------------------------------------- the table */

/* ---------------------------------------------------------------- table: context, memory, copies */

/* The context's engine is the device's handles (device 0). */
extern "C" int fd_ctx_open_cuda(struct fd_ctx *c, struct fd_err *e)
{
	struct fd_cuda *g;
	if (fd_cuda_device_count(e) < 1 || fd_cuda_open(&g, 0, e) < 0)
		return -1;
	c->engine = g;
	return 0;
}

extern "C" void fd_ctx_close_cuda(struct fd_ctx *c)
{
	fd_cuda_close((struct fd_cuda *)c->engine);
	c->engine = NULL;
}

/* Context-less entries run on the legacy default stream, which every
 * context's (blocking) stream is ordered with: a zeroing or optimizer step
 * issued here runs after the kernels issued before it on any context and
 * before those issued after it. */
extern "C" void *fd_mem_alloc_cuda(size_t bytes)
{
	void *p = NULL;
	if (cudaMalloc(&p, bytes ? bytes : 256) != cudaSuccess)
		return NULL;
	if (cudaMemset(p, 0, bytes) != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) {
		cudaFree(p);
		return NULL;
	}
	return p;
}

extern "C" void fd_mem_free_cuda(void *p)
{
	if (p)
		cudaFree(p); /* waits for the device; nothing to recover on failure */
}

extern "C" int fd_mem_zero_cuda(void *p, size_t bytes)
{
	if (bytes == 0)
		return 0;
	return cudaMemsetAsync(p, 0, bytes, 0) == cudaSuccess ? 0 : -1;
}

extern "C" int fd_copy_h2d_cuda(struct fd_ctx *c, void *dst, const void *src, size_t bytes)
{
	struct fd_cuda *g = gpu(c, "copy_h2d");
	if (!g)
		return -1;
	/* synchronised: returns once src may be reused (and the data is there) */
	if (bytes > 0) {
		CK(c, "copy_h2d", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g->stream));
		CK(c, "copy_h2d", cudaStreamSynchronize(g->stream));
	}
	return 0;
}

extern "C" int fd_copy_d2h_cuda(struct fd_ctx *c, void *dst, const void *src, size_t bytes)
{
	struct fd_cuda *g = gpu(c, "copy_d2h");
	if (!g)
		return -1;
	if (bytes > 0) {
		CK(c, "copy_d2h", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g->stream));
		CK(c, "copy_d2h", cudaStreamSynchronize(g->stream));
	}
	return 0;
}

extern "C" int fd_copy_d2d_cuda(struct fd_ctx *c, void *dst, const void *src, size_t bytes)
{
	struct fd_cuda *g = gpu(c, "copy_d2d");
	if (!g)
		return -1;
	if (bytes > 0)
		CK(c, "copy_d2d", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, g->stream));
	return 0;
}

extern "C" int fd_sync_cuda(struct fd_ctx *c)
{
	struct fd_cuda *g = gpu(c, "sync");
	if (!g)
		return -1;
	CK(c, "sync", cudaStreamSynchronize(g->stream));
	CK(c, "sync", cudaGetLastError());
	return 0;
}

extern "C" int fd_adamw_step_cuda(const struct fd_opt_args *a, int64_t n, float *p, const float *g,
				  float *m, float *v)
{
	if (n <= 0)
		return 0;
	k_adamw<<<grid_for(n), THREADS, 0, 0>>>(n, p, g, m, v, a->decay, a->b1, a->b2, a->a1, a->a2,
						  a->step_size, a->bc2s, a->eps);
	return cudaGetLastError() == cudaSuccess ? 0 : -1;
}

extern "C" int fd_sgd_step_cuda(const struct fd_opt_args *a, int64_t n, float *p, const float *g,
				float *buf)
{
	if (n <= 0)
		return 0;
	k_sgd<<<grid_for(n), THREADS, 0, 0>>>(n, p, g, buf, a->lr, a->wd, a->mom, a->damp, a->first,
					       a->nesterov);
	return cudaGetLastError() == cudaSuccess ? 0 : -1;
}

/* Designated initialisers in the order of struct fd_backend (nvcc refuses
 * any other order, so a reordered or renamed entry fails to compile). */
extern "C" const struct fd_backend fd_backend_cuda = {
	.name = "cuda",
	.ctx_open = fd_ctx_open_cuda,
	.ctx_close = fd_ctx_close_cuda,
	.precision_ok = NULL, /* fp32 only: fd_ctx_set_precision refuses bf16 on cuda */
	.mem_alloc = fd_mem_alloc_cuda,
	.mem_free = fd_mem_free_cuda,
	.mem_zero = fd_mem_zero_cuda,
	.copy_h2d = fd_copy_h2d_cuda,
	.copy_d2h = fd_copy_d2h_cuda,
	.copy_d2d = fd_copy_d2d_cuda,
	.sync = fd_sync_cuda,
	.zero = fd_zero_cuda,
	.axpy = fd_axpy_cuda,
	.adamw_step = fd_adamw_step_cuda,
	.sgd_step = fd_sgd_step_cuda,
	.act_fwd = fd_act_fwd_cuda,
	.act_bwd = fd_act_bwd_cuda,
	.prelu_fwd = fd_prelu_fwd_cuda,
	.prelu_bwd = fd_prelu_bwd_cuda,
	.binary_fwd = fd_binary_fwd_cuda,
	.binary_bwd = fd_binary_bwd_cuda,
	.softmax_fwd = fd_softmax_fwd_cuda,
	.softmax_bwd = fd_softmax_bwd_cuda,
	.layernorm2d_fwd = fd_layernorm2d_fwd_cuda,
	.layernorm2d_bwd = fd_layernorm2d_bwd_cuda,
	.dropout_fwd = fd_dropout_fwd_cuda,
	.dropout_bwd = fd_dropout_bwd_cuda,
	.rowscale_fwd = fd_rowscale_fwd_cuda,
	.rowscale_bwd = fd_rowscale_bwd_cuda,
	.bce_fwd = fd_bce_fwd_cuda,
	.bce_bwd = fd_bce_bwd_cuda,
	.ce_fwd = fd_ce_fwd_cuda,
	.ce_bwd = fd_ce_bwd_cuda,
	.conv2d_plan = fd_conv2d_plan_cuda,
	.conv2d_plan_free = fd_conv2d_plan_free_cuda,
	.conv2d_fwd = fd_conv2d_fwd_cuda,
	.conv2d_bwd = fd_conv2d_bwd_cuda,
	.linear_fwd = fd_linear_fwd_cuda,
	.linear_bwd = fd_linear_bwd_cuda,
	.batchnorm2d_fwd_train = fd_batchnorm2d_fwd_train_cuda,
	.batchnorm2d_bwd_train = fd_batchnorm2d_bwd_train_cuda,
	.batchnorm2d_fwd_eval = fd_batchnorm2d_fwd_eval_cuda,
	.batchnorm2d_bwd_eval = fd_batchnorm2d_bwd_eval_cuda,
	.maxpool2d_fwd = fd_maxpool2d_fwd_cuda,
	.maxpool2d_bwd = fd_maxpool2d_bwd_cuda,
	.avgpool2d_fwd = fd_avgpool2d_fwd_cuda,
	.avgpool2d_bwd = fd_avgpool2d_bwd_cuda,
	.adaptive_avgpool2d_fwd = fd_adaptive_avgpool2d_fwd_cuda,
	.adaptive_avgpool2d_bwd = fd_adaptive_avgpool2d_bwd_cuda,
};
