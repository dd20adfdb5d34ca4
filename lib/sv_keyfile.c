/*
 * sv_keyfile.c - key1 files as the stock OpenSSL tool writes them.
 *
 * Private:  one PEM block "PRIVATE KEY" (PKCS#8 PrivateKeyInfo) or
 *           "ENCRYPTED PRIVATE KEY" (PKCS#8 EncryptedPrivateKeyInfo, as
 *           `openssl genpkey -aes256` writes), algorithm X25519.
 * Public:   one PEM block "PUBLIC KEY" (SubjectPublicKeyInfo), X25519.
 *
 * Only whitespace may surround the block, the DER must fill the block
 * exactly, and the block must carry no PEM headers. An encrypted key's
 * key-derivation parameters are read with OpenSSL's own ASN.1 types and
 * checked against the caps of sv_keyfile.h before OpenSSL derives anything
 * (kdf_check), so a crafted file cannot make a load cost minutes of CPU or
 * gigabytes of memory. Private material is decoded into OpenSSL's secure
 * heap (PEM_FLAG_SECURE) and every copy is released with a clearing free. Failures drain the OpenSSL error queue at
 * debug level: the status code is the error, the caller logs it once.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

#include "sv_hex.h"
#include "sv_keyfile.h"
#include "sv_log.h"
#include "sv_secret.h"

#define PEM_PRIV "PRIVATE KEY"
#define PEM_ENC_PRIV "ENCRYPTED PRIVATE KEY"
#define PEM_PUB "PUBLIC KEY"

/* PEM labels that name some key other than the kind we are asked for. */
static const char *const other_key_labels[] = {
    "RSA PRIVATE KEY", "RSA PUBLIC KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY",
    "ANY PRIVATE KEY", "X9.42 DH PRIVATE KEY", "DH PRIVATE KEY", "ENCRYPTED PRIVATE KEY",
    "PRIVATE KEY", "PUBLIC KEY", "EC PARAMETERS", "DH PARAMETERS", NULL
};

static int
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
all_space(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (!is_space(p[i]))
            return 0;
    return 1;
}

/* SV_ERR_KEY_TYPE for a known key label, else SV_ERR_KEY_FORMAT. */
static sv_status
label_status(const char *name)
{
    size_t i;

    for (i = 0; other_key_labels[i] != NULL; i++)
        if (strcmp(name, other_key_labels[i]) == 0)
            return SV_ERR_KEY_TYPE;
    return SV_ERR_KEY_FORMAT;
}

/*
 * Decode the single PEM block of pem[0..pem_len). On success *name and
 * *data (DER, *data_len bytes) are allocated in secure memory when secure
 * is set (free with OPENSSL_secure_clear_free) and with OPENSSL_malloc
 * otherwise.
 */
static sv_status
pem_block(const char *pem, size_t pem_len, int secure, char **name,
          unsigned char **data, long *data_len)
{
    BIO *bio = NULL;
    char *header = NULL;
    const char *rest;
    long rest_len;
    size_t lead = 0;
    sv_status st = SV_ERR_KEY_FORMAT;

    *name = NULL;
    *data = NULL;
    *data_len = 0;
    if (pem == NULL)
        return SV_ERR_INVAL;
    if (pem_len > SV_KEYFILE_MAX)
        return SV_ERR_KEY_TOO_LARGE;
    while (lead < pem_len && is_space(pem[lead]))
        lead++;
    if (pem_len - lead < 11 || memcmp(pem + lead, "-----BEGIN ", 11) != 0)
        return SV_ERR_KEY_FORMAT;

    if ((bio = BIO_new_mem_buf(pem + lead, (int)(pem_len - lead))) == NULL) {
        st = SV_ERR_NOMEM;
        goto out;
    }
    if (!PEM_read_bio_ex(bio, name, &header, data, data_len,
                         PEM_FLAG_EAY_COMPATIBLE | (secure ? PEM_FLAG_SECURE : 0)))
        goto out; /* no END line, bad base64, truncated */
    if (header != NULL && header[0] != '\0')
        goto out; /* legacy "Proc-Type" encryption: not what openssl genpkey writes */
    rest_len = BIO_get_mem_data(bio, &rest);
    if (rest_len < 0 || (rest_len > 0 && !all_space(rest, (size_t)rest_len)))
        goto out; /* a second block or trailing garbage */
    if (*data_len <= 0)
        goto out;
    st = SV_OK;

out:
    if (header != NULL) {
        if (secure)
            OPENSSL_secure_free(header);
        else
            OPENSSL_free(header);
    }
    if (st != SV_OK) {
        if (secure) {
            OPENSSL_secure_free(*name);
            OPENSSL_secure_clear_free(*data, *data_len > 0 ? (size_t)*data_len : 0);
        } else {
            OPENSSL_free(*name);
            OPENSSL_free(*data);
        }
        *name = NULL;
        *data = NULL;
        *data_len = 0;
    }
    BIO_free(bio);
    return st;
}

