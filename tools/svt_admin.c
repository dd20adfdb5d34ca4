/*
 * svt_admin.c - splitvault-admin: command line, database connection and
 * password entry. See svt_admin.h and `splitvault-admin help`.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <termios.h>
#include <unistd.h>

#include "apr_file_io.h"
#include "apr_general.h"
#include "apr_lib.h"
#include "apr_strings.h"

#include "sv_secret.h"
#include "sv_log.h"
#include "sv_pwpolicy.h"
#include "svt_admin.h"

#define PW_MAX SV_PWPOLICY_MAX_BYTES

static const char usage[] =
    "usage: splitvault-admin [-d DSN] COMMAND [ARGS]\n"
    "       splitvault-admin --version\n"
    "\n"
    "The database: $SPLITVAULT_DSN (or -d DSN), a libpq connection string such as\n"
    "\"host=127.0.0.1 port=5432 dbname=splitvault user=splitvault_owner\", naming the\n"
    "owner role (the module's DBDParams name the web role instead: see `roles`).\n"
    "Keep the password out of it: a command line is visible to every user (ps); put it\n"
    "in ~/.pgpass or a file named by $PGPASSFILE instead.\n"
    "\n"
    "  roles [--owner NAME] [--web NAME] [--console NAME] [--sql-dir DIR]\n"
    "                              as a superuser, once: create the owner role (owns the\n"
    "                              schema; what this tool connects as), the web role\n"
    "                              (the module's, with only the grants it needs) and the\n"
    "                              console role (the staff console's: those and staff\n"
    "                              management) when missing, without passwords; take\n"
    "                              PUBLIC's default privileges away; grant (default names\n"
    "                              splitvault_owner, splitvault_web, splitvault_console,\n"
    "                              then those recorded); idempotent\n"
    "  schema [--sql-dir DIR]      apply the main schema to an empty database, or migrate\n"
    "                              it to the newest version (each step in a transaction),\n"
    "                              then apply the web role's privileges again (roles.sql,\n"
    "                              read from DIR/..)\n"
    "  schema-version              print the schema version of the database\n"
    "  staff-add NAME [--update] [--decrypt] [--admin]\n"
    "                              create a staff account; the password is read from\n"
    "                              the terminal (asked twice) or one line of stdin\n"
    "  staff-passwd NAME           set a new password (same input rules)\n"
    "  staff-caps NAME [--update|--no-update] [--decrypt|--no-decrypt] [--admin|--no-admin]\n"
    "  staff-disable NAME          refuse sign-in and end the account's sessions\n"
    "  staff-enable NAME\n"
    "  staff-list\n"
    "  key1-register FILE.pub [--activate] [--by NAME]\n"
    "                              register a key1 public key (SPKI PEM from\n"
    "                              `openssl pkey -pubout`); the first one, or with\n"
    "                              --activate, becomes the active key for intake\n"
    "  key1-activate FINGERPRINT   make a registered key the active one\n"
    "  key1-list\n"
    "  key1-rewrap OLD-KEY1.pem --to NEW-FINGERPRINT [--passphrase-fd N] [--batch N]\n"
    "              [--jobs N] [--by NAME]\n"
    "                              wrap key2a of every field wrapped to that (old, not\n"
    "                              active) key1 to the active key1 instead, which must\n"
    "                              be the one --to names; in short transactions of\n"
    "                              --batch rows (default 1000), while the service runs,\n"
    "                              in --jobs threads with a connection each (default:\n"
    "                              the online CPUs, at most 8);\n"
    "                              resumable; the datums are not touched and the daemon\n"
    "                              is not needed; the passphrase of an encrypted key file\n"
    "                              is asked on the terminal, or read as one line from\n"
    "                              file descriptor N\n"
    "  key1-retire FINGERPRINT [--by NAME]\n"
    "                              remove a registered key1 that is not active and that no\n"
    "                              field is wrapped to any more (after key1-rewrap)\n"
    "  key1-split --k K --n N [--holder NAME]... [--out-dir DIR] [--passphrase-fd FD]\n"
    "             [--share-passphrase-fd FD] KEY1.pem\n"
    "                              dual control: split key1 into N shares, any K of\n"
    "                              which (2 to 8) open it; each share file is sealed\n"
    "                              under a passphrase its holder chooses (asked twice on\n"
    "                              the terminal; at least 12 characters, each its own),\n"
    "                              written as DIR/key1-<fingerprint>.share-<i> (mode\n"
    "                              0600, never over a file) once every K consecutive\n"
    "                              shares were found to give key1 back; --holder NAME,\n"
    "                              N times or never, names the holders in share order;\n"
    "                              no database needed\n"
    "  key1-share-check [--passphrase-fd FD] SHARE\n"
    "                              open one share file and print its key, index,\n"
    "                              threshold and holder: a holder's check\n"
    "  key1-share-export [--passphrase-fd FD] SHARE OUTFILE.NNN\n"
    "                              write the share unsealed, as libgfshare's gfsplit\n"
    "                              would (NNN: the share's index, 3 digits), for\n"
    "                              recovery with stock gfcombine and openssl, in a\n"
    "                              tmpfs (warns when OUTFILE is not on one)\n"
    "  key1-combine [--expect FINGERPRINT] [--passphrase-fd FD] [--out-passphrase-fd FD]\n"
    "               --out KEY1.pem SHARE...\n"
    "                              assemble K shares into an encrypted key1 file (mode\n"
    "                              0600, never over a file), e.g. for key1-rewrap; names\n"
    "                              the shares' key first, and refuses any other than\n"
    "                              --expect's (the fingerprint key1-list shows: give\n"
    "                              it); each share's passphrase is asked on the terminal;\n"
    "                              write it to a tmpfs (/dev/shm) on an offline machine\n"
    "  key1 share commands: --passphrase-fd, --share-passphrase-fd (one line per share,\n"
    "                              in order) and --out-passphrase-fd read passphrases\n"
    "                              from one source, for tests and scripts; in a real\n"
    "                              ceremony each holder types their own on the terminal\n"
    "  login-key FILE              write a new secret for the module's SplitVaultLoginKeyFile\n"
    "                              (mode 0600; install the same file on every front end)\n"
    "  reconcile --daemon HOST:PORT --ca FILE --cert FILE --key FILE [--name NAME]\n"
    "            [--timeout SECONDS] [--grace SECONDS] [--max-retire N] [--dry-run|--apply]\n"
    "                              compare the daemon's shares older than the grace\n"
    "                              period (default 3600) with the shares the database\n"
    "                              references: activate referenced pending ones, retire\n"
    "                              unreferenced ones (restorable on the daemon until\n"
    "                              purged), none at all when more than --max-retire\n"
    "                              (default 1000) look unreferenced; a dry run unless\n"
    "                              --apply; --cert: a certificate of the daemon's\n"
    "                              reconcile role\n"
    "  check --daemon HOST:PORT --ca FILE --cert FILE --key FILE [--name NAME]\n"
    "        [--timeout SECONDS] [--grace SECONDS] [--examples N] [--verbose]\n"
    "                              compare the database with the daemon, read-only on\n"
    "                              both: fields whose share is missing, retired or\n"
    "                              pending; shares in use no field references\n"
    "                              (orphans); shares referenced by another record or\n"
    "                              field; the first N (default 10) of each kind, all\n"
    "                              with --verbose, and the next step for each; exit 0\n"
    "                              consistent, 1 findings, 2 could not check; --cert: a\n"
    "                              certificate of the daemon's reconcile role\n"
    "  audit-verify [--anchor ID:HASH] [--from ID]\n"
    "                              verify the audit table's hash chain in id order (from\n"
    "                              row ID on), read-only: each row's hash, its link to\n"
    "                              the row before, the chain head; names the first\n"
    "                              broken row; prints the head (ID:HASH): record it off\n"
    "                              the system and give it later as --anchor, which fails\n"
    "                              when that row's hash differs (a rewritten chain);\n"
    "                              exit 0 verifies, 1 broken, 2 could not check\n"
    "  (reconcile and check: --timeout for each exchange with the daemon, 1 to 600,\n"
    "  default 30; --name: the name expected in the daemon's certificate)\n";

int svt_fail(const char *fmt, ...)
{
    va_list ap;

    fputs("splitvault-admin: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

/* 1 when a connection string carries a password (keyword password=, or a
 * postgresql:// URI with user:password@). */
