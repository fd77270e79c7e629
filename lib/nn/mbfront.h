/* mbfront: the front of an inverted-residual block (EfficientNet's MBConv,
 * MobileNetV3's InvertedResidual) at inference as one kernel on CPUs with
 * AVX-512: the expanding 1x1 convolution and its activation, then the
 * depthwise k x k convolution and its activation, with the expanded
 * activations kept in a ring of k rows per thread (in L2) instead of a
 * tensor of 6x the block's channels at full resolution written by one
 * oneDNN primitive and read back by the next. BN is folded into both
 * convolutions by the caller (lib/models/mbconv.c).
 * doc/nn-kernels.md "MBConv front at inference". */
#ifndef FD_MBFRONT_H
#define FD_MBFRONT_H

#include "nn/fd_backend.h"
#include "nn/fd_tensor.h"

/* The largest depthwise kernel taken */
#define FD_MBFRONT_MAXK 7

/* Whether fd_mbfront_infer runs x's block front on this CPU in context c:
 * a CPU context in fp32 precision (a bf16 context's convolutions run
 * oneDNN's bf16 kernels), x a channels-last fp32 [N, Cin, H, W] on the
 * CPU (or any layout of a 1x1 map: the same memory), an odd k up to
 * FD_MBFRONT_MAXK, stride 1 or 2, act relu, hardswish or silu, and a CPU
 * with AVX-512F. */
int fd_mbfront_serves(const struct fd_ctx *c, const struct fd_tensor *x, int k, int stride, int act);

/* y = act(dw(act(x * we + be)) + bd): we [Cexp, Cin, 1, 1] (or [Cexp,
 * Cin]) and be [Cexp] the expanding convolution (both NULL for a block
 * without one, EfficientNet's first and MobileNetV3's first: y = act(dw(x)
 * + bd), Cexp = Cin), wd [Cexp, 1, k, k] and bd
 * [Cexp] the depthwise one (stride, padding (k - 1) / 2, torchvision's),
 * act an enum fd_act of fd_mbfront_serves's; y [N, Cexp, Ho, Wo] channels
 * last. fp32 sums: the expansion over Cin in order, the depthwise over the
 * taps in row-major order, each from its bias; activations as
 * act_inline.h's. Each output value is computed by one thread the same way
 * whatever the split, so the bits do not depend on c->threads. Counts both
 * convolutions' multiply-adds in c->macs as fd_conv2d does. sums: NULL,
 * or [N][Cexp] doubles that receive y's channel sums per image (the
 * squeeze-excitation's pooling, fd_mbback_infer: each output row's sum in
 * double in column order, the rows added in order; the same bits on any
 * thread count). Records nothing: refused ("records no gradient") where an
 * input needs a gradient. NULL with c->err (what fd_mbfront_serves refuses,
 * shapes, out of memory). */
struct fd_tensor *fd_mbfront_infer(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *we,
				   struct fd_tensor *be, struct fd_tensor *wd, struct fd_tensor *bd, int stride,
				   int act, double *sums);

#endif
