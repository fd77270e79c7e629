/* optim: the update rules in float32, in the order torch 1.13 evaluates them
 * (its single-tensor code path), so trajectories agree to rounding. */
#include "nn/optim.h"
#include "nn/fd_backend.h"
#include "core/fd_vec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A zeroed moment buffer on the parameters' device (its memory entry). */
static int alloc_moment(const struct fd_optim *o, float **m, int64_t n, struct fd_err *e)
{
	const struct fd_backend *be = fd_backend_of(o->dev);
	if (!be || !be->mem_alloc)
		return fd_err_set(e, "optimizer state on %s: not supported", fd_dev_name(o->dev));
	if (!(*m = be->mem_alloc((size_t)n * sizeof(float))))
		return fd_err_set(e, "out of memory for optimizer state");
	return 0;
}

static int common(struct fd_optim *o, const struct fd_params *p, double lr, double wd,
		  struct fd_err *e)
{
	memset(o, 0, sizeof *o);
	if (!p->grad)
		return fd_err_set(e, "optimizer over unallocated parameters");
	if (!(lr >= 0) || !(wd >= 0))
		return fd_err_set(e, "learning rate %g and weight decay %g must be >= 0", lr, wd);
	o->lr = lr;
	for (int g = 0; g < FD_OPT_MAXGROUP; g++)
		o->weight_decay[g] = wd;
	o->n = p->ntrain;
	o->dev = p->dev;
	o->threads = 1;
	return 0;
}

int fd_optim_adamw(struct fd_optim *o, const struct fd_params *p, double lr, double beta1,
		   double beta2, double eps, double wd, struct fd_err *e)
{
	if (common(o, p, lr, wd, e) < 0)
		return -1;
	if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1 && eps >= 0))
		return fd_err_set(e, "adamw: betas (%g, %g) must lie in [0, 1), eps >= 0", beta1, beta2);
	o->type = FD_OPT_ADAMW;
	o->beta1 = beta1;
	o->beta2 = beta2;
	o->eps = eps;
	if (alloc_moment(o, &o->m, o->n, e) < 0 || alloc_moment(o, &o->v, o->n, e) < 0) {
		fd_optim_free(o);
		return -1;
	}
	return 0;
}

int fd_optim_sgd(struct fd_optim *o, const struct fd_params *p, double lr, double momentum,
		 double dampening, double wd, int nesterov, struct fd_err *e)
{
	if (common(o, p, lr, wd, e) < 0)
		return -1;
	if (!(momentum >= 0) || !(dampening >= 0))
		return fd_err_set(e, "sgd: momentum %g and dampening %g must be >= 0", momentum, dampening);
	if (nesterov && (momentum <= 0 || dampening != 0))
		return fd_err_set(e, "sgd: nesterov momentum requires a momentum and zero dampening");
	o->type = FD_OPT_SGD;
	o->momentum = momentum;
	o->dampening = dampening;
	o->nesterov = nesterov;
	if (momentum > 0 && alloc_moment(o, &o->m, o->n, e) < 0)
		return -1;
	return 0;
}

/* The CPU kernels of the table: one fused pass, OpenMP over the elements. */

/* AdamW over one chunk of CHUNK elements, in a function with AVX-512 and
 * AVX2 clones (core/fd_vec.h): elementwise, the same float operations in
 * the same order in every clone (sqrtf is correctly rounded, and this file
 * is compiled with -fno-math-errno, which lets GCC vectorise it: v >= 0 or
 * NaN, so no errno to set), so the bits are the scalar loop's. */
#define CHUNK 16384

FD_VEC_CLONES
static void adamw_chunk(const struct fd_opt_args *a, int64_t n, float *restrict p, const float *restrict g,
			float *restrict m, float *restrict v)
{
	const float decay = a->decay, b1 = a->b1, b2 = a->b2, a1 = a->a1, a2 = a->a2;
	const float step_size = a->step_size, bc2s = a->bc2s, eps = a->eps;
	for (int64_t i = 0; i < n; i++) {
		p[i] *= decay;
		m[i] = m[i] * b1 + g[i] * a1;
		v[i] = v[i] * b2 + a2 * g[i] * g[i];
		float denom = sqrtf(v[i]) / bc2s + eps;
		p[i] += -step_size * (m[i] / denom);
	}
}

int fd_adamw_step_cpu(const struct fd_opt_args *a, int64_t n, float *p, const float *g, float *m,
		      float *v)
{
	int64_t nc = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for num_threads(a->threads) schedule(static) if (n > 32768)
	for (int64_t b = 0; b < nc; b++) {
		int64_t o = b * CHUNK;
		adamw_chunk(a, n - o < CHUNK ? n - o : CHUNK, p + o, g + o, m + o, v + o);
	}
	return 0;
}

