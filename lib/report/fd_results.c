/* fd_results: per-fold AUC rows from run directories and folds TSVs. */
#include "report/fd_results.h"

#include "core/fd_out.h"
#include "core/fd_table.h"
#include "eval/fd_metrics.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_EXCL 32

void fd_results_init(struct fd_results *rs)
{
	memset(rs, 0, sizeof *rs);
}

static void free_strs(char **s, int n)
{
	for (int i = 0; i < n; i++)
		free(s[i]);
	free(s);
}

void fd_results_free(struct fd_results *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->n; i++) {
		free(rs->r[i].cond);
		free(rs->r[i].model);
		free(rs->r[i].eval);
		free(rs->r[i].subset);
		free(rs->r[i].excluded);
	}
	free(rs->r);
	for (size_t i = 0; i < rs->nsc; i++) {
		struct fd_scores *c = &rs->sc[i];
		free(c->cond);
		free(c->model);
		free(c->eval);
		free(c->excluded);
		free(c->key);
		free(c->source);
		free(c->block);
		free(c->label);
		free(c->score);
	}
	free(rs->sc);
	free_strs(rs->cond, rs->ncond);
	free_strs(rs->model, rs->nmodel);
	free_strs(rs->source, rs->nsource);
	memset(rs, 0, sizeof *rs);
}

/* Add s to the list unless present; sorted keeps the list in strcmp order. */
static int list_add(char ***list, int *n, const char *s, int sorted, struct fd_err *e)
{
	for (int i = 0; i < *n; i++)
		if (strcmp((*list)[i], s) == 0)
			return 0;
	char **l = realloc(*list, (size_t)(*n + 1) * sizeof *l);
	char *d = strdup(s);
	if (!l || !d) {
		free(d);
		if (l)
			*list = l;
		return fd_err_set(e, "out of memory");
	}
	*list = l;
	int at = *n;
	if (sorted)
		while (at > 0 && strcmp(l[at - 1], s) > 0) {
			l[at] = l[at - 1];
			at--;
		}
	l[at] = d;
	(*n)++;
	return 0;
}

const struct fd_result *fd_results_find(const struct fd_results *rs, const char *cond,
					const char *model, int fold, const char *eval,
					const char *subset)
{
	for (size_t i = 0; i < rs->n; i++) {
		const struct fd_result *r = &rs->r[i];
		if (r->fold == fold && strcmp(r->cond, cond) == 0 && strcmp(r->model, model) == 0 &&
		    strcmp(r->eval, eval) == 0 && strcmp(r->subset, subset) == 0)
			return r;
	}
	return NULL;
}

/* Append a row (strings copied). A duplicate key with an equal AUC (both NAN
 * counts as equal) is skipped; with another AUC it is an error. */
static int add_row(struct fd_results *rs, const struct fd_result *v, struct fd_err *e)
{
	const struct fd_result *old = fd_results_find(rs, v->cond, v->model, v->fold, v->eval, v->subset);
	if (old) {
		if ((isnan(old->auc) && isnan(v->auc)) || fabs(old->auc - v->auc) <= 1e-12)
			return 0;
		return fd_err_set(e, "two different results for condition '%s', model '%s', fold %d, "
				  "eval '%s', subset '%s'", v->cond, v->model, v->fold, v->eval, v->subset);
	}
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? 2 * rs->cap : 64;
		struct fd_result *r = realloc(rs->r, cap * sizeof *r);
		if (!r)
			return fd_err_set(e, "out of memory");
		rs->r = r;
		rs->cap = cap;
	}
	struct fd_result *r = &rs->r[rs->n];
	*r = *v;
	r->cond = strdup(v->cond);
	r->model = strdup(v->model);
	r->eval = strdup(v->eval);
	r->subset = strdup(v->subset);
	r->excluded = strdup(v->excluded);
	if (!r->cond || !r->model || !r->eval || !r->subset || !r->excluded) {
		free(r->excluded);
		free(r->cond);
		free(r->model);
		free(r->eval);
		free(r->subset);
		return fd_err_set(e, "out of memory");
	}
	rs->n++;
	if (list_add(&rs->cond, &rs->ncond, v->cond, 0, e) < 0 ||
	    list_add(&rs->model, &rs->nmodel, v->model, 0, e) < 0)
		return -1;
	return 0;
}