static int svt_dsn_has_password(const char *dsn)
{
    const char *p, *at, *scheme = strstr(dsn, "://");

    for (p = dsn; (p = strstr(p, "password")) != NULL; p += 8) {
        const char *q = p + 8;
        if (p > dsn && (apr_isalnum(p[-1]) || p[-1] == '_'))
            continue;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q == '=')
            return 1;
    }
    if (scheme && (at = strchr(scheme + 3, '@')) != NULL) {
        const char *colon = strchr(scheme + 3, ':');
        if (colon && colon < at)
            return 1;
    }
    return 0;
}

/* Commands whose exit status 1 means findings: a failure to run is 2. */
static int svt_cmd_exit2(const char *cmd)
{
    return strcmp(cmd, "check") == 0 || strcmp(cmd, "audit-verify") == 0;
}

static void svt_lib_log(void *ctx, sv_log_level level, const char *msg)
{
    if (level <= SV_LOG_WARN)
        fprintf(stderr, "splitvault-admin: %s\n", msg);
}

static int svt_prepare(svt_ctx *c, const char *sql, apr_dbd_prepared_t **st)
{
    int rv;

    *st = NULL; /* apr_dbd writes into a non-NULL statement */
    rv = apr_dbd_prepare(c->driver, c->pool, c->handle, sql, NULL, st);

    if (rv)
        return svt_fail("cannot prepare a statement: %s",
                        apr_dbd_error(c->driver, c->handle, rv));
    return 0;
}

