/*
 * test_svd_conf.c - splitvaultd.yaml parsing: defaults, every value type,
 * errors naming file:line: key, CIDR matching.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svd_conf.h"

static const char *base =
    "tls:\n"
    "  certificate: /c.pem\n"
    "  key: /k.pem\n"
    "  client_ca: /ca.pem\n"
    "store:\n"
    "  path: /tmp/x.db\n"
    "audit:\n"
    "  path: /tmp/a.log\n"
    "control:\n"
    "  socket: /tmp/s.sock\n";

/* Appended when the test adds no clients section of its own. */
#define FP_A "aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:" \
             "55:66:77:88:99"
#define FP_B "0102030405060708091011121314151617181920212223242526272829303132"
static const char *default_clients = "clients:\n  frontend: [\"" FP_A "\"]\n";

static void
compose(char *text, size_t len, const char *extra)
{
    int own = strncmp(extra, "clients:", 8) == 0 || strstr(extra, "\nclients:") != NULL;

    snprintf(text, len, "%s%s%s", base, extra, own ? "" : default_clients);
}

static struct svd_conf *
parse_ok(const char *extra)
{
    char text[8192], err[SVD_ERRBUF];
    struct svd_conf *c = NULL;

    compose(text, sizeof(text), extra);
    ck_assert_msg(svd_conf_parse("t.yaml", text, strlen(text), &c, err, sizeof(err)) == 0,
                  "unexpected error: %s", err);
    ck_assert_ptr_nonnull(c);
    return c;
}

static void
parse_bad(const char *extra, const char *want)
{
    char text[8192], err[SVD_ERRBUF];
    struct svd_conf *c = NULL;

    compose(text, sizeof(text), extra);
    ck_assert_int_eq(svd_conf_parse("t.yaml", text, strlen(text), &c, err, sizeof(err)), -1);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
}

START_TEST(defaults)
{
    struct svd_conf *c = parse_ok("");

    ck_assert_str_eq(c->listen_address, "127.0.0.1");
    ck_assert_uint_eq(c->listen_port, 7443);
    ck_assert_uint_eq(c->global.interval_ms, 15000);
    ck_assert_uint_eq(c->global.burst, 3);
    ck_assert_uint_eq(c->actor.interval_ms, 15000);
    ck_assert_uint_eq(c->queue_max, 5);
    ck_assert_uint_eq(c->lockdown_threshold, 5);
    ck_assert_uint_eq(c->max_connections, 64);
    ck_assert_uint_eq(c->max_handshakes, 16);
    ck_assert_uint_eq(c->max_handshakes_per_addr, 8);
    ck_assert_uint_eq(c->budget_global, 1000);
    ck_assert_uint_eq(c->budget_actor, 250);
    ck_assert_uint_eq(c->min_grace_s, 3600);
    ck_assert_int_eq(c->driver, SVD_DRIVER_SQLITE3);
    ck_assert_str_eq(c->audit_head, "/tmp/a.log.head");
    ck_assert_uint_eq(c->nallow, 2);
    ck_assert_uint_eq(c->nclients, 1);
    ck_assert_uint_eq(c->clients[0].roles, SVD_ROLE_FRONTEND);
    ck_assert_int_eq(c->combined_roles, 0);
    ck_assert_uint_eq(c->retention_s, 7 * 86400);
    ck_assert_uint_eq(c->purge_batch, 500);
    ck_assert_uint_eq(c->retire_budget, 10000);
    ck_assert(c->min_free == 256ull << 20);
    ck_assert_ptr_null(c->admin_group);
    ck_assert_int_eq(c->mlock, 1);
    ck_assert_uint_eq(c->secure_heap, 8u << 20);
    svd_conf_free(c);
}
END_TEST

