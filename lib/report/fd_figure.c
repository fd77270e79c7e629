/* fd_figure: hand-written SVG figures (doc/report.md, "Figures", says why no
 * plotting library). */
#include "report/fd_figure.h"
#include "io/fd_image.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const PALETTE[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
				      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define NPAL 10
#define FIG_W 640
#define FIG_H 400
#define ML 70 /* margins: left, right, top, bottom */
#define MR 170
#define MT 40
#define MB 55
#define FONT "font-family=\"DejaVu Sans, Liberation Sans, Arial, sans-serif\""

static int grow(struct fd_sbuf *b, size_t add)
{
	if (b->oom)
		return -1;
	if (b->n + add + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < b->n + add + 1)
		cap *= 2;
	char *s = realloc(b->s, cap);
	if (!s) {
		b->oom = 1;
		return -1;
	}
	b->s = s;
	b->cap = cap;
	return 0;
}

void fd_sbuf_printf(struct fd_sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (k < 0 || grow(b, (size_t)k) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)k;
}

void fd_sbuf_esc(struct fd_sbuf *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': fd_sbuf_printf(b, "&amp;"); break;
		case '<': fd_sbuf_printf(b, "&lt;"); break;
		case '>': fd_sbuf_printf(b, "&gt;"); break;
		case '"': fd_sbuf_printf(b, "&quot;"); break;
		default:
			if (grow(b, 1) == 0) {
				b->s[b->n++] = *s;
				b->s[b->n] = '\0';
			}
		}
	}
}

