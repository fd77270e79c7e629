/* fd_progress: terminal bar or plain lines, with rate and ETA. */
#include "core/fd_progress.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

double fd_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void fd_progress_init(struct fd_progress *p, FILE *f, const char *label, uint64_t total)
{
	memset(p, 0, sizeof *p);
	p->f = f;
	snprintf(p->label, sizeof p->label, "%s", label);
	p->total = total;
	p->t0 = p->last = fd_now();
	p->tty = f && isatty(fileno(f));
	p->last_decile = -1;
}

static void fmt_time(char *buf, size_t n, double s)
{
	if (s < 0 || s > 1e7)
		snprintf(buf, n, "?");
	else if (s < 60)
		snprintf(buf, n, "%.0fs", s);
	else if (s < 3600)
		snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
	else
		snprintf(buf, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

static void draw(struct fd_progress *p, double now)
{
	double el = now - p->t0;
	double rate = el > 0 ? (double)p->done / el : 0;
	char eta[32] = "?";
	if (p->total && rate > 0)
		fmt_time(eta, sizeof eta, (double)(p->total - p->done) / rate);
	if (p->tty) {
		int width = 30, fill = p->total ? (int)(width * p->done / p->total) : 0;
		char bar[64];
		for (int i = 0; i < width; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[width] = '\0';
		fprintf(p->f, "\r%s [%s] %llu/%llu %.1f/s ETA %s %s\033[K", p->label, bar,
			(unsigned long long)p->done, (unsigned long long)p->total, rate, eta, p->extra);
	} else {
		fprintf(p->f, "%s: %llu/%llu %.1f/s ETA %s %s\n", p->label, (unsigned long long)p->done,
			(unsigned long long)p->total, rate, eta, p->extra);
	}
	fflush(p->f);
}

void fd_progress_add(struct fd_progress *p, uint64_t n)
{
	if (!p->f)
		return;
	p->done += n;
	double now = fd_now();
	if (p->tty) {
		if (now - p->last >= 0.1 || p->done == p->total) {
			p->last = now;
			draw(p, now);
		}
	} else if (p->total) {
		int dec = (int)(10 * p->done / p->total);
		if (dec != p->last_decile && dec < 10) {
			p->last_decile = dec;
			draw(p, now);
		}
	}
}

void fd_progress_end(struct fd_progress *p)
{
	if (!p->f)
		return;
	double el = fd_now() - p->t0;
	if (p->tty)
		fputs("\r\033[K", p->f);
	fprintf(p->f, "%s: %llu done in %.1fs (%.1f/s)%s%s\n", p->label, (unsigned long long)p->done, el,
		el > 0 ? (double)p->done / el : 0.0, p->extra[0] ? " " : "", p->extra);
	fflush(p->f);
}