int svt_exec(svt_ctx *c, int *nrows, const char *sql, int nargs, const char **args)
{
    apr_dbd_prepared_t *st = NULL; /* apr_dbd reuses a non-NULL one */
    int n = 0, rv;

    if (svt_prepare(c, sql, &st))
        return 1;
    rv = apr_dbd_pquery(c->driver, c->pool, c->handle, &n, st, nargs, args);
    if (rv)
        return svt_fail("database: %s", apr_dbd_error(c->driver, c->handle, rv));
    if (nrows)
        *nrows = n;
    return 0;
}

int svt_select(svt_ctx *c, svt_rows *rows, const char *sql, int nargs, const char **args)
{
    apr_dbd_prepared_t *st = NULL; /* apr_dbd reuses a non-NULL one */
    int rv;

    rows->res = NULL;
    rows->row = NULL;
    if (svt_prepare(c, sql, &st))
        return 1;
    rv = apr_dbd_pselect(c->driver, c->pool, c->handle, &rows->res, st, 1, nargs, args);
    if (rv)
        return svt_fail("database: %s", apr_dbd_error(c->driver, c->handle, rv));
    return 0;
}

apr_dbd_row_t *svt_row(svt_ctx *c, svt_rows *rows)
{
    if (!rows->res || apr_dbd_get_row(c->driver, c->pool, rows->res, &rows->row, -1) != 0) {
        rows->res = NULL;
        rows->row = NULL;
        return NULL;
    }
    return rows->row;
}

const char *svt_col(svt_ctx *c, apr_dbd_row_t *row, int n)
{
    const char *v = apr_dbd_get_entry(c->driver, row, n);

    return v ? apr_pstrdup(c->pool, v) : "";
}