START_TEST(values)
{
    struct svd_conf *c = parse_ok(
        "listen:\n  address: \"::1\"\n  port: 9000\n"
        "clients:\n  allow: [10.0.0.0/8, \"2001:db8::/32\", 192.168.1.7]\n"
        "  frontend: [\"" FP_A "\"]\n  reconcile: [\"" FP_B "\"]\n"
        "retention:\n  period: 2d\n  purge_batch: 50\n  daily_budget: 0\n"
        "decrypt:\n  global_rate: {interval: 250ms, burst: 10}\n"
        "  actor_rate:\n    interval: 2m\n    burst: 1\n"
        "  queue: {max_length: 9, max_wait: 1h}\n  lockdown_threshold: 0\n"
        "  daily_budget: {global: 0, actor: 40}\n"
        "reconcile:\n  min_grace: 1d\n"
        "process:\n  secure_heap: 64KiB\n  mlock: false\n  log_level: debug\n");

    ck_assert_str_eq(c->listen_address, "::1");
    ck_assert_uint_eq(c->listen_port, 9000);
    ck_assert_uint_eq(c->nallow, 3);
    ck_assert_uint_eq(c->global.interval_ms, 250);
    ck_assert_uint_eq(c->global.burst, 10);
    ck_assert_uint_eq(c->actor.interval_ms, 120000);
    ck_assert_uint_eq(c->queue_max, 9);
    ck_assert_uint_eq(c->queue_max_wait_ms, 3600000);
    ck_assert_uint_eq(c->lockdown_threshold, 0);
    ck_assert_uint_eq(c->budget_global, 0);
    ck_assert_uint_eq(c->budget_actor, 40);
    ck_assert_uint_eq(c->min_grace_s, 86400);
    ck_assert_uint_eq(c->nclients, 2);
    ck_assert_uint_eq(c->clients[1].roles, SVD_ROLE_RECONCILE);
    ck_assert_uint_eq(c->retention_s, 2 * 86400);
    ck_assert_uint_eq(c->purge_batch, 50);
    ck_assert_uint_eq(c->retire_budget, 0);
    ck_assert_uint_eq(c->secure_heap, 65536);
    ck_assert_int_eq(c->mlock, 0);
    ck_assert_int_eq(c->log_level, SV_LOG_DEBUG);
    svd_conf_free(c);
}
END_TEST

START_TEST(handshake_caps)
{
    struct svd_conf *c = parse_ok("connections:\n  max: 2\n");

    ck_assert_uint_eq(c->max_handshakes, 1);
    svd_conf_free(c);
    c = parse_ok("connections:\n  max: 1\n");
    ck_assert_uint_eq(c->max_handshakes, 1);
    svd_conf_free(c);
    c = parse_ok("connections:\n  max: 10\n  max_handshakes: 9\n"
                 "  max_handshakes_per_address: 2\n");
    ck_assert_uint_eq(c->max_handshakes, 9);
    ck_assert_uint_eq(c->max_handshakes_per_addr, 2);
    svd_conf_free(c);
}
END_TEST

START_TEST(errors)
{
    /* the base has 10 lines: additions start on line 11 */
    parse_bad("listen:\n  portt: 1\n", "t.yaml:12: listen.portt: unknown key");
    parse_bad("listen:\n  port: 65536\n", "t.yaml:12: listen.port: value 65536 out of range");
    parse_bad("listen:\n  port: \"80\"\n", "listen.port: expected an unsigned integer");
    parse_bad("listen:\n  port: -1\n", "listen.port: expected an unsigned integer");
    parse_bad("listen:\n  port: [1]\n", "t.yaml:12: listen.port: expected a single value");
    parse_bad("decrypt:\n  queue:\n    max_wait: 5\n", "t.yaml:13: decrypt.queue.max_wait: expected a duration");
    parse_bad("decrypt:\n  queue:\n    max_wait: 2h\n", "out of range");
    parse_bad("decrypt:\n  lockdown_threshold: 6\n", "decrypt.lockdown_threshold: 6 is above");
    parse_bad("process:\n  mlock: 1\n", "process.mlock: expected true or false");
    parse_bad("connections:\n  max: 4\n  max_handshakes: 4\n",
              "connections.max_handshakes: 4 leaves no connection for authenticated clients");
    parse_bad("decrypt:\n  daily_budget:\n    global: 1000001\n",
              "t.yaml:13: decrypt.daily_budget.global: value 1000001 out of range");
    parse_bad("process:\n  secure_heap: 100000\n", "process.secure_heap: must be a power of two");
    parse_bad("clients:\n  allow:\n    - 1.2.3.4/8\n    - nonsense\n",
              "t.yaml:14: clients.allow: entry 2");
    parse_bad("listen: 5\n", "listen: expected a section");
    parse_bad("listen:\n  port: 1\nlisten:\n  port: 2\n", "t.yaml:13: listen: duplicate key");
    parse_bad("a: [\n", "YAML syntax error");
    parse_bad("---\n...\n---\nx: 1\n", "only one YAML document");
}
END_TEST

START_TEST(required)
{
    char err[SVD_ERRBUF];
    struct svd_conf *c = NULL;
    const char *t = "tls:\n  certificate: /c\n  key: /k\n  client_ca: /ca\n";

    ck_assert_int_eq(svd_conf_parse("r.yaml", t, strlen(t), &c, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "audit.path: required key missing") != NULL, "%s", err);
    ck_assert_int_eq(svd_conf_parse("r.yaml", "", 0, &c, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "empty configuration") != NULL, "%s", err);
}
END_TEST

