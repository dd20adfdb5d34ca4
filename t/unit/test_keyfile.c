/*
 * test_keyfile.c - key1 files (lib/sv_keyfile.c).
 *
 * Every key is made at test time with the openssl command (override its
 * path with $OPENSSL) in a fresh temporary directory that is removed
 * afterwards: no private key is ever part of the source tree.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>
#include <limits.h>
#include <time.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "sv_keyfile.h"
#include "sv_key2.h"
#include "sv_secret.h"
#include "crypto_util.h"

#define PASS "correct horse battery staple"

static char dir[64];
static const char *openssl_cmd = "openssl";

static void
path_of(char *out, size_t out_len, const char *name)
{
    int n = snprintf(out, out_len, "%s/%s", dir, name);

    ck_assert(n > 0 && (size_t)n < out_len);
}

/* Run a shell command in the key directory ($SV_OPENSSL names the tool);
 * exit on failure: without its fixtures no result would mean anything. */
static void
run(const char *script)
{
    char cmd[1024];
    int n;

    n = snprintf(cmd, sizeof(cmd), "cd '%s' && %s", dir, script);
    if (n < 0 || (size_t)n >= sizeof(cmd) || system(cmd) != 0) {
        fprintf(stderr, "fixture command failed: %s\n", cmd);
        exit(EXIT_FAILURE);
    }
}

