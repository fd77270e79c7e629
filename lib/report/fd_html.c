/* fd_html: the report's HTML pages (doc/report.md, "HTML pages"). */
#include "report/fd_html.h"
#include "core/fd_config.h"
#include "core/fd_out.h"
#include "core/fd_table.h"
#include "core/fd_version.h"
#include "data/fd_pack.h"
#include "eval/fd_metrics.h"
#include "eval/fd_stats.h"
#include "io/fd_image.h"
#include "report/fd_final.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const FD_HTML_PAGES[7] = {"01-eda", "02-preprocessing", "03-phase1", "04-phase2",
				      "05-phase3", "06-phase4", "07-gradcam"};
const char *const FD_HTML_TITLES[7] = {
	"01 Exploratory data analysis", "02 Preprocessing", "03 Phase 1: baselines",
	"04 Phase 2: preprocessing experiments", "05 Phase 3: architectures",
	"06 Phase 4: data scaling and final models", "07 Grad-CAM"};

int fd_html_page(const char *name)
{
	for (int i = 0; i < 7; i++)
		if (!strcmp(name, FD_HTML_PAGES[i]))
			return i;
	return -1;
}

static const char CSS[] =
	"body{font-family:'DejaVu Sans','Liberation Sans',Arial,sans-serif;max-width:1340px;"
	"margin:2em auto;padding:0 1em;color:#222}h1{font-size:1.6em}h2{font-size:1.25em;"
	"border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}"
	"figure{margin:1em 0;display:inline-block;vertical-align:top}figcaption{font-size:.9em;"
	"color:#555;max-width:640px}table{border-collapse:collapse;font-size:.85em;margin:.5em 0}"
	"td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f0f0f0}"
	"td:first-child,th:first-child{text-align:left}a{color:#1f77b4}.none{color:#999}.prov{font-size:.8em;color:#666}";

/* Write text atomically to path. */
static int write_file(const char *path, const char *text, size_t n, struct fd_err *e)
{
	struct fd_out o = { 0 };
	if (fd_out_open(&o, path, e) < 0)
		return -1;
	if (fwrite(text, 1, n, o.f) != n) {
		fd_out_abort(&o);
		return fd_err_set(e, "cannot write '%s'", path);
	}
	return fd_out_commit(&o, e);
}

static char *join(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s%s%s", a, b, c);
	return s;
}

int fd_html_begin(struct fd_html *h, const char *dir, const char *title, const char *prov,
		  struct fd_err *e)
{
	memset(h, 0, sizeof *h);
	char *fd = join(dir, "/figures", "");
	if (!fd || !(h->dir = strdup(dir))) {
		free(fd);
		free(h->dir);
		return fd_err_set(e, "out of memory");
	}
	int rc = fd_mkdir_p(fd, e);
	free(fd);
	if (rc < 0) {
		free(h->dir);
		return -1;
	}
	fd_sbuf_printf(&h->b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
			      "<meta name=\"generator\" content=\"fd %s\">\n"
			      "<link rel=\"icon\" href=\"data:,\">\n<title>",
		       FD_VERSION);
	fd_sbuf_esc(&h->b, title);
	fd_sbuf_printf(&h->b, "</title>\n<style>%s</style>\n</head>\n<body>\n"
			      "<p><a href=\"index.html\">fd report</a></p>\n<h1>",
		       CSS);
	fd_sbuf_esc(&h->b, title);
	fd_sbuf_printf(&h->b, "</h1>\n");
	if (prov) {
		fd_sbuf_printf(&h->b, "<p class=\"prov\">Made by <code>");
		fd_sbuf_esc(&h->b, prov);
		fd_sbuf_printf(&h->b, "</code> (fd %s).</p>\n", FD_VERSION);
	}
	return 0;
}

void fd_html_h2(struct fd_html *h, const char *text)
{
	fd_sbuf_printf(&h->b, "<h2>");
	fd_sbuf_esc(&h->b, text);
	fd_sbuf_printf(&h->b, "</h2>\n");
}

void fd_html_p(struct fd_html *h, const char *text)
{
	fd_sbuf_printf(&h->b, "<p>");
	fd_sbuf_esc(&h->b, text);
	fd_sbuf_printf(&h->b, "</p>\n");
}

int fd_html_figure(struct fd_html *h, const char *id, char *svg, const char *caption,
		   struct fd_err *e)
{
	if (!svg)
		return -1;
	char *path = join(h->dir, "/figures/", id), *p2 = path ? join(path, ".svg", "") : NULL;
	free(path);
	if (!p2) {
		free(svg);
		return fd_err_set(e, "out of memory");
	}
	size_t n = strlen(svg);
	int rc = write_file(p2, svg, n, e);
	free(p2);
	if (rc == 0) {
		fd_sbuf_printf(&h->b, "<figure>\n");
		fd_sbuf_printf(&h->b, "%s", svg);
		fd_sbuf_printf(&h->b, "<figcaption><a href=\"figures/");
		fd_sbuf_esc(&h->b, id);
		fd_sbuf_printf(&h->b, ".svg\">%s.svg</a>: ", id);
		fd_sbuf_esc(&h->b, caption);
		fd_sbuf_printf(&h->b, "</figcaption>\n</figure>\n");
		h->nfig++;
	}
	free(svg);
	return rc;
}

int fd_html_table_tsv(struct fd_html *h, const char *path, const char *caption, struct fd_err *e)
{
	struct fd_table t;
	fd_table_init(&t);
	if (fd_table_read(&t, path, e) < 0)
		return -1;
	fd_html_h2(h, caption);
	fd_sbuf_printf(&h->b, "<table>\n<tr>");
	for (int c = 0; c < t.ncol; c++) {
		fd_sbuf_printf(&h->b, "<th>");
		fd_sbuf_esc(&h->b, t.name[c]);
		fd_sbuf_printf(&h->b, "</th>");
	}
	fd_sbuf_printf(&h->b, "</tr>\n");
	for (size_t r = 0; r < t.nrow; r++) {
		fd_sbuf_printf(&h->b, "<tr>");
		for (int c = 0; c < t.ncol; c++) {
			fd_sbuf_printf(&h->b, "<td>");
			fd_sbuf_esc(&h->b, fd_table_get(&t, r, c));
			fd_sbuf_printf(&h->b, "</td>");
		}
		fd_sbuf_printf(&h->b, "</tr>\n");
	}
	fd_sbuf_printf(&h->b, "</table>\n");
	fd_table_free(&t);
	return 0;
}

void fd_html_abort(struct fd_html *h)
{
	free(h->b.s);
	free(h->dir);
	memset(h, 0, sizeof *h);
}

int fd_html_end(struct fd_html *h, const char *name, struct fd_err *e)
{
	fd_sbuf_printf(&h->b, "</body>\n</html>\n");
	int rc;
	char *path = join(h->dir, "/", name), *p2 = path ? join(path, ".html", "") : NULL;
	free(path);
	if (h->b.oom || !p2)
		rc = fd_err_set(e, "out of memory");
	else
		rc = write_file(p2, h->b.s, h->b.n, e);
	free(p2);
	fd_html_abort(h);
	return rc;
}

int fd_html_index(const char *dir, const char *prov, struct fd_err *e)
{
	struct fd_html h;
	if (fd_html_begin(&h, dir, "fd report", prov, e) < 0)
		return -1;
	fd_sbuf_printf(&h.b, "<ul>\n");
	for (int i = 0; i < 7; i++) {
		char *p = join(dir, "/", FD_HTML_PAGES[i]), *p2 = p ? join(p, ".html", "") : NULL;
		free(p);
		if (!p2) {
			fd_html_abort(&h);
			return fd_err_set(e, "out of memory");
		}
		struct stat st;
		if (stat(p2, &st) == 0)
			fd_sbuf_printf(&h.b, "<li><a href=\"%s.html\">%s</a></li>\n", FD_HTML_PAGES[i],
				       FD_HTML_TITLES[i]);
		else
			fd_sbuf_printf(&h.b, "<li class=\"none\">%s (not made)</li>\n", FD_HTML_TITLES[i]);
		free(p2);
	}
	fd_sbuf_printf(&h.b, "</ul>\n");
	return fd_html_end(&h, "index", e);
}

/* ---- page 01: EDA ---- */

/* Distinct values of column c, in order of first appearance (max cap). */
static int distinct(const struct fd_table *t, int c, const char **out, int cap)
{
	int n = 0;
	for (size_t r = 0; r < t->nrow; r++) {
		const char *v = fd_table_get(t, r, c);
		int k = 0;
		while (k < n && strcmp(out[k], v))
			k++;
		if (k == n && n < cap)
			out[n++] = v;
	}
	return n;
}

static int num(const struct fd_table *t, size_t r, int c, double *v, struct fd_err *e)
{
	char *end;
	const char *s = fd_table_get(t, r, c);
	*v = strtod(s, &end);
	if (!*s || *end)
		return fd_err_set(e, "'%s': line %zu: '%s' is not a number ('%s')", t->src, r + 2, s,
				  t->name[c]);
	return 0;
}

#define MAXSRC 32
#define NB 20