START_TEST(roles)
{
    char err[SVD_ERRBUF];
    struct svd_conf *c = NULL;
    uint8_t fp[SVD_PIN_LEN];
    const char *rest = "store:\n  path: /x\naudit:\n  path: /a\ncontrol:\n  socket: /s\n";
    const char *tls = "tls:\n  certificate: /c\n  key: /k\n  client_ca: /ca\n";
    char t[2048];

    /* a certificate per role; the roles looked up by fingerprint */
    snprintf(t, sizeof(t), "%sclients:\n  frontend:\n    - \"AA:bb:cc:dd:ee:ff:00:11:22:33:44:"
             "55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99\"\n"
             "  monitor: [\"" FP_B "\"]\n%s", tls, rest);
    ck_assert_msg(svd_conf_parse("p.yaml", t, strlen(t), &c, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(c->nclients, 2);
    ck_assert_uint_eq(c->clients[0].fp[0], 0xaa);
    ck_assert_uint_eq(c->clients[0].fp[31], 0x99);
    memcpy(fp, c->clients[0].fp, sizeof(fp));
    ck_assert_uint_eq(svd_conf_client_roles(c, fp), SVD_ROLE_FRONTEND);
    ck_assert_uint_eq(svd_conf_client_roles(c, c->clients[1].fp), SVD_ROLE_MONITOR);
    ck_assert_uint_eq(c->clients[1].fp[0], 0x01);
    fp[31] ^= 1;
    ck_assert_uint_eq(svd_conf_client_roles(c, fp), 0);
    ck_assert_str_eq(svd_role_name(SVD_ROLE_RECONCILE), "reconcile");
    svd_conf_free(c);

    /* one certificate with two roles: refused unless said explicitly */
    snprintf(t, sizeof(t), "%sclients:\n  frontend: [\"" FP_B "\"]\n"
             "  reconcile: [\"" FP_B "\"]\n%s", tls, rest);
    ck_assert_int_eq(svd_conf_parse("p.yaml", t, strlen(t), &c, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "p.yaml:6: clients: a certificate is listed with two roles "
                         "(frontend+reconcile)") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "allow_combined_roles: true") != NULL, "%s", err);
    snprintf(t, sizeof(t), "%sclients:\n  frontend: [\"" FP_B "\"]\n"
             "  reconcile: [\"" FP_B "\"]\n  allow_combined_roles: true\n%s", tls, rest);
    ck_assert_msg(svd_conf_parse("p.yaml", t, strlen(t), &c, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(c->nclients, 1);
    ck_assert_uint_eq(c->clients[0].roles, SVD_ROLE_FRONTEND | SVD_ROLE_RECONCILE);
    svd_conf_free(c);

    /* the same certificate twice in one role; a bad fingerprint; none at all */
    snprintf(t, sizeof(t), "%sclients:\n  frontend: [\"" FP_B "\", \"" FP_B "\"]\n%s", tls,
             rest);
    ck_assert_int_eq(svd_conf_parse("p.yaml", t, strlen(t), &c, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "clients.frontend: entry 2: listed twice") != NULL, "%s", err);
    snprintf(t, sizeof(t), "%sclients:\n  reconcile: [00]\n%s", tls, rest);
    ck_assert_int_eq(svd_conf_parse("p.yaml", t, strlen(t), &c, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "p.yaml:6: clients.reconcile: entry 1") != NULL, "%s", err);
    snprintf(t, sizeof(t), "%s%s", tls, rest);
    ck_assert_int_eq(svd_conf_parse("p.yaml", t, strlen(t), &c, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "no client certificate is listed") != NULL, "%s", err);

    /* the key of the earlier version says what replaced it */
    snprintf(t, sizeof(t), "%s  pinned_clients: []\nclients:\n  frontend: [\"" FP_B "\"]\n%s",
             tls, rest);
    ck_assert_int_eq(svd_conf_parse("p.yaml", t, strlen(t), &c, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "p.yaml:5: tls.pinned_clients: no longer supported: list each "
                         "client certificate under clients.frontend") != NULL, "%s", err);

    snprintf(t, sizeof(t), "%sclients:\n  frontend: [\"" FP_B "\"]\n"
             "store:\n  driver: pgsql\naudit:\n  path: /a\ncontrol:\n  socket: /s\n", tls);
    ck_assert_int_eq(svd_conf_parse("p.yaml", t, strlen(t), &c, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "p.yaml:8: store.params: required with driver pgsql") != NULL,
                  "%s", err);
}
END_TEST

START_TEST(floors)
{
    /* reconcile.min_grace below what the module needs; sizes; retention */
    parse_bad("reconcile:\n  min_grace: 10m\n", "reconcile.min_grace: 600s is below 900s");
    parse_bad("reconcile:\n  min_grace: 0\n", "reconcile.min_grace: 0s is below 900s");
    svd_conf_free(parse_ok("reconcile:\n  min_grace: 15m\n"));
    {
        char err[SVD_ERRBUF];
        struct svd_conf *c = NULL;
        const char *t = "tls:\n  certificate: /c\n  key: /k\n  client_ca: /ca\n"
                        "clients:\n  frontend: [\"" FP_B "\"]\n"
                        "store:\n  path: /x\n  min_free: 3GiB\naudit:\n  path: /a\n"
                        "control:\n  socket: /s\n";
        ck_assert_msg(svd_conf_parse("f.yaml", t, strlen(t), &c, err, sizeof(err)) == 0, "%s",
                      err);
        ck_assert(c->min_free == 3ull << 30);
        svd_conf_free(c);
        t = "tls:\n  certificate: /c\n  key: /k\n  client_ca: /ca\n"
            "clients:\n  frontend: [\"" FP_B "\"]\n"
            "store:\n  path: /x\n  min_free: lots\naudit:\n  path: /a\ncontrol:\n  socket: /s\n";
        ck_assert_int_eq(svd_conf_parse("f.yaml", t, strlen(t), &c, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, "f.yaml:9: store.min_free: expected a size") != NULL, "%s",
                      err);
    }
    parse_bad("retention:\n  purge_batch: 0\n", "retention.purge_batch: value 0 out of range");
    {
        struct svd_conf *c = parse_ok("retention:\n  period: 0\n");
        ck_assert_uint_eq(c->retention_s, 0);
        svd_conf_free(c);
    }
}
END_TEST

START_TEST(durations_sizes)
{
    uint64_t v;

    ck_assert_int_eq(svd_parse_duration_ms("0", &v), 0);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(svd_parse_duration_ms("15s", &v), 0);
    ck_assert_uint_eq(v, 15000);
    ck_assert_int_eq(svd_parse_duration_ms("1h", &v), 0);
    ck_assert_uint_eq(v, 3600000);
    ck_assert_int_eq(svd_parse_duration_ms("15", &v), -1);
    ck_assert_int_eq(svd_parse_duration_ms("s", &v), -1);
    ck_assert_int_eq(svd_parse_duration_ms("-1s", &v), -1);
    ck_assert_int_eq(svd_parse_duration_ms("99999999999999999999s", &v), -1);
    ck_assert_int_eq(svd_parse_size("8MiB", &v), 0);
    ck_assert_uint_eq(v, 8u << 20);
    ck_assert_int_eq(svd_parse_size("8MB", &v), -1);
}
END_TEST

static struct sockaddr_storage
addr(const char *s)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(s, ':') != NULL) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        ck_assert_int_eq(inet_pton(AF_INET6, s, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        ck_assert_int_eq(inet_pton(AF_INET, s, &a->sin_addr), 1);
    }
    return ss;
}

static int
match(const char *cidr, const char *a)
{
    struct svd_cidr c;
    struct sockaddr_storage ss = addr(a);

    ck_assert_int_eq(svd_cidr_parse(cidr, &c), 0);
    return svd_cidr_match(&c, (struct sockaddr *)&ss);
}

START_TEST(cidr)
{
    struct svd_cidr c;

    ck_assert(match("127.0.0.1/32", "127.0.0.1"));
    ck_assert(!match("127.0.0.2/32", "127.0.0.1"));
    ck_assert(match("10.0.0.0/8", "10.255.1.2"));
    ck_assert(!match("10.0.0.0/8", "11.0.0.1"));
    ck_assert(match("10.1.2.3/8", "10.9.9.9")); /* host bits ignored */
    ck_assert(match("192.168.0.0/23", "192.168.1.200"));
    ck_assert(!match("192.168.0.0/23", "192.168.2.1"));
    ck_assert(match("0.0.0.0/0", "8.8.8.8"));
    ck_assert(match("::1/128", "::1"));
    ck_assert(!match("::1/128", "::2"));
    ck_assert(match("2001:db8::/32", "2001:db8:ffff::1"));
    ck_assert(match("127.0.0.1/32", "::ffff:127.0.0.1")); /* v4-mapped */
    ck_assert(!match("::1/128", "127.0.0.1"));
    ck_assert_int_eq(svd_cidr_parse("1.2.3.4/33", &c), -1);
    ck_assert_int_eq(svd_cidr_parse("1.2.3/8", &c), -1);
    ck_assert_int_eq(svd_cidr_parse("::1/129", &c), -1);
    ck_assert_int_eq(svd_cidr_parse("1.2.3.4/", &c), -1);
    ck_assert_int_eq(svd_cidr_parse("1.2.3.4/x", &c), -1);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("svd_conf");
    TCase *tc = tcase_create("conf");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, defaults);
    tcase_add_test(tc, values);
    tcase_add_test(tc, handshake_caps);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, required);
    tcase_add_test(tc, roles);
    tcase_add_test(tc, floors);
    tcase_add_test(tc, durations_sizes);
    tcase_add_test(tc, cidr);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
