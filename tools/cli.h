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

/* Bad usage: "prog: <message>" and a hint, exit 2. */
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
/* argv[*i] against names[0..n-1], options that take a value given as
 * "--opt VALUE" or "--opt=VALUE": returns the index of the match and sets
 * *val (advancing *i past a separate value). An unknown option ("unknown
 * option 'X'", or "unexpected argument 'X'" when it does not start with '-')
 * or a missing value ("--opt needs a value") is a usage error (exit 2). */
int cli_opt(int argc, char **argv, int *i, const char *const *names, int n, const char **val);
double cli_double(const char *opt, const char *s, double lo, double hi);

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
