/* fd_dnnl: the oneDNN CPU engine and stream every oneDNN-backed kernel runs on,
 * plus the checked helpers the kernels share (status -> fd_err, operands that
 * move between the caller's plain layout and a primitive's preferred one). */
#ifndef FD_DNNL_H
#define FD_DNNL_H

#include <oneapi/dnnl/dnnl.h>
#include <stddef.h>
#include <stdint.h>
#include "core/fd_err.h"

/* oneDNN 2.x and 3.x (the Makefile's ONEDNN; doc/onednn.md "oneDNN 3 on
 * AVX2 CPUs"). 3.0 made memory descriptors opaque handles and folded the
 * operation descriptors into the primitive descriptors' constructors; fd's
 * kernels are written once against the few calls below, which map to
 * either version.
 *
 * fd_md is a memory descriptor fd made and owns (fd_md_free; NULL is
 * none); fd_cmd one it reads (fd_md, or a primitive descriptor's from
 * fd_pd_md, owned by that). Both pass where oneDNN takes a memory
 * descriptor (dnnl_memory_create, dnnl_memory_desc_equal,
 * dnnl_memory_desc_get_size, dnnl_reorder_primitive_desc_create). */
#if DNNL_VERSION_MAJOR >= 3
typedef dnnl_memory_desc_t fd_md;
typedef const_dnnl_memory_desc_t fd_cmd;
#else
typedef dnnl_memory_desc_t *fd_md;
typedef const dnnl_memory_desc_t *fd_cmd;
#endif
/* *m: a descriptor of nd dims, data type dt, in layout tag (dnnl_format_tag_any:
 * the primitive's choice) or with the given strides. 0, or -1 with e. */
int fd_md_tag(fd_md *m, int nd, const dnnl_dims_t dims, dnnl_data_type_t dt, dnnl_format_tag_t tag,
	      struct fd_err *e);
int fd_md_strides(fd_md *m, int nd, const dnnl_dims_t dims, dnnl_data_type_t dt, const dnnl_dims_t strides,
		  struct fd_err *e);
/* *m: md with data type dt, the same dims and layout; md is "any" or a
 * plain strided layout (no inner blocks). 0, or -1 with e. */
int fd_md_retype(fd_md *m, fd_cmd md, dnnl_data_type_t dt, struct fd_err *e);
void fd_md_free(fd_md m);
dnnl_data_type_t fd_md_dtype(fd_cmd md);
/* whether md is a concrete layout (format kind blocked: plain strides,
 * maybe with inner blocks), not "any" */
int fd_md_blocked(fd_cmd md);
/* pd's descriptor of what (dnnl_query_src_md ...), index i; NULL when none */
fd_cmd fd_pd_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what, int i);
/* oneDNN's name for pd's implementation ("brgconv:avx2", "jit:avx2",
 * "ref:any"), or "" */
const char *fd_pd_impl(const_dnnl_primitive_desc_t pd);
/* How pd multiplies bf16: 2 with AMX (its impl names "amx"), 1 with
 * AVX512-BF16's dot products on a CPU without AMX (impl
 * "avx512_core_bf16" and oneDNN's ISA below avx512_core_amx: a Zen 4
 * EPYC), 0 otherwise (fp32, emulation, a reference kernel). On an AMX CPU
 * a pd that fell back to AVX512-BF16 is 0: there fd's rules compare with
 * AMX (doc/nn-kernels.md "bf16 without AMX"). */
int fd_pd_bf16_native(const_dnnl_primitive_desc_t pd);

/* Primitive descriptors (return oneDNN's status; dil in oneDNN's
 * convention, 0 = none; attr and hint may be NULL; b NULL = no bias). */
dnnl_status_t fd_conv_fwd_pd(dnnl_primitive_desc_t *pd, dnnl_engine_t eng, dnnl_alg_kind_t alg, fd_cmd x,
			     fd_cmd w, fd_cmd b, fd_cmd y, const dnnl_dims_t st, const dnnl_dims_t dil,
			     const dnnl_dims_t pl, const dnnl_dims_t pr, const_dnnl_primitive_attr_t attr);
