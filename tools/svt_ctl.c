/*
 * svt_ctl.c - splitvaultctl: the daemon's local control tool.
 *
 *   splitvaultctl [-c CONFIG | -s SOCKET] status|lockdown|unlock|audit-verify
 *   splitvaultctl -c CONFIG --offline audit-verify
 *   splitvaultctl --log FILE [--head FILE] audit-verify
 *
 * Online commands talk to the daemon over its control socket (mode 0600:
 * root or the daemon's user only). audit-verify also works offline, on the
 * files themselves, with the daemon stopped or on a copy (a backup, another
 * machine). Exit status: 0 ok, 1 refused or failed (for audit-verify: the
 * log does not verify), 2 usage or configuration error.
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
#include <unistd.h>

#include "svd_auditv.h"
#include "svd_conf.h"

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
            "CONFIG defaults to " SYSCONFDIR "/splitvault/splitvaultd.yaml\n");
}

/* Send one command line, copy the answer to stdout. 0 when it says ok. */
static int
ask(const char *path, const char *cmd)
{
    struct sockaddr_un sa;
    struct timeval tv = { 30, 0 };
    char buf[4096], first[8] = "";
    size_t firstlen = 0;
    int fd, r = 1, got_any = 0;

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
        fwrite(buf, 1, (size_t)n, stdout);
    }
    close(fd);
    if (!got_any) {
        fprintf(stderr, "splitvaultctl: no answer from the daemon\n");
        return 1;
    }
    if (strncmp(first, "ok\n", 3) == 0)
        r = 0;
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
    char err[SVD_ERRBUF];
    int c, offline = 0, r = 2;

    while ((c = getopt_long(argc, argv, "c:s:hV", opts, NULL)) != -1) {
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
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    cmd = argv[optind];
    if (strcmp(cmd, "status") != 0 && strcmp(cmd, "lockdown") != 0 &&
        strcmp(cmd, "unlock") != 0 && strcmp(cmd, "audit-verify") != 0) {
        fprintf(stderr, "splitvaultctl: unknown command \"%s\"\n", cmd);
        usage(stderr);
        return 2;
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
    } else {
        r = ask(sock, cmd);
    }
    svd_conf_free(conf);
    return r;
}
