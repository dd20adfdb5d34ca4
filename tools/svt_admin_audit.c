/*
 * svt_admin_audit.c - `audit-verify`: check the main audit table's hash
 * chain (sql/main/004_audit_chain.sql, lib/sv_auditchain.h).
 *
 * Walks table audit in id order, a page at a time, inside one read-only
 * REPEATABLE READ transaction (one snapshot: rows committed meanwhile are
 * left for the next run), and for each row recomputes its hash from its
 * columns and its prev_hash, and checks that prev_hash is the hash of the
 * row before it (ids need not be consecutive: a rolled-back insert leaves a
 * gap in the sequence, not in the chain). At the end, audit_head must name
 * the last row and its hash. --anchor ID:HASH, a head recorded earlier off
 * the system, must still be row ID's hash: a chain rewritten from some row
 * on verifies in itself, not against a head recorded before. It stops at
 * the first broken row and names it; with --all it names every broken row,
 * taking up the chain again from each row's stored hash. A row whose time
 * is before the previous row's is reported as a warning (the trigger sets
 * at from the clock under the head's lock, so only a clock stepped back or
 * rows from before schema version 4 do that; it does not break the chain).
 * Hashes are of UTF-8 text: the session's client_encoding is set to UTF8
 * whatever PGCLIENTENCODING or the role's settings say. Prints the head (id
 * and hash) to record. Exit 0 the chain verifies, 1 it is broken, 2 it
 * could not be checked.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apr_strings.h"

#include "sv_auditchain.h"
#include "sv_hex.h"
#include "svt_admin.h"

#define PAGE 1000
#define HEXLEN (2 * SV_AUDIT_CHAIN_HASH_LEN)
#define EXIT_BROKEN 1
#define EXIT_ERROR 2
#define AT_WARN_MAX 10  /* time warnings printed one by one, then counted */

/* Nullable columns come as 'N' (NULL) or 'V' and the value, so that NULL
 * and '' stay apart whatever the driver does with NULL. */
#define NV(col) "CASE WHEN " col " IS NULL THEN 'N' ELSE 'V' || " col " END"
static const char page_sql[] =
    "SELECT id::text, " SV_AUDIT_CHAIN_AT_SQL ", " NV("actor") ", " NV("action") ", "
    NV("record_ref") ", " NV("field") ", " NV("outcome") ", " NV("address") ", "
    NV("detail") ", encode(prev_hash, 'hex'), encode(hash, 'hex') FROM audit "
    "WHERE id > %s::bigint ORDER BY audit.id LIMIT " APR_STRINGIFY(PAGE);

typedef struct {
    uint64_t id;                               /* 0: none */
    uint8_t hash[SV_AUDIT_CHAIN_HASH_LEN];
    char at[40];                               /* its time as hashed; "": none */
} svt_link;

typedef struct {
    int all;                                   /* --all: every break, not the first */
    uint64_t broken;                           /* rows found broken */
    uint64_t at_back;                          /* rows whose time went backwards */
} svt_walkst;

/* A uint64 > 0 from s (all of it: decimal digits only, no sign or blank).
 * 0 or -1. */
static int svt_u64(const char *s, uint64_t *v)
{
    char *end;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    *v = strtoull(s, &end, 10);
    return errno || *end || *v == 0 ? -1 : 0;
}

/* One row's verdict: 0 it verifies, 1 broken (printed). -1 malformed. The
 * chain goes on from the row's stored hash whatever the verdict. */
