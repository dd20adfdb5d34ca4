/*
 * svt_ctl.c - splitvaultctl: the daemon's local control tool.
 *
 *   splitvaultctl [-c CONFIG | -s SOCKET] status|lockdown|unlock|audit-verify
 *   splitvaultctl [-c CONFIG | -s SOCKET] retired [--record UUID | --since TIME]
 *   splitvaultctl [-c CONFIG | -s SOCKET] restore ID | --record UUID | --since TIME | --all
 *   splitvaultctl [-c CONFIG | -s SOCKET] raise-ids N
 *   splitvaultctl -c CONFIG --offline audit-verify
 *   splitvaultctl --log FILE [--head FILE] audit-verify
 *
 * Online commands talk to the daemon over its control socket: root or
 * control.admin_group for everything; the daemon's own user for status,
 * lockdown and audit-verify only. audit-verify also works offline, on the
 * files themselves, with the daemon stopped or on a copy (a backup, another
 * machine). TIME is unix seconds or UTC "YYYY-MM-DDTHH:MM:SSZ". Exit
 * status: 0 ok, 1 refused or failed (for audit-verify: the log does not
 * verify), 2 usage or configuration error.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "svd_auditv.h"
#include "svd_conf.h"
#include "svd_file.h"
#include "sv_format.h"
#include "sv_wire.h"

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: splitvaultctl [-c CONFIG | -s SOCKET] COMMAND\n"
            "       splitvaultctl -c CONFIG --offline audit-verify\n"
            "       splitvaultctl --log FILE [--head FILE] audit-verify\n"
            "       splitvaultctl -V | --version\n"
            "commands:\n"
            "  status        lock-down state, queue, share counts, counters, audit head\n"
            "  lockdown      lock down now: every decrypt refused until unlock\n"
            "  unlock        lift a lock-down (recorded in the store and the audit log)\n"
            "  audit-verify  verify the audit log's hash chain and head\n"
            "  retired [--record UUID | --since TIME]\n"
            "                list retired shares (released or reconciled, not yet purged)\n"
            "  restore ID | --record UUID | --since TIME | --all\n"
            "                make retired shares usable again: one, a record's, or all\n"
            "                retired at or after TIME (unix seconds or YYYY-MM-DDTHH:MM:SSZ)\n"
            "  raise-ids N   new shares get ids above N, never lowering the sequence\n"
            "                (after restoring the store from an older backup)\n"
            "unlock, retired, restore and raise-ids need root or control.admin_group.\n"
            "CONFIG defaults to " SYSCONFDIR "/splitvault/splitvaultd.yaml\n");
}

/*
 * The control socket's directory, and every one above it, must be root's
 * and writable by nobody else (one above also when sticky, like /tmp), as
 * written and as resolved: a user who could write one of them could put a
 * socket of its own in the daemon's place, or swap the directory between
 * this check and the connect, and answer "ok" to a restore or an unlock
 * that never happened.
 */
static int
socket_dir_trusted(const char *path)
{
    char err[SVD_ERRBUF + 512];

    if (svd_check_root_only(path, "control socket", err, sizeof(err)) != 0) {
        fprintf(stderr, "splitvaultctl: %s: refusing to trust it\n", err);
        return 0;
    }
    return 1;
}

/* Send one command line, copy the answer to stdout. 0 when it says ok (and,
 * with need_trailer, ends in a count= line: an answer that stops short of
 * it is incomplete). */
