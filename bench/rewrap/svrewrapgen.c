/*
 * svrewrapgen.c - data for the key1-rewrap benchmark (bench/rewrap/run.sh).
 *
 *   svrewrapgen records FIRST COUNT
 *   svrewrapgen fields KEY1.pem FIRST COUNT
 *   svrewrapgen --verify N KEY1.pem
 *
 * records: rows of records (id, uuid, ref) for COPY FROM STDIN, ids FIRST to
 *          FIRST + COUNT - 1. The uuid and the reference are functions of
 *          the id, so that the fields of another process name the same ones.
 * fields:  the fields of those records (SVG_NAMES per record) for COPY, with
 *          key2a a real HPKE seal to KEY1.pem's public key under the aad
 *          docs/format.md prescribes (sv_key2a_wrap, as the module wraps
 *          it) and key1_fp its fingerprint. The datum envelope (key2_pub,
 *          enc, ct) is random bytes of the right lengths: key1-rewrap never
 *          reads it. share_id is 3 * id + index + 1 (unique, > 0).
 * --verify: reads rows "uuid|name|share_id|wrap_enc hex|wrap_ct hex" (psql
 *          -At) from stdin and unwraps each with KEY1.pem's private key;
 *          exits 0 only when exactly N rows were read and all opened.
 *
 * Bench data only: the keys are throwaway ones made by run.sh. Several
 * processes on disjoint id ranges use several cores.
 */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "sv_format.h"
#include "sv_hex.h"
#include "sv_hpke.h"
#include "sv_keyfile.h"
#include "sv_secret.h"

static const char *const svg_names[] = { "name", "ssn", "notes" };
#define SVG_NAMES (sizeof(svg_names) / sizeof(svg_names[0]))
#define SVG_CT_LEN 27 /* a short datum: 11 bytes + the tag */

static int svg_fail(const char *msg)
{
    fprintf(stderr, "svrewrapgen: %s\n", msg);
    return 1;
}

static int svg_count(const char *s, uint64_t *v)
{
    char *end = NULL;
    unsigned long long n = strtoull(s, &end, 10);

    if (!*s || *end || n == 0 || n > UINT64_MAX / 4)
        return 0;
    *v = n;
    return 1;
}

/* uuid 00000000-0000-4000-8000-<id in 12 hex digits> (version 4 layout) */
static void svg_uuid(uint64_t id, uint8_t uuid[SV_UUID_LEN])
{
    int i;

    memset(uuid, 0, SV_UUID_LEN);
    uuid[6] = 0x40;
    uuid[8] = 0x80;
    for (i = 0; i < 6; i++)
        uuid[15 - i] = (uint8_t)(id >> (8 * i));
}

/* a reference of the records.ref form: the id in Crockford base 32 */
static void svg_ref(uint64_t id, char ref[12])
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    int i, j = 10;

    ref[11] = '\0';
    for (i = 0; i < 10; i++) {
        ref[j--] = b32[id & 31];
        id >>= 5;
        if (j == 5)
            ref[j--] = '-';
    }
}

static void svg_bytea(FILE *o, const uint8_t *b, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    size_t i;

    fputs("\\\\x", o);
    for (i = 0; i < n; i++) {
        putc(hx[b[i] >> 4], o);
        putc(hx[b[i] & 15], o);
    }
}

static int svg_records(uint64_t first, uint64_t count)
{
    uint64_t id;

    for (id = first; id < first + count; id++) {
        uint8_t uuid[SV_UUID_LEN];
        char us[SV_UUID_STR_LEN + 1], ref[12];

        svg_uuid(id, uuid);
        sv_uuid_format(uuid, us);
        svg_ref(id, ref);
        printf("%" PRIu64 "\t%s\t%s\n", id, us, ref);
    }
    return fflush(stdout) == 0 ? 0 : svg_fail("write error");
}

static int svg_load(const char *file, uint8_t *sk, uint8_t pk[SV_X25519_LEN])
{
    sv_status st = sv_key1_private_from_file(file, NULL, 0, sk, pk);

    if (st != SV_OK) {
        fprintf(stderr, "svrewrapgen: %s: %s\n", file, sv_strerror(st));
        return 1;
    }
    return 0;
}

