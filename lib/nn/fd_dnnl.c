/* fd_dnnl: oneDNN engine/stream and the checked operand helpers (see fd_dnnl.h). */
#include "nn/fd_dnnl.h"

#include <cpuid.h>
#include <immintrin.h>
#include <omp.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <oneapi/dnnl/dnnl_debug.h>

int fd_dnnl_check(dnnl_status_t st, struct fd_err *e, const char *what, ...)
{
	char buf[512];
	va_list ap;
	if (st == dnnl_success)
		return 0;
	va_start(ap, what);
	vsnprintf(buf, sizeof buf, what, ap);
	va_end(ap);
	return fd_err_set(e, "onednn: %s: %s", buf, dnnl_status2str(st));
}

/* ---- oneDNN 2.x / 3.x (fd_dnnl.h) ---- */

#if DNNL_VERSION_MAJOR >= 3

int fd_md_tag(fd_md *m, int nd, const dnnl_dims_t dims, dnnl_data_type_t dt, dnnl_format_tag_t tag,
	      struct fd_err *e)
{
	*m = NULL;
	return fd_dnnl_check(dnnl_memory_desc_create_with_tag(m, nd, dims, dt, tag), e, "memory descriptor");
}

int fd_md_strides(fd_md *m, int nd, const dnnl_dims_t dims, dnnl_data_type_t dt, const dnnl_dims_t strides,
		  struct fd_err *e)
{
	*m = NULL;
	return fd_dnnl_check(dnnl_memory_desc_create_with_strides(m, nd, dims, dt, strides), e,
			     "memory descriptor");
}

int fd_md_retype(fd_md *m, fd_cmd md, dnnl_data_type_t dt, struct fd_err *e)
{
	int nd = 0, nblks = 0;
	dnnl_format_kind_t fk = dnnl_format_kind_undef;
	const dnnl_dims_t *dims = NULL, *strides = NULL;
	*m = NULL;
	if (dnnl_memory_desc_query(md, dnnl_query_ndims_s32, &nd) != dnnl_success ||
	    dnnl_memory_desc_query(md, dnnl_query_dims, &dims) != dnnl_success ||
	    dnnl_memory_desc_query(md, dnnl_query_format_kind, &fk) != dnnl_success)
		return fd_err_set(e, "onednn: memory descriptor: cannot query it");
	if (fk == dnnl_format_kind_any)
		return fd_md_tag(m, nd, *dims, dt, dnnl_format_tag_any, e);
	if (fk != dnnl_blocked || dnnl_memory_desc_query(md, dnnl_query_inner_nblks_s32, &nblks) != dnnl_success ||
	    nblks != 0 || dnnl_memory_desc_query(md, dnnl_query_strides, &strides) != dnnl_success)
		return fd_err_set(e, "onednn: memory descriptor: only a plain layout changes its data type");
	return fd_md_strides(m, nd, *dims, dt, *strides, e);
}

void fd_md_free(fd_md m)
{
	if (m)
		dnnl_memory_desc_destroy(m);
}

dnnl_data_type_t fd_md_dtype(fd_cmd md)
{
	dnnl_data_type_t dt = dnnl_data_type_undef;
	dnnl_memory_desc_query(md, dnnl_query_data_type, &dt);
	return dt;
}

int fd_md_blocked(fd_cmd md)
{
	dnnl_format_kind_t fk = dnnl_format_kind_undef;
	return dnnl_memory_desc_query(md, dnnl_query_format_kind, &fk) == dnnl_success && fk == dnnl_blocked;
}

dnnl_status_t fd_conv_fwd_pd(dnnl_primitive_desc_t *pd, dnnl_engine_t eng, dnnl_alg_kind_t alg, fd_cmd x,
			     fd_cmd w, fd_cmd b, fd_cmd y, const dnnl_dims_t st, const dnnl_dims_t dil,
			     const dnnl_dims_t pl, const dnnl_dims_t pr, const_dnnl_primitive_attr_t attr)
{
	return dnnl_convolution_forward_primitive_desc_create(pd, eng, dnnl_forward_training, alg, x, w, b, y,
							      st, dil, pl, pr, attr);
}

