/* conv2d: the CPU plan (oneDNN primitives, private to this file), the CPU
 * kernels of the table, the per-layer plan cache, the taped op and the
 * plain-loop double references (see conv2d.h). */
#include "nn/conv2d.h"
#include "core/fd_vec.h"
#include "nn/conv_mm.h"
#include "nn/dconv.h"
#include "nn/dwconv.h"
#include "nn/bfw.h"
#include "nn/fd_backend.h"
#include "nn/fd_dnnl.h"
#include "nn/layout.h"
#include "nn/wino.h"

#include <stdlib.h>

#include <string.h>

/* A CPU plan: oneDNN primitives for one shape and the reorders to and from
 * the caller's plain layouts. */
struct fd_conv2d {
	struct fd_conv2d_shape s;
	int Ho, Wo;
	struct fd_dnnl *d;      /* borrowed */
	int bf16;               /* FD_PREC_BF16: bf16 operands, fp32 accumulation and results */
	int bf16_weights;       /* bf16 and backward-weights multiplies bf16 too (bwd_weights_pd) */
	int bfw;                /* bf16 backward-weights by fd's own kernel (bfw.h): no
				 * oneDNN backward-weights primitive is made */
	int blocked;            /* 1: primitives in oneDNN's chosen layouts even for NHWC (conv_mds) */
	int sum;                /* 1: the forward adds into y (POST_SUM: y stays in the caller's layout) */
	int dy_once;            /* backward-weights reads the bf16 dy backward-data converted (bwd_cpu) */
	int ybf;                /* the forward writes y in bf16 (a ybf_plan sub-plan: forward only) */
	int ybf_tried;          /* ybf_plan tried to make ybp */
	struct fd_conv2d *ybp;  /* this plan's forward writing a bf16 y (ybf_plan), or NULL */
	dnnl_alg_kind_t alg;    /* dnnl_convolution_winograd (conv_init) or _direct, all three passes */
	int own_wino;           /* 1: all three passes by fd's own Winograd (wino.h); the oneDNN
				 * forward primitive (direct) is made but not run, no backward ones */
	int own_dc;             /* 1: the forward by fd's direct kernel (dconv.h); the oneDNN forward
				 * primitive is made but not run, the backward ones are oneDNN's */
	int relu;               /* the forward's post-op is ReLU (FD_CONV_POST_RELU): own_wino, wsum */
	int wsum;               /* 1: oneDNN's Winograd forward (no post-op) into its nChw16c buffer,
				 * then y = act(buffer + y) by wsum_unblock in place of the
				 * reorder (fd_conv2d_infer_add; sum set too) */
	int dc_act;             /* own_dc: the forward's activation (enum fd_conv_post, no sum bit) */
	dnnl_primitive_desc_t fwd_pd;
	dnnl_primitive_t fwd;
	struct fd_dnnl_opnd f_x, f_w, f_y;
	dnnl_memory_t f_b;
	/* the backward, made on first use (inference never needs it): oneDNN's
	 * primitives, or for a pass in mm.passes a matmul (conv_mm.h) */
	int bwd_ready;
	struct fd_conv_mm mm;
	/* stride-1 kxk bf16 backward-data as the forward of dy with the
	 * flipped, transposed weights (flip_init): [0] writes dx, [1] adds */
	struct fd_conv2d *flip[2];
	dnnl_primitive_t bwd_data, bwd_w;
	/* the primitives' scratchpads (slot FD_DNNL_SCRATCH; NULL: none) */
	dnnl_memory_t f_sp, bd_sp, bw_sp;
	struct fd_dnnl_opnd bd_dy, bd_w, bd_dx;
	struct fd_dnnl_opnd bw_x, bw_dy, bw_dw, bw_db;
};

static void conv_free(struct fd_conv2d *p);
static void flip_free(struct fd_conv2d *p);
static int init_backward(struct fd_conv2d *p, struct fd_err *e);

/* A plan slot's post bit next to its enum fd_conv_post: the forward adds
 * into its output (oneDNN's sum post-op, before the activation;
 * fd_conv2d_infer_add). */
#define POST_SUM 0x100
/* conv_init_run's bit for a forward writing y in bf16 (ybf_plan) */
#define POST_YBF16 0x200

#define SHAPE_FMT "conv2d N=%d C=%d H=%d W=%d K=%d k=%dx%d s=%d,%d p=%d,%d d=%d,%d g=%d"
#define SHAPE_ARGS(s)                                                                              \
	(s)->N, (s)->C, (s)->H, (s)->W, (s)->K, (s)->kh, (s)->kw, (s)->sh, (s)->sw, (s)->ph, (s)->pw, \
		(s)->dh, (s)->dw, (s)->groups

int fd_conv2d_out_size(const struct fd_conv2d_shape *s, int *Ho, int *Wo, struct fd_err *e)
{
	if (s->N < 1 || s->C < 1 || s->H < 1 || s->W < 1 || s->K < 1 || s->kh < 1 || s->kw < 1)
		return fd_err_set(e, SHAPE_FMT ": sizes must be positive", SHAPE_ARGS(s));
	if (s->sh < 1 || s->sw < 1 || s->dh < 1 || s->dw < 1 || s->ph < 0 || s->pw < 0)
		return fd_err_set(e, SHAPE_FMT ": stride and dilation must be >= 1, padding >= 0",
				  SHAPE_ARGS(s));
	if (s->groups < 1 || s->C % s->groups || s->K % s->groups)
		return fd_err_set(e, SHAPE_FMT ": groups must divide C and K", SHAPE_ARGS(s));
	int eh = s->H + 2 * s->ph - s->dh * (s->kh - 1) - 1;
	int ew = s->W + 2 * s->pw - s->dw * (s->kw - 1) - 1;
	if (eh < 0 || ew < 0)
		return fd_err_set(e, SHAPE_FMT ": kernel larger than padded input", SHAPE_ARGS(s));
	*Ho = eh / s->sh + 1;
	*Wo = ew / s->sw + 1;
	return 0;
}

/* The operands' memory descriptors: the caller's (any 0: x and y in their
 * layouts, w and b plain) or the primitive's (any 1). A primitive whose input
 * is NHWC works channels last on both sides, with no reorder of x, y, dx, dy
 * (oneDNN has NHWC kernels for every convolution the models have) unless
 * `blocked` asks for oneDNN's own choice of layouts (a shape whose NHWC
 * primitive would be oneDNN's reference code). An NCHW input (a network's
 * stem) keeps oneDNN's own layouts, an NHWC output reordered from them, so
 * the stem rounds as on the NCHW path. */
/* A convolution's four descriptors (fd_md: owned; b NULL without a bias). */
struct conv_md {
	fd_md x, w, b, y;
};

static void conv_md_free(struct conv_md *m)
{
	fd_md_free(m->x);
	fd_md_free(m->w);
	fd_md_free(m->b);
	fd_md_free(m->y);
	memset(m, 0, sizeof *m);
}

/* bf16 is a mask of CONV_BF16_X, _W, _Y: those operands in bf16 (the
 * operands a pass multiplies, conv_bf16 below); y is also bf16 in a plan
 * writing a bf16 y (p->ybf). */
#define CONV_BF16_X 1
#define CONV_BF16_W 2
#define CONV_BF16_Y 4

static int conv_mds(const struct fd_conv2d *p, struct conv_md *m, int any, int bf16, struct fd_err *e)
{
	const struct fd_conv2d_shape *s = &p->s;
	dnnl_dims_t xd = {s->N, s->C, s->H, s->W}, yd = {s->N, s->K, p->Ho, p->Wo}, bd = {s->K};
	int g = s->groups, rc;
	dnnl_format_tag_t xt = s->xl == FD_NHWC ? dnnl_nhwc : dnnl_nchw;
	dnnl_format_tag_t yt = s->yl == FD_NHWC ? dnnl_nhwc : dnnl_nchw;
	dnnl_data_type_t xdt = bf16 & CONV_BF16_X ? dnnl_bf16 : dnnl_f32;
	dnnl_data_type_t wdt = bf16 & CONV_BF16_W ? dnnl_bf16 : dnnl_f32;
	dnnl_data_type_t ydt = p->ybf || (bf16 & CONV_BF16_Y) ? dnnl_bf16 : dnnl_f32;
	memset(m, 0, sizeof *m);
	if (any) {
		dnnl_format_tag_t ut = yt;
		xt = yt = s->xl == FD_NHWC && !p->blocked ? dnnl_nhwc : dnnl_format_tag_any;
		if (p->sum) /* the sum post-op reads the caller's y in place */
			yt = ut;
	}
	rc = fd_md_tag(&m->x, 4, xd, xdt, xt, e) || fd_md_tag(&m->y, 4, yd, ydt, yt, e);
	if (!rc && g > 1) {
		dnnl_dims_t wd = {g, s->K / g, s->C / g, s->kh, s->kw};
		rc = fd_md_tag(&m->w, 5, wd, wdt, any ? dnnl_format_tag_any : dnnl_goihw, e);
	} else if (!rc) {
		dnnl_dims_t wd = {s->K, s->C, s->kh, s->kw};
		rc = fd_md_tag(&m->w, 4, wd, wdt, any ? dnnl_format_tag_any : dnnl_oihw, e);
	}
	if (!rc && s->bias)
		rc = fd_md_tag(&m->b, 1, bd, dnnl_f32, any ? dnnl_format_tag_any : dnnl_x, e);
	if (rc)
		conv_md_free(m);
	return rc ? -1 : 0;
}

/* oneDNN wants the right/bottom padding that makes its output size equal
 * PyTorch's floor formula; it may be smaller than the left one, even negative
 * (input rows the last window never reaches). */
static void conv_geom(const struct fd_conv2d *p, dnnl_dims_t st, dnnl_dims_t dil, dnnl_dims_t pl,
		      dnnl_dims_t pr)
{
	const struct fd_conv2d_shape *s = &p->s;
	st[0] = s->sh, st[1] = s->sw;
	dil[0] = s->dh - 1, dil[1] = s->dw - 1;
	pl[0] = s->ph, pl[1] = s->pw;
	pr[0] = (int64_t)(p->Ho - 1) * s->sh + (int64_t)(s->kh - 1) * s->dh + 1 - s->H - s->ph;
	pr[1] = (int64_t)(p->Wo - 1) * s->sw + (int64_t)(s->kw - 1) * s->dw + 1 - s->W - s->pw;
}

