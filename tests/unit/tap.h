/* tap.h: a tiny TAP producer for the C unit tests (run under prove), plus the
 * tensor comparison every reference test uses: |a - r| <= atol + rtol*|r|,
 * reporting the max error, the worst index and the error as a share of the
 * tolerance; tap_worse keeps the worst share where NaN counts as the worst
 * (tests/unit/fixture.h holds the fixture helpers built on it). Exit status is non-zero when any check failed. */
#ifndef FD_TAP_H
#define FD_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_n, tap_failed;
#define TAP_UNUSED __attribute__((unused))

__attribute__((format(printf, 4, 5))) static int tap_ok(int c, const char *file, int line,
							  const char *fmt, ...)
{
	va_list ap;
	tap_n++;
	printf("%s %d - ", c ? "ok" : "not ok", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!c) {
		tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return c;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

TAP_UNUSED __attribute__((format(printf, 1, 2))) static void diag(const char *fmt, ...)
{
	va_list ap;
	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

/* The running worst of a check after one more share (error / tolerance):
 * a NaN counts as infinitely bad, so `worst <= 1` fails once any share was
 * NaN (a plain `share > worst` or fmax() would skip it). */
TAP_UNUSED static double tap_worse(double worst, double share)
{
	if (share <= worst)
		return worst;
	return share == share ? share : INFINITY;
}

/* Compare n floats a (ours) with r (reference); no values fails too. */
TAP_UNUSED static int tap_close_f32(const char *name, const float *a, const float *r, size_t n, double atol,
			 double rtol)
{
	double worst = 0, maxerr = 0;
	size_t wi = 0;
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		double err = fabs((double)a[i] - (double)r[i]);
		double tol = atol + rtol * fabs((double)r[i]);
		double share = tol > 0 ? err / tol : (err > 0 || err != err ? INFINITY : 0);
		maxerr = tap_worse(maxerr, err);
		if (!(share <= worst))
			wi = i;
		worst = tap_worse(worst, share);
		if (!(err <= tol))
			bad = 1;
	}
	return tap_ok(!bad && n > 0, __FILE__, __LINE__,
		      "%s: %zu values, max err %.3g, worst [%zu] %.6g vs %.6g = %.2f of tol", name, n,
		      maxerr, wi, n ? (double)a[wi] : 0.0, n ? (double)r[wi] : 0.0, worst);
}

#endif