/* A histogram figure of column values per source: val[src][i]. */
static char *hist_fig(const char *id, const char *title, const char *xlabel, double *const *val,
		      const size_t *n, const char *const *src, int ns, struct fd_err *e)
{
	double lo = INFINITY, hi = -INFINITY;
	for (int s = 0; s < ns; s++)
		for (size_t i = 0; i < n[s]; i++)
			if (isfinite(val[s][i])) {
				lo = fmin(lo, val[s][i]);
				hi = fmax(hi, val[s][i]);
			}
	if (!(lo <= hi)) {
		fd_err_set(e, "figure '%s': no values", id);
		return NULL;
	}
	if (hi == lo)
		hi = lo + 1;
	double edge[MAXSRC][NB + 1], cnt[MAXSRC][NB];
	struct fd_fig_series se[MAXSRC];
	for (int s = 0; s < ns; s++) {
		fd_fig_hist(val[s], n[s], lo, hi, NB, edge[s], cnt[s]);
		se[s] = (struct fd_fig_series){ src[s], FD_FIG_STEP, edge[s], cnt[s], NULL, NB, 0, -1 };
	}
	struct fd_fig f = { id, title, xlabel, "images", NAN, NAN, 0, NAN, NULL, 0, se, ns };
	return fd_fig_svg(&f, e);
}

int fd_page_eda(const char *dir, const char *index_tsv, const char *pack, const char *prov,
		struct fd_err *e)
{
	struct fd_table t;
	fd_table_init(&t);
	if (fd_table_read(&t, index_tsv, e) < 0)
		return -1;
	int cs = fd_table_need(&t, "source", e), cw = cs < 0 ? -1 : fd_table_need(&t, "width", e),
	    ch = cw < 0 ? -1 : fd_table_need(&t, "height", e), cb = ch < 0 ? -1 : fd_table_need(&t, "bytes", e),
	    cst = cb < 0 ? -1 : fd_table_need(&t, "status", e);
	if (cst < 0) {
		fd_table_free(&t);
		return -1;
	}
	static const char *const STAT[6] = {"mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b"};
	int cc[6], stats = 1;
	for (int k = 0; k < 6; k++)
		if ((cc[k] = fd_table_col(&t, STAT[k])) < 0)
			stats = 0;
	const char *src[MAXSRC];
	int ns = distinct(&t, cs, src, MAXSRC);
	double *v[4 + 6][MAXSRC] = { { 0 } };
	size_t n[MAXSRC] = { 0 };
	int rc = -1;
	for (int s = 0; s < ns; s++)
		for (int k = 0; k < 10; k++)
			if (!(v[k][s] = malloc((t.nrow + 1) * sizeof(double)))) {
				fd_err_set(e, "out of memory");
				goto out;
			}
	for (size_t r = 0; r < t.nrow; r++) {
		if (strcmp(fd_table_get(&t, r, cst), "ok"))
			continue;
		int s = 0;
		while (s < ns && strcmp(src[s], fd_table_get(&t, r, cs)))
			s++;
		if (s == ns)
			continue; /* beyond MAXSRC sources */
		double w, h, b;
		if (num(&t, r, cw, &w, e) < 0 || num(&t, r, ch, &h, e) < 0 || num(&t, r, cb, &b, e) < 0)
			goto out;
		v[0][s][n[s]] = w;
		v[1][s][n[s]] = h;
		v[2][s][n[s]] = h > 0 ? w / h : NAN;
		v[3][s][n[s]] = b / 1024;
		for (int k = 0; stats && k < 6; k++)
			if (num(&t, r, cc[k], &v[4 + k][s][n[s]], e) < 0)
				goto out;
		n[s]++;
	}
	struct fd_html h;
	if (fd_html_begin(&h, dir, FD_HTML_TITLES[0], prov, e) < 0)
		goto out;
	char line[256];
	snprintf(line, sizeof line, "%zu files in %d sources, from %s.", t.nrow, ns, index_tsv);
	fd_html_p(&h, line);
	fd_sbuf_printf(&h.b, "<table>\n<tr><th>source</th><th>ok images</th><th>width mean</th>"
			     "<th>height mean</th><th>KiB mean</th></tr>\n");
	for (int s = 0; s < ns; s++) {
		fd_sbuf_printf(&h.b, "<tr><td>");
		fd_sbuf_esc(&h.b, src[s]);
		fd_sbuf_printf(&h.b, "</td><td>%zu</td><td>%.1f</td><td>%.1f</td><td>%.1f</td></tr>\n", n[s],
			       fd_mean(v[0][s], n[s]), fd_mean(v[1][s], n[s]), fd_mean(v[3][s], n[s]));
	}
	fd_sbuf_printf(&h.b, "</table>\n");
	fd_html_h2(&h, "Image sizes");
	if (fd_html_figure(&h, "01-width", hist_fig("01-width", "Image width per source", "width (px)", v[0], n, src, ns, e),
			   "histogram of image widths per source (20 bins).", e) < 0 ||
	    fd_html_figure(&h, "01-aspect", hist_fig("01-aspect", "Aspect ratio per source", "width / height", v[2], n, src, ns, e),
			   "histogram of aspect ratios per source.", e) < 0 ||
	    fd_html_figure(&h, "01-bytes", hist_fig("01-bytes", "File size per source", "file size (KiB)", v[3], n, src, ns, e),
			   "histogram of file sizes per source.", e) < 0)
		goto fail;
	fd_html_h2(&h, "Colour statistics");
	if (!stats) {
		fd_html_p(&h, "The index has no colour statistics (run fd-index with --stats).");
	} else {
		static const char *const CH[3] = {"R", "G", "B"};
		double x[3][MAXSRC], y[2][3][MAXSRC], er[2][3][MAXSRC];
		struct fd_fig_series se[2][3];
		for (int q = 0; q < 2; q++)
			for (int c = 0; c < 3; c++) {
				for (int s = 0; s < ns; s++) {
					x[c][s] = s;
					y[q][c][s] = fd_mean(v[4 + 3 * q + c][s], n[s]);
					er[q][c][s] = n[s] > 1 ? sqrt(fd_var(v[4 + 3 * q + c][s], n[s], 1)) : NAN;
				}
				se[q][c] = (struct fd_fig_series){ CH[c], FD_FIG_BARS, x[c], y[q][c], er[q][c], (size_t)ns, 0, c == 0 ? 3 : c == 1 ? 2 : 0 };
			}
		struct fd_fig fm = { "01-colour-mean", "Mean channel value per source", "source", "mean (0..1)",
				     NAN, NAN, 0, NAN, src, ns, se[0], 3 };
		struct fd_fig fs = { "01-colour-std", "Channel standard deviation per source", "source", "std (0..1)",
				     NAN, NAN, 0, NAN, src, ns, se[1], 3 };
		if (fd_html_figure(&h, "01-colour-mean", fd_fig_svg(&fm, e),
				   "mean over a source's images of each image's channel mean; error bars: std over images (ddof 1).", e) < 0 ||
		    fd_html_figure(&h, "01-colour-std", fd_fig_svg(&fs, e),
				   "mean over a source's images of each image's channel std (population); error bars: std over images.", e) < 0)
			goto fail;
	}
	if (pack) {
		struct fd_pack p = { 0 };
		if (fd_pack_open(&p, pack, 255, e) < 0)
			goto fail;
		int ps = fd_table_need(&p.tab, "source", e);
		if (ps < 0) {
			fd_pack_close(&p);
			goto fail;
		}
		const char *psrc[MAXSRC];
		int nps = distinct(&p.tab, ps, psrc, MAXSRC);
		enum { NC = 8 };
		const uint8_t **img = calloc((size_t)nps * NC + 1, sizeof *img);
		if (!img) {
			fd_pack_close(&p);
			fd_err_set(e, "out of memory");
			goto fail;
		}
		int have[MAXSRC] = { 0 };
		size_t isz = (size_t)p.S * p.S * 3;
		for (size_t r = 0; r < p.n; r++) {
			int s = 0;
			while (s < nps && strcmp(psrc[s], fd_table_get(&p.tab, r, ps)))
				s++;
			if (s < nps && have[s] < NC)
				img[s * NC + have[s]++] = p.images + r * isz;
		}
		fd_html_h2(&h, "Samples");
		rc = fd_html_figure(&h, "01-samples",
				    fd_fig_grid_svg("01-samples", "Sample images per source", psrc, nps, NC, img, p.S, 64, e),
				    "the first 8 images of each source in the pack, as the model sees them.", e);
		free(img);
		fd_pack_close(&p);
		if (rc < 0)
			goto fail;
	}
	rc = fd_html_end(&h, FD_HTML_PAGES[0], e);
	goto out;
fail:
	fd_html_abort(&h);
	rc = -1;
out:
	for (int k = 0; k < 10; k++)
		for (int s = 0; s < ns; s++)
			free(v[k][s]);
	fd_table_free(&t);
	return rc;
}

/* ---- pages 03..06: run directories ---- */

/* One run directory's parts: group (MODEL-SETTING, sanitised), model and
 * setting as named (128 bytes each; "" when the path has no such part), fold. */
static int run_group(const char *run, char *grp, size_t n, char *mo, char *se, int *fold,
		     struct fd_err *e)
{
	char buf[1024];
	snprintf(buf, sizeof buf, "%s", run);
	size_t L = strlen(buf);
	while (L > 1 && buf[L - 1] == '/')
		buf[--L] = '\0';
	char *f = strrchr(buf, '/');
	const char *fn = f ? f + 1 : buf;
	char *end;
	if (strncmp(fn, "fold", 4) || !fn[4] || (*fold = (int)strtol(fn + 4, &end, 10), *end))
		return fd_err_set(e, "'%s': not a run directory (its name is not fold<K>)", run);
	if (f)
		*f = '\0';
	char *set = f ? strrchr(buf, '/') : NULL;
	char *model = NULL;
	if (set) {
		*set = '\0';
		model = strrchr(buf, '/');
		model = model ? model + 1 : buf;
		set++;
	} else {
		set = f ? buf : (char *)"run";
	}
	char raw[600];
	snprintf(raw, sizeof raw, "%s%s%s", model ? model : "", model ? "-" : "", set);
	snprintf(mo, 128, "%s", model ? model : "");
	snprintf(se, 128, "%s", set);
	size_t k = 0;
	for (const char *p = raw; *p && k + 1 < n; p++) {
		char c = *p;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		grp[k++] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c : '-';
	}
	grp[k] = '\0';
	return 0;
}