/* PRFs of PBKDF2 we accept: HMAC with SHA-1 (the default when the
 * parameters name none) or SHA-2, whose cost per iteration is alike. */
static int
pbkdf2_prf_ok(int nid)
{
    switch (nid) {
    case NID_hmacWithSHA1:
    case NID_hmacWithSHA224:
    case NID_hmacWithSHA256:
    case NID_hmacWithSHA384:
    case NID_hmacWithSHA512:
    case NID_hmacWithSHA512_224:
    case NID_hmacWithSHA512_256:
        return 1;
    default:
        return 0;
    }
}

/* a non-negative INTEGER that fits 64 bits, into *v; 0 otherwise */
static int
asn1_u64(const ASN1_INTEGER *a, uint64_t *v)
{
    return a != NULL && ASN1_INTEGER_get_uint64(v, a) == 1;
}

/* a name for log lines (an OID OpenSSL does not know is NID_undef) */
static const char *
nid_name(int nid)
{
    const char *sn = OBJ_nid2sn(nid);

    return sn != NULL ? sn : "unknown";
}

static int
algor_nid(const X509_ALGOR *alg)
{
    const ASN1_OBJECT *oid = NULL;

    X509_ALGOR_get0(&oid, NULL, NULL, alg);
    return oid != NULL ? OBJ_obj2nid(oid) : NID_undef;
}

static sv_status
pbkdf2_check(const X509_ALGOR *keyfunc)
{
    PBKDF2PARAM *kp = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM),
                                                keyfunc->parameter);
    uint64_t iter = 0;
    int prf = NID_hmacWithSHA1;
    sv_status st = SV_ERR_KEY_KDF;

    if (kp == NULL) {
        sv_log(SV_LOG_DEBUG, "keyfile: PBKDF2 parameters do not decode");
        return SV_ERR_KEY_FORMAT;
    }
    if (kp->prf != NULL)
        prf = algor_nid(kp->prf);
    if (!asn1_u64(kp->iter, &iter) || iter == 0 || iter > SV_KEYFILE_PBKDF2_ITER_MAX)
        sv_log(SV_LOG_DEBUG, "keyfile: PBKDF2 iteration count out of 1..%d",
               SV_KEYFILE_PBKDF2_ITER_MAX);
    else if (!pbkdf2_prf_ok(prf))
        sv_log(SV_LOG_DEBUG, "keyfile: PBKDF2 with an unsupported PRF (%s)", nid_name(prf));
    else
        st = SV_OK;
    PBKDF2PARAM_free(kp);
    return st;
}

static sv_status
scrypt_check(const X509_ALGOR *keyfunc)
{
#ifndef OPENSSL_NO_SCRYPT
    SCRYPT_PARAMS *sp = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(SCRYPT_PARAMS),
                                                  keyfunc->parameter);
    uint64_t n = 0, r = 0, p = 0;
    sv_status st = SV_ERR_KEY_KDF;

    if (sp == NULL) {
        sv_log(SV_LOG_DEBUG, "keyfile: scrypt parameters do not decode");
        return SV_ERR_KEY_FORMAT;
    }
    /* each bounded first, so that the product cannot overflow */
    if (!asn1_u64(sp->costParameter, &n) || !asn1_u64(sp->blockSize, &r)
        || !asn1_u64(sp->parallelizationParameter, &p) || n < 2 || r == 0 || p == 0
        || n > SV_KEYFILE_SCRYPT_N_MAX || r > SV_KEYFILE_SCRYPT_R_MAX
        || p > SV_KEYFILE_SCRYPT_P_MAX)
        sv_log(SV_LOG_DEBUG, "keyfile: scrypt parameters out of N 2..%lu, r 1..%d, p 1..%d",
               (unsigned long)SV_KEYFILE_SCRYPT_N_MAX, SV_KEYFILE_SCRYPT_R_MAX,
               SV_KEYFILE_SCRYPT_P_MAX);
    else if ((n & (n - 1)) != 0) /* OpenSSL would fail it as a wrong passphrase */
        sv_log(SV_LOG_DEBUG, "keyfile: scrypt N is not a power of two");
    else if (128 * r * (n + p + 2) > SV_KEYFILE_SCRYPT_MEM_MAX)
        sv_log(SV_LOG_DEBUG, "keyfile: scrypt would need %llu bytes, over %lu",
               (unsigned long long)(128 * r * (n + p + 2)),
               (unsigned long)SV_KEYFILE_SCRYPT_MEM_MAX);
    else
        st = SV_OK;
    SCRYPT_PARAMS_free(sp);
    return st;