void fd_sbuf_base64(struct fd_sbuf *b, const uint8_t *p, size_t n)
{
	static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	if (grow(b, (n + 2) / 3 * 4) < 0)
		return;
	char *o = b->s + b->n;
	size_t i = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = A[v >> 18];
		*o++ = A[(v >> 12) & 63];
		*o++ = A[(v >> 6) & 63];
		*o++ = A[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
		*o++ = A[v >> 18];
		*o++ = A[(v >> 12) & 63];
		*o++ = i + 1 < n ? A[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	b->n = (size_t)(o - b->s);
}

static char *finish(struct fd_sbuf *b, struct fd_err *e)
{
	if (b->oom || !b->s) {
		free(b->s);
		fd_err_set(e, "out of memory");
		return NULL;
	}
	return b->s;
}

int fd_fig_ticks(double lo, double hi, int want, double *tick, int cap, double *step)
{
	if (hi < lo) {
		double t = lo;
		lo = hi;
		hi = t;
	}
	if (hi == lo) {
		double d = lo == 0 ? 1 : fabs(lo) * 0.1;
		lo -= d;
		hi += d;
	}
	if (want < 2)
		want = 2;
	double raw = (hi - lo) / (want - 1), p = pow(10, floor(log10(raw))), f = raw / p, s;
	s = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
	s *= p;
	double t0 = floor(lo / s + 1e-9) * s;
	int n = 0;
	for (double t = t0; n < cap && t <= hi + s * (1 - 1e-9); t = t0 + s * n) {
		tick[n++] = fabs(t) < s * 1e-9 ? 0 : t;
		if (t >= hi - s * 1e-9)
			break;
	}
	*step = s;
	return n;
}

static void data_attr(struct fd_sbuf *b, const char *name, const double *v, size_t n)
{
	fd_sbuf_printf(b, " %s=\"", name);
	for (size_t i = 0; i < n; i++)
		fd_sbuf_printf(b, i ? " %.17g" : "%.17g", v[i]);
	fd_sbuf_printf(b, "\"");
}

static void header(struct fd_sbuf *b, const char *id, int w, int h, const char *title)
{
	fd_sbuf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" "
			  "xmlns:xlink=\"http://www.w3.org/1999/xlink\" id=\"");
	fd_sbuf_esc(b, id);
	fd_sbuf_printf(b, "\" class=\"fig\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" " FONT
			  " font-size=\"12\">\n<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
		       w, h, w, h, w, h);
	if (title) {
		fd_sbuf_printf(b, "<text x=\"%d\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" "
				  "font-weight=\"bold\">",
			       w / 2);
		fd_sbuf_esc(b, title);
		fd_sbuf_printf(b, "</text>\n");
	}
}

/* The tick label of v with a step s: as few decimals as the step needs. */
static void ticklabel(char *out, size_t n, double v, double s)
{
	int dec = 0;
	while (dec < 6 && fabs(s * pow(10, dec) - round(s * pow(10, dec))) > 1e-6)
		dec++;
	snprintf(out, n, "%.*f", dec, v);
}

static void range_of(const struct fd_fig *f, int axis, double *lo, double *hi)
{
	*lo = INFINITY;
	*hi = -INFINITY;
	for (int k = 0; k < f->ns; k++) {
		const struct fd_fig_series *s = &f->s[k];
		size_t n = axis == 0 && s->kind == FD_FIG_STEP ? s->n + 1 : s->n;
		for (size_t i = 0; i < n; i++) {
			double v = axis ? s->y[i] : s->x[i], d = axis && s->err ? s->err[i] : 0;
			if (!isfinite(v))
				continue;
			if (!isfinite(d))
				d = 0;
			if (v - d < *lo)
				*lo = v - d;
			if (v + d > *hi)
				*hi = v + d;
			if (axis && (s->kind == FD_FIG_BARS || s->kind == FD_FIG_STEP)) {
				if (*lo > 0)
					*lo = 0;
				if (*hi < 0)
					*hi = 0;
			}
		}
	}
}

char *fd_fig_svg(const struct fd_fig *f, struct fd_err *e)
{
	if (f->ns <= 0) {
		fd_err_set(e, "figure '%s': no series", f->id);
		return NULL;
	}
	for (int k = 0; k < f->ns; k++)
		if (f->s[k].n == 0) {
			fd_err_set(e, "figure '%s': series '%s' has no points", f->id,
				   f->s[k].name ? f->s[k].name : "");
			return NULL;
		}
	double xlo, xhi, ylo, yhi;
	range_of(f, 0, &xlo, &xhi);
	range_of(f, 1, &ylo, &yhi);
	if (!(xlo <= xhi) || !(ylo <= yhi)) {
		fd_err_set(e, "figure '%s': no finite values", f->id);
		return NULL;
	}
	int step = 0;
	for (int k = 0; k < f->ns; k++)
		step |= f->s[k].kind == FD_FIG_STEP;
	if (f->xcat) {
		xlo = -0.5;
		xhi = f->nxcat - 0.5;
	} else if (!step) { /* points at the edge stay inside the frame */
		double pad = xhi > xlo ? 0.04 * (xhi - xlo) : 0.5;
		xlo -= pad;
		xhi += pad;
	}
	if (!isnan(f->xmin)) xlo = f->xmin;
	if (!isnan(f->xmax)) xhi = f->xmax;
	if (!isnan(f->ymin)) ylo = f->ymin;
	if (!isnan(f->ymax)) yhi = f->ymax;
	double xt[32], yt[32], xs, ys;
	int nxt = f->xcat ? 0 : fd_fig_ticks(xlo, xhi, 6, xt, 32, &xs);
	int nyt = fd_fig_ticks(ylo, yhi, 6, yt, 32, &ys);
	if (!f->xcat && step && isnan(f->xmin)) xlo = fmin(xlo, xt[0]);
	if (!f->xcat && step && isnan(f->xmax)) xhi = fmax(xhi, xt[nxt - 1]);
	if (isnan(f->ymin)) ylo = fmin(ylo, yt[0]);
	if (isnan(f->ymax)) yhi = fmax(yhi, yt[nyt - 1]);
	if (xhi == xlo) { xlo -= 0.5; xhi += 0.5; }
	if (yhi == ylo) { ylo -= 0.5; yhi += 0.5; }
	const double pw = FIG_W - ML - MR, ph = FIG_H - MT - MB;
#define PX(v) (ML + ((v) - xlo) / (xhi - xlo) * pw)
#define PY(v) (MT + ph - ((v) - ylo) / (yhi - ylo) * ph)
	struct fd_sbuf b = { 0 };
	header(&b, f->id, FIG_W, FIG_H, f->title);
	/* grid and ticks */
	char lab[64];
	for (int i = 0; i < nyt; i++) {
		if (yt[i] < ylo - 1e-12 || yt[i] > yhi + 1e-12)
			continue;
		ticklabel(lab, sizeof lab, yt[i], ys);
		fd_sbuf_printf(&b, "<line x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>"
				   "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
			       ML, ML + pw, PY(yt[i]), PY(yt[i]), ML - 6, PY(yt[i]) + 4, lab);
	}
	for (int i = 0; i < nxt; i++) {
		if (xt[i] < xlo - 1e-12 || xt[i] > xhi + 1e-12)
			continue;
		ticklabel(lab, sizeof lab, xt[i], xs);
		fd_sbuf_printf(&b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>"
				   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
			       PX(xt[i]), PX(xt[i]), MT, MT + ph, PX(xt[i]), MT + ph + 16, lab);
	}
	for (int i = 0; f->xcat && i < f->nxcat; i++) {
		fd_sbuf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", PX(i), MT + ph + 16);
		fd_sbuf_esc(&b, f->xcat[i]);
		fd_sbuf_printf(&b, "</text>\n");
	}
	fd_sbuf_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
			   "stroke=\"#333\"/>\n",
		       ML, MT, pw, ph);
	if (f->xlabel) {
		fd_sbuf_printf(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", ML + pw / 2, FIG_H - 14);
		fd_sbuf_esc(&b, f->xlabel);
		fd_sbuf_printf(&b, "</text>\n");
	}
	if (f->ylabel) {
		fd_sbuf_printf(&b, "<text transform=\"translate(18,%.1f) rotate(-90)\" text-anchor=\"middle\">",
			       MT + ph / 2);
		fd_sbuf_esc(&b, f->ylabel);
		fd_sbuf_printf(&b, "</text>\n");
	}
	/* series, clipped to the plot */
	fd_sbuf_printf(&b, "<clipPath id=\"");
	fd_sbuf_esc(&b, f->id);
	fd_sbuf_printf(&b, "-clip\"><rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\"/></clipPath>\n"
			   "<g clip-path=\"url(#",
		       ML, MT, pw, ph);
	fd_sbuf_esc(&b, f->id);
	fd_sbuf_printf(&b, "-clip)\">\n");
	int nbars = 0;
	double minsp = INFINITY;
	for (int k = 0; k < f->ns; k++)
		if (f->s[k].kind == FD_FIG_BARS) {
			nbars++;
			for (size_t i = 1; i < f->s[k].n; i++)
				if (fabs(f->s[k].x[i] - f->s[k].x[i - 1]) > 0)
					minsp = fmin(minsp, fabs(f->s[k].x[i] - f->s[k].x[i - 1]));
		}
	if (!isfinite(minsp))
		minsp = 1;
	int bar = 0, nleg = 0;
	for (int k = 0; k < f->ns; k++) {
		const struct fd_fig_series *s = &f->s[k];
		const char *col = PALETTE[(s->color >= 0 ? s->color : k) % NPAL];
		if (s->dashed)
			col = "#888888";
		if (s->name)
			nleg++;
		fd_sbuf_printf(&b, "<g class=\"series\" data-kind=\"%s\" data-name=\"",
			       s->kind == FD_FIG_LINE ? "line" : s->kind == FD_FIG_POINTS ? "points"
						       : s->kind == FD_FIG_BARS ? "bars" : "step");
		fd_sbuf_esc(&b, s->name ? s->name : "");
		fd_sbuf_printf(&b, "\"");
		data_attr(&b, "data-x", s->x, s->kind == FD_FIG_STEP ? s->n + 1 : s->n);
		data_attr(&b, "data-y", s->y, s->n);
		if (s->err)
			data_attr(&b, "data-err", s->err, s->n);
		fd_sbuf_printf(&b, ">\n");
		if (s->kind == FD_FIG_LINE) {
			fd_sbuf_printf(&b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s points=\"", col,
				       s->dashed ? " stroke-dasharray=\"5,4\"" : "");
			for (size_t i = 0; i < s->n; i++)
				if (isfinite(s->x[i]) && isfinite(s->y[i]))
					fd_sbuf_printf(&b, "%.2f,%.2f ", PX(s->x[i]), PY(s->y[i]));
			fd_sbuf_printf(&b, "\"/>\n");
		} else if (s->kind == FD_FIG_STEP) {
			fd_sbuf_printf(&b, "<path fill=\"%s\" fill-opacity=\"0.25\" stroke=\"%s\" stroke-width=\"1.5\" d=\"",
				       col, col);
			double y0 = fmax(ylo, 0);
			fd_sbuf_printf(&b, "M%.2f,%.2f", PX(s->x[0]), PY(y0));
			for (size_t i = 0; i < s->n; i++)
				fd_sbuf_printf(&b, " L%.2f,%.2f L%.2f,%.2f", PX(s->x[i]), PY(s->y[i]), PX(s->x[i + 1]),
					       PY(s->y[i]));
			fd_sbuf_printf(&b, " L%.2f,%.2f Z\"/>\n", PX(s->x[s->n]), PY(y0));
		}
		double bw = minsp * 0.8 / (nbars ? nbars : 1);
		for (size_t i = 0; i < s->n; i++) {
			if (!isfinite(s->x[i]) || !isfinite(s->y[i]))
				continue;
			double x = s->x[i];
			if (s->kind == FD_FIG_BARS) {
				x = s->x[i] - minsp * 0.4 + bw * (bar + 0.5);
				double y0 = fmax(ylo, 0), top = fmax(PY(s->y[i]), MT - 1.0);
				fd_sbuf_printf(&b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"/>\n",
					       PX(x - bw / 2), fmin(top, PY(y0)), bw / (xhi - xlo) * pw,
					       fabs(PY(y0) - top), col);
			} else if (s->kind == FD_FIG_POINTS || (s->kind == FD_FIG_LINE && s->n <= 30 && !s->dashed)) {
				fd_sbuf_printf(&b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%d\" fill=\"%s\"/>\n", PX(x),
					       PY(s->y[i]), s->kind == FD_FIG_POINTS ? 4 : 3, col);
			}
			if (s->err && isfinite(s->err[i]) && s->kind != FD_FIG_STEP) {
				double a = PY(s->y[i] - s->err[i]), c = PY(s->y[i] + s->err[i]);
				fd_sbuf_printf(&b, "<path class=\"errbar\" stroke=\"#222\" stroke-width=\"1.2\" fill=\"none\" "
						   "d=\"M%.2f,%.2f V%.2f M%.2f,%.2f h8 M%.2f,%.2f h8\"/>\n",
					       PX(x), a, c, PX(x) - 4, a, PX(x) - 4, c);
			}
		}
		if (s->kind == FD_FIG_BARS)
			bar++;
		fd_sbuf_printf(&b, "</g>\n");
	}
	fd_sbuf_printf(&b, "</g>\n");
	/* legend, right of the plot */
	if (nleg) {
		int y = MT + 8;
		fd_sbuf_printf(&b, "<g class=\"legend\">\n");
		for (int k = 0; k < f->ns; k++) {
			const struct fd_fig_series *s = &f->s[k];
			if (!s->name)
				continue;
			const char *col = s->dashed ? "#888888" : PALETTE[(s->color >= 0 ? s->color : k) % NPAL];
			fd_sbuf_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"10\" fill=\"%s\"/>"
					   "<text x=\"%d\" y=\"%d\">",
				       FIG_W - MR + 12, y - 9, col, FIG_W - MR + 32, y);
			fd_sbuf_esc(&b, s->name);
			fd_sbuf_printf(&b, "</text>\n");
			y += 18;
		}
		fd_sbuf_printf(&b, "</g>\n");
	}
	fd_sbuf_printf(&b, "</svg>\n");
#undef PX
#undef PY
	return finish(&b, e);
}

