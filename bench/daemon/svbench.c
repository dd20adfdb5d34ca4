/*
 * svbench.c - load generator for splitvaultd's benchmark (bench/daemon/run.sh).
 *
 *   svbench -p PORT --cert C --key K --ca CA MODE [options]
 *
 * MODE store:    STOREs of --fields random shares each, as fast as the
 *                daemon answers, on --conns persistent connections.
 * MODE decrypt:  first stores --records records of --fields real fields
 *                (key2 per field, datum sealed, sk2 split: the module's
 *                work), then replays their encoded DECRYPT frames (no
 *                rotation) on --conns connections. Replaying pre-encoded
 *                frames keeps the generator's CPU cost to TLS records.
 *                --save FILE writes the frames after storing (mode 0600;
 *                bench data only), --load FILE replays frames saved by an
 *                earlier run against the same store instead of storing:
 *                a profile of the daemon then holds DECRYPTs alone.
 * MODE fill:     STOREs until --total shares exist (32 fields a STORE),
 *                for the memory measurement.
 * MODE crypto:   no daemon: the per-field work of a DECRYPT done by the
 *                core library in this thread (sv_datum_open_checked, as the
 *                daemon calls it; the older key check and open apart), next
 *                to two bare X25519 derives (the floor, as `openssl speed
 *                ecdhx25519` measures one).
 *
 * Prints one line of key=value figures: requests/s, fields/s, p50/p99
 * latency in microseconds, and the generator's own CPU use during the phase
 * (client_cpu_cores: it shares the machine with the daemon). Uses the core
 * library's encoder, its TLS client (lib/sv_tlsclient) and OpenSSL.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "sv_buf.h"
#include "sv_format.h"
#include "sv_key2.h"
#include "sv_secret.h"
#include "sv_tlsclient.h"
#include "sv_wire.h"

enum { M_STORE, M_DECRYPT, M_FILL, M_CRYPTO };

static struct {
    int port, conns, fields, records, mode;
    double duration;
    uint64_t total;
    const char *cert, *key, *ca, *save, *load;
} opt = { 0, 16, 3, 64, M_STORE, 10.0, 1000000, NULL, NULL, NULL, NULL, NULL };

static SSL_CTX *ctx;

struct frame {
    uint8_t *data;
    size_t len;
};

static struct frame *dframes;   /* DECRYPT frames, one per record */
static volatile int stop_flag;
static int go;
static pthread_mutex_t go_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go_cv = PTHREAD_COND_INITIALIZER;
static uint64_t fill_done;
static pthread_mutex_t fill_mu = PTHREAD_MUTEX_INITIALIZER;

struct worker {
    int id;
    sv_tls_conn *conn;
    uint64_t n, fields;
    uint32_t *lat;      /* microseconds */
    size_t nlat, cap;
    int failed;
};

