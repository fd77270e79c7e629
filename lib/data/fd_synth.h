/* fd_synth: a small synthetic data set shaped like DeepFakeFace. One group is
 * one identity: a real photo (wiki) and three fakes made from it (text2img,
 * inpainting, insight) that share its relative path and stem. Faces are drawn
 * from ellipses (head, hair, eyes, brows, nose, mouth) on a varied background,
 * then passed through a "camera" (white balance, blur, noise) so classes are
 * not trivially separable; planted cues (aspect, cast, texture) are what the
 * shortcut analysis of phase 2 has to find. */
#ifndef FD_SYNTH_H
#define FD_SYNTH_H

#include <stddef.h>
#include <stdint.h>
#include "core/fd_err.h"

enum fd_synth_src { FD_SYNTH_WIKI, FD_SYNTH_TEXT2IMG, FD_SYNTH_INPAINTING, FD_SYNTH_INSIGHT, FD_SYNTH_NSRC };

/* Folder name of a source ("wiki", "text2img", "inpainting", "insight"). */
const char *fd_synth_src_name(int src);

/* Cue strengths, each in [0, 1]; 0 plants nothing.
 * aspect:  reals get a height/width ratio 1 + aspect*U(0.15, 0.5) (portrait, 3 in 4)
 *          or its inverse (landscape); at 0 reals are square like the fakes.
 * cast:    fakes get an additive colour cast (+10, +3, -9)*cast on the 0..255 scale.
 * texture: fakes get a periodic luminance pattern of amplitude 6*texture levels,
 *          a different orientation and period per fake source. */
struct fd_synth_cues {
	double aspect, cast, texture;
};

/* Defaults: aspect=1, cast=0.5, texture=0.5. */
void fd_synth_cues_default(struct fd_synth_cues *c);

/* Parse "none" or a comma list of NAME[=STRENGTH] (NAME aspect|cast|texture,
 * STRENGTH in [0, 1], default 1); cues not listed are 0. Errors name the bad
 * item ("unknown cue 'x'", "cue 'cast': strength '2' is not in [0, 1]"). */
int fd_synth_cues_parse(const char *spec, struct fd_synth_cues *c, struct fd_err *e);

/* Canonical text "aspect=1,cast=0.5,texture=0.5" (%g), for provenance. */
void fd_synth_cues_format(const struct fd_synth_cues *c, char *buf, size_t n);

struct fd_synth_opts {
	uint64_t seed;
	int groups;                 /* 1 .. FD_SYNTH_MAX_GROUPS */
	int fake_size;              /* side of the square fakes (default 256) */
	int real_min, real_max;     /* range of the reals' width (default 160..320) */
	int fake_aspect_real;       /* 1: each fake takes its real's aspect (long side
				     * fake_size, short side fake_size / the real's ratio, at
				     * least 16, same orientation), so no geometry is linked to
				     * the class: the negative control of the 2A geometry test;
				     * 0 (default): square fakes */
	struct fd_synth_cues cues;
};
#define FD_SYNTH_MAX_GROUPS 99999

/* Defaults above, seed 1, 100 groups, square fakes. */
void fd_synth_opts_default(struct fd_synth_opts *o);

/* What one group will be: names, sizes, JPEG qualities and the cue strength
 * applied to each of its four images (index by enum fd_synth_src). A pure
 * function of (opts, g): every group has its own RNG streams, so groups can be
 * made in any order on any number of threads with identical results. */
struct fd_synth_group {
	int g;
	char name[48];              /* "03/nm0012345_rm1234": subfolder/stem */
	int w[FD_SYNTH_NSRC], h[FD_SYNTH_NSRC];
	int quality[FD_SYNTH_NSRC]; /* JPEG quality, same distribution for all sources */
	double aspect[FD_SYNTH_NSRC], cast[FD_SYNTH_NSRC], texture[FD_SYNTH_NSRC];
};

/* Number of subfolders the groups are spread over ("00".."NN"). */
int fd_synth_nfolders(const struct fd_synth_opts *o);

void fd_synth_group_plan(const struct fd_synth_opts *o, int g, struct fd_synth_group *gp);

/* Render the four images of a group. px[s] must hold gp->w[s]*gp->h[s]*3 bytes
 * (RGB, row-major); each is overwritten. The fakes derive from the real:
 * text2img re-renders the same identity (new pose, background); inpainting is
 * the real's square face crop with the face region re-painted; insight is that
 * crop with the inner face swapped for another identity. With
 * fake_aspect_real the fakes are rendered on the real's frame (text2img) or
 * from the whole real (inpainting, insight) at the fake's size. Errors: out of
 * memory. */
int fd_synth_group_render(const struct fd_synth_opts *o, const struct fd_synth_group *gp,
			  uint8_t *const px[FD_SYNTH_NSRC], struct fd_err *e);

#endif