/* The bf16 variant of a primitive's descriptors (doc/nn-kernels.md "bf16"):
 * the two operands a convolution multiplies (forward: x, w; backward-data:
 * w, dy; backward-weights: x, dy) become bf16, so their input reorders round
 * the caller's fp32 to nearest even; what it writes (y, dx, dw, db) and the
 * bias stay fp32, accumulated in fp32 by oneDNN. 0 for fp32 plans. */
static int conv_bf16(const struct fd_conv2d *p, int mask)
{
	return p->bf16 ? mask : 0;
}

static fd_cmd qmd(dnnl_primitive_desc_t pd, dnnl_query_t q, int i)
{
	return fd_pd_md(pd, q, i);
}

/* Whether a primitive descriptor is oneDNN's reference code (plain loops). */
static int is_ref(dnnl_primitive_desc_t pd)
{
	return strncmp(fd_pd_impl(pd), "ref", 3) == 0;
}

/* The forward's attributes: with POST_SUM in post, oneDNN's sum post-op
 * (y = conv + y), then the eltwise post-op of post's enum fd_conv_post
 * (*attr then owned by the caller); neither: none (*attr stays NULL). */
static int conv_post_op(int post, dnnl_primitive_attr_t *attr, struct fd_err *e)
{
	dnnl_post_ops_t po = NULL;
	int rc = 0, act = post & ~POST_SUM;
	if (post == FD_CONV_POST_NONE)
		return 0;
	dnnl_alg_kind_t alg = act == FD_CONV_POST_RELU ? dnnl_eltwise_relu
			      : act == FD_CONV_POST_SILU ? dnnl_eltwise_swish
			      : act == FD_CONV_POST_GELU ? dnnl_eltwise_gelu_erf : dnnl_eltwise_hardswish;
	/* swish: x sigmoid(alpha x); hardswish (oneDNN 3; 2.x has no parameters):
	 * x max(0, min(1, alpha x + beta)) */
	float alpha = act == FD_CONV_POST_SILU ? 1.0f : act == FD_CONV_POST_HARDSWISH ? 1.0f / 6.0f : 0.0f;
	float beta = act == FD_CONV_POST_HARDSWISH ? 0.5f : 0.0f;
	if (fd_dnnl_check(dnnl_primitive_attr_create(attr), e, "conv2d attr") ||
	    fd_dnnl_check(dnnl_post_ops_create(&po), e, "conv2d post-ops") ||
	    ((post & POST_SUM) &&
	     fd_dnnl_check(fd_po_sum(po), e, "conv2d sum post-op")) ||
	    (act != FD_CONV_POST_NONE &&
	     fd_dnnl_check(fd_po_eltwise(po, alg, alpha, beta), e,
			   "conv2d activation post-op")) ||
	    fd_dnnl_check(dnnl_primitive_attr_set_post_ops(*attr, po), e, "conv2d attr post-ops"))
		rc = -1;
	if (po)
		dnnl_post_ops_destroy(po);
	return rc;
}

static int conv_init_run(struct fd_conv2d *p, struct fd_dnnl *d, const struct fd_conv2d_shape *s,
		   int bf16, int post, int blocked, dnnl_alg_kind_t alg, struct fd_err *e)
{
	struct conv_md u = {0}, a = {0};
	dnnl_dims_t st, dil, pl, pr;
	dnnl_primitive_attr_t attr = NULL;
	memset(p, 0, sizeof *p);
	p->s = *s;
	p->d = d;
	p->bf16 = bf16;
	p->blocked = blocked;
	p->sum = (post & POST_SUM) != 0;
	p->ybf = (post & POST_YBF16) != 0;
	post &= ~POST_YBF16;
	p->alg = alg;
	if (fd_conv2d_out_size(s, &p->Ho, &p->Wo, e))
		return -1;
	p->bfw = bf16 && !blocked && alg == dnnl_convolution_direct && fd_bfw_serves(s);
	if (conv_mds(p, &u, 0, 0, e) || conv_mds(p, &a, 1, conv_bf16(p, CONV_BF16_X | CONV_BF16_W), e))
		goto fail_ctx;
	conv_geom(p, st, dil, pl, pr);
	if (conv_post_op(post, &attr, e) || fd_dnnl_attr_scratch(&attr, e) ||
	    fd_dnnl_check(fd_conv_fwd_pd(&p->fwd_pd, d->engine, alg, a.x, a.w, a.b, a.y, st, dil, pl, pr, attr), e,
			  SHAPE_FMT ": forward primitive descriptor", SHAPE_ARGS(s)) ||
	    fd_dnnl_check(dnnl_primitive_create(&p->fwd, p->fwd_pd), e, SHAPE_FMT ": forward primitive",
			  SHAPE_ARGS(s)) ||
	    fd_dnnl_scratch_init(d, p->fwd_pd, &p->f_sp, e))
		goto fail;
	if (fd_dnnl_opnd_init(&p->f_x, d, u.x, qmd(p->fwd_pd, dnnl_query_src_md, 0), FD_DNNL_IN, 0, e) ||
	    fd_dnnl_opnd_init(&p->f_w, d, u.w, qmd(p->fwd_pd, dnnl_query_weights_md, 0), FD_DNNL_IN, 1, e) ||
	    fd_dnnl_opnd_init(&p->f_y, d, u.y, qmd(p->fwd_pd, dnnl_query_dst_md, 0), FD_DNNL_OUT, 2, e))
		goto fail_ctx;
	if (p->sum && !p->f_y.same) {
		fd_err_set(e, "sum post-op: the primitive's output is not in the caller's layout");
		goto fail_ctx;
	}
	if (s->bias &&
	    fd_dnnl_check(dnnl_memory_create(&p->f_b, qmd(p->fwd_pd, dnnl_query_weights_md, 1), d->engine,
					     DNNL_MEMORY_NONE),
			  e, "bias memory"))
		goto fail_ctx;
	if (attr)
		dnnl_primitive_attr_destroy(attr);
	conv_md_free(&u);
	conv_md_free(&a);
	return 0;
fail_ctx:
	fd_err_ctx(e, SHAPE_FMT, SHAPE_ARGS(s));
fail:
	if (attr)
		dnnl_primitive_attr_destroy(attr);
	conv_md_free(&u);
	conv_md_free(&a);
	conv_free(p);
	return -1;
}

/* Whether s may run oneDNN's Winograd F(4x4, 3x3): fp32, ungrouped 3x3,
 * stride 1, no dilation, no sum post-op (that reads the caller's layout,
 * and a Winograd plan works in oneDNN's blocked one), at least
 * FD_CONV2D_WINO_MIN_C channels in and out. */
static int wino_shape(const struct fd_conv2d_shape *s, int bf16, int post)
{
	return !bf16 && !(post & POST_SUM) && s->groups == 1 && s->kh == 3 && s->kw == 3 && s->sh == 1 &&
	       s->sw == 1 && s->dh == 1 && s->dw == 1 && s->C >= FD_CONV2D_WINO_MIN_C &&
	       s->K >= FD_CONV2D_WINO_MIN_C;
}

int fd_conv2d_winograd_available(void)
{
	return DNNL_VERSION_MAJOR < 3 && __builtin_cpu_supports("avx512f");
}

/* Whether a plan for s (c->winograd set) runs fd's own Winograd, asked
 * once oneDNN's was not made (none on this CPU, or oneDNN 2.x on AVX-512
 * refused the shape: padding 2): wino.c takes the shape (channels last,
 * padding <= 2, not bf16) with no activation but ReLU; a sum post-op it
 * does itself (its add mode). */
static int own_wino_shape(const struct fd_conv2d_shape *s, int bf16, int post)
{
	int act = post & ~POST_SUM;
	return wino_shape(s, bf16, 0) && fd_wino_serves(s) &&
	       (act == FD_CONV_POST_NONE || act == FD_CONV_POST_RELU);
}

/* Whether a plan for s with post (POST_SUM set) may be a wsum plan: the
 * Winograd shape, channels last on both sides, K a multiple of the 16
 * channels of oneDNN's nChw16c block, and no activation but ReLU (applied
 * after the sum, as the sum post-op's order). wsum_init also checks the
 * primitive's layout. */
static int wsum_shape(const struct fd_conv2d_shape *s, int bf16, int post)
{
	int act = post & ~POST_SUM;
	return (post & POST_SUM) && wino_shape(s, bf16, 0) && s->xl == FD_NHWC && s->yl == FD_NHWC &&
	       s->K % 16 == 0 && (act == FD_CONV_POST_NONE || act == FD_CONV_POST_RELU);
}

int fd_conv2d_wants_winograd(const struct fd_ctx *c, const struct fd_conv2d_op *op, const struct fd_tensor *w)
{
	struct fd_conv2d_shape s = {.groups = op->groups, .sh = op->sh, .sw = op->sw, .dh = op->dh, .dw = op->dw};
	if (!w || w->ndim != 4)
		return 0;
	s.K = (int)w->shape[0], s.C = (int)w->shape[1] * op->groups, s.kh = (int)w->shape[2], s.kw = (int)w->shape[3];
	/* fd's own Winograd takes the sum itself (own_wino_shape), and oneDNN's
	 * through fd's unblocking add where K is a multiple of 16 (wsum_shape) */
	return c->winograd && c->dev == FD_DEV_CPU && w->dev == FD_DEV_CPU && fd_conv2d_winograd_available() &&
	       wino_shape(&s, c->precision == FD_PREC_BF16, 0) && s.K % 16 != 0;
}

/* A Winograd plan for s in p (0), or -1 when oneDNN has none for it (its
 * forward, backward-data or backward-weights; p then zeroed). */
static int wino_init_run(struct fd_conv2d *p, struct fd_dnnl *d, const struct fd_conv2d_shape *s, int post)
{
	struct fd_err e = {{0}};
	if (conv_init_run(p, d, s, 0, post, 1, dnnl_convolution_winograd, &e))
		return -1;
	if (strstr(fd_pd_impl(p->fwd_pd), "wino") && !init_backward(p, &e))
		return 0;
	conv_free(p);
	return -1;
}

/* A wsum plan for s in p (0: post's ReLU and sum left to wsum_unblock), or
 * -1 when oneDNN has no Winograd for s or its output is not nChw16c (p then
 * zeroed). */
