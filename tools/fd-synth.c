/* fd-synth: write a small DeepFakeFace-shaped data set (wiki reals and three
 * fake sources sharing groups) with planted cues, for tests and the demo. */
#include "cli.h"
#include "core/fd_version.h"
#include "data/fd_synth.h"
#include "io/fd_image.h"
#include "core/fd_progress.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

static const char synopsis[] =
	"fd-synth -o DIR [--groups N] [--seed N] [--cues LIST] [--fake-size N] [--fake-aspect square|real] [--real-width MIN,MAX] [--threads N] [-q]";
static const char help[] =
	"Write a synthetic data set shaped like DeepFakeFace into DIR:\n"
	"  DIR/wiki/NN/STEM.jpg        real photos (rectangular JPEGs, widths MIN..MAX)\n"
	"  DIR/text2img/NN/STEM.jpg    fakes: the same identity re-rendered\n"
	"  DIR/inpainting/NN/STEM.jpg  fakes: the real's face region re-painted\n"
	"  DIR/insight/NN/STEM.jpg     fakes: the real with a swapped face\n"
	"  DIR/cues.tsv                one row per image: path source group aspect cast texture\n"
	"  DIR/README                  provenance\n"
	"A fake keeps the relative path and stem of its real (its group).\n"
	"\n"
	"  -o DIR              output folder; must not exist or be empty; written\n"
	"                      as DIR.tmp.XXXXXX and renamed when complete\n"
	"  --groups N          number of groups (identities), 1..99999 (default 100)\n"
	"  --seed N            seed (default 1); same seed, same bytes\n"
	"  --cues LIST         'none' or NAME[=STRENGTH],... with NAME aspect|cast|texture\n"
	"                      and STRENGTH in [0,1] (default aspect=1,cast=0.5,texture=0.5)\n"
	"                        aspect   reals rectangular (0: square like the fakes)\n"
	"                        cast     colour cast (+10,+3,-9 levels x strength) on fakes\n"
	"                        texture  periodic pattern per fake source (6 levels x strength)\n"
	"  --fake-size N       side of the square fakes, 32..2048 (default 256)\n"
	"  --fake-aspect A     square (default): fakes are N x N; real: each fake takes\n"
	"                      its real's aspect (long side N), so both classes share\n"
	"                      one aspect distribution (no class-linked geometry)\n"
	"  --real-width MIN,MAX  range of the reals' width, 32..4096 (default 160,320)\n"
	"  --threads N         worker threads (default: all cores); output does not depend on it\n"
	"  -q                  no progress or summary\n"
	"Exit status: 0 success, 1 failure, 2 usage.\n";

struct row {
	char path[96];
	int src, g;
};

/* A signal while rendering: finish the chunk, remove the temporary tree, then
 * die of the same signal (a directory tree cannot be removed safely inside the
 * handler itself). */
static volatile sig_atomic_t stop_sig;

static void on_stop(int sig)
{
	stop_sig = sig;
}

static int cmp_row(const void *a, const void *b)
{
	return strcmp(((const struct row *)a)->path, ((const struct row *)b)->path);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

static void rm_tree(const char *p)
{
	nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int write_file(const char *path, const void *data, size_t n, struct fd_err *e)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return fd_err_sys(e, errno, "cannot write '%s'", path);
	size_t k = fwrite(data, 1, n, f);
	int bad = k != n || ferror(f);
	if (fclose(f) != 0 || bad)
		return fd_err_sys(e, errno ? errno : EIO, "cannot write '%s'", path);
	return 0;
}

/* 1 when path exists and is a non-empty directory or not a directory. */
static int occupied(const char *path, struct fd_err *e)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return 0;
	if (!S_ISDIR(st.st_mode)) {
		fd_err_set(e, "output '%s' exists and is not a directory", path);
		return 1;
	}
	DIR *d = opendir(path);
	if (!d) {
		fd_err_sys(e, errno, "cannot read '%s'", path);
		return 1;
	}
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	if (n)
		fd_err_set(e, "output '%s' exists and is not empty", path);
	return n > 0;
}