static char *
slurp(const char *name, size_t *len)
{
    char p[256];
    FILE *f;
    char *b;
    long n;

    path_of(p, sizeof(p), name);
    f = fopen(p, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    b = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Make every fixture file. Called once from main(), before any test. */
static void
make_fixtures(void)
{
    const char *o = getenv("OPENSSL");

    if (o != NULL && *o != '\0')
        openssl_cmd = o;
    if (setenv("SV_OPENSSL", openssl_cmd, 1) != 0) {
        perror("setenv");
        exit(EXIT_FAILURE);
    }
    snprintf(dir, sizeof(dir), "/tmp/sv-keyfile-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(EXIT_FAILURE);
    }
    run("$SV_OPENSSL genpkey -algorithm X25519 -out plain.pem 2>/dev/null");
    run("$SV_OPENSSL pkey -in plain.pem -pubout -out plain.pub");
    run("$SV_OPENSSL genpkey -algorithm X25519 -aes256 -pass 'pass:" PASS "' -out enc.pem 2>/dev/null");
    run("$SV_OPENSSL pkey -in enc.pem -passin 'pass:" PASS "' -pubout -out enc.pub");
    run("$SV_OPENSSL genpkey -algorithm ED25519 -out ed25519.pem");
    run("$SV_OPENSSL pkey -in ed25519.pem -pubout -out ed25519.pub");
    run("$SV_OPENSSL genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa.pem 2>/dev/null");
    run("$SV_OPENSSL pkey -in rsa.pem -pubout -out rsa.pub");
    run("$SV_OPENSSL pkey -in rsa.pem -traditional -out rsa-trad.pem");
    run("$SV_OPENSSL genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem");
    run("$SV_OPENSSL req -new -x509 -key ec.pem -subj /CN=t -days 1 -out cert.pem");
    run("$SV_OPENSSL pkey -in plain.pem -outform DER -out plain.der");
    run("$SV_OPENSSL pkey -in plain.pub -pubin -outform DER -out plain.pub.der");
    /* damaged and foreign files derived from those */
    run("head -c 100 plain.pem > truncated.pem");
    run("grep -v 'END PRIVATE KEY' plain.pem > no-end.pem");
    run("sed 's/$/\\r/' plain.pem > crlf.pem");
    run("(printf '\\n  \\n'; cat plain.pem; printf '\\n\\n') > spaced.pem");
    run("cat plain.pem plain.pub > two-blocks.pem");
    run("(echo 'Bag Attributes'; cat plain.pem) > leading-text.pem");
    run("(cat plain.pem; echo trailing) > trailing-text.pem");
    run("head -c 600 /dev/urandom > garbage.bin");
    run("printf 'hello, world\\n' > garbage.txt");
    run("printf '' > empty.pem");
    run("(cat plain.pem; head -c 16384 /dev/zero | tr '\\0' ' ') > oversized.pem");
    /* a valid PEM body holding a corrupted base64 line */
    run("sed '2s/^..../!!!!/' plain.pem > bad-base64.pem");
    /* other passphrase encryptions the tool writes: scrypt (its defaults,
     * N=16384 r=8 p=1), and PKCS#12's PBES1 scheme */
    run("$SV_OPENSSL pkcs8 -topk8 -in plain.pem -scrypt -passout 'pass:" PASS "' "
        "-out scrypt.pem");
    run("$SV_OPENSSL pkcs8 -topk8 -in plain.pem -v1 PBE-SHA1-3DES -passout 'pass:" PASS "' "
        "-out pbes1.pem");
}

static void
remove_fixtures(void)
{
    char cmd[128];

    if (dir[0] == '\0')
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* ---- helpers --------------------------------------------------------------- */

static sv_status
load_priv(const char *name, const char *pass, uint8_t sk[32], uint8_t pk[32])
{
    char p[256];
    sv_status st;

    path_of(p, sizeof(p), name);
    memset(sk, 0xa5, 32);
    memset(pk, 0xa5, 32);
    st = sv_key1_private_from_file(p, pass, pass != NULL ? strlen(pass) : 0, sk, pk);
    ck_assert_msg(ERR_peek_error() == 0, "%s: OpenSSL error queue not empty", name);
    if (st != SV_OK)
        ck_assert_msg(cu_all_zero(sk, 32) && cu_all_zero(pk, 32), "%s: outputs not zeroed", name);
    return st;
}

static sv_status
load_pub(const char *name, uint8_t pk[32])
{
    char p[256];
    sv_status st;

    path_of(p, sizeof(p), name);
    memset(pk, 0xa5, 32);
    st = sv_key1_public_from_file(p, pk);
    ck_assert_msg(ERR_peek_error() == 0, "%s: OpenSSL error queue not empty", name);
    if (st != SV_OK)
        ck_assert_msg(cu_all_zero(pk, 32), "%s: output not zeroed", name);
    return st;
}

#define PRIV_IS(name, pass, want)                                                    \
    do {                                                                             \
        sv_status st_ = load_priv((name), (pass), sk, pk);                           \
        ck_assert_msg(st_ == (want), "private %s: got %d (%s), want %d", (name), (int)st_, \
                      sv_strerror(st_), (int)(want));                                \
    } while (0)

#define PUB_IS(name, want)                                                           \
    do {                                                                             \
        sv_status st_ = load_pub((name), pk);                                        \
        ck_assert_msg(st_ == (want), "public %s: got %d (%s), want %d", (name), (int)st_, \
                      sv_strerror(st_), (int)(want));                                \
    } while (0)

/* ---- tests --------------------------------------------------------------------- */

START_TEST(test_plain_private)
{
    uint8_t sk[32], pk[32], pub[32], derived[32];
    uint8_t *der;
    size_t der_len;

    PRIV_IS("plain.pem", NULL, SV_OK);
    /* a passphrase given for an unencrypted key is simply not needed */
    ck_assert_int_eq(load_priv("plain.pem", "unused", derived, pub), SV_OK);
    ck_assert_mem_eq(derived, sk, 32);
    PUB_IS("plain.pub", SV_OK);
    memcpy(pub, pk, 32);
    PRIV_IS("plain.pem", NULL, SV_OK);
    ck_assert_mem_eq(pk, pub, 32);
    ck_assert_int_eq(sv_x25519_public(sk, derived), SV_OK);
    ck_assert_mem_eq(derived, pub, 32);
    ck_assert_int_eq(sv_key2_check(sk, pub), SV_OK);
    /* the raw key is the last 32 bytes of the PKCS#8 DER */
    der = (uint8_t *)slurp("plain.der", &der_len);
    ck_assert_uint_eq(der_len, 48);
    ck_assert_mem_eq(der + 16, sk, 32);
    free(der);
    der = (uint8_t *)slurp("plain.pub.der", &der_len);
    ck_assert_uint_eq(der_len, 44);
    ck_assert_mem_eq(der + 12, pub, 32);
    free(der);
    /* forms the tool may produce around the block */
    PRIV_IS("crlf.pem", NULL, SV_OK);
    ck_assert_mem_eq(pk, pub, 32);
    PRIV_IS("spaced.pem", NULL, SV_OK);
    ck_assert_mem_eq(pk, pub, 32);
}
END_TEST

START_TEST(test_encrypted_private)
{
    uint8_t sk[32], pk[32], pub[32], derived[32];

    PUB_IS("enc.pub", SV_OK);
    memcpy(pub, pk, 32);
    PRIV_IS("enc.pem", PASS, SV_OK);
    ck_assert_mem_eq(pk, pub, 32);
    ck_assert_int_eq(sv_x25519_public(sk, derived), SV_OK);
    ck_assert_mem_eq(derived, pub, 32);
    PRIV_IS("enc.pem", NULL, SV_ERR_KEY_NEED_PASS);
    PRIV_IS("enc.pem", "wrong passphrase", SV_ERR_KEY_PASSPHRASE);
    PRIV_IS("enc.pem", "", SV_ERR_KEY_PASSPHRASE);
    PRIV_IS("enc.pem", PASS "x", SV_ERR_KEY_PASSPHRASE);
}
END_TEST

START_TEST(test_wrong_types)
{
    uint8_t sk[32], pk[32];

    PRIV_IS("plain.pub", NULL, SV_ERR_KEY_TYPE);
    PRIV_IS("ed25519.pem", NULL, SV_ERR_KEY_TYPE);
    PRIV_IS("rsa.pem", NULL, SV_ERR_KEY_TYPE);
    PRIV_IS("rsa-trad.pem", NULL, SV_ERR_KEY_TYPE);
    PRIV_IS("ec.pem", NULL, SV_ERR_KEY_TYPE);
    PUB_IS("plain.pem", SV_ERR_KEY_TYPE);
    PUB_IS("enc.pem", SV_ERR_KEY_TYPE);
    PUB_IS("ed25519.pub", SV_ERR_KEY_TYPE);
    PUB_IS("rsa.pub", SV_ERR_KEY_TYPE);
    PUB_IS("ec.pem", SV_ERR_KEY_TYPE);
}
END_TEST

START_TEST(test_malformed)
{
    uint8_t sk[32], pk[32];

    PRIV_IS("truncated.pem", NULL, SV_ERR_KEY_FORMAT);
    PRIV_IS("no-end.pem", NULL, SV_ERR_KEY_FORMAT);
    PRIV_IS("bad-base64.pem", NULL, SV_ERR_KEY_FORMAT);
    PRIV_IS("garbage.bin", NULL, SV_ERR_KEY_FORMAT);
    PRIV_IS("garbage.txt", NULL, SV_ERR_KEY_FORMAT);
    PRIV_IS("empty.pem", NULL, SV_ERR_KEY_FORMAT);
    PRIV_IS("two-blocks.pem", NULL, SV_ERR_KEY_FORMAT);
    PRIV_IS("leading-text.pem", NULL, SV_ERR_KEY_FORMAT);
    PRIV_IS("trailing-text.pem", NULL, SV_ERR_KEY_FORMAT);
    PRIV_IS("cert.pem", NULL, SV_ERR_KEY_FORMAT);
    PRIV_IS("plain.der", NULL, SV_ERR_KEY_FORMAT);
    PUB_IS("garbage.bin", SV_ERR_KEY_FORMAT);
    PUB_IS("garbage.txt", SV_ERR_KEY_FORMAT);
    PUB_IS("truncated.pem", SV_ERR_KEY_FORMAT);
    PUB_IS("cert.pem", SV_ERR_KEY_FORMAT);
    PUB_IS("plain.pub.der", SV_ERR_KEY_FORMAT);
}
END_TEST

/* Re-encode der (+ extra bytes) as a PEM block named label. */
static char *
pem_wrap(const char *label, const uint8_t *der, size_t der_len, const uint8_t *extra,
         size_t extra_len, size_t *pem_len)
{
    uint8_t buf[512];
    BIO *b = BIO_new(BIO_s_mem());
    char *mem, *out;
    long n;

    ck_assert_ptr_nonnull(b);
    ck_assert_uint_le(der_len + extra_len, sizeof(buf));
    memcpy(buf, der, der_len);
    if (extra_len > 0)
        memcpy(buf + der_len, extra, extra_len);
    ck_assert_int_gt(PEM_write_bio(b, label, "", buf, (long)(der_len + extra_len)), 0);
    n = BIO_get_mem_data(b, &mem);
    ck_assert_int_gt(n, 0);
    out = malloc((size_t)n);
    ck_assert_ptr_nonnull(out);
    memcpy(out, mem, (size_t)n);
    *pem_len = (size_t)n;
    BIO_free(b);
    return out;
}

START_TEST(test_der_inside_pem)
{
    uint8_t sk[32], pk[32];
    uint8_t *der, *pder;
    size_t der_len, pder_len, pem_len;
    char *pem;

    der = (uint8_t *)slurp("plain.der", &der_len);
    pder = (uint8_t *)slurp("plain.pub.der", &pder_len);

    /* the same DER re-encoded loads (the wrapper is sound) */
    pem = pem_wrap("PRIVATE KEY", der, der_len, NULL, 0, &pem_len);
    ck_assert_int_eq(sv_key1_private_from_pem(pem, pem_len, NULL, 0, sk, pk), SV_OK);
    free(pem);
    /* trailing garbage inside the DER */
    pem = pem_wrap("PRIVATE KEY", der, der_len, (const uint8_t *)"\0", 1, &pem_len);
    ck_assert_int_eq(sv_key1_private_from_pem(pem, pem_len, NULL, 0, sk, pk), SV_ERR_KEY_FORMAT);
    ck_assert(cu_all_zero(sk, 32));
    free(pem);
    pem = pem_wrap("PUBLIC KEY", pder, pder_len, (const uint8_t *)"xyz", 3, &pem_len);
    ck_assert_int_eq(sv_key1_public_from_pem(pem, pem_len, pk), SV_ERR_KEY_FORMAT);
    free(pem);
    /* DER cut short */
    pem = pem_wrap("PRIVATE KEY", der, der_len - 1, NULL, 0, &pem_len);
    ck_assert_int_eq(sv_key1_private_from_pem(pem, pem_len, NULL, 0, sk, pk), SV_ERR_KEY_FORMAT);
    free(pem);
    pem = pem_wrap("PUBLIC KEY", pder, pder_len - 1, NULL, 0, &pem_len);
    ck_assert_int_eq(sv_key1_public_from_pem(pem, pem_len, pk), SV_ERR_KEY_FORMAT);
    free(pem);
    /* the private DER under the public label and vice versa */
    pem = pem_wrap("PUBLIC KEY", der, der_len, NULL, 0, &pem_len);
    ck_assert_int_eq(sv_key1_public_from_pem(pem, pem_len, pk), SV_ERR_KEY_FORMAT);
    free(pem);
    pem = pem_wrap("PRIVATE KEY", pder, pder_len, NULL, 0, &pem_len);
    ck_assert_int_eq(sv_key1_private_from_pem(pem, pem_len, NULL, 0, sk, pk), SV_ERR_KEY_FORMAT);
    free(pem);
    /* an unknown label */
    pem = pem_wrap("X25519 PRIVATE KEY", der, der_len, NULL, 0, &pem_len);
    ck_assert_int_eq(sv_key1_private_from_pem(pem, pem_len, NULL, 0, sk, pk), SV_ERR_KEY_FORMAT);
    free(pem);
    ck_assert_uint_eq(ERR_peek_error(), 0);
    free(der);
    free(pder);
}
END_TEST

START_TEST(test_size_and_io)
{
    uint8_t sk[32], pk[32];
    size_t len;
    char *pem;
    char p[256];

    PRIV_IS("oversized.pem", NULL, SV_ERR_KEY_TOO_LARGE);
    PUB_IS("oversized.pem", SV_ERR_KEY_TOO_LARGE);
    pem = slurp("oversized.pem", &len);
    ck_assert_uint_gt(len, SV_KEYFILE_MAX);
    ck_assert_int_eq(sv_key1_private_from_pem(pem, len, NULL, 0, sk, pk), SV_ERR_KEY_TOO_LARGE);
    /* the same bytes cut to the cap load: only the size was wrong */
    ck_assert_int_eq(sv_key1_private_from_pem(pem, SV_KEYFILE_MAX, NULL, 0, sk, pk), SV_OK);
    free(pem);

    PRIV_IS("does-not-exist.pem", NULL, SV_ERR_KEY_IO);
    PUB_IS("does-not-exist.pub", SV_ERR_KEY_IO);
    PRIV_IS(".", NULL, SV_ERR_KEY_IO); /* a directory */
    PUB_IS(".", SV_ERR_KEY_IO);
    if (geteuid() != 0) { /* root reads anything */
        path_of(p, sizeof(p), "plain.pem");
        ck_assert_int_eq(chmod(p, 0), 0);
        PRIV_IS("plain.pem", NULL, SV_ERR_KEY_IO);
        ck_assert_int_eq(chmod(p, 0600), 0);
    }
    ck_assert_int_eq(sv_key1_private_from_file(NULL, NULL, 0, sk, pk), SV_ERR_INVAL);
    ck_assert_int_eq(sv_key1_private_from_pem(NULL, 0, NULL, 0, sk, pk), SV_ERR_INVAL);
}
END_TEST

/* Fingerprint = SHA-256 of the raw key, as the shell computes it. */
START_TEST(test_fingerprint)
{
    uint8_t sk[32], pk[32];
    char fp[SV_FINGERPRINT_HEX_LEN + 1], want[128], cmd[512];
    FILE *f;

    PUB_IS("plain.pub", SV_OK);
    ck_assert_int_eq(sv_key1_fingerprint(pk, fp), SV_OK);
    ck_assert_uint_eq(strlen(fp), SV_FINGERPRINT_HEX_LEN);
    snprintf(cmd, sizeof(cmd),
             "%s pkey -pubin -in '%s/plain.pub' -outform DER | tail -c 32 | sha256sum",
             openssl_cmd, dir);
    f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(want, sizeof(want), f));
    ck_assert_int_eq(pclose(f), 0);
    want[SV_FINGERPRINT_HEX_LEN] = '\0';
    ck_assert_str_eq(fp, want);
    /* the private key gives the same fingerprint */
    PRIV_IS("plain.pem", NULL, SV_OK);
    ck_assert_int_eq(sv_key1_fingerprint(pk, want), SV_OK);
    ck_assert_str_eq(fp, want);
    /* what it writes is a fingerprint; nothing else is */
    ck_assert(sv_key1_fingerprint_ok(fp));
    want[SV_FINGERPRINT_HEX_LEN - 1] = '\0';
    ck_assert(!sv_key1_fingerprint_ok(want)); /* short */
    memcpy(want, fp, sizeof(fp));
    want[0] = 'A';
    ck_assert(!sv_key1_fingerprint_ok(want)); /* upper case */
    want[0] = 'g';
    ck_assert(!sv_key1_fingerprint_ok(want));
    memcpy(want, fp, sizeof(fp));
    want[SV_FINGERPRINT_HEX_LEN] = '0';
    want[SV_FINGERPRINT_HEX_LEN + 1] = '\0';
    ck_assert(!sv_key1_fingerprint_ok(want)); /* long */
    ck_assert(!sv_key1_fingerprint_ok(""));
    ck_assert(!sv_key1_fingerprint_ok(NULL));
}
END_TEST

/* sv_key1_public_to_pem writes exactly what `openssl pkey -pubout` does. */
START_TEST(test_public_to_pem)
{
    uint8_t pk[32], back[32];
    char out[256], small[100];
    char *file;
    size_t len;

    PUB_IS("plain.pub", SV_OK);
    ck_assert_int_eq(sv_key1_public_to_pem(pk, out, sizeof(out)), SV_OK);
    file = slurp("plain.pub", &len);
    ck_assert_str_eq(out, file);
    free(file);
    ck_assert_int_eq(sv_key1_public_from_pem(out, strlen(out), back), SV_OK);
    ck_assert_mem_eq(back, pk, 32);
    ck_assert_int_eq(sv_key1_public_to_pem(pk, small, sizeof(small)), SV_ERR_INVAL);
    ck_assert_int_eq(sv_key1_public_to_pem(pk, out, 114), SV_OK); /* 113 chars + NUL */
    ck_assert_int_eq(sv_key1_public_to_pem(pk, out, 113), SV_ERR_INVAL);
}
END_TEST

/* ---- the cost of an encrypted key's key derivation ---------------------------
 *
 * Files over a cap are built from their parameters with OpenSSL's ASN.1
 * types and 48 arbitrary bytes of "ciphertext": nothing is derived when
 * they are made, and a loader that derived before refusing would take
 * seconds to hours, which the tests time. Files at a cap are encrypted for
 * real (one derivation to make, one to load). */

static const uint8_t fixed_sk[32] = {
    0x58, 0x1f, 0x3a, 0x0c, 0x97, 0x6e, 0x21, 0xd4, 0x4b, 0x80, 0x13, 0xe5,
    0x6a, 0x2d, 0xf0, 0x39, 0x74, 0x0e, 0xc2, 0x8b, 0x55, 0x1a, 0xb6, 0x63,
    0x09, 0xde, 0x47, 0x92, 0x3c, 0xa8, 0x70, 0x4d};

static double
now_s(void)
{
    struct timespec ts;

    ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The parameters of alg decoded as it. */
static void *
unpack_params(const X509_ALGOR *alg, const ASN1_ITEM *it)
{
    int ptype = V_ASN1_UNDEF;
    const void *pval = NULL;
    void *v;

    X509_ALGOR_get0(NULL, &ptype, &pval, alg);
    ck_assert_int_eq(ptype, V_ASN1_SEQUENCE);
    v = ASN1_item_unpack((const ASN1_STRING *)pval, it);
    ck_assert_ptr_nonnull(v);
    return v;
}

/* Replace alg's parameters (of OID nid) by v encoded as it. */
static void
repack_params(X509_ALGOR *alg, int nid, void *v, const ASN1_ITEM *it)
{
    ASN1_STRING *s = ASN1_item_pack(v, it, NULL);

    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(X509_ALGOR_set0(alg, OBJ_nid2obj(nid), V_ASN1_SEQUENCE, s), 1);
}

/* PBES2 with PBKDF2 (HMAC-SHA256 unless prf), iterations set afterwards to
 * iter, or to -1 when negative is set, so any INTEGER can be given. */
static X509_ALGOR *
pbkdf2_alg(uint64_t iter, int negative, int prf)
{
    X509_ALGOR *alg = PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), 2048, NULL, 0, NULL,
                                        prf ? prf : NID_hmacWithSHA256);
    PBE2PARAM *pbe2;
    PBKDF2PARAM *kp;

    ck_assert_ptr_nonnull(alg);
    pbe2 = unpack_params(alg, ASN1_ITEM_rptr(PBE2PARAM));
    kp = unpack_params(pbe2->keyfunc, ASN1_ITEM_rptr(PBKDF2PARAM));
    if (negative)
        ck_assert_int_eq(ASN1_INTEGER_set(kp->iter, -1), 1);
    else
        ck_assert_int_eq(ASN1_INTEGER_set_uint64(kp->iter, iter), 1);
    repack_params(pbe2->keyfunc, NID_id_pbkdf2, kp, ASN1_ITEM_rptr(PBKDF2PARAM));
    repack_params(alg, NID_pbes2, pbe2, ASN1_ITEM_rptr(PBE2PARAM));
    PBKDF2PARAM_free(kp);
    PBE2PARAM_free(pbe2);
    return alg;
}

/* PBES2 with scrypt of N, r, p (set afterwards: OpenSSL's builder refuses
 * what its decryption would). */
static X509_ALGOR *
scrypt_alg(uint64_t n, uint64_t r, uint64_t p)
{
    X509_ALGOR *alg = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), NULL, 0, NULL, 16384, 8, 1);
    PBE2PARAM *pbe2;
    SCRYPT_PARAMS *sp;

    ck_assert_ptr_nonnull(alg);
    pbe2 = unpack_params(alg, ASN1_ITEM_rptr(PBE2PARAM));
    sp = unpack_params(pbe2->keyfunc, ASN1_ITEM_rptr(SCRYPT_PARAMS));
    ck_assert_int_eq(ASN1_INTEGER_set_uint64(sp->costParameter, n), 1);
    ck_assert_int_eq(ASN1_INTEGER_set_uint64(sp->blockSize, r), 1);
    ck_assert_int_eq(ASN1_INTEGER_set_uint64(sp->parallelizationParameter, p), 1);
    repack_params(pbe2->keyfunc, NID_id_scrypt, sp, ASN1_ITEM_rptr(SCRYPT_PARAMS));
    repack_params(alg, NID_pbes2, pbe2, ASN1_ITEM_rptr(PBE2PARAM));
    SCRYPT_PARAMS_free(sp);
    PBE2PARAM_free(pbe2);
    return alg;
}