struct preds {
	double *score;
	uint8_t *label;
	char **source;
	size_t n;
	struct fd_table t;
};

static void preds_free(struct preds *p)
{
	free(p->score);
	free(p->label);
	free(p->source);
	fd_table_free(&p->t);
}

/* Read preds-EVAL.tsv of run; 1 when read, 0 when absent. */
static int preds_read(struct preds *p, const char *run, const char *eval, struct fd_err *e)
{
	memset(p, 0, sizeof *p);
	fd_table_init(&p->t);
	char path[1200];
	snprintf(path, sizeof path, "%s/preds-%s.tsv", run, eval);
	struct stat st;
	if (stat(path, &st) < 0)
		return 0;
	if (fd_table_read(&p->t, path, e) < 0)
		return -1;
	int cl = fd_table_need(&p->t, "label", e), cs = cl < 0 ? -1 : fd_table_need(&p->t, "score", e),
	    cr = cs < 0 ? -1 : fd_table_need(&p->t, "source", e);
	if (cr < 0)
		return -1;
	p->n = p->t.nrow;
	p->score = malloc((p->n + 1) * sizeof *p->score);
	p->label = malloc(p->n + 1);
	p->source = malloc((p->n + 1) * sizeof *p->source);
	if (!p->score || !p->label || !p->source)
		return fd_err_set(e, "out of memory");
	for (size_t r = 0; r < p->n; r++) {
		double l;
		if (num(&p->t, r, cl, &l, e) < 0 || num(&p->t, r, cs, &p->score[r], e) < 0)
			return -1;
		if (l != 0 && l != 1)
			return fd_err_set(e, "'%s': line %zu: label '%s' is not 0 or 1", path, r + 2,
					  fd_table_get(&p->t, r, cl));
		p->label[r] = (uint8_t)l;
		p->source[r] = (char *)fd_table_get(&p->t, r, cr);
	}
	return 1;
}

struct group {
	char name[256], model[128], setting[128];
	int run[64], nrun;
	double params;          /* run.json's params of the first run (NAN: none) */
	double auc, auc_sd;     /* validation AUC ("all") over folds: mean, std (ddof 1) */
};

/* run.json's "params" in dir, or NAN when there is no run.json or no number. */
static double run_params(const char *dir)
{
	char p[1200];
	snprintf(p, sizeof p, "%s/run.json", dir);
	json_t *j = json_load_file(p, 0, NULL);
	double v = j && json_is_number(json_object_get(j, "params"))
			   ? json_number_value(json_object_get(j, "params"))
			   : NAN;
	json_decref(j);
	return v;
}

/* Mean and std (ddof 1) of the finite a[0..n). */
static void mean_sd(const double *a, int n, double *m, double *sd)
{
	double b[64];
	int k = 0;
	for (int i = 0; i < n && k < 64; i++)
		if (isfinite(a[i]))
			b[k++] = a[i];
	*m = k ? fd_mean(b, (size_t)k) : NAN;
	*sd = k > 1 ? sqrt(fd_var(b, (size_t)k, 1)) : NAN;
}

#define MAXG 32

/* PAGE-params-auc: parameters vs validation AUC, one point per group with a
 * params count. */
static int params_fig(struct fd_html *h, const char *page, struct group *g, int ng, struct fd_err *e)
{
	struct fd_fig_series se[MAXG];
	int n = 0;
	for (int k = 0; k < ng; k++)
		if (isfinite(g[k].params) && isfinite(g[k].auc))
			se[n++] = (struct fd_fig_series){ g[k].name, FD_FIG_POINTS, &g[k].params, &g[k].auc,
							  &g[k].auc_sd, 1, 0, -1 };
	if (!n)
		return 0;
	char id[128];
	snprintf(id, sizeof id, "%.40s-params-auc", page);
	struct fd_fig f = { id, "Parameters vs validation AUC", "parameters (run.json)", "validation AUC",
			    NAN, NAN, NAN, NAN, NULL, 0, se, n };
	return fd_html_figure(h, id, fd_fig_svg(&f, e),
			      "validation AUC over all rows, mean over folds; error bars: std over folds (ddof 1).", e);
}

/* PAGE-scaling: the data-scaling curve, validation AUC vs N for the settings
 * named inN-..., one line per model with at least two such N. */
static int scaling_fig(struct fd_html *h, const char *page, const struct group *g, int ng, struct fd_err *e)
{
	double x[MAXG][MAXG], y[MAXG][MAXG], sd[MAXG][MAXG];
	struct fd_fig_series se[MAXG];
	const char *model[MAXG];
	int nm = 0, npt[MAXG] = { 0 };
	for (int k = 0; k < ng; k++) {
		int frac;
		char c;
		if (sscanf(g[k].setting, "in%d%c", &frac, &c) != 2 || c != '-' || !isfinite(g[k].auc))
			continue;
		int m = 0;
		while (m < nm && strcmp(model[m], g[k].model))
			m++;
		if (m == nm)
			model[nm++] = g[k].model;
		/* insert by N */
		int i = npt[m]++;
		while (i > 0 && x[m][i - 1] > frac) {
			x[m][i] = x[m][i - 1];
			y[m][i] = y[m][i - 1];
			sd[m][i] = sd[m][i - 1];
			i--;
		}
		x[m][i] = frac;
		y[m][i] = g[k].auc;
		sd[m][i] = g[k].auc_sd;
	}
	int n = 0;
	for (int m = 0; m < nm; m++)
		if (npt[m] >= 2)
			se[n++] = (struct fd_fig_series){ model[m], FD_FIG_LINE, x[m], y[m], sd[m], (size_t)npt[m], 0, m };
	if (!n)
		return 0;
	char id[128];
	snprintf(id, sizeof id, "%.40s-scaling", page);
	struct fd_fig f = { id, "Data scaling", "training data (inN: N per cent)", "validation AUC", NAN, NAN,
			    NAN, NAN, NULL, 0, se, n };
	return fd_html_figure(h, id, fd_fig_svg(&f, e),
			      "validation AUC over all rows per setting inN, mean over folds; error bars: std over folds (ddof 1).", e);
}

/* ---- image grids whose cells are also PNG files ---- */

/* An image grid figure (fd_fig_grid_svg), each cell also written as
 * DIR/figures/ID/NAME.png (name[r * nc + c]; NULL cells are skipped). */
static int grid_files(struct fd_html *h, const char *id, const char *title, const char *const *rowname,
		      int nr, int nc, const uint8_t *const *img, const char *const *name, int S,
		      const char *caption, struct fd_err *e)
{
	char *sub = join(h->dir, "/figures/", id);
	if (!sub)
		return fd_err_set(e, "out of memory");
	int rc = fd_mkdir_p(sub, e);
	for (int i = 0; rc == 0 && i < nr * nc; i++) {
		if (!img[i])
			continue;
		struct fd_image im = { S, S, (uint8_t *)img[i], 1 };
		uint8_t *png = NULL;
		size_t n = 0;
		char *p = join(sub, "/", name[i]), *p2 = p ? join(p, ".png", "") : NULL;
		if (!p2)
			rc = fd_err_set(e, "out of memory");
		else if ((rc = fd_image_encode_png(&im, &png, &n, e)) == 0)
			rc = write_file(p2, (const char *)png, n, e);
		free(png);
		free(p);
		free(p2);
	}
	free(sub);
	if (rc < 0)
		return -1;
	int cell = S < 48 ? 64 : S > 128 ? 128 : S;
	return fd_html_figure(h, id, fd_fig_grid_svg(id, title, rowname, nr, nc, img, S, cell, e), caption, e);
}

/* Lower-case s with every character other than [a-z0-9] made '-', into out. */
static void slug(const char *s, char *out, size_t n)
{
	size_t k = 0;
	for (; *s && k + 1 < n; s++) {
		char c = *s;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		out[k++] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c : '-';
	}
	out[k] = '\0';
}

/* The pack row whose `path` is path, or -1 (pc: the pack's path column). */
static long pack_find(const struct fd_pack *p, int pc, const char *path)
{
	for (size_t r = 0; r < p->n; r++)
		if (!strcmp(fd_table_get(&p->tab, r, pc), path))
			return (long)r;
	return -1;
}

/* ---- page 06: hard examples and confidence histograms of 4b-final ---- */

/* The hard-example gallery of fd-report 4b-final's hard.tsv: per model and
 * kind a grid (rows: sources, columns: rank), images from pack by path, each
 * also as figures/PAGE-hard-MODEL-KIND/SOURCE-RANK.png. Without pack a note. */