static int svt_row_check(svt_ctx *c, apr_dbd_row_t *row, svt_link *prev, const svt_link *anchor,
                         int *anchor_seen, svt_walkst *st)
{
    const char *f[SV_AC_NFIELDS], *v;
    uint8_t stored_prev[SV_AUDIT_CHAIN_HASH_LEN], stored[SV_AUDIT_CHAIN_HASH_LEN],
            calc[SV_AUDIT_CHAIN_HASH_LEN];
    char hx[HEXLEN + 1];
    uint64_t id;
    int i, broken = 0;

    f[SV_AC_ID] = svt_col(c, row, 0);
    f[SV_AC_AT] = svt_col(c, row, 1);
    for (i = SV_AC_ACTOR; i < SV_AC_NFIELDS; i++) {
        v = svt_col(c, row, i);
        if (*v != 'N' && *v != 'V')
            return -1;
        f[i] = *v == 'N' ? NULL : v + 1;
    }
    if (svt_u64(f[SV_AC_ID], &id) || id <= prev->id)
        return -1;
    v = svt_col(c, row, SV_AC_NFIELDS);
    if (sv_hex_decode(v, strlen(v), stored_prev, sizeof(stored_prev)) != SV_OK)
        return -1;
    v = svt_col(c, row, SV_AC_NFIELDS + 1);
    if (sv_hex_decode(v, strlen(v), stored, sizeof(stored)) != SV_OK)
        return -1;
    if (sv_audit_chain_hash(stored_prev, f, calc) != SV_OK)
        return -1;
    if (strlen(f[SV_AC_AT]) >= sizeof(prev->at))
        return -1;
    if (memcmp(stored_prev, prev->hash, sizeof(stored_prev)) != 0) {
        if (prev->id == 0)
            printf("audit-verify: BROKEN at row %" PRIu64 ": prev_hash is not the chain's "
                   "start (32 zero bytes): rows before it were removed\n", id);
        else
            printf("audit-verify: BROKEN at row %" PRIu64 ": prev_hash is not the hash of "
                   "row %" PRIu64 ", the row before it: a row between them was removed or "
                   "the row before it was altered\n", id, prev->id);
        broken = 1;
    }
    if (!broken || st->all) {
        if (memcmp(calc, stored, sizeof(calc)) != 0) {
            sv_hex_encode(calc, sizeof(calc), hx);
            printf("audit-verify: BROKEN at row %" PRIu64 ": its contents do not match its "
                   "hash (stored %s, computed %s): the row was altered\n", id, v, hx);
            broken = 1;
        }
    }
    if ((!broken || st->all) && anchor->id == id) {
        *anchor_seen = 1;
        if (memcmp(anchor->hash, stored, sizeof(stored)) != 0) {
            sv_hex_encode(anchor->hash, sizeof(anchor->hash), hx);
            printf("audit-verify: BROKEN at row %" PRIu64 ": its hash %s is not the anchor's "
                   "%s: the chain was rewritten from this row or before\n", id, v, hx);
            broken = 1;
        }
    }
    /* fixed-width UTC text: the byte order is the time order */
    if (prev->at[0] && strcmp(f[SV_AC_AT], prev->at) < 0) {
        if (st->at_back++ < AT_WARN_MAX)
            printf("audit-verify: warning: row %" PRIu64 "'s time %s is before row %" PRIu64
                   "'s, %s (rows from before schema version 4, or the database's clock "
                   "stepped back)\n", id, f[SV_AC_AT], prev->id, prev->at);
    }
    prev->id = id;
    memcpy(prev->hash, stored, sizeof(stored));
    snprintf(prev->at, sizeof(prev->at), "%s", f[SV_AC_AT]);
    st->broken += (uint64_t)broken;
    return broken;
}