/* "ENCRYPTED PRIVATE KEY" PEM of fixed_sk under alg (taken). encrypt: for
 * real, under PASS (one derivation); otherwise arbitrary ciphertext. */
static char *
encrypted_pem(X509_ALGOR *alg, int encrypt, size_t *len)
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, fixed_sk, 32);
    PKCS8_PRIV_KEY_INFO *p8;
    X509_SIG *sig;
    BIO *b = BIO_new(BIO_s_mem());
    char *mem, *out;
    long n;

    ck_assert_ptr_nonnull(k);
    ck_assert_ptr_nonnull(b);
    p8 = EVP_PKEY2PKCS8(k);
    ck_assert_ptr_nonnull(p8);
    if (encrypt) {
        sig = PKCS8_set0_pbe(PASS, (int)strlen(PASS), p8, alg);
        ck_assert_ptr_nonnull(sig);
    } else {
        static const uint8_t junk[48] = { 1, 2, 3 };
        X509_ALGOR *a = NULL;
        ASN1_OCTET_STRING *d = NULL;

        sig = X509_SIG_new();
        ck_assert_ptr_nonnull(sig);
        X509_SIG_getm(sig, &a, &d);
        ck_assert_int_eq(X509_ALGOR_copy(a, alg), 1);
        ck_assert_int_eq(ASN1_OCTET_STRING_set(d, junk, sizeof(junk)), 1);
        X509_ALGOR_free(alg);
    }
    ck_assert_int_eq(PEM_write_bio_PKCS8(b, sig), 1);
    n = BIO_get_mem_data(b, &mem);
    ck_assert_int_gt(n, 0);
    out = malloc((size_t)n);
    ck_assert_ptr_nonnull(out);
    memcpy(out, mem, (size_t)n);
    *len = (size_t)n;
    BIO_free(b);
    X509_SIG_free(sig);
    PKCS8_PRIV_KEY_INFO_free(p8);
    EVP_PKEY_free(k);
    return out;
}

