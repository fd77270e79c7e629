/* linear: fully connected layer y = x W^T + b over row-major float32, as
 * torch.nn.functional.linear(x, weight, bias) (torch.nn.Linear): the taped
 * op, the CPU kernels of the op table (oneDNN's sgemm) and plain-loop double
 * references for the tests. */
#ifndef FD_LINEAR_H
#define FD_LINEAR_H

#include <stdint.h>
#include "nn/fd_tensor.h"

/* F.linear(x, w, b): x [N, in], w [out, in], b [out] or NULL; returns
 * [N, out]. Backward adds into dx, dw, db. Adds N*in*out to c->macs. */
struct fd_tensor *fd_linear(struct fd_ctx *c, struct fd_tensor *x, struct fd_tensor *w,
			    struct fd_tensor *b);

/* CPU kernels (table entries linear_fwd, linear_bwd) on oneDNN's sgemm, run
 * on c->threads: x [N, in], w [out, in], b [out] or NULL, y [N, out]; fwd
 * OVERWRITES y = x w^T + b; bwd ADDS dx += dy w, dw += dy^T x, db += column
 * sums of dy (each NULL = not wanted; x is read only for dw, w only for dx).
 * Errors (sizes < 1 or beyond 2^31, the sgemm status) go to c->err. */
int fd_linear_fwd_cpu(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
		      const float *w, const float *b, float *y);
int fd_linear_bwd_cpu(struct fd_ctx *c, int64_t N, int64_t in, int64_t out, const float *x,
		      const float *w, const float *dy, float *dx, float *dw, float *db);

/* Plain-loop references in double; same layouts and semantics. */
void fd_linear_ref_forward(int N, int in, int out, const double *x, const double *w, const double *b,
			   double *y);
void fd_linear_ref_backward_data(int N, int in, int out, const double *dy, const double *w, double *dx);
void fd_linear_ref_backward_weights(int N, int in, int out, const double *x, const double *dy,
				    double *dw, double *db);

#endif
