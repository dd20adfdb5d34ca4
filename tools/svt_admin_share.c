/*
 * svt_admin_share.c - key1 under dual control: key1-split, key1-share-check,
 * key1-share-export, key1-combine. None of them needs the database: a split
 * is meant to run on an air-gapped machine.
 *
 * key1-split reads key1 (PKCS#8 PEM), splits it into N shares of threshold
 * K (lib/sv_share: libgfshare over the key's PKCS#8 DER) and seals each
 * under a passphrase its holder chooses, into DIR/key1-<16 hex of the
 * fingerprint>.share-<i>. key1-share-check opens one share and prints its
 * headers; key1-share-export writes one share's raw bytes as gfsplit would
 * (NAME.NNN), for stock gfcombine; key1-combine assembles K shares into an
 * encrypted key1 PEM again (what key1-rewrap reads). The file format is in
 * docs/format.md, the ceremony in docs/operations.md.
 *
 * Every file is created with O_EXCL, mode 0600, and removed again when
 * writing it fails, and its directory is synced; key1-split checks that
 * none of its targets exists, and that its shares combine into key1 again,
 * before it writes any. key1-combine names the shares' key before it asks
 * any passphrase and refuses another than --expect's. Share files are
 * opened without following a link or waiting on a FIFO, and must be
 * regular files. key1, the shares and every passphrase live in
 * secret memory (lib/sv_secret) and are cleansed on every path; nothing
 * secret is printed. Every command that holds key1 or a share makes the
 * process undumpable first (svt_no_dump), or stops. Status, as every
 * splitvault-admin command: 0 done, 1 failed or a usage error (message on
 * stderr).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "svt_admin.h"
#include "sv_hex.h"
#include "sv_keyfile.h"
#include "sv_secret.h"
#include "sv_share.h"

#define SVT_SHARE_PASS_MIN 12
#define SVT_SPLIT_NO_TTY "the shares need passphrases: run on a terminal or give " \
    "--share-passphrase-fd N (one line per share, in order)"
#define SVT_TTY_TRIES 3
/* the key1 file key1-combine writes: scrypt as `openssl pkcs8 -topk8
 * -scrypt` (N=2^14, r=8, p=1: 16 MiB), within sv_keyfile.h's caps */
#define SVT_PEM_SCRYPT_N 16384
#define SVT_PEM_SCRYPT_R 8
#define SVT_PEM_SCRYPT_P 1

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static int svt_usage(const char *use)
{
    return svt_fail("%s", use);
}

/* A file descriptor number from the command line, or -1 (message printed). */
static int svt_fd_arg(const char *opt, const char *s)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);

    if (!*s || *end || v < 0 || v > 1024) {
        svt_fail("%s: a file descriptor number (0 to 1024)", opt);
        return -1;
    }
    return (int)v;
}

/* A process that holds key1 or a share: undumpable, no core file (fatal
 * when that cannot be had), secret memory. Returns 0 or 1 (printed). */
static int svt_no_core(void)
{
    if (svt_no_dump())
        return 1;
    sv_secret_init(262144); /* best effort: the heap otherwise, still cleansed */
    return 0;
}

/* The directory part of path (malloc()ed), "." when it has none. */
static char *svt_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* fsync the directory that holds path, so that a new file's name is on
 * disk too. Returns 0 or 1 (printed). */
static int svt_fsync_dir(const char *path)
{
    char *dir;
    int fd, rc = 0;

    dir = svt_dir_of(path);
    if (!dir)
        return svt_fail("out of memory");
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        rc = svt_fail("cannot open the directory %s: %s", dir, strerror(errno));
    else {
        if (fsync(fd) != 0)
            rc = svt_fail("cannot sync the directory %s: %s", dir, strerror(errno));
        close(fd);
    }
    free(dir);
    return rc;
}

/* 1 when the directory that will hold path is a tmpfs or ramfs (nothing
 * written there reaches a disk), 0 otherwise or when it cannot be told. */
static int svt_in_memory_fs(const char *path)
{
    struct statfs sf;
    char *dir;
    int r;

    dir = svt_dir_of(path);
    if (!dir)
        return 0;
    r = statfs(dir, &sf) == 0
        && (sf.f_type == (__typeof__(sf.f_type))TMPFS_MAGIC
            || sf.f_type == (__typeof__(sf.f_type))RAMFS_MAGIC);
    free(dir);
    return r;
}

/* A share file (at most SV_SHARE_FILE_MAX bytes, a regular file) into a
 * malloc()ed buffer. Returns 0 or 1 (printed). */