static int hard_gallery(struct fd_html *h, const char *page, const struct fd_table *t, const char *pack,
			struct fd_err *e)
{
	int cm = fd_table_need(t, "model", e), cs = cm < 0 ? -1 : fd_table_need(t, "source", e),
	    ck = cs < 0 ? -1 : fd_table_need(t, "kind", e), cr = ck < 0 ? -1 : fd_table_need(t, "rank", e),
	    cp = cr < 0 ? -1 : fd_table_need(t, "path", e), cc = cp < 0 ? -1 : fd_table_need(t, "score", e);
	if (cc < 0)
		return -1;
	fd_html_h2(h, "Hard examples");
	if (!pack) {
		fd_html_p(h, "No pack was given (--pack): the hard examples are listed in the table above only.");
		return 0;
	}
	struct fd_pack p = { 0 };
	if (fd_pack_open(&p, pack, 255, e) < 0)
		return -1;
	int pc = fd_table_need(&p.tab, "path", e), rc = 0;
	if (pc < 0) {
		fd_pack_close(&p);
		return -1;
	}
	const char *model[MAXG], *kind[4], *src[MAXSRC];
	int nm = distinct(t, cm, model, MAXG), nk = distinct(t, ck, kind, 4), ns = distinct(t, cs, src, MAXSRC);
	int nc = 1;
	for (size_t r = 0; r < t->nrow; r++) {
		int k = atoi(fd_table_get(t, r, cr));
		nc = k > nc ? k : nc;
	}
	if (nc > 50)
		nc = 50;
	const uint8_t **img = calloc((size_t)ns * nc + 1, sizeof *img);
	char (*nb)[200] = calloc((size_t)ns * nc + 1, sizeof *nb);
	const char **name = calloc((size_t)ns * nc + 1, sizeof *name);
	if (!img || !nb || !name)
		rc = fd_err_set(e, "out of memory");
	for (int m = 0; rc == 0 && m < nm; m++)
		for (int k = 0; rc == 0 && k < nk; k++) {
			memset(img, 0, (size_t)ns * nc * sizeof *img);
			int any = 0;
			for (size_t r = 0; r < t->nrow; r++) {
				if (strcmp(fd_table_get(t, r, cm), model[m]) || strcmp(fd_table_get(t, r, ck), kind[k]))
					continue;
				int s = 0, rank = atoi(fd_table_get(t, r, cr));
				while (s < ns && strcmp(src[s], fd_table_get(t, r, cs)))
					s++;
				if (s == ns || rank < 1 || rank > nc)
					continue;
				long pr = pack_find(&p, pc, fd_table_get(t, r, cp));
				if (pr < 0) {
					rc = fd_err_set(e, "'%s': line %zu: '%s' is not in the pack '%s'", t->src, r + 2,
							fd_table_get(t, r, cp), pack);
					break;
				}
				int i = s * nc + rank - 1;
				img[i] = p.images + (size_t)pr * p.S * p.S * 3;
				char ss[100];
				slug(src[s], ss, sizeof ss);
				snprintf(nb[i], sizeof nb[0], "%s-%d", ss, rank);
				name[i] = nb[i];
				any = 1;
			}
			if (rc < 0 || !any)
				continue;
			char sm[100], sk[100], id[300], title[300], line[600];
			slug(model[m], sm, sizeof sm);
			slug(kind[k], sk, sizeof sk);
			snprintf(id, sizeof id, "%.40s-hard-%s-%s", page, sm, sk);
			snprintf(title, sizeof title, "%s: %s", model[m], kind[k]);
			snprintf(line, sizeof line, "the most confident %ss of %s per source (rank 1 at the left; "
				 "scores in the table above), from %s; files: figures/%s/SOURCE-RANK.png.",
				 kind[k], model[m], pack, id);
			for (char *q = line; *q; q++)
				if (*q == '_')
					*q = ' ';
			rc = grid_files(h, id, title, src, ns, nc, img, name, p.S, line, e);
		}
	free(img);
	free(nb);
	free(name);
	fd_pack_close(&p);
	return rc;
}

/* 4b-final's confidence.tsv as histograms: per model one figure, a step
 * series per source and label. */
static int conf_figs(struct fd_html *h, const char *page, const struct fd_table *t, struct fd_err *e)
{
	static const char *const COL[7] = {"model", "source", "label", "bin", "lo", "hi", "count"};
	int c[7];
	for (int k = 0; k < 7; k++)
		if ((c[k] = fd_table_need(t, COL[k], e)) < 0)
			return -1;
	const char *model[MAXG];
	int nm = distinct(t, c[0], model, MAXG);
	fd_html_h2(h, "Confidence on the test set");
	for (int m = 0; m < nm; m++) {
		/* series: (source, label) in order of appearance */
		enum { MS = 2 * MAXSRC };
		double edge[MS][FD_FINAL_BINS + 1], cnt[MS][FD_FINAL_BINS];
		char sname[MS][160];
		struct fd_fig_series se[MS];
		int n = 0;
		for (size_t r = 0; r < t->nrow; r++) {
			if (strcmp(fd_table_get(t, r, c[0]), model[m]))
				continue;
			char nmv[160];
			const char *lab = fd_table_get(t, r, c[2]);
			snprintf(nmv, sizeof nmv, "%s, %s", fd_table_get(t, r, c[1]), !strcmp(lab, "0") ? "real" : "fake");
			int k = 0;
			while (k < n && strcmp(sname[k], nmv))
				k++;
			if (k == n) {
				if (n == MS)
					continue;
				snprintf(sname[n], sizeof sname[n], "%s", nmv);
				for (int b = 0; b < FD_FINAL_BINS; b++) {
					cnt[n][b] = 0;
					edge[n][b] = b * (1.0 / FD_FINAL_BINS);
				}
				edge[n][FD_FINAL_BINS] = 1;
				se[n] = (struct fd_fig_series){ sname[n], FD_FIG_STEP, edge[n], cnt[n], NULL, FD_FINAL_BINS, 0, n };
				n++;
			}
			double b, lo, hi, v;
			if (num(t, r, c[3], &b, e) < 0 || num(t, r, c[4], &lo, e) < 0 || num(t, r, c[5], &hi, e) < 0 ||
			    num(t, r, c[6], &v, e) < 0)
				return -1;
			if (b < 0 || b >= FD_FINAL_BINS || b != floor(b))
				return fd_err_set(e, "'%s': line %zu: bin %g is not 0..%d", t->src, r + 2, b, FD_FINAL_BINS - 1);
			cnt[k][(int)b] = v;
			edge[k][(int)b] = lo;
			edge[k][(int)b + 1] = hi;
		}
		if (!n)
			continue;
		char sm[100], id[300], title[300];
		slug(model[m], sm, sizeof sm);
		snprintf(id, sizeof id, "%.40s-confidence-%s", page, sm);
		snprintf(title, sizeof title, "Test scores per source and label: %s", model[m]);
		struct fd_fig f = { id, title, "score of the fold ensemble (probability of fake)", "images", 0, 1, 0, NAN,
				    NULL, 0, se, n };
		if (fd_html_figure(h, id, fd_fig_svg(&f, e),
				   "the fold models' test scores averaged per image, 20 bins of [0, 1] (4b-final.confidence.tsv).", e) < 0)
			return -1;
	}
	return 0;
}

/* The figures a 4b-final table carries beyond its rows (hard examples,
 * confidence): by its columns; other tables add none. */
static int table_figs(struct fd_html *h, const char *page, const char *path, const char *pack, struct fd_err *e)
{
	struct fd_table t;
	fd_table_init(&t);
	if (fd_table_read(&t, path, e) < 0)
		return -1;
	int rc = 0;
	if (fd_table_col(&t, "kind") >= 0 && fd_table_col(&t, "rank") >= 0 && fd_table_col(&t, "path") >= 0)
		rc = hard_gallery(h, page, &t, pack, e);
	else if (fd_table_col(&t, "bin") >= 0 && fd_table_col(&t, "count") >= 0)
		rc = conf_figs(h, page, &t, e);
	fd_table_free(&t);
	return rc;
}