static int wsum_init(struct fd_conv2d *p, struct fd_dnnl *d, const struct fd_conv2d_shape *s, int post)
{
	if (wino_init_run(p, d, s, FD_CONV_POST_NONE))
		return -1;
	fd_md blk = NULL;
	dnnl_dims_t yd = {s->N, s->K, p->Ho, p->Wo};
	int ok = p->f_y.reorder && !fd_md_tag(&blk, 4, yd, dnnl_f32, dnnl_nChw16c, NULL) &&
		 dnnl_memory_desc_equal(blk, qmd(p->fwd_pd, dnnl_query_dst_md, 0));
	fd_md_free(blk);
	if (!ok) {
		conv_free(p);
		return -1;
	}
	p->wsum = p->sum = 1;
	p->relu = (post & ~POST_SUM) == FD_CONV_POST_RELU;
	return 0;
}

/* Whether a plan for s runs its forward by fd's direct kernel (dconv.h):
 * fp32, a shape dconv.c takes (kxk, channels last, or an image layer:
 * NCHW in, NHWC out), no activation but ReLU, SiLU or hardswish (a sum it
 * does itself), on a CPU without AVX-512, where oneDNN 2.6's jit:avx2
 * forward runs at 29-51% of the FMA peak inside the models (doc/nn-kernels.md
 * "fd's direct forward"; on a Zen 4 with AVX-512 oneDNN's brgconv was 15-45%
 * faster on every kxk layer, so AVX-512 CPUs keep oneDNN). A
 * Winograd plan (own_wino) takes precedence. */
static int own_dc_shape(const struct fd_conv2d_shape *s, int bf16, int post)
{
	int act = post & ~POST_SUM;
	return !bf16 &&
	       (act == FD_CONV_POST_NONE || act == FD_CONV_POST_RELU || act == FD_CONV_POST_SILU ||
		act == FD_CONV_POST_HARDSWISH) &&
	       fd_dconv_serves(s) && fd_conv2d_direct_cpu();
}

int fd_conv2d_direct_cpu(void)
{
	return fd_dconv_takes_cpu() && !__builtin_cpu_supports("avx512f");
}

/* oneDNN runs on d's thread count for this call only (fd_dnnl.h). wino:
 * try Winograd first where the shape allows (wino_shape). */
static int conv_init(struct fd_conv2d *p, struct fd_dnnl *d, const struct fd_conv2d_shape *s,
		   int bf16, int post, int wino, struct fd_err *e)
{
	int prev = fd_dnnl_threads_enter(d->threads);
	if (wino && wsum_shape(s, bf16, post) && !wsum_init(p, d, s, post)) {
		fd_dnnl_threads_leave(prev);
		return 0;
	}
	if (wino && wino_shape(s, bf16, post) && !wino_init_run(p, d, s, post)) {
		fd_dnnl_threads_leave(prev);
		return 0;
	}
	int rc = conv_init_run(p, d, s, bf16, post, 0, dnnl_convolution_direct, e);
	if (!rc && (s->xl == FD_NHWC || s->yl == FD_NHWC) && is_ref(p->fwd_pd)) {
		/* no channels-last kernel for this shape (a 1x1 convolution with a
		 * bias on 1x1 maps, an SE block's): oneDNN's layouts and reorders */
		conv_free(p);
		rc = conv_init_run(p, d, s, bf16, post, 1, dnnl_convolution_direct, e);
	}
	if (!rc && wino && own_wino_shape(s, bf16, post)) {
		p->own_wino = 1;
		p->relu = (post & ~POST_SUM) == FD_CONV_POST_RELU;
	}
	if (!rc && !p->own_wino && own_dc_shape(s, bf16, post)) {
		/* its packed weights in the primitives' shared scratchpad slot,
		 * which no other kernel uses while it runs */
		p->own_dc = 1;
		p->dc_act = post & ~POST_SUM;
		rc = fd_dnnl_ws_reserve(d, FD_DNNL_SCRATCH, (size_t)fd_dconv_scratch(s) * sizeof(float), e);
		if (rc)
			conv_free(p);
	}
	fd_dnnl_threads_leave(prev);
	return rc;
}

/* The backward-weights primitive descriptor for x, dw, db, dy (fp32
 * "any" descriptors; the geometry in st..pr). bf16 plans multiply bf16 x
 * and dy only where oneDNN 2.6 does that fast: its AMX kernel on output maps
 * of at least FD_CONV2D_BF16_WEIGHTS_MAP positions (3-6x fp32's at 56x56 and
 * 28x28), or on a CPU without AMX its AVX512-BF16 kernel on such maps
 * (1.6-1.9x fp32's on a Zen 4 EPYC). On smaller maps those kernels and the
 * gemm-based one were all slower than fp32's (up to 11x at 7x7), so there
 * backward-weights runs in fp32 (or as a matmul, conv_mm.h;
 * doc/nn-kernels.md "bf16", "bf16 without AMX"). Sets p->bf16_weights. */
static int bwd_weights_pd(struct fd_conv2d *p, dnnl_primitive_desc_t *pd, const struct conv_md *a,
			  dnnl_dims_t st, dnnl_dims_t dil, dnnl_dims_t pl, dnnl_dims_t pr,
			  const_dnnl_primitive_attr_t attr, struct fd_err *e)
{
	p->bf16_weights = 0;
	if (p->bf16 && (int64_t)p->Ho * p->Wo >= FD_CONV2D_BF16_WEIGHTS_MAP) {
		struct conv_md b = {0};
		if (conv_mds(p, &b, 1, CONV_BF16_X | CONV_BF16_Y, e))
			return -1;
		dnnl_status_t st2 = fd_conv_bwd_weights_pd(pd, p->d->engine, p->alg, b.x, a->w, a->b, b.y, st, dil,
							   pl, pr, p->fwd_pd, attr);
		conv_md_free(&b);
		if (fd_dnnl_check(st2, e, "bf16 backward-weights primitive descriptor"))
			return -1;
		if (fd_pd_bf16_native(*pd)) {
			p->bf16_weights = 1;
			return 0;
		}
		dnnl_primitive_desc_destroy(*pd);
		*pd = NULL;
	}
	/* fp32 (the bf16 forward as hint: oneDNN uses it for layouts only) */
	return fd_dnnl_check(fd_conv_bwd_weights_pd(pd, p->d->engine, p->alg, a->x, a->w, a->b, a->y, st, dil, pl,
						    pr, p->fwd_pd, attr),
			     e, "backward-weights primitive descriptor");
}

/* A bf16 channels-last, ungrouped, undilated, stride-1 kxk plan's
 * backward-data as a forward convolution: dx = conv(dy, w') with w'[c, k,
 * i, j] = w[k, c, kh-1-i, kw-1-j] and padding k-1-p (a full correlation),
 * on oneDNN's AMX forward kernel, faster than its bf16 backward-data
 * (doc/nn-kernels.md "Backward passes as matmuls"). Makes p->flip (the
 * plain forward and the one with the sum post-op) or leaves them NULL (the
 * shape does not qualify, or the forward is not AMX); -1 only on an error
 * other than those. */
/* Smallest output map flip_init serves: on 14x14 and smaller maps the
 * forward plus the per-call weight flip was not faster (doc/nn-kernels.md) */
#define FLIP_MAP 256

static int flip_init(struct fd_conv2d *p, struct fd_err *e)
{
	const struct fd_conv2d_shape *s = &p->s;
	if (!p->bf16 || p->blocked || p->alg != dnnl_convolution_direct || s->xl != FD_NHWC || s->yl != FD_NHWC ||
	    s->groups != 1 || s->dh != 1 || s->dw != 1 || s->sh != 1 || s->sw != 1 || (s->kh == 1 && s->kw == 1) ||
	    s->ph > s->kh - 1 || s->pw > s->kw - 1 || (int64_t)p->Ho * p->Wo < FLIP_MAP)
		return 0;
	struct fd_conv2d_shape f = {s->N, s->K, p->Ho, p->Wo, s->C, s->kh, s->kw, 1, 1, s->kh - 1 - s->ph,
				    s->kw - 1 - s->pw, 1, 1, 1, 0, FD_NHWC, FD_NHWC};
	for (int i = 0; i < 2; i++) {
		if (!(p->flip[i] = calloc(1, sizeof *p->flip[i])))
			goto fail_mem;
		if (conv_init_run(p->flip[i], p->d, &f, 1, i ? POST_SUM : FD_CONV_POST_NONE, 0,
				  dnnl_convolution_direct, e)) {
			free(p->flip[i]);
			p->flip[i] = NULL;
			goto fail;
		}
	}
	if (strstr(fd_pd_impl(p->flip[0]->fwd_pd), "amx") && p->flip[0]->Ho == s->H && p->flip[0]->Wo == s->W)
		return 0;
	flip_free(p);
	return 0;
fail_mem:
	fd_err_set(e, "backward-data as a forward: out of memory");
fail:
	flip_free(p);
	return -1;
}

