/* fd_safetensors: reader (mmap + strict validation of the header against the
 * file) and writer (in memory, or a full-size mmap'ed temporary filled in place). */
#include "io/fd_safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The reference implementation (safetensors' Rust crate) refuses headers larger
 * than this; so do we, which also bounds what a hostile file can make us parse. */
#define ST_MAX_HEADER 100000000u
#define ST_ALIGN 64

static const struct {
	const char *name;
	size_t size;
} dtypes[FD_DT_COUNT] = {
	[FD_DT_F32] = {"F32", 4}, [FD_DT_F16] = {"F16", 2}, [FD_DT_BF16] = {"BF16", 2},
	[FD_DT_F64] = {"F64", 8}, [FD_DT_U8] = {"U8", 1},   [FD_DT_I8] = {"I8", 1},
	[FD_DT_I16] = {"I16", 2}, [FD_DT_I32] = {"I32", 4}, [FD_DT_I64] = {"I64", 8},
	[FD_DT_BOOL] = {"BOOL", 1},
};

const char *fd_dtype_name(enum fd_dtype t)
{
	return (unsigned)t < FD_DT_COUNT ? dtypes[t].name : "?";
}

size_t fd_dtype_size(enum fd_dtype t)
{
	return (unsigned)t < FD_DT_COUNT ? dtypes[t].size : 0;
}

int fd_dtype_parse(const char *s, enum fd_dtype *t)
{
	for (int i = 0; i < FD_DT_COUNT; i++)
		if (strcmp(s, dtypes[i].name) == 0) {
			*t = (enum fd_dtype)i;
			return 0;
		}
	return -1;
}

/* numel and byte size of a shape, or -1 when a dimension is negative or the
 * product does not fit in int64 / size_t. */
static int shape_size(int ndim, const int64_t *shape, size_t elsize, int64_t *numel, size_t *nbytes)
{
	uint64_t n = 1;
	for (int d = 0; d < ndim; d++) {
		if (shape[d] < 0)
			return -1;
		uint64_t s = (uint64_t)shape[d];
		if (s != 0 && n > (uint64_t)INT64_MAX / s)
			return -1;
		n *= s;
	}
	if (elsize && n > (uint64_t)INT64_MAX / elsize)
		return -1;
	if (n * elsize > SIZE_MAX)
		return -1;
	*numel = (int64_t)n;
	*nbytes = (size_t)(n * elsize);
	return 0;
}

/* "[2,3,4]" into buf (for messages). */
static const char *shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
	size_t k = (size_t)snprintf(buf, cap, "[");
	for (int d = 0; d < ndim && k < cap; d++)
		k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? "," : "", (long long)shape[d]);
	if (k < cap)
		snprintf(buf + k, cap - k, "]");
	return buf;
}

/* ---- reader ---- */

void fd_st_close(struct fd_st *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->n; i++)
		free(s->t[i].name);
	free(s->t);
	for (int i = 0; i < s->nmeta; i++) {
		free(s->meta_key[i]);
		free(s->meta_val[i]);
	}
	free(s->meta_key);
	free(s->meta_val);
	if (s->mapped && s->map)
		munmap(s->map, s->maplen);
	memset(s, 0, sizeof *s);
}

