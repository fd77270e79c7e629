/* fd-pack: decode the images a TSV names, make each an S x S RGB square
 * (centre crop, letterbox, stretch or face box), and write them as one u8
 * tensor, PACK.safetensors, with PACK.tsv describing its rows. */
#include "cli.h"
#include "core/fd_out.h"
#include "core/fd_root.h"
#include "core/fd_progress.h"
#include "core/fd_sha256.h"
#include "core/fd_table.h"
#include "core/fd_version.h"
#include "image/fd_resize.h"
#include "io/fd_image.h"
#include "io/fd_safetensors.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char synopsis[] =
	"fd-pack --root DIR --size S [--geometry center|letterbox|resize|face] [--only COL=V[,V..]]... -o PACK.safetensors [FILE|-]";
static const char help[] =
	"Read TSV rows (columns path, label, status; from FILE or stdin), decode each\n"
	"image under DIR, make it an S x S RGB square and write PACK.safetensors\n"
	"(images u8 [N,S,S,3], label u8 [N]) and PACK.tsv beside it (the kept rows,\n"
	"every column in order, plus 'row', the image's index in the pack).\n"
	"Rows whose status is not 'ok' are skipped; images that fail to decode are\n"
	"skipped with a warning. Resizing is Pillow's antialiased bilinear.\n"
	"  --root DIR       folder the 'path' column is relative to; a path leaving it\n"
	"                   (.., absolute, a symlink pointing out) is an error\n"
	"  --allow-outside-root  accept such paths\n"
	"  --size S         output side in pixels (1..4096)\n"
	"  --geometry G     center (default): largest centred square; letterbox: whole\n"
	"                   image on black, centred; resize: stretch; face: the face box\n"
	"                   (face_x1 face_y1 face_x2 face_y2 face_score, from\n"
	"                   fd-facecrop) plus --margin, squared; no face -> center\n"
	"  --margin F       face margin, fraction of the box's longer side added on\n"
	"                   each side (default 0.2)\n"
	"  --only COL=V,..  keep rows whose COL is one of the values (repeatable; all\n"
	"                   must hold)\n"
	"  --exact          decode JPEGs at full size (default: DCT-domain downscale to\n"
	"                   at least what the output needs, as Pillow's Image.draft)\n"
	"  --threads N      decoding threads (default: all cores)\n"
	"  -o FILE          output, must end in .safetensors\n"
	"  -q               no progress\n"
	"Exit status: 0 ok, 1 bad input or no image packed, 2 usage.\n";

struct job {
	const char *root;
	int S;
	enum fd_geometry geom;
	double margin;
	int exact;
	int face_cols[5]; /* x1 y1 x2 y2 score */
};

static int read_all(const char *path, uint8_t **buf, size_t *n, struct fd_err *e)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	const char *shown = f == stdin ? "standard input" : path;
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

