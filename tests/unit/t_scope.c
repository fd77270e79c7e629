/* t_scope: inference memory scopes (fd_ctx_mark / fd_ctx_keep): the kept
 * tensor's values survive the move, memory after the mark is released both
 * in the arena's block and in overflow blocks (first step), nothing is
 * released while a tape records, and every model's scoped eval forward equals
 * the unscoped one bit for bit while holding less memory. */
#include "models/fd_model.h"
#include "nn/act.h"
#include "nn/binary.h"
#include "nn/fd_dnnl.h"
#include "nn/fd_tensor.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

static struct fd_tensor *filled(struct fd_ctx *c, int64_t n, float base)
{
	struct fd_tensor *t = fd_tensor_new(c, FD_DEV_CPU, 1, &n);
	for (int64_t i = 0; t && i < n; i++)
		t->data[i] = base + (float)i;
	return t;
}

static int holds(const struct fd_tensor *t, int64_t n, float base)
{
	for (int64_t i = 0; i < n; i++)
		if (t->data[i] != (base + (float)i) * 2.0f)
			return 0;
	return 1;
}

/* block: a big scratch tensor and the output 2x (kept) */
static struct fd_tensor *block(struct fd_ctx *c, struct fd_tensor *x)
{
	struct fd_tensor *tmp = filled(c, 50000, 1);
	struct fd_tensor *two = filled(c, 1, 2);
	(void)tmp;
	return fd_mul(c, x, two);
}

static void test_arena(void)
{
	struct fd_ctx c;
	fd_ctx_init(&c, 1, 1);
	c.grad_enabled = 0;
	for (int step = 0; step < 3; step++) {
		fd_ctx_step(&c);
		unsigned long grows = c.arena.grows;
		struct fd_tensor *x = filled(&c, 3000, 5);
		size_t used0 = c.arena.used;
		int nextra0 = c.arena.nextra;
		size_t held0 = c.arena.used + c.arena.extra_bytes;
		struct fd_mark k = fd_ctx_mark(&c);
		struct fd_tensor *y = fd_ctx_keep(&c, k, block(&c, x));
		ok(y && y->numel == 3000 && holds(y, 3000, 5), "step %d: kept tensor holds its values", step);
		size_t held = c.arena.used + c.arena.extra_bytes;
		ok(held - held0 < 3000 * 4 + 256, "step %d: %zu bytes held after the block (the output's %d)",
		   step, held - held0, 3000 * 4);
		if (step == 0)
			ok(c.arena.nextra == nextra0 + 1, "step 0: the scratch overflow blocks were freed (%d -> %d)",
			   nextra0, c.arena.nextra);
		else
			ok(c.arena.nextra == 0 && c.arena.used > used0 && c.arena.grows == grows,
			   "step %d: all in the block, nothing allocated", step);
		/* a pass-through: the data predates the mark, only a header is made */
		k = fd_ctx_mark(&c);
		filled(&c, 1000, 0);
		struct fd_tensor *z = fd_ctx_keep(&c, k, x);
		ok(z && z->data == x->data && c.arena.used + c.arena.extra_bytes - held < 256,
		   "step %d: a block returning its input keeps the input's data", step);
		ok(fd_ctx_keep(&c, fd_ctx_mark(&c), NULL) == NULL, "step %d: NULL stays NULL", step);
	}
	/* recording: nothing is released */
	fd_ctx_step(&c);
	c.grad_enabled = 1;
	struct fd_tensor *x = filled(&c, 100, 1);
	fd_requires_grad(x);
	size_t used0 = c.arena.used + c.arena.extra_bytes;
	struct fd_mark k = fd_ctx_mark(&c);
	struct fd_tensor *y = fd_relu(&c, x);
	size_t used1 = c.arena.used + c.arena.extra_bytes;
	ok(fd_ctx_keep(&c, k, y) == y && c.arena.used + c.arena.extra_bytes == used1 && used1 > used0,
	   "under a tape keep is a no-op");
	fd_ctx_free(&c);
}

static void test_models(void)
{
	struct fd_err e = {{0}};
	struct fd_dnnl d;
	if (fd_dnnl_init(&d, 2, &e) < 0) {
		ok(0, "onednn: %s", e.msg);
		return;
	}
	for (int i = 0; i < fd_model_count(); i++) {
		const char *name = fd_model_arch_at(i)->name;
		struct fd_model *m = NULL;
		if (!ok(fd_model_new(name, 2, 7, &m, &e) == 0, "%s built %s", name, e.msg))
			continue;
		float *ref = NULL;
		size_t hw[2] = {0, 0};
		int same = 1;
		for (int scoped = 0; scoped < 2; scoped++) {
			struct fd_ctx c;
			fd_ctx_init(&c, 2, 3);
			c.dnnl = &d;
			c.training = 0;
			/* grad enabled: the parameters record a tape, so keep releases nothing */
			c.grad_enabled = scoped ? 0 : 1;
			fd_ctx_step(&c);
			int64_t sh[4] = {2, 3, 64, 64};
			struct fd_tensor *x = fd_tensor_new(&c, FD_DEV_CPU, 4, sh);
			for (int64_t k = 0; x && k < x->numel; k++)
				x->data[k] = (float)((k * 7919) % 255) / 255.0f - 0.5f;
			struct fd_tensor *y = x ? fd_model_forward(m, &c, x) : NULL;
			hw[scoped] = c.arena.hw;
			if (!ok(y != NULL, "%s: forward %s", name, c.err.msg)) {
				same = 0;
			} else if (!scoped) {
				ref = malloc((size_t)y->numel * sizeof *ref);
				memcpy(ref, y->data, (size_t)y->numel * sizeof *ref);
			} else {
				same = ref && memcmp(ref, y->data, (size_t)y->numel * sizeof *ref) == 0;
			}
			fd_ctx_free(&c);
		}
		ok(same, "%s: scoped inference logits equal the unscoped ones bit for bit", name);
		ok(hw[1] * 10 < hw[0] * 6, "%s: arena peak %zu KiB scoped vs %zu KiB recording", name, hw[1] >> 10,
		   hw[0] >> 10);
		free(ref);
		fd_model_free(m);
	}
	fd_dnnl_free(&d);
}

int main(void)
{
	test_arena();
	test_models();
	return tap_done();
}