/* The walk, inside the transaction. Returns 0, EXIT_BROKEN or EXIT_ERROR. */
static int svt_walk(svt_ctx *c, uint64_t from, const svt_link *anchor, int progress,
                    svt_walkst *st)
{
    svt_ctx sub = *c;
    svt_rows res;
    apr_dbd_row_t *row;
    svt_link prev, head;
    char after[24], hx[HEXLEN + 1];
    const char *a[] = { after };
    const char *v;
    uint64_t n = 0, first = 0;
    int got, rc, anchor_seen = 0;

    memset(&prev, 0, sizeof(prev));
    memset(&head, 0, sizeof(head));
    if (svt_select(c, &res, "SELECT id::text, encode(hash, 'hex') FROM audit_head", 0, NULL))
        return EXIT_ERROR;
    got = 0;
    while ((row = svt_row(c, &res))) {
        v = svt_col(c, row, 1);
        if (got++ || sscanf(svt_col(c, row, 0), "%" SCNu64, &head.id) != 1
            || sv_hex_decode(v, strlen(v), head.hash, sizeof(head.hash)) != SV_OK)
            got = 2;
    }
    if (got != 1) {
        printf("audit-verify: BROKEN: table audit_head does not hold one well-formed row\n");
        return EXIT_BROKEN;
    }
    if (from > 1) {
        /* start after the row before --from, trusting its hash */
        snprintf(after, sizeof(after), "%" PRIu64, from);
        if (svt_select(c, &res, "SELECT id::text, encode(hash, 'hex') FROM audit "
                       "WHERE id < %s::bigint ORDER BY audit.id DESC LIMIT 1", 1, a))
            return EXIT_ERROR;
        while ((row = svt_row(c, &res))) {
            v = svt_col(c, row, 1);
            if (svt_u64(svt_col(c, row, 0), &prev.id)
                || sv_hex_decode(v, strlen(v), prev.hash, sizeof(prev.hash)) != SV_OK) {
                svt_fail("audit-verify: malformed row in table audit before id %s", after);
                return EXIT_ERROR;
            }
        }
    }
    for (;;) {
        int k = 0;

        if (sub.pool != c->pool)
            apr_pool_destroy(sub.pool);
        apr_pool_create(&sub.pool, c->pool);
        snprintf(after, sizeof(after), "%" PRIu64, prev.id);
        if (svt_select(&sub, &res, page_sql, 1, a))
            return EXIT_ERROR;
        while ((row = svt_row(&sub, &res))) {
            k++;
            rc = svt_row_check(&sub, row, &prev, anchor, &anchor_seen, st);
            if (rc < 0) {
                svt_fail("audit-verify: malformed row in table audit after id %s", after);
                return EXIT_ERROR;
            }
            if (rc > 0 && !st->all) {
                while (svt_row(&sub, &res))
                    ; /* drain the result */
                if (progress)
                    fputc('\n', stderr);
                return EXIT_BROKEN;
            }
            if (!first)
                first = prev.id;
            n++;
        }
        if (progress) {
            fprintf(stderr, "\raudit-verify: %" PRIu64 " rows checked", n);
            fflush(stderr);
        }
        if (k < PAGE)
            break;
    }
    if (progress)
        fputc('\n', stderr);
    if (st->at_back > AT_WARN_MAX)
        printf("audit-verify: warning: %" PRIu64 " rows in all have a time before the row "
               "before them\n", st->at_back);
    if (head.id != prev.id || memcmp(head.hash, prev.hash, sizeof(head.hash)) != 0) {
        sv_hex_encode(head.hash, sizeof(head.hash), hx);
        if (head.id > prev.id)
            printf("audit-verify: BROKEN after row %" PRIu64 ": the chain head (audit_head) "
                   "names row %" PRIu64 " (%s): the rows after %" PRIu64 " were removed\n",
                   prev.id, head.id, hx, prev.id);
        else
            printf("audit-verify: BROKEN at row %" PRIu64 ": the chain head (audit_head) "
                   "names row %" PRIu64 " (%s), not the last row\n", prev.id, head.id, hx);
        if (!st->all)
            return EXIT_BROKEN;
        st->broken++;
    }
    if (anchor->id && !anchor_seen) {
        if (anchor->id > prev.id)
            printf("audit-verify: BROKEN: the anchor's row %" PRIu64 " is after the last "
                   "row, %" PRIu64 ": rows were removed\n", anchor->id, prev.id);
        else
            printf("audit-verify: BROKEN at row %" PRIu64 ": the anchor's row is missing\n",
                   anchor->id);
        st->broken++;
    }
    if (st->broken) {
        if (st->all)
            printf("audit-verify: the chain is broken: %" PRIu64 " breaks found\n",
                   st->broken);
        return EXIT_BROKEN;
    }
    sv_hex_encode(prev.hash, sizeof(prev.hash), hx);
    if (n)
        printf("audit-verify: the chain verifies: %" PRIu64 " rows, ids %" PRIu64 " to %"
               PRIu64 "%s%s\n", n, first, prev.id, from > 1 ? " (from --from)" : "",
               anchor->id ? ", anchor matched" : "");
    else
        printf("audit-verify: the chain verifies: no rows%s\n", from > 1 ? " from --from" : "");
    printf("head: %" PRIu64 ":%s\n", prev.id, hx);
    return 0;
}