static int svt_read_share_file(const char *path, char **text, size_t *len)
{
    struct stat sb;
    char *b;
    size_t n = 0;
    ssize_t r;
    int fd;

    *text = NULL;
    *len = 0;
    /* O_NONBLOCK: a FIFO or a device is refused below, not waited on */
    if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY)) < 0) {
        if (errno == ELOOP)
            return svt_fail("%s is a symbolic link: give the share file itself", path);
        return svt_fail("cannot open %s: %s", path, strerror(errno));
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return svt_fail("%s is not a regular file", path);
    }
    if ((b = malloc(SV_SHARE_FILE_MAX + 2)) == NULL) {
        close(fd);
        return svt_fail("out of memory");
    }
    while (n < SV_SHARE_FILE_MAX + 1) {
        r = read(fd, b + n, SV_SHARE_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free(b);
            return svt_fail("cannot read %s: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (n > SV_SHARE_FILE_MAX) {
        free(b);
        return svt_fail("%s: larger than any key1 share file (%d bytes)", path,
                        SV_SHARE_FILE_MAX);
    }
    b[n] = '\0';
    *text = b;
    *len = n;
    return 0;
}

/* Create path (O_EXCL, mode 0600) with data; removed again on failure.
 * Returns 0 or 1 (printed). */
static int svt_write_new(const char *path, const void *data, size_t len)
{
    const char *p = data;
    size_t off = 0;
    int fd, rc = 0;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0)
        return svt_fail("cannot create %s: %s", path, strerror(errno));
    if (fchmod(fd, 0600) != 0)
        rc = svt_fail("cannot set the mode of %s: %s", path, strerror(errno));
    while (rc == 0 && off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = svt_fail("cannot write %s: %s", path, strerror(errno));
        else
            off += (size_t)w;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = svt_fail("cannot write %s: %s", path, strerror(errno));
    if (close(fd) != 0 && rc == 0)
        rc = svt_fail("cannot write %s: %s", path, strerror(errno));
    if (rc)
        unlink(path);
    return rc;
}

static int svt_exists(const char *path)
{
    struct stat sb;

    return lstat(path, &sb) == 0 || errno != ENOENT;
}

/* "share 2 of 5 (holder bob)" */
static void svt_share_name(const sv_share *s, char *out, size_t size)
{
    if (s->holder[0])
        snprintf(out, size, "share %u of %u (holder %s)", s->index, s->n, s->holder);
    else
        snprintf(out, size, "share %u of %u", s->index, s->n);
}

/* What to do after a failure to open a share file. */
static int svt_share_refused(const char *path, sv_status st)
{
    switch (st) {
    case SV_ERR_SHARE_FORMAT:
        return svt_fail("%s: %s (is it a key1 share file, whole and unchanged?)", path,
                        sv_strerror(st));
    case SV_ERR_SHARE_OPEN:
        return svt_fail("%s: %s: check the passphrase with its holder; a file that was "
                        "changed cannot be opened at all", path, sv_strerror(st));
    case SV_ERR_KEY_KDF:
        return svt_fail("%s: %s (this tool never writes such a file)", path, sv_strerror(st));
    default:
        return svt_fail("%s: %s", path, sv_strerror(st));
    }
}

#define SVT_SHARE_NO_TTY \
    "the share file needs its holder's passphrase: run on a terminal (each holder " \
    "types their own) or give --passphrase-fd N"

/* Open a share file's text (read from path) with a passphrase from
 * pass_fd or the terminal; md, when not NULL, gets the SHA-256 of the
 * passphrase (secret memory: the caller's). Returns 0 or 1 (printed); on
 * failure *out is cleansed. */
static int svt_open_share_text(const char *path, const char *text, size_t len, int pass_fd,
                               sv_share *out, uint8_t *md)
{
    char *pass, prompt[160], name[96];
    size_t pass_len = 0;
    sv_status st;

    if ((st = sv_share_peek(text, len, out)) != SV_OK)
        return svt_share_refused(path, st);
    svt_share_name(out, name, sizeof(name));
    snprintf(prompt, sizeof(prompt), "Passphrase for %s of key1 %.16s: ", name, out->fp);
    if ((pass = svt_passphrase_ask(prompt, pass_fd, SVT_SHARE_NO_TTY, &pass_len)) == NULL) {
        sv_share_wipe(out);
        return 1;
    }
    st = sv_share_open(text, len, pass, pass_len, out);
    if (st == SV_OK && md && EVP_Digest(pass, pass_len, md, NULL, EVP_sha256(), NULL) != 1)
        st = SV_ERR_INTERNAL;
    svt_password_free(pass, pass_len);
    if (st != SV_OK) {
        sv_share_wipe(out);
        return svt_share_refused(path, st);
    }
    return 0;
}

/* The same, reading the share file first. */
static int svt_open_share(const char *path, int pass_fd, sv_share *out, uint8_t *md)
{
    char *text = NULL;
    size_t len;
    int rc;

    if (svt_read_share_file(path, &text, &len))
        return 1;
    rc = svt_open_share_text(path, text, len, pass_fd, out, md);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------ */
/* key1-split                                                          */

typedef struct {
    unsigned k, n;
    const char **holders;              /* n names or NULL */
    unsigned nholders;
    const char *dir, *file;
    int pass_fd, share_pass_fd;
    uint8_t *sk;                       /* secret, SV_X25519_LEN */
    uint8_t pk[SV_X25519_LEN];
    char fp[SV_FINGERPRINT_HEX_LEN + 1];
    char *key_pass;                    /* secret: the key file's passphrase, or NULL */
    size_t key_pass_len;
    sv_share *shares;                  /* secret, n */
    uint8_t *pass_md;                  /* secret, n SHA-256 of the share passphrases */
    char **paths, **texts;
    size_t *text_lens;
} svt_split;

static void svt_split_free(svt_split *s)
{
    unsigned i;

    if (s->key_pass)
        svt_password_free(s->key_pass, s->key_pass_len);
    sv_secret_free(s->sk, SV_X25519_LEN);
    sv_secret_free(s->shares, (size_t)s->n * sizeof(sv_share));
    sv_secret_free(s->pass_md, (size_t)s->n * 32);
    for (i = 0; i < s->n; i++) {
        if (s->paths)
            free(s->paths[i]);
        if (s->texts)
            free(s->texts[i]);
    }
    free(s->paths);
    free(s->texts);
    free(s->text_lens);
}

/* A new passphrase for share i: one line of share_pass_fd, or asked twice
 * on the terminal (up to SVT_TTY_TRIES times). At least
 * SVT_SHARE_PASS_MIN characters, not the key file's, not another share's.
 * Returns it (svt_password_free) or NULL (printed). */
static char *svt_new_share_pass(svt_split *s, unsigned i, size_t *len)
{
    char prompt[160], name[96];
    int tty = s->share_pass_fd < 0, try;

    svt_share_name(&s->shares[i], name, sizeof(name));
    if (tty && !isatty(STDIN_FILENO)) {
        svt_fail("%s", SVT_SPLIT_NO_TTY);
        return NULL;
    }
    for (try = 0; try < (tty ? SVT_TTY_TRIES : 1); try++) {
        char *p;
        size_t plen = 0;
        const char *why = NULL;
        uint8_t *md = s->pass_md + 32 * (size_t)i;
        unsigned j;
        int differ;

        snprintf(prompt, sizeof(prompt), "Passphrase for %s: ", name);
        if ((p = svt_passphrase_new(prompt, s->share_pass_fd, SVT_SPLIT_NO_TTY, &plen,
                                    &differ)) == NULL) {
            if (!differ)
                return NULL;
            svt_fail("passphrase for %s refused: the two entries differ", name);
            continue;
        }
        if (plen < SVT_SHARE_PASS_MIN)
            why = "too short (at least 12 characters)";
        if (!why && s->key_pass && plen == s->key_pass_len
            && sv_memcmp_ct(p, s->key_pass, plen) == 0)
            why = "it is the key file's passphrase";
        if (!why && EVP_Digest(p, plen, md, NULL, EVP_sha256(), NULL) != 1)
            why = "cannot hash it";
        for (j = 0; !why && j < i; j++)
            if (sv_memcmp_ct(md, s->pass_md + 32 * (size_t)j, 32) == 0)
                why = "another share has it: each holder chooses their own";
        if (!why) {
            *len = plen;
            return p;
        }
        svt_password_free(p, plen);
        svt_fail("passphrase for %s refused: %s", name, why);
    }
    return NULL;
}

static int svt_split_load(svt_split *s)
{
    sv_status st;

    if ((s->sk = sv_secret_alloc(SV_X25519_LEN)) == NULL)
        return svt_fail("out of memory");
    st = sv_key1_private_from_file(s->file, NULL, 0, s->sk, s->pk);
    if (st == SV_ERR_KEY_NEED_PASS) {
        s->key_pass = svt_passphrase_read("Passphrase of key1: ", s->pass_fd, &s->key_pass_len);
        if (!s->key_pass)
            return 1;
        st = sv_key1_private_from_file(s->file, s->key_pass, s->key_pass_len, s->sk, s->pk);
    }
    if (st != SV_OK)
        return svt_fail("%s: %s", s->file, sv_strerror(st));
    if ((st = sv_key1_fingerprint(s->pk, s->fp)) != SV_OK)
        return svt_fail("fingerprint: %s", sv_strerror(st));
    return 0;
}

/* Before anything is written: every window of K consecutive shares
 * (cyclically, so each share is in K of them) combines into key1 again.
 * A libgfshare that changed its ABI or behaviour, or memory that was
 * overwritten, shows here rather than after key1 was destroyed. Returns
 * 0 or 1 (printed). */
static int svt_split_trial(svt_split *s)
{
    const sv_share *v[SV_SHARE_MAX_K];
    uint8_t *sk2;
    uint8_t pk2[SV_X25519_LEN];
    char fp2[SV_FINGERPRINT_HEX_LEN + 1];
    unsigned start, j;
    sv_status st = SV_OK;

    if ((sk2 = sv_secret_alloc(SV_X25519_LEN)) == NULL)
        return svt_fail("out of memory");
    for (start = 0; start < s->n && st == SV_OK; start++) {
        for (j = 0; j < s->k; j++)
            v[j] = &s->shares[(start + j) % s->n];
        st = sv_share_combine(v, s->k, sk2, pk2);
        if (st == SV_OK && (sv_memcmp_ct(sk2, s->sk, SV_X25519_LEN) != 0
                            || sv_memcmp_ct(pk2, s->pk, SV_X25519_LEN) != 0
                            || sv_key1_fingerprint(pk2, fp2) != SV_OK
                            || strcmp(fp2, s->fp) != 0))
            st = SV_ERR_KEY_MISMATCH;
    }
    sv_secret_free(sk2, SV_X25519_LEN);
    if (st != SV_OK)
        return svt_fail("the shares do not give key1 back (shares %u to %u: %s); nothing "
                        "written, keep key1 and report this", start, (start + s->k - 2) % s->n + 1,
                        sv_strerror(st));
    return 0;
}

static int svt_split_run(svt_split *s)
{
    struct stat sb;
    unsigned i, written = 0;
#ifdef SV_TEST_HOOKS
    unsigned fail_at;
#endif
    sv_status st;
    int rc = 0;

    if (stat(s->dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return svt_fail("--out-dir %s: not a directory", s->dir);
    if (svt_split_load(s))
        return 1;

    /* every target is new, before anything is asked or written */
    if ((s->paths = calloc(s->n, sizeof(char *))) == NULL
        || (s->texts = calloc(s->n, sizeof(char *))) == NULL
        || (s->text_lens = calloc(s->n, sizeof(size_t))) == NULL)
        return svt_fail("out of memory");
    for (i = 0; i < s->n; i++) {
        size_t l = strlen(s->dir) + 48;
        if ((s->paths[i] = malloc(l)) == NULL)
            return svt_fail("out of memory");
        snprintf(s->paths[i], l, "%s/key1-%.16s.share-%u", s->dir, s->fp, i + 1);
        if (svt_exists(s->paths[i]))
            rc = svt_fail("%s exists: it is never overwritten (move it away, or choose "
                          "another --out-dir)", s->paths[i]);
    }
    if (rc)
        return 1;

    if ((s->shares = sv_secret_alloc((size_t)s->n * sizeof(sv_share))) == NULL
        || (s->pass_md = sv_secret_alloc((size_t)s->n * 32)) == NULL)
        return svt_fail("out of memory");
    if ((st = sv_share_split(s->sk, s->pk, s->k, s->n, s->shares)) != SV_OK)
        return svt_fail("split: %s", sv_strerror(st));
#ifdef SV_TEST_HOOKS
    {
        const char *c = getenv("SVT_TEST_SPLIT_CORRUPT");
        unsigned at = c ? (unsigned)atoi(c) : 0;

        if (at >= 1 && at <= s->n)
            s->shares[at - 1].share[SV_SHARE_SECRET_LEN - 1] ^= 1;
    }
#endif
    if (svt_split_trial(s))
        return 1;
    sv_cleanse(s->sk, SV_X25519_LEN);
    for (i = 0; i < s->n; i++)
        if (s->holders)
            snprintf(s->shares[i].holder, sizeof(s->shares[i].holder), "%s", s->holders[i]);

    for (i = 0; i < s->n; i++) {
        char *pass;
        size_t plen = 0;

        if ((pass = svt_new_share_pass(s, i, &plen)) == NULL)
            return svt_fail("nothing written");
        st = sv_share_seal(&s->shares[i], pass, plen, &s->texts[i], &s->text_lens[i]);
        svt_password_free(pass, plen);
        sv_share_wipe(&s->shares[i]);
        if (st != SV_OK)
            return svt_fail("sealing share %u: %s; nothing written", i + 1, sv_strerror(st));
    }

#ifdef SV_TEST_HOOKS
    {
        const char *f = getenv("SVT_TEST_SPLIT_WRITE_FAIL");

        fail_at = f ? (unsigned)atoi(f) : 0;
    }
#endif
    for (i = 0; i < s->n && rc == 0; i++) {
#ifdef SV_TEST_HOOKS
        if (i + 1 == fail_at) {
            rc = svt_fail("cannot write %s: injected failure (test build)", s->paths[i]);
            break;
        }
#endif
        if ((rc = svt_write_new(s->paths[i], s->texts[i], s->text_lens[i])) == 0)
            written++;
    }
    if (rc == 0)
        rc = svt_fsync_dir(s->paths[0]);
    if (rc) {
        /* all or nothing: a partial set of shares is of no use */
        for (i = 0; i < written; i++)
            unlink(s->paths[i]);
        return svt_fail("no share file kept");
    }

    printf("key1 %s split: any %u of these %u shares open it\n", s->fp, s->k, s->n);
    for (i = 0; i < s->n; i++)
        printf("  %s%s%s\n", s->paths[i], s->holders ? "  holder " : "",
               s->holders ? s->holders[i] : "");
    printf("Next:\n"
           "  1. give each holder their own file, and nobody a second one;\n"
           "  2. each holder checks they can open theirs:\n"
           "       splitvault-admin key1-share-check FILE\n"
           "  3. K holders, each typing their own passphrase, do a trial combine\n"
           "     into a tmpfs, checked against the registered fingerprint:\n"
           "       splitvault-admin key1-combine --expect %s \\\n"
           "         --out /dev/shm/key1-trial.pem FILE...\n"
           "     then remove /dev/shm/key1-trial.pem;\n"
           "  4. then destroy every copy of the whole key1 file (%s) and of its\n"
           "     backups: while one exists, the shares control nothing;\n"
           "  5. to unlock the module, %u holders upload their shares at the key\n"
           "     location.\n", s->fp, s->file, s->k);
    return 0;
}

int svt_cmd_key1_split(int argc, char **argv)
{
    static const char use[] =
        "usage: key1-split --k K --n N [--holder NAME]... [--out-dir DIR] [--passphrase-fd FD] "
        "[--share-passphrase-fd FD] KEY1.pem";
    svt_split s;
    long v;
    char *end;
    int i, rc;

    memset(&s, 0, sizeof(s));
    s.dir = ".";
    s.pass_fd = s.share_pass_fd = -1;
    if ((s.holders = calloc((size_t)argc + 1, sizeof(char *))) == NULL)
        return svt_fail("out of memory");
    for (i = 0; i < argc; i++) {
        if ((strcmp(argv[i], "--k") == 0 || strcmp(argv[i], "--n") == 0) && i + 1 < argc) {
            int is_k = argv[i][2] == 'k';
            end = NULL;
            v = strtol(argv[++i], &end, 10);
            if (!*argv[i] || *end || v < 2 || v > (is_k ? SV_SHARE_MAX_K : SV_SHARE_MAX_N)) {
                free(s.holders);
                return svt_fail(is_k ? "--k: 2 to %d" : "--n: 2 to %d",
                                is_k ? SV_SHARE_MAX_K : SV_SHARE_MAX_N);
            }
            *(is_k ? &s.k : &s.n) = (unsigned)v;
        }
        else if (strcmp(argv[i], "--holder") == 0 && i + 1 < argc)
            s.holders[s.nholders++] = argv[++i];
        else if (strcmp(argv[i], "--out-dir") == 0 && i + 1 < argc)
            s.dir = argv[++i];
        else if (strcmp(argv[i], "--passphrase-fd") == 0 && i + 1 < argc) {
            if ((s.pass_fd = svt_fd_arg(argv[i], argv[i + 1])) < 0) {
                free(s.holders);
                return 1;
            }
            i++;
        }
        else if (strcmp(argv[i], "--share-passphrase-fd") == 0 && i + 1 < argc) {
            if ((s.share_pass_fd = svt_fd_arg(argv[i], argv[i + 1])) < 0) {
                free(s.holders);
                return 1;
            }
            i++;
        }
        else if (!s.file && argv[i][0] != '-')
            s.file = argv[i];
        else {
            free(s.holders);
            return svt_usage(use);
        }
    }
    rc = 0;
    if (!s.file || !s.k || !s.n)
        rc = svt_usage(use);
    else if (s.k > s.n)
        rc = svt_fail("--k %u is more than --n %u", s.k, s.n);
    else if (s.nholders && s.nholders != s.n)
        rc = svt_fail("--holder: give none, or exactly --n (%u) of them, in share order", s.n);
    for (i = 0; rc == 0 && (unsigned)i < s.nholders; i++) {
        unsigned j;
        if (!sv_share_holder_ok(s.holders[i], strlen(s.holders[i])))
            rc = svt_fail("--holder %s: 1 to %d of A-Z a-z 0-9 . _ @ -", s.holders[i],
                          SV_SHARE_HOLDER_MAX);
        for (j = 0; rc == 0 && j < (unsigned)i; j++)
            if (strcmp(s.holders[i], s.holders[j]) == 0)
                rc = svt_fail("--holder %s is named twice: each share goes to another "
                              "holder", s.holders[i]);
    }
    if (rc) {
        free(s.holders);
        return rc;
    }
    if (!s.nholders) {
        free(s.holders);
        s.holders = NULL;
    }
    rc = svt_no_core() ? 1 : svt_split_run(&s);
    free(s.holders);
    svt_split_free(&s);
    return rc;
}

/* ------------------------------------------------------------------ */
/* key1-share-check, key1-share-export                                 */

int svt_cmd_key1_share_check(int argc, char **argv)
{
    static const char use[] = "usage: key1-share-check [--passphrase-fd FD] SHARE";
    const char *file = NULL;
    char split[2 * SV_SHARE_SPLIT_LEN + 1];
    sv_share *s;
    int pass_fd = -1, i;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--passphrase-fd") == 0 && i + 1 < argc) {
            if ((pass_fd = svt_fd_arg(argv[i], argv[i + 1])) < 0)
                return 1;
            i++;
        }
        else if (!file && argv[i][0] != '-')
            file = argv[i];
        else
            return svt_usage(use);
    }
    if (!file)
        return svt_usage(use);
    if (svt_no_core())
        return 1;
    if ((s = sv_secret_alloc(sizeof(*s))) == NULL)
        return svt_fail("out of memory");
    if (svt_open_share(file, pass_fd, s, NULL)) {
        sv_secret_free(s, sizeof(*s));
        return 1;
    }
    sv_hex_encode(s->split, sizeof(s->split), split);
    printf("%s: the passphrase opens this share\n"
           "key1       %s\n"
           "split      %s\n"
           "share      %u of %u\n"
           "threshold  %u\n"
           "holder     %s\n",
           file, s->fp, split, s->index, s->n, s->k, s->holder[0] ? s->holder : "(none)");
    sv_secret_free(s, sizeof(*s));
    return 0;
}

int svt_cmd_key1_share_export(int argc, char **argv)
{
    static const char use[] = "usage: key1-share-export [--passphrase-fd FD] SHARE OUTFILE.NNN";
    const char *file = NULL, *out = NULL, *dot;
    char want[8];
    char *text = NULL;
    size_t len;
    sv_share *s;
    sv_status st;
    int pass_fd = -1, i, rc;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--passphrase-fd") == 0 && i + 1 < argc) {
            if ((pass_fd = svt_fd_arg(argv[i], argv[i + 1])) < 0)
                return 1;
            i++;
        }
        else if (argv[i][0] != '-' && !file)
            file = argv[i];
        else if (argv[i][0] != '-' && !out)
            out = argv[i];
        else
            return svt_usage(use);
    }
    if (!file || !out)
        return svt_usage(use);
    if (svt_no_core())
        return 1;
    if ((s = sv_secret_alloc(sizeof(*s))) == NULL)
        return svt_fail("out of memory");
    /* the name first: gfcombine takes a share's index from its file name;
     * the text read here is the one opened below */
    if (svt_read_share_file(file, &text, &len)) {
        sv_secret_free(s, sizeof(*s));
        return 1;
    }
    if ((st = sv_share_peek(text, len, s)) != SV_OK) {
        rc = svt_share_refused(file, st);
        goto done;
    }
    snprintf(want, sizeof(want), ".%03u", s->index);
    dot = strrchr(out, '.');
    if (!dot || strcmp(dot, want) != 0 || dot == out || dot[-1] == '/') {
        rc = svt_fail("%s: the name must end in %s: gfcombine reads a share's index (%u) "
                      "from the end of its file name, as gfsplit writes it", out, want,
                      s->index);
        goto done;
    }
    if (svt_exists(out)) {
        rc = svt_fail("%s exists: it is never overwritten", out);
        goto done;
    }
    if (!svt_in_memory_fs(out))
        fprintf(stderr, "splitvault-admin: warning: %s is not on a tmpfs: the unsealed "
                "share may stay on the disk after it is removed (shred cannot be relied "
                "on); work in /dev/shm or another tmpfs, on an offline machine\n", out);
    if ((rc = svt_open_share_text(file, text, len, pass_fd, s, NULL)) != 0)
        goto done;
    if ((rc = svt_write_new(out, s->share, sizeof(s->share))) == 0
        && (rc = svt_fsync_dir(out)) != 0)
        unlink(out);
    if (rc == 0)
        printf("%s: share %u of key1 %s, unsealed (%zu bytes, mode 0600)\n"
               "It opens nothing alone; with %u such files, stock libgfshare recovers key1:\n"
               "  gfcombine -o key1.der FILE.NNN ...   (the %u files, in this tmpfs)\n"
               "  openssl pkey -inform DER -in key1.der -aes256 -out key1.pem\n"
               "Remove the unsealed files and key1.der afterwards.\n",
               out, s->index, s->fp, sizeof(s->share), s->k, s->k);

done:
    free(text);
    sv_secret_free(s, sizeof(*s));
    return rc;
}

