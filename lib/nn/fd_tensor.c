/* fd_tensor: arena, context, tensors and the tape walk (fd_backward). */
#include "nn/fd_tensor.h"
#include "nn/fd_backend.h"
#include "core/fd_progress.h"
#include "core/fd_rng.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ALIGN 64
#define BIG ((size_t)1 << 20)
/* fd_arena_release leaves a kept block in place above a gap this small */
#define KEEP_GAP ((size_t)4096)

const char *fd_dev_name(enum fd_dev d)
{
	return d == FD_DEV_CPU ? "cpu" : d == FD_DEV_CUDA ? "cuda" : "unknown";
}

void fd_arena_init(struct fd_arena *a)
{
	memset(a, 0, sizeof *a);
}

/* Arena blocks of 1 MiB and more come straight from mmap and go straight
 * back: glibc's free() keeps big chunks in its heap once its mmap threshold
 * has adapted to earlier frees (up to 32 MiB), so memory released inside a
 * step would stay resident and the next step's block would come on top. */
static void *block_alloc(const struct fd_arena *a, size_t bytes)
{
	void *p = NULL;
	if (a->mem_alloc)
		return a->mem_alloc(bytes);
	if (bytes >= BIG) {
		p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return p == MAP_FAILED ? NULL : p;
	}
	return posix_memalign(&p, ALIGN, bytes) == 0 ? p : NULL;
}

static void block_free(const struct fd_arena *a, void *p, size_t bytes)
{
	if (a->mem_alloc)
		a->mem_free(p);
	else if (p && bytes >= BIG)
		munmap(p, bytes);
	else
		free(p);
}

static void note_peak(struct fd_arena *a)
{
	if (a->used + a->extra_bytes > a->peak)
		a->peak = a->used + a->extra_bytes;
}

void *fd_arena_alloc(struct fd_arena *a, size_t bytes)
{
	bytes = (bytes + ALIGN - 1) / ALIGN * ALIGN;
	if (bytes == 0)
		bytes = ALIGN;
	if (a->base && a->cap - a->used >= bytes) {
		void *p = a->base + a->used;
		a->used += bytes;
		note_peak(a);
		return p;
	}
	if (a->nextra == a->capextra) {
		int nc = a->capextra ? 2 * a->capextra : 16;
		struct fd_arena_extra *ne = realloc(a->extra, (size_t)nc * sizeof *ne);
		if (!ne)
			return NULL;
		a->extra = ne;
		a->capextra = nc;
		a->grows++;
	}
	void *p = block_alloc(a, bytes);
	if (!p)
		return NULL;
	a->extra[a->nextra++] = (struct fd_arena_extra){p, bytes};
	a->extra_bytes += bytes;
	a->grows++;
	note_peak(a);
	return p;
}

int fd_arena_reset(struct fd_arena *a)
{
	for (int i = 0; i < a->nextra; i++)
		block_free(a, a->extra[i].p, a->extra[i].bytes);
	a->nextra = 0;
	a->extra_bytes = 0;
	if (a->peak > a->cap) {
		/* one block of this step's peak (plus slack for the alignment rounding) */
		size_t cap = a->peak + a->peak / 8 + ALIGN;
		void *p = block_alloc(a, cap);
		if (!p)
			return -1;
		block_free(a, a->base, a->cap);
		a->base = p;
		a->cap = cap;
		a->grows++;
	}
	a->used = 0;
	a->peak = 0;
	return 0;
}

int fd_arena_reserve(struct fd_arena *a, size_t bytes)
{
	if (a->mem_alloc || a->base || a->nextra || a->used || bytes < BIG)
		return -1;
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	a->base = p;
	a->cap = bytes;
	a->grows++;
	return 0;
}

void fd_arena_free(struct fd_arena *a)
{
	for (int i = 0; i < a->nextra; i++)
		block_free(a, a->extra[i].p, a->extra[i].bytes);
	free(a->extra);
	block_free(a, a->base, a->cap);
	memset(a, 0, sizeof *a);
}

