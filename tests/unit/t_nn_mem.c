/* t_nn_mem: releasing memory inside a step. The arena's mark / keep
 * (fd_ctx_mark, fd_ctx_keep: moves, overflow blocks, the high-water mark that
 * fd_ctx_step grows to, a no-op under a tape), the in-place relu and add
 * (bit for bit the out-of-place ops, values and gradients), and models whose
 * inference keeps one block at a time: logits bit for bit those of the same
 * forward with everything kept, a smaller arena peak, nothing allocated from
 * the second step on; training that lends dead activations to the gradient
 * pool (c->reuse_activations) and lets inputs take over their op's output
 * gradient (aliasing): gradients bit for bit. (The models' values against PyTorch: t_models*.) */
#include "models/fd_model.h"
#include "nn/act.h"
#include "nn/binary.h"
#include "nn/dropout.h"
#include "nn/loss.h"
#include "tap.h"
#include "nn_ctx.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static struct fd_tensor *filled(struct fd_ctx *c, int64_t n, float base)
{
	struct fd_tensor *t = fd_tensor_new(c, FD_DEV_CPU, 1, &n);
	for (int64_t i = 0; i < n && t; i++)
		t->data[i] = base + (float)(i % 97) - 48.0f;
	return t;
}

static int holds(const struct fd_tensor *t, int64_t n, float base)
{
	if (!t || t->numel != n)
		return 0;
	for (int64_t i = 0; i < n; i++)
		if (t->data[i] != base + (float)(i % 97) - 48.0f)
			return 0;
	return 1;
}

/* One step's pattern: a tensor below the mark, a big and a small one above,
 * keep the small one; then a chain of keeps to the same mark. */
static int pattern(struct fd_ctx *c, int64_t big, int64_t small, size_t *at_mark, float **kept)
{
	struct fd_tensor *below = filled(c, 1000, 1.0f);
	struct fd_mark mk = fd_ctx_mark(c);
	*at_mark = c->arena.used + c->arena.extra_bytes;
	struct fd_tensor *b = filled(c, big, 2.0f);
	struct fd_tensor *s = filled(c, small, 3.0f);
	struct fd_tensor *k = fd_ctx_keep(c, &mk, s);
	int good = b && holds(k, small, 3.0f) && holds(below, 1000, 1.0f);
	*kept = k ? k->data : NULL;
	for (int i = 0; i < 3 && k; i++) {
		struct fd_tensor *n = filled(c, big / 2 + i, 4.0f + (float)i);
		k = fd_ctx_keep(c, &mk, n);
		good = good && holds(k, big / 2 + i, 4.0f + (float)i);
	}
	return good && holds(below, 1000, 1.0f);
}

