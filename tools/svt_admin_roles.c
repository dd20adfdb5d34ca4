/*
 * svt_admin_roles.c - `roles`: the main database's owner, web and console
 * roles.
 *
 * sql/roles.sql (next to the migrations' directory, sql/main) creates the
 * owner role and the web role when they are missing, gives the owner role
 * the database and every object of schema public, takes PUBLIC's default
 * privileges away, grants the web role exactly what the module's statements
 * need, grants the console role (the staff console's, SplitVaultStaffConsole)
 * those and what the console's statements need, and checks that neither
 * can do more (docs/schema.md, "Roles and privileges"). `roles` runs it,
 * the first time as a superuser: the role names are recorded in the
 * database's settings then. `schema` runs it again, as the owner role, in
 * the transaction of every migration, so that the roles have their grants
 * on what a migration adds the moment it commits; the names come from
 * those settings.
 *
 * The names are passed to the script through the settings it reads
 * (splitvault.owner_role, splitvault.web_role, splitvault.console_role), set
 * with bound parameters:
 * no name is ever pasted into SQL text here. The script quotes them itself.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "apr_strings.h"

#include "svt_admin.h"

#define ROLE_NAME_MAX 63

/* sql/roles.sql: the parent directory of the migrations' directory. */
static const char *svt_roles_file(svt_ctx *c)
{
    char *dir = apr_pstrdup(c->pool, c->sql_dir);
    size_t n = strlen(dir);
    char *slash;

    while (n > 1 && dir[n - 1] == '/')
        dir[--n] = '\0';
    slash = strrchr(dir, '/');
    if (!slash)
        return "roles.sql"; /* a migrations directory relative to . */
    if (slash == dir)
        return "/roles.sql";
    *slash = '\0';
    return apr_pstrcat(c->pool, dir, "/roles.sql", NULL);
}

/* The script's own rule: 1..63 of a-z 0-9 _, no leading digit, not pg_. */
static int svt_role_name_ok(const char *opt, const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > ROLE_NAME_MAX || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != n
        || (name[0] >= '0' && name[0] <= '9') || strncmp(name, "pg_", 3) == 0)
        return svt_fail("roles: %s '%s': a role name is 1 to %d of a-z, 0-9 and _, not "
                        "starting with a digit or pg_", opt, name, ROLE_NAME_MAX);
    return 0;
}

/* Set one of the script's settings for this session. */
static int svt_roles_set(svt_ctx *c, const char *setting, const char *value)
{
    const char *a[] = { setting, value };
    svt_rows res;

    if (svt_select(c, &res, "SELECT set_config(%s, %s, false)", 2, a))
        return 1;
    while (svt_row(c, &res))
        ;
    return 0;
}

/* One value of a one-row, one-column select (NULL: failed, printed). */
static const char *svt_roles_value(svt_ctx *c, const char *sql)
{
    svt_rows res;
    apr_dbd_row_t *row;
    const char *v = NULL;

    if (svt_select(c, &res, sql, 0, NULL))
        return NULL;
    while ((row = svt_row(c, &res)))
        v = svt_col(c, row, 0);
    if (!v)
        svt_fail("no answer to %s", sql);
    return v;
}

/* Run roles.sql inside the caller's transaction, the names set first when
 * given. On success *owner and *web are the names the script used. */
static int svt_roles_run(svt_ctx *c, const char *path, const char *owner_opt,
                         const char *web_opt, const char *con_opt, const char **owner,
                         const char **web)
{
    char *sql;
    int nrows = 0, rv;

    if (svt_read_sql(c, path, &sql))
        return 1;
    if ((owner_opt && svt_roles_set(c, "splitvault.owner_role", owner_opt))
        || (web_opt && svt_roles_set(c, "splitvault.web_role", web_opt))
        || (con_opt && svt_roles_set(c, "splitvault.console_role", con_opt)))
        return 1;
    if ((rv = apr_dbd_query(c->driver, c->handle, &nrows, sql)) != 0) {
        /* PostgreSQL's message, its HINT and CONTEXT lines (never a secret) */
        const char *m = apr_dbd_error(c->driver, c->handle, rv);
        char *e = apr_pstrdup(c->pool, m ? m : "unknown error");
        size_t n = strlen(e);

        while (n > 0 && (e[n - 1] == '\n' || e[n - 1] == ' '))
            e[--n] = '\0';
        return svt_fail("%s failed: %s", path, e);
    }
    if (!(*owner = svt_roles_value(c, "SELECT current_setting('splitvault.owner_role')"))
        || !(*web = svt_roles_value(c, "SELECT current_setting('splitvault.web_role')")))
        return 1;
    return 0;
}

