/*
 * svd_req.h - the table of requests the daemon answers.
 *
 * One entry per wire message type (docs/privsep.md lists them with their
 * size limits): STORE, DECRYPT, RELEASE, STATUS, RECON_LIST, RECON_DELETE.
 * Anything else is refused. A handler gets the decoded header and the body
 * (in secret memory owned by the caller, who cleanses it), appends exactly
 * one answer frame to out and says whether the connection must close.
 */
#ifndef SVD_REQ_H
#define SVD_REQ_H

#include <stddef.h>
#include <stdint.h>

#include "sv_buf.h"
#include "sv_wire.h"
#include "svd_app.h"

struct svd_peer {
    char addr[64];        /* "127.0.0.1:port" */
    char ip[48];
    char fp[65];          /* client certificate SHA-256, hex */
    unsigned roles;       /* SVD_ROLE_* of that certificate */
};

/* 1 when a client with these roles may send requests of this type. */
int svd_req_allowed(unsigned roles, uint8_t type);

/* Handle one request frame. Returns 0, or -1 when no answer could be built
 * (the caller closes the connection). *close_after is set for malformed
 * input. */
int svd_req_handle(struct svd_app *app, const struct svd_peer *peer, const sv_wire_hdr *h,
                   const uint8_t *body, sv_buf *out, int *close_after);

/* Append an ERROR frame with the generic message for code. */
int svd_req_error(sv_buf *out, uint32_t reqid, uint16_t code, uint32_t retry_ms);

/* The body-size limit for a request type (0: type not accepted). */
uint32_t svd_req_max_body(uint8_t type);

#endif /* SVD_REQ_H */
