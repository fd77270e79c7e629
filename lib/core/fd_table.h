/* fd_table: TSV tables held in memory. UTF-8 (a leading byte-order mark is
 * skipped), first line the header, tab separated, no quoting; columns are
 * found by name, never by position. */
#ifndef FD_TABLE_H
#define FD_TABLE_H

#include <stddef.h>
#include <stdio.h>
#include "core/fd_err.h"

struct fd_strpool; /* bump allocator behind the cells */

struct fd_table {
	int ncol;
	char **name;        /* ncol column names, in order */
	size_t nrow, cap;
	const char **cell;  /* nrow*ncap row-major; never NULL once a row exists */
	int ccap;           /* allocated columns per row (>= ncol) */
	struct fd_strpool *pool;
	char *src;          /* file name used in messages ("-" shows as "standard input") */
};

/* Zero a table ready for fd_table_add_col/add_row or a read. */
void fd_table_init(struct fd_table *t);
/* Release everything; fd_table_free on a zeroed table is a no-op. */
void fd_table_free(struct fd_table *t);

/* Read a whole TSV from path ("-" or NULL: stdin) into a zeroed t. Errors name
 * the file and line: "cannot read 'x.tsv': line 12: expected 9 fields, found 8";
 * also an empty file, an empty or duplicate column name, invalid UTF-8, and a
 * NUL byte. A final newline is optional; a trailing '\r' on a line is dropped. */
int fd_table_read(struct fd_table *t, const char *path, struct fd_err *e);

/* Parse a buffer as fd_table_read does (name is used in messages). */
int fd_table_parse(struct fd_table *t, const char *buf, size_t len, const char *name,
		   struct fd_err *e);

/* Column index of name, or -1. */
int fd_table_col(const struct fd_table *t, const char *name);

/* Column index of name; when absent, -1 and "'<src>': missing column '<name>'". */
int fd_table_need(const struct fd_table *t, const char *name, struct fd_err *e);

/* Append a column (empty in every row) and return its index; if the column
 * exists already, return its index and keep its values (a tool re-run over
 * its own output overwrites its columns instead of duplicating them). */
int fd_table_add_col(struct fd_table *t, const char *name, struct fd_err *e);

/* Append an empty row; returns its index, or (size_t)-1 when out of memory. */
size_t fd_table_add_row(struct fd_table *t);

/* The cell's text (never NULL; "" when empty). */
static inline const char *fd_table_get(const struct fd_table *t, size_t row, int col)
{
	return t->cell[row * (size_t)t->ccap + (size_t)col];
}

/* Copy val into the cell. Refuses a value with a tab, newline or carriage
 * return ("value for column 'x' contains a tab"). */
int fd_table_set(struct fd_table *t, size_t row, int col, const char *val, struct fd_err *e);
int fd_table_setf(struct fd_table *t, size_t row, int col, struct fd_err *e, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Write header and rows. Returns -1 on a write error. */
int fd_table_write(const struct fd_table *t, FILE *f, struct fd_err *e);

/* Write atomically to path ("-": stdout). */
int fd_table_save(const struct fd_table *t, const char *path, struct fd_err *e);

/* Copy the header of src into a zeroed dst (no rows). */
int fd_table_copy_header(struct fd_table *dst, const struct fd_table *src, struct fd_err *e);

/* Append src's row r to dst (same header, as made by fd_table_copy_header). */
int fd_table_copy_row(struct fd_table *dst, const struct fd_table *src, size_t r, struct fd_err *e);

/* Row filters: "--only COL=V[,V..]"; several filters must all hold. */
struct fd_only {
	char *col;
	char **vals;
	int nval;
	int ci; /* column index, set by fd_only_bind */
};

/* Parse "COL=V1,V2". Errors: no '=', empty column, empty value list. */
int fd_only_parse(struct fd_only *o, const char *spec, struct fd_err *e);
/* Resolve the column against t ("missing column" when absent). */
int fd_only_bind(struct fd_only *o, int n, const struct fd_table *t, struct fd_err *e);
/* 1 when row r passes every filter. */
int fd_only_match(const struct fd_only *o, int n, const struct fd_table *t, size_t r);
void fd_only_free(struct fd_only *o, int n);

#endif
