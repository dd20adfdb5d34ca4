/*
 * svt_admin_daemon.h - splitvault-admin's connection to the daemon, shared
 * by the commands that talk to it with the reconcile certificate
 * (svt_admin_reconcile.c, svt_admin_check.c): their common options, the
 * mutual TLS 1.3 connection (lib/sv_tlsclient) and one exchange.
 *
 * Calls go one way: the commands call this file; it calls lib/ only.
 */
#ifndef SVT_ADMIN_DAEMON_H
#define SVT_ADMIN_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "svt_admin.h"
#include "sv_buf.h"
#include "sv_tlsclient.h"

typedef struct {
    const char *cmd;      /* the command, for messages ("reconcile", "check") */
    const char *daemon;   /* --daemon HOST:PORT as given */
    const char *host;
    const char *port;
    const char *name;     /* expected in the daemon's certificate */
    const char *ca, *cert, *key;
    int timeout;          /* seconds, per connect and per exchange */
    SSL_CTX *ctx;
    sv_tls_conn *conn;
    uint32_t reqid;
} svt_dconn;

/* Start with the defaults (timeout 30 s); cmd names the command. */
void svt_dinit(svt_dconn *d, const char *cmd);

/* The daemon options: --daemon, --ca, --cert, --key, --name, --timeout.
 * opt is one of them with its value v: 1 (taken); not one of them: 0;
 * a bad value: -1 (printed). */
int svt_dopt(svt_dconn *d, const char *opt, const char *v);

/* After the options: all required ones given, HOST:PORT split. 0, or 1
 * (printed; the caller prints its usage when usage is set). */
int svt_dready(svt_ctx *c, svt_dconn *d, int *usage);

/* Connect and complete the TLS 1.3 handshake. 0, or 1 (printed). */
int svt_dconnect(svt_dconn *d);
void svt_dclose(svt_dconn *d);

/* After the options: svt_dready (use printed when a required option is
 * missing), then svt_dconnect. 0, or 1 (printed; nothing left open). */
int svt_dstart(svt_ctx *c, svt_dconn *d, const char *use);

/* A command's own numeric option: v, decimal, 0 to max, into *out. 0, or
 * 1 (printed: "CMD: OPT takes WHAT"). */
int svt_dnum(const svt_dconn *d, const char *opt, const char *v, long max,
             const char *what, long *out);

/* --grace's largest value: ten years of seconds. */
#define SVT_DGRACE_MAX (10L * 365 * 86400)

/* Send the frame in out and read the answer, which must echo the frame's
 * request id: its type and body (free it with sv_tls_body_free). An ERROR
 * answer is printed, with a hint for the codes an operator can act on
 * (NOT_ALLOWED: the wrong certificate; LOCKED_DOWN; UNSUPPORTED: a daemon
 * older than the request), and returned as 1, like any failure. 0, or 1
 * (printed). */
int svt_dcall(svt_dconn *d, sv_buf *out, uint8_t *type, uint8_t **body, size_t *len);

#endif /* SVT_ADMIN_DAEMON_H */