static int
ask(const char *path, const char *cmd, int need_trailer)
{
    struct sockaddr_un sa;
    struct timeval tv = { 30, 0 };
    char buf[4096], first[8] = "", last[64] = "";
    size_t firstlen = 0, lastlen = 0;
    int fd, r = 1, got_any = 0, after_nl = 0;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "splitvaultctl: socket path too long\n");
        return 2;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "splitvaultctl: cannot reach the daemon at %s: %s\n", path,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (dprintf(fd, "%s\n", cmd) < 0) {
        fprintf(stderr, "splitvaultctl: write: %s\n", strerror(errno));
        close(fd);
        return 1;
    }
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got_any = 1;
        /* the answer's first bytes, whichever read they arrive in */
        for (ssize_t i = 0; i < n && firstlen < sizeof(first) - 1; i++)
            first[firstlen++] = buf[i];
        /* and the start of its last line, whichever reads it spans */
        for (ssize_t i = 0; i < n; i++) {
            if (after_nl)
                lastlen = 0;
            after_nl = buf[i] == '\n';
            if (!after_nl && lastlen < sizeof(last) - 1)
                last[lastlen++] = buf[i];
            last[lastlen] = '\0';
        }
        fwrite(buf, 1, (size_t)n, stdout);
    }
    close(fd);
    if (!got_any) {
        fprintf(stderr, "splitvaultctl: no answer from the daemon\n");
        return 1;
    }
    if (strncmp(first, "ok\n", 3) == 0)
        r = 0;
    if (r == 0 && need_trailer && strncmp(last, "count=", 6) != 0) {
        fprintf(stderr, "splitvaultctl: the answer stopped short (see above)\n");
        r = 1;
    }
    return r;
}

static int
verify_offline(const char *log, const char *head)
{
    struct svd_audit_result res;

    if (svd_audit_verify_files(log, head, &res) == 0) {
        printf("ok\nentries=%" PRIu64 "\nunconfirmed=%" PRIu64 "\nresult=%s\n", res.entries,
               res.unconfirmed, res.msg);
        if (head == NULL)
            printf("warning=no head file given: truncation at the end cannot be detected\n");
        return 0;
    }
    printf("error: audit log does not verify at line %" PRIu64 ": %s\n", res.bad_line, res.msg);
    return 1;
}

/* TIME: unix seconds, or UTC "YYYY-MM-DDTHH:MM:SSZ"; from 1970 on, and at
 * most INT64_MAX (the daemon's times are signed). 0 or -1. */
static int
parse_time(const char *s, uint64_t *t)
{
    struct tm tm;
    const char *end;
    time_t v;

    if (*s >= '0' && *s <= '9' && strchr(s, '-') == NULL)
        return svd_parse_u64(s, t) == 0 && *t <= INT64_MAX ? 0 : -1;
    memset(&tm, 0, sizeof(tm));
    if ((end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) == NULL || *end != '\0')
        return -1;
    /* before 1970, or timegm's error (-1): not a time the daemon takes */
    if ((v = timegm(&tm)) < 0)
        return -1;
    *t = (uint64_t)v;
    return 0;
}

