/* fd_split: greedy + local-search stratified group K-fold, test hold-out and
 * nested subsamples. The design and its reasons are in doc/split.md. */
#include "data/fd_split.h"
#include "core/fd_rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Improvements smaller than this are rounding noise: a move of one row in a
 * stratum of 10^6 rows changes a share by 10^-6, its square by 10^-12. */
#define EPS 1e-15
/* Swaps cost bins^2 * types^2 per pass; above this many distinct group
 * compositions only moves are tried. */
#define SWAP_MAX_TYPES 256
#define MAX_PASSES 200

/* The groups seen as count vectors, shared by every phase. */
struct sp {
	uint32_t G, S, P;
	uint32_t *gcount;  /* G*S usable rows of group g in stratum s */
	uint32_t *gsize;   /* G usable rows of group g */
	uint32_t *gtype;   /* G composition id (groups with equal gcount share it) */
	uint32_t *tcount;  /* P*S composition of type p */
	uint32_t *tsize;   /* P rows of type p */
};

static void sp_free(struct sp *s)
{
	free(s->gcount);
	free(s->gsize);
	free(s->gtype);
	free(s->tcount);
	free(s->tsize);
}

/* qsort contexts: the C library has no qsort_r in C11, so sort indices of a
 * small struct array that carries its own keys. */
struct gkey {
	double spread;
	uint32_t size, pos, id;
};

static int gkey_cmp(const void *a, const void *b)
{
	const struct gkey *x = a, *y = b;
	if (x->spread != y->spread)
		return x->spread > y->spread ? -1 : 1;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return (x->pos > y->pos) - (x->pos < y->pos);
}

/* For sorting groups by composition to find the types. */
struct tkey {
	const uint32_t *v;
	uint32_t S, id;
};

static int tkey_cmp(const void *a, const void *b)
{
	const struct tkey *x = a, *y = b;
	for (uint32_t s = 0; s < x->S; s++)
		if (x->v[s] != y->v[s])
			return x->v[s] < y->v[s] ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

static int find_types(struct sp *s, const uint32_t *ids, uint32_t n, struct fd_err *e)
{
	struct tkey *k = malloc((n ? n : 1) * sizeof *k);
	s->tcount = malloc(((size_t)n * s->S + 1) * sizeof *s->tcount);
	s->tsize = malloc((n + 1) * sizeof *s->tsize);
	if (!k || !s->tcount || !s->tsize) {
		free(k);
		return fd_err_set(e, "out of memory");
	}
	for (uint32_t i = 0; i < n; i++)
		k[i] = (struct tkey){ s->gcount + (size_t)ids[i] * s->S, s->S, ids[i] };
	qsort(k, n, sizeof *k, tkey_cmp);
	s->P = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (i == 0 || memcmp(k[i].v, k[i - 1].v, s->S * sizeof *k[i].v) != 0) {
			memcpy(s->tcount + (size_t)s->P * s->S, k[i].v, s->S * sizeof *k[i].v);
			s->tsize[s->P] = s->gsize[k[i].id];
			s->P++;
		}
		s->gtype[k[i].id] = s->P - 1;
	}
	free(k);
	return 0;
}

/* Squared deviation of a bin's share of a stratum from the bin's target. */
static inline double dev(double c, double inv, double w)
{
	double d = c * inv - w;
	return d * d;
}

/* Partition the groups order[0..n) into B bins with target shares w[B]:
 * greedy in the given order, then local search by moves and swaps of whole
 * groups (tracked per composition type), minimising
 *   J = sum_b sum_s (c[b][s] / T[s] - w[b])^2.
 * gbin[g] receives the bin of each listed group. */