static void test_keep(void)
{
	struct fd_ctx c;
	ctx_open(&c, 1, 1);
	/* step 1: the arena is empty, everything lands in overflow blocks */
	size_t at = 0;
	float *kept = NULL;
	ok(pattern(&c, 1 << 20, 5000, &at, &kept), "step 1 (overflow blocks): kept values intact, the rest too");
	ok(c.arena.nextra == 4, "step 1: %d overflow blocks left (below's header and data, the kept's)",
	   c.arena.nextra);
	size_t peak1 = c.arena.peak;
	ok(peak1 >= (1u << 22) + 5000 * 4 && c.failed == 0, "step 1 peak %zu counts the big one released", peak1);
	fd_ctx_step(&c);
	ok(c.arena.cap >= peak1 && c.arena.nextra == 0, "reset grew the block to the high-water mark (%zu >= %zu)",
	   c.arena.cap, peak1);
	unsigned long g = c.arena.grows;
	size_t peak2 = 0;
	for (int s = 0; s < 3; s++) {
		ok(pattern(&c, 1 << 20, 5000, &at, &kept), "step %d: values intact", s + 2);
		ok(kept == (float *)(void *)(c.arena.base + at), "step %d: the kept data moved down to the mark",
		   s + 2);
		/* in the block the chain's keeps stay above the small kept one (a
		 * gap under an eighth of theirs) where step 1 moved them out of
		 * overflow blocks: a peak a little above step 1's, within the
		 * block's slack */
		if (s == 0)
			peak2 = c.arena.peak;
		ok(c.arena.peak == peak2 && peak2 >= peak1 && peak2 - peak1 <= peak1 / 8 && peak2 <= c.arena.cap,
		   "step %d: peak %zu (step 1 %zu), in the block", s + 2, c.arena.peak, peak1);
		fd_ctx_step(&c);
	}
	ok(c.arena.grows == g && c.arena.nextra == 0, "no allocation after step 1 (grows %lu)", c.arena.grows);

	/* keeping a tensor whose data lies below the mark: only the header moves */
	struct fd_tensor *x = filled(&c, 300, 5.0f);
	struct fd_mark mk = fd_ctx_mark(&c);
	size_t used = c.arena.used;
	filled(&c, 4096, 6.0f);
	struct fd_tensor *k = fd_ctx_keep(&c, &mk, x);
	size_t hdr = (sizeof *k + 63) / 64 * 64;
	ok(k && k->data == x->data && holds(k, 300, 5.0f) && c.arena.used == used + hdr,
	   "data below the mark stays; everything above released but the header (%zu bytes above)",
	   c.arena.used - used);
	/* a tensor with only its header between it and the mark stays in place
	 * (a move would copy it all to win back the header) */
	mk = fd_ctx_mark(&c);
	used = c.arena.used;
	struct fd_tensor *near = filled(&c, 8192, 9.0f);
	float *at_data = near->data;
	k = fd_ctx_keep(&c, &mk, near);
	ok(k && k->data == at_data && holds(k, 8192, 9.0f) && (char *)at_data - c.arena.base == (ptrdiff_t)(used + hdr) &&
		   c.arena.used == used + hdr + 8192 * 4 + hdr,
	   "data above the mark behind its header only: stays (the header's gap unused), a new header after it");
	/* in a warm arena: a tensor that overflowed while a bigger one held the
	 * block moves into the block once that one is released */
	mk = fd_ctx_mark(&c);
	int64_t room = (int64_t)((c.arena.cap - c.arena.used) / sizeof(float));
	filled(&c, room * 6 / 10, 7.0f);
	struct fd_tensor *late = filled(&c, room / 2, 8.0f);
	int nx = c.arena.nextra;
	k = fd_ctx_keep(&c, &mk, late);
	ok(nx == 1 && holds(k, room / 2, 8.0f) && k->data == (float *)(void *)(c.arena.base + mk.a.used),
	   "an overflowed tensor moves down into the block");
	ok(c.arena.nextra == 0 && c.arena.extra_bytes == 0, "its overflow block went back to the heap");
	fd_ctx_free(&c);
}

static void test_keep_under_tape(void)
{
	struct fd_ctx c;
	ctx_open(&c, 1, 1);
	struct fd_tensor *x = filled(&c, 64, 0.5f);
	fd_requires_grad(x);
	struct fd_mark mk = fd_ctx_mark(&c);
	struct fd_tensor *y = fd_relu(&c, x);
	size_t used = c.arena.used + c.arena.extra_bytes;
	struct fd_tensor *k = fd_ctx_keep(&c, &mk, y);
	ok(k == y && c.arena.used + c.arena.extra_bytes == used, "a node recorded since the mark: keep does nothing");
	/* grad disabled: nothing recorded, keep acts */
	c.grad_enabled = 0;
	mk = fd_ctx_mark(&c);
	y = fd_relu(&c, x);
	/* the arena has no block yet (first step): moving takes a fresh heap block
	 * (comparing k with y would depend on malloc handing back y's old address) */
	unsigned long g0 = c.arena.grows;
	k = fd_ctx_keep(&c, &mk, y);
	ok(k && c.arena.grows > g0 && k->numel == 64 && k->data[0] == 0.0f && k->data[60] == 12.5f,
	   "grad disabled: keep moves");
	/* a failed context: keep answers NULL */
	fd_fail(&c, "boom");
	ok(fd_ctx_keep(&c, &mk, k) == NULL, "a failed context: NULL");
	fd_ctx_free(&c);
}

/* relu_ / add_ against relu / add: outputs and gradients equal bit for bit,
 * through a small graph where the in-place ops follow ops that do not read
 * their outputs (add, mul by a constant). */
/* c->reuse_activations: a chain of same-size ops whose backward hands each
 * output's memory to the gradient pool once its maker ran. The gradients are
 * bit for bit those of a context that keeps everything; the memory is really
 * reused (a dead output's values are overwritten by a later gradient: the
 * control that the check below can see reuse at all), and a tensor given to
 * fd_keep_data keeps its values. The squares (mul of a tensor by itself)
 * take gradients of their own (no aliasing: struct fd_node's aliases), so
 * y1's gradient is a new request, served by y4's dead memory. */