/* ------------------------------------------------------------------ */
/* key1-combine                                                        */

/* An encrypted PKCS#8 PEM of sk (scrypt, AES-256-CBC), in a malloc()ed
 * buffer (not secret). Returns 0 or 1 (printed). */
static int svt_key1_pem(const uint8_t *sk, const char *pass, size_t pass_len, char **pem,
                        size_t *pem_len)
{
    EVP_PKEY *k = NULL;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    X509_ALGOR *pbe = NULL;
    X509_SIG *enc = NULL;
    BIO *bio = NULL;
    char *mem;
    long n;
    int rc = 1;

    *pem = NULL;
    *pem_len = 0;
    if ((k = EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, sk, SV_X25519_LEN)) == NULL
        || (p8 = EVP_PKEY2PKCS8(k)) == NULL
        || (pbe = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), NULL, 16, NULL, SVT_PEM_SCRYPT_N,
                                        SVT_PEM_SCRYPT_R, SVT_PEM_SCRYPT_P)) == NULL
        || (enc = PKCS8_set0_pbe(pass, (int)pass_len, p8, pbe)) == NULL)
        goto out;
    pbe = NULL; /* enc owns it */
    if ((bio = BIO_new(BIO_s_mem())) == NULL || !PEM_write_bio_PKCS8(bio, enc)
        || (n = BIO_get_mem_data(bio, &mem)) <= 0 || (*pem = malloc((size_t)n + 1)) == NULL)
        goto out;
    memcpy(*pem, mem, (size_t)n);
    (*pem)[n] = '\0';
    *pem_len = (size_t)n;
    rc = 0;