static int by_offset(const void *a, const void *b)
{
	const struct fd_st_tensor *x = a, *y = b;
	const char *px = x->data, *py = y->data;
	if (px != py)
		return px < py ? -1 : 1;
	if (x->nbytes != y->nbytes)
		return x->nbytes < y->nbytes ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* A JSON integer in [0, INT64_MAX], or -1. */
static int json_nonneg(const json_t *v, int64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (int64_t)json_integer_value(v);
	return 0;
}

static int parse_meta(struct fd_st *s, json_t *m, const char *name, struct fd_err *e)
{
	if (!json_is_object(m))
		return fd_err_set(e, "cannot read '%s': __metadata__ is not an object", name);
	size_t n = json_object_size(m);
	s->meta_key = calloc(n ? n : 1, sizeof *s->meta_key);
	s->meta_val = calloc(n ? n : 1, sizeof *s->meta_val);
	if (!s->meta_key || !s->meta_val)
		return fd_err_set(e, "cannot read '%s': out of memory", name);
	const char *k;
	json_t *v;
	json_object_foreach(m, k, v) {
		if (!json_is_string(v))
			return fd_err_set(e, "cannot read '%s': __metadata__ '%s': value is not a string",
					  name, k);
		s->meta_key[s->nmeta] = strdup(k);
		s->meta_val[s->nmeta] = strdup(json_string_value(v));
		s->nmeta++;
		if (!s->meta_key[s->nmeta - 1] || !s->meta_val[s->nmeta - 1])
			return fd_err_set(e, "cannot read '%s': out of memory", name);
	}
	return 0;
}

/* One tensor entry {"dtype", "shape", "data_offsets"}; data area is base[0..dlen). */
static int parse_tensor(struct fd_st_tensor *t, const char *tname, json_t *v, const char *base,
			size_t dlen, const char *name, struct fd_err *e)
{
	char sb[256];
	if (!json_is_object(v))
		return fd_err_set(e, "cannot read '%s': tensor '%s': entry is not an object", name, tname);
	const char *k;
	json_t *f;
	json_object_foreach(v, k, f) {
		if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets"))
			return fd_err_set(e, "cannot read '%s': tensor '%s': unknown field '%s'", name,
					  tname, k);
	}
	json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
	       *of = json_object_get(v, "data_offsets");
	if (!dt || !sh || !of)
		return fd_err_set(e, "cannot read '%s': tensor '%s': missing '%s'", name, tname,
				  !dt ? "dtype" : !sh ? "shape" : "data_offsets");
	if (!json_is_string(dt))
		return fd_err_set(e, "cannot read '%s': tensor '%s': dtype is not a string", name, tname);
	if (fd_dtype_parse(json_string_value(dt), &t->dtype) < 0)
		return fd_err_set(e, "cannot read '%s': tensor '%s': unsupported dtype '%s'", name, tname,
				  json_string_value(dt));
	if (!json_is_array(sh))
		return fd_err_set(e, "cannot read '%s': tensor '%s': shape is not an array", name, tname);
	if (json_array_size(sh) > FD_ST_MAXDIM)
		return fd_err_set(e, "cannot read '%s': tensor '%s': %zu dimensions (at most %d)", name,
				  tname, json_array_size(sh), FD_ST_MAXDIM);
	t->ndim = (int)json_array_size(sh);
	for (int d = 0; d < t->ndim; d++)
		if (json_nonneg(json_array_get(sh, (size_t)d), &t->shape[d]) < 0)
			return fd_err_set(e,
					  "cannot read '%s': tensor '%s': shape entry %d is not a "
					  "non-negative integer",
					  name, tname, d);
	if (shape_size(t->ndim, t->shape, fd_dtype_size(t->dtype), &t->numel, &t->nbytes) < 0)
		return fd_err_set(e, "cannot read '%s': tensor '%s': shape %s of %s overflows", name,
				  tname, shape_str(sb, sizeof sb, t->ndim, t->shape),
				  fd_dtype_name(t->dtype));
	int64_t b, en;
	if (!json_is_array(of) || json_array_size(of) != 2 || json_nonneg(json_array_get(of, 0), &b) < 0 ||
	    json_nonneg(json_array_get(of, 1), &en) < 0)
		return fd_err_set(e,
				  "cannot read '%s': tensor '%s': data_offsets is not a pair of "
				  "non-negative integers",
				  name, tname);
	if (b > en)
		return fd_err_set(e, "cannot read '%s': tensor '%s': data_offsets [%lld,%lld] decrease",
				  name, tname, (long long)b, (long long)en);
	if ((uint64_t)en > dlen)
		return fd_err_set(e,
				  "cannot read '%s': tensor '%s': data_offsets [%lld,%lld] past the end "
				  "of the data (%zu bytes)",
				  name, tname, (long long)b, (long long)en, dlen);
	if ((uint64_t)(en - b) != t->nbytes)
		return fd_err_set(e,
				  "cannot read '%s': tensor '%s': data_offsets [%lld,%lld] hold %lld "
				  "bytes but shape %s of %s needs %zu",
				  name, tname, (long long)b, (long long)en, (long long)(en - b),
				  shape_str(sb, sizeof sb, t->ndim, t->shape), fd_dtype_name(t->dtype),
				  t->nbytes);
	t->data = base + b;
	t->name = strdup(tname);
	if (!t->name)
		return fd_err_set(e, "cannot read '%s': out of memory", name);
	return 0;
}

static int parse_header(struct fd_st *s, const char *buf, size_t len, const char *name,
			struct fd_err *e)
{
	if (len < 8)
		return fd_err_set(e, "cannot read '%s': %zu bytes, too short for a safetensors file", name,
				  len);
	uint64_t hl = 0;
	for (int i = 7; i >= 0; i--)
		hl = hl << 8 | (unsigned char)buf[i];
	if (hl > len - 8)
		return fd_err_set(e, "cannot read '%s': header length %llu past the end of the file (%zu bytes)",
				  name, (unsigned long long)hl, len);
	if (hl > ST_MAX_HEADER)
		return fd_err_set(e, "cannot read '%s': header length %llu over the limit of %u", name,
				  (unsigned long long)hl, ST_MAX_HEADER);
	const char *h = buf + 8;
	if (hl == 0 || h[0] != '{')
		return fd_err_set(e, "cannot read '%s': header is not a JSON object", name);
	json_error_t je;
	json_t *root = json_loadb(h, (size_t)hl, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return fd_err_set(e, "cannot read '%s': header JSON: line %d, column %d: %s", name,
				  je.line, je.column, je.text);
	int rc = 0;
	if (!json_is_object(root)) {
		rc = fd_err_set(e, "cannot read '%s': header is not a JSON object", name);
		goto out;
	}
	const char *base = h + hl;
	size_t dlen = len - 8 - (size_t)hl;
	size_t n = json_object_size(root);
	s->t = calloc(n ? n : 1, sizeof *s->t);
	if (!s->t) {
		rc = fd_err_set(e, "cannot read '%s': out of memory", name);
		goto out;
	}
	const char *k;
	json_t *v;
	json_object_foreach(root, k, v) {
		if (strcmp(k, "__metadata__") == 0) {
			if ((rc = parse_meta(s, v, name, e)) < 0)
				goto out;
			continue;
		}
		if ((rc = parse_tensor(&s->t[s->n], k, v, base, dlen, name, e)) < 0)
			goto out;
		s->n++;
	}
	/* Like the reference implementation: sorted by offset, the tensors must tile
	 * the data area exactly, with no overlap, no gap and nothing after the last. */
	qsort(s->t, (size_t)s->n, sizeof *s->t, by_offset);
	size_t at = 0;
	for (int i = 0; i < s->n; i++) {
		size_t b = (size_t)((const char *)s->t[i].data - base);
		if (b < at) {
			rc = fd_err_set(e, "cannot read '%s': tensor '%s' overlaps tensor '%s'", name,
					s->t[i].name, s->t[i - 1].name);
			goto out;
		}
		if (b > at) {
			rc = fd_err_set(e, "cannot read '%s': tensor '%s': %zu unused bytes before its data",
					name, s->t[i].name, b - at);
			goto out;
		}
		at = b + s->t[i].nbytes;
	}
	if (at != dlen)
		rc = fd_err_set(e, "cannot read '%s': %zu bytes after the last tensor's data", name,
				dlen - at);
out:
	json_decref(root);
	return rc;
}

int fd_st_parse(struct fd_st *s, const void *buf, size_t len, const char *name, struct fd_err *e)
{
	memset(s, 0, sizeof *s);
	s->map = (void *)buf;
	s->maplen = len;
	if (parse_header(s, buf, len, name, e) < 0) {
		fd_st_close(s);
		return -1;
	}
	return 0;
}

int fd_st_open(struct fd_st *s, const char *path, struct fd_err *e)
{
	memset(s, 0, sizeof *s);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fd_err_sys(e, errno, "cannot read '%s'", path);
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int er = errno;
		close(fd);
		return fd_err_sys(e, er, "cannot read '%s'", path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fd_err_set(e, "cannot read '%s': not a regular file", path);
	}
	size_t len = (size_t)st.st_size;
	if (len < 8) { /* also keeps mmap away from empty files */
		close(fd);
		return fd_err_set(e, "cannot read '%s': %zu bytes, too short for a safetensors file",
				  path, len);
	}
	void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	int er = errno;
	close(fd);
	if (map == MAP_FAILED)
		return fd_err_sys(e, er, "cannot map '%s'", path);
	if (parse_header(s, map, len, path, e) < 0) {
		fd_st_close(s);
		munmap(map, len);
		return -1;
	}
	s->map = map;
	s->maplen = len;
	s->mapped = 1;
	return 0;
}

const struct fd_st_tensor *fd_st_find(const struct fd_st *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->t[i].name, name) == 0)
			return &s->t[i];
	return NULL;
}

