/*
 * svd_conf.c - splitvaultd.yaml parser (libyaml document API).
 *
 * The file is loaded as one YAML document; the root must be a mapping whose
 * values are mappings (sections) or scalars/sequences (keys). Every key is
 * looked up by its dotted path in keys[], which gives its type, range and
 * where it is stored. Cross-key rules are checked after the walk, naming the
 * line of the key that breaks them.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "svd.h"
#include "svd_conf.h"
#include "sv_hex.h"

#define CONF_MAX_FILE (1u << 20)
#define CONF_MAX_DEPTH 4
#define CONF_MAX_LIST 1024

enum ktype {
    K_SECTION,  /* a mapping of further keys */
    K_STR,      /* non-empty string */
    K_UINT,     /* integer in [min, max] */
    K_DURATION, /* duration in ms, in [min, max] */
    K_DURATION_S, /* duration stored in seconds */
    K_SIZE,     /* bytes, power of two, in [min, max] */
    K_BYTES,    /* bytes (any value, 64 bits) in [min, max] */
    K_BOOL,
    K_DRIVER,
    K_LEVEL,
    K_ROLE,     /* sequence of SHA-256 hex fingerprints of one role (role) */
    K_CIDRS,    /* sequence of CIDR blocks */
    K_REMOVED   /* a key of an earlier version: an error that says what replaced it */
};

struct key {
    const char *path;
    enum ktype type;
    size_t off;                 /* where in struct svd_conf */
    uint64_t min, max;
    unsigned role;              /* K_ROLE: SVD_ROLE_* */
};

#define O(f) offsetof(struct svd_conf, f)
#define DAY_MS (86400ull * 1000)

