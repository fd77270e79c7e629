/* fd_rng: Philox4x32-10 and the draws built on it. */
#include "core/fd_rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void fd_philox(uint64_t seed, uint64_t stream, uint64_t ctr, uint32_t out[4])
{
	uint32_t c0 = (uint32_t)ctr, c1 = (uint32_t)(ctr >> 32);
	uint32_t c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
	uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
	for (int i = 0; i < 10; i++) {
		uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
		uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
		uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
		uint32_t n1 = (uint32_t)p1;
		uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
		uint32_t n3 = (uint32_t)p0;
		c0 = n0, c1 = n1, c2 = n2, c3 = n3;
		k0 += PHILOX_W0;
		k1 += PHILOX_W1;
	}
	out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

void fd_rng_init(struct fd_rng *r, uint64_t seed, uint64_t stream)
{
	r->seed = seed;
	r->stream = stream;
	r->ctr = 0;
	r->have = 0;
}

uint32_t fd_rng_u32(struct fd_rng *r)
{
	if (r->have == 0) {
		fd_philox(r->seed, r->stream, r->ctr++, r->buf);
		r->have = 4;
	}
	return r->buf[4 - r->have--];
}

uint64_t fd_rng_u64(struct fd_rng *r)
{
	uint64_t hi = fd_rng_u32(r);
	return (hi << 32) | fd_rng_u32(r);
}

double fd_rng_uniform(struct fd_rng *r)
{
	return (double)(fd_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t fd_rng_below(struct fd_rng *r, uint64_t n)
{
	uint64_t lim = UINT64_MAX - UINT64_MAX % n;
	uint64_t x;
	do
		x = fd_rng_u64(r);
	while (x >= lim);
	return x % n;
}

double fd_rng_normal(struct fd_rng *r)
{
	double u1 = fd_rng_uniform(r), u2 = fd_rng_uniform(r);
	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void fd_rng_shuffle(struct fd_rng *r, uint32_t *idx, uint32_t n)
{
	for (uint32_t i = n; i > 1; i--) {
		uint32_t j = (uint32_t)fd_rng_below(r, i);
		uint32_t t = idx[i - 1];
		idx[i - 1] = idx[j];
		idx[j] = t;
	}
}

uint64_t fd_hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h;
}
