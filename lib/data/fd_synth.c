/* fd_synth: drawing synthetic faces and deriving DeepFakeFace-like fakes from
 * them. Everything is drawn in float RGB (0..255) canvases and quantised once. */
#include "data/fd_synth.h"
#include "core/fd_rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const src_names[FD_SYNTH_NSRC] = {"wiki", "text2img", "inpainting", "insight"};

const char *fd_synth_src_name(int src)
{
	return src >= 0 && src < FD_SYNTH_NSRC ? src_names[src] : "?";
}

void fd_synth_cues_default(struct fd_synth_cues *c)
{
	c->aspect = 1.0;
	c->cast = 0.5;
	c->texture = 0.5;
}

int fd_synth_cues_parse(const char *spec, struct fd_synth_cues *c, struct fd_err *e)
{
	struct fd_synth_cues r = {0, 0, 0};
	int seen[3] = {0, 0, 0};
	if (strcmp(spec, "none") == 0) {
		*c = r;
		return 0;
	}
	if (!*spec)
		return fd_err_set(e, "empty cue list (use 'none' for no cues)");
	const char *p = spec;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char item[64];
		if (len == 0)
			return fd_err_set(e, "empty item in cue list '%s'", spec);
		if (len >= sizeof item)
			return fd_err_set(e, "cue item too long in '%s'", spec);
		memcpy(item, p, len);
		item[len] = 0;
		char *eq = strchr(item, '=');
		double v = 1.0;
		if (eq) {
			*eq = 0;
			char *stop;
			v = strtod(eq + 1, &stop);
			if (!eq[1] || *stop || !(v >= 0 && v <= 1))
				return fd_err_set(e, "cue '%s': strength '%s' is not in [0, 1]", item, eq + 1);
		}
		int k;
		if (strcmp(item, "aspect") == 0)
			k = 0;
		else if (strcmp(item, "cast") == 0)
			k = 1;
		else if (strcmp(item, "texture") == 0)
			k = 2;
		else
			return fd_err_set(e, "unknown cue '%s' (known: aspect, cast, texture, none)", item);
		if (seen[k]++)
			return fd_err_set(e, "cue '%s' given twice", item);
		if (k == 0)
			r.aspect = v;
		else if (k == 1)
			r.cast = v;
		else
			r.texture = v;
		if (!end)
			break;
		p = end + 1;
	}
	*c = r;
	return 0;
}

void fd_synth_cues_format(const struct fd_synth_cues *c, char *buf, size_t n)
{
	snprintf(buf, n, "aspect=%g,cast=%g,texture=%g", c->aspect, c->cast, c->texture);
}

void fd_synth_opts_default(struct fd_synth_opts *o)
{
	o->seed = 1;
	o->groups = 100;
	o->fake_size = 256;
	o->real_min = 160;
	o->real_max = 320;
	o->fake_aspect_real = 0;
	fd_synth_cues_default(&o->cues);
}

int fd_synth_nfolders(const struct fd_synth_opts *o)
{
	int n = o->groups / 20;
	return n < 1 ? 1 : n > 100 ? 100 : n;
}

/* Streams of a group: (g << 8) | purpose, so no two draws ever share one. */
enum { ST_PLAN, ST_IDENT, ST_REAL_SCENE, ST_REAL_CAM, ST_T2I_SCENE, ST_T2I_CAM, ST_INP_EDIT,
       ST_INP_CAM, ST_DONOR, ST_INS_CAM };

static uint64_t stream(int g, int purpose)
{
	return ((uint64_t)g << 8) | (uint64_t)purpose;
}

static double unif(struct fd_rng *r, double lo, double hi)
{
	return lo + (hi - lo) * fd_rng_uniform(r);
}

