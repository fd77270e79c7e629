/* linear: y = x W^T + b on oneDNN's sgemm (row-major), backward as two more
 * sgemms with beta = 1 so gradients accumulate in place (see linear.h). */
#include "nn/linear.h"

#include <string.h>
#include "nn/fd_dnnl.h"

static int check_sizes(int N, int in, int out, struct fd_err *e)
{
	if (N < 1 || in < 1 || out < 1)
		return fd_err_set(e, "linear N=%d in=%d out=%d: sizes must be positive", N, in, out);
	return 0;
}

int fd_linear_forward(int N, int in, int out, const float *x, const float *w, const float *b,
		      float *y, struct fd_err *e)
{
	if (check_sizes(N, in, out, e))
		return -1;
	/* Start y at the bias and let the product add to it (beta = 1). */
	float beta = 0;
	if (b) {
		#pragma omp parallel for
		for (int n = 0; n < N; n++)
			memcpy(y + (size_t)n * out, b, (size_t)out * sizeof *b);
		beta = 1;
	}
	return fd_dnnl_check(dnnl_sgemm('N', 'T', N, out, in, 1.0f, x, in, w, in, beta, y, out), e,
			     "linear N=%d in=%d out=%d: forward sgemm", N, in, out);
}

int fd_linear_backward_data(int N, int in, int out, const float *dy, const float *w, float *dx,
			    struct fd_err *e)
{
	if (check_sizes(N, in, out, e))
		return -1;
	return fd_dnnl_check(dnnl_sgemm('N', 'N', N, in, out, 1.0f, dy, out, w, in, 1.0f, dx, in), e,
			     "linear N=%d in=%d out=%d: backward-data sgemm", N, in, out);
}

int fd_linear_backward_weights(int N, int in, int out, const float *x, const float *dy, float *dw,
			       float *db, struct fd_err *e)
{
	if (check_sizes(N, in, out, e))
		return -1;
	if (fd_dnnl_check(dnnl_sgemm('T', 'N', out, in, N, 1.0f, dy, out, x, in, 1.0f, dw, in), e,
			  "linear N=%d in=%d out=%d: backward-weights sgemm", N, in, out))
		return -1;
	if (db) {
		#pragma omp parallel for
		for (int o = 0; o < out; o++) {
			float s = 0;
			for (int n = 0; n < N; n++)
				s += dy[(size_t)n * out + o];
			db[o] += s;
		}
	}
	return 0;
}

void fd_linear_ref_forward(int N, int in, int out, const double *x, const double *w, const double *b,
			   double *y)
{
	for (int n = 0; n < N; n++)
		for (int o = 0; o < out; o++) {
			double s = b ? b[o] : 0;
			for (int i = 0; i < in; i++)
				s += x[(size_t)n * in + i] * w[(size_t)o * in + i];
			y[(size_t)n * out + o] = s;
		}
}

void fd_linear_ref_backward_data(int N, int in, int out, const double *dy, const double *w, double *dx)
{
	for (int n = 0; n < N; n++)
		for (int o = 0; o < out; o++)
			for (int i = 0; i < in; i++)
				dx[(size_t)n * in + i] += dy[(size_t)n * out + o] * w[(size_t)o * in + i];
}

void fd_linear_ref_backward_weights(int N, int in, int out, const double *x, const double *dy,
				    double *dw, double *db)
{
	for (int n = 0; n < N; n++)
		for (int o = 0; o < out; o++) {
			double g = dy[(size_t)n * out + o];
			if (db)
				db[o] += g;
			for (int i = 0; i < in; i++)
				dw[(size_t)o * in + i] += g * x[(size_t)n * in + i];
		}
}