int fd_page_runs(const char *dir, const char *page, const char *const *run, int nrun,
		 const char *const *table, int ntable, const char *pack, const char *prov, struct fd_err *e)
{
	int pi = fd_html_page(page);
	if (pi < 2 || pi > 5)
		return fd_err_set(e, "page '%s' is not made from runs (03-phase1 .. 06-phase4)", page);
	struct group g[MAXG];
	int ng = 0;
	for (int i = 0; i < nrun; i++) {
		char name[256], mo[128], se[128];
		int fold;
		if (run_group(run[i], name, sizeof name, mo, se, &fold, e) < 0)
			return -1;
		int k = 0;
		while (k < ng && strcmp(g[k].name, name))
			k++;
		if (k == ng) {
			if (ng == MAXG)
				return fd_err_set(e, "more than %d run groups", MAXG);
			snprintf(g[ng].name, sizeof g[ng].name, "%s", name);
			snprintf(g[ng].model, sizeof g[ng].model, "%s", mo);
			snprintf(g[ng].setting, sizeof g[ng].setting, "%s", se);
			g[ng].params = run_params(run[i]);
			g[ng++].nrun = 0;
		}
		if (g[k].nrun == 64)
			return fd_err_set(e, "group '%s': more than 64 runs", name);
		g[k].run[g[k].nrun++] = i;
	}
	struct fd_html h;
	if (fd_html_begin(&h, dir, FD_HTML_TITLES[pi], prov, e) < 0)
		return -1;
	for (int i = 0; i < ntable; i++)
		if (fd_html_table_tsv(&h, table[i], table[i], e) < 0 || table_figs(&h, page, table[i], pack, e) < 0)
			goto fail;
	/* per-source AUC and gap over groups */
	const char *srcs[MAXSRC];
	int nsrc = 0;
	double sauc[MAXG][MAXSRC], ssd[MAXG][MAXSRC], gx[MAXG], gap[MAXG], gapsd[MAXG];
	char pool[MAXSRC][128]; /* the fake sources' names */
	const char *gname[MAXG];
	char id[512], title[512];
	for (int k = 0; k < ng; k++) {
		struct group *G = &g[k];
		gname[k] = G->name;
		fd_html_h2(&h, G->name);
		/* ROC per fold and eval */
		struct fd_fig_series se[130];
		struct fd_roc roc[128];
		char sname[128][64];
		int nse = 0, nroc = 0;
		static const double diag[2] = {0, 1};
		double cm[4] = {0, 0, 0, 0};
		double *all_s[2] = { NULL, NULL };
		size_t all_n[2] = { 0, 0 };
		double fold_auc[64][MAXSRC];
		double fold_gap[64], fold_all[64];
		int nfold = 0;
		int ok = 0;
		for (int r = 0; r < G->nrun; r++) {
			const char *rd = run[G->run[r]];
			char gn[256], mo[128], se2[128];
			int fold;
			run_group(rd, gn, sizeof gn, mo, se2, &fold, e);
			static const char *const EV[2] = {"val", "test"};
			for (int q = 0; q < 2; q++) {
				struct preds p;
				int got = preds_read(&p, rd, EV[q], e);
				if (got < 0) {
					preds_free(&p);
					goto fail_roc;
				}
				if (got == 0) {
					preds_free(&p);
					if (q == 0) {
						fd_err_set(e, "'%s': no preds-val.tsv", rd);
						goto fail_roc;
					}
					continue;
				}
				if (fd_roc_curve(&roc[nroc], p.score, p.label, p.n, 1, e) < 0) {
					preds_free(&p);
					goto fail_roc;
				}
				snprintf(sname[nroc], sizeof sname[nroc], "fold %d %s", fold, EV[q]);
				se[nse++] = (struct fd_fig_series){ sname[nroc], FD_FIG_LINE, roc[nroc].fpr, roc[nroc].tpr,
								   NULL, roc[nroc].n, 0, q == 0 ? r : r + 5 };
				nroc++;
				if (q == 0) {
					struct fd_confusion c;
					if (fd_confusion(&c, p.score, p.label, p.n, e) < 0) {
						preds_free(&p);
						goto fail_roc;
					}
					cm[0] += (double)c.tn;
					cm[1] += (double)c.fp;
					cm[2] += (double)c.fn;
					cm[3] += (double)c.tp;
					struct fd_err e2;
					if (fd_auc(p.score, p.label, p.n, &fold_all[nfold], &e2) < 0)
						fold_all[nfold] = NAN;
					for (int l = 0; l < 2; l++) {
						double *ns2 = realloc(all_s[l], (all_n[l] + p.n + 1) * sizeof(double));
						if (!ns2) {
							preds_free(&p);
							fd_err_set(e, "out of memory");
							goto fail_roc;
						}
						all_s[l] = ns2;
						for (size_t i = 0; i < p.n; i++)
							if (p.label[i] == l)
								all_s[l][all_n[l]++] = p.score[i];
					}
					/* per-source AUC: all reals vs the source's fakes */
					for (size_t i = 0; i < p.n; i++) {
						if (!p.label[i])
							continue;
						int s = 0;
						while (s < nsrc && strcmp(srcs[s], p.source[i]))
							s++;
						if (s == nsrc && nsrc < MAXSRC) {
							snprintf(pool[nsrc], sizeof pool[nsrc], "%s", p.source[i]);
							srcs[nsrc++] = pool[s];
						}
					}
					for (int s = 0; s < nsrc; s++) {
						double *sc = malloc((p.n + 1) * sizeof(double));
						uint8_t *lb = malloc(p.n + 1);
						size_t m = 0;
						if (!sc || !lb) {
							free(sc);
							free(lb);
							preds_free(&p);
							fd_err_set(e, "out of memory");
							goto fail_roc;
						}
						for (size_t i = 0; i < p.n; i++)
							if (!p.label[i] || !strcmp(p.source[i], srcs[s])) {
								sc[m] = p.score[i];
								lb[m++] = p.label[i];
							}
						struct fd_err e2;
						if (fd_auc(sc, lb, m, &fold_auc[nfold][s], &e2) < 0)
							fold_auc[nfold][s] = NAN;
						free(sc);
						free(lb);
					}
					for (int s = nsrc; s < MAXSRC; s++)
						fold_auc[nfold][s] = NAN;
				}
				preds_free(&p);
			}
			/* learning curves */
			char lp[1200];
			snprintf(lp, sizeof lp, "%s/log.tsv", rd);
			struct fd_table lt;
			fd_table_init(&lt);
			fold_gap[nfold] = NAN;
			struct stat st;
			if (stat(lp, &st) == 0) {
				if (fd_table_read(&lt, lp, e) < 0)
					goto fail_roc;
				static const char *const COL[5] = {"epoch", "train_loss", "val_loss", "train_auc", "val_auc"};
				int c[5];
				for (int j = 0; j < 5; j++)
					if ((c[j] = fd_table_need(&lt, COL[j], e)) < 0) {
						fd_table_free(&lt);
						goto fail_roc;
					}
				size_t m = lt.nrow;
				double *col[5];
				for (int j = 0; j < 5; j++)
					col[j] = malloc((m + 1) * sizeof(double));
				int bad = 0;
				for (int j = 0; j < 5; j++)
					if (!col[j])
						bad = fd_err_set(e, "out of memory");
				for (size_t i = 0; !bad && i < m; i++)
					for (int j = 0; !bad && j < 5; j++)
						if (num(&lt, i, c[j], &col[j][i], e) < 0)
							bad = -1;
				if (!bad && m > 0) {
					fold_gap[nfold] = col[3][m - 1] - col[4][m - 1];
					struct fd_fig_series ls[2] = {
						{ "train loss", FD_FIG_LINE, col[0], col[1], NULL, m, 0, 0 },
						{ "validation loss", FD_FIG_LINE, col[0], col[2], NULL, m, 0, 1 } };
					struct fd_fig_series as[2] = {
						{ "train AUC", FD_FIG_LINE, col[0], col[3], NULL, m, 0, 0 },
						{ "validation AUC", FD_FIG_LINE, col[0], col[4], NULL, m, 0, 1 } };
					char id2[600], t2[600];
					snprintf(id2, sizeof id2, "%.40s-loss-%.200s-fold%d", page, G->name, fold);
					snprintf(t2, sizeof t2, "Loss per epoch: %.200s fold %d", G->name, fold);
					struct fd_fig fl = { id2, t2, "epoch", "loss", NAN, NAN, 0, NAN, NULL, 0, ls, 2 };
					if (fd_html_figure(&h, id2, fd_fig_svg(&fl, e), "learning curve from log.tsv.", e) < 0)
						bad = -1;
					snprintf(id2, sizeof id2, "%.40s-auc-%.200s-fold%d", page, G->name, fold);
					snprintf(t2, sizeof t2, "AUC per epoch: %.200s fold %d", G->name, fold);
					struct fd_fig fa = { id2, t2, "epoch", "AUC", NAN, NAN, NAN, 1, NULL, 0, as, 2 };
					if (!bad && fd_html_figure(&h, id2, fd_fig_svg(&fa, e),
								   "train AUC (batches as seen) and validation AUC per epoch, from log.tsv.", e) < 0)
						bad = -1;
				}
				for (int j = 0; j < 5; j++)
					free(col[j]);
				fd_table_free(&lt);
				if (bad)
					goto fail_roc;
			}
			nfold++;
		}
		se[nse++] = (struct fd_fig_series){ "chance", FD_FIG_LINE, diag, diag, NULL, 2, 1, 7 };
		snprintf(id, sizeof id, "%.40s-roc-%.200s", page, G->name);
		snprintf(title, sizeof title, "ROC: %.200s", G->name);
		{
			struct fd_fig f = { id, title, "false positive rate", "true positive rate", 0, 1, 0, 1, NULL, 0, se, nse };
			if (fd_html_figure(&h, id, fd_fig_svg(&f, e), "ROC curves per fold (validation, and test when scored).", e) < 0)
				goto fail_roc;
		}
		if (all_n[0] + all_n[1] > 0) {
			double edge[2][NB + 1], cnt[2][NB];
			struct fd_fig_series hs[2];
			static const char *const LN[2] = {"real (label 0)", "fake (label 1)"};
			int nh = 0;
			for (int l = 0; l < 2; l++)
				if (all_n[l]) {
					fd_fig_hist(all_s[l], all_n[l], 0, 1, NB, edge[l], cnt[l]);
					hs[nh++] = (struct fd_fig_series){ LN[l], FD_FIG_STEP, edge[l], cnt[l], NULL, NB, 0, l == 0 ? 2 : 3 };
				}
			snprintf(id, sizeof id, "%.40s-hist-%.200s", page, G->name);
			snprintf(title, sizeof title, "Scores per label: %.200s", G->name);
			struct fd_fig f = { id, title, "score (probability of fake)", "images", 0, 1, 0, NAN, NULL, 0, hs, nh };
			if (fd_html_figure(&h, id, fd_fig_svg(&f, e), "validation scores pooled over folds, 20 bins.", e) < 0)
				goto fail_roc;
		}
		{
			static const char *const RN[2] = {"real", "fake"}, *const CN[2] = {"predicted real", "predicted fake"};
			snprintf(id, sizeof id, "%.40s-cm-%.200s", page, G->name);
			snprintf(title, sizeof title, "Confusion: %.200s", G->name);
			if (fd_html_figure(&h, id, fd_fig_heatmap_svg(id, title, "prediction (score >= 0.5)", "true label", RN, 2, CN, 2, cm, e),
					   "validation rows pooled over folds.", e) < 0)
				goto fail_roc;
		}
		for (int s = 0; s < MAXSRC; s++) {
			double a[64];
			int m = 0;
			for (int f = 0; f < nfold; f++)
				if (s < nsrc && isfinite(fold_auc[f][s]))
					a[m++] = fold_auc[f][s];
			sauc[k][s] = m ? fd_mean(a, (size_t)m) : NAN;
			ssd[k][s] = m > 1 ? sqrt(fd_var(a, (size_t)m, 1)) : NAN;
		}
		{
			double a[64];
			int m = 0;
			for (int f = 0; f < nfold; f++)
				if (isfinite(fold_gap[f]))
					a[m++] = fold_gap[f];
			gx[k] = k;
			gap[k] = m ? fd_mean(a, (size_t)m) : NAN;
			gapsd[k] = m > 1 ? sqrt(fd_var(a, (size_t)m, 1)) : NAN;
		}
		mean_sd(fold_all, nfold, &G->auc, &G->auc_sd);
		ok = 1;
	fail_roc:
		for (int i = 0; i < nroc; i++)
			fd_roc_free(&roc[i]);
		free(all_s[0]);
		free(all_s[1]);
		if (!ok)
			goto fail;
	}
	if (nsrc > 0) {
		fd_html_h2(&h, "Across models");
		double sx[MAXSRC];
		struct fd_fig_series bs[MAXG];
		double ys[MAXG][MAXSRC], es[MAXG][MAXSRC];
		for (int s = 0; s < nsrc; s++)
			sx[s] = s;
		for (int k = 0; k < ng; k++) {
			for (int s = 0; s < nsrc; s++) {
				ys[k][s] = sauc[k][s];
				es[k][s] = ssd[k][s];
			}
			bs[k] = (struct fd_fig_series){ gname[k], FD_FIG_BARS, sx, ys[k], es[k], (size_t)nsrc, 0, -1 };
		}
		snprintf(id, sizeof id, "%.40s-source-auc", page);
		struct fd_fig f = { id, "Validation AUC per fake source", "fake source", "AUC (all reals vs the source)",
				    NAN, NAN, 0, 1, srcs, nsrc, bs, ng };
		if (fd_html_figure(&h, id, fd_fig_svg(&f, e), "mean over folds; error bars: std over folds (ddof 1).", e) < 0)
			goto fail;
		int anygap = 0;
		for (int k = 0; k < ng; k++)
			anygap |= isfinite(gap[k]);
		if (anygap) {
			struct fd_fig_series gs = { "train AUC - val AUC", FD_FIG_BARS, gx, gap, gapsd, (size_t)ng, 0, 1 };
			snprintf(id, sizeof id, "%.40s-gap", page);
			struct fd_fig fg = { id, "Train/validation gap", "model", "AUC gap (last epoch)", NAN, NAN, NAN, NAN, gname, ng, &gs, 1 };
			if (fd_html_figure(&h, id, fd_fig_svg(&fg, e),
					   "log.tsv's last epoch: train AUC (of the batches as seen) minus validation AUC; mean +- std over folds.", e) < 0)
				goto fail;
		}
	}
	if (params_fig(&h, page, g, ng, e) < 0 || scaling_fig(&h, page, g, ng, e) < 0)
		goto fail;
	return fd_html_end(&h, page, e);
fail:
	fd_html_abort(&h);
	return -1;
}