struct fd_arena_mark fd_arena_mark(const struct fd_arena *a)
{
	return (struct fd_arena_mark){a->used, a->extra_bytes, a->nextra};
}

/* Index of the overflow block above m holding p, -1 for none. */
static int extra_above(const struct fd_arena *a, const struct fd_arena_mark *m, const void *p)
{
	const char *q = p;
	for (int i = m->nextra; i < a->nextra; i++)
		if (q >= (const char *)a->extra[i].p && q < (const char *)a->extra[i].p + a->extra[i].bytes)
			return i;
	return -1;
}

int fd_arena_above(const struct fd_arena *a, const struct fd_arena_mark *m, const void *p)
{
	const char *q = p;
	if (a->base && q >= a->base + m->used && q < a->base + a->used)
		return 1;
	return extra_above(a, m, p) >= 0;
}

void *fd_arena_release(struct fd_arena *a, const struct fd_arena_mark *m, const void *keep, size_t n)
{
	/* an overflow block holding keep survives until keep is copied out of it */
	int src = keep ? extra_above(a, m, keep) : -1;
	struct fd_arena_extra srcblk = src >= 0 ? a->extra[src] : (struct fd_arena_extra){NULL, 0};
	for (int i = m->nextra; i < a->nextra; i++)
		if (i != src)
			block_free(a, a->extra[i].p, a->extra[i].bytes);
	a->nextra = m->nextra;
	a->extra_bytes = m->extra_bytes;
	a->used = m->used;
	if (!keep) {
		static const char none;
		return (void *)&none;
	}
	/* in the base block keep lies at or above m->used, so the new place (from
	 * the base block too: keep fitted there) is at or below it: memmove;
	 * but where only a small gap lies below keep (its own header, a folded
	 * weight: at most KEEP_GAP or an eighth of n), keep stays and the gap
	 * stays unused until a release below m: moving would copy all n bytes
	 * to win the gap back */
	if (src < 0 && a->base && (const char *)keep >= a->base + a->used &&
	    (const char *)keep + n <= a->base + a->cap) {
		size_t gap = (size_t)((const char *)keep - (a->base + a->used));
		if (gap <= KEEP_GAP || gap <= n / 8) {
			a->used += gap + (n + ALIGN - 1) / ALIGN * ALIGN;
			return (void *)keep;
		}
	}
	void *dst = fd_arena_alloc(a, n);
	if (dst && dst != keep) /* already in place: nothing to move */
		memmove(dst, keep, n);
	block_free(a, srcblk.p, srcblk.bytes);
	return dst;
}

/* --- gradient pool (see struct fd_gpool) --- */

static void *gpool_get(struct fd_gpool *g, size_t bytes)
{
	bytes = (bytes + ALIGN - 1) / ALIGN * ALIGN;
	if (bytes == 0)
		bytes = ALIGN;
	/* the smallest free block that holds it, a donated one before an own
	 * one of the same size (a fixed rule: the same step picks the same
	 * blocks every time) */
	struct fd_gblock *blk = NULL;
	for (int i = 0; i < g->n; i++) {
		struct fd_gblock *b = &g->b[i];
		if (b->used || b->bytes < bytes)
			continue;
		if (!blk || b->bytes < blk->bytes || (b->bytes == blk->bytes && b->donated && !blk->donated))
			blk = b;
	}
	if (!blk) {
		if (g->n == g->cap) {
			int nc = g->cap ? 2 * g->cap : 32;
			struct fd_gblock *nb = realloc(g->b, (size_t)nc * sizeof *nb);
			if (!nb)
				return NULL;
			g->b = nb;
			g->cap = nc;
			g->grows++;
		}
		void *p = NULL;
		if (g->mem_alloc ? !(p = g->mem_alloc(bytes)) : posix_memalign(&p, ALIGN, bytes) != 0)
			return NULL;
		blk = &g->b[g->n++];
		*blk = (struct fd_gblock){p, bytes, 0, 0};
		g->bytes += bytes;
		g->grows++;
	}
	blk->used = 1;
	g->used_bytes += blk->bytes;
	if (g->used_bytes > g->peak_bytes)
		g->peak_bytes = g->used_bytes;
	return blk->p;
}

