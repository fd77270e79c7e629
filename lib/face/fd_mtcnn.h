/* fd_mtcnn: MTCNN face detection (P-Net, R-Net, O-Net cascade) reproducing
 * facenet-pytorch 2.5.3's detect_face / MTCNN.detect on one RGB image, with the
 * three nets' weights read from facenet-pytorch's pnet.pt, rnet.pt, onet.pt. */
#ifndef FD_MTCNN_H
#define FD_MTCNN_H

#include <stdint.h>
#include "core/fd_err.h"
#include "nn/conv2d.h"

/* One detected face, in the image's pixel coordinates as facenet-pytorch
 * reports them: box x1 y1 x2 y2 (float32, may lie partly outside the image),
 * score = O-Net's face probability, lm = the five landmarks as (x, y) pairs in
 * O-Net's order (left eye, right eye, nose, left mouth corner, right mouth
 * corner, "left" as seen in the image). */
struct fd_mtcnn_face {
	float box[4];
	float score;
	float lm[5][2];
};

/* The weights of the three nets, read-only once loaded: share one between
 * threads. Tensors keep facenet-pytorch's state-dict names in the loader;
 * here they are stored per layer (the two or three heads of each net are
 * concatenated along the output dimension so each runs as one layer). */
struct fd_mtcnn_weights {
	float *buf;                 /* one allocation holding everything below */
	const float *p_w[4], *p_b[4], *p_a[3];          /* conv1..3, conv4_1|conv4_2 (6 out); prelu1..3 */
	const float *r_w[3], *r_b[3], *r_a[4];          /* conv1..3; prelu1..4 */
	const float *r_dw[2], *r_db[2];                 /* dense4, dense5_1|dense5_2 (6 out) */
	const float *o_w[4], *o_b[4], *o_a[5];          /* conv1..4; prelu1..5 */
	const float *o_dw[2], *o_db[2];                 /* dense5, dense6_1|6_2|6_3 (16 out) */
};

/* Load dir/pnet.pt, dir/rnet.pt, dir/onet.pt (facenet-pytorch's state dicts,
 * legacy or zip format, read by fd_pth). Every expected key must be present
 * with facenet-pytorch's shape. Errors name the file and the key. On error w
 * is zeroed. Free with fd_mtcnn_weights_free. */
int fd_mtcnn_weights_load(struct fd_mtcnn_weights *w, const char *dir, struct fd_err *e);
void fd_mtcnn_weights_free(struct fd_mtcnn_weights *w);

/* Detection settings; fd_mtcnn_opts_default gives facenet-pytorch's MTCNN
 * defaults: min_face 20, factor 0.709, thresholds 0.6, 0.7, 0.7. */
struct fd_mtcnn_opts {
	double min_face;
	double factor;
	double thr[3];
};
void fd_mtcnn_opts_default(struct fd_mtcnn_opts *o);

/* MTCNN's eleven convolutions: P-Net 4, R-Net 3, O-Net 4. */
#define FD_MTCNN_CONVS 11

/* Per-thread state: an fd_ctx (its oneDNN engine, `threads` OpenMP threads),
 * one fd_conv2d_op per convolution whose plan cache (lib/nn/conv2d.h, the one
 * every model uses) keeps the shapes seen (pyramid levels, batch sizes), and
 * scratch buffers that grow as needed. Not thread-safe: one per thread. */
struct fd_mtcnn {
	const struct fd_mtcnn_weights *w;   /* borrowed */
	struct fd_ctx c;
	struct fd_conv2d_op conv[FD_MTCNN_CONVS];
	float *buf[5];          /* scratch: activations x2, batch padding, pyramid level, crops */
	size_t cap[5];
	int threads;            /* as given to fd_mtcnn_init (fd_mtcnn_detect's reset) */
};

/* The largest first pyramid level (pixels) fd_mtcnn_detect runs: 2^22, a
 * 2048x2048 level, about 0.8 GB of activations; beyond it full resolution
 * only finds faces below min_face's intent at a cost of ~190 bytes a pixel. */
#define FD_MTCNN_MAX_LEVEL 4194304.0

