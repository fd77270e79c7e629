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

/* Whether fd_dconv_fwd_cpu computes shape s on this CPU: ungrouped, x and y
 * FD_NHWC, any stride, no dilation, 2 to FD_DCONV_MAX_TAPS taps (not 1x1),
 * at least 16 input channels, and a CPU with AVX2 and FMA. */
int fd_dconv_serves(const struct fd_conv2d_shape *s);

/* y [N, Ho, Wo, K] = (add: y +) conv(x [N, H, W, C], w [K, C, kh, kw]) +
 * b, then ReLU when relu (a NaN stays NaN), for a shape fd_dconv_serves
 * takes; b is read only with s->bias. Each output is the fp32 sum, by
 * fused multiply-adds from 0, of its taps in (r, q) order and channels in
 * order, then + b, + the old y, ReLU: the same bits for any thread count.
 * Runs on c->threads OpenMP threads over groups of output rows; the
 * weights are packed per call into scratch (fd_dconv_scratch(s) floats;
 * NULL: taken from c's arena and released before returning). -1 with
 * c->err (a shape it does not take, out of memory). */
int fd_dconv_fwd_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, const float *x, const float *w,
		     const float *b, int relu, int add, float *scratch, float *y);

/* The floats of fd_dconv_fwd_cpu's scratch for shape s: the packed weights
 * (K rounded up to 16, times kh kw C) and C. */
int64_t fd_dconv_scratch(const struct fd_conv2d_shape *s);

#endif
