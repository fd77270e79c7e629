/* fd_config: JSON configs through jansson, with a compiled-in schema and key
 * line numbers recovered from the text (jansson does not keep them). */
#include "core/fd_config.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_OBJ, K_INT, K_NUM, K_BOOL, K_STR, K_STR_OR_NULL, K_ENUM, K_NUMS, K_INTS, K_STRS };

/* Every allowed key. n: the exact length of K_NUMS / K_INTS arrays. */
static const struct key {
	const char *path;
	enum kind kind;
	const char *values; /* K_ENUM: "a|b" */
	int n;
} schema[] = {
	{"seed", K_INT, 0, 0},
	{"test_ratio", K_NUM, 0, 0},
	{"batch_size", K_INT, 0, 0},
	{"optimizer", K_OBJ, 0, 0},
	{"optimizer.type", K_ENUM, "adamw|sgd", 0},
	{"optimizer.lr", K_NUM, 0, 0},
	{"optimizer.weight_decay", K_NUM, 0, 0},
	{"optimizer.betas", K_NUMS, 0, 2},
	{"optimizer.eps", K_NUM, 0, 0},
	{"optimizer.momentum", K_NUM, 0, 0},
	{"optimizer.nesterov", K_BOOL, 0, 0},
	{"optimizer.no_decay_norm_bias", K_BOOL, 0, 0},
	{"scheduler", K_OBJ, 0, 0},
	{"scheduler.type", K_ENUM, "cosine_annealing|none", 0},
	{"scheduler.T_max", K_INT, 0, 0},
	{"scheduler.eta_min", K_NUM, 0, 0},
	{"scheduler.warmup_epochs", K_INT, 0, 0},
	{"early_stopping_patience", K_INT, 0, 0},
	{"num_workers", K_INT, 0, 0},
	{"model", K_STR, 0, 0},
	{"num_classes", K_INT, 0, 0},
	{"epochs", K_INT, 0, 0},
	{"init", K_STR_OR_NULL, 0, 0},
	{"normalize", K_ENUM, "imagenet|real-train", 0},
	{"augment", K_OBJ, 0, 0},
	{"augment.hflip", K_OBJ, 0, 0},
	{"augment.hflip.p", K_NUM, 0, 0},
	{"augment.random_resized_crop", K_OBJ, 0, 0},
	{"augment.random_resized_crop.p", K_NUM, 0, 0},
	{"augment.random_resized_crop.scale", K_NUMS, 0, 2},
	{"augment.random_resized_crop.ratio", K_NUMS, 0, 2},
	{"augment.rotation", K_OBJ, 0, 0},
	{"augment.rotation.p", K_NUM, 0, 0},
	{"augment.rotation.degrees", K_NUM, 0, 0},
	{"augment.color_jitter", K_OBJ, 0, 0},
	{"augment.color_jitter.p", K_NUM, 0, 0},
	{"augment.color_jitter.brightness", K_NUM, 0, 0},
	{"augment.color_jitter.contrast", K_NUM, 0, 0},
	{"augment.color_jitter.saturation", K_NUM, 0, 0},
	{"augment.color_jitter.hue", K_NUM, 0, 0},
	{"augment.gaussian_blur", K_OBJ, 0, 0},
	{"augment.gaussian_blur.p", K_NUM, 0, 0},
	{"augment.gaussian_blur.kernel_size", K_INT, 0, 0},
	{"augment.gaussian_blur.sigma", K_NUMS, 0, 2},
	{"augment.jpeg", K_OBJ, 0, 0},
	{"augment.jpeg.p", K_NUM, 0, 0},
	{"augment.jpeg.quality", K_INTS, 0, 2},
	{"exclude_sources", K_STRS, 0, 0},
	{"precision", K_ENUM, "fp32|bf16", 0},
	{"threads", K_INT, 0, 0},
	{"winograd", K_BOOL, 0, 0},
};

static const struct key *schema_find(const char *path)
{
	for (size_t i = 0; i < sizeof schema / sizeof schema[0]; i++)
		if (strcmp(schema[i].path, path) == 0)
			return &schema[i];
	return NULL;
}

/* Line (1-based) of the key with this dotted path in JSON text that jansson has
 * already accepted, or 0 when not found. A small scanner that tracks the path. */