dnnl_status_t fd_conv_bwd_data_pd(dnnl_primitive_desc_t *pd, dnnl_engine_t eng, dnnl_alg_kind_t alg, fd_cmd dx,
				  fd_cmd w, fd_cmd dy, const dnnl_dims_t st, const dnnl_dims_t dil,
				  const dnnl_dims_t pl, const dnnl_dims_t pr, const_dnnl_primitive_desc_t hint,
				  const_dnnl_primitive_attr_t attr);
dnnl_status_t fd_conv_bwd_weights_pd(dnnl_primitive_desc_t *pd, dnnl_engine_t eng, dnnl_alg_kind_t alg,
				     fd_cmd x, fd_cmd dw, fd_cmd db, fd_cmd dy, const dnnl_dims_t st,
				     const dnnl_dims_t dil, const dnnl_dims_t pl, const dnnl_dims_t pr,
				     const_dnnl_primitive_desc_t hint, const_dnnl_primitive_attr_t attr);
dnnl_status_t fd_matmul_pd(dnnl_primitive_desc_t *pd, dnnl_engine_t eng, fd_cmd a, fd_cmd b, fd_cmd bias,
			   fd_cmd c, const_dnnl_primitive_attr_t attr);
/* Post-ops: dst = dst + result (scale 1, fp32 accumulation), and an
 * eltwise op (alpha, beta as oneDNN 3 defines them; 2.x ignores them
 * where it has no parameter: hardswish). */
dnnl_status_t fd_po_sum(dnnl_post_ops_t po);
dnnl_status_t fd_po_eltwise(dnnl_post_ops_t po, dnnl_alg_kind_t alg, float alpha, float beta);

#define FD_DNNL_SLOTS 5
/* The slot holding every primitive's scratchpad (oneDNN's user mode,
 * fd_dnnl_scratch_init): oneDNN's library mode, as Debian builds 2.6, gave
 * each primitive a buffer of its own, 1-2 MiB per bf16 matmul and up to
 * several MiB per convolution, resident once it ran (doc/nn-kernels.md
 * "Scratchpads"); one shared buffer is as large as the largest. */
#define FD_DNNL_SCRATCH 4

/* One per context: created once, borrowed by every plan made from it. Kernels
 * run one at a time on its stream, so the buffers in which operands live in a
 * primitive's preferred layout are shared by all plans: slot i is one buffer,
 * grown when a plan is made (never during a step) to the largest need. */
struct fd_dnnl {
	dnnl_engine_t engine;
	dnnl_stream_t stream;
	int threads;        /* OpenMP threads oneDNN runs on (fd_dnnl_threads_enter) */
	void *ws[FD_DNNL_SLOTS];
	size_t ws_size[FD_DNNL_SLOTS];
};

/* Create the CPU engine and an in-order stream whose primitives run on
 * `threads` OpenMP threads (< 1 means 1). Nothing process-wide is set: every
 * oneDNN call made through d is bracketed by fd_dnnl_threads_enter/leave. On
 * failure d is left zeroed and e names the failing call. */
int fd_dnnl_init(struct fd_dnnl *d, int threads, struct fd_err *e);

/* oneDNN, as Debian builds it, runs on the OpenMP runtime and sizes its
 * parallel regions (and makes its blocking and reduction-split decisions at
 * primitive creation) from omp_get_max_threads() of the calling thread; there
 * is no per-engine thread count in that build (only the threadpool runtime
 * has one). omp_set_num_threads sets that value for the calling thread only,
 * so bracketing each oneDNN call (primitive creation, execution, sgemm) with
 * enter(threads) ... leave(previous) gives it exactly `threads` without
 * leaking a setting to the rest of the process. enter returns the previous
 * value for leave. */
int fd_dnnl_threads_enter(int threads);
void fd_dnnl_threads_leave(int previous);
/* Grow d's shared slot i (d->ws[i]) to at least n bytes, 64-byte aligned;
 * its old contents are scratch and not kept, so grow a slot when a plan is
 * made, never between an operand's conversion into it and its use. 0, or
 * -1 with e. */
int fd_dnnl_ws_reserve(struct fd_dnnl *d, int i, size_t n, struct fd_err *e);
/* Set *attr (created when NULL; the caller destroys it) to oneDNN's user
 * scratchpad mode: a primitive made with it takes its scratchpad from
 * fd_dnnl_exec_sp. 0, or -1 with e. */