dnnl_status_t fd_conv_bwd_data_pd(dnnl_primitive_desc_t *pd, dnnl_engine_t eng, dnnl_alg_kind_t alg, fd_cmd dx,
				  fd_cmd w, fd_cmd dy, const dnnl_dims_t st, const dnnl_dims_t dil,
				  const dnnl_dims_t pl, const dnnl_dims_t pr, const_dnnl_primitive_desc_t hint,
				  const_dnnl_primitive_attr_t attr)
{
	return dnnl_convolution_backward_data_primitive_desc_create(pd, eng, alg, dx, w, dy, st, dil, pl, pr,
								    hint, attr);
}

dnnl_status_t fd_conv_bwd_weights_pd(dnnl_primitive_desc_t *pd, dnnl_engine_t eng, dnnl_alg_kind_t alg,
				     fd_cmd x, fd_cmd dw, fd_cmd db, fd_cmd dy, const dnnl_dims_t st,
				     const dnnl_dims_t dil, const dnnl_dims_t pl, const dnnl_dims_t pr,
				     const_dnnl_primitive_desc_t hint, const_dnnl_primitive_attr_t attr)
{
	return dnnl_convolution_backward_weights_primitive_desc_create(pd, eng, alg, x, dw, db, dy, st, dil, pl,
								       pr, hint, attr);
}

dnnl_status_t fd_matmul_pd(dnnl_primitive_desc_t *pd, dnnl_engine_t eng, fd_cmd a, fd_cmd b, fd_cmd bias,
			   fd_cmd c, const_dnnl_primitive_attr_t attr)
{
	return dnnl_matmul_primitive_desc_create(pd, eng, a, b, bias, c, attr);
}

dnnl_status_t fd_po_sum(dnnl_post_ops_t po)
{
	return dnnl_post_ops_append_sum(po, 1.0f, 0, dnnl_data_type_undef);
}

dnnl_status_t fd_po_eltwise(dnnl_post_ops_t po, dnnl_alg_kind_t alg, float alpha, float beta)
{
	return dnnl_post_ops_append_eltwise(po, alg, alpha, beta);
}

#else /* oneDNN 2.x: descriptors are structs, fd_md a heap copy */

static int md_new(fd_md *m, struct fd_err *e)
{
	if (!(*m = calloc(1, sizeof **m)))
		return fd_err_set(e, "onednn: memory descriptor: out of memory");
	return 0;
}

/* *m (md_new's) filled with status st: kept, or freed on failure */
static int md_done(fd_md *m, dnnl_status_t st, struct fd_err *e)
{
	if (fd_dnnl_check(st, e, "memory descriptor")) {
		free(*m);
		*m = NULL;
		return -1;
	}
	return 0;
}

int fd_md_tag(fd_md *m, int nd, const dnnl_dims_t dims, dnnl_data_type_t dt, dnnl_format_tag_t tag,
	      struct fd_err *e)
{
	return md_new(m, e) ? -1 : md_done(m, dnnl_memory_desc_init_by_tag(*m, nd, dims, dt, tag), e);
}

int fd_md_strides(fd_md *m, int nd, const dnnl_dims_t dims, dnnl_data_type_t dt, const dnnl_dims_t strides,
		  struct fd_err *e)
{
	return md_new(m, e) ? -1 : md_done(m, dnnl_memory_desc_init_by_strides(*m, nd, dims, dt, strides), e);
}

int fd_md_retype(fd_md *m, fd_cmd md, dnnl_data_type_t dt, struct fd_err *e)
{
	if (md->format_kind != dnnl_format_kind_any &&
	    (md->format_kind != dnnl_blocked || md->format_desc.blocking.inner_nblks != 0)) {
		*m = NULL;
		return fd_err_set(e, "onednn: memory descriptor: only a plain layout changes its data type");
	}
	if (md_new(m, e))
		return -1;
	**m = *md;
	(*m)->data_type = dt;
	return 0;
}