static int key_line(const char *s, size_t n, const char *path)
{
	enum { DEPTH = 64, CAP = 1024 };
	char cur[CAP];
	size_t prefix[DEPTH], vlen = 0;
	int is_obj[DEPTH], want_key[DEPTH], d = -1, line = 1;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '\n') {
			line++;
		} else if (c == '{' || c == '[') {
			if (++d >= DEPTH)
				return 0;
			prefix[d] = vlen;
			is_obj[d] = c == '{';
			want_key[d] = c == '{';
		} else if (c == '}' || c == ']') {
			if (--d >= 0 && !is_obj[d])
				vlen = prefix[d];
		} else if (c == ',') {
			if (d >= 0 && is_obj[d])
				want_key[d] = 1;
		} else if (c == '"') {
			size_t b = ++i;
			while (i < n && s[i] != '"')
				i += s[i] == '\\' ? 2 : 1;
			if (d >= 0 && is_obj[d] && want_key[d]) {
				want_key[d] = 0;
				size_t p = prefix[d], kl = i - b;
				if (p + 1 + kl + 1 > CAP)
					continue;
				if (p)
					cur[p++] = '.';
				memcpy(cur + p, s + b, kl);
				cur[p + kl] = '\0';
				vlen = p + kl;
				if (strcmp(cur, path) == 0)
					return line;
			}
		}
	}
	return 0;
}

/* Where an error happened: a file's text, or a --set assignment. */
struct where {
	const char *name, *text, *assign;
	size_t len;
};

__attribute__((format(printf, 4, 5))) static int fail(const struct where *w, const char *path,
						       struct fd_err *e, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (w->assign)
		return fd_err_set(e, "--set '%s': %s", w->assign, msg);
	int line = key_line(w->text, w->len, path);
	if (line)
		return fd_err_set(e, "%s: line %d: %s", w->name, line, msg);
	return fd_err_set(e, "%s: %s", w->name, msg);
}

static int is_num(const json_t *v)
{
	return json_is_integer(v) || json_is_real(v);
}

static int check_obj(const json_t *o, const char *prefix, const struct where *w, struct fd_err *e);

static int check_value(const struct key *k, const json_t *v, const struct where *w, struct fd_err *e)
{
	const char *p = k->path;
	switch (k->kind) {
	case K_OBJ:
		if (!json_is_object(v))
			return fail(w, p, e, "'%s' must be an object", p);
		return check_obj(v, p, w, e);
	case K_INT:
		if (!json_is_integer(v))
			return fail(w, p, e, "'%s' must be an integer", p);
		return 0;
	case K_NUM:
		if (!is_num(v))
			return fail(w, p, e, "'%s' must be a number", p);
		return 0;
	case K_BOOL:
		if (!json_is_boolean(v))
			return fail(w, p, e, "'%s' must be true or false", p);
		return 0;
	case K_STR:
	case K_STR_OR_NULL:
		if (!json_is_string(v) && !(k->kind == K_STR_OR_NULL && json_is_null(v)))
			return fail(w, p, e, "'%s' must be a string%s", p,
				    k->kind == K_STR_OR_NULL ? " or null" : "");
		return 0;
	case K_ENUM: {
		if (json_is_string(v)) {
			const char *s = json_string_value(v), *a = k->values;
			size_t n = strlen(s);
			while (a) {
				const char *bar = strchr(a, '|');
				size_t al = bar ? (size_t)(bar - a) : strlen(a);
				if (al == n && strncmp(a, s, n) == 0)
					return 0;
				a = bar ? bar + 1 : NULL;
			}
			return fail(w, p, e, "'%s' must be one of %s, not '%s'", p, k->values, s);
		}
		return fail(w, p, e, "'%s' must be one of %s", p, k->values);
	}
	case K_NUMS:
	case K_INTS:
	case K_STRS: {
		const char *what = k->kind == K_NUMS ? "numbers" : k->kind == K_INTS ? "integers" : "strings";
		int good = json_is_array(v) && (k->kind == K_STRS || json_array_size(v) == (size_t)k->n);
		for (size_t i = 0; good && i < json_array_size(v); i++) {
			const json_t *x = json_array_get(v, i);
			good = k->kind == K_NUMS ? is_num(x) : k->kind == K_INTS ? json_is_integer(x)
										 : json_is_string(x);
		}
		if (good)
			return 0;
		if (k->kind == K_STRS)
			return fail(w, p, e, "'%s' must be an array of strings", p);
		return fail(w, p, e, "'%s' must be an array of %d %s", p, k->n, what);
	}
	}
	return 0;
}

