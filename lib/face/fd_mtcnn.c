/* fd_mtcnn: facenet-pytorch's MTCNN cascade in C. The nets run on lib/nn's
 * oneDNN convolution plans and sgemm; everything between them (pyramid,
 * candidate boxes, NMS, regression, squaring, crops) repeats PyTorch's float32
 * operations in the same order so that boxes agree to rounding. */
#include "face/fd_mtcnn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "image/fd_resize.h"
#include "io/fd_pth.h"
#include "nn/conv2d.h"
#include "nn/fd_backend.h"
#include "nn/linear.h"
#include "nn/pool2d.h"

/* PyTorch evaluates a + b * c as two rounded float32 operations: no fused
 * multiply-add (GCC in ISO C mode does not contract; clang is told). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define MAX_BATCH 64    /* R-Net / O-Net crops per forward call */

/* ---- weights ---- */

struct wspec {
	const char *key;
	int ndim;
	int64_t shape[4];
};

static int64_t spec_numel(const struct wspec *s)
{
	int64_t n = 1;
	for (int i = 0; i < s->ndim; i++)
		n *= s->shape[i];
	return n;
}

/* Copy key from p (file path for messages) into dst after checking its shape. */
static int take(const struct fd_pth *p, const char *path, const struct wspec *s, float *dst,
		struct fd_err *e)
{
	const struct fd_pth_tensor *t = fd_pth_find(p, s->key);
	if (!t)
		return fd_err_set(e, "cannot read '%s': missing tensor '%s'", path, s->key);
	int same = t->ndim == s->ndim;
	for (int i = 0; same && i < s->ndim; i++)
		same = t->shape[i] == s->shape[i];
	if (!same)
		return fd_err_set(e, "cannot read '%s': tensor '%s' has the wrong shape (not facenet-pytorch's MTCNN)",
				  path, s->key);
	if (fd_pth_to_f32(t, dst, spec_numel(s), e))
		return fd_err_ctx(e, "cannot read '%s'", path);
	return 0;
}

/* Reorder a dense weight [out, C*H*W] from torch's (w, h, c) flattening (the
 * nets permute(0, 3, 2, 1) before view) to our NCHW (c, h, w) flattening. */
static void dense_from_whc(const float *src, float *dst, int out, int C, int H, int W)
{
	for (int o = 0; o < out; o++)
		for (int c = 0; c < C; c++)
			for (int h = 0; h < H; h++)
				for (int w = 0; w < W; w++)
					dst[(size_t)o * C * H * W + (size_t)(c * H + h) * W + w] =
						src[(size_t)o * C * H * W + (size_t)(w * H + h) * C + c];
}

static const struct wspec PNET[] = {
	{"conv1.weight", 4, {10, 3, 3, 3}}, {"conv1.bias", 1, {10}}, {"prelu1.weight", 1, {10}},
	{"conv2.weight", 4, {16, 10, 3, 3}}, {"conv2.bias", 1, {16}}, {"prelu2.weight", 1, {16}},
	{"conv3.weight", 4, {32, 16, 3, 3}}, {"conv3.bias", 1, {32}}, {"prelu3.weight", 1, {32}},
	{"conv4_1.weight", 4, {2, 32, 1, 1}}, {"conv4_1.bias", 1, {2}},
	{"conv4_2.weight", 4, {4, 32, 1, 1}}, {"conv4_2.bias", 1, {4}},
};
static const struct wspec RNET[] = {
	{"conv1.weight", 4, {28, 3, 3, 3}}, {"conv1.bias", 1, {28}}, {"prelu1.weight", 1, {28}},
	{"conv2.weight", 4, {48, 28, 3, 3}}, {"conv2.bias", 1, {48}}, {"prelu2.weight", 1, {48}},
	{"conv3.weight", 4, {64, 48, 2, 2}}, {"conv3.bias", 1, {64}}, {"prelu3.weight", 1, {64}},
	{"dense4.weight", 2, {128, 576}}, {"dense4.bias", 1, {128}}, {"prelu4.weight", 1, {128}},
	{"dense5_1.weight", 2, {2, 128}}, {"dense5_1.bias", 1, {2}},
	{"dense5_2.weight", 2, {4, 128}}, {"dense5_2.bias", 1, {4}},
};
static const struct wspec ONET[] = {
	{"conv1.weight", 4, {32, 3, 3, 3}}, {"conv1.bias", 1, {32}}, {"prelu1.weight", 1, {32}},
	{"conv2.weight", 4, {64, 32, 3, 3}}, {"conv2.bias", 1, {64}}, {"prelu2.weight", 1, {64}},
	{"conv3.weight", 4, {64, 64, 3, 3}}, {"conv3.bias", 1, {64}}, {"prelu3.weight", 1, {64}},
	{"conv4.weight", 4, {128, 64, 2, 2}}, {"conv4.bias", 1, {128}}, {"prelu4.weight", 1, {128}},
	{"dense5.weight", 2, {256, 1152}}, {"dense5.bias", 1, {256}}, {"prelu5.weight", 1, {256}},
	{"dense6_1.weight", 2, {2, 256}}, {"dense6_1.bias", 1, {2}},
	{"dense6_2.weight", 2, {4, 256}}, {"dense6_2.bias", 1, {4}},
	{"dense6_3.weight", 2, {10, 256}}, {"dense6_3.bias", 1, {10}},
};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Load one net's tensors, in table order, packed back to back from *dst
 * (advanced); ptr[i] points at tensor i. */
static int load_net(const char *dir, const char *file, const struct wspec *spec, int n,
		    float **dst, float **ptr, struct fd_err *e)
{
	char path[4096];
	struct fd_pth p;
	snprintf(path, sizeof path, "%s/%s", dir, file);
	memset(&p, 0, sizeof p);
	if (fd_pth_load(&p, path, e))
		return -1;
	for (int i = 0; i < n; i++) {
		ptr[i] = *dst;
		if (take(&p, path, &spec[i], *dst, e)) {
			fd_pth_free(&p);
			return -1;
		}
		*dst += spec_numel(&spec[i]);
	}
	fd_pth_free(&p);
	return 0;
}

