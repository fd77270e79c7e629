/* fd_html: self-contained HTML pages of the report (doc/report.md, "HTML
 * pages"): inline CSS, figures inlined as SVG (and written beside as
 * DIR/figures/ID.svg), thumbnails as PNG data: URIs, tables from TSV files. No
 * page loads anything from elsewhere. */
#ifndef FD_HTML_H
#define FD_HTML_H

#include "core/fd_err.h"
#include "image/fd_augment.h"
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

/* Page 02 (preprocessing). faces_tsv (NULL: none): fd-facecrop's TSV, the
 * face-detection rate per source (face_note ok among the rows it read, i.e.
 * not "skipped"), table and figure 02-face-rate. pack[0..npack) (1..8):
 * packs of the same rows under different geometries (fd.geometry); the
 * reference pack is the first "center" one, else pack[0]. Figures: 02-crops
 * (the first 8 images per source of the first "face" pack), 02-geometry (the
 * same 8 images, 8 / sources per source, found by path in every pack, one
 * row per pack; when all packs share a size), 02-augment (per source the
 * reference pack's first image and its augmentation under aug for epochs
 * 0..6 as the training loader draws it: fd_aug_sample(aug, seed, epoch, row);
 * left out when aug is NULL or all off), 02-norm-mean and 02-norm-std (per
 * source, the reals and ImageNet's constants: channel mean and population std
 * over every pixel /255 of the reference pack). The grids' cells are also
 * written as figures/ID/NAME.png. Errors: unreadable packs or TSV, missing
 * columns (path, source; source, face_note). */
int fd_page_preproc(const char *dir, const char *faces_tsv, const char *const *pack, int npack,
		    const struct fd_aug_cfg *aug, uint64_t seed, const char *prov, struct fd_err *e);

/* fd_page_preproc with the augmentation and seed of the JSON configs
 * cfg[0..ncfg) merged in order (fd_config_load; the "augment" block and
 * "seed", as fd-train resolves them); ncfg 0: the default augmentation,
 * seed 0. Errors: those of the configs (file named) and of fd_page_preproc. */
int fd_page_preproc_configs(const char *dir, const char *faces_tsv, const char *const *pack, int npack,
			    const char *const *cfg, int ncfg, const char *prov, struct fd_err *e);

/* Page 07 (Grad-CAM) from fd-gradcam output folders gcdir[0..n) (1..32)
 * titled label[i]: per folder the figure 07-SLUG (SLUG: the label, lower
 * case, [a-z0-9-]) with the overlays ROW.png of gradcam.tsv's rows in four
 * rows, the categories of fd_gradcam_category (label and gradcam.tsv's
 * score), most confident first (|score - 0.5|), at most 20 each; and
 * 07-share: the mean face_share (or center_share) per category and folder.
 * Errors: a folder without gradcam.tsv or an overlay, a bad label or score
 * (file and line named), overlays that are not squares of one size. */
int fd_page_gradcam(const char *dir, const char *const *gcdir, const char *const *label, int n,
		    const char *prov, struct fd_err *e);

/* Pages 03..06 from run directories (.../MODEL/SETTING/foldK with
 * preds-val.tsv, optional preds-test.tsv and log.tsv) grouped by MODEL/SETTING,
 * and the Markdown/TSV tables fd-report already wrote (TSV files shown as
 * tables). Figures per group G (G: MODEL-SETTING, lower case, [a-z0-9-]):
 * PAGE-roc-G (one curve per fold and eval, the diagonal), PAGE-loss-G and
 * PAGE-auc-G (log.tsv per fold), PAGE-hist-G (scores per label, pooled over
 * folds), PAGE-cm-G (confusion at 0.5, pooled); over groups PAGE-source-auc
 * (per-source validation AUC, mean +- std over folds) and PAGE-gap (train AUC -
 * val AUC from log.tsv's last epoch, mean +- std), PAGE-params-auc and
 * PAGE-scaling. A table with the columns of fd-report 4b-final's hard.tsv
 * (model, source, kind, rank, path, score) is followed by its gallery:
 * PAGE-hard-MODEL-KIND (rows: sources, columns: ranks; the images of pack,
 * found by path; a note instead when pack is NULL; cells also written as
 * figures/ID/SOURCE-RANK.png); one with confidence.tsv's (model, source,
 * label, bin, lo, hi, count) by PAGE-confidence-MODEL (a step series per
 * source and label). */
int fd_page_runs(const char *dir, const char *page, const char *const *run, int nrun,
		 const char *const *table, int ntable, const char *pack, const char *prov,
		 struct fd_err *e);

#endif