static int init_backward(struct fd_conv2d *p, struct fd_err *e)
{
	const struct fd_conv2d_shape *s = &p->s;
	struct fd_dnnl *d = p->d;
	struct conv_md u = {0}, a = {0}, ab = {0}; /* user; primitive fp32; backward-data's bf16 w, dy */
	dnnl_dims_t st, dil, pl, pr;
	dnnl_primitive_desc_t dpd = NULL, wpd = NULL;
	dnnl_primitive_attr_t attr = NULL; /* the scratchpad in slot FD_DNNL_SCRATCH */
	int rc = -1;
	if (conv_mds(p, &u, 0, 0, e) || conv_mds(p, &a, 1, 0, e) ||
	    conv_mds(p, &ab, 1, conv_bf16(p, CONV_BF16_W | CONV_BF16_Y), e))
		goto out;
	conv_geom(p, st, dil, pl, pr);
	if ((p->bf16 && (fd_conv_mm_init(&p->mm, d, s, p->Ho, p->Wo, e) || flip_init(p, e))) ||
	    fd_dnnl_attr_scratch(&attr, e))
		goto out;
	if (!(p->mm.passes & FD_CONV_MM_DATA) && !p->flip[0] &&
	    (fd_dnnl_check(fd_conv_bwd_data_pd(&dpd, d->engine, p->alg, ab.x, ab.w, ab.y, st, dil, pl, pr,
					       p->fwd_pd, attr),
			   e, "backward-data primitive descriptor") ||
	     fd_dnnl_check(dnnl_primitive_create(&p->bwd_data, dpd), e, "backward-data primitive") ||
	     fd_dnnl_scratch_init(d, dpd, &p->bd_sp, e)))
		goto out;
	/* dy in slot 1, as backward-weights' dy (see dy_once below) and conv_mm's */
	if (dpd && (fd_dnnl_opnd_init(&p->bd_dy, d, u.y, qmd(dpd, dnnl_query_diff_dst_md, 0), FD_DNNL_IN, 1, e) ||
		    fd_dnnl_opnd_init(&p->bd_w, d, u.w, qmd(dpd, dnnl_query_weights_md, 0), FD_DNNL_IN, 0, e) ||
		    fd_dnnl_opnd_init(&p->bd_dx, d, u.x, qmd(dpd, dnnl_query_diff_src_md, 0), FD_DNNL_OUT_ADD, 2,
				      e)))
		goto out;
	if (p->bfw || (p->mm.passes & FD_CONV_MM_WEIGHTS)) {
		p->bf16_weights = 1;
		p->bwd_ready = 1;
		rc = 0;
		goto out;
	}
	if (bwd_weights_pd(p, &wpd, &a, st, dil, pl, pr, attr, e) ||
	    fd_dnnl_check(dnnl_primitive_create(&p->bwd_w, wpd), e, "backward-weights primitive") ||
	    fd_dnnl_scratch_init(d, wpd, &p->bw_sp, e))
		goto out;
	if (fd_dnnl_opnd_init(&p->bw_x, d, u.x, qmd(wpd, dnnl_query_src_md, 0), FD_DNNL_IN, 0, e) ||
	    fd_dnnl_opnd_init(&p->bw_dy, d, u.y, qmd(wpd, dnnl_query_diff_dst_md, 0), FD_DNNL_IN, 1, e) ||
	    fd_dnnl_opnd_init(&p->bw_dw, d, u.w, qmd(wpd, dnnl_query_diff_weights_md, 0), FD_DNNL_OUT_ADD,
			      2, e) ||
	    (s->bias && fd_dnnl_opnd_init(&p->bw_db, d, u.b, qmd(wpd, dnnl_query_diff_weights_md, 1),
					  FD_DNNL_OUT_ADD, 3, e)))
		goto out;
	/* Both primitives multiply the same bf16 dy (same descriptor, same slot,
	 * and backward-weights' other operands in other slots): when backward-data
	 * has just converted it, backward-weights reads that copy instead of
	 * converting dy again (bwd_cpu). */
	p->dy_once = p->bf16_weights && p->bw_dy.reorder &&
		     (dpd ? p->bd_dy.reorder && p->bd_dy.slot == p->bw_dy.slot &&
				    dnnl_memory_desc_equal(qmd(dpd, dnnl_query_diff_dst_md, 0),
							   qmd(wpd, dnnl_query_diff_dst_md, 0))
			  : (p->mm.passes & FD_CONV_MM_DATA) && p->bw_dy.to_bf16 &&
				    p->bw_dy.slot == 1); /* conv_mm_dy's bf16 NHWC dy */
	p->bwd_ready = 1;
	rc = 0;
out:
	conv_md_free(&u);
	conv_md_free(&a);
	conv_md_free(&ab);
	if (dpd)
		dnnl_primitive_desc_destroy(dpd);
	if (wpd)
		dnnl_primitive_desc_destroy(wpd);
	if (attr)
		dnnl_primitive_attr_destroy(attr);
	if (rc) {
		/* leave no half-made backward: the next call retries from scratch */
		struct fd_dnnl_opnd *o[] = {&p->bd_dy, &p->bd_w, &p->bd_dx, &p->bw_x, &p->bw_dy, &p->bw_dw, &p->bw_db};
		for (size_t i = 0; i < sizeof o / sizeof o[0]; i++)
			fd_dnnl_opnd_free(o[i]);
		if (p->bwd_data)
			dnnl_primitive_destroy(p->bwd_data);
		if (p->bwd_w)
			dnnl_primitive_destroy(p->bwd_w);
		p->bwd_data = p->bwd_w = NULL;
		if (p->bd_sp)
			dnnl_memory_destroy(p->bd_sp);
		if (p->bw_sp)
			dnnl_memory_destroy(p->bw_sp);
		p->bd_sp = p->bw_sp = NULL;
		fd_conv_mm_free(&p->mm);
		flip_free(p);
		p->bf16_weights = 0;
		fd_err_ctx(e, SHAPE_FMT, SHAPE_ARGS(s));
	}
	return rc;
}

static void flip_free(struct fd_conv2d *p)
{
	for (int i = 0; i < 2; i++)
		if (p->flip[i]) {
			conv_free(p->flip[i]);
			free(p->flip[i]);
			p->flip[i] = NULL;
		}
}

static void conv_free(struct fd_conv2d *p)
{
	if (p->fwd)
		dnnl_primitive_destroy(p->fwd);
	if (p->fwd_pd)
		dnnl_primitive_desc_destroy(p->fwd_pd);
	if (p->f_b)
		dnnl_memory_destroy(p->f_b);
	if (p->bwd_data)
		dnnl_primitive_destroy(p->bwd_data);
	if (p->bwd_w)
		dnnl_primitive_destroy(p->bwd_w);
	dnnl_memory_t sp[] = {p->f_sp, p->bd_sp, p->bw_sp};
	for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++)
		if (sp[i])
			dnnl_memory_destroy(sp[i]);
	fd_conv_mm_free(&p->mm);
	flip_free(p);
	if (p->ybp) {
		conv_free(p->ybp);
		free(p->ybp);
	}
	struct fd_dnnl_opnd *o[] = {&p->f_x,  &p->f_w,  &p->f_y,  &p->bd_dy, &p->bd_w,
				    &p->bd_dx, &p->bw_x, &p->bw_dy, &p->bw_dw, &p->bw_db};
	for (size_t i = 0; i < sizeof o / sizeof o[0]; i++)
		fd_dnnl_opnd_free(o[i]);
	memset(p, 0, sizeof *p);
}

/* y (NHWC [N, Ho, Wo, K]) = yb + y, then ReLU when relu (x > 0 ? x : 0,
 * as fd_act_), yb in oneDNN's nChw16c ([N, K/16, Ho, Wo, 16]): a wsum
 * plan's sum post-op and activation fused into the reorder out of the
 * blocked layout, one float addition each (the same bits as the sum
 * post-op or as a separate add, and as a separate ReLU). Rows of positions
 * split over threads. */
FD_VEC_CLONES static void wsum_unblock(int threads, int64_t N, int64_t K, int64_t HW, const float *restrict yb,
				       float *restrict y, int relu)
{
	int64_t KB = K / 16;
	#pragma omp parallel for num_threads(threads) collapse(2) schedule(static)
	for (int64_t n = 0; n < N; n++)
		for (int64_t q = 0; q < HW; q++) {
			float *o = y + (n * HW + q) * K;
			const float *src = yb + n * K * HW + q * 16;
			for (int64_t cb = 0; cb < KB; cb++) {
				const float *sb = src + cb * HW * 16;
				float *ob = o + cb * 16;
				if (relu)
					for (int i = 0; i < 16; i++) {
						float v = sb[i] + ob[i];
						ob[i] = v > 0 ? v : 0.0f;
					}
				else
					for (int i = 0; i < 16; i++)
						ob[i] += sb[i];
			}
		}
}

/* xb: x already in bf16 (FD_T_BF16; x is then NULL), for a plan that
 * reads it (takes_bf16_fwd) */
static int conv_forward_run(struct fd_conv2d *p, const float *x, const uint16_t *xb, const float *w,
			    const float *b, float *y, struct fd_err *e)
{
	dnnl_exec_arg_t a[4];
	int n = 0;
	a[n].arg = DNNL_ARG_SRC;
	if (xb ? fd_dnnl_opnd_in_bf16(&p->f_x, xb, &a[n++].memory, e)
	       : fd_dnnl_opnd_in(&p->f_x, p->d, x, &a[n++].memory, e))
		goto fail;
	a[n].arg = DNNL_ARG_WEIGHTS;
	if (fd_dnnl_opnd_in(&p->f_w, p->d, w, &a[n++].memory, e))
		goto fail;
	if (p->s.bias) {
		if (fd_dnnl_check(dnnl_memory_set_data_handle(p->f_b, (void *)b), e, "bias handle"))
			goto fail;
		a[n].arg = DNNL_ARG_BIAS;
		a[n++].memory = p->f_b;
	}
	a[n].arg = DNNL_ARG_DST;
	if (fd_dnnl_opnd_out(&p->f_y, p->d, y, &a[n++].memory, e) || fd_dnnl_exec_sp(p->d, p->fwd, p->f_sp, n, a, e))
		goto fail;
	if (p->wsum) /* the sum and ReLU in the pass out of the blocked layout */
		wsum_unblock(p->d->threads, p->s.N, p->s.K, (int64_t)p->Ho * p->Wo, p->d->ws[p->f_y.slot], y, p->relu);
	else if (fd_dnnl_opnd_out_done(&p->f_y, p->d, e))
		goto fail;
	return 0;
fail:
	return fd_err_ctx(e, SHAPE_FMT ": forward", SHAPE_ARGS(&p->s));
}

static int conv_fwd_xb(struct fd_conv2d *p, const float *x, const uint16_t *xb, const float *w, const float *b,
		       float *y, struct fd_err *e)
{
	int prev = fd_dnnl_threads_enter(p->d->threads);
	int rc = conv_forward_run(p, x, xb, w, b, y, e);
	fd_dnnl_threads_leave(prev);
	return rc;
}

static int conv_fwd(struct fd_conv2d *p, const float *x, const float *w, const float *b, float *y,
		      struct fd_err *e)
{
	return conv_fwd_xb(p, x, NULL, w, b, y, e);
}

/* dx += conv_bwd_data(dy, w), or dx = ... when over (a fresh gradient:
 * no read of dx, and no reorder at all when dx has the primitive's layout);
 * dyb: dy in bf16 instead (dy NULL) for a plan that reads it (takes_bf16_dy) */