static const struct key keys[] = {
    { "listen", K_SECTION, 0, 0, 0, 0 },
    { "listen.address", K_STR, O(listen_address), 0, 0, 0 },
    { "listen.port", K_UINT, O(listen_port), 1, 65535, 0 },
    { "listen.backlog", K_UINT, O(backlog), 1, 4096, 0 },
    { "tls", K_SECTION, 0, 0, 0, 0 },
    { "tls.certificate", K_STR, O(tls_cert), 0, 0, 0 },
    { "tls.key", K_STR, O(tls_key), 0, 0, 0 },
    { "tls.client_ca", K_STR, O(tls_ca), 0, 0, 0 },
    { "tls.pinned_clients", K_REMOVED, 0, 0, 0, 0 },
    { "clients", K_SECTION, 0, 0, 0, 0 },
    { "clients.allow", K_CIDRS, 0, 0, 0, 0 },
    { "clients.frontend", K_ROLE, 0, 0, 0, SVD_ROLE_FRONTEND },
    { "clients.reconcile", K_ROLE, 0, 0, 0, SVD_ROLE_RECONCILE },
    { "clients.monitor", K_ROLE, 0, 0, 0, SVD_ROLE_MONITOR },
    { "clients.allow_combined_roles", K_BOOL, O(combined_roles), 0, 0, 0 },
    { "connections", K_SECTION, 0, 0, 0, 0 },
    { "connections.max", K_UINT, O(max_connections), 1, 1024, 0 },
    { "connections.max_handshakes", K_UINT, O(max_handshakes), 1, 1024, 0 },
    { "connections.max_handshakes_per_address", K_UINT, O(max_handshakes_per_addr), 1, 1024, 0 },
    { "connections.handshake_timeout", K_DURATION, O(handshake_timeout_ms), 100, 600000, 0 },
    { "connections.idle_timeout", K_DURATION, O(idle_timeout_ms), 100, 86400000, 0 },
    { "connections.io_timeout", K_DURATION, O(io_timeout_ms), 100, 600000, 0 },
    { "store", K_SECTION, 0, 0, 0, 0 },
    { "store.driver", K_DRIVER, O(driver), 0, 0, 0 },
    { "store.path", K_STR, O(store_path), 0, 0, 0 },
    { "store.params", K_STR, O(store_params), 0, 0, 0 },
    { "store.readers", K_UINT, O(store_readers), 1, 64, 0 },
    { "store.batch_max", K_UINT, O(batch_max), 1, 10000, 0 },
    { "store.timeout", K_DURATION, O(store_timeout_ms), 1000, 600000, 0 },
    { "store.min_free", K_BYTES, O(min_free), 0, 1ull << 50, 0 },
    { "decrypt", K_SECTION, 0, 0, 0, 0 },
    { "decrypt.global_rate", K_SECTION, 0, 0, 0, 0 },
    { "decrypt.global_rate.interval", K_DURATION, O(global.interval_ms), 0, DAY_MS, 0 },
    { "decrypt.global_rate.burst", K_UINT, O(global.burst), 1, 100000, 0 },
    { "decrypt.actor_rate", K_SECTION, 0, 0, 0, 0 },
    { "decrypt.actor_rate.interval", K_DURATION, O(actor.interval_ms), 0, DAY_MS, 0 },
    { "decrypt.actor_rate.burst", K_UINT, O(actor.burst), 1, 100000, 0 },
    { "decrypt.max_actors", K_UINT, O(max_actors), 1, 1000000, 0 },
    { "decrypt.queue", K_SECTION, 0, 0, 0, 0 },
    { "decrypt.queue.max_length", K_UINT, O(queue_max), 0, 100000, 0 },
    { "decrypt.queue.max_wait", K_DURATION, O(queue_max_wait_ms), 0, 3600000, 0 },
    { "decrypt.lockdown_threshold", K_UINT, O(lockdown_threshold), 0, 100000, 0 },
    { "decrypt.daily_budget", K_SECTION, 0, 0, 0, 0 },
    { "decrypt.daily_budget.global", K_UINT, O(budget_global), 0, 1000000, 0 },
    { "decrypt.daily_budget.actor", K_UINT, O(budget_actor), 0, 1000000, 0 },
    { "reconcile", K_SECTION, 0, 0, 0, 0 },
    { "reconcile.min_grace", K_DURATION_S, O(min_grace_s), 0, 365ull * DAY_MS, 0 },
    { "retention", K_SECTION, 0, 0, 0, 0 },
    { "retention.period", K_DURATION_S, O(retention_s), 0, 3650ull * DAY_MS, 0 },
    { "retention.purge_batch", K_UINT, O(purge_batch), 1, 100000, 0 },
    { "retention.daily_budget", K_UINT, O(retire_budget), 0, 100000000, 0 },
    { "audit", K_SECTION, 0, 0, 0, 0 },
    { "audit.path", K_STR, O(audit_path), 0, 0, 0 },
    { "audit.head", K_STR, O(audit_head), 0, 0, 0 },
    { "audit.refusal_period", K_DURATION, O(refusal_period_ms), 1000, 3600000, 0 },
    { "control", K_SECTION, 0, 0, 0, 0 },
    { "control.socket", K_STR, O(ctl_socket), 0, 0, 0 },
    { "control.admin_group", K_STR, O(admin_group), 0, 0, 0 },
    { "process", K_SECTION, 0, 0, 0, 0 },
    { "process.user", K_STR, O(user), 0, 0, 0 },
    { "process.log_file", K_STR, O(log_file), 0, 0, 0 },
    { "process.log_level", K_LEVEL, O(log_level), 0, 0, 0 },
    { "process.pid_file", K_STR, O(pid_file), 0, 0, 0 },
    { "process.secure_heap", K_SIZE, O(secure_heap), 65536, 1ull << 30, 0 },
    { "process.mlock", K_BOOL, O(mlock), 0, 0, 0 },
};

#define NKEYS SVD_ARRAY_LEN(keys)

struct pctx {
    const char *file;
    yaml_document_t *doc;
    struct svd_conf *c;
    char *err;
    size_t errlen;
    unsigned long line[NKEYS]; /* where each key was set (0: not set) */
};

static int
perr(struct pctx *p, unsigned long line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Format "file:line: key: message" into p->err; always returns -1. */
static int
perr(struct pctx *p, unsigned long line, const char *key, const char *fmt, ...)
{
    char msg[SVD_ERRBUF];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (key != NULL)
        snprintf(p->err, p->errlen, "%s:%lu: %s: %s", p->file, line, key, msg);
    else
        snprintf(p->err, p->errlen, "%s:%lu: %s", p->file, line, msg);
    return -1;
}

static char *
xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);

    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

int
svd_parse_u64(const char *s, uint64_t *v)
{
    char *end;
    unsigned long long x;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    x = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *v = x;
    return 0;
}

