/* dropout: dropout and stochastic depth (taped, seeded from the context). */
#ifndef FD_DROPOUT_H
#define FD_DROPOUT_H

#include "nn/fd_tensor.h"

/* PyTorch F.dropout(x, p, training=c->training): in training each element is
 * kept with probability 1 - p and scaled by 1 / (1 - p), else zeroed; p = 1
 * gives zeros; in eval (or p = 0) x itself is returned. The mask comes from
 * Philox(c->seed, fd_ctx_stream(c)) element by element, so it depends on the
 * seed, the step and the op's position in the step, never on threads (torch's
 * generator differs, so masks are not torch's). 0 <= p <= 1. */
struct fd_tensor *fd_dropout(struct fd_ctx *c, struct fd_tensor *x, float p);

/* torchvision.ops.stochastic_depth(x, p, mode="row", training=c->training):
 * each sample (row of dim 0) is kept with probability 1 - p and scaled by
 * 1 / (1 - p), or zeroed entirely. Eval or p = 0: x itself. */
struct fd_tensor *fd_stochastic_depth(struct fd_ctx *c, struct fd_tensor *x, float p);

int fd_dropout_fwd_cpu(struct fd_ctx *c, int64_t n, float p, uint64_t seed, uint64_t stream,
		       const float *x, float *y, uint8_t *keep);
int fd_dropout_bwd_cpu(struct fd_ctx *c, int64_t n, float scale, const uint8_t *keep,
		       const float *dy, float *dx);
int fd_rowscale_fwd_cpu(struct fd_ctx *c, int64_t rows, int64_t inner, const float *f,
			const float *x, float *y);
int fd_rowscale_bwd_cpu(struct fd_ctx *c, int64_t rows, int64_t inner, const float *f,
			const float *dy, float *dx);

#endif
