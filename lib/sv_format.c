/*
 * sv_format.c - SplitVault's stored format: info and aad strings, field
 * names, uuids, and the two envelopes (datum, wrapped key2a).
 *
 * This is the only place the strings of docs/design.md "Stored format" are
 * built. Opening functions return SV_ERR_OPEN for every failure, argument
 * errors included, and leave their output zeroed: callers get no oracle.
 */
#include "config.h"

#include <string.h>

#include <openssl/rand.h>

#include "sv_format.h"
#include "sv_hex.h"
#include "sv_log.h"
#include "sv_secret.h"

int
sv_field_name_valid(const char *name, size_t len)
{
    size_t i;

    if (name == NULL || len == 0 || len > SV_FIELD_MAX)
        return 0;
    for (i = 0; i < len; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Length of a NUL-terminated field name if valid, else 0. */
static size_t
field_len(const char *field)
{
    size_t n;

    if (field == NULL)
        return 0;
    n = strnlen(field, SV_FIELD_MAX + 1);
    return sv_field_name_valid(field, n) ? n : 0;
}

/* The canonical text form: hex groups of these byte counts, dash-joined. */
static const size_t uuid_groups[] = { 4, 2, 2, 2, 6 };

void
sv_uuid_format(const uint8_t uuid[SV_UUID_LEN], char out[SV_UUID_STR_LEN + 1])
{
    size_t g, i = 0, o = 0;

    for (g = 0; g < sizeof(uuid_groups) / sizeof(uuid_groups[0]); g++) {
        if (g > 0)
            out[o++] = '-';
        sv_hex_encode(uuid + i, uuid_groups[g], out + o);
        i += uuid_groups[g];
        o += 2 * uuid_groups[g];
    }
    out[o] = '\0';
}

sv_status
sv_uuid_parse(const char *s, size_t len, uint8_t uuid[SV_UUID_LEN])
{
    uint8_t tmp[SV_UUID_LEN];
    size_t g, i = 0, o = 0;

    if (s == NULL || uuid == NULL || len != SV_UUID_STR_LEN)
        return SV_ERR_INVAL;
    for (g = 0; g < sizeof(uuid_groups) / sizeof(uuid_groups[0]); g++) {
        if (g > 0 && s[o++] != '-')
            return SV_ERR_INVAL;
        if (sv_hex_decode(s + o, 2 * uuid_groups[g], tmp + i, uuid_groups[g]) != SV_OK)
            return SV_ERR_INVAL;
        i += uuid_groups[g];
        o += 2 * uuid_groups[g];
    }
    memcpy(uuid, tmp, SV_UUID_LEN);
    return SV_OK;
}

/* RFC 9562 version 4: 122 random bits, version nibble 4, variant 10. */
sv_status
sv_uuid_generate(uint8_t uuid[SV_UUID_LEN])
{
    if (uuid == NULL)
        return SV_ERR_INVAL;
    if (RAND_bytes(uuid, SV_UUID_LEN) != 1) {
        sv_log_openssl(SV_LOG_ERR, "format: RAND_bytes for a uuid");
        return SV_ERR_INTERNAL;
    }
    uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);
    uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
    return SV_OK;
}

/* "<uuid>/<field>" into out (no NUL yet); returns its length or 0. */
static size_t
aad_prefix(const uint8_t uuid[SV_UUID_LEN], const char *field, char out[SV_AAD_MAX])
{
    size_t fl = field_len(field);

    if (uuid == NULL || out == NULL || fl == 0)
        return 0;
    sv_uuid_format(uuid, out);
    out[SV_UUID_STR_LEN] = '/';
    memcpy(out + SV_UUID_STR_LEN + 1, field, fl);
    return SV_UUID_STR_LEN + 1 + fl;
}

size_t
sv_aad_datum(const uint8_t uuid[SV_UUID_LEN], const char *field, char out[SV_AAD_MAX])
{
    size_t n = aad_prefix(uuid, field, out);

    if (n > 0)
        out[n] = '\0';
    return n;
}

size_t
sv_aad_key2a(const uint8_t uuid[SV_UUID_LEN], const char *field, uint64_t share_id,
             char out[SV_AAD_MAX])
{
    char digits[20];
    size_t n = aad_prefix(uuid, field, out), d = 0;

    if (n == 0)
        return 0;
    do {
        digits[d++] = (char)('0' + share_id % 10);
        share_id /= 10;
    } while (share_id != 0);
    out[n++] = '/';
    while (d > 0)
        out[n++] = digits[--d];
    out[n] = '\0';
    return n;
}

sv_status
sv_datum_seal(const uint8_t pk2[SV_X25519_LEN], const uint8_t uuid[SV_UUID_LEN],
              const char *field, const uint8_t *pt, size_t pt_len,
              uint8_t enc[SV_HPKE_ENC_LEN], uint8_t *ct)
{
    char aad[SV_AAD_MAX];
    size_t aad_len;

    if (pk2 == NULL || pt_len > SV_DATUM_MAX || (pt == NULL && pt_len > 0))
        return SV_ERR_INVAL;
    if ((aad_len = sv_aad_datum(uuid, field, aad)) == 0)
        return SV_ERR_INVAL;
    return sv_hpke_seal(SV_AEAD, pk2, (const uint8_t *)SV_INFO_DATUM, sizeof(SV_INFO_DATUM) - 1,
                        (const uint8_t *)aad, aad_len, pt, pt_len, enc, ct);
}

sv_status
sv_datum_open(const uint8_t sk2[SV_X25519_LEN], const uint8_t uuid[SV_UUID_LEN],
              const char *field, const uint8_t enc[SV_HPKE_ENC_LEN],
              const uint8_t *ct, size_t ct_len, uint8_t *pt)
{
    char aad[SV_AAD_MAX];
    size_t aad_len;

    if (ct == NULL || ct_len < SV_HPKE_TAG_LEN || ct_len - SV_HPKE_TAG_LEN > SV_DATUM_MAX)
        return SV_ERR_OPEN;
    if (sk2 == NULL || enc == NULL || (aad_len = sv_aad_datum(uuid, field, aad)) == 0) {
        sv_cleanse(pt, ct_len - SV_HPKE_TAG_LEN);
        return SV_ERR_OPEN;
    }
    return sv_hpke_open(SV_AEAD, sk2, (const uint8_t *)SV_INFO_DATUM, sizeof(SV_INFO_DATUM) - 1,
                        (const uint8_t *)aad, aad_len, enc, ct, ct_len, pt);
}

/*
 * Open a datum only when sk2 matches pk2: one key import serves both the
 * check and the DH, so the daemon's decrypt costs two X25519 scalar
 * multiplications per field. SV_ERR_KEY_MISMATCH or SV_ERR_OPEN (pt zeroed).
 */
sv_status
sv_datum_open_checked(const uint8_t sk2[SV_X25519_LEN], const uint8_t pk2[SV_X25519_LEN],
                      const uint8_t uuid[SV_UUID_LEN], const char *field,
                      const uint8_t enc[SV_HPKE_ENC_LEN],
                      const uint8_t *ct, size_t ct_len, uint8_t *pt)
{
    char aad[SV_AAD_MAX];
    size_t aad_len;

    if (ct == NULL || ct_len < SV_HPKE_TAG_LEN || ct_len - SV_HPKE_TAG_LEN > SV_DATUM_MAX)
        return SV_ERR_OPEN;
    if (sk2 == NULL || pk2 == NULL || enc == NULL
        || (aad_len = sv_aad_datum(uuid, field, aad)) == 0) {
        sv_cleanse(pt, ct_len - SV_HPKE_TAG_LEN);
        return SV_ERR_OPEN;
    }
    return sv_hpke_open_checked(SV_AEAD, sk2, pk2, (const uint8_t *)SV_INFO_DATUM,
                                sizeof(SV_INFO_DATUM) - 1, (const uint8_t *)aad, aad_len, enc,
                                ct, ct_len, pt);
}

sv_status
sv_key2a_wrap(const uint8_t pk1[SV_X25519_LEN], const uint8_t uuid[SV_UUID_LEN],
              const char *field, uint64_t share_id, const uint8_t key2a[SV_X25519_LEN],
              uint8_t enc[SV_HPKE_ENC_LEN], uint8_t ct[SV_WRAPPED_CT_LEN])
{
    char aad[SV_AAD_MAX];
    size_t aad_len;

    if (pk1 == NULL || key2a == NULL)
        return SV_ERR_INVAL;
    if ((aad_len = sv_aad_key2a(uuid, field, share_id, aad)) == 0)
        return SV_ERR_INVAL;
    return sv_hpke_seal(SV_AEAD, pk1, (const uint8_t *)SV_INFO_KEY2A, sizeof(SV_INFO_KEY2A) - 1,
                        (const uint8_t *)aad, aad_len, key2a, SV_X25519_LEN, enc, ct);
}

sv_status
sv_key2a_unwrap(const uint8_t sk1[SV_X25519_LEN], const uint8_t uuid[SV_UUID_LEN],
                const char *field, uint64_t share_id, const uint8_t enc[SV_HPKE_ENC_LEN],
                const uint8_t ct[SV_WRAPPED_CT_LEN], uint8_t key2a[SV_X25519_LEN])
{
    char aad[SV_AAD_MAX];
    size_t aad_len;

    if (key2a == NULL)
        return SV_ERR_OPEN;
    if (sk1 == NULL || enc == NULL || ct == NULL
        || (aad_len = sv_aad_key2a(uuid, field, share_id, aad)) == 0) {
        sv_cleanse(key2a, SV_X25519_LEN);
        return SV_ERR_OPEN;
    }
    return sv_hpke_open(SV_AEAD, sk1, (const uint8_t *)SV_INFO_KEY2A, sizeof(SV_INFO_KEY2A) - 1,
                        (const uint8_t *)aad, aad_len, enc, ct, SV_WRAPPED_CT_LEN, key2a);
}

sv_status
sv_key2a_unwrap_recipient(sv_hpke_recipient *r1, const uint8_t uuid[SV_UUID_LEN],
                          const char *field, uint64_t share_id,
                          const uint8_t enc[SV_HPKE_ENC_LEN],
                          const uint8_t ct[SV_WRAPPED_CT_LEN], uint8_t key2a[SV_X25519_LEN])
{
    char aad[SV_AAD_MAX];
    size_t aad_len;

    if (key2a == NULL)
        return SV_ERR_OPEN;
    if (r1 == NULL || enc == NULL || ct == NULL
        || (aad_len = sv_aad_key2a(uuid, field, share_id, aad)) == 0) {
        sv_cleanse(key2a, SV_X25519_LEN);
        return SV_ERR_OPEN;
    }
    return sv_hpke_open_recipient(r1, SV_AEAD, (const uint8_t *)SV_INFO_KEY2A,
                                  sizeof(SV_INFO_KEY2A) - 1, (const uint8_t *)aad, aad_len,
                                  enc, ct, SV_WRAPPED_CT_LEN, key2a);
}
