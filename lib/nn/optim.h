/* optim: AdamW and SGD (momentum, Nesterov) over an fd_params, with
 * parameter groups; CosineAnnealingLR with optional linear warm-up. */
#ifndef FD_OPTIM_H
#define FD_OPTIM_H

#include <stdint.h>
#include "core/fd_err.h"
#include "nn/fd_params.h"

enum fd_opt_type { FD_OPT_ADAMW, FD_OPT_SGD };

#define FD_OPT_MAXGROUP 4

struct fd_optim {
	enum fd_opt_type type;
	double lr;                             /* current learning rate (the schedule sets it) */
	double weight_decay[FD_OPT_MAXGROUP];  /* per parameter group (fd_pview.group) */
	double beta1, beta2, eps;              /* AdamW */
	double momentum, dampening;            /* SGD */
	int nesterov;
	int64_t step;                          /* steps taken */
	int64_t n;                             /* floats per moment buffer (= params ntrain) */
	enum fd_dev dev;                       /* the parameters' device: moments live there */
	float *m, *v;                          /* one buffer each, laid out like fd_params.grad */
	int threads;                           /* host threads of the CPU update kernels */
};

/* torch.optim.AdamW(lr, betas=(beta1, beta2), eps, weight_decay=wd for every
 * group until changed): p *= 1 - lr wd; m = b1 m + (1-b1) g; v = b2 v +
 * (1-b2) g^2; p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 * Allocates m and v (zeroed) for p's parameters. */
int fd_optim_adamw(struct fd_optim *o, const struct fd_params *p, double lr, double beta1,
		   double beta2, double eps, double wd, struct fd_err *e);
/* torch.optim.SGD(lr, momentum, dampening, weight_decay, nesterov): d = g +
 * wd p; with momentum, buf = d on the first step, else momentum buf +
 * (1 - dampening) d; d = d + momentum buf (Nesterov) or buf; p -= lr d.
 * Nesterov needs momentum > 0 and dampening 0, as torch insists. */
int fd_optim_sgd(struct fd_optim *o, const struct fd_params *p, double lr, double momentum,
		 double dampening, double wd, int nesterov, struct fd_err *e);
/* One update of every FD_P_PARAM from its gradient, at o->lr: one fused
 * kernel of the device's table per parameter tensor (adamw_step, sgd_step),
 * given the group's scalars. */
int fd_optim_step(struct fd_optim *o, struct fd_params *p, struct fd_err *e);
void fd_optim_free(struct fd_optim *o);

/* The CPU update kernels (table entries adamw_step, sgd_step; formulas in
 * struct fd_opt_args, fd_backend.h). Return 0. */
struct fd_opt_args;
int fd_adamw_step_cpu(const struct fd_opt_args *a, int64_t n, float *p, const float *g, float *m,
		      float *v);
int fd_sgd_step_cpu(const struct fd_opt_args *a, int64_t n, float *p, const float *g, float *buf);

/* CosineAnnealingLR(T_max, eta_min) stepped once per epoch, computed with
 * torch's recursive formula (so values track torch's, including past T_max),
 * optionally preceded by `warmup` epochs of linear warm-up: lr = base (t+1) /
 * warmup for t < warmup, then the cosine starting from base. That equals
 * torch SequentialLR([LinearLR(start_factor=1/warmup, total_iters=warmup-1),
 * CosineAnnealingLR(T_max, eta_min)], milestones=[warmup]). */
struct fd_sched {
	double base_lr, eta_min, lr;
	int64_t T_max, warmup, epoch;
};
int fd_sched_cosine(struct fd_sched *s, double base_lr, int64_t T_max, double eta_min,
		    int64_t warmup, struct fd_err *e);
/* Advance one epoch; returns the new learning rate (also in s->lr). */
double fd_sched_step(struct fd_sched *s);

#endif
