/* fd_backend: device tables and the "not supported" dispatcher. The CUDA
 * table is defined here, from the kernels of backend_cuda.cu (fd_cuda.h),
 * when the build has CUDA (FD_HAVE_CUDA, set by lib/nn/cuda.mk). */
#include "nn/fd_backend.h"

#ifdef FD_HAVE_CUDA
#include "nn/fd_cuda.h"

const struct fd_backend fd_backend_cuda = {
	.name = "cuda",
	.zero = fd_zero_cuda,
	.copy = fd_copy_cuda,
	.axpy = fd_axpy_cuda,
	.act_fwd = fd_act_fwd_cuda,
	.act_bwd = fd_act_bwd_cuda,
	.prelu_fwd = fd_prelu_fwd_cuda,
	.prelu_bwd = fd_prelu_bwd_cuda,
	.bin_fwd = fd_bin_fwd_cuda,
	.bin_bwd = fd_bin_bwd_cuda,
	.softmax_fwd = fd_softmax_fwd_cuda,
	.softmax_bwd = fd_softmax_bwd_cuda,
	.ln2d_fwd = fd_ln2d_fwd_cuda,
	.ln2d_bwd = fd_ln2d_bwd_cuda,
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
	.bn_fwd_train = fd_bn_fwd_train_cuda,
	.bn_bwd_train = fd_bn_bwd_train_cuda,
	.bn_fwd_eval = fd_bn_fwd_eval_cuda,
	.bn_bwd_eval = fd_bn_bwd_eval_cuda,
	.maxpool_fwd = fd_maxpool_fwd_cuda,
	.maxpool_bwd = fd_maxpool_bwd_cuda,
	.avgpool_fwd = fd_avgpool_fwd_cuda,
	.avgpool_bwd = fd_avgpool_bwd_cuda,
	.adapool_fwd = fd_adapool_fwd_cuda,
	.adapool_bwd = fd_adapool_bwd_cuda,
};
#endif

const struct fd_backend *fd_backend_of(enum fd_dev d)
{
#ifdef FD_HAVE_CUDA
	if (d == FD_DEV_CUDA)
		return &fd_backend_cuda;
#endif
	return d == FD_DEV_CPU ? &fd_backend_cpu : NULL;
}

const struct fd_backend *fd_backend_need(struct fd_ctx *c, enum fd_dev d, int has, const char *what)
{
	if (!has)
		return fd_fail(c, "%s on %s: not supported", what, fd_dev_name(d));
	return fd_backend_of(d);
}