/* Load alg's file with the passphrase and without: want either way, the
 * outputs zeroed, the error queue empty, in well under a second. */
static void
refused_fast(X509_ALGOR *alg, sv_status want, const char *what)
{
    uint8_t sk[32], pk[32];
    size_t len;
    char *pem = encrypted_pem(alg, 0, &len);
    double t0 = now_s(), dt;
    sv_status st;

    memset(sk, 0xa5, sizeof(sk));
    memset(pk, 0xa5, sizeof(pk));
    st = sv_key1_private_from_pem(pem, len, PASS, strlen(PASS), sk, pk);
    ck_assert_msg(st == want, "%s: got %d (%s), want %d", what, (int)st, sv_strerror(st),
                  (int)want);
    ck_assert_msg(cu_all_zero(sk, 32) && cu_all_zero(pk, 32), "%s: outputs not zeroed", what);
    st = sv_key1_private_from_pem(pem, len, NULL, 0, sk, pk);
    ck_assert_msg(st == want, "%s without a passphrase: got %d (%s)", what, (int)st,
                  sv_strerror(st));
    dt = now_s() - t0;
    ck_assert_msg(dt < 1.0, "%s: %.2f s: derived before refusing?", what, dt);
    ck_assert_msg(ERR_peek_error() == 0, "%s: OpenSSL error queue not empty", what);
    free(pem);
}