int
svd_parse_duration_ms(const char *s, uint64_t *ms)
{
    char *end;
    unsigned long long v;
    uint64_t mult;

    if (s == NULL || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        return -1;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else if (strcmp(end, "d") == 0)
        mult = 86400000;
    else if (*end == '\0' && v == 0)
        mult = 1;
    else
        return -1;
    if (v > UINT64_MAX / mult)
        return -1;
    *ms = v * mult;
    return 0;
}

int
svd_parse_size(const char *s, uint64_t *bytes)
{
    char *end;
    unsigned long long v;
    uint64_t mult;

    if (s == NULL || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        return -1;
    if (*end == '\0')
        mult = 1;
    else if (strcmp(end, "KiB") == 0)
        mult = 1024;
    else if (strcmp(end, "MiB") == 0)
        mult = 1024 * 1024;
    else if (strcmp(end, "GiB") == 0)
        mult = 1024 * 1024 * 1024;
    else
        return -1;
    if (v > UINT64_MAX / mult)
        return -1;
    *bytes = v * mult;
    return 0;
}

int
svd_cidr_parse(const char *s, struct svd_cidr *c)
{
    char buf[INET6_ADDRSTRLEN + 8];
    char *slash, *end;
    unsigned long prefix;
    unsigned maxp, i;
    int r = -1;

    memset(c, 0, sizeof(*c));
    if (strlen(s) >= sizeof(buf))
        goto out;
    memcpy(buf, s, strlen(s) + 1);
    slash = strchr(buf, '/');
    if (slash != NULL)
        *slash++ = '\0';
    if (inet_pton(AF_INET, buf, c->addr) == 1) {
        c->family = AF_INET;
        maxp = 32;
    } else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
        c->family = AF_INET6;
        maxp = 128;
    } else {
        goto out;
    }
    if (slash != NULL) {
        if (!isdigit((unsigned char)*slash))
            goto out;
        errno = 0;
        prefix = strtoul(slash, &end, 10);
        if (errno != 0 || *end != '\0' || prefix > maxp)
            goto out;
    } else {
        prefix = maxp;
    }
    c->prefix = (unsigned)prefix;
    /* clear host bits so that matching compares whole bytes */
    for (i = 0; i < maxp / 8; i++) {
        unsigned bits = i * 8 >= c->prefix ? 0 : (c->prefix - i * 8 >= 8 ? 8 : c->prefix - i * 8);
        c->addr[i] &= (uint8_t)(0xff00u >> bits);
    }
    r = 0;
out:
    return r;
}

int
svd_cidr_match(const struct svd_cidr *c, const struct sockaddr *sa)
{
    const uint8_t *a;
    uint8_t mapped[16];
    unsigned i, full, rest;
    int family = sa->sa_family;

    if (family == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (family == AF_INET6) {
        a = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
        /* an IPv4-mapped peer on a dual-stack socket matches IPv4 rules */
        if (c->family == AF_INET &&
            IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
            memcpy(mapped, a + 12, 4);
            a = mapped;
            family = AF_INET;
        }
    } else {
        return 0;
    }
    if (family != c->family)
        return 0;
    full = c->prefix / 8;
    rest = c->prefix % 8;
    for (i = 0; i < full; i++)
        if (a[i] != c->addr[i])
            return 0;
    if (rest != 0 && (a[full] & (uint8_t)(0xff00u >> rest)) != c->addr[full])
        return 0;
    return 1;
}

static const struct key *
find_key(const char *path)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].path, path) == 0)
            return &keys[i];
    return NULL;
}

