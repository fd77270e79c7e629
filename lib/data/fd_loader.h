/* fd_loader: the training data path. Opens a pack (mmap'ed images + PACK.tsv),
 * selects a fold's training and validation rows, shuffles per epoch, augments
 * training images in worker threads and hands out double-buffered float32 NCHW
 * batches normalised with a mean and std. Results depend only on (seed, epoch,
 * row), never on thread count or timing. See doc/loader.md. */
#ifndef FD_LOADER_H
#define FD_LOADER_H

#include <stddef.h>
#include <stdint.h>
#include "core/fd_err.h"
#include "core/fd_table.h"
#include "data/fd_pack.h"
#include "image/fd_augment.h"

enum fd_norm { FD_NORM_IMAGENET = 0, FD_NORM_REAL_TRAIN };
/* "imagenet" / "real-train"; parse returns -1 for anything else. */
int fd_norm_parse(const char *s, enum fd_norm *n);

/* Which rows a pass reads. */
enum fd_set {
	FD_SET_TRAIN = 0, /* fold is an integer other than K, minus excluded sources */
	FD_SET_VAL,       /* fold == K minus excluded sources, or every selected row when fold < 0 */
};

struct fd_loader_opts {
	int fold;                      /* K; < 0: no split, every selected row is in FD_SET_VAL (fd-eval) */
	struct fd_only *only;          /* --only filters (parsed, not bound; the loader binds them) */
	int nonly;
	const char *const *exclude;    /* sources dropped from FD_SET_TRAIN and FD_SET_VAL (held out) */
	int nexclude;
	int batch;                     /* images per batch (> 0) */
	int threads;                   /* worker threads (>= 1) */
	uint64_t seed;
	struct fd_aug_cfg aug;         /* applied to FD_SET_TRAIN passes begun with augment = 1 */
	enum fd_norm norm;
	int norm_given;                /* 1: use mean/std below instead of computing from norm
					* (fd-eval: the values stored in a checkpoint) */
	double mean[3], std[3];
	int max_label;                 /* largest class label accepted in the pack (0 means 1:
					* real/fake); num_classes - 1 for a multi-class pack */
};

/* One batch, owned by the loader and valid until the next fd_loader_next or
 * fd_loader_begin call. x: [n, 3, S, S] float32, (u8 / 255 - mean[c]) / std[c]
 * exactly as torchvision's ToTensor() then Normalize(mean, std) in float32;
 * y: [n] labels (0 real, 1 fake) as float; row: [n] pack rows (index into
 * PACK.tsv / the images tensor). */
struct fd_batch {
	float *x;
	float *y;
	uint32_t *row;
	int n;      /* < batch only for the last batch of a pass (drop_last=False) */
	int index;  /* batch number within the pass */
};

struct fd_loader;

/* Open the pack with fd_pack_open (mmap; images u8 [N,S,S,3], label u8 [N]
 * with values <= max_label, metadata fd.kind=pack, PACK.tsv beside it with N
 * rows, `row` = 0..N-1 in order; `fold` needed when o->fold >= 0, `source` when
 * sources are excluded), select
 * the rows, compute the normalisation (real-train: per-channel mean and
 * population std, over all pixels, of the real images (label 0) of
 * FD_SET_TRAIN, in [0, 1] units, one pass) and start the worker threads.
 * Allocates every buffer here; passes allocate nothing more (except inside the
 * JPEG codec and the resize of an augmentation).
 * Errors (e names the file): bad pack, missing columns, a fold value that is
 * neither an integer, `test` nor `excluded`, no row with fold K, an empty
 * training or validation set, an excluded source absent from the pack, no real training
 * image for real-train, augmentation blur kernel too large for S. */
int fd_loader_open(struct fd_loader **L, const char *pack, const struct fd_loader_opts *o,
		   struct fd_err *e);
/* Stop the workers and unmap; no-op on NULL. */
void fd_loader_close(struct fd_loader *L);

int fd_loader_size(const struct fd_loader *L);                 /* S */
size_t fd_loader_count(const struct fd_loader *L, enum fd_set s); /* rows in the set */
/* The set's rows in pack order (borrowed). */
const uint32_t *fd_loader_rows(const struct fd_loader *L, enum fd_set s);
/* The mean and std used (float64 as computed; the LUT uses them as float32). */
void fd_loader_norm(const struct fd_loader *L, double mean[3], double std[3]);
/* The pack's table (borrowed), for sources and other columns by row. */
const struct fd_table *fd_loader_table(const struct fd_loader *L);
/* The open pack (borrowed): its sidecar's path (->tsv) and metadata
 * (fd_st_meta(&p->st, "fd.source_sha256")), for provenance records. */
const struct fd_pack *fd_loader_pack(const struct fd_loader *L);

/* Start a pass over set s. FD_SET_TRAIN with augment = 1 is a training epoch:
 * rows shuffled by Philox (key seed, stream epoch) and each image augmented
 * with parameters from fd_aug_sample(seed, epoch, row). Otherwise rows come in
 * pack order, never augmented (validation is never augmented, whatever
 * augment says). Waits for any batch still being made. Errors: none
 * besides a failure left by the previous pass. */
int fd_loader_begin(struct fd_loader *L, enum fd_set s, int epoch, int augment, struct fd_err *e);
/* The next batch of the pass: 1 and *b set, 0 at the end, -1 on error (an
 * augmentation's codec failure). While the caller works on batch k the
 * workers make batch k + 1. */
int fd_loader_next(struct fd_loader *L, const struct fd_batch **b, struct fd_err *e);

#endif
