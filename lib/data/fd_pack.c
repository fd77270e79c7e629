/* fd_pack: images named by a TSV -> PACK.safetensors + PACK.tsv (decode,
 * geometry, resize on worker threads, straight into the mapped output), and
 * the reader that checks a pack and its sidecar belong together. */
#include "data/fd_pack.h"
#include "core/fd_root.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fd_sha256.h"
#include "core/fd_version.h"
#include "io/fd_image.h"

#define EXT ".safetensors"
#define EXTLEN 12

int fd_pack_sidecar(const char *pack, char **tsv, struct fd_err *e)
{
	size_t n = strlen(pack);
	*tsv = NULL;
	if (n <= EXTLEN || strcmp(pack + n - EXTLEN, EXT) != 0 || pack[n - EXTLEN - 1] == '/')
		return fd_err_set(e, "'%s' must be a file name ending in " EXT, pack);
	char *t = malloc(n - EXTLEN + 5);
	if (!t)
		return fd_err_set(e, "out of memory");
	memcpy(t, pack, n - EXTLEN);
	strcpy(t + n - EXTLEN, ".tsv");
	*tsv = t;
	return 0;
}

/* ---- writing ---- */

static int read_all(const char *path, const char *shown, uint8_t **buf, size_t *n, struct fd_err *e)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	*buf = NULL;
	*n = 0;
	if (!f)
		return fd_err_sys(e, errno, "cannot read '%s'", shown);
	size_t cap = 1 << 16, len = 0;
	uint8_t *b = malloc(cap);
	while (b) {
		len += fread(b + len, 1, cap - len, f);
		if (len < cap)
			break;
		uint8_t *nb = realloc(b, cap * 2);
		if (!nb)
			free(b);
		b = nb;
		cap *= 2;
	}
	int bad = !b || ferror(f);
	if (f != stdin)
		fclose(f);
	if (bad) {
		free(b);
		return fd_err_set(e, "cannot read '%s': %s", shown, b ? "read error" : "out of memory");
	}
	*buf = b;
	*n = len;
	return 0;
}

void fd_pack_input_free(struct fd_pack_input *in)
{
	fd_table_free(&in->t);
	free(in->shown);
	free(in->row);
	free(in->label);
	free(in->aspect);
	memset(in, 0, sizeof *in);
}

/* A real photo of the input: its group and aspect (matched geometry). */
struct real_aspect {
	const char *group;
	size_t r;
	int w, h;
};

static int cmp_real(const void *a, const void *b)
{
	const struct real_aspect *x = a, *y = b;
	int c = strcmp(x->group, y->group);
	return c ? c : x->r < y->r ? -1 : x->r > y->r;
}

static int positive_int(const char *s, int *v)
{
	char *end;
	errno = 0;
	long x = strtol(s, &end, 10);
	if (!*s || *end || errno || x <= 0 || x > 1 << 30)
		return -1;
	*v = (int)x;
	return 0;
}