#else
    (void)keyfunc;
    sv_log(SV_LOG_DEBUG, "keyfile: scrypt is not available in this OpenSSL");
    return SV_ERR_KEY_KDF;
#endif
}

/*
 * The key derivation an EncryptedPrivateKeyInfo asks for, checked before
 * anything is derived: PBES2 with PBKDF2 or scrypt within the caps of
 * sv_keyfile.h. SV_OK; SV_ERR_KEY_KDF for another scheme (PBES1, PKCS#12
 * PBE), another KDF or PRF, or a cost over a cap; SV_ERR_KEY_FORMAT when
 * the parameters do not decode.
 */
static sv_status
kdf_check(const X509_SIG *sig)
{
    const X509_ALGOR *alg = NULL;
    PBE2PARAM *pbe2;
    sv_status st;
    int nid;

    X509_SIG_get0(sig, &alg, NULL);
    if (alg == NULL)
        return SV_ERR_KEY_FORMAT;
    if ((nid = algor_nid(alg)) != NID_pbes2) {
        sv_log(SV_LOG_DEBUG, "keyfile: encryption scheme %s is not PBES2", nid_name(nid));
        return SV_ERR_KEY_KDF;
    }
    if ((pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter)) == NULL
        || pbe2->keyfunc == NULL) {
        PBE2PARAM_free(pbe2);
        sv_log(SV_LOG_DEBUG, "keyfile: PBES2 parameters do not decode");
        return SV_ERR_KEY_FORMAT;
    }
    switch (nid = algor_nid(pbe2->keyfunc)) {
    case NID_id_pbkdf2:
        st = pbkdf2_check(pbe2->keyfunc);
        break;
    case NID_id_scrypt:
        st = scrypt_check(pbe2->keyfunc);
        break;
    default:
        sv_log(SV_LOG_DEBUG, "keyfile: key derivation %s is neither PBKDF2 nor scrypt",
               nid_name(nid));
        st = SV_ERR_KEY_KDF;
        break;
    }
    PBE2PARAM_free(pbe2);
    return st;
}

/* Raw private and public key of an X25519 EVP_PKEY. */
static sv_status
raw_x25519(const EVP_PKEY *k, uint8_t sk[SV_X25519_LEN], uint8_t pk[SV_X25519_LEN])
{
    size_t skl = SV_X25519_LEN, pkl = SV_X25519_LEN;

    if (!EVP_PKEY_is_a(k, "X25519"))
        return SV_ERR_KEY_TYPE;
    if (sk != NULL && (EVP_PKEY_get_raw_private_key(k, sk, &skl) != 1 || skl != SV_X25519_LEN))
        return SV_ERR_KEY_FORMAT;
    if (EVP_PKEY_get_raw_public_key(k, pk, &pkl) != 1 || pkl != SV_X25519_LEN)
        return SV_ERR_KEY_FORMAT;
    return SV_OK;
}

