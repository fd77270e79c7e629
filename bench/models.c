/* bench/models: one registered model's inference and training throughput and
 * peak memory, for bench/models.sh (which runs bench/models_vs_torch.py on the
 * same settings, interleaved). Inference first (eval mode, no tape), then
 * training steps (train mode, forward + BCE-with-logits + backward + AdamW
 * lr 1e-3 wd 1e-2), each after its warm-up; images/s from the median step.
 * Usage: models --list                (the registered names, one a line)
 *        models [--ops] [--winograd] [--precision fp32|bf16] NAME SIZE BATCH THREADS [WARMUP STEPS IWARMUP ISTEPS]
 * --ops: after the timed steps, one more training step timed op by op
 * (c->op_timer: each taped op's forward, each node's backward with its
 * inputs' gradients made, the optimizer), a table on stderr.
 * --precision bf16: the context's conv2d and linear run bf16 (fd_ctx_set_precision).
 * --winograd: fp32 3x3 stride-1 convolutions run Winograd (c->winograd).
 * Without the counts they follow the model's cost, read from the first
 * inference step (forward MACs per image): over 3 G (resnet50, convnext_tiny
 * at 224) 1 + 2 training and 1 + 2 inference steps, else 2 + 3 and 1 + 3
 * (warm-up + timed: the 2 cores this was written on are shared and slow).
 * Prints NAME SIZE train_img/s infer_img/s infer_peak_MiB peak_MiB WARMUP
 * STEPS IWARMUP ISTEPS GMACs (tabs; the counts used, so the torch side can run
 * the same); peaks are ru_maxrss after inference and at the end. */
#include "core/fd_progress.h"
#include "core/fd_rng.h"
#include "models/fd_model.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "opstat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* --ops: the step's table, on stderr */
static void op_table(const char *name, const struct opstats *st, double step, double opt)
{
	double tot[2] = {0, 0};
	for (int i = 0; i < st->n; i++)
		tot[0] += st->o[i].s[0], tot[1] += st->o[i].s[1];
	fprintf(stderr, "%s: one training step %.3f s: forward ops %.3f s, backward %.3f s, optimizer %.3f s\n", name,
		step, tot[0], tot[1], opt);
	fprintf(stderr, "  %-28s %5s %9s %6s %5s %9s %6s\n", "op", "fwd n", "fwd s", "%step", "bwd n", "bwd s",
		"%step");
	for (int i = 0; i < st->n; i++)
		fprintf(stderr, "  %-28s %5d %9.4f %6.1f %5d %9.4f %6.1f\n", st->o[i].op, st->o[i].n[0], st->o[i].s[0],
			100 * st->o[i].s[0] / step, st->o[i].n[1], st->o[i].s[1], 100 * st->o[i].s[1] / step);
}