static int svg_fields(const uint8_t pk[SV_X25519_LEN], uint64_t first, uint64_t count)
{
    char fp[SV_FINGERPRINT_HEX_LEN + 1];
    uint64_t id;
    size_t k;

    if (sv_key1_fingerprint(pk, fp) != SV_OK)
        return svg_fail("fingerprint");
    for (id = first; id < first + count; id++) {
        uint8_t uuid[SV_UUID_LEN];

        svg_uuid(id, uuid);
        for (k = 0; k < SVG_NAMES; k++) {
            uint8_t env[32 + 32 + SVG_CT_LEN], key2a[SV_X25519_LEN];
            uint8_t wenc[SV_HPKE_ENC_LEN], wct[SV_WRAPPED_CT_LEN];
            uint64_t share = 3 * id + k + 1;
            sv_status st;

            if (RAND_bytes(env, sizeof(env)) != 1 || RAND_bytes(key2a, sizeof(key2a)) != 1)
                return svg_fail("RAND_bytes");
            st = sv_key2a_wrap(pk, uuid, svg_names[k], share, key2a, wenc, wct);
            sv_cleanse(key2a, sizeof(key2a));
            if (st != SV_OK)
                return svg_fail("sv_key2a_wrap");
            printf("%" PRIu64 "\t%s\t", id, svg_names[k]);
            svg_bytea(stdout, env, 32);
            putchar('\t');
            svg_bytea(stdout, env + 32, 32);
            putchar('\t');
            svg_bytea(stdout, env + 64, SVG_CT_LEN);
            printf("\t%" PRIu64 "\t", share);
            svg_bytea(stdout, wenc, sizeof(wenc));
            putchar('\t');
            svg_bytea(stdout, wct, sizeof(wct));
            printf("\t%s\n", fp);
        }
    }
    return fflush(stdout) == 0 ? 0 : svg_fail("write error");
}

static int svg_verify(const uint8_t *sk, uint64_t want)
{
    char line[512];
    uint64_t n = 0, bad = 0;

    while (fgets(line, sizeof(line), stdin)) {
        char *f[5], *p = line, *end = NULL;
        uint8_t uuid[SV_UUID_LEN], wenc[SV_HPKE_ENC_LEN], wct[SV_WRAPPED_CT_LEN];
        uint8_t key2a[SV_X25519_LEN];
        unsigned long long share;
        int i;

        line[strcspn(line, "\n")] = '\0';
        for (i = 0; i < 5; i++) {
            f[i] = p;
            p = strchr(p, '|');
            if (i < 4 && !p)
                return svg_fail("--verify: malformed row");
            if (p)
                *p++ = '\0';
        }
        share = strtoull(f[2], &end, 10);
        if (sv_uuid_parse(f[0], strlen(f[0]), uuid) != SV_OK || !*f[2] || *end
            || sv_hex_decode(f[3], strlen(f[3]), wenc, sizeof(wenc)) != SV_OK
            || sv_hex_decode(f[4], strlen(f[4]), wct, sizeof(wct)) != SV_OK)
            return svg_fail("--verify: malformed row");
        if (sv_key2a_unwrap(sk, uuid, f[1], share, wenc, wct, key2a) != SV_OK) {
            fprintf(stderr, "svrewrapgen: record %s field %s does not open\n", f[0], f[1]);
            bad++;
        }
        sv_cleanse(key2a, sizeof(key2a));
        n++;
    }
    printf("verify: %" PRIu64 " sampled fields, %" PRIu64 " open with the key, %" PRIu64
           " do not\n", n, n - bad, bad);
    return n == want && bad == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    uint64_t first = 0, count = 0;
    uint8_t *sk, pk[SV_X25519_LEN];
    int rv = 2;

    if (argc == 4 && strcmp(argv[1], "records") == 0 && svg_count(argv[2], &first)
        && svg_count(argv[3], &count))
        return svg_records(first, count);
    sv_secret_init(4096);
    if (!(sk = sv_secret_alloc(SV_X25519_LEN)))
        return svg_fail("out of memory");
    if (argc == 5 && strcmp(argv[1], "fields") == 0 && svg_count(argv[3], &first)
        && svg_count(argv[4], &count))
        rv = svg_load(argv[2], sk, pk) || svg_fields(pk, first, count);
    else if (argc == 4 && strcmp(argv[1], "--verify") == 0 && svg_count(argv[2], &count))
        rv = svg_load(argv[3], sk, pk) || svg_verify(sk, count);
    else
        fprintf(stderr, "usage: svrewrapgen records FIRST COUNT | fields KEY1.pem FIRST COUNT"
                " | --verify N KEY1.pem\n");
    sv_secret_free(sk, SV_X25519_LEN);
    return rv;
}
