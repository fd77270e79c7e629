/* init: parameter initialisers with torch.nn.init's distributions, drawn from
 * fd_rng (Philox) so values differ from torch's generator but the
 * distributions match. Give each tensor its own stream (fd_init_rng) so
 * a model's initial weights do not depend on declaration order. */
#ifndef FD_INIT_H
#define FD_INIT_H

#include <stdint.h>
#include "core/fd_err.h"
#include "core/fd_rng.h"
#include "nn/fd_tensor.h"

/* Stream fd_hash_str(name) under seed. */
void fd_init_rng(struct fd_rng *r, uint64_t seed, const char *name);

/* torch.nn.init._calculate_fan_in_and_fan_out: fan_in = shape[1] * prod(shape[2:]),
 * fan_out = shape[0] * prod(shape[2:]); fewer than 2 dims is an error. */
int fd_init_fans(const struct fd_tensor *t, int64_t *fan_in, int64_t *fan_out, struct fd_err *e);

/* All write t->data (host), overwriting it. */
void fd_init_constant(struct fd_tensor *t, float v);                          /* nn.init.constant_ */
void fd_init_uniform(struct fd_tensor *t, double lo, double hi, struct fd_rng *r); /* uniform_(lo, hi) */
void fd_init_normal(struct fd_tensor *t, double mean, double std, struct fd_rng *r); /* normal_ */
/* trunc_normal_(mean, std, a, b): normal conditioned on [a, b] (absolute
 * bounds, as torch), by rejection; errors when [a, b] holds < 1e-3 of the mass. */
int fd_init_trunc_normal(struct fd_tensor *t, double mean, double std, double a, double b,
			 struct fd_rng *r, struct fd_err *e);
/* kaiming_uniform_(a, mode='fan_in', nonlinearity='leaky_relu'): U(-bound, bound),
 * bound = sqrt(2 / (1 + a^2)) * sqrt(3 / fan_in). a = sqrt(5) is the default of
 * nn.Conv2d and nn.Linear weights (bound 1/sqrt(fan_in)). */
int fd_init_kaiming_uniform(struct fd_tensor *t, double a, struct fd_rng *r, struct fd_err *e);
/* kaiming_normal_(mode='fan_out', nonlinearity='relu'): N(0, 2 / fan_out),
 * torchvision's ResNet/MobileNet/EfficientNet conv init. */
int fd_init_kaiming_normal_fan_out(struct fd_tensor *t, struct fd_rng *r, struct fd_err *e);
/* nn.Conv2d / nn.Linear default bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
 * the fan_in of the layer's weight w. */
int fd_init_bias_default(struct fd_tensor *bias, const struct fd_tensor *w, struct fd_rng *r,
			 struct fd_err *e);

#endif