sv_status
sv_key1_private_from_pem(const char *pem, size_t pem_len, const char *pass, size_t pass_len,
                         uint8_t sk[SV_X25519_LEN], uint8_t pk[SV_X25519_LEN])
{
    char *name = NULL;
    unsigned char *der = NULL;
    const unsigned char *p;
    long der_len = 0;
    X509_SIG *sig = NULL;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    const ASN1_OBJECT *alg = NULL;
    EVP_PKEY *k = NULL;
    sv_status st;

    if (sk == NULL || pk == NULL)
        return SV_ERR_INVAL;
    sv_cleanse(sk, SV_X25519_LEN);
    sv_cleanse(pk, SV_X25519_LEN);
    if (pass_len > INT_MAX)
        return SV_ERR_INVAL;

    if ((st = pem_block(pem, pem_len, 1, &name, &der, &der_len)) != SV_OK)
        goto out;
    p = der;
    st = SV_ERR_KEY_FORMAT;
    if (strcmp(name, PEM_ENC_PRIV) == 0) {
        if ((sig = d2i_X509_SIG(NULL, &p, der_len)) == NULL || p != der + der_len)
            goto out;
        /* what the derivation would cost, before the passphrase matters */
        if ((st = kdf_check(sig)) != SV_OK)
            goto out;
        st = SV_ERR_KEY_FORMAT;
        if (pass == NULL) {
            st = SV_ERR_KEY_NEED_PASS;
            goto out;
        }
        /* wrong passphrase: bad padding or undecodable plaintext, both NULL */
        if ((p8 = PKCS8_decrypt(sig, pass, (int)pass_len)) == NULL) {
            st = SV_ERR_KEY_PASSPHRASE;
            goto out;
        }
    } else if (strcmp(name, PEM_PRIV) == 0) {
        if ((p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, der_len)) == NULL || p != der + der_len)
            goto out;
    } else {
        st = label_status(name);
        goto out;
    }

    if (!PKCS8_pkey_get0(&alg, NULL, NULL, NULL, p8))
        goto out;
    if (OBJ_obj2nid(alg) != NID_X25519) {
        st = SV_ERR_KEY_TYPE;
        goto out;
    }
    if ((k = EVP_PKCS82PKEY(p8)) == NULL)
        goto out; /* an X25519 OID with a malformed key inside */
    st = raw_x25519(k, sk, pk);

out:
    /* PKCS8_PRIV_KEY_INFO_free cleanses the key octets; EVP_PKEY_free
     * clear-frees the secure-heap private key */
    PKCS8_PRIV_KEY_INFO_free(p8);
    X509_SIG_free(sig);
    EVP_PKEY_free(k);
    OPENSSL_secure_free(name);
    OPENSSL_secure_clear_free(der, der_len > 0 ? (size_t)der_len : 0);
    if (st != SV_OK) {
        sv_cleanse(sk, SV_X25519_LEN);
        sv_cleanse(pk, SV_X25519_LEN);
        sv_log_openssl(SV_LOG_DEBUG, "keyfile: private key refused");
    } else {
        ERR_clear_error();
    }
    return st;
}

sv_status
sv_key1_public_from_pem(const char *pem, size_t pem_len, uint8_t pk[SV_X25519_LEN])
{
    char *name = NULL;
    unsigned char *der = NULL;
    const unsigned char *p;
    long der_len = 0;
    X509_PUBKEY *xpk = NULL;
    ASN1_OBJECT *alg = NULL;
    EVP_PKEY *k;
    sv_status st;

    if (pk == NULL)
        return SV_ERR_INVAL;
    sv_cleanse(pk, SV_X25519_LEN);

    if ((st = pem_block(pem, pem_len, 0, &name, &der, &der_len)) != SV_OK)
        goto out;
    if (strcmp(name, PEM_PUB) != 0) {
        st = label_status(name);
        goto out;
    }
    p = der;
    st = SV_ERR_KEY_FORMAT;
    if ((xpk = d2i_X509_PUBKEY(NULL, &p, der_len)) == NULL || p != der + der_len)
        goto out;
    if (!X509_PUBKEY_get0_param(&alg, NULL, NULL, NULL, xpk))
        goto out;
    if (OBJ_obj2nid(alg) != NID_X25519) {
        st = SV_ERR_KEY_TYPE;
        goto out;
    }
    if ((k = X509_PUBKEY_get0(xpk)) == NULL) /* owned by xpk */
        goto out;
    st = raw_x25519(k, NULL, pk);

out:
    X509_PUBKEY_free(xpk);
    OPENSSL_free(name);
    OPENSSL_free(der);
    if (st != SV_OK) {
        sv_cleanse(pk, SV_X25519_LEN);
        sv_log_openssl(SV_LOG_DEBUG, "keyfile: public key refused");
    } else {
        ERR_clear_error();
    }
    return st;
}

/*
 * Read a whole key file into secret memory (it may be an unencrypted
 * private key). Refuses non-regular files and anything over SV_KEYFILE_MAX,
 * checking both the size fstat reports and what read() returns.
 * On success the caller owns *buf (SV_KEYFILE_MAX + 1 bytes, sv_secret_free).
 */