void fd_md_free(fd_md m)
{
	free(m);
}

dnnl_data_type_t fd_md_dtype(fd_cmd md)
{
	return md->data_type;
}

int fd_md_blocked(fd_cmd md)
{
	return md->format_kind == dnnl_blocked;
}

dnnl_status_t fd_conv_fwd_pd(dnnl_primitive_desc_t *pd, dnnl_engine_t eng, dnnl_alg_kind_t alg, fd_cmd x,
			     fd_cmd w, fd_cmd b, fd_cmd y, const dnnl_dims_t st, const dnnl_dims_t dil,
			     const dnnl_dims_t pl, const dnnl_dims_t pr, const_dnnl_primitive_attr_t attr)
{
	dnnl_convolution_desc_t cd;
	dnnl_status_t s = dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_training, alg, x, w, b, y,
								     st, dil, pl, pr);
	return s != dnnl_success ? s : dnnl_primitive_desc_create(pd, &cd, attr, eng, NULL);
}

dnnl_status_t fd_conv_bwd_data_pd(dnnl_primitive_desc_t *pd, dnnl_engine_t eng, dnnl_alg_kind_t alg, fd_cmd dx,
				  fd_cmd w, fd_cmd dy, const dnnl_dims_t st, const dnnl_dims_t dil,
				  const dnnl_dims_t pl, const dnnl_dims_t pr, const_dnnl_primitive_desc_t hint,
				  const_dnnl_primitive_attr_t attr)
{
	dnnl_convolution_desc_t cd;
	dnnl_status_t s = dnnl_dilated_convolution_backward_data_desc_init(&cd, alg, dx, w, dy, st, dil, pl, pr);
	return s != dnnl_success ? s : dnnl_primitive_desc_create(pd, &cd, attr, eng, hint);
}

dnnl_status_t fd_conv_bwd_weights_pd(dnnl_primitive_desc_t *pd, dnnl_engine_t eng, dnnl_alg_kind_t alg,
				     fd_cmd x, fd_cmd dw, fd_cmd db, fd_cmd dy, const dnnl_dims_t st,
				     const dnnl_dims_t dil, const dnnl_dims_t pl, const dnnl_dims_t pr,
				     const_dnnl_primitive_desc_t hint, const_dnnl_primitive_attr_t attr)
{
	dnnl_convolution_desc_t cd;
	dnnl_status_t s = dnnl_dilated_convolution_backward_weights_desc_init(&cd, alg, x, dw, db, dy, st, dil,
									      pl, pr);
	return s != dnnl_success ? s : dnnl_primitive_desc_create(pd, &cd, attr, eng, hint);
}

dnnl_status_t fd_matmul_pd(dnnl_primitive_desc_t *pd, dnnl_engine_t eng, fd_cmd a, fd_cmd b, fd_cmd bias,
			   fd_cmd c, const_dnnl_primitive_attr_t attr)
{
	dnnl_matmul_desc_t md;
	dnnl_status_t s = dnnl_matmul_desc_init(&md, a, b, bias, c);
	return s != dnnl_success ? s : dnnl_primitive_desc_create(pd, &md, attr, eng, NULL);
}

dnnl_status_t fd_po_sum(dnnl_post_ops_t po)
{
	return dnnl_post_ops_append_sum(po, 1.0f);
}

dnnl_status_t fd_po_eltwise(dnnl_post_ops_t po, dnnl_alg_kind_t alg, float alpha, float beta)
{
	return dnnl_post_ops_append_eltwise(po, 1.0f, alg, alpha, beta);
}

#endif

fd_cmd fd_pd_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what, int i)
{
	return dnnl_primitive_desc_query_md(pd, what, i);
}

