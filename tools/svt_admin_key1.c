/*
 * svt_admin_key1.c - key1 public keys in the main database.
 *
 * key1-register reads the SPKI PEM that `openssl pkey -pubout` writes,
 * computes the fingerprint (lowercase hex SHA-256 of the raw key) and
 * inserts it; the first key registered, or one registered with --activate,
 * becomes the active key that intake wraps key2a to (exactly one is active:
 * a unique index enforces it). Only public keys are handled here.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apr_strings.h"

#include "svt_admin.h"
#include "sv_hex.h"
#include "sv_keyfile.h"

static int svt_has_active(svt_ctx *c, int *has)
{
    svt_rows res;

    *has = 0;
    if (svt_select(c, &res, "SELECT 1 FROM key1 WHERE active", 0, NULL))
        return 1;
    while (svt_row(c, &res))
        *has = 1;
    return 0;
}

/* In one transaction: deactivate the active key and activate fp. */
static int svt_activate(svt_ctx *c, const char *fp)
{
    apr_dbd_transaction_t *tx = NULL;
    const char *a[] = { fp };
    int n = 0, fail;

    if (apr_dbd_transaction_start(c->driver, c->pool, c->handle, &tx))
        return svt_fail("cannot begin a transaction");
    fail = svt_exec(c, NULL, "UPDATE key1 SET active = false WHERE active", 0, NULL)
           || svt_exec(c, &n, "UPDATE key1 SET active = true WHERE fingerprint = %s", 1, a)
           || n != 1;
    if (fail)
        apr_dbd_transaction_mode_set(c->driver, tx, APR_DBD_TRANSACTION_ROLLBACK);
    if (apr_dbd_transaction_end(c->driver, c->pool, tx) || fail)
        return n != 1 ? svt_fail("no registered key1 with fingerprint %s", fp) : 1;
    return 0;
}

int svt_cmd_key1_register(svt_ctx *c, int argc, char **argv)
{
    unsigned char pk[SV_X25519_LEN];
    char fp[SV_FINGERPRINT_HEX_LEN + 1], hex[2 * SV_X25519_LEN + 1];
    const char *by = getenv("SUDO_USER"), *file = NULL;
    int activate = 0, has = 0, i;
    sv_status st;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--activate") == 0)
            activate = 1;
        else if (strcmp(argv[i], "--by") == 0 && i + 1 < argc)
            by = argv[++i];
        else if (!file && argv[i][0] != '-')
            file = argv[i];
        else
            return svt_fail("usage: key1-register FILE.pub [--activate] [--by NAME]");
    }
    if (!file)
        return svt_fail("usage: key1-register FILE.pub [--activate] [--by NAME]");
    if (!by)
        by = getlogin();
    if ((st = sv_key1_public_from_file(file, pk)) != SV_OK)
        return svt_fail("%s: %s (expected the output of `openssl pkey -in key1.pem -pubout`)",
                        file, sv_strerror(st));
    if ((st = sv_key1_fingerprint(pk, fp)) != SV_OK)
        return svt_fail("fingerprint: %s", sv_strerror(st));
    sv_hex_encode(pk, SV_X25519_LEN, hex);
    if (svt_has_active(c, &has))
        return 1;
    {
        const char *a[] = { fp, hex, by ? by : "admin" };
        if (svt_exec(c, NULL, "INSERT INTO key1 (fingerprint, public_key, active, created_by) "
                     "VALUES (%s, decode(%s, 'hex'), false, %s)", 3, a))
            return 1;
    }
    if ((activate || !has) && svt_activate(c, fp))
        return 1;
    printf("registered key1 %s%s\n", fp, activate || !has ? " (active)" : "");
    return 0;
}

int svt_cmd_key1_activate(svt_ctx *c, int argc, char **argv)
{
    if (argc != 1 || strlen(argv[0]) != SV_FINGERPRINT_HEX_LEN)
        return svt_fail("usage: key1-activate FINGERPRINT");
    if (svt_activate(c, argv[0]))
        return 1;
    printf("key1 %s is now active\n", argv[0]);
    return 0;
}

int svt_cmd_key1_list(svt_ctx *c, int argc, char **argv)
{
    svt_rows res;
    apr_dbd_row_t *row;

    if (svt_select(c, &res, "SELECT fingerprint, active, to_char(created AT TIME ZONE 'UTC', "
                   "'YYYY-MM-DD HH24:MI'), coalesce(created_by, '-'), (SELECT count(*) FROM "
                   "fields f WHERE f.key1_fp = k.fingerprint) FROM key1 k ORDER BY created",
                   0, NULL))
        return 1;
    printf("%-64s %-6s %-16s %-16s %s\n", "fingerprint", "active", "registered (UTC)", "by",
           "fields");
    while ((row = svt_row(c, &res)))
        printf("%-64s %-6s %-16s %-16s %s\n", svt_col(c, row, 0),
               *svt_col(c, row, 1) == 't' ? "yes" : "no", svt_col(c, row, 2),
               svt_col(c, row, 3), svt_col(c, row, 4));
    return 0;
}
