/* pool2d: max, average and adaptive average pooling over contiguous NCHW
 * float32, forward and backward, as torch.nn.functional.max_pool2d /
 * avg_pool2d / adaptive_avg_pool2d: the window shape, the taped ops, the CPU
 * kernels of the op table and double references for the tests. */
#ifndef FD_POOL2D_H
#define FD_POOL2D_H

#include <stdint.h>
#include "nn/fd_tensor.h"

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

/* The max-pool rule, PyTorch's (MaxPoolKernel.cpp, both memory formats):
 * windows are scanned row by row, and a value replaces the running maximum
 * when it is greater or NaN. So the first of equal maxima wins, a NaN beats
 * everything, and of several NaNs the last one scanned wins (its index is
 * what backward routes the gradient to). Written as selects, not branches,
 * so the loops vectorise; with ||, which GCC 12 if-converts where it did
 * not the same test written with | (batchnorm2d's 2x2 pool kernels). */
static inline int fd_mp_take(float v, float m)
{
	return (v > m) || (v != v);
}

/* Check s and compute the output size; errors name the offending field. */
int fd_pool2d_out_size(const struct fd_pool2d_shape *s, int *Ho, int *Wo, struct fd_err *e);

/* F.max_pool2d(x, k, stride, pad, dilation=1, ceil_mode) on [N, C, H, W];
 * backward routes each gradient to its window's maximum (PyTorch's choice,
 * see maxpool2d_fwd below), adding. A channels-last CPU input gives a
 * channels-last output (fd_maxpool2d_nhwc_*_cpu), anything else runs NCHW. */
struct fd_tensor *fd_maxpool2d(struct fd_ctx *c, struct fd_tensor *x, int k, int stride, int pad,
			       int ceil_mode);
/* F.avg_pool2d(x, k, stride, pad, ceil_mode, count_include_pad). */
struct fd_tensor *fd_avgpool2d(struct fd_ctx *c, struct fd_tensor *x, int k, int stride, int pad,
			       int ceil_mode, int count_include_pad);
/* F.adaptive_avg_pool2d(x, (Ho, Wo)); (1, 1) is the global average pool of
 * every torchvision classifier. */
struct fd_tensor *fd_adaptive_avgpool2d(struct fd_ctx *c, struct fd_tensor *x, int Ho, int Wo);

/* CPU kernels (table entries maxpool2d_fwd/_bwd, avgpool2d_fwd/_bwd,
 * adaptive_avgpool2d_fwd/_bwd), plain C + OpenMP over the N*C planes on
 * c->threads (each plane independent, so backward scatters never race). s
 * must have passed fd_pool2d_out_size.
 *
 * maxpool2d_fwd: max_pool2d(x, (kh,kw), (sh,sw), (ph,pw), dilation=1,
 * ceil_mode, return_indices=True): y [N, C, Ho, Wo] and idx (same shape, the
 * flat index ih*W + iw of the max within its input plane, as PyTorch's
 * indices) are OVERWRITTEN. Padding never wins (it is -inf). PyTorch's rule
 * picks the element: windows are scanned row by row and a value replaces
 * the running maximum when it is greater or NaN, so the first of equal
 * maxima wins and a NaN wins (the last NaN scanned, when several). 2x2
 * stride 2 and 3x3 stride 2 padding 1 take fast paths. maxpool2d_bwd: dx += dy scattered through idx.
 * avgpool2d_fwd: avg_pool2d(x, (kh,kw), (sh,sw), (ph,pw), ceil_mode,
 * count_include_pad): y OVERWRITTEN with each window's sum divided by the
 * window size clipped to the padded input (count_include_pad) or to the
 * input. avgpool2d_bwd: dx += each dy spread over its window, same divisor.
 * adaptive_avgpool2d_fwd: adaptive_avg_pool2d(x, (Ho, Wo)): output cell
 * (i, j) averages input rows floor(i*H/Ho) .. ceil((i+1)*H/Ho)-1 and columns
 * likewise, y OVERWRITTEN; Ho = Wo = 1 (global average pool) takes a fast
 * path. adaptive_avgpool2d_bwd: dx += dy spread evenly over each cell's
 * window. Backward kernels ADD. Errors (sizes < 1 or beyond 2^31) go to c->err. */
