/* fd_final: phase 4B of fd-report (doc/pipelines.md, "Phase 4B"): the rule that
 * picks the top models from validation AUCs (section top: top.json, top.mk,
 * top.md), and the final test-set analysis of those models trained on the full
 * data (section 4b-final: per-source test metrics of the fold ensemble, pairwise
 * DeLong tests with Holm, hard examples, confidence histograms). */
#ifndef FD_FINAL_H
#define FD_FINAL_H

#include <stdio.h>
#include "core/fd_err.h"
#include "report/fd_report.h"
#include "report/fd_results.h"

#define FD_TOP_MAX 256 /* (condition, model) pairs ranked */

/* One (condition, model) of the ranking. */
struct fd_top_entry {
	char model[64], cond[64];
	int nf;      /* folds with a defined validation AUC */
	double mean; /* mean over those folds of the validation AUC (eval "val", subset "all") */
	int chosen;  /* 1: one of the top models */
};

/* The ranking: every (condition, model) of rs with a defined mean, highest
 * mean first (ties: order of appearance in rs, conditions outer); a model's
 * best condition only is eligible; the first k eligible are chosen. */
struct fd_top {
	int k, n, nchosen;
	struct fd_top_entry e[FD_TOP_MAX];
};

/* Rank rs (overwrites t). Errors: k < 1; no (condition, model) with a defined
 * validation AUC; a model name make cannot take as a word (characters other
 * than letters, digits, '_', '-', '.'). Fewer than k models: all are chosen. */
int fd_top_rank(struct fd_top *t, const struct fd_results *rs, int k, struct fd_err *e);

/* top.json's text (top_k, models: the chosen in rank order, ranking: every
 * entry with model, condition, folds, mean_val_auc, chosen; rule), ending in a
 * newline; malloc'ed, NULL with e set when out of memory. */
char *fd_top_json(const struct fd_top *t, struct fd_err *e);

/* top.mk: "P4B_TOP_MODELS := m1 m2 ..." (rank order) for make's include. */
void fd_top_mk(FILE *f, const struct fd_top *t);

/* top.md: the rule and the ranking table (Markdown, 3 decimals). */
void fd_top_md(FILE *f, const struct fd_top *t, const char *cmdline);

#define FD_FINAL_BINS 20 /* confidence histogram bins on [0, 1] */

/* Section 4b-final of rs: for every (condition, model) with test rows
 * (preds-test.tsv of every fold; the fold models' scores averaged per row,
 * fd_results_rows FD_ROWS_ENSEMBLE):
 *  - md, tsv: per subset ("all", then each fake source: all reals vs that
 *    source's fakes) n_real, n_fake, AUC with DeLong's logit 95% interval, AP,
 *    EER (interpolated), accuracy at score >= 0.5 (fake);
 *  - md, cmp: DeLong's paired test of every pair of entries on the test rows
 *    (subset "all"), Holm-adjusted over the pairs tested;
 *  - hard: the nhard most confident errors per entry and row source: false
 *    positives (reals scored >= 0.5, highest score first) and false negatives
 *    (fakes scored < 0.5, lowest first), ties by path; columns model,
 *    condition, source, kind, rank, path, label, score;
 *  - conf: counts of the ensemble scores per entry, row source and label in
 *    FD_FINAL_BINS equal bins of [0, 1] as numpy.histogram(bins=20,
 *    range=(0, 1)) (the last bin closed); columns model, condition, source,
 *    label, bin, lo, hi, count; md summarises them per source and label.
 * TSV numbers print %.17g, "NA" undefined. m gives the table names and the
 * command line. Errors: no entry with test rows; a test row without a
 * source; out of memory. */
int fd_final_write(FILE *md, FILE *tsv, FILE *cmp, FILE *hard, FILE *conf,
		   const struct fd_results *rs, int nhard, const struct fd_report_meta *m,
		   const char *hard_name, const char *conf_name, struct fd_err *e);

/* The Grad-CAM categories (doc/pipelines.md, "Grad-CAM"), in order: true
 * real, true fake, false positive, false negative. */
extern const char *const FD_GRADCAM_CATEGORIES[4];
/* The category (index into FD_GRADCAM_CATEGORIES) of a row with this label
 * (0 real, 1 fake) and score (P(fake); called fake at >= 0.5, as fd-eval). */
int fd_gradcam_category(int label, double score);

/* The rows Grad-CAM is run on: from one preds TSV of fd-eval (columns row,
 * path, source, label, score), the n most confident rows of each category:
 * true real and false negative lowest score first, true fake and false
 * positive highest first; ties by row. Writes the TSV header and rows
 * (category, rank 1.., row, path, source, label, score; the values as read)
 * to out; a category without rows has no lines. Errors: unreadable TSV, a
 * missing column, a row that is not a non-negative integer, a label other
 * than 0/1, a score not in [0, 1] (file and line named); out is then
 * partly written (the caller writes it through fd_out). */
int fd_gradcam_pick(FILE *out, const char *preds, int n, struct fd_err *e);

/* --section top's files: top.json at out, top.mk and top.md beside it
 * (out's ".json" replaced), top.json renamed into place last (Make watches
 * it); prov is the command line written into top.md. 0, or -1 with e set and
 * no file of the three written. */
int fd_top_save(const char *out, const struct fd_results *rs, int k, const char *prov, struct fd_err *e);

/* --section 4b-final's files: the Markdown at out (renamed last), and beside
 * it (out's ".md" replaced) FILE.tsv, FILE.compare.tsv, FILE.folds.tsv,
 * FILE.hard.tsv, FILE.confidence.tsv (fd_final_write, fd_results_write); inp
 * are the inputs named in the Markdown. 0, or -1 with e set and the Markdown
 * not written. */
int fd_final_save(const char *out, const struct fd_results *rs, int nhard, const char *prov,
		  const char *const *inp, int ninp, struct fd_err *e);

#endif