/* ---- page 02: preprocessing ---- */

#define MAXPACK 8

int fd_page_preproc(const char *dir, const char *faces_tsv, const char *const *pack, int npack,
		    const struct fd_aug_cfg *aug, uint64_t seed, const char *prov, struct fd_err *e)
{
	if (npack < 1 || npack > MAXPACK)
		return fd_err_set(e, "page 02-preprocessing takes 1 to %d packs, not %d", MAXPACK, npack);
	struct fd_pack p[MAXPACK];
	const char *geom[MAXPACK];
	int pc[MAXPACK], ps[MAXPACK], np = 0, rc = -1;
	memset(p, 0, sizeof p);
	struct fd_html h;
	int begun = 0;
	const uint8_t **img = NULL;
	char **name = NULL;
	uint8_t *aug_px = NULL;
	struct fd_aug_work w = { 0 };
	struct fd_table ft;
	fd_table_init(&ft);
	for (; np < npack; np++) {
		if (fd_pack_open(&p[np], pack[np], 255, e) < 0)
			goto out;
		const char *g = fd_st_meta(&p[np].st, "fd.geometry");
		geom[np] = g ? g : "?";
		if ((pc[np] = fd_table_need(&p[np].tab, "path", e)) < 0 ||
		    (ps[np] = fd_table_need(&p[np].tab, "source", e)) < 0) {
			np++;
			goto out;
		}
	}
	/* the reference pack: the first centre crop, else the first */
	int ref = 0;
	for (int i = npack - 1; i >= 0; i--)
		if (!strcmp(geom[i], "center"))
			ref = i;
	const struct fd_pack *R = &p[ref];
	const int S = R->S;
	const char *src[MAXSRC];
	int ns = distinct(&R->tab, ps[ref], src, MAXSRC);
	if (fd_html_begin(&h, dir, FD_HTML_TITLES[1], prov, e) < 0)
		goto out;
	begun = 1;
	char line[1024];

	/* face detection per source */
	fd_html_h2(&h, "Face detection (fd-facecrop, MTCNN)");
	if (!faces_tsv) {
		fd_html_p(&h, "No face boxes were given (fd-facecrop's TSV).");
	} else {
		if (fd_table_read(&ft, faces_tsv, e) < 0)
			goto out;
		int fs = fd_table_need(&ft, "source", e), fnote = fs < 0 ? -1 : fd_table_need(&ft, "face_note", e);
		if (fnote < 0)
			goto out;
		const char *fsrc[MAXSRC];
		int nfs = distinct(&ft, fs, fsrc, MAXSRC);
		double cnt[MAXSRC][3] = { { 0 } }, x[MAXSRC], rate[MAXSRC];
		for (size_t r = 0; r < ft.nrow; r++) {
			const char *note = fd_table_get(&ft, r, fnote);
			if (!strcmp(note, "skipped"))
				continue; /* status not ok: never looked at */
			int s = 0;
			while (s < nfs && strcmp(fsrc[s], fd_table_get(&ft, r, fs)))
				s++;
			if (s < nfs)
				cnt[s][!strcmp(note, "ok") ? 0 : !strcmp(note, "noface") ? 1 : 2]++;
		}
		fd_sbuf_printf(&h.b, "<table>\n<tr><th>source</th><th>images</th><th>face found</th>"
				     "<th>no face</th><th>failed</th><th>detection rate</th></tr>\n");
		for (int s = 0; s < nfs; s++) {
			double n = cnt[s][0] + cnt[s][1] + cnt[s][2];
			x[s] = s;
			rate[s] = n > 0 ? cnt[s][0] / n : NAN;
			fd_sbuf_printf(&h.b, "<tr><td>");
			fd_sbuf_esc(&h.b, fsrc[s]);
			fd_sbuf_printf(&h.b, "</td><td>%.0f</td><td>%.0f</td><td>%.0f</td><td>%.0f</td><td>%.3f</td></tr>\n",
				       n, cnt[s][0], cnt[s][1], cnt[s][2], rate[s]);
		}
		fd_sbuf_printf(&h.b, "</table>\n");
		struct fd_fig_series se = { "face found", FD_FIG_BARS, x, rate, NULL, (size_t)nfs, 0, 0 };
		struct fd_fig f = { "02-face-rate", "Face detection rate per source", "source",
				    "share of images with a face", NAN, NAN, 0, 1, fsrc, nfs, &se, 1 };
		if (nfs > 0 && fd_html_figure(&h, "02-face-rate", fd_fig_svg(&f, e),
					      "images in which MTCNN found a face (face_note ok) among the images it read; "
					      "no face: the centre square is used.", e) < 0)
			goto out;
	}

	enum { NC = 8 };
	img = calloc((size_t)MAXSRC * NC + MAXPACK * NC + 1, sizeof *img);
	name = calloc((size_t)MAXSRC * NC + MAXPACK * NC + 1, sizeof *name);
	if (!img || !name) {
		fd_err_set(e, "out of memory");
		goto out;
	}
	/* names: NAME.png in the figure's folder; filled per figure */
	char (*nb)[160] = malloc((size_t)(MAXSRC * NC + MAXPACK * NC + 1) * sizeof *nb);
	if (!nb) {
		fd_err_set(e, "out of memory");
		goto out;
	}
	for (int i = 0; i < MAXSRC * NC + MAXPACK * NC + 1; i++)
		name[i] = nb[i];

	/* crop previews: the face pack */
	fd_html_h2(&h, "Face crops");
	int fp = -1;
	for (int i = npack - 1; i >= 0; i--)
		if (!strcmp(geom[i], "face"))
			fp = i;
	if (fp < 0) {
		fd_html_p(&h, "No face-crop pack was given.");
	} else {
		const char *fsrc[MAXSRC];
		int nfs = distinct(&p[fp].tab, ps[fp], fsrc, MAXSRC), have[MAXSRC] = { 0 };
		memset(img, 0, (size_t)nfs * NC * sizeof *img);
		size_t isz = (size_t)p[fp].S * p[fp].S * 3;
		for (size_t r = 0; r < p[fp].n; r++) {
			int s = 0;
			while (s < nfs && strcmp(fsrc[s], fd_table_get(&p[fp].tab, r, ps[fp])))
				s++;
			if (s < nfs && have[s] < NC) {
				img[s * NC + have[s]] = p[fp].images + r * isz;
				snprintf(nb[s * NC + have[s]], sizeof nb[0], "%zu", r);
				have[s]++;
			}
		}
		snprintf(line, sizeof line, "the first %d images of each source in %s (face box + margin, %d px), as "
			 "the model sees them; files: figures/02-crops/ROW.png.", NC, pack[fp], p[fp].S);
		if (grid_files(&h, "02-crops", "Face crops per source", fsrc, nfs, NC, img,
			       (const char *const *)name, p[fp].S, line, e) < 0)
			goto nb_out;
	}

	/* the same images under every geometry */
	fd_html_h2(&h, "Geometry: the same images under each pack");
	{
		long pick[NC];
		int npick = 0, per = NC / (ns > 0 ? ns : 1) > 0 ? NC / (ns > 0 ? ns : 1) : 1, got[MAXSRC] = { 0 };
		for (size_t r = 0; r < R->n && npick < NC; r++) {
			int s = 0;
			while (s < ns && strcmp(src[s], fd_table_get(&R->tab, r, ps[ref])))
				s++;
			if (s == ns || got[s] >= per)
				continue;
			int all = 1; /* in every pack */
			for (int k = 0; k < npack && all; k++)
				all = pack_find(&p[k], pc[k], fd_table_get(&R->tab, r, pc[ref])) >= 0;
			if (all) {
				pick[npick++] = (long)r;
				got[s]++;
			}
		}
		int same = 1;
		for (int k = 0; k < npack; k++)
			same &= p[k].S == S;
		if (npick == 0 || !same) {
			fd_html_p(&h, npick ? "The packs differ in size: no side-by-side view."
					    : "No image is in every pack.");
		} else {
			const char *rn[MAXPACK];
			for (int k = 0; k < npack; k++) {
				rn[k] = geom[k];
				for (int c = 0; c < NC; c++) {
					img[k * NC + c] = NULL;
					if (c >= npick)
						continue;
					const char *path = fd_table_get(&R->tab, (size_t)pick[c], pc[ref]);
					long r = pack_find(&p[k], pc[k], path);
					img[k * NC + c] = p[k].images + (size_t)r * S * S * 3;
					snprintf(nb[k * NC + c], sizeof nb[0], "%s-%ld", geom[k], pick[c]);
				}
			}
			snprintf(line, sizeof line, "rows: the packs' geometries (center: square centre crop, letterbox: "
				 "padded to square, face: face box), columns: the same %d images (%d per source, "
				 "row numbers of %s); files: figures/02-geometry/GEOMETRY-ROW.png.", npick, per, pack[ref]);
			if (grid_files(&h, "02-geometry", "Centre crop vs letterbox vs face crop", rn, npack, NC, img,
				       (const char *const *)name, S, line, e) < 0)
				goto nb_out;
		}
	}

	/* augmentation */
	fd_html_h2(&h, "Augmentation");
	if (!aug || !fd_aug_cfg_any(aug)) {
		fd_html_p(&h, "No augmentation was configured (--config with an augment block).");
	} else {
		if (fd_aug_work_init(&w, S, e) < 0)
			goto nb_out;
		aug_px = malloc((size_t)ns * NC * S * S * 3 + 1);
		if (!aug_px) {
			fd_err_set(e, "out of memory");
			goto nb_out;
		}
		memset(img, 0, (size_t)ns * NC * sizeof *img);
		for (int s = 0; s < ns; s++) {
			size_t r = 0;
			while (r < R->n && strcmp(src[s], fd_table_get(&R->tab, r, ps[ref])))
				r++;
			for (int c = 0; c < NC; c++) {
				uint8_t *d = aug_px + ((size_t)s * NC + c) * S * S * 3;
				memcpy(d, R->images + r * S * S * 3, (size_t)S * S * 3);
				if (c > 0) { /* draw c - 1: epoch c - 1 of the training loader */
					struct fd_aug_params ap;
					fd_aug_sample(aug, seed, (uint64_t)(c - 1), r, S, S, &ap);
					if (fd_aug_apply(aug, &ap, d, S, &w, e) < 0)
						goto nb_out;
				}
				img[s * NC + c] = d;
				snprintf(nb[s * NC + c], sizeof nb[0], "%zu-%s%d", r, c ? "epoch" : "original", c ? c - 1 : 0);
			}
		}
		snprintf(line, sizeof line, "per source one image of %s: the original, then the augmentation of "
			 "epochs 0..%d as fd-train draws it (seed %llu, the image's row); files: "
			 "figures/02-augment/ROW-epochE.png.", pack[ref], NC - 2, (unsigned long long)seed);
		if (grid_files(&h, "02-augment", "Augmentation examples", src, ns, NC, img, (const char *const *)name,
			       S, line, e) < 0)
			goto nb_out;
	}

	/* normalisation statistics */
	fd_html_h2(&h, "Normalisation statistics");
	{
		/* categories: each source, the reals (label 0), ImageNet's constants */
		double m[3][MAXSRC + 2], sd[3][MAXSRC + 2], xs[MAXSRC + 2];
		const char *cat[MAXSRC + 2];
		double sum[MAXSRC + 1][3] = { { 0 } }, sq[MAXSRC + 1][3] = { { 0 } }, cnt[MAXSRC + 1] = { 0 };
		for (size_t r = 0; r < R->n; r++) {
			int s = 0;
			while (s < ns && strcmp(src[s], fd_table_get(&R->tab, r, ps[ref])))
				s++;
			const uint8_t *q = R->images + r * S * S * 3;
			for (int t = 0; t < 2; t++) {
				int k = t ? ns : s;
				if ((t && R->labels[r] != 0) || k == MAXSRC + 1 || (!t && s == ns))
					continue;
				for (size_t i = 0; i < (size_t)S * S; i++)
					for (int c = 0; c < 3; c++) {
						double v = q[i * 3 + c] / 255.0;
						sum[k][c] += v;
						sq[k][c] += v * v;
					}
				cnt[k] += (double)S * S;
			}
		}
		static const double IM[2][3] = { { 0.485, 0.456, 0.406 }, { 0.229, 0.224, 0.225 } };
		for (int k = 0; k <= ns + 1; k++) {
			cat[k] = k < ns ? src[k] : k == ns ? "real (label 0)" : "ImageNet";
			xs[k] = k;
			for (int c = 0; c < 3; c++) {
				if (k == ns + 1) {
					m[c][k] = IM[0][c];
					sd[c][k] = IM[1][c];
				} else if (cnt[k] > 0) {
					m[c][k] = sum[k][c] / cnt[k];
					sd[c][k] = sqrt(fmax(0, sq[k][c] / cnt[k] - m[c][k] * m[c][k]));
				} else {
					m[c][k] = sd[c][k] = NAN;
				}
			}
		}
		fd_sbuf_printf(&h.b, "<table>\n<tr><th>pixels of</th><th>mean R</th><th>mean G</th><th>mean B</th>"
				     "<th>std R</th><th>std G</th><th>std B</th></tr>\n");
		for (int k = 0; k <= ns + 1; k++) {
			fd_sbuf_printf(&h.b, "<tr><td>");
			fd_sbuf_esc(&h.b, cat[k]);
			fd_sbuf_printf(&h.b, "</td>");
			for (int q = 0; q < 2; q++)
				for (int c = 0; c < 3; c++)
					fd_sbuf_printf(&h.b, "<td>%.4f</td>", q ? sd[c][k] : m[c][k]);
			fd_sbuf_printf(&h.b, "</tr>\n");
		}
		fd_sbuf_printf(&h.b, "</table>\n");
		static const char *const CH[3] = {"R", "G", "B"};
		struct fd_fig_series se[2][3];
		for (int c = 0; c < 3; c++) {
			int col = c == 0 ? 3 : c == 1 ? 2 : 0;
			se[0][c] = (struct fd_fig_series){ CH[c], FD_FIG_BARS, xs, m[c], NULL, (size_t)ns + 2, 0, col };
			se[1][c] = (struct fd_fig_series){ CH[c], FD_FIG_BARS, xs, sd[c], NULL, (size_t)ns + 2, 0, col };
		}
		struct fd_fig fm = { "02-norm-mean", "Channel mean of the pixels", "pixels of", "mean (0..1)",
				     NAN, NAN, 0, 1, cat, ns + 2, se[0], 3 };
		struct fd_fig fs = { "02-norm-std", "Channel standard deviation of the pixels", "pixels of",
				     "std (0..1)", NAN, NAN, 0, NAN, cat, ns + 2, se[1], 3 };
		snprintf(line, sizeof line, "over every pixel of %s (the images as packed, /255; population std); "
			 "normalize real-train uses the real images of a fold's training rows, imagenet the constants.",
			 pack[ref]);
		if (fd_html_figure(&h, "02-norm-mean", fd_fig_svg(&fm, e), line, e) < 0 ||
		    fd_html_figure(&h, "02-norm-std", fd_fig_svg(&fs, e), line, e) < 0)
			goto nb_out;
	}
	rc = fd_html_end(&h, FD_HTML_PAGES[1], e);
	begun = 0;
nb_out:
	free(nb);
out:
	if (begun)
		fd_html_abort(&h);
	if (rc < 0)
		rc = -1;
	fd_aug_work_free(&w);
	free(aug_px);
	free(img);
	free(name);
	fd_table_free(&ft);
	for (int i = 0; i < np; i++)
		fd_pack_close(&p[i]);
	return rc;
}

