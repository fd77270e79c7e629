/* tile7: the fp32 register tile of fd's fused MBConv kernels (mbfront.c's
 * expansion, mbback.c's projection): 7 pixels x nb (1..3) blocks of 16
 * output channels, acc[i][j] = b[j] + sum over k < K in order of
 * xp[i][k] w[k][j], one fused multiply-add per term (21 sums, nb weight
 * vectors and one broadcast in registers). Internal to lib/nn; include
 * after <immintrin.h>, call from a function compiled for AVX-512F with nb a
 * constant. */
#ifndef FD_TILE7_H
#define FD_TILE7_H

#include <stdint.h>

#define FD_T7_P 7  /* pixels of a tile */
#define FD_T7_NB 3 /* 16-channel blocks of a tile, at most */

/* w [K][C] (a 1x1 convolution's weight) packed as the tile reads it: per
 * group g of FD_T7_NB blocks of 16 output channels (nb blocks, fewer in the
 * last group), at g FD_T7_NB 16 C, [C][nb 16]; the channels from K up to
 * K16 (K rounded up to 16) zero. Groups over nt threads. In mbfront.c. */
void fd_tile7_pack(const float *w, int64_t K, int64_t C, int64_t K16, int nt, float *o);

/* xp: the 7 pixels' input rows (K floats each); w: [K][nb 16] (the
 * group's weights, packed); b: nb 16 biases */
#define FD_TILE7_SUMS(acc, nb, xp, K, w, b)                                                               \
	do {                                                                                              \
		_Pragma("GCC unroll 4") for (int j_ = 0; j_ < (nb); j_++)                                 \
		{                                                                                         \
			__m512 b_ = _mm512_loadu_ps((b) + j_ * 16);                                       \
			_Pragma("GCC unroll 8") for (int i_ = 0; i_ < FD_T7_P; i_++) acc[i_][j_] = b_;   \
		}                                                                                         \
		const float *w_ = (w);                                                                    \
		for (int k_ = 0; k_ < (K); k_++, w_ += (nb) * 16) {                                       \
			__m512 wv_[FD_T7_NB];                                                             \
			_Pragma("GCC unroll 4") for (int j_ = 0; j_ < (nb); j_++) wv_[j_] =               \
				_mm512_loadu_ps(w_ + j_ * 16);                                            \
			_Pragma("GCC unroll 8") for (int i_ = 0; i_ < FD_T7_P; i_++)                      \
			{                                                                                 \
				__m512 a_ = _mm512_set1_ps((xp)[i_][k_]);                                 \
				_Pragma("GCC unroll 4") for (int j_ = 0; j_ < (nb); j_++) acc[i_][j_] =   \
					_mm512_fmadd_ps(a_, wv_[j_], acc[i_][j_]);                        \
			}                                                                                 \
		}                                                                                         \
	} while (0)

#endif
