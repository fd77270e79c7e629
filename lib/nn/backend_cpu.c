/* backend_cpu: the CPU op table (plain C + OpenMP; oneDNN kernels of the
 * convolution family join it from their own files). */
#include "nn/act.h"
#include "nn/binary.h"
#include "nn/batchnorm2d.h"
#include "nn/conv2d.h"
#include "nn/linear.h"
#include "nn/pool2d.h"
#include "nn/dropout.h"
#include "nn/fd_backend.h"
#include "nn/fd_dnnl.h"
#include "nn/layernorm2d.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "nn/softmax.h"

#include <stdlib.h>
#include <string.h>

/* The context's oneDNN engine and stream, told c->threads (fd_dnnl.h). */
static int cpu_ctx_open(struct fd_ctx *c, struct fd_err *e)
{
	struct fd_dnnl *d = calloc(1, sizeof *d);
	if (!d)
		return fd_err_set(e, "out of memory for the oneDNN engine");
	if (fd_dnnl_init(d, c->threads, e) < 0) {
		free(d);
		return -1;
	}
	c->engine = d;
	return 0;
}

static void cpu_ctx_close(struct fd_ctx *c)
{
	fd_dnnl_free(c->engine);
	free(c->engine);
}

const char *fd_backend_cpu_describe(char *buf, size_t n)
{
	return fd_dnnl_describe(buf, n);
}

void fd_backend_cpu_flush(void)
{
	fd_dnnl_cache_flush();
}

/* bf16 matrix products need AVX512-BF16 (fd_dnnl_bf16_check). */
static int cpu_precision_ok(struct fd_ctx *c, enum fd_precision p, struct fd_err *e)
{
	(void)c;
	if (p != FD_PREC_BF16)
		return fd_err_set(e, "precision %s: not supported on cpu", fd_precision_name(p));
	return fd_dnnl_bf16_check(e);
}

/* Gradients not handed to an overwriting node (struct fd_node's writes)
 * are zeroed here: in 1 MiB pieces over the context's threads when big. */
static int cpu_zero(struct fd_ctx *c, float *p, int64_t n)
{
	const int64_t per = 1 << 18;
	int64_t nb = (n + per - 1) / per;
#pragma omp parallel for num_threads(c->threads) schedule(static) if (nb > 1)
	for (int64_t k = 0; k < nb; k++) {
		int64_t i0 = k * per, m = n - i0 < per ? n - i0 : per;
		memset(p + i0, 0, (size_t)m * sizeof *p);
	}
	return 0;
}

/* Memory: the heap, 64-byte aligned (the size rounded up to a multiple of 64
 * with 64 bytes to spare, so vector loops may read a little past the end). */
static void *cpu_mem_alloc(size_t bytes)
{
	size_t n = (bytes + 127) / 64 * 64;
	void *p = aligned_alloc(64, n);
	if (p)
		memset(p, 0, n);
	return p;
}

static void cpu_mem_free(void *p)
{
	free(p);
}

static int cpu_mem_zero(void *p, size_t bytes)
{
	memset(p, 0, bytes);
	return 0;
}

/* Host and device memory are one: every transfer is a memcpy, done on return. */
static int cpu_copy(struct fd_ctx *c, void *dst, const void *src, size_t bytes)
{
	(void)c;
	memcpy(dst, src, bytes);
	return 0;
}

static int cpu_sync(struct fd_ctx *c)
{
	(void)c;
	return 0;
}

static int cpu_axpy(struct fd_ctx *c, int64_t n, float alpha, const float *x, float *y)
{
#pragma omp parallel for num_threads(c->threads) schedule(static) if (n > 65536)
	for (int64_t i = 0; i < n; i++)
		y[i] += alpha * x[i];
	return 0;
}

const struct fd_backend fd_backend_cpu = {
	.name = "cpu",
	.ctx_open = cpu_ctx_open,
	.ctx_close = cpu_ctx_close,
	.precision_ok = cpu_precision_ok,
	.mem_alloc = cpu_mem_alloc,
	.mem_free = cpu_mem_free,
	.mem_zero = cpu_mem_zero,
	.copy_h2d = cpu_copy,
	.copy_d2h = cpu_copy,
	.copy_d2d = cpu_copy,
	.sync = cpu_sync,
	.zero = cpu_zero,
	.axpy = cpu_axpy,
	.adamw_step = fd_adamw_step_cpu,
	.sgd_step = fd_sgd_step_cpu,
	.act_fwd = fd_act_fwd_cpu,
	.act_bwd = fd_act_bwd_cpu,
	.prelu_fwd = fd_prelu_fwd_cpu,
	.prelu_bwd = fd_prelu_bwd_cpu,
	.binary_fwd = fd_binary_fwd_cpu,
	.binary_bwd = fd_binary_bwd_cpu,
	.softmax_fwd = fd_softmax_fwd_cpu,
	.softmax_bwd = fd_softmax_bwd_cpu,
	.layernorm2d_fwd = fd_layernorm2d_fwd_cpu,
	.layernorm2d_bwd = fd_layernorm2d_bwd_cpu,
	.dropout_fwd = fd_dropout_fwd_cpu,
	.dropout_bwd = fd_dropout_bwd_cpu,
	.rowscale_fwd = fd_rowscale_fwd_cpu,
	.rowscale_bwd = fd_rowscale_bwd_cpu,
	.bce_fwd = fd_bce_fwd_cpu,
	.bce_bwd = fd_bce_bwd_cpu,
	.ce_fwd = fd_ce_fwd_cpu,
	.ce_bwd = fd_ce_bwd_cpu,
	.conv2d_plan = fd_conv2d_plan_cpu,
	.conv2d_plan_free = fd_conv2d_plan_free_cpu,
	.conv2d_fwd = fd_conv2d_fwd_cpu,
	.conv2d_bwd = fd_conv2d_bwd_cpu,
	.linear_fwd = fd_linear_fwd_cpu,
	.linear_bwd = fd_linear_bwd_cpu,
	.batchnorm2d_fwd_train = fd_batchnorm2d_fwd_train_cpu,
	.batchnorm2d_bwd_train = fd_batchnorm2d_bwd_train_cpu,
	.batchnorm2d_fwd_eval = fd_batchnorm2d_fwd_eval_cpu,
	.batchnorm2d_bwd_eval = fd_batchnorm2d_bwd_eval_cpu,
	.maxpool2d_fwd = fd_maxpool2d_fwd_cpu,
	.maxpool2d_bwd = fd_maxpool2d_bwd_cpu,
	.avgpool2d_fwd = fd_avgpool2d_fwd_cpu,
	.avgpool2d_bwd = fd_avgpool2d_bwd_cpu,
	.adaptive_avgpool2d_fwd = fd_adaptive_avgpool2d_fwd_cpu,
	.adaptive_avgpool2d_bwd = fd_adaptive_avgpool2d_bwd_cpu,
};
