/* fd_params: declaration, layout and lookup of named parameter views. */
#include "nn/fd_params.h"
#include "nn/fd_backend.h"

#include <stdlib.h>
#include <string.h>

#define PAD 16 /* floats: each view starts 64-byte aligned */

void fd_params_init(struct fd_params *p)
{
	memset(p, 0, sizeof *p);
	p->dev = FD_DEV_CPU;
}

int fd_params_index(const struct fd_params *p, const char *name)
{
	for (int i = 0; i < p->n; i++)
		if (strcmp(p->v[i].name, name) == 0)
			return i;
	return -1;
}

int fd_params_add(struct fd_params *p, const char *name, enum fd_pkind kind, int ndim,
		  const int64_t *shape, struct fd_err *e)
{
	if (p->data)
		return fd_err_set(e, "parameter '%s' declared after allocation", name);
	if (ndim < 0 || ndim > FD_MAXDIM)
		return fd_err_set(e, "parameter '%s': %d dims", name, ndim);
	if (kind == FD_P_COUNTER && ndim != 0)
		return fd_err_set(e, "counter '%s' must be a scalar", name);
	if (fd_params_index(p, name) >= 0)
		return fd_err_set(e, "parameter '%s' declared twice", name);
	int64_t numel = 1;
	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 1 || shape[i] > ((int64_t)1 << 40) / numel)
			return fd_err_set(e, "parameter '%s': dim %d is %lld", name, i, (long long)shape[i]);
		numel *= shape[i];
	}
	if (p->n == p->cap) {
		int nc = p->cap ? 2 * p->cap : 64;
		struct fd_pview *nv = realloc(p->v, (size_t)nc * sizeof *nv);
		if (!nv)
			return fd_err_set(e, "out of memory");
		p->v = nv;
		p->cap = nc;
	}
	struct fd_pview *v = &p->v[p->n];
	memset(v, 0, sizeof *v);
	if (!(v->name = strdup(name)))
		return fd_err_set(e, "out of memory");
	v->kind = kind;
	v->t.ndim = ndim;
	if (ndim)
		memcpy(v->t.shape, shape, (size_t)ndim * sizeof *shape);
	v->t.numel = numel;
	v->t.dev = p->dev;
	return p->n++;
}

int fd_params_alloc(struct fd_params *p, struct fd_err *e)
{
	if (p->data)
		return fd_err_set(e, "parameters allocated twice");
	size_t off = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < p->n; i++) {
			struct fd_pview *v = &p->v[i];
			if ((v->kind == FD_P_PARAM) != (pass == 0))
				continue;
			v->off = off;
			off += ((size_t)v->t.numel + PAD - 1) / PAD * PAD;
		}
		if (pass == 0)
			p->ntrain = (int64_t)off;
	}
	p->ntotal = (int64_t)off;
	const struct fd_backend *be = fd_backend_of(p->dev);
	if (!be || !be->mem_alloc)
		return fd_err_set(e, "parameters on %s: not supported", fd_dev_name(p->dev));
	p->data = be->mem_alloc((size_t)p->ntotal * sizeof(float));
	p->grad = be->mem_alloc((size_t)p->ntrain * sizeof(float));
	if (!p->data || !p->grad) {
		be->mem_free(p->data);
		be->mem_free(p->grad);
		p->data = p->grad = NULL;
		return fd_err_set(e, "out of memory for %lld parameters", (long long)p->ntotal);
	}
	for (int i = 0; i < p->n; i++) {
		struct fd_pview *v = &p->v[i];
		v->t.data = p->data + v->off;
		if (v->kind == FD_P_PARAM) {
			v->t.grad = p->grad + v->off;
			v->t.flags |= FD_T_REQUIRES_GRAD;
		}
	}
	return 0;
}

int fd_params_move(struct fd_params *p, struct fd_ctx *c, enum fd_dev dev, struct fd_err *e)
{
	if (p->dev == dev)
		return 0;
	if (!p->data)
		return fd_err_set(e, "parameters moved before allocation");
	if ((dev != FD_DEV_CPU && dev != c->dev) || (p->dev != FD_DEV_CPU && p->dev != c->dev))
		return fd_err_set(e, "parameters on %s to %s: not through a %s context", fd_dev_name(p->dev),
				  fd_dev_name(dev), fd_dev_name(c->dev));
	const struct fd_backend *to = fd_backend_of(dev), *from = fd_backend_of(p->dev);
	const struct fd_backend *cb = fd_backend_of(c->dev);
	if (!to || !to->mem_alloc || !from || !cb || !cb->copy_h2d || !cb->copy_d2h)
		return fd_err_set(e, "parameters on %s to %s: not supported", fd_dev_name(p->dev), fd_dev_name(dev));
	size_t nd = (size_t)p->ntotal * sizeof(float), ng = (size_t)p->ntrain * sizeof(float);
	float *data = to->mem_alloc(nd), *grad = to->mem_alloc(ng);
	if (!data || !grad) {
		to->mem_free(data);
		to->mem_free(grad);
		return fd_err_set(e, "out of %s memory for %lld parameters", fd_dev_name(dev), (long long)p->ntotal);
	}
	int rc = dev == FD_DEV_CPU ? cb->copy_d2h(c, data, p->data, nd) | cb->copy_d2h(c, grad, p->grad, ng)
				   : cb->copy_h2d(c, data, p->data, nd) | cb->copy_h2d(c, grad, p->grad, ng);
	if (rc != 0) {
		to->mem_free(data);
		to->mem_free(grad);
		return fd_err_set(e, "parameters on %s to %s: %s", fd_dev_name(p->dev), fd_dev_name(dev), c->err.msg);
	}
	from->mem_free(p->data);
	from->mem_free(p->grad);
	p->data = data;
	p->grad = grad;
	p->dev = dev;
	for (int i = 0; i < p->n; i++) {
		struct fd_pview *v = &p->v[i];
		v->t.dev = dev;
		v->t.data = p->data + v->off;
		if (v->kind == FD_P_PARAM)
			v->t.grad = p->grad + v->off;
	}
	return 0;
}

struct fd_tensor *fd_params_tensor(struct fd_params *p, int i)
{
	return i >= 0 && i < p->n ? &p->v[i].t : NULL;
}

struct fd_tensor *fd_params_find(struct fd_params *p, const char *name)
{
	return fd_params_tensor(p, fd_params_index(p, name));
}

void fd_params_zero_grad(struct fd_params *p)
{
	if (p->grad)
		fd_backend_of(p->dev)->mem_zero(p->grad, (size_t)p->ntrain * sizeof(float));
}

int fd_params_group_vectors(struct fd_params *p, int g)
{
	int moved = 0;
	for (int i = 0; i < p->n; i++) {
		struct fd_pview *v = &p->v[i];
		if (v->kind == FD_P_PARAM && (v->t.ndim <= 1 || v->t.numel == v->t.shape[0])) {
			v->group = g;
			moved++;
		}
	}
	return moved;
}

int64_t fd_params_count(const struct fd_params *p)
{
	int64_t n = 0;
	for (int i = 0; i < p->n; i++)
		if (p->v[i].kind == FD_P_PARAM)
			n += p->v[i].t.numel;
	return n;
}

void fd_params_free(struct fd_params *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n; i++)
		free(p->v[i].name);
	free(p->v);
	const struct fd_backend *be = fd_backend_of(p->dev);
	if (be && be->mem_free) {
		be->mem_free(p->data);
		be->mem_free(p->grad);
	}
	memset(p, 0, sizeof *p);
}
