/* fd_pack: the pack, fd's decoded data set. PACK.safetensors holds images u8
 * [N,S,S,3] and label u8 [N] with provenance metadata; PACK.tsv beside it holds
 * one row per image (the input's columns plus `row`). The writer (fd-pack's
 * work) and the reader (fd_loader's) live here, so the format is in one place.
 * See doc/data.md. */
#ifndef FD_PACK_H
#define FD_PACK_H

#include <stddef.h>
#include <stdint.h>
#include "core/fd_err.h"
#include "core/fd_progress.h"
#include "core/fd_table.h"
#include "image/fd_resize.h"
#include "io/fd_safetensors.h"

/* The sidecar of a pack: "DIR/NAME.safetensors" -> "DIR/NAME.tsv", malloc'ed
 * into *tsv (caller frees). The one place this name rule is written.
 * Errors (*tsv NULL): a name that does not end in ".safetensors" or has an
 * empty NAME ("'x.pack' must be a file name ending in .safetensors"). */
int fd_pack_sidecar(const char *pack, char **tsv, struct fd_err *e);

/* ---- writing ---- */

struct fd_pack_opts {
	const char *root;        /* folder the `path` column is relative to */
	int allow_outside_root;  /* 1: rows may name files outside root (core/fd_root.h) */
	int size;                /* S, 1..4096 */
	enum fd_geometry geom;
	double margin;           /* face geometry: fraction of the box's longer side per side */
	int exact;               /* 1: decode JPEGs at full size; 0: DCT-domain draft as
				  * Pillow's Image.draft (fd.decode=exact|draft) */
	int threads;             /* decoding threads; <= 0: all cores */
	struct fd_only *only;    /* parsed --only filters (fd_pack_select binds them) */
	int nonly;
	const char *tool;        /* provenance: fd.tool and fd.cmdline (omitted when NULL or "") */
	const char *cmdline;
};

/* The input, read and checked, and the rows that will be packed. */
struct fd_pack_input {
	struct fd_table t;       /* the whole input table */
	char sha256[65];         /* of the input's exact bytes (fd.source_sha256) */
	char *shown;             /* the input's name in messages ("standard input" for "-") */
	size_t n;                /* rows to pack */
	size_t *row;             /* [n] their rows in t, in input order */
	uint8_t *label;          /* [n] */
	size_t not_ok;           /* rows skipped because `status` is not "ok" */
	size_t filtered;         /* rows skipped by the --only filters */
	int pcol;                /* `path` */
	int fcol[5];             /* face_x1 face_y1 face_x2 face_y2 face_score (face geometry) */
	int *aspect;             /* matched geometry: [2n] the width:height each row is cropped
				  * to before the letterbox (0:0 for reals: not cropped) */
	size_t unmatched;        /* matched: fakes whose group has no real (cropped 1:1) */
};

/* Read the TSV at path ("-": stdin) whole into a zeroed in, hash its bytes and
 * pick the rows to pack: status "ok" (every row when there is no `status`
 * column) and every --only filter holding. The root must be a folder, and
 * every picked row's path must stay inside it (fd_root_path: no '..' out, no
 * absolute path, no symlink out) unless allow_outside_root; such a row is an
 * error naming the input and line. The matched geometry also gives each
 * fake (label != 0) the aspect of its group's real photo: the first row of the
 * whole input (filters aside) with label 0, status ok and the same `group`,
 * whose `width` and `height` (fd-index's columns) are the aspect; a fake whose
 * group has no such row gets 1:1 (a centre square) and is counted in
 * in->unmatched. Errors (in is freed; messages name the file as "cannot read
 * 'x.tsv': ..."): unreadable or malformed TSV, a missing `path` or `label`
 * column, missing face columns for the face geometry, missing group, width or
 * height for the matched geometry, a real's width or height that is not a
 * positive integer (with its line), an --only column that is absent, a label
 * that is not an integer in 0..255 (with its line), no row left to pack. */
