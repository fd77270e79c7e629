/* fd_html: self-contained HTML pages of the report (doc/report.md, "HTML
 * pages"): inline CSS, figures inlined as SVG (and written beside as
 * DIR/figures/ID.svg), thumbnails as PNG data: URIs, tables from TSV files. No
 * page loads anything from elsewhere. */
#ifndef FD_HTML_H
#define FD_HTML_H

#include "core/fd_err.h"
#include "report/fd_figure.h"

/* The notebook pages of the plan, in order: "01-eda", "02-preprocessing",
 * "03-phase1", "04-phase2", "05-phase3", "06-phase4", "07-gradcam". */
extern const char *const FD_HTML_PAGES[7];
extern const char *const FD_HTML_TITLES[7];
/* Index of a page name in FD_HTML_PAGES, or -1. */
int fd_html_page(const char *name);

struct fd_html {
	struct fd_sbuf b;
	char *dir;  /* the output directory; figures go to dir/figures/ */
	int nfig;   /* figures added */
};

/* Start a page titled title whose figures are written under dir/figures/
 * (created); prov (NULL: none) is the command line that made it, shown under
 * the title with fd's version and in a generator meta tag. */
int fd_html_begin(struct fd_html *h, const char *dir, const char *title, const char *prov,
		  struct fd_err *e);
/* A heading (level 2) and a paragraph of plain text (escaped). */
void fd_html_h2(struct fd_html *h, const char *text);
void fd_html_p(struct fd_html *h, const char *text);
/* Inline svg (taken over: freed here, also on error) in a <figure> with the
 * caption, and write it atomically as dir/figures/ID.svg (id: the figure's). */
int fd_html_figure(struct fd_html *h, const char *id, char *svg, const char *caption,
		   struct fd_err *e);
/* A TSV file as an HTML table, under the heading caption. Errors: unreadable
 * or malformed TSV (named). */
int fd_html_table_tsv(struct fd_html *h, const char *path, const char *caption, struct fd_err *e);
/* Finish the page and write it atomically as dir/NAME.html; frees h. */
int fd_html_end(struct fd_html *h, const char *name, struct fd_err *e);
/* Free an unfinished page. */
void fd_html_abort(struct fd_html *h);

/* prov in these three: as fd_html_begin's. */

/* dir/index.html: a link to each of the seven pages that exists in dir, the
 * others listed as not made. */
int fd_html_index(const char *dir, const char *prov, struct fd_err *e);

/* Page 01 (EDA) from fd-index's TSV (with --stats: mean_r.. std_b; without,
 * the colour figures are left out and the page says so) and, when pack is
 * not NULL, a grid of up to 8 images per source from that pack. Figures:
 * 01-width, 01-aspect, 01-bytes, 01-colour-mean, 01-colour-std, 01-samples. */
int fd_page_eda(const char *dir, const char *index_tsv, const char *pack, const char *prov,
		struct fd_err *e);

/* Pages 03..06 from run directories (.../MODEL/SETTING/foldK with
 * preds-val.tsv, optional preds-test.tsv and log.tsv) grouped by MODEL/SETTING,
 * and the Markdown/TSV tables fd-report already wrote (TSV files shown as
 * tables). Figures per group G (G: MODEL-SETTING, lower case, [a-z0-9-]):
 * PAGE-roc-G (one curve per fold and eval, the diagonal), PAGE-loss-G and
 * PAGE-auc-G (log.tsv per fold), PAGE-hist-G (scores per label, pooled over
 * folds), PAGE-cm-G (confusion at 0.5, pooled); over groups PAGE-source-auc
 * (per-source validation AUC, mean +- std over folds) and PAGE-gap (train AUC -
 * val AUC from log.tsv's last epoch, mean +- std). */
int fd_page_runs(const char *dir, const char *page, const char *const *run, int nrun,
		 const char *const *table, int ntable, const char *prov, struct fd_err *e);

#endif
