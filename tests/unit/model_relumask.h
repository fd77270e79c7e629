/* model_relumask.h: the reference of a ResNet train-mode check that takes
 * fd's ReLU decisions (fixture.h's fix_model_case with k->relu; doc/models.md
 * "Conformance", doc/nn-kernels.md "Layouts"). A ReLU input within float32
 * rounding of zero may land on the other side of zero than in torch's float64
 * run, and train-mode batchnorm over 2 images spreads that one gradient
 * element upstream far beyond a tolerance made of torch's own float32 error.
 * So the train-mode forward's ReLU decisions (each output > 0) are recorded
 * before backward and handed to tests/unit/relumask.py, a /usr/bin/python3
 * server started once per test, which reruns torch's float64 forward and
 * backward with those decisions imposed and says, per ReLU call, how many
 * decisions differ from float64's own (z64 > 0) and how far the farthest of
 * them lies from zero as a share of 4 x torch's own float32 error at that
 * input. Every such disagreement must be within that bound; where there is
 * none the check compares with the fixture's plain float64 reference as
 * before, else with the masked run's, with the fixture's tolerances either
 * way. Included by fixture.h (after models/fd_model.h). */
#ifndef FD_TEST_MODEL_RELUMASK_H
#define FD_TEST_MODEL_RELUMASK_H

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define FIX_MAXRELU 64
#define FIX_RELU_SCRIPT "tests/unit/relumask.py" /* tests run in the source tree's root */

/* The reference server (one per test) and the outcome of the last case. */
struct fix_relu {
	pid_t pid;             /* 0: not started */
	FILE *to, *from;
	int controlled;        /* the negative control has run */
	char dir[64];          /* scratch folder for masks and answers */
	/* the last forward's ReLU decisions, in call order, NCHW */
	int n;
	uint8_t *mask[FIX_MAXRELU];
	int64_t shape[FIX_MAXRELU][4];
	float top[FIX_MAXRELU]; /* the largest output of each call, at elements top_i */
	int64_t top_i[FIX_MAXRELU];
};

/* Start /usr/bin/python3 FIX_RELU_SCRIPT with pipes to and from it (its
 * import of torch then overlaps the test's first cases). 0 or -1. */
