/*
 * svd_conf.h - splitvaultd.yaml: the daemon's configuration.
 *
 * Parsed with libyaml into one immutable object, read by every thread after
 * start-up. Every key is listed in svd_conf.c's table with its type, range
 * and default; docs/daemon.md documents them and conf/splitvaultd.yaml shows
 * them all. Unknown keys, wrong types, out-of-range values and duplicates
 * are errors naming the file, the line and the key.
 */
#ifndef SVD_CONF_H
#define SVD_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sv_log.h"

#define SVD_CONF_MAGIC 0x5c0f1a55u
#define SVD_PIN_LEN 32
#define SVD_ERRBUF 512

enum svd_driver { SVD_DRIVER_SQLITE3 = 0, SVD_DRIVER_PGSQL = 1 };

struct svd_cidr {
    int family;           /* AF_INET or AF_INET6 */
    uint8_t addr[16];     /* network address, host bits cleared */
    unsigned prefix;      /* prefix length */
};

/* Client roles (clients.frontend / .reconcile / .monitor): what a client
 * certificate may ask the daemon (svd_req.c's table). */
#define SVD_ROLE_FRONTEND 0x1u  /* STORE, DECRYPT, RELEASE of its rotations, CONFIRM, STATUS */
#define SVD_ROLE_RECONCILE 0x2u /* RECON_LIST, RECON_DELETE, RELEASE activating, STATUS */
#define SVD_ROLE_MONITOR 0x4u   /* STATUS */

/* One client certificate, by the SHA-256 of its DER, and its roles. */
struct svd_client {
    uint8_t fp[SVD_PIN_LEN];
    unsigned roles;
    unsigned long line;   /* where it was first listed (messages) */
};

struct svd_rate {
    uint32_t interval_ms; /* one token per interval; 0: unlimited */
    uint32_t burst;       /* bucket capacity */
};

struct svd_conf {
    unsigned magic;
    char *file;

    char *listen_address;
    unsigned listen_port;
    unsigned backlog;

    char *tls_cert;
    char *tls_key;
    char *tls_ca;
    unsigned long tls_cert_line, tls_key_line, tls_ca_line; /* for messages */
    struct svd_client *clients;  /* every listed certificate, roles merged */
    unsigned nclients;
    int combined_roles;          /* clients.allow_combined_roles */

    struct svd_cidr *allow;
    unsigned nallow;

    unsigned max_connections;
    unsigned max_handshakes;          /* connections still in their handshake */
    unsigned max_handshakes_per_addr; /* the same from one source address */
    uint32_t handshake_timeout_ms;
    uint32_t idle_timeout_ms;
    uint32_t io_timeout_ms;

    enum svd_driver driver;
    char *store_path;      /* sqlite3 */
    char *store_params;    /* pgsql */
    unsigned store_readers;
    unsigned batch_max;
    uint32_t store_timeout_ms;   /* statements, connects, waiting for a reader */
    uint64_t min_free;           /* bytes: below, STORE is refused (0: no watermark) */

    struct svd_rate global;
    struct svd_rate actor;
    unsigned max_actors;
    unsigned queue_max;
    uint32_t queue_max_wait_ms;
    unsigned lockdown_threshold; /* 0: never lock down */
    uint32_t budget_global;      /* decrypts a day for all actors; 0: no budget */
    uint32_t budget_actor;       /* the same per actor */

    uint32_t min_grace_s;

    uint32_t retention_s;        /* retired shares are kept this long; 0: purged at once */
    unsigned purge_batch;        /* purged per transaction */
    uint32_t retire_budget;      /* shares retired in any 24 hours; 0: no budget */

    char *audit_path;
    char *audit_head;
    uint32_t refusal_period_ms;  /* refusals of one kind and peer: one entry a period */

    char *ctl_socket;
    char *admin_group;           /* control.admin_group: may unlock and restore */

    char *user;
    char *log_file;
    sv_log_level log_level;
    char *pid_file;
    size_t secure_heap;
    int mlock;
};

/* Parse and validate path. On success *out owns a new object (free with
 * svd_conf_free); on failure returns -1 and err holds "file:line: key: why". */
int svd_conf_load(const char *path, struct svd_conf **out, char *err, size_t errlen);

/* Same, from a string in memory (unit tests); name is used in messages. */
int svd_conf_parse(const char *name, const char *text, size_t len,
                   struct svd_conf **out, char *err, size_t errlen);

void svd_conf_free(struct svd_conf *c);

/* The roles of the client certificate with SHA-256 fp (0: not listed). */
unsigned svd_conf_client_roles(const struct svd_conf *c, const uint8_t fp[SVD_PIN_LEN]);

/* "frontend", "reconcile", "monitor", "frontend+reconcile", ... or "none". */
const char *svd_role_name(unsigned roles);

/* The floor of reconcile.min_grace, in seconds: the module commits a
 * submission or a rotation within 600 s of the request that stored its
 * shares, or gives it up; a grace period below that (with a margin) could
 * let reconcile retire a share a commit is about to reference. */
#define SVD_MIN_GRACE_FLOOR_S 900u

/* Parse "10.0.0.0/8", "::1/128" or a bare address (full prefix).
 * Returns 0 or -1. */
int svd_cidr_parse(const char *s, struct svd_cidr *c);

/* 1 when the socket address is inside c. */
int svd_cidr_match(const struct svd_cidr *c, const struct sockaddr *sa);

/* A decimal unsigned 64-bit number, the whole string (digits only; NULL,
 * empty, a sign or trailing text refused). Returns 0 or -1. */
int svd_parse_u64(const char *s, uint64_t *v);

/* Durations ("250ms", "15s", "2m", "1h", "0") and sizes ("4096", "64KiB",
 * "8MiB"). Return 0 or -1. */
int svd_parse_duration_ms(const char *s, uint64_t *ms);
int svd_parse_size(const char *s, uint64_t *bytes);

#endif /* SVD_CONF_H */
