/* fd_table: TSV parsing and writing with file:line errors. */
#include "core/fd_table.h"
#include "core/fd_out.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (1u << 16)

struct fd_strpool {
	struct fd_strpool *next;
	size_t used, cap;
	char data[];
};

static const char EMPTY[] = "";

static char *pool_alloc(struct fd_table *t, size_t n)
{
	struct fd_strpool *p = t->pool;
	if (!p || p->cap - p->used < n) {
		size_t cap = n > CHUNK ? n : CHUNK;
		struct fd_strpool *q = malloc(sizeof *q + cap);
		if (!q)
			return NULL;
		q->next = p;
		q->used = 0;
		q->cap = cap;
		t->pool = p = q;
	}
	char *r = p->data + p->used;
	p->used += n;
	return r;
}

static const char *pool_dup(struct fd_table *t, const char *s, size_t n)
{
	if (n == 0)
		return EMPTY;
	char *r = pool_alloc(t, n + 1);
	if (!r)
		return NULL;
	memcpy(r, s, n);
	r[n] = '\0';
	return r;
}

void fd_table_init(struct fd_table *t)
{
	memset(t, 0, sizeof *t);
}

void fd_table_free(struct fd_table *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->ncol; i++)
		free(t->name[i]);
	free(t->name);
	free(t->cell);
	struct fd_strpool *p = t->pool;
	while (p) {
		struct fd_strpool *n = p->next;
		free(p);
		p = n;
	}
	free(t->src);
	memset(t, 0, sizeof *t);
}

static const char *shown(const char *src)
{
	return (!src || strcmp(src, "-") == 0) ? "standard input" : src;
}

/* Valid UTF-8 (no overlongs, no surrogates)? */
static int utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		int k;
		uint32_t cp;
		if ((c & 0xE0) == 0xC0)
			k = 1, cp = c & 0x1F;
		else if ((c & 0xF0) == 0xE0)
			k = 2, cp = c & 0x0F;
		else if ((c & 0xF8) == 0xF0)
			k = 3, cp = c & 0x07;
		else
			return 0;
		for (int j = 1; j <= k; j++) {
			if (i + (size_t)j >= n || (s[i + j] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + j] & 0x3F);
		}
		if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
		    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += (size_t)k + 1;
	}
	return 1;
}

static int grow_rows(struct fd_table *t, size_t want)
{
	if (want <= t->cap)
		return 0;
	size_t cap = t->cap ? t->cap : 64;
	while (cap < want)
		cap *= 2;
	const char **c = realloc(t->cell, cap * (size_t)t->ccap * sizeof *c);
	if (!c)
		return -1;
	t->cell = c;
	t->cap = cap;
	return 0;
}

int fd_table_add_col(struct fd_table *t, const char *name, struct fd_err *e)
{
	int have = fd_table_col(t, name);
	if (have >= 0)
		return have;
	if (!*name || strpbrk(name, "\t\n\r"))
		return fd_err_set(e, "bad column name '%s'", name);
	char **nm = realloc(t->name, (size_t)(t->ncol + 1) * sizeof *nm);
	if (!nm)
		return fd_err_set(e, "out of memory");
	t->name = nm;
	if (!(nm[t->ncol] = strdup(name)))
		return fd_err_set(e, "out of memory");
	if (t->ncol + 1 > t->ccap) {
		int ncap = t->ccap ? t->ccap * 2 : 16;
		while (ncap < t->ncol + 1)
			ncap *= 2;
		size_t rows = t->cap ? t->cap : 0;
		const char **c = NULL;
		if (rows) {
			c = malloc(rows * (size_t)ncap * sizeof *c);
			if (!c) {
				free(nm[t->ncol]);
				return fd_err_set(e, "out of memory");
			}
			for (size_t r = 0; r < t->nrow; r++) {
				memcpy(c + r * (size_t)ncap, t->cell + r * (size_t)t->ccap,
				       (size_t)t->ncol * sizeof *c);
			}
			free(t->cell);
			t->cell = c;
		}
		t->ccap = ncap;
	}
	for (size_t r = 0; r < t->nrow; r++)
		t->cell[r * (size_t)t->ccap + (size_t)t->ncol] = EMPTY;
	return t->ncol++;
}

size_t fd_table_add_row(struct fd_table *t)
{
	if (t->ccap == 0)
		t->ccap = 16;
	if (grow_rows(t, t->nrow + 1) != 0)
		return (size_t)-1;
	for (int c = 0; c < t->ccap; c++)
		t->cell[t->nrow * (size_t)t->ccap + (size_t)c] = EMPTY;
	return t->nrow++;
}

int fd_table_col(const struct fd_table *t, const char *name)
{
	for (int i = 0; i < t->ncol; i++)
		if (strcmp(t->name[i], name) == 0)
			return i;
	return -1;
}