START_TEST(test_kdf_over_the_caps)
{
    X509_ALGOR *alg;

    /* PBKDF2: one past the cap, 2^31-1, 2^40, 2^64-1, 0, -1 */
    alg = PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), SV_KEYFILE_PBKDF2_ITER_MAX + 1, NULL, 0, NULL,
                            NID_hmacWithSHA256);
    ck_assert_ptr_nonnull(alg);
    refused_fast(alg, SV_ERR_KEY_KDF, "PBKDF2 cap + 1");
    alg = PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), INT_MAX, NULL, 0, NULL, NID_hmacWithSHA512);
    ck_assert_ptr_nonnull(alg);
    refused_fast(alg, SV_ERR_KEY_KDF, "PBKDF2 2^31-1");
    refused_fast(pbkdf2_alg(UINT64_C(1) << 40, 0, 0), SV_ERR_KEY_KDF, "PBKDF2 2^40");
    refused_fast(pbkdf2_alg(UINT64_MAX, 0, 0), SV_ERR_KEY_KDF, "PBKDF2 2^64-1");
    refused_fast(pbkdf2_alg(0, 0, 0), SV_ERR_KEY_KDF, "PBKDF2 0");
    refused_fast(pbkdf2_alg(0, 1, 0), SV_ERR_KEY_KDF, "PBKDF2 -1");
    /* a PRF outside SHA-1 and SHA-2 */
    refused_fast(pbkdf2_alg(2048, 0, NID_hmacWithMD5), SV_ERR_KEY_KDF, "PBKDF2 HMAC-MD5");
    /* scrypt: each parameter over its cap, memory over its cap, huge p */
    refused_fast(scrypt_alg(SV_KEYFILE_SCRYPT_N_MAX * 2, 1, 1), SV_ERR_KEY_KDF, "scrypt N");
    refused_fast(scrypt_alg(16, SV_KEYFILE_SCRYPT_R_MAX + 1, 1), SV_ERR_KEY_KDF, "scrypt r");
    refused_fast(scrypt_alg(16, 1, SV_KEYFILE_SCRYPT_P_MAX + 1), SV_ERR_KEY_KDF, "scrypt p");
    refused_fast(scrypt_alg(UINT64_C(1) << 15, 8, 1), SV_ERR_KEY_KDF, "scrypt 32 MiB + 3 KiB");
    refused_fast(scrypt_alg(SV_KEYFILE_SCRYPT_N_MAX, SV_KEYFILE_SCRYPT_R_MAX,
                            SV_KEYFILE_SCRYPT_P_MAX), SV_ERR_KEY_KDF, "scrypt N r p at caps");
    refused_fast(scrypt_alg(2, 1, UINT64_C(1) << 62), SV_ERR_KEY_KDF, "scrypt p 2^62");
    refused_fast(scrypt_alg(UINT64_MAX, UINT64_MAX, UINT64_MAX), SV_ERR_KEY_KDF, "scrypt max");
    refused_fast(scrypt_alg(0, 8, 1), SV_ERR_KEY_KDF, "scrypt N 0");
    refused_fast(scrypt_alg(3, 1, 1), SV_ERR_KEY_KDF, "scrypt N 3");
    refused_fast(scrypt_alg(16383, 8, 1), SV_ERR_KEY_KDF, "scrypt N 2^14-1");
}
END_TEST