static void test_reuse(void)
{
	const int64_t n = 4099;
	static float gx[2][4099], y4v[4099], y3v[4099];
	for (int v = 0; v < 2; v++) {
		struct fd_ctx c;
		ctx_open(&c, 2, 1);
		c.reuse_activations = v;
		fd_ctx_step(&c);
		struct fd_tensor *x = filled(&c, n, 0.125f);
		fd_requires_grad(x);
		struct fd_tensor *y1 = fd_silu(&c, x), *y2 = fd_mul(&c, y1, y1);
		struct fd_tensor *y3 = fd_keep_data(fd_silu(&c, y2)), *y4 = fd_silu(&c, y3);
		struct fd_tensor *y5 = fd_mul(&c, y4, y4);
		float *seed = fd_ctx_alloc(&c, FD_DEV_CPU, n);
		for (int64_t i = 0; seed && i < n; i++)
			seed[i] = (float)(i % 13) - 6.0f;
		if (!ok(y5 && seed, "reuse %d: forward %s", v, c.err.msg))
			return;
		if (!v) {
			memcpy(y4v, y4->data, sizeof y4v);
			memcpy(y3v, y3->data, sizeof y3v);
		}
		if (!ok(fd_backward(&c, y5, seed) == 0, "reuse %d: backward %s", v, c.err.msg))
			return;
		memcpy(gx[v], x->grad, sizeof gx[v]);
		if (v) {
			/* y1, y2, y4 (y3 kept, y5 the root), each rounded down to 64 bytes */
			ok(c.gpool.donated_bytes >= 3 * ((size_t)n * sizeof(float) - 64), "reuse: %zu bytes donated",
			   c.gpool.donated_bytes);
			/* y4's memory took dy1 (the smallest free block, donated first) */
			ok(memcmp(y4v, y4->data, sizeof y4v) != 0,
			   "reuse: y4's memory (not kept) now holds a gradient");
			ok(!memcmp(y3v, y3->data, sizeof y3v), "reuse: y3 (fd_keep_data) keeps its values");
		} else {
			ok(!memcmp(y4v, y4->data, sizeof y4v) && c.gpool.donated_bytes == 0,
			   "no reuse: y4 keeps its values, nothing donated");
		}
		fd_ctx_free(&c);
	}
	ok(!memcmp(gx[0], gx[1], sizeof gx[0]), "reuse: dx bit for bit the gradient without reuse");
}

/* Transient outputs (c->pool_outputs, fd_tensor_release): t = silu(x2) and
 * later u = silu(x1) take their data from the gradient pool, u the block t
 * gave back. With pool 0 everything stays in the arena. t is read by an
 * add (add_ into a; no backward reads it), or with bad by a mul, whose
 * backward reads t's values after u overwrote them: the control that the
 * bit-for-bit comparison sees a wrongly released output. x1's and x2's
 * gradients in g1, g2; bytes served from the pool in *outb. */
static int transient_chain(int pool, int bad, int64_t n, float *g1, float *g2, size_t *outb)
{
	struct fd_ctx c;
	ctx_open(&c, 2, 1);
	fd_ctx_step(&c);
	struct fd_tensor *x1 = filled(&c, n, 0.125f), *x2 = filled(&c, n, -0.25f);
	if (!ok(x1 && x2, "transient chain: tensors"))
		return 0;
	fd_requires_grad(x1);
	fd_requires_grad(x2);
	struct fd_tensor *a = fd_silu(&c, x1);
	c.pool_outputs = pool;
	struct fd_tensor *t = fd_silu(&c, x2);
	c.pool_outputs = 0;
	struct fd_tensor *y = bad ? fd_mul(&c, a, t) : fd_add_(&c, a, t);
	float *tdata = t ? t->data : NULL;
	fd_tensor_release(&c, t);
	c.pool_outputs = pool;
	struct fd_tensor *u = fd_silu(&c, x1);
	c.pool_outputs = 0;
	struct fd_tensor *z = fd_add_(&c, y, u);
	fd_tensor_release(&c, u);
	struct fd_tensor *q = fd_mul(&c, z, z);
	float *seed = fd_ctx_alloc(&c, FD_DEV_CPU, n);
	for (int64_t i = 0; seed && i < n; i++)
		seed[i] = (float)(i % 13) - 6.0f;
	int good = ok(q && seed && fd_backward(&c, q, seed) == 0, "transient chain (pool %d%s): %s", pool,
		      bad ? ", t read by mul" : "", c.err.msg);
	if (good) {
		if (pool)
			ok(u->data == tdata && !(t->flags & FD_T_OWNS_DATA) && !(u->flags & FD_T_POOL_DATA),
			   "transient chain%s: u took t's block back from the pool", bad ? " (bad)" : "");
		memcpy(g1, x1->grad, (size_t)n * sizeof *g1);
		memcpy(g2, x2->grad, (size_t)n * sizeof *g2);
		*outb = c.gpool.out_bytes;
	}
	fd_ctx_free(&c);
	return good;
}

