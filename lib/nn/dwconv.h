/* dwconv: fd's own depthwise convolution backward-weights (and bias) over
 * channels-last activations, the pass where oneDNN 2.6 runs its generic
 * grouped kernel for kernels of 5x5 and up (doc/onednn.md,
 * doc/nn-kernels.md "Depthwise backward-weights"). conv2d.c's CPU
 * backward calls it for the shapes fd_dwconv_serves accepts; nothing else
 * of a convolution (forward, backward-data) is here. */
#ifndef FD_DWCONV_H
#define FD_DWCONV_H

#include "nn/conv2d.h"

/* The smallest kernel (kh * kw taps) fd_dwconv_bwd_weights_cpu serves: 3x3
 * stays on oneDNN's jit_dw (see fd_dwconv_serves). */
#define FD_DWCONV_MIN_TAPS 25

/* Whether fd_dwconv_bwd_weights_cpu takes shape s's backward-weights:
 * depthwise with multiplier 1 (groups == C == K), x and y both FD_NHWC,
 * and at least FD_DWCONV_MIN_TAPS taps (any stride, padding, dilation).
 * The rule is static (no timing), so results stay reproducible. */
int fd_dwconv_serves(const struct fd_conv2d_shape *s);

/* Depthwise backward-weights for any depthwise shape with multiplier 1
 * (groups == C == K) and x, y FD_NHWC, whatever fd_dwconv_serves says
 * (the rule picks the faster of this and oneDNN): x [N, H, W, C]
 * and dy [N, Ho, Wo, C] (NHWC, fp32), adds dL/dw into dw [C, 1, kh, kw]
 * and sum(dy) into db [C]; either may be NULL (not wanted; db is ignored
 * without s->bias). fp32 products and sums: each output row's products are
 * summed per tap in registers, rows into a fixed number of chunks (set by
 * the shape, not by c->threads), chunks folded in order, so the result is
 * the same bits for any thread count and vector width. Runs on c->threads
 * OpenMP threads; scratch (chunks x (kh*kw + 1) x C floats) comes from c's
 * arena and is released before returning. -1 with c->err (out of memory,
 * a shape that is not channels-last depthwise). */
int fd_dwconv_bwd_weights_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, const float *x,
			      const float *dy, float *dw, float *db);

#endif
