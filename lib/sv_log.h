/*
 * sv_log.h - logging from the core library through a callback.
 *
 * The core has no idea whether it runs inside httpd, the daemon or a tool:
 * each host installs a callback once at start-up (ap_log_error in the module,
 * the daemon's logger, stderr in tools). Without a callback, messages are
 * dropped. Core code logs classes of failure, never key material or data.
 */
#ifndef SV_LOG_H
#define SV_LOG_H

typedef enum {
    SV_LOG_ERR = 0,
    SV_LOG_WARN = 1,
    SV_LOG_INFO = 2,
    SV_LOG_DEBUG = 3
} sv_log_level;

typedef void (*sv_log_fn)(void *ctx, sv_log_level level, const char *msg);

/* Install fn (NULL to silence). Not thread-safe: call once at start-up. */
void sv_log_set(sv_log_fn fn, void *ctx);

/* Format and emit one message (truncated at 1023 bytes). */
void sv_log(sv_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Log, at level, the text of OpenSSL's error queue after "what: ", then
 * clear the queue. */
void sv_log_openssl(sv_log_level level, const char *what);

#endif /* SV_LOG_H */
