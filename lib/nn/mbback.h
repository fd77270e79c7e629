/* mbback: the back of an inverted-residual block (EfficientNet's MBConv,
 * MobileNetV3's InvertedResidual) at inference as one kernel on CPUs with
 * AVX-512: the squeeze-excitation's gate from channel sums the front
 * kernel made (fd_mbfront_infer), folded per image into the projection's
 * weights (proj(x * g) = (W diag g) x), the projection (BN folded by the
 * caller) and the residual add, so the depthwise output is read once
 * instead of three times (the SE's pooling, its scaling in place, oneDNN's
 * projection). doc/nn-kernels.md "MBConv back at inference". */
#ifndef FD_MBBACK_H
#define FD_MBBACK_H

#include "nn/fd_backend.h"
#include "nn/fd_tensor.h"

/* Whether fd_mbback_infer runs on this CPU in context c for x (the
 * depthwise output) with the SE's act and gate: a CPU context in fp32
 * precision, x a channels-last fp32 [N, C, H, W] on the CPU (or any layout
 * of a 1x1 map: the same memory), act and gate
 * ones fd_se_infer takes, a CPU with AVX-512F. */
int fd_mbback_serves(const struct fd_ctx *c, const struct fd_tensor *x, int act, int gate);

/* y = conv1x1(x * g, wp) + bp (+ res) with, per image n, g = gate(w2
 * act(w1 mean_n + b1) + b2) and mean_n = sums[n] / (H W), the SE's
 * arithmetic of fd_se_infer (fd_se_gate: double, g rounded to float):
 * sums [N][C] x's channel sums per image (double), w1 [Csq, C, 1, 1] (or
 * [Csq, C]), b1 [Csq], w2 [C, Csq, 1, 1] (or [C, Csq]), b2 [C], wp [Cout,
 * C, 1, 1] (or [Cout, C]), bp [Cout]. Per image the weights wp[o][i] g[i]
 * rounded to float; each output the bias plus the products over the input
 * channels in order in fp32 fused multiply-adds, then (add) res's value
 * added. res: NULL (y is a new [N, Cout, H, W] channels-last tensor) or
 * that tensor, channels last, which receives y and is returned: with add 1
 * y plus its values (the residual, in place), with add 0 y over them (an
 * output the caller placed in the arena). The same bits on any thread
 * count. Counts the SE's and the
 * projection's multiply-adds in c->macs as fd_se_infer and fd_conv2d do.
 * Records nothing: refused ("records no gradient") where an input needs
 * a gradient. NULL with c->err (what fd_mbback_serves refuses, shapes, out
 * of memory). */
struct fd_tensor *fd_mbback_infer(struct fd_ctx *c, struct fd_tensor *x, const double *sums, struct fd_tensor *w1,
				  struct fd_tensor *b1, struct fd_tensor *w2, struct fd_tensor *b2, int act, int gate,
				  struct fd_tensor *wp, struct fd_tensor *bp, struct fd_tensor *res, int add);

#endif