int fd_mtcnn_weights_load(struct fd_mtcnn_weights *w, const char *dir, struct fd_err *e)
{
	int64_t total = 0;
	float *pp[COUNT(PNET)], *rp[COUNT(RNET)], *op[COUNT(ONET)];
	memset(w, 0, sizeof *w);
	for (int i = 0; i < COUNT(PNET); i++)
		total += spec_numel(&PNET[i]);
	for (int i = 0; i < COUNT(RNET); i++)
		total += spec_numel(&RNET[i]);
	for (int i = 0; i < COUNT(ONET); i++)
		total += spec_numel(&ONET[i]);
	/* twice: raw tensors, then the fused / reordered layers */
	float *raw = malloc((size_t)total * sizeof(float));
	w->buf = malloc((size_t)total * sizeof(float));
	if (!raw || !w->buf) {
		free(raw);
		free(w->buf);
		w->buf = NULL;
		return fd_err_set(e, "out of memory loading MTCNN weights");
	}
	float *cur = raw;
	if (load_net(dir, "pnet.pt", PNET, COUNT(PNET), &cur, pp, e) ||
	    load_net(dir, "rnet.pt", RNET, COUNT(RNET), &cur, rp, e) ||
	    load_net(dir, "onet.pt", ONET, COUNT(ONET), &cur, op, e)) {
		free(raw);
		free(w->buf);
		memset(w, 0, sizeof *w);
		return -1;
	}
	float *o = w->buf;
#define PUT(dstp, src, n) do { memcpy(o, (src), (size_t)(n) * sizeof(float)); (dstp) = o; o += (n); } while (0)
	/* P-Net: conv4_1 (face logits) and conv4_2 (box regression) as one 6-channel conv */
	for (int l = 0; l < 3; l++) {
		PUT(w->p_w[l], pp[3 * l], spec_numel(&PNET[3 * l]));
		PUT(w->p_b[l], pp[3 * l + 1], spec_numel(&PNET[3 * l + 1]));
		PUT(w->p_a[l], pp[3 * l + 2], spec_numel(&PNET[3 * l + 2]));
	}
	w->p_w[3] = o;
	memcpy(o, pp[9], 2 * 32 * sizeof(float));
	memcpy(o + 64, pp[11], 4 * 32 * sizeof(float));
	o += 6 * 32;
	w->p_b[3] = o;
	memcpy(o, pp[10], 2 * sizeof(float));
	memcpy(o + 2, pp[12], 4 * sizeof(float));
	o += 6;
	/* R-Net */
	for (int l = 0; l < 3; l++) {
		PUT(w->r_w[l], rp[3 * l], spec_numel(&RNET[3 * l]));
		PUT(w->r_b[l], rp[3 * l + 1], spec_numel(&RNET[3 * l + 1]));
		PUT(w->r_a[l], rp[3 * l + 2], spec_numel(&RNET[3 * l + 2]));
	}
	dense_from_whc(rp[9], o, 128, 64, 3, 3);
	w->r_dw[0] = o;
	o += 128 * 576;
	PUT(w->r_db[0], rp[10], 128);
	PUT(w->r_a[3], rp[11], 128);
	w->r_dw[1] = o;
	memcpy(o, rp[12], 2 * 128 * sizeof(float));
	memcpy(o + 2 * 128, rp[14], 4 * 128 * sizeof(float));
	o += 6 * 128;
	w->r_db[1] = o;
	memcpy(o, rp[13], 2 * sizeof(float));
	memcpy(o + 2, rp[15], 4 * sizeof(float));
	o += 6;
	/* O-Net */
	for (int l = 0; l < 4; l++) {
		PUT(w->o_w[l], op[3 * l], spec_numel(&ONET[3 * l]));
		PUT(w->o_b[l], op[3 * l + 1], spec_numel(&ONET[3 * l + 1]));
		PUT(w->o_a[l], op[3 * l + 2], spec_numel(&ONET[3 * l + 2]));
	}
	dense_from_whc(op[12], o, 256, 128, 3, 3);
	w->o_dw[0] = o;
	o += 256 * 1152;
	PUT(w->o_db[0], op[13], 256);
	PUT(w->o_a[4], op[14], 256);
	w->o_dw[1] = o;
	memcpy(o, op[15], 2 * 256 * sizeof(float));
	memcpy(o + 2 * 256, op[17], 4 * 256 * sizeof(float));
	memcpy(o + 6 * 256, op[19], 10 * 256 * sizeof(float));
	o += 16 * 256;
	w->o_db[1] = o;
	memcpy(o, op[16], 2 * sizeof(float));
	memcpy(o + 2, op[18], 4 * sizeof(float));
	memcpy(o + 6, op[20], 10 * sizeof(float));
#undef PUT
	free(raw);
	return 0;
}

void fd_mtcnn_weights_free(struct fd_mtcnn_weights *w)
{
	if (!w)
		return;
	free(w->buf);
	memset(w, 0, sizeof *w);
}

void fd_mtcnn_opts_default(struct fd_mtcnn_opts *o)
{
	o->min_face = 20;
	o->factor = 0.709;
	o->thr[0] = 0.6;
	o->thr[1] = 0.7;
	o->thr[2] = 0.7;
}

/* ---- detector state ---- */

int fd_mtcnn_init(struct fd_mtcnn *m, const struct fd_mtcnn_weights *w, int threads, struct fd_err *e)
{
	memset(m, 0, sizeof *m);
	m->w = w;
	m->threads = threads;
	if (fd_ctx_open(&m->c, FD_DEV_CPU, threads > 0 ? threads : 1, 0, e) < 0)
		return -1;
	m->c.training = 0;
	m->c.grad_enabled = 0;
	for (int i = 0; i < FD_MTCNN_CONVS; i++)
		fd_conv2d_op_init(&m->conv[i], 1, 0, 1, 1);
	return 0;
}

void fd_mtcnn_free(struct fd_mtcnn *m)
{
	if (!m)
		return;
	for (int i = 0; i < FD_MTCNN_CONVS; i++) /* plans borrow the context's engine */
		fd_conv2d_op_free(&m->conv[i]);
	for (int i = 0; i < 5; i++)
		free(m->buf[i]);
	fd_ctx_free(&m->c);
	memset(m, 0, sizeof *m);
}

static float *grow(struct fd_mtcnn *m, int slot, size_t n, struct fd_err *e)
{
	if (n > m->cap[slot]) {
		float *p = realloc(m->buf[slot], n * sizeof(float));
		if (!p) {
			fd_err_set(e, "out of memory (%zu floats)", n);
			return NULL;
		}
		m->buf[slot] = p;
		m->cap[slot] = n;
	}
	return m->buf[slot];
}