int main(int argc, char **argv)
{
	cli_init(argc, argv, "fd-synth", synopsis, help);
	struct fd_synth_opts o;
	fd_synth_opts_default(&o);
	const char *out = NULL;
	int threads = 0;
	struct fd_err e = {{0}};
	enum { O_OUT, O_GROUPS, O_SEED, O_CUES, O_FAKE_SIZE, O_FAKE_ASPECT, O_REAL_WIDTH, O_THREADS };
	static const struct cli_option opts[] = {
		[O_OUT] = { "-o", CLI_VALUE },
		[O_GROUPS] = { "--groups", CLI_VALUE },
		[O_SEED] = { "--seed", CLI_VALUE },
		[O_CUES] = { "--cues", CLI_VALUE },
		[O_FAKE_SIZE] = { "--fake-size", CLI_VALUE },
		[O_FAKE_ASPECT] = { "--fake-aspect", CLI_VALUE },
		[O_REAL_WIDTH] = { "--real-width", CLI_VALUE },
		[O_THREADS] = { "--threads", CLI_VALUE },
	};
	struct cli_args args;
	const char *v;
	int k;
	cli_args_init(&args, argc, argv, opts, CLI_NOPT(opts));
	while ((k = cli_next(&args, &v)) != CLI_DONE) {
		switch (k) {
		case O_OUT:
			if (!*v)
				cli_usage("-o: empty folder name");
			out = v;
			break;
		case O_GROUPS:
			o.groups = (int)cli_int("--groups", v, 1, FD_SYNTH_MAX_GROUPS);
			break;
		case O_SEED:
			o.seed = (uint64_t)cli_int("--seed", v, 0, LLONG_MAX);
			break;
		case O_CUES:
			if (fd_synth_cues_parse(v, &o.cues, &e) < 0)
				cli_usage("--cues: %s", e.msg);
			break;
		case O_FAKE_SIZE:
			o.fake_size = (int)cli_int("--fake-size", v, 32, 2048);
			break;
		case O_FAKE_ASPECT:
			if (strcmp(v, "square") && strcmp(v, "real"))
				cli_usage("--fake-aspect: '%s' is not square or real", v);
			o.fake_aspect_real = strcmp(v, "real") == 0;
			break;
		case O_REAL_WIDTH: {
			int lo, hi, n = -1;
			if (sscanf(v, "%d,%d%n", &lo, &hi, &n) != 2 || n != (int)strlen(v) || lo < 32 || hi > 4096 ||
			    lo > hi)
				cli_usage("--real-width: '%s' is not MIN,MAX with 32 <= MIN <= MAX <= 4096", v);
			o.real_min = lo;
			o.real_max = hi;
			break;
		}
		case O_THREADS:
			threads = (int)cli_int("--threads", v, 1, 1024);
			break;
		default:
			cli_usage("unexpected argument '%s'", v);
		}
	}
	if (!out)
		cli_usage("-o DIR is required");
	if (threads)
		omp_set_num_threads(threads);
	size_t olen = strlen(out);
	while (olen > 1 && out[olen - 1] == '/')
		olen--;
	char *dir = strndup(out, olen);
	if (!dir)
		cli_die("out of memory");
	cli_outputs(NULL, 0, (const char *[]){dir}, 1);
	if (occupied(dir, &e))
		cli_fail(&e);

	char *tmp = malloc(olen + 16);
	if (!tmp)
		cli_die("out of memory");
	sprintf(tmp, "%s.tmp.XXXXXX", dir);
	if (!mkdtemp(tmp))
		cli_die("cannot create '%s': %s", tmp, strerror(errno));
	mode_t um = umask(0);
	umask(um);
	chmod(tmp, 0777 & ~um); /* mkdtemp makes it private; the result should not be */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	double t0 = fd_now();
	int nf = fd_synth_nfolders(&o), rc = 0;
	char path[PATH_MAX];
	for (int s = 0; s < FD_SYNTH_NSRC && rc == 0; s++) {
		snprintf(path, sizeof path, "%s/%s", tmp, fd_synth_src_name(s));
		if (mkdir(path, 0777) < 0)
			rc = fd_err_sys(&e, errno, "cannot create '%s'", path);
		for (int k = 0; k < nf && rc == 0; k++) {
			snprintf(path, sizeof path, "%s/%s/%02d", tmp, fd_synth_src_name(s), k);
			if (mkdir(path, 0777) < 0)
				rc = fd_err_sys(&e, errno, "cannot create '%s'", path);
		}
	}

	struct row *rows = calloc((size_t)o.groups * FD_SYNTH_NSRC, sizeof *rows);
	struct fd_synth_group *plans = calloc((size_t)o.groups, sizeof *plans);
	if (!rows || !plans)
		cli_die("out of memory");
	struct fd_progress pr;
	fd_progress_init(&pr, cli_quiet ? NULL : stderr, "fd-synth", (uint64_t)o.groups);
	int failed_g = -1;
	/* Groups in chunks: workers render, the main thread reports progress. */
	for (int g0 = 0; g0 < o.groups && rc == 0; g0 += 64) {
		int g1 = g0 + 64 < o.groups ? g0 + 64 : o.groups;
#pragma omp parallel for schedule(dynamic, 1)
		for (int g = g0; g < g1; g++) {
			struct fd_err ge = {{0}};
			struct fd_synth_group *gp = &plans[g];
			uint8_t *px[FD_SYNTH_NSRC] = {0};
			int grc = 0;
			fd_synth_group_plan(&o, g, gp);
			for (int s = 0; s < FD_SYNTH_NSRC && grc == 0; s++)
				if (!(px[s] = malloc((size_t)gp->w[s] * gp->h[s] * 3)))
					grc = fd_err_set(&ge, "out of memory");
			if (grc == 0)
				grc = fd_synth_group_render(&o, gp, px, &ge);
			for (int s = 0; s < FD_SYNTH_NSRC && grc == 0; s++) {
				struct fd_image img = {gp->w[s], gp->h[s], px[s], 1};
				uint8_t *jpg = NULL;
				size_t n = 0;
				char p[PATH_MAX];
				snprintf(p, sizeof p, "%s/%s/%s.jpg", tmp, fd_synth_src_name(s), gp->name);
				grc = fd_image_encode_jpeg(&img, gp->quality[s], &jpg, &n, &ge);
				if (grc == 0)
					grc = write_file(p, jpg, n, &ge);
				free(jpg);
				struct row *r = &rows[(size_t)g * FD_SYNTH_NSRC + s];
				snprintf(r->path, sizeof r->path, "%s/%s.jpg", fd_synth_src_name(s), gp->name);
				r->src = s;
				r->g = g;
			}
			for (int s = 0; s < FD_SYNTH_NSRC; s++)
				free(px[s]);
			if (grc < 0) {
#pragma omp critical
				if (failed_g < 0 || g < failed_g) {
					failed_g = g;
					e = ge;
				}
			}
		}
		if (failed_g >= 0)
			rc = -1;
		if (stop_sig) {
			rm_tree(tmp);
			signal(stop_sig, SIG_DFL);
			raise(stop_sig);
		}
		fd_progress_add(&pr, (uint64_t)(g1 - g0));
	}

	if (rc == 0) {
		size_t n = (size_t)o.groups * FD_SYNTH_NSRC;
		qsort(rows, n, sizeof *rows, cmp_row);
		snprintf(path, sizeof path, "%s/cues.tsv", tmp);
		FILE *f = fopen(path, "w");
		if (!f) {
			rc = fd_err_sys(&e, errno, "cannot write '%s'", path);
		} else {
			fputs("path\tsource\tgroup\taspect\tcast\ttexture\n", f);
			for (size_t i = 0; i < n; i++) {
				const struct fd_synth_group *gp = &plans[rows[i].g];
				int s = rows[i].src;
				fprintf(f, "%s\t%s\t%s\t%g\t%g\t%g\n", rows[i].path, fd_synth_src_name(s), gp->name,
					gp->aspect[s], gp->cast[s], gp->texture[s]);
			}
			int bad = ferror(f);
			if (fclose(f) != 0 || bad)
				rc = fd_err_sys(&e, errno ? errno : EIO, "cannot write '%s'", path);
		}
	}
	if (rc == 0) {
		char cues[96], text[1024];
		fd_synth_cues_format(&o.cues, cues, sizeof cues);
		int k = snprintf(text, sizeof text,
				 "Synthetic DeepFakeFace-shaped data made by fd-synth (fd %s):\n"
				 "fd-synth --groups %d --seed %llu --cues %s --fake-size %d --fake-aspect %s "
				 "--real-width %d,%d\n"
				 "Every image is drawn by the program; no photograph of a person is used.\n"
				 "cues.tsv lists the cue strength applied to each image.\n",
				 FD_VERSION, o.groups, (unsigned long long)o.seed, cues, o.fake_size,
				 o.fake_aspect_real ? "real" : "square", o.real_min, o.real_max);
		snprintf(path, sizeof path, "%s/README", tmp);
		rc = write_file(path, text, (size_t)k, &e);
	}
	if (rc == 0 && rename(tmp, dir) < 0)
		rc = fd_err_sys(&e, errno, "cannot rename '%s' to '%s'", tmp, dir);
	if (rc < 0) {
		rm_tree(tmp);
		cli_fail(&e);
	}
	fd_progress_end(&pr);
	cli_info("wrote %d images (%d groups) to '%s' in %.2f s", o.groups * FD_SYNTH_NSRC, o.groups, dir,
		 fd_now() - t0);
	free(rows);
	free(plans);
	free(tmp);
	free(dir);
	return 0;
}
