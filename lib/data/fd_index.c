/* fd_index: walking a data set tree, probing every file, writing index.tsv. */
#include "data/fd_index.h"
#include "core/fd_table.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <math.h>
#include <unistd.h>

static int safe_source_name(const char *s)
{
	return *s && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 && !strchr(s, '/');
}

int fd_sources_read(struct fd_sources *s, const char *path, struct fd_err *e)
{
	struct fd_table t;
	fd_table_init(&t);
	memset(s, 0, sizeof *s);
	if (fd_table_read(&t, path, e) < 0)
		return -1;
	int cs = fd_table_col(&t, "source"), cl = fd_table_col(&t, "label");
	if (cs < 0 || cl < 0) {
		fd_err_set(e, "cannot read '%s': line 1: missing column '%s'", path, cs < 0 ? "source" : "label");
		goto fail;
	}
	if (t.nrow == 0) {
		fd_err_set(e, "cannot read '%s': no sources", path);
		goto fail;
	}
	s->name = calloc(t.nrow, sizeof *s->name);
	s->label = calloc(t.nrow, sizeof *s->label);
	if (!s->name || !s->label) {
		fd_err_set(e, "out of memory");
		goto fail;
	}
	for (size_t r = 0; r < t.nrow; r++) {
		const char *n = fd_table_get(&t, r, cs), *l = fd_table_get(&t, r, cl);
		if (!safe_source_name(n)) {
			fd_err_set(e, "cannot read '%s': line %zu: source '%s' is not a folder name", path, r + 2, n);
			goto fail;
		}
		for (int k = 0; k < s->n; k++)
			if (strcmp(s->name[k], n) == 0) {
				fd_err_set(e, "cannot read '%s': line %zu: source '%s' listed twice", path, r + 2, n);
				goto fail;
			}
		if (strcmp(l, "0") != 0 && strcmp(l, "1") != 0) {
			fd_err_set(e, "cannot read '%s': line %zu: label '%s' is not 0 or 1", path, r + 2, l);
			goto fail;
		}
		if (!(s->name[s->n] = strdup(n))) {
			fd_err_set(e, "out of memory");
			goto fail;
		}
		s->label[s->n++] = l[0] - '0';
	}
	fd_table_free(&t);
	return 0;
fail:
	fd_table_free(&t);
	fd_sources_free(s);
	return -1;
}

void fd_sources_free(struct fd_sources *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->name[i]);
	free(s->name);
	free(s->label);
	memset(s, 0, sizeof *s);
}

/* ---- names ------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (1..4), or 0 (overlong forms,
 * surrogates and code points above U+10FFFF are invalid). */
static int utf8_len(const unsigned char *p)
{
	unsigned c = p[0];
	if (c < 0x80)
		return 1;
	int n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	for (int i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || (c == 0xf0 && p[1] < 0x90) ||
	    (c == 0xf4 && p[1] > 0x8f))
		return 0;
	return n;
}

/* Classify a name; for a bad one, *esc becomes its escaped form (malloc'ed). */
static int check_name(const char *s, char **esc)
{
	const unsigned char *p = (const unsigned char *)s;
	int kind = FD_INDEX_NAME_OK;
	for (size_t i = 0; p[i];) {
		int n = utf8_len(p + i);
		if (n == 0) {
			kind = FD_INDEX_NAME_NONUTF8;
			break;
		}
		if (p[i] < 0x20 || p[i] == 0x7f)
			kind = FD_INDEX_NAME_CONTROL;
		i += (size_t)n;
	}
	*esc = NULL;
	if (kind == FD_INDEX_NAME_OK)
		return kind;
	size_t len = strlen(s);
	char *o = malloc(len * 4 + 1);
	if (!o)
		return -1;
	char *q = o;
	for (size_t i = 0; p[i];) {
		int n = utf8_len(p + i);
		if (n == 0 || p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\') {
			q += sprintf(q, "\\x%02x", p[i]);
			i++;
		} else {
			memcpy(q, p + i, (size_t)n);
			q += n;
			i += (size_t)n;
		}
	}
	*q = 0;
	*esc = o;
	return kind;
}

/* ---- walking ------------------------------------------------------------ */

struct dirjob {
	char *rel;       /* relative to root, raw bytes */
	char *shown;     /* as written in paths (escaped when a component is bad) */
	int src, bad;    /* bad: the worst name kind on the way down */
};

struct dirres {
	struct fd_index_row *files;
	size_t nf;
	struct dirjob *dirs;
	size_t nd;
	size_t skipped;
	char skipped_example[512];
	char err[FD_ERR_MAX];
};

static char *join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = malloc(la + lb + 2);
	if (!s)
		return NULL;
	memcpy(s, a, la);
	s[la] = '/';
	memcpy(s + la + 1, b, lb + 1);
	return s;
}

