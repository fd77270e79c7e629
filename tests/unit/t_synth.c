/* t_synth: fd-synth's plan and rendering: cue parsing, geometry of reals and
 * fakes, unique group names, determinism independent of rendering order, and
 * that each planted cue actually changes the fakes (and only them). */
#include "data/fd_synth.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

struct grp {
	struct fd_synth_group gp;
	uint8_t *px[FD_SYNTH_NSRC];
};

static int render(const struct fd_synth_opts *o, int g, struct grp *r)
{
	struct fd_err e;
	fd_synth_group_plan(o, g, &r->gp);
	for (int s = 0; s < FD_SYNTH_NSRC; s++)
		r->px[s] = malloc((size_t)r->gp.w[s] * r->gp.h[s] * 3);
	return fd_synth_group_render(o, &r->gp, r->px, &e);
}

static void release(struct grp *r)
{
	for (int s = 0; s < FD_SYNTH_NSRC; s++)
		free(r->px[s]);
}

static int same(const struct grp *a, const struct grp *b, int s)
{
	return a->gp.w[s] == b->gp.w[s] && a->gp.h[s] == b->gp.h[s] &&
	       memcmp(a->px[s], b->px[s], (size_t)a->gp.w[s] * a->gp.h[s] * 3) == 0;
}

/* mean absolute difference of two same-size images */
static double mad(const uint8_t *a, const uint8_t *b, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += abs((int)a[i] - (int)b[i]);
	return s / (double)n;
}

int main(void)
{
	struct fd_err e;
	struct fd_synth_cues c;

	ok(fd_synth_cues_parse("aspect,cast=0.5,texture=1", &c, &e) == 0 && c.aspect == 1 && c.cast == 0.5 &&
		   c.texture == 1, "parse 'aspect,cast=0.5,texture=1'");
	ok(fd_synth_cues_parse("cast=0.25", &c, &e) == 0 && c.aspect == 0 && c.cast == 0.25 && c.texture == 0,
	   "unlisted cues are off");
	ok(fd_synth_cues_parse("none", &c, &e) == 0 && c.aspect == 0 && c.cast == 0 && c.texture == 0, "none");
	ok(fd_synth_cues_parse("glow", &c, &e) < 0 && strstr(e.msg, "unknown cue 'glow'"), "unknown cue: %s", e.msg);
	ok(fd_synth_cues_parse("cast=2", &c, &e) < 0 && strstr(e.msg, "not in [0, 1]"), "out of range: %s", e.msg);
	ok(fd_synth_cues_parse("cast=x", &c, &e) < 0, "not a number");
	ok(fd_synth_cues_parse("cast,cast", &c, &e) < 0 && strstr(e.msg, "twice"), "duplicate: %s", e.msg);
	ok(fd_synth_cues_parse("aspect,", &c, &e) < 0 && strstr(e.msg, "empty item"), "empty item: %s", e.msg);
	ok(fd_synth_cues_parse("", &c, &e) < 0, "empty list");
	char buf[96];
	fd_synth_cues_default(&c);
	fd_synth_cues_format(&c, buf, sizeof buf);
	ok(strcmp(buf, "aspect=1,cast=0.5,texture=0.5") == 0, "default cues format: %s", buf);

	struct fd_synth_opts o;
	fd_synth_opts_default(&o);
	o.groups = 200;
	int rect = 0, dup = 0, range = 1, square = 1;
	static char names[200][48];
	for (int g = 0; g < o.groups; g++) {
		struct fd_synth_group gp;
		fd_synth_group_plan(&o, g, &gp);
		strcpy(names[g], gp.name);
		for (int k = 0; k < g; k++)
			dup += strcmp(names[k], gp.name) == 0;
		rect += gp.w[0] != gp.h[0];
		range &= gp.w[0] >= 160 && gp.w[0] <= 320 && gp.quality[0] >= 75 && gp.quality[0] <= 95;
		for (int s = 1; s < FD_SYNTH_NSRC; s++)
			square &= gp.w[s] == 256 && gp.h[s] == 256 && gp.cast[s] == 0.5 && gp.texture[s] == 0.5;
		square &= gp.cast[0] == 0 && gp.texture[0] == 0 && gp.aspect[0] == 1;
	}
	ok(rect == o.groups, "aspect=1: every real is rectangular (%d of %d)", rect, o.groups);
	ok(range, "real widths in [160, 320], qualities in [75, 95]");
	ok(square, "fakes are 256x256; cues applied to fakes only (cast, texture) and reals (aspect)");
	ok(dup == 0, "group names unique");
	ok(strlen(names[0]) > 3 && names[0][2] == '/', "name has a subfolder: %s", names[0]);

	o.cues.aspect = 0;
	struct fd_synth_group gp;
	int sq = 1;
	for (int g = 0; g < 50; g++) {
		fd_synth_group_plan(&o, g, &gp);
		sq &= gp.w[0] == gp.h[0];
	}
	ok(sq, "aspect=0: reals are square");

	/* determinism and order independence: group 7 alone equals group 7 after others */
	fd_synth_opts_default(&o);
	struct grp a, b, x;
	ok(render(&o, 7, &a) == 0, "render group 7");
	ok(render(&o, 3, &x) == 0 && render(&o, 7, &b) == 0, "render group 3 then 7");
	int eq = 1;
	for (int s = 0; s < FD_SYNTH_NSRC; s++)
		eq &= same(&a, &b, s);
	ok(eq, "same (seed, group) gives identical pixels in any order");
	ok(!same(&a, &x, 0), "different groups differ");
	release(&b);
	o.seed = 2;
	ok(render(&o, 7, &b) == 0 && !same(&a, &b, 0), "another seed gives another real");
	release(&b);

	/* cues: switching texture off changes the fakes, never the real */
	o.seed = 1;
	o.cues.texture = 0;
	ok(render(&o, 7, &b) == 0, "render without texture");
	ok(same(&a, &b, FD_SYNTH_WIKI), "texture leaves the real alone");
	size_t n = 256 * 256 * 3;
	double d = mad(a.px[FD_SYNTH_INSIGHT], b.px[FD_SYNTH_INSIGHT], n);
	ok(d > 1.0 && d < 5.0, "texture=0.5 changes insight by a moderate amount (mean |diff| %.2f)", d);
	release(&b);
	o.cues.texture = 0.5;
	o.cues.cast = 0;
	ok(render(&o, 7, &b) == 0, "render without cast");
	double dr = 0;
	for (size_t i = 0; i < n; i += 3)
		dr += (double)a.px[FD_SYNTH_TEXT2IMG][i] - (double)b.px[FD_SYNTH_TEXT2IMG][i];
	dr /= (double)(n / 3);
	ok(dr > 3 && dr < 6, "cast=0.5 shifts red of text2img by about +5 (%.2f)", dr);
	ok(same(&a, &b, FD_SYNTH_WIKI), "cast leaves the real alone");
	release(&b);

	/* fakes derive from the real: inpainting and insight share the real's crop
	 * outside the face, text2img is composed anew */
	release(&a);
	fd_synth_cues_parse("none", &o.cues, &e);
	ok(render(&o, 7, &a) == 0, "render without cues");
	double d_ii = mad(a.px[FD_SYNTH_INPAINTING], a.px[FD_SYNTH_INSIGHT], n);
	double d_it = mad(a.px[FD_SYNTH_INPAINTING], a.px[FD_SYNTH_TEXT2IMG], n);
	ok(d_ii * 3 < d_it, "inpainting is closer to insight (%.1f) than to text2img (%.1f)", d_ii, d_it);
	release(&a);
	release(&x);
	return tap_done();
}
