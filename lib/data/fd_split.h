/* fd_split: stratified, group-aware K-fold assignment with an optional held-out
 * test set and nested subsamples (20% ⊂ 50% ⊂ 100%), as fd-split writes them. */
#ifndef FD_SPLIT_H
#define FD_SPLIT_H

#include <stddef.h>
#include <stdint.h>
#include "core/fd_err.h"
#include "core/fd_table.h"

#define FD_SPLIT_MAX_FOLDS 100
#define FD_SPLIT_MAX_FRACS 16
#define FD_SPLIT_TEST (-1)     /* bin of a held-out test row */
#define FD_SPLIT_EXCLUDED (-2) /* bin of a row whose status is not "ok" */

struct fd_split_opts {
	int folds;         /* K, 2..FD_SPLIT_MAX_FOLDS */
	double test;       /* share of the usable rows held out as test, 0 <= test < 1 (0: none) */
	int nfrac;         /* 0..FD_SPLIT_MAX_FRACS */
	double frac[FD_SPLIT_MAX_FRACS]; /* strictly increasing, each in (0, 1] */
	uint64_t seed;
	int allow_one_class; /* fd_split_table: 1 splits a table whose usable rows share one label */
};

/* The assignment on integer ids; everything the table layer and the tests need.
 *   nrow rows; group[r] < ngroup, stratum[r] < nstrata, usable[r] 0/1 (status ok).
 *   bin[r] (out, nrow): 0..K-1, FD_SPLIT_TEST or FD_SPLIT_EXCLUDED (usable 0).
 *   in[r * nfrac + f] (out, nrow*nfrac; may be NULL when nfrac is 0): 1 when row
 *   r belongs to subsample f. Test rows are never subsampled (all 1); excluded
 *   rows are in none (all 0). Nested by construction: in[f] implies in[f+1].
 * Algorithm (doc/split.md): every group's per-stratum count vector; a Philox
 * shuffle of the groups keyed by seed, then a stable sort by decreasing spread of
 * that vector; a greedy pass puts each group in the bin where the sum over bins
 * and strata of (share of the stratum in the bin - bin's target share)^2 grows
 * least; a local search then moves and swaps groups while that sum falls. The
 * test set is made first (two bins, targets 1-test and test), then K equal bins
 * on the rest. Subsamples: per fold, an ordering of its groups whose every prefix
 * keeps the fold's stratum proportions; subsample f is the prefix whose row count
 * is nearest f times the fold's rows.
 * The closest scikit-learn equivalent is StratifiedGroupKFold(n_splits=K,
 * shuffle=True, random_state=seed) with y = stratum; this one is never less
 * balanced on the data the tests use (tests/ref/split_ref.py).
 * Errors: fewer groups with usable rows than folds; a test set that would be
 * empty or leave fewer groups than folds; out of memory. The result depends only
 * on the ids, usable flags and opts, never on row order within a group. */
int fd_split_assign(size_t nrow, const uint32_t *group, uint32_t ngroup, const uint32_t *stratum,
		    uint32_t nstrata, const uint8_t *usable, const struct fd_split_opts *o,
		    int32_t *bin, uint8_t *in, struct fd_err *e);

/* What a split looks like, for the balance table on stderr. */
struct fd_split_stats {
	int folds, nfrac, nstrata;
	char **stratum_name;   /* nstrata, "label/source", sorted by label then source */
	/* count[((b * (nfrac + 1)) + f) * nstrata + s]: rows of stratum s in bin b
	 * (b = 0..K-1 folds, b = K test) and subsample f (f = nfrac: all rows). */
	size_t *count;
	size_t *groups;        /* groups[b * (nfrac + 1) + f], same indexing without s */
	size_t rows, excluded_rows, ngroups, excluded_groups;
};

void fd_split_stats_free(struct fd_split_stats *st);

/* Split an index table. in needs columns group, label, source and status
 * (found by name; "'<file>': missing column 'group'"); a usable row has status
 * "ok" and non-empty group, label and source ("'<file>': line N: empty group");
 * its label must be 0 or 1 ("line N: label 'fake' is not 0 (real) or 1
 * (fake)"), and a `path` column, when present, must not repeat ("line N:
 * path 'p' repeats line M": one image in two folds would leak).
 * The stratum of a row is (label, source); the group is the `group` column.
 * out (zeroed by the call; caller frees) receives every input column in order,
 * except an earlier fd-split's `fold` and `inNN` columns, which are replaced,
 * then `fold` ("0".."K-1", "test" or "excluded") and, per fraction, `in<percent>`
 * ("in20" for 0.2, "in12.5" for 0.125) holding 1 or 0. st (may be NULL) receives
 * the counts (caller frees with fd_split_stats_free). Usable rows that all
 * carry one label are an error ("the data set has one class only (label 0:
 * 80 usable rows, ...)") unless o->allow_one_class. Errors name the file. */
int fd_split_table(const struct fd_table *in, const struct fd_split_opts *o, struct fd_table *out,
		   struct fd_split_stats *st, struct fd_err *e);

/* Column name of a fraction: "in" and the percent with up to 6 significant
 * digits ("in20", "in100", "in12.5"). buf holds at least 32 bytes. */
void fd_split_frac_name(double frac, char *buf, size_t n);

#endif
