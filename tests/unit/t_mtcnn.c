/* t_mtcnn: fd_mtcnn's nets and area resampling against facenet-pytorch's
 * PNet, RNet, ONet and torch's interpolate(mode='area'). The fixture is made by
 * tests/tools/mtcnn_nets.py under the venv (facenet-pytorch is PyPI-only), so
 * tests/tools/facecrop.t runs this test with the fixture and weights as
 * arguments: t_mtcnn FIXTURE.safetensors MODELS_DIR. */
#include <stdlib.h>
#include <string.h>
#include "face/fd_mtcnn.h"
#include "io/fd_safetensors.h"
#include "tap.h"

static const float *get(const struct fd_st *s, const char *name, int64_t numel)
{
	const struct fd_st_tensor *t = fd_st_find(s, name);
	if (!t || t->dtype != FD_DT_F32 || t->numel != numel) {
		ok(0, "fixture tensor %s: F32 with %lld values", name, (long long)numel);
		return NULL;
	}
	return t->data;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		printf("1..0 # SKIP needs FIXTURE and MODELS_DIR (run by tests/tools/facecrop.t)\n");
		return 0;
	}
	struct fd_err e = {{0}};
	struct fd_st s;
	struct fd_mtcnn_weights w;
	struct fd_mtcnn m;
	if (fd_st_open(&s, argv[1], &e) || fd_mtcnn_weights_load(&w, argv[2], &e) ||
	    fd_mtcnn_init(&m, &w, 1, &e)) {
		ok(0, "setup: %s", e.msg);
		return tap_done();
	}
	/* the memory cap: photos keep their size, a 12000x12000 image does not */
	int dw, dh;
	fd_mtcnn_capped(4000, 2900, 20, &dw, &dh);
	ok(dw == 4000 && dh == 2900, "cap: 4000x2900 (11.6 MP) detected as it is at min_face 20 (%dx%d)", dw, dh);
	fd_mtcnn_capped(868, 600, 20, &dw, &dh);
	ok(dw == 868 && dh == 600, "cap: building.jpg's 868x600 as it is (%dx%d)", dw, dh);
	fd_mtcnn_capped(12000, 12000, 20, &dw, &dh);
	double lv = (double)dw * dh * 0.36;
	ok(dw == dh && lv <= FD_MTCNN_MAX_LEVEL && lv > 0.99 * FD_MTCNN_MAX_LEVEL,
	   "cap: 12000x12000 -> %dx%d, first level %.0f <= %.0f px", dw, dh, lv, FD_MTCNN_MAX_LEVEL);
	fd_mtcnn_capped(4000, 3000, 20, &dw, &dh);
	ok(dw < 4000 && dh < 3000 && dw * 3 >= dh * 4 - 4 && dw * 3 <= dh * 4 + 4,
	   "cap: 4000x3000 at min_face 20 shrinks, aspect kept (%dx%d)", dw, dh);
	fd_mtcnn_capped(4000, 3000, 40, &dw, &dh);
	ok(dw == 4000 && dh == 3000, "cap: ... but not at min_face 40 (%dx%d)", dw, dh);
	fd_mtcnn_capped(100000000, 1, 20, &dw, &dh);
	ok(dw < 100000000 && dh == 1, "cap: a 1-pixel-high strip keeps a row (%dx%d)", dw, dh);
	/* P-Net: [2, 3, 37, 51] -> [2, 4|2, 13, 20] */
	float *reg, *prob;
	int Ho, Wo;
	const float *x = get(&s, "pnet_x", 2 * 3 * 37 * 51);
	ok(x && fd_mtcnn_pnet(&m, x, 2, 37, 51, &reg, &prob, &Ho, &Wo, &e) == 0, "pnet runs %s", e.msg);
	if (x && reg) {
		ok(Ho == 14 && Wo == 21, "pnet output 14x21 (got %dx%d)", Ho, Wo);
		const float *rr = get(&s, "pnet_reg", 2 * 4 * 14 * 21), *rp = get(&s, "pnet_prob", 2 * 2 * 14 * 21);
		if (rr && rp && Ho == 14 && Wo == 21) {
			tap_close_f32("pnet reg", reg, rr, 2 * 4 * 14 * 21, 1e-5, 1e-4);
			tap_close_f32("pnet prob", prob, rp, 2 * 2 * 14 * 21, 1e-6, 1e-5);
		}
		free(reg), free(prob);
	}
	/* R-Net: 5 crops (a padded batch of 8 inside) */
	float r_reg[5 * 4], r_prob[5 * 2];
	x = get(&s, "rnet_x", 5 * 3 * 24 * 24);
	ok(x && fd_mtcnn_rnet(&m, x, 5, r_reg, r_prob, &e) == 0, "rnet runs %s", e.msg);
	const float *a = get(&s, "rnet_reg", 5 * 4), *b = get(&s, "rnet_prob", 5 * 2);
	if (a && b) {
		tap_close_f32("rnet reg", r_reg, a, 20, 1e-5, 1e-4);
		tap_close_f32("rnet prob", r_prob, b, 10, 1e-6, 1e-5);
	}
	float o_reg[3 * 4], o_lm[3 * 10], o_prob[3 * 2];
	x = get(&s, "onet_x", 3 * 3 * 48 * 48);
	ok(x && fd_mtcnn_onet(&m, x, 3, o_reg, o_lm, o_prob, &e) == 0, "onet runs %s", e.msg);
	const float *c = get(&s, "onet_lm", 30);
	a = get(&s, "onet_reg", 12), b = get(&s, "onet_prob", 6);
	if (a && b && c) {
		tap_close_f32("onet reg", o_reg, a, 12, 1e-5, 1e-4);
		tap_close_f32("onet landmarks", o_lm, c, 30, 1e-5, 1e-4);
		tap_close_f32("onet prob", o_prob, b, 6, 1e-6, 1e-5);
	}
	/* area resampling: bit-identical to torch (atol 0) */
	const struct fd_st_tensor *img = fd_st_find(&s, "img");
	ok(img && img->dtype == FD_DT_U8 && img->numel == 61 * 83 * 3, "fixture img u8 [61, 83, 3]");
	static const struct { const char *name; int Ho, Wo; } sz[] = {
		{"area24", 24, 24}, {"area48", 48, 48}, {"area37x51", 37, 51}};
	for (int i = 0; img && i < 3; i++) {
		size_t n = (size_t)3 * sz[i].Ho * sz[i].Wo;
		float *y = malloc(n * sizeof *y);
		const float *r = get(&s, sz[i].name, (int64_t)n);
		fd_mtcnn_area_norm(img->data, 83, 0, 0, 83, 61, sz[i].Ho, sz[i].Wo, y);
		if (r)
			tap_close_f32(sz[i].name, y, r, n, 0, 0);
		free(y);
	}
	/* a crop inside the image: rows 5..40, columns 7..70 to 24x24 equals the
	 * full-image function on the sub-image */
	{
		const uint8_t *px = img ? img->data : NULL;
		uint8_t *sub = malloc(35 * 63 * 3);
		float y1[3 * 24 * 24], y2[3 * 24 * 24];
		for (int r = 0; px && r < 35; r++)
			memcpy(sub + r * 63 * 3, px + ((size_t)(5 + r) * 83 + 7) * 3, 63 * 3);
		if (px) {
			fd_mtcnn_area_norm(px, 83, 7, 5, 70, 40, 24, 24, y1);
			fd_mtcnn_area_norm(sub, 63, 0, 0, 63, 35, 24, 24, y2);
			ok(memcmp(y1, y2, sizeof y1) == 0, "area crop equals the crop's own resample");
		}
		free(sub);
	}
	fd_mtcnn_free(&m);
	fd_mtcnn_weights_free(&w);
	fd_st_close(&s);
	return tap_done();
}