static int partition(const struct sp *s, const uint32_t *order, uint32_t n, int B, const double *w,
		     int32_t *gbin, struct fd_err *e)
{
	uint32_t S = s->S, P = s->P;
	double *inv = calloc(S, sizeof *inv);
	double *c = calloc((size_t)B * S, sizeof *c);
	double *nb = calloc((size_t)B, sizeof *nb);
	long *cnt = calloc((size_t)B * P, sizeof *cnt);
	long *tgt = calloc((size_t)B * P, sizeof *tgt);
	int rc = -1;
	if (!inv || !c || !nb || !cnt || !tgt) {
		fd_err_set(e, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t t = 0; t < S; t++)
			inv[t] += s->gcount[(size_t)order[i] * S + t];
	for (uint32_t t = 0; t < S; t++)
		inv[t] = inv[t] > 0 ? 1.0 / inv[t] : 0;

	/* Greedy: each group where J grows least; ties to the emptiest bin
	 * relative to its target, then the lowest index. */
	for (uint32_t i = 0; i < n; i++) {
		const uint32_t *g = s->gcount + (size_t)order[i] * S;
		int best = -1;
		double bd = 0, bf = 0;
		for (int b = 0; b < B; b++) {
			double d = 0;
			for (uint32_t t = 0; t < S; t++)
				if (g[t])
					d += dev(c[b * S + t] + g[t], inv[t], w[b]) -
					     dev(c[b * S + t], inv[t], w[b]);
			double fill = nb[b] / w[b];
			if (best < 0 || d < bd - EPS || (d <= bd + EPS && fill < bf)) {
				best = b;
				bd = d;
				bf = fill;
			}
		}
		gbin[order[i]] = best;
		for (uint32_t t = 0; t < S; t++)
			c[best * S + t] += g[t];
		nb[best] += s->gsize[order[i]];
		cnt[(size_t)best * P + s->gtype[order[i]]]++;
	}

	/* Local search on type counts: first-improvement moves, then swaps. */
	memcpy(tgt, cnt, (size_t)B * P * sizeof *tgt);
	for (int pass = 0; pass < MAX_PASSES; pass++) {
		int improved = 0;
		for (int a = 0; a < B; a++)
			for (uint32_t p = 0; p < P; p++)
				for (int b = 0; b < B; b++) {
					if (b == a || tgt[(size_t)a * P + p] == 0)
						continue;
					const uint32_t *g = s->tcount + (size_t)p * S;
					double d = 0;
					for (uint32_t t = 0; t < S; t++)
						if (g[t])
							d += dev(c[a * S + t] - g[t], inv[t], w[a]) -
							     dev(c[a * S + t], inv[t], w[a]) +
							     dev(c[b * S + t] + g[t], inv[t], w[b]) -
							     dev(c[b * S + t], inv[t], w[b]);
					if (d < -EPS) {
						for (uint32_t t = 0; t < S; t++) {
							c[a * S + t] -= g[t];
							c[b * S + t] += g[t];
						}
						tgt[(size_t)a * P + p]--;
						tgt[(size_t)b * P + p]++;
						improved = 1;
					}
				}
		if (P <= SWAP_MAX_TYPES)
			for (int a = 0; a < B; a++)
				for (int b = a + 1; b < B; b++)
					for (uint32_t p = 0; p < P; p++)
						for (uint32_t q = 0; q < P; q++) {
							if (q == p || tgt[(size_t)a * P + p] == 0 ||
							    tgt[(size_t)b * P + q] == 0)
								continue;
							const uint32_t *gp = s->tcount + (size_t)p * S;
							const uint32_t *gq = s->tcount + (size_t)q * S;
							double d = 0;
							for (uint32_t t = 0; t < S; t++) {
								double x = (double)gq[t] - gp[t];
								if (x != 0)
									d += dev(c[a * S + t] + x, inv[t], w[a]) -
									     dev(c[a * S + t], inv[t], w[a]) +
									     dev(c[b * S + t] - x, inv[t], w[b]) -
									     dev(c[b * S + t], inv[t], w[b]);
							}
							if (d < -EPS) {
								for (uint32_t t = 0; t < S; t++) {
									double x = (double)gq[t] - gp[t];
									c[a * S + t] += x;
									c[b * S + t] -= x;
								}
								tgt[(size_t)a * P + p]--;
								tgt[(size_t)a * P + q]++;
								tgt[(size_t)b * P + q]--;
								tgt[(size_t)b * P + p]++;
								improved = 1;
							}
						}
		if (!improved)
			break;
	}

	/* Realise the type counts on groups: the groups the greedy pass placed
	 * last leave a bin with a surplus first, for the lowest bin in deficit. */
	for (uint32_t i = n; i-- > 0;) {
		uint32_t g = order[i], p = s->gtype[g];
		int a = gbin[g];
		if (cnt[(size_t)a * P + p] <= tgt[(size_t)a * P + p])
			continue;
		for (int b = 0; b < B; b++)
			if (cnt[(size_t)b * P + p] < tgt[(size_t)b * P + p]) {
				cnt[(size_t)a * P + p]--;
				cnt[(size_t)b * P + p]++;
				gbin[g] = b;
				break;
			}
	}
	rc = 0;
out:
	free(inv);
	free(c);
	free(nb);
	free(cnt);
	free(tgt);
	return rc;
}

/* Order the groups of one fold (list[0..n), in shuffled order) so that every
 * prefix keeps the fold's stratum proportions, and write each group's rank. */
static int order_fold(const struct sp *s, const uint32_t *list, uint32_t n, uint32_t *rank,
		      uint32_t *cum, struct fd_err *e)
{
	uint32_t S = s->S, P = s->P;
	double *C = calloc(S, sizeof *C), *pre = calloc(S, sizeof *pre);
	uint32_t *head = calloc(P, sizeof *head), *rem = calloc(P, sizeof *rem);
	uint32_t *byt = malloc((n ? n : 1) * sizeof *byt), *start = calloc(P + 1, sizeof *start);
	int rc = -1;
	if (!C || !pre || !head || !rem || !byt || !start) {
		fd_err_set(e, "out of memory");
		goto out;
	}
	double N = 0;
	for (uint32_t i = 0; i < n; i++) {
		for (uint32_t t = 0; t < S; t++)
			C[t] += s->gcount[(size_t)list[i] * S + t];
		N += s->gsize[list[i]];
		rem[s->gtype[list[i]]]++;
	}
	/* Bucket the fold's groups by type, keeping their shuffled order. */
	for (uint32_t p = 0; p < P; p++)
		start[p + 1] = start[p] + rem[p];
	for (uint32_t p = 0; p < P; p++)
		head[p] = start[p];
	for (uint32_t i = 0; i < n; i++)
		byt[head[s->gtype[list[i]]]++] = list[i];
	for (uint32_t p = 0; p < P; p++)
		head[p] = start[p];
	double R = 0;
	for (uint32_t k = 0; k < n; k++) {
		int64_t best = -1;
		double bc = 0;
		for (uint32_t p = 0; p < P; p++) {
			if (!rem[p])
				continue;
			const uint32_t *g = s->tcount + (size_t)p * S;
			double tau = (R + s->tsize[p]) / N, cost = 0;
			for (uint32_t t = 0; t < S; t++)
				if (C[t] > 0) {
					double d = pre[t] + g[t] - tau * C[t];
					cost += d * d / C[t];
				}
			if (best < 0 || cost < bc - EPS) {
				best = p;
				bc = cost;
			}
		}
		uint32_t g = byt[head[best]++];
		rem[best]--;
		rank[g] = k;
		for (uint32_t t = 0; t < S; t++)
			pre[t] += s->gcount[(size_t)g * S + t];
		R += s->gsize[g];
		cum[k] = (uint32_t)R;
	}
	rc = 0;
out:
	free(C);
	free(pre);
	free(head);
	free(rem);
	free(byt);
	free(start);
	return rc;
}

int fd_split_assign(size_t nrow, const uint32_t *group, uint32_t ngroup, const uint32_t *stratum,
		    uint32_t nstrata, const uint8_t *usable, const struct fd_split_opts *o,
		    int32_t *bin, uint8_t *in, struct fd_err *e)
{
	struct sp s = { .G = ngroup, .S = nstrata ? nstrata : 1 };
	int K = o->folds, rc = -1;
	if (K < 2 || K > FD_SPLIT_MAX_FOLDS || o->nfrac < 0 || o->nfrac > FD_SPLIT_MAX_FRACS ||
	    !(o->test >= 0 && o->test < 1))
		return fd_err_set(e, "bad split options (folds %d, test %g, %d fractions)", K, o->test,
				  o->nfrac);
	uint32_t *ids = NULL, *order = NULL, *rank = NULL, *cum = NULL, *list = NULL;
	uint32_t *cut = NULL;
	int32_t *gbin = NULL;
	struct gkey *k = NULL;
	s.gcount = calloc((size_t)s.G * s.S + 1, sizeof *s.gcount);
	s.gsize = calloc((size_t)s.G + 1, sizeof *s.gsize);
	s.gtype = calloc((size_t)s.G + 1, sizeof *s.gtype);
	ids = malloc(((size_t)s.G + 1) * sizeof *ids);
	order = malloc(((size_t)s.G + 1) * sizeof *order);
	rank = calloc((size_t)s.G + 1, sizeof *rank);
	cum = malloc(((size_t)s.G + 1) * sizeof *cum);
	list = malloc(((size_t)s.G + 1) * sizeof *list);
	gbin = malloc(((size_t)s.G + 1) * sizeof *gbin);
	cut = calloc((size_t)(K + 1) * (o->nfrac + 1), sizeof *cut);
	k = malloc(((size_t)s.G + 1) * sizeof *k);
	if (!s.gcount || !s.gsize || !s.gtype || !ids || !order || !rank || !cum || !list ||
	    !gbin || !cut || !k) {
		fd_err_set(e, "out of memory");
		goto out;
	}
	for (size_t r = 0; r < nrow; r++)
		if (usable[r]) {
			s.gcount[(size_t)group[r] * s.S + stratum[r]]++;
			s.gsize[group[r]]++;
		}
	uint32_t n = 0;
	for (uint32_t g = 0; g < s.G; g++) {
		gbin[g] = FD_SPLIT_EXCLUDED;
		if (s.gsize[g])
			ids[n++] = g;
	}
	if (n < (uint32_t)K) {
		fd_err_set(e, "%u groups with usable rows, fewer than %d folds", n, K);
		goto out;
	}
	if (find_types(&s, ids, n, e) < 0)
		goto out;

	/* Seeded shuffle (ids are in name order, so the result depends only on
	 * the set of groups and the seed), then hardest groups first. */
	struct fd_rng rng;
	fd_rng_init(&rng, o->seed, fd_hash_str("fd-split/order"));
	fd_rng_shuffle(&rng, ids, n);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t g = ids[i];
		double m = (double)s.gsize[g] / s.S, v = 0;
		for (uint32_t t = 0; t < s.S; t++) {
			double d = s.gcount[(size_t)g * s.S + t] - m;
			v += d * d;
		}
		k[i] = (struct gkey){ sqrt(v / s.S), s.gsize[g], i, g };
	}
	qsort(k, n, sizeof *k, gkey_cmp);
	for (uint32_t i = 0; i < n; i++)
		order[i] = k[i].id;

	/* Test hold-out: bin 1 of a two-bin partition. */
	uint32_t ncv = n;
	if (o->test > 0) {
		double w[2] = { 1 - o->test, o->test };
		if (partition(&s, order, n, 2, w, gbin, e) < 0)
			goto out;
		ncv = 0;
		for (uint32_t i = 0; i < n; i++) {
			if (gbin[order[i]] == 1)
				gbin[order[i]] = FD_SPLIT_TEST;
			else
				list[ncv++] = order[i];
		}
		if (ncv == n) {
			fd_err_set(e, "test share %g of %u groups gives an empty test set", o->test, n);
			goto out;
		}
		if (ncv < (uint32_t)K) {
			fd_err_set(e, "%u groups left after the test set, fewer than %d folds", ncv, K);
			goto out;
		}
	} else {
		memcpy(list, order, n * sizeof *list);
	}
	double wk[FD_SPLIT_MAX_FOLDS] = { 0 };
	for (int b = 0; b < K && b < FD_SPLIT_MAX_FOLDS; b++)
		wk[b] = 1.0 / K;
	if (partition(&s, list, ncv, K, wk, gbin, e) < 0)
		goto out;

	/* Subsamples: per fold, a balanced ordering and one prefix per fraction. */
	for (int b = 0; b < K; b++) {
		uint32_t m = 0;
		for (uint32_t i = 0; i < ncv; i++)
			if (gbin[list[i]] == b)
				order[m++] = list[i];
		if (m == 0) {
			fd_err_set(e, "fold %d would be empty", b);
			goto out;
		}
		if (o->nfrac == 0)
			continue;
		if (order_fold(&s, order, m, rank, cum, e) < 0)
			goto out;
		for (int f = 0; f < o->nfrac; f++) {
			double x = o->frac[f] * cum[m - 1];
			uint32_t L = 0;
			double bd = x;
			for (uint32_t j = 0; j < m; j++)
				if (fabs(cum[j] - x) < bd) {
					bd = fabs(cum[j] - x);
					L = j + 1;
				}
			cut[b * o->nfrac + f] = L;
		}
	}

	for (size_t r = 0; r < nrow; r++) {
		int32_t b = usable[r] ? gbin[group[r]] : FD_SPLIT_EXCLUDED;
		bin[r] = b;
		for (int f = 0; f < o->nfrac; f++)
			in[r * o->nfrac + f] = b == FD_SPLIT_TEST ||
					       (b >= 0 && rank[group[r]] < cut[b * o->nfrac + f]);
	}
	rc = 0;
out:
	sp_free(&s);
	free(ids);
	free(order);
	free(rank);
	free(cum);
	free(list);
	free(gbin);
	free(cut);
	free(k);
	return rc;
}

