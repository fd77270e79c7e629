/* fd_gradcam: Grad-CAM as the grad-cam package computes it (GradCAM,
 * BaseCAM, scale_cam_image, show_cam_on_image of pytorch-grad-cam 1.5.7),
 * on a tap point of the model's forward. */
#include "train/fd_gradcam.h"
#include "nn/fd_backend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the model's device ---- */

/* n host floats as a tensor on c's device: the host memory itself on the
 * CPU, else a copy in the device's step arena (copy_h2d). */
static struct fd_tensor *on_device(struct fd_ctx *c, float *host, int ndim, const int64_t *shape)
{
	if (c->dev == FD_DEV_CPU)
		return fd_tensor_wrap(c, FD_DEV_CPU, host, ndim, shape);
	struct fd_tensor *t = fd_tensor_new(c, c->dev, ndim, shape);
	const struct fd_backend *be = t ? FD_KERNEL(c, c->dev, copy_h2d) : NULL;
	if (!be || be->copy_h2d(c, t->data, host, (size_t)t->numel * sizeof(float)) < 0)
		return NULL;
	return t;
}

/* n floats at p of device dev readable on the host: p itself on the CPU,
 * else a copy in the host arena (copy_d2h, which waits for the device). */
static const float *on_host(struct fd_ctx *c, enum fd_dev dev, const float *p, int64_t n)
{
	if (!p || dev == FD_DEV_CPU)
		return p;
	float *h = fd_ctx_alloc(c, FD_DEV_CPU, n);
	const struct fd_backend *be = h ? FD_KERNEL(c, dev, copy_d2h) : NULL;
	if (!be || be->copy_d2h(c, h, p, (size_t)n * sizeof(float)) < 0)
		return NULL;
	return h;
}

/* ---- the tap points ---- */

static int list_tap(void *arg, struct fd_ctx *c, const char *name, struct fd_tensor *t)
{
	struct fd_gradcam_layers *l = arg;
	struct fd_gradcam_layer *v = realloc(l->v, (size_t)(l->n + 1) * sizeof *v);
	if (!v)
		return fd_fail(c, "out of memory"), -1;
	l->v = v;
	struct fd_gradcam_layer *y = &v[l->n];
	if (!(y->name = strdup(name)))
		return fd_fail(c, "out of memory"), -1;
	y->ndim = t->ndim;
	memcpy(y->shape, t->shape, sizeof y->shape);
	l->n++;
	return 0;
}

int fd_gradcam_layers(struct fd_model *m, struct fd_ctx *c, int size, struct fd_gradcam_layers *l,
		      struct fd_err *e)
{
	l->v = NULL;
	l->n = 0;
	int training = c->training, grad = c->grad_enabled;
	c->training = 0;
	c->grad_enabled = 0;
	fd_ctx_step(c);
	struct fd_model_tap tap = { list_tap, l };
	m->tap = &tap;
	int64_t xs[4] = { 1, 3, size, size };
	struct fd_tensor *y = fd_model_forward(m, c, fd_tensor_zeros(c, c->dev, 4, xs));
	m->tap = NULL;
	c->training = training;
	c->grad_enabled = grad;
	int rc = y ? 0 : fd_err_set(e, "%s", c->err.msg);
	fd_ctx_step(c);
	if (rc < 0)
		fd_gradcam_layers_free(l);
	return rc;
}

void fd_gradcam_layers_free(struct fd_gradcam_layers *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

const char *fd_gradcam_default_layer(const struct fd_model_arch *a)
{
	return strncmp(a->name, "resnet", 6) == 0 ? "layer4" : "features";
}

int fd_gradcam_find(const struct fd_gradcam_layers *l, const struct fd_model *m, const char *name,
		    struct fd_err *e)
{
	for (int i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].name, name) != 0)
			continue;
		const struct fd_gradcam_layer *y = &l->v[i];
		if (y->ndim == 4 && y->shape[2] >= 1 && y->shape[3] >= 1)
			return i;
		char sh[64] = "[";
		for (int d = 0; d < y->ndim; d++)
			snprintf(sh + strlen(sh), sizeof sh - strlen(sh), "%s%lld", d ? "," : "", (long long)y->shape[d]);
		fd_err_set(e, "layer '%s' of %s has no spatial output (%s]); Grad-CAM needs an [N,C,H,W] activation",
			   name, m->arch->name, sh);
		return -1;
	}
	/* the message lists the spatial layers; long lists are cut by fd_err */
	char list[2048] = "";
	size_t k = 0;
	for (int i = 0; i < l->n && k + 2 < sizeof list; i++)
		if (l->v[i].ndim == 4)
			k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", k ? " " : "", l->v[i].name);
	fd_err_set(e, "unknown layer '%s' of %s; layers: %s", name, m->arch->name, list);
	return -1;
}

