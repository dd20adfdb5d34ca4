/*
 * sv_err.h - status codes of the SplitVault core library.
 *
 * Every core function returns an sv_status. SV_OK is zero; every other value
 * names one failure precisely enough for a log line. Messages never contain
 * secret material: they describe the class of failure only.
 */
#ifndef SV_ERR_H
#define SV_ERR_H

typedef enum {
    SV_OK = 0,

    /* generic */
    SV_ERR_INTERNAL = 1,      /* a library call failed (OpenSSL, RNG, ...) */
    SV_ERR_NOMEM = 2,         /* allocation failed */
    SV_ERR_INVAL = 3,         /* caller passed an invalid argument */

    /* cryptography */
    SV_ERR_OPEN = 10,         /* HPKE open failed: wrong key, enc, ct, aad or info */
    SV_ERR_KEY_MISMATCH = 11, /* a private key does not match the expected public key */
    SV_ERR_BAD_KEY = 12,      /* a raw key is invalid (e.g. all-zero shared secret) */

    /* key files */
    SV_ERR_KEY_IO = 20,         /* file cannot be read */
    SV_ERR_KEY_FORMAT = 21,     /* not PEM, truncated or garbage */
    SV_ERR_KEY_TYPE = 22,       /* valid key, but not X25519 (or not the kind asked for) */
    SV_ERR_KEY_PASSPHRASE = 23, /* encrypted key, passphrase wrong */
    SV_ERR_KEY_NEED_PASS = 24,  /* encrypted key, no passphrase given */
    SV_ERR_KEY_TOO_LARGE = 25,  /* file larger than any key file can be */
    SV_ERR_KEY_KDF = 26,        /* encrypted key: KDF not PBKDF2/scrypt, or over the cost caps */

    /* wire protocol */
    SV_ERR_WIRE_TRUNCATED = 30,   /* input ends before the message does */
    SV_ERR_WIRE_TOO_LARGE = 31,   /* length over the hard cap */
    SV_ERR_WIRE_VERSION = 32,     /* unknown protocol version or bad magic */
    SV_ERR_WIRE_TYPE = 33,        /* unknown or unexpected message type */
    SV_ERR_WIRE_MALFORMED = 34,   /* a field is out of range or ill-formed */
    SV_ERR_WIRE_TRAILING = 35,    /* bytes left after the message */
    SV_ERR_WIRE_UNSUPPORTED = 36, /* an unknown critical extension */

    /* the daemon's TLS client (sv_tlsclient) */
    SV_ERR_NET_RESOLVE = 40,    /* host name does not resolve */
    SV_ERR_NET_CONNECT = 41,    /* no address accepted the connection */
    SV_ERR_NET_TIMEOUT = 42,    /* connecting, the handshake or a read/write_until took too long */
    SV_ERR_NET_IO = 43,         /* connection closed, failed or timed out mid-exchange */
    SV_ERR_TLS_SETUP = 44,      /* TLS context or connection set-up failed */
    SV_ERR_TLS_HANDSHAKE = 45,  /* handshake refused (certificate, protocol) */
    SV_ERR_TLS_CLOSED = 46,     /* peer closed before TLS: another attempt is safe */

    /* key1 shares (sv_share) */
    SV_ERR_SHARE_FORMAT = 50,   /* not a key1 share file of this format */
    SV_ERR_SHARE_OPEN = 51,     /* wrong passphrase, or the share file was altered */
    SV_ERR_SHARE_MIX = 52,      /* shares of different keys or splits, or one index twice */
    SV_ERR_SHARE_FEW = 53,      /* fewer shares than the threshold */

    SV_ERR__MAX
} sv_status;

/* A static, secret-free English description of st. Never NULL. */
const char *sv_strerror(sv_status st);

#endif /* SV_ERR_H */
