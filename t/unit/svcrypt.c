/*
 * svcrypt - the core library's crypto from the command line, for tests that
 * cross-check it against an independent implementation (t/test_hpke_ref.py).
 * Not installed. All binary arguments and results are lowercase hex; results
 * go to stdout separated by single spaces.
 *
 *   svcrypt keygen                                   -> SK PK
 *   svcrypt public SK                                -> PK
 *   svcrypt split SK                                 -> KEY2A KEY2B
 *   svcrypt combine KEY2A KEY2B                      -> SK
 *   svcrypt seal-datum PK2 UUID FIELD PT             -> ENC CT
 *   svcrypt open-datum SK2 UUID FIELD ENC CT         -> PT
 *   svcrypt wrap PK1 UUID FIELD SHARE_ID KEY2A       -> ENC CT
 *   svcrypt unwrap SK1 UUID FIELD SHARE_ID ENC CT    -> KEY2A
 *   svcrypt seal AEAD PK INFO AAD PT                 -> ENC CT
 *   svcrypt open AEAD SK INFO AAD ENC CT             -> PT
 *   svcrypt key1-private FILE                        -> SK PK   (passphrase: $SVCRYPT_PASS)
 *   svcrypt key1-public FILE                         -> PK
 *   svcrypt fingerprint PK                           -> FP
 *
 * UUID is the 8-4-4-4-12 text, AEAD a decimal id (1, 2, 3), SHARE_ID
 * decimal. An empty hex argument ("") is an empty byte string. Exit status:
 * 0 success, 1 operation failed (sv_strerror text on stderr), 2 usage.
 * Being a test tool, it takes secrets on the command line; nothing else
 * in SplitVault does.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sv_err.h"
#include "sv_format.h"
#include "sv_hex.h"
#include "sv_hpke.h"
#include "sv_key2.h"
#include "sv_keyfile.h"
#include "sv_secret.h"

#define MAX_IN (SV_DATUM_MAX + SV_HPKE_TAG_LEN)

static void
usage(void)
{
    fprintf(stderr,
            "usage: svcrypt keygen | public SK | split SK | combine A B\n"
            "       svcrypt seal-datum PK2 UUID FIELD PT | open-datum SK2 UUID FIELD ENC CT\n"
            "       svcrypt wrap PK1 UUID FIELD SHARE_ID KEY2A\n"
            "       svcrypt unwrap SK1 UUID FIELD SHARE_ID ENC CT\n"
            "       svcrypt seal AEAD PK INFO AAD PT | open AEAD SK INFO AAD ENC CT\n"
            "       svcrypt key1-private FILE | key1-public FILE | fingerprint PK\n");
    exit(2);
}

/* Decode hex; exits with usage on bad input or wrong length (want 0 =
 * any length up to cap). Returns the byte count. */
static size_t
unhex(const char *what, const char *s, uint8_t *out, size_t cap, size_t want)
{
    size_t n = strlen(s);

    if (n % 2 != 0 || n / 2 > cap || (want != 0 && n / 2 != want)) {
        fprintf(stderr, "svcrypt: %s: bad hex length\n", what);
        exit(2);
    }
    if (sv_hex_decode(s, n, out, n / 2) != SV_OK) {
        fprintf(stderr, "svcrypt: %s: bad hex digit\n", what);
        exit(2);
    }
    return n / 2;
}

static void
puthex(const uint8_t *p, size_t n, const char *sep)
{
    char *h = malloc(2 * n + 1);

    if (h == NULL) {
        fprintf(stderr, "svcrypt: out of memory\n");
        exit(1);
    }
    sv_hex_encode(p, n, h);
    fputs(h, stdout);
    fputs(sep, stdout);
    free(h);
}

static void
parse_uuid(const char *s, uint8_t u[SV_UUID_LEN])
{
    if (sv_uuid_parse(s, strlen(s), u) != SV_OK) {
        fprintf(stderr, "svcrypt: bad uuid\n");
        exit(2);
    }
}

static uint64_t
parse_u64(const char *s)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-') {
        fprintf(stderr, "svcrypt: bad number %s\n", s);
        exit(2);
    }
    return (uint64_t)v;
}

static int
fail(const char *op, sv_status st)
{
    fprintf(stderr, "svcrypt: %s: %s\n", op, sv_strerror(st));
    return 1;
}