/* ---- Grad-CAM over rows ---- */

struct grab {
	const char *name;
	struct fd_tensor *t;   /* the tapped activation */
};

static int grab_tap(void *arg, struct fd_ctx *c, const char *name, struct fd_tensor *t)
{
	struct grab *g = arg;
	if (g->t || strcmp(name, g->name) != 0)
		return 0;
	/* from here on ops are recorded: backward reaches t and no further */
	fd_requires_grad(t);
	c->grad_enabled = 1;
	g->t = t;
	return 0;
}

int fd_gradcam_rows(struct fd_model *m, struct fd_ctx *c, struct fd_loader *L, enum fd_set s,
		    const char *layer, int h, int w, int target, double *logits, float *cam, float *up,
		    struct fd_progress *pg, struct fd_err *e)
{
	const int K = m->num_classes, S = fd_loader_size(L);
	if (target < 0 || target > (K == 1 ? 1 : K - 1))
		return fd_err_set(e, "target class %d out of range for a model of %d output%s", target, K,
				  K == 1 ? "" : "s");
	if (fd_loader_begin(L, s, 0, 0, e) < 0)
		return -1;
	int training = c->training, grad = c->grad_enabled;
	struct grab g = { layer, NULL };
	struct fd_model_tap tap = { grab_tap, &g };
	const struct fd_batch *b;
	float *dy = NULL;
	int rc;
	size_t k = 0, hw = (size_t)h * w, SS = (size_t)S * S;
	while ((rc = fd_loader_next(L, &b, e)) == 1) {
		fd_ctx_step(c);
		c->training = 0;
		c->grad_enabled = 0; /* the tap turns it on at the layer */
		g.t = NULL;
		m->tap = &tap;
		int64_t xs[4] = { b->n, 3, S, S };
		struct fd_tensor *x = on_device(c, b->x, 4, xs);
		struct fd_tensor *y = x ? fd_model_forward(m, c, x) : NULL;
		m->tap = NULL;
		if (!y) {
			rc = fd_err_set(e, "%s", c->err.msg);
			break;
		}
		if (!g.t) {
			rc = fd_err_set(e, "layer '%s' of %s was not reached by the forward", layer, m->arch->name);
			break;
		}
		const struct fd_tensor *A = g.t;
		if (A->ndim != 4 || A->shape[0] != b->n || A->shape[2] != h || A->shape[3] != w) {
			char sh[64];
			rc = fd_err_set(e, "layer '%s' gives %s, expected [%d,C,%d,%d]", layer,
					fd_tensor_shape_str(A, sh, sizeof sh), b->n, h, w);
			break;
		}
		float *d = realloc(dy, (size_t)b->n * K * sizeof *d);
		if (!d) {
			rc = fd_err_set(e, "out of memory");
			break;
		}
		dy = d;
		/* the seed: sum over rows of target(output row), as BaseCAM.forward */
		memset(dy, 0, (size_t)b->n * K * sizeof *dy);
		for (int i = 0; i < b->n; i++)
			if (K == 1)
				dy[i] = target ? 1.0f : -1.0f;
			else
				dy[(size_t)i * K + target] = 1.0f;
		/* the logits and the seed on the host and on the model's device */
		const float *yh = on_host(c, y->dev, y->data, y->numel);
		struct fd_tensor *seed = yh ? on_device(c, dy, y->ndim, y->shape) : NULL;
		if (!seed) {
			rc = fd_err_set(e, "%s", c->err.msg);
			break;
		}
		for (int i = 0; i < b->n; i++)
			for (int j = 0; j < K; j++)
				logits[(k + i) * K + j] = yh[(size_t)i * K + j];
		if (fd_backward(c, y, seed->data) < 0) {
			rc = fd_err_set(e, "%s", c->err.msg);
			break;
		}
		const int C = (int)A->shape[1];
		if (!A->grad) {
			rc = fd_err_set(e, "layer '%s': no gradient reached it", layer);
			break;
		}
		const float *G = on_host(c, A->dev, A->grad, A->numel), *Ad = on_host(c, A->dev, A->data, A->numel);
		if (!G || !Ad) {
			rc = fd_err_set(e, "%s", c->err.msg);
			break;
		}
		for (int i = 0; i < b->n; i++, k++) {
			float *o = cam + k * hw;
			/* weights = np.mean(grads, axis=(2, 3)); cam = (weights * A).sum(1),
			 * accumulated in double: float32 numpy differs by rounding only */
			double *acc = calloc(hw, sizeof *acc);
			if (!acc) {
				rc = fd_err_set(e, "out of memory");
				break;
			}
			for (int ch = 0; ch < C; ch++) {
				const float *gc = G + ((size_t)i * C + ch) * hw, *ac = Ad + ((size_t)i * C + ch) * hw;
				double wsum = 0;
				for (size_t p = 0; p < hw; p++)
					wsum += gc[p];
				float wc = (float)(wsum / (double)hw);
				for (size_t p = 0; p < hw; p++)
					acc[p] += (double)(wc * ac[p]);
			}
			for (size_t p = 0; p < hw; p++)
				o[p] = acc[p] > 0 ? (float)acc[p] : 0.0f;
			free(acc);
			if (fd_gradcam_upsample(o, h, w, up + k * SS, S, S) < 0) {
				rc = fd_err_set(e, "out of memory");
				break;
			}
		}
		if (rc < 0)
			break;
		if (pg)
			fd_progress_add(pg, (uint64_t)b->n);
	}
	m->tap = NULL;
	free(dy);
	fd_ctx_step(c);
	c->training = training;
	c->grad_enabled = grad;
	return rc < 0 ? -1 : 0;
}

