/* fd-facecrop: find the face of every image a TSV names with MTCNN
 * (facenet-pytorch's cascade and weights) and append its box, score and
 * five landmarks to the row. */
#include "cli.h"
#include "core/fd_out.h"
#include "core/fd_root.h"
#include "core/fd_progress.h"
#include "core/fd_table.h"
#include "face/fd_mtcnn.h"
#include "image/fd_resize.h"
#include "io/fd_image.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char synopsis[] =
	"fd-facecrop --root DIR [--margin F] [--min-face PX] [--preview DIR] [-o FILE] [FILE|-]";
static const char help[] =
	"Read TSV rows (column path, relative to DIR; status when present), decode\n"
	"each image at full resolution, detect faces with MTCNN as facenet-pytorch's\n"
	"MTCNN does, and append the chosen face: face_x1 face_y1 face_x2 face_y2\n"
	"face_score, the landmarks face_lx1 face_ly1 .. face_lx5 face_ly5 (left eye,\n"
	"right eye, nose, left and right mouth corner), face_n (faces found) and\n"
	"face_note: ok, noface (face_score 0 and the centred square as the box),\n"
	"skipped (status not ok) or bad:<reason> (the image could not be decoded,\n"
	"or bad:detector: <reason> when detection failed, e.g. out of memory): a\n"
	"failed image fails its row only, and the exit status stays 0 even when\n"
	"every row failed (a warning counts them). Images whose first pyramid level\n"
	"(the image scaled by 12/min-face) exceeds 4194304 pixels are detected on a\n"
	"downscale to that size and the boxes scaled back (doc/facecrop.md).\n"
	"  --root DIR       folder the 'path' column is relative to; a path leaving it\n"
	"                   (.., absolute, a symlink pointing out) is an error\n"
	"  --allow-outside-root  accept such paths\n"
	"  --margin F       preview margin, a fraction of the box's longer side added\n"
	"                   on each side, as fd-pack's (default 0.2)\n"
	"  --min-face PX    smallest face searched for (default 20, facenet-pytorch's)\n"
	"  --preview DIR    write each row's face crop (with margin, 160x160) as\n"
	"                   DIR/<line>.jpg, <line> the row's line in the input\n"
	"  --pick P         score (default): the most confident face; largest: the\n"
	"                   largest box\n"
	"  --models DIR     folder with pnet.pt rnet.pt onet.pt (default: $FD_MODELS_DIR,\n"
	"                   else <exe>/../../models/mtcnn, else <exe>/../share/fd/mtcnn)\n"
	"  --threads N      images in parallel (default: all cores)\n"
	"  --all FILE       also write every face found, one TSV row per face: line\n"
	"                   (of the input row), path, face (0 = first in\n"
	"                   facenet-pytorch's order, score descending), the box,\n"
	"                   score and landmark columns as above\n"
	"  -o FILE          output (default: stdout)\n"
	"  -q               no progress\n"
	"Exit status: 0 ok, 1 bad input or runtime failure, 2 usage.\n";

enum pick { PICK_SCORE, PICK_LARGEST };

struct res {
	int ok;                 /* 1 decoded */
	int w, h, n;
	struct fd_mtcnn_face f; /* the picked face when n > 0 */
	struct fd_mtcnn_face *all; /* every face, with --all */
	char *note;             /* malloc'ed: "skipped" or "bad:<reason>" */
};

struct shared {
	const char *root, *preview;
	int keep_all;
	double margin;
	enum pick pick;
	struct fd_mtcnn_opts opts;
	const struct fd_mtcnn_weights *wts;
	const struct fd_table *t;
	int pcol, scol;
	struct res *res;
	size_t n, next;
	pthread_mutex_t mu;
	struct fd_progress pr;
	char *fatal;            /* first runtime failure (not a bad image) */
};

static int pick_face(const struct fd_mtcnn_face *f, int n, enum pick p)
{
	int best = 0;
	for (int i = 1; i < n; i++) {
		if (p == PICK_SCORE && f[i].score > f[best].score)
			best = i;
		if (p == PICK_LARGEST) {
			float a = (f[i].box[2] - f[i].box[0]) * (f[i].box[3] - f[i].box[1]);
			float b = (f[best].box[2] - f[best].box[0]) * (f[best].box[3] - f[best].box[1]);
			if (a > b)
				best = i;
		}
	}
	return best;
}

