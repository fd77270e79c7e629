/* batchnorm2d: plain C + OpenMP over channels (see batchnorm2d.h). One channel
 * is N strided planes of HW floats; each pass streams them in order. */
#include "nn/batchnorm2d.h"

#include <math.h>
#include <stddef.h>

#include "core/fd_vec.h"

#define PLANE(p, n, c) ((p) + ((size_t)(n) * C + (c)) * HW)

/* The per-plane loops. Sums run in double over 8 interleaved accumulators
 * (element i goes to accumulator i % 8, folded pairwise at the end): a fixed
 * order, so the result does not depend on the vector width of the clone that
 * runs, nor on threads (one channel is one thread's work), and 8 independent
 * chains instead of one latency-bound chain. */
#define NACC 8

static double fold8(const double *a)
{
	return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

FD_VEC_CLONES
static void plane_sum(const float *x, int n, double *acc)
{
	int i = 0;
	for (; i + NACC <= n; i += NACC)
		for (int k = 0; k < NACC; k++)
			acc[k] += x[i + k];
	for (int k = 0; i < n; i++, k++)
		acc[k] += x[i];
}

FD_VEC_CLONES
static void plane_sqdev(const float *x, int n, double mean, double *acc)
{
	int i = 0;
	for (; i + NACC <= n; i += NACC)
		for (int k = 0; k < NACC; k++) {
			double d = x[i + k] - mean;
			acc[k] += d * d;
		}
	for (int k = 0; i < n; i++, k++) {
		double d = x[i] - mean;
		acc[k] += d * d;
	}
}

/* acc_g[k] += dy, acc_gx[k] += dy * (x - mean) */
FD_VEC_CLONES
static void plane_dysums(const float *g, const float *x, int n, double mean, double *acc_g,
			 double *acc_gx)
{
	int i = 0;
	for (; i + NACC <= n; i += NACC)
		for (int k = 0; k < NACC; k++) {
			acc_g[k] += g[i + k];
			acc_gx[k] += g[i + k] * (x[i + k] - mean);
		}
	for (int k = 0; i < n; i++, k++) {
		acc_g[k] += g[i];
		acc_gx[k] += g[i] * (x[i] - mean);
	}
}

FD_VEC_CLONES
static void plane_affine(const float *x, float *y, int n, float a, float b)
{
	for (int i = 0; i < n; i++)
		y[i] = x[i] * a + b;
}

FD_VEC_CLONES
static void plane_dx_train(const float *g, const float *x, float *dx, int n, float k, float cm,
			   float cx, float mean)
{
	for (int i = 0; i < n; i++)
		dx[i] += k * (g[i] - cm - (x[i] - mean) * cx);
}

FD_VEC_CLONES
static void plane_axpy(const float *g, float *dx, int n, float k)
{
	for (int i = 0; i < n; i++)
		dx[i] += k * g[i];
}

int fd_batchnorm2d_forward_train(int N, int C, int HW, const float *x, const float *weight,
				 const float *bias, float *running_mean, float *running_var,
				 double momentum, double eps, float *y, float *save_mean,
				 float *save_invstd, struct fd_err *e)
{
	double M = (double)N * HW;
	if (N < 1 || C < 1 || HW < 1)
		return fd_err_set(e, "batchnorm2d N=%d C=%d HW=%d: sizes must be positive", N, C, HW);
	if (M < 2)
		return fd_err_set(e, "batchnorm2d N=%d C=%d HW=%d: training needs more than 1 value per channel",
				  N, C, HW);
	#pragma omp parallel for schedule(dynamic, 1)
	for (int c = 0; c < C; c++) {
		double acc[NACC] = {0}, acc2[NACC] = {0};
		for (int n = 0; n < N; n++)
			plane_sum(PLANE(x, n, c), HW, acc);
		double mean = fold8(acc) / M;
		/* second pass about the mean: no cancellation for large offsets */
		for (int n = 0; n < N; n++)
			plane_sqdev(PLANE(x, n, c), HW, mean, acc2);
		double var = fold8(acc2) / M, invstd = 1.0 / sqrt(var + eps);
		float a = (float)(weight[c] * invstd), b = (float)(bias[c] - mean * weight[c] * invstd);
		for (int n = 0; n < N; n++)
			plane_affine(PLANE(x, n, c), PLANE(y, n, c), HW, a, b);
		running_mean[c] = (float)((1 - momentum) * running_mean[c] + momentum * mean);
		running_var[c] = (float)((1 - momentum) * running_var[c] + momentum * var * M / (M - 1));
		save_mean[c] = (float)mean;
		save_invstd[c] = (float)invstd;
	}
	return 0;
}

void fd_batchnorm2d_forward_eval(int N, int C, int HW, const float *x, const float *weight,
				 const float *bias, const float *running_mean, const float *running_var,
				 double eps, float *y)
{
	#pragma omp parallel for collapse(2)
	for (int n = 0; n < N; n++)
		for (int c = 0; c < C; c++) {
			double invstd = 1.0 / sqrt((double)running_var[c] + eps);
			float a = (float)(weight[c] * invstd);
			float b = (float)(bias[c] - running_mean[c] * weight[c] * invstd);
			plane_affine(PLANE(x, n, c), PLANE(y, n, c), HW, a, b);
		}
}

/* Per channel: sum(dy) and sum(dy * (x - mean)), in double. */
static void dy_sums(int N, int C, int HW, int c, const float *dy, const float *x, double mean,
		    double *sdy, double *sdyx)
{
	double ag[NACC] = {0}, agx[NACC] = {0};
	for (int n = 0; n < N; n++)
		plane_dysums(PLANE(dy, n, c), PLANE(x, n, c), HW, mean, ag, agx);
	*sdy = fold8(ag), *sdyx = fold8(agx);
}

void fd_batchnorm2d_backward_train(int N, int C, int HW, const float *dy, const float *x,
				   const float *weight, const float *save_mean, const float *save_invstd,
				   float *dx, float *dweight, float *dbias)
{
	double M = (double)N * HW;
	#pragma omp parallel for schedule(dynamic, 1)
	for (int c = 0; c < C; c++) {
		double mean = save_mean[c], invstd = save_invstd[c], sdy, sdyx;
		dy_sums(N, C, HW, c, dy, x, mean, &sdy, &sdyx);
		if (dweight)
			dweight[c] += (float)(sdyx * invstd);
		if (dbias)
			dbias[c] += (float)sdy;
		if (!dx)
			continue;
		/* dx = k * (dy - sdy/M - (x - mean) * invstd^2 * sdyx/M), k = weight * invstd */
		float k = (float)(weight[c] * invstd);
		float cm = (float)(sdy / M), cx = (float)(invstd * invstd * sdyx / M);
		float fmean = (float)mean;
		for (int n = 0; n < N; n++)
			plane_dx_train(PLANE(dy, n, c), PLANE(x, n, c), PLANE(dx, n, c), HW, k, cm, cx, fmean);
	}
}

void fd_batchnorm2d_backward_eval(int N, int C, int HW, const float *dy, const float *x,
				  const float *weight, const float *running_mean,
				  const float *running_var, double eps, float *dx, float *dweight,
				  float *dbias)
{
	#pragma omp parallel for schedule(dynamic, 1)
	for (int c = 0; c < C; c++) {
		double invstd = 1.0 / sqrt((double)running_var[c] + eps), sdy, sdyx;
		if (dweight || dbias) {
			dy_sums(N, C, HW, c, dy, x, running_mean[c], &sdy, &sdyx);
			if (dweight)
				dweight[c] += (float)(sdyx * invstd);
			if (dbias)
				dbias[c] += (float)sdy;
		}
		if (!dx)
			continue;
		float k = (float)(weight[c] * invstd);
		for (int n = 0; n < N; n++)
			plane_axpy(PLANE(dy, n, c), PLANE(dx, n, c), HW, k);
	}
}

/* ---- double references ---- */

void fd_batchnorm2d_ref_forward_train(int N, int C, int HW, const double *x, const double *weight,
				      const double *bias, double eps, double *y, double *mean,
				      double *var)
{
	double M = (double)N * HW;
	for (int c = 0; c < C; c++) {
		double s = 0, ss = 0;
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++)
				s += PLANE(x, n, c)[i];
		mean[c] = s / M;
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++)
				ss += (PLANE(x, n, c)[i] - mean[c]) * (PLANE(x, n, c)[i] - mean[c]);
		var[c] = ss / M;
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++)
				PLANE(y, n, c)[i] = (PLANE(x, n, c)[i] - mean[c]) / sqrt(var[c] + eps) * weight[c] +
						    bias[c];
	}
}

