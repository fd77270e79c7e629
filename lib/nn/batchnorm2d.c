/* batchnorm2d: plain C + OpenMP over channels (see batchnorm2d.h). One channel
 * is N strided planes of HW floats; each pass streams them in order. */
#include "nn/batchnorm2d.h"

#include <math.h>
#include <stddef.h>

#define PLANE(p, n, c) ((p) + ((size_t)(n) * C + (c)) * HW)

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
		double s = 0, ss = 0;
		for (int n = 0; n < N; n++) {
			const float *xp = PLANE(x, n, c);
			for (int i = 0; i < HW; i++)
				s += xp[i];
		}
		double mean = s / M;
		/* second pass about the mean: no cancellation for large offsets */
		for (int n = 0; n < N; n++) {
			const float *xp = PLANE(x, n, c);
			for (int i = 0; i < HW; i++) {
				double d = xp[i] - mean;
				ss += d * d;
			}
		}
		double var = ss / M, invstd = 1.0 / sqrt(var + eps);
		float a = (float)(weight[c] * invstd), b = (float)(bias[c] - mean * weight[c] * invstd);
		for (int n = 0; n < N; n++) {
			const float *xp = PLANE(x, n, c);
			float *yp = PLANE(y, n, c);
			for (int i = 0; i < HW; i++)
				yp[i] = xp[i] * a + b;
		}
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
			const float *xp = PLANE(x, n, c);
			float *yp = PLANE(y, n, c);
			for (int i = 0; i < HW; i++)
				yp[i] = xp[i] * a + b;
		}
}

/* Per channel: sum(dy) and sum(dy * (x - mean)), in double. */
static void dy_sums(int N, int C, int HW, int c, const float *dy, const float *x, double mean,
		    double *sdy, double *sdyx)
{
	double s = 0, sx = 0;
	for (int n = 0; n < N; n++) {
		const float *gp = PLANE(dy, n, c), *xp = PLANE(x, n, c);
		for (int i = 0; i < HW; i++) {
			s += gp[i];
			sx += gp[i] * (xp[i] - mean);
		}
	}
	*sdy = s, *sdyx = sx;
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
		for (int n = 0; n < N; n++) {
			const float *gp = PLANE(dy, n, c), *xp = PLANE(x, n, c);
			float *dp = PLANE(dx, n, c);
			for (int i = 0; i < HW; i++)
				dp[i] += k * (gp[i] - cm - (xp[i] - fmean) * cx);
		}
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
		for (int n = 0; n < N; n++) {
			const float *gp = PLANE(dy, n, c);
			float *dp = PLANE(dx, n, c);
			for (int i = 0; i < HW; i++)
				dp[i] += k * gp[i];
		}
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
