/* layernorm2d: LayerNorm over the channels of an NCHW tensor (taped). */
#ifndef FD_LAYERNORM2D_H
#define FD_LAYERNORM2D_H

#include "nn/fd_tensor.h"

/* torchvision's convnext LayerNorm2d: permute x [N,C,H,W] to NHWC, apply
 * F.layer_norm over C with weight w [C], bias b [C] and eps (ConvNeXt: 1e-6),
 * permute back. Mean and biased variance over C at each (n, h, w); y =
 * (x - mean) / sqrt(var + eps) * w + b. x may be [N,C] too (HW = 1), which is
 * ConvNeXt's classifier norm over [N,C,1,1] as well. Backward adds into dx, dw
 * and db. In a bf16 context under c->bf16_out, on the CPU with channels-last
 * x, y is written in bf16 (FD_T_BF16; each value the fp32 y rounded). x
 * may hold bf16 values (FD_T_BF16) on the CPU in a bf16 context with
 * channels-last x of at most FD_LN_BF16_MAXC channels (else refused):
 * forward and backward are the op's on the widened values, bit for bit.
 * NULL on error (c->err). */
#define FD_LN_BF16_MAXC 8192
struct fd_tensor *fd_layernorm2d(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w,
				 struct fd_tensor *b, float eps);

/* fd_layernorm2d without the affine step, in place, for inference: x =
 * (x - mean) / sqrt(var + eps) over C at each position (the same float
 * arithmetic as fd_layernorm2d with w = 1, b = 0, either layout), returned.
 * Records nothing: refuses ("CPU inference only") an x off the CPU or one
 * that needs a gradient. The caller guarantees that x's old values are not
 * needed afterwards. NULL on error (c->err). */
struct fd_tensor *fd_layernorm2d_norm_(struct fd_ctx *c, struct fd_tensor *x, float eps);

/* The oracle for the tests (t_nn_fd64): the textbook two-pass loops in double
 * over x [N, C, HW] (statistics over C at each (n, p), biased variance).
 * Forward overwrites y; backward recomputes mean and rstd from x and ADDS
 * into dx, dw and db (each may be NULL):
 * dx = rstd (g - mean_C(g) - xhat mean_C(g xhat)) with g = dy w. */
void fd_layernorm2d_ref_forward(int64_t N, int64_t C, int64_t HW, double eps, const double *x,
				const double *w, const double *b, double *y);
void fd_layernorm2d_ref_backward(int64_t N, int64_t C, int64_t HW, double eps, const double *x,
				 const double *w, const double *dy, double *dx, double *dw, double *db);

/* CPU kernels of the table; fwd: w and b NULL normalize only, mean and
 * rstd NULL are not stored, y may be x. */
int fd_layernorm2d_fwd_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, float eps, const float *x,
		    const float *w, const float *b, float *y, float *mean, float *rstd);
int fd_layernorm2d_bwd_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t HW, const float *x,
		    const float *w, const float *mean, const float *rstd, const float *dy, float *dx,
		    float *dw, float *db);

#endif