/* CPU time (user + system) of this process so far, in seconds. */
static double
cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
    fprintf(stderr, "svbench: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

/* Every connection's bound on connecting and on each exchange (one
 * deadline for the request and its whole answer): past any DECRYPT's queue
 * wait (the frames ask for at most 60 s). */
#define BENCH_TIMEOUT_MS 120000

/* A mutual-TLS connection to the daemon on loopback (lib/sv_tlsclient: the
 * daemon's certificate is checked for "localhost", as the module would). */
static sv_tls_conn *
connect_tls(void)
{
    char port[16], err[SV_TLS_ERRLEN];
    sv_tls_conn *c = NULL;

    snprintf(port, sizeof(port), "%d", opt.port);
    if (sv_tls_connect(ctx, "127.0.0.1", port, "localhost", BENCH_TIMEOUT_MS, &c, err,
                       sizeof(err)) != SV_OK) {
        fprintf(stderr, "svbench: %s\n", err);
        exit(1);
    }
    return c;
}

/* One request/answer; returns the answer type, or -1. The body lands in
 * *body (malloc'd; the caller frees it with sv_tls_body_free, which
 * cleanses it). */
static int
roundtrip(sv_tls_conn *c, const uint8_t *req, size_t len, uint8_t **body, size_t *blen)
{
    sv_wire_hdr h;

    *blen = 0;
    if (sv_tls_exchange(c, req, len, &h, body) != SV_OK)
        return -1;
    *blen = h.body_len;
    return h.type;
}

/* Encode a STORE of n fields with random key material. */
static void
make_store(sv_buf *out, unsigned n, uint8_t *keys)
{
    sv_store_req m;

    memset(&m, 0, sizeof(m));
    RAND_bytes(m.uuid, sizeof(m.uuid));
    m.uuid[6] = (m.uuid[6] & 0x0f) | 0x40;
    m.uuid[8] = (m.uuid[8] & 0x3f) | 0x80;
    RAND_bytes(keys, (int)(n * 64));
    m.n = n;
    for (unsigned i = 0; i < n; i++) {
        snprintf(m.f[i].name, sizeof(m.f[i].name), "field%u", i);
        m.f[i].pub = keys + 64 * i;
        m.f[i].key2b = keys + 64 * i + 32;
    }
    sv_buf_reset(out);
    if (sv_store_req_encode(out, 1, &m) != SV_OK)
        die("encode STORE");
}

static void
record_lat(struct worker *w, double t)
{
    if (w->nlat == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 65536;
        w->lat = realloc(w->lat, w->cap * sizeof(*w->lat));
    }
    w->lat[w->nlat++] = (uint32_t)(t * 1e6);
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    sv_buf sb;
    uint8_t keys[64 * SV_WIRE_MAX_FIELDS];
    unsigned k = (unsigned)w->id;

    sv_buf_init(&sb, 1, 0);
    /* wait, without spinning: the other connections are still being set up */
    pthread_mutex_lock(&go_mu);
    while (!go)
        pthread_cond_wait(&go_cv, &go_mu);
    pthread_mutex_unlock(&go_mu);
    while (!stop_flag) {
        const uint8_t *req;
        size_t len;
        uint8_t *body = NULL;
        size_t blen = 0;
        int t, want;
        unsigned nf;
        double t0;

        if (opt.mode == M_DECRYPT) {
            req = dframes[k % (unsigned)opt.records].data;
            len = dframes[k % (unsigned)opt.records].len;
            k += (unsigned)opt.conns;
            want = SV_MSG_DECRYPT_OK;
            nf = (unsigned)opt.fields;
        } else {
            nf = opt.mode == M_FILL ? SV_WIRE_MAX_FIELDS : (unsigned)opt.fields;
            if (opt.mode == M_FILL) {
                pthread_mutex_lock(&fill_mu);
                if (fill_done >= opt.total) {
                    pthread_mutex_unlock(&fill_mu);
                    break;
                }
                fill_done += nf;
                pthread_mutex_unlock(&fill_mu);
            }
            make_store(&sb, nf, keys);
            req = sb.data;
            len = sb.len;
            want = SV_MSG_STORE_OK;
        }
        t0 = now_s();
        t = roundtrip(w->conn, req, len, &body, &blen);
        record_lat(w, now_s() - t0);
        sv_tls_body_free(body, blen);
        if (t != want) {
            w->failed++;
            if (t < 0)
                break;
            continue;
        }
        w->n++;
        w->fields += nf;
    }
    sv_buf_free(&sb);
    return NULL;
}

/* Single-threaded cost of the daemon's per-field work in the core library,
 * next to the floor: two X25519 scalar multiplications done through EVP the
 * way `openssl speed ecdhx25519` does them (one context, derive only). */
static int
crypto_bench(void)
{
    uint8_t sk[32], pk[32], u[16], enc[32], ct[128], pt[128], dh[32];
    const char *v = "078-05-1120 a field value of some length";
    size_t vl = strlen(v), dl;
    int n = 0;
    double t0, t1, t2, t3, t4, t5;
    EVP_PKEY *a = NULL, *b = NULL;
    EVP_PKEY_CTX *c = NULL;

    if (sv_x25519_generate(sk, pk) != SV_OK || sv_uuid_generate(u) != SV_OK ||
        sv_datum_seal(pk, u, "field0", (const uint8_t *)v, vl, enc, ct) != SV_OK)
        die("crypto set-up");
    t0 = now_s();
    for (n = 0; now_s() - t0 < opt.duration / 4; n++)
        if (sv_datum_open_checked(sk, pk, u, "field0", enc, ct, vl + 16, pt) != SV_OK)
            die("datum open (checked)");
    t1 = now_s();
    for (int i = 0; i < n; i++)
        if (sv_key2_check(sk, pk) != SV_OK)
            die("key2 check");
    t2 = now_s();
    for (int i = 0; i < n; i++)
        if (sv_datum_open(sk, u, "field0", enc, ct, vl + 16, pt) != SV_OK)
            die("datum open");
    t3 = now_s();
    for (int i = 0; i < n; i++)
        if (sv_x25519_public(sk, pk) != SV_OK)
            die("x25519 public");
    t4 = now_s();
    a = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk, 32);
    b = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, enc, 32);
    if (a == NULL || b == NULL || (c = EVP_PKEY_CTX_new(a, NULL)) == NULL ||
        EVP_PKEY_derive_init(c) != 1 || EVP_PKEY_derive_set_peer(c, b) != 1)
        die("derive set-up");
    for (int i = 0; i < 2 * n; i++) {
        dl = sizeof(dh);
        if (EVP_PKEY_derive(c, dh, &dl) != 1)
            die("derive");
    }
    t5 = now_s();
    printf("mode=crypto open_checked_us=%.1f key2_check_us=%.1f datum_open_us=%.1f "
           "x25519_public_us=%.1f two_derives_us=%.1f fields_per_s_1core=%.0f\n",
           (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6, (t3 - t2) / n * 1e6, (t4 - t3) / n * 1e6,
           (t5 - t4) / n * 1e6, (double)n / (t1 - t0));
    EVP_PKEY_CTX_free(c);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    OPENSSL_cleanse(sk, sizeof(sk));
    OPENSSL_cleanse(dh, sizeof(dh));
    return 0;
}

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* Store opt.records real records and encode their DECRYPT frames. */
static void
prepare_decrypt(void)
{
    sv_tls_conn *conn = connect_tls();

    dframes = calloc((size_t)opt.records, sizeof(*dframes));
    for (int r = 0; r < opt.records; r++) {
        sv_store_req sreq;
        sv_decrypt_req *dreq = sv_secret_alloc(sizeof(*dreq));
        static uint8_t pub[SV_WIRE_MAX_FIELDS][32], k2a[SV_WIRE_MAX_FIELDS][32],
            k2b[SV_WIRE_MAX_FIELDS][32], enc[SV_WIRE_MAX_FIELDS][32], ct[SV_WIRE_MAX_FIELDS][64];
        sv_store_resp sresp;
        sv_buf b;
        uint8_t *body;
        size_t blen;

        memset(&sreq, 0, sizeof(sreq));
        if (sv_uuid_generate(sreq.uuid) != SV_OK)
            die("uuid");
        sreq.n = (unsigned)opt.fields;
        for (int i = 0; i < opt.fields; i++) {
            uint8_t sk2[32];
            const char *value = "078-05-1120 a field value of some length";
            snprintf(sreq.f[i].name, sizeof(sreq.f[i].name), "field%d", i);
            if (sv_x25519_generate(sk2, pub[i]) != SV_OK ||
                sv_datum_seal(pub[i], sreq.uuid, sreq.f[i].name, (const uint8_t *)value,
                              strlen(value), enc[i], ct[i]) != SV_OK ||
                sv_key2_split(sk2, k2a[i], k2b[i]) != SV_OK)
                die("crypto");
            OPENSSL_cleanse(sk2, sizeof(sk2));
            sreq.f[i].pub = pub[i];
            sreq.f[i].key2b = k2b[i];
        }
        sv_buf_init(&b, 1, 0);
        if (sv_store_req_encode(&b, 1, &sreq) != SV_OK ||
            roundtrip(conn, b.data, b.len, &body, &blen) != SV_MSG_STORE_OK ||
            sv_store_resp_decode(body, blen, &sresp) != SV_OK)
            die("store a record");
        sv_tls_body_free(body, blen);
        memcpy(dreq->uuid, sreq.uuid, SV_UUID_LEN);
        snprintf(dreq->actor, sizeof(dreq->actor), "bench");
        dreq->wait_ms = 60000;
        dreq->n = sreq.n;
        for (int i = 0; i < opt.fields; i++) {
            sv_decrypt_field *f = &dreq->f[i];
            f->share_id = sresp.share_id[i];
            memcpy(f->name, sreq.f[i].name, sizeof(f->name));
            f->key2a = k2a[i];
            f->enc = enc[i];
            f->ct = ct[i];
            f->ct_len = (uint32_t)(strlen("078-05-1120 a field value of some length") + 16);
        }
        sv_buf_reset(&b);
        if (sv_decrypt_req_encode(&b, 2, dreq) != SV_OK)
            die("encode DECRYPT");
        /* check it once */
        if (roundtrip(conn, b.data, b.len, &body, &blen) != SV_MSG_DECRYPT_OK)
            die("a DECRYPT was refused (limiter on?)");
        sv_tls_body_free(body, blen);
        dframes[r].data = malloc(b.len);
        memcpy(dframes[r].data, b.data, b.len);
        dframes[r].len = b.len;
        sv_buf_free(&b);
        sv_secret_free(dreq, sizeof(*dreq));
    }
    sv_tls_close(conn);
}