out:
    if (rc) {
        unsigned long e = ERR_get_error();
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        svt_fail("cannot encrypt key1: %s", e ? buf : "out of memory");
    }
    ERR_clear_error();
    BIO_free(bio);
    X509_SIG_free(enc);
    X509_ALGOR_free(pbe);
    PKCS8_PRIV_KEY_INFO_free(p8);
    EVP_PKEY_free(k);
    return rc;
}

/* The new key file's passphrase: one line of fd, or twice on the terminal. */
static char *svt_out_pass(int fd, size_t *len)
{
    char *p;
    size_t plen = 0;
    int differ;

    if ((p = svt_passphrase_new("Passphrase for the new key1 file: ", fd,
                                "the key1 file needs a passphrase: run on a terminal or give "
                                "--out-passphrase-fd N", &plen, &differ)) == NULL) {
        if (differ)
            svt_fail("the two entries differ");
        return NULL;
    }
    if (plen < SVT_SHARE_PASS_MIN) {
        svt_password_free(p, plen);
        svt_fail("the passphrase is too short (at least %d characters)", SVT_SHARE_PASS_MIN);
        return NULL;
    }
    *len = plen;
    return p;
}

/* Before any passphrase is asked: the shares' headers name one key and
 * one split, distinct indexes, and at least their threshold; the key is
 * the one expected (--expect), when given. The texts read are kept in
 * texts[] (malloc()ed: the caller frees them), to be opened as they were
 * checked. */
