/* t_model_export: for every registered model, an fd checkpoint (fd_model_save)
 * plus fd's eval logits on a fixed input, for tests/tools/interop.t to load
 * into torchvision with load_state_dict(strict=True) and compare.
 * Usage: t_model_export [DIR]   (default ${FD_BUILD:-build}/interop)
 * Writes DIR/NAME.safetensors (the checkpoint, 1 logit, seed 7, batchnorm
 * statistics and zero/one/constant-initialised views perturbed so that eval
 * mode is no identity and a swapped name changes the output) and
 * DIR/NAME_io.safetensors (x [1,3,64,64], logits [1,1]). */
#include "core/fd_out.h"
#include "core/fd_rng.h"
#include "io/fd_safetensors.h"
#include "models/fd_model.h"
#include "tap.h"
#include "nn_ctx.h"

#include <string.h>

#define SIZE 64

/* Views whose torchvision init is a constant (batchnorm/layernorm affine,
 * biases, layer scale, running stats) would make a swapped pair of names
 * invisible: give each its own values. Running variances stay positive. */
static void perturb(struct fd_model *m, uint64_t seed)
{
	for (int i = 0; i < m->p.n; i++) {
		struct fd_pview *v = &m->p.v[i];
		struct fd_rng r;
		enum fd_minit_kind k = m->init[i].kind;
		fd_rng_init(&r, seed, fd_hash_str(v->name));
		if (v->kind == FD_P_COUNTER) {
			v->t.data[0] = (float)(3 + i);
		} else if (strstr(v->name, "running_var")) {
			for (int64_t j = 0; j < v->t.numel; j++)
				v->t.data[j] = (float)(0.5 + fd_rng_uniform(&r));
		} else if (k == FD_MI_ZEROS || k == FD_MI_ONES || k == FD_MI_CONSTANT) {
			double base = k == FD_MI_ONES ? 1.0 : 0.0;
			for (int64_t j = 0; j < v->t.numel; j++)
				v->t.data[j] = (float)(base + 0.2 * (fd_rng_uniform(&r) - 0.5));
		}
	}
}

static int write_io(const char *path, const float *x, const struct fd_tensor *y, struct fd_err *e)
{
	struct fd_stw w;
	int64_t xs[4] = {1, 3, SIZE, SIZE};
	fd_stw_init(&w);
	int rc = fd_stw_add(&w, "x", FD_DT_F32, 4, xs, x, e);
	rc = rc ? rc : fd_stw_add(&w, "logits", FD_DT_F32, y->ndim, y->shape, y->data, e);
	rc = rc ? rc : fd_stw_write(&w, path, e);
	fd_stw_free(&w);
	return rc;
}

int main(int argc, char **argv)
{
	char dir[512], path[700];
	const char *b = getenv("FD_BUILD");
	if (argc > 1)
		snprintf(dir, sizeof dir, "%s", argv[1]);
	else
		snprintf(dir, sizeof dir, "%s/interop", b && *b ? b : "build");
	struct fd_err e = {{0}};
	struct fd_ctx c;
	if (fd_mkdir_p(dir, &e) < 0) {
		printf("Bail out! %s\n", e.msg);
		return 1;
	}
	ctx_open(&c, 2, 1);

	static float x[3 * SIZE * SIZE];
	struct fd_rng r;
	fd_rng_init(&r, 11, 0);
	for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
		x[i] = (float)fd_rng_normal(&r);

	for (int a = 0; a < fd_model_count(); a++) {
		const char *name = fd_model_arch_at(a)->name;
		struct fd_model *m;
		if (!ok(fd_model_new(name, 1, 7, &m, &e) == 0, "%s: built %s", name, e.msg))
			continue;
		perturb(m, 13);
		snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
		const char *meta[] = {"fd.input_size", "64", NULL};
		ok(fd_model_save(m, path, meta, &e) == 0, "%s: checkpoint saved %s", name, e.msg);

		fd_ctx_step(&c);
		c.training = 0;
		c.grad_enabled = 0;
		int64_t xs[4] = {1, 3, SIZE, SIZE};
		struct fd_tensor *y = fd_model_forward(m, &c, fd_tensor_wrap(&c, FD_DEV_CPU, x, 4, xs));
		if (ok(y != NULL && y->numel == 1, "%s: eval forward %s", name, c.err.msg)) {
			snprintf(path, sizeof path, "%s/%s_io.safetensors", dir, name);
			ok(write_io(path, x, y, &e) == 0, "%s: logit %.6f written %s", name, y->data[0], e.msg);
		}
		fd_model_free(m);
	}
	fd_ctx_free(&c);
	return tap_done();
}