char *fd_fig_heatmap_svg(const char *id, const char *title, const char *xlabel,
			 const char *ylabel, const char *const *rowname, int nr,
			 const char *const *colname, int nc, const double *v, struct fd_err *e)
{
	if (nr <= 0 || nc <= 0) {
		fd_err_set(e, "figure '%s': empty heat map", id);
		return NULL;
	}
	const int cell = 80, x0 = 130, y0 = 50;
	int w = x0 + nc * cell + 30, h = y0 + nr * cell + 50;
	double mx = 0;
	for (int i = 0; i < nr * nc; i++)
		if (isfinite(v[i]) && v[i] > mx)
			mx = v[i];
	struct fd_sbuf b = { 0 };
	header(&b, id, w, h, title);
	fd_sbuf_printf(&b, "<g class=\"heatmap\"");
	data_attr(&b, "data-v", v, (size_t)nr * nc);
	fd_sbuf_printf(&b, ">\n");
	for (int r = 0; r < nr; r++)
		for (int c = 0; c < nc; c++) {
			double a = mx > 0 && isfinite(v[r * nc + c]) ? v[r * nc + c] / mx : 0;
			/* white -> #1f77b4 */
			int R = (int)lround(255 + a * (0x1f - 255)), G = (int)lround(255 + a * (0x77 - 255)),
			    B = (int)lround(255 + a * (0xb4 - 255));
			fd_sbuf_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#%02x%02x%02x\" "
					   "stroke=\"#333\"/><text x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
					   "font-size=\"16\" fill=\"%s\">%.4g</text>\n",
				       x0 + c * cell, y0 + r * cell, cell, cell, R, G, B, x0 + c * cell + cell / 2,
				       y0 + r * cell + cell / 2 + 6, a > 0.5 ? "white" : "black", v[r * nc + c]);
		}
	fd_sbuf_printf(&b, "</g>\n");
	for (int r = 0; r < nr; r++) {
		fd_sbuf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", x0 - 8, y0 + r * cell + cell / 2 + 4);
		fd_sbuf_esc(&b, rowname[r]);
		fd_sbuf_printf(&b, "</text>\n");
	}
	for (int c = 0; c < nc; c++) {
		fd_sbuf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", x0 + c * cell + cell / 2,
			       y0 + nr * cell + 18);
		fd_sbuf_esc(&b, colname[c]);
		fd_sbuf_printf(&b, "</text>\n");
	}
	if (xlabel) {
		fd_sbuf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", x0 + nc * cell / 2, h - 10);
		fd_sbuf_esc(&b, xlabel);
		fd_sbuf_printf(&b, "</text>\n");
	}
	if (ylabel) {
		fd_sbuf_printf(&b, "<text transform=\"translate(20,%d) rotate(-90)\" text-anchor=\"middle\">",
			       y0 + nr * cell / 2);
		fd_sbuf_esc(&b, ylabel);
		fd_sbuf_printf(&b, "</text>\n");
	}
	fd_sbuf_printf(&b, "</svg>\n");
	return finish(&b, e);
}