static int svt_combine_precheck(const char **files, unsigned count, const char *expect,
                                sv_share *peek, char **texts, size_t *lens)
{
    char split[2 * SV_SHARE_SPLIT_LEN + 1];
    unsigned i, j;
    sv_status st;

    for (i = 0; i < count; i++) {
        if (svt_read_share_file(files[i], &texts[i], &lens[i]))
            return 1;
        if ((st = sv_share_peek(texts[i], lens[i], &peek[i])) != SV_OK)
            return svt_share_refused(files[i], st);
        for (j = 0; j < i; j++) {
            if (strcmp(peek[i].fp, peek[j].fp) != 0)
                return svt_fail("%s and %s are shares of different keys (%.16s, %.16s)",
                                files[j], files[i], peek[j].fp, peek[i].fp);
            if (memcmp(peek[i].split, peek[j].split, SV_SHARE_SPLIT_LEN) != 0
                || peek[i].k != peek[j].k || peek[i].n != peek[j].n)
                return svt_fail("%s and %s are shares of two different splits of key1 "
                                "(or one was altered): shares of one split only combine",
                                files[j], files[i]);
            if (peek[i].index == peek[j].index)
                return svt_fail("%s and %s are the same share (%u)", files[j], files[i],
                                peek[i].index);
        }
    }
    if (count < peek[0].k)
        return svt_fail("%u share%s given, %u needed: %s", count, count == 1 ? "" : "s",
                        peek[0].k, sv_strerror(SV_ERR_SHARE_FEW));
    /* what the holders are about to open, before anyone types a passphrase */
    sv_hex_encode(peek[0].split, sizeof(peek[0].split), split);
    fprintf(stderr, "These shares name key1 %s\n(split %s, any %u of %u).\n", peek[0].fp,
            split, peek[0].k, peek[0].n);
    if (expect && strcmp(expect, peek[0].fp) != 0)
        return svt_fail("the shares are of key1 %s, not of the expected %s: refused",
                        peek[0].fp, expect);
    if (!expect)
        fprintf(stderr, "Not checked against a registered key1: compare it with "
                "`splitvault-admin key1-list` or the key location page, or give --expect.\n");
    for (i = 0; i < count; i++)
        sv_share_wipe(&peek[i]);
    return 0;
}

