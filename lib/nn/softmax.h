/* softmax: softmax along one dim (taped). */
#ifndef FD_SOFTMAX_H
#define FD_SOFTMAX_H

#include "nn/fd_tensor.h"

/* y = torch.softmax(x, dim): exp(x - max) / sum, along dim (0..ndim-1) of a
 * contiguous tensor viewed as [outer, C, inner]. Backward (from y):
 * dx += y * (dy - sum(dy * y)). NULL on error (c->err). */
struct fd_tensor *fd_softmax(struct fd_ctx *c, struct fd_tensor *x, int dim);

/* The oracle for the tests (t_nn_fd64): plain loops in double over the same
 * [outer, C, inner] view. Forward overwrites y (max-subtracted like the
 * kernel); backward ADDS y * (dy - sum(dy * y)) into dx, taking y as the
 * kernel does. */
void fd_softmax_ref_forward(int64_t outer, int64_t C, int64_t inner, const double *x, double *y);
void fd_softmax_ref_backward(int64_t outer, int64_t C, int64_t inner, const double *y, const double *dy,
			     double *dx);

int fd_softmax_fwd_cpu(struct fd_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *x,
		       float *y);
int fd_softmax_bwd_cpu(struct fd_ctx *c, int64_t outer, int64_t C, int64_t inner, const float *y,
		       const float *dy, float *dx);

#endif