void fd_synth_group_plan(const struct fd_synth_opts *o, int g, struct fd_synth_group *gp)
{
	struct fd_rng r;
	fd_rng_init(&r, o->seed, stream(g, ST_PLAN));
	memset(gp, 0, sizeof *gp);
	gp->g = g;
	int folder = (int)fd_rng_below(&r, (uint64_t)fd_synth_nfolders(o));
	int nm = g * 100 + (int)fd_rng_below(&r, 100);
	int rm = 1 + (int)fd_rng_below(&r, 3999);
	snprintf(gp->name, sizeof gp->name, "%02d/nm%07d_rm%d", folder, nm, rm);
	int w = o->real_min + (int)fd_rng_below(&r, (uint64_t)(o->real_max - o->real_min + 1));
	int portrait = fd_rng_below(&r, 4) != 0;
	double ar = 1.0 + o->cues.aspect * unif(&r, 0.15, 0.5);
	int h = (int)lround(portrait ? w * ar : w / ar);
	gp->w[FD_SYNTH_WIKI] = w;
	gp->h[FD_SYNTH_WIKI] = h < 16 ? 16 : h;
	/* fakes: square, or the real's ratio with the long side at fake_size (so a
	 * letterbox shrinks both kinds of fake by the same factor) */
	int fw = o->fake_size, fh = o->fake_size;
	if (o->fake_aspect_real) {
		int sht = (int)lround(o->fake_size / ar);
		if (portrait)
			fw = sht < 16 ? 16 : sht;
		else
			fh = sht < 16 ? 16 : sht;
	}
	for (int s = 0; s < FD_SYNTH_NSRC; s++) {
		gp->quality[s] = 75 + (int)fd_rng_below(&r, 21);
		if (s == FD_SYNTH_WIKI) {
			gp->aspect[s] = o->cues.aspect;
			continue;
		}
		gp->w[s] = fw;
		gp->h[s] = fh;
		gp->cast[s] = o->cues.cast;
		gp->texture[s] = o->cues.texture;
	}
}

/* ---- scenes ---------------------------------------------------------- */

struct ident {
	float skin[3], hair[3], iris[3], lip[3], cloth[3], brow[3];
	float ratio;                       /* head ry / rx */
	float eye_dx, eye_dy, eye_r;       /* in units of rx / ry */
	float brow_dy, brow_tilt;
	float nose_len, nose_w;
	float mouth_w, mouth_h, mouth_dy;
	float hair_top, hair_len, fringe;
};

struct pose {
	float fx, fy, rx;                  /* head centre and half-width, scene pixels */
	float tilt, yaw;
};

struct scene {
	int W, H;                          /* scene extent (the frame it was composed for) */
	float top[3], bot[3];              /* background gradient */
	int nblob;
	float blob[6][6];                  /* x, y, r, rgb */
	struct ident id;
	struct pose p;
};

/* Output pixel (x, y) shows scene point (ox + (x + 0.5) sc, oy + (y + 0.5) sc). */
struct view {
	float ox, oy, sc;
	int w, h;
};

static void jitter(float out[3], const float base[3], float amount, struct fd_rng *r)
{
	for (int c = 0; c < 3; c++) {
		float v = base[c] + (float)unif(r, -amount, amount);
		out[c] = v < 0 ? 0 : v > 255 ? 255 : v;
	}
}

static void mix(float out[3], const float a[3], const float b[3], float t)
{
	for (int c = 0; c < 3; c++)
		out[c] = a[c] + (b[c] - a[c]) * t;
}

static void make_ident(struct ident *id, struct fd_rng *r)
{
	static const float light[3] = {250, 218, 190}, dark[3] = {105, 70, 48};
	static const float hairs[6][3] = {{20, 16, 14}, {70, 45, 28}, {120, 80, 45},
					  {205, 170, 110}, {150, 60, 30}, {160, 160, 160}};
	static const float irises[4][3] = {{70, 45, 25}, {60, 100, 160}, {70, 110, 70}, {110, 110, 115}};
	float t[3];
	mix(t, light, dark, (float)fd_rng_uniform(r));
	jitter(id->skin, t, 10, r);
	jitter(id->hair, hairs[fd_rng_below(r, 6)], 15, r);
	jitter(id->iris, irises[fd_rng_below(r, 4)], 15, r);
	float lip[3] = {id->skin[0] * 0.85f, id->skin[1] * 0.55f, id->skin[2] * 0.55f};
	jitter(id->lip, lip, 12, r);
	float mid[3] = {128, 128, 128};
	jitter(id->cloth, mid, 110, r);
	float brow[3] = {id->hair[0] * 0.8f, id->hair[1] * 0.8f, id->hair[2] * 0.8f};
	jitter(id->brow, brow, 8, r);
	id->ratio = (float)unif(r, 1.2, 1.42);
	id->eye_dx = (float)unif(r, 0.34, 0.44);
	id->eye_dy = (float)unif(r, -0.12, 0.0);
	id->eye_r = (float)unif(r, 0.14, 0.2);
	id->brow_dy = (float)unif(r, 0.13, 0.2);
	id->brow_tilt = (float)unif(r, -0.25, 0.25);
	id->nose_len = (float)unif(r, 0.22, 0.34);
	id->nose_w = (float)unif(r, 0.09, 0.15);
	id->mouth_w = (float)unif(r, 0.28, 0.45);
	id->mouth_h = (float)unif(r, 0.05, 0.1);
	id->mouth_dy = (float)unif(r, 0.45, 0.6);
	id->hair_top = (float)unif(r, 0.85, 1.1);
	id->hair_len = (float)unif(r, 0.0, 1.0);
	id->fringe = (float)unif(r, 0.2, 0.45);
}