int fd_maxpool2d_fwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *x, float *y,
			 int32_t *idx);
int fd_maxpool2d_bwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy,
			 const int32_t *idx, float *dx);
int fd_avgpool2d_fwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *x, float *y);
int fd_avgpool2d_bwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy, float *dx);
int fd_adaptive_avgpool2d_fwd_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t H, int64_t W,
				  int64_t Ho, int64_t Wo, const float *x, float *y);
int fd_adaptive_avgpool2d_bwd_cpu(struct fd_ctx *c, int64_t N, int64_t C, int64_t H, int64_t W,
				  int64_t Ho, int64_t Wo, const float *dy, float *dx);

/* Max pooling of channels-last data: x [N, H, W, C] (the fd_tensor layout
 * FD_NHWC of a logical [N, C, H, W]), y and idx [N, Ho, Wo, C] OVERWRITTEN,
 * idx holding ih*W + iw as above (idx NULL: values only, the same ones);
 * the same element chosen as by fd_maxpool2d_fwd_cpu on the NCHW copy. Vectorised over channels, OpenMP
 * over output rows. bwd: dx [N, H, W, C] += dy scattered through idx
 * (threads own disjoint channel blocks). CPU only; s as above. Return 0. */
int fd_maxpool2d_nhwc_fwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *x, float *y,
			      int32_t *idx);
int fd_maxpool2d_nhwc_bwd_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy,
			      const int32_t *idx, float *dx);
/* 1 when s's windows are disjoint (kh == sh, kw == sw, no padding, as
 * SimpleCNN's 2x2/2): every input element lies in at most one window. */
int fd_maxpool2d_disjoint(const struct fd_pool2d_shape *s);
/* fd_maxpool2d_nhwc_bwd_cpu for disjoint windows with dx OVERWRITTEN (a
 * fresh gradient, FD_T_GRAD_FRESH): each element written once, 0 + dy at
 * its window's maximum and 0 elsewhere (in no window too), the bits the
 * scatter gives on a zeroed dx, with no zeroing pass. Return 0. */
int fd_maxpool2d_nhwc_bwd_write_cpu(struct fd_ctx *c, const struct fd_pool2d_shape *s, const float *dy,
				    const int32_t *idx, float *dx);

/* The pieces of a max pool fused after another channels-last op
 * (batchnorm2d's fd_batchnorm2d_act_maxpool), each the bits of the whole
 * kernels above. orow: output row oh of one sample, y and idx [Wo, C]
 * OVERWRITTEN (idx ih*W + iw as above), from rows, the input rows
 * [hr, hr + ...) of that sample that oh's windows read ([W, C] each, hr <=
 * the first of them). grad_rows: for the input positions [m0, m0 + n) of
 * [N*H*W] (channels last), g [n, C] OVERWRITTEN with the gradient the
 * backward gives them from dy and idx [N, Ho, Wo, C] (the sum, over the
 * windows whose maximum a position is, in output order, from +0): the
 * bits of fd_maxpool2d_nhwc_bwd_cpu on a zeroed dx, or of
 * fd_maxpool2d_nhwc_bwd_write_cpu. -1 when an input position lies in more
 * than FD_MP_MAXWIN windows (ceil(kh/sh) * ceil(kw/sw)), else 0. */
#define FD_MP_MAXWIN 16
void fd_maxpool2d_nhwc_orow(const struct fd_pool2d_shape *s, const float *rows, int hr, int oh, float *y,
			    int32_t *idx);
int fd_maxpool2d_nhwc_grad_rows(const struct fd_pool2d_shape *s, int64_t m0, int64_t n, const float *dy,
				const int32_t *idx, float *g);

/* Double references, same semantics (max pool's backward routes each dy to
 * the first maximum of its window, which is what idx records for inputs
 * without NaN). */
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