static int conv_backward_data_run(struct fd_conv2d *p, const float *dy, const uint16_t *dyb, const float *w,
				  float *dx, int over, struct fd_err *e)
{
	dnnl_exec_arg_t a[3] = {{DNNL_ARG_DIFF_DST, NULL}, {DNNL_ARG_WEIGHTS, NULL}, {DNNL_ARG_DIFF_SRC, NULL}};
	if (!p->bwd_ready && init_backward(p, e))
		return -1;
	if ((dyb ? fd_dnnl_opnd_in_bf16(&p->bd_dy, dyb, &a[0].memory, e)
		 : fd_dnnl_opnd_in(&p->bd_dy, p->d, dy, &a[0].memory, e)) ||
	    fd_dnnl_opnd_in(&p->bd_w, p->d, w, &a[1].memory, e) ||
	    (over ? fd_dnnl_opnd_over(&p->bd_dx, p->d, dx, &a[2].memory, e)
		  : fd_dnnl_opnd_out(&p->bd_dx, p->d, dx, &a[2].memory, e)) ||
	    fd_dnnl_exec_sp(p->d, p->bwd_data, p->bd_sp, 3, a, e) ||
	    (over ? fd_dnnl_opnd_over_done(&p->bd_dx, p->d, e) : fd_dnnl_opnd_out_done(&p->bd_dx, p->d, e)))
		return fd_err_ctx(e, SHAPE_FMT ": backward-data", SHAPE_ARGS(&p->s));
	return 0;
}

static int conv_bwd_data(struct fd_conv2d *p, const float *dy, const uint16_t *dyb, const float *w, float *dx,
			 int over, struct fd_err *e)
{
	int prev = fd_dnnl_threads_enter(p->d->threads);
	int rc = conv_backward_data_run(p, dy, dyb, w, dx, over, e);
	fd_dnnl_threads_leave(prev);
	return rc;
}

/* dw += ..., db += ...; dy_ready: backward-data has just converted dy into
 * the slot this primitive reads it from (p->dy_once); xb: x in bf16 (x
 * NULL) for a plan that reads it (takes_bf16_bwd); dyb: dy in bf16 (dy
 * NULL) for a plan that reads it (takes_bf16_dy) */
static int conv_backward_weights_run(struct fd_conv2d *p, const float *x, const uint16_t *xb, const float *dy,
				     const uint16_t *dyb, int dy_ready, float *dw, float *db, struct fd_err *e)
{
	dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, NULL}, {DNNL_ARG_DIFF_DST, NULL}, {DNNL_ARG_DIFF_WEIGHTS, NULL},
				{DNNL_ARG_DIFF_BIAS, NULL}};
	int n = p->s.bias ? 4 : 3;
	if (!p->bwd_ready && init_backward(p, e))
		return -1;
	if ((xb ? fd_dnnl_opnd_in_bf16(&p->bw_x, xb, &a[0].memory, e)
		: fd_dnnl_opnd_in(&p->bw_x, p->d, x, &a[0].memory, e)) ||
	    (dyb	 ? fd_dnnl_opnd_in_bf16(&p->bw_dy, dyb, &a[1].memory, e)
	     : dy_ready ? fd_dnnl_opnd_in_ready(&p->bw_dy, p->d, dy, &a[1].memory, e)
			: fd_dnnl_opnd_in(&p->bw_dy, p->d, dy, &a[1].memory, e)) ||
	    fd_dnnl_opnd_out(&p->bw_dw, p->d, dw, &a[2].memory, e) ||
	    (p->s.bias && fd_dnnl_opnd_out(&p->bw_db, p->d, db, &a[3].memory, e)) ||
	    fd_dnnl_exec_sp(p->d, p->bwd_w, p->bw_sp, n, a, e) || fd_dnnl_opnd_out_done(&p->bw_dw, p->d, e) ||
	    (p->s.bias && fd_dnnl_opnd_out_done(&p->bw_db, p->d, e)))
		return fd_err_ctx(e, SHAPE_FMT ": backward-weights", SHAPE_ARGS(&p->s));
	return 0;
}

static int conv_bwd_weights(struct fd_conv2d *p, const float *x, const uint16_t *xb, const float *dy,
			    const uint16_t *dyb, int dy_ready, float *dw, float *db, struct fd_err *e)
{
	int prev = fd_dnnl_threads_enter(p->d->threads);
	int rc = conv_backward_weights_run(p, x, xb, dy, dyb, dy_ready, dw, db, e);
	fd_dnnl_threads_leave(prev);
	return rc;
}

/* ---------- CPU kernels (table entries conv2d_plan, _plan_free, _fwd, _bwd) ---------- */

static int wants(const struct fd_tensor *t)
{
	return t && (t->flags & FD_T_REQUIRES_GRAD);
}

static int ctx_err(struct fd_ctx *c, const struct fd_err *e)
{
	fd_fail(c, "%s", e->msg);
	return -1;
}

/* A CPU plan for s, with the activation post-op post (enum fd_conv_post). */
static int plan_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, int post, void **plan)
{
	struct fd_err e = {{0}};
	if (!c->engine || c->dev != FD_DEV_CPU) {
		fd_fail(c, "conv2d on cpu: the context has no oneDNN engine (fd_ctx_open)");
		return -1;
	}
	struct fd_conv2d *p = calloc(1, sizeof *p);
	if (!p) {
		fd_fail(c, "conv2d plan: out of memory");
		return -1;
	}
	int bf16 = c->precision == FD_PREC_BF16 && !fd_conv2d_bf16_in_fp32(s);
	if (conv_init(p, c->engine, s, bf16, post, c->winograd, &e) < 0) {
		free(p);
		return ctx_err(c, &e);
	}
	*plan = p;
	return 0;
}

int fd_conv2d_plan_cpu(struct fd_ctx *c, const struct fd_conv2d_shape *s, void **plan)
{
	return plan_cpu(c, s, 0, plan);
}

int fd_conv2d_bf16_in_fp32(const struct fd_conv2d_shape *s)
{
	return s->groups > 1 && s->groups == s->C;
}

int fd_conv2d_bf16_cpu(void *plan)
{
	struct fd_conv2d *p = plan;
	return p->bf16;
}

int fd_conv2d_bf16_weights_cpu(void *plan)
{
	struct fd_conv2d *p = plan;
	return p->bf16_weights;
}

static int takes_bf16_fwd(const struct fd_conv2d *p);
static int takes_bf16_bwd(const struct fd_conv2d *p);
static int takes_bf16_dy(const struct fd_conv2d *p, int data, int weights);

int fd_conv2d_takes_bf16_cpu(void *plan)
{
	struct fd_conv2d *p = plan;
	return (takes_bf16_fwd(p) ? 1 : 0) | (p->bwd_ready && takes_bf16_bwd(p) ? 2 : 0) |
	       (p->bwd_ready && takes_bf16_dy(p, 1, 1) ? 4 : 0);
}

int fd_conv2d_bfw_cpu(void *plan)
{
	struct fd_conv2d *p = plan;
	return p->bfw;
}

int fd_conv2d_bf16_mm_cpu(void *plan)
{
	struct fd_conv2d *p = plan;
	return p->mm.passes | (p->flip[0] ? FD_CONV_MM_FLIP : 0);
}

int fd_conv2d_winograd_cpu(void *plan)
{
	struct fd_conv2d *p = plan;
	return p->alg == dnnl_convolution_winograd || p->own_wino;
}

int fd_conv2d_own_winograd_cpu(void *plan)
{
	return ((struct fd_conv2d *)plan)->own_wino;
}

int fd_conv2d_winograd_sum_cpu(void *plan)
{
	return ((struct fd_conv2d *)plan)->wsum;
}

void fd_conv2d_plan_free_cpu(void *plan)
{
	if (!plan)
		return;
	conv_free(plan);
	free(plan);
}

int fd_conv2d_fwd_cpu(struct fd_ctx *c, void *plan, const float *x, const float *w, const float *b,
		      float *y)
{
	struct fd_err e = {{0}};
	struct fd_conv2d *p = plan;
	if (p->own_wino)
		return fd_wino_fwd_cpu(c, &p->s, x, w, b, p->relu, p->sum, y);
	if (p->own_dc)
		return fd_dconv_fwd_cpu(c, &p->s, x, w, b, p->dc_act, p->sum, p->d->ws[FD_DNNL_SCRATCH], y);
	return conv_fwd(plan, x, w, b, y, &e) < 0 ? ctx_err(c, &e) : 0;
}

/* dx (=, or += unless over) conv(dy, w') on p->flip (flip_init); w' in a
 * block of c's gradient pool, given back; dyb: dy in bf16 (dy NULL) */
static int flip_bwd_data(struct fd_ctx *c, struct fd_conv2d *p, const float *dy, const uint16_t *dyb,
			 const float *w, float *dx, int over, struct fd_err *e)
{
	const struct fd_conv2d_shape *s = &p->s;
	int64_t K = s->K, C = s->C, kh = s->kh, kw = s->kw;
	float *wf = fd_grad_scratch(c, K * C * kh * kw);
	if (!wf)
		return -1;
	#pragma omp parallel for num_threads(c->threads) schedule(static)
	for (int64_t ci = 0; ci < C; ci++)
		for (int64_t k = 0; k < K; k++)
			for (int64_t i = 0; i < kh; i++)
				for (int64_t j = 0; j < kw; j++)
					wf[((ci * K + k) * kh + i) * kw + j] =
						w[((k * C + ci) * kh + (kh - 1 - i)) * kw + (kw - 1 - j)];
	int rc = conv_fwd_xb(p->flip[over ? 0 : 1], dy, dyb, wf, NULL, dx, e);
	fd_grad_scratch_put(c, wf);
	return rc;
}

/* a conv_mm failure, with p's shape, into c->err */
static int mm_err(struct fd_ctx *c, const struct fd_conv2d *p, struct fd_err *e)
{
	fd_err_ctx(e, SHAPE_FMT, SHAPE_ARGS(&p->s));
	return ctx_err(c, e);
}

/* Whether plan p's forward reads a bf16 x (FD_T_BF16) as it is: a bf16
 * plan converting x by fd_dnnl_to_bf16 in x's own layout. */
static int takes_bf16_fwd(const struct fd_conv2d *p)
{
	return p->bf16 && p->f_x.to_bf16;
}

/* Whether p's backward-weights (its backward set up) reads a bf16 x as it
 * is: fd's own kernel (bfw.h), as matmuls (always channels-last,
 * fd_dnnl_to_bf16's values), or a bf16 weights primitive converting x by
 * fd_dnnl_to_bf16. */