const char *fd_st_meta(const struct fd_st *s, const char *key)
{
	for (int i = 0; i < s->nmeta; i++)
		if (strcmp(s->meta_key[i], key) == 0)
			return s->meta_val[i];
	return NULL;
}

/* ---- writer ---- */

void fd_stw_init(struct fd_stw *w)
{
	memset(w, 0, sizeof *w);
}

void fd_stw_free(struct fd_stw *w)
{
	if (!w)
		return;
	if (w->map)
		munmap(w->map, w->maplen);
	fd_out_abort(&w->out);
	for (int i = 0; i < w->n; i++)
		free(w->item[i].name);
	free(w->item);
	for (int i = 0; i < w->nmeta; i++) {
		free(w->meta_key[i]);
		free(w->meta_val[i]);
	}
	free(w->meta_key);
	free(w->meta_val);
	memset(w, 0, sizeof *w);
}

/* Is s valid UTF-8 without NUL (what a JSON string may hold)? */
static int utf8_ok(const char *s)
{
	json_t *j = json_string(s);
	json_decref(j);
	return j != NULL;
}

int fd_stw_add(struct fd_stw *w, const char *name, enum fd_dtype dtype, int ndim,
	       const int64_t *shape, const void *src, struct fd_err *e)
{
	char sb[256];
	if ((unsigned)dtype >= FD_DT_COUNT)
		return fd_err_set(e, "tensor '%s': bad dtype %d", name, (int)dtype);
	if (ndim < 0 || ndim > FD_ST_MAXDIM)
		return fd_err_set(e, "tensor '%s': %d dimensions (0 to %d allowed)", name, ndim,
				  FD_ST_MAXDIM);
	if (strcmp(name, "__metadata__") == 0 || !utf8_ok(name))
		return fd_err_set(e, "bad tensor name '%s'", name);
	for (int i = 0; i < w->n; i++)
		if (strcmp(w->item[i].name, name) == 0)
			return fd_err_set(e, "duplicate tensor '%s'", name);
	struct fd_stw_item it;
	memset(&it, 0, sizeof it);
	int64_t numel;
	if (ndim > 0)
		memcpy(it.shape, shape, (size_t)ndim * sizeof *shape);
	if (shape_size(ndim, it.shape, fd_dtype_size(dtype), &numel, &it.nbytes) < 0)
		return fd_err_set(e, "tensor '%s': shape %s of %s overflows", name,
				  shape_str(sb, sizeof sb, ndim, it.shape), fd_dtype_name(dtype));
	it.dtype = dtype;
	it.ndim = ndim;
	it.src = src;
	struct fd_stw_item *a = realloc(w->item, (size_t)(w->n + 1) * sizeof *a);
	if (!a)
		return fd_err_set(e, "out of memory");
	w->item = a;
	if (!(it.name = strdup(name)))
		return fd_err_set(e, "out of memory");
	w->item[w->n++] = it;
	return 0;
}