static int write_preview(const struct shared *s, size_t r, const struct fd_image *img,
			 const struct res *rs, struct fd_err *e)
{
	float box[4];
	struct fd_image out = {0};
	char path[4096];
	int rc = -1;
	if (rs->n > 0) {
		if (fd_geom_face_box(img->w, img->h, rs->f.box[0], rs->f.box[1], rs->f.box[2],
				     rs->f.box[3], s->margin, box))
			return fd_err_set(e, "preview: empty face box");
	}
	if (fd_image_alloc(&out, 160, 160, e))
		return -1;
	if (fd_geom_square(img->px, img->w, img->h, rs->n > 0 ? FD_GEOM_FACE : FD_GEOM_CENTER, 160,
			   rs->n > 0 ? box : NULL, NULL, out.px, e) == 0) {
		snprintf(path, sizeof path, "%s/%zu.jpg", s->preview, r + 2);
		rc = fd_image_save(&out, path, 90, e);
	}
	fd_image_free(&out);
	return rc;
}

/* rs->note = "bad:" what msg, tabs and newlines blanked (NULL when out of
 * memory: the row then says bad:out of memory). */
static void set_bad(struct res *rs, const char *what, const char *msg)
{
	size_t len = strlen(what) + strlen(msg) + 8;
	rs->note = malloc(len);
	if (!rs->note)
		return;
	snprintf(rs->note, len, "bad:%s%s", what, msg);
	for (char *p = rs->note; *p; p++)
		if (*p == '\t' || *p == '\n' || *p == '\r')
			*p = ' ';
}

static void do_row(struct shared *s, struct fd_mtcnn *m, size_t r)
{
	struct res *rs = &s->res[r];
	struct fd_err e = {{0}};
	if (s->scol >= 0 && strcmp(fd_table_get(s->t, r, s->scol), "ok") != 0) {
		rs->note = strdup("skipped");
		return;
	}
	char path[8192];
	snprintf(path, sizeof path, "%s/%s", s->root, fd_table_get(s->t, r, s->pcol));
	struct fd_image img = {0};
	if (fd_image_load(path, NULL, &img, &e)) {
		set_bad(rs, "", e.msg);
		return;
	}
	struct fd_mtcnn_face *f = NULL;
	int n = 0;
	if (fd_mtcnn_detect(m, img.px, img.w, img.h, &s->opts, &f, &n, &e)) {
		/* one image the detector cannot take (memory, oneDNN) fails its row only */
		fd_image_free(&img);
		set_bad(rs, "detector: ", e.msg);
		return;
	}
	rs->ok = 1, rs->w = img.w, rs->h = img.h;
	rs->n = n;
	if (n)
		rs->f = f[pick_face(f, n, s->pick)];
	if (s->keep_all)
		rs->all = f;
	else
		free(f);
	if (s->preview && write_preview(s, r, &img, rs, &e))
		goto fatal;
	fd_image_free(&img);
	return;
fatal:
	fd_image_free(&img);
	pthread_mutex_lock(&s->mu);
	if (!s->fatal) {
		size_t len = strlen(e.msg) + strlen(path) + 16;
		s->fatal = malloc(len);
		if (s->fatal)
			snprintf(s->fatal, len, "'%s': %s", path, e.msg);
	}
	pthread_mutex_unlock(&s->mu);
}

static void *worker(void *arg)
{
	struct shared *s = arg;
	struct fd_mtcnn m;
	struct fd_err e = {{0}};
	if (fd_mtcnn_init(&m, s->wts, 1, &e)) {
		pthread_mutex_lock(&s->mu);
		if (!s->fatal)
			s->fatal = strdup(e.msg);
		pthread_mutex_unlock(&s->mu);
		return NULL;
	}
	for (;;) {
		pthread_mutex_lock(&s->mu);
		size_t r = s->next++;
		int stop = s->fatal != NULL;
		if (r > 0 && r <= s->n)
			fd_progress_add(&s->pr, 1);
		pthread_mutex_unlock(&s->mu);
		if (stop || r >= s->n)
			break;
		do_row(s, &m, r);
	}
	fd_mtcnn_free(&m);
	return NULL;
}

static int setf(struct fd_table *t, size_t r, int c, struct fd_err *e, double v, int prec)
{
	return fd_table_setf(t, r, c, e, "%.*f", prec, v);
}

