/*
 * svt_admin_staff.c - staff accounts: add, password, capabilities,
 * disable/enable, list; and the login key that keys staff names in the
 * module's sign-in throttle. Passwords never come from the command line:
 * the terminal (no echo, asked twice) or one line of stdin; they are hashed
 * with Argon2id (lib/sv_pwhash.c, the module's parameters) and wiped.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "sv_hex.h"
#include "sv_secret.h"

#include "svt_admin.h"
#include "sv_pwhash.h"
#include "sv_wire.h"

static int svt_name_ok(const char *name)
{
    if (!sv_actor_name_valid(name, strlen(name)))
        return svt_fail("'%s' is not a valid staff name (1 to 64 of A-Z a-z 0-9 _ . @ -)", name);
    return 0;
}

/* Read and hash a password into hash. 0 or 1 (printed). */
static int svt_new_hash(const char *name, char *hash, size_t hash_len)
{
    size_t len = 0;
    char prompt[128];
    char *pw;
    int rv;

    snprintf(prompt, sizeof(prompt), "Password for %s: ", name);
    if (!(pw = svt_password_read(prompt, &len)))
        return 1;
    rv = sv_pwhash_make(pw, len, hash, hash_len);
    svt_password_free(pw, len);
    if (rv != 0)
        return svt_fail("hashing the password failed");
    return 0;
}

/* Parse --update/--no-update ... into the three flags (-1: unchanged). */
static int svt_caps(int argc, char **argv, int caps[3])
{
    static const char *const names[3] = { "update", "decrypt", "admin" };
    int i, k;

    for (i = 0; i < argc; i++) {
        int found = 0;
        for (k = 0; k < 3; k++) {
            if (strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i] + 2, names[k]) == 0) {
                caps[k] = 1;
                found = 1;
            }
            else if (strncmp(argv[i], "--no-", 5) == 0 && strcmp(argv[i] + 5, names[k]) == 0) {
                caps[k] = 0;
                found = 1;
            }
        }
        if (!found)
            return svt_fail("unknown option %s", argv[i]);
    }
    return 0;
}

/* Separation of duties: one account with admin and decrypt could load
 * key1, manage staff and read every record alone. Applied, but said. */
static void svt_sod_warn(const char *name)
{
    fprintf(stderr, "splitvault-admin: warning: separation of duties: %s now holds both "
            "admin and decrypt (one person could load key1, manage staff and read every "
            "record alone)\n", name);
}

int svt_cmd_staff_add(svt_ctx *c, int argc, char **argv)
{
    char hash[SV_PWHASH_MAX];
    int caps[3] = { 0, 0, 0 }, n = 0;

    if (argc < 1)
        return svt_fail("usage: staff-add NAME [--update] [--decrypt] [--admin]");
    if (svt_name_ok(argv[0]) || svt_caps(argc - 1, argv + 1, caps))
        return 1;
    {
        svt_rows res;
        const char *a[] = { argv[0] };
        apr_dbd_row_t *row;
        const char *have = NULL;
        /* names are case-insensitive (a unique index on lower(name) since
         * schema version 5; checked here on older databases too) */
        if (svt_select(c, &res, "SELECT name FROM staff WHERE lower(name) = lower(%s)", 1, a))
            return 1;
        while ((row = svt_row(c, &res)))
            have = svt_col(c, row, 0);
        if (have)
            return svt_fail("a staff account named '%s' exists: names are case-insensitive",
                            have);
    }
    if (svt_new_hash(argv[0], hash, sizeof(hash)))
        return 1;
    {
        const char *a[] = { argv[0], hash, caps[0] ? "t" : "f", caps[1] ? "t" : "f",
                            caps[2] ? "t" : "f" };
        if (svt_exec(c, &n, "INSERT INTO staff (name, pwhash, can_update, can_decrypt, "
                     "can_admin) VALUES (%s, %s, %s::boolean, %s::boolean, %s::boolean)",
                     5, a))
            return 1;
    }
    printf("created staff member %s (update: %s, decrypt: %s, admin: %s)\n", argv[0],
           caps[0] ? "yes" : "no", caps[1] ? "yes" : "no", caps[2] ? "yes" : "no");
    if (caps[1] && caps[2])
        svt_sod_warn(argv[0]);
    return 0;
}