/* Transient outputs give the gradients of outputs kept in the arena, bit
 * for bit, where no backward reads them; the control (a mul reading a
 * released output in its backward) differs. */
static void test_transient(void)
{
	enum { N = 1031 };
	static float g1[4][N], g2[4][N];
	size_t outb[4] = {0};
	int good = transient_chain(0, 0, N, g1[0], g2[0], &outb[0]) & transient_chain(1, 0, N, g1[1], g2[1], &outb[1]) &
		   transient_chain(0, 1, N, g1[2], g2[2], &outb[2]) & transient_chain(1, 1, N, g1[3], g2[3], &outb[3]);
	if (!good)
		return;
	ok(outb[0] == 0 && outb[1] == 2 * N * sizeof(float) && outb[3] == outb[1],
	   "transient outputs: %zu bytes from the pool (0 with pool_outputs off)", outb[1]);
	ok(!memcmp(g1[0], g1[1], sizeof g1[0]) && !memcmp(g2[0], g2[1], sizeof g2[0]),
	   "transient outputs read by add_ only: dx1, dx2 bit for bit the gradients with arena outputs");
	ok(memcmp(g1[2], g1[3], sizeof g1[0]) != 0,
	   "control: a released output read by mul's backward changes dx1");
}

/* The chain of test_alias: leaves x1, x2; every op's input but the leaves
 * can take its output's gradient (aliases), in[0] or in[1] of mul and add,
 * relu_, silu. With bad, the linear node (whose sgemm reads dy while
 * writing dx: not alias-safe) is marked as if it were. */
static int alias_chain(int reuse, int bad, int64_t n, float *g1, float *g2, size_t *aliased, size_t *own)
{
	struct fd_ctx c;
	ctx_open(&c, 2, 1);
	c.reuse_activations = reuse;
	fd_ctx_step(&c);
	int64_t ws[2] = {n, n};
	struct fd_tensor *x1 = filled(&c, n, 0.125f), *x2 = filled(&c, n, -0.25f), *w = fd_tensor_new(&c, FD_DEV_CPU, 2, ws);
	for (int64_t i = 0; w && i < n * n; i++)
		w->data[i] = (float)((i * 37) % 11) * 0.125f - 0.5f;
	if (!ok(x1 && x2 && w, "alias chain: tensors"))
		return 0;
	x1->ndim = x2->ndim = 2; /* [1, n], linear's input */
	x1->shape[0] = x2->shape[0] = 1;
	x1->shape[1] = x2->shape[1] = n;
	fd_requires_grad(x1);
	fd_requires_grad(x2);
	struct fd_tensor *a = fd_silu(&c, x1), *b = fd_silu(&c, x2);
	struct fd_tensor *h = fd_mul(&c, a, b);   /* a takes dh */
	struct fd_tensor *k = fd_mul(&c, x2, h);  /* h (in[1]) takes dk; x2's is reduced first */
	struct fd_tensor *p = fd_add(&c, k, x1);  /* k takes dp */
	struct fd_tensor *q = fd_add(&c, x1, p);  /* p (in[1]) takes dq */
	struct fd_tensor *r = fd_relu_(&c, q);    /* q takes dr */
	struct fd_tensor *l = fd_linear(&c, r, w, NULL); /* r takes dl only when marked */
	if (l && bad)
		c.tape->writes = c.tape->aliases = 1u;
	struct fd_tensor *y = fd_silu(&c, l);     /* l takes dy */
	float *seed = fd_ctx_alloc(&c, FD_DEV_CPU, n);
	for (int64_t i = 0; seed && i < n; i++)
		seed[i] = (float)(i % 13) - 6.0f;
	int good = ok(y && seed && fd_backward(&c, y, seed) == 0, "alias chain (reuse %d%s): %s", reuse,
		      bad ? ", linear marked" : "", c.err.msg);
	if (good) {
		memcpy(g1, x1->grad, (size_t)n * sizeof *g1);
		memcpy(g2, x2->grad, (size_t)n * sizeof *g2);
		*aliased = c.gpool.aliased_bytes;
		*own = c.gpool.bytes;
	}
	fd_ctx_free(&c);
	return good;
}