/* The context's failure as e. */
static int ctx_err(struct fd_mtcnn *m, struct fd_err *e)
{
	return fd_err_set(e, "%s", m->c.err.msg);
}

/* Each net forward is one step of the context: the plans it uses stay
 * cached, older ones may be evicted (conv2d.h), an earlier failure is gone. */
static int step(struct fd_mtcnn *m, struct fd_err *e)
{
	return fd_ctx_step(&m->c) < 0 ? ctx_err(m, e) : 0;
}

/* y = conv2d(x, w, b) with convolution `op` (its plan cache), stride 1, no
 * padding: [N, C, H, W] -> [N, K, H-k+1, W-k+1]. */
static int conv(struct fd_mtcnn *m, int op, int N, int C, int H, int W, int K, int k, const float *x,
		const float *w, const float *b, float *y, struct fd_err *e)
{
	struct fd_conv2d_shape s;
	memset(&s, 0, sizeof s);
	s.N = N, s.C = C, s.H = H, s.W = W, s.K = K, s.kh = k, s.kw = k;
	s.sh = s.sw = 1, s.dh = s.dw = 1, s.groups = 1, s.bias = 1;
	return fd_conv2d_apply(&m->c, &m->conv[op], FD_DEV_CPU, &s, x, w, b, y) < 0 ? ctx_err(m, e) : 0;
}

/* y = x w^T + b (sgemm on the context's threads). */
static int linear(struct fd_mtcnn *m, int N, int in, int out, const float *x, const float *w,
		  const float *b, float *y, struct fd_err *e)
{
	return fd_linear_fwd_cpu(&m->c, N, in, out, x, w, b, y) < 0 ? ctx_err(m, e) : 0;
}

/* Four floats as one SSE register (GCC / clang vector extension; plain C
 * elsewhere): -O2's cheap vectorizer leaves PReLU and max pooling scalar, and
 * those two were half of the run time. Each lane does exactly the scalar
 * operation, so results are unchanged. */
typedef float f4 __attribute__((vector_size(16)));
typedef int32_t i4 __attribute__((vector_size(16)));

static inline f4 f4_load(const float *p)
{
	f4 v;
	memcpy(&v, p, sizeof v);
	return v;
}

static inline f4 f4_select(i4 take, f4 a, f4 b)
{
	return (f4)((take & (i4)a) | (~take & (i4)b));
}

/* nn.PReLU(C) in place on [N, C, inner]: x = x > 0 ? x : a[c] * x. */
static void prelu(float *x, int N, int C, size_t inner, const float *a)
{
	for (int n = 0; n < N; n++)
		for (int c = 0; c < C; c++) {
			float *p = x + ((size_t)n * C + c) * inner;
			float s = a[c];
			size_t nv = inner / 4 * 4;
			for (size_t i = 0; i < nv; i += 4) {
				f4 v = f4_load(p + i), q = s * v;
				v = f4_select(v > 0, v, q);
				memcpy(p + i, &v, sizeof v);
			}
			for (size_t i = nv; i < inner; i++)
				p[i] = p[i] > 0 ? p[i] : s * p[i];
		}
}

/* max(m, v) as PyTorch's max_pool2d scans: the first maximum wins and NaN
 * propagates. */
static inline float max_nan(float m, float v)
{
	return (v > m || v != v) ? v : m;
}

static inline f4 max_nan4(f4 m, f4 v)
{
	return f4_select((v > m) | (v != v), v, m);
}

/* nn.MaxPool2d(k, st, ceil_mode=True) without padding, values only: x
 * [planes, H, W] -> y [planes, Ho, Wo] (Ho, Wo from fd_pool2d_out_size).
 * Scans each window row by row like fd_maxpool2d_forward (so the same one of
 * two equal values, +0 or -0, wins), without its index output or OpenMP
 * region: the tool runs images, not planes, in parallel. Stride 2 windows
 * lying wholly inside the input go four outputs at a time. */
static void maxpool_values(const float *x, float *y, int planes, int H, int W, int k, int st,
			   int Ho, int Wo)
{
	int full = W >= k ? (W - k) / st + 1 : 0;
	if (full > Wo)
		full = Wo;
	for (int pl = 0; pl < planes; pl++) {
		const float *xp = x + (size_t)pl * H * W;
		float *yp = y + (size_t)pl * Ho * Wo;
		for (int oh = 0; oh < Ho; oh++) {
			int h0 = oh * st, h1 = h0 + k < H ? h0 + k : H;
			float *yr = yp + (size_t)oh * Wo;
			int ow = 0;
			if (st == 2 && h1 - h0 == k)
				for (; ow + 4 <= full; ow += 4) {
					f4 v = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
					for (int ih = h0; ih < h1; ih++) {
						const float *r = xp + (size_t)ih * W + 2 * ow;
						for (int iw = 0; iw < k; iw++, r++)
							v = max_nan4(v, (f4){r[0], r[2], r[4], r[6]});
					}
					memcpy(yr + ow, &v, sizeof v);
				}
			for (; ow < Wo; ow++) {
				int w0 = ow * st, w1 = w0 + k < W ? w0 + k : W;
				float v = -INFINITY;
				for (int ih = h0; ih < h1; ih++)
					for (int iw = w0; iw < w1; iw++)
						v = max_nan(v, xp[(size_t)ih * W + iw]);
				yr[ow] = v;
			}
		}
	}
}

/* nn.MaxPool2d(k, st, ceil_mode=True): [N, C, H, W] -> y, sizes in *Ho, *Wo. */
static int maxpool(int N, int C, int H, int W, int k, int st, const float *x, float *y, int *Ho,
		   int *Wo, struct fd_err *e)
{
	struct fd_pool2d_shape s = {N, C, H, W, k, k, st, st, 0, 0, 1, 1};
	if (fd_pool2d_out_size(&s, Ho, Wo, e))
		return -1;
	maxpool_values(x, y, N * C, H, W, k, st, *Ho, *Wo);
	return 0;
}

