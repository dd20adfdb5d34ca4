/*
 * svt_admin.h - splitvault-admin: the main database's administration tool.
 *
 * One file per group of subcommands: svt_admin.c (command line, database
 * connection, password entry), svt_admin_schema.c (apply / migrate the main
 * schema), svt_admin_roles.c (the owner and web roles and their
 * privileges), svt_admin_staff.c (staff accounts), svt_admin_key1.c (key1
 * public keys), svt_admin_reconcile.c (the daemon's orphaned shares, over
 * mutual TLS), svt_admin_audit.c (the audit table's hash chain),
 * svt_admin_share.c (key1 split into k-of-n shares,
 * offline). The database is reached through apr_dbd's pgsql driver, as
 * the owner role (docs/install.md); the module's DBDParams name the web role.
 */
#ifndef SVT_ADMIN_H
#define SVT_ADMIN_H

#include <stddef.h>
#include "apr_pools.h"
#include "apr_dbd.h"

typedef struct {
    apr_pool_t *pool;
    const apr_dbd_driver_t *driver;
    apr_dbd_t *handle;
    const char *dsn;
    const char *sql_dir;
} svt_ctx;

/* Print an error to stderr prefixed with the program name; returns 1. */
int svt_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run one statement with string arguments (NULL-terminated list; a NULL
 * value is SQL NULL only through svt_exec_argv). Returns 0 or 1 (printed). */
int svt_exec(svt_ctx *c, int *nrows, const char *sql, int nargs, const char **args);
/* A result read row by row (apr_dbd keeps the position in the row). */
typedef struct {
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
} svt_rows;
/* Run a select into rows. Returns 0 or 1 (printed). */
int svt_select(svt_ctx *c, svt_rows *rows, const char *sql, int nargs, const char **args);
/* Next row or NULL. */
apr_dbd_row_t *svt_row(svt_ctx *c, svt_rows *rows);
const char *svt_col(svt_ctx *c, apr_dbd_row_t *row, int n);

/* The whole of an SQL file (at most SVT_SQL_MAX bytes), NUL-terminated, in
 * c->pool. Returns 0 or 1 (printed). */
#define SVT_SQL_MAX (4 * 1024 * 1024)
int svt_read_sql(svt_ctx *c, const char *path, char **sql);
/* apr_strerror's text for rv, in c->pool. */
const char *svt_apr_err(svt_ctx *c, apr_status_t rv);

/* Read a password: from the terminal without echo (asked twice) when stdin
 * is a tty, else one line of stdin. Returns a NUL-terminated buffer to free
 * with svt_password_free(), or NULL (message printed). */
char *svt_password_read(const char *prompt, size_t *len);
void svt_password_free(char *pw, size_t len);
/* Read a key file's passphrase once: one line from fd when fd >= 0, else
 * from the terminal without echo (an error when stdin is no tty). Free with
 * svt_password_free(). NULL on failure (message printed). */
char *svt_passphrase_read(const char *prompt, int fd, size_t *len);
/* The same, with no_tty the message when there is neither fd nor a
 * terminal (for passphrases of other things than a key file). */
char *svt_passphrase_ask(const char *prompt, int fd, const char *no_tty, size_t *len);
/* A new passphrase, as svt_passphrase_ask, typed twice when it comes from
 * the terminal: NULL with *differ = 1 (nothing printed) when the two
 * entries differ, NULL with *differ = 0 on any other failure (printed). */
char *svt_passphrase_new(const char *prompt, int fd, const char *no_tty, size_t *len,
                         int *differ);

/* Before a command reads key1 or a share: no core file, and the process
 * undumpable (no ptrace or /proc/PID/mem by other processes of the same
 * user, no core). Returns 0 or 1 (printed): the command must stop. */
int svt_no_dump(void);

int svt_cmd_schema(svt_ctx *c, int argc, char **argv);
/* svt_admin_roles.c: the owner and web roles (sql/roles.sql). */
int svt_cmd_roles(svt_ctx *c, int argc, char **argv);
/* 1 when the database has its roles set up (`roles` has run), 0 when not
 * (a note printed), -1 on error (printed). */
int svt_roles_configured(svt_ctx *c);
/* Apply sql/roles.sql again, inside the caller's transaction (in_tx: a
 * migration's, so that it commits with its grants) or in one of its own.
 * Returns 0 or 1 (printed). */
int svt_roles_reapply(svt_ctx *c, int in_tx);
int svt_cmd_schema_version(svt_ctx *c, int argc, char **argv);
int svt_cmd_staff_add(svt_ctx *c, int argc, char **argv);
int svt_cmd_staff_passwd(svt_ctx *c, int argc, char **argv);
int svt_cmd_staff_caps(svt_ctx *c, int argc, char **argv);
int svt_cmd_staff_enable(svt_ctx *c, int argc, char **argv, int enable);
int svt_cmd_staff_list(svt_ctx *c, int argc, char **argv);
/* login-key FILE: a new secret for SplitVaultLoginKeyFile (no database). */
int svt_cmd_login_key(int argc, char **argv);
int svt_cmd_key1_register(svt_ctx *c, int argc, char **argv);
int svt_cmd_key1_activate(svt_ctx *c, int argc, char **argv);
int svt_cmd_key1_list(svt_ctx *c, int argc, char **argv);
/* svt_admin_rewrap.c: move fields from an old key1 to the active one;
 * remove a key1 no field uses. */
int svt_cmd_key1_rewrap(svt_ctx *c, int argc, char **argv);
int svt_cmd_key1_retire(svt_ctx *c, int argc, char **argv);
/* svt_admin_reconcile.c: orphaned and unfinished shares on the daemon. */
int svt_cmd_reconcile(svt_ctx *c, int argc, char **argv);
/* svt_admin_check.c: compare the main database with the daemon, read-only.
 * Returns 0 consistent, 1 findings, 2 could not check (printed). */
int svt_cmd_check(svt_ctx *c, int argc, char **argv);
/* svt_admin_audit.c: verify the main audit table's hash chain.
 * Returns 0 it verifies, 1 broken (printed), 2 could not check (printed). */
int svt_cmd_audit_verify(svt_ctx *c, int argc, char **argv);
/* svt_admin_share.c: key1 under dual control, k-of-n shares (no database). */
int svt_cmd_key1_split(int argc, char **argv);
int svt_cmd_key1_share_check(int argc, char **argv);
int svt_cmd_key1_share_export(int argc, char **argv);
int svt_cmd_key1_combine(int argc, char **argv);

/* The main database's schema version: 0 when schema_version does not
 * exist, -1 on error (printed by the driver's layer). */
int svt_schema_current(svt_ctx *c);

#endif /* SVT_ADMIN_H */