/* ---- the package's post-processing ---- */

/* scale_cam_image's per-image step: img - min, then / (1e-7 + max); numpy
 * adds the Python float to the float32 maximum in double, then divides the
 * float32 array by it as float32. */
static void minmax(float *v, size_t n)
{
	float mn = v[0], mx;
	for (size_t i = 1; i < n; i++)
		mn = v[i] < mn ? v[i] : mn;
	mx = v[0] - mn;
	for (size_t i = 0; i < n; i++) {
		v[i] -= mn;
		mx = v[i] > mx ? v[i] : mx;
	}
	float den = (float)(1e-7 + (double)mx);
	for (size_t i = 0; i < n; i++)
		v[i] /= den;
}

/* OpenCV's linear coefficients along one axis: source index and weight of
 * the second tap (resizeGeneric, INTER_LINEAR). */
static void lin_coef(int ssize, int dsize, int *ofs, float *a)
{
	double scale = 1.0 / ((double)dsize / ssize);
	for (int d = 0; d < dsize; d++) {
		float f = (float)((d + 0.5) * scale - 0.5);
		int sx = (int)floorf(f);
		f -= (float)sx;
		if (sx < 0)
			f = 0, sx = 0;
		if (sx >= ssize - 1)
			f = 0, sx = ssize - 1;
		ofs[d] = sx;
		a[d] = f;
	}
}

int fd_gradcam_resize(const float *src, int h, int w, float *dst, int H, int W)
{
	int *xo = malloc((size_t)W * sizeof *xo), *yo = malloc((size_t)H * sizeof *yo);
	float *xa = malloc((size_t)W * sizeof *xa), *ya = malloc((size_t)H * sizeof *ya);
	float *r0 = malloc((size_t)W * sizeof *r0), *r1 = malloc((size_t)W * sizeof *r1);
	int rc = xo && yo && xa && ya && r0 && r1 ? 0 : -1;
	if (rc < 0)
		goto out;
	lin_coef(w, W, xo, xa);
	lin_coef(h, H, yo, ya);
	for (int y = 0; y < H; y++) {
		int sy0 = yo[y], sy1 = sy0 + 1 < h ? sy0 + 1 : sy0;
		const float *s0 = src + (size_t)sy0 * w, *s1 = src + (size_t)sy1 * w;
		for (int x = 0; x < W; x++) {
			int sx = xo[x], sx1 = sx + 1 < w ? sx + 1 : sx;
			float a = xa[x];
			r0[x] = s0[sx] * (1.0f - a) + s0[sx1] * a;
			r1[x] = s1[sx] * (1.0f - a) + s1[sx1] * a;
		}
		float b = ya[y];
		for (int x = 0; x < W; x++)
			dst[(size_t)y * W + x] = r0[x] * (1.0f - b) + r1[x] * b;
	}
out:
	free(xo);
	free(yo);
	free(xa);
	free(ya);
	free(r0);
	free(r1);
	return rc;
}