static int takes_bf16_bwd(const struct fd_conv2d *p)
{
	return p->bf16 && !fd_dwconv_serves(&p->s) &&
	       (p->bfw || (p->mm.passes & FD_CONV_MM_WEIGHTS) || (p->bf16_weights && p->bw_x.to_bf16));
}

/* p's forward writing y in bf16 (c->bf16_y), made on first use: a
 * sub-plan of the same shape whose oneDNN primitive has a bf16 dst in the
 * caller's channels-last layout (no reorder) and is the same kernel as p's
 * (oneDNN rounds its fp32 accumulator to nearest even on the store). NULL
 * where p is no bf16 channels-last direct plan or no such primitive is
 * had: y is then fp32. Only the forward runs on it; p does the backward. */
static struct fd_conv2d *ybf_plan(struct fd_conv2d *p)
{
	if (!p->bf16 || p->blocked || p->sum || p->ybf || p->alg != dnnl_convolution_direct || p->s.yl != FD_NHWC ||
	    p->ybf_tried)
		return p->ybp;
	p->ybf_tried = 1;
	struct fd_err e = {{0}};
	struct fd_conv2d *q = calloc(1, sizeof *q);
	if (!q)
		return NULL;
	int prev = fd_dnnl_threads_enter(p->d->threads);
	int rc = conv_init_run(q, p->d, &p->s, 1, POST_YBF16, 0, dnnl_convolution_direct, &e);
	fd_dnnl_threads_leave(prev);
	if (rc == 0 && q->f_y.same && takes_bf16_fwd(q) == takes_bf16_fwd(p) && *fd_pd_impl(p->fwd_pd) &&
	    strcmp(fd_pd_impl(p->fwd_pd), fd_pd_impl(q->fwd_pd)) == 0) {
		p->ybp = q;
		return q;
	}
	if (rc == 0)
		conv_free(q);
	free(q);
	return NULL;
}

/* Whether p's backward (set up) reads a bf16 dy (FD_T_GRAD_BF16) as it is
 * in the passes wanted (data: backward-data; weights: backward-weights,
 * with the bias sums): each pass a matmul (whose bias sums then add the
 * bf16 values), the flipped forward converting its input by
 * fd_dnnl_to_bf16, or a bf16 primitive converting dy so (its bias sums
 * from those values too). */
static int takes_bf16_dy(const struct fd_conv2d *p, int data, int weights)
{
	if (!p->bf16 || fd_dwconv_serves(&p->s))
		return 0;
	if (data && !(p->mm.passes & FD_CONV_MM_DATA) &&
	    !(p->flip[0] ? takes_bf16_fwd(p->flip[0]) && takes_bf16_fwd(p->flip[1]) : p->bd_dy.to_bf16 != 0))
		return 0;
	return !weights || p->bfw || (p->mm.passes & FD_CONV_MM_WEIGHTS) || (p->bf16_weights && p->bw_dy.to_bf16);
}

/* n bf16 values widened (exactly) into a block of c's gradient pool, which
 * the caller gives back (fd_grad_scratch_put); NULL on failure */
static float *widened(struct fd_ctx *c, const uint16_t *b, size_t n)
{
	float *f = fd_grad_scratch(c, (int64_t)n);
	if (f)
		fd_dnnl_from_bf16(c->threads, b, f, n);
	return f;
}

/* fd_conv2d_bwd_cpu, overwriting dx when over (a fresh gradient); xb: x in
 * bf16 instead (FD_T_BF16, x NULL), widened to floats in a block of the
 * gradient pool where the plan's backward-weights does not read it so;
 * dyb: dy in bf16 instead (FD_T_GRAD_BF16, dy NULL), widened likewise where
 * a pass wanted does not read it so (takes_bf16_dy) */
static int bwd_cpu(struct fd_ctx *c, void *plan, const float *x, const uint16_t *xb, const float *w,
		   const float *dy, const uint16_t *dyb, float *dx, int over, float *dw, float *db)
{
	struct fd_conv2d *p = plan;
	struct fd_err e = {{0}};
	int dy_ready = 0; /* slot 1 holds dy in bf16, NHWC (conv_mm_dy's or bd_dy's to_bf16) */
	if (!p->bwd_ready && !p->own_wino) { /* oneDNN sizes its primitives on the plan's threads (fd_dnnl.h) */
		int prev = fd_dnnl_threads_enter(p->d->threads), rc = init_backward(p, &e);
		fd_dnnl_threads_leave(prev);
		if (rc < 0)
			return ctx_err(c, &e);
	}
	if (dyb && !takes_bf16_dy(p, dx != NULL, dw || db)) {
		float *dyf = widened(c, dyb, (size_t)p->s.N * p->s.K * p->Ho * p->Wo);
		if (!dyf)
			return -1;
		int rc = bwd_cpu(c, plan, x, xb, w, dyf, NULL, dx, over, dw, db);
		fd_grad_scratch_put(c, dyf);
		return rc;
	}
	if (dx && p->own_wino) { /* fp32 only: dyb is NULL here */
		if (fd_wino_bwd_data_cpu(c, &p->s, dy, w, dx, over) < 0)
			return -1;
	} else if (dx && (p->mm.passes & FD_CONV_MM_DATA)) {
		if ((!dyb && fd_conv_mm_dy(&p->mm, p->d, &p->s, dy, &e)) ||
		    fd_conv_mm_bwd_data(&p->mm, p->d, &p->s, dyb, w, dx, over, &e))
			return mm_err(c, p, &e);
		dy_ready = 1;
	} else if (dx && p->flip[0]) {
		if (flip_bwd_data(c, p, dy, dyb, w, dx, over, &e))
			return c->failed ? -1 : ctx_err(c, &e);
	} else if (dx && !over && p->bd_dx.add_f32) {
		/* dx accumulates in the primitive's own layout (channels last): the
		 * primitive writes a block of the gradient pool, added into dx as its
		 * shared slot would be (same bits), so no buffer of dx's size stays
		 * resident for it beside the gradients (doc/nn.md "Memory") */
		float *t = fd_grad_scratch(c, (int64_t)p->bd_dx.add_f32);
		if (!t)
			return -1;
		int rc = conv_bwd_data(p, dy, dyb, w, t, 1, &e);
		if (rc == 0)
			fd_dnnl_add_f32(c->threads, dx, t, p->bd_dx.add_f32);
		fd_grad_scratch_put(c, t);
		if (rc < 0)
			return ctx_err(c, &e);
		dy_ready = p->bd_dy.to_bf16 != 0;
	} else if (dx) {
		if (conv_bwd_data(p, dy, dyb, w, dx, over, &e) < 0)
			return ctx_err(c, &e);
		dy_ready = p->bd_dy.to_bf16 != 0;
	}
	if (!dw && !db)
		return 0;
	if (xb && !takes_bf16_bwd(p)) {
		float *xf = widened(c, xb, (size_t)p->s.N * p->s.C * p->s.H * p->s.W);
		if (!xf)
			return -1;
		int rc = bwd_cpu(c, plan, xf, NULL, w, dy, dyb, NULL, over, dw, db);
		fd_grad_scratch_put(c, xf);
		return rc;
	}
	if (p->own_wino) /* fp32 only: xb and dyb are NULL here */
		return fd_wino_bwd_weights_cpu(c, &p->s, x, dy, dw, db);
	if (p->bfw) /* bf16 image layers: fd's own kernel (bfw.h); no bias, so no db */
		return fd_bfw_bwd_weights_cpu(c, &p->s, x, xb, dy, dyb, dw);
	if (fd_dwconv_serves(&p->s)) /* fd's own kernel where oneDNN's is generic (dwconv.h) */
		return fd_dwconv_bwd_weights_cpu(c, &p->s, x, dy, dw, db);
	if (p->mm.passes & FD_CONV_MM_WEIGHTS) {
		/* the bf16 dy backward-data converted, else converted here */
		if ((!dyb && !dy_ready && fd_conv_mm_dy(&p->mm, p->d, &p->s, dy, &e)) ||
		    fd_conv_mm_bwd_weights(&p->mm, p->d, &p->s, x, xb, dy, dyb, dw, db, &e))
			return mm_err(c, p, &e);
		return 0;
	}
	/* the weights primitive computes both; one not wanted goes to scratch */
	if (!dw) {
		int64_t n = (int64_t)p->s.K * (p->s.C / p->s.groups) * p->s.kh * p->s.kw;
		if (!(dw = fd_ctx_alloc(c, FD_DEV_CPU, n)))
			return -1;
		memset(dw, 0, (size_t)n * sizeof *dw);
	}
	if (p->s.bias && !db) {
		if (!(db = fd_ctx_alloc(c, FD_DEV_CPU, p->s.K)))
			return -1;
		memset(db, 0, (size_t)p->s.K * sizeof *db);
	}
	/* dx's call just converted dy where both multiply the same bf16 dy */
	return conv_bwd_weights(p, x, xb, dy, dyb, dx && p->dy_once, dw, db, &e) < 0 ? ctx_err(c, &e) : 0;
}

int fd_conv2d_bwd_cpu(struct fd_ctx *c, void *plan, const float *x, const float *w, const float *dy,
		      float *dx, float *dw, float *db)
{
	return bwd_cpu(c, plan, x, NULL, w, dy, NULL, dx, 0, dw, db);
}

int fd_conv2d_bwd_fresh_cpu(struct fd_ctx *c, void *plan, const float *x, const float *w, const float *dy,
			    float *dx, float *dw, float *db)
{
	return bwd_cpu(c, plan, x, NULL, w, dy, NULL, dx, 1, dw, db);
}

/* ---------- the plan cache and the taped op ---------- */

void fd_conv2d_op_init(struct fd_conv2d_op *op, int stride, int pad, int dilation, int groups)
{
	memset(op, 0, sizeof *op);
	op->sh = op->sw = stride;
	op->ph = op->pw = pad;
	op->dh = op->dw = dilation;
	op->groups = groups;
}

void fd_conv2d_op_free(struct fd_conv2d_op *op)
{
	for (int i = 0; i < op->nplans; i++) {
		const struct fd_backend *be = fd_backend_of(op->plans[i].dev);
		if (be && be->conv2d_plan_free)
			be->conv2d_plan_free(op->plans[i].plan);
	}
	op->nplans = 0;
}