static void gpool_put(struct fd_gpool *g, void *p)
{
	for (int i = g->n - 1; i >= 0; i--)
		if (g->b[i].p == p && g->b[i].used) {
			g->b[i].used = 0;
			g->used_bytes -= g->b[i].bytes;
			return;
		}
}

/* Lend the pool an arena allocation of bytes at p (fd_arena_alloc: ALIGN-
 * aligned, its size rounded up to ALIGN) that no one reads until the step
 * ends. A pointer the pool already holds, or a misaligned one, is ignored.
 * 0, or -1 when the block list cannot grow (the memory is then not lent). */
static int gpool_donate(struct fd_gpool *g, void *p, size_t bytes)
{
	uintptr_t a = (uintptr_t)p;
	if (a % ALIGN || bytes == 0)
		return 0;
	bytes = (bytes + ALIGN - 1) / ALIGN * ALIGN;
	for (int i = 0; i < g->n; i++)
		if (g->b[i].p == (void *)a)
			return 0;
	if (g->n == g->cap) {
		int nc = g->cap ? 2 * g->cap : 32;
		struct fd_gblock *nb = realloc(g->b, (size_t)nc * sizeof *nb);
		if (!nb)
			return -1;
		g->b = nb;
		g->cap = nc;
		g->grows++;
	}
	g->b[g->n++] = (struct fd_gblock){(void *)a, bytes, 0, 1};
	g->donated_bytes += bytes;
	return 0;
}

float *fd_grad_scratch(struct fd_ctx *c, int64_t n)
{
	float *p = n > 0 ? gpool_get(&c->gpool, (size_t)n * sizeof(float)) : NULL;
	if (!p)
		return fd_fail(c, "out of memory allocating gradient scratch of %lld floats", (long long)n);
	return p;
}

void fd_grad_scratch_put(struct fd_ctx *c, float *p)
{
	gpool_put(&c->gpool, p);
}

/* Every block back (the step's tensors are gone); own memory is kept,
 * donated blocks (the step's arena) are dropped. */
static void gpool_reset(struct fd_gpool *g)
{
	int k = 0;
	for (int i = 0; i < g->n; i++)
		if (!g->b[i].donated) {
			g->b[k] = g->b[i];
			g->b[k++].used = 0;
		}
	g->n = k;
	g->used_bytes = 0;
	g->donated_bytes = 0;
	g->out_bytes = 0;
	g->aliased_bytes = 0;
}

static void gpool_free(struct fd_gpool *g)
{
	for (int i = 0; i < g->n; i++)
		if (g->b[i].donated)
			continue;
		else if (g->mem_alloc)
			g->mem_free(g->b[i].p);
		else
			free(g->b[i].p);
	free(g->b);
	memset(g, 0, sizeof *g);
}

int fd_ctx_open(struct fd_ctx *c, enum fd_dev dev, int threads, uint64_t seed, struct fd_err *e)
{
	memset(c, 0, sizeof *c);
	const struct fd_backend *be = fd_backend_of(dev);
	if (!be || !be->ctx_open)
		return fd_err_set(e, "context on %s: not supported", fd_dev_name(dev));
	c->dev = dev;
	c->threads = threads < 1 ? 1 : threads;
	c->training = 1;
	c->grad_enabled = 1;
	c->seed = seed;
	fd_arena_init(&c->arena);
	fd_arena_init(&c->darena);
	if (dev != FD_DEV_CPU) {
		if (!be->mem_alloc || !be->mem_free) {
			memset(c, 0, sizeof *c);
			return fd_err_set(e, "context on %s: the table has no device memory", fd_dev_name(dev));
		}
		c->darena.mem_alloc = c->gpool.mem_alloc = be->mem_alloc;
		c->darena.mem_free = c->gpool.mem_free = be->mem_free;
	}
	if (be->ctx_open(c, e) < 0) {
		memset(c, 0, sizeof *c);
		return -1;
	}
	return 0;
}