START_TEST(test_kdf_other_schemes)
{
    uint8_t sk[32], pk[32];
    X509_ALGOR *alg;
    PBE2PARAM *pbe2;

    /* PKCS#12's PBES1, as `openssl pkcs8 -v1` writes and as built here with
     * a huge iteration count */
    PRIV_IS("pbes1.pem", PASS, SV_ERR_KEY_KDF);
    PRIV_IS("pbes1.pem", NULL, SV_ERR_KEY_KDF);
    alg = PKCS5_pbe_set(NID_pbe_WithSHA1And3_Key_TripleDES_CBC, INT_MAX, NULL, 0);
    ck_assert_ptr_nonnull(alg);
    refused_fast(alg, SV_ERR_KEY_KDF, "PBES1 2^31-1");
    /* PBES2 whose key derivation is neither PBKDF2 nor scrypt */
    alg = PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), 2048, NULL, 0, NULL, NID_hmacWithSHA256);
    ck_assert_ptr_nonnull(alg);
    pbe2 = unpack_params(alg, ASN1_ITEM_rptr(PBE2PARAM));
    ck_assert_int_eq(X509_ALGOR_set0(pbe2->keyfunc, OBJ_txt2obj("1.2.840.113549.1.5.99", 1),
                                     V_ASN1_UNDEF, NULL), 1);
    repack_params(alg, NID_pbes2, pbe2, ASN1_ITEM_rptr(PBE2PARAM));
    PBE2PARAM_free(pbe2);
    refused_fast(alg, SV_ERR_KEY_KDF, "PBES2 with an unknown key derivation");
    alg = PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), 2048, NULL, 0, NULL, NID_hmacWithSHA256);
    ck_assert_ptr_nonnull(alg);
    pbe2 = unpack_params(alg, ASN1_ITEM_rptr(PBE2PARAM));
    ck_assert_int_eq(X509_ALGOR_set0(pbe2->keyfunc, OBJ_nid2obj(NID_sha256), V_ASN1_NULL,
                                     NULL), 1);
    repack_params(alg, NID_pbes2, pbe2, ASN1_ITEM_rptr(PBE2PARAM));
    PBE2PARAM_free(pbe2);
    refused_fast(alg, SV_ERR_KEY_KDF, "PBES2 with a digest for key derivation");
    /* PBKDF2 whose parameters are no SEQUENCE: malformed */
    alg = PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), 2048, NULL, 0, NULL, NID_hmacWithSHA256);
    ck_assert_ptr_nonnull(alg);
    pbe2 = unpack_params(alg, ASN1_ITEM_rptr(PBE2PARAM));
    ck_assert_int_eq(X509_ALGOR_set0(pbe2->keyfunc, OBJ_nid2obj(NID_id_pbkdf2), V_ASN1_NULL,
                                     NULL), 1);
    repack_params(alg, NID_pbes2, pbe2, ASN1_ITEM_rptr(PBE2PARAM));
    PBE2PARAM_free(pbe2);
    refused_fast(alg, SV_ERR_KEY_FORMAT, "PBKDF2 parameters NULL");
}
END_TEST