/* Aliasing (struct fd_node's aliases, with c->reuse_activations): inputs of
 * relu_, add, mul (either operand) and silu take their
 * op's output gradient instead of a new block; the gradients are bit for bit
 * those without (no reuse, every gradient its own block). The control: an
 * op whose backward is not alias-safe, marked as if it were, gives
 * different gradients, so the comparison can see a wrong alias. */
static void test_alias(void)
{
	enum { N = 257 };
	static float g1[3][N], g2[3][N];
	size_t al[3] = {0}, own[3] = {0};
	int good = alias_chain(0, 0, N, g1[0], g2[0], &al[0], &own[0]) &
		   alias_chain(1, 0, N, g1[1], g2[1], &al[1], &own[1]) &
		   alias_chain(1, 1, N, g1[2], g2[2], &al[2], &own[2]);
	if (!good)
		return;
	/* q, p, k, h, a and linear's output l; with linear marked its input r too */
	ok(al[0] == 0 && al[1] == 6 * N * sizeof(float) && al[2] == 7 * N * sizeof(float),
	   "aliased gradients: %zu, %zu, %zu bytes (none without reuse; 6 and 7 tensors of %d floats)", al[0], al[1],
	   al[2], N);
	ok(own[1] < own[0], "gradient pool %zu bytes with aliasing, %zu without", own[1], own[0]);
	ok(!memcmp(g1[0], g1[1], sizeof g1[0]) && !memcmp(g2[0], g2[1], sizeof g2[0]),
	   "aliasing: dx1, dx2 bit for bit the gradients without");
	ok(memcmp(g1[0], g1[2], sizeof g1[0]) != 0,
	   "control: linear marked as aliasing (its sgemm reads dy while writing dx) changes dx1");
}

/* fd_arena_reserve: the second of two identical steps writes into pages
 * the first made resident (few minor faults), where a regrown block faults
 * every page in again (the control: that count is large). */
static long step_faults(int reserve, int *overflowed)
{
	struct fd_arena a;
	fd_arena_init(&a);
	if (reserve && fd_arena_reserve(&a, (size_t)1 << 30) < 0)
		return -1;
	long f = 0;
	*overflowed = 0;
	for (int s = 0; s < 2; s++) {
		struct rusage r0, r1;
		getrusage(RUSAGE_SELF, &r0);
		for (int i = 0; i < 16; i++) {
			char *p = fd_arena_alloc(&a, (size_t)4 << 20);
			if (!p)
				return -1;
			memset(p, i + 1, (size_t)4 << 20);
		}
		*overflowed |= a.nextra > 0;
		getrusage(RUSAGE_SELF, &r1);
		f = r1.ru_minflt - r0.ru_minflt;
		if (fd_arena_reset(&a) < 0)
			return -1;
	}
	fd_arena_free(&a);
	return f;
}

static void test_reserve(void)
{
	int ov0 = 0, ov1 = 0;
	long plain = step_faults(0, &ov0), reserved = step_faults(1, &ov1);
	ok(plain > 8000 && ov0, "no reservation: step 2 faults %ld pages in (64 MiB regrown)", plain);
	ok(reserved >= 0 && reserved < plain / 10 && !ov1,
	   "reserved range: step 2 faults %ld pages (< 1/10 of %ld), nothing overflowed", reserved, plain);
	struct fd_arena a;
	fd_arena_init(&a);
	ok(fd_arena_alloc(&a, 100) && fd_arena_reserve(&a, (size_t)1 << 30) == -1 && a.cap < ((size_t)1 << 30),
	   "a non-empty arena is not reserved");
	fd_arena_free(&a);
}