void fd_batchnorm2d_ref_backward_train(int N, int C, int HW, const double *dy, const double *x,
				       const double *weight, double eps, double *dx, double *dweight,
				       double *dbias)
{
	double M = (double)N * HW;
	for (int c = 0; c < C; c++) {
		double s = 0, ss = 0, sdy = 0, sdyxh = 0;
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++)
				s += PLANE(x, n, c)[i];
		double mean = s / M;
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++)
				ss += (PLANE(x, n, c)[i] - mean) * (PLANE(x, n, c)[i] - mean);
		double invstd = 1 / sqrt(ss / M + eps);
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++) {
				sdy += PLANE(dy, n, c)[i];
				sdyxh += PLANE(dy, n, c)[i] * (PLANE(x, n, c)[i] - mean) * invstd;
			}
		dweight[c] += sdyxh;
		dbias[c] += sdy;
		for (int n = 0; n < N; n++)
			for (int i = 0; i < HW; i++) {
				double xh = (PLANE(x, n, c)[i] - mean) * invstd;
				PLANE(dx, n, c)[i] += weight[c] * invstd *
						      (PLANE(dy, n, c)[i] - sdy / M - xh * sdyxh / M);
			}
	}
}

void fd_batchnorm2d_ref_forward_eval(int N, int C, int HW, const double *x, const double *weight,
				     const double *bias, const double *running_mean,
				     const double *running_var, double eps, double *y)
{
	for (int n = 0; n < N; n++)
		for (int c = 0; c < C; c++)
			for (int i = 0; i < HW; i++)
				PLANE(y, n, c)[i] = (PLANE(x, n, c)[i] - running_mean[c]) /
							    sqrt(running_var[c] + eps) * weight[c] +
						    bias[c];
}

void fd_batchnorm2d_ref_backward_eval(int N, int C, int HW, const double *dy, const double *x,
				      const double *weight, const double *running_mean,
				      const double *running_var, double eps, double *dx, double *dweight,
				      double *dbias)
{
	for (int n = 0; n < N; n++)
		for (int c = 0; c < C; c++) {
			double invstd = 1 / sqrt(running_var[c] + eps);
			for (int i = 0; i < HW; i++) {
				double g = PLANE(dy, n, c)[i];
				PLANE(dx, n, c)[i] += g * weight[c] * invstd;
				dweight[c] += g * (PLANE(x, n, c)[i] - running_mean[c]) * invstd;
				dbias[c] += g;
			}
		}
}