/* Frames file: "svbench-frames v1 <fields> <records>\n", then per frame a
 * 4-byte big-endian length and the frame. */
static void
save_frames(const char *path)
{
    FILE *f;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    if (fd < 0 || (f = fdopen(fd, "wb")) == NULL)
        die("--save: cannot create the file");
    fprintf(f, "svbench-frames v1 %d %d\n", opt.fields, opt.records);
    for (int r = 0; r < opt.records; r++) {
        uint8_t l[4] = { (uint8_t)(dframes[r].len >> 24), (uint8_t)(dframes[r].len >> 16),
                         (uint8_t)(dframes[r].len >> 8), (uint8_t)dframes[r].len };
        if (fwrite(l, 1, 4, f) != 4 || fwrite(dframes[r].data, 1, dframes[r].len, f) !=
            dframes[r].len)
            die("--save: write failed");
    }
    if (fclose(f) != 0)
        die("--save: write failed");
}

static void
load_frames(const char *path)
{
    FILE *f = fopen(path, "rb");
    int fields, records;

    if (f == NULL || fscanf(f, "svbench-frames v1 %d %d", &fields, &records) != 2 ||
        fgetc(f) != '\n' || records < 1)
        die("--load: not a frames file");
    opt.fields = fields;
    opt.records = records;
    dframes = calloc((size_t)records, sizeof(*dframes));
    for (int r = 0; r < records; r++) {
        uint8_t l[4];
        if (fread(l, 1, 4, f) != 4)
            die("--load: truncated");
        dframes[r].len = ((size_t)l[0] << 24) | ((size_t)l[1] << 16) | ((size_t)l[2] << 8) | l[3];
        if (dframes[r].len > SV_WIRE_HDR_LEN + SV_WIRE_MAX_BODY ||
            (dframes[r].data = malloc(dframes[r].len)) == NULL ||
            fread(dframes[r].data, 1, dframes[r].len, f) != dframes[r].len)
            die("--load: truncated");
    }
    fclose(f);
}