TAP_UNUSED static int fix_relu_start(struct fix_relu *r)
{
	int in[2], out[2];
	memset(r, 0, sizeof *r);
	snprintf(r->dir, sizeof r->dir, "/tmp/fd_relumask_XXXXXX");
	if (!mkdtemp(r->dir) || pipe(in) < 0 || pipe(out) < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN); /* a server gone shows as a missing answer */
	fflush(stdout);
	r->pid = fork();
	if (r->pid < 0)
		return -1;
	if (r->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[0]), close(in[1]), close(out[0]), close(out[1]);
		execl("/usr/bin/python3", "python3", FIX_RELU_SCRIPT, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	r->to = fdopen(in[1], "w");
	r->from = fdopen(out[0], "r");
	return r->to && r->from ? 0 : -1;
}

/* Free the last decisions. */
TAP_UNUSED static void fix_relu_clear(struct fix_relu *r)
{
	for (int i = 0; i < r->n; i++)
		free(r->mask[i]);
	r->n = 0;
}

/* End the server and remove the scratch folder. */
TAP_UNUSED static void fix_relu_stop(struct fix_relu *r)
{
	fix_relu_clear(r);
	if (r->to)
		fclose(r->to); /* end of input ends the server */
	if (r->from)
		fclose(r->from);
	if (r->pid > 0)
		waitpid(r->pid, NULL, 0);
	if (r->dir[0])
		rmdir(r->dir);
}

/* Record the decisions of every ReLU of c's tape (fd_batchnorm2d_act's
 * "batchnorm2d_relu" and "relu", in place or not), in call order: 1 where
 * the output is > 0, the gradient-passing elements of both backward passes.
 * Call after the forward, before fd_backward (which may lend the outputs to
 * gradients). 0, or -1 with more calls than FIX_MAXRELU or a non-4-D output. */
TAP_UNUSED static int fix_relu_capture(struct fix_relu *r, struct fd_ctx *c)
{
	const struct fd_node *nodes[FIX_MAXRELU];
	int n = 0;
	fix_relu_clear(r);
	for (const struct fd_node *q = c->tape; q; q = q->prev)
		if (!strcmp(q->op, "relu") || !strcmp(q->op, "batchnorm2d_relu")) {
			if (n == FIX_MAXRELU || q->out->ndim != 4)
				return -1;
			nodes[n++] = q;
		}
	for (int k = 0; k < n; k++) {
		const struct fd_tensor *y = nodes[n - 1 - k]->out;
		int64_t C = y->shape[1], H = y->shape[2], W = y->shape[3];
		uint8_t *m = malloc((size_t)y->numel);
		if (!m)
			return -1;
		r->mask[r->n++] = m;
		memcpy(r->shape[k], y->shape, sizeof r->shape[k]);
		r->top[k] = 0;
		r->top_i[k] = 0;
		for (int64_t i = 0; i < y->numel; i++) { /* i: the NCHW index */
			int64_t w = i % W, h = i / W % H, ch = i / (W * H) % C, b = i / (W * H * C);
			float v = y->data[y->layout == FD_NHWC ? ((b * H + h) * W + w) * C + ch : i];
			m[i] = v > 0;
			if (v > r->top[k]) {
				r->top[k] = v;
				r->top_i[k] = i;
			}
		}
	}
	return 0;
}

/* Write the decisions (element flip of call fk flipped, fk < 0: none) to
 * DIR/masks.safetensors and ask the server for the reference of case k in
 * mode ("full" or "check"), answered in *out. 0, or -1 with why in msg. */
TAP_UNUSED static int fix_relu_ask(struct fix_relu *r, const char *set, const char *name, int size, int fk,
				   int64_t flip, const char *mode, struct fd_st *out, char *msg, size_t len)
{
	char mpath[128], opath[128], fixdir[700], line[1024], nm[FIX_MAXRELU][16];
	struct fd_err e = {{0}};
	struct fd_stw w;
	int rc = -1;
	snprintf(mpath, sizeof mpath, "%s/masks.safetensors", r->dir);
	snprintf(opath, sizeof opath, "%s/ref.safetensors", r->dir);
	fix_path(fixdir, sizeof fixdir, set, "");
	if (fk >= 0)
		r->mask[fk][flip] ^= 1;
	fd_stw_init(&w);
	for (int k = 0; k < r->n && !e.msg[0]; k++) {
		snprintf(nm[k], sizeof nm[k], "mask.%d", k);
		fd_stw_add(&w, nm[k], FD_DT_U8, 4, r->shape[k], r->mask[k], &e);
	}
	if (!e.msg[0])
		fd_stw_write(&w, mpath, &e);
	fd_stw_free(&w);
	if (fk >= 0)
		r->mask[fk][flip] ^= 1;
	if (e.msg[0]) {
		snprintf(msg, len, "%s", e.msg);
		return -1;
	}
	if (!r->to || fprintf(r->to, "%s %s %d %s %s %s\n", fixdir, name, size, mpath, opath, mode) < 0 ||
	    fflush(r->to) != 0 || !fgets(line, sizeof line, r->from)) {
		snprintf(msg, len, "no answer from /usr/bin/python3 %s (torch 1.13, torchvision)", FIX_RELU_SCRIPT);
		goto out;
	}
	line[strcspn(line, "\n")] = 0;
	if (strcmp(line, "ok")) {
		snprintf(msg, len, "%s: %s", FIX_RELU_SCRIPT, line);
		goto out;
	}
	if (fd_st_open(out, opath, &e) < 0) {
		snprintf(msg, len, "%s", e.msg);
		goto out;
	}
	rc = 0;
out:
	unlink(mpath);
	unlink(opath);
	return rc;
}

/* The server's verdict in *ref: the number of calls (-1: not that of the
 * decisions sent), elements, disagreements, and the worst |z64| / bound
 * (NaN counts as worst) with its call in *wk. */
TAP_UNUSED static int fix_relu_verdict(const struct fix_relu *r, const struct fd_st *ref, int64_t *elements,
				       int64_t *dis, double *worst, int *wk)
{
	int64_t sites;
	memcpy(&sites, fix_raw(ref, "sites", FD_DT_I64)->data, sizeof sites);
	memcpy(elements, fix_raw(ref, "elements", FD_DT_I64)->data, sizeof *elements);
	*dis = 0;
	*worst = 0;
	*wk = -1;
	if (sites != r->n)
		return -1;
	for (int k = 0; k < r->n; k++) {
		char key[32];
		int64_t d;
		snprintf(key, sizeof key, "disagree.%d", k);
		memcpy(&d, fix_raw(ref, key, FD_DT_I64)->data, sizeof d);
		snprintf(key, sizeof key, "worst.%d", k);
		double wv = ((const float *)fix_raw(ref, key, FD_DT_F32)->data)[0];
		*dis += d;
		if (!(wv <= *worst))
			*wk = k;
		*worst = tap_worse(*worst, wv);
	}
	return r->n;
}

#endif