const char *fd_precision_name(enum fd_precision p)
{
	return p == FD_PREC_BF16 ? "bf16" : "fp32";
}

int fd_ctx_set_precision(struct fd_ctx *c, enum fd_precision p, struct fd_err *e)
{
	const struct fd_backend *be = fd_backend_of(c->dev);
	if (p == FD_PREC_FP32) {
		c->precision = p;
		return 0;
	}
	if (!be || !be->precision_ok)
		return fd_err_set(e, "precision %s: not supported on %s (fp32 only)", fd_precision_name(p),
				  fd_dev_name(c->dev));
	if (be->precision_ok(c, p, e) < 0)
		return -1;
	c->precision = p;
	return 0;
}

int fd_ctx_step(struct fd_ctx *c)
{
	c->tape = NULL;
	c->failed = 0;
	c->err.msg[0] = 0;
	c->rng_calls = 0;
	c->step++;
	gpool_reset(&c->gpool);
	if (fd_arena_reset(&c->arena) < 0) {
		fd_fail(c, "out of memory growing the step arena");
		return -1;
	}
	if (fd_arena_reset(&c->darena) < 0) {
		fd_fail(c, "out of %s memory growing the step arena to %zu bytes", fd_dev_name(c->dev),
			c->darena.peak);
		return -1;
	}
	return 0;
}

int fd_ctx_reserve(struct fd_ctx *c)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	if (pages <= 0 || psz <= 0)
		return -1;
	size_t bytes = (size_t)pages * (size_t)psz;
	if (bytes > ((size_t)1 << 40))
		bytes = (size_t)1 << 40;
	return fd_arena_reserve(&c->arena, bytes);
}

void fd_ctx_free(struct fd_ctx *c)
{
	if (!c)
		return;
	fd_arena_free(&c->arena);
	fd_arena_free(&c->darena);
	gpool_free(&c->gpool);
	const struct fd_backend *be = c->engine ? fd_backend_of(c->dev) : NULL;
	if (be && be->ctx_close)
		be->ctx_close(c);
	c->engine = NULL;
	c->tape = NULL;
}

void *fd_fail(struct fd_ctx *c, const char *fmt, ...)
{
	if (c->failed)
		return NULL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err.msg, sizeof c->err.msg, fmt, ap);
	va_end(ap);
	c->failed = 1;
	return NULL;
}

uint64_t fd_ctx_stream(struct fd_ctx *c)
{
	/* (step, call) packed into one stream id; 2^32 random ops per step is plenty */
	return (c->step << 32) | c->rng_calls++;
}

struct fd_mark fd_ctx_mark(const struct fd_ctx *c)
{
	return (struct fd_mark){fd_arena_mark(&c->arena), c->tape};
}

struct fd_tensor *fd_ctx_keep(struct fd_ctx *c, const struct fd_mark *m, struct fd_tensor *t)
{
	if (!t || c->failed)
		return c->failed ? NULL : t;
	if (c->tape != m->tape || t->grad || t->dev != FD_DEV_CPU)
		return t;
	struct fd_tensor h = *t; /* the header may lie above the mark */
	size_t n = fd_tensor_bytes(&h);
	if (fd_arena_above(&c->arena, &m->a, h.data)) {
		if (!(h.data = fd_arena_release(&c->arena, &m->a, h.data, n)))
			return fd_fail(c, "out of memory keeping a tensor of %lld floats", (long long)h.numel);
	} else {
		fd_arena_release(&c->arena, &m->a, NULL, 0);
	}
	struct fd_tensor *nt = fd_arena_alloc(&c->arena, sizeof *nt);
	if (!nt)
		return fd_fail(c, "out of memory");
	*nt = h;
	return nt;
}

