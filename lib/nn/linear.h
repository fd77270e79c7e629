/* linear: fully connected layer y = x W^T + b over row-major float32, as
 * torch.nn.functional.linear(x, weight, bias) (torch.nn.Linear), on oneDNN's
 * sgemm; plus plain-loop double references for the tests. */
#ifndef FD_LINEAR_H
#define FD_LINEAR_H

#include "core/fd_err.h"

/* x [N, in], w [out, in], b [out] or NULL (bias=False), y [N, out]:
 * y = x w^T + b, OVERWRITES y. Errors: sizes < 1, or the oneDNN status. */
int fd_linear_forward(int N, int in, int out, const float *x, const float *w, const float *b,
		      float *y, struct fd_err *e);
/* dx [N, in] += dy [N, out] w: ADDS (callers zero dx), as x.grad. */
int fd_linear_backward_data(int N, int in, int out, const float *dy, const float *w, float *dx,
			    struct fd_err *e);
/* dw [out, in] += dy^T x and, when db is not NULL, db [out] += column sums of
 * dy: ADDS, as weight.grad / bias.grad. */
int fd_linear_backward_weights(int N, int in, int out, const float *x, const float *dy, float *dw,
			       float *db, struct fd_err *e);

/* Plain-loop references in double; same layouts and semantics. */
void fd_linear_ref_forward(int N, int in, int out, const double *x, const double *w, const double *b,
			   double *y);
void fd_linear_ref_backward_data(int N, int in, int out, const double *dy, const double *w, double *dx);
void fd_linear_ref_backward_weights(int N, int in, int out, const double *x, const double *dy,
				    double *dw, double *db);

#endif
