/* fd_figure: the report's figures as standalone SVG text (doc/report.md,
 * "Figures"): line charts, scatter, bars with error bars, histograms, a heat
 * map and an image grid, in one style (640x400 px, a 10-colour palette, nice
 * axis ticks, a legend). The same text is written as DIR/figures/ID.svg and
 * inlined into the HTML pages. Every series also carries its numbers as
 * data-x / data-y (and data-err) attributes, %.17g, so tests read the plotted
 * values back instead of inverting pixel coordinates. */
#ifndef FD_FIGURE_H
#define FD_FIGURE_H

#include <stddef.h>
#include <stdint.h>
#include "core/fd_err.h"

/* A growing string; oom set once an append failed (later appends are no-ops). */
struct fd_sbuf {
	char *s;
	size_t n, cap;
	int oom;
};
/* Append printf-style text. */
void fd_sbuf_printf(struct fd_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s with &, <, >, " escaped for XML/HTML text and attributes. */
void fd_sbuf_esc(struct fd_sbuf *b, const char *s);
/* Append n bytes as base64 (RFC 4648, padded). */
void fd_sbuf_base64(struct fd_sbuf *b, const uint8_t *p, size_t n);

enum fd_fig_kind {
	FD_FIG_LINE,   /* polyline through the points, in order */
	FD_FIG_POINTS, /* markers only (scatter) */
	FD_FIG_BARS,   /* bars from 0 at each x (grouped beside other bar series) */
	FD_FIG_STEP,   /* histogram outline: x are the nb+1 bin edges, y the nb heights */
};

struct fd_fig_series {
	const char *name;     /* legend entry (NULL: none) */
	enum fd_fig_kind kind;
	const double *x, *y;  /* n points (FD_FIG_STEP: x has n+1 edges) */
	const double *err;    /* NULL, or n half-widths drawn as error bars */
	size_t n;
	int dashed;           /* reference lines (the ROC diagonal) */
	int color;            /* palette index (-1: the series' position) */
};

struct fd_fig {
	const char *id;       /* the element id in the page and the file name */
	const char *title, *xlabel, *ylabel;
	double xmin, xmax, ymin, ymax; /* NAN: from the data, widened to nice ticks */
	const char *const *xcat; /* NULL, or nxcat category names shown at x = 0..nxcat-1 */
	int nxcat;
	const struct fd_fig_series *s;
	int ns;
};

/* Nice tick positions (1, 2, 2.5 or 5 times a power of ten) covering [lo, hi],
 * at most cap of them, about want; returns the count and the step in *step.
 * lo == hi is widened by 1 (or 10% of |lo|). */
int fd_fig_ticks(double lo, double hi, int want, double *tick, int cap, double *step);

/* The chart as SVG text (malloc'ed). Non-finite points are skipped (a NaN
 * error bar is not drawn). Errors: no series, a series without points, every
 * value non-finite, out of memory. */
char *fd_fig_svg(const struct fd_fig *f, struct fd_err *e);

/* A heat map of nr x nc values (row-major) with the count printed in each
 * cell (%.4g), row and column labels, colour from white to the palette's
 * first colour by value / max. data-v holds the values. */
char *fd_fig_heatmap_svg(const char *id, const char *title, const char *xlabel,
			 const char *ylabel, const char *const *rowname, int nr,
			 const char *const *colname, int nc, const double *v, struct fd_err *e);

/* An image grid: nr rows (rowname[r] at the left) of up to nc RGB u8 images of
 * S x S pixels, img[r * nc + c] (NULL: an empty cell), each embedded as a PNG
 * data: URI in an <image> element with the class "thumb", shown at cell x cell
 * pixels. */
char *fd_fig_grid_svg(const char *id, const char *title, const char *const *rowname, int nr,
		      int nc, const uint8_t *const *img, int S, int cell, struct fd_err *e);

/* Histogram of the finite values x[n] into nb equal bins over [lo, hi] (the
 * last bin closed, numpy.histogram's rule): edge[nb+1], count[nb]. Values
 * outside [lo, hi] are not counted. */
void fd_fig_hist(const double *x, size_t n, double lo, double hi, int nb, double *edge,
		 double *count);

#endif