float *fd_ctx_alloc(struct fd_ctx *c, enum fd_dev dev, int64_t n)
{
	struct fd_arena *a = dev == FD_DEV_CPU ? &c->arena : dev == c->dev ? &c->darena : NULL;
	if (!a)
		return fd_fail(c, "tensor memory on %s: not supported in a %s context", fd_dev_name(dev),
			       fd_dev_name(c->dev));
	if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof(float) / 2)
		return fd_fail(c, "tensor of %lld elements is too large", (long long)n);
	float *p = fd_arena_alloc(a, (size_t)n * sizeof(float));
	if (!p)
		return fd_fail(c, "out of %s memory allocating %lld floats", fd_dev_name(dev), (long long)n);
	return p;
}

static struct fd_tensor *header(struct fd_ctx *c, enum fd_dev dev, int ndim, const int64_t *shape)
{
	if (ndim < 1 || ndim > FD_MAXDIM)
		return fd_fail(c, "tensor with %d dims (1..%d allowed)", ndim, FD_MAXDIM);
	int64_t n = 1;
	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 1 || shape[i] > ((int64_t)1 << 40) / n)
			return fd_fail(c, "tensor dim %d is %lld", i, (long long)shape[i]);
		n *= shape[i];
	}
	struct fd_tensor *t = fd_arena_alloc(&c->arena, sizeof *t);
	if (!t)
		return fd_fail(c, "out of memory");
	memset(t, 0, sizeof *t);
	t->ndim = ndim;
	memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
	t->numel = n;
	t->dev = dev;
	return t;
}

struct fd_tensor *fd_tensor_new(struct fd_ctx *c, enum fd_dev dev, int ndim, const int64_t *shape)
{
	struct fd_tensor *t = header(c, dev, ndim, shape);
	if (t && c->pool_outputs && dev == c->dev) {
		/* not FD_T_OWNS_DATA: fd_backward lends the pool arena memory only */
		if (!(t->data = gpool_get(&c->gpool, (size_t)t->numel * sizeof(float))))
			return fd_fail(c, "out of memory allocating an output of %lld floats", (long long)t->numel);
		c->gpool.out_bytes += (size_t)t->numel * sizeof(float);
		t->flags |= FD_T_POOL_DATA;
		return t;
	}
	if (!t || !(t->data = fd_ctx_alloc(c, dev, t->numel)))
		return NULL;
	t->flags |= FD_T_OWNS_DATA;
	return t;
}

struct fd_tensor *fd_tensor_new_bf16(struct fd_ctx *c, int ndim, const int64_t *shape)
{
	struct fd_tensor *t = header(c, FD_DEV_CPU, ndim, shape);
	if (!t)
		return NULL;
	size_t n = (size_t)t->numel * sizeof(uint16_t);
	if (c->pool_outputs && c->dev == FD_DEV_CPU) {
		if (!(t->data = gpool_get(&c->gpool, n)))
			return fd_fail(c, "out of memory allocating an output of %lld bf16 values", (long long)t->numel);
		c->gpool.out_bytes += n;
		t->flags |= FD_T_POOL_DATA;
	} else {
		if (!(t->data = fd_ctx_alloc(c, FD_DEV_CPU, (t->numel + 1) / 2)))
			return NULL;
		t->flags |= FD_T_OWNS_DATA;
	}
	t->flags |= FD_T_BF16;
	if (c->bf16_out) /* conv2d's bf16 outputs (c->bf16_y) count in bf16_ys */
		c->bf16_outs++;
	return t;
}

