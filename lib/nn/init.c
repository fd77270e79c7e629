/* init: torch.nn.init distributions over fd_rng. */
#include "nn/init.h"

#include <math.h>

void fd_init_rng(struct fd_rng *r, uint64_t seed, const char *name)
{
	fd_rng_init(r, seed, fd_hash_str(name));
}

int fd_init_fans(const struct fd_tensor *t, int64_t *fan_in, int64_t *fan_out, struct fd_err *e)
{
	if (t->ndim < 2)
		return fd_err_set(e, "fan in and fan out need at least 2 dims, the tensor has %d", t->ndim);
	int64_t rf = 1;
	for (int i = 2; i < t->ndim; i++)
		rf *= t->shape[i];
	*fan_in = t->shape[1] * rf;
	*fan_out = t->shape[0] * rf;
	return 0;
}

void fd_init_constant(struct fd_tensor *t, float v)
{
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = v;
}

void fd_init_uniform(struct fd_tensor *t, double lo, double hi, struct fd_rng *r)
{
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = (float)(lo + (hi - lo) * fd_rng_uniform(r));
}

void fd_init_normal(struct fd_tensor *t, double mean, double std, struct fd_rng *r)
{
	for (int64_t i = 0; i < t->numel; i++)
		t->data[i] = (float)(mean + std * fd_rng_normal(r));
}

int fd_init_trunc_normal(struct fd_tensor *t, double mean, double std, double a, double b,
			 struct fd_rng *r, struct fd_err *e)
{
	if (!(std > 0) || !(a < b))
		return fd_err_set(e, "trunc_normal: std %g and bounds [%g, %g]", std, a, b);
	double mass = 0.5 * (erf((b - mean) / std * M_SQRT1_2) - erf((a - mean) / std * M_SQRT1_2));
	if (mass < 1e-3)
		return fd_err_set(e, "trunc_normal: [%g, %g] holds %.2g of N(%g, %g^2)", a, b, mass, mean, std);
	for (int64_t i = 0; i < t->numel; i++) {
		double v;
		do
			v = mean + std * fd_rng_normal(r);
		while (v < a || v > b);
		t->data[i] = (float)v;
	}
	return 0;
}

int fd_init_kaiming_uniform(struct fd_tensor *t, double a, struct fd_rng *r, struct fd_err *e)
{
	int64_t fi = 0, fo = 0;
	if (fd_init_fans(t, &fi, &fo, e) < 0)
		return -1;
	double bound = sqrt(2.0 / (1.0 + a * a)) * sqrt(3.0 / (double)fi);
	fd_init_uniform(t, -bound, bound, r);
	return 0;
}

int fd_init_kaiming_normal_fan_out(struct fd_tensor *t, struct fd_rng *r, struct fd_err *e)
{
	int64_t fi = 0, fo = 0;
	if (fd_init_fans(t, &fi, &fo, e) < 0)
		return -1;
	fd_init_normal(t, 0.0, sqrt(2.0) / sqrt((double)fo), r);
	return 0;
}

int fd_init_bias_default(struct fd_tensor *bias, const struct fd_tensor *w, struct fd_rng *r,
			 struct fd_err *e)
{
	int64_t fi = 0, fo = 0;
	if (fd_init_fans(w, &fi, &fo, e) < 0)
		return -1;
	double bound = fi > 0 ? 1.0 / sqrt((double)fi) : 0.0;
	fd_init_uniform(bias, -bound, bound, r);
	return 0;
}