int fd_gradcam_upsample(const float *cam, int h, int w, float *up, int H, int W)
{
	size_t n = (size_t)h * w;
	float *t = malloc(n * sizeof *t);
	if (!t)
		return -1;
	memcpy(t, cam, n * sizeof *t);
	minmax(t, n);
	int rc = fd_gradcam_resize(t, h, w, up, H, W);
	free(t);
	if (rc < 0)
		return -1;
	for (size_t i = 0; i < (size_t)H * W; i++) /* aggregate_multi_layers: np.maximum(cam, 0) */
		up[i] = up[i] > 0 ? up[i] : 0.0f;
	minmax(up, (size_t)H * W);
	return 0;
}

/* OpenCV 4.6's COLORMAP_JET as RGB: cv2.applyColorMap(np.arange(256, dtype=
 * np.uint8)[:, None], cv2.COLORMAP_JET)[:, 0, ::-1] (OpenCV interpolates its
 * anchor points in a way no closed formula reproduces to the last level). */
static const uint8_t JET[256][3] = {
	{0, 0, 128}, {0, 0, 132}, {0, 0, 136}, {0, 0, 140},
	{0, 0, 144}, {0, 0, 148}, {0, 0, 152}, {0, 0, 156},
	{0, 0, 160}, {0, 0, 164}, {0, 0, 168}, {0, 0, 172},
	{0, 0, 176}, {0, 0, 180}, {0, 0, 184}, {0, 0, 188},
	{0, 0, 192}, {0, 0, 196}, {0, 0, 200}, {0, 0, 204},
	{0, 0, 208}, {0, 0, 212}, {0, 0, 216}, {0, 0, 220},
	{0, 0, 224}, {0, 0, 228}, {0, 0, 232}, {0, 0, 236},
	{0, 0, 240}, {0, 0, 244}, {0, 0, 248}, {0, 0, 252},
	{0, 0, 255}, {0, 4, 255}, {0, 8, 255}, {0, 12, 255},
	{0, 16, 255}, {0, 20, 255}, {0, 24, 255}, {0, 28, 255},
	{0, 32, 255}, {0, 36, 255}, {0, 40, 255}, {0, 44, 255},
	{0, 48, 255}, {0, 52, 255}, {0, 56, 255}, {0, 60, 255},
	{0, 64, 255}, {0, 68, 255}, {0, 72, 255}, {0, 76, 255},
	{0, 80, 255}, {0, 84, 255}, {0, 88, 255}, {0, 92, 255},
	{0, 96, 255}, {0, 100, 255}, {0, 104, 255}, {0, 108, 255},
	{0, 112, 255}, {0, 116, 255}, {0, 120, 255}, {0, 124, 255},
	{0, 128, 255}, {0, 132, 255}, {0, 136, 255}, {0, 140, 255},
	{0, 144, 255}, {0, 148, 255}, {0, 152, 255}, {0, 156, 255},
	{0, 160, 255}, {0, 164, 255}, {0, 168, 255}, {0, 172, 255},
	{0, 176, 255}, {0, 180, 255}, {0, 184, 255}, {0, 188, 255},
	{0, 192, 255}, {0, 196, 255}, {0, 200, 255}, {0, 204, 255},
	{0, 208, 255}, {0, 212, 255}, {0, 216, 255}, {0, 220, 255},
	{0, 224, 255}, {0, 228, 255}, {0, 232, 255}, {0, 236, 255},
	{0, 240, 255}, {0, 244, 255}, {0, 248, 255}, {0, 252, 255},
	{2, 255, 254}, {6, 255, 250}, {10, 255, 246}, {14, 255, 242},
	{18, 255, 238}, {22, 255, 234}, {26, 255, 230}, {30, 255, 226},
	{34, 255, 222}, {38, 255, 218}, {42, 255, 214}, {46, 255, 210},
	{50, 255, 206}, {54, 255, 202}, {58, 255, 198}, {62, 255, 194},
	{66, 255, 190}, {70, 255, 186}, {74, 255, 182}, {78, 255, 178},
	{82, 255, 174}, {86, 255, 170}, {90, 255, 166}, {94, 255, 162},
	{98, 255, 158}, {102, 255, 154}, {106, 255, 150}, {110, 255, 146},
	{114, 255, 142}, {118, 255, 138}, {122, 255, 134}, {126, 255, 130},
	{130, 255, 126}, {134, 255, 122}, {138, 255, 118}, {142, 255, 114},
	{146, 255, 110}, {150, 255, 106}, {154, 255, 102}, {158, 255, 98},
	{162, 255, 94}, {166, 255, 90}, {170, 255, 86}, {174, 255, 82},
	{178, 255, 78}, {182, 255, 74}, {186, 255, 70}, {190, 255, 66},
	{194, 255, 62}, {198, 255, 58}, {202, 255, 54}, {206, 255, 50},
	{210, 255, 46}, {214, 255, 42}, {218, 255, 38}, {222, 255, 34},
	{226, 255, 30}, {230, 255, 26}, {234, 255, 22}, {238, 255, 18},
	{242, 255, 14}, {246, 255, 10}, {250, 255, 6}, {254, 255, 1},
	{255, 252, 0}, {255, 248, 0}, {255, 244, 0}, {255, 240, 0},
	{255, 236, 0}, {255, 232, 0}, {255, 228, 0}, {255, 224, 0},
	{255, 220, 0}, {255, 216, 0}, {255, 212, 0}, {255, 208, 0},
	{255, 204, 0}, {255, 200, 0}, {255, 196, 0}, {255, 192, 0},
	{255, 188, 0}, {255, 184, 0}, {255, 180, 0}, {255, 176, 0},
	{255, 172, 0}, {255, 168, 0}, {255, 164, 0}, {255, 160, 0},
	{255, 156, 0}, {255, 152, 0}, {255, 148, 0}, {255, 144, 0},
	{255, 140, 0}, {255, 136, 0}, {255, 132, 0}, {255, 128, 0},
	{255, 124, 0}, {255, 120, 0}, {255, 116, 0}, {255, 112, 0},
	{255, 108, 0}, {255, 104, 0}, {255, 100, 0}, {255, 96, 0},
	{255, 92, 0}, {255, 88, 0}, {255, 84, 0}, {255, 80, 0},
	{255, 76, 0}, {255, 72, 0}, {255, 68, 0}, {255, 64, 0},
	{255, 60, 0}, {255, 56, 0}, {255, 52, 0}, {255, 48, 0},
	{255, 44, 0}, {255, 40, 0}, {255, 36, 0}, {255, 32, 0},
	{255, 28, 0}, {255, 24, 0}, {255, 20, 0}, {255, 16, 0},
	{255, 12, 0}, {255, 8, 0}, {255, 4, 0}, {255, 0, 0},
	{252, 0, 0}, {248, 0, 0}, {244, 0, 0}, {240, 0, 0},
	{236, 0, 0}, {232, 0, 0}, {228, 0, 0}, {224, 0, 0},
	{220, 0, 0}, {216, 0, 0}, {212, 0, 0}, {208, 0, 0},
	{204, 0, 0}, {200, 0, 0}, {196, 0, 0}, {192, 0, 0},
	{188, 0, 0}, {184, 0, 0}, {180, 0, 0}, {176, 0, 0},
	{172, 0, 0}, {168, 0, 0}, {164, 0, 0}, {160, 0, 0},
	{156, 0, 0}, {152, 0, 0}, {148, 0, 0}, {144, 0, 0},
	{140, 0, 0}, {136, 0, 0}, {132, 0, 0}, {128, 0, 0},
};

