/* bench/model: training-step and inference images/s of one fd model, and
 * with --ops the time of each taped op of one forward and backward (by op
 * name, summed over the model).
 * Usage: model ARCH SIZE BATCH THREADS STEPS [--ops]
 * Prints "train IMG/S", "infer IMG/S" (best of STEPS after one warm-up step)
 * and the peak RSS in MiB. */
#include "models/fd_model.h"
#include "core/fd_progress.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "opstat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

__attribute__((noreturn)) static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench-model: %s: %s\n", what, msg);
	exit(1);
}


int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: model ARCH SIZE BATCH THREADS STEPS [--ops]\n");
		return 2;
	}
	const char *arch = argv[1];
	int size = atoi(argv[2]), batch = atoi(argv[3]), threads = atoi(argv[4]), steps = atoi(argv[5]);
	int ops = argc > 6 && !strcmp(argv[6], "--ops");
	struct fd_err e = {{0}};
	struct fd_ctx c;
	struct fd_model *m;
	if (fd_ctx_open(&c, FD_DEV_CPU, threads, 1, &e) < 0 || fd_model_new(arch, 1, 1, &m, &e) < 0)
		die(arch, e.msg);
	struct fd_optim o;
	if (fd_optim_adamw(&o, &m->p, 1e-3, 0.9, 0.999, 1e-8, 0.05, &e) < 0)
		die("optimizer", e.msg);
	int64_t xs[4] = {batch, 3, size, size}, ts[2] = {batch, 1};
	float *xd = malloc((size_t)batch * 3 * size * size * sizeof *xd), *td = malloc((size_t)batch * sizeof *td);
	for (int64_t i = 0; i < (int64_t)batch * 3 * size * size; i++)
		xd[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
	for (int i = 0; i < batch; i++)
		td[i] = (float)(i % 2);

	double best = 1e30;
	for (int s = 0; s <= steps; s++) {
		double t0 = fd_now();
		fd_ctx_step(&c);
		fd_params_zero_grad(&m->p);
		struct fd_tensor *x = fd_tensor_wrap(&c, FD_DEV_CPU, xd, 4, xs);
		struct fd_tensor *t = fd_tensor_wrap(&c, FD_DEV_CPU, td, 2, ts);
		struct fd_tensor *loss = fd_bce_with_logits(&c, fd_model_forward(m, &c, x), t);
		if (!loss || fd_backward(&c, loss, NULL) < 0 || fd_optim_step(&o, &m->p, &e) < 0)
			die("train step", c.failed ? c.err.msg : e.msg);
		double dt = fd_now() - t0;
		if (s > 0 && dt < best)
			best = dt;
	}
	printf("train %.2f\n", batch / best);

	double bi = 1e30;
	c.training = 0;
	c.grad_enabled = 0;
	for (int s = 0; s <= steps; s++) {
		double t0 = fd_now();
		fd_ctx_step(&c);
		struct fd_tensor *x = fd_tensor_wrap(&c, FD_DEV_CPU, xd, 4, xs);
		if (!fd_model_forward(m, &c, x))
			die("inference", c.err.msg);
		double dt = fd_now() - t0;
		if (s > 0 && dt < bi)
			bi = dt;
	}
	printf("infer %.2f\n", batch / bi);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("peak_rss_mib %.0f\n", ru.ru_maxrss / 1024.0);

	if (ops) {
		/* one more training step timed op by op through c.op_timer (each
		 * taped op's forward, each node's backward as fd_backward runs it:
		 * fresh gradients written, not zeroed and added into) */
		static struct opstats st;
		c.training = 1;
		c.grad_enabled = 1;
		fd_ctx_step(&c);
		fd_params_zero_grad(&m->p);
		c.op_timer = op_time;
		c.op_timer_arg = &st;
		c.op_timer_t0 = fd_now();
		struct fd_tensor *x = fd_tensor_wrap(&c, FD_DEV_CPU, xd, 4, xs);
		struct fd_tensor *t = fd_tensor_wrap(&c, FD_DEV_CPU, td, 2, ts);
		struct fd_tensor *loss = fd_bce_with_logits(&c, fd_model_forward(m, &c, x), t);
		if (!loss || fd_backward(&c, loss, NULL) < 0)
			die("ops step", c.err.msg);
		c.op_timer = NULL;
		for (int b = 0; b < 2; b++) {
			double tot = 0;
			for (int i = 0; i < st.n; i++)
				tot += st.o[i].s[b];
			printf("%s by op (one step, %.3f s):\n", b ? "backward" : "forward", tot);
			for (int i = 0; i < st.n; i++)
				printf("  %-16s %4d nodes %8.3f s %5.1f%%\n", st.o[i].op, st.o[i].n[b], st.o[i].s[b],
				       100 * st.o[i].s[b] / tot);
		}
	}
	fd_optim_free(&o);
	fd_model_free(m);
	fd_ctx_free(&c);
	free(xd);
	free(td);
	return 0;
}