/* The size (*dw x *dh) fd_mtcnn_detect detects a w x h image at with
 * min_face: w x h itself when w*h*(12/min_face)^2 <= FD_MTCNN_MAX_LEVEL, else
 * both sides scaled by one factor (rounded down, at least 1) to fit it. */
void fd_mtcnn_capped(int w, int h, double min_face, int *dw, int *dh);

/* Make a detector over w (borrowed; must outlive m). threads: OpenMP threads
 * for the nets inside this detector (1 when images run in parallel, one
 * detector per thread); set per call, so any thread may use m (one at a time). */
int fd_mtcnn_init(struct fd_mtcnn *m, const struct fd_mtcnn_weights *w, int threads, struct fd_err *e);
void fd_mtcnn_free(struct fd_mtcnn *m);

/* Detect the faces of the w x h RGB image px (row-major, 3 bytes per pixel),
 * as facenet-pytorch's MTCNN(select_largest=False).detect(img, landmarks=True)
 * for a PIL image of those pixels: *faces (malloc'ed, caller frees; NULL when
 * *n is 0) gets the faces in facenet-pytorch's order (the final "Min" NMS
 * order: score descending). Numerics follow PyTorch's float32 order of
 * operations step by step (see doc/facecrop.md); the nets run on oneDNN, so
 * scores agree to ~1e-6, not bit for bit. Memory is bounded: when the
 * pyramid's first level (the image scaled by 12/min_face) would exceed
 * FD_MTCNN_MAX_LEVEL pixels, the image is first downscaled (Pillow-exact
 * antialiased bilinear, fd_resize_rgb) to fd_mtcnn_capped's size, detected
 * there, and boxes and landmarks are scaled back to px's coordinates; smaller
 * images (every photo up to ~11.6 MP at min_face 20) are detected as they are.
 * Errors: out of memory, oneDNN; after one, m is reset to a fresh detector
 * (what the failed image grew is given back, so the next image has the
 * memory a first one has). */
int fd_mtcnn_detect(struct fd_mtcnn *m, const uint8_t *px, int w, int h,
		    const struct fd_mtcnn_opts *o, struct fd_mtcnn_face **faces, int *n,
		    struct fd_err *e);

/* The nets alone, for conformance tests, as facenet-pytorch's PNet, RNet,
 * ONet forward on a float32 NCHW batch x (already normalised):
 * pnet: x [N, 3, H, W] (H, W >= 12) -> reg [N, 4, Ho, Wo] (conv4_2) and
 *       prob [N, 2, Ho, Wo] (softmax of conv4_1), Ho = ceil((H - 4) / 2) + 1 - 4
 *       as PyTorch's sizes give; *Ho, *Wo are set; outputs are malloc'ed.
 * rnet: x [N, 3, 24, 24] -> reg [N, 4], prob [N, 2].
 * onet: x [N, 3, 48, 48] -> reg [N, 4], lm [N, 10], prob [N, 2].
 * Outputs are caller-allocated for rnet/onet, overwritten. */
int fd_mtcnn_pnet(struct fd_mtcnn *m, const float *x, int N, int H, int W, float **reg,
		  float **prob, int *Ho, int *Wo, struct fd_err *e);
int fd_mtcnn_rnet(struct fd_mtcnn *m, const float *x, int N, float *reg, float *prob,
		  struct fd_err *e);
int fd_mtcnn_onet(struct fd_mtcnn *m, const float *x, int N, float *reg, float *lm, float *prob,
		  struct fd_err *e);

/* torch.nn.functional.interpolate(img, size=(Ho, Wo), mode='area') (that is
 * adaptive_avg_pool2d) of the region rows y0..y1-1, columns x0..x1-1 of the
 * RGB image px (stride w*3 bytes), then (v - 127.5) * 0.0078125: writes
 * out [3, Ho, Wo] float32. Window bounds and the float32 sum / kh / kw are
 * PyTorch 1.13's CPU kernel's, so the result is bit-identical. */
void fd_mtcnn_area_norm(const uint8_t *px, int w, int x0, int y0, int x1, int y1, int Ho, int Wo,
			float *out);

#endif