/* The matched geometry's aspect of every selected row (fd_pack_select). */
static int match_aspect(struct fd_pack_input *in, int lcol, int scol, struct fd_err *e)
{
	const struct fd_table *t = &in->t;
	const char *names[3] = {"group", "width", "height"};
	int col[3];
	for (int k = 0; k < 3; k++)
		if ((col[k] = fd_table_col(t, names[k])) < 0)
			return fd_err_set(e, "cannot read '%s': missing column '%s' (needed by --geometry "
					     "matched; fd-index writes it)", in->shown, names[k]);
	struct real_aspect *ra = malloc(sizeof *ra * (t->nrow ? t->nrow : 1));
	in->aspect = calloc(2 * in->n + 1, sizeof *in->aspect);
	if (!ra || !in->aspect) {
		free(ra);
		return fd_err_set(e, "out of memory");
	}
	size_t nr = 0;
	for (size_t r = 0; r < t->nrow; r++) {
		if (strcmp(fd_table_get(t, r, lcol), "0") != 0 ||
		    (scol >= 0 && strcmp(fd_table_get(t, r, scol), "ok") != 0))
			continue;
		struct real_aspect *a = &ra[nr];
		a->group = fd_table_get(t, r, col[0]);
		a->r = r;
		if (positive_int(fd_table_get(t, r, col[1]), &a->w) != 0 ||
		    positive_int(fd_table_get(t, r, col[2]), &a->h) != 0) {
			free(ra);
			return fd_err_set(e, "cannot read '%s': line %zu: a real photo's width and height "
					     "must be positive integers ('%s', '%s')", in->shown, r + 2,
					  fd_table_get(t, r, col[1]), fd_table_get(t, r, col[2]));
		}
		nr++;
	}
	qsort(ra, nr, sizeof *ra, cmp_real);
	for (size_t i = 0; i < in->n; i++) {
		if (in->label[i] == 0)
			continue; /* reals keep their whole frame: aspect 0:0 */
		struct real_aspect key = {fd_table_get(t, in->row[i], col[0]), 0, 0, 0};
		/* the first real of the group: lower bound by (group, row 0) */
		size_t lo = 0, hi = nr;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (cmp_real(&ra[mid], &key) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (*key.group && lo < nr && strcmp(ra[lo].group, key.group) == 0) {
			in->aspect[2 * i] = ra[lo].w;
			in->aspect[2 * i + 1] = ra[lo].h;
		} else {
			in->aspect[2 * i] = in->aspect[2 * i + 1] = 1;
			in->unmatched++;
		}
	}
	free(ra);
	return 0;
}

int fd_pack_select(struct fd_pack_input *in, const char *path, const struct fd_pack_opts *o,
		   struct fd_err *e)
{
	memset(in, 0, sizeof *in);
	fd_table_init(&in->t);
	in->shown = strdup(strcmp(path, "-") == 0 ? "standard input" : path);
	if (!in->shown)
		return fd_err_set(e, "out of memory");
	const char *shown = in->shown;
	struct fd_root root;
	if (fd_root_init(&root, o->root, o->allow_outside_root, e) != 0)
		goto fail_noroot;

	/* hash the exact bytes (provenance), then parse */
	uint8_t *raw;
	size_t nraw;
	if (read_all(path, shown, &raw, &nraw, e) != 0)
		goto fail;
	struct fd_sha256 h;
	fd_sha256_init(&h);
	fd_sha256_update(&h, raw, nraw);
	fd_sha256_hex(&h, in->sha256);
	int rc = fd_table_parse(&in->t, (const char *)raw, nraw, path, e);
	free(raw);
	if (rc != 0)
		goto fail;
	struct fd_table *t = &in->t;
	int lcol;
	if ((in->pcol = fd_table_col(t, "path")) < 0 || (lcol = fd_table_col(t, "label")) < 0) {
		fd_err_set(e, "cannot read '%s': missing column '%s'", shown, in->pcol < 0 ? "path" : "label");
		goto fail;
	}
	int scol = fd_table_col(t, "status");
	if (o->geom == FD_GEOM_FACE) {
		static const char *fc[5] = {"face_x1", "face_y1", "face_x2", "face_y2", "face_score"};
		for (int k = 0; k < 5; k++)
			if ((in->fcol[k] = fd_table_col(t, fc[k])) < 0) {
				fd_err_set(e, "cannot read '%s': missing column '%s' (needed by --geometry face; "
					      "run fd-facecrop)", shown, fc[k]);
				goto fail;
			}
	}
	if (fd_only_bind(o->only, o->nonly, t, e) != 0) {
		fd_err_ctx(e, "cannot read '%s'", shown);
		goto fail;
	}

	in->row = malloc(sizeof(size_t) * (t->nrow ? t->nrow : 1));
	in->label = malloc(t->nrow ? t->nrow : 1);
	if (!in->row || !in->label) {
		fd_err_set(e, "out of memory");
		goto fail;
	}
	for (size_t r = 0; r < t->nrow; r++) {
		if (scol >= 0 && strcmp(fd_table_get(t, r, scol), "ok") != 0) {
			in->not_ok++;
			continue;
		}
		if (!fd_only_match(o->only, o->nonly, t, r)) {
			in->filtered++;
			continue;
		}
		const char *ls = fd_table_get(t, r, lcol);
		char *end;
		errno = 0;
		long v = strtol(ls, &end, 10);
		if (!*ls || *end || errno || v < 0 || v > 255) {
			fd_err_set(e, "cannot read '%s': line %zu: label '%s' is not an integer in 0..255",
				   shown, r + 2, ls);
			goto fail;
		}
		char rp[4096];
		if (fd_root_path(&root, fd_table_get(t, r, in->pcol), rp, sizeof rp, e) != 0) {
			fd_err_ctx(e, "cannot read '%s': line %zu", shown, r + 2);
			goto fail;
		}
		in->label[in->n] = (uint8_t)v;
		in->row[in->n++] = r;
	}
	if (in->n == 0) {
		fd_err_set(e, "cannot read '%s': no rows to pack (%zu rows, %zu not ok, %zu filtered out)",
			   shown, t->nrow, in->not_ok, in->filtered);
		goto fail;
	}
	if (o->geom == FD_GEOM_MATCHED && match_aspect(in, lcol, scol, e) != 0)
		goto fail;
	fd_root_free(&root);
	return 0;
fail:
	fd_root_free(&root);
fail_noroot:
	fd_pack_input_free(in);
	return -1;
}

/* The face box of row r in stored-image pixels; 0 when the row has no face. */
static int row_face(const struct fd_pack_input *in, size_t r, double f[4])
{
	const char *sc = fd_table_get(&in->t, r, in->fcol[4]);
	char *end;
	double score = strtod(sc, &end);
	if (!*sc || *end || !(score > 0))
		return 0;
	for (int k = 0; k < 4; k++) {
		const char *s = fd_table_get(&in->t, r, in->fcol[k]);
		f[k] = strtod(s, &end);
		if (!*s || *end || !isfinite(f[k]))
			return 0;
	}
	return 1;
}

/* One thread's reusable state: file and pixel buffers, the TurboJPEG handle
 * and the resize coefficients, so an image costs no allocation or page fault. */
struct worker {
	struct fd_decoder *dec;
	struct fd_resize_ctx *rs;
};

/* Decode input row r and write its S x S square at dst. *fell_back is set when
 * the face geometry had no usable face and centre was used. */
static int pack_one(const struct fd_pack_opts *o, struct worker *wk, const struct fd_pack_input *in,
		    size_t i, uint8_t *dst, int *fell_back, struct fd_err *e)
{
	size_t r = in->row[i];
	char path[4096];
	const char *rel = fd_table_get(&in->t, r, in->pcol);
	if ((size_t)snprintf(path, sizeof path, "%s/%s", o->root, rel) >= sizeof path)
		return fd_err_set(e, "path too long: '%s'", rel);
	const uint8_t *buf;
	size_t n;
	if (fd_decoder_read(wk->dec, path, &buf, &n, e) != 0)
		return -1;
	struct fd_image_info info;
	struct fd_decode_opts dopt = {0, 0, 0};
	struct fd_image img;
	enum fd_geometry g = o->geom;
	double face[4];
	float fbox[4];
	int rc = -1;
	if (fd_image_probe_mem(buf, n, &info, e) != 0)
		goto out;
	if (g == FD_GEOM_FACE) {
		if (!row_face(in, r, face) ||
		    fd_geom_face_box(info.w, info.h, face[0], face[1], face[2], face[3], o->margin,
				     fbox) != 0) {
			g = FD_GEOM_CENTER;
			*fell_back = 1;
		}
	}
	if (!o->exact) {
		if (g == FD_GEOM_FACE) {
			/* the largest DCT scale that keeps the face square >= S, asked
			 * for the way Image.draft understands it */
			double side = fbox[2] - fbox[0];
			int s = 8;
			while (s > 1 && side / s < o->size)
				s /= 2;
			if (s > 1 && info.w / s > 0 && info.h / s > 0)
				dopt.min_w = info.w / s, dopt.min_h = info.h / s;
		} else {
			dopt.min_w = dopt.min_h = o->size;
		}
	}
	if (fd_decoder_decode(wk->dec, buf, n, &dopt, &img, e) != 0)
		goto out;
	if (g == FD_GEOM_FACE) {
		double s = img.scale;
		if (fd_geom_face_box(img.w, img.h, face[0] / s, face[1] / s, face[2] / s, face[3] / s,
				     o->margin, fbox) != 0) {
			fd_err_set(e, "empty face box");
			goto out;
		}
	}
	const float *region = fbox;
	if (g == FD_GEOM_MATCHED) {
		/* the crop is taken on the decoded (possibly draft-scaled) image: only
		 * the aspect matters, and Pillow's reference does the same */
		region = NULL;
		if (in->aspect[2 * i] > 0) {
			fd_geom_aspect_box(img.w, img.h, in->aspect[2 * i], in->aspect[2 * i + 1], fbox);
			region = fbox;
		}
	}
	rc = fd_geom_square_ctx(wk->rs, img.px, img.w, img.h, g, o->size, region, NULL, dst, e);
out:
	if (rc)
		fd_err_ctx(e, "cannot read '%s'", path);
	return rc;
}

/* Declare the pack's tensors and provenance, then create the mapped file
 * (metadata is part of the header, so it is fixed before any pixel is written). */
static int declare(struct fd_stw *w, const char *path, size_t n, int S, const char *meta[][2],
		   size_t nmeta, struct fd_err *e)
{
	int64_t ishape[4] = {(int64_t)n, S, S, 3}, lshape[1] = {(int64_t)n};
	fd_stw_init(w);
	if (fd_stw_add(w, "images", FD_DT_U8, 4, ishape, NULL, e) != 0 ||
	    fd_stw_add(w, "label", FD_DT_U8, 1, lshape, NULL, e) != 0)
		return -1;
	for (size_t k = 0; k < nmeta; k++)
		if (meta[k][1][0] && fd_stw_meta(w, meta[k][0], meta[k][1], e) != 0)
			return -1;
	return fd_stw_create(w, path, e);
}

static void free_fails(struct fd_pack_made *m)
{
	for (size_t i = 0; i < m->nfail && m->fail_msg; i++)
		free(m->fail_msg[i]);
	free(m->fail_msg);
	free(m->fail_line);
	m->fail_msg = NULL;
	m->fail_line = NULL;
	m->nfail = 0;
}

void fd_pack_made_free(struct fd_pack_made *m)
{
	fd_stw_free(&m->w);
	fd_table_free(&m->tsv);
	free_fails(m);
	memset(m, 0, sizeof *m);
}

int fd_pack_make(struct fd_pack_made *m, const struct fd_pack_input *in,
		 const struct fd_pack_opts *o, const char *out, struct fd_progress *pr,
		 struct fd_err *e)
{
	memset(m, 0, sizeof *m);
	fd_stw_init(&m->w);
	fd_table_init(&m->tsv);
	size_t n = in->n;
	int threads = o->threads > 0 ? o->threads : omp_get_num_procs();
	char sz[32], margin[32], unmatched[32] = "";
	snprintf(sz, sizeof sz, "%d", o->size);
	snprintf(margin, sizeof margin, "%g", o->margin);
	if (o->geom == FD_GEOM_MATCHED)
		snprintf(unmatched, sizeof unmatched, "%zu", in->unmatched);
	const char *meta[][2] = {
		{"fd.kind", "pack"},
		{"fd.size", sz},
		{"fd.geometry", fd_geometry_name(o->geom)},
		{"fd.margin", o->geom == FD_GEOM_FACE ? margin : ""},
		{"fd.unmatched", unmatched},
		{"fd.resample", "pillow-bilinear"},
		{"fd.decode", o->exact ? "exact" : "draft"},
		{"fd.source_sha256", in->sha256},
		{"fd.tool", o->tool ? o->tool : ""},
		{"fd.version", FD_VERSION},
		{"fd.cmdline", o->cmdline ? o->cmdline : ""},
	};
	size_t nmeta = sizeof meta / sizeof meta[0];
	size_t isz = (size_t)o->size * o->size * 3;

	/* pass 1: decode straight into the mapped output */
	struct fd_stw w;
	if (declare(&w, out, n, o->size, meta, nmeta, e) != 0) {
		fd_stw_free(&w);
		return -1;
	}
	uint8_t *img = fd_stw_data(&w, 0);
	char **err = calloc(n, sizeof *err);     /* why row i failed (strdup'ed) */
	unsigned char *st = calloc(n, 1);        /* row i: 0 packed, 1 packed with the centre crop, 2 failed */
	if (!err || !st) {
		free(err);
		free(st);
		fd_stw_free(&w);
		return fd_err_set(e, "out of memory");
	}
#pragma omp parallel num_threads(threads)
	{
		struct worker wk = {NULL, NULL};
		struct fd_err we = {{0}};
		int wbad = fd_decoder_alloc(&wk.dec, &we) != 0 || fd_resize_ctx_alloc(&wk.rs, &we) != 0;
#pragma omp for schedule(dynamic, 4)
		for (size_t i = 0; i < n; i++) {
			struct fd_err ie = {{0}};
			int fell = 0;
			if (wbad || pack_one(o, &wk, in, i, img + i * isz, &fell, &ie) != 0) {
				err[i] = strdup(wbad ? we.msg : ie.msg);
				st[i] = 2;
			} else {
				st[i] = (unsigned char)fell;
			}
			if (pr) {
#pragma omp critical(fd_pack_progress)
				fd_progress_add(pr, 1);
			}
		}
		fd_decoder_free(wk.dec);
		fd_resize_ctx_free(wk.rs);
	}
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		m->nfail += st[i] == 2;
		m->no_face += st[i] == 1;
	}
	m->packed = n - m->nfail;
	if (m->nfail) {
		m->fail_line = malloc(sizeof(size_t) * m->nfail);
		m->fail_msg = calloc(m->nfail, sizeof(char *));
		if (!m->fail_line || !m->fail_msg)
			rc = fd_err_set(e, "out of memory");
		for (size_t i = 0, k = 0; i < n && rc == 0; i++) {
			if (st[i] != 2)
				continue;
			if (!err[i])
				rc = fd_err_set(e, "out of memory");
			m->fail_line[k] = in->row[i] + 2;
			m->fail_msg[k++] = err[i];
			err[i] = NULL;
		}
		if (rc != 0)
			free_fails(m);
	}
	if (rc == 0 && m->packed == 0)
		rc = fd_err_set(e, "cannot read '%s': no image could be decoded (%zu failed)", in->shown,
				m->nfail);

	/* pass 2, only when rows failed: a smaller file with the good rows */
	if (rc == 0 && m->nfail) {
		if (declare(&m->w, out, m->packed, o->size, meta, nmeta, e) != 0) {
			rc = -1;
		} else {
			uint8_t *d = fd_stw_data(&m->w, 0);
			for (size_t i = 0, k = 0; i < n; i++)
				if (st[i] != 2)
					memcpy(d + isz * k++, img + isz * i, isz);
		}
		fd_stw_free(&w);
	} else if (rc == 0) {
		m->w = w;
	} else {
		fd_stw_free(&w);
	}

	/* labels and PACK.tsv */
	if (rc == 0) {
		uint8_t *lab = fd_stw_data(&m->w, 1);
		int rcol = -1;
		if (fd_table_copy_header(&m->tsv, &in->t, e) != 0 ||
		    (rcol = fd_table_add_col(&m->tsv, "row", e)) < 0)
			rc = -1;
		for (size_t i = 0, k = 0; i < n && rc == 0; i++) {
			if (st[i] == 2)
				continue;
			lab[k] = in->label[i];
			if (fd_table_copy_row(&m->tsv, &in->t, in->row[i], e) != 0 ||
			    fd_table_setf(&m->tsv, k, rcol, e, "%zu", k) != 0)
				rc = -1;
			k++;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(err[i]);
	free(err);
	free(st);
	if (rc != 0) {
		/* the failure list stays for the caller's messages */
		fd_stw_free(&m->w);
		fd_table_free(&m->tsv);
	}
	return rc;
}

int fd_pack_commit(struct fd_pack_made *m, const char *out, struct fd_err *e)
{
	char *tsv;
	if (fd_pack_sidecar(out, &tsv, e) != 0) {
		fd_stw_free(&m->w);
		return -1;
	}
	int rc = fd_table_save(&m->tsv, tsv, e);
	if (rc == 0 && (rc = fd_stw_commit(&m->w, e)) != 0)
		unlink(tsv);
	fd_stw_free(&m->w);
	free(tsv);
	return rc;
}

/* ---- reading ---- */

void fd_pack_close(struct fd_pack *p)
{
	fd_table_free(&p->tab);
	fd_st_close(&p->st);
	free(p->tsv);
	memset(p, 0, sizeof *p);
}

static int check(struct fd_pack *p, const char *path, int max_label, struct fd_err *e)
{
	if (fd_pack_sidecar(path, &p->tsv, e) != 0)
		return -1;
	if (fd_st_open(&p->st, path, e) < 0)
		return -1;
	const char *kind = fd_st_meta(&p->st, "fd.kind");
	const struct fd_st_tensor *im = fd_st_find(&p->st, "images"), *lb = fd_st_find(&p->st, "label");
	if (!kind || strcmp(kind, "pack") != 0)
		return fd_err_set(e, "'%s': not a pack (metadata fd.kind is not 'pack')", path);
	if (!im || im->dtype != FD_DT_U8 || im->ndim != 4 || im->shape[3] != 3 ||
	    im->shape[1] != im->shape[2] || im->shape[1] <= 0 || im->shape[1] > 8192)
		return fd_err_set(e, "'%s': 'images' must be u8 [N,S,S,3]", path);
	if (!lb || lb->dtype != FD_DT_U8 || lb->ndim != 1 || lb->shape[0] != im->shape[0])
		return fd_err_set(e, "'%s': 'label' must be u8 [N] with N = %lld", path,
				  (long long)im->shape[0]);
	if (im->shape[0] >= (int64_t)UINT32_MAX)
		return fd_err_set(e, "'%s': too many rows", path);
	p->images = im->data;
	p->labels = lb->data;
	p->n = (size_t)im->shape[0];
	p->S = (int)im->shape[1];
	for (size_t i = 0; i < p->n; i++)
		if (p->labels[i] > max_label)
			return max_label == 1
				       ? fd_err_set(e, "'%s': label of row %zu is %d, not 0 or 1", path, i,
						    p->labels[i])
				       : fd_err_set(e, "'%s': label of row %zu is %d, not in 0..%d", path, i,
						    p->labels[i], max_label);
	if (fd_table_read(&p->tab, p->tsv, e) < 0)
		return -1;
	if (p->tab.nrow != p->n)
		return fd_err_set(e, "'%s' has %zu rows, the pack %zu images", p->tsv, p->tab.nrow, p->n);
	int cr = fd_table_need(&p->tab, "row", e);
	if (cr < 0)
		return -1;
	for (size_t r = 0; r < p->n; r++) {
		char want[32];
		snprintf(want, sizeof want, "%zu", r);
		if (strcmp(fd_table_get(&p->tab, r, cr), want) != 0)
			return fd_err_set(e, "'%s': line %zu: 'row' is '%s', expected %zu", p->tsv, r + 2,
					  fd_table_get(&p->tab, r, cr), r);
	}
	/* the sidecar's label is what preds.tsv and reports carry, the tensor's what
	 * metrics and training use: they must be one */
	int cl = fd_table_need(&p->tab, "label", e);
	if (cl < 0)
		return -1;
	for (size_t r = 0; r < p->n; r++) {
		const char *ls = fd_table_get(&p->tab, r, cl);
		char *end;
		errno = 0;
		long v = strtol(ls, &end, 10);
		if (!*ls || *end || errno || v != p->labels[r])
			return fd_err_set(e, "'%s': line %zu: label is '%s', the pack's 'label' tensor has %d",
					  p->tsv, r + 2, ls, p->labels[r]);
	}
	return 0;
}

int fd_pack_open(struct fd_pack *p, const char *path, int max_label, struct fd_err *e)
{
	memset(p, 0, sizeof *p);
	fd_table_init(&p->tab);
	if (check(p, path, max_label, e) != 0) {
		fd_pack_close(p);
		return -1;
	}
	return 0;
}
