/*
 * svd_log.c - the daemon's operational log, and the assertion handler.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "svd.h"
#include "svd_file.h"
#include "svd_log.h"

#define SVD_LOG_LINE 1200

static int log_fd = 2;
static sv_log_level log_level = SV_LOG_INFO;

static const char *const level_names[] = { "error", "warning", "info", "debug" };

/* sv_log callback: core library messages go to the same log. */
static void
core_log(void *ctx, sv_log_level level, const char *msg)
{
    (void)ctx;
    svd_log(level, "core: %s", msg);
}

int
svd_log_open(const char *path, char *err, size_t errlen)
{
    int fd;

    if (path != NULL && *path != '\0') {
        fd = svd_open_regular(path, O_WRONLY | O_APPEND | O_CREAT, 0600, "process.log_file",
                              err, errlen);
        if (fd < 0)
            return -1;
        log_fd = fd;
    }
    sv_log_set(core_log, NULL);
    return 0;
}

void
svd_log_set_level(sv_log_level level)
{
    log_level = level;
}

void
svd_log(sv_log_level level, const char *fmt, ...)
{
    char line[SVD_LOG_LINE];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    size_t off;
    int n;

    if (level > log_level)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%ld]: %s: ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                 tm.tm_sec, ts.tv_nsec / 1000000L, SVD_NAME, (long)getpid(),
                 level_names[level <= SV_LOG_DEBUG ? level : SV_LOG_DEBUG]);
    off = n > 0 ? (size_t)n : 0;
    va_start(ap, fmt);
    n = vsnprintf(line + off, sizeof(line) - off - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    off += (size_t)n < sizeof(line) - off - 1 ? (size_t)n : sizeof(line) - off - 2;
    /* one line: replace control characters a message might carry */
    for (size_t i = 0; i < off; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = '?';
    line[off++] = '\n';
    (void)!write(log_fd, line, off);
}

void
svd_log_openssl(sv_log_level level, const char *what)
{
    sv_log_openssl(level, what);
}

void
svd_assert_fail(const char *func, const char *file, int line, const char *cond)
{
    svd_err("assertion failed in %s (%s:%d): %s", func, file, line, cond);
    abort();
}
