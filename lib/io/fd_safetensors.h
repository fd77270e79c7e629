/* fd_safetensors: the Hugging Face safetensors format (8-byte little-endian
 * header length, JSON header, raw little-endian data), for packs, checkpoints
 * and optimizer state. Files are mmap'ed; every offset and size is checked
 * against the file length before use. Written headers are padded with spaces
 * so the data starts 64-byte aligned. */
#ifndef FD_SAFETENSORS_H
#define FD_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include "core/fd_err.h"
#include "core/fd_out.h"

enum fd_dtype {
	FD_DT_F32, FD_DT_F16, FD_DT_BF16, FD_DT_F64,
	FD_DT_U8, FD_DT_I8, FD_DT_I16, FD_DT_I32, FD_DT_I64, FD_DT_BOOL,
	FD_DT_COUNT
};

#define FD_ST_MAXDIM 8

/* Name as in the format ("F32", "U8", ...), size in bytes, and lookup. */
const char *fd_dtype_name(enum fd_dtype t);
size_t fd_dtype_size(enum fd_dtype t);
int fd_dtype_parse(const char *s, enum fd_dtype *t);

struct fd_st_tensor {
	char *name;
	enum fd_dtype dtype;
	int ndim;
	int64_t shape[FD_ST_MAXDIM];
	int64_t numel;
	const void *data;   /* into the mapping (reader); aligned to the element size
			     * only if the file's writer aligned it (fd's writer does) */
	size_t nbytes;
};

/* Tensors are in data-offset order; names and metadata strings are owned by s. */
struct fd_st {
	void *map;          /* whole file, read-only */
	size_t maplen;
	int n;
	struct fd_st_tensor *t;
	int nmeta;
	char **meta_key, **meta_val;
	int mapped;         /* map is ours to munmap (fd_st_open), not a borrowed buffer */
};

/* mmap and validate a file: header length within the file, valid JSON object,
 * each entry's dtype known, shape non-negative with no overflow, data_offsets
 * inside the data area, end - begin == numel * dtype size, no two tensors
 * overlapping. Errors name the file and the offending tensor. Like the
 * reference (Rust) implementation it also refuses duplicate keys, headers over
 * 100 MB, unused bytes between or after tensors and non-string metadata values,
 * so whatever fd accepts, safetensors.safe_open accepts too. Returns 0, or -1
 * with e set ("cannot read 'x.safetensors': tensor 'w': ...") and s zeroed.
 * Python: safetensors.safe_open(path, "np"). */
int fd_st_open(struct fd_st *s, const char *path, struct fd_err *e);
/* The same over a caller-owned buffer (no copy; buf must outlive s; name is
 * only used in messages). */
int fd_st_parse(struct fd_st *s, const void *buf, size_t len, const char *name, struct fd_err *e);
/* Tensor by name, or NULL. */
const struct fd_st_tensor *fd_st_find(const struct fd_st *s, const char *name);
/* __metadata__ value by key, or NULL. */
const char *fd_st_meta(const struct fd_st *s, const char *key);
/* Unmap and free; no-op on a zeroed s. */
void fd_st_close(struct fd_st *s);

/* Writer: declare tensors (and metadata), then either write them from memory
 * in one go (fd_stw_write) or create the file at full size, mmap'ed, fill the
 * tensors' regions in place (from many threads) and commit (fd_stw_create /
 * fd_stw_commit): packs of many gigabytes never sit in memory. Output is atomic
 * (temp + rename) either way. */
struct fd_stw_item {
	char *name;
	enum fd_dtype dtype;
	int ndim;
	int64_t shape[FD_ST_MAXDIM];
	size_t nbytes;
	const void *src;    /* borrowed, for fd_stw_write; may be NULL with fd_stw_create */
	size_t offset;      /* within the data area, set when the header is laid out */
};

struct fd_stw {
	int n;
	struct fd_stw_item *item;
	int nmeta;
	char **meta_key, **meta_val;
	/* set by fd_stw_create */
	struct fd_out out;
	void *map;
	size_t maplen, data_start;
};

/* Layout: the header lists __metadata__ first, then the tensors; the data area
 * starts at a multiple of 64 bytes and holds the tensors by element size
 * (8-byte types first) then in declaration order, with no padding, so each
 * tensor is aligned to its element size. fd_stw_data(w, i) and item[i] keep
 * declaration order. Python: safetensors.numpy.save_file(d, path, metadata). */
void fd_stw_init(struct fd_stw *w);
/* Declare a tensor; src is borrowed until the write. Names must be unique,
 * valid UTF-8 and not "__metadata__"; ndim 0..FD_ST_MAXDIM (0 = scalar); a zero
 * dimension makes an empty tensor. Errors: those, and a size that overflows. */
int fd_stw_add(struct fd_stw *w, const char *name, enum fd_dtype dtype, int ndim,
	       const int64_t *shape, const void *src, struct fd_err *e);
/* Add a __metadata__ string entry (values are strings, as the format says).
 * Keys must be unique; key and value valid UTF-8. Both are copied. */
int fd_stw_meta(struct fd_stw *w, const char *key, const char *val, struct fd_err *e);
/* Write everything declared (each item's src; NULL only for empty tensors)
 * atomically to path ("-" is stdout). Errors name path; no file is left. */
int fd_stw_write(struct fd_stw *w, const char *path, struct fd_err *e);
/* Create path's temporary at full size (blocks reserved with posix_fallocate
 * where the file system can, so a full disk fails here) and map it; returns the
 * writable data pointer of each declared tensor through fd_stw_data afterwards.
 * Regions are disjoint, so threads may fill different tensors (or rows) at once.
 * Not for stdout. */
int fd_stw_create(struct fd_stw *w, const char *path, struct fd_err *e);
/* Writable data of tensor i (declaration order), or NULL before create / out of range. */
void *fd_stw_data(struct fd_stw *w, int i);
/* msync, unmap, rename. On failure the temporary is removed. */
int fd_stw_commit(struct fd_stw *w, struct fd_err *e);
/* Free declarations; aborts (removes the temporary of) an uncommitted create. */
void fd_stw_free(struct fd_stw *w);

#endif