static void test_inplace(void)
{
	struct fd_ctx c;
	ctx_open(&c, 2, 1);
	const int64_t n = 3001;
	float gx[2][3001], gb[2][3001], yv[2][3001];
	for (int v = 0; v < 2; v++) {
		fd_ctx_step(&c);
		struct fd_tensor *a = filled(&c, n, 0.25f), *b = filled(&c, n, -0.5f);
		for (int64_t i = 0; i < n; i += 7)
			a->data[i] = i % 2 ? -0.0f : 0.0f; /* both zeros at the kink */
		fd_requires_grad(a);
		fd_requires_grad(b);
		struct fd_tensor *h = fd_mul(&c, a, b);   /* mul reads its inputs, not its output */
		struct fd_tensor *s = v ? fd_add_(&c, h, b) : fd_add(&c, h, b);
		struct fd_tensor *y = v ? fd_relu_(&c, s) : fd_relu(&c, s);
		struct fd_tensor *z = fd_mul(&c, y, b);  /* y is read by a later op's backward */
		float *seed = fd_ctx_alloc(&c, FD_DEV_CPU, n);
		for (int64_t i = 0; i < n; i++)
			seed[i] = (float)(i % 13) - 6.0f;
		if (!ok(z && fd_backward(&c, z, seed) == 0, "variant %d: forward and backward %s", v, c.err.msg))
			return;
		if (v)
			ok(y->data == h->data, "relu_(add_(h, b)) wrote into h's memory");
		memcpy(yv[v], y->data, sizeof yv[v]);
		memcpy(gx[v], a->grad, sizeof gx[v]);
		memcpy(gb[v], b->grad, sizeof gb[v]);
	}
	ok(!memcmp(yv[0], yv[1], sizeof yv[0]), "relu_(add_()) values bit for bit relu(add())");
	ok(!memcmp(gx[0], gx[1], sizeof gx[0]) && !memcmp(gb[0], gb[1], sizeof gb[0]),
	   "gradients bit for bit the out-of-place ops'");
	fd_ctx_step(&c);
	struct fd_tensor *a = filled(&c, 10, 0.0f), *b = filled(&c, 5, 0.0f);
	ok(fd_add_(&c, a, b) == NULL && strstr(c.err.msg, "in place"), "add_ of different shapes: %s", c.err.msg);
	fd_ctx_step(&c);
	a = filled(&c, 10, 0.0f);
	struct fd_tensor *sl = fd_act_(&c, FD_ACT_SILU, a);
	ok(sl && sl->data != a->data && a->data[9] == -39.0f, "fd_act_ runs silu out of place");
	struct fd_tensor *rl = fd_act_(&c, FD_ACT_RELU, a);
	ok(rl && rl->data == a->data && a->data[9] == 0.0f, "and relu in place");
	fd_ctx_free(&c);
}

/* fd_stochastic_depth_ against fd_stochastic_depth (training, p 0.5): the
 * same masks (same step and op position), values and gradients bit for bit;
 * some rows dropped and some kept, so both branches are compared. */
static void test_sd_inplace(void)
{
	enum { R = 16, K = 67 };
	static float yv[2][R * K], ga[2][R * K];
	int dropped = 0, kept = 0;
	for (int v = 0; v < 2; v++) {
		struct fd_ctx c;
		ctx_open(&c, 2, 9);
		fd_ctx_step(&c);
		int64_t sh[2] = {R, K};
		struct fd_tensor *a = fd_tensor_new(&c, FD_DEV_CPU, 2, sh), *b = fd_tensor_new(&c, FD_DEV_CPU, 2, sh);
		for (int64_t i = 0; a && b && i < R * K; i++)
			a->data[i] = (float)(i % 31) * 0.25f - 3.0f, b->data[i] = (float)(i % 7) - 2.5f;
		fd_requires_grad(a);
		struct fd_tensor *h = fd_mul(&c, a, b); /* reads its inputs, not its output */
		struct fd_tensor *y = v ? fd_stochastic_depth_(&c, h, 0.5f) : fd_stochastic_depth(&c, h, 0.5f);
		struct fd_tensor *z = fd_mul(&c, y, b);
		float *seed = fd_ctx_alloc(&c, FD_DEV_CPU, R * K);
		for (int64_t i = 0; seed && i < R * K; i++)
			seed[i] = (float)(i % 13) - 6.0f;
		if (!ok(z && seed && fd_backward(&c, z, seed) == 0, "stochastic depth %s: %s", v ? "in place" : "",
			c.err.msg))
			return;
		if (v)
			ok(y->data == h->data, "stochastic_depth_ wrote over its input");
		memcpy(yv[v], y->data, sizeof yv[v]);
		memcpy(ga[v], a->grad, sizeof ga[v]);
		for (int r = 0; r < R && !v; r++) {
			int64_t i = r * K + 1; /* h != 0 there: a, b nonzero */
			if (h->data[i] != 0.0f && y->data[i] == 0.0f)
				dropped++;
			else if (h->data[i] != 0.0f && y->data[i] == 2.0f * h->data[i])
				kept++;
		}
		fd_ctx_free(&c);
	}
	ok(dropped > 0 && kept > 0, "stochastic depth: %d rows dropped, %d kept", dropped, kept);
	ok(!memcmp(yv[0], yv[1], sizeof yv[0]) && !memcmp(ga[0], ga[1], sizeof ga[0]),
	   "stochastic_depth_: values and gradients bit for bit the out-of-place op's");
}