void fd_gradcam_overlay(const uint8_t *rgb, const float *mask, int H, int W, uint8_t *out)
{
	size_t n = (size_t)H * W;
	float mx = 0;
	for (size_t i = 0; i < n; i++)
		for (int ch = 0; ch < 3; ch++) {
			/* np.uint8(255 * mask) truncates toward zero (mask in [0, 1]) */
			const uint8_t *j = JET[(uint8_t)(255.0f * mask[i])];
			float v = 0.5f * ((float)j[ch] / 255.0f) + 0.5f * ((float)rgb[i * 3 + ch] / 255.0f);
			mx = v > mx ? v : mx;
		}
	for (size_t i = 0; i < n; i++)
		for (int ch = 0; ch < 3; ch++) {
			const uint8_t *j = JET[(uint8_t)(255.0f * mask[i])];
			float v = 0.5f * ((float)j[ch] / 255.0f) + 0.5f * ((float)rgb[i * 3 + ch] / 255.0f);
			out[i * 3 + ch] = (uint8_t)(255.0f * (v / mx));
		}
}

void fd_gradcam_stats(const float *map, int H, int W, const double box[4], struct fd_gradcam_stats *st)
{
	double tot = 0, in = 0;
	st->peak_x = st->peak_y = 0;
	st->peak = map[0];
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++) {
			double v = map[(size_t)y * W + x];
			tot += v;
			if (x + 0.5 >= box[0] && x + 0.5 < box[2] && y + 0.5 >= box[1] && y + 0.5 < box[3])
				in += v;
			if (v > st->peak) {
				st->peak = v;
				st->peak_x = x;
				st->peak_y = y;
			}
		}
	st->share = tot > 0 ? in / tot : NAN;
}