char *fd_fig_grid_svg(const char *id, const char *title, const char *const *rowname, int nr,
		      int nc, const uint8_t *const *img, int S, int cell, struct fd_err *e)
{
	if (nr <= 0 || nc <= 0 || S <= 0) {
		fd_err_set(e, "figure '%s': empty image grid", id);
		return NULL;
	}
	const int x0 = 130, y0 = 40, gap = 4;
	int w = x0 + nc * (cell + gap) + 10, h = y0 + nr * (cell + gap) + 10;
	struct fd_sbuf b = { 0 };
	header(&b, id, w, h, title);
	struct fd_image im = { S, S, NULL, 1 };
	for (int r = 0; r < nr; r++) {
		fd_sbuf_printf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", x0 - 8, y0 + r * (cell + gap) + cell / 2 + 4);
		fd_sbuf_esc(&b, rowname[r]);
		fd_sbuf_printf(&b, "</text>\n");
		for (int c = 0; c < nc; c++) {
			const uint8_t *p = img[r * nc + c];
			if (!p)
				continue;
			uint8_t *png = NULL;
			size_t n = 0;
			im.px = (uint8_t *)p;
			if (fd_image_encode_png(&im, &png, &n, e) < 0) {
				free(b.s);
				return NULL;
			}
			fd_sbuf_printf(&b, "<image class=\"thumb\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
					   "style=\"image-rendering:pixelated\" href=\"data:image/png;base64,",
				       x0 + c * (cell + gap), y0 + r * (cell + gap), cell, cell);
			fd_sbuf_base64(&b, png, n);
			fd_sbuf_printf(&b, "\"/>\n");
			free(png);
		}
	}
	fd_sbuf_printf(&b, "</svg>\n");
	return finish(&b, e);
}

void fd_fig_hist(const double *x, size_t n, double lo, double hi, int nb, double *edge,
		 double *count)
{
	for (int i = 0; i <= nb; i++)
		edge[i] = lo + (hi - lo) * i / nb;
	for (int i = 0; i < nb; i++)
		count[i] = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(x[i]) || x[i] < lo || x[i] > hi)
			continue;
		int k = hi > lo ? (int)((x[i] - lo) / (hi - lo) * nb) : 0;
		if (k >= nb)
			k = nb - 1;
		count[k] += 1;
	}
}