/* ---- page 07: Grad-CAM ---- */

#define GC_MAXN 20 /* overlays shown per category */

/* One fd-gradcam folder's overlays by category. */
struct gc_set {
	struct fd_table t;
	int n[4], S;
	size_t idx[4][GC_MAXN];
	double share[4];             /* mean face_share / center_share per category (NAN: none) */
	struct fd_image im[4][GC_MAXN];
};

static void gc_free(struct gc_set *g)
{
	for (int k = 0; k < 4; k++)
		for (int i = 0; i < GC_MAXN; i++)
			fd_image_free(&g->im[k][i]);
	fd_table_free(&g->t);
}

/* Read dir/gradcam.tsv and the overlays dir/ROW.png into g, by category
 * (fd_gradcam_category of label and score; most confident first, up to
 * GC_MAXN). sharecol: the share column found ("face_share" or
 * "center_share", "" when neither). */
static int gc_read(struct gc_set *g, const char *dir, char *sharecol, struct fd_err *e)
{
	memset(g, 0, sizeof *g);
	fd_table_init(&g->t);
	char p[1400];
	snprintf(p, sizeof p, "%s/gradcam.tsv", dir);
	if (fd_table_read(&g->t, p, e) < 0)
		return -1;
	int cr = fd_table_need(&g->t, "row", e), cl = cr < 0 ? -1 : fd_table_need(&g->t, "label", e),
	    cs = cl < 0 ? -1 : fd_table_need(&g->t, "score", e);
	if (cs < 0)
		return -1;
	int csh = fd_table_col(&g->t, "face_share");
	strcpy(sharecol, "face_share");
	if (csh < 0) {
		csh = fd_table_col(&g->t, "center_share");
		strcpy(sharecol, csh < 0 ? "" : "center_share");
	}
	double shs[4] = { 0 }, shn[4] = { 0 }, key[4][GC_MAXN];
	for (size_t r = 0; r < g->t.nrow; r++) {
		double l, s;
		if (num(&g->t, r, cl, &l, e) < 0 || num(&g->t, r, cs, &s, e) < 0)
			return -1;
		if ((l != 0 && l != 1) || !(s >= 0 && s <= 1))
			return fd_err_set(e, "'%s': line %zu: label %g or score %g out of range", p, r + 2, l, s);
		int k = fd_gradcam_category((int)l, s);
		double sh;
		if (csh >= 0 && strcmp(fd_table_get(&g->t, r, csh), "NA") && num(&g->t, r, csh, &sh, e) == 0) {
			shs[k] += sh;
			shn[k]++;
		} else if (csh >= 0 && strcmp(fd_table_get(&g->t, r, csh), "NA")) {
			return -1;
		}
		/* insert by confidence: |score - 0.5| largest first */
		double c = fabs(s - 0.5);
		int i = g->n[k] < GC_MAXN ? g->n[k]++ : GC_MAXN;
		while (i > 0 && key[k][i - 1] < c) {
			if (i < GC_MAXN) {
				key[k][i] = key[k][i - 1];
				g->idx[k][i] = g->idx[k][i - 1];
			}
			i--;
		}
		if (i < GC_MAXN) {
			key[k][i] = c;
			g->idx[k][i] = r;
		}
	}
	for (int k = 0; k < 4; k++) {
		g->share[k] = shn[k] > 0 ? shs[k] / shn[k] : NAN;
		for (int i = 0; i < g->n[k]; i++) {
			snprintf(p, sizeof p, "%s/%s.png", dir, fd_table_get(&g->t, g->idx[k][i], cr));
			if (fd_image_load(p, NULL, &g->im[k][i], e) < 0)
				return -1;
			int w = g->im[k][i].w;
			if (w != g->im[k][i].h || (g->S && w != g->S))
				return fd_err_set(e, "'%s': %dx%d, expected a square overlay of the folder's size", p, w,
						  g->im[k][i].h);
			g->S = w;
		}
	}
	return 0;
}