const char *fd_pd_impl(const_dnnl_primitive_desc_t pd)
{
	const char *impl = NULL;
	if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl)
		return "";
	return impl;
}

int fd_pd_bf16_native(const_dnnl_primitive_desc_t pd)
{
	const char *impl = fd_pd_impl(pd);
	if (strstr(impl, "amx"))
		return 2;
	unsigned isa = (unsigned)dnnl_get_effective_cpu_isa(), amx = (unsigned)dnnl_cpu_isa_avx512_core_amx;
	return strstr(impl, "avx512_core_bf16") && (isa & amx) != amx;
}

/* AVX512-BF16 and AVX-512 F, BW, VL in cpuid with AVX-512 state enabled
 * by the OS (no oneDNN involved: fd_dnnl_to_bf16's own instructions) */
static int cpu_bf16(void)
{
	static int known = -1;
	unsigned a, b, c, d;
	if (known >= 0)
		return known;
	int bf16 = 0, os = 0;
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b >> 16 & 1) && (b >> 30 & 1) && (b >> 31 & 1) &&
	    a >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d))
		bf16 = a >> 5 & 1;
	if (__get_cpuid(1, &a, &b, &c, &d) && (c >> 27 & 1)) {
		unsigned lo, hi;
		__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
		os = (lo & 0xe6) == 0xe6;
	}
	known = bf16 && os;
	return known;
}

/* 32 values a step with vcvtne2ps2bf16 (the instruction oneDNN's reorder
 * uses on such CPUs, hence its bits); the tail through a masked load. No
 * OpenMP inside: an outlined parallel body would not have the target. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void to_bf16_avx512(const float *x, uint16_t *y, size_t n)
{
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		__m512 lo = _mm512_loadu_ps(x + i), hi = _mm512_loadu_ps(x + i + 16);
		_mm512_storeu_si512((void *)(y + i), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
	}
	for (; i < n; i += 16) {
		__mmask16 k = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
		__m256bh r = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(k, x + i));
		_mm256_mask_storeu_epi16((void *)(y + i), k, (__m256i)r);
	}
}

int fd_dnnl_to_bf16(int threads, const float *x, uint16_t *y, size_t n)
{
	const size_t chunk = (size_t)1 << 16; /* values; a multiple of 32 */
	size_t nc = (n + chunk - 1) / chunk;
	if (!cpu_bf16())
		return -1;
	if (nc == 1 || threads <= 1) { /* no OpenMP region: cheap on short rows (conv_mm's im2col) */
		to_bf16_avx512(x, y, n);
		return 0;
	}
#pragma omp parallel for num_threads(threads < 1 ? 1 : threads) schedule(static) if (nc > 1)
	for (size_t c = 0; c < nc; c++)
		to_bf16_avx512(x + c * chunk, y + c * chunk, c + 1 < nc ? chunk : n - c * chunk);
	return 0;
}

void fd_dnnl_from_bf16(int threads, const uint16_t *x, float *y, size_t n)
{
	#pragma omp parallel for num_threads(threads < 1 ? 1 : threads) schedule(static) if (n >= ((size_t)1 << 16))
	for (size_t i = 0; i < n; i++) {
		uint32_t u = (uint32_t)x[i] << 16;
		memcpy(y + i, &u, sizeof u);
	}
}