static const char *
scalar(yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* A plain (unquoted) scalar such as 12 or true; quoted strings are strings. */
static int
plain(yaml_node_t *n)
{
    return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static int
set_uint(struct pctx *p, const struct key *k, yaml_node_t *n, uint64_t v)
{
    char *base = (char *)p->c;

    if (v < k->min || v > k->max)
        return perr(p, n->start_mark.line + 1, k->path,
                    "value %llu out of range %llu..%llu", (unsigned long long)v,
                    (unsigned long long)k->min, (unsigned long long)k->max);
    switch (k->type) {
    case K_SIZE:
        *(size_t *)(base + k->off) = (size_t)v;
        break;
    default:
        /* every integer key is an unsigned or uint32_t field (same width) */
        _Static_assert(sizeof(unsigned) == sizeof(uint32_t), "unsigned is 32 bits");
        *(uint32_t *)(base + k->off) = (uint32_t)v;
        break;
    }
    return 0;
}

/* Store one scalar key. */
static int
set_scalar(struct pctx *p, const struct key *k, yaml_node_t *n, unsigned long keyline)
{
    char *base = (char *)p->c;
    unsigned long line = n->type == YAML_SCALAR_NODE ? n->start_mark.line + 1 : keyline;
    const char *s;
    uint64_t v;

    if (n->type != YAML_SCALAR_NODE)
        return perr(p, line, k->path, "expected a single value, not a %s",
                    n->type == YAML_MAPPING_NODE ? "mapping" : "list");
    s = scalar(n);
    switch (k->type) {
    case K_STR:
        if (*s == '\0')
            return perr(p, line, k->path, "must not be empty");
        if (strlen(s) > 4096)
            return perr(p, line, k->path, "value too long");
        free(*(char **)(base + k->off));
        if ((*(char **)(base + k->off) = xstrdup(s)) == NULL)
            return perr(p, line, k->path, "out of memory");
        return 0;
    case K_UINT:
        if (!plain(n) || svd_parse_u64(s, &v) != 0)
            return perr(p, line, k->path, "expected an unsigned integer, got \"%s\"", s);
        return set_uint(p, k, n, v);
    case K_DURATION:
    case K_DURATION_S:
        if (svd_parse_duration_ms(s, &v) != 0)
            return perr(p, line, k->path,
                        "expected a duration such as 250ms, 15s, 2m, 1h, 1d, got \"%s\"", s);
        if (v < k->min || v > k->max)
            return perr(p, line, k->path, "duration %s out of range %llums..%llums", s,
                        (unsigned long long)k->min, (unsigned long long)k->max);
        if (k->type == K_DURATION_S) {
            if (v % 1000 != 0)
                return perr(p, line, k->path, "must be a whole number of seconds");
            *(uint32_t *)(base + k->off) = (uint32_t)(v / 1000);
        } else {
            *(uint32_t *)(base + k->off) = (uint32_t)v;
        }
        return 0;
    case K_SIZE:
        if (svd_parse_size(s, &v) != 0)
            return perr(p, line, k->path, "expected a size such as 65536, 64KiB or 8MiB, got \"%s\"", s);
        if ((v & (v - 1)) != 0)
            return perr(p, line, k->path, "must be a power of two");
        return set_uint(p, k, n, v);
    case K_BYTES:
        if (svd_parse_size(s, &v) != 0)
            return perr(p, line, k->path, "expected a size such as 0, 512MiB or 2GiB, got \"%s\"",
                        s);
        if (v < k->min || v > k->max)
            return perr(p, line, k->path, "size %s out of range", s);
        *(uint64_t *)(base + k->off) = v;
        return 0;
    case K_BOOL:
        if (plain(n) && strcmp(s, "true") == 0)
            *(int *)(base + k->off) = 1;
        else if (plain(n) && strcmp(s, "false") == 0)
            *(int *)(base + k->off) = 0;
        else
            return perr(p, line, k->path, "expected true or false, got \"%s\"", s);
        return 0;
    case K_DRIVER:
        if (strcmp(s, "sqlite3") == 0)
            p->c->driver = SVD_DRIVER_SQLITE3;
        else if (strcmp(s, "pgsql") == 0)
            p->c->driver = SVD_DRIVER_PGSQL;
        else
            return perr(p, line, k->path, "expected sqlite3 or pgsql, got \"%s\"", s);
        return 0;
    case K_LEVEL:
        if (strcmp(s, "error") == 0)
            p->c->log_level = SV_LOG_ERR;
        else if (strcmp(s, "warning") == 0)
            p->c->log_level = SV_LOG_WARN;
        else if (strcmp(s, "info") == 0)
            p->c->log_level = SV_LOG_INFO;
        else if (strcmp(s, "debug") == 0)
            p->c->log_level = SV_LOG_DEBUG;
        else
            return perr(p, line, k->path, "expected error, warning, info or debug, got \"%s\"", s);
        return 0;
    default:
        break;
    }
    return perr(p, line, k->path, "internal: bad key type");
}

/* Parse a fingerprint: hex, either case, colons allowed. 0 or -1. */
static int
parse_fp(const char *s, uint8_t out[SVD_PIN_LEN])
{
    char fp[2 * SVD_PIN_LEN + 1];
    size_t j, o = 0;

    for (j = 0; s[j] != '\0' && o < sizeof(fp) - 1; j++)
        if (s[j] != ':')
            fp[o++] = s[j];
    fp[o] = '\0';
    return s[j] == '\0' && sv_hex_decode(fp, o, out, SVD_PIN_LEN) == SV_OK ? 0 : -1;
}

/* Add a certificate to one role; a certificate already listed (in another
 * role's list) gains the role, which validate() refuses unless
 * clients.allow_combined_roles is true. */
static int
add_client(struct pctx *p, const struct key *k, const uint8_t fp[SVD_PIN_LEN],
           unsigned long line, unsigned entry)
{
    struct svd_conf *c = p->c;
    struct svd_client *nc;

    for (unsigned i = 0; i < c->nclients; i++)
        if (memcmp(c->clients[i].fp, fp, SVD_PIN_LEN) == 0) {
            if (c->clients[i].roles & k->role)
                return perr(p, line, k->path, "entry %u: listed twice", entry);
            c->clients[i].roles |= k->role;
            return 0;
        }
    if (c->nclients >= CONF_MAX_LIST)
        return perr(p, line, k->path, "more than %u client certificates", CONF_MAX_LIST);
    if ((nc = realloc(c->clients, (c->nclients + 1) * sizeof(*nc))) == NULL)
        return perr(p, line, k->path, "out of memory");
    c->clients = nc;
    memcpy(nc[c->nclients].fp, fp, SVD_PIN_LEN);
    nc[c->nclients].roles = k->role;
    nc[c->nclients].line = line;
    c->nclients++;
    return 0;
}

/* Store a sequence key (a role's certificates, or CIDR blocks). */
static int
set_list(struct pctx *p, const struct key *k, yaml_node_t *n, unsigned long keyline)
{
    unsigned long line = keyline;
    yaml_node_item_t *it;
    unsigned count, i = 0;

    if (n->type != YAML_SEQUENCE_NODE)
        return perr(p, line, k->path, "expected a list");
    count = (unsigned)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count > CONF_MAX_LIST)
        return perr(p, line, k->path, "more than %u entries", CONF_MAX_LIST);
    if (k->type == K_CIDRS) {
        free(p->c->allow);
        p->c->allow = NULL;
        p->c->nallow = 0;
        if (count > 0 && (p->c->allow = calloc(count, sizeof(*p->c->allow))) == NULL)
            return perr(p, line, k->path, "out of memory");
    }
    for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++, i++) {
        yaml_node_t *e = yaml_document_get_node(p->doc, *it);
        uint8_t fp[SVD_PIN_LEN];
        const char *s;

        if (e == NULL || e->type != YAML_SCALAR_NODE)
            return perr(p, e ? e->start_mark.line + 1 : line, k->path,
                        "entry %u: expected a single value", i + 1);
        s = scalar(e);
        if (k->type == K_ROLE) {
            if (parse_fp(s, fp) != 0)
                return perr(p, e->start_mark.line + 1, k->path,
                            "entry %u: expected a certificate's SHA-256 fingerprint (64 hex "
                            "digits), got \"%s\"", i + 1, s);
            if (add_client(p, k, fp, e->start_mark.line + 1, i + 1) != 0)
                return -1;
        } else {
            if (svd_cidr_parse(s, &p->c->allow[i]) != 0)
                return perr(p, e->start_mark.line + 1, k->path,
                            "entry %u: expected an address or CIDR block such as 127.0.0.1/32, got \"%s\"",
                            i + 1, s);
            p->c->nallow++;
        }
    }
    return 0;
}

