/* cli: what every fd tool's main() shares: --help/--version/-q, the
 * "prog: message" error style and the exit codes (0 ok, 1 failure, 2 usage).
 * This is tool-side code: it prints and exits, which lib/ never does. */
#ifndef FD_CLI_H
#define FD_CLI_H

#include <stdint.h>
#include "core/fd_err.h"
#include "nn/fd_tensor.h"

extern const char *cli_prog;  /* program name for messages */
extern int cli_quiet;         /* -q: no progress or info lines */

/* Record the program name and handle --help (prints "usage: <synopsis>" then
 * help, exit 0) and --version (exit 0) anywhere before "--"; exit 1 when
 * standard output cannot take that text. The synopsis is
 * the exact form the man page's SYNOPSIS gives (a test compares them). Also
 * installs the signal handlers that remove temporary outputs, and
 * fd_out_cleanup at exit (no lock or temporary outlives a failed run). */
void cli_init(int argc, char **argv, const char *prog, const char *synopsis, const char *help);

/* Declare a writer's files before reading any of them: an output that is one
 * of the inputs (same file, or an input's sidecar the caller lists) or given
 * twice is a usage error (exit 2); then every output that is a regular file
 * (or not there yet) is locked as "OUT.lock" for the life of the process
 * (fd_out_lock; exit 1 when another writer holds it, a warning when a dead
 * process's lock is taken over). NULL and "-" entries are skipped. */
void cli_outputs(const char *const *in, int nin, const char *const *out, int nout);

/* The sidecar TSV of a pack: "X.tsv" for "X.safetensors" (malloc'ed), NULL
 * for any other name. */
char *cli_sidecar(const char *pack);

/* Bad usage: one line "prog: <message>" on stderr, exit 2. */
_Noreturn void cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Failure: "prog: <e->msg>", exit 1. */
_Noreturn void cli_fail(const struct fd_err *e);
/* Failure with a formatted message, exit 1. */
_Noreturn void cli_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "prog: warning: ..." on stderr (always shown). */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "prog: ..." on stderr unless -q. */
void cli_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Strict numeric option parsing: the whole string must be a number in range,
 * else a usage error naming the option. */
long long cli_int(const char *opt, const char *s, long long lo, long long hi);
double cli_double(const char *opt, const char *s, double lo, double hi);

/* The one option syntax of every fd tool (doc/architecture.md, "Option
 * syntax"). A tool lists its options in one table, indexed by its own enum:
 *   enum { O_ROOT, O_STATS, O_OUT };
 *   static const struct cli_option opts[] = {
 *           [O_ROOT] = { "--root", CLI_VALUE },
 *           [O_STATS] = { "--stats", CLI_FLAG },
 *           [O_OUT] = { "-o", CLI_VALUE },
 *   };
 * Names are written in full with their dashes. A long option's value is the
 * next argument or follows '=' ("--root DIR" = "--root=DIR"; "--root=" is an
 * empty value); a short option's value is the next argument only ("-o F"; no
 * "-oF", "-o=F" or clustered "-qo F"). The next argument is taken as the value
 * even when it starts with '-' ("-o -" is standard output). Options and
 * operands mix in any order; "--" ends the options, and "-" alone is an
 * operand. -q (cli_quiet) is every tool's and is handled here, as are --help,
 * -h and --version (by cli_init, earlier). Names are matched exactly: an
 * abbreviation is an unknown option. Every error is a usage error (one line
 * "prog: message" on stderr, exit 2): an unknown option, a missing value, a
 * value given to a flag. */
enum cli_arg { CLI_FLAG, CLI_VALUE };
struct cli_option {
	const char *name;  /* "--root" or "-o" */
	enum cli_arg arg;
};
struct cli_args {
	int argc, i, dashdash, nopt;
	char **argv;
	const struct cli_option *opt;
};
/* cli_next's results besides an option's index in the table */
enum { CLI_DONE = -1, CLI_OPERAND = -2 };
#define CLI_NOPT(table) ((int)(sizeof(table) / sizeof((table)[0])))

/* Start parsing argv[1..argc-1] against opt[0..nopt-1] (borrowed for the
 * parse). A table entry without a name, a name not starting with '-', "--",
 * "-q" (the parser's own) or a name given twice is a programmer error (assert). */
void cli_args_init(struct cli_args *p, int argc, char **argv, const struct cli_option *opt, int nopt);
/* The next item: an option's index in the table (*val its value, NULL for a
 * flag), CLI_OPERAND (*val the argument), or CLI_DONE once argv is used up.
 * Usage errors exit 2 as described above. */
int cli_next(struct cli_args *p, const char **val);

/* --device VALUE (DESIGN.md: cpu|cuda[:N]): FD_DEV_CPU for "cpu", FD_DEV_CUDA
 * for "cuda" or "cuda:N" (N, 0..63, into *index; 0 without ":N"); anything
 * else is a usage error naming `opt` (exit 2). Syntax only: call
 * cli_device_check once every option is parsed. */
enum fd_dev cli_device(const char *opt, const char *val, int *index);
/* Refuse a device this tool cannot run on, before any output exists: every
 * device but the CPU fails (exit 1) with a message saying whether the build
 * lacks the backend or the tool does not use it yet. A run is never moved to
 * the CPU behind the user's back. */
void cli_device_check(enum fd_dev dev, const char *val);

/* Find a file that ships with fd: "$ENVVAR/NAME" when ENVVAR is set (and
 * nothing else), else "<dir of the executable>/REL[i]/NAME" for each i, first
 * existing regular file wins. Returns a malloc'ed path, or NULL with the places
 * tried listed in `tried` (for the error message). */
char *cli_find_data(const char *envvar, const char *name, const char *const *rel, int nrel, char *tried,
		    size_t n);

/* The command line joined with spaces, for provenance records (static buffer). */
const char *cli_cmdline(void);

#endif
