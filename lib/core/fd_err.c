/* fd_err: building and prefixing error messages (no printing here). */
#include "core/fd_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int fd_err_set(struct fd_err *e, const char *fmt, ...)
{
	if (!e)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	va_end(ap);
	return -1;
}

int fd_err_ctx(struct fd_err *e, const char *fmt, ...)
{
	if (!e)
		return -1;
	char head[FD_ERR_MAX], old[FD_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(head, sizeof head, fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof old);
	snprintf(e->msg, sizeof e->msg, "%.1000s: %.1000s", head, old);
	return -1;
}

int fd_err_sys(struct fd_err *e, int errnum, const char *fmt, ...)
{
	if (!e)
		return -1;
	char head[FD_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(head, sizeof head, fmt, ap);
	va_end(ap);
	snprintf(e->msg, sizeof e->msg, "%.1500s: %.500s", head, strerror(errnum));
	return -1;
}