/* The face box of row r in stored-image pixels; 0 when the row has no face. */
static int row_face(const struct fd_table *t, size_t r, const struct job *j, double f[4])
{
	const char *sc = fd_table_get(t, r, j->face_cols[4]);
	char *end;
	double score = strtod(sc, &end);
	if (!*sc || *end || !(score > 0))
		return 0;
	for (int k = 0; k < 4; k++) {
		const char *s = fd_table_get(t, r, j->face_cols[k]);
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

/* Decode one image and write its S x S square at dst. *fell_back is set when
 * the face geometry had no usable face and centre was used. */
static int pack_one(const struct job *j, struct worker *wk, const struct fd_table *t, size_t r,
		    int pcol, uint8_t *dst, int *fell_back, struct fd_err *e)
{
	char path[4096];
	const char *rel = fd_table_get(t, r, pcol);
	if ((size_t)snprintf(path, sizeof path, "%s/%s", j->root, rel) >= sizeof path)
		return fd_err_set(e, "path too long: '%s'", rel);
	const uint8_t *buf;
	size_t n;
	if (fd_decoder_read(wk->dec, path, &buf, &n, e) != 0)
		return -1;
	struct fd_image_info info;
	struct fd_decode_opts o = {0, 0, 0};
	struct fd_image img;
	enum fd_geometry g = j->geom;
	double face[4];
	float fbox[4];
	int rc = -1;
	if (fd_image_probe_mem(buf, n, &info, e) != 0)
		goto out;
	if (g == FD_GEOM_FACE) {
		if (!row_face(t, r, j, face) ||
		    fd_geom_face_box(info.w, info.h, face[0], face[1], face[2], face[3], j->margin,
				     fbox) != 0) {
			g = FD_GEOM_CENTER;
			*fell_back = 1;
		}
	}
	if (!j->exact) {
		if (g == FD_GEOM_FACE) {
			/* the largest DCT scale that keeps the face square >= S, asked
			 * for the way Image.draft understands it */
			double side = fbox[2] - fbox[0];
			int s = 8;
			while (s > 1 && side / s < j->S)
				s /= 2;
			if (s > 1 && info.w / s > 0 && info.h / s > 0)
				o.min_w = info.w / s, o.min_h = info.h / s;
		} else {
			o.min_w = o.min_h = j->S;
		}
	}
	if (fd_decoder_decode(wk->dec, buf, n, &o, &img, e) != 0)
		goto out;
	if (g == FD_GEOM_FACE) {
		double s = img.scale;
		if (fd_geom_face_box(img.w, img.h, face[0] / s, face[1] / s, face[2] / s, face[3] / s,
				     j->margin, fbox) != 0) {
			fd_err_set(e, "empty face box");
			goto out;
		}
	}
	rc = fd_geom_square_ctx(wk->rs, img.px, img.w, img.h, g, j->S, fbox, NULL, dst, e);
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

int main(int argc, char **argv)
{
	cli_init(argc, argv, "fd-pack", synopsis, help);
	struct job j = {NULL, 0, FD_GEOM_CENTER, 0.2, 0, {0}};
	const char *out = NULL;
	int threads = 0, nonly = 0;
	struct fd_only only[64];
	struct fd_err e = {{0}};
	enum { O_ROOT = 1000, O_SIZE, O_GEOM, O_ONLY, O_MARGIN, O_EXACT, O_THREADS, O_OUTSIDE };
	int outside = 0;
	static const struct option lo[] = {
		{"root", required_argument, 0, O_ROOT},	  {"size", required_argument, 0, O_SIZE},
		{"geometry", required_argument, 0, O_GEOM}, {"only", required_argument, 0, O_ONLY},
		{"margin", required_argument, 0, O_MARGIN}, {"exact", no_argument, 0, O_EXACT},
		{"threads", required_argument, 0, O_THREADS}, {"allow-outside-root", no_argument, 0, O_OUTSIDE},
		{0, 0, 0, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "qo:", lo, NULL)) != -1) {
		switch (c) {
		case O_ROOT: j.root = optarg; break;
		case O_SIZE: j.S = (int)cli_int("--size", optarg, 1, 4096); break;
		case O_GEOM:
			if (fd_geometry_parse(optarg, &j.geom) != 0)
				cli_usage("--geometry: '%s' is not one of center, letterbox, resize, face", optarg);
			break;
		case O_ONLY:
			if (nonly == 64)
				cli_usage("--only: at most 64 filters");
			if (fd_only_parse(&only[nonly], optarg, &e) != 0)
				cli_usage("--only: %s", e.msg);
			nonly++;
			break;
		case O_MARGIN: j.margin = cli_double("--margin", optarg, 0, 10); break;
		case O_EXACT: j.exact = 1; break;
		case O_OUTSIDE: outside = 1; break;
		case O_THREADS: threads = (int)cli_int("--threads", optarg, 1, 1024); break;
		case 'o': out = optarg; break;
		case 'q': cli_quiet = 1; break;
		default: cli_usage("unknown option");
		}
	}
	if (!j.root)
		cli_usage("--root is required");
	if (!j.S)
		cli_usage("--size is required");
	if (!out)
		cli_usage("-o is required");
	size_t olen = strlen(out);
	if (olen < 12 || strcmp(out + olen - 12, ".safetensors") != 0 || out[olen - 13] == '/')
		cli_usage("-o: '%s' must be a file name ending in .safetensors", out);
	if (optind < argc - 1)
		cli_usage("expected at most one input FILE");
	const char *in = optind < argc ? argv[optind] : "-";
	char *tsv_out = strdup(out);
	strcpy(tsv_out + olen - 12, ".tsv");
	cli_outputs((const char *[]){in}, 1, (const char *[]){out, tsv_out}, 2);
	struct fd_root root;
	if (fd_root_init(&root, j.root, outside, &e) != 0)
		cli_fail(&e);
	if (threads == 0)
		threads = omp_get_num_procs();

	/* input: hash the exact bytes (provenance), then parse */
	uint8_t *raw;
	size_t nraw;
	if (read_all(in, &raw, &nraw, &e) != 0)
		cli_fail(&e);
	struct fd_sha256 h;
	char hex[65];
	fd_sha256_init(&h);
	fd_sha256_update(&h, raw, nraw);
	fd_sha256_hex(&h, hex);
	struct fd_table t;
	fd_table_init(&t);
	const char *shown = strcmp(in, "-") == 0 ? "standard input" : in;
	if (fd_table_parse(&t, (const char *)raw, nraw, in, &e) != 0)
		cli_fail(&e);
	free(raw);
	int pcol = fd_table_need(&t, "path", &e), lcol = pcol < 0 ? -1 : fd_table_need(&t, "label", &e);
	if (pcol < 0 || lcol < 0)
		cli_die("cannot read '%s': missing column '%s'", shown, pcol < 0 ? "path" : "label");
	int scol = fd_table_col(&t, "status");
	if (j.geom == FD_GEOM_FACE) {
		static const char *fc[5] = {"face_x1", "face_y1", "face_x2", "face_y2", "face_score"};
		for (int k = 0; k < 5; k++)
			if ((j.face_cols[k] = fd_table_col(&t, fc[k])) < 0)
				cli_die("cannot read '%s': missing column '%s' (needed by --geometry face; run fd-facecrop)",
					shown, fc[k]);
	}
	if (fd_only_bind(only, nonly, &t, &e) != 0)
		cli_die("cannot read '%s': %s", shown, e.msg);

	/* rows to pack */
	size_t *rows = malloc(sizeof(size_t) * (t.nrow ? t.nrow : 1));
	uint8_t *labels = malloc(t.nrow ? t.nrow : 1);
	size_t n = 0, not_ok = 0, filtered = 0;
	for (size_t r = 0; r < t.nrow; r++) {
		if (scol >= 0 && strcmp(fd_table_get(&t, r, scol), "ok") != 0) {
			not_ok++;
			continue;
		}
		if (!fd_only_match(only, nonly, &t, r)) {
			filtered++;
			continue;
		}
		const char *ls = fd_table_get(&t, r, lcol);
		char *end;
		errno = 0;
		long v = strtol(ls, &end, 10);
		if (!*ls || *end || errno || v < 0 || v > 255)
			cli_die("cannot read '%s': line %zu: label '%s' is not an integer in 0..255", shown,
				r + 2, ls);
		char rp[4096];
		if (fd_root_path(&root, fd_table_get(&t, r, pcol), rp, sizeof rp, &e) != 0)
			cli_die("cannot read '%s': line %zu: %s", shown, r + 2, e.msg);
		labels[n] = (uint8_t)v;
		rows[n++] = r;
	}
	if (not_ok)
		cli_info("skipping %zu rows whose status is not 'ok'", not_ok);
	if (n == 0)
		cli_die("cannot read '%s': no rows to pack (%zu rows, %zu not ok, %zu filtered out)",
			shown, t.nrow, not_ok, filtered);

	/* pass 1: decode straight into the mapped output */
	char sz[32], margin[32];
	snprintf(sz, sizeof sz, "%d", j.S);
	snprintf(margin, sizeof margin, "%g", j.margin);
	const char *meta[][2] = {
		{"fd.kind", "pack"},
		{"fd.size", sz},
		{"fd.geometry", fd_geometry_name(j.geom)},
		{"fd.margin", j.geom == FD_GEOM_FACE ? margin : ""},
		{"fd.resample", "pillow-bilinear"},
		{"fd.decode", j.exact ? "exact" : "draft"},
		{"fd.source_sha256", hex},
		{"fd.tool", "fd-pack"},
		{"fd.version", FD_VERSION},
		{"fd.cmdline", cli_cmdline()},
	};
	size_t nmeta = sizeof meta / sizeof meta[0];
	size_t isz = (size_t)j.S * j.S * 3;
	struct fd_stw w;
	if (declare(&w, out, n, j.S, meta, nmeta, &e) != 0) {
		fd_stw_free(&w);
		cli_fail(&e);
	}
	uint8_t *img = fd_stw_data(&w, 0);
	char **err = calloc(n, sizeof *err);
	unsigned char *fb = calloc(n, 1);
	struct fd_progress pr;
	fd_progress_init(&pr, cli_quiet ? NULL : stderr, "fd-pack", n);
#pragma omp parallel num_threads(threads)
	{
		struct worker wk = {NULL, NULL};
		struct fd_err we = {{0}};
		int wbad = fd_decoder_alloc(&wk.dec, &we) != 0 || fd_resize_ctx_alloc(&wk.rs, &we) != 0;
#pragma omp for schedule(dynamic, 4)
		for (size_t i = 0; i < n; i++) {
			struct fd_err ie = {{0}};
			int fell = 0;
			if (wbad)
				err[i] = strdup(we.msg);
			else if (pack_one(&j, &wk, &t, rows[i], pcol, img + i * isz, &fell, &ie) != 0)
				err[i] = strdup(ie.msg);
			fb[i] = (unsigned char)fell;
#pragma omp critical(fd_pack_progress)
			fd_progress_add(&pr, 1);
		}
		fd_decoder_free(wk.dec);
		fd_resize_ctx_free(wk.rs);
	}
	fd_progress_end(&pr);
	size_t nbad = 0, nfell = 0;
	for (size_t i = 0; i < n; i++) {
		if (err[i]) {
			cli_warn("skipping line %zu: %s", rows[i] + 2, err[i]);
			nbad++;
		} else if (fb[i]) {
			nfell++;
		}
	}
	if (nfell)
		cli_info("%zu rows have no face: packed with the centre crop", nfell);
	size_t nk = n - nbad;
	if (nk == 0) {
		fd_stw_free(&w);
		cli_die("cannot read '%s': no image could be decoded (%zu failed)", shown, nbad);
	}

	/* pass 2, only when rows failed: a smaller file with the good rows */
	struct fd_stw w2, *fin = &w;
	if (nbad) {
		if (declare(&w2, out, nk, j.S, meta, nmeta, &e) != 0) {
			fd_stw_free(&w2);
			fd_stw_free(&w);
			cli_fail(&e);
		}
		uint8_t *d = fd_stw_data(&w2, 0);
		for (size_t i = 0, k = 0; i < n; i++)
			if (!err[i])
				memcpy(d + isz * k++, img + isz * i, isz);
		fd_stw_free(&w);
		fin = &w2;
	}
	uint8_t *lab = fd_stw_data(fin, 1);
	struct fd_table pt;
	if (fd_table_copy_header(&pt, &t, &e) != 0)
		goto fail;
	int rcol = fd_table_add_col(&pt, "row", &e);
	if (rcol < 0)
		goto fail;
	for (size_t i = 0, k = 0; i < n; i++) {
		if (err[i])
			continue;
		lab[k] = labels[i];
		if (fd_table_copy_row(&pt, &t, rows[i], &e) != 0 ||
		    fd_table_setf(&pt, k, rcol, &e, "%zu", k) != 0)
			goto fail;
		k++;
	}
	if (fd_table_save(&pt, tsv_out, &e) != 0)
		goto fail;
	if (fd_stw_commit(fin, &e) != 0) {
		unlink(tsv_out);
		goto fail;
	}
	fd_stw_free(fin);
	cli_info("packed %zu images of %dx%d (%zu failed to decode, %zu not ok, %zu filtered out) into '%s'",
		 nk, j.S, j.S, nbad, not_ok, filtered, out);
	fd_table_free(&pt);
	fd_table_free(&t);
	for (size_t i = 0; i < n; i++)
		free(err[i]);
	free(err);
	free(fb);
	free(rows);
	free(labels);
	free(tsv_out);
	fd_root_free(&root);
	fd_only_free(only, nonly);
	return 0;
fail:
	fd_stw_free(fin);
	cli_fail(&e);
}