int fd_stw_meta(struct fd_stw *w, const char *key, const char *val, struct fd_err *e)
{
	if (!utf8_ok(key) || !utf8_ok(val))
		return fd_err_set(e, "metadata '%s': not valid UTF-8 text", key);
	for (int i = 0; i < w->nmeta; i++)
		if (strcmp(w->meta_key[i], key) == 0)
			return fd_err_set(e, "duplicate metadata key '%s'", key);
	char **k = realloc(w->meta_key, (size_t)(w->nmeta + 1) * sizeof *k);
	if (k)
		w->meta_key = k;
	char **v = realloc(w->meta_val, (size_t)(w->nmeta + 1) * sizeof *v);
	if (v)
		w->meta_val = v;
	if (!k || !v)
		return fd_err_set(e, "out of memory");
	w->meta_key[w->nmeta] = strdup(key);
	w->meta_val[w->nmeta] = strdup(val);
	if (!w->meta_key[w->nmeta] || !w->meta_val[w->nmeta]) {
		free(w->meta_key[w->nmeta]);
		free(w->meta_val[w->nmeta]);
		return fd_err_set(e, "out of memory");
	}
	w->nmeta++;
	return 0;
}

/* Data order: element size descending, then declaration order. Every tensor
 * then starts at a multiple of its element size (the data area itself starts
 * 64-byte aligned), with no padding between tensors, which readers refuse. */