/* The control line for retired/restore/raise-ids from their arguments. */
static int
build_line(const char *cmd, int argc, char **argv, char *line, size_t len)
{
    uint8_t uuid[SV_UUID_LEN];
    uint64_t t;

    if (argc == 0 && strcmp(cmd, "retired") == 0) {
        snprintf(line, len, "retired");
        return 0;
    }
    if (argc == 1 && strcmp(cmd, "restore") == 0 && strcmp(argv[0], "--all") == 0) {
        snprintf(line, len, "restore since 0");
        return 0;
    }
    if (argc == 1 && strcmp(cmd, "restore") == 0 && argv[0][0] != '-') {
        uint64_t id;
        /* a share id as the daemon writes them: 1..2^63-1, no leading 0 */
        if (argv[0][0] < '1' || argv[0][0] > '9' || svd_parse_u64(argv[0], &id) != 0 ||
            id > SV_WIRE_MAX_ID) {
            fprintf(stderr, "splitvaultctl: restore: \"%s\" is not a share id\n", argv[0]);
            return -1;
        }
        snprintf(line, len, "restore id %s", argv[0]);
        return 0;
    }
    if (argc == 2 && strcmp(argv[0], "--record") == 0) {
        if (sv_uuid_parse(argv[1], strlen(argv[1]), uuid) != SV_OK) {
            fprintf(stderr, "splitvaultctl: %s: --record takes a record uuid\n", cmd);
            return -1;
        }
        snprintf(line, len, "%s record %s", cmd, argv[1]);
        return 0;
    }
    if (argc == 2 && strcmp(argv[0], "--since") == 0) {
        if (parse_time(argv[1], &t) != 0) {
            fprintf(stderr, "splitvaultctl: %s: --since takes unix seconds or "
                    "YYYY-MM-DDTHH:MM:SSZ\n", cmd);
            return -1;
        }
        snprintf(line, len, "%s since %" PRIu64, cmd, t);
        return 0;
    }
    if (argc == 1 && strcmp(cmd, "raise-ids") == 0) {
        uint64_t n;
        if (argv[0][0] < '1' || argv[0][0] > '9' || svd_parse_u64(argv[0], &n) != 0 ||
            n > SV_WIRE_MAX_ID / 2) {
            fprintf(stderr, "splitvaultctl: raise-ids: \"%s\" is not a share id\n", argv[0]);
            return -1;
        }
        snprintf(line, len, "raise-ids %s", argv[0]);
        return 0;
    }
    fprintf(stderr, "splitvaultctl: %s: bad arguments\n", cmd);
    usage(stderr);
    return -1;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "offline", no_argument, NULL, 'o' },
        { "log", required_argument, NULL, 'l' },
        { "head", required_argument, NULL, 'H' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = NULL, *sock = NULL, *log = NULL, *head = NULL, *cmd;
    struct svd_conf *conf = NULL;
    char err[SVD_ERRBUF], line[160];
    int c, offline = 0, r = 2;

    /* options end at the command: retired and restore have their own */
    while ((c = getopt_long(argc, argv, "+c:s:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's': sock = optarg; break;
        case 'o': offline = 1; break;
        case 'l': log = optarg; break;
        case 'H': head = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("splitvaultctl %s\n", SV_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    cmd = argv[optind];
    if (strcmp(cmd, "retired") == 0 || strcmp(cmd, "restore") == 0 ||
        strcmp(cmd, "raise-ids") == 0) {
        if (build_line(cmd, argc - optind - 1, argv + optind + 1, line, sizeof(line)) != 0)
            return 2;
    } else if (optind != argc - 1) {
        usage(stderr);
        return 2;
    } else if (strcmp(cmd, "status") != 0 && strcmp(cmd, "lockdown") != 0 &&
               strcmp(cmd, "unlock") != 0 && strcmp(cmd, "audit-verify") != 0) {
        fprintf(stderr, "splitvaultctl: unknown command \"%s\"\n", cmd);
        usage(stderr);
        return 2;
    } else {
        snprintf(line, sizeof(line), "%s", cmd);
    }
    if (log != NULL) {
        if (strcmp(cmd, "audit-verify") != 0) {
            fprintf(stderr, "splitvaultctl: --log is for audit-verify only\n");
            return 2;
        }
        return verify_offline(log, head);
    }
    if (sock == NULL) {
        if (config == NULL)
            config = SYSCONFDIR "/splitvault/splitvaultd.yaml";
        if (svd_conf_load(config, &conf, err, sizeof(err)) != 0) {
            fprintf(stderr, "splitvaultctl: %s\n", err);
            return 2;
        }
        sock = conf->ctl_socket;
    }
    if (offline) {
        if (conf == NULL || strcmp(cmd, "audit-verify") != 0) {
            fprintf(stderr, "splitvaultctl: --offline needs -c CONFIG and audit-verify\n");
            r = 2;
        } else {
            r = verify_offline(conf->audit_path, conf->audit_head);
        }
    } else if (!socket_dir_trusted(sock)) {
        r = 1;
    } else {
        r = ask(sock, line, strcmp(cmd, "retired") == 0);
    }
    svd_conf_free(conf);
    return r;
}