int main(int argc, char **argv)
{
	cli_init(argc, argv, "fd-facecrop", synopsis, help);
	struct shared s;
	memset(&s, 0, sizeof s);
	s.margin = 0.2;
	fd_mtcnn_opts_default(&s.opts);
	const char *out = "-", *models = NULL;
	int threads = 0;
	struct fd_err e = {{0}};
	const char *allf = NULL;
	enum { O_ROOT, O_MARGIN, O_MIN_FACE, O_PREVIEW, O_PICK, O_MODELS, O_THREADS, O_ALL, O_OUTSIDE, O_OUT };
	static const struct cli_option opts[] = {
		[O_ROOT] = { "--root", CLI_VALUE },
		[O_MARGIN] = { "--margin", CLI_VALUE },
		[O_MIN_FACE] = { "--min-face", CLI_VALUE },
		[O_PREVIEW] = { "--preview", CLI_VALUE },
		[O_PICK] = { "--pick", CLI_VALUE },
		[O_MODELS] = { "--models", CLI_VALUE },
		[O_THREADS] = { "--threads", CLI_VALUE },
		[O_ALL] = { "--all", CLI_VALUE },
		[O_OUTSIDE] = { "--allow-outside-root", CLI_FLAG },
		[O_OUT] = { "-o", CLI_VALUE },
	};
	int outside = 0;
	const char *in = NULL, *v;
	struct cli_args args;
	int k;
	cli_args_init(&args, argc, argv, opts, CLI_NOPT(opts));
	while ((k = cli_next(&args, &v)) != CLI_DONE) {
		switch (k) {
		case O_ROOT: s.root = v; break;
		case O_MARGIN: s.margin = cli_double("--margin", v, 0, 10); break;
		case O_MIN_FACE: s.opts.min_face = cli_double("--min-face", v, 12, 100000); break;
		case O_PREVIEW: s.preview = v; break;
		case O_PICK:
			if (strcmp(v, "score") == 0)
				s.pick = PICK_SCORE;
			else if (strcmp(v, "largest") == 0)
				s.pick = PICK_LARGEST;
			else
				cli_usage("--pick: '%s' is not one of score, largest", v);
			break;
		case O_MODELS: models = v; break;
		case O_ALL: allf = v; break;
		case O_OUTSIDE: outside = 1; break;
		case O_THREADS: threads = (int)cli_int("--threads", v, 1, 1024); break;
		case O_OUT: out = v; break;
		default:
			if (in)
				cli_usage("expected at most one input FILE");
			in = v;
		}
	}
	if (!s.root)
		cli_usage("--root is required");
	char *found = NULL;
	if (!models) {
		static const char *const rel[] = {"../../models/mtcnn", "../share/fd/mtcnn"};
		char tried[2 * PATH_MAX];
		if (!(found = cli_find_data("FD_MODELS_DIR", "pnet.pt", rel, 2, tried, sizeof tried)))
			cli_die("no MTCNN weights: run 'make models', give --models DIR or set FD_MODELS_DIR "
				"(looked for %s)", tried);
		*strrchr(found, '/') = 0;
		models = found;
	}
	if (threads == 0)
		threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (threads < 1)
		threads = 1;
	if (!in)
		in = "-";
	cli_outputs((const char *[]){in}, 1, (const char *[]){out}, 1);
	struct fd_root root;
	if (fd_root_init(&root, s.root, outside, &e) != 0)
		cli_fail(&e);

	struct fd_mtcnn_weights wts;
	if (fd_mtcnn_weights_load(&wts, models, &e))
		cli_fail(&e);
	struct fd_table t;
	fd_table_init(&t);
	if (fd_table_read(&t, in, &e))
		cli_fail(&e);
	const char *shown = strcmp(in, "-") == 0 ? "standard input" : in;
	s.pcol = fd_table_col(&t, "path");
	if (s.pcol < 0)
		cli_die("cannot read '%s': missing column 'path'", shown);
	s.scol = fd_table_col(&t, "status");
	for (size_t r = 0; r < t.nrow; r++) { /* every row inside the root, before any output */
		char rp[8192];
		if ((s.scol < 0 || strcmp(fd_table_get(&t, r, s.scol), "ok") == 0) &&
		    fd_root_path(&root, fd_table_get(&t, r, s.pcol), rp, sizeof rp, &e) != 0)
			cli_die("cannot read '%s': line %zu: %s", shown, r + 2, e.msg);
	}
	fd_root_free(&root);
	if (s.preview && fd_mkdir_p(s.preview, &e))
		cli_fail(&e);

	static const char *names[] = {"face_x1", "face_y1", "face_x2", "face_y2", "face_score",
				      "face_lx1", "face_ly1", "face_lx2", "face_ly2", "face_lx3",
				      "face_ly3", "face_lx4", "face_ly4", "face_lx5", "face_ly5",
				      "face_n", "face_note"};
	int col[17];
	for (int k = 0; k < 17; k++)
		if ((col[k] = fd_table_add_col(&t, names[k], &e)) < 0)
			cli_fail(&e);

	s.keep_all = allf != NULL;
	s.t = &t;
	s.wts = &wts;
	s.n = t.nrow;
	s.res = calloc(s.n ? s.n : 1, sizeof *s.res);
	if (!s.res)
		cli_die("out of memory");
	pthread_mutex_init(&s.mu, NULL);
	fd_progress_init(&s.pr, cli_quiet ? NULL : stderr, "fd-facecrop", s.n);
	if ((size_t)threads > s.n)
		threads = s.n ? (int)s.n : 1;
	pthread_t *th = calloc((size_t)threads, sizeof *th);
	if (!th)
		cli_die("out of memory");
	for (int i = 0; i < threads; i++)
		if (pthread_create(&th[i], NULL, worker, &s))
			cli_die("cannot start thread %d", i);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	fd_progress_end(&s.pr);
	if (s.fatal)
		cli_die("%s", s.fatal);

	struct fd_table at;
	fd_table_init(&at);
	if (allf) {
		static const char *an[] = {"line", "path", "face"};
		for (int k = 0; k < 3; k++)
			if (fd_table_add_col(&at, an[k], &e) < 0)
				cli_fail(&e);
		for (int k = 0; k < 15; k++)
			if (fd_table_add_col(&at, names[k], &e) < 0)
				cli_fail(&e);
		for (size_t r = 0; r < s.n; r++)
			for (int i = 0; i < s.res[r].n; i++) {
				const struct fd_mtcnn_face *f = &s.res[r].all[i];
				size_t ar = fd_table_add_row(&at);
				int err = ar == (size_t)-1;
				if (err)
					cli_die("out of memory");
				err |= fd_table_setf(&at, ar, 0, &e, "%zu", r + 2);
				err |= fd_table_set(&at, ar, 1, fd_table_get(&t, r, s.pcol), &e);
				err |= fd_table_setf(&at, ar, 2, &e, "%d", i);
				for (int k = 0; k < 4; k++)
					err |= setf(&at, ar, 3 + k, &e, f->box[k], 4);
				err |= setf(&at, ar, 7, &e, f->score, 8);
				for (int p = 0; p < 5; p++) {
					err |= setf(&at, ar, 8 + 2 * p, &e, f->lm[p][0], 4);
					err |= setf(&at, ar, 9 + 2 * p, &e, f->lm[p][1], 4);
				}
				if (err)
					cli_fail(&e);
			}
	}

	size_t nface = 0, nnone = 0, nbad = 0, nskip = 0;
	for (size_t r = 0; r < s.n; r++) {
		struct res *rs = &s.res[r];
		int err = 0;
		for (int k = 0; k < 17; k++)
			err |= fd_table_set(&t, r, col[k], "", &e);
		if (rs->ok && rs->n > 0) {
			for (int k = 0; k < 4; k++)
				err |= setf(&t, r, col[k], &e, rs->f.box[k], 3);
			err |= setf(&t, r, col[4], &e, rs->f.score, 6);
			for (int p = 0; p < 5; p++) {
				err |= setf(&t, r, col[5 + 2 * p], &e, rs->f.lm[p][0], 3);
				err |= setf(&t, r, col[6 + 2 * p], &e, rs->f.lm[p][1], 3);
			}
			err |= fd_table_set(&t, r, col[16], "ok", &e);
			nface++;
		} else if (rs->ok) {
			/* no face: the centred square, as fd-pack's centre geometry */
			int side = rs->w < rs->h ? rs->w : rs->h;
			double x1 = (rs->w - side) / 2.0, y1 = (rs->h - side) / 2.0;
			err |= setf(&t, r, col[0], &e, x1, 3);
			err |= setf(&t, r, col[1], &e, y1, 3);
			err |= setf(&t, r, col[2], &e, x1 + side, 3);
			err |= setf(&t, r, col[3], &e, y1 + side, 3);
			err |= fd_table_set(&t, r, col[4], "0", &e);
			err |= fd_table_set(&t, r, col[16], "noface", &e);
			nnone++;
		} else {
			err |= fd_table_set(&t, r, col[4], "0", &e);
			err |= fd_table_set(&t, r, col[16], rs->note ? rs->note : "bad:out of memory", &e);
			if (rs->note && strcmp(rs->note, "skipped") == 0)
				nskip++;
			else
				nbad++;
		}
		err |= fd_table_setf(&t, r, col[15], &e, "%d", rs->ok ? rs->n : 0);
		if (err)
			cli_fail(&e);
		free(rs->note);
		free(rs->all);
	}
	/* the main output last: a failure before it leaves no main output */
	if (allf && fd_table_save(&at, allf, &e))
		cli_fail(&e);
	if (fd_table_save(&t, out, &e))
		cli_fail(&e);
	fd_table_free(&at);
	cli_info("%zu rows: %zu with a face, %zu without (centre box), %zu bad, %zu skipped",
		 s.n, nface, nnone, nbad, nskip);
	if (nbad)
		cli_warn("%zu images could not be decoded or detected (face_note bad:...)", nbad);
	free(s.res);
	free(th);
	fd_table_free(&t);
	fd_mtcnn_weights_free(&wts);
	free(found);
	return 0;
}
