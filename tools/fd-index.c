/* fd-index: walk a data set root and write one row per file (index.tsv):
 * path, source, label, group, size, format and status. */
#include "cli.h"
#include "core/fd_out.h"
#include "core/fd_progress.h"
#include "data/fd_index.h"

#include <errno.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char synopsis[] =
	"fd-index --root DIR [--sources FILE] [--stats] [-o FILE] [--max-pixels N] [--threads N] [-q]";
static const char help[] =
	"Walk DIR/<source>/ for every source of the sources table and write one TSV\n"
	"row per regular file, sorted by path: path source label group width height\n"
	"format bytes status (ok or bad:<reason>).\n"
	"\n"
	"  --root DIR        data set root\n"
	"  --sources FILE    table with columns source, label (default: sources.tsv in\n"
	"                    $FD_CONFIG_DIR, else <exe>/../../configs/, else <exe>/../share/fd/)\n"
	"  --stats           decode every image and add mean_r mean_g mean_b std_r std_g\n"
	"                    std_b (0..1, population std); also detects truncated data\n"
	"  -o FILE           output (default standard output); written atomically\n"
	"  --max-pixels N    width*height above N is bad:too-large (default 200000000)\n"
	"  --threads N       worker threads (default: all cores)\n"
	"  -q                no progress or summary\n"
	"Statuses: ok, bad:empty, bad:unreadable, bad:not-an-image, bad:truncated,\n"
	"bad:corrupt, bad:too-large, bad:non-utf8-name, bad:control-char-name.\n"
	"Exit status: 0 success, 1 failure, 2 usage.\n";

/* The default sources table; NULL when none is found (tried lists the places). */
static char *default_sources(char *tried, size_t n)
{
	static const char *const rel[] = {"../../configs", "../share/fd"};
	return cli_find_data("FD_CONFIG_DIR", "sources.tsv", rel, 2, tried, n);
}

int main(int argc, char **argv)
{
	cli_init(argc, argv, "fd-index", synopsis, help);
	const char *root = NULL, *sources = NULL, *out = "-";
	int stats = 0, threads = 0;
	long long max_pixels = FD_IMAGE_MAX_PIXELS_DEFAULT;
	enum { O_ROOT, O_SOURCES, O_STATS, O_OUT, O_MAX_PIXELS, O_THREADS };
	static const struct cli_option opts[] = {
		[O_ROOT] = { "--root", CLI_VALUE },
		[O_SOURCES] = { "--sources", CLI_VALUE },
		[O_STATS] = { "--stats", CLI_FLAG },
		[O_OUT] = { "-o", CLI_VALUE },
		[O_MAX_PIXELS] = { "--max-pixels", CLI_VALUE },
		[O_THREADS] = { "--threads", CLI_VALUE },
	};
	struct cli_args args;
	const char *v;
	int k;
	cli_args_init(&args, argc, argv, opts, CLI_NOPT(opts));
	while ((k = cli_next(&args, &v)) != CLI_DONE) {
		switch (k) {
		case O_ROOT: root = v; break;
		case O_SOURCES: sources = v; break;
		case O_STATS: stats = 1; break;
		case O_OUT: out = v; break;
		case O_MAX_PIXELS: max_pixels = cli_int("--max-pixels", v, 1, LLONG_MAX); break;
		case O_THREADS: threads = (int)cli_int("--threads", v, 1, 1024); break;
		default: cli_usage("unexpected argument '%s'", v);
		}
	}
	if (!root || !*root)
		cli_usage("--root DIR is required");
	if (!*out)
		cli_usage("-o: empty file name");
	if (threads)
		omp_set_num_threads(threads);

	struct fd_err e = {{0}};
	char *src_path = sources ? strdup(sources) : NULL;
	if (!sources) {
		char tried[3 * PATH_MAX];
		if (!(src_path = default_sources(tried, sizeof tried)))
			cli_die("no sources table: give --sources FILE or set FD_CONFIG_DIR (looked in %s)", tried);
	}
	cli_outputs((const char *[]){src_path}, 1, (const char *[]){out}, 1);
	struct fd_sources s;
	if (fd_sources_read(&s, src_path, &e) < 0)
		cli_fail(&e);
	struct stat st;
	if (stat(root, &st) < 0)
		cli_die("cannot read root '%s': %s", root, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		cli_die("root '%s' is not a directory", root);

	double t0 = fd_now();
	struct fd_index ix = {0};
	if (fd_index_walk(&ix, root, &s, &e) < 0)
		cli_fail(&e);
	if (ix.skipped)
		cli_warn("skipped %zu entries that are not regular files (or are links to folders), e.g. '%s'",
			 ix.skipped, ix.skipped_example);
	struct fd_progress pr;
	fd_progress_init(&pr, cli_quiet ? NULL : stderr, stats ? "fd-index (decode)" : "fd-index (probe)",
			 (uint64_t)ix.n);
	for (size_t b = 0; b < ix.n; b += 4096) {
		size_t end = b + 4096 < ix.n ? b + 4096 : ix.n;
		fd_index_probe(&ix, root, b, end, stats, max_pixels);
		fd_progress_add(&pr, (uint64_t)(end - b));
	}
	fd_progress_end(&pr);

	struct fd_out o;
	if (fd_out_open(&o, out, &e) < 0)
		cli_fail(&e);
	if (fd_index_write(&ix, &s, stats, o.f, &e) < 0) {
		fd_out_abort(&o);
		fd_err_ctx(&e, "cannot write '%s'", out);
		cli_fail(&e);
	}
	if (fd_out_commit(&o, &e) < 0)
		cli_fail(&e);

	/* summary: files per source, then per status within it */
	if (!cli_quiet) {
		cli_info("%zu files in %.2f s (%.0f files/s)", ix.n, fd_now() - t0,
			 (double)ix.n / (fd_now() - t0 + 1e-9));
		for (int k = 0; k < s.n; k++) {
			char line[1024];
			const char *seen[16];
			size_t cnt[16], total = 0;
			int ns = 0;
			for (size_t i = 0; i < ix.n; i++) {
				if (ix.row[i].src != k)
					continue;
				total++;
				int j = 0;
				while (j < ns && strcmp(seen[j], ix.row[i].status) != 0)
					j++;
				if (j == ns && ns < 16) {
					seen[ns] = ix.row[i].status;
					cnt[ns++] = 0;
				}
				if (j < ns)
					cnt[j]++;
			}
			for (int a = 1; a < ns; a++) /* ok first, then bad:* by name */
				for (int b = a; b > 0 && (strcmp(seen[b], "ok") == 0 ||
							 (strcmp(seen[b - 1], "ok") && strcmp(seen[b - 1], seen[b]) > 0));
				     b--) {
					const char *ts = seen[b];
					size_t tc = cnt[b];
					seen[b] = seen[b - 1];
					cnt[b] = cnt[b - 1];
					seen[b - 1] = ts;
					cnt[b - 1] = tc;
				}
			int n = snprintf(line, sizeof line, "%s (label %d): %zu files", s.name[k], s.label[k], total);
			for (int j = 0; j < ns && n < (int)sizeof line; j++)
				n += snprintf(line + n, sizeof line - (size_t)n, "%s %s %zu", j ? "," : ":", seen[j],
					      cnt[j]);
			cli_info("%s", line);
		}
	}
	fd_index_free(&ix);
	fd_sources_free(&s);
	free(src_path);
	return 0;
}