int svt_cmd_key1_combine(int argc, char **argv)
{
    static const char use[] =
        "usage: key1-combine [--expect FINGERPRINT] [--passphrase-fd FD] "
        "[--out-passphrase-fd FD] --out KEY1.pem SHARE...";
    const char *out = NULL, *expect = NULL, **files;
    const sv_share **v = NULL;
    sv_share *sh = NULL;
    uint8_t *sk = NULL, *md = NULL, pk[SV_X25519_LEN], pk2[SV_X25519_LEN], omd[32];
    char fp[SV_FINGERPRINT_HEX_LEN + 1], *pass = NULL, *pem = NULL, **texts = NULL;
    size_t pass_len = 0, pem_len = 0, *lens = NULL;
    unsigned count = 0, i;
    int pass_fd = -1, out_fd = -1, rc = 1;
    sv_status st;

    if ((files = calloc((size_t)argc + 1, sizeof(char *))) == NULL)
        return svt_fail("out of memory");
    for (i = 0; i < (unsigned)argc; i++) {
        if (strcmp(argv[i], "--passphrase-fd") == 0 && i + 1 < (unsigned)argc) {
            if ((pass_fd = svt_fd_arg(argv[i], argv[i + 1])) < 0) {
                free(files);
                return 1;
            }
            i++;
        }
        else if (strcmp(argv[i], "--out-passphrase-fd") == 0 && i + 1 < (unsigned)argc) {
            if ((out_fd = svt_fd_arg(argv[i], argv[i + 1])) < 0) {
                free(files);
                return 1;
            }
            i++;
        }
        else if (strcmp(argv[i], "--out") == 0 && i + 1 < (unsigned)argc)
            out = argv[++i];
        else if (strcmp(argv[i], "--expect") == 0 && i + 1 < (unsigned)argc)
            expect = argv[++i];
        else if (argv[i][0] != '-')
            files[count++] = argv[i];
        else {
            free(files);
            return svt_usage(use);
        }
    }
    if (!out || count == 0) {
        free(files);
        return svt_usage(use);
    }
    if (expect && !sv_key1_fingerprint_ok(expect)) {
        free(files);
        return svt_fail("--expect %s: a whole key1 fingerprint (64 lower-case hex digits, "
                        "as key1-list prints it)", expect);
    }
    if (count > SV_SHARE_MAX_N) {
        free(files);
        return svt_fail("at most %d shares", SV_SHARE_MAX_N);
    }
    if (svt_no_core()) {
        free(files);
        return 1;
    }
    if (svt_exists(out)) {
        rc = svt_fail("%s exists: it is never overwritten", out);
        goto done;
    }
    if ((sh = sv_secret_alloc(count * sizeof(*sh))) == NULL
        || (md = sv_secret_alloc(count * 32)) == NULL
        || (v = calloc(count, sizeof(*v))) == NULL
        || (texts = calloc(count, sizeof(*texts))) == NULL
        || (lens = calloc(count, sizeof(*lens))) == NULL
        || (sk = sv_secret_alloc(SV_X25519_LEN)) == NULL) {
        rc = svt_fail("out of memory");
        goto done;
    }
    if (svt_combine_precheck(files, count, expect, sh, texts, lens))
        goto done;
    for (i = 0; i < count; i++) {
        if (svt_open_share_text(files[i], texts[i], lens[i], pass_fd, &sh[i],
                                md + 32 * (size_t)i))
            goto done;
        v[i] = &sh[i];
    }
    if ((st = sv_share_combine(v, count, sk, pk)) != SV_OK) {
        rc = svt_fail("%s%s", sv_strerror(st),
                      st == SV_ERR_KEY_MISMATCH
                          ? ": the shares open but do not give the key they name; one of "
                            "them was made to deceive (its holder's passphrase sealed it)"
                          : "");
        goto done;
    }
    for (i = 0; i < count; i++)
        sv_share_wipe(&sh[i]);
    if ((st = sv_key1_fingerprint(pk, fp)) != SV_OK) {
        rc = svt_fail("fingerprint: %s", sv_strerror(st));
        goto done;
    }
    if (expect && strcmp(fp, expect) != 0) { /* sv_share_combine checked it; again */
        rc = svt_fail("the shares give key1 %s, not the expected %s: refused", fp, expect);
        goto done;
    }
    if ((pass = svt_out_pass(out_fd, &pass_len)) == NULL)
        goto done;
    /* the new file's passphrase is none of the holders': each of them
     * could open it alone */
    if (EVP_Digest(pass, pass_len, omd, NULL, EVP_sha256(), NULL) != 1) {
        rc = svt_fail("cannot hash the passphrase");
        goto done;
    }
    for (i = 0; i < count; i++)
        if (sv_memcmp_ct(omd, md + 32 * (size_t)i, 32) == 0) {
            rc = svt_fail("the new key1 file's passphrase is the passphrase of %s: choose "
                          "one no holder has", files[i]);
            goto done;
        }
    if (svt_key1_pem(sk, pass, pass_len, &pem, &pem_len))
        goto done;
    /* what we write is what sv_keyfile (key1-rewrap, the module) loads */
    st = sv_key1_private_from_pem(pem, pem_len, pass, pass_len, sk, pk2);
    if (st != SV_OK || sv_memcmp_ct(pk, pk2, SV_X25519_LEN) != 0) {
        rc = svt_fail("the key1 file does not read back: %s", sv_strerror(st));
        goto done;
    }
    if (svt_write_new(out, pem, pem_len))
        goto done;
    if (svt_fsync_dir(out)) {
        unlink(out);
        goto done;
    }
    printf("key1 %s written to %s (encrypted PKCS#8, scrypt, mode 0600)\n"
           "It is the whole key1 again: use it (key1-rewrap) and destroy it as soon as you are\n"
           "done, or keep it only where the whole key1 may be kept.\n", fp, out);
    rc = 0;

done:
    sv_cleanse(omd, sizeof(omd));
    if (pass)
        svt_password_free(pass, pass_len);
    sv_secret_free(sk, SV_X25519_LEN);
    sv_secret_free(sh, count * sizeof(*sh));
    sv_secret_free(md, count * 32);
    for (i = 0; texts && i < count; i++)
        free(texts[i]);
    free(texts);
    free(lens);
    free(v);
    free(pem);
    free(files);
    return rc;
}