/* Find "exclude_sources" anywhere in a JSON tree (depth first); its strings go
 * to out[]. Returns the count, 0 when absent, -1 when malformed. */
static int find_excl(json_t *j, char out[][128], int cap)
{
	if (json_is_object(j)) {
		const char *k;
		json_t *v;
		json_object_foreach(j, k, v) {
			if (strcmp(k, "exclude_sources") == 0 && json_is_array(v)) {
				size_t i;
				json_t *s;
				int n = 0;
				json_array_foreach(v, i, s) {
					if (!json_is_string(s) || n == cap ||
					    strlen(json_string_value(s)) >= 128)
						return -1;
					strcpy(out[n++], json_string_value(s));
				}
				return n;
			}
			int n = find_excl(v, out, cap);
			if (n != 0)
				return n;
		}
	} else if (json_is_array(j)) {
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v) {
			int n = find_excl(v, out, cap);
			if (n != 0)
				return n;
		}
	}
	return 0;
}

static int is_excl(const char *src, char excl[][128], int nexcl)
{
	for (int i = 0; i < nexcl; i++)
		if (strcmp(src, excl[i]) == 0)
			return 1;
	return 0;
}

/* Kinds of subsets a preds file is cut into. */
enum { SUB_ALL, SUB_SOURCE, SUB_IN, SUB_OUT };

/* Rows of t that belong to a subset: every real, and the fakes that the
 * subset takes. For the train eval, SUB_ALL leaves out excluded sources. */
static int take(int kind, const char *src, int label, const char *which, char excl[][128],
		int nexcl, int train)
{
	if (label == 0)
		return 1;
	switch (kind) {
	case SUB_ALL:
		return !(train && is_excl(src, excl, nexcl));
	case SUB_SOURCE:
		return strcmp(src, which) == 0;
	case SUB_IN:
		return !is_excl(src, excl, nexcl);
	default:
		return is_excl(src, excl, nexcl);
	}
}

static const struct fd_scores *scores_find(const struct fd_results *rs, const char *cond,
					  const char *model, int fold, const char *eval)
{
	for (size_t i = 0; i < rs->nsc; i++) {
		const struct fd_scores *c = &rs->sc[i];
		if (c->fold == fold && !strcmp(c->cond, cond) && !strcmp(c->model, model) &&
		    !strcmp(c->eval, eval))
			return c;
	}
	return NULL;
}

/* A row's key and index, sorted by key (qsort has no context argument). */
struct keyed {
	const char *key;
	size_t row;
};
static int cmp_keyed(const void *a, const void *b)
{
	return strcmp(((const struct keyed *)a)->key, ((const struct keyed *)b)->key);
}

/* Keep the rows of t (columns cl label, cs source, key column ck) with scores
 * sc[] as a score set sorted by key. A set already kept for the key
 * (cond, model, fold, eval) is left alone (the same run given twice). */
