/*
 * svt_admin_schema.c - `schema`: apply or migrate the main schema.
 *
 * sql/main holds numbered files NNN_name.sql (installed under
 * $(pkgdatadir)/sql/main). Each file records its own version in
 * schema_version as its last statement. `schema` reads the database's
 * version (0 for an empty database) and applies every newer file in order,
 * each in its own transaction, checking that the file recorded its version.
 * When the database was set up with its roles (`roles`, svt_admin_roles.c),
 * sql/roles.sql runs again in each migration's transaction, so that the web
 * and console roles have their grants on what the migration added the
 * moment it commits: a module already running (it is upgraded first,
 * docs/operations.md) never sees a version without its grants. With
 * nothing to migrate, roles.sql runs once, in a transaction of its own.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_strings.h"

#include "svt_admin.h"

#define MAX_MIGRATIONS 999

int svt_schema_current(svt_ctx *c)
{
    svt_rows res;
    apr_dbd_row_t *row;
    const char *v = NULL;

    if (svt_select(c, &res, "SELECT to_regclass('schema_version') IS NOT NULL", 0, NULL))
        return -1;
    while ((row = svt_row(c, &res)))
        v = svt_col(c, row, 0);
    if (!v || *v != 't')
        return 0;
    if (svt_select(c, &res, "SELECT coalesce(max(version), 0) FROM schema_version", 0, NULL))
        return -1;
    v = NULL;
    while ((row = svt_row(c, &res)))
        v = svt_col(c, row, 0);
    return v ? atoi(v) : -1;
}

/* The file for version v in dir, or NULL. */
static const char *svt_schema_file(svt_ctx *c, int v, char **names, int n)
{
    int i;

    for (i = 0; i < n; i++)
        if (atoi(names[i]) == v)
            return apr_pstrcat(c->pool, c->sql_dir, "/", names[i], NULL);
    return NULL;
}

int svt_cmd_schema(svt_ctx *c, int argc, char **argv)
{
    DIR *d;
    struct dirent *e;
    char *names[MAX_MIGRATIONS + 1];
    int n = 0, cur, v, newest = 0, i, roles;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--sql-dir") == 0 && i + 1 < argc)
            c->sql_dir = argv[++i];
        else
            return svt_fail("schema: unknown argument %s", argv[i]);
    }
    if (!(d = opendir(c->sql_dir)))
        return svt_fail("schema: cannot open %s", c->sql_dir);
    while ((e = readdir(d)) && n < MAX_MIGRATIONS) {
        size_t l = strlen(e->d_name);
        if (l > 8 && e->d_name[3] == '_' && strspn(e->d_name, "0123456789") == 3
            && strcmp(e->d_name + l - 4, ".sql") == 0) {
            names[n++] = apr_pstrdup(c->pool, e->d_name);
            if (atoi(e->d_name) > newest)
                newest = atoi(e->d_name);
        }
    }
    closedir(d);
    if (n == 0)
        return svt_fail("schema: no NNN_*.sql file in %s", c->sql_dir);
    if ((cur = svt_schema_current(c)) < 0)
        return 1;
    if (cur > newest)
        return svt_fail("schema: the database is at version %d, newer than these files (%d)",
                        cur, newest);
    if ((roles = svt_roles_configured(c)) < 0)
        return 1;
    for (v = cur + 1; v <= newest; v++) {
        const char *path = svt_schema_file(c, v, names, n);
        apr_dbd_transaction_t *tx = NULL;
        char *sql;
        int nrows = 0, rv;

        if (!path)
            return svt_fail("schema: migration %03d is missing from %s", v, c->sql_dir);
        if (svt_read_sql(c, path, &sql))
            return 1;
        if (apr_dbd_transaction_start(c->driver, c->pool, c->handle, &tx))
            return svt_fail("schema: cannot begin a transaction");
        rv = apr_dbd_query(c->driver, c->handle, &nrows, sql);
        if (rv) {
            svt_fail("schema: %s failed: %s", path, apr_dbd_error(c->driver, c->handle, rv));
            apr_dbd_transaction_mode_set(c->driver, tx, APR_DBD_TRANSACTION_ROLLBACK);
            apr_dbd_transaction_end(c->driver, c->pool, tx);
            return 1;
        }
        if (svt_schema_current(c) != v) {
            svt_fail("schema: %s did not record version %d in schema_version", path, v);
            apr_dbd_transaction_mode_set(c->driver, tx, APR_DBD_TRANSACTION_ROLLBACK);
            apr_dbd_transaction_end(c->driver, c->pool, tx);
            return 1;
        }
        if (roles && svt_roles_reapply(c, 1)) {
            svt_fail("schema: version %d was not applied", v);
            apr_dbd_transaction_mode_set(c->driver, tx, APR_DBD_TRANSACTION_ROLLBACK);
            apr_dbd_transaction_end(c->driver, c->pool, tx);
            return 1;
        }
        if (apr_dbd_transaction_end(c->driver, c->pool, tx))
            return svt_fail("schema: commit of version %d failed", v);
        printf("applied schema version %d (%s)\n", v, strrchr(path, '/') + 1);
    }
    if (cur == newest) {
        printf("schema is up to date (version %d)\n", cur);
        return roles ? svt_roles_reapply(c, 0) : 0;
    }
    return 0;
}

int svt_cmd_schema_version(svt_ctx *c, int argc, char **argv)
{
    int v = svt_schema_current(c);

    if (v < 0)
        return 1;
    printf("%d\n", v);
    return 0;
}
