/* bfw: fd's own bf16 convolution backward-weights over channels-last x and
 * dy, on CPUs with AVX512-BF16 and without AMX, for the layers where
 * oneDNN 2.6's bf16 kernels fall short there: image layers (a model's
 * first convolution, 3 input channels: its jit_bf16 kernel ran at 22% of
 * the bf16 peak on a Zen 4) and the shapes fd_bfw_serves names
 * (doc/nn-kernels.md "fd's bf16 backward-weights"). conv2d.c's bf16 CPU
 * plans call it for those; their forward and backward-data stay oneDNN's. */
#ifndef FD_BFW_H
#define FD_BFW_H

#include <stdint.h>

#include "nn/conv2d.h"

/* The most input and output channels the kernel takes (K a multiple of 16,
 * and of 64 above 128). */
#define FD_BFW_MAX_C 512
#define FD_BFW_MAX_K 512
/* The most input channels of an image layer (served whatever its shape). */
#define FD_BFW_IMG_C 4

/* Whether fd_bfw_bwd_weights_cpu computes shape s on this CPU: ungrouped,
 * no dilation, no bias, 1 to FD_BFW_MAX_C input channels, K a multiple of
 * 16 up to 128 or of 64 up to FD_BFW_MAX_K, any kernel size, stride and
 * padding, x and y both FD_NHWC, and a CPU with AVX512-BF16 and without
 * AMX (there oneDNN's AMX kernels, not measured against this one, stay in
 * charge). */
int fd_bfw_computes(const struct fd_conv2d_shape *s);

/* Whether conv2d's bf16 plans run shape s's backward-weights here: what
 * fd_bfw_computes takes, and either an image layer (1 to FD_BFW_IMG_C input
 * channels) or a shape of the measured rule (doc/nn-kernels.md). The rule
 * is static (no timing), so results stay reproducible. */
int fd_bfw_serves(const struct fd_conv2d_shape *s);

/* dw [K, C, kh, kw] += dL/dw of the convolution of shape s (one
 * fd_bfw_computes takes) for x [N, H, W, C] and dy [N, Ho, Wo, K], both
 * channels last: x in fp32 (x, rounded to bf16 to nearest even as
 * fd_dnnl_to_bf16 rounds it) or bf16 (xb, x NULL), dy likewise (dy or dyb).
 * bf16 products, exact in fp32 and summed by pairs of output pixels
 * (vdpbf16ps) in fp32 over groups of whole output rows (at least 256
 * pairs), the groups of a chunk in double, a fixed number of chunks (set by
 * the shape, not by c->threads) folded in order: the same bits for any
 * thread count. Runs on c->threads OpenMP threads; scratch (a bf16 copy of
 * x with its padding, the chunks' partial sums, a row buffer per thread)
 * comes from c's arena and is released before returning. -1 with c->err (a
 * shape it does not take, a CPU without AVX512-BF16 or with AMX, out of
 * memory). */
int fd_bfw_bwd_weights_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, const float *x,
			   const uint16_t *xb, const float *dy, const uint16_t *dyb, float *dw);

#endif
