/*
 * svd_log.c - the daemon's operational log and small shared utilities.
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

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "svd.h"
#include "svd_log.h"
#include "sv_secret.h"

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
svd_log_open(const char *path)
{
    int fd;

    if (path != NULL && *path != '\0') {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
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

uint64_t
svd_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t
svd_wall_s(void)
{
    return (uint64_t)time(NULL);
}

/*
 * Per-thread cache of released secret blocks, for threads that ask for it
 * (connection threads: every request allocates the same few sizes, and each
 * secure-heap allocation and release takes OpenSSL's global secure-heap lock
 * and walks its buddy lists, 1.7 us a pair). A block is cleansed when
 * released, so a cached block holds zeros only; blocks are power-of-two
 * sized (what the secure heap hands out anyway) up to SECRET_CACHE_MAX, and
 * at most SECRET_CACHE_SLOTS are kept. svd_secret_cache_end() gives them
 * back when the thread ends.
 */
#define SECRET_CACHE_SLOTS 8
#define SECRET_CACHE_MAX 8192
#define SECRET_CACHE_MIN 32

static __thread int secret_cache_on;
static __thread struct {
    void *p;
    size_t cap;
} secret_cache[SECRET_CACHE_SLOTS];

/* The block size used for n bytes, or 0 when n is not cached. */
static size_t
secret_class(size_t n)
{
    size_t c = SECRET_CACHE_MIN;

    if (!secret_cache_on || n > SECRET_CACHE_MAX)
        return 0;
    while (c < n)
        c <<= 1;
    return c;
}

static void *
secret_alloc_raw(size_t n)
{
    void *p = sv_secret_alloc(n);

    if (p == NULL)
        p = OPENSSL_zalloc(n == 0 ? 1 : n); /* sv_secret_free cleanses it too */
    return p;
}

void *
svd_secret_alloc(size_t n)
{
    size_t c = secret_class(n);

    if (c == 0)
        return secret_alloc_raw(n);
    for (unsigned i = 0; i < SECRET_CACHE_SLOTS; i++)
        if (secret_cache[i].p != NULL && secret_cache[i].cap == c) {
            void *p = secret_cache[i].p;
            secret_cache[i].p = NULL;
            return p; /* all zeros: cleansed when released */
        }
    return secret_alloc_raw(c);
}

void
svd_secret_free(void *p, size_t n)
{
    size_t c;

    if (p == NULL)
        return;
    if ((c = secret_class(n)) == 0) {
        sv_secret_free(p, n);
        return;
    }
    /* the caller used at most n bytes of the c-byte block, which was all
     * zeros when handed out: cleansing n bytes makes it all zeros again */
    sv_cleanse(p, n == 0 ? 1 : n);
    for (unsigned i = 0; i < SECRET_CACHE_SLOTS; i++)
        if (secret_cache[i].p == NULL) {
            secret_cache[i].p = p;
            secret_cache[i].cap = c;
            return;
        }
    sv_secret_free(p, c);
}

void
svd_secret_cache_begin(void)
{
    secret_cache_on = 1;
}

void
svd_secret_cache_end(void)
{
    for (unsigned i = 0; i < SECRET_CACHE_SLOTS; i++)
        if (secret_cache[i].p != NULL) {
            sv_secret_free(secret_cache[i].p, secret_cache[i].cap);
            secret_cache[i].p = NULL;
        }
    secret_cache_on = 0;
}

void
svd_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
svd_unhex(const char *s, size_t slen, uint8_t *out, size_t n)
{
    int r = -1;

    if (s == NULL || slen != 2 * n)
        goto out;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            goto out;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    r = 0;
out:
    return r;
}

void
svd_done_init(struct svd_done *d)
{
    AZ(pthread_mutex_init(&d->mu, NULL));
    AZ(pthread_cond_init(&d->cv, NULL));
    d->posted = 0;
    d->result = -1;
}

void
svd_done_post(struct svd_done *d, int result)
{
    AZ(pthread_mutex_lock(&d->mu));
    d->result = result;
    d->posted = 1;
    AZ(pthread_cond_signal(&d->cv));
    AZ(pthread_mutex_unlock(&d->mu));
}

int
svd_done_wait(struct svd_done *d)
{
    int r;

    AZ(pthread_mutex_lock(&d->mu));
    while (!d->posted)
        AZ(pthread_cond_wait(&d->cv, &d->mu));
    r = d->result;
    AZ(pthread_mutex_unlock(&d->mu));
    /* the poster released the mutex before we could take it: safe to go */
    AZ(pthread_mutex_destroy(&d->mu));
    AZ(pthread_cond_destroy(&d->cv));
    return r;
}
