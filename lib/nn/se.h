/* se: torchvision.ops.SqueezeExcitation's forward as one in-place kernel
 * for inference on the CPU (EfficientNet's and MobileNetV3's SE blocks at
 * inference: lib/models/mbconv.c), where the taped path runs four ops and
 * three passes over the block's largest tensor (adaptive average pool, two
 * 1x1 convolutions on 1x1 maps, the broadcast multiply into a new tensor).
 * doc/nn-kernels.md "Squeeze-excitation at inference". */
#ifndef FD_SE_H
#define FD_SE_H

#include "nn/fd_backend.h"
#include "nn/fd_tensor.h"

/* x * gate(w2 act(w1 mean(x) + b1) + b2), torchvision's
 * SqueezeExcitation(C, Csq, act, gate) with fc1 = (w1, b1), fc2 = (w2, b2):
 * x [N, C, H, W] (FD_NCHW or FD_NHWC), w1 [Csq, C, 1, 1] or [Csq, C], b1
 * [Csq], w2 [C, Csq, 1, 1] or [C, Csq], b2 [C], all on the CPU; act and gate
 * are relu, hardswish, hardsigmoid, silu or sigmoid (as fd_act). x is
 * OVERWRITTEN with the result and returned (no new tensor): the caller must
 * not need x's old values. Per sample, one pass over x sums each channel
 * (in double; channels last, groups of four rows summed in float first), the two small matrix-vector products run in double (sums of
 * 8 interleaved partial sums in a fixed order: the same bits from every
 * vector width) with the activations, then one pass scales x by the gate
 * rounded to float; samples are split over c->threads. Records nothing:
 * refused ("records no gradient") when an input would need a gradient
 * (fd_needs_grad), as fd_conv2d_infer. Adds the two convolutions'
 * multiply-adds (2 N C Csq) to c->macs, as fd_conv2d would. NULL on error (c->err: shapes,
 * device, activation). */
struct fd_tensor *fd_se_infer(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w1, struct fd_tensor *b1,
			      struct fd_tensor *w2, struct fd_tensor *b2, enum fd_act act, enum fd_act gate);

/* The gates of one sample: g[k] = gate(W2 h + B2)[k] (rounded to float)
 * with h = act(W1 mean + B1) (h: Q doubles of scratch), mean the sample's
 * channel means [C] in double, W1 [Q][C], W2 [C][Q]: fd_se_infer's
 * arithmetic, for kernels that pool x themselves (mbback). */
void fd_se_gate(int64_t C, int64_t Q, const double *mean, const float *W1, const float *B1, const float *W2,
		const float *B2, enum fd_act act, enum fd_act gate, double *h, float *g);
/* Whether fd_se_infer takes k as its act or gate */
int fd_se_act_ok(enum fd_act k);

#endif
