/* fd_gradcam: Grad-CAM (Selvaraju et al., 2017) exactly as the grad-cam
 * package's GradCAM (pytorch-grad-cam 1.5.7), on any layer a model taps
 * (fd_model_tap), over a loader's rows; plus its upsampling, the overlay of
 * show_cam_on_image and the statistics fd-gradcam writes. Notes:
 * doc/gradcam.md. */
#ifndef FD_GRADCAM_H
#define FD_GRADCAM_H

#include <stddef.h>
#include <stdint.h>
#include "core/fd_err.h"
#include "core/fd_progress.h"
#include "data/fd_loader.h"
#include "image/fd_resize.h"
#include "models/fd_model.h"
#include "nn/fd_tensor.h"

/* One tap point of a model: its torchvision module name and its output's
 * shape for one image (batch dimension 1 included). */
struct fd_gradcam_layer {
	char *name;
	int ndim;
	int64_t shape[FD_MAXDIM];
};

struct fd_gradcam_layers {
	struct fd_gradcam_layer *v;
	int n;
};

/* Every tap point of m, in forward order, found by one inference forward of
 * a zero image 1 x 3 x size x size on c's device (training off, no
 * gradients; c's modes are restored and its step advanced). l is filled and owned by the
 * caller (fd_gradcam_layers_free). Errors: the forward's, out of memory. */
int fd_gradcam_layers(struct fd_model *m, struct fd_ctx *c, int size, struct fd_gradcam_layers *l,
		      struct fd_err *e);
void fd_gradcam_layers_free(struct fd_gradcam_layers *l);

/* The default target layer of an architecture: the last convolutional stage,
 * as grad-cam's documentation recommends (resnet*: "layer4"; simplecnn,
 * efficientnet_b0, mobilenet_v3_small, convnext_*: "features", the whole
 * feature extractor, i.e. model.features[-1]'s output). */
const char *fd_gradcam_default_layer(const struct fd_model_arch *a);

/* Index in l of layer `name`, which must have a spatial output [1, C, h, w].
 * Errors: unknown name ("unknown layer 'x' of resnet18; layers: conv1,
 * maxpool, ..."), a layer without spatial output ("layer 'fc' has no
 * spatial output ([1,1]); ..."). */
int fd_gradcam_find(const struct fd_gradcam_layers *l, const struct fd_model *m, const char *name,
		    struct fd_err *e);

/* Grad-CAM of every row of set s of L (pack order, never augmented) at the
 * tap point `layer` whose per-image map is h x w (from fd_gradcam_layers),
 * for target class `target`: with one output, 1 is the logit itself
 * (ClassifierOutputTarget(0): "fake") and 0 its negation ("real": the
 * gradient of -logit); with K >= 2 outputs, class `target` (0..K-1,
 * ClassifierOutputTarget(target)). Model in eval mode (batchnorm running
 * statistics, no dropout), as BaseCAM sets it. Per row k (caller-owned):
 *   logits[k*K .. +K]  the model's outputs (double);
 *   cam[k*h*w ..]      ReLU(sum_c w_c A_c), w_c = mean over h x w of
 *                      d target / d A_c (the package's get_cam_image then
 *                      np.maximum(cam, 0));
 *   up[k*S*S ..]       the package's result: scale_cam_image(scale_cam_image
 *                      (cam, (S, S))) (fd_gradcam_upsample).
 * pg (may be NULL) advances per batch. c may be a CUDA context with m's
 * parameters on its device (fd_params_move): the batches go there, the
 * logits, the layer's activations and gradients come back to the host, and
 * the CAMs are computed there as on the CPU. Errors: target out of range,
 * the layer not reached or not of shape [n, C, h, w], the loader's, the
 * forward's and backward's, the copies'. c's modes are restored. */
int fd_gradcam_rows(struct fd_model *m, struct fd_ctx *c, struct fd_loader *L, enum fd_set s,
		    const char *layer, int h, int w, int target, double *logits, float *cam, float *up,
		    struct fd_progress *pg, struct fd_err *e);

/* up [H, W] = scale_cam_image(scale_cam_image(cam, (W, H))) of grad-cam
 * 1.5.7 for one map cam [h, w]: v = (v - min) / (1e-7 + max) (of the shifted
 * map), cv2.resize(INTER_LINEAR) to W x H, then that min-max again (the
 * package's aggregate_multi_layers for one layer), all in float32.
 * Overwrites up; cam is not changed. -1 when out of memory. */
int fd_gradcam_upsample(const float *cam, int h, int w, float *up, int H, int W);

/* cv2.resize(src, (W, H), interpolation=INTER_LINEAR) of one float32 plane:
 * half-pixel centres, edge clamped, weights in float32 (OpenCV 4.6's
 * resizeGeneric for float). Overwrites dst. -1 when out of memory. */
int fd_gradcam_resize(const float *src, int h, int w, float *dst, int H, int W);

/* show_cam_on_image(img, mask, use_rgb=True, colormap=COLORMAP_JET,
 * image_weight=0.5): rgb u8 [H, W, 3] the image as the model saw it (the
 * pack's pixels), mask [H, W] in [0, 1]; out u8 [H, W, 3] = uint8(255 * v /
 * max(v)), v = 0.5 * jet(uint8(255 * mask)) / 255 + 0.5 * rgb / 255
 * (float32; jet is OpenCV's COLORMAP_JET table). Overwrites out. */
void fd_gradcam_overlay(const uint8_t *rgb, const float *mask, int H, int W, uint8_t *out);

/* The target's score from one row's K logits x: K 1, sigmoid(x[0]); K 2,
 * sigmoid(x[1] - x[0]); more, softmax(x)[target]. *lg (if not NULL) gets the
 * logit the sigmoid cases use (x[target] for K > 2). */
double fd_gradcam_score(const double *x, int K, int target, double *lg);

/* The contact sheet of n [S, S, 3] u8 images (ov, one after another):
 * ceil(sqrt(n)) columns, 2 px white gaps; malloc'ed [*SH, *SW, 3], NULL when
 * out of memory. */
uint8_t *fd_gradcam_sheet(const uint8_t *ov, size_t n, int S, int *SW, int *SH);

/* Where a map's mass lies: peak (first maximum in row-major order) and the
 * share of sum(map) inside box = {x0, y0, x1, y1} (pixel edges in the S x S
 * map's coordinates, clipped to it; a pixel counts by its centre). share is
 * NaN when the map sums to 0. */
struct fd_gradcam_stats {
	int peak_x, peak_y;
	double peak;
	double share;
};
void fd_gradcam_stats(const float *map, int H, int W, const double box[4], struct fd_gradcam_stats *st);

/* The face box (x1, y1, x2, y2 in the source image's w x h pixels, fd-facecrop's
 * columns) in the coordinates of the S x S pack image made with geometry g
 * (fd_geom_square; margin: the pack's fd.margin, for FD_GEOM_FACE).
 * -1 when the box is empty or not finite. */
int fd_gradcam_face_box(enum fd_geometry g, double margin, int w, int h, const double face[4], int S,
			double out[4]);

#endif
