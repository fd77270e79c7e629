/* fd_out: atomic output files. Everything is written to a temporary name in
 * the target's directory and renamed over the target only when complete, so an
 * interrupted run never leaves a file that looks finished (Make relies on it). */
#ifndef FD_OUT_H
#define FD_OUT_H

#include <stdio.h>
#include "core/fd_err.h"

struct fd_out {
	FILE *f;     /* write here */
	char *path;  /* final name; NULL when writing to stdout */
	char *tmp;   /* temporary name; NULL for stdout or once committed/aborted */
};

/* Open an output. path "-" or NULL means stdout (no atomicity, nothing to
 * rename). Otherwise a temporary ".<name>.tmp.XXXXXX" is created beside path
 * with mode 0666 & ~umask, and registered so that fd_out_install_signals()'s
 * handler removes it. Errors: the directory is missing or not writable. */
int fd_out_open(struct fd_out *o, const char *path, struct fd_err *e);

/* Flush, fsync, close and rename onto the final name. On any failure the
 * temporary is removed and -1 returned with the cause in e. Always releases o. */
int fd_out_commit(struct fd_out *o, struct fd_err *e);

/* Close and remove the temporary; the final name is untouched. No-op on a
 * zeroed, committed or already aborted o. */
void fd_out_abort(struct fd_out *o);

/* Install SIGINT/SIGTERM/SIGHUP/SIGPIPE handlers that unlink every open
 * temporary and then die of the same signal. The registry of temporaries is the
 * library's one piece of global state: a signal handler has no other way to
 * reach it. */
void fd_out_install_signals(void);

/* Make a directory and its parents (like mkdir -p). */
int fd_mkdir_p(const char *path, struct fd_err *e);

#endif