static sv_status
read_key_file(const char *path, char **buf, size_t *len)
{
    struct stat sb;
    char *b = NULL;
    size_t n = 0;
    ssize_t r;
    int fd = -1;
    sv_status st = SV_ERR_KEY_IO;

    *buf = NULL;
    *len = 0;
    if (path == NULL)
        return SV_ERR_INVAL;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        sv_log(SV_LOG_DEBUG, "keyfile: cannot open %s (errno %d)", path, errno);
        return SV_ERR_KEY_IO;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        sv_log(SV_LOG_DEBUG, "keyfile: %s is not a regular file", path);
        goto out;
    }
    if (sb.st_size > SV_KEYFILE_MAX) {
        st = SV_ERR_KEY_TOO_LARGE;
        goto out;
    }
    if ((b = sv_secret_alloc(SV_KEYFILE_MAX + 1)) == NULL) {
        st = SV_ERR_NOMEM;
        goto out;
    }
    /* read one byte past the cap so a file that grew is noticed */
    while (n < SV_KEYFILE_MAX + 1) {
        r = read(fd, b + n, SV_KEYFILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            sv_log(SV_LOG_DEBUG, "keyfile: cannot read %s (errno %d)", path, errno);
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > SV_KEYFILE_MAX) {
        st = SV_ERR_KEY_TOO_LARGE;
        goto out;
    }
    *buf = b;
    *len = n;
    b = NULL;
    st = SV_OK;

out:
    sv_secret_free(b, SV_KEYFILE_MAX + 1);
    close(fd);
    return st;
}

sv_status
sv_key1_private_from_file(const char *path, const char *pass, size_t pass_len,
                          uint8_t sk[SV_X25519_LEN], uint8_t pk[SV_X25519_LEN])
{
    char *buf = NULL;
    size_t len = 0;
    sv_status st;

    if (sk == NULL || pk == NULL)
        return SV_ERR_INVAL;
    if ((st = read_key_file(path, &buf, &len)) != SV_OK) {
        sv_cleanse(sk, SV_X25519_LEN);
        sv_cleanse(pk, SV_X25519_LEN);
        return st;
    }
    st = sv_key1_private_from_pem(buf, len, pass, pass_len, sk, pk);
    sv_secret_free(buf, SV_KEYFILE_MAX + 1);
    return st;
}

sv_status
sv_key1_public_from_file(const char *path, uint8_t pk[SV_X25519_LEN])
{
    char *buf = NULL;
    size_t len = 0;
    sv_status st;

    if (pk == NULL)
        return SV_ERR_INVAL;
    if ((st = read_key_file(path, &buf, &len)) != SV_OK) {
        sv_cleanse(pk, SV_X25519_LEN);
        return st;
    }
    st = sv_key1_public_from_pem(buf, len, pk);
    sv_secret_free(buf, SV_KEYFILE_MAX + 1);
    return st;
}

sv_status
sv_key1_public_to_pem(const uint8_t pk[SV_X25519_LEN], char *out, size_t out_len)
{
    EVP_PKEY *k = NULL;
    BIO *bio = NULL;
    char *mem;
    long n;
    sv_status st = SV_ERR_INTERNAL;

    if (pk == NULL || out == NULL || out_len == 0)
        return SV_ERR_INVAL;
    out[0] = '\0';
    if ((k = EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, pk, SV_X25519_LEN)) == NULL
        || (bio = BIO_new(BIO_s_mem())) == NULL || !PEM_write_bio_PUBKEY(bio, k))
        goto out;
    n = BIO_get_mem_data(bio, &mem);
    if (n <= 0)
        goto out;
    if ((size_t)n >= out_len) {
        st = SV_ERR_INVAL;
        goto out;
    }
    memcpy(out, mem, (size_t)n);
    out[n] = '\0';
    st = SV_OK;

out:
    if (st == SV_ERR_INTERNAL)
        sv_log_openssl(SV_LOG_ERR, "keyfile: writing a public key");
    BIO_free(bio);
    EVP_PKEY_free(k);
    return st;
}

sv_status
sv_key1_fingerprint(const uint8_t pk[SV_X25519_LEN], char out[SV_FINGERPRINT_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdl = 0;

    if (pk == NULL || out == NULL)
        return SV_ERR_INVAL;
    if (!EVP_Digest(pk, SV_X25519_LEN, md, &mdl, EVP_sha256(), NULL)
        || mdl * 2 != SV_FINGERPRINT_HEX_LEN) {
        sv_log_openssl(SV_LOG_ERR, "keyfile: SHA-256");
        out[0] = '\0';
        return SV_ERR_INTERNAL;
    }
    sv_hex_encode(md, mdl, out);
    return SV_OK;
}

int
sv_key1_fingerprint_ok(const char *s)
{
    size_t i;

    if (s == NULL || strlen(s) != SV_FINGERPRINT_HEX_LEN)
        return 0;
    for (i = 0; i < SV_FINGERPRINT_HEX_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}