static int same_shape(const struct fd_conv2d_shape *a, const struct fd_conv2d_shape *b)
{
	return a->N == b->N && a->C == b->C && a->H == b->H && a->W == b->W && a->K == b->K &&
	       a->kh == b->kh && a->kw == b->kw && a->sh == b->sh && a->sw == b->sw && a->ph == b->ph &&
	       a->pw == b->pw && a->dh == b->dh && a->dw == b->dw && a->groups == b->groups &&
	       a->bias == b->bias && a->xl == b->xl && a->yl == b->yl;
}

/* The plan for s on dev (post: a CPU inference plan's fused activation, enum fd_conv_post):
 * found, or made (evicting the least recently used plan not used in this
 * step when all slots are taken). */
static void *get_plan(struct fd_ctx *c, struct fd_conv2d_op *op, const struct fd_conv2d_shape *s,
		      enum fd_dev dev, const struct fd_backend *be, int post)
{
	for (int i = 0; i < op->nplans; i++)
		if (op->plans[i].dev == dev && op->plans[i].prec == c->precision && op->plans[i].post == post &&
		    op->plans[i].wino == c->winograd &&
		    same_shape(&op->plans[i].s, s)) {
			op->plans[i].last_step = c->step;
			return op->plans[i].plan;
		}
	int slot = op->nplans;
	if (slot == FD_CONV2D_PLANS) {
		slot = -1;
		for (int i = 0; i < op->nplans; i++)
			if (op->plans[i].last_step != c->step &&
			    (slot < 0 || op->plans[i].last_step < op->plans[slot].last_step))
				slot = i;
		if (slot < 0)
			return fd_fail(c, "conv2d: more than %d input sizes in one step", FD_CONV2D_PLANS);
		const struct fd_backend *old = fd_backend_of(op->plans[slot].dev);
		if (old && old->conv2d_plan_free)
			old->conv2d_plan_free(op->plans[slot].plan);
		op->plans[slot].plan = NULL;
		/* keep the table dense: move the last entry here, make the new plan at the end */
		op->plans[slot] = op->plans[op->nplans - 1];
		op->nplans--;
		slot = op->nplans;
	}
	void *plan = NULL;
	if ((post ? plan_cpu(c, s, post, &plan) : be->conv2d_plan(c, s, &plan)) < 0)
		return NULL;
	op->plans[slot] = (struct fd_conv2d_plan_slot){*s, dev, c->precision, plan, c->step, post, c->winograd};
	op->nplans++;
	return plan;
}

/* A forward's multiply-adds into c->macs, and c->wino_macs when its plan is
 * Winograd (the direct algorithm's count either way). */
static void count_macs(struct fd_ctx *c, enum fd_dev dev, void *plan, uint64_t macs)
{
	c->macs += macs;
	if (dev == FD_DEV_CPU && fd_conv2d_winograd_cpu(plan))
		c->wino_macs += macs;
}

int fd_conv2d_apply(struct fd_ctx *c, struct fd_conv2d_op *op, enum fd_dev dev,
		    const struct fd_conv2d_shape *s, const float *x, const float *w, const float *b,
		    float *y)
{
	int Ho, Wo;
	struct fd_err e = {{0}};
	if (s->sh != op->sh || s->sw != op->sw || s->ph != op->ph || s->pw != op->pw || s->dh != op->dh ||
	    s->dw != op->dw || s->groups != op->groups)
		return fd_fail(c, "conv2d: shape geometry differs from the layer's"), -1;
	if (fd_conv2d_out_size(s, &Ho, &Wo, &e) < 0)
		return ctx_err(c, &e);
	const struct fd_backend *be = FD_KERNEL(c, dev, conv2d_fwd);
	if (!be || !FD_KERNEL(c, dev, conv2d_plan))
		return -1;
	void *plan = get_plan(c, op, s, dev, be, 0);
	if (!plan || be->conv2d_fwd(c, plan, x, w, s->bias ? b : NULL, y) < 0)
		return -1;
	count_macs(c, dev, plan, (uint64_t)s->N * s->K * Ho * Wo * (uint64_t)(s->C / s->groups) * (uint64_t)(s->kh * s->kw));
	return 0;
}

struct conv_saved {
	void *plan;
};

static int conv_backward(struct fd_ctx *c, struct fd_node *n)
{
	const struct conv_saved *s = n->saved;
	struct fd_tensor *x = n->in[0], *w = n->in[1], *b = n->nin > 2 ? n->in[2] : NULL;
	int xbf = (x->flags & FD_T_BF16) != 0, dybf = (n->out->flags & FD_T_GRAD_BF16) != 0;
	if (x->dev == FD_DEV_CPU) /* a fresh dx (the node's writes bit 0) is overwritten */
		return bwd_cpu(c, s->plan, xbf ? NULL : x->data, xbf ? (const uint16_t *)x->data : NULL, w->data,
			       dybf ? NULL : n->out->grad, dybf ? (const uint16_t *)n->out->grad : NULL,
			       wants(x) ? x->grad : NULL,
			       (x->flags & FD_T_GRAD_FRESH) != 0, wants(w) ? w->grad : NULL,
			       wants(b) ? b->grad : NULL);
	const struct fd_backend *be = FD_KERNEL(c, x->dev, conv2d_bwd);
	if (!be)
		return -1;
	return be->conv2d_bwd(c, s->plan, x->data, w->data, n->out->grad, wants(x) ? x->grad : NULL,
			      wants(w) ? w->grad : NULL, wants(b) ? b->grad : NULL);
}

struct fd_tensor *fd_conv2d(struct fd_ctx *c, struct fd_conv2d_op *op, struct fd_tensor *x,
			    struct fd_tensor *w, struct fd_tensor *b)
{
	if (!x || !w)
		return NULL;
	char b1[64], b2[64], b3[64] = "none";
	if (b)
		fd_tensor_shape_str(b, b3, sizeof b3);
	if ((x->flags & FD_T_BF16) && x->dev != FD_DEV_CPU)
		return fd_fail(c, "conv2d: a bf16 input on %s (CPU only)", fd_dev_name(x->dev));
	if (x->ndim != 4 || w->ndim != 4 || op->groups < 1 || x->shape[1] != w->shape[1] * op->groups ||
	    w->shape[0] % op->groups || (b && (b->numel != w->shape[0] || b->dev != x->dev)) ||
	    w->dev != x->dev || x->numel > INT32_MAX)
		return fd_fail(c, "conv2d: input %s, weight %s, bias %s and groups %d do not match",
			       fd_tensor_shape_str(x, b1, sizeof b1), fd_tensor_shape_str(w, b2, sizeof b2),
			       b3, op->groups);
	struct fd_conv2d_shape s = {
		.N = (int)x->shape[0], .C = (int)x->shape[1], .H = (int)x->shape[2], .W = (int)x->shape[3],
		.K = (int)w->shape[0], .kh = (int)w->shape[2], .kw = (int)w->shape[3],
		.sh = op->sh, .sw = op->sw, .ph = op->ph, .pw = op->pw, .dh = op->dh, .dw = op->dw,
		.groups = op->groups, .bias = b != NULL,
		.xl = fd_is_nhwc(x) ? FD_NHWC : FD_NCHW,
		.yl = c->channels_last && x->dev == FD_DEV_CPU ? FD_NHWC : FD_NCHW,
	};
	int Ho, Wo;
	struct fd_err e = {{0}};
	if (fd_conv2d_out_size(&s, &Ho, &Wo, &e) < 0)
		return fd_fail(c, "conv2d: input %s, weight %s: %s", fd_tensor_shape_str(x, b1, sizeof b1),
			       fd_tensor_shape_str(w, b2, sizeof b2), e.msg);
	const struct fd_backend *be = FD_KERNEL(c, x->dev, conv2d_fwd);
	if (!be || !FD_KERNEL(c, x->dev, conv2d_plan))
		return NULL;
	void *plan = get_plan(c, op, &s, x->dev, be, 0);
	int64_t shape[4] = {s.N, s.K, Ho, Wo};
	/* y in bf16 when asked (c->bf16_y) and the plan has such a forward; a
	 * depthwise plan (fp32 in a bf16 context) writes fp32 y into a block of
	 * the gradient pool, rounded into y after (yr) */
	int ask = plan && c->bf16_y && x->dev == FD_DEV_CPU && c->precision == FD_PREC_BF16;
	struct fd_conv2d *yp = ask ? ybf_plan(plan) : NULL;
	int yr = ask && !yp && fd_conv2d_bf16_in_fp32(&s) && !fd_conv2d_bf16_cpu(plan);
	struct fd_tensor *y = !plan ? NULL
			      : yp || yr ? fd_tensor_new_bf16(c, 4, shape)
					 : fd_tensor_new(c, x->dev, 4, shape);
	if (y)
		y->layout = s.yl;
	if (!y)
		return NULL;
	if (yp || yr)
		c->bf16_ys++;
	float *yf = yr ? fd_grad_scratch(c, y->numel) : (float *)y->data;
	if (!yf)
		return NULL;
	if (x->flags & FD_T_BF16) { /* CPU only (fd_tensor_new_bf16) */
		const uint16_t *xb = (const uint16_t *)x->data;
		const float *xf = NULL;
		if (!takes_bf16_fwd(yp ? yp : plan)) { /* widened (exact) into a block of the
							 * gradient pool for the forward only (the
							 * backward widens again where it must) */
			float *t = widened(c, xb, (size_t)x->numel);
			if (!t)
				return NULL;
			xf = t, xb = NULL;
		}
		int rc = conv_fwd_xb(yp ? yp : plan, xf, xb, w->data, b ? b->data : NULL, yf, &e);
		if (xf)
			fd_grad_scratch_put(c, (float *)xf);
		if (rc < 0)
			return ctx_err(c, &e), NULL;
	} else if (yp) {
		if (conv_fwd(yp, x->data, w->data, b ? b->data : NULL, yf, &e) < 0)
			return ctx_err(c, &e), NULL;
	} else if (be->conv2d_fwd(c, plan, x->data, w->data, b ? b->data : NULL, yf) < 0) {
		return NULL;
	}
	if (yr) {
		fd_dnnl_to_bf16(c->threads, yf, (uint16_t *)y->data, (size_t)y->numel);
		fd_grad_scratch_put(c, yf);
	}
	count_macs(c, x->dev, plan, (uint64_t)y->numel * (uint64_t)(s.C / s.groups) * (uint64_t)(s.kh * s.kw));
	struct fd_tensor *in[3] = {x, w, b};
	int nin = b ? 3 : 2;
	if (fd_needs_grad(c, nin, in)) {
		struct fd_node *n = fd_tape_push(c, "conv2d", conv_backward, nin, in, y, sizeof(struct conv_saved));
		if (!n)
			return NULL;
		((struct conv_saved *)n->saved)->plan = plan;
		if (x->dev == FD_DEV_CPU)
			n->writes = 1u; /* conv_backward overwrites a fresh dx */
	}
	return y;
}

