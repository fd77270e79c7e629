/* batchnorm2d: batch normalisation over contiguous NCHW float32, as
 * torch.nn.BatchNorm2d(C, eps, momentum, affine=True, track_running_stats=True)
 * in train() and eval() mode; plain C with OpenMP over channels (the op is
 * memory bound), plus double references for the tests. */
#ifndef FD_BATCHNORM2D_H
#define FD_BATCHNORM2D_H

#include "core/fd_err.h"

/* PyTorch's defaults. */
#define FD_BN_EPS 1e-5
#define FD_BN_MOMENTUM 0.1

/* Training forward. x, y [N, C, H, W] with HW = H*W; weight, bias,
 * running_mean, running_var, save_mean, save_invstd [C]. Per channel, over the
 * M = N*HW values: mean, biased variance var; y = (x - mean) / sqrt(var + eps)
 * * weight + bias (OVERWRITES y); running_mean = (1 - momentum) * running_mean
 * + momentum * mean and running_var likewise with the unbiased variance
 * var * M / (M - 1) (updated in place); save_mean = mean and save_invstd =
 * 1/sqrt(var + eps) for the backward (overwritten). Sums run in double.
 * Error when M < 2 (PyTorch: "Expected more than 1 value per channel when
 * training"). */
int fd_batchnorm2d_forward_train(int N, int C, int HW, const float *x, const float *weight,
				 const float *bias, float *running_mean, float *running_var,
				 double momentum, double eps, float *y, float *save_mean,
				 float *save_invstd, struct fd_err *e);
/* Eval forward: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias,
 * OVERWRITES y; running stats are only read. */
void fd_batchnorm2d_forward_eval(int N, int C, int HW, const float *x, const float *weight,
				 const float *bias, const float *running_mean, const float *running_var,
				 double eps, float *y);
/* Training backward (batch statistics depend on x), with save_mean/save_invstd
 * from the forward: xhat = (x - mean) * invstd,
 * dx += weight * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)),
 * dweight += sum(dy * xhat), dbias += sum(dy): ADDS into all three; any of
 * dx, dweight, dbias may be NULL when not wanted. */
void fd_batchnorm2d_backward_train(int N, int C, int HW, const float *dy, const float *x,
				   const float *weight, const float *save_mean, const float *save_invstd,
				   float *dx, float *dweight, float *dbias);
/* Eval backward (running statistics are constants):
 * dx += dy * weight / sqrt(running_var + eps), dweight += sum(dy * xhat),
 * dbias += sum(dy): ADDS; any output may be NULL. */
void fd_batchnorm2d_backward_eval(int N, int C, int HW, const float *dy, const float *x,
				  const float *weight, const float *running_mean,
				  const float *running_var, double eps, float *dx, float *dweight,
				  float *dbias);

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
