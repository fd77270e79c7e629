/* fd-split: stratified, group-aware K folds, a held-out test set and nested
 * subsamples over an index TSV (lib/data/fd_split.h does the work). */
#include "cli.h"
#include "core/fd_config.h"
#include "core/fd_table.h"
#include "data/fd_split.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SYNOPSIS[] =
	"fd-split [--config FILE]... [--folds K] [--test FRAC] [--fractions 0.2,0.5,1] [--seed N] [--allow-one-class]"
	" [-o FILE] [FILE|-]";

static const char HELP[] =
	"Assign every group of an index (fd-index's TSV) to one of K folds, stratified\n"
	"on label x source, optionally holding out a test set of whole groups first.\n"
	"Writes the input's columns plus 'fold' (0..K-1, 'test', or 'excluded' for\n"
	"rows whose status is not 'ok') and, with --fractions, one 0/1 column per\n"
	"fraction named by percent (in20 in50 in100): nested subsamples of each fold's\n"
	"groups that keep its balance; test rows are never subsampled (always 1).\n"
	"A balance table goes to stderr. Same input and seed give the same bytes.\n"
	"\n"
	"  --config FILE      fd configs (configs/shared.json; repeatable, merged in\n"
	"                     order): 'seed' and 'test_ratio' give --seed and --test,\n"
	"                     so the pipelines' split follows the central config;\n"
	"                     --seed and --test on the command line override them\n"
	"  --folds K          number of folds, 2..100 (default 5)\n"
	"  --test FRAC        share of the rows held out as a test set, 0 <= FRAC < 1\n"
	"                     (default 0: none)\n"
	"  --fractions LIST   comma-separated increasing fractions in (0, 1]\n"
	"  --seed N           seed of the shuffle (default 42)\n"
	"  --allow-one-class  split a data set whose usable rows all have one label\n"
	"                     (refused by default: nothing could be trained on it)\n"
	"  -o FILE            output file (default: standard output)\n"
	"  -q                 no balance table\n"
	"  FILE               input TSV ('-' or none: standard input)\n"
	"\n"
	"Exit status: 0 success, 1 bad data (missing column, too few groups, one class),\n"
	"2 bad usage.\n";

static int parse_fractions(const char *arg, struct fd_split_opts *o)
{
	const char *p = arg;
	o->nfrac = 0;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char item[64];
		if (n == 0 || n >= sizeof item)
			cli_usage("--fractions: bad list '%s'", arg);
		if (o->nfrac == FD_SPLIT_MAX_FRACS)
			cli_usage("--fractions: more than %d fractions", FD_SPLIT_MAX_FRACS);
		memcpy(item, p, n);
		item[n] = '\0';
		double f = cli_double("--fractions", item, 0, 1);
		if (f <= 0)
			cli_usage("--fractions: %s is not in (0, 1]", item);
		if (o->nfrac > 0 && f <= o->frac[o->nfrac - 1])
			cli_usage("--fractions: '%s' is not strictly increasing", arg);
		char a[32], b[32];
		fd_split_frac_name(f, a, sizeof a);
		if (o->nfrac > 0) {
			fd_split_frac_name(o->frac[o->nfrac - 1], b, sizeof b);
			if (strcmp(a, b) == 0)
				cli_usage("--fractions: %s and %g both name column '%s'", item,
					  o->frac[o->nfrac - 1], a);
		}
		o->frac[o->nfrac++] = f;
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;
}

static void print_row(const char *what, const char *bin, size_t groups, const size_t *cnt, int S)
{
	size_t rows = 0;
	char line[4096];
	int n = 0;
	for (int s = 0; s < S; s++)
		rows += cnt[s];
	n += snprintf(line + n, sizeof line - (size_t)n, "%-7s %-5s %7zu %7zu", what, bin, groups, rows);
	for (int s = 0; s < S && n < (int)sizeof line - 32; s++)
		n += snprintf(line + n, sizeof line - (size_t)n, " %12zu", cnt[s]);
	cli_info("%s", line);
}

static void print_stats(const struct fd_split_stats *st, const struct fd_split_opts *o)
{
	int K = st->folds, F = st->nfrac + 1, S = st->nstrata;
	cli_info("%zu rows in %zu groups; excluded (status not ok): %zu rows, %zu whole groups",
		 st->rows, st->ngroups, st->excluded_rows, st->excluded_groups);
	char line[4096];
	int n = snprintf(line, sizeof line, "%-7s %-5s %7s %7s", "subset", "fold", "groups", "rows");
	for (int s = 0; s < S && n < (int)sizeof line - 32; s++)
		n += snprintf(line + n, sizeof line - (size_t)n, " %12s", st->stratum_name[s]);
	cli_info("%s", line);
	for (int f = F - 1; f >= 0; f--) {
		char what[32] = "all";
		if (f < st->nfrac)
			fd_split_frac_name(o->frac[f], what, sizeof what);
		for (int b = 0; b <= K; b++) {
			if (b == K && (o->test <= 0 || f < st->nfrac))
				continue; /* test rows are never subsampled */
			char bn[16];
			if (b == K)
				snprintf(bn, sizeof bn, "test");
			else
				snprintf(bn, sizeof bn, "%d", b);
			print_row(what, bn, st->groups[(size_t)b * F + f],
				  st->count + ((size_t)b * F + f) * S, S);
		}
	}
}

