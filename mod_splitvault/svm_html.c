/*
 * svm_html.c - every byte of HTML the module sends passes through here or
 * through svm_esc(): escaping, security headers, the page frame and the
 * stylesheet (served by the module itself, so the CSP needs no 'unsafe-*').
 */
#include "svm.h"
#include "svm_html.h"
#include "svm_config.h"
#include "svm_session.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_core.h"
#include "apr_strings.h"

/* HTML-escape s for text and attribute values: & < > " and ' (httpd's
 * ap_escape_html2 leaves ' alone, and its toasc mode splits UTF-8 into
 * per-byte entities). UTF-8 passes through unchanged. */
const char *svm_esc(apr_pool_t *p, const char *s)
{
    apr_size_t n = 0;
    const char *c;
    char *out, *o;

    if (!s)
        return "";
    for (c = s; *c; c++)
        n += *c == '&' ? 5 : (*c == '<' || *c == '>') ? 4 : *c == '"' ? 6 : *c == '\'' ? 5 : 1;
    if (n == (apr_size_t)(c - s))
        return s;
    o = out = apr_palloc(p, n + 1);
    for (c = s; *c; c++) {
        const char *e = *c == '&' ? "&amp;" : *c == '<' ? "&lt;" : *c == '>' ? "&gt;"
                      : *c == '"' ? "&quot;" : *c == '\'' ? "&#39;" : NULL;
        if (e) {
            apr_size_t l = strlen(e);
            memcpy(o, e, l);
            o += l;
        }
        else
            *o++ = *c;
    }
    *o = '\0';
    return out;
}

#define SVM_CSP "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " \
                "frame-ancestors 'none'; base-uri 'none'"

void svm_security_headers(request_rec *r, int staff_page)
{
    apr_table_t *h = r->err_headers_out; /* kept on error and redirect answers too */

    apr_table_setn(h, "Content-Security-Policy", SVM_CSP);
    apr_table_setn(h, "X-Content-Type-Options", "nosniff");
    apr_table_setn(h, "Referrer-Policy", "no-referrer");
    apr_table_setn(h, "X-Frame-Options", "DENY");
    apr_table_setn(h, "Cross-Origin-Opener-Policy", "same-origin");
    if (staff_page) {
        apr_table_setn(h, "Cache-Control", "no-store");
        apr_table_setn(h, "Pragma", "no-cache");
    }
}

/* RFC 6797 7.2: a host must not send the header over plain HTTP. HTTPS is
 * what httpd says the request's scheme is: mod_ssl on this connection, or
 * a server declared "ServerName https://..." (TLS ended by a proxy in
 * front of it). */
void svm_hsts(request_rec *r, const svm_srv_conf *sc)
{
    const char *scheme;

    if (!sc->hsts || !*sc->hsts)
        return;
    scheme = ap_http_scheme(r);
    if (scheme && strcmp(scheme, "https") == 0)
        apr_table_setn(r->err_headers_out, "Strict-Transport-Security", sc->hsts);
}

const char *svm_url(request_rec *r, const svm_srv_conf *sc, const char *rel)
{
    return apr_pstrcat(r->pool, sc->base, rel, NULL);
}

void svm_page_begin(request_rec *r, const svm_srv_conf *sc, const char *title,
                    const svm_staff *st)
{
    ap_set_content_type(r, "text/html; charset=utf-8");
    ap_rprintf(r, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
               "<title>%s</title>\n<link rel=\"stylesheet\" href=\"%s\">\n</head>\n<body>\n",
               svm_esc(r->pool, title), svm_esc(r->pool, svm_url(r, sc, "/style.css")));
    if (st) {
        ap_rprintf(r, "<header class=\"bar\"><nav aria-label=\"Staff\">"
                   "<a href=\"%s\">Records</a>",
                   svm_esc(r->pool, svm_url(r, sc, "/staff/")));
        if (st->can_admin)
            ap_rprintf(r, " <a href=\"%s\">Audit log</a>",
                       svm_esc(r->pool, svm_url(r, sc, "/staff/audit")));
        if (st->can_admin && sc->staff_console)
            ap_rprintf(r, " <a id=\"nav-staff\" href=\"%s\">Staff</a>",
                       svm_esc(r->pool, svm_url(r, sc, "/staff/console")));
        if (sc->staff_console)
            ap_rprintf(r, " <a id=\"nav-password\" href=\"%s\">Your password</a>",
                       svm_esc(r->pool, svm_url(r, sc, "/staff/password")));
        else if (sc->staff_console_url)
            ap_rprintf(r, " <a id=\"nav-password\" href=\"%s\">Change your password</a>",
                       svm_esc(r->pool, sc->staff_console_url));
        ap_rprintf(r, "</nav><form class=\"signout\" method=\"post\" action=\"%s\">"
                   "<span class=\"who\">Signed in as <strong>%s</strong></span> "
                   "<input type=\"hidden\" name=\"csrf\" value=\"%s\">"
                   "<button type=\"submit\">Sign out</button></form></header>\n",
                   svm_esc(r->pool, svm_url(r, sc, "/staff/logout")),
                   svm_esc(r->pool, st->name), svm_esc(r->pool, st->csrf));
    }
    ap_rputs("<main>\n", r);
}

void svm_page_end(request_rec *r)
{
    ap_rputs("</main>\n</body>\n</html>\n", r);
}

int svm_page_message(request_rec *r, const svm_srv_conf *sc, int status,
                     const char *title, const char *msg, const svm_staff *st)
{
    return svm_page_message_back(r, sc, status, title, msg, st, NULL, NULL);
}

