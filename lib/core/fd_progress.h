/* fd_progress: progress on stderr. On a terminal a live bar with rate and ETA,
 * redrawn at most 10 times a second; otherwise one plain line per 10% (or per
 * step when steps are few), so logs stay readable. The library itself never
 * prints: only tools create a progress with a stream. */
#ifndef FD_PROGRESS_H
#define FD_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

struct fd_progress {
	FILE *f;            /* NULL: silent */
	char label[64];
	uint64_t total;     /* 0 if unknown */
	uint64_t done;
	double t0, last;    /* seconds (monotonic) */
	int tty;
	int last_decile;
	char extra[128];    /* free text shown after the counts (loss, ...) */
};

/* f NULL (or quiet) makes every call a no-op. */
void fd_progress_init(struct fd_progress *p, FILE *f, const char *label, uint64_t total);
/* Advance by n and redraw when due. Thread-safe only when called from one thread. */
void fd_progress_add(struct fd_progress *p, uint64_t n);
/* Print the closing line ("label: N done in T s (R/s)"). */
void fd_progress_end(struct fd_progress *p);

/* Seconds on the monotonic clock. */
double fd_now(void);

#endif