/* torch.softmax over two logits a0, a1: the probability of class 1. */
static float softmax2(float a0, float a1)
{
	float mx = a0 > a1 ? a0 : a1;
	float e0 = expf(a0 - mx), e1 = expf(a1 - mx);
	return e1 * (1.0f / (e0 + e1));
}

/* P-Net trunk and fused head: x [N, 3, H, W] -> *out [N, 6, Ho, Wo] (logits
 * 0-1, regression 2-5) in buf slot 1. */
static int pnet_raw(struct fd_mtcnn *m, const float *x, int N, int H, int W, float **out, int *Ho,
		    int *Wo, struct fd_err *e)
{
	if (step(m, e) < 0)
		return -1;
	const struct fd_mtcnn_weights *w = m->w;
	int h = H - 2, wd = W - 2, ph, pw;
	float *a = grow(m, 0, (size_t)N * 10 * h * wd, e), *b;
	if (!a || conv(m, 0, N, 3, H, W, 10, 3, x, w->p_w[0], w->p_b[0], a, e))
		return -1;
	prelu(a, N, 10, (size_t)h * wd, w->p_a[0]);
	struct fd_pool2d_shape ps = {N, 10, h, wd, 2, 2, 2, 2, 0, 0, 1, 1};
	if (fd_pool2d_out_size(&ps, &ph, &pw, e) || !(b = grow(m, 1, (size_t)N * 10 * ph * pw, e)))
		return -1;
	if (maxpool(N, 10, h, wd, 2, 2, a, b, &ph, &pw, e))
		return -1;
	if (ph < 5 || pw < 5)
		return fd_err_set(e, "pnet: input %dx%d is smaller than 12x12", W, H);
	h = ph - 2, wd = pw - 2;
	if (!(a = grow(m, 0, (size_t)N * 16 * h * wd, e)) ||
	    conv(m, 1, N, 10, ph, pw, 16, 3, b, w->p_w[1], w->p_b[1], a, e))
		return -1;
	prelu(a, N, 16, (size_t)h * wd, w->p_a[1]);
	if (!(b = grow(m, 1, (size_t)N * 32 * (h - 2) * (wd - 2), e)) ||
	    conv(m, 2, N, 16, h, wd, 32, 3, a, w->p_w[2], w->p_b[2], b, e))
		return -1;
	h -= 2, wd -= 2;
	prelu(b, N, 32, (size_t)h * wd, w->p_a[2]);
	if (!(a = grow(m, 0, (size_t)N * 6 * h * wd, e)) ||
	    conv(m, 3, N, 32, h, wd, 6, 1, b, w->p_w[3], w->p_b[3], a, e))
		return -1;
	*out = a, *Ho = h, *Wo = wd;
	return 0;
}

int fd_mtcnn_pnet(struct fd_mtcnn *m, const float *x, int N, int H, int W, float **reg,
		  float **prob, int *Ho, int *Wo, struct fd_err *e)
{
	float *o;
	*reg = *prob = NULL;
	if (N < 1 || H < 12 || W < 12)
		return fd_err_set(e, "pnet: input %dx%dx%d is smaller than 1x12x12", N, H, W);
	if (pnet_raw(m, x, N, H, W, &o, Ho, Wo, e))
		return -1;
	size_t hw = (size_t)*Ho * *Wo;
	*reg = malloc((size_t)N * 4 * hw * sizeof(float));
	*prob = malloc((size_t)N * 2 * hw * sizeof(float));
	if (!*reg || !*prob) {
		free(*reg), free(*prob);
		*reg = *prob = NULL;
		return fd_err_set(e, "out of memory");
	}
	for (int n = 0; n < N; n++) {
		const float *on = o + (size_t)n * 6 * hw;
		for (size_t i = 0; i < hw; i++) {
			(*prob)[(size_t)n * 2 * hw + i] = softmax2(on[hw + i], on[i]);
			(*prob)[(size_t)n * 2 * hw + hw + i] = softmax2(on[i], on[hw + i]);
		}
		memcpy(*reg + (size_t)n * 4 * hw, on + 2 * hw, 4 * hw * sizeof(float));
	}
	return 0;
}

/* R-Net on x [N, 3, 24, 24] -> out [N, 6] (logits 0-1, regression 2-5), N <= MAX_BATCH. */
static int rnet_raw(struct fd_mtcnn *m, const float *x, int N, float *out, struct fd_err *e)
{
	if (step(m, e) < 0)
		return -1;
	const struct fd_mtcnn_weights *w = m->w;
	float *a = grow(m, 0, (size_t)N * 28 * 22 * 22, e), *b = grow(m, 1, (size_t)N * 28 * 11 * 11, e);
	int h, wd;
	if (!a || !b || conv(m, 4, N, 3, 24, 24, 28, 3, x, w->r_w[0], w->r_b[0], a, e))
		return -1;
	prelu(a, N, 28, 22 * 22, w->r_a[0]);
	if (maxpool(N, 28, 22, 22, 3, 2, a, b, &h, &wd, e) ||
	    conv(m, 5, N, 28, h, wd, 48, 3, b, w->r_w[1], w->r_b[1], a, e))
		return -1;
	h -= 2, wd -= 2;
	prelu(a, N, 48, (size_t)h * wd, w->r_a[1]);
	if (maxpool(N, 48, h, wd, 3, 2, a, b, &h, &wd, e) ||
	    conv(m, 6, N, 48, h, wd, 64, 2, b, w->r_w[2], w->r_b[2], a, e))
		return -1;
	prelu(a, N, 64, 9, w->r_a[2]);
	if (linear(m, N, 576, 128, a, w->r_dw[0], w->r_db[0], b, e))
		return -1;
	prelu(b, N, 128, 1, w->r_a[3]);
	return linear(m, N, 128, 6, b, w->r_dw[1], w->r_db[1], out, e);
}

/* O-Net on x [N, 3, 48, 48] -> out [N, 16] (logits 0-1, regression 2-5,
 * landmarks 6-15). */