int fd_dnnl_attr_scratch(dnnl_primitive_attr_t *attr, struct fd_err *e);
/* For pd made with fd_dnnl_attr_scratch: *m the memory of its scratchpad
 * (no handle), slot FD_DNNL_SCRATCH grown to it, or NULL when it needs
 * none. 0, or -1 with e. */
int fd_dnnl_scratch_init(struct fd_dnnl *d, const_dnnl_primitive_desc_t pd, dnnl_memory_t *m, struct fd_err *e);
/* Destroy the stream and engine and free the shared buffers; no-op on a
 * zeroed d. */
void fd_dnnl_free(struct fd_dnnl *d);

/* Whether this CPU, as oneDNN sees it, runs bf16 convolutions and matrix
 * products natively: the CPU has AVX512-BF16 (cpuid leaf 7 subleaf 1 EAX
 * bit 5) with AVX-512 state enabled by the OS, and oneDNN's effective ISA
 * (ONEDNN_MAX_CPU_ISA lowers it) includes avx512_core_bf16 (without it
 * oneDNN would emulate bf16 on AVX-512, slower than fp32). 0, or -1 with e
 * naming the missing feature. AMX (amx_bf16) is used when present: oneDNN
 * 2.6 requests the AMX tile-data permission (arch_prctl
 * ARCH_REQ_XCOMP_PERM) itself on first use. */
int fd_dnnl_bf16_check(struct fd_err *e);

/* The oneDNN this process runs ("2.6.3", into buf) and the instruction set
 * its kernels dispatch on this CPU (dnnl_get_effective_cpu_isa: "avx2",
 * "avx512_core_amx", ...): which kernels ran, hence how they rounded
 * (run.json's "machine"; doc/train.md). */
const char *fd_dnnl_describe(char *buf, size_t n);

/* Empty oneDNN's primitive cache (capacity set to 0, then back), which
 * outlives fd's plans: fd_backend_cpu_flush. */
void fd_dnnl_cache_flush(void);

/* Turn a oneDNN status into an fd_err: "<what>: <status>" (what is printf
 * formatted, naming the primitive and its shapes). Returns 0 on success, -1
 * otherwise. */
int fd_dnnl_check(dnnl_status_t st, struct fd_err *e, const char *what, ...)
	__attribute__((format(printf, 3, 4)));

/* An operand of a primitive as the caller sees it (plain layout, caller's
 * pointer given per call) and as the primitive wants it (maybe blocked, in a
 * buffer the operand owns). Inputs are reordered user -> primitive when the
 * layouts differ; outputs are reordered primitive -> user, either overwriting
 * or adding (a reorder with a sum post-op: dst = src + dst). */
enum fd_dnnl_dir { FD_DNNL_IN, FD_DNNL_OUT, FD_DNNL_OUT_ADD };

struct fd_dnnl_opnd {
	dnnl_memory_t user;     /* caller's layout, handle set per call */
	dnnl_memory_t prim;     /* primitive's layout; == user when no reorder */
	dnnl_primitive_t reorder; /* NULL when the primitive reads/writes user memory */
	/* FD_DNNL_OUT_ADD only: a plain reorder prim -> user for a call that
	 * overwrites (fd_dnnl_opnd_over); NULL when the layouts are the same,
	 * and the primitive then writes the user's buffer itself */
	dnnl_primitive_t reorder_over;
	int same;               /* prim's layout is user's */
	enum fd_dnnl_dir dir;
	int slot;               /* shared buffer of d holding prim, when it is not user */
	/* FD_DNNL_IN from f32 to bf16 in the same dense layout: the input is
	 * converted by fd_dnnl_to_bf16 instead of the reorder; count is its
	 * number of values (0: the reorder runs) */
	size_t to_bf16;
	/* FD_DNNL_OUT_ADD of f32 in the same layout: out_done adds the buffer
	 * into the user's with a plain loop instead of the summing reorder
	 * (oneDNN's is its generic `simple:any` there); count is its number of
	 * values (0: the reorder runs) */
	size_t add_f32;
};

/* Set up o for a primitive whose operand is described by prim_md, while the
 * caller's buffer is described by user_md. An output with FD_DNNL_OUT_ADD always
 * goes through a buffer (the primitive overwrites; the reorder adds). That
 * buffer is d's shared slot `slot` (grown here if needed): operands of one
 * primitive must use distinct slots. */