int
main(int argc, char **argv)
{
    static uint8_t a[MAX_IN], b[MAX_IN], c[MAX_IN], d[MAX_IN];
    uint8_t sk[SV_X25519_LEN], pk[SV_X25519_LEN], enc[SV_HPKE_ENC_LEN];
    uint8_t uuid[SV_UUID_LEN];
    const char *cmd;
    size_t na, nb, nc;
    sv_status st;
    int rc = 0;

    if (argc < 2)
        usage();
    cmd = argv[1];
#define NARGS(n) do { if (argc != (n) + 2) usage(); } while (0)

    if (strcmp(cmd, "keygen") == 0) {
        NARGS(0);
        if ((st = sv_x25519_generate(sk, pk)) != SV_OK)
            return fail(cmd, st);
        puthex(sk, 32, " ");
        puthex(pk, 32, "\n");
    } else if (strcmp(cmd, "public") == 0) {
        NARGS(1);
        unhex("SK", argv[2], sk, 32, 32);
        if ((st = sv_x25519_public(sk, pk)) != SV_OK)
            return fail(cmd, st);
        puthex(pk, 32, "\n");
    } else if (strcmp(cmd, "split") == 0) {
        NARGS(1);
        unhex("SK", argv[2], sk, 32, 32);
        if ((st = sv_key2_split(sk, a, b)) != SV_OK)
            return fail(cmd, st);
        puthex(a, 32, " ");
        puthex(b, 32, "\n");
    } else if (strcmp(cmd, "combine") == 0) {
        NARGS(2);
        unhex("KEY2A", argv[2], a, 32, 32);
        unhex("KEY2B", argv[3], b, 32, 32);
        sv_key2_combine(a, b, sk);
        puthex(sk, 32, "\n");
    } else if (strcmp(cmd, "seal-datum") == 0) {
        NARGS(4);
        unhex("PK2", argv[2], pk, 32, 32);
        parse_uuid(argv[3], uuid);
        na = unhex("PT", argv[5], a, SV_DATUM_MAX, 0);
        if ((st = sv_datum_seal(pk, uuid, argv[4], a, na, enc, b)) != SV_OK)
            return fail(cmd, st);
        puthex(enc, sizeof(enc), " ");
        puthex(b, na + SV_HPKE_TAG_LEN, "\n");
    } else if (strcmp(cmd, "open-datum") == 0) {
        NARGS(5);
        unhex("SK2", argv[2], sk, 32, 32);
        parse_uuid(argv[3], uuid);
        unhex("ENC", argv[5], enc, sizeof(enc), sizeof(enc));
        na = unhex("CT", argv[6], a, MAX_IN, 0);
        if ((st = sv_datum_open(sk, uuid, argv[4], enc, a, na, b)) != SV_OK)
            return fail(cmd, st);
        puthex(b, na - SV_HPKE_TAG_LEN, "\n");
    } else if (strcmp(cmd, "wrap") == 0) {
        NARGS(5);
        unhex("PK1", argv[2], pk, 32, 32);
        parse_uuid(argv[3], uuid);
        unhex("KEY2A", argv[6], a, 32, 32);
        if ((st = sv_key2a_wrap(pk, uuid, argv[4], parse_u64(argv[5]), a, enc, b)) != SV_OK)
            return fail(cmd, st);
        puthex(enc, sizeof(enc), " ");
        puthex(b, SV_WRAPPED_CT_LEN, "\n");
    } else if (strcmp(cmd, "unwrap") == 0) {
        NARGS(6);
        unhex("SK1", argv[2], sk, 32, 32);
        parse_uuid(argv[3], uuid);
        unhex("ENC", argv[6], enc, sizeof(enc), sizeof(enc));
        unhex("CT", argv[7], a, SV_WRAPPED_CT_LEN, SV_WRAPPED_CT_LEN);
        if ((st = sv_key2a_unwrap(sk, uuid, argv[4], parse_u64(argv[5]), enc, a, b)) != SV_OK)
            return fail(cmd, st);
        puthex(b, 32, "\n");
    } else if (strcmp(cmd, "seal") == 0) {
        NARGS(5);
        unhex("PK", argv[3], pk, 32, 32);
        na = unhex("INFO", argv[4], a, SV_HPKE_MAX_INFO + 1, 0);
        nb = unhex("AAD", argv[5], b, SV_HPKE_MAX_AAD + 1, 0);
        nc = unhex("PT", argv[6], c, SV_DATUM_MAX, 0);
        st = sv_hpke_seal((uint16_t)parse_u64(argv[2]), pk, a, na, b, nb, c, nc, enc, d);
        if (st != SV_OK)
            return fail(cmd, st);
        puthex(enc, sizeof(enc), " ");
        puthex(d, nc + SV_HPKE_TAG_LEN, "\n");
    } else if (strcmp(cmd, "open") == 0) {
        NARGS(6);
        unhex("SK", argv[3], sk, 32, 32);
        na = unhex("INFO", argv[4], a, SV_HPKE_MAX_INFO + 1, 0);
        nb = unhex("AAD", argv[5], b, SV_HPKE_MAX_AAD + 1, 0);
        unhex("ENC", argv[6], enc, sizeof(enc), sizeof(enc));
        nc = unhex("CT", argv[7], c, MAX_IN, 0);
        st = sv_hpke_open((uint16_t)parse_u64(argv[2]), sk, a, na, b, nb, enc, c, nc, d);
        if (st != SV_OK)
            return fail(cmd, st);
        puthex(d, nc - SV_HPKE_TAG_LEN, "\n");
    } else if (strcmp(cmd, "key1-private") == 0) {
        const char *pass = getenv("SVCRYPT_PASS");

        NARGS(1);
        st = sv_key1_private_from_file(argv[2], pass, pass != NULL ? strlen(pass) : 0, sk, pk);
        if (st != SV_OK)
            return fail(cmd, st);
        puthex(sk, 32, " ");
        puthex(pk, 32, "\n");
    } else if (strcmp(cmd, "key1-public") == 0) {
        NARGS(1);
        if ((st = sv_key1_public_from_file(argv[2], pk)) != SV_OK)
            return fail(cmd, st);
        puthex(pk, 32, "\n");
    } else if (strcmp(cmd, "fingerprint") == 0) {
        char fp[SV_FINGERPRINT_HEX_LEN + 1];

        NARGS(1);
        unhex("PK", argv[2], pk, 32, 32);
        if ((st = sv_key1_fingerprint(pk, fp)) != SV_OK)
            return fail(cmd, st);
        printf("%s\n", fp);
    } else {
        usage();
    }
    sv_cleanse(sk, sizeof(sk));
    sv_cleanse(a, sizeof(a));
    sv_cleanse(b, sizeof(b));
    sv_cleanse(c, sizeof(c));
    sv_cleanse(d, sizeof(d));
    if (fflush(stdout) != 0)
        rc = 1;
    return rc;
}
