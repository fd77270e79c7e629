/* fd_out: atomic output files. Everything is written to a temporary name in
 * the target's directory and renamed over the target only when complete, so an
 * interrupted run never leaves a file that looks finished (Make relies on it). */
#ifndef FD_OUT_H
#define FD_OUT_H

#include <stdio.h>
#include "core/fd_err.h"

struct fd_out {
	FILE *f;     /* write here */
	char *path;  /* final name; NULL when writing to stdout or in place */
	char *tmp;   /* temporary name; NULL for stdout, in place, or once committed/aborted */
	int direct;  /* 1: f is a device or FIFO opened in place (closed on commit) */
};

/* Open an output. path "-" or NULL means stdout (no atomicity, nothing to
 * rename). A path naming an existing character or block device or a FIFO is
 * opened for writing in place (O_WRONLY, no truncation, nothing renamed or
 * unlinked: `-o /dev/null` stays a device). A symbolic link is followed: the
 * file it points to is replaced atomically and the link stays; a dangling
 * link, a directory or a socket is refused. Otherwise a temporary
 * ".<name>.tmp.<pid>.XXXXXX" is created beside the (resolved) path with mode
 * 0666 & ~umask, and registered so that fd_out_install_signals()'s handler
 * and fd_out_cleanup() remove it. Temporaries of the same name left by a
 * process that no longer exists (kill -9, power loss) are removed first.
 * Errors: the directory is missing or not writable, the target is refused. */
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

/* 1 when path names an existing device, FIFO or socket (written in place,
 * never locked nor replaced), else 0. */
int fd_out_is_special(const char *path);

/* Refuse to write over an input: -1 with "output 'O' is the input 'I'" when
 * an output out[j] is the same file as an input in[i] (same st_dev/st_ino;
 * when the output does not exist yet, the same resolved path), or "output 'O'
 * is given twice" when two outputs are the same file, or when an output lies
 * inside an input that is a directory (a run directory fd-report reads). NULL and "-" entries
 * and special files (fd_out_is_special) are skipped; an input that does not
 * exist matches nothing. The caller lists sidecars (a pack's .tsv) as inputs
 * or outputs of their own. Reads only metadata, so call it before any input
 * is read. */
int fd_out_check_io(const char *const *in, int nin, const char *const *out, int nout,
		    struct fd_err *e);

/* Take the lock "TARGET.lock" (O_CREAT|O_EXCL, holding the PID as text) for
 * the life of this process, as git's index.lock: a second writer of the same
 * target fails with "'T.lock' is held by process N". A lock whose process no
 * longer exists is taken over and its PID stored in *stale (else *stale = 0)
 * so the tool can say so. A lock this process already holds is a no-op. The
 * lock is removed by fd_out_cleanup() (call it at exit) and by the signal
 * handler. Errors: held by a live process, cannot create. */
int fd_out_lock(const char *target, long *stale, struct fd_err *e);

/* Remove every lock taken and every temporary still open (not committed).
 * For atexit(): a tool that fails midway leaves neither behind. */
void fd_out_cleanup(void);

/* Make a directory and its parents (like mkdir -p). */
int fd_mkdir_p(const char *path, struct fd_err *e);

#endif
