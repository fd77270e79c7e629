/* wino: fd's own Winograd F(4x4, 3x3) convolution over channels-last fp32
 * activations: the forward and backward-data of a 3x3 stride-1 convolution,
 * for the CPUs and oneDNN builds that have no Winograd of their own (oneDNN
 * 2.x has one on AVX-512 only, 3.x none). conv2d.c's plans call it where
 * c->winograd asks for Winograd and fd_wino_serves takes the shape
 * (doc/nn-kernels.md "fd's own Winograd"); backward-weights stays oneDNN's
 * direct kernel. */
#ifndef FD_WINO_H
#define FD_WINO_H

#include "nn/conv2d.h"

/* Whether the kernels below take shape s: ungrouped 3x3, stride 1, no
 * dilation, padding at most 2 (backward-data is the forward of dy with
 * padding 2 - p), x and y both FD_NHWC, at least FD_CONV2D_WINO_MIN_C
 * channels in and out. Static (no timing), so results stay reproducible. */
int fd_wino_serves(const struct fd_conv2d_shape *s);

/* y = conv(x, w) + b (b NULL: none), then max(., 0) when relu; with add,
 * y = relu(y + conv(x, w) + b) instead (oneDNN's sum post-op order). x
 * [N, H, W, C] and y [N, Ho, Wo, K] channels last, w [K, C, 3, 3] as torch
 * has it. Each output is A^T [(G g G^T) . (B^T d B)] A of its 4x4 tile
 * (Lavin's matrices), the 36 products summed over C in channel order: the
 * same bits on any thread count. Runs on c->threads OpenMP threads; the
 * transformed weights (36 x C x K floats, K rounded up to 16) and each
 * thread's tiles come from c's arena and are released before returning.
 * -1 with c->err (out of memory, a shape fd_wino_serves refuses). */
int fd_wino_fwd_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, const float *x, const float *w,
		    const float *b, int relu, int add, float *y);

/* dx += dL/dx for y = conv(x, w) (dx = when over): the forward above of dy
 * [N, Ho, Wo, K] with the flipped, transposed weights and padding 2 - p,
 * into dx [N, H, W, C]. Same threads, scratch and failures. */
int fd_wino_bwd_data_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, const float *dy, const float *w,
			 float *dx, int over);

/* dw += dL/dw (w [K, C, 3, 3]) and db += sum of dy (with s->bias; either
 * may be NULL) for y = conv(x, w): G^T [sum over tiles (B^T d B) . (A dyt
 * A^T)] G per (out, in) kernel, the sums over tiles in blocks fixed by the
 * shape and added in block order: the same bits on any thread count. x
 * [N, H, W, C], dy [N, Ho, Wo, K] channels last. Scratch (36 x C x K
 * floats for the sums, a block's transformed tiles) from c's arena,
 * released before returning. -1 with c->err. */
int fd_wino_bwd_weights_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, const float *x, const float *dy,
			    float *dw, float *db);

#endif