static double peak_mib(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_maxrss / 1024.0; /* Linux: KiB */
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *t, int n)
{
	qsort(t, (size_t)n, sizeof *t, cmp_d);
	return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static int die(const char *what, const char *msg)
{
	fprintf(stderr, "models: %s: %s\n", what, msg);
	return 1;
}

static int list(void)
{
	for (int i = 0; i < fd_model_count(); i++)
		printf("%s\n", fd_model_arch_at(i)->name);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--list"))
		return list();
	enum fd_precision prec = FD_PREC_FP32;
	int wino = 0, ops = 0;
	if (argc > 1 && !strcmp(argv[1], "--ops")) {
		ops = 1;
		argc--;
		argv++;
	}
	if (argc > 1 && !strcmp(argv[1], "--winograd")) {
		wino = 1;
		argc--;
		argv++;
	}
	if (argc > 2 && !strcmp(argv[1], "--precision")) {
		if (strcmp(argv[2], "fp32") && strcmp(argv[2], "bf16")) {
			fprintf(stderr, "models: --precision must be fp32 or bf16\n");
			return 2;
		}
		prec = strcmp(argv[2], "bf16") ? FD_PREC_FP32 : FD_PREC_BF16;
		argc -= 2;
		argv += 2;
	}
	if (argc != 5 && argc != 9) {
		fprintf(stderr, "usage: models --list | models [--ops] [--winograd] [--precision fp32|bf16] NAME SIZE BATCH THREADS "
				"[WARMUP STEPS IWARMUP ISTEPS]\n");
		return 2;
	}
	const char *name = argv[1];
	int size = atoi(argv[2]), batch = atoi(argv[3]), threads = atoi(argv[4]);
	int autocount = argc == 5;
	int warm = autocount ? 0 : atoi(argv[5]), steps = autocount ? 1 : atoi(argv[6]);
	int iwarm = autocount ? 1 : atoi(argv[7]), isteps = autocount ? 1 : atoi(argv[8]);
	if (size < 32 || batch < 1 || threads < 1 || warm < 0 || steps < 1 || iwarm < 0 || isteps < 1 ||
	    steps > 100 || isteps > 100) {
		fprintf(stderr, "models: bad numbers\n");
		return 2;
	}
	struct fd_err e = {{0}};
	struct fd_ctx c;
	struct fd_model *m;
	struct fd_optim o;
	if (fd_ctx_open(&c, FD_DEV_CPU, threads, 42, &e) < 0 || (fd_ctx_reserve(&c), 0) ||
	    fd_ctx_set_precision(&c, prec, &e) < 0 || (c.winograd = wino, 0) ||
	    fd_model_new(name, 1, 42, &m, &e) < 0 ||
	    fd_optim_adamw(&o, &m->p, 1e-3, 0.9, 0.999, 1e-8, 1e-2, &e) < 0)
		return die(name, e.msg);

	int64_t xs[4] = {batch, 3, size, size}, ts[2] = {batch, 1};
	size_t nx = (size_t)batch * 3 * size * size;
	float *x = malloc(nx * sizeof *x), *t = malloc((size_t)batch * sizeof *t);
	if (!x || !t)
		return die(name, "out of memory");
	struct fd_rng r;
	fd_rng_init(&r, 5, 0);
	for (size_t i = 0; i < nx; i++)
		x[i] = (float)fd_rng_normal(&r);
	for (int i = 0; i < batch; i++)
		t[i] = (float)(fd_rng_u32(&r) & 1);

	double tt[100];
	uint64_t macs = 0;
	c.macs = 0;
	c.training = 0;
	c.grad_enabled = 0;
	for (int s = 0; s < iwarm + isteps; s++) {
		double t0 = fd_now();
		fd_ctx_step(&c);
		if (!fd_model_forward(m, &c, fd_tensor_wrap(&c, FD_DEV_CPU, x, 4, xs)))
			return die(name, c.err.msg);
		if (s == 0) {
			macs = c.macs / (uint64_t)batch;
			if (autocount && macs > 3000000000ull)
				warm = 1, steps = 2, iwarm = 1, isteps = 2;
			else if (autocount)
				warm = 2, steps = 3, iwarm = 1, isteps = 3;
		}
		if (s >= iwarm)
			tt[s - iwarm] = fd_now() - t0;
	}
	double infer = batch / median(tt, isteps), ipeak = peak_mib();

	c.training = 1;
	c.grad_enabled = 1;
	c.reuse_activations = 1; /* as fd-train's training steps */
	for (int s = 0; s < warm + steps; s++) {
		double t0 = fd_now();
		fd_ctx_step(&c);
		fd_params_zero_grad(&m->p);
		struct fd_tensor *y = fd_model_forward(m, &c, fd_tensor_wrap(&c, FD_DEV_CPU, x, 4, xs));
		struct fd_tensor *loss = fd_bce_with_logits(&c, y, fd_tensor_wrap(&c, FD_DEV_CPU, t, 2, ts));
		if (!loss || fd_backward(&c, loss, NULL) < 0)
			return die(name, c.err.msg);
		if (fd_optim_step(&o, &m->p, &e) < 0)
			return die(name, e.msg);
		if (s >= warm)
			tt[s - warm] = fd_now() - t0;
	}
	double train = batch / median(tt, steps);
	if (ops) {
		static struct opstats st;
		c.op_timer = op_time;
		c.op_timer_arg = &st;
		double t0 = fd_now();
		fd_ctx_step(&c);
		fd_params_zero_grad(&m->p);
		c.op_timer_t0 = fd_now();
		struct fd_tensor *y = fd_model_forward(m, &c, fd_tensor_wrap(&c, FD_DEV_CPU, x, 4, xs));
		struct fd_tensor *loss = fd_bce_with_logits(&c, y, fd_tensor_wrap(&c, FD_DEV_CPU, t, 2, ts));
		if (!loss || fd_backward(&c, loss, NULL) < 0)
			return die(name, c.err.msg);
		double t1 = fd_now();
		if (fd_optim_step(&o, &m->p, &e) < 0)
			return die(name, e.msg);
		double t2 = fd_now();
		c.op_timer = NULL;
		op_table(name, &st, t2 - t0, t2 - t1);
	}
	printf("%s\t%d\t%.2f\t%.2f\t%.0f\t%.0f\t%d\t%d\t%d\t%d\t%.3f\n", name, size, train, infer, ipeak,
	       peak_mib(), warm, steps, iwarm, isteps, (double)macs * 1e-9);
	free(x);
	free(t);
	fd_optim_free(&o);
	fd_model_free(m);
	fd_ctx_free(&c);
	return 0;
}
