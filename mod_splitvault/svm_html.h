/*
 * svm_html.h - escaping, security headers, page frame, stylesheet, redirects.
 */
#ifndef SVM_HTML_H
#define SVM_HTML_H

#include "svm.h"
#include "svm_config.h"
#include "svm_session.h"

const char *svm_esc(apr_pool_t *p, const char *s);
void svm_security_headers(request_rec *r, int staff_page);
/* Strict-Transport-Security on every answer of this request (error pages
 * and redirects included) when SplitVaultHSTS is on and the request came
 * over HTTPS; called first by both handlers. */
void svm_hsts(request_rec *r, const svm_srv_conf *sc);
struct svm_staff;
void svm_page_begin(request_rec *r, const svm_srv_conf *sc, const char *title,
                    const struct svm_staff *st);
void svm_page_end(request_rec *r);
/* Send a complete page with status and a plain message (escaped here).
 * Returns OK: the handler's return value. */
int svm_page_message(request_rec *r, const svm_srv_conf *sc, int status,
                     const char *title, const char *msg, const struct svm_staff *st);
/* The same with its one link leading back to back (a URL of this site,
 * escaped here) and saying back_text; both NULL: as svm_page_message. */
int svm_page_message_back(request_rec *r, const svm_srv_conf *sc, int status,
                          const char *title, const char *msg, const struct svm_staff *st,
                          const char *back, const char *back_text);
int svm_send_stylesheet(request_rec *r);
int svm_redirect(request_rec *r, const char *path);
/* t in UTC as the apr_strftime format fmt writes it (at most 31
 * characters), in pool p; "?" when it cannot be written. */
const char *svm_time_utc(apr_pool_t *p, apr_time_t t, const char *fmt);
const char *svm_url(request_rec *r, const svm_srv_conf *sc, const char *rel);

#endif /* SVM_HTML_H */