int svm_page_message_back(request_rec *r, const svm_srv_conf *sc, int status,
                          const char *title, const char *msg, const svm_staff *st,
                          const char *back, const char *back_text)
{
    r->status = status;
    svm_security_headers(r, 1);
    if (status == HTTP_REQUEST_ENTITY_TOO_LARGE || status == HTTP_BAD_REQUEST)
        r->connection->keepalive = AP_CONN_CLOSE; /* unread body may remain */
    svm_page_begin(r, sc, title, st);
    ap_rprintf(r, "<h1>%s</h1>\n<p class=\"%s\">%s</p>\n", svm_esc(r->pool, title),
               status >= 400 ? "error" : "note", svm_esc(r->pool, msg));
    if (back && back_text)
        ap_rprintf(r, "<p><a id=\"back-link\" href=\"%s\">%s</a></p>\n",
                   svm_esc(r->pool, back), svm_esc(r->pool, back_text));
    else if (st)
        ap_rprintf(r, "<p><a href=\"%s\">Back to the records</a></p>\n",
                   svm_esc(r->pool, svm_url(r, sc, "/staff/")));
    else
        ap_rprintf(r, "<p><a href=\"%s\">Back to the form</a></p>\n",
                   svm_esc(r->pool, svm_url(r, sc, "/")));
    svm_page_end(r);
    return OK;
}

/* 303 to a path of this site. The Location is relative (RFC 7231 7.1.2), so
 * it never depends on the request's Host header. */
int svm_redirect(request_rec *r, const char *path)
{
    apr_table_setn(r->headers_out, "Location", path);
    svm_security_headers(r, 1);
    return HTTP_SEE_OTHER;
}

const char *svm_time_utc(apr_pool_t *p, apr_time_t t, const char *fmt)
{
    apr_time_exp_t e;
    char buf[32];
    apr_size_t n = 0;

    if (apr_time_exp_gmt(&e, t) != APR_SUCCESS
        || apr_strftime(buf, &n, sizeof(buf), fmt, &e) != APR_SUCCESS)
        return "?";
    return apr_pstrmemdup(p, buf, n);
}

static const char svm_css[] =
    ":root{--fg:#1b1f24;--muted:#57606a;--bg:#fff;--accent:#0b5cad;--err:#a40e26;"
    "--ok:#116329;--line:#d0d7de}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;"
    "color:var(--fg);background:var(--bg)}\n"
    "main{max-width:46rem;margin:0 auto;padding:1.5rem 1rem 3rem}\n"
    "h1{font-size:1.6rem;margin:.5rem 0 1rem}h2{font-size:1.2rem;margin:1.5rem 0 .5rem}\n"
    "a{color:var(--accent)}\n"
    ".bar{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;"
    "gap:.5rem;padding:.5rem 1rem;border-bottom:1px solid var(--line);background:#f6f8fa}\n"
    ".bar nav a{margin-right:1rem;font-weight:600}\n"
    ".signout{margin:0}.who{color:var(--muted);margin-right:.5rem}\n"
    "label{display:block;font-weight:600;margin:1rem 0 .25rem}\n"
    "label.inline{display:inline;font-weight:400;margin:0}\n"
    "fieldset{border:1px solid var(--line);border-radius:6px;margin:1rem 0;"
    "padding:.25rem 1rem .75rem}\n"
    ".hint{color:var(--muted);font-size:.9rem;font-weight:400}\n"
    "input[type=text],input[type=password],input[type=search],input[type=date],textarea{"
    "width:100%;padding:.5rem;font:inherit;border:1px solid #8c959f;border-radius:4px}\n"
    "textarea{min-height:7rem}\n"
    "input:focus,textarea:focus,button:focus,a:focus{outline:3px solid #80b3ff;"
    "outline-offset:1px}\n"
    "button{font:inherit;padding:.5rem 1.1rem;border:1px solid var(--accent);"
    "border-radius:4px;background:var(--accent);color:#fff;cursor:pointer;margin-top:1rem}\n"
    ".signout button{margin:0;padding:.25rem .75rem}\n"
    "button.secondary{background:#fff;color:var(--accent)}\n"
    ".error{color:var(--err);font-weight:600}.note{color:var(--ok);font-weight:600}\n"
    ".errors{border:2px solid var(--err);border-radius:4px;padding:.5rem 1rem;margin:1rem 0}\n"
    ".ref{font:700 1.8rem/1.2 ui-monospace,monospace;letter-spacing:.1em;padding:.5rem 1rem;"
    "border:2px dashed var(--line);display:inline-block}\n"
    "table{border-collapse:collapse;width:100%;margin:1rem 0}\n"
    "th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid var(--line);"
    "vertical-align:top}\n"
    "th{background:#f6f8fa}\n"
    "code,.mono{font-family:ui-monospace,monospace}\n"
    ".field{border:1px solid var(--line);border-radius:6px;padding:.25rem 1rem 1rem;"
    "margin:1rem 0}\n"
    ".search{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-end}\n"
    ".search label{margin:0}.search button{margin:0}\n"
    ".pager a{margin-right:1rem}\n"
    "@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;"
    "--line:#30363d;--accent:#4493f8;--err:#ff7b72;--ok:#3fb950}"
    ".bar,th{background:#161b22}input,textarea{background:#0d1117;color:var(--fg)}"
    "button.secondary{background:#0d1117}}\n";

int svm_send_stylesheet(request_rec *r)
{
    if (r->method_number != M_GET)
        return HTTP_METHOD_NOT_ALLOWED;
    svm_security_headers(r, 0);
    apr_table_setn(r->headers_out, "Cache-Control", "public, max-age=3600");
    ap_set_content_type(r, "text/css; charset=utf-8");
    ap_set_content_length(r, sizeof(svm_css) - 1);
    if (!r->header_only)
        ap_rwrite(svm_css, sizeof(svm_css) - 1, r);
    return OK;
}
