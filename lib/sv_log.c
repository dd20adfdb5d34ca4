/*
 * sv_log.c - the core library's logging callback.
 *
 * The host installs one callback at start-up; messages are formatted into a
 * fixed stack buffer (truncated, never allocated) and handed over. Callers
 * pass classes of failure only, never key material or data.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "sv_log.h"

#define SV_LOG_MSG_MAX 1024

static sv_log_fn log_fn;
static void *log_ctx;

void
sv_log_set(sv_log_fn fn, void *ctx)
{
    log_fn = fn;
    log_ctx = ctx;
}

void
sv_log(sv_log_level level, const char *fmt, ...)
{
    char msg[SV_LOG_MSG_MAX];
    sv_log_fn fn = log_fn;
    va_list ap;

    if (fn == NULL)
        return;
    va_start(ap, fmt);
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
        msg[0] = '\0';
    va_end(ap);
    fn(log_ctx, level, msg);
}

/*
 * Drain this thread's OpenSSL error queue into one message
 * "what: lib:reason; lib:reason" (truncated to fit), emitted at level.
 * The queue is empty afterwards whether or not a callback is installed.
 * OpenSSL's error data strings describe failures (file names, algorithm
 * names); they never carry key material.
 */
void
sv_log_openssl(sv_log_level level, const char *what)
{
    char msg[SV_LOG_MSG_MAX];
    char one[256];
    const char *data = NULL;
    unsigned long e;
    size_t off;
    int flags = 0, n, count = 0;

    if (log_fn == NULL) {
        ERR_clear_error();
        return;
    }
    n = snprintf(msg, sizeof(msg), "%s: ", what != NULL ? what : "openssl");
    off = (n < 0) ? 0 : ((size_t)n >= sizeof(msg) ? sizeof(msg) - 1 : (size_t)n);
    msg[off] = '\0';

    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        ERR_error_string_n(e, one, sizeof(one));
        if (off < sizeof(msg) - 1) {
            n = snprintf(msg + off, sizeof(msg) - off, "%s%s%s%s",
                         count > 0 ? "; " : "", one,
                         (data != NULL && (flags & ERR_TXT_STRING) && *data) ? " " : "",
                         (data != NULL && (flags & ERR_TXT_STRING)) ? data : "");
            if (n > 0)
                off += (size_t)n < sizeof(msg) - off ? (size_t)n : sizeof(msg) - off - 1;
        }
        count++;
        data = NULL;
        flags = 0;
    }
    if (count == 0 && off < sizeof(msg) - 1)
        (void)snprintf(msg + off, sizeof(msg) - off, "no detail from OpenSSL");
    ERR_clear_error();
    sv_log(level, "%s", msg);
}