/* svt_roles_run in a transaction of its own. */
static int svt_roles_apply(svt_ctx *c, const char *path, const char *owner_opt,
                           const char *web_opt, const char *con_opt, const char **owner,
                           const char **web)
{
    apr_dbd_transaction_t *tx = NULL;
    int fail;

    if (apr_dbd_transaction_start(c->driver, c->pool, c->handle, &tx))
        return svt_fail("roles: cannot begin a transaction: %s",
                        apr_dbd_error(c->driver, c->handle, 0));
    fail = svt_roles_run(c, path, owner_opt, web_opt, con_opt, owner, web);
    if (fail)
        apr_dbd_transaction_mode_set(c->driver, tx, APR_DBD_TRANSACTION_ROLLBACK);
    if (apr_dbd_transaction_end(c->driver, c->pool, tx) && !fail)
        return svt_fail("roles: the commit failed: %s", apr_dbd_error(c->driver, c->handle, 0));
    return fail;
}

int svt_cmd_roles(svt_ctx *c, int argc, char **argv)
{
    const char *owner_opt = NULL, *web_opt = NULL, *con_opt = NULL, *owner = NULL;
    const char *web = NULL, *con, *has;
    int i;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--owner") == 0 && i + 1 < argc)
            owner_opt = argv[++i];
        else if (strcmp(argv[i], "--web") == 0 && i + 1 < argc)
            web_opt = argv[++i];
        else if (strcmp(argv[i], "--console") == 0 && i + 1 < argc)
            con_opt = argv[++i];
        else if (strcmp(argv[i], "--sql-dir") == 0 && i + 1 < argc)
            c->sql_dir = argv[++i];
        else
            return svt_fail("usage: roles [--owner NAME] [--web NAME] [--console NAME] "
                            "[--sql-dir DIR]");
    }
    if ((owner_opt && svt_role_name_ok("--owner", owner_opt))
        || (web_opt && svt_role_name_ok("--web", web_opt))
        || (con_opt && svt_role_name_ok("--console", con_opt)))
        return 1;
    if (owner_opt && web_opt && strcmp(owner_opt, web_opt) == 0)
        return svt_fail("roles: the owner role and the web role must be two roles");
    if (con_opt && ((owner_opt && strcmp(owner_opt, con_opt) == 0)
                    || (web_opt && strcmp(web_opt, con_opt) == 0)))
        return svt_fail("roles: the console role must be a role of its own");
    if (svt_roles_apply(c, svt_roles_file(c), owner_opt, web_opt, con_opt, &owner, &web))
        return 1;
    if (!(con = svt_roles_value(c, "SELECT coalesce((SELECT rolname FROM pg_roles WHERE "
                                   "rolname = current_setting('splitvault.console_role') AND "
                                   "has_database_privilege(oid, current_database(), "
                                   "'CONNECT')), '')")))
        return 1;
    printf("owner role %s, web role %s, console role %s: privileges applied\n", owner, web,
           *con ? con : "(none yet: run `roles` as a superuser)");
    if (!(has = svt_roles_value(c, "SELECT to_regclass('schema_version') IS NOT NULL")))
        return 1;
    if (*has != 't')
        printf("next: apply the schema as %s (splitvault-admin -d \"... user=%s\" schema)\n",
               owner, owner);
    return 0;
}

int svt_roles_configured(svt_ctx *c)
{
    const char *set = svt_roles_value(c, "SELECT coalesce(current_setting("
                                         "'splitvault.web_role', true), '') <> ''");

    if (!set)
        return -1;
    if (*set != 't')
        fputs("splitvault-admin: note: this database has no web role of its own yet, so the "
              "module's role may do anything its owner can; set the roles up with "
              "`splitvault-admin roles` (docs/install.md)\n", stderr);
    return *set == 't';
}

int svt_roles_reapply(svt_ctx *c, int in_tx)
{
    const char *owner = NULL, *web = NULL;
    int fail = in_tx ? svt_roles_run(c, svt_roles_file(c), NULL, NULL, NULL, &owner, &web)
                     : svt_roles_apply(c, svt_roles_file(c), NULL, NULL, NULL, &owner, &web);

    if (fail)
        return svt_fail("schema: the roles' privileges were not re-applied%s", in_tx
                        ? " (nothing was migrated)"
                        : "; the module may fail on what a migration added until they are");
    printf("privileges of web role %s applied (owner role %s)\n", web, owner);
    return 0;
}