static int onet_raw(struct fd_mtcnn *m, const float *x, int N, float *out, struct fd_err *e)
{
	if (step(m, e) < 0)
		return -1;
	const struct fd_mtcnn_weights *w = m->w;
	float *a = grow(m, 0, (size_t)N * 32 * 46 * 46, e), *b = grow(m, 1, (size_t)N * 32 * 23 * 23, e);
	int h, wd;
	if (!a || !b || conv(m, 7, N, 3, 48, 48, 32, 3, x, w->o_w[0], w->o_b[0], a, e))
		return -1;
	prelu(a, N, 32, 46 * 46, w->o_a[0]);
	if (maxpool(N, 32, 46, 46, 3, 2, a, b, &h, &wd, e) ||
	    conv(m, 8, N, 32, h, wd, 64, 3, b, w->o_w[1], w->o_b[1], a, e))
		return -1;
	h -= 2, wd -= 2;
	prelu(a, N, 64, (size_t)h * wd, w->o_a[1]);
	if (maxpool(N, 64, h, wd, 3, 2, a, b, &h, &wd, e) ||
	    conv(m, 9, N, 64, h, wd, 64, 3, b, w->o_w[2], w->o_b[2], a, e))
		return -1;
	h -= 2, wd -= 2;
	prelu(a, N, 64, (size_t)h * wd, w->o_a[2]);
	if (maxpool(N, 64, h, wd, 2, 2, a, b, &h, &wd, e) ||
	    conv(m, 10, N, 64, h, wd, 128, 2, b, w->o_w[3], w->o_b[3], a, e))
		return -1;
	prelu(a, N, 128, 9, w->o_a[3]);
	if (linear(m, N, 1152, 256, a, w->o_dw[0], w->o_db[0], b, e))
		return -1;
	prelu(b, N, 256, 1, w->o_a[4]);
	return linear(m, N, 256, 16, b, w->o_dw[1], w->o_db[1], out, e);
}

/* Run R-Net (S = 24, nout 6) or O-Net (S = 48, nout 16) over N crops in
 * batches of at most MAX_BATCH, each rounded up to a power of two (so a few
 * plan shapes serve every image; padded rows are zeros and ignored). */
static int run_crops(struct fd_mtcnn *m, int onet, const float *x, int N, float *out, struct fd_err *e)
{
	int S = onet ? 48 : 24, nout = onet ? 16 : 6;
	size_t per = (size_t)3 * S * S;
	float tmp[MAX_BATCH * 16];
	for (int i = 0; i < N; i += MAX_BATCH) {
		int n = N - i < MAX_BATCH ? N - i : MAX_BATCH, b = 1;
		while (b < n)
			b *= 2;
		const float *xb = x + (size_t)i * per;
		if (b > n) {
			float *pad = grow(m, 2, (size_t)b * per, e);
			if (!pad)
				return -1;
			memcpy(pad, xb, (size_t)n * per * sizeof(float));
			memset(pad + (size_t)n * per, 0, (size_t)(b - n) * per * sizeof(float));
			xb = pad;
		}
		if ((onet ? onet_raw : rnet_raw)(m, xb, b, tmp, e))
			return -1;
		memcpy(out + (size_t)i * nout, tmp, (size_t)n * nout * sizeof(float));
	}
	return 0;
}

int fd_mtcnn_rnet(struct fd_mtcnn *m, const float *x, int N, float *reg, float *prob, struct fd_err *e)
{
	float *o = malloc((size_t)N * 6 * sizeof(float));
	if (!o)
		return fd_err_set(e, "out of memory");
	if (run_crops(m, 0, x, N, o, e)) {
		free(o);
		return -1;
	}
	for (int n = 0; n < N; n++) {
		const float *r = o + n * 6;
		prob[2 * n] = softmax2(r[1], r[0]);
		prob[2 * n + 1] = softmax2(r[0], r[1]);
		memcpy(reg + 4 * n, r + 2, 4 * sizeof(float));
	}
	free(o);
	return 0;
}

int fd_mtcnn_onet(struct fd_mtcnn *m, const float *x, int N, float *reg, float *lm, float *prob,
		  struct fd_err *e)
{
	float *o = malloc((size_t)N * 16 * sizeof(float));
	if (!o)
		return fd_err_set(e, "out of memory");
	if (run_crops(m, 1, x, N, o, e)) {
		free(o);
		return -1;
	}
	for (int n = 0; n < N; n++) {
		const float *r = o + n * 16;
		prob[2 * n] = softmax2(r[1], r[0]);
		prob[2 * n + 1] = softmax2(r[0], r[1]);
		memcpy(reg + 4 * n, r + 2, 4 * sizeof(float));
		memcpy(lm + 10 * n, r + 6, 10 * sizeof(float));
	}
	free(o);
	return 0;
}

/* ---- image resampling ---- */

/* PyTorch 1.13's adaptive pooling window: floor(a*b/c) .. ceil((a+1)*b/c),
 * computed as it does, in float. */
static int a_start(int a, int b, int c)
{
	return (int)floorf((float)((int64_t)a * b) / (float)c);
}
static int a_end(int a, int b, int c)
{
	return (int)ceilf((float)((int64_t)(a + 1) * b) / (float)c);
}

void fd_mtcnn_area_norm(const uint8_t *px, int w, int x0, int y0, int x1, int y1, int Ho, int Wo,
			float *out)
{
	enum { TILE = 256 };    /* column windows worked out once per tile, not per pixel */
	int H = y1 - y0, W = x1 - x0, cw0[TILE], cw1[TILE];
	size_t plane = (size_t)Ho * Wo;
	for (int jt = 0; jt < Wo; jt += TILE) {
		int nj = Wo - jt < TILE ? Wo - jt : TILE;
		for (int j = 0; j < nj; j++)
			cw0[j] = a_start(jt + j, W, Wo), cw1[j] = a_end(jt + j, W, Wo);
		for (int i = 0; i < Ho; i++) {
			int h0 = a_start(i, H, Ho), h1 = a_end(i, H, Ho);
			float fh = (float)(h1 - h0);
			float *o = out + (size_t)i * Wo + jt;
			for (int j = 0; j < nj; j++) {
				int w0 = cw0[j], w1 = cw1[j];
				/* integer sums of 8-bit values: exact, as PyTorch's float sum
				 * is for windows below 2^24 / 255 pixels */
				uint32_t s0 = 0, s1 = 0, s2 = 0;
				for (int y = h0; y < h1; y++) {
					const uint8_t *r = px + ((size_t)(y0 + y) * w + x0 + w0) * 3;
					for (int x = w0; x < w1; x++, r += 3)
						s0 += r[0], s1 += r[1], s2 += r[2];
				}
				float fw = (float)(w1 - w0);
				o[j] = ((float)s0 / fh / fw - 127.5f) * 0.0078125f;
				o[plane + j] = ((float)s1 / fh / fw - 127.5f) * 0.0078125f;
				o[2 * plane + j] = ((float)s2 / fh / fw - 127.5f) * 0.0078125f;
			}
		}
	}
}

