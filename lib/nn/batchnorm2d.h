/* batchnorm2d: batch normalisation over contiguous NCHW float32, as
 * torch.nn.BatchNorm2d(C, eps, momentum, affine=True, track_running_stats=True)
 * in train() and eval() mode: the taped op, the CPU kernels of the op table
 * (plain C with OpenMP over channels; the op is memory bound) and double
 * references for the tests; and the op fused with a following activation
 * (train mode on the CPU: fd_batchnorm2d_act). */
#ifndef FD_BATCHNORM2D_H
#define FD_BATCHNORM2D_H

#include <stdint.h>
#include "nn/fd_tensor.h"

/* PyTorch's defaults. */
#define FD_BN_EPS 1e-5
#define FD_BN_MOMENTUM 0.1

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

/* act(batchnorm2d(x)) with act = FD_ACT_RELU, FD_ACT_SILU or
 * FD_ACT_HARDSWISH (enum fd_act), or -1 for none (fd_batchnorm2d itself):
 * torch's BatchNorm2d followed by ReLU / SiLU / Hardswish, same arguments
 * and semantics as fd_batchnorm2d (running stats, nbt, gradients ADD unless
 * fresh). On the CPU in train mode (c->training) one fused op: the forward
 * reads x once and writes only y = act(z), z = bn(x), never z; the backward
 * recomputes z from x with the forward's per-channel factors and applies
 * act'(z) inside batchnorm's backward passes. Values and gradients are the
 * bits of the separate ops (the same expressions, the same sums in the same
 * order; at most the sign of a zero differs). Otherwise (eval mode, another
 * device, another activation) the separate taped ops, the activation in
 * place (fd_act_). NULL on error (c->err). */
struct fd_tensor *fd_batchnorm2d_act(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w,
				     struct fd_tensor *b, struct fd_tensor *rm, struct fd_tensor *rv,
				     struct fd_tensor *nbt, double momentum, double eps, int act);

/* maxpool2d(act(batchnorm2d(x)), k, stride, pad) (ceil_mode 0; act as for
 * fd_batchnorm2d_act, -1 for none) with the semantics of
 * fd_batchnorm2d_act followed by fd_maxpool2d. Where
 * fd_batchnorm2d_act_pools says so (CPU, train mode, channels last, an
 * activation the fused kernels take), one op: the forward computes
 * act(bn(x)) a few input rows at a time into a per-thread block and pools
 * them, so the full-size activation is never stored; the backward makes
 * the gradient the pool routes to it a block of rows at a time inside
 * batchnorm's two passes, so that gradient is never stored either. Values,
 * indices, gradients and running statistics are the bits of the separate
 * ops (the same kernels on the same values in the same order). In a bf16
 * context with c->bf16_out set (the pooled output read only by
 * convolutions, doc/nn-kernels.md "bf16 hand-off") the output is bf16
 * (FD_T_BF16: the fp32 output rounded). Otherwise the two ops (with
 * c->bf16_out cleared around the first). NULL on error (c->err). */
struct fd_tensor *fd_batchnorm2d_act_maxpool(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w,
					     struct fd_tensor *b, struct fd_tensor *rm, struct fd_tensor *rv,
					     struct fd_tensor *nbt, double momentum, double eps, int act, int k,
					     int stride, int pad);
/* 1 when fd_batchnorm2d_act_maxpool runs as one op for x, act and the
 * window, else 0. */
int fd_batchnorm2d_act_pools(const struct fd_ctx *c, const struct fd_tensor *x, int act, int k, int stride,
			     int pad);
/* 1 when that one op runs its own kernels for a 2x2/2 pool after ReLU
 * (SimpleCNN's; doc/nn-kernels.md "The 2x2 pool after ReLU"): even H and
 * W, whose row pairs no chunk of rows splits. Else 0. */
int fd_batchnorm2d_pool22(const struct fd_ctx *c, const struct fd_tensor *x, int act, int k, int stride, int pad);

/* act(batchnorm2d(x) + id) (act FD_ACT_RELU or -1 for none) in train mode
 * as one op where fd_batchnorm2d_add_fuses says so (CPU, channels last,
 * id a float tensor of x's shape and layout): the forward's apply pass
 * reads x and id and writes y once, where the separate ops (batchnorm2d,
 * the in-place add, the in-place activation) wrote BN's output, read it
 * back twice and wrote it twice. The backward writes act'(y) dy into id's
 * gradient (or adds it there) and runs BN's backward from it. x may be
 * bf16 (FD_T_BF16, c->bf16_y's outputs); x's gradient may be handed off
 * in bf16 (c->bf16_dy). Values, gradients and running statistics are the
 * bits of the separate ops. In a bf16 context (the bf16 residual stream)
 * id may be bf16 (widened in the loads) and, under c->bf16_out, y is
 * written in bf16 (the fp32 y rounded; the backward takes ReLU's mask from
 * it). NULL on error (c->err), also where it does not fuse. */