static int push(void **v, size_t *n, size_t *cap, size_t size)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		void *p = realloc(*v, nc * size);
		if (!p)
			return -1;
		*v = p;
		*cap = nc;
	}
	return 0;
}

static void read_dir(const char *root, const struct dirjob *j, struct dirres *r)
{
	char *full = join(root, j->rel);
	size_t capf = 0, capd = 0;
	if (!full) {
		snprintf(r->err, sizeof r->err, "out of memory");
		return;
	}
	DIR *d = opendir(full);
	if (!d) {
		snprintf(r->err, sizeof r->err, "cannot read directory '%s': %s", full, strerror(errno));
		free(full);
		return;
	}
	int dfd = dirfd(d);
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				snprintf(r->err, sizeof r->err, "cannot read directory '%s': %s", full, strerror(errno));
			break;
		}
		const char *nm = de->d_name;
		if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0)
			continue;
		int isdir = de->d_type == DT_DIR, isreg = de->d_type == DT_REG, link = de->d_type == DT_LNK;
		if (!isdir && !isreg) {
			struct stat st;
			if (fstatat(dfd, nm, &st, 0) == 0) {
				isreg = S_ISREG(st.st_mode);
				isdir = S_ISDIR(st.st_mode);
				if (!link && de->d_type == DT_UNKNOWN) {
					struct stat ls;
					link = fstatat(dfd, nm, &ls, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(ls.st_mode);
				}
			}
			if (!isreg && !(isdir && !link)) {
				if (!r->skipped++)
					snprintf(r->skipped_example, sizeof r->skipped_example, "%s/%s", full, nm);
				continue;
			}
		}
		char *esc;
		int kind = check_name(nm, &esc);
		if (kind < 0) {
			snprintf(r->err, sizeof r->err, "out of memory");
			break;
		}
		char *rel = join(j->rel, nm), *shown = join(j->shown, esc ? esc : nm);
		free(esc);
		if (!rel || !shown) {
			free(rel);
			free(shown);
			snprintf(r->err, sizeof r->err, "out of memory");
			break;
		}
		int bad = kind > j->bad ? kind : j->bad;
		if (isdir) {
			if (push((void **)&r->dirs, &r->nd, &capd, sizeof *r->dirs) < 0) {
				free(rel);
				free(shown);
				snprintf(r->err, sizeof r->err, "out of memory");
				break;
			}
			r->dirs[r->nd++] = (struct dirjob){rel, shown, j->src, bad};
		} else {
			if (push((void **)&r->files, &r->nf, &capf, sizeof *r->files) < 0) {
				free(rel);
				free(shown);
				snprintf(r->err, sizeof r->err, "out of memory");
				break;
			}
			struct fd_index_row *f = &r->files[r->nf++];
			memset(f, 0, sizeof *f);
			f->raw = rel;
			f->path = shown;
			f->src = j->src;
			f->name = bad;
		}
	}
	closedir(d);
	free(full);
}

static int cmp_row(const void *a, const void *b)
{
	return strcmp(((const struct fd_index_row *)a)->path, ((const struct fd_index_row *)b)->path);
}