static int check_obj(const json_t *o, const char *prefix, const struct where *w, struct fd_err *e)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)o, key, v) {
		char path[512];
		snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", key);
		const struct key *k = schema_find(path);
		if (!k)
			return fail(w, path, e, "unknown key '%s'", path);
		if (check_value(k, v, w, e) < 0)
			return -1;
	}
	return 0;
}

/* Deep-merge src into dst (objects recursively, everything else replaces). */
static int merge(json_t *dst, json_t *src)
{
	const char *key;
	json_t *v;
	json_object_foreach(src, key, v) {
		json_t *old = json_object_get(dst, key);
		if (json_is_object(old) && json_is_object(v)) {
			if (merge(old, v) < 0)
				return -1;
		} else if (json_object_set_new(dst, key, json_deep_copy(v)) < 0) {
			return -1;
		}
	}
	return 0;
}

/* Record w as the origin of every leaf of src (dotted under prefix): what
 * fd_config_where reports. Objects are not leaves; arrays are. */
static int note_origin(json_t *origin, const json_t *src, const char *prefix, const struct where *w)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)src, key, v) {
		char path[1024];
		snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", key);
		if (json_is_object(v)) {
			if (note_origin(origin, v, path, w) < 0)
				return -1;
			continue;
		}
		char at[1024];
		int line = w->assign ? 0 : key_line(w->text, w->len, path);
		if (w->assign)
			snprintf(at, sizeof at, "--set '%s'", w->assign);
		else if (line)
			snprintf(at, sizeof at, "%s: line %d", w->name, line);
		else
			snprintf(at, sizeof at, "%s", w->name);
		if (json_object_set_new(origin, path, json_string(at)) < 0)
			return -1;
	}
	return 0;
}

int fd_config_init(struct fd_config *c, struct fd_err *e)
{
	c->root = json_object();
	c->origin = json_object();
	if (!c->root || !c->origin) {
		fd_config_free(c);
		return fd_err_set(e, "out of memory");
	}
	return 0;
}

void fd_config_free(struct fd_config *c)
{
	if (!c)
		return;
	json_decref(c->root);
	json_decref(c->origin);
	c->root = NULL;
	c->origin = NULL;
}

const char *fd_config_where(const struct fd_config *c, const char *key)
{
	const char *s = json_string_value(json_object_get(c->origin, key));
	return s ? s : "config";
}

int fd_config_merge(struct fd_config *c, const char *buf, size_t len, const char *name,
		    struct fd_err *e)
{
	json_error_t je;
	json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return fd_err_set(e, "%s: line %d, column %d: invalid JSON: %s", name, je.line, je.column,
				  je.text);
	struct where w = {name, buf, NULL, len};
	int rc = 0;
	if (!json_is_object(j))
		rc = fd_err_set(e, "%s: not a JSON object", name);
	else if (check_obj(j, "", &w, e) < 0)
		rc = -1;
	else if (merge(c->root, j) < 0 || note_origin(c->origin, j, "", &w) < 0)
		rc = fd_err_set(e, "%s: out of memory", name);
	json_decref(j);
	return rc;
}

int fd_config_load(struct fd_config *c, const char *path, struct fd_err *e)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return fd_err_sys(e, errno, "cannot read '%s'", path);
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			char *nb = cap < (64u << 20) ? realloc(buf, cap ? cap * 2 : 4096) : NULL;
			if (!nb) {
				free(buf);
				fclose(f);
				return fd_err_set(e, "cannot read '%s': too large or out of memory", path);
			}
			buf = nb;
			cap = cap ? cap * 2 : 4096;
		}
		size_t k = fread(buf + len, 1, cap - len, f);
		len += k;
		if (k == 0)
			break;
	}
	int bad = ferror(f);
	fclose(f);
	int rc = bad ? fd_err_set(e, "cannot read '%s': read error", path)
		     : fd_config_merge(c, buf, len, path, e);
	free(buf);
	return rc;
}