size_t fd_tensor_bytes(const struct fd_tensor *t)
{
	return (size_t)t->numel * (t->flags & FD_T_BF16 ? sizeof(uint16_t) : sizeof(float));
}

void fd_tensor_release(struct fd_ctx *c, struct fd_tensor *t)
{
	if (t && (t->flags & FD_T_POOL_DATA)) {
		gpool_put(&c->gpool, t->data);
		t->flags &= ~(unsigned)FD_T_POOL_DATA;
	}
}

struct fd_tensor *fd_tensor_zeros(struct fd_ctx *c, enum fd_dev dev, int ndim, const int64_t *shape)
{
	struct fd_tensor *t = fd_tensor_new(c, dev, ndim, shape);
	const struct fd_backend *be = t ? FD_KERNEL(c, dev, zero) : NULL;
	if (!be || be->zero(c, t->data, t->numel) < 0)
		return NULL;
	return t;
}

struct fd_tensor *fd_tensor_wrap(struct fd_ctx *c, enum fd_dev dev, float *data, int ndim,
				 const int64_t *shape)
{
	struct fd_tensor *t = header(c, dev, ndim, shape);
	if (t)
		t->data = data;
	return t;
}

int fd_tensor_same_shape(const struct fd_tensor *a, const struct fd_tensor *b)
{
	if (a->ndim != b->ndim)
		return 0;
	for (int i = 0; i < a->ndim; i++)
		if (a->shape[i] != b->shape[i])
			return 0;
	return 1;
}

const char *fd_tensor_shape_str(const struct fd_tensor *t, char *buf, size_t len)
{
	size_t k = 0;
	k += (size_t)snprintf(buf + k, len - k, "[");
	for (int i = 0; i < t->ndim && k < len; i++)
		k += (size_t)snprintf(buf + k, len - k, i ? ",%lld" : "%lld", (long long)t->shape[i]);
	if (k < len)
		snprintf(buf + k, len - k, "]");
	return buf;
}

void fd_requires_grad(struct fd_tensor *t)
{
	t->flags |= FD_T_REQUIRES_GRAD | FD_T_RETAIN_GRAD;
}

struct fd_tensor *fd_keep_data(struct fd_tensor *t)
{
	if (t)
		t->flags |= FD_T_KEEP_DATA;
	return t;
}

int fd_needs_grad(const struct fd_ctx *c, int nin, struct fd_tensor *const *in)
{
	if (!c->grad_enabled)
		return 0;
	for (int i = 0; i < nin; i++)
		if (in[i] && (in[i]->flags & FD_T_REQUIRES_GRAD))
			return 1;
	return 0;
}

struct fd_node *fd_tape_push(struct fd_ctx *c, const char *op,
			     int (*backward)(struct fd_ctx *, struct fd_node *), int nin,
			     struct fd_tensor *const *in, struct fd_tensor *out, size_t saved_bytes)
{
	if (nin > FD_NODE_MAXIN)
		return fd_fail(c, "%s: %d inputs (at most %d)", op, nin, FD_NODE_MAXIN);
	struct fd_node *n = fd_arena_alloc(&c->arena, sizeof *n);
	if (!n)
		return fd_fail(c, "out of memory");
	memset(n, 0, sizeof *n);
	n->op = op;
	n->backward = backward;
	n->nin = nin;
	for (int i = 0; i < nin; i++)
		n->in[i] = in[i];
	n->out = out;
	if (saved_bytes && !(n->saved = fd_arena_alloc(&c->arena, saved_bytes)))
		return fd_fail(c, "out of memory");
	n->prev = c->tape;
	c->tape = n;
	out->flags |= FD_T_REQUIRES_GRAD;
	if (c->op_timer) {
		double t = fd_now();
		c->op_timer(c->op_timer_arg, op, 0, t - c->op_timer_t0);
		c->op_timer_t0 = t;
	}
	return n;
}