/* A background and a pose for a W x H frame. */
static void make_setting(struct scene *s, int W, int H, struct fd_rng *r)
{
	s->W = W;
	s->H = H;
	float mid[3] = {128, 128, 128};
	jitter(s->top, mid, 120, r);
	jitter(s->bot, s->top, 90, r);
	s->nblob = (int)fd_rng_below(r, 7);
	for (int i = 0; i < s->nblob; i++) {
		s->blob[i][0] = (float)unif(r, 0, W);
		s->blob[i][1] = (float)unif(r, 0, H);
		s->blob[i][2] = (float)unif(r, 0.05, 0.3) * (float)(W < H ? W : H);
		jitter(&s->blob[i][3], s->top, 100, r);
	}
	float m = (float)(W < H ? W : H);
	struct pose *p = &s->p;
	p->rx = m * (float)unif(r, 0.17, 0.22);
	float ry = p->rx * s->id.ratio;
	p->fx = (float)W * (0.5f + (float)unif(r, -0.08, 0.08));
	p->fy = (float)H * (0.47f + (float)unif(r, -0.05, 0.05));
	if (p->fy < ry * 1.25f)
		p->fy = ry * 1.25f;
	p->tilt = (float)unif(r, -0.2, 0.2);
	p->yaw = (float)unif(r, -0.3, 0.3);
}

struct canvas {
	int w, h;
	float *px;  /* w*h*3 */
};

/* Soft-edged filled ellipse in scene coordinates, alpha-blended. shade > 0
 * darkens toward the lower right and the rim (light from the upper left). */
static void ellipse(struct canvas *c, const struct view *v, float cx, float cy, float rx, float ry,
		    float ang, const float col[3], float alpha, float shade)
{
	float pcx = (cx - v->ox) / v->sc - 0.5f, pcy = (cy - v->oy) / v->sc - 0.5f;
	float prx = rx / v->sc, pry = ry / v->sc;
	if (prx < 0.3f)
		prx = 0.3f;
	if (pry < 0.3f)
		pry = 0.3f;
	float R = (prx > pry ? prx : pry) + 2;
	int x0 = (int)floorf(pcx - R), x1 = (int)ceilf(pcx + R);
	int y0 = (int)floorf(pcy - R), y1 = (int)ceilf(pcy + R);
	if (x0 < 0)
		x0 = 0;
	if (y0 < 0)
		y0 = 0;
	if (x1 > c->w - 1)
		x1 = c->w - 1;
	if (y1 > c->h - 1)
		y1 = c->h - 1;
	float ca = cosf(ang), sa = sinf(ang), rmin = prx < pry ? prx : pry;
	for (int y = y0; y <= y1; y++) {
		for (int x = x0; x <= x1; x++) {
			float dx = (float)x - pcx, dy = (float)y - pcy;
			float u = (dx * ca + dy * sa) / prx, w = (-dx * sa + dy * ca) / pry;
			float q = sqrtf(u * u + w * w);
			float cov = 0.5f + (1 - q) * rmin;
			if (cov <= 0)
				continue;
			if (cov > 1)
				cov = 1;
			float f = 1 - shade * (0.25f * u + 0.3f * w + 0.5f * q * q * q * q);
			float a = alpha * cov;
			float *p = c->px + ((size_t)y * c->w + x) * 3;
			for (int k = 0; k < 3; k++)
				p[k] += (col[k] * f - p[k]) * a;
		}
	}
}