/* staff-passwd's steps, inside its transaction. 0 or 1 (printed). */
static int svt_passwd_steps(svt_ctx *c, const char *name, const char *hash)
{
    const char *a[] = { hash, name }, *b[] = { name };
    int n = 0, v = svt_schema_current(c);

    if (v < 0)
        return 1;
    /* the way back in: a password set here is the person's to use, so a
     * must-change mark of the staff console (schema version 5) goes */
    if (svt_exec(c, &n, v >= 5 ? "UPDATE staff SET pwhash = %s, must_change = false, "
                 "password_changed = now(), updated = now() WHERE name = %s"
                 : "UPDATE staff SET pwhash = %s, updated = now() WHERE name = %s", 2, a))
        return 1;
    if (n != 1)
        return svt_fail("no staff member %s", name);
    /* a new password ends every session of the account */
    return svt_exec(c, NULL, "DELETE FROM sessions WHERE staff_id = (SELECT id FROM staff "
                    "WHERE name = %s)", 1, b);
}

int svt_cmd_staff_passwd(svt_ctx *c, int argc, char **argv)
{
    char hash[SV_PWHASH_MAX];
    apr_dbd_transaction_t *tx = NULL;
    int fail;

    if (argc != 1)
        return svt_fail("usage: staff-passwd NAME");
    if (svt_name_ok(argv[0]) || svt_new_hash(argv[0], hash, sizeof(hash)))
        return 1;
    /* the new hash, the must-change mark and the sessions: all or none */
    if (apr_dbd_transaction_start(c->driver, c->pool, c->handle, &tx))
        return svt_fail("staff-passwd: cannot begin a transaction: %s",
                        apr_dbd_error(c->driver, c->handle, 0));
    fail = svt_passwd_steps(c, argv[0], hash);
    if (fail)
        apr_dbd_transaction_mode_set(c->driver, tx, APR_DBD_TRANSACTION_ROLLBACK);
    if (apr_dbd_transaction_end(c->driver, c->pool, tx) && !fail)
        return svt_fail("staff-passwd: the commit failed: %s; the password is unchanged",
                        apr_dbd_error(c->driver, c->handle, 0));
    if (fail)
        return svt_fail("staff-passwd: nothing changed");
    printf("password of %s changed; its sessions ended\n", argv[0]);
    return 0;
}

int svt_cmd_staff_caps(svt_ctx *c, int argc, char **argv)
{
    int caps[3] = { -1, -1, -1 }, n = 0;

    if (argc < 2)
        return svt_fail("usage: staff-caps NAME [--update|--no-update] "
                        "[--decrypt|--no-decrypt] [--admin|--no-admin]");
    if (svt_name_ok(argv[0]) || svt_caps(argc - 1, argv + 1, caps))
        return 1;
    {
        static const char *const cols[3] = { "can_update", "can_decrypt", "can_admin" };
        int k;
        for (k = 0; k < 3; k++) {
            char sql[160];
            const char *a[] = { caps[k] ? "t" : "f", argv[0] };
            if (caps[k] < 0)
                continue;
            snprintf(sql, sizeof(sql), "UPDATE staff SET %s = %%s::boolean, updated = now() "
                     "WHERE name = %%s", cols[k]);
            if (svt_exec(c, &n, sql, 2, a))
                return 1;
            if (n != 1)
                return svt_fail("no staff member %s", argv[0]);
        }
    }
    printf("capabilities of %s changed\n", argv[0]);
    {
        svt_rows res;
        apr_dbd_row_t *row;
        const char *a[] = { argv[0] };
        int both = 0;
        if (svt_select(c, &res, "SELECT can_admin AND can_decrypt FROM staff WHERE name = %s",
                       1, a))
            return 1;
        while ((row = svt_row(c, &res)))
            both = *svt_col(c, row, 0) == 't';
        if (both)
            svt_sod_warn(argv[0]);
    }
    return 0;
}

