/* bench/models: fd's training step (forward, BCE loss, backward, AdamW) and
 * inference (eval, no grad) images per second for one model:
 *   models NAME SIZE BATCH THREADS REPS [profile]
 * prints "NAME<TAB>train_img_s<TAB>infer_img_s<TAB>peak_rss_MiB" (best of
 * REPS after one warm-up step, which makes the conv plans). With "profile"
 * it then prints, to stderr, one more training step's time split into
 * forward, backward and optimizer, and the backward time by op (convs split
 * into depthwise / 1x1 / other by their weight shape). Driven by
 * bench/models_vs_torch.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "core/fd_progress.h"
#include "models/fd_model.h"
#include "nn/fd_dnnl.h"
#include "nn/loss.h"
#include "nn/optim.h"

/* backward profile: each tape node's backward is swapped for a timing
 * wrapper that finds the original by node (bench only; lib has no hooks) */
#define MAXNODES 8192
#define MAXCAT 64
static struct fd_node *nodes[MAXNODES];
static int (*orig[MAXNODES])(struct fd_ctx *, struct fd_node *);
static int cat_of[MAXNODES];
static int nnodes;
static char cats[MAXCAT][48];
static double cat_ms[MAXCAT];
static int cat_n[MAXCAT], ncats;

static int category(const struct fd_node *n)
{
	char name[48];
	if (!strcmp(n->op, "conv2d") && n->nin > 1 && n->in[1] && n->in[1]->ndim == 4) {
		const struct fd_tensor *w = n->in[1];
		if (w->shape[1] == 1 && w->shape[0] > 1)
			snprintf(name, sizeof name, "conv2d depthwise %lldx%lld", (long long)w->shape[2],
				 (long long)w->shape[3]);
		else
			snprintf(name, sizeof name, "conv2d %lldx%lld", (long long)w->shape[2], (long long)w->shape[3]);
	} else {
		snprintf(name, sizeof name, "%s", n->op);
	}
	for (int i = 0; i < ncats; i++)
		if (!strcmp(cats[i], name))
			return i;
	if (ncats == MAXCAT)
		return MAXCAT - 1;
	snprintf(cats[ncats], sizeof cats[ncats], "%s", name);
	return ncats++;
}

static int timed_backward(struct fd_ctx *c, struct fd_node *n)
{
	for (int i = 0; i < nnodes; i++)
		if (nodes[i] == n) {
			double t0 = fd_now();
			int rc = orig[i](c, n);
			cat_ms[cat_of[i]] += 1e3 * (fd_now() - t0);
			cat_n[cat_of[i]]++;
			return rc;
		}
	return -1;
}

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "models: %s: %s\n", what, msg);
	exit(1);
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: models NAME SIZE BATCH THREADS REPS [profile]\n");
		return 2;
	}
	const char *name = argv[1];
	int size = atoi(argv[2]), N = atoi(argv[3]), threads = atoi(argv[4]), reps = atoi(argv[5]);
	int profile = argc > 6 && !strcmp(argv[6], "profile");
	struct fd_dnnl d;
	struct fd_err e = {{0}};
	struct fd_ctx c;
	struct fd_model *m;
	struct fd_optim o;
	if (fd_dnnl_init(&d, threads, &e) < 0)
		die("dnnl", e.msg);
	fd_ctx_init(&c, threads, 1);
	c.dnnl = &d;
	if (fd_model_new(name, 1, 1, &m, &e) < 0 || fd_optim_adamw(&o, &m->p, 1e-4, 0.9, 0.999, 1e-8, 1e-2, &e) < 0)
		die(name, e.msg);
	int64_t xs[4] = {N, 3, size, size}, ts[2] = {N, 1};
	size_t nx = (size_t)N * 3 * size * size;
	float *xb = malloc(nx * sizeof *xb);
	if (!xb)
		die(name, "out of memory");
	for (size_t i = 0; i < nx; i++)
		xb[i] = (float)((i * 2654435761u) % 2000) / 1000.0f - 1.0f;
	double best_train = 1e30, best_infer = 1e30;
	for (int phase = 0; phase < 2; phase++) {
		c.training = phase == 0;
		c.grad_enabled = phase == 0;
		for (int r = 0; r <= reps; r++) {
			fd_ctx_step(&c);
			struct fd_tensor *x = fd_tensor_new(&c, FD_DEV_CPU, 4, xs), *t = fd_tensor_new(&c, FD_DEV_CPU, 2, ts);
			if (!x || !t)
				die(name, c.err.msg);
			memcpy(x->data, xb, nx * sizeof *xb);
			for (int i = 0; i < N; i++)
				t->data[i] = (float)(i & 1);
			double t0 = fd_now();
			if (phase == 0) {
				fd_params_zero_grad(&m->p);
				struct fd_tensor *loss = fd_bce_with_logits(&c, fd_model_forward(m, &c, x), t);
				if (!loss || fd_backward(&c, loss, NULL) < 0 || fd_optim_step(&o, &m->p, &e) < 0)
					die(name, c.failed ? c.err.msg : e.msg);
			} else if (!fd_model_forward(m, &c, x)) {
				die(name, c.err.msg);
			}
			double dt = fd_now() - t0;
			double *best = phase == 0 ? &best_train : &best_infer;
			if (r && dt < *best)
				*best = dt;
		}
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("%s\t%.2f\t%.2f\t%.0f\n", name, N / best_train, N / best_infer, ru.ru_maxrss / 1024.0);
	fflush(stdout);
	if (profile) {
		c.training = 1;
		c.grad_enabled = 1;
		fd_ctx_step(&c);
		struct fd_tensor *x = fd_tensor_new(&c, FD_DEV_CPU, 4, xs), *t = fd_tensor_new(&c, FD_DEV_CPU, 2, ts);
		memcpy(x->data, xb, nx * sizeof *xb);
		for (int i = 0; i < N; i++)
			t->data[i] = (float)(i & 1);
		fd_params_zero_grad(&m->p);
		double t0 = fd_now();
		struct fd_tensor *loss = fd_bce_with_logits(&c, fd_model_forward(m, &c, x), t);
		double t1 = fd_now();
		for (struct fd_node *n = c.tape; n && nnodes < MAXNODES; n = n->prev) {
			nodes[nnodes] = n;
			orig[nnodes] = n->backward;
			cat_of[nnodes] = category(n);
			n->backward = timed_backward;
			nnodes++;
		}
		if (!loss || fd_backward(&c, loss, NULL) < 0)
			die(name, c.err.msg);
		double t2 = fd_now();
		fd_optim_step(&o, &m->p, &e);
		double t3 = fd_now();
		fprintf(stderr, "# %s profile (one step, %d threads): forward %.0f ms, backward %.0f ms, AdamW %.0f ms\n", name,
			threads, 1e3 * (t1 - t0), 1e3 * (t2 - t1), 1e3 * (t3 - t2));
		for (int pass = 0; pass < ncats; pass++) { /* by decreasing time */
			int bi = -1;
			for (int i = 0; i < ncats; i++)
				if (cat_n[i] >= 0 && (bi < 0 || cat_ms[i] > cat_ms[bi]))
					bi = i;
			fprintf(stderr, "#   backward %-26s %4d nodes %8.1f ms\n", cats[bi], cat_n[bi], cat_ms[bi]);
			cat_n[bi] = -1;
		}
	}
	fd_optim_free(&o);
	fd_model_free(m);
	fd_ctx_free(&c);
	fd_dnnl_free(&d);
	free(xb);
	return 0;
}
