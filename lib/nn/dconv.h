/* dconv: fd's own direct convolution forward over channels-last fp32
 * activations for kxk layers (ResNets' 3x3, strided or not), where oneDNN
 * 2.6's jit:avx2 runs at 29-51% of the FMA peak on AVX2 CPUs
 * (doc/nn-kernels.md "fd's direct forward"). conv2d.c's fp32 CPU plans
 * that are not Winograd call it for the shapes fd_dconv_serves accepts on
 * CPUs with AVX2 and FMA but without AVX-512; their backward passes stay
 * oneDNN's. */
#ifndef FD_DCONV_H
#define FD_DCONV_H

#include "nn/conv2d.h"

/* The most taps (kh * kw) the kernel takes. */
#define FD_DCONV_MAX_TAPS 49
/* The most input channels of an image layer (x NCHW, y NHWC: a model's
 * first convolution, reading the image as it comes). */
#define FD_DCONV_IMG_MAX_C 4

/* Whether fd_dconv_fwd_cpu computes shape s on this CPU: ungrouped, any
 * stride, no dilation, 2 to FD_DCONV_MAX_TAPS taps (not 1x1), x and y
 * FD_NHWC with at least 16 input channels or x FD_NCHW and y FD_NHWC with
 * 1 to FD_DCONV_IMG_MAX_C (an image layer), and a CPU with AVX2 and FMA. */
int fd_dconv_serves(const struct fd_conv2d_shape *s);
/* Whether this CPU runs the kernel at all (AVX2 and FMA). */
int fd_dconv_takes_cpu(void);

/* y [N, Ho, Wo, K] = (add: y +) conv(x [N, H, W, C] or, an image layer,
 * [N, C, H, W], w [K, C, kh, kw]) + b, then the activation act (enum
 * fd_conv_post: none, ReLU, SiLU or hardswish, act_inline.h's formulas; a
 * NaN stays NaN), for a shape fd_dconv_serves takes; b is read only with
 * s->bias. Each output is the fp32 sum, by fused multiply-adds from 0, of
 * its taps in (r, q) order and channels in order (an image layer: channels,
 * then (r, q)), then + b, + the old y, the activation: the same bits for
 * any thread count.
 * Runs on c->threads OpenMP threads over groups of output rows; the
 * weights are packed per call into scratch (fd_dconv_scratch(s) floats;
 * NULL: taken from c's arena and released before returning). -1 with
 * c->err (a shape it does not take, out of memory). */
int fd_dconv_fwd_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, const float *x, const float *w,
		     const float *b, int act, int add, float *scratch, float *y);

/* The floats of fd_dconv_fwd_cpu's scratch for shape s: the packed weights
 * (K rounded up to 16, times kh kw C), C + 1, and 4 C kh kw (the image
 * layers' tap tables). */
int64_t fd_dconv_scratch(const struct fd_conv2d_shape *s);

#endif
