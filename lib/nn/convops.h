/* convops: the taped conv2d, linear, batchnorm2d and pooling ops. They check
 * shapes, allocate outputs in the arena, dispatch to the kernels of the
 * tensors' device through struct fd_backend (conv2d.h, linear.h,
 * batchnorm2d.h, pool2d.h on the CPU) and record their backward. */
#ifndef FD_CONVOPS_H
#define FD_CONVOPS_H

#include "nn/conv2d.h"
#include "nn/fd_tensor.h"
#include "nn/pool2d.h"

/* Plans kept per conv layer: one per distinct input size (training batch,
 * the last short batch, evaluation batch, an MTCNN pyramid level...). */
#define FD_CONV2D_PLANS 8

/* A conv2d layer's hyper-parameters and its plans. The weight tensor passed
 * to fd_conv2d gives K, C/groups, kh, kw; the input gives N, C, H, W. The
 * first call with a new input size makes that size's plan (oneDNN primitive
 * creation, milliseconds) and every later call with that size reuses it, so
 * a training loop creates plans in its first step only. Owned by the model
 * (one per layer), not by the context. */
struct fd_conv2d_op {
	int sh, sw, ph, pw, dh, dw, groups;
	int nplans;
	struct fd_conv2d_plan_slot {
		struct fd_conv2d_shape s;
		enum fd_dev dev;
		void *plan;          /* the device's plan object (struct fd_conv2d on the CPU) */
		uint64_t last_step;  /* ctx step of the last use: a plan used this step is never evicted */
	} plans[FD_CONV2D_PLANS];
};

/* nn.Conv2d(..., stride, padding, dilation, groups) with square kernel
 * geometry (the rectangular fields may be set by hand after this). */
void fd_conv2d_op_init(struct fd_conv2d_op *op, int stride, int pad, int dilation, int groups);
/* Free every plan; the op may be used again (plans are remade). No-op on a
 * zeroed op. */
void fd_conv2d_op_free(struct fd_conv2d_op *op);

/* F.conv2d(x, w, b, stride, padding, dilation, groups): x [N, C, H, W],
 * w [K, C/groups, kh, kw], b [K] or NULL; returns [N, K, Ho, Wo] (PyTorch's
 * output size). Backward adds into the gradients of x, w and b that require
 * one. Needs c->dnnl on the CPU (the oneDNN engine, borrowed). Adds
 * N*K*Ho*Wo*(C/groups)*kh*kw to c->macs. NULL on error (c->err: shapes, or
 * "more than 8 input sizes in one step" when every plan is in use). */
struct fd_tensor *fd_conv2d(struct fd_ctx *c, struct fd_conv2d_op *op, struct fd_tensor *x,
			    struct fd_tensor *w, struct fd_tensor *b);

/* F.linear(x, w, b): x [N, in], w [out, in], b [out] or NULL; returns
 * [N, out]. Backward adds into dx, dw, db. Adds N*in*out to c->macs. */
struct fd_tensor *fd_linear(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w,
			    struct fd_tensor *b);

/* nn.BatchNorm2d(C, eps, momentum, affine=True, track_running_stats=True)
 * on x [N, C, H, W] (or [N, C]) with weight w, bias b, running_mean rm,
 * running_var rv [C], and num_batches_tracked nbt ([1] counter view, or NULL).
 * c->training: batch statistics (biased variance) normalise; rm and rv are
 * updated in place with momentum (unbiased variance), nbt += 1, also when
 * grad is disabled, exactly as torch's train() forward; backward flows
 * through the batch statistics. Otherwise: running statistics normalise and
 * are constants for backward. Backward adds into dx, dw, db. */
struct fd_tensor *fd_batchnorm2d(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w,
				 struct fd_tensor *b, struct fd_tensor *rm, struct fd_tensor *rv,
				 struct fd_tensor *nbt, double momentum, double eps);

/* F.max_pool2d(x, k, stride, pad, dilation=1, ceil_mode) on [N, C, H, W];
 * backward routes each gradient to its window's (first) maximum, adding. */
struct fd_tensor *fd_maxpool2d(struct fd_ctx *c, struct fd_tensor *x, int k, int stride, int pad,
			       int ceil_mode);
/* F.avg_pool2d(x, k, stride, pad, ceil_mode, count_include_pad). */
struct fd_tensor *fd_avgpool2d(struct fd_ctx *c, struct fd_tensor *x, int k, int stride, int pad,
			       int ceil_mode, int count_include_pad);
/* F.adaptive_avg_pool2d(x, (Ho, Wo)); (1, 1) is the global average pool of
 * every torchvision classifier. */
struct fd_tensor *fd_adaptive_avgpool2d(struct fd_ctx *c, struct fd_tensor *x, int Ho, int Wo);

/* CPU kernels of the table (struct fd_backend), over the kernels of
 * conv2d.h, linear.h, batchnorm2d.h and pool2d.h. */
int fd_conv2d_plan_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, void **plan);
void fd_conv2d_plan_free_cpu(void *plan);
int fd_conv2d_fwd_cpu(struct fd_ctx *c, void *plan, const float *x, const float *w, const float *b,
		      float *y);
int fd_conv2d_bwd_cpu(struct fd_ctx *c, void *plan, const float *x, const float *w, const float *dy,
		      float *dx, float *dw, float *db);
int fd_linear_fwd_cpu(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
		      const float *w, const float *b, float *y);
int fd_linear_bwd_cpu(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
		      const float *w, const float *dy, float *dx, float *dw, float *db);
int fd_bn_fwd_train_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
			const float *w, const float *b, float *rmean, float *rvar, double momentum,
			double eps, float *y, float *mean, float *invstd);
int fd_bn_bwd_train_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
			const float *w, const float *mean, const float *invstd, const float *dy,
			float *dx, float *dw, float *db);
int fd_bn_fwd_eval_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
		       const float *w, const float *b, const float *rmean, const float *rvar,
		       double eps, float *y);
int fd_bn_bwd_eval_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
		       const float *w, const float *rmean, const float *rvar, double eps,
		       const float *dy, float *dx, float *dw, float *db);
int fd_maxpool_fwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *x, float *y,
		       int32_t *idx);
int fd_maxpool_bwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy,
		       const int32_t *idx, float *dx);
int fd_avgpool_fwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *x, float *y);
int fd_avgpool_bwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy, float *dx);
int fd_adapool_fwd_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t H, int64_t W, int64_t Ho,
		       int64_t Wo, const float *x, float *y);
int fd_adapool_bwd_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t H, int64_t W, int64_t Ho,
		       int64_t Wo, const float *dy, float *dx);

#endif