unsigned
svd_conf_client_roles(const struct svd_conf *c, const uint8_t fp[SVD_PIN_LEN])
{
    for (unsigned i = 0; i < c->nclients; i++)
        if (memcmp(c->clients[i].fp, fp, SVD_PIN_LEN) == 0)
            return c->clients[i].roles;
    return 0;
}

const char *
svd_role_name(unsigned roles)
{
    static const char *const names[8] = {
        "none", "frontend", "reconcile", "frontend+reconcile", "monitor", "frontend+monitor",
        "reconcile+monitor", "frontend+reconcile+monitor",
    };

    return names[roles & 7u];
}

/* Walk a mapping node whose keys live under prefix ("" for the root). */
static int
walk(struct pctx *p, yaml_node_t *map, const char *prefix, int depth)
{
    yaml_node_pair_t *pair;

    if (depth > CONF_MAX_DEPTH)
        return perr(p, map->start_mark.line + 1, prefix, "nested too deeply");
    for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
        yaml_node_t *kn = yaml_document_get_node(p->doc, pair->key);
        yaml_node_t *vn = yaml_document_get_node(p->doc, pair->value);
        char path[128];
        const struct key *k;
        unsigned long line;
        int r;

        if (kn == NULL || vn == NULL)
            return perr(p, map->start_mark.line + 1, prefix, "malformed mapping");
        line = kn->start_mark.line + 1;
        if (kn->type != YAML_SCALAR_NODE)
            return perr(p, line, NULL, "keys must be plain names");
        if ((size_t)snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "",
                             scalar(kn)) >= sizeof(path))
            return perr(p, line, NULL, "key name too long");
        if ((k = find_key(path)) == NULL)
            return perr(p, line, path, "unknown key");
        if (p->line[k - keys] != 0)
            return perr(p, line, path, "duplicate key (first set on line %lu)", p->line[k - keys]);
        p->line[k - keys] = line;
        if (k->type == K_SECTION) {
            if (vn->type == YAML_SCALAR_NODE && plain(vn) && *scalar(vn) == '\0')
                continue; /* an empty section ("tls:") is allowed */
            if (vn->type != YAML_MAPPING_NODE)
                return perr(p, line, path, "expected a section (a mapping of keys)");
            r = walk(p, vn, path, depth + 1);
        } else if (k->type == K_REMOVED) {
            r = perr(p, line, path, "no longer supported: list each client certificate "
                     "under clients.frontend, clients.reconcile or clients.monitor (its role)");
        } else if (k->type == K_ROLE || k->type == K_CIDRS) {
            r = set_list(p, k, vn, line);
        } else {
            r = set_scalar(p, k, vn, line);
        }
        if (r != 0)
            return r;
    }
    return 0;
}