int svt_cmd_staff_enable(svt_ctx *c, int argc, char **argv, int enable)
{
    int n = 0;

    if (argc != 1)
        return svt_fail("usage: staff-%s NAME", enable ? "enable" : "disable");
    if (svt_name_ok(argv[0]))
        return 1;
    {
        const char *a[] = { enable ? "f" : "t", argv[0] };
        if (svt_exec(c, &n, "UPDATE staff SET disabled = %s::boolean, updated = now() "
                     "WHERE name = %s", 2, a))
            return 1;
    }
    if (n != 1)
        return svt_fail("no staff member %s", argv[0]);
    if (!enable) {
        const char *a[] = { argv[0] };
        svt_exec(c, NULL, "DELETE FROM sessions WHERE staff_id = (SELECT id FROM staff "
                 "WHERE name = %s)", 1, a);
    }
    printf("staff member %s %s\n", argv[0], enable ? "enabled" : "disabled; sessions ended");
    return 0;
}

int svt_cmd_staff_list(svt_ctx *c, int argc, char **argv)
{
    svt_rows res;
    apr_dbd_row_t *row;

    if (svt_select(c, &res, "SELECT name, can_update, can_decrypt, can_admin, disabled, "
                   "coalesce(to_char(last_login AT TIME ZONE 'UTC', "
                   "'YYYY-MM-DD HH24:MI'), '-') FROM staff ORDER BY name", 0, NULL))
        return 1;
    printf("%-32s %-6s %-7s %-5s %-8s %s\n", "name", "update", "decrypt", "admin",
           "disabled", "last sign-in (UTC)");
    while ((row = svt_row(c, &res)))
        printf("%-32s %-6s %-7s %-5s %-8s %s\n", svt_col(c, row, 0),
               *svt_col(c, row, 1) == 't' ? "yes" : "no",
               *svt_col(c, row, 2) == 't' ? "yes" : "no",
               *svt_col(c, row, 3) == 't' ? "yes" : "no",
               *svt_col(c, row, 4) == 't' ? "yes" : "no", svt_col(c, row, 5));
    return 0;
}

int svt_cmd_login_key(int argc, char **argv)
{
    unsigned char key[32];
    char text[2 * sizeof(key) + 1];
    size_t off = 0;
    int fd, rc = 0;

    if (argc != 1)
        return svt_fail("usage: login-key FILE");
    if (RAND_bytes(key, sizeof(key)) != 1)
        return svt_fail("login-key: no random bytes");
    sv_hex_encode(key, sizeof(key), text); /* constant time: the key is a secret */
    text[2 * sizeof(key)] = '\n';
    sv_cleanse(key, sizeof(key));
    /* never over an existing key: every front end must keep the same one */
    fd = open(argv[0], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        sv_cleanse(text, sizeof(text));
        return svt_fail("login-key: cannot create %s: %s", argv[0], strerror(errno));
    }
    while (off < sizeof(text)) {
        ssize_t w = write(fd, text + off, sizeof(text) - off);
        if (w <= 0) {
            rc = svt_fail("login-key: cannot write %s: %s", argv[0], strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = svt_fail("login-key: cannot write %s: %s", argv[0], strerror(errno));
    close(fd);
    sv_cleanse(text, sizeof(text));
    if (rc) {
        unlink(argv[0]);
        return rc;
    }
    printf("login key written to %s (mode 0600): install the same file on every front end "
           "and name it with SplitVaultLoginKeyFile\n", argv[0]);
    return 0;
}