/* Rows keyed by one or two strings, for giving names dense sorted ids. */
struct skey {
	const char *a, *b;
	size_t row;
};

static int skey_cmp(const void *x, const void *y)
{
	const struct skey *p = x, *q = y;
	int c = strcmp(p->a, q->a);
	if (!c && p->b)
		c = strcmp(p->b, q->b);
	return c ? c : (p->row > q->row) - (p->row < q->row);
}

/* Sort keys, write the dense id of each row's key; returns the number of ids
 * and (when first is not NULL) the key index where each id starts. */
static uint32_t dense_ids(struct skey *k, size_t n, uint32_t *id, size_t *first)
{
	qsort(k, n, sizeof *k, skey_cmp);
	uint32_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || strcmp(k[i].a, k[i - 1].a) != 0 ||
		    (k[i].b && strcmp(k[i].b, k[i - 1].b) != 0)) {
			if (first)
				first[m] = i;
			m++;
		}
		id[k[i].row] = m - 1;
	}
	return m;
}

void fd_split_frac_name(double frac, char *buf, size_t n)
{
	snprintf(buf, n, "in%.6g", frac * 100);
}

/* An earlier fd-split's subsample column: "in" then a percent. */
static int is_frac_col(const char *s)
{
	if (strncmp(s, "in", 2) != 0 || !(s[2] >= '0' && s[2] <= '9'))
		return 0;
	char *end;
	strtod(s + 2, &end);
	return *end == '\0';
}