int fd_gradcam_face_box(enum fd_geometry g, double margin, int w, int h, const double face[4], int S,
			double out[4])
{
	for (int i = 0; i < 4; i++)
		if (!isfinite(face[i]))
			return -1;
	if (!(face[2] > face[0] && face[3] > face[1]) || w < 1 || h < 1)
		return -1;
	float box[4];
	double sx, sy, ox = 0, oy = 0, bx = 0, by = 0;
	switch (g) {
	case FD_GEOM_LETTERBOX: {
		int nw, nh, px, py;
		fd_geom_letterbox(w, h, S, &nw, &nh, &px, &py);
		sx = (double)nw / w;
		sy = (double)nh / h;
		ox = px;
		oy = py;
		break;
	}
	case FD_GEOM_RESIZE:
		sx = (double)S / w;
		sy = (double)S / h;
		break;
	case FD_GEOM_FACE:
		if (fd_geom_face_box(w, h, face[0], face[1], face[2], face[3], margin, box) < 0)
			return -1;
		goto crop;
	default:
		fd_geom_center_box(w, h, box);
	crop:
		bx = box[0];
		by = box[1];
		sx = S / ((double)box[2] - box[0]);
		sy = S / ((double)box[3] - box[1]);
		break;
	}
	out[0] = (face[0] - bx) * sx + ox;
	out[1] = (face[1] - by) * sy + oy;
	out[2] = (face[2] - bx) * sx + ox;
	out[3] = (face[3] - by) * sy + oy;
	return 0;
}

double fd_gradcam_score(const double *x, int K, int target, double *lg)
{
	double l = K == 1 ? x[0] : K == 2 ? x[1] - x[0] : x[target];
	double sc = 1.0 / (1.0 + exp(-l));
	if (K > 2) {
		double mx = x[0], s = 0;
		for (int j = 1; j < K; j++)
			mx = x[j] > mx ? x[j] : mx;
		for (int j = 0; j < K; j++)
			s += exp(x[j] - mx);
		sc = exp(x[target] - mx) / s;
	}
	if (lg)
		*lg = l;
	return sc;
}

uint8_t *fd_gradcam_sheet(const uint8_t *ov, size_t n, int S, int *SW, int *SH)
{
	int cols = 1;
	while ((size_t)cols * cols < n)
		cols++;
	int rws = (int)((n + cols - 1) / cols), g = 2;
	*SW = cols * S + (cols + 1) * g;
	*SH = rws * S + (rws + 1) * g;
	uint8_t *sheet = malloc((size_t)*SW * *SH * 3);
	if (!sheet)
		return NULL;
	memset(sheet, 255, (size_t)*SW * *SH * 3);
	for (size_t i = 0; i < n; i++) {
		int cx = g + (int)(i % cols) * (S + g), cy = g + (int)(i / cols) * (S + g);
		for (int y = 0; y < S; y++)
			memcpy(sheet + ((size_t)(cy + y) * *SW + cx) * 3, ov + (i * (size_t)S * S + (size_t)y * S) * 3,
			       (size_t)S * 3);
	}
	return sheet;
}