/* ---- the cascade ---- */

struct cand {
	float b[4];     /* x1 y1 x2 y2 */
	float score;
	float reg[4];
	float lm[10];   /* x1..x5, y1..y5 after O-Net */
};

struct cands {
	struct cand *v;
	int n, cap;
};

static int push(struct cands *c, const struct cand *x, struct fd_err *e)
{
	if (c->n == c->cap) {
		int cap = c->cap ? 2 * c->cap : 256;
		struct cand *v = realloc(c->v, (size_t)cap * sizeof *v);
		if (!v)
			return fd_err_set(e, "out of memory");
		c->v = v, c->cap = cap;
	}
	c->v[c->n++] = *x;
	return 0;
}

struct order {
	float s;
	int i;
};

/* score descending, ties by index ascending: torchvision's nms sorts with
 * stable=True, descending. */
static int by_score_desc(const void *a, const void *b)
{
	const struct order *x = a, *y = b;
	if (x->s != y->s)
		return x->s > y->s ? -1 : 1;
	return (x->i > y->i) - (x->i < y->i);
}

/* score descending, ties by index descending: nms_numpy walks a stable
 * ascending argsort from its end. */
static int by_score_desc_last(const void *a, const void *b)
{
	const struct order *x = a, *y = b;
	if (x->s != y->s)
		return x->s > y->s ? -1 : 1;
	return (x->i < y->i) - (x->i > y->i);
}

/* Greedy NMS over c[0..n): keep[] gets the kept indices, best first; returns
 * how many. min_mode 0 is torchvision.ops.nms (area (x2-x1)*(y2-y1), IoU in
 * float, suppress when (double)IoU > thr); min_mode 1 is facenet-pytorch's
 * nms_numpy(..., 'Min') (areas with +1, overlap / smaller area in float32,
 * keep when <= (float)thr). */
static int nms(const struct cand *c, int n, double thr, int min_mode, int *keep, struct fd_err *e)
{
	if (n == 0)
		return 0;
	struct order *o = malloc((size_t)n * sizeof *o);
	char *sup = calloc((size_t)n, 1);
	float *area = malloc((size_t)n * sizeof *area);
	if (!o || !sup || !area) {
		free(o), free(sup), free(area);
		return fd_err_set(e, "out of memory");
	}
	float one = min_mode ? 1.0f : 0.0f, thr_f = (float)thr;
	for (int i = 0; i < n; i++) {
		o[i].s = c[i].score, o[i].i = i;
		area[i] = (c[i].b[2] - c[i].b[0] + one) * (c[i].b[3] - c[i].b[1] + one);
	}
	qsort(o, (size_t)n, sizeof *o, min_mode ? by_score_desc_last : by_score_desc);
	int nk = 0;
	for (int a = 0; a < n; a++) {
		int i = o[a].i;
		if (sup[i])
			continue;
		keep[nk++] = i;
		for (int b = a + 1; b < n; b++) {
			int j = o[b].i;
			if (sup[j])
				continue;
			float xx1 = fmaxf(c[i].b[0], c[j].b[0]), yy1 = fmaxf(c[i].b[1], c[j].b[1]);
			float xx2 = fminf(c[i].b[2], c[j].b[2]), yy2 = fminf(c[i].b[3], c[j].b[3]);
			float w = xx2 - xx1 + one, h = yy2 - yy1 + one;
			w = w > 0.0f ? w : 0.0f;
			h = h > 0.0f ? h : 0.0f;
			float inter = w * h;
			if (min_mode) {
				float ov = inter / fminf(area[i], area[j]);
				if (!(ov <= thr_f))
					sup[j] = 1;
			} else {
				float ov = inter / (area[i] + area[j] - inter);
				if ((double)ov > thr)
					sup[j] = 1;
			}
		}
	}
	free(o), free(sup), free(area);
	return nk;
}

/* Keep c's entries listed in keep[0..nk), in that order (keep is a
 * score-ordered subset, so gather through scratch). */
static int select_keep(struct cands *c, const int *keep, int nk, struct fd_err *e)
{
	struct cand *tmp = malloc((size_t)(nk ? nk : 1) * sizeof *tmp);
	if (!tmp)
		return fd_err_set(e, "out of memory");
	for (int k = 0; k < nk; k++)
		tmp[k] = c->v[keep[k]];
	if (nk) /* c->v may be NULL when nothing was found; memcpy(NULL, .., 0) is UB */
		memcpy(c->v, tmp, (size_t)nk * sizeof *tmp);
	free(tmp);
	c->n = nk;
	return 0;
}

/* facenet-pytorch's rerec: make boxes square around their centres. */
static void rerec(struct cand *c)
{
	float h = c->b[3] - c->b[1], w = c->b[2] - c->b[0];
	float l = w > h ? w : h;
	c->b[0] = c->b[0] + w * 0.5f - l * 0.5f;
	c->b[1] = c->b[1] + h * 0.5f - l * 0.5f;
	c->b[2] = c->b[0] + l;
	c->b[3] = c->b[1] + l;
}

/* facenet-pytorch's bbreg: offsets scaled by the box size + 1. */
static void bbreg(struct cand *c)
{
	float w = c->b[2] - c->b[0] + 1.0f, h = c->b[3] - c->b[1] + 1.0f;
	float b0 = c->b[0] + c->reg[0] * w, b1 = c->b[1] + c->reg[1] * h;
	float b2 = c->b[2] + c->reg[2] * w, b3 = c->b[3] + c->reg[3] * h;
	c->b[0] = b0, c->b[1] = b1, c->b[2] = b2, c->b[3] = b3;
}

/* facenet-pytorch's pad(): the 1-based inclusive crop of box c, truncated to
 * int and clipped to the image; 0 when it is empty. */
static int crop_of(const struct cand *c, int w, int h, int *x0, int *y0, int *x1, int *y1)
{
	int x = (int)c->b[0], y = (int)c->b[1], ex = (int)c->b[2], ey = (int)c->b[3];
	x = x < 1 ? 1 : x;
	y = y < 1 ? 1 : y;
	ex = ex > w ? w : ex;
	ey = ey > h ? h : ey;
	if (!(ey > y - 1 && ex > x - 1))
		return 0;
	*x0 = x - 1, *y0 = y - 1, *x1 = ex, *y1 = ey;
	return 1;
}