int fd_table_need(const struct fd_table *t, const char *name, struct fd_err *e)
{
	int c = fd_table_col(t, name);
	if (c < 0)
		return fd_err_set(e, "'%s': missing column '%s'", shown(t->src), name);
	return c;
}

int fd_table_set(struct fd_table *t, size_t row, int col, const char *val, struct fd_err *e)
{
	size_t n = strlen(val);
	if (memchr(val, '\t', n))
		return fd_err_set(e, "value for column '%s' contains a tab", t->name[col]);
	if (memchr(val, '\n', n) || memchr(val, '\r', n))
		return fd_err_set(e, "value for column '%s' contains a newline", t->name[col]);
	const char *s = pool_dup(t, val, n);
	if (!s)
		return fd_err_set(e, "out of memory");
	t->cell[row * (size_t)t->ccap + (size_t)col] = s;
	return 0;
}

int fd_table_setf(struct fd_table *t, size_t row, int col, struct fd_err *e, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof buf)
		return fd_err_set(e, "value for column '%s' too long", t->name[col]);
	return fd_table_set(t, row, col, buf, e);
}

int fd_table_parse(struct fd_table *t, const char *buf, size_t len, const char *name,
		   struct fd_err *e)
{
	fd_table_init(t);
	t->src = strdup(name ? name : "-");
	const char *shown_name = shown(name);
	if (len == 0) {
		fd_err_set(e, "cannot read '%s': empty file, expected a header line", shown_name);
		goto fail;
	}
	if (memchr(buf, '\0', len)) {
		size_t off = (size_t)((const char *)memchr(buf, '\0', len) - buf);
		size_t line = 1;
		for (size_t i = 0; i < off; i++)
			line += buf[i] == '\n';
		fd_err_set(e, "cannot read '%s': line %zu: NUL byte (not a text file)", shown_name, line);
		goto fail;
	}
	/* a UTF-8 byte-order mark (spreadsheet exports) is not part of the first
	 * column's name: without this, "missing column 'path'" */
	size_t pos = len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0, line = 0;
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - buf) : len;
		size_t next = nl ? end + 1 : len;
		size_t lend = end;
		if (lend > pos && buf[lend - 1] == '\r')
			lend--;
		line++;
		const char *s = buf + pos;
		size_t n = lend - pos;
		if (!utf8_ok((const unsigned char *)s, n)) {
			fd_err_set(e, "cannot read '%s': line %zu: invalid UTF-8", shown_name, line);
			goto fail;
		}
		if (line == 1) {
			size_t a = 0;
			for (;;) {
				const char *tab = memchr(s + a, '\t', n - a);
				size_t b = tab ? (size_t)(tab - s) : n;
				char col[1024];
				if (b - a == 0 || b - a >= sizeof col) {
					fd_err_set(e, "cannot read '%s': line 1: %s column name in header",
						   shown_name, b == a ? "empty" : "overlong");
					goto fail;
				}
				memcpy(col, s + a, b - a);
				col[b - a] = '\0';
				if (fd_table_col(t, col) >= 0) {
					fd_err_set(e, "cannot read '%s': line 1: duplicate column '%s'",
						   shown_name, col);
					goto fail;
				}
				if (fd_table_add_col(t, col, e) < 0) {
					fd_err_ctx(e, "cannot read '%s'", shown_name);
					goto fail;
				}
				if (!tab)
					break;
				a = b + 1;
			}
		} else {
			if (n == 0 && next >= len) /* blank last line */
				break;
			size_t r = fd_table_add_row(t);
			if (r == (size_t)-1) {
				fd_err_set(e, "cannot read '%s': out of memory", shown_name);
				goto fail;
			}
			int c = 0;
			size_t a = 0;
			for (;;) {
				const char *tab = memchr(s + a, '\t', n - a);
				size_t b = tab ? (size_t)(tab - s) : n;
				if (c < t->ncol) {
					const char *v = pool_dup(t, s + a, b - a);
					if (!v) {
						fd_err_set(e, "cannot read '%s': out of memory", shown_name);
						goto fail;
					}
					t->cell[r * (size_t)t->ccap + (size_t)c] = v;
				}
				c++;
				if (!tab)
					break;
				a = b + 1;
			}
			if (c != t->ncol) {
				fd_err_set(e, "cannot read '%s': line %zu: expected %d fields, found %d",
					   shown_name, line, t->ncol, c);
				goto fail;
			}
		}
		pos = next;
	}
	if (t->ncol == 0) {
		fd_err_set(e, "cannot read '%s': empty file, expected a header line", shown_name);
		goto fail;
	}
	return 0;
fail:
	fd_table_free(t);
	return -1;
}

