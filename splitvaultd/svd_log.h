/*
 * svd_log.h - the daemon's own log (operations, not the audit trail).
 *
 * One line per message: "<UTC time> splitvaultd[pid]: <level>: <text>",
 * written with a single write(2) so lines from several threads never mix.
 * Goes to stderr (the default, for foreground runs and supervisors) or to a
 * file opened before privileges are dropped. Messages name classes of
 * failure, peers, record ids and share ids; never key material or data.
 */
#ifndef SVD_LOG_H
#define SVD_LOG_H

#include "sv_log.h"

/* Open path for appending (NULL: stderr; a regular file only, see
 * svd_file.h) and install the core library's callback. Returns 0, or -1
 * with err set. */
int svd_log_open(const char *path, char *err, size_t errlen);

/* Messages above level are dropped (SV_LOG_ERR .. SV_LOG_DEBUG). */
void svd_log_set_level(sv_log_level level);

void svd_log(sv_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define svd_err(...) svd_log(SV_LOG_ERR, __VA_ARGS__)
#define svd_warn(...) svd_log(SV_LOG_WARN, __VA_ARGS__)
#define svd_info(...) svd_log(SV_LOG_INFO, __VA_ARGS__)
#define svd_debug(...) svd_log(SV_LOG_DEBUG, __VA_ARGS__)

/* Log OpenSSL's error queue at level after "what: ", then clear it. */
void svd_log_openssl(sv_log_level level, const char *what);

#endif /* SVD_LOG_H */
