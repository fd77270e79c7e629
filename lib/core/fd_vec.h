/* fd_vec: function multiversioning for the hot loops. FD_VEC_CLONES on a
 * function makes GCC/Clang emit AVX-512 (avx512f) and AVX2 clones beside the
 * baseline (x86-64's SSE2) and pick one when the program loads, so one
 * portable binary runs wide vectors where the CPU has them. ISO C mode
 * (-std=c11) keeps -ffp-contract=off, so no clone fuses a multiply-add.
 * Used only where the result cannot depend on the vector width (integer arithmetic, elementwise float ops, or float sums
 * whose order the code fixes explicitly), so every clone gives the same bits. */
#ifndef FD_VEC_H
#define FD_VEC_H

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define FD_VEC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FD_VEC_CLONES
#endif

/* For a loop that runs only where AVX-512 with BF16 was checked at run time
 * (a bf16 context): compiled for AVX-512 F/BW/VL with 512-bit vectors,
 * which GCC's generic tuning would not pick (it prefers 256 bits; the bf16
 * GELU ran 1.4x slower so). Clang has no prefer-vector-width in target
 * strings: there min_vector_width(512) allows them. */
#if defined(__x86_64__) && defined(__clang__)
#define FD_VEC_AVX512_ONLY __attribute__((target("avx512f,avx512bw,avx512vl"), min_vector_width(512)))
#elif defined(__x86_64__) && defined(__GNUC__)
#define FD_VEC_AVX512_ONLY __attribute__((target("avx512f,avx512bw,avx512vl,prefer-vector-width=512")))
#else
#define FD_VEC_AVX512_ONLY
#endif

#endif