/* seed and test_ratio from the merged configs into o, unless given on the
 * command line; a config that cannot be read or a value out of range exits 1
 * naming the file. */
static void split_config(struct fd_split_opts *o, const char **cfg, int ncfg, int set_test, int set_seed)
{
	struct fd_err e = { { 0 } };
	struct fd_config c = { 0 };
	if (fd_config_init(&c, &e) < 0)
		cli_fail(&e);
	for (int i = 0; i < ncfg; i++)
		if (fd_config_load(&c, cfg[i], &e) < 0)
			cli_fail(&e);
	int64_t seed;
	double test;
	if (!set_seed && fd_config_has(&c, "seed")) {
		if (fd_config_get_int(&c, "seed", &seed, &e) < 0)
			cli_fail(&e);
		if (seed < 0)
			cli_die("config: seed %lld is negative", (long long)seed);
		o->seed = (uint64_t)seed;
	}
	if (!set_test && fd_config_has(&c, "test_ratio")) {
		if (fd_config_get_double(&c, "test_ratio", &test, &e) < 0)
			cli_fail(&e);
		if (!(test >= 0 && test < 1))
			cli_die("config: test_ratio %g is not in [0, 1)", test);
		o->test = test;
	}
	fd_config_free(&c);
}

int main(int argc, char **argv)
{
	cli_init(argc, argv, "fd-split", SYNOPSIS, HELP);
	struct fd_split_opts o = { .folds = 5, .test = 0, .nfrac = 0, .seed = 42 };
	const char *out = "-", *inp = NULL;
	const char **cfg = calloc((size_t)argc, sizeof *cfg);
	int ncfg = 0, set_test = 0, set_seed = 0;
	if (!cfg)
		cli_die("out of memory");
	enum { O_FOLDS, O_TEST, O_FRACTIONS, O_SEED, O_OUT, O_CONFIG, O_ALLOW_ONE_CLASS };
	static const struct cli_option opts[] = {
		[O_FOLDS] = { "--folds", CLI_VALUE },
		[O_TEST] = { "--test", CLI_VALUE },
		[O_FRACTIONS] = { "--fractions", CLI_VALUE },
		[O_SEED] = { "--seed", CLI_VALUE },
		[O_OUT] = { "-o", CLI_VALUE },
		[O_CONFIG] = { "--config", CLI_VALUE },
		[O_ALLOW_ONE_CLASS] = { "--allow-one-class", CLI_FLAG },
	};
	struct cli_args args;
	const char *val;
	int k;
	cli_args_init(&args, argc, argv, opts, CLI_NOPT(opts));
	while ((k = cli_next(&args, &val)) != CLI_DONE) {
		switch (k) {
		case O_FOLDS:
			o.folds = (int)cli_int("--folds", val, 2, FD_SPLIT_MAX_FOLDS);
			break;
		case O_TEST:
			o.test = cli_double("--test", val, 0, 1);
			if (o.test >= 1)
				cli_usage("--test: %s is not below 1", val);
			set_test = 1;
			break;
		case O_FRACTIONS:
			parse_fractions(val, &o);
			break;
		case O_SEED:
			o.seed = (uint64_t)cli_int("--seed", val, 0, INT64_MAX);
			set_seed = 1;
			break;
		case O_OUT:
			if (!*val)
				cli_usage("-o: empty file name");
			out = val;
			break;
		case O_CONFIG:
			cfg[ncfg++] = val;
			break;
		case O_ALLOW_ONE_CLASS:
			o.allow_one_class = 1;
			break;
		default:
			if (inp)
				cli_usage("more than one input file ('%s' and '%s')", inp, val);
			inp = val;
		}
	}

	struct fd_err e = { { 0 } };
	if (ncfg)
		split_config(&o, cfg, ncfg, set_test, set_seed);
	free(cfg);
	struct fd_table in, res;
	struct fd_split_stats st;
	cli_outputs((const char *[]){inp}, 1, (const char *[]){out}, 1);
	if (fd_table_read(&in, inp ? inp : "-", &e) < 0)
		cli_fail(&e);
	if (fd_split_table(&in, &o, &res, &st, &e) < 0)
		cli_fail(&e);
	print_stats(&st, &o);
	if (fd_table_save(&res, out, &e) < 0)
		cli_fail(&e);
	fd_split_stats_free(&st);
	fd_table_free(&res);
	fd_table_free(&in);
	return 0;
}
