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
/* The same written over x (as fd_relu_; bit for bit the values and
 * gradients of fd_stochastic_depth): the caller guarantees x is read by no
 * later op and its maker does not read its output in backward (mul, add,
 * linear, conv2d, batchnorm2d do not). */
struct fd_tensor *fd_stochastic_depth_(struct fd_ctx *c, struct fd_tensor *x, float p);

/* The oracles for the tests (t_nn_fd64), in double, given the randomness:
 * dropout with a fixed keep mask [n] (1 keep, 0 drop) and scale 1 / (1 - p):
 * y = keep ? x scale : 0; stochastic depth as a row scaling with factors
 * f [rows] (0 or 1 / (1 - p)): y[r, i] = x[r, i] f[r]. Forwards overwrite y,
 * backwards ADD the same masking/scaling of dy into dx. */
void fd_dropout_ref_forward(int64_t n, double scale, const uint8_t *keep, const double *x, double *y);
void fd_dropout_ref_backward(int64_t n, double scale, const uint8_t *keep, const double *dy, double *dx);
void fd_rowscale_ref_forward(int64_t rows, int64_t inner, const double *f, const double *x, double *y);
void fd_rowscale_ref_backward(int64_t rows, int64_t inner, const double *f, const double *dy,
			      double *dx);

int fd_dropout_fwd_cpu(struct fd_ctx *c, int64_t n, float p, uint64_t seed, uint64_t stream,
		       const float *x, float *y, uint8_t *keep);
int fd_dropout_bwd_cpu(struct fd_ctx *c, int64_t n, float scale, const uint8_t *keep,
		       const float *dy, float *dx);
int fd_rowscale_fwd_cpu(struct fd_ctx *c, int64_t rows, int64_t inner, const float *f,
			const float *x, float *y);
int fd_rowscale_bwd_cpu(struct fd_ctx *c, int64_t rows, int64_t inner, const float *f,
			const float *dy, float *dx);

#endif
