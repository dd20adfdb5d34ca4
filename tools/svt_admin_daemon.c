/*
 * svt_admin_daemon.c - splitvault-admin's connection to the daemon: the
 * options that name it and the reconcile certificate, the mutual TLS 1.3
 * connection (lib/sv_tlsclient: the daemon's certificate checked against
 * --ca for --name) and one lock-step exchange. Used by `reconcile` and
 * `check`; the certificate is one the daemon lists under
 * clients.reconcile.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_strings.h"

#include "svt_admin_daemon.h"
#include "sv_wire.h"

void svt_dinit(svt_dconn *d, const char *cmd)
{
    memset(d, 0, sizeof(*d));
    d->cmd = cmd;
    d->timeout = 30;
}

int svt_dopt(svt_dconn *d, const char *opt, const char *v)
{
    if (strcmp(opt, "--daemon") == 0)
        d->daemon = v;
    else if (strcmp(opt, "--ca") == 0)
        d->ca = v;
    else if (strcmp(opt, "--cert") == 0)
        d->cert = v;
    else if (strcmp(opt, "--key") == 0)
        d->key = v;
    else if (strcmp(opt, "--name") == 0)
        d->name = v;
    else if (strcmp(opt, "--timeout") == 0) {
        char *end;
        long t;

        errno = 0;
        t = strtol(v, &end, 10);
        if (errno || *end || end == v || t < 1 || t > 600) {
            svt_fail("%s: --timeout takes 1 to 600 seconds", d->cmd);
            return -1;
        }
        d->timeout = (int)t;
    }
    else
        return 0;
    return 1;
}

int svt_dready(svt_ctx *c, svt_dconn *d, int *usage)
{
    const char *colon;

    *usage = 0;
    if (!d->daemon || !d->ca || !d->cert || !d->key) {
        *usage = 1;
        return 1;
    }
    colon = strrchr(d->daemon, ':');
    if (!colon || colon == d->daemon || !colon[1])
        return svt_fail("%s: --daemon takes HOST:PORT", d->cmd);
    d->host = apr_pstrmemdup(c->pool, d->daemon, (apr_size_t)(colon - d->daemon));
    if (d->host[0] == '[' && d->host[strlen(d->host) - 1] == ']')
        d->host = apr_pstrmemdup(c->pool, d->host + 1, strlen(d->host) - 2);
    d->port = colon + 1;
    if (!d->name)
        d->name = d->host;
    return 0;
}

int svt_dconnect(svt_dconn *d)
{
    sv_tls_client_conf tc = { d->ca, d->cert, d->key, "--ca", "--cert", "--key" };
    char err[SV_TLS_ERRLEN];

    if (sv_tls_client_ctx(&tc, &d->ctx, err, sizeof(err)) != SV_OK)
        return svt_fail("%s: TLS set-up failed: %s", d->cmd, err);
    if (sv_tls_connect(d->ctx, d->host, d->port, d->name, d->timeout * 1000, &d->conn, err,
                       sizeof(err)) != SV_OK)
        return svt_fail("%s: %s", d->cmd, err);
    return 0;
}

void svt_dclose(svt_dconn *d)
{
    sv_tls_close(d->conn);
    d->conn = NULL;
    SSL_CTX_free(d->ctx);
    d->ctx = NULL;
}

int svt_dstart(svt_ctx *c, svt_dconn *d, const char *use)
{
    int usage;

    if (svt_dready(c, d, &usage))
        return usage ? svt_fail("%s", use) : 1;
    if (svt_dconnect(d)) {
        svt_dclose(d);
        return 1;
    }
    return 0;
}

int svt_dnum(const svt_dconn *d, const char *opt, const char *v, long max,
             const char *what, long *out)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || *end || end == v || n < 0 || n > max)
        return svt_fail("%s: %s takes %s", d->cmd, opt, what);
    *out = n;
    return 0;
}

int svt_dcall(svt_dconn *d, sv_buf *out, uint8_t *type, uint8_t **body, size_t *len)
{
    sv_wire_hdr h;
    sv_status st;

    *body = NULL;
    *len = 0;
    if (sv_buf_status(out) != SV_OK)
        return svt_fail("%s: cannot encode a request", d->cmd);
    st = sv_tls_exchange(d->conn, out->data, out->len, &h, body);
    if (st == SV_ERR_TLS_HANDSHAKE)
        return svt_fail("%s: the daemon refused our certificate (is --cert signed by "
                        "the CA the daemon trusts and listed under clients.reconcile?): %s",
                        d->cmd, sv_tls_conn_error(d->conn));
    if (st == SV_ERR_NET_IO)
        return svt_fail("%s: the daemon did not answer (%s)", d->cmd,
                        sv_tls_conn_error(d->conn));
    if (st == SV_ERR_WIRE_TRUNCATED)
        return svt_fail("%s: truncated answer from the daemon", d->cmd);
    if (st == SV_ERR_NOMEM)
        return svt_fail("out of memory");
    if (st != SV_OK)
        return svt_fail("%s: malformed answer from the daemon", d->cmd);
    *type = h.type;
    *len = h.body_len;
    if (h.type == SV_MSG_ERROR) {
        sv_error_msg e;
        if (sv_error_decode(*body, *len, &e) == SV_OK)
            svt_fail("%s: the daemon refused: %s (%s)%s", d->cmd, sv_wire_error_name(e.code),
                     e.msg, e.code == SV_WERR_NOT_ALLOWED
                     ? ": --cert must be a certificate listed under clients.reconcile in "
                       "splitvaultd.yaml (the web server's certificate may not reconcile)"
                     : e.code == SV_WERR_LOCKED_DOWN
                     ? ": nothing is retired while the daemon is locked down (or past its "
                       "daily budget of retired shares); its sysadmin unlocks it"
                     : e.code == SV_WERR_UNSUPPORTED
                     ? ": the daemon is older than this tool (upgrade it)" : "");
        else
            svt_fail("%s: malformed error answer from the daemon", d->cmd);
        sv_tls_body_free(*body, *len);
        *body = NULL;
        *len = 0;
        return 1;
    }
    return 0;
}
