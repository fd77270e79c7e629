/* layout: moving 4-D CPU tensors between NCHW and NHWC (enum fd_layout, see
 * doc/nn-kernels.md "Layouts"), as a taped op, and the helpers ops use to
 * keep a tensor's layout. */
#ifndef FD_LAYOUT_H
#define FD_LAYOUT_H

#include "nn/fd_tensor.h"

/* Whether t's elements are in channels-last order with H*W > 1 (a 4-D
 * tensor with H*W == 1 has the same memory in both orders). */
int fd_is_nhwc(const struct fd_tensor *t);

/* x with its elements in layout L: x itself when it is already so (or is not
 * 4-D, or has H*W == 1), else a copy made by a taped transpose (backward adds
 * the transposed gradient into x's). Only CPU tensors can be converted
 * ("not supported" otherwise). NULL on error (c->err). */
struct fd_tensor *fd_to_layout(struct fd_ctx *c, struct fd_tensor *x, enum fd_layout L);

/* A new uninitialised arena tensor with x's device, shape and layout. */
struct fd_tensor *fd_tensor_like(struct fd_ctx *c, const struct fd_tensor *x);

/* dst = (add ? dst : 0) + the [rows, cols] matrix src transposed, for each
 * of n matrices ([n, rows, cols] -> [n, cols, rows]): the CPU kernel behind
 * fd_to_layout (NCHW -> NHWC is rows C, cols H*W), on `threads` threads;
 * src and dst do not overlap. Tiles of 32 x 32, except 3 rows without add
 * (an RGB image into channels last: one interleaving loop). */
void fd_transpose_cpu(int threads, int64_t n, int64_t rows, int64_t cols, const float *src, float *dst,
		      int add);

#endif