/* The shape of an inference convolution of x by w (b: bias or NULL) with
 * op's geometry, its output in the context's layout; name prefixes the
 * messages. 0, or -1 with c->err. */
static int infer_shape(struct fd_ctx *c, const char *name, const struct fd_conv2d_op *op,
		       const struct fd_tensor *x, const struct fd_tensor *w, const struct fd_tensor *b,
		       struct fd_conv2d_shape *s, int *Ho, int *Wo)
{
	char b1[64], b2[64];
	if (x->flags & FD_T_BF16)
		return fd_fail(c, "%s: a bf16 input (training only)", name), -1;
	if (x->ndim != 4 || w->ndim != 4 || op->groups < 1 || x->shape[1] != w->shape[1] * op->groups ||
	    w->shape[0] % op->groups || (b && b->numel != w->shape[0]) || x->numel > INT32_MAX)
		return fd_fail(c, "%s: input %s, weight %s and groups %d do not match", name,
			       fd_tensor_shape_str(x, b1, sizeof b1), fd_tensor_shape_str(w, b2, sizeof b2),
			       op->groups), -1;
	*s = (struct fd_conv2d_shape){
		.N = (int)x->shape[0], .C = (int)x->shape[1], .H = (int)x->shape[2], .W = (int)x->shape[3],
		.K = (int)w->shape[0], .kh = (int)w->shape[2], .kw = (int)w->shape[3],
		.sh = op->sh, .sw = op->sw, .ph = op->ph, .pw = op->pw, .dh = op->dh, .dw = op->dw,
		.groups = op->groups, .bias = b != NULL,
		.xl = fd_is_nhwc(x) ? FD_NHWC : FD_NCHW, .yl = c->channels_last ? FD_NHWC : FD_NCHW,
	};
	struct fd_err e = {{0}};
	if (fd_conv2d_out_size(s, Ho, Wo, &e) < 0)
		return fd_fail(c, "%s: %s", name, e.msg), -1;
	return 0;
}

struct fd_tensor *fd_conv2d_infer(struct fd_ctx *c, struct fd_conv2d_op *op, struct fd_tensor *x,
				  struct fd_tensor *w, struct fd_tensor *b, enum fd_conv_post post)
{
	if (!x || !w)
		return NULL;
	struct fd_tensor *in[3] = {x, w, b};
	if (c->dev != FD_DEV_CPU || x->dev != FD_DEV_CPU || fd_needs_grad(c, b ? 3 : 2, in))
		return fd_fail(c, "conv2d_infer: CPU inference only (records no gradient)");
	struct fd_conv2d_shape s;
	int Ho, Wo;
	if (infer_shape(c, "conv2d_infer", op, x, w, b, &s, &Ho, &Wo) < 0)
		return NULL;
	const struct fd_backend *be = FD_KERNEL(c, x->dev, conv2d_fwd);
	void *plan = be ? get_plan(c, op, &s, x->dev, be, (int)post) : NULL;
	int64_t shape[4] = {s.N, s.K, Ho, Wo};
	struct fd_tensor *y = plan ? fd_tensor_new(c, x->dev, 4, shape) : NULL;
	if (!y)
		return NULL;
	y->layout = s.yl;
	if (be->conv2d_fwd(c, plan, x->data, w->data, b ? b->data : NULL, y->data) < 0)
		return NULL;
	count_macs(c, x->dev, plan, (uint64_t)y->numel * (uint64_t)(s.C / s.groups) * (uint64_t)(s.kh * s.kw));
	return y;
}

struct fd_tensor *fd_conv2d_infer_add(struct fd_ctx *c, struct fd_conv2d_op *op, struct fd_tensor *x,
				      struct fd_tensor *w, struct fd_tensor *b, enum fd_conv_post post,
				      struct fd_tensor *sum)
{
	if (!x || !w || !sum)
		return NULL;
	struct fd_tensor *in[4] = {x, w, sum, b};
	if (c->dev != FD_DEV_CPU || x->dev != FD_DEV_CPU || sum->dev != FD_DEV_CPU ||
	    fd_needs_grad(c, b ? 4 : 3, in))
		return fd_fail(c, "conv2d_infer_add: CPU inference only (records no gradient)");
	char b3[64];
	struct fd_conv2d_shape s;
	int Ho, Wo;
	if (infer_shape(c, "conv2d_infer_add", op, x, w, b, &s, &Ho, &Wo) < 0)
		return NULL;
	/* layouts compared as memory orders (the same on 1x1 maps: fd_is_nhwc) */
	if (sum->ndim != 4 || sum->shape[0] != s.N || sum->shape[1] != s.K || sum->shape[2] != Ho ||
	    sum->shape[3] != Wo || fd_is_nhwc(sum) != (s.yl == FD_NHWC && Ho * Wo > 1))
		return fd_fail(c, "conv2d_infer_add: sum %s (%s) is not the output [%d, %d, %d, %d] (%s)",
			       fd_tensor_shape_str(sum, b3, sizeof b3), fd_is_nhwc(sum) ? "NHWC" : "NCHW", s.N,
			       s.K, Ho, Wo, s.yl == FD_NHWC ? "NHWC" : "NCHW");
	if (sum->data < x->data + x->numel && x->data < sum->data + sum->numel)
		return fd_fail(c, "conv2d_infer_add: sum overlaps the input");
	const struct fd_backend *be = FD_KERNEL(c, x->dev, conv2d_fwd);
	void *plan = be ? get_plan(c, op, &s, x->dev, be, (int)post | POST_SUM) : NULL;
	if (!plan || be->conv2d_fwd(c, plan, x->data, w->data, b ? b->data : NULL, sum->data) < 0)
		return NULL;
	count_macs(c, x->dev, plan, (uint64_t)sum->numel * (uint64_t)(s.C / s.groups) * (uint64_t)(s.kh * s.kw));
	return sum;
}

/* ---- plain-loop references (double) ---- */

void fd_conv2d_ref_forward(const struct fd_conv2d_shape *s, const double *x, const double *w,
			   const double *b, double *y)
{
	int Ho, Wo, G = s->groups, Cg = s->C / G, Kg = s->K / G;
	fd_conv2d_out_size(s, &Ho, &Wo, NULL);
	for (int n = 0; n < s->N; n++)
		for (int k = 0; k < s->K; k++) {
			int g = k / Kg;
			for (int oh = 0; oh < Ho; oh++)
				for (int ow = 0; ow < Wo; ow++) {
					double acc = s->bias ? b[k] : 0;
					for (int c = 0; c < Cg; c++)
						for (int r = 0; r < s->kh; r++) {
							int ih = oh * s->sh - s->ph + r * s->dh;
							if (ih < 0 || ih >= s->H)
								continue;
							for (int q = 0; q < s->kw; q++) {
								int iw = ow * s->sw - s->pw + q * s->dw;
								if (iw < 0 || iw >= s->W)
									continue;
								acc += x[(((size_t)n * s->C + g * Cg + c) * s->H + ih) * s->W + iw] *
								       w[(((size_t)k * Cg + c) * s->kh + r) * s->kw + q];
							}
						}
					y[(((size_t)n * s->K + k) * Ho + oh) * Wo + ow] = acc;
				}
		}
}

void fd_conv2d_ref_backward_data(const struct fd_conv2d_shape *s, const double *dy, const double *w,
				 double *dx)
{
	int Ho, Wo, G = s->groups, Cg = s->C / G, Kg = s->K / G;
	fd_conv2d_out_size(s, &Ho, &Wo, NULL);
	for (int n = 0; n < s->N; n++)
		for (int k = 0; k < s->K; k++) {
			int g = k / Kg;
			for (int oh = 0; oh < Ho; oh++)
				for (int ow = 0; ow < Wo; ow++) {
					double gy = dy[(((size_t)n * s->K + k) * Ho + oh) * Wo + ow];
					for (int c = 0; c < Cg; c++)
						for (int r = 0; r < s->kh; r++) {
							int ih = oh * s->sh - s->ph + r * s->dh;
							if (ih < 0 || ih >= s->H)
								continue;
							for (int q = 0; q < s->kw; q++) {
								int iw = ow * s->sw - s->pw + q * s->dw;
								if (iw < 0 || iw >= s->W)
									continue;
								dx[(((size_t)n * s->C + g * Cg + c) * s->H + ih) * s->W + iw] +=
									gy * w[(((size_t)k * Cg + c) * s->kh + r) * s->kw + q];
							}
						}
				}
		}
}

void fd_conv2d_ref_backward_weights(const struct fd_conv2d_shape *s, const double *x, const double *dy,
				    double *dw, double *db)
{
	int Ho, Wo, G = s->groups, Cg = s->C / G, Kg = s->K / G;
	fd_conv2d_out_size(s, &Ho, &Wo, NULL);
	for (int n = 0; n < s->N; n++)
		for (int k = 0; k < s->K; k++) {
			int g = k / Kg;
			for (int oh = 0; oh < Ho; oh++)
				for (int ow = 0; ow < Wo; ow++) {
					double gy = dy[(((size_t)n * s->K + k) * Ho + oh) * Wo + ow];
					if (s->bias)
						db[k] += gy;
					for (int c = 0; c < Cg; c++)
						for (int r = 0; r < s->kh; r++) {
							int ih = oh * s->sh - s->ph + r * s->dh;
							if (ih < 0 || ih >= s->H)
								continue;
							for (int q = 0; q < s->kw; q++) {
								int iw = ow * s->sw - s->pw + q * s->dw;
								if (iw < 0 || iw >= s->W)
									continue;
								dw[(((size_t)k * Cg + c) * s->kh + r) * s->kw + q] +=
									gy * x[(((size_t)n * s->C + g * Cg + c) * s->H + ih) * s->W + iw];
							}
						}
				}
		}
}
