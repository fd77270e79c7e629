/* fd_err: the one error record of the library. A function that fails fills it
 * and returns a negative code; callers may prefix context as the error travels up. */
#ifndef FD_ERR_H
#define FD_ERR_H

#include <stddef.h>

#define FD_ERR_MAX 2048

/* The message reads as a chain of contexts, outermost first:
 * "cannot read 'train.tsv': line 12: expected 9 fields". Lowercase, no final period. */
struct fd_err {
	char msg[FD_ERR_MAX];
};

/* Overwrite e->msg with a printf-style message. Returns -1 so callers can
 * `return fd_err_set(e, ...)`. e may be NULL (the message is dropped). */
int fd_err_set(struct fd_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepend "<context>: " to e->msg (truncating at FD_ERR_MAX). Returns -1. */
int fd_err_ctx(struct fd_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like fd_err_set, with ": <strerror(errnum)>" appended. Returns -1. */
int fd_err_sys(struct fd_err *e, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