int fd_index_walk(struct fd_index *ix, const char *root, const struct fd_sources *s, struct fd_err *e)
{
	struct dirjob *level = calloc((size_t)s->n, sizeof *level);
	size_t nlevel = 0;
	int rc = 0;
	if (!level)
		return fd_err_set(e, "out of memory");
	for (int i = 0; i < s->n; i++) {
		char *full = join(root, s->name[i]);
		struct stat st;
		if (!full) {
			rc = fd_err_set(e, "out of memory");
			break;
		}
		int bad = stat(full, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
		if (bad) {
			rc = fd_err_sys(e, bad, "source folder '%s'", full);
			free(full);
			break;
		}
		free(full);
		level[nlevel].rel = strdup(s->name[i]);
		level[nlevel].shown = strdup(s->name[i]);
		level[nlevel].src = i;
		level[nlevel].bad = 0;
		if (!level[nlevel].rel || !level[nlevel].shown) {
			nlevel++;
			rc = fd_err_set(e, "out of memory");
			break;
		}
		nlevel++;
	}
	while (rc == 0 && nlevel > 0) {
		struct dirres *res = calloc(nlevel, sizeof *res);
		if (!res) {
			rc = fd_err_set(e, "out of memory");
			break;
		}
#pragma omp parallel for schedule(dynamic, 1)
		for (size_t i = 0; i < nlevel; i++)
			read_dir(root, &level[i], &res[i]);
		struct dirjob *next = NULL;
		size_t nnext = 0, capnext = 0;
		for (size_t i = 0; i < nlevel; i++) {
			struct dirres *r = &res[i];
			if (rc == 0 && r->err[0])
				rc = fd_err_set(e, "%s", r->err);
			if (rc == 0 && r->skipped) {
				if (!ix->skipped)
					memcpy(ix->skipped_example, r->skipped_example, sizeof ix->skipped_example);
				ix->skipped += r->skipped;
			}
			for (size_t k = 0; k < r->nf; k++) {
				if (rc == 0 && push((void **)&ix->row, &ix->n, &ix->cap, sizeof *ix->row) < 0)
					rc = fd_err_set(e, "out of memory");
				if (rc == 0) {
					ix->row[ix->n++] = r->files[k];
				} else {
					free(r->files[k].raw);
					free(r->files[k].path);
				}
			}
			for (size_t k = 0; k < r->nd; k++) {
				if (rc == 0 && push((void **)&next, &nnext, &capnext, sizeof *next) < 0)
					rc = fd_err_set(e, "out of memory");
				if (rc == 0) {
					next[nnext++] = r->dirs[k];
				} else {
					free(r->dirs[k].rel);
					free(r->dirs[k].shown);
				}
			}
			free(r->files);
			free(r->dirs);
		}
		free(res);
		for (size_t i = 0; i < nlevel; i++) {
			free(level[i].rel);
			free(level[i].shown);
		}
		free(level);
		level = next;
		nlevel = nnext;
	}
	for (size_t i = 0; i < nlevel; i++) {
		free(level[i].rel);
		free(level[i].shown);
	}
	free(level);
	if (rc < 0) {
		fd_index_free(ix);
		return -1;
	}
	qsort(ix->row, ix->n, sizeof *ix->row, cmp_row);
	return 0;
}

void fd_index_free(struct fd_index *ix)
{
	for (size_t i = 0; i < ix->n; i++) {
		free(ix->row[i].path);
		free(ix->row[i].raw);
	}
	free(ix->row);
	memset(ix, 0, sizeof *ix);
}

/* ---- probing ------------------------------------------------------------ */

struct buf {
	uint8_t *p;
	size_t cap;
};

static int reserve(struct buf *b, size_t n)
{
	if (n <= b->cap)
		return 0;
	uint8_t *p = realloc(b->p, n);
	if (!p)
		return -1;
	b->p = p;
	b->cap = n;
	return 0;
}

/* Read up to n bytes from offset 0; returns the count or -1. */
static ssize_t read_all(int fd, uint8_t *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = pread(fd, p + got, n - got, (off_t)got);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	return (ssize_t)got;
}

/* 1 when the encoded stream is complete: a JPEG has an EOI marker after its
 * last start-of-scan, a PNG has an IEND chunk. */
static int has_end(const uint8_t *p, size_t n, enum fd_imgfmt fmt)
{
	if (fmt == FD_IMG_PNG)
		return memmem(p, n, "IEND", 4) != NULL;
	size_t sos = 0;
	for (size_t i = 0; i + 1 < n; i++)
		if (p[i] == 0xff && p[i + 1] == 0xda)
			sos = i;
	for (size_t i = sos; i + 1 < n; i++)
		if (p[i] == 0xff && p[i + 1] == 0xd9)
			return 1;
	return 0;
}

#define HEAD_BYTES (64 * 1024)

static void probe_one(struct fd_index_row *r, const char *root, int stats, int64_t max_pixels,
		      struct buf *b)
{
	struct fd_err e;
	struct fd_image_info info;
	r->fmt = FD_IMG_UNKNOWN;
	if (r->name == FD_INDEX_NAME_NONUTF8 || r->name == FD_INDEX_NAME_CONTROL) {
		struct stat st;
		char *full = join(root, r->raw);
		if (full && stat(full, &st) == 0)
			r->bytes = (int64_t)st.st_size;
		free(full);
		strcpy(r->status, r->name == FD_INDEX_NAME_NONUTF8 ? "bad:non-utf8-name" : "bad:control-char-name");
		return;
	}
	char *full = join(root, r->raw);
	int fd = full ? open(full, O_RDONLY | O_CLOEXEC) : -1;
	free(full);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		strcpy(r->status, "bad:unreadable");
		if (fd >= 0)
			close(fd);
		return;
	}
	r->bytes = (int64_t)st.st_size;
	size_t size = (size_t)st.st_size;
	size_t want = stats || size <= HEAD_BYTES ? size : HEAD_BYTES;
	ssize_t got = 0;
	if (size == 0) {
		strcpy(r->status, "bad:empty");
		goto out;
	}
	if (reserve(b, want) < 0 || (got = read_all(fd, b->p, want)) < 0) {
		strcpy(r->status, "bad:unreadable");
		goto out;
	}
	r->fmt = fd_image_sniff(b->p, (size_t)got);
	if (r->fmt == FD_IMG_UNKNOWN) {
		strcpy(r->status, "bad:not-an-image");
		goto out;
	}
	int prc = fd_image_probe_mem(b->p, (size_t)got, &info, &e);
	if (prc < 0 && (size_t)got < size) {
		/* the header may lie beyond the first bytes (large metadata) */
		if (reserve(b, size) < 0 || (got = read_all(fd, b->p, size)) < 0) {
			strcpy(r->status, "bad:unreadable");
			goto out;
		}
		prc = fd_image_probe_mem(b->p, (size_t)got, &info, &e);
	}
	if (prc < 0) {
		strcpy(r->status, strstr(e.msg, "truncat")      ? "bad:truncated"
				  : strstr(e.msg, "unsupported") ? "bad:unsupported"
								 : "bad:corrupt");
		goto out;
	}
	r->w = info.w;
	r->h = info.h;
	if (r->fmt == FD_IMG_JPEG && info.bit_depth != 8) {
		strcpy(r->status, "bad:unsupported");  /* 12-bit JPEG: the decoder reads 8-bit only */
		goto out;
	}
	if ((int64_t)info.w * info.h > max_pixels) {
		strcpy(r->status, "bad:too-large");
		goto out;
	}
	if (stats) {
		struct fd_decode_opts o = {max_pixels, 0, 0};
		struct fd_image img;
		if (fd_image_decode_mem(b->p, (size_t)got, &o, &img, &e) < 0) {
			strcpy(r->status, has_end(b->p, (size_t)got, r->fmt) ? "bad:corrupt" : "bad:truncated");
			goto out;
		}
		/* exact integer sums, so the result is the correctly rounded value */
		uint64_t s[3] = {0, 0, 0}, ss[3] = {0, 0, 0};
		size_t n = (size_t)img.w * img.h;
		for (size_t i = 0; i < n; i++)
			for (int k = 0; k < 3; k++) {
				uint64_t v = img.px[3 * i + k];
				s[k] += v;
				ss[k] += v * v;
			}
		for (int k = 0; k < 3; k++) {
			long double N = (long double)n, m = (long double)s[k] / N;
			long double var = ((long double)ss[k] - (long double)s[k] * m) / N;
			r->mean[k] = (double)(m / 255.0L);
			r->std[k] = (double)(sqrtl(var > 0 ? var : 0) / 255.0L);
		}
		r->has_stats = 1;
		fd_image_free(&img);
	}
	strcpy(r->status, "ok");
out:
	close(fd);
}