void fd_split_stats_free(struct fd_split_stats *st)
{
	if (!st)
		return;
	for (int s = 0; s < st->nstrata; s++)
		free(st->stratum_name[s]);
	free(st->stratum_name);
	free(st->count);
	free(st->groups);
	memset(st, 0, sizeof *st);
}

static int fill_stats(struct fd_split_stats *st, const struct fd_table *in, int cl, int cs,
		      const struct skey *sk, const size_t *sfirst, uint32_t S, uint32_t G,
		      const uint32_t *gid, const uint32_t *sid, const int32_t *bin, const uint8_t *inflag,
		      const struct fd_split_opts *o, struct fd_err *e)
{
	int K = o->folds, F = o->nfrac + 1;
	memset(st, 0, sizeof *st);
	st->folds = K;
	st->nfrac = o->nfrac;
	st->nstrata = (int)S;
	st->stratum_name = calloc(S + 1, sizeof *st->stratum_name);
	st->count = calloc((size_t)(K + 1) * F * S + 1, sizeof *st->count);
	st->groups = calloc((size_t)(K + 1) * F, sizeof *st->groups);
	uint8_t *seen = calloc((size_t)G * F + 1, 1);
	uint8_t *any = calloc((size_t)G + 1, 1);
	if (!st->stratum_name || !st->count || !st->groups || !seen || !any)
		goto oom;
	for (uint32_t s = 0; s < S; s++) {
		size_t r = sk[sfirst[s]].row;
		if (asprintf(&st->stratum_name[s], "%s/%s", fd_table_get(in, r, cl),
			     fd_table_get(in, r, cs)) < 0) {
			st->stratum_name[s] = NULL;
			goto oom;
		}
	}
	for (size_t r = 0; r < in->nrow; r++) {
		st->rows++;
		if (bin[r] == FD_SPLIT_EXCLUDED) {
			st->excluded_rows++;
			continue;
		}
		any[gid[r]] = 1;
		int b = bin[r] == FD_SPLIT_TEST ? K : bin[r];
		for (int f = 0; f < F; f++) {
			if (f < o->nfrac && !inflag[r * o->nfrac + f])
				continue;
			st->count[((size_t)b * F + f) * S + sid[r]]++;
			if (!seen[(size_t)gid[r] * F + f]) {
				seen[(size_t)gid[r] * F + f] = 1;
				st->groups[(size_t)b * F + f]++;
			}
		}
	}
	for (uint32_t g = 0; g < G; g++) {
		st->ngroups += any[g];
		st->excluded_groups += !any[g];
	}
	free(seen);
	free(any);
	return 0;
oom:
	free(seen);
	free(any);
	fd_split_stats_free(st);
	return fd_err_set(e, "out of memory");
}