static void scaled(float out[3], const float in[3], float f)
{
	for (int k = 0; k < 3; k++)
		out[k] = in[k] * f;
}

static void draw_scene(struct canvas *c, const struct view *v, const struct scene *s)
{
	for (int y = 0; y < c->h; y++) {
		float sy = v->oy + ((float)y + 0.5f) * v->sc;
		float t = sy / (float)s->H;
		t = t < 0 ? 0 : t > 1 ? 1 : t;
		float col[3];
		mix(col, s->top, s->bot, t);
		float *row = c->px + (size_t)y * c->w * 3;
		for (int x = 0; x < c->w; x++)
			memcpy(row + 3 * x, col, sizeof col);
	}
	for (int i = 0; i < s->nblob; i++)
		ellipse(c, v, s->blob[i][0], s->blob[i][1], s->blob[i][2], s->blob[i][2] * 0.8f, 0,
			&s->blob[i][3], 0.5f, 0.2f);

	const struct ident *id = &s->id;
	const struct pose *p = &s->p;
	float rx = p->rx, ry = rx * id->ratio, ct = cosf(p->tilt), st = sinf(p->tilt);
	/* face-local (u, v) in pixels -> scene */
#define AT(u, v) p->fx + (u) * ct - (v) * st, p->fy + (u) * st + (v) * ct
	float tone[3];
	ellipse(c, v, p->fx, p->fy + ry * 1.9f, rx * 2.3f, ry * 0.95f, 0, id->cloth, 1, 0.3f);
	scaled(tone, id->skin, 0.82f);
	ellipse(c, v, AT(0, ry * 0.9f), rx * 0.48f, ry * 0.5f, p->tilt, tone, 1, 0.2f);
	ellipse(c, v, AT(0, -ry * 0.12f + id->hair_len * ry * 0.3f), rx * 1.17f,
		ry * (1.05f + id->hair_len * 0.35f), p->tilt, id->hair, 1, 0.25f);
	scaled(tone, id->skin, 0.9f);
	for (int sd = -1; sd <= 1; sd += 2)
		ellipse(c, v, AT(sd * rx * 0.97f, ry * 0.05f), rx * 0.14f, ry * 0.22f, p->tilt, tone, 1, 0.2f);
	ellipse(c, v, p->fx, p->fy, rx, ry, p->tilt, id->skin, 1, 0.35f);
	ellipse(c, v, AT(0, -ry * 0.82f), rx * 0.95f * id->hair_top, ry * id->fringe, p->tilt, id->hair, 1,
		0.2f);

	float ys = p->yaw * rx * 0.25f;  /* features slide toward the turned side */
	static const float white[3] = {236, 234, 228}, black[3] = {12, 10, 10}, line[3] = {70, 25, 25};
	for (int sd = -1; sd <= 1; sd += 2) {
		float er = id->eye_r * rx * (1 - sd * p->yaw * 0.3f);
		float eu = sd * id->eye_dx * rx + ys, ev = id->eye_dy * ry;
		ellipse(c, v, AT(eu, ev), er, er * 0.52f, p->tilt, white, 1, 0.1f);
		ellipse(c, v, AT(eu + ys * 0.3f, ev), er * 0.48f, er * 0.48f, p->tilt, id->iris, 1, 0.2f);
		ellipse(c, v, AT(eu + ys * 0.3f, ev), er * 0.22f, er * 0.22f, p->tilt, black, 1, 0);
		ellipse(c, v, AT(eu, ev - id->brow_dy * ry), er * 1.25f, ry * 0.03f,
			p->tilt + sd * id->brow_tilt, id->brow, 1, 0);
	}
	float nv = id->eye_dy * ry + id->nose_len * ry * 0.55f;
	scaled(tone, id->skin, 0.8f);
	ellipse(c, v, AT(ys * 1.3f, nv), id->nose_w * rx, id->nose_len * ry * 0.5f, p->tilt, tone, 0.5f, 0.2f);
	scaled(tone, id->skin, 0.45f);
	for (int sd = -1; sd <= 1; sd += 2)
		ellipse(c, v, AT(ys * 1.3f + sd * id->nose_w * rx * 0.6f, nv + id->nose_len * ry * 0.42f),
			id->nose_w * rx * 0.35f, id->nose_w * rx * 0.2f, p->tilt, tone, 0.8f, 0);
	float mv = id->mouth_dy * ry;
	ellipse(c, v, AT(ys, mv), id->mouth_w * rx, id->mouth_h * ry, p->tilt, id->lip, 1, 0.2f);
	ellipse(c, v, AT(ys, mv), id->mouth_w * rx * 0.95f, id->mouth_h * ry * 0.18f, p->tilt, line, 0.9f, 0);
	static const float blush[3] = {220, 90, 90};
	for (int sd = -1; sd <= 1; sd += 2)
		ellipse(c, v, AT(sd * rx * 0.5f + ys, ry * 0.25f), rx * 0.2f, ry * 0.12f, p->tilt, blush, 0.12f, 0);
#undef AT
}