int fd_dnnl_bf16_check(struct fd_err *e)
{
	unsigned a, b, c, d;
	int avx512 = 0, bf16 = 0, os = 0;
	if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
		/* AVX512F (EBX 16), AVX512BW (EBX 30), AVX512VL (EBX 31): oneDNN's avx512_core */
		avx512 = (b >> 16 & 1) && (b >> 30 & 1) && (b >> 31 & 1);
		if (a >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d))
			bf16 = a >> 5 & 1;
	}
	if (__get_cpuid(1, &a, &b, &c, &d) && (c >> 27 & 1)) {
		unsigned lo, hi;
		__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
		os = (lo & 0xe6) == 0xe6; /* XMM, YMM, opmask, ZMM_Hi256, Hi16_ZMM state */
	}
	if (!avx512)
		return fd_err_set(e, "precision bf16: this CPU lacks AVX-512 (avx512f, avx512bw, avx512vl), "
				  "which bf16 needs with AVX512-BF16");
	if (!bf16)
		return fd_err_set(e, "precision bf16: this CPU lacks AVX512-BF16 (cpuid flag avx512_bf16)");
	if (!os)
		return fd_err_set(e, "precision bf16: the operating system does not enable AVX-512 state "
				  "(XCR0), which AVX512-BF16 needs");
	dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
	if (((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) != (unsigned)dnnl_cpu_isa_avx512_core_bf16)
		return fd_err_set(e, "precision bf16: oneDNN's CPU ISA is limited below avx512_core_bf16 "
				  "(ONEDNN_MAX_CPU_ISA or DNNL_MAX_CPU_ISA is set), so AVX512-BF16 is not used");
	return 0;
}

int fd_dnnl_init(struct fd_dnnl *d, int threads, struct fd_err *e)
{
	memset(d, 0, sizeof *d);
	d->threads = threads < 1 ? 1 : threads;
	if (fd_dnnl_check(dnnl_engine_create(&d->engine, dnnl_cpu, 0), e, "cpu engine"))
		return -1;
	if (fd_dnnl_check(dnnl_stream_create(&d->stream, d->engine, dnnl_stream_default_flags), e,
			  "cpu stream")) {
		dnnl_engine_destroy(d->engine);
		memset(d, 0, sizeof *d);
		return -1;
	}
	return 0;
}

int fd_dnnl_threads_enter(int threads)
{
	int previous = omp_get_max_threads();
	omp_set_num_threads(threads);
	return previous;
}

void fd_dnnl_threads_leave(int previous)
{
	omp_set_num_threads(previous);
}

void fd_dnnl_free(struct fd_dnnl *d)
{
	for (int i = 0; i < FD_DNNL_SLOTS; i++)
		free(d->ws[i]);
	if (d->stream)
		dnnl_stream_destroy(d->stream);
	if (d->engine)
		dnnl_engine_destroy(d->engine);
	memset(d, 0, sizeof *d);
}

static int make_reorder(dnnl_primitive_t *r, struct fd_dnnl *d, fd_cmd from, fd_cmd to, int add,
			struct fd_err *e)
{
	dnnl_primitive_attr_t attr = NULL;
	dnnl_post_ops_t po = NULL;
	dnnl_primitive_desc_t pd = NULL;
	int rc = -1;
	if (add) {
		if (fd_dnnl_check(dnnl_primitive_attr_create(&attr), e, "reorder attr") ||
		    fd_dnnl_check(dnnl_post_ops_create(&po), e, "reorder post-ops") ||
		    fd_dnnl_check(fd_po_sum(po), e, "reorder sum post-op") ||
		    fd_dnnl_check(dnnl_primitive_attr_set_post_ops(attr, po), e, "reorder attr post-ops"))
			goto out;
	}
	if (fd_dnnl_check(dnnl_reorder_primitive_desc_create(&pd, from, d->engine, to, d->engine, attr), e,
			  "reorder%s descriptor", add ? " (accumulating)" : ""))
		goto out;
	if (fd_dnnl_check(dnnl_primitive_create(r, pd), e, "reorder primitive"))
		goto out;
	rc = 0;
out:
	if (pd)
		dnnl_primitive_desc_destroy(pd);
	if (po)
		dnnl_post_ops_destroy(po);
	if (attr)
		dnnl_primitive_attr_destroy(attr);
	return rc;
}