void fd_index_probe(struct fd_index *ix, const char *root, size_t begin, size_t end, int stats,
		    int64_t max_pixels)
{
	if (max_pixels <= 0)
		max_pixels = FD_IMAGE_MAX_PIXELS_DEFAULT;
#pragma omp parallel
	{
		struct buf b = {NULL, 0};
#pragma omp for schedule(dynamic, 16)
		for (size_t i = begin; i < end; i++)
			probe_one(&ix->row[i], root, stats, max_pixels, &b);
		free(b.p);
	}
}

/* ---- writing ------------------------------------------------------------ */

int fd_index_write(const struct fd_index *ix, const struct fd_sources *s, int stats, FILE *f,
		   struct fd_err *e)
{
	fputs("path\tsource\tlabel\tgroup\twidth\theight\tformat\tbytes\tstatus", f);
	if (stats)
		fputs("\tmean_r\tmean_g\tmean_b\tstd_r\tstd_g\tstd_b", f);
	fputc('\n', f);
	for (size_t i = 0; i < ix->n; i++) {
		const struct fd_index_row *r = &ix->row[i];
		const char *g = r->path + strlen(s->name[r->src]) + 1;
		const char *slash = strrchr(g, '/'), *dot = strrchr(g, '.');
		const char *base = slash ? slash + 1 : g;
		int glen = dot && dot > base ? (int)(dot - g) : (int)strlen(g);
		fprintf(f, "%s\t%s\t%d\t%.*s\t%d\t%d\t%s\t%lld\t%s", r->path, s->name[r->src], s->label[r->src],
			glen, g, r->w, r->h, fd_imgfmt_name(r->fmt), (long long)r->bytes, r->status);
		if (stats) {
			if (r->has_stats)
				fprintf(f, "\t%.8f\t%.8f\t%.8f\t%.8f\t%.8f\t%.8f", r->mean[0], r->mean[1], r->mean[2],
					r->std[0], r->std[1], r->std[2]);
			else
				fputs("\t\t\t\t\t\t", f);
		}
		fputc('\n', f);
	}
	if (ferror(f))
		return fd_err_sys(e, errno, "write error");
	return 0;
}