static unsigned long
key_line(struct pctx *p, const char *path)
{
    const struct key *k = find_key(path);

    return k != NULL ? p->line[k - keys] : 0;
}

static int
is_set(struct pctx *p, const char *path)
{
    return key_line(p, path) != 0;
}

/* Rules that involve more than one key, or required keys. */
static int
validate(struct pctx *p, unsigned long last_line)
{
    struct svd_conf *c = p->c;
    static const char *const required[] = {
        "tls.certificate", "tls.key", "tls.client_ca", "audit.path", "control.socket",
    };

    for (size_t i = 0; i < SVD_ARRAY_LEN(required); i++)
        if (!is_set(p, required[i]))
            return perr(p, last_line, required[i], "required key missing");
    if (c->driver == SVD_DRIVER_SQLITE3) {
        if (c->store_path == NULL)
            return perr(p, key_line(p, "store.driver") ? key_line(p, "store.driver") : last_line,
                        "store.path", "required with driver sqlite3");
        if (c->store_params != NULL)
            return perr(p, key_line(p, "store.params"), "store.params",
                        "only for driver pgsql (sqlite3 uses store.path)");
    } else {
        if (c->store_params == NULL)
            return perr(p, key_line(p, "store.driver"), "store.params",
                        "required with driver pgsql");
        if (c->store_path != NULL)
            return perr(p, key_line(p, "store.path"), "store.path",
                        "only for driver sqlite3 (pgsql uses store.params)");
    }
    if (c->lockdown_threshold > c->queue_max)
        return perr(p, key_line(p, "decrypt.lockdown_threshold") ?
                    key_line(p, "decrypt.lockdown_threshold") : key_line(p, "decrypt.queue.max_length"),
                    "decrypt.lockdown_threshold",
                    "%u is above decrypt.queue.max_length (%u): the queue could never reach it",
                    c->lockdown_threshold, c->queue_max);
    if (c->nallow == 0)
        return perr(p, key_line(p, "clients.allow"), "clients.allow",
                    "an empty allow-list would refuse every client");
    if (c->nclients == 0)
        return perr(p, key_line(p, "clients") ? key_line(p, "clients") : last_line,
                    "clients.frontend", "no client certificate is listed: list the module's "
                    "certificate (the SHA-256 of its DER) under clients.frontend, and the "
                    "reconcile tool's under clients.reconcile");
    for (unsigned i = 0; i < c->nclients && !c->combined_roles; i++)
        if ((c->clients[i].roles & (c->clients[i].roles - 1)) != 0)
            return perr(p, c->clients[i].line, "clients",
                        "a certificate is listed with two roles (%s): a front end that also "
                        "holds the reconcile role can retire any share; give each role its "
                        "own certificate, or set clients.allow_combined_roles: true",
                        svd_role_name(c->clients[i].roles));
    if (c->min_grace_s < SVD_MIN_GRACE_FLOOR_S)
        return perr(p, key_line(p, "reconcile.min_grace"), "reconcile.min_grace",
                    "%us is below %us: the module commits a submission or a rotation up to "
                    "600 s after the request that stored its shares, and reconcile must "
                    "never take such a share for an orphan", c->min_grace_s,
                    SVD_MIN_GRACE_FLOOR_S);
    /* unauthenticated connections never take every slot: at least one
     * (by default half, up to 16 handshakes) stays for clients that have
     * proved themselves */
    if (!is_set(p, "connections.max_handshakes")) {
        unsigned h = c->max_connections / 2;
        c->max_handshakes = h < 1 ? 1 : h > 16 ? 16 : h;
    } else if (c->max_connections > 1 && c->max_handshakes >= c->max_connections) {
        return perr(p, key_line(p, "connections.max_handshakes"), "connections.max_handshakes",
                    "%u leaves no connection for authenticated clients: at most %u "
                    "(connections.max - 1)", c->max_handshakes, c->max_connections - 1);
    } else if (c->max_handshakes > c->max_connections) {
        return perr(p, key_line(p, "connections.max_handshakes"), "connections.max_handshakes",
                    "%u is above connections.max (%u)", c->max_handshakes, c->max_connections);
    }
    if (c->audit_head == NULL) {
        size_t n = strlen(c->audit_path) + sizeof(".head");
        if ((c->audit_head = malloc(n)) == NULL)
            return perr(p, last_line, "audit.head", "out of memory");
        snprintf(c->audit_head, n, "%s.head", c->audit_path);
    }
    if (strcmp(c->audit_head, c->audit_path) == 0)
        return perr(p, key_line(p, "audit.head"), "audit.head", "must differ from audit.path");
    if (strlen(c->ctl_socket) >= 108)
        return perr(p, key_line(p, "control.socket"), "control.socket",
                    "path longer than a Unix socket allows (107 bytes)");
    return 0;
}