int svt_read_sql(svt_ctx *c, const char *path, char **sql)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t len;
    char *buf;
    apr_status_t rv;

    *sql = NULL;
    if ((rv = apr_file_open(&f, path, APR_FOPEN_READ, 0, c->pool)) != APR_SUCCESS)
        return svt_fail("cannot open %s: %s", path, svt_apr_err(c, rv));
    rv = apr_file_info_get(&fi, APR_FINFO_SIZE, f);
    if (rv != APR_SUCCESS || fi.size > SVT_SQL_MAX) {
        apr_file_close(f);
        return rv != APR_SUCCESS ? svt_fail("cannot read %s: %s", path, svt_apr_err(c, rv))
                                 : svt_fail("%s is larger than %d bytes", path, SVT_SQL_MAX);
    }
    len = (apr_size_t)fi.size;
    buf = apr_palloc(c->pool, len + 1);
    rv = apr_file_read_full(f, buf, len, &len);
    apr_file_close(f);
    if (rv != APR_SUCCESS)
        return svt_fail("cannot read %s: %s", path, svt_apr_err(c, rv));
    buf[len] = '\0';
    *sql = buf;
    return 0;
}

const char *svt_apr_err(svt_ctx *c, apr_status_t rv)
{
    char buf[256];

    return apr_pstrdup(c->pool, apr_strerror(rv, buf, sizeof(buf)));
}

