/*
 * svd_refusal.h - refusals summarised, so that whoever can reach the port
 * cannot flood the audit log (every entry is written and fsynced) or the
 * log.
 *
 * A refusal is keyed by its reason and the peer (an address, or a uid on
 * the control socket). The first of a key is written at once: one audit
 * entry, and the caller logs it. Later ones of the same key are counted and
 * written as one entry per period, "event=refusal why=... peer=...
 * count=N period=Ss", with one log line. A key is forgotten after a whole
 * period without refusals. The table is bounded; refusals of keys that do
 * not fit are counted together (why=other-refusals peer=other).
 *
 * The same summaries serve other events that anyone holding a listed
 * certificate could repeat at will (RECON_SCAN's pages): event names the
 * entries' event= token, what names them in the log.
 */
#ifndef SVD_REFUSAL_H
#define SVD_REFUSAL_H

#include <stdint.h>

struct svd_audit;
struct svd_refusals;

/* The longest extra text of a refusal's immediate entry (longer is cut). */
#define SVD_REFUSAL_EXTRA_MAX 400

struct svd_refusals *svd_refusals_new(struct svd_audit *audit, uint32_t period_ms,
                                      const char *event, const char *what);
void svd_refusals_free(struct svd_refusals *r);

/* Note one refusal (why: a token; peer: an address or "uid-N"; extra: ""
 * or " k=v" tokens for the immediate entry). Returns 1 when it was written
 * now (the caller logs it), 0 when it was counted for the summary. */
int svd_refusal(struct svd_refusals *r, const char *why, const char *peer, const char *extra);

/* Write the summaries when a period has passed (all: now, at stop). */
void svd_refusals_flush(struct svd_refusals *r, int all);

#endif /* SVD_REFUSAL_H */