/* At each cap a real file loads (and a wrong passphrase is still told). */
START_TEST(test_kdf_at_the_caps)
{
    uint8_t sk[32], pk[32];
    size_t len;
    char *pem;
    struct {
        X509_ALGOR *alg;
        const char *what;
    } at[4];
    int i;

    at[0].alg = PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), SV_KEYFILE_PBKDF2_ITER_MAX, NULL, 0, NULL,
                                  NID_hmacWithSHA256);
    at[0].what = "PBKDF2 at its cap";
    at[1].alg = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), NULL, 0, NULL, 16384, 8,
                                      SV_KEYFILE_SCRYPT_P_MAX);
    at[1].what = "scrypt p at its cap";
    /* 128 * 15 * (16384 + 1 + 2) bytes: 31.5 MiB */
    at[2].alg = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), NULL, 0, NULL, 16384, 15, 1);
    at[2].what = "scrypt memory near its cap";
    at[3].alg = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), NULL, 0, NULL, 2,
                                      SV_KEYFILE_SCRYPT_R_MAX, 1);
    at[3].what = "scrypt r at its cap";
    for (i = 0; i < 4; i++) {
        ck_assert_ptr_nonnull(at[i].alg);
        pem = encrypted_pem(at[i].alg, 1, &len);
        memset(sk, 0xa5, sizeof(sk));
        ck_assert_msg(sv_key1_private_from_pem(pem, len, PASS, strlen(PASS), sk, pk) == SV_OK,
                      "%s does not load", at[i].what);
        ck_assert_mem_eq(sk, fixed_sk, 32);
        if (i > 0) /* one more derivation at the PBKDF2 cap costs seconds */
            ck_assert_int_eq(sv_key1_private_from_pem(pem, len, "wrong", 5, sk, pk),
                             SV_ERR_KEY_PASSPHRASE);
        free(pem);
    }
    ck_assert_uint_eq(ERR_peek_error(), 0);
    /* what the openssl tool writes: PBKDF2 (genpkey -aes256), scrypt (pkcs8 -scrypt) */
    PRIV_IS("enc.pem", PASS, SV_OK);
    PRIV_IS("scrypt.pem", PASS, SV_OK);
    PRIV_IS("scrypt.pem", "wrong", SV_ERR_KEY_PASSPHRASE);
    PRIV_IS("scrypt.pem", NULL, SV_ERR_KEY_NEED_PASS);
}
END_TEST