/* ---- camera, cues, compositing --------------------------------------- */

/* [1 2 1]/4 blur, separable, clamped edges; tmp holds max(w, h)*3 floats. */
static void blur121(struct canvas *c, float *tmp)
{
	int w = c->w, h = c->h;
	for (int y = 0; y < h; y++) {
		float *row = c->px + (size_t)y * w * 3;
		memcpy(tmp, row, sizeof(float) * 3 * (size_t)w);
		for (int x = 0; x < w; x++)
			for (int k = 0; k < 3; k++) {
				float l = tmp[3 * (x > 0 ? x - 1 : 0) + k], r = tmp[3 * (x < w - 1 ? x + 1 : x) + k];
				row[3 * x + k] = 0.25f * l + 0.5f * tmp[3 * x + k] + 0.25f * r;
			}
	}
	for (int x = 0; x < w; x++) {
		for (int y = 0; y < h; y++)
			for (int k = 0; k < 3; k++)
				tmp[3 * y + k] = c->px[((size_t)y * w + x) * 3 + k];
		for (int y = 0; y < h; y++)
			for (int k = 0; k < 3; k++) {
				float u = tmp[3 * (y > 0 ? y - 1 : 0) + k], d = tmp[3 * (y < h - 1 ? y + 1 : y) + k];
				c->px[((size_t)y * w + x) * 3 + k] = 0.25f * u + 0.5f * tmp[3 * y + k] + 0.25f * d;
			}
	}
}

/* White balance and exposure jitter, 0-2 blur passes, luminance and chroma
 * noise: what makes two photos of one scene differ. */
static void camera(struct canvas *c, struct fd_rng *r, float *tmp)
{
	float gain[3], ex = 1 + 0.08f * (float)fd_rng_normal(r);
	for (int k = 0; k < 3; k++)
		gain[k] = ex * (1 + 0.05f * (float)fd_rng_normal(r));
	int passes = (int)fd_rng_below(r, 3);
	float sigma = (float)unif(r, 1.5, 5.0);
	size_t n = (size_t)c->w * c->h;
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 3; k++)
			c->px[3 * i + k] *= gain[k];
	for (int i = 0; i < passes; i++)
		blur121(c, tmp);
	for (size_t i = 0; i < n; i++) {
		float l = sigma * (float)fd_rng_normal(r);
		uint32_t b = fd_rng_u32(r);
		for (int k = 0; k < 3; k++)
			c->px[3 * i + k] += l + sigma * 0.3f * ((float)((b >> (8 * k)) & 255) / 127.5f - 1);
	}
}

static void plant(struct canvas *c, int src, double cast, double texture)
{
	static const float dir[3] = {10, 3, -9};
	float amp = 6.0f * (float)texture;
	for (int y = 0; y < c->h; y++)
		for (int x = 0; x < c->w; x++) {
			float t;
			if (src == FD_SYNTH_TEXT2IMG)
				t = sinf(6.2831853f * (float)(x + y) / 5.0f);
			else if (src == FD_SYNTH_INPAINTING)
				t = sinf(6.2831853f * (float)x / 3.0f) * sinf(6.2831853f * (float)y / 3.0f);
			else
				t = sinf(6.2831853f * (float)y / 4.0f);
			float *p = c->px + ((size_t)y * c->w + x) * 3;
			for (int k = 0; k < 3; k++)
				p[k] += (float)cast * dir[k] + amp * t;
		}
}

