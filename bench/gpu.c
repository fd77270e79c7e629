/* bench/gpu: training-step and inference images/s of one fd model on CUDA
 * device 0, fp32, input already on the device (one copy before timing).
 * Usage: gpu ARCH SIZE BATCH STEPS
 * Prints "train IMG/S" (forward, BCE loss, backward, AdamW step) and
 * "infer IMG/S" (eval-mode forward without tape), each the median of STEPS
 * timed steps after 3 warm-up steps, with the device drained (sync) before
 * the clock starts and before it stops; then "peak_arena_mib" (the device
 * arena's step peak). Built only in a CUDA build (bench/bench.mk). */
#include "models/fd_model.h"
#include "core/fd_progress.h"
#include "nn/fd_backend.h"
#include "nn/fd_cuda.h"
#include "nn/loss.h"
#include "nn/optim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noreturn)) static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench-gpu: %s: %s\n", what, msg);
	exit(1);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: gpu ARCH SIZE BATCH STEPS\n");
		return 2;
	}
	const char *arch = argv[1];
	int size = atoi(argv[2]), batch = atoi(argv[3]), steps = atoi(argv[4]);
	if (size < 16 || batch < 2 || steps < 1)
		die("usage", "SIZE >= 16, BATCH >= 2, STEPS >= 1");
	struct fd_err e = {{0}};
	struct fd_ctx c;
	struct fd_model *m;
	const struct fd_backend *be = &fd_backend_cuda; /* links the CUDA backend */
	if (fd_ctx_open(&c, FD_DEV_CUDA, 1, 1, &e) < 0 || fd_model_new(arch, 1, 1, &m, &e) < 0 ||
	    fd_params_move(&m->p, &c, FD_DEV_CUDA, &e) < 0)
		die(arch, e.msg);
	struct fd_optim o;
	if (fd_optim_adamw(&o, &m->p, 1e-3, 0.9, 0.999, 1e-8, 0.05, &e) < 0)
		die("optimizer", e.msg);
	int64_t nx = (int64_t)batch * 3 * size * size;
	int64_t xs[4] = {batch, 3, size, size}, ts[2] = {batch, 1};
	float *xh = malloc((size_t)nx * sizeof *xh), *th = malloc((size_t)batch * sizeof *th);
	float *xd = be->mem_alloc((size_t)nx * sizeof *xd), *td = be->mem_alloc((size_t)batch * sizeof *td);
	if (!xh || !th || !xd || !td)
		die("memory", "out of memory");
	for (int64_t i = 0; i < nx; i++)
		xh[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
	for (int i = 0; i < batch; i++)
		th[i] = (float)(i % 2);
	if (be->copy_h2d(&c, xd, xh, (size_t)nx * sizeof *xd) < 0 || be->copy_h2d(&c, td, th, (size_t)batch * sizeof *td) < 0)
		die("copy", c.err.msg);
	double *dt = malloc((size_t)steps * sizeof *dt);
	if (!dt)
		die("memory", "out of memory");

	const int warm = 3;
	for (int s = 0; s < warm + steps; s++) {
		if (be->sync(&c) < 0)
			die("sync", c.err.msg);
		double t0 = fd_now();
		fd_ctx_step(&c);
		fd_params_zero_grad(&m->p);
		struct fd_tensor *x = fd_tensor_wrap(&c, FD_DEV_CUDA, xd, 4, xs);
		struct fd_tensor *t = fd_tensor_wrap(&c, FD_DEV_CUDA, td, 2, ts);
		struct fd_tensor *loss = fd_bce_with_logits(&c, fd_model_forward(m, &c, x), t);
		if (!loss || fd_backward(&c, loss, NULL) < 0 || fd_optim_step(&o, &m->p, &e) < 0)
			die("train step", c.failed ? c.err.msg : e.msg);
		if (be->sync(&c) < 0)
			die("sync", c.err.msg);
		if (s >= warm)
			dt[s - warm] = fd_now() - t0;
	}
	qsort(dt, (size_t)steps, sizeof *dt, cmp_d);
	printf("train %.2f\n", batch / dt[steps / 2]);
	size_t peak = c.darena.peak;

	c.training = 0;
	c.grad_enabled = 0;
	for (int s = 0; s < warm + steps; s++) {
		if (be->sync(&c) < 0)
			die("sync", c.err.msg);
		double t0 = fd_now();
		fd_ctx_step(&c);
		struct fd_tensor *x = fd_tensor_wrap(&c, FD_DEV_CUDA, xd, 4, xs);
		if (!fd_model_forward(m, &c, x) || be->sync(&c) < 0)
			die("inference", c.err.msg);
		if (s >= warm)
			dt[s - warm] = fd_now() - t0;
	}
	qsort(dt, (size_t)steps, sizeof *dt, cmp_d);
	printf("infer %.2f\n", batch / dt[steps / 2]);
	printf("peak_arena_mib %.0f\n", (double)peak / (1024.0 * 1024.0));
	be->mem_free(xd);
	be->mem_free(td);
	free(xh);
	free(th);
	free(dt);
	fd_optim_free(&o);
	fd_model_free(m);
	fd_ctx_free(&c);
	return 0;
}