/* Crop every candidate at S x S into one batch (buf slot 4, owned by m);
 * candidates whose crop is empty are dropped first (facenet-pytorch would
 * fail on them). */
static float *crops(struct fd_mtcnn *m, struct cands *c, const uint8_t *px, int w, int h, int S,
		    struct fd_err *e)
{
	int k = 0;
	for (int i = 0; i < c->n; i++) {
		int x0, y0, x1, y1;
		if (crop_of(&c->v[i], w, h, &x0, &y0, &x1, &y1))
			c->v[k++] = c->v[i];
	}
	c->n = k;
	size_t per = (size_t)3 * S * S;
	/* kept in the detector: a fresh block of this size (megabytes for
	 * hundreds of R-Net crops) would be mapped and zeroed by the kernel for
	 * every image */
	float *x = grow(m, 4, (size_t)(k ? k : 1) * per, e);
	if (!x)
		return NULL;
	for (int i = 0; i < k; i++) {
		int x0 = 0, y0 = 0, x1 = 1, y1 = 1;
		crop_of(&c->v[i], w, h, &x0, &y0, &x1, &y1);
		fd_mtcnn_area_norm(px, w, x0, y0, x1, y1, S, S, x + i * per);
	}
	return x;
}

/* Stage 1: P-Net over the pyramid, NMS 0.5 per scale, 0.7 across scales,
 * regression (by box size without +1), squaring. */
static int stage1(struct fd_mtcnn *m, const uint8_t *px, int w, int h, const struct fd_mtcnn_opts *o,
		  struct cands *all, struct fd_err *e)
{
	struct cands sc = {0};
	int *keep = NULL, rc = -1;
	double mscale = 12.0 / o->min_face, minl = (w < h ? w : h) * mscale, scale = mscale;
	while (minl >= 12) {
		int hs = (int)(h * scale + 1), ws = (int)(w * scale + 1), Ho, Wo;
		float *x = grow(m, 3, (size_t)3 * hs * ws, e), *out;
		if (!x)
			goto out;
		fd_mtcnn_area_norm(px, w, 0, 0, w, h, hs, ws, x);
		if (pnet_raw(m, x, 1, hs, ws, &out, &Ho, &Wo, e))
			goto out;
		size_t hw = (size_t)Ho * Wo;
		float sf = (float)scale, t0 = (float)o->thr[0];
		sc.n = 0;
		for (int y = 0; y < Ho; y++)
			for (int xx = 0; xx < Wo; xx++) {
				size_t i = (size_t)y * Wo + xx;
				float p = softmax2(out[i], out[hw + i]);
				if (!(p >= t0))
					continue;
				struct cand c;
				memset(&c, 0, sizeof c);
				c.b[0] = floorf(((float)(2 * xx) + 1.0f) / sf);
				c.b[1] = floorf(((float)(2 * y) + 1.0f) / sf);
				c.b[2] = floorf(((float)(2 * xx) + 12.0f) / sf);
				c.b[3] = floorf(((float)(2 * y) + 12.0f) / sf);
				c.score = p;
				for (int r = 0; r < 4; r++)
					c.reg[r] = out[(2 + r) * hw + i];
				if (push(&sc, &c, e))
					goto out;
			}
		int *k2 = realloc(keep, (size_t)(sc.n ? sc.n : 1) * sizeof *keep);
		if (!k2) {
			fd_err_set(e, "out of memory");
			goto out;
		}
		keep = k2;
		int nk = nms(sc.v, sc.n, 0.5, 0, keep, e);
		if (nk < 0)
			goto out;
		for (int k = 0; k < nk; k++)
			if (push(all, &sc.v[keep[k]], e))
				goto out;
		scale = scale * o->factor;
		minl = minl * o->factor;
	}
	{
		int *k2 = realloc(keep, (size_t)(all->n ? all->n : 1) * sizeof *keep);
		if (!k2) {
			fd_err_set(e, "out of memory");
			goto out;
		}
		keep = k2;
		int nk = nms(all->v, all->n, 0.7, 0, keep, e);
		if (nk < 0)
			goto out;
		if (select_keep(all, keep, nk, e))
			goto out;
	}
	for (int i = 0; i < all->n; i++) {
		struct cand *c = &all->v[i];
		float rw = c->b[2] - c->b[0], rh = c->b[3] - c->b[1];
		float q1 = c->b[0] + c->reg[0] * rw, q2 = c->b[1] + c->reg[1] * rh;
		float q3 = c->b[2] + c->reg[2] * rw, q4 = c->b[3] + c->reg[3] * rh;
		c->b[0] = q1, c->b[1] = q2, c->b[2] = q3, c->b[3] = q4;
		rerec(c);
	}
	rc = 0;
out:
	free(sc.v);
	free(keep);
	return rc;
}

/* Stages 2 (onet 0: R-Net, NMS 0.7, bbreg, rerec) and 3 (onet 1: O-Net,
 * landmarks, bbreg, "Min" NMS 0.7). */
static int refine(struct fd_mtcnn *m, int onet, const uint8_t *px, int w, int h, double thr,
		  struct cands *c, struct fd_err *e)
{
	int S = onet ? 48 : 24, rc = -1;
	float *x = crops(m, c, px, w, h, S, e), *o = NULL;
	int *keep = NULL;
	if (!x)
		return -1;
	int n = c->n, nout = onet ? 16 : 6;
	o = malloc((size_t)(n ? n : 1) * nout * sizeof(float));
	keep = malloc((size_t)(n ? n : 1) * sizeof *keep);
	if (!o || !keep) {
		fd_err_set(e, "out of memory");
		goto out;
	}
	if (n && run_crops(m, onet, x, n, o, e))
		goto out;
	float t = (float)thr;
	int k = 0;
	for (int i = 0; i < n; i++) {
		const float *r = o + (size_t)i * nout;
		float s = softmax2(r[0], r[1]);
		if (!(s > t))
			continue;
		struct cand cd = c->v[i];
		cd.score = s;
		memcpy(cd.reg, r + 2, 4 * sizeof(float));
		if (onet) {
			float wi = cd.b[2] - cd.b[0] + 1.0f, hi = cd.b[3] - cd.b[1] + 1.0f;
			for (int p = 0; p < 5; p++) {
				cd.lm[p] = wi * r[6 + p] + cd.b[0] - 1.0f;
				cd.lm[5 + p] = hi * r[11 + p] + cd.b[1] - 1.0f;
			}
			bbreg(&cd);
		}
		c->v[k++] = cd;
	}
	c->n = k;
	int nk = nms(c->v, c->n, 0.7, onet, keep, e);
	if (nk < 0)
		goto out;
	if (select_keep(c, keep, nk, e))
		goto out;
	if (!onet)
		for (int i = 0; i < c->n; i++) {
			bbreg(&c->v[i]);
			rerec(&c->v[i]);
		}
	rc = 0;
out:
	free(o), free(keep);
	return rc;
}

