/* t_split: fd_split_assign on integer ids: groups stay whole, identical
 * groups spread evenly, row order does not matter, nesting, and errors.
 * (Balance against scikit-learn is tested by tests/tools/split.t.) */
#include "core/fd_rng.h"
#include "data/fd_split.h"
#include "tap.h"

#include <string.h>

#define G 300
#define MAXR (G * 4)

/* G groups over 4 strata; group g has stratum 0 always and the others unless
 * a seeded draw drops them (the DFF shape with missing fakes). */
static size_t make(uint32_t *group, uint32_t *stratum, uint8_t *usable, uint64_t seed, double drop)
{
	struct fd_rng r;
	fd_rng_init(&r, seed, 1);
	size_t n = 0;
	for (uint32_t g = 0; g < G; g++)
		for (uint32_t s = 0; s < 4; s++) {
			if (s > 0 && fd_rng_uniform(&r) < drop)
				continue;
			group[n] = g;
			stratum[n] = s;
			usable[n] = fd_rng_uniform(&r) >= 0.01;
			n++;
		}
	return n;
}

int main(void)
{
	static uint32_t group[MAXR], stratum[MAXR], pg[MAXR], ps[MAXR];
	static uint8_t usable[MAXR], pu[MAXR], in[MAXR * 3], pin[MAXR * 3];
	static int32_t bin[MAXR], pbin[MAXR];
	struct fd_err e = { { 0 } };
	struct fd_split_opts o = { .folds = 5, .test = 0.1, .nfrac = 3, .frac = { 0.2, 0.5, 1 },
				   .seed = 42 };

	/* Identical groups: every fold gets G*0.9/5 = 54 groups, the test set 30. */
	size_t n = make(group, stratum, usable, 1, 0);
	memset(usable, 1, n);
	ok(fd_split_assign(n, group, G, stratum, 4, usable, &o, bin, in, &e) == 0, "assign: %s", e.msg);
	int cnt[6] = { 0 };
	for (size_t r = 0; r < n; r += 4)
		cnt[bin[r] == FD_SPLIT_TEST ? 5 : bin[r]]++;
	ok(cnt[0] == 54 && cnt[1] == 54 && cnt[2] == 54 && cnt[3] == 54 && cnt[4] == 54 && cnt[5] == 30,
	   "identical groups spread exactly (%d %d %d %d %d, test %d)", cnt[0], cnt[1], cnt[2], cnt[3],
	   cnt[4], cnt[5]);
	int in20 = 0;
	for (size_t r = 0; r < n; r += 4)
		in20 += bin[r] >= 0 && in[r * 3];
	ok(in20 == 5 * 11, "in20 takes 11 of each fold's 54 groups (got %d in all)", in20);

	/* Missing fakes and unusable rows. */
	n = make(group, stratum, usable, 2, 0.15);
	ok(fd_split_assign(n, group, G, stratum, 4, usable, &o, bin, in, &e) == 0, "assign: %s", e.msg);
	int whole = 1, nested = 1, excl = 1;
	int32_t gb[G];
	for (int g = 0; g < G; g++)
		gb[g] = FD_SPLIT_EXCLUDED;
	for (size_t r = 0; r < n; r++) {
		if (!usable[r]) {
			excl &= bin[r] == FD_SPLIT_EXCLUDED && !in[r * 3] && !in[r * 3 + 1] && !in[r * 3 + 2];
			continue;
		}
		if (gb[group[r]] == FD_SPLIT_EXCLUDED)
			gb[group[r]] = bin[r];
		whole &= gb[group[r]] == bin[r];
		nested &= (!in[r * 3] || in[r * 3 + 1]) && (!in[r * 3 + 1] || in[r * 3 + 2]) && in[r * 3 + 2];
		if (bin[r] == FD_SPLIT_TEST)
			nested &= in[r * 3] && in[r * 3 + 1];
	}
	ok(whole, "every group in one bin");
	ok(nested, "in20 => in50 => in100, test rows in all");
	ok(excl, "unusable rows excluded from every bin and subsample");

	/* Reversed row order (and renamed groups kept): same bin per row. */
	for (size_t r = 0; r < n; r++) {
		pg[r] = group[n - 1 - r];
		ps[r] = stratum[n - 1 - r];
		pu[r] = usable[n - 1 - r];
	}
	ok(fd_split_assign(n, pg, G, ps, 4, pu, &o, pbin, pin, &e) == 0, "assign reversed: %s", e.msg);
	int same = 1;
	for (size_t r = 0; r < n; r++)
		same &= pbin[r] == bin[n - 1 - r] && !memcmp(pin + r * 3, in + (n - 1 - r) * 3, 3);
	ok(same, "row order does not change the result");

	/* Another seed: another split. */
	o.seed = 43;
	ok(fd_split_assign(n, group, G, stratum, 4, usable, &o, pbin, pin, &e) == 0, "seed 43");
	ok(memcmp(bin, pbin, n * sizeof *bin) != 0, "seed 43 differs from seed 42");

	/* Errors. */
	o.seed = 42;
	o.folds = 7;
	ok(fd_split_assign(8, group, G, stratum, 4, usable, &o, bin, in, &e) < 0 &&
		   strstr(e.msg, "fewer than 7 folds"),
	   "too few groups: '%s'", e.msg);
	o.folds = 1;
	ok(fd_split_assign(n, group, G, stratum, 4, usable, &o, bin, in, &e) < 0, "1 fold refused");
	o.folds = 5;
	o.test = 1;
	ok(fd_split_assign(n, group, G, stratum, 4, usable, &o, bin, in, &e) < 0, "test 1 refused");
	return tap_done();
}