struct dup_key {
	const struct fd_table *t;
	int col;
};

/* qsort_r order of row indices by their path cell, then row. */
static int dup_cmp(const void *a, const void *b, void *arg)
{
	const struct dup_key *k = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcmp(fd_table_get(k->t, x, k->col), fd_table_get(k->t, y, k->col));
	return c ? c : (x > y) - (x < y);
}

/* A path listed twice would put one image in two folds (or in a fold and the
 * test set): -1 naming both lines. Tables without a path column pass. */
static int dup_paths(const struct fd_table *in, const char *src, struct fd_err *e)
{
	int cp = fd_table_col(in, "path");
	if (cp < 0 || in->nrow < 2)
		return 0;
	size_t *ix = malloc(in->nrow * sizeof *ix);
	if (!ix)
		return fd_err_set(e, "out of memory");
	for (size_t r = 0; r < in->nrow; r++)
		ix[r] = r;
	struct dup_key k = { in, cp };
	qsort_r(ix, in->nrow, sizeof *ix, dup_cmp, &k);
	int rc = 0;
	for (size_t i = 1; i < in->nrow && rc == 0; i++)
		if (strcmp(fd_table_get(in, ix[i], cp), fd_table_get(in, ix[i - 1], cp)) == 0)
			rc = fd_err_set(e, "'%s': line %zu: path '%s' repeats line %zu", src, ix[i] + 2,
					fd_table_get(in, ix[i], cp), ix[i - 1] + 2);
	free(ix);
	return rc;
}

