/* fd_root: confinement of row paths to the data set root, and opening data
 * files without following a FIFO into a hang. */
#include "core/fd_root.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fd_root_init(struct fd_root *r, const char *dir, int allow_outside, struct fd_err *e)
{
	memset(r, 0, sizeof *r);
	struct stat st;
	if (stat(dir, &st) != 0)
		return fd_err_sys(e, errno, "cannot read root '%s'", dir);
	if (!S_ISDIR(st.st_mode))
		return fd_err_set(e, "root '%s' is not a directory", dir);
	r->real = realpath(dir, NULL);
	r->dir = strdup(dir);
	if (!r->real || !r->dir) {
		int er = errno;
		fd_root_free(r);
		return fd_err_sys(e, er, "cannot read root '%s'", dir);
	}
	r->allow_outside = allow_outside;
	return 0;
}

void fd_root_free(struct fd_root *r)
{
	if (!r)
		return;
	free(r->dir);
	free(r->real);
	memset(r, 0, sizeof *r);
}

int fd_root_path(const struct fd_root *r, const char *rel, char *out, size_t n, struct fd_err *e)
{
	if (!*rel)
		return fd_err_set(e, "empty path");
	int k = rel[0] == '/' && r->allow_outside ? snprintf(out, n, "%s", rel)
						  : snprintf(out, n, "%s/%s", r->dir, rel);
	if (k < 0 || (size_t)k >= n)
		return fd_err_set(e, "path too long: '%s'", rel);
	if (r->allow_outside)
		return 0;
	if (rel[0] == '/')
		return fd_err_set(e, "path '%s' is absolute; paths are relative to the root '%s' "
				     "(--allow-outside-root accepts it)", rel, r->dir);
	char *real = realpath(out, NULL);
	if (!real) /* missing: opening it names the error, and nothing outside is read */
		return 0;
	size_t l = strlen(r->real);
	int inside = strncmp(real, r->real, l) == 0 && (real[l] == '/' || (l == 1 && real[1]));
	free(real);
	if (!inside)
		return fd_err_set(e, "path '%s' resolves outside the root '%s' (--allow-outside-root accepts it)",
				  rel, r->dir);
	return 0;
}

int fd_open_regular(const char *path, struct fd_err *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return fd_err_sys(e, errno, "cannot read '%s'", path);
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int er = errno;
		close(fd);
		return fd_err_sys(e, er, "cannot read '%s'", path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fd_err_set(e, "cannot read '%s': not a regular file", path);
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}
