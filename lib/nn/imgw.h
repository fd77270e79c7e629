/* imgw: fd's own bf16 backward-weights for image layers (a model's first
 * convolution: 1 to FD_IMGW_MAX_C input channels), where oneDNN 2.6's
 * jit_bf16 kernel runs at about 22% of the bf16 peak on a Zen 4
 * (SimpleCNN's 3 -> 32 3x3 at 128x128: 8.7 ms a step, more than its
 * fp32 kernel; doc/nn-kernels.md "Image layers' bf16 backward-weights").
 * conv2d.c's bf16 CPU plans call it for the shapes fd_imgw_serves
 * accepts; their forward and backward-data stay oneDNN's. */
#ifndef FD_IMGW_H
#define FD_IMGW_H

#include <stdint.h>

#include "nn/conv2d.h"

/* The most input channels of a layer the kernel takes. */
#define FD_IMGW_MAX_C 4
/* The most output channels (a multiple of 16 up to this). */
#define FD_IMGW_MAX_K 128

/* Whether fd_imgw_bwd_weights_cpu computes shape s's backward-weights on
 * this CPU: ungrouped, no dilation, no bias, 1 to FD_IMGW_MAX_C input
 * channels, K a multiple of 16 up to FD_IMGW_MAX_K, kw * C <= 32, x and y
 * both FD_NHWC, and a CPU with AVX512-BF16 and without AMX (there oneDNN's
 * AMX kernels, not measured against this one, stay in charge). The rule is static (no
 * timing), so results stay reproducible. */
int fd_imgw_serves(const struct fd_conv2d_shape *s);

/* dw [K, C, kh, kw] += dL/dw of the convolution of shape s (one
 * fd_imgw_serves takes) for x [N, H, W, C] and dy [N, Ho, Wo, K], both
 * channels last: x in fp32 (x, rounded to bf16 to nearest even as
 * fd_dnnl_to_bf16 rounds it) or bf16 (xb, x NULL), dy likewise (dy or dyb).
 * bf16 products, exact in fp32 and summed by pairs of output pixels
 * (vdpbf16ps) in fp32 over groups of whole output rows (at least 256
 * pairs), the groups of a chunk in double,
 * a fixed number of chunks (set by the shape, not by c->threads) folded in
 * order: the same bits for any thread count. Runs on c->threads OpenMP
 * threads; scratch (a bf16 copy of x with its padding, the chunks' partial
 * sums, a row buffer per thread) comes from c's arena and is released
 * before returning. -1 with c->err (a shape it does not take, a CPU
 * without AVX512-BF16, out of memory). */
int fd_imgw_bwd_weights_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, const float *x,
			    const uint16_t *xb, const float *dy, const uint16_t *dyb, float *dw);

#endif