static int *layout_order(const struct fd_stw *w)
{
	int *ord = malloc((size_t)(w->n ? w->n : 1) * sizeof *ord);
	if (!ord)
		return NULL;
	int k = 0;
	for (size_t sz = 8; sz >= 1; sz /= 2)
		for (int i = 0; i < w->n; i++)
			if (fd_dtype_size(w->item[i].dtype) == sz)
				ord[k++] = i;
	return ord;
}

/* Assign offsets and render the padded header. Returns a malloc'ed buffer of
 * *hlen bytes (the 8-byte length prefix included) and the data size in *dlen. */
static char *layout(struct fd_stw *w, size_t *hlen, size_t *dlen, struct fd_err *e)
{
	int *ord = layout_order(w);
	json_t *root = json_object();
	char *js = NULL, *out = NULL;
	if (!ord || !root)
		goto oom;
	if (w->nmeta) {
		json_t *m = json_object();
		if (!m || json_object_set_new(root, "__metadata__", m) < 0)
			goto oom;
		for (int i = 0; i < w->nmeta; i++)
			if (json_object_set_new(m, w->meta_key[i], json_string(w->meta_val[i])) < 0)
				goto oom;
	}
	size_t off = 0;
	for (int k = 0; k < w->n; k++) {
		struct fd_stw_item *it = &w->item[ord[k]];
		if (it->nbytes > SIZE_MAX / 2 - off) {
			fd_err_set(e, "tensors too large for one file");
			goto fail;
		}
		it->offset = off;
		json_t *t = json_object(), *sh = json_array(), *of = json_array();
		if (!t || !sh || !of) {
			json_decref(t);
			json_decref(sh);
			json_decref(of);
			goto oom;
		}
		json_object_set_new(t, "dtype", json_string(fd_dtype_name(it->dtype)));
		json_object_set_new(t, "shape", sh);
		json_object_set_new(t, "data_offsets", of);
		for (int d = 0; d < it->ndim; d++)
			json_array_append_new(sh, json_integer(it->shape[d]));
		json_array_append_new(of, json_integer((json_int_t)off));
		json_array_append_new(of, json_integer((json_int_t)(off + it->nbytes)));
		if (json_object_set_new(root, it->name, t) < 0)
			goto oom;
		off += it->nbytes;
	}
	js = json_dumps(root, JSON_COMPACT);
	if (!js)
		goto oom;
	size_t jl = strlen(js);
	size_t total = (8 + jl + ST_ALIGN - 1) / ST_ALIGN * ST_ALIGN;
	out = malloc(total);
	if (!out)
		goto oom;
	uint64_t hl = total - 8;
	for (int i = 0; i < 8; i++)
		out[i] = (char)(hl >> (8 * i) & 0xff);
	memcpy(out + 8, js, jl);
	memset(out + 8 + jl, ' ', total - 8 - jl);
	*hlen = total;
	*dlen = off;
	free(js);
	free(ord);
	json_decref(root);
	return out;
oom:
	fd_err_set(e, "out of memory");
fail:
	free(js);
	free(ord);
	json_decref(root);
	return NULL;
}