/* The status text names the caps the header defines. */
START_TEST(test_kdf_caps_in_the_message)
{
    const char *m = sv_strerror(SV_ERR_KEY_KDF);
    char want[64];

    snprintf(want, sizeof(want), "at most %d iterations", SV_KEYFILE_PBKDF2_ITER_MAX);
    ck_assert_ptr_nonnull(strstr(m, want));
    ck_assert_uint_eq(SV_KEYFILE_SCRYPT_N_MAX, 1UL << 20);
    ck_assert_ptr_nonnull(strstr(m, "N at most 2^20"));
    snprintf(want, sizeof(want), "r %d, p %d, memory %lu MiB", SV_KEYFILE_SCRYPT_R_MAX,
             SV_KEYFILE_SCRYPT_P_MAX, (unsigned long)(SV_KEYFILE_SCRYPT_MEM_MAX >> 20));
    ck_assert_ptr_nonnull(strstr(m, want));
}
END_TEST

static Suite *
keyfile_suite(void)
{
    Suite *s = suite_create("keyfile");
    TCase *tc = tcase_create("keyfile");
    TCase *kdf = tcase_create("kdf");

    tcase_add_test(tc, test_plain_private);
    tcase_add_test(tc, test_encrypted_private);
    tcase_add_test(tc, test_wrong_types);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_der_inside_pem);
    tcase_add_test(tc, test_size_and_io);
    tcase_add_test(tc, test_fingerprint);
    tcase_add_test(tc, test_public_to_pem);
    suite_add_tcase(s, tc);
    /* the derivations at the caps take seconds, more on a busy machine */
    tcase_set_timeout(kdf, 300);
    tcase_add_test(kdf, test_kdf_over_the_caps);
    tcase_add_test(kdf, test_kdf_other_schemes);
    tcase_add_test(kdf, test_kdf_at_the_caps);
    tcase_add_test(kdf, test_kdf_caps_in_the_message);
    suite_add_tcase(s, kdf);
    return s;
}

int
main(void)
{
    SRunner *sr;
    int failed;

    /* the loaders put private material in the secure heap when there is one */
    (void)sv_secret_init(1 << 16);
    make_fixtures();
    sr = srunner_create(keyfile_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    remove_fixtures();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