int fd_dnnl_ws_reserve(struct fd_dnnl *d, int i, size_t n, struct fd_err *e)
{
	if (i < 0 || i >= FD_DNNL_SLOTS)
		return fd_err_set(e, "onednn: buffer slot %d out of range", i);
	if (n <= d->ws_size[i])
		return 0;
	void *p = aligned_alloc(64, (n + 63) / 64 * 64);
	if (!p)
		return fd_err_sys(e, errno ? errno : ENOMEM, "onednn: cannot allocate %zu bytes", n);
	free(d->ws[i]);
	d->ws[i] = p;
	d->ws_size[i] = n;
	return 0;
}

int fd_dnnl_opnd_init(struct fd_dnnl_opnd *o, struct fd_dnnl *d, fd_cmd user_md, fd_cmd prim_md,
		      enum fd_dnnl_dir dir, int slot, struct fd_err *e)
{
	int same = dnnl_memory_desc_equal(user_md, prim_md);
	memset(o, 0, sizeof *o);
	o->dir = dir;
	o->slot = slot;
	o->same = same;
	if (fd_dnnl_check(dnnl_memory_create(&o->user, user_md, d->engine, DNNL_MEMORY_NONE), e,
			  "user memory"))
		return -1;
	if (same && dir != FD_DNNL_OUT_ADD) {
		o->prim = o->user;
		return 0;
	}
	if (fd_dnnl_ws_reserve(d, slot, dnnl_memory_desc_get_size(prim_md), e) ||
	    fd_dnnl_check(dnnl_memory_create(&o->prim, prim_md, d->engine, DNNL_MEMORY_NONE), e,
			  "primitive memory"))
		goto fail;
	if (dir == FD_DNNL_IN ? make_reorder(&o->reorder, d, user_md, prim_md, 0, e)
			      : make_reorder(&o->reorder, d, prim_md, user_md, dir == FD_DNNL_OUT_ADD, e))
		goto fail;
	int plain_f32 = fd_md_dtype(user_md) == dnnl_f32 && fd_md_blocked(user_md);
	if (dir == FD_DNNL_OUT_ADD && same && plain_f32)
		o->add_f32 = dnnl_memory_desc_get_size(user_md) / sizeof(float);
	if (dir == FD_DNNL_IN && plain_f32 && fd_md_dtype(prim_md) == dnnl_bf16 && cpu_bf16()) {
		fd_md as_bf16 = NULL;
		/* the user's layout in bf16 (a user layout fd_md_retype cannot
		 * retype is not plain: the reorder runs) */
		if (!fd_md_retype(&as_bf16, user_md, dnnl_bf16, NULL) && dnnl_memory_desc_equal(as_bf16, prim_md)) {
			size_t n = dnnl_memory_desc_get_size(user_md) / sizeof(float);
			if (n * sizeof(uint16_t) == dnnl_memory_desc_get_size(prim_md))
				o->to_bf16 = n; /* dense: same size, half the bytes */
		}
		fd_md_free(as_bf16);
	}
	if (dir == FD_DNNL_OUT_ADD && !same && make_reorder(&o->reorder_over, d, prim_md, user_md, 0, e))
		goto fail;
	return 0;
fail:
	fd_dnnl_opnd_free(o);
	return -1;
}

int fd_dnnl_exec(struct fd_dnnl *d, dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args,
		 struct fd_err *e)
{
	if (fd_dnnl_check(dnnl_primitive_execute(prim, d->stream, nargs, args), e, "execute"))
		return -1;
	return fd_dnnl_check(dnnl_stream_wait(d->stream), e, "stream wait");
}

int fd_dnnl_exec_sp(struct fd_dnnl *d, dnnl_primitive_t prim, dnnl_memory_t sp, int nargs,
		    const dnnl_exec_arg_t *args, struct fd_err *e)
{
	dnnl_exec_arg_t a[8];
	if (!sp)
		return fd_dnnl_exec(d, prim, nargs, args, e);
	if (nargs > 7)
		return fd_err_set(e, "execute: %d arguments, at most 7 with a scratchpad", nargs);
	memcpy(a, args, (size_t)nargs * sizeof *a);
	a[nargs].arg = DNNL_ARG_SCRATCHPAD;
	a[nargs].memory = sp;
	if (fd_dnnl_check(dnnl_memory_set_data_handle(sp, d->ws[FD_DNNL_SCRATCH]), e, "scratchpad handle"))
		return -1;
	return fd_dnnl_exec(d, prim, nargs + 1, a, e);
}

