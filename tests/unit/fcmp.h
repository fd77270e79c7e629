/* fcmp.h: float buffers for the tests that compare two runs bit for bit:
 * a copy, equality of the bits, the count of values that differ. */
#ifndef FCMP_H
#define FCMP_H

#include <stdlib.h>
#include <string.h>

/* a malloc'd copy of n floats (a may be NULL: uninitialised) */
static __attribute__((unused)) float *fdup(const float *a, size_t n)
{
	float *d = malloc((n ? n : 1) * sizeof *d);
	if (a)
		memcpy(d, a, n * sizeof *d);
	return d;
}

/* both NULL, or the same n floats bit for bit */
static __attribute__((unused)) int same(const float *a, const float *b, size_t n)
{
	return (!a && !b) || (a && b && !memcmp(a, b, n * sizeof *a));
}

/* how many of the n values differ (0 when either is NULL) */
static __attribute__((unused)) size_t ndiff(const float *a, const float *b, size_t n)
{
	size_t d = 0;
	for (size_t i = 0; a && b && i < n; i++)
		d += a[i] != b[i];
	return d;
}

#endif
