/* pool2d: max, average and adaptive average pooling over contiguous NCHW
 * float32, forward and backward, as torch.nn.functional.max_pool2d /
 * avg_pool2d / adaptive_avg_pool2d; plain C with OpenMP over the N*C planes
 * (each plane independent, so backward scatters never race), plus double
 * references for the tests. */
#ifndef FD_POOL2D_H
#define FD_POOL2D_H

#include <stdint.h>
#include "core/fd_err.h"

/* Window geometry of max_pool2d / avg_pool2d (dilation 1). Output size is
 * PyTorch's: Ho = floor_or_ceil((H + 2*ph - kh) / sh) + 1, and with ceil_mode a
 * last window that would start in the right padding is dropped. PyTorch's
 * rule ph <= kh/2, pw <= kw/2 holds. count_include_pad is for average pooling
 * only (PyTorch's default is 1). */
struct fd_pool2d_shape {
	int N, C, H, W;
	int kh, kw, sh, sw, ph, pw;
	int ceil_mode;
	int count_include_pad;
};

/* Check s and compute the output size; errors name the offending field. */
int fd_pool2d_out_size(const struct fd_pool2d_shape *s, int *Ho, int *Wo, struct fd_err *e);

/* max_pool2d(x, (kh,kw), (sh,sw), (ph,pw), dilation=1, ceil_mode,
 * return_indices=True): y [N, C, Ho, Wo] and idx (same shape, the flat index
 * ih*W + iw of the max within its input plane, as PyTorch's indices) are
 * OVERWRITTEN. Padding never wins (it is -inf); a NaN in a window wins, as in
 * PyTorch. s must have passed fd_pool2d_out_size. */
void fd_maxpool2d_forward(const struct fd_pool2d_shape *s, const float *x, float *y, int32_t *idx);
/* dx [N, C, H, W] += dy scattered through idx: ADDS. */
void fd_maxpool2d_backward(const struct fd_pool2d_shape *s, const float *dy, const int32_t *idx,
			   float *dx);

/* avg_pool2d(x, (kh,kw), (sh,sw), (ph,pw), ceil_mode, count_include_pad):
 * y OVERWRITTEN with each window's sum divided by the window size clipped to
 * the padded input (count_include_pad) or to the input (otherwise). */
void fd_avgpool2d_forward(const struct fd_pool2d_shape *s, const float *x, float *y);
/* dx += each dy spread over its window with the same divisor: ADDS. */
void fd_avgpool2d_backward(const struct fd_pool2d_shape *s, const float *dy, float *dx);

/* adaptive_avg_pool2d(x, (Ho, Wo)): output cell (i, j) averages input rows
 * floor(i*H/Ho) .. ceil((i+1)*H/Ho)-1 and columns likewise. x [N, C, H, W],
 * y [N, C, Ho, Wo] OVERWRITTEN. Ho = Wo = 1 (global average pool) takes a
 * fast path. Errors: sizes < 1. */
int fd_adaptive_avgpool2d_forward(int N, int C, int H, int W, int Ho, int Wo, const float *x,
				  float *y, struct fd_err *e);
/* dx += dy spread evenly over each cell's window: ADDS. */
int fd_adaptive_avgpool2d_backward(int N, int C, int H, int W, int Ho, int Wo, const float *dy,
				   float *dx, struct fd_err *e);

/* Double references, same semantics (max pool's backward routes each dy to
 * the first maximum of its window, which is what idx records). */
void fd_maxpool2d_ref_forward(const struct fd_pool2d_shape *s, const double *x, double *y);
void fd_maxpool2d_ref_backward(const struct fd_pool2d_shape *s, const double *x, const double *dy,
			       double *dx);
void fd_avgpool2d_ref_forward(const struct fd_pool2d_shape *s, const double *x, double *y);
void fd_avgpool2d_ref_backward(const struct fd_pool2d_shape *s, const double *dy, double *dx);
void fd_adaptive_avgpool2d_ref_forward(int N, int C, int H, int W, int Ho, int Wo, const double *x,
				       double *y);
void fd_adaptive_avgpool2d_ref_backward(int N, int C, int H, int W, int Ho, int Wo, const double *dy,
					double *dx);

#endif