/* Built-in defaults: the seed's numbers for the guard rails. */
static int
set_defaults(struct svd_conf *c)
{
    c->magic = SVD_CONF_MAGIC;
    c->listen_port = 7443;
    c->backlog = 64;
    c->max_connections = 64;
    c->max_handshakes_per_addr = 8;
    c->handshake_timeout_ms = 5000;
    c->idle_timeout_ms = 60000;
    c->io_timeout_ms = 10000;
    c->driver = SVD_DRIVER_SQLITE3;
    c->store_readers = 4;
    c->batch_max = 512;
    c->store_timeout_ms = 10000;
    c->global.interval_ms = 15000;
    c->global.burst = 3;
    c->actor.interval_ms = 15000;
    c->actor.burst = 3;
    c->max_actors = 10000;
    c->queue_max = 5;
    c->queue_max_wait_ms = 60000;
    c->lockdown_threshold = 5;
    c->budget_global = 1000;
    c->budget_actor = 250;
    c->min_grace_s = 3600;
    c->retention_s = 7u * 86400u;
    c->purge_batch = 500;
    c->retire_budget = 10000;
    c->min_free = 256ull << 20;
    c->refusal_period_ms = 10000;
    c->log_level = SV_LOG_INFO;
    c->secure_heap = 8u << 20;
    c->mlock = 1;
    if ((c->listen_address = xstrdup("127.0.0.1")) == NULL ||
        (c->user = xstrdup(SV_DEFAULT_USER)) == NULL)
        return -1;
    if ((c->allow = calloc(2, sizeof(*c->allow))) == NULL)
        return -1;
    AZ(svd_cidr_parse("127.0.0.1/32", &c->allow[0]));
    AZ(svd_cidr_parse("::1/128", &c->allow[1]));
    c->nallow = 2;
    return 0;
}