int svt_cmd_audit_verify(svt_ctx *c, int argc, char **argv)
{
    static const char use[] = "usage: splitvault-admin audit-verify [--all] "
                              "[--anchor ID:HASH] [--from ID]";
    svt_walkst st;
    svt_link anchor;
    svt_rows res;
    apr_dbd_row_t *row;
    uint64_t from = 0;
    const char *v = NULL;
    int i, n, rv, rc;

    memset(&anchor, 0, sizeof(anchor));
    memset(&st, 0, sizeof(st));
    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--all") == 0)
            st.all = 1;
        else if (strcmp(argv[i], "--anchor") == 0 && i + 1 < argc) {
            const char *s = argv[++i], *colon = strchr(s, ':');
            char idtxt[24];

            if (!colon || (size_t)(colon - s) >= sizeof(idtxt)) {
                svt_fail("audit-verify: --anchor takes ID:HASH (as `head:` prints it)");
                return EXIT_ERROR;
            }
            memcpy(idtxt, s, (size_t)(colon - s));
            idtxt[colon - s] = '\0';
            if (svt_u64(idtxt, &anchor.id)
                || sv_hex_decode(colon + 1, strlen(colon + 1), anchor.hash,
                                 sizeof(anchor.hash)) != SV_OK) {
                svt_fail("audit-verify: --anchor takes ID:HASH, a row id and 64 hex digits");
                return EXIT_ERROR;
            }
        }
        else if (strcmp(argv[i], "--from") == 0 && i + 1 < argc) {
            if (svt_u64(argv[++i], &from)) {
                svt_fail("audit-verify: --from takes a row id (1 or more)");
                return EXIT_ERROR;
            }
        }
        else {
            svt_fail("%s", use);
            return EXIT_ERROR;
        }
    }
    if (anchor.id && anchor.id < from) {
        svt_fail("audit-verify: the anchor's row comes before --from: it would not be checked");
        return EXIT_ERROR;
    }
    if (svt_select(c, &res, "SELECT to_regclass('audit_head') IS NOT NULL", 0, NULL))
        return EXIT_ERROR;
    while ((row = svt_row(c, &res)))
        v = svt_col(c, row, 0);
    if (!v || *v != 't') {
        svt_fail("audit-verify: the database's audit table has no hash chain yet "
                 "(schema version 4): run splitvault-admin schema");
        return EXIT_ERROR;
    }
    /* the hashes are of UTF-8 text, whatever encoding the session had */
    if ((rv = apr_dbd_query(c->driver, c->handle, &n, "SET client_encoding = 'UTF8'")) != 0) {
        svt_fail("audit-verify: database: %s", apr_dbd_error(c->driver, c->handle, rv));
        return EXIT_ERROR;
    }
    /* one snapshot for the whole walk, the head included; never writes */
    if ((rv = apr_dbd_query(c->driver, c->handle, &n,
                            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) != 0) {
        svt_fail("audit-verify: database: %s", apr_dbd_error(c->driver, c->handle, rv));
        return EXIT_ERROR;
    }
    rc = svt_walk(c, from, &anchor, isatty(STDERR_FILENO), &st);
    if ((rv = apr_dbd_query(c->driver, c->handle, &n, "ROLLBACK")) != 0 && rc == 0) {
        svt_fail("audit-verify: database: %s", apr_dbd_error(c->driver, c->handle, rv));
        rc = EXIT_ERROR;
    }
    if (rc == EXIT_ERROR)
        fprintf(stderr, "splitvault-admin: audit-verify: stopped; the chain was not checked "
                        "to the end\n");
    return rc;
}