static void quantise(const struct canvas *c, uint8_t *out)
{
	size_t n = (size_t)c->w * c->h * 3;
	for (size_t i = 0; i < n; i++) {
		float v = floorf(c->px[i] + 0.5f);
		out[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
	}
}

/* Bilinear sample of an RGB8 image at the view's pixel centres (a square crop). */
static void resample(struct canvas *c, const struct view *v, const uint8_t *src, int sw, int sh)
{
	for (int y = 0; y < c->h; y++) {
		float sy = v->oy + ((float)y + 0.5f) * v->sc - 0.5f;
		sy = sy < 0 ? 0 : sy > (float)(sh - 1) ? (float)(sh - 1) : sy;
		int y0 = (int)sy, y1 = y0 + 1 < sh ? y0 + 1 : y0;
		float fy = sy - (float)y0;
		for (int x = 0; x < c->w; x++) {
			float sx = v->ox + ((float)x + 0.5f) * v->sc - 0.5f;
			sx = sx < 0 ? 0 : sx > (float)(sw - 1) ? (float)(sw - 1) : sx;
			int x0 = (int)sx, x1 = x0 + 1 < sw ? x0 + 1 : x0;
			float fx = sx - (float)x0;
			for (int k = 0; k < 3; k++) {
				float a = src[((size_t)y0 * sw + x0) * 3 + k], b = src[((size_t)y0 * sw + x1) * 3 + k];
				float cc = src[((size_t)y1 * sw + x0) * 3 + k], d = src[((size_t)y1 * sw + x1) * 3 + k];
				c->px[((size_t)y * c->w + x) * 3 + k] =
					(a + (b - a) * fx) * (1 - fy) + (cc + (d - cc) * fx) * fy;
			}
		}
	}
}

/* dst = dst*(1-m) + src*m with m a soft ellipse (scene coordinates) of
 * relative edge width 0.15: the repainted or swapped region. */
static void blend_ellipse(struct canvas *dst, const struct canvas *src, const struct view *v, float cx,
			  float cy, float rx, float ry, float ang)
{
	float pcx = (cx - v->ox) / v->sc - 0.5f, pcy = (cy - v->oy) / v->sc - 0.5f;
	float prx = rx / v->sc, pry = ry / v->sc, ca = cosf(ang), sa = sinf(ang);
	for (int y = 0; y < dst->h; y++)
		for (int x = 0; x < dst->w; x++) {
			float dx = (float)x - pcx, dy = (float)y - pcy;
			float u = (dx * ca + dy * sa) / prx, w = (-dx * sa + dy * ca) / pry;
			float m = (1 - sqrtf(u * u + w * w)) / 0.15f;
			if (m <= 0)
				continue;
			if (m > 1)
				m = 1;
			m = m * m * (3 - 2 * m);
			size_t i = ((size_t)y * dst->w + x) * 3;
			for (int k = 0; k < 3; k++)
				dst->px[i + k] += (src->px[i + k] - dst->px[i + k]) * m;
		}
}

int fd_synth_group_render(const struct fd_synth_opts *o, const struct fd_synth_group *gp,
			  uint8_t *const px[FD_SYNTH_NSRC], struct fd_err *e)
{
	int g = gp->g, W = gp->w[FD_SYNTH_WIKI], H = gp->h[FD_SYNTH_WIKI];
	int FW = gp->w[FD_SYNTH_TEXT2IMG], FH = gp->h[FD_SYNTH_TEXT2IMG]; /* every fake's size */
	int big = W > H ? W : H;
	if (FW > big)
		big = FW;
	if (FH > big)
		big = FH;
	size_t nmax = (size_t)(W * H > FW * FH ? W * H : FW * FH) * 3;
	float *a = malloc(nmax * sizeof(float)), *b = malloc(nmax * sizeof(float));
	float *tmp = malloc((size_t)big * 3 * sizeof(float));
	if (!a || !b || !tmp) {
		free(a);
		free(b);
		free(tmp);
		return fd_err_set(e, "out of memory rendering group %d", g);
	}
	struct fd_rng r;
	struct scene real, alt;

	/* the real photo */
	fd_rng_init(&r, o->seed, stream(g, ST_IDENT));
	make_ident(&real.id, &r);
	fd_rng_init(&r, o->seed, stream(g, ST_REAL_SCENE));
	make_setting(&real, W, H, &r);
	struct canvas c = {W, H, a};
	struct view v = {0, 0, 1, W, H};
	draw_scene(&c, &v, &real);
	fd_rng_init(&r, o->seed, stream(g, ST_REAL_CAM));
	camera(&c, &r, tmp);
	quantise(&c, px[FD_SYNTH_WIKI]);

	/* text2img: the same identity, composed anew on the fake's frame (square
	 * unless fake_aspect_real) */
	alt = real;
	fd_rng_init(&r, o->seed, stream(g, ST_T2I_SCENE));
	make_setting(&alt, FW, FH, &r);
	c = (struct canvas){FW, FH, a};
	v = (struct view){0, 0, 1, FW, FH};
	draw_scene(&c, &v, &alt);
	fd_rng_init(&r, o->seed, stream(g, ST_T2I_CAM));
	camera(&c, &r, tmp);
	plant(&c, FD_SYNTH_TEXT2IMG, gp->cast[FD_SYNTH_TEXT2IMG], gp->texture[FD_SYNTH_TEXT2IMG]);
	quantise(&c, px[FD_SYNTH_TEXT2IMG]);

	/* the square crop around the real's face that inpainting and insight start
	 * from; with fake_aspect_real the whole real (its aspect is the fake's) */
	float side = (float)(W < H ? W : H), sc;
	float ox = real.p.fx - side / 2, oy = real.p.fy - side / 2;
	ox = ox < 0 ? 0 : ox > (float)W - side ? (float)W - side : ox;
	oy = oy < 0 ? 0 : oy > (float)H - side ? (float)H - side : oy;
	sc = side / (float)FW;
	if (o->fake_aspect_real) {
		float sx = (float)W / (float)FW, sy = (float)H / (float)FH;
		sc = sx < sy ? sx : sy;
		ox = ((float)W - sc * (float)FW) / 2;
		oy = ((float)H - sc * (float)FH) / 2;
	}
	v = (struct view){ox, oy, sc, FW, FH};
	float ry = real.p.rx * real.id.ratio;
	struct canvas base = {FW, FH, a}, paint = {FW, FH, b};

	for (int s = FD_SYNTH_INPAINTING; s <= FD_SYNTH_INSIGHT; s++) {
		resample(&base, &v, px[FD_SYNTH_WIKI], W, H);
		if (sc > 1.05f)
			blur121(&base, tmp);
		alt = real;
		struct fd_rng er;
		float mrx, mry;
		if (s == FD_SYNTH_INPAINTING) {
			/* same person, face details re-imagined */
			fd_rng_init(&er, o->seed, stream(g, ST_INP_EDIT));
			alt.id.mouth_w *= (float)unif(&er, 0.85, 1.15);
			alt.id.mouth_h *= (float)unif(&er, 0.8, 1.25);
			alt.id.eye_r *= (float)unif(&er, 0.9, 1.1);
			alt.id.brow_tilt = (float)unif(&er, -0.25, 0.25);
			jitter(alt.id.skin, real.id.skin, 8, &er);
			jitter(alt.id.lip, real.id.lip, 10, &er);
			mrx = real.p.rx * 1.05f;
			mry = ry * 1.08f;
			fd_rng_init(&r, o->seed, stream(g, ST_INP_CAM));
		} else {
			/* another person's inner face on this head, hair and background */
			struct ident donor;
			fd_rng_init(&er, o->seed, stream(g, ST_DONOR));
			make_ident(&donor, &er);
			memcpy(donor.hair, real.id.hair, sizeof donor.hair);
			donor.hair_top = real.id.hair_top;
			donor.hair_len = real.id.hair_len;
			donor.fringe = real.id.fringe;
			memcpy(donor.cloth, real.id.cloth, sizeof donor.cloth);
			donor.ratio = real.id.ratio;
			alt.id = donor;
			mrx = real.p.rx * 0.85f;
			mry = ry * 0.85f;
			fd_rng_init(&r, o->seed, stream(g, ST_INS_CAM));
		}
		draw_scene(&paint, &v, &alt);
		camera(&paint, &r, tmp);
		blend_ellipse(&base, &paint, &v, real.p.fx, real.p.fy + ry * 0.05f, mrx, mry, real.p.tilt);
		plant(&base, s, gp->cast[s], gp->texture[s]);
		quantise(&base, px[s]);
	}
	free(a);
	free(b);
	free(tmp);
	return 0;
}
