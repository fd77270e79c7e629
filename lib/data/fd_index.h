/* fd_index: the data set's inventory. Walk the tree of every source folder
 * of a sources table, probe (or decode) each regular file, and describe it in
 * one row: path, source, label, group, width, height, format, bytes, status.
 * A bad file is a row with status "bad:<reason>", never an error. */
#ifndef FD_INDEX_H
#define FD_INDEX_H

#include <stdint.h>
#include <stdio.h>
#include "core/fd_err.h"
#include "io/fd_image.h"

/* configs/sources.tsv: columns `source` (a folder name below the root: no '/',
 * not "." or "..", unique) and `label` (0 real, 1 fake); other columns ignored. */
struct fd_sources {
	int n;
	char **name;
	int *label;
};

/* Read and validate a sources table into a zeroed s. Errors name the file and
 * line: "cannot read 'x.tsv': line 1: missing column 'label'", "... line 3:
 * label '2' is not 0 or 1", duplicate or unsafe source names, no rows. */
int fd_sources_read(struct fd_sources *s, const char *path, struct fd_err *e);
void fd_sources_free(struct fd_sources *s);

enum fd_index_name { FD_INDEX_NAME_OK, FD_INDEX_NAME_NONUTF8, FD_INDEX_NAME_CONTROL };

struct fd_index_row {
	char *path;             /* relative to the root, as written; for a bad name the
				   escaped form (see fd_index_walk) */
	char *raw;              /* relative path as on disk (opens the file) */
	int src;                /* index into the sources */
	int name;               /* enum fd_index_name */
	int w, h;               /* 0 when unknown */
	enum fd_imgfmt fmt;
	int64_t bytes;
	char status[32];        /* "ok" or "bad:<reason>" */
	int has_stats;
	double mean[3], std[3]; /* RGB on the 0..1 scale, population std */
};

struct fd_index {
	size_t n, cap;
	struct fd_index_row *row;
	size_t skipped;          /* entries that are neither regular files nor directories
				    (sockets, fifos, devices, broken links) or are
				    symbolic links to directories, which are not followed */
	char skipped_example[512];
};

/* Walk every source folder (in parallel, one directory per task) and collect
 * one row per regular file (symbolic links to regular files count as files),
 * sorted by path in byte order. A name that is not valid UTF-8, or holds a
 * control character (a tab or newline would break the TSV), gets name !=
 * FD_INDEX_NAME_OK and a path in which each offending byte and every backslash
 * is written "\xHH" (so the escaped form is unambiguous), and is not probed.
 * Errors (nothing is kept): a source folder missing or not a directory, any
 * directory that cannot be opened or read ("cannot read directory
 * 'root/wiki/03': Permission denied"), out of memory. ix must be zeroed. */
int fd_index_walk(struct fd_index *ix, const char *root, const struct fd_sources *s, struct fd_err *e);

/* Fill size, format, geometry and status of rows [begin, end), on all cores.
 * stats == 0: header probe only; detects bad:empty, bad:unreadable,
 * bad:not-an-image, bad:truncated (header cut short), bad:corrupt (malformed
 * header), bad:unsupported (12-bit JPEG, unusual component count), bad:too-large (width*height > max_pixels). A file cut inside its
 * image data passes a probe. stats != 0: decode as well (same limit) and add
 * per-channel mean/std; a decode failure is bad:truncated when the file lacks
 * its end marker (JPEG EOI after the last scan, PNG IEND) and bad:corrupt
 * otherwise. max_pixels <= 0 means FD_IMAGE_MAX_PIXELS_DEFAULT. */
void fd_index_probe(struct fd_index *ix, const char *root, size_t begin, size_t end, int stats,
		    int64_t max_pixels);

/* Write the TSV: path source label group width height format bytes status,
 * plus mean_r mean_g mean_b std_r std_g std_b when stats (%.8f; empty cells
 * for rows whose status is not ok). group is the path below the source folder
 * without the file's extension. Errors: write failure. */
int fd_index_write(const struct fd_index *ix, const struct fd_sources *s, int stats, FILE *f,
		   struct fd_err *e);

void fd_index_free(struct fd_index *ix);

#endif