int
svd_conf_parse(const char *name, const char *text, size_t len, struct svd_conf **out,
               char *err, size_t errlen)
{
    struct pctx p;
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;
    int have_parser = 0, have_doc = 0, r = -1;

    memset(&p, 0, sizeof(p));
    p.file = name;
    p.err = err;
    p.errlen = errlen;
    p.doc = &doc;
    *out = NULL;
    if ((p.c = calloc(1, sizeof(*p.c))) == NULL || set_defaults(p.c) != 0) {
        perr(&p, 0, NULL, "out of memory");
        goto out;
    }
    if ((p.c->file = xstrdup(name)) == NULL) {
        perr(&p, 0, NULL, "out of memory");
        goto out;
    }
    if (!yaml_parser_initialize(&parser)) {
        perr(&p, 0, NULL, "cannot initialise the YAML parser");
        goto out;
    }
    have_parser = 1;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        perr(&p, parser.problem_mark.line + 1, NULL, "YAML syntax error: %s%s%s",
             parser.problem ? parser.problem : "unknown",
             parser.context ? " " : "", parser.context ? parser.context : "");
        goto out;
    }
    have_doc = 1;
    root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        perr(&p, 1, NULL, "empty configuration");
        goto out;
    }
    if (root->type != YAML_MAPPING_NODE) {
        perr(&p, root->start_mark.line + 1, NULL, "the top level must be a mapping of sections");
        goto out;
    }
    {
        /* a second document in the same file is an error, not ignored */
        yaml_document_t extra;
        if (yaml_parser_load(&parser, &extra)) {
            int more = yaml_document_get_root_node(&extra) != NULL;
            unsigned long l = more ? yaml_document_get_root_node(&extra)->start_mark.line + 1 : 0;
            yaml_document_delete(&extra);
            if (more) {
                perr(&p, l, NULL, "only one YAML document is allowed");
                goto out;
            }
        }
    }
    if (walk(&p, root, "", 0) != 0)
        goto out;
    if (validate(&p, root->end_mark.line + 1) != 0)
        goto out;
    p.c->tls_cert_line = key_line(&p, "tls.certificate");
    p.c->tls_key_line = key_line(&p, "tls.key");
    p.c->tls_ca_line = key_line(&p, "tls.client_ca");
    *out = p.c;
    p.c = NULL;
    r = 0;
out:
    if (have_doc)
        yaml_document_delete(&doc);
    if (have_parser)
        yaml_parser_delete(&parser);
    svd_conf_free(p.c);
    return r;
}

int
svd_conf_load(const char *path, struct svd_conf **out, char *err, size_t errlen)
{
    FILE *f = NULL;
    char *text = NULL;
    size_t n = 0;
    int r = -1;

    *out = NULL;
    if ((f = fopen(path, "re")) == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        goto out;
    }
    if ((text = malloc(CONF_MAX_FILE + 1)) == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    n = fread(text, 1, CONF_MAX_FILE + 1, f);
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        goto out;
    }
    if (n > CONF_MAX_FILE) {
        snprintf(err, errlen, "%s: larger than %u bytes", path, CONF_MAX_FILE);
        goto out;
    }
    r = svd_conf_parse(path, text, n, out, err, errlen);
out:
    if (f != NULL)
        fclose(f);
    free(text);
    return r;
}

void
svd_conf_free(struct svd_conf *c)
{
    if (c == NULL)
        return;
    CHECK_OBJ(c, SVD_CONF_MAGIC);
    free(c->file);
    free(c->listen_address);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->tls_ca);
    free(c->clients);
    free(c->allow);
    free(c->store_path);
    free(c->store_params);
    free(c->audit_path);
    free(c->audit_head);
    free(c->ctl_socket);
    free(c->admin_group);
    free(c->user);
    free(c->log_file);
    free(c->pid_file);
    c->magic = 0;
    free(c);
}
