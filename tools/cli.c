/* cli: shared command-line behaviour of the fd tools. */
#include "cli.h"
#include "core/fd_out.h"
#include "core/fd_version.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *cli_prog = "fd";
int cli_quiet;
static char cmdline[4096];

/* Exit 0 after --help/--version, or 1 when standard output could not take
 * the text (a full disk, a closed pipe): `fd-x --help > /dev/full` fails. */
static _Noreturn void exit_flushed(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "%s: cannot write standard output: %s\n", cli_prog, strerror(errno));
		exit(1);
	}
	exit(0);
}

void cli_init(int argc, char **argv, const char *prog, const char *synopsis, const char *help)
{
	cli_prog = prog;
	size_t n = 0;
	for (int i = 0; i < argc && n + 2 < sizeof cmdline; i++) {
		int k = snprintf(cmdline + n, sizeof cmdline - n, "%s%s", i ? " " : "", argv[i]);
		if (k < 0)
			break;
		n += (size_t)k;
	}
	if (n >= sizeof cmdline)
		n = sizeof cmdline - 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("usage: %s\n%s", synopsis, help);
			exit_flushed();
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("%s (fd) %s\n", prog, FD_VERSION);
			exit_flushed();
		}
	}
	fd_out_install_signals();
	atexit(fd_out_cleanup);
}

void cli_outputs(const char *const *in, int nin, const char *const *out, int nout)
{
	struct fd_err e;
	if (fd_out_check_io(in, nin, out, nout, &e) != 0)
		cli_usage("%s", e.msg);
	for (int j = 0; j < nout; j++) {
		if (!out[j] || !*out[j] || strcmp(out[j], "-") == 0 || fd_out_is_special(out[j]))
			continue;
		long stale;
		if (fd_out_lock(out[j], &stale, &e) != 0)
			cli_fail(&e);
		if (stale)
			cli_warn("took over '%s.lock' from process %ld, which no longer exists", out[j], stale);
	}
}

char *cli_sidecar(const char *pack)
{
	size_t n = pack ? strlen(pack) : 0;
	if (n < 12 || strcmp(pack + n - 12, ".safetensors") != 0)
		return NULL;
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, pack, n - 12);
		strcpy(s + n - 12, ".tsv");
	}
	return s;
}

_Noreturn void cli_usage(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", cli_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

_Noreturn void cli_fail(const struct fd_err *e)
{
	fprintf(stderr, "%s: %s\n", cli_prog, e->msg);
	exit(1);
}

_Noreturn void cli_die(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", cli_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: warning: ", cli_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void cli_info(const char *fmt, ...)
{
	if (cli_quiet)
		return;
	va_list ap;
	fprintf(stderr, "%s: ", cli_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

long long cli_int(const char *opt, const char *s, long long lo, long long hi)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (!*s || *end || errno)
		cli_usage("%s: '%s' is not an integer", opt, s);
	if (v < lo || v > hi)
		cli_usage("%s: %lld is out of range [%lld, %lld]", opt, v, lo, hi);
	return v;
}

double cli_double(const char *opt, const char *s, double lo, double hi)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (!*s || *end || errno || !isfinite(v))
		cli_usage("%s: '%s' is not a number", opt, s);
	if (v < lo || v > hi)
		cli_usage("%s: %g is out of range [%g, %g]", opt, v, lo, hi);
	return v;
}

const char *cli_cmdline(void)
{
	return cmdline;
}

static int is_file(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

char *cli_find_data(const char *envvar, const char *name, const char *const *rel, int nrel, char *tried,
		    size_t n)
{
	const char *env = getenv(envvar);
	char p[PATH_MAX + 128];
	if (env && *env) {
		snprintf(p, sizeof p, "%s/%s", env, name);
		snprintf(tried, n, "'%s' (from %s)", p, envvar);
		return is_file(p) ? strdup(p) : NULL;
	}
	char exe[PATH_MAX];
	ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (k <= 0) {
		snprintf(tried, n, "nowhere (cannot find the executable)");
		return NULL;
	}
	exe[k] = 0;
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = 0;
	tried[0] = 0;
	for (int i = 0; i < nrel; i++) {
		snprintf(p, sizeof p, "%s/%s/%s", exe, rel[i], name);
		size_t used = strlen(tried);
		snprintf(tried + used, n - used, "%s'%s'", i ? ", " : "", p);
		if (is_file(p))
			return realpath(p, NULL);
	}
	return NULL;
}

void cli_args_init(struct cli_args *p, int argc, char **argv, const struct cli_option *opt, int nopt)
{
	for (int j = 0; j < nopt; j++) {
		assert(opt[j].name && opt[j].name[0] == '-' && opt[j].name[1] && strcmp(opt[j].name, "--") != 0 &&
		       strcmp(opt[j].name, "-q") != 0);
		for (int k = 0; k < j; k++)
			assert(strcmp(opt[j].name, opt[k].name) != 0);
	}
	*p = (struct cli_args){ .argc = argc, .i = 1, .dashdash = 0, .nopt = nopt, .argv = argv, .opt = opt };
}

int cli_next(struct cli_args *p, const char **val)
{
	while (p->i < p->argc) {
		const char *a = p->argv[p->i++];
		if (p->dashdash || a[0] != '-' || a[1] == '\0') {
			*val = a;
			return CLI_OPERAND;
		}
		if (strcmp(a, "--") == 0) {
			p->dashdash = 1;
			continue;
		}
		if (strcmp(a, "-q") == 0) {
			cli_quiet = 1;
			continue;
		}
		/* a long option's name ends at '='; a short option is the whole word */
		size_t len = a[1] == '-' ? strcspn(a, "=") : strlen(a);
		int j = 0;
		while (j < p->nopt && !(strlen(p->opt[j].name) == len && strncmp(p->opt[j].name, a, len) == 0))
			j++;
		if (j == p->nopt)
			cli_usage("unknown option '%.*s' ('%s --help' lists the options)", (int)len, a, cli_prog);
		if (p->opt[j].arg == CLI_FLAG) {
			if (a[len])
				cli_usage("option '%s' takes no value", p->opt[j].name);
			*val = NULL;
		} else if (a[len] == '=') {
			*val = a + len + 1;
		} else {
			if (p->i >= p->argc)
				cli_usage("option '%s' needs a value", p->opt[j].name);
			*val = p->argv[p->i++];
		}
		return j;
	}
	return CLI_DONE;
}