int fd_sgd_step_cpu(const struct fd_opt_args *a, int64_t n, float *p, const float *g, float *buf)
{
	float lr = a->lr, w = a->wd, mom = a->mom, damp = a->damp;
	int first = a->first, nesterov = a->nesterov;
#pragma omp parallel for num_threads(a->threads) schedule(static) if (n > 32768)
	for (int64_t i = 0; i < n; i++) {
		float d = w != 0 ? g[i] + w * p[i] : g[i];
		if (buf) {
			buf[i] = first ? d : buf[i] * mom + damp * d;
			d = nesterov ? d + mom * buf[i] : buf[i];
		}
		p[i] += -lr * d;
	}
	return 0;
}

/* The scalars of group weight decay wd at this step, as the kernels take them. */
static struct fd_opt_args opt_args(const struct fd_optim *o, double wd)
{
	struct fd_opt_args a = {.threads = o->threads};
	if (o->type == FD_OPT_ADAMW) {
		double bc1 = 1.0 - pow(o->beta1, (double)o->step);
		double bc2 = 1.0 - pow(o->beta2, (double)o->step);
		a.decay = (float)(1.0 - o->lr * wd);
		a.b1 = (float)o->beta1, a.b2 = (float)o->beta2;
		a.a1 = (float)(1.0 - o->beta1), a.a2 = (float)(1.0 - o->beta2);
		a.step_size = (float)(o->lr / bc1), a.bc2s = (float)sqrt(bc2), a.eps = (float)o->eps;
	} else {
		a.lr = (float)o->lr, a.wd = (float)wd, a.mom = (float)o->momentum;
		a.damp = (float)(1.0 - o->dampening);
		a.first = o->step == 1;
		a.nesterov = o->nesterov;
	}
	return a;
}

int fd_optim_step(struct fd_optim *o, struct fd_params *p, struct fd_err *e)
{
	if (p->ntrain != o->n)
		return fd_err_set(e, "optimizer state for %lld values, parameters have %lld", (long long)o->n,
				  (long long)p->ntrain);
	const struct fd_backend *be = fd_backend_of(p->dev);
	if (!be || (o->type == FD_OPT_ADAMW ? !be->adamw_step : !be->sgd_step))
		return fd_err_set(e, "%s step on %s: not supported", o->type == FD_OPT_ADAMW ? "adamw" : "sgd",
				  fd_dev_name(p->dev));
	o->step++;
	for (int i = 0; i < p->n; i++) {
		struct fd_pview *pv = &p->v[i];
		if (pv->kind != FD_P_PARAM)
			continue;
		if (pv->group < 0 || pv->group >= FD_OPT_MAXGROUP)
			return fd_err_set(e, "parameter '%s' in group %d", pv->name, pv->group);
		struct fd_opt_args a = opt_args(o, o->weight_decay[pv->group]);
		float *d = p->data + pv->off;
		const float *g = p->grad + pv->off;
		int rc = o->type == FD_OPT_ADAMW
				 ? be->adamw_step(&a, pv->t.numel, d, g, o->m + pv->off, o->v + pv->off)
				 : be->sgd_step(&a, pv->t.numel, d, g, o->m ? o->m + pv->off : NULL);
		if (rc < 0)
			return fd_err_set(e, "optimizer step on '%s' failed", pv->name);
	}
	return 0;
}

void fd_optim_free(struct fd_optim *o)
{
	if (!o)
		return;
	const struct fd_backend *be = fd_backend_of(o->dev);
	if (be && be->mem_free) {
		be->mem_free(o->m);
		be->mem_free(o->v);
	}
	o->m = o->v = NULL;
}

int fd_sched_cosine(struct fd_sched *s, double base_lr, int64_t T_max, double eta_min,
		    int64_t warmup, struct fd_err *e)
{
	memset(s, 0, sizeof *s);
	if (T_max < 1 || warmup < 0 || !(base_lr >= 0) || !(eta_min >= 0))
		return fd_err_set(e, "cosine schedule: T_max %lld, warm-up %lld, lr %g, eta_min %g",
				  (long long)T_max, (long long)warmup, base_lr, eta_min);
	s->base_lr = base_lr;
	s->eta_min = eta_min;
	s->T_max = T_max;
	s->warmup = warmup;
	s->lr = warmup ? base_lr / (double)warmup : base_lr;
	return 0;
}

double fd_sched_step(struct fd_sched *s)
{
	s->epoch++;
	int64_t t = s->epoch - s->warmup; /* cosine epoch */
	if (t < 0) {
		s->lr = s->base_lr * (double)(s->epoch + 1) / (double)s->warmup;
	} else if (t == 0) {
		s->lr = s->base_lr;
	} else {
		int64_t T = s->T_max, r = ((t - 1 - T) % (2 * T) + 2 * T) % (2 * T);
		if (r == 0)
			s->lr += (s->base_lr - s->eta_min) * (1 - cos(M_PI / (double)T)) / 2;
		else
			s->lr = (1 + cos(M_PI * (double)t / (double)T)) /
					(1 + cos(M_PI * (double)(t - 1) / (double)T)) * (s->lr - s->eta_min) +
				s->eta_min;
	}
	return s->lr;
}