/* A gradient for t: an op output's (made by a node of this tape, not asked
 * for) from the pool, released by release_grad; a leaf's or a retained
 * tensor's from the arena (valid until fd_ctx_step). Zeroed, or with fresh
 * left as it is and marked FD_T_GRAD_FRESH for a node that overwrites it. */
static int ensure_grad(struct fd_ctx *c, struct fd_tensor *t, int pooled, int fresh)
{
	if (t->grad)
		return 0;
	const struct fd_backend *be = FD_KERNEL(c, t->dev, zero);
	if (!be)
		return -1;
	/* a bf16 gradient (FD_T_GRAD_BF16, written fresh): half the bytes */
	size_t bytes = (size_t)t->numel * (t->flags & FD_T_GRAD_BF16 ? sizeof(uint16_t) : sizeof(float));
	if (pooled && t->dev == c->dev && !(t->flags & FD_T_RETAIN_GRAD)) {
		if (!(t->grad = gpool_get(&c->gpool, bytes))) {
			fd_fail(c, "out of memory allocating a gradient of %lld floats", (long long)t->numel);
			return -1;
		}
		t->flags |= FD_T_POOL_GRAD;
	} else if (!(t->grad = fd_ctx_alloc(c, t->dev, t->numel))) {
		return -1;
	}
	if (fresh) {
		t->flags |= FD_T_GRAD_FRESH;
		return 0;
	}
	return be->zero(c, t->grad, t->numel);
}

/* Whether node n overwrites a new gradient of its input i: its writes bit,
 * and no other input of n is the same tensor (whose gradient the node also
 * adds into). */
static int node_writes(const struct fd_node *n, int i)
{
	if (!(n->writes >> i & 1u))
		return 0;
	for (int j = 0; j < n->nin; j++)
		if (j != i && n->in[j] == n->in[i])
			return 0;
	return 1;
}

/* Whether t is the output of some node of the tape (its gradient can go
 * back to the pool once that node ran). Marked by fd_backward on entry. */
#define FD_T_NODE_OUT 8u

/* Whether in[i] of n takes n's output gradient as its own (struct fd_node's
 * aliases): the node allows it and overwrites in[i]'s gradient, which does
 * not exist yet and would come from the pool (an op output not retained);
 * out's gradient is a pool block, which fd_backward releases right after n
 * (every reader of out ran before), of the same size and layout. Once an
 * input took it, out no longer owns a pool block, so no second input can. */
static int takes_out_grad(const struct fd_ctx *c, const struct fd_node *n, int i)
{
	const struct fd_tensor *x = n->in[i], *y = n->out;
	return c->reuse_activations && (n->aliases >> i & 1u) && node_writes(n, i) && !x->grad && x != y &&
	       !(x->flags & FD_T_GRAD_BF16) &&
	       (x->flags & FD_T_NODE_OUT) && !(x->flags & FD_T_RETAIN_GRAD) && x->dev == c->dev &&
	       (y->flags & FD_T_POOL_GRAD) && y->dev == x->dev && y->numel == x->numel && y->layout == x->layout;
}

static void release_grad(struct fd_ctx *c, struct fd_tensor *t)
{
	if (t->flags & FD_T_POOL_GRAD) {
		gpool_put(&c->gpool, t->grad);
		t->grad = NULL;
		t->flags &= ~(unsigned)FD_T_POOL_GRAD;
	}
}

