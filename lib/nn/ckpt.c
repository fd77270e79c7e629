/* ckpt: checkpoints are plain safetensors files; names and shapes are checked
 * as a whole before anything is copied, so a failed load changes nothing. */
#include "nn/ckpt.h"
#include "io/fd_safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fd_ckpt_save(const struct fd_params *p, const char *path, const char *const *meta,
		 struct fd_err *e)
{
	struct fd_stw w;
	fd_stw_init(&w);
	int64_t *counters = calloc((size_t)(p->n ? p->n : 1), sizeof *counters);
	int rc = counters ? 0 : fd_err_set(e, "out of memory");
	for (int i = 0; i < p->n && rc == 0; i++) {
		const struct fd_pview *v = &p->v[i];
		if (v->kind == FD_P_COUNTER) {
			counters[i] = (int64_t)v->t.data[0];
			rc = fd_stw_add(&w, v->name, FD_DT_I64, 0, NULL, &counters[i], e);
		} else {
			rc = fd_stw_add(&w, v->name, FD_DT_F32, v->t.ndim, v->t.shape, v->t.data, e);
		}
	}
	for (int i = 0; rc == 0 && meta && meta[i]; i += 2) {
		if (!meta[i + 1]) {
			rc = fd_err_set(e, "metadata key '%s' without a value", meta[i]);
			break;
		}
		rc = fd_stw_meta(&w, meta[i], meta[i + 1], e);
	}
	if (rc == 0)
		rc = fd_stw_write(&w, path, e);
	fd_stw_free(&w);
	free(counters);
	return rc < 0 ? -1 : 0;
}

static void shape_str(char *buf, size_t len, int ndim, const int64_t *shape)
{
	size_t k = (size_t)snprintf(buf, len, "[");
	for (int i = 0; i < ndim && k < len; i++)
		k += (size_t)snprintf(buf + k, len - k, i ? ",%lld" : "%lld", (long long)shape[i]);
	if (k < len)
		snprintf(buf + k, len - k, "]");
}

/* Append to a bounded problem list; counts what did not fit. */
struct problems {
	char buf[1536];
	size_t len;
	int n, dropped;
};

static void note(struct problems *pr, const char *fmt, const char *name, const char *a, const char *b)
{
	char one[512];
	snprintf(one, sizeof one, fmt, name, a, b);
	if (pr->len + strlen(one) + 3 >= sizeof pr->buf) {
		pr->dropped++;
		return;
	}
	pr->len += (size_t)snprintf(pr->buf + pr->len, sizeof pr->buf - pr->len, "%s%s", pr->n ? "; " : "", one);
	pr->n++;
}

int fd_ckpt_check(const struct fd_params *p, const char *path, struct fd_err *e)
{
	for (int i = 0; i < p->n; i++) {
		const struct fd_pview *v = &p->v[i];
		const float *x = v->t.data;
		size_t nl = strlen(v->name);
		int var = nl >= 11 && strcmp(v->name + nl - 11, "running_var") == 0;
		if (v->kind == FD_P_COUNTER) {
			if (!(x[0] >= 0))
				return fd_err_set(e, "'%s': %s is %.17g (a counter must be >= 0)", path, v->name,
						  (double)x[0]);
			continue;
		}
		for (int64_t k = 0; k < v->t.numel; k++) {
			if (!isfinite(x[k]))
				return fd_err_set(e, "'%s': %s[%lld] is %s (weights must be finite)", path, v->name,
						  (long long)k, isnan(x[k]) ? "nan" : x[k] > 0 ? "inf" : "-inf");
			if (var && x[k] < 0)
				return fd_err_set(e, "'%s': %s[%lld] is %.9g (a variance must be >= 0)", path,
						  v->name, (long long)k, (double)x[k]);
		}
	}
	return 0;
}

int fd_ckpt_load(struct fd_params *p, const char *path, struct fd_err *e)
{
	struct fd_st s;
	if (fd_st_open(&s, path, e) < 0)
		return -1;
	struct problems pr = {.len = 0};
	char fs[128], ms[128];
	for (int i = 0; i < p->n; i++) {
		const struct fd_pview *v = &p->v[i];
		const struct fd_st_tensor *t = fd_st_find(&s, v->name);
		if (!t) {
			note(&pr, "missing %s%s%s", v->name, "", "");
			continue;
		}
		enum fd_dtype want = v->kind == FD_P_COUNTER ? FD_DT_I64 : FD_DT_F32;
		if (t->dtype != want) {
			note(&pr, "%s is %s in the file, %s here", v->name, fd_dtype_name(t->dtype), fd_dtype_name(want));
			continue;
		}
		int same = t->ndim == v->t.ndim;
		for (int d = 0; same && d < t->ndim; d++)
			same = t->shape[d] == v->t.shape[d];
		if (!same) {
			shape_str(fs, sizeof fs, t->ndim, t->shape);
			shape_str(ms, sizeof ms, v->t.ndim, v->t.shape);
			note(&pr, "%s is %s in the file, %s here", v->name, fs, ms);
		}
	}
	for (int i = 0; i < s.n; i++)
		if (fd_params_index(p, s.t[i].name) < 0)
			note(&pr, "extra %s%s%s", s.t[i].name, "", "");
	if (pr.n || pr.dropped) {
		if (pr.dropped)
			fd_err_set(e, "cannot load '%s': %s; and %d more", path, pr.buf, pr.dropped);
		else
			fd_err_set(e, "cannot load '%s': %s", path, pr.buf);
		fd_st_close(&s);
		return -1;
	}
	/* copy over a backup, so that values refused by fd_ckpt_check leave p as it was */
	float *keep = malloc((size_t)p->ntotal * sizeof *keep + 1);
	if (!keep) {
		fd_st_close(&s);
		return fd_err_set(e, "out of memory");
	}
	memcpy(keep, p->data, (size_t)p->ntotal * sizeof *keep);
	for (int i = 0; i < p->n; i++) {
		struct fd_pview *v = &p->v[i];
		const struct fd_st_tensor *t = fd_st_find(&s, v->name);
		if (v->kind == FD_P_COUNTER) {
			int64_t c;
			memcpy(&c, t->data, sizeof c);
			v->t.data[0] = (float)c;
		} else {
			memcpy(v->t.data, t->data, t->nbytes);
		}
	}
	fd_st_close(&s);
	int rc = fd_ckpt_check(p, path, e);
	if (rc < 0)
		memcpy(p->data, keep, (size_t)p->ntotal * sizeof *keep);
	free(keep);
	return rc;
}