int fd_split_table(const struct fd_table *in, const struct fd_split_opts *o, struct fd_table *out,
		   struct fd_split_stats *st, struct fd_err *e)
{
	const char *src = (!in->src || strcmp(in->src, "-") == 0) ? "standard input" : in->src;
	size_t n = in->nrow;
	int rc = -1;
	fd_table_init(out);
	if (st)
		memset(st, 0, sizeof *st);
	int cg = fd_table_need(in, "group", e), cl, cs, cst;
	if (cg < 0 || (cl = fd_table_need(in, "label", e)) < 0 ||
	    (cs = fd_table_need(in, "source", e)) < 0 || (cst = fd_table_need(in, "status", e)) < 0)
		return -1;
	struct skey *gk = malloc((n + 1) * sizeof *gk), *sk = malloc((n + 1) * sizeof *sk);
	uint32_t *gid = malloc((n + 1) * sizeof *gid), *sid = calloc(n + 1, sizeof *sid);
	uint8_t *usable = malloc(n + 1), *flag = calloc(n * (size_t)o->nfrac + 1, 1);
	int32_t *bin = malloc((n + 1) * sizeof *bin);
	size_t *sfirst = malloc((n + 1) * sizeof *sfirst);
	int *keep = malloc(((size_t)in->ncol + 1) * sizeof *keep);
	if (!gk || !sk || !gid || !sid || !usable || !flag || !bin || !sfirst || !keep) {
		fd_err_set(e, "out of memory");
		goto out;
	}
	size_t nu = 0;
	for (size_t r = 0; r < n; r++) {
		const char *g = fd_table_get(in, r, cg);
		usable[r] = strcmp(fd_table_get(in, r, cst), "ok") == 0;
		if (usable[r]) {
			const int cols[3] = { cg, cl, cs };
			for (int i = 0; i < 3; i++)
				if (!*fd_table_get(in, r, cols[i])) {
					fd_err_set(e, "'%s': line %zu: empty %s", src, r + 2,
						   in->name[cols[i]]);
					goto out;
				}
			const char *lab = fd_table_get(in, r, cl);
			if (strcmp(lab, "0") != 0 && strcmp(lab, "1") != 0) {
				fd_err_set(e, "'%s': line %zu: label '%s' is not 0 (real) or 1 (fake)", src, r + 2, lab);
				goto out;
			}
			sk[nu++] = (struct skey){ lab, fd_table_get(in, r, cs), r };
		}
		gk[r] = (struct skey){ g, NULL, r };
	}
	if (dup_paths(in, src, e) < 0)
		goto out;
	/* one class: every later step would pass and fd-train fail; say it here */
	size_t same = 0;
	for (size_t i = 0; i < nu; i++)
		same += strcmp(sk[i].a, sk[0].a) == 0;
	if (nu > 0 && same == nu && !o->allow_one_class) {
		fd_err_set(e, "'%s': the data set has one class only (label %s: %zu usable rows, no row with "
			      "another label): a real/fake classifier needs both (fd-split --allow-one-class "
			      "splits it anyway)", src, sk[0].a, nu);
		goto out;
	}
	uint32_t G = dense_ids(gk, n, gid, NULL);
	uint32_t S = dense_ids(sk, nu, sid, sfirst);
	if (fd_split_assign(n, gid, G, sid, S, usable, o, bin, flag, e) < 0) {
		fd_err_ctx(e, "'%s'", src);
		goto out;
	}