int fd_table_read(struct fd_table *t, const char *path, struct fd_err *e)
{
	int is_stdin = !path || strcmp(path, "-") == 0;
	FILE *f = is_stdin ? stdin : fopen(path, "rb");
	fd_table_init(t);
	if (!f)
		return fd_err_sys(e, errno, "cannot read '%s'", path);
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	if (!buf) {
		if (!is_stdin)
			fclose(f);
		return fd_err_set(e, "cannot read '%s': out of memory", shown(path));
	}
	for (;;) {
		if (len == cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				if (!is_stdin)
					fclose(f);
				return fd_err_set(e, "cannot read '%s': out of memory", shown(path));
			}
			buf = nb;
			cap *= 2;
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	int bad = ferror(f);
	int er = errno;
	if (!is_stdin)
		fclose(f);
	if (bad) {
		free(buf);
		return fd_err_sys(e, er, "cannot read '%s'", shown(path));
	}
	int rc = fd_table_parse(t, buf, len, is_stdin ? "-" : path, e);
	free(buf);
	return rc;
}

int fd_table_write(const struct fd_table *t, FILE *f, struct fd_err *e)
{
	for (int c = 0; c < t->ncol; c++) {
		fputs(t->name[c], f);
		fputc(c + 1 < t->ncol ? '\t' : '\n', f);
	}
	for (size_t r = 0; r < t->nrow; r++) {
		for (int c = 0; c < t->ncol; c++) {
			fputs(fd_table_get(t, r, c), f);
			fputc(c + 1 < t->ncol ? '\t' : '\n', f);
		}
	}
	if (ferror(f))
		return fd_err_sys(e, errno ? errno : EIO, "write error");
	return 0;
}

int fd_table_save(const struct fd_table *t, const char *path, struct fd_err *e)
{
	struct fd_out o;
	if (fd_out_open(&o, path, e) < 0)
		return -1;
	if (fd_table_write(t, o.f, e) < 0) {
		fd_err_ctx(e, "cannot write '%s'", path && strcmp(path, "-") ? path : "standard output");
		fd_out_abort(&o);
		return -1;
	}
	return fd_out_commit(&o, e);
}

int fd_table_copy_header(struct fd_table *dst, const struct fd_table *src, struct fd_err *e)
{
	fd_table_init(dst);
	for (int c = 0; c < src->ncol; c++)
		if (fd_table_add_col(dst, src->name[c], e) < 0) {
			fd_table_free(dst);
			return -1;
		}
	if (src->src)
		dst->src = strdup(src->src);
	return 0;
}

int fd_table_copy_row(struct fd_table *dst, const struct fd_table *src, size_t r, struct fd_err *e)
{
	size_t d = fd_table_add_row(dst);
	if (d == (size_t)-1)
		return fd_err_set(e, "out of memory");
	/* Cells of src outlive dst only if src does; copy the text. */
	for (int c = 0; c < src->ncol && c < dst->ncol; c++)
		if (fd_table_set(dst, d, c, fd_table_get(src, r, c), e) < 0)
			return -1;
	return 0;
}

int fd_only_parse(struct fd_only *o, const char *spec, struct fd_err *e)
{
	memset(o, 0, sizeof *o);
	const char *eq = strchr(spec, '=');
	if (!eq || eq == spec || !eq[1])
		return fd_err_set(e, "bad filter '%s': expected COL=V[,V..]", spec);
	o->col = strndup(spec, (size_t)(eq - spec));
	const char *p = eq + 1;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		if (n == 0) {
			fd_only_free(o, 1);
			return fd_err_set(e, "bad filter '%s': empty value", spec);
		}
		char **v = realloc(o->vals, (size_t)(o->nval + 1) * sizeof *v);
		if (!v) {
			fd_only_free(o, 1);
			return fd_err_set(e, "out of memory");
		}
		o->vals = v;
		v[o->nval++] = strndup(p, n);
		if (!comma)
			break;
		p = comma + 1;
	}
	o->ci = -1;
	return 0;
}

int fd_only_bind(struct fd_only *o, int n, const struct fd_table *t, struct fd_err *e)
{
	for (int i = 0; i < n; i++)
		if ((o[i].ci = fd_table_need(t, o[i].col, e)) < 0)
			return -1;
	return 0;
}

int fd_only_match(const struct fd_only *o, int n, const struct fd_table *t, size_t r)
{
	for (int i = 0; i < n; i++) {
		const char *v = fd_table_get(t, r, o[i].ci);
		int ok = 0;
		for (int j = 0; j < o[i].nval && !ok; j++)
			ok = strcmp(v, o[i].vals[j]) == 0;
		if (!ok)
			return 0;
	}
	return 1;
}

void fd_only_free(struct fd_only *o, int n)
{
	if (!o)
		return;
	for (int i = 0; i < n; i++) {
		free(o[i].col);
		for (int j = 0; j < o[i].nval; j++)
			free(o[i].vals[j]);
		free(o[i].vals);
		memset(&o[i], 0, sizeof o[i]);
	}
}