/* A model's eval forward twice, conv-BN folding off (m->unfused): with a
 * tape (every keep a no-op: everything stays) and without (keeps release):
 * the same logits bit for bit, a smaller peak; then inference steps
 * allocate nothing after the first, also with folding on (the default
 * inference path, whose folded weights are arena scratch). */
static void test_model(const struct fd_model_arch *a, int size, double max_ratio)
{
	struct fd_err e = {{0}};
	struct fd_model *m;
	const char *name = a->name;
	if (!ok(fd_model_new_arch(a, 3, 7, &m, &e) == 0, "%s: built %s", name, e.msg))
		return;
	const int N = 2;
	int64_t xs[4] = {N, 3, size, size};
	static float x[2 * 3 * 64 * 64];
	for (size_t i = 0; i < sizeof x / sizeof *x; i++)
		x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
	float ref[2 * 3];
	size_t peak[2] = {0, 0};
	unsigned long g = 0;
	for (int v = 0; v < 3; v++) {
		struct fd_ctx c;
		ctx_open(&c, 2, 1);
		c.training = 0;
		c.grad_enabled = v == 0; /* parameters require grad: with grad on, every op is taped */
		m->unfused = v < 2;
		for (int s = 0; s < (v ? 3 : 1); s++) {
			fd_ctx_step(&c);
			if (s == 1)
				g = c.arena.grows;
			struct fd_tensor *y = fd_model_forward(m, &c, fd_tensor_wrap(&c, FD_DEV_CPU, x, 4, xs));
			if (!ok(y != NULL, "%s %s: forward %s", name, v ? "untaped" : "taped", c.err.msg))
				break;
			if (v == 0)
				memcpy(ref, y->data, sizeof ref);
			else if (s == 0 && v == 1)
				ok(!memcmp(ref, y->data, sizeof ref), "%s: logits bit for bit with and without releases",
				   name);
			if (v < 2)
				peak[v] = c.arena.peak;
		}
		if (v > 0)
			ok(c.arena.grows == g, "%s: inference steps 2 and 3 allocated nothing%s", name,
			   v == 2 ? " (folding on)" : "");
		for (int i = 0; i < m->nconvs; i++) /* plans borrow the context's engine */
			fd_conv2d_op_free(m->convs[i]);
		fd_ctx_free(&c);
	}
	/* training with the in-place ops, every output in the arena
	 * (m->no_transient): nothing allocated after step 1; then the same
	 * steps reusing activations (c.reuse_activations, as fd-train) and with
	 * transient outputs in the gradient pool (fd_mconv_bn_fwd_transient:
	 * ResNet's): the same gradients bit for bit, the logits (kept) intact, a
	 * smaller gradient pool, an arena smaller by the transients. BN,
	 * ReLU and max pool as one op (whose gradient cannot take over its
	 * output's) are off here (m->no_bn_pool): t_nn_bnpool checks that op
	 * with reuse against the separate ops */
	m->unfused = 0;
	m->no_bn_pool = 1;
	size_t tpeak[2] = {0, 0}, outb[2] = {0, 0};
	float t[2 * 3] = {1, 0, 1, 0, 0, 1};
	int64_t ts[2] = {N, 3};
	float *g0 = malloc((size_t)m->p.ntrain * sizeof *g0), lg[2][2 * 3];
	size_t own[2] = {0, 0}, donated = 0;
	for (int v = 0; v < 2 && g0; v++) {
		struct fd_ctx c;
		ctx_open(&c, 2, 1);
		c.reuse_activations = v;
		m->no_transient = !v;
		unsigned long pg = 0;
		int good = 1;
		for (int s = 0; s < 3 && good; s++) {
			fd_ctx_step(&c);
			if (s == 1)
				g = c.arena.grows, pg = c.gpool.grows;
			fd_params_zero_grad(&m->p);
			struct fd_tensor *y = fd_keep_data(fd_model_forward(m, &c, fd_tensor_wrap(&c, FD_DEV_CPU, x, 4, xs)));
			struct fd_tensor *loss = fd_bce_with_logits(&c, y, fd_tensor_wrap(&c, FD_DEV_CPU, t, 2, ts));
			good = ok(loss && fd_backward(&c, loss, NULL) == 0, "%s: training step %d%s %s", name, s + 1,
				  v ? " (reuse)" : "", c.err.msg);
			if (good && s == 2) {
				memcpy(lg[v], y->data, sizeof lg[v]);
				tpeak[v] = c.arena.peak;
				outb[v] = c.gpool.out_bytes;
			}
		}
		ok(good && c.arena.grows == g && c.gpool.grows == pg && c.gpool.used_bytes == 0,
		   "%s: training steps 2 and 3 allocated nothing (arena, gradient pool)%s", name, v ? ", reuse" : "");
		own[v] = c.gpool.bytes;
		if (v) {
			donated = c.gpool.donated_bytes;
			ok(c.gpool.aliased_bytes > 0, "%s: reuse: %.1f MiB of gradients taken over from op outputs",
			   name, c.gpool.aliased_bytes / 1048576.0);
			ok(good && !memcmp(g0, m->p.grad, (size_t)m->p.ntrain * sizeof *g0) &&
			   !memcmp(lg[0], lg[1], sizeof lg[0]),
			   "%s: reusing activations: parameter gradients and logits bit for bit", name);
		} else {
			memcpy(g0, m->p.grad, (size_t)m->p.ntrain * sizeof *g0);
		}
		for (int i = 0; i < m->nconvs; i++)
			fd_conv2d_op_free(m->convs[i]);
		fd_ctx_free(&c);
	}
	free(g0);
	m->no_transient = 0;
	m->no_bn_pool = 0;
	int resnet = !strncmp(name, "resnet", 6);
	ok(outb[0] == 0 && (resnet ? outb[1] > 0 && tpeak[1] + outb[1] <= tpeak[0] : outb[1] == 0),
	   "%s: %.2f MiB of transient outputs in the gradient pool (%s), training arena peak %.2f MiB (%.2f without)",
	   name, outb[1] / 1048576.0, resnet ? "ResNet: the stem's ReLU, the downsample BNs" : "none",
	   tpeak[1] / 1048576.0, tpeak[0] / 1048576.0);
	ok(donated > 0 && own[1] <= own[0], "%s: reuse: %.1f MiB donated, gradient pool %.1f MiB (%.1f without)",
	   name, donated / 1048576.0, own[1] / 1048576.0, own[0] / 1048576.0);
	ok(peak[1] < max_ratio * (double)peak[0], "%s: arena peak %.1f MiB without a tape, %.1f MiB with (< %.2fx)",
	   name, peak[1] / 1048576.0, peak[0] / 1048576.0, max_ratio);
	fd_model_free(m);
}

int main(void)
{
	test_keep();
	test_keep_under_tape();
	test_inplace();
	test_reuse();
	test_alias();
	test_transient();
	test_sd_inplace();
	test_reserve();
	test_model(&fd_arch_simplecnn, 64, 0.6);
	test_model(&fd_arch_resnet18, 64, 0.4);
	test_model(&fd_arch_resnet50, 32, 0.4);
	test_model(&fd_arch_mobilenet_v3_small, 64, 0.4);
	test_model(&fd_arch_efficientnet_b0, 64, 0.4);
	test_model(&fd_arch_convnext_mini, 32, 0.4);
	return tap_done();
}