int fd_stw_write(struct fd_stw *w, const char *path, struct fd_err *e)
{
	for (int i = 0; i < w->n; i++)
		if (!w->item[i].src && w->item[i].nbytes)
			return fd_err_set(e, "cannot write '%s': tensor '%s' has no data", path,
					  w->item[i].name);
	size_t hlen, dlen;
	char *hdr = layout(w, &hlen, &dlen, e);
	if (!hdr)
		return fd_err_ctx(e, "cannot write '%s'", path);
	int *ord = layout_order(w);
	if (!ord) {
		free(hdr);
		return fd_err_set(e, "cannot write '%s': out of memory", path);
	}
	struct fd_out o;
	if (fd_out_open(&o, path, e) < 0) {
		free(hdr);
		free(ord);
		return -1;
	}
	int bad = fwrite(hdr, 1, hlen, o.f) != hlen;
	for (int k = 0; k < w->n && !bad; k++) {
		const struct fd_stw_item *it = &w->item[ord[k]];
		bad = it->nbytes && fwrite(it->src, 1, it->nbytes, o.f) != it->nbytes;
	}
	int er = errno;
	free(hdr);
	free(ord);
	if (bad) {
		fd_out_abort(&o);
		return fd_err_sys(e, er, "cannot write '%s'", path);
	}
	return fd_out_commit(&o, e);
}

int fd_stw_create(struct fd_stw *w, const char *path, struct fd_err *e)
{
	size_t hlen, dlen;
	char *hdr = layout(w, &hlen, &dlen, e);
	if (!hdr)
		return fd_err_ctx(e, "cannot write '%s'", path);
	/* checked before opening: opening a FIFO would wait for a reader */
	if (!path || !strcmp(path, "-") || fd_out_is_special(path)) {
		free(hdr);
		return fd_err_set(e, "cannot write '%s': a safetensors file is written whole to a regular file, "
				  "not to standard output, a device or a FIFO", path ? path : "-");
	}
	if (fd_out_open(&w->out, path, e) < 0) {
		free(hdr);
		return -1;
	}
	if (!w->out.tmp) {
		free(hdr);
		fd_out_abort(&w->out);
		return fd_err_set(e, "cannot write '%s': a safetensors file is written whole to a regular file, not to standard output, a device or a FIFO", path ? path : "-");
	}
	int fd = fileno(w->out.f);
	size_t total = hlen + dlen;
	/* Reserve the blocks now: a full disk is an error here, not a SIGBUS while
	 * threads fill the mapping. Some file systems cannot; they get a sparse file. */
	int rc = posix_fallocate(fd, 0, (off_t)total);
	if (rc == EOPNOTSUPP || rc == EINVAL)
		rc = ftruncate(fd, (off_t)total) != 0 ? errno : 0;
	if (rc != 0) {
		free(hdr);
		fd_out_abort(&w->out);
		return fd_err_sys(e, rc, "cannot write '%s'", path);
	}
	void *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		int er = errno;
		free(hdr);
		fd_out_abort(&w->out);
		return fd_err_sys(e, er, "cannot map '%s'", path);
	}
	memcpy(map, hdr, hlen);
	free(hdr);
	w->map = map;
	w->maplen = total;
	w->data_start = hlen;
	return 0;
}

void *fd_stw_data(struct fd_stw *w, int i)
{
	if (!w->map || i < 0 || i >= w->n)
		return NULL;
	return (char *)w->map + w->data_start + w->item[i].offset;
}

int fd_stw_commit(struct fd_stw *w, struct fd_err *e)
{
	if (!w->map)
		return fd_err_set(e, "safetensors writer: commit without create");
	char *path = w->out.path;
	int rc = msync(w->map, w->maplen, MS_SYNC);
	int er = errno;
	munmap(w->map, w->maplen);
	w->map = NULL;
	w->maplen = 0;
	if (rc != 0) {
		fd_err_sys(e, er, "cannot write '%s'", path);
		fd_out_abort(&w->out);
		return -1;
	}
	return fd_out_commit(&w->out, e);
}