int fd_dnnl_attr_scratch(dnnl_primitive_attr_t *attr, struct fd_err *e)
{
	if (!*attr && fd_dnnl_check(dnnl_primitive_attr_create(attr), e, "primitive attr"))
		return -1;
	return fd_dnnl_check(dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user), e,
			     "scratchpad mode");
}

int fd_dnnl_scratch_init(struct fd_dnnl *d, const_dnnl_primitive_desc_t pd, dnnl_memory_t *m, struct fd_err *e)
{
	fd_cmd md = fd_pd_md(pd, dnnl_query_scratchpad_md, 0);
	size_t n = md ? dnnl_memory_desc_get_size(md) : 0;
	*m = NULL;
	if (!n)
		return 0;
	return fd_dnnl_ws_reserve(d, FD_DNNL_SCRATCH, n, e) ||
			       fd_dnnl_check(dnnl_memory_create(m, md, d->engine, DNNL_MEMORY_NONE), e,
					     "scratchpad memory")
		       ? -1
		       : 0;
}

int fd_dnnl_opnd_in_bf16(struct fd_dnnl_opnd *o, const uint16_t *xb, dnnl_memory_t *m, struct fd_err *e)
{
	if (!o->to_bf16)
		return fd_err_set(e, "bf16 input: the primitive does not read bf16 in the input's layout");
	/* oneDNN takes a non-const handle; inputs are only read. */
	if (fd_dnnl_check(dnnl_memory_set_data_handle(o->prim, (void *)xb), e, "set bf16 input handle"))
		return -1;
	*m = o->prim;
	return 0;
}

int fd_dnnl_opnd_in(struct fd_dnnl_opnd *o, struct fd_dnnl *d, const void *ptr, dnnl_memory_t *m,
		    struct fd_err *e)
{
	/* oneDNN takes a non-const handle; inputs are only read. */
	if (fd_dnnl_check(dnnl_memory_set_data_handle(o->user, (void *)ptr), e, "set input handle"))
		return -1;
	if (o->reorder) {
		if (fd_dnnl_check(dnnl_memory_set_data_handle(o->prim, d->ws[o->slot]), e, "set buffer handle"))
			return -1;
		if (o->to_bf16 && fd_dnnl_to_bf16(d->threads, ptr, d->ws[o->slot], o->to_bf16) == 0) {
			*m = o->prim;
			return 0;
		}
		dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, o->user}, {DNNL_ARG_TO, o->prim}};
		if (fd_dnnl_exec(d, o->reorder, 2, a, e))
			return fd_err_ctx(e, "input reorder");
	}
	*m = o->prim;
	return 0;
}

int fd_dnnl_opnd_in_ready(struct fd_dnnl_opnd *o, struct fd_dnnl *d, const void *ptr, dnnl_memory_t *m,
			  struct fd_err *e)
{
	if (fd_dnnl_check(dnnl_memory_set_data_handle(o->user, (void *)ptr), e, "set input handle") ||
	    (o->reorder &&
	     fd_dnnl_check(dnnl_memory_set_data_handle(o->prim, d->ws[o->slot]), e, "set buffer handle")))
		return -1;
	*m = o->prim;
	return 0;
}

int fd_dnnl_opnd_out(struct fd_dnnl_opnd *o, struct fd_dnnl *d, void *ptr, dnnl_memory_t *m,
		     struct fd_err *e)
{
	if (fd_dnnl_check(dnnl_memory_set_data_handle(o->user, ptr), e, "set output handle"))
		return -1;
	if (o->reorder &&
	    fd_dnnl_check(dnnl_memory_set_data_handle(o->prim, d->ws[o->slot]), e, "set buffer handle"))
		return -1;
	*m = o->prim;
	return 0;
}

