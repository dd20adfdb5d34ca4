/*
 * svm_decrypt.c - the decrypt action of the record page (privileged staff).
 *
 * The route, the capability check (can_decrypt) and the CSRF check are done
 * by svm_pages.c before this runs. Decryption itself needs key1's private
 * half in shared memory and the daemon's DECRYPT with rotate-on-use
 * (DESIGN.md, "Decrypt"); until that is present on this server, the action
 * answers plainly that decryption is not available and audits the attempt.
 */
#include "svm.h"
#include "http_protocol.h"

int svm_decrypt_post(request_rec *r, const svm_srv_conf *sc, svm_staff *st,
                     const char *ref, apr_array_header_t *pairs)
{
    ap_dbd_t *dbd = svm_db(r);

    if (dbd)
        svm_audit(r, dbd, st->name, "decrypt", ref, NULL, "unavailable", NULL);
    return svm_page_message(r, sc, HTTP_NOT_IMPLEMENTED, "Decryption not available",
                            "Decryption is not available on this server yet. Nothing was "
                            "decrypted.", st);
}
