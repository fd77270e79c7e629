/* fd_root: files named by a TSV row, confined to the data set root (--root).
 * A row's path is relative to the root; one that leaves it (.., an absolute
 * path, a symbolic link pointing out) is refused unless the user opts in. */
#ifndef FD_ROOT_H
#define FD_ROOT_H

#include <stddef.h>
#include "core/fd_err.h"

struct fd_root {
	char *dir;         /* as given (for messages) */
	char *real;        /* realpath of dir */
	int allow_outside; /* 1: paths may leave the root (--allow-outside-root) */
};

/* Resolve the root. Errors: "cannot read root 'D': No such file or
 * directory", "root 'D' is not a directory". Free with fd_root_free. */
int fd_root_init(struct fd_root *r, const char *dir, int allow_outside, struct fd_err *e);
void fd_root_free(struct fd_root *r);

/* The file a row's rel names: "<dir>/<rel>" written to out[n] (rel as is when
 * absolute and allow_outside). Unless allow_outside, the path with every
 * symbolic link resolved must lie under the root: an empty or absolute rel,
 * or one resolving outside, is -1 with "path 'rel' ... outside the root 'D'
 * (--allow-outside-root accepts it)". A path that does not resolve (a missing
 * file) is returned as joined: opening it gives the real error, and nothing
 * outside is read. The caller
 * adds the TSV name and line. Metadata only; the file is not opened. */
int fd_root_path(const struct fd_root *r, const char *rel, char *out, size_t n, struct fd_err *e);

/* Open a data file for reading without blocking and refuse what is not a
 * regular file (a FIFO would hang open(), a device never ends): returns the
 * descriptor (O_RDONLY|O_CLOEXEC, blocking mode restored), or -1 with
 * "cannot read 'P': not a regular file" or the system error. */
int fd_open_regular(const char *path, struct fd_err *e);

#endif