	/* Output: the input's columns (less an earlier split's), then ours. */
	int nk = 0;
	for (int c = 0; c < in->ncol; c++)
		if (strcmp(in->name[c], "fold") != 0 && !is_frac_col(in->name[c])) {
			if (fd_table_add_col(out, in->name[c], e) < 0)
				goto out;
			keep[nk++] = c;
		}
	int cf = fd_table_add_col(out, "fold", e);
	if (cf < 0)
		goto out;
	int cin[FD_SPLIT_MAX_FRACS];
	for (int f = 0; f < o->nfrac; f++) {
		char name[32];
		fd_split_frac_name(o->frac[f], name, sizeof name);
		if ((cin[f] = fd_table_add_col(out, name, e)) < 0)
			goto out;
	}
	for (size_t r = 0; r < n; r++) {
		size_t d = fd_table_add_row(out);
		if (d == (size_t)-1) {
			fd_err_set(e, "out of memory");
			goto out;
		}
		for (int i = 0; i < nk; i++)
			if (fd_table_set(out, d, i, fd_table_get(in, r, keep[i]), e) < 0)
				goto out;
		int fail = bin[r] == FD_SPLIT_TEST	   ? fd_table_set(out, d, cf, "test", e)
			   : bin[r] == FD_SPLIT_EXCLUDED ? fd_table_set(out, d, cf, "excluded", e)
							 : fd_table_setf(out, d, cf, e, "%d", bin[r]);
		if (fail < 0)
			goto out;
		for (int f = 0; f < o->nfrac; f++)
			if (fd_table_set(out, d, cin[f], flag[r * o->nfrac + f] ? "1" : "0", e) < 0)
				goto out;
	}
	if (in->src && !(out->src = strdup(in->src))) {
		fd_err_set(e, "out of memory");
		goto out;
	}
	if (st && fill_stats(st, in, cl, cs, sk, sfirst, S, G, gid, sid, bin, flag, o, e) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		fd_table_free(out);
	free(gk);
	free(sk);
	free(gid);
	free(sid);
	free(usable);
	free(flag);
	free(bin);
	free(sfirst);
	free(keep);
	return rc;
}