int fd_pack_select(struct fd_pack_input *in, const char *path, const struct fd_pack_opts *o,
		   struct fd_err *e);
void fd_pack_input_free(struct fd_pack_input *in);

/* A pack made but not yet on disk under its name. */
struct fd_pack_made {
	struct fd_stw w;         /* created: a mapped temporary beside the output */
	struct fd_table tsv;     /* PACK.tsv: the packed rows, every input column, then `row` */
	size_t packed;           /* images in the pack */
	size_t no_face;          /* face geometry: packed with the centre crop (no usable face) */
	size_t nfail;            /* rows that failed to decode, left out */
	size_t *fail_line;       /* [nfail] their input lines (the header is line 1) */
	char **fail_msg;         /* [nfail] why ("cannot read 'DIR/x.jpg': empty file") */
};

/* Decode every selected image on o->threads threads and make its S x S RGB
 * square (fd_geom_square_ctx with o->geom; face: the row's box, when its
 * face_score > 0 and the box is usable, plus margin, else the centre crop;
 * matched: a fake's fd_geom_aspect_box of in->aspect on the decoded image,
 * letterboxed; a real letterboxed whole)
 * straight into the mapped temporary of out. Each thread keeps one decoder and
 * one resize context. Rows that fail to decode are listed in m and left out (the
 * pack is then made again at its final size). Metadata: fd.kind=pack, fd.size,
 * fd.geometry, fd.margin (face only), fd.unmatched (matched only: in->unmatched),
 * fd.resample=pillow-bilinear,
 * fd.decode=draft|exact, fd.source_sha256, fd.tool, fd.version, fd.cmdline.
 * pr (may be NULL) advances by one per image. Output bytes do not depend on
 * the thread count. m must be zeroed; on success the caller commits with
 * fd_pack_commit or drops it with fd_pack_made_free. Errors: every row failed
 * ("cannot read 'x.tsv': no image could be decoded (3 failed)"; m->fail_* still
 * lists them), the output cannot be created, out of memory. */
int fd_pack_make(struct fd_pack_made *m, const struct fd_pack_input *in,
		 const struct fd_pack_opts *o, const char *out, struct fd_progress *pr,
		 struct fd_err *e);

/* Write PACK.tsv (atomically, beside out, by fd_pack_sidecar's rule), then
 * rename the pack into place, so the pack, which Make looks at, is the newer of
 * the two. On failure neither file is left. Always releases m's pack. */
int fd_pack_commit(struct fd_pack_made *m, const char *out, struct fd_err *e);
/* Free m; removes the temporary of an uncommitted pack. No-op on a zeroed m. */
void fd_pack_made_free(struct fd_pack_made *m);

/* ---- reading ---- */

struct fd_pack {
	struct fd_st st;         /* the mapped file (metadata: fd_st_meta(&p->st, "fd.size")) */
	struct fd_table tab;     /* PACK.tsv */
	char *tsv;               /* its path */
	const uint8_t *images;   /* [n, S, S, 3], into the mapping */
	const uint8_t *labels;   /* [n] */
	size_t n;
	int S;
};

/* Open path (mmap) and its sidecar into p and check that they are one pack:
 * metadata fd.kind=pack; images u8 [N,S,S,3] with 0 < S <= 8192 and N below
 * 2^32; label u8 [N], every value <= max_label; PACK.tsv with N rows whose
 * `row` column reads 0..N-1 in order and whose `label` column equals the
 * label tensor row by row (as a decimal integer). Errors name the file ("'x.tsv' has 1 rows,
 * the pack 61 images"; "'x.tsv': line 3: 'row' is '5', expected 1";
 * "'x.tsv': line 4: label is '0', the pack's 'label' tensor has 1"); p is then
 * closed. */
int fd_pack_open(struct fd_pack *p, const char *path, int max_label, struct fd_err *e);
/* Unmap and free; no-op on a zeroed or closed p. */
void fd_pack_close(struct fd_pack *p);

#endif