struct fd_tensor *fd_batchnorm2d_add_act(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w,
					 struct fd_tensor *b, struct fd_tensor *rm, struct fd_tensor *rv,
					 struct fd_tensor *nbt, double momentum, double eps, struct fd_tensor *id,
					 int act);
/* 1 when fd_batchnorm2d_add_act runs for x, id and act, else 0. */
int fd_batchnorm2d_add_fuses(const struct fd_ctx *c, const struct fd_tensor *x, const struct fd_tensor *id,
			     int act);

/* CPU kernels (table entries batchnorm2d_fwd_train, batchnorm2d_bwd_train,
 * batchnorm2d_fwd_eval, batchnorm2d_bwd_eval), plain C + OpenMP over channels
 * on c->threads; x, y, dy, dx [N, C, HW]; w, b, rmean, rvar, mean, invstd [C].
 *
 * fwd_train: per channel, over the M = N*HW values: mean, biased variance var;
 * y = (x - mean) / sqrt(var + eps) * w + b (OVERWRITES y); rmean = (1 -
 * momentum) rmean + momentum mean and rvar likewise with the unbiased
 * variance var * M / (M - 1) (in place); mean and invstd = 1/sqrt(var + eps)
 * written for the backward. Sums run in double. Error when M < 2 (PyTorch:
 * "Expected more than 1 value per channel when training").
 * bwd_train (batch statistics depend on x): xhat = (x - mean) * invstd,
 * dx += w * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)),
 * dw += sum(dy * xhat), db += sum(dy): ADDS; any of dx, dw, db may be NULL.
 * fwd_eval: y = (x - rmean) / sqrt(rvar + eps) * w + b, OVERWRITES y.
 * bwd_eval (running statistics are constants): dx += dy * w / sqrt(rvar +
 * eps), dw += sum(dy * xhat), db += sum(dy): ADDS; any output may be NULL. */
int fd_batchnorm2d_fwd_train_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
				 const float *w, const float *b, float *rmean, float *rvar,
				 double momentum, double eps, float *y, float *mean, float *invstd);
int fd_batchnorm2d_bwd_train_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
				 const float *w, const float *mean, const float *invstd,
				 const float *dy, float *dx, float *dw, float *db);
/* The fused train-mode CPU kernels behind fd_batchnorm2d_act (not table
 * entries; act as there, -1 for none). fwd: fd_batchnorm2d_fwd_train_cpu,
 * then y = act(z) in place of z, and za, zb [C] the float factors with z =
 * x * za + zb (for the backward). bwd: fd_batchnorm2d_bwd_train_cpu with
 * dy replaced by act'(z) dy, z recomputed from x, za, zb (read only when
 * act is not -1); ADDS. An activation other than these: error. */
int fd_batchnorm2d_act_fwd_train_cpu(struct fd_ctx *c, int act, int64_t N, int64_t C, int64_t HW,
				     const float *x, const float *w, const float *b, float *rmean,
				     float *rvar, double momentum, double eps, float *y, float *mean,
				     float *invstd, float *za, float *zb);
int fd_batchnorm2d_act_bwd_train_cpu(struct fd_ctx *c, int act, int64_t N, int64_t C, int64_t HW,
				     const float *x, const float *w, const float *mean, const float *invstd,
				     const float *za, const float *zb, const float *dy, float *dx, float *dw,
				     float *db);
int fd_batchnorm2d_fwd_eval_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
				const float *w, const float *b, const float *rmean, const float *rvar,
				double eps, float *y);
int fd_batchnorm2d_bwd_eval_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
				const float *w, const float *rmean, const float *rvar, double eps,
				const float *dy, float *dx, float *dw, float *db);

/* Double references with the same semantics (train: forward then backward;
 * eval likewise). The train reference takes no running stats; its
 * running-stat update is checked through the fast path against PyTorch. */
void fd_batchnorm2d_ref_forward_train(int N, int C, int HW, const double *x, const double *weight,
				      const double *bias, double eps, double *y, double *mean,
				      double *var);
void fd_batchnorm2d_ref_backward_train(int N, int C, int HW, const double *dy, const double *x,
				       const double *weight, double eps, double *dx, double *dweight,
				       double *dbias);
void fd_batchnorm2d_ref_forward_eval(int N, int C, int HW, const double *x, const double *weight,
				     const double *bias, const double *running_mean,
				     const double *running_var, double eps, double *y);
void fd_batchnorm2d_ref_backward_eval(int N, int C, int HW, const double *dy, const double *x,
				      const double *weight, const double *running_mean,
				      const double *running_var, double eps, double *dx, double *dweight,
				      double *dbias);

#endif
