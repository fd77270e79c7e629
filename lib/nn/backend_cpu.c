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

static int cpu_zero(struct fd_ctx *c, float *p, int64_t n)
{
	(void)c;
	memset(p, 0, (size_t)n * sizeof *p);
	return 0;
}

static int cpu_copy(struct fd_ctx *c, float *dst, const float *src, int64_t n)
{
	(void)c;
	memcpy(dst, src, (size_t)n * sizeof *dst);
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
	.zero = cpu_zero,
	.copy = cpu_copy,
	.axpy = cpu_axpy,
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
