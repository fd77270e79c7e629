/* fd_resize: Pillow-exact antialiased resampling of 8-bit RGB images and the
 * square geometries fd-pack builds on it (centre crop, letterbox, stretch, face
 * box, aspect-matched letterbox). Crops are expressed as the resize's source box, so no copy is made. */
#ifndef FD_RESIZE_H
#define FD_RESIZE_H

#include <stdint.h>
#include "core/fd_err.h"

enum fd_filter { FD_FILTER_BILINEAR = 0, FD_FILTER_BICUBIC, FD_FILTER_LANCZOS };

/* Resample the region box = {x0, y0, x1, y1} (source pixel coordinates, float
 * like Pillow's) of the w x h RGB image src (row stride w*3) into the ow x oh
 * RGB image at dst, whose rows are dst_stride bytes apart (>= ow*3; other bytes
 * untouched). Overwrites dst. Equals Pillow 9.4's
 *   Image.resize((ow, oh), Image.BILINEAR | BICUBIC | LANCZOS, box=box)
 * bit for bit: separable two-pass convolution (horizontal first, clipped to
 * uint8 between passes), filter support scaled by the reduction factor when
 * shrinking (antialiasing), coefficients normalised in double then rounded to
 * 22-bit fixed point, accumulation from 1 << 21, clipping to 0..255. Like
 * Pillow the kernel may read source pixels outside the box (it is clipped to
 * the image, not the box). Errors: a box outside the image or empty, a
 * non-positive size, out of memory (one temporary of ow x rows-used).
 * Thread-safe (no shared state). */
int fd_resize_rgb(const uint8_t *src, int w, int h, const float box[4], uint8_t *dst, int ow,
		  int oh, size_t dst_stride, enum fd_filter filter, struct fd_err *e);

/* Reusable resampling state for one thread: the coefficient tables of the last
 * (source size, box, output size, filter) per axis, recomputed only when that
 * changes, and the scratch buffers, which only grow. alloc: 0, or -1 (out of
 * memory) with *ctx NULL; the caller frees with fd_resize_ctx_free (NULL is a
 * no-op). A context must not be used by two threads at once. */
struct fd_resize_ctx;
int fd_resize_ctx_alloc(struct fd_resize_ctx **ctx, struct fd_err *e);
void fd_resize_ctx_free(struct fd_resize_ctx *ctx);

/* fd_resize_rgb using ctx's cached coefficients and buffers (ctx NULL: a
 * temporary one). Same result and errors as fd_resize_rgb. */
int fd_resize_rgb_ctx(struct fd_resize_ctx *ctx, const uint8_t *src, int w, int h,
		      const float box[4], uint8_t *dst, int ow, int oh, size_t dst_stride,
		      enum fd_filter filter, struct fd_err *e);

enum fd_geometry { FD_GEOM_CENTER = 0, FD_GEOM_LETTERBOX, FD_GEOM_RESIZE, FD_GEOM_FACE,
		   FD_GEOM_MATCHED };

/* "center", "letterbox", "resize", "face", "matched"; parse returns -1 on an
 * unknown name. */
const char *fd_geometry_name(enum fd_geometry g);
int fd_geometry_parse(const char *s, enum fd_geometry *g);

/* The largest centred square of a w x h image, as torchvision's
 * CenterCrop(min(w, h)) places it: left = round((w - m) / 2) with Python's
 * round-half-even, likewise top; box = {left, top, left + m, top + m}. */
void fd_geom_center_box(int w, int h, float box[4]);

/* Letterbox placement of a w x h image in an S x S square: the long side
 * becomes S, the short side round-half-up(short * S / long) (at least 1), and
 * the resized image sits at (ox, oy) = ((S - nw) / 2, (S - nh) / 2) (floor). */
void fd_geom_letterbox(int w, int h, int S, int *nw, int *nh, int *ox, int *oy);

/* The largest centred region of a w x h image with aspect aw:ah (width:height,
 * both > 0), in whole pixels: when w * ah > h * aw the region is cw x h with
 * cw = round-half-up(h * aw / ah), else w x ch with ch = round-half-up(w * ah /
 * aw), clamped to 1..w (1..h); placed at left = (w - cw) / 2, top = (h - ch) / 2
 * (floor). box = {left, top, left + cw, top + ch}. The matched geometry crops a
 * fake to its group's real photo's aspect with it (doc/shortcuts.md). */
void fd_geom_aspect_box(int w, int h, int aw, int ah, float box[4]);

/* The square crop around a face box (x1, y1, x2, y2) in image pixels: side =
 * max(x2 - x1, y2 - y1) * (1 + 2 * margin) (margin is a fraction of the box's
 * longer side added on each side), centred on the box, shrunk to min(w, h)
 * if larger, then shifted inside the image. Computed in double, stored as
 * float (as Pillow receives a box). Returns -1 for an empty or non-finite box
 * or a negative margin. */
int fd_geom_face_box(int w, int h, double x1, double y1, double x2, double y2, double margin,
		     float box[4]);

/* Make the S x S RGB image dst (S*S*3 bytes, overwritten) from the w x h image
 * src with geometry g, using Pillow-exact bilinear resampling:
 *   center:    resize(box = fd_geom_center_box)
 *   letterbox: fill, then resize the whole image to fd_geom_letterbox's
 *              nw x nh and place it at (ox, oy) (Pillow: Image.new + paste)
 *   resize:    resize the whole image to S x S (aspect not kept)
 *   face:      resize(box = box), box from fd_geom_face_box
 *   matched:   letterbox of the region box (whole pixels, from
 *              fd_geom_aspect_box; NULL: the whole image, i.e. letterbox):
 *              fill, resize(box = box) to fd_geom_letterbox(box width, box
 *              height, S)'s nw x nh, place at (ox, oy).
 * fill is the letterbox colour (NULL: black). box is required for FD_GEOM_FACE,
 * optional for FD_GEOM_MATCHED and ignored otherwise. Errors as fd_resize_rgb. */
int fd_geom_square(const uint8_t *src, int w, int h, enum fd_geometry g, int S,
		   const float box[4], const uint8_t fill[3], uint8_t *dst, struct fd_err *e);

/* fd_geom_square resizing through ctx (see fd_resize_rgb_ctx; NULL allowed). */
int fd_geom_square_ctx(struct fd_resize_ctx *ctx, const uint8_t *src, int w, int h,
		       enum fd_geometry g, int S, const float box[4], const uint8_t fill[3],
		       uint8_t *dst, struct fd_err *e);

#endif
