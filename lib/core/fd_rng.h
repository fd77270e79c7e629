/* fd_rng: counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
 * A value depends only on (seed, stream, counter), so results do not depend on
 * how work is spread over threads: give each image, row or layer its own stream. */
#ifndef FD_RNG_H
#define FD_RNG_H

#include <stdint.h>

struct fd_rng {
	uint64_t seed;
	uint64_t stream;
	uint64_t ctr;     /* next block */
	uint32_t buf[4];
	int have;         /* unread words left in buf */
};

/* The pure function underneath: block `ctr` of `stream` under key `seed`. */
void fd_philox(uint64_t seed, uint64_t stream, uint64_t ctr, uint32_t out[4]);

/* Start a sequential generator at block 0 of (seed, stream). */
void fd_rng_init(struct fd_rng *r, uint64_t seed, uint64_t stream);
uint32_t fd_rng_u32(struct fd_rng *r);
uint64_t fd_rng_u64(struct fd_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double fd_rng_uniform(struct fd_rng *r);
/* Uniform integer in [0, n), without modulo bias; n > 0. */
uint64_t fd_rng_below(struct fd_rng *r, uint64_t n);
/* Standard normal (Box-Muller, both values used in turn is not attempted:
 * one call, two uniforms, so a stream's k-th normal is stable). */
double fd_rng_normal(struct fd_rng *r);
/* Fisher-Yates shuffle of n indices in place. */
void fd_rng_shuffle(struct fd_rng *r, uint32_t *idx, uint32_t n);

/* Stable 64-bit hash of a string (FNV-1a then a splitmix64 finaliser), for
 * deriving streams from names such as a group or a file path. */
uint64_t fd_hash_str(const char *s);

#endif