/* One line into buf (without its end of line); returns its length or -1. */
static long svt_read_line(FILE *in, char *buf, size_t size)
{
    size_t n = 0;
    int ch;

    while ((ch = fgetc(in)) != EOF && ch != '\n') {
        if (n + 1 >= size) {
            while ((ch = fgetc(in)) != EOF && ch != '\n')
                ;
            return -1;
        }
        buf[n++] = (char)ch;
    }
    if (n && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return (ch == EOF && n == 0) ? -1 : (long)n;
}

static long svt_read_tty(const char *prompt, char *buf, size_t size)
{
    struct termios old, quiet;
    long n;

    if (tcgetattr(STDIN_FILENO, &old) != 0)
        return -1;
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    /* echo off (and what was typed ahead dropped) before the prompt: what
     * is typed after the prompt must not be flushed away */
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    fprintf(stderr, "%s", prompt);
    fflush(stderr);
    n = svt_read_line(stdin, buf, size);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputc('\n', stderr);
    return n;
}

char *svt_password_read(const char *prompt, size_t *len)
{
    size_t size = PW_MAX + 2;
    char *pw = sv_secret_alloc(size), *again = NULL;
    const char *why;
    long n;

    if (!pw) {
        svt_fail("out of memory");
        return NULL;
    }
    if (isatty(STDIN_FILENO)) {
        again = sv_secret_alloc(size);
        n = again ? svt_read_tty(prompt, pw, size) : -1;
        if (n >= 0 && svt_read_tty("Again: ", again, size) != n)
            n = -2;
        else if (n >= 0 && sv_memcmp_ct(pw, again, (size_t)n) != 0)
            n = -2;
        sv_secret_free(again, size);
        if (n == -2) {
            sv_secret_free(pw, size);
            svt_fail("the passwords differ");
            return NULL;
        }
    }
    else
        n = svt_read_line(stdin, pw, size);
    if (n < 0 || n > PW_MAX) {
        sv_secret_free(pw, size);
        svt_fail("no password read (at most %d bytes, one line)", PW_MAX);
        return NULL;
    }
    if ((why = sv_pwpolicy_check(pw, (size_t)n))) {
        sv_secret_free(pw, size);
        svt_fail("the password is not accepted: %s", why);
        return NULL;
    }
    *len = (size_t)n;
    return pw;
}

void svt_password_free(char *pw, size_t len)
{
    (void)len;
    sv_secret_free(pw, PW_MAX + 2);
}

/* One line from fd, a byte at a time (nothing past the line is consumed). */
static long svt_read_fd_line(int fd, char *buf, size_t size)
{
    size_t n = 0;
    char ch;
    ssize_t r;

    while ((r = read(fd, &ch, 1)) == 1 && ch != '\n') {
        if (n + 1 >= size)
            return -1;
        buf[n++] = ch;
    }
    if (r < 0 || (r == 0 && n == 0))
        return -1;
    if (n && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return (long)n;
}

char *svt_passphrase_read(const char *prompt, int fd, size_t *len)
{
    return svt_passphrase_ask(prompt, fd,
                              "the key file needs a passphrase: run on a terminal or give "
                              "--passphrase-fd N", len);
}

char *svt_passphrase_ask(const char *prompt, int fd, const char *no_tty, size_t *len)
{
    size_t size = PW_MAX + 2;
    char *pw = sv_secret_alloc(size);
    long n;

    if (!pw) {
        svt_fail("out of memory");
        return NULL;
    }
    if (fd >= 0)
        n = svt_read_fd_line(fd, pw, size);
    else if (isatty(STDIN_FILENO))
        n = svt_read_tty(prompt, pw, size);
    else {
        sv_secret_free(pw, size);
        svt_fail("%s", no_tty);
        return NULL;
    }
    if (n < 0 || n > PW_MAX) {
        sv_secret_free(pw, size);
        svt_fail("no passphrase read (at most %d bytes, one line)", PW_MAX);
        return NULL;
    }
    *len = (size_t)n;
    return pw;
}

char *svt_passphrase_new(const char *prompt, int fd, const char *no_tty, size_t *len,
                         int *differ)
{
    char *p, *again;
    size_t alen = 0;

    *differ = 0;
    if ((p = svt_passphrase_ask(prompt, fd, no_tty, len)) == NULL || fd >= 0)
        return p;
    if ((again = svt_passphrase_ask("Again: ", -1, no_tty, &alen)) == NULL) {
        svt_password_free(p, *len);
        return NULL;
    }
    *differ = alen != *len || sv_memcmp_ct(p, again, *len) != 0;
    svt_password_free(again, alen);
    if (*differ) {
        svt_password_free(p, *len);
        return NULL;
    }
    return p;
}

int svt_no_dump(void)
{
    struct rlimit rl = { 0, 0 };

    if (setrlimit(RLIMIT_CORE, &rl) != 0)
        return svt_fail("cannot disable core files: %s", strerror(errno));
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
        return svt_fail("cannot make the process undumpable: %s", strerror(errno));
    return 0;
}

int main(int argc, char **argv)
{
    svt_ctx c;
    const char *err = NULL, *cmd;
    int i = 1, rv;

    /* a write to a daemon connection that was reset is an error status,
     * not the end of the process (lib/sv_tlsclient.h) */
    signal(SIGPIPE, SIG_IGN);
    memset(&c, 0, sizeof(c));
    c.dsn = getenv("SPLITVAULT_DSN");
    c.sql_dir = SV_SQL_MAIN_DIR;
    while (i < argc && argv[i][0] == '-') {
        if ((strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "--dsn") == 0) && i + 1 < argc) {
            c.dsn = argv[i + 1];
            if (svt_dsn_has_password(c.dsn))
                fputs("splitvault-admin: warning: the -d connection string holds a password, "
                      "which every user can read in the process list; use $SPLITVAULT_DSN "
                      "and ~/.pgpass or $PGPASSFILE instead\n", stderr);
            i += 2;
        }
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        else if (strcmp(argv[i], "--version") == 0) {
            printf("splitvault-admin %s\n", SV_VERSION);
            return 0;
        }
        else {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (i >= argc) {
        fputs(usage, stderr);
        return 2;
    }
    cmd = argv[i++];
    if (strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    sv_log_set(svt_lib_log, NULL);
    /* no database needed (key1-split runs on an air-gapped machine) */
    if (strcmp(cmd, "login-key") == 0)
        return svt_cmd_login_key(argc - i, argv + i);
    if (strcmp(cmd, "key1-split") == 0)
        return svt_cmd_key1_split(argc - i, argv + i);
    if (strcmp(cmd, "key1-share-check") == 0)
        return svt_cmd_key1_share_check(argc - i, argv + i);
    if (strcmp(cmd, "key1-share-export") == 0)
        return svt_cmd_key1_share_export(argc - i, argv + i);
    if (strcmp(cmd, "key1-combine") == 0)
        return svt_cmd_key1_combine(argc - i, argv + i);
    if (!c.dsn) {
        svt_fail("no database: set SPLITVAULT_DSN or give -d DSN");
        return svt_cmd_exit2(cmd) ? 2 : 1;
    }
    apr_initialize();
    atexit(apr_terminate);
    apr_pool_create(&c.pool, NULL);
    if (apr_dbd_init(c.pool) != APR_SUCCESS
        || (rv = apr_dbd_get_driver(c.pool, "pgsql", &c.driver)) != APR_SUCCESS) {
        svt_fail("the apr_dbd pgsql driver is missing (Debian: apt-get install "
                 "libaprutil1-dbd-pgsql)");
        return svt_cmd_exit2(cmd) ? 2 : 1;
    }
    if (apr_dbd_open_ex(c.driver, c.pool, c.dsn, &c.handle, &err) != APR_SUCCESS) {
        svt_fail("cannot connect to the database: %s", err ? err : "unknown error");
        return svt_cmd_exit2(cmd) ? 2 : 1;
    }

    argc -= i;
    argv += i;
    if (strcmp(cmd, "schema") == 0)
        rv = svt_cmd_schema(&c, argc, argv);
    else if (strcmp(cmd, "roles") == 0)
        rv = svt_cmd_roles(&c, argc, argv);
    else if (strcmp(cmd, "schema-version") == 0)
        rv = svt_cmd_schema_version(&c, argc, argv);
    else if (strcmp(cmd, "staff-add") == 0)
        rv = svt_cmd_staff_add(&c, argc, argv);
    else if (strcmp(cmd, "staff-passwd") == 0)
        rv = svt_cmd_staff_passwd(&c, argc, argv);
    else if (strcmp(cmd, "staff-caps") == 0)
        rv = svt_cmd_staff_caps(&c, argc, argv);
    else if (strcmp(cmd, "staff-disable") == 0)
        rv = svt_cmd_staff_enable(&c, argc, argv, 0);
    else if (strcmp(cmd, "staff-enable") == 0)
        rv = svt_cmd_staff_enable(&c, argc, argv, 1);
    else if (strcmp(cmd, "staff-list") == 0)
        rv = svt_cmd_staff_list(&c, argc, argv);
    else if (strcmp(cmd, "key1-register") == 0)
        rv = svt_cmd_key1_register(&c, argc, argv);
    else if (strcmp(cmd, "key1-activate") == 0)
        rv = svt_cmd_key1_activate(&c, argc, argv);
    else if (strcmp(cmd, "key1-list") == 0)
        rv = svt_cmd_key1_list(&c, argc, argv);
    else if (strcmp(cmd, "key1-rewrap") == 0)
        rv = svt_cmd_key1_rewrap(&c, argc, argv);
    else if (strcmp(cmd, "key1-retire") == 0)
        rv = svt_cmd_key1_retire(&c, argc, argv);
    else if (strcmp(cmd, "reconcile") == 0)
        rv = svt_cmd_reconcile(&c, argc, argv);
    else if (strcmp(cmd, "check") == 0)
        rv = svt_cmd_check(&c, argc, argv);
    else if (strcmp(cmd, "audit-verify") == 0)
        rv = svt_cmd_audit_verify(&c, argc, argv);
    else {
        fputs(usage, stderr);
        rv = 2;
    }
    apr_dbd_close(c.driver, c.handle);
    return rv;
}