/* y[i] += x[i]: one float addition each, as the summing reorder's dst = src
 * + dst (same bits) */
void fd_dnnl_add_f32(int threads, float *restrict y, const float *restrict x, size_t n)
{
#pragma omp parallel for num_threads(threads) schedule(static) if (n >= 65536)
	for (size_t i = 0; i < n; i++)
		y[i] += x[i];
}

int fd_dnnl_opnd_out_done(struct fd_dnnl_opnd *o, struct fd_dnnl *d, struct fd_err *e)
{
	if (o->reorder && o->add_f32) {
		void *y = NULL;
		if (fd_dnnl_check(dnnl_memory_get_data_handle(o->user, &y), e, "get output handle"))
			return -1;
		fd_dnnl_add_f32(d->threads, y, d->ws[o->slot], o->add_f32);
		return 0;
	}
	if (o->reorder) {
		dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, o->prim}, {DNNL_ARG_TO, o->user}};
		if (fd_dnnl_exec(d, o->reorder, 2, a, e))
			return fd_err_ctx(e, "output reorder");
	}
	return 0;
}

int fd_dnnl_opnd_over(struct fd_dnnl_opnd *o, struct fd_dnnl *d, void *ptr, dnnl_memory_t *m,
		      struct fd_err *e)
{
	if (o->dir != FD_DNNL_OUT_ADD || !o->reorder)
		return fd_dnnl_opnd_out(o, d, ptr, m, e);
	if (fd_dnnl_check(dnnl_memory_set_data_handle(o->user, ptr), e, "set output handle") ||
	    fd_dnnl_check(dnnl_memory_set_data_handle(o->prim, o->same ? ptr : d->ws[o->slot]), e,
			  "set buffer handle"))
		return -1;
	*m = o->prim;
	return 0;
}

int fd_dnnl_opnd_over_done(struct fd_dnnl_opnd *o, struct fd_dnnl *d, struct fd_err *e)
{
	if (o->dir != FD_DNNL_OUT_ADD || !o->reorder)
		return fd_dnnl_opnd_out_done(o, d, e);
	if (o->reorder_over) {
		dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, o->prim}, {DNNL_ARG_TO, o->user}};
		if (fd_dnnl_exec(d, o->reorder_over, 2, a, e))
			return fd_err_ctx(e, "output reorder");
	}
	return 0;
}

void fd_dnnl_opnd_free(struct fd_dnnl_opnd *o)
{
	if (o->reorder)
		dnnl_primitive_destroy(o->reorder);
	if (o->reorder_over)
		dnnl_primitive_destroy(o->reorder_over);
	if (o->prim && o->prim != o->user)
		dnnl_memory_destroy(o->prim);
	if (o->user)
		dnnl_memory_destroy(o->user);
	memset(o, 0, sizeof *o);
}

void fd_dnnl_cache_flush(void)
{
	int cap = 0;
	if (dnnl_get_primitive_cache_capacity(&cap) == dnnl_success && cap > 0) {
		dnnl_set_primitive_cache_capacity(0);
		dnnl_set_primitive_cache_capacity(cap);
	}
}

const char *fd_dnnl_describe(char *buf, size_t n)
{
	const dnnl_version_t *v = dnnl_version();
	snprintf(buf, n, "%d.%d.%d", v->major, v->minor, v->patch);
	switch (dnnl_get_effective_cpu_isa()) {
	case dnnl_cpu_isa_sse41: return "sse41";
	case dnnl_cpu_isa_avx: return "avx";
	case dnnl_cpu_isa_avx2: return "avx2";
	case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
	case dnnl_cpu_isa_avx512_core: return "avx512_core";
	case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
	case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
	case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
	default: return "other";
	}
}