int fd_dnnl_opnd_init(struct fd_dnnl_opnd *o, struct fd_dnnl *d, fd_cmd user_md, fd_cmd prim_md,
		      enum fd_dnnl_dir dir, int slot, struct fd_err *e);
/* Point the user side at ptr and, for an input that needs it, run the reorder
 * into the primitive's buffer. Returns the memory to pass to the primitive. */
int fd_dnnl_opnd_in(struct fd_dnnl_opnd *o, struct fd_dnnl *d, const void *ptr, dnnl_memory_t *m,
		    struct fd_err *e);
/* fd_dnnl_opnd_in without the reorder, for an input whose buffer (its slot)
 * already holds ptr in the primitive's layout: put there by another
 * operand with the same slot and primitive descriptor, with nothing run on
 * that slot since. */
int fd_dnnl_opnd_in_ready(struct fd_dnnl_opnd *o, struct fd_dnnl *d, const void *ptr, dnnl_memory_t *m,
			  struct fd_err *e);
/* An input already in bf16 (xb: the values fd_dnnl_to_bf16 would make of
 * the f32 input, in the user's layout) for an operand converted by
 * fd_dnnl_to_bf16 (o->to_bf16 != 0; -1 with e otherwise): the primitive
 * reads xb itself, nothing is converted or copied. */
int fd_dnnl_opnd_in_bf16(struct fd_dnnl_opnd *o, const uint16_t *xb, dnnl_memory_t *m, struct fd_err *e);
/* For an output: point the user side at ptr; returns the memory the primitive
 * writes. Call fd_dnnl_opnd_out_done after the primitive ran. */
int fd_dnnl_opnd_out(struct fd_dnnl_opnd *o, struct fd_dnnl *d, void *ptr, dnnl_memory_t *m,
		     struct fd_err *e);
int fd_dnnl_opnd_out_done(struct fd_dnnl_opnd *o, struct fd_dnnl *d, struct fd_err *e);
/* For an FD_DNNL_OUT_ADD output whose buffer ptr holds no values yet (a fresh
 * gradient): the same as fd_dnnl_opnd_out/_out_done but OVERWRITING ptr, with
 * no read of it: the primitive writes ptr itself when the layouts are the
 * same, else its buffer is reordered into ptr without the sum. */
int fd_dnnl_opnd_over(struct fd_dnnl_opnd *o, struct fd_dnnl *d, void *ptr, dnnl_memory_t *m,
		      struct fd_err *e);
int fd_dnnl_opnd_over_done(struct fd_dnnl_opnd *o, struct fd_dnnl *d, struct fd_err *e);
void fd_dnnl_opnd_free(struct fd_dnnl_opnd *o);
/* y[i] += x[i] over n floats on `threads` OpenMP threads: one float addition
 * each, as the summing reorder's dst = src + dst (same bits); the add of an
 * FD_DNNL_OUT_ADD operand with add_f32. */
void fd_dnnl_add_f32(int threads, float *restrict y, const float *restrict x, size_t n);

/* y[i] = x[i] rounded to bf16 as oneDNN's reorder does it on an AVX512-BF16
 * CPU, bit for bit (the instruction vcvtne2ps2bf16: nearest even, NaN made
 * quiet, subnormal inputs and results flushed to zero), n values on
 * `threads` OpenMP threads. Returns -1 (nothing written) on a CPU without
 * AVX512-BF16 (fd_dnnl_bf16_check), else 0. */
int fd_dnnl_to_bf16(int threads, const float *x, uint16_t *y, size_t n);

/* y[i] = x[i] widened from bf16 to float (exact), n values on `threads`
 * OpenMP threads. */
void fd_dnnl_from_bf16(int threads, const uint16_t *x, float *y, size_t n);

/* Execute prim with args on d's stream and wait. */
int fd_dnnl_exec(struct fd_dnnl *d, dnnl_primitive_t prim, int nargs, const dnnl_exec_arg_t *args,
		 struct fd_err *e);
/* fd_dnnl_exec of a primitive made with fd_dnnl_attr_scratch, sp its
 * scratchpad memory (fd_dnnl_scratch_init; NULL: none) pointed at slot
 * FD_DNNL_SCRATCH; nargs at most 7. */
int fd_dnnl_exec_sp(struct fd_dnnl *d, dnnl_primitive_t prim, dnnl_memory_t sp, int nargs,
		    const dnnl_exec_arg_t *args, struct fd_err *e);

#endif
