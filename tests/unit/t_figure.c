/* t_figure: lib/report/fd_figure's pieces with known answers: nice ticks,
 * base64 against RFC 4648's test vectors, the histogram rule of
 * numpy.histogram (last bin closed, values outside not counted), XML
 * escaping, and errors for empty or all-NaN figures. The plotted numbers of
 * whole pages are checked against scikit-learn in tests/tools/html.t. */
#include "report/fd_figure.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void ticks(double lo, double hi, const double *want, int nwant, const char *what)
{
	double t[32], step;
	int n = fd_fig_ticks(lo, hi, 6, t, 32, &step);
	int same = n == nwant;
	for (int i = 0; same && i < n; i++)
		same = fabs(t[i] - want[i]) <= 1e-12 * fmax(1, fabs(want[i]));
	ok(same, "ticks %s: %d ticks from %g", what, n, n ? t[0] : NAN);
}

int main(void)
{
	ticks(0, 1, (double[]){ 0, 0.2, 0.4, 0.6, 0.8, 1 }, 6, "[0, 1]");
	ticks(0, 97, (double[]){ 0, 20, 40, 60, 80, 100 }, 6, "[0, 97]");
	ticks(0.49, 0.55, (double[]){ 0.48, 0.5, 0.52, 0.54, 0.56 }, 5, "[0.49, 0.55]");
	ticks(-0.15, 0.21, (double[]){ -0.2, -0.1, 0, 0.1, 0.2, 0.3 }, 6, "[-0.15, 0.21] (0 exact)");
	ticks(3, 3, (double[]){ 2.6, 2.8, 3, 3.2, 3.4 }, 5, "[3, 3] widened by 10%");

	/* RFC 4648 section 10 */
	static const char *const in[7] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" },
				 *const out[7] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	for (int i = 0; i < 7; i++) {
		struct fd_sbuf b = { 0 };
		fd_sbuf_printf(&b, "%s", "");
		fd_sbuf_base64(&b, (const uint8_t *)in[i], strlen(in[i]));
		ok(b.s && !strcmp(b.s, out[i]), "base64('%s') = '%s'", in[i], b.s ? b.s : "(null)");
		free(b.s);
	}
	struct fd_sbuf b = { 0 };
	fd_sbuf_esc(&b, "a<b & \"c\">");
	ok(b.s && !strcmp(b.s, "a&lt;b &amp; &quot;c&quot;&gt;"), "XML escaping");
	free(b.s);

	/* numpy.histogram([0, 0.1, 0.5, 0.99, 1.0, 1.5, -1, nan], bins=4, range=(0, 1))
	 * -> [2, 0, 1, 2], edges [0, .25, .5, .75, 1] */
	double x[8] = { 0, 0.1, 0.5, 0.99, 1.0, 1.5, -1, NAN }, edge[5], cnt[4];
	fd_fig_hist(x, 8, 0, 1, 4, edge, cnt);
	ok(cnt[0] == 2 && cnt[1] == 0 && cnt[2] == 1 && cnt[3] == 2, "histogram counts as numpy");
	ok(edge[0] == 0 && edge[2] == 0.5 && edge[4] == 1, "histogram edges as numpy");

	struct fd_err e;
	struct fd_fig f = { "f", "t", "x", "y", NAN, NAN, NAN, NAN, NULL, 0, NULL, 0 };
	ok(!fd_fig_svg(&f, &e) && strstr(e.msg, "no series"), "no series: an error");
	double nx[2] = { NAN, NAN };
	struct fd_fig_series s = { "s", FD_FIG_LINE, nx, nx, NULL, 2, 0, -1 };
	f.s = &s;
	f.ns = 1;
	ok(!fd_fig_svg(&f, &e) && strstr(e.msg, "no finite values"), "all NaN: an error");
	double xs[3] = { 1, 2, 3 }, ys[3] = { 0.5, NAN, 0.7 };
	s.x = xs;
	s.y = ys;
	s.n = 3;
	char *svg = fd_fig_svg(&f, &e);
	ok(svg && strstr(svg, "data-y=\"0.5 nan 0.69999999999999996\""), "data-y keeps every value, %%.17g");
	ok(svg && strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"") && strstr(svg, "</svg>\n"),
	   "a standalone SVG document");
	free(svg);
	return tap_done();
}