int fd_config_set(struct fd_config *c, const char *assign, struct fd_err *e)
{
	const char *eq = strchr(assign, '=');
	if (!eq || eq == assign)
		return fd_err_set(e, "--set '%s': expected KEY=VALUE", assign);
	size_t kl = (size_t)(eq - assign);
	char *key = strndup(assign, kl);
	if (!key)
		return fd_err_set(e, "out of memory");
	json_t *v = json_loads(eq + 1, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	if (!v)
		v = json_string(eq + 1);
	if (!v) {
		free(key);
		return fd_err_set(e, "--set '%s': value is not valid UTF-8", assign);
	}
	/* Wrap the value as {"a":{"b":value}} and treat it like one more file. */
	json_t *top = v;
	int rc = 0;
	char *end = key + kl;
	for (;;) {
		char *start = end;
		while (start > key && start[-1] != '.')
			start--;
		if (start == end) {
			rc = fd_err_set(e, "--set '%s': empty key component", assign);
			break;
		}
		*end = '\0';
		json_t *o = json_object();
		if (!o || json_object_set_new(o, start, top) < 0) {
			json_decref(o);
			top = NULL;
			rc = fd_err_set(e, "out of memory");
			break;
		}
		top = o;
		if (start == key)
			break;
		end = start - 1;
	}
	if (rc == 0) {
		struct where w = {NULL, NULL, assign, 0};
		if (check_obj(top, "", &w, e) < 0)
			rc = -1;
		else if (merge(c->root, top) < 0 || note_origin(c->origin, top, "", &w) < 0)
			rc = fd_err_set(e, "out of memory");
	}
	json_decref(top);
	free(key);
	return rc;
}

/* ---- getters ---- */

static json_t *lookup(const struct fd_config *c, const char *key)
{
	json_t *o = c->root;
	const char *p = key;
	while (o) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		o = json_is_object(o) ? json_object_getn(o, p, n) : NULL;
		if (!dot)
			return o;
		p = dot + 1;
	}
	return NULL;
}

int fd_config_has(const struct fd_config *c, const char *key)
{
	return lookup(c, key) != NULL;
}

static json_t *get(const struct fd_config *c, const char *key, struct fd_err *e)
{
	json_t *v = lookup(c, key);
	if (!v)
		fd_err_set(e, "config: missing '%s'", key);
	return v;
}

int fd_config_get_int(const struct fd_config *c, const char *key, int64_t *out, struct fd_err *e)
{
	json_t *v = get(c, key, e);
	if (!v)
		return -1;
	if (!json_is_integer(v))
		return fd_err_set(e, "%s: '%s' is not an integer", fd_config_where(c, key), key);
	*out = (int64_t)json_integer_value(v);
	return 0;
}

int fd_config_get_double(const struct fd_config *c, const char *key, double *out, struct fd_err *e)
{
	json_t *v = get(c, key, e);
	if (!v)
		return -1;
	if (!is_num(v))
		return fd_err_set(e, "%s: '%s' is not a number", fd_config_where(c, key), key);
	*out = json_number_value(v);
	return 0;
}

int fd_config_get_bool(const struct fd_config *c, const char *key, int *out, struct fd_err *e)
{
	json_t *v = get(c, key, e);
	if (!v)
		return -1;
	if (!json_is_boolean(v))
		return fd_err_set(e, "%s: '%s' is not true or false", fd_config_where(c, key), key);
	*out = json_is_true(v);
	return 0;
}

int fd_config_get_str(const struct fd_config *c, const char *key, const char **out, struct fd_err *e)
{
	json_t *v = get(c, key, e);
	if (!v)
		return -1;
	if (!json_is_string(v))
		return fd_err_set(e, "%s: '%s' is not a string", fd_config_where(c, key), key);
	*out = json_string_value(v);
	return 0;
}

int fd_config_get_doubles(const struct fd_config *c, const char *key, double *out, int n,
			  struct fd_err *e)
{
	json_t *v = get(c, key, e);
	if (!v)
		return -1;
	if (!json_is_array(v) || json_array_size(v) != (size_t)n)
		return fd_err_set(e, "%s: '%s' is not an array of %d numbers", fd_config_where(c, key), key, n);
	for (int i = 0; i < n; i++) {
		json_t *x = json_array_get(v, (size_t)i);
		if (!is_num(x))
			return fd_err_set(e, "%s: '%s' is not an array of %d numbers", fd_config_where(c, key), key, n);
		out[i] = json_number_value(x);
	}
	return 0;
}