int fd_page_gradcam(const char *dir, const char *const *gcdir, const char *const *label, int n,
		    const char *prov, struct fd_err *e)
{
	if (n < 1 || n > MAXG)
		return fd_err_set(e, "page 07-gradcam takes 1 to %d Grad-CAM folders, not %d", MAXG, n);
	struct gc_set *g = calloc((size_t)n, sizeof *g);
	if (!g)
		return fd_err_set(e, "out of memory");
	int ng = 0, rc = -1, begun = 0;
	char share[MAXG][16];
	struct fd_html h;
	for (; ng < n; ng++)
		if (gc_read(&g[ng], gcdir[ng], share[ng], e) < 0) {
			fd_err_ctx(e, "Grad-CAM folder '%s'", gcdir[ng]);
			ng++;
			goto out;
		}
	if (fd_html_begin(&h, dir, FD_HTML_TITLES[6], prov, e) < 0)
		goto out;
	begun = 1;
	fd_html_p(&h, "Grad-CAM (fd-gradcam: the grad-cam package's GradCAM; the layer and target are named under "
		      "each figure) of test images per category, most confident first: true real, true fake, false "
		      "positive (a real called fake), false negative (a fake called real); a row's category is its "
		      "label and the score of the model shown (fake at >= 0.5). Overlay: jet colour map over the "
		      "image as the model saw it.");
	for (int i = 0; i < ng; i++) {
		char sl[200], id[256], title[512], line[1024];
		slug(label[i], sl, sizeof sl);
		snprintf(id, sizeof id, "07-%s", sl);
		snprintf(title, sizeof title, "Grad-CAM: %s", label[i]);
		fd_html_h2(&h, label[i]);
		int nc = 1;
		for (int k = 0; k < 4; k++)
			nc = g[i].n[k] > nc ? g[i].n[k] : nc;
		const uint8_t *img[4 * GC_MAXN] = { 0 };
		char rn[4][64];
		const char *rnp[4];
		for (int k = 0; k < 4; k++) {
			snprintf(rn[k], sizeof rn[k], "%s (%d)", FD_GRADCAM_CATEGORIES[k], g[i].n[k]);
			rnp[k] = rn[k];
			for (int j = 0; j < g[i].n[k]; j++)
				img[k * nc + j] = g[i].im[k][j].px;
		}
		if (!g[i].S) {
			fd_html_p(&h, "No rows.");
			continue;
		}
		int cly = fd_table_col(&g[i].t, "layer"), ctg = fd_table_col(&g[i].t, "target");
		snprintf(line, sizeof line, "layer %s, target %s; from %s (gradcam.tsv and ROW.png; heat maps in "
			 "heatmaps.safetensors).", cly >= 0 && g[i].t.nrow ? fd_table_get(&g[i].t, 0, cly) : "?",
			 ctg >= 0 && g[i].t.nrow ? fd_table_get(&g[i].t, 0, ctg) : "?", gcdir[i]);
		if (fd_html_figure(&h, id, fd_fig_grid_svg(id, title, rnp, 4, nc, img, g[i].S,
							   g[i].S < 48 ? 64 : g[i].S > 128 ? 128 : g[i].S, e),
				   line, e) < 0)
			goto out;
	}
	/* where the heat lies, per category and folder */
	{
		double x[4] = { 0, 1, 2, 3 };
		struct fd_fig_series se[MAXG];
		int ns = 0;
		const char *col = "";
		for (int i = 0; i < ng; i++)
			if (share[i][0]) {
				se[ns++] = (struct fd_fig_series){ label[i], FD_FIG_BARS, x, g[i].share, NULL, 4, 0, -1 };
				col = share[i];
			}
		int any = 0;
		for (int i = 0; i < ns; i++)
			for (int k = 0; k < 4; k++)
				any |= isfinite(se[i].y[k]);
		if (any) {
			fd_html_h2(&h, "Where the heat lies");
			struct fd_fig f = { "07-share", "Share of the heat map in the face box (or the central square)",
					    "category", col, NAN, NAN, 0, 1, FD_GRADCAM_CATEGORIES, 4, se, ns };
			if (fd_html_figure(&h, "07-share", fd_fig_svg(&f, e),
					   "mean over a category's rows of gradcam.tsv's face_share (share of the heat map "
					   "inside the face box) or, without face boxes, center_share (inside the central "
					   "S/2 x S/2 square: 0.25 for a uniform map).", e) < 0)
				goto out;
		}
	}
	rc = fd_html_end(&h, FD_HTML_PAGES[6], e);
	begun = 0;
out:
	if (begun)
		fd_html_abort(&h);
	for (int i = 0; i < ng; i++)
		gc_free(&g[i]);
	free(g);
	return rc;
}

int fd_page_preproc_configs(const char *dir, const char *faces_tsv, const char *const *pack, int npack,
			    const char *const *cfg, int ncfg, const char *prov, struct fd_err *e)
{
	struct fd_config conf = { 0 };
	struct fd_aug_cfg aug;
	int64_t seed = 0;
	fd_aug_cfg_default(&aug);
	if (ncfg) {
		int bad = fd_config_init(&conf, e) < 0;
		for (int i = 0; i < ncfg && !bad; i++)
			bad = fd_config_load(&conf, cfg[i], e) < 0;
		if (!bad)
			bad = fd_aug_cfg_from_config(&aug, &conf, e) < 0 ||
			      (fd_config_has(&conf, "seed") && fd_config_get_int(&conf, "seed", &seed, e) < 0);
		fd_config_free(&conf);
		if (bad)
			return -1;
	}
	return fd_page_preproc(dir, faces_tsv, pack, npack, &aug, (uint64_t)seed, prov, e);
}