static int keep_scores(struct fd_results *rs, const struct fd_table *t, int cl, int cs, int ck,
		       const double *sc, const char *cond, const char *model, int fold,
		       const char *eval, const char *excluded, struct fd_err *e)
{
	if (scores_find(rs, cond, model, fold, eval))
		return 0;
	if (rs->nsc == rs->capsc) {
		size_t cap = rs->capsc ? 2 * rs->capsc : 16;
		struct fd_scores *n = realloc(rs->sc, cap * sizeof *n);
		if (!n)
			return fd_err_set(e, "out of memory");
		rs->sc = n;
		rs->capsc = cap;
	}
	struct fd_scores *c = &rs->sc[rs->nsc];
	memset(c, 0, sizeof *c);
	size_t n = t->nrow, bytes = 0;
	struct keyed *ord = malloc((n ? n : 1) * sizeof *ord);
	for (size_t i = 0; i < n; i++)
		bytes += strlen(fd_table_get(t, i, ck)) + strlen(fd_table_get(t, i, cs)) + 2;
	c->cond = strdup(cond);
	c->model = strdup(model);
	c->eval = strdup(eval);
	c->excluded = strdup(excluded);
	c->key = malloc(n * sizeof *c->key);
	c->source = malloc(n * sizeof *c->source);
	c->block = malloc(bytes);
	c->label = malloc(n);
	c->score = malloc(n * sizeof *c->score);
	if (!ord || !c->cond || !c->model || !c->eval || !c->excluded || !c->key || !c->source ||
	    !c->block || !c->label || !c->score) {
		free(ord);
		free(c->cond), free(c->model), free(c->eval), free(c->excluded), free(c->key);
		free(c->source), free(c->block), free(c->label), free(c->score);
		return fd_err_set(e, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		ord[i] = (struct keyed){ fd_table_get(t, i, ck), i };
	qsort(ord, n, sizeof *ord, cmp_keyed);
	char *p = c->block;
	for (size_t i = 0; i < n; i++) {
		size_t r = ord[i].row;
		c->key[i] = strcpy(p, fd_table_get(t, r, ck));
		p += strlen(p) + 1;
		c->source[i] = strcpy(p, fd_table_get(t, r, cs));
		p += strlen(p) + 1;
		c->label[i] = fd_table_get(t, r, cl)[0] == '1';
		c->score[i] = sc[r];
	}
	free(ord);
	c->fold = fold;
	c->n = n;
	rs->nsc++;
	return 0;
}

/* One preds file -> rows. */
static int add_preds(struct fd_results *rs, const char *path, const char *cond, const char *model,
		     int fold, const char *eval, char excl[][128], int nexcl, size_t n_train,
		     struct fd_err *e)
{
	char exs[MAX_EXCL * 129] = "-";
	for (int i = 0; i < nexcl; i++) {
		if (i)
			strcat(exs, ",");
		else
			exs[0] = '\0';
		strcat(exs, excl[i]);
	}
	struct fd_table t;
	fd_table_init(&t);
	double *score = NULL, *all = NULL;
	uint8_t *label = NULL;
	char **srcs = NULL;
	int nsrc = 0, rc = -1;
	if (fd_table_read(&t, path, e) < 0)
		goto out;
	int cl = fd_table_need(&t, "label", e), cs = fd_table_need(&t, "source", e);
	int cp = cl < 0 || cs < 0 ? -1 : fd_table_need(&t, "score", e);
	if (cp < 0)
		goto out;
	if (t.nrow == 0) {
		fd_err_set(e, "'%s': no rows", path);
		goto out;
	}
	score = malloc(t.nrow * sizeof *score);
	label = malloc(t.nrow);
	all = malloc(t.nrow * sizeof *all);
	if (!score || !label || !all) {
		fd_err_set(e, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < t.nrow; i++) {
		const char *l = fd_table_get(&t, i, cl);
		if (strcmp(l, "0") != 0 && strcmp(l, "1") != 0) {
			fd_err_set(e, "'%s': line %zu: label '%s' is not 0 or 1", path, i + 2, l);
			goto out;
		}
		if (l[0] == '1' && list_add(&srcs, &nsrc, fd_table_get(&t, i, cs), 1, e) < 0)
			goto out;
		const char *sv = fd_table_get(&t, i, cp);
		char *end;
		errno = 0;
		all[i] = strtod(sv, &end);
		if (end == sv || *end || errno) {
			fd_err_set(e, "'%s': line %zu: score '%s' is not a number", path, i + 2, sv);
			goto out;
		}
	}
	int train = strcmp(eval, "train") == 0;
	int nsub = 1 + nsrc + (nexcl ? 2 : 0);
	for (int s = 0; s < nsub; s++) {
		int kind = s == 0 ? SUB_ALL : s <= nsrc ? SUB_SOURCE : s == nsrc + 1 ? SUB_IN : SUB_OUT;
		const char *which = kind == SUB_SOURCE ? srcs[s - 1] : NULL;
		size_t m = 0, nr = 0, nf = 0;
		for (size_t i = 0; i < t.nrow; i++) {
			int lab = fd_table_get(&t, i, cl)[0] == '1';
			if (!take(kind, fd_table_get(&t, i, cs), lab, which, excl, nexcl, train))
				continue;
			score[m] = all[i];
			label[m++] = (uint8_t)lab;
			lab ? nf++ : nr++;
		}
		struct fd_result r = {
			.cond = (char *)cond, .model = (char *)model, .eval = (char *)eval,
			.subset = (char *)(kind == SUB_ALL ? "all" : kind == SUB_SOURCE ? which
					   : kind == SUB_IN ? "in-source" : "held-out"),
			.excluded = exs, .fold = fold, .n_real = nr, .n_fake = nf, .n_train = n_train, .auc = NAN,
			.ap = NAN, .eer = NAN,
		};
		if (m > 0) {
			int a = fd_auc(score, label, m, &r.auc, e);
			if (a == 0)
				a = fd_average_precision(score, label, m, &r.ap, e);
			if (a == 0)
				a = fd_eer(score, label, m, FD_EER_INTERP, &r.eer, e);
			if (a < 0) {
				fd_err_ctx(e, "'%s'", path);
				goto out;
			}
		}
		if (add_row(rs, &r, e) < 0)
			goto out;
		if (kind == SUB_SOURCE && list_add(&rs->source, &rs->nsource, which, 1, e) < 0)
			goto out;
	}
	/* the rows themselves, for the statistics on scores (not the big train file) */
	int ck = fd_table_col(&t, "path");
	if (ck < 0)
		ck = fd_table_col(&t, "row");
	if (!train && ck >= 0 &&
	    keep_scores(rs, &t, cl, cs, ck, all, cond, model, fold, eval, exs, e) < 0)
		goto out;
	rc = 0;
out:
	free(score);
	free(all);
	free(label);
	free_strs(srcs, nsrc);
	fd_table_free(&t);
	return rc;
}

/* Number of trained-on rows of a train preds file: all rows but excluded fakes. */
static int count_train(const char *path, char excl[][128], int nexcl, size_t *n, struct fd_err *e)
{
	struct fd_table t;
	fd_table_init(&t);
	int rc = -1;
	if (fd_table_read(&t, path, e) < 0)
		goto out;
	int cl = fd_table_need(&t, "label", e), cs = cl < 0 ? -1 : fd_table_need(&t, "source", e);
	if (cs < 0)
		goto out;
	*n = 0;
	for (size_t i = 0; i < t.nrow; i++)
		if (!(fd_table_get(&t, i, cl)[0] == '1' && is_excl(fd_table_get(&t, i, cs), excl, nexcl)))
			(*n)++;
	rc = 0;
out:
	fd_table_free(&t);
	return rc;
}

/* The last path component of p (without trailing slashes) into out. */
static void component(const char *p, int up, char *out, size_t cap)
{
	size_t end = strlen(p);
	while (end > 1 && p[end - 1] == '/')
		end--;
	for (;;) {
		size_t start = end;
		while (start > 0 && p[start - 1] != '/')
			start--;
		if (up == 0 || start == 0) {
			size_t n = up == 0 ? end - start : 0;
			if (n >= cap)
				n = cap - 1;
			memcpy(out, p + start, n);
			out[n] = '\0';
			return;
		}
		end = start - 1;
		while (end > 1 && p[end - 1] == '/')
			end--;
		up--;
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int fd_results_add_run(struct fd_results *rs, const char *dir, const char *cond, struct fd_err *e)
{
	char base[256], setting[256], model[256], path[4096];
	component(dir, 0, base, sizeof base);
	component(dir, 1, setting, sizeof setting);
	component(dir, 2, model, sizeof model);
	char *end;
	long fold = -1;
	if (strncmp(base, "fold", 4) == 0 && base[4] >= '0' && base[4] <= '9')
		fold = strtol(base + 4, &end, 10);
	if (fold < 0 || *end || fold > 1000 || !*setting || !*model)
		return fd_err_set(e, "run '%s': expected a directory .../MODEL/SETTING/foldK", dir);
	if (!cond)
		cond = setting;

	char excl[MAX_EXCL][128];
	int nexcl = 0;
	snprintf(path, sizeof path, "%s/run.json", dir);
	FILE *f = fopen(path, "rb");
	if (f) {
		json_error_t je;
		json_t *j = json_loadf(f, 0, &je);
		fclose(f);
		if (!j)
			return fd_err_set(e, "cannot read '%s': line %d: %s", path, je.line, je.text);
		nexcl = find_excl(j, excl, MAX_EXCL);
		json_decref(j);
		if (nexcl < 0)
			return fd_err_set(e, "'%s': exclude_sources is not a list of source names", path);
	} else if (errno != ENOENT) {
		return fd_err_sys(e, errno, "cannot read '%s'", path);
	}

	DIR *d = opendir(dir);
	if (!d)
		return fd_err_sys(e, errno, "run '%s'", dir);
	char **names = NULL;
	size_t nn = 0;
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l > 10 && strncmp(de->d_name, "preds-", 6) == 0 &&
		    strcmp(de->d_name + l - 4, ".tsv") == 0) {
			char **nm = realloc(names, (nn + 1) * sizeof *nm);
			if (!nm || !(nm[nn] = strdup(de->d_name))) {
				if (nm)
					names = nm;
				rc = fd_err_set(e, "out of memory");
				break;
			}
			names = nm;
			nn++;
		}
	}
	closedir(d);
	if (rc == 0 && nn == 0)
		rc = fd_err_set(e, "run '%s': no preds-*.tsv files", dir);
	if (rc == 0)
		qsort(names, nn, sizeof *names, cmp_str);
	/* without the held-out fold's scores the run would drop out of every
	 * table silently (a fold fewer, or an empty table) */
	int has_val = 0;
	for (size_t i = 0; rc == 0 && i < nn; i++)
		has_val |= strcmp(names[i], "preds-val.tsv") == 0;
	if (rc == 0 && !has_val)
		rc = fd_err_set(e, "run '%s': no preds-val.tsv (fd-eval of the held-out fold)", dir);
	size_t n_train = 0;
	snprintf(path, sizeof path, "%s/preds-train.tsv", dir);
	if (rc == 0 && access(path, F_OK) == 0)
		rc = count_train(path, excl, nexcl, &n_train, e);
	for (size_t i = 0; rc == 0 && i < nn; i++) {
		char eval[256];
		size_t l = strlen(names[i]) - 10;
		if (l >= sizeof eval)
			l = sizeof eval - 1;
		memcpy(eval, names[i] + 6, l);
		eval[l] = '\0';
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		rc = add_preds(rs, path, cond, model, (int)fold, eval, excl, nexcl, n_train, e);
	}
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	return rc;
}

int fd_results_add(struct fd_results *rs, const struct fd_result *r, struct fd_err *e)
{
	if (add_row(rs, r, e) < 0)
		return -1;
	if (strcmp(r->subset, "all") && strcmp(r->subset, "in-source") && strcmp(r->subset, "held-out"))
		return list_add(&rs->source, &rs->nsource, r->subset, 1, e);
	return 0;
}

static const char *const COLS[] = { "condition", "model", "fold", "eval", "subset",
				    "n_real", "n_fake", "n_train", "auc", "excluded", "ap", "eer" };
#define NCOLS 12
#define NCOLS_NEEDED 10 /* ap, eer: optional (tables of an older fd-report) */

int fd_results_add_tsv(struct fd_results *rs, const char *path, struct fd_err *e)
{
	struct fd_table t;
	fd_table_init(&t);
	int c[NCOLS], rc = -1;
	if (fd_table_read(&t, path, e) < 0)
		goto out;
	for (int i = 0; i < NCOLS_NEEDED; i++)
		if ((c[i] = fd_table_need(&t, COLS[i], e)) < 0)
			goto out;
	for (int i = NCOLS_NEEDED; i < NCOLS; i++)
		c[i] = fd_table_col(&t, COLS[i]);
	for (size_t i = 0; i < t.nrow; i++) {
		struct fd_result r = {
			.cond = (char *)fd_table_get(&t, i, c[0]),
			.model = (char *)fd_table_get(&t, i, c[1]),
			.eval = (char *)fd_table_get(&t, i, c[3]),
			.subset = (char *)fd_table_get(&t, i, c[4]),
			.excluded = (char *)fd_table_get(&t, i, c[9]),
		};
		const char *v[5] = { fd_table_get(&t, i, c[2]), fd_table_get(&t, i, c[5]),
				     fd_table_get(&t, i, c[6]), fd_table_get(&t, i, c[7]),
				     fd_table_get(&t, i, c[8]) };
		long long iv[4];
		int bad = -1;
		for (int k = 0; k < 4 && bad < 0; k++) {
			char *end;
			errno = 0;
			iv[k] = strtoll(v[k], &end, 10);
			if (end == v[k] || *end || errno || iv[k] < 0)
				bad = k;
		}
		if (bad < 0) {
			char *end;
			if (strcmp(v[4], "NA") == 0)
				r.auc = NAN;
			else if ((r.auc = strtod(v[4], &end)), end == v[4] || *end || !(r.auc >= 0 && r.auc <= 1))
				bad = 4;
		}
		for (int k = 10; k < NCOLS && bad < 0; k++) {
			double *dst = k == 10 ? &r.ap : &r.eer;
			const char *x = c[k] < 0 ? "NA" : fd_table_get(&t, i, c[k]);
			char *end;
			if (strcmp(x, "NA") == 0)
				*dst = NAN;
			else if ((*dst = strtod(x, &end)), end == x || *end || !(*dst >= 0 && *dst <= 1)) {
				v[4] = x;
				bad = 4;
			}
		}
		if (bad >= 0 || !*r.cond || !*r.model || !*r.eval || !*r.subset || !*r.excluded) {
			fd_err_set(e, "'%s': line %zu: bad value '%s'", path, i + 2,
				   bad >= 0 ? v[bad] : "");
			goto out;
		}
		r.fold = (int)iv[0];
		r.n_real = (size_t)iv[1];
		r.n_fake = (size_t)iv[2];
		r.n_train = (size_t)iv[3];
		if (fd_results_add(rs, &r, e) < 0) {
			fd_err_ctx(e, "'%s': line %zu", path, i + 2);
			goto out;
		}
	}
	rc = 0;
out:
	fd_table_free(&t);
	return rc;
}

int fd_results_write(const struct fd_results *rs, const char *path, struct fd_err *e)
{
	struct fd_out o;
	if (fd_out_open(&o, path, e) < 0)
		return -1;
	for (int i = 0; i < NCOLS; i++)
		fprintf(o.f, "%s%c", COLS[i], i == NCOLS - 1 ? '\n' : '\t');
	for (size_t i = 0; i < rs->n; i++) {
		const struct fd_result *r = &rs->r[i];
		fprintf(o.f, "%s\t%s\t%d\t%s\t%s\t%zu\t%zu\t%zu\t", r->cond, r->model, r->fold, r->eval,
			r->subset, r->n_real, r->n_fake, r->n_train);
		double v[3] = { r->auc, r->ap, r->eer };
		for (int k = 0; k < 3; k++) {
			if (isnan(v[k]))
				fprintf(o.f, "NA");
			else
				fprintf(o.f, "%.17g", v[k]);
			fprintf(o.f, k == 0 ? "\t%s\t" : k == 1 ? "\t" : "\n", r->excluded);
		}
	}
	return fd_out_commit(&o, e);
}

int fd_results_folds(const struct fd_results *rs, const char *cond, const char *model,
		     const char *eval, int *fold, int cap)
{
	int n = 0;
	for (size_t i = 0; i < rs->n; i++) {
		const struct fd_result *r = &rs->r[i];
		if (strcmp(r->subset, "all") || strcmp(r->cond, cond) || strcmp(r->model, model) ||
		    strcmp(r->eval, eval))
			continue;
		int at = n;
		if (n == cap)
			break;
		while (at > 0 && fold[at - 1] > r->fold) {
			fold[at] = fold[at - 1];
			at--;
		}
		fold[at] = r->fold;
		n++;
	}
	return n;
}

int fd_results_aucs(const struct fd_results *rs, const char *cond, const char *model,
		    const char *eval, const char *subset, const int *fold, int n, double *auc)
{
	int ok = 0;
	for (int i = 0; i < n; i++) {
		const struct fd_result *r = fd_results_find(rs, cond, model, fold[i], eval, subset);
		auc[i] = r ? r->auc : NAN;
		ok += !isnan(auc[i]);
	}
	return ok;
}

double fd_results_ratio(const struct fd_results *rs, const char *cond, const char *model,
			const int *fold, int n)
{
	return fd_results_ratio_eval(rs, cond, model, "val", fold, n);
}

double fd_results_ratio_eval(const struct fd_results *rs, const char *cond, const char *model,
			     const char *eval, const int *fold, int n)
{
	double sum = 0;
	int k = 0;
	for (int i = 0; i < n; i++) {
		const struct fd_result *r = fd_results_find(rs, cond, model, fold[i], eval, "all");
		if (r && r->n_train > 0) {
			sum += (double)(r->n_real + r->n_fake) / (double)r->n_train;
			k++;
		}
	}
	if (k == n && n > 0)
		return sum / n;
	return n > 1 ? 1.0 / (n - 1) : NAN;
}

void fd_rows_free(struct fd_rows *r)
{
	if (!r)
		return;
	free(r->key);
	free(r->label);
	free(r->score);
	memset(r, 0, sizeof *r);
}

/* Whether row i of c belongs to subset (see fd_results_add_run). */
static int in_subset(const struct fd_scores *c, size_t i, const char *subset)
{
	if (c->label[i] == 0 || !strcmp(subset, "all"))
		return 1;
	char excl[MAX_EXCL][128];
	int nexcl = 0;
	if (strcmp(c->excluded, "-")) {
		const char *p = c->excluded;
		while (*p && nexcl < MAX_EXCL) {
			size_t l = strcspn(p, ",");
			if (l >= 128)
				l = 127;
			memcpy(excl[nexcl], p, l);
			excl[nexcl++][l] = '\0';
			p += strcspn(p, ",");
			p += *p == ',';
		}
	}
	if (!strcmp(subset, "in-source"))
		return !is_excl(c->source[i], excl, nexcl);
	if (!strcmp(subset, "held-out"))
		return is_excl(c->source[i], excl, nexcl);
	return !strcmp(c->source[i], subset);
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int fd_results_rows(struct fd_rows *out, const struct fd_results *rs, const char *cond,
		    const char *model, const char *eval, const char *subset, const int *fold, int n,
		    enum fd_rows_mode mode, struct fd_err *e)
{
	memset(out, 0, sizeof *out);
	const struct fd_scores *c[FD_RESULTS_MAXF];
	size_t total = 0;
	if (n <= 0 || n > FD_RESULTS_MAXF)
		return fd_err_set(e, "%s %s %s: no folds", cond, model, eval), FD_EVAL_UNDEFINED;
	for (int k = 0; k < n; k++) {
		c[k] = scores_find(rs, cond, model, fold[k], eval);
		if (!c[k]) {
			fd_err_set(e, "%s %s fold %d: no scored rows of eval '%s'", cond, model, fold[k], eval);
			return FD_EVAL_UNDEFINED;
		}
		total += c[k]->n;
	}
	if (mode == FD_ROWS_ENSEMBLE)
		for (int k = 1; k < n; k++) {
			int same = c[k]->n == c[0]->n;
			for (size_t i = 0; same && i < c[0]->n; i++)
				same = !strcmp(c[k]->key[i], c[0]->key[i]) && c[k]->label[i] == c[0]->label[i];
			if (!same)
				return fd_err_set(e, "%s %s: eval '%s' of fold %d scores other rows than fold %d "
						  "(an ensemble needs the same rows)", cond, model, eval,
						  fold[k], fold[0]);
		}
	size_t cap = mode == FD_ROWS_ENSEMBLE ? c[0]->n : total;
	out->key = malloc((cap ? cap : 1) * sizeof *out->key);
	out->label = malloc(cap ? cap : 1);
	out->score = malloc((cap ? cap : 1) * sizeof *out->score);
	if (!out->key || !out->label || !out->score) {
		fd_rows_free(out);
		return fd_err_set(e, "out of memory");
	}
	if (mode == FD_ROWS_ENSEMBLE) {
		for (size_t i = 0; i < c[0]->n; i++) {
			if (!in_subset(c[0], i, subset))
				continue;
			double s = 0;
			for (int k = 0; k < n; k++)
				s += c[k]->score[i];
			out->key[out->n] = c[0]->key[i];
			out->label[out->n] = c[0]->label[i];
			out->score[out->n++] = s / n;
		}
		return 0;
	}
	/* pool: sort (key, index) pairs to order the rows and find duplicates */
	struct kv {
		const char *key;
		uint8_t label;
		double score;
	} *kv = malloc((total ? total : 1) * sizeof *kv);
	if (!kv) {
		fd_rows_free(out);
		return fd_err_set(e, "out of memory");
	}
	size_t m = 0;
	for (int k = 0; k < n; k++)
		for (size_t i = 0; i < c[k]->n; i++)
			if (in_subset(c[k], i, subset))
				kv[m++] = (struct kv){ c[k]->key[i], c[k]->label[i], c[k]->score[i] };
	qsort(kv, m, sizeof *kv, cmp_key);
	for (size_t i = 0; i < m; i++) {
		if (i && !strcmp(kv[i].key, kv[i - 1].key)) {
			fd_err_set(e, "%s %s: row '%s' is in two folds of eval '%s'", cond, model, kv[i].key, eval);
			free(kv);
			fd_rows_free(out);
			return -1;
		}
		out->key[i] = kv[i].key;
		out->label[i] = kv[i].label;
		out->score[i] = kv[i].score;
	}
	out->n = m;
	free(kv);
	return 0;
}

int fd_results_check_same_rows(const struct fd_results *rs, const char *eval, struct fd_err *e)
{
	for (size_t i = 0; i < rs->nsc; i++) {
		const struct fd_scores *a = &rs->sc[i];
		if (strcmp(a->eval, eval))
			continue;
		for (size_t j = i + 1; j < rs->nsc; j++) {
			const struct fd_scores *b = &rs->sc[j];
			if (strcmp(b->eval, eval) || strcmp(a->cond, b->cond) || strcmp(a->model, b->model))
				continue;
			size_t k = 0;
			while (k < a->n && k < b->n && !strcmp(a->key[k], b->key[k]) && a->label[k] == b->label[k])
				k++;
			if (k < a->n || k < b->n)
				return fd_err_set(e, "condition '%s', model '%s': preds-%s.tsv of fold %d and fold %d "
						  "score different rows (first difference: '%s'); the fold models "
						  "must score the same %s rows", a->cond, a->model, eval, a->fold,
						  b->fold, k < a->n ? a->key[k] : b->key[k], eval);
		}
	}
	return 0;
}