int fd_backward(struct fd_ctx *c, struct fd_tensor *t, const float *dy)
{
	if (c->failed)
		return -1;
	if (!t)
		return fd_fail(c, "backward from a missing tensor"), -1;
	if (!(t->flags & FD_T_REQUIRES_GRAD))
		return fd_fail(c, "backward: the tensor does not depend on anything that requires grad"), -1;
	if (!dy && t->numel != 1)
		return fd_fail(c, "backward: the tensor has %lld elements; give a seed gradient",
			       (long long)t->numel), -1;
	const struct fd_backend *be = FD_KERNEL(c, t->dev, axpy);
	if (!be)
		return -1;
	for (struct fd_node *n = c->tape; n; n = n->prev)
		n->out->flags |= FD_T_NODE_OUT;
	t->flags &= ~(unsigned)FD_T_GRAD_BF16; /* the seed is added as floats */
	if (ensure_grad(c, t, (t->flags & FD_T_NODE_OUT) != 0, 0) < 0)
		return -1;
	if (dy) {
		if (be->axpy(c, t->numel, 1.0f, dy, t->grad) < 0)
			return -1;
	} else {
		/* the seed 1 in t's device memory (the CPU's is the host's) */
		float one = 1.0f, *d1 = t->dev == FD_DEV_CPU ? &one : fd_ctx_alloc(c, t->dev, 1);
		const struct fd_backend *bc = d1 ? FD_KERNEL(c, t->dev, copy_h2d) : NULL;
		if (!bc || (d1 != &one && bc->copy_h2d(c, d1, &one, sizeof one) < 0) ||
		    be->axpy(c, 1, 1.0f, d1, t->grad) < 0)
			return -1;
	}
	for (struct fd_node *n = c->tape; n; n = n->prev) {
		if (!n->out->grad)
			continue; /* nothing flows through this op to t */
		int took = 0; /* an input took out's gradient block */
		double tn = c->op_timer ? fd_now() : 0;
		for (int i = 0; i < n->nin; i++) {
			struct fd_tensor *x = n->in[i];
			if (!x || !(x->flags & FD_T_REQUIRES_GRAD))
				continue;
			if ((x->flags & FD_T_GRAD_BF16) && !((n->bf16_grads >> i & 1u) && node_writes(n, i))) {
				/* a node other than the one that writes it in bf16 */
				if (x->grad)
					return fd_fail(c, "%s backward: its input's gradient holds bf16 values "
						       "(FD_T_GRAD_BF16) and cannot be added into", n->op), -1;
				x->flags &= ~(unsigned)FD_T_GRAD_BF16; /* made as floats instead */
			}
			if (takes_out_grad(c, n, i)) {
				x->grad = n->out->grad; /* out keeps reading it as dy during n */
				x->flags |= FD_T_POOL_GRAD | FD_T_GRAD_FRESH;
				n->out->flags &= ~(unsigned)FD_T_POOL_GRAD;
				c->gpool.aliased_bytes += (size_t)x->numel * sizeof(float);
				took = 1;
			} else if (ensure_grad(c, x, (x->flags & FD_T_NODE_OUT) != 0, node_writes(n, i)) < 0) {
				return -1;
			}
		}
		int rc = n->backward(c, n);
		if (c->op_timer)
			c->op_timer(c->op_timer_arg, n->op, 1, fd_now() - tn);
		for (int i = 0; i < n->nin; i++)
			if (n->in[i])
				n->in[i]->flags &= ~(unsigned)FD_T_GRAD_FRESH;
		if (rc < 0) {
			if (!c->failed)
				fd_fail(c, "%s backward failed", n->op);
			return -1;
		}
		if (took)
			n->out->grad = NULL; /* the block is the input's now */
		else
			release_grad(c, n->out);
		/* n's output: every op that read it ran its backward (they come
		 * later in the tape), n too; views and in-place results of it
		 * (which do not own their data) were also read by later ops
		 * only. So its memory is dead unless the caller keeps it. */
		struct fd_tensor *o = n->out;
		if (c->reuse_activations && c->dev == FD_DEV_CPU && o != t && o->dev == c->dev &&
		    (o->flags & FD_T_OWNS_DATA) && !(o->flags & (FD_T_KEEP_DATA | FD_T_RETAIN_GRAD)) &&
		    gpool_donate(&c->gpool, o->data, fd_tensor_bytes(o)) < 0)
			return fd_fail(c, "out of memory listing a gradient block"), -1;
	}
	return c->failed ? -1 : 0;
}