int fd_config_get_strs(const struct fd_config *c, const char *key, const char **out, int cap, int *n,
		       struct fd_err *e)
{
	json_t *v = get(c, key, e);
	if (!v)
		return -1;
	if (!json_is_array(v))
		return fd_err_set(e, "%s: '%s' is not an array of strings", fd_config_where(c, key), key);
	if (json_array_size(v) > (size_t)cap)
		return fd_err_set(e, "%s: '%s' has more than %d entries", fd_config_where(c, key), key, cap);
	for (size_t i = 0; i < json_array_size(v); i++) {
		json_t *x = json_array_get(v, i);
		if (!json_is_string(x))
			return fd_err_set(e, "%s: '%s' is not an array of strings", fd_config_where(c, key), key);
		out[i] = json_string_value(x);
	}
	*n = (int)json_array_size(v);
	return 0;
}

/* ---- canonical dump ---- */

struct buf {
	char *p;
	size_t n, cap;
	int oom;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = (b->n + n + 1) * 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void put_str(struct buf *b, const char *s)
{
	puts_(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		if (c == '"' || c == '\\') {
			esc[0] = '\\', esc[1] = (char)c, esc[2] = 0;
			puts_(b, esc);
		} else if (c < 0x20) {
			const char *sh = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r"
				       : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
			if (sh)
				snprintf(esc, sizeof esc, "%s", sh);
			else
				snprintf(esc, sizeof esc, "\\u%04x", c);
			puts_(b, esc);
		} else {
			put(b, s, 1);
		}
	}
	puts_(b, "\"");
}

/* A finite double as Python's repr writes it (so the canonical form equals
 * json.dumps(sort_keys=True)): the shortest digits that read back to the same
 * double, fixed notation for exponents -4..15 (always with a '.'), else d.ddde+XX. */
static void put_real(struct buf *b, double d)
{
	char s[40], out[64];
	for (int p = 0; p <= 16; p++) { /* jansson refuses inf and nan, so d is finite */
		snprintf(s, sizeof s, "%.*e", p, d);
		if (strtod(s, NULL) == d)
			break;
	}
	char digits[24], *q = s;
	int nd = 0, neg = *q == '-';
	q += neg;
	for (; *q && *q != 'e'; q++)
		if (*q != '.')
			digits[nd++] = *q;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	int x = atoi(q + 1), k = 0;
	if (neg)
		out[k++] = '-';
	if (x >= 16 || x < -4) {
		k += snprintf(out + k, sizeof out - k, "%c%s%s", digits[0], nd > 1 ? "." : "", digits + 1);
		snprintf(out + k, sizeof out - k, "e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
	} else if (x < 0) {
		k += snprintf(out + k, sizeof out - k, "0.");
		for (int i = 0; i < -x - 1; i++)
			out[k++] = '0';
		snprintf(out + k, sizeof out - k, "%s", digits);
	} else if (nd <= x + 1) {
		k += snprintf(out + k, sizeof out - k, "%s", digits);
		for (int i = nd; i < x + 1; i++)
			out[k++] = '0';
		snprintf(out + k, sizeof out - k, ".0");
	} else {
		snprintf(out + k, sizeof out - k, "%.*s.%s", x + 1, digits, digits + x + 1);
	}
	puts_(b, out);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void dump(struct buf *b, const json_t *v)
{
	char num[40];
	if (json_is_object(v)) {
		size_t n = json_object_size(v), i = 0;
		const char **keys = malloc((n ? n : 1) * sizeof *keys);
		if (!keys) {
			b->oom = 1;
			return;
		}
		const char *k;
		json_t *x;
		json_object_foreach((json_t *)v, k, x) keys[i++] = k;
		qsort(keys, n, sizeof *keys, cmp_str);
		puts_(b, "{");
		for (i = 0; i < n; i++) {
			if (i)
				puts_(b, ",");
			put_str(b, keys[i]);
			puts_(b, ":");
			dump(b, json_object_get(v, keys[i]));
		}
		puts_(b, "}");
		free(keys);
	} else if (json_is_array(v)) {
		puts_(b, "[");
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				puts_(b, ",");
			dump(b, json_array_get(v, i));
		}
		puts_(b, "]");
	} else if (json_is_string(v)) {
		put_str(b, json_string_value(v));
	} else if (json_is_integer(v)) {
		snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
		puts_(b, num);
	} else if (json_is_real(v)) {
		put_real(b, json_real_value(v));
	} else {
		puts_(b, json_is_true(v) ? "true" : json_is_false(v) ? "false" : "null");
	}
}

char *fd_config_dump(const struct fd_config *c, struct fd_err *e)
{
	struct buf b = {0};
	dump(&b, c->root);
	if (b.oom) {
		free(b.p);
		fd_err_set(e, "out of memory");
		return NULL;
	}
	return b.p;
}