void fd_mtcnn_capped(int w, int h, double min_face, int *dw, int *dh)
{
	double m = 12.0 / min_face, level = (double)w * h * m * m;
	*dw = w, *dh = h;
	if (level <= FD_MTCNN_MAX_LEVEL)
		return;
	double s = sqrt(FD_MTCNN_MAX_LEVEL / level);
	*dw = (int)(w * s), *dh = (int)(h * s);
	*dw = *dw < 1 ? 1 : *dw;
	*dh = *dh < 1 ? 1 : *dh;
}

static int detect(struct fd_mtcnn *m, const uint8_t *px, int w, int h,
		  const struct fd_mtcnn_opts *o, struct fd_mtcnn_face **faces, int *n,
		  struct fd_err *e);

static int detect_capped(struct fd_mtcnn *m, const uint8_t *px, int w, int h,
			 const struct fd_mtcnn_opts *o, struct fd_mtcnn_face **faces, int *n,
			 struct fd_err *e);

/* A failed detection (most often memory: a large image's pyramid, a
 * primitive oneDNN could not make) gives back what the image grew: the
 * convolution plans with their oneDNN primitives (and oneDNN's cache of
 * them), the context's shared buffers sized for its largest layer, the
 * scratch. The next image starts
 * on a fresh detector, with the memory a first image would have. When even
 * that cannot be made, the context stays closed and the next call retries
 * (m->c.threads == 0). */
int fd_mtcnn_detect(struct fd_mtcnn *m, const uint8_t *px, int w, int h,
		    const struct fd_mtcnn_opts *o, struct fd_mtcnn_face **faces, int *n,
		    struct fd_err *e)
{
	const struct fd_mtcnn_weights *wt = m->w;
	int threads = m->threads;
	*faces = NULL;
	*n = 0;
	if (!m->c.threads && fd_mtcnn_init(m, wt, threads, e))
		return fd_err_ctx(e, "detector");
	if (detect_capped(m, px, w, h, o, faces, n, e) == 0)
		return 0;
	fd_mtcnn_free(m);
	fd_backend_cpu_flush();
	struct fd_err e2 = {{0}};
	if (fd_mtcnn_init(m, wt, threads, &e2)) {
		memset(m, 0, sizeof *m);
		m->w = wt;
		m->threads = threads;
	}
	return -1;
}

static int detect_capped(struct fd_mtcnn *m, const uint8_t *px, int w, int h,
			 const struct fd_mtcnn_opts *o, struct fd_mtcnn_face **faces, int *n,
			 struct fd_err *e)
{
	if (w < 1 || h < 1)
		return fd_err_set(e, "empty image");
	if (!(o->min_face > 0) || !(o->factor > 0 && o->factor < 1))
		return fd_err_set(e, "bad MTCNN options (min_face > 0, 0 < factor < 1)");
	int dw, dh;
	fd_mtcnn_capped(w, h, o->min_face, &dw, &dh);
	if (dw == w && dh == h)
		return detect(m, px, w, h, o, faces, n, e);
	/* too large: detect on an antialiased downscale, map back */
	uint8_t *small = malloc((size_t)dw * dh * 3);
	if (!small)
		return fd_err_set(e, "out of memory (downscaling %dx%d to %dx%d)", w, h, dw, dh);
	const float box[4] = {0, 0, (float)w, (float)h};
	int rc = fd_resize_rgb(px, w, h, box, small, dw, dh, (size_t)dw * 3, FD_FILTER_BILINEAR, e);
	if (rc == 0)
		rc = detect(m, small, dw, dh, o, faces, n, e);
	free(small);
	double sx = (double)w / dw, sy = (double)h / dh;
	for (int i = 0; rc == 0 && i < *n; i++) {
		struct fd_mtcnn_face *f = &(*faces)[i];
		f->box[0] = (float)(f->box[0] * sx), f->box[2] = (float)(f->box[2] * sx);
		f->box[1] = (float)(f->box[1] * sy), f->box[3] = (float)(f->box[3] * sy);
		for (int p = 0; p < 5; p++)
			f->lm[p][0] = (float)(f->lm[p][0] * sx), f->lm[p][1] = (float)(f->lm[p][1] * sy);
	}
	return rc;
}

static int detect(struct fd_mtcnn *m, const uint8_t *px, int w, int h,
		  const struct fd_mtcnn_opts *o, struct fd_mtcnn_face **faces, int *n,
		  struct fd_err *e)
{
	struct cands c = {0};
	if (stage1(m, px, w, h, o, &c, e))
		goto fail;
	if (c.n && refine(m, 0, px, w, h, o->thr[1], &c, e))
		goto fail;
	if (c.n && refine(m, 1, px, w, h, o->thr[2], &c, e))
		goto fail;
	if (c.n) {
		*faces = malloc((size_t)c.n * sizeof **faces);
		if (!*faces) {
			fd_err_set(e, "out of memory");
			goto fail;
		}
		for (int i = 0; i < c.n; i++) {
			struct fd_mtcnn_face *f = &(*faces)[i];
			memcpy(f->box, c.v[i].b, sizeof f->box);
			f->score = c.v[i].score;
			for (int p = 0; p < 5; p++)
				f->lm[p][0] = c.v[i].lm[p], f->lm[p][1] = c.v[i].lm[5 + p];
		}
		*n = c.n;
	}
	free(c.v);
	return 0;
fail:
	free(c.v);
	return -1;
}