int
main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "cert", required_argument, NULL, 'C' }, { "key", required_argument, NULL, 'K' },
        { "ca", required_argument, NULL, 'A' }, { "conns", required_argument, NULL, 'n' },
        { "fields", required_argument, NULL, 'f' }, { "records", required_argument, NULL, 'r' },
        { "duration", required_argument, NULL, 'd' }, { "total", required_argument, NULL, 'T' },
        { "save", required_argument, NULL, 'S' }, { "load", required_argument, NULL, 'L' },
        { NULL, 0, NULL, 0 },
    };
    struct worker *w;
    pthread_t *th;
    double t0, el, c0, cl;
    uint64_t n = 0, fields = 0, failed = 0;
    size_t nlat = 0, o = 0;
    uint32_t *all;
    int c;

    /* a write to a reset connection is a failed request, not the end of
     * the run (lib/sv_tlsclient.h) */
    signal(SIGPIPE, SIG_IGN);
    while ((c = getopt_long(argc, argv, "p:", lo, NULL)) != -1) {
        switch (c) {
        case 'p': opt.port = atoi(optarg); break;
        case 'C': opt.cert = optarg; break;
        case 'K': opt.key = optarg; break;
        case 'A': opt.ca = optarg; break;
        case 'n': opt.conns = atoi(optarg); break;
        case 'f': opt.fields = atoi(optarg); break;
        case 'r': opt.records = atoi(optarg); break;
        case 'd': opt.duration = atof(optarg); break;
        case 'T': opt.total = strtoull(optarg, NULL, 10); break;
        case 'S': opt.save = optarg; break;
        case 'L': opt.load = optarg; break;
        default: return 2;
        }
    }
    if (optind == argc - 1 && strcmp(argv[optind], "crypto") == 0) {
        opt.mode = M_CRYPTO;
        return crypto_bench();
    }
    if (optind != argc - 1 || !opt.port || !opt.cert || !opt.key || !opt.ca ||
        opt.fields < 1 || opt.fields > SV_WIRE_MAX_FIELDS || opt.conns < 1 || opt.records < 1) {
        fprintf(stderr, "usage: svbench -p PORT --cert C --key K --ca CA [--conns N] "
                "[--fields F] [--records R] [--duration S] [--total N] [--save F|--load F] "
                "store|decrypt|fill\n"
                "       svbench [--duration S] crypto\n"
                "Connects to the daemon on 127.0.0.1 port PORT over mutual TLS; the daemon's\n"
                "certificate must be signed by CA and name \"localhost\" (DNS).\n");
        return 2;
    }
    opt.mode = strcmp(argv[optind], "decrypt") == 0 ? M_DECRYPT
             : strcmp(argv[optind], "fill") == 0 ? M_FILL
             : strcmp(argv[optind], "crypto") == 0 ? M_CRYPTO : M_STORE;
    if (opt.mode == M_CRYPTO)
        return crypto_bench();
    sv_secret_init(1 << 20);
    {
        sv_tls_client_conf tc = { opt.ca, opt.cert, opt.key, "--ca", "--cert", "--key" };
        char err[SV_TLS_ERRLEN];

        if (sv_tls_client_ctx(&tc, &ctx, err, sizeof(err)) != SV_OK) {
            fprintf(stderr, "svbench: %s\n", err);
            return 1;
        }
    }
    SSL_CTX_set_read_ahead(ctx, 1); /* one recv(2) per record, not two */
    if (opt.mode == M_DECRYPT && opt.load != NULL) {
        load_frames(opt.load);
    } else if (opt.mode == M_DECRYPT) {
        prepare_decrypt();
        if (opt.save != NULL)
            save_frames(opt.save);
    }
    w = calloc((size_t)opt.conns, sizeof(*w));
    th = calloc((size_t)opt.conns, sizeof(*th));
    for (int i = 0; i < opt.conns; i++) {
        w[i].id = i;
        w[i].conn = connect_tls();
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    t0 = now_s();
    c0 = cpu_s();
    pthread_mutex_lock(&go_mu);
    go = 1;
    pthread_cond_broadcast(&go_cv);
    pthread_mutex_unlock(&go_mu);
    if (opt.mode != M_FILL) {
        struct timespec ts = { (time_t)opt.duration,
                               (long)((opt.duration - (double)(time_t)opt.duration) * 1e9) };
        nanosleep(&ts, NULL);
        stop_flag = 1;
    }
    for (int i = 0; i < opt.conns; i++)
        pthread_join(th[i], NULL);
    el = now_s() - t0;
    cl = cpu_s() - c0;
    for (int i = 0; i < opt.conns; i++) {
        n += w[i].n;
        fields += w[i].fields;
        failed += (uint64_t)w[i].failed;
        nlat += w[i].nlat;
    }
    all = malloc((nlat ? nlat : 1) * sizeof(*all));
    for (int i = 0; i < opt.conns; i++) {
        memcpy(all + o, w[i].lat, w[i].nlat * sizeof(*all));
        o += w[i].nlat;
    }
    qsort(all, nlat, sizeof(*all), cmp_u32);
    printf("mode=%s conns=%d fields_per_request=%d requests=%" PRIu64 " failed=%" PRIu64
           " seconds=%.2f requests_per_s=%.0f fields_per_s=%.0f p50_us=%u p99_us=%u"
           " client_cpu_cores=%.2f\n",
           argv[optind], opt.conns, opt.mode == M_FILL ? SV_WIRE_MAX_FIELDS : opt.fields, n,
           failed, el, (double)n / el, (double)fields / el, nlat ? all[nlat / 2] : 0,
           nlat ? all[(size_t)((double)nlat * 0.99)] : 0, el > 0 ? cl / el : 0.0);
    for (int i = 0; i < opt.conns; i++) {
        sv_tls_close(w[i].conn);
        free(w[i].lat);
    }
    SSL_CTX_free(ctx);
    return failed == 0 ? 0 : 1;
}
