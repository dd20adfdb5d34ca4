/*
 * sv_err.c - text of the core library's status codes.
 *
 * The strings describe a class of failure and never carry data, so any of
 * them may go to a log or an error page.
 */
#include "config.h"

#include "sv_err.h"

const char *
sv_strerror(sv_status st)
{
    switch (st) {
    case SV_OK:
        return "success";
    case SV_ERR_INTERNAL:
        return "internal error (cryptographic library or random generator failed)";
    case SV_ERR_NOMEM:
        return "out of memory";
    case SV_ERR_INVAL:
        return "invalid argument";
    case SV_ERR_OPEN:
        return "decryption failed (wrong key, or enc, ciphertext, aad or info altered)";
    case SV_ERR_KEY_MISMATCH:
        return "private key does not match the expected public key";
    case SV_ERR_BAD_KEY:
        return "invalid key (degenerate X25519 shared secret)";
    case SV_ERR_KEY_IO:
        return "key file cannot be read";
    case SV_ERR_KEY_FORMAT:
        return "key file malformed (not PEM, truncated or garbage)";
    case SV_ERR_KEY_TYPE:
        return "key is not an X25519 key of the expected kind (private or public)";
    case SV_ERR_KEY_PASSPHRASE:
        return "wrong passphrase for the encrypted private key";
    case SV_ERR_KEY_NEED_PASS:
        return "private key is encrypted and no passphrase was given";
    case SV_ERR_KEY_TOO_LARGE:
        return "key file too large";
    case SV_ERR_KEY_KDF:
        return "encrypted key file refused before any key derivation: its passphrase "
               "protection is not PBES2 with PBKDF2 (SHA-1 or SHA-2, at most 5000000 "
               "iterations) or scrypt (N at most 2^20, r 32, p 16, memory 32 MiB)";
    case SV_ERR_WIRE_TRUNCATED:
        return "message truncated";
    case SV_ERR_WIRE_TOO_LARGE:
        return "message length over the limit";
    case SV_ERR_WIRE_VERSION:
        return "unknown protocol version or bad magic";
    case SV_ERR_WIRE_TYPE:
        return "unknown or unexpected message type";
    case SV_ERR_WIRE_MALFORMED:
        return "malformed message field";
    case SV_ERR_WIRE_TRAILING:
        return "trailing bytes after the message";
    case SV_ERR_WIRE_UNSUPPORTED:
        return "unknown critical extension";
    case SV_ERR_NET_RESOLVE:
        return "cannot resolve the daemon's host name";
    case SV_ERR_NET_CONNECT:
        return "cannot connect to the daemon";
    case SV_ERR_NET_TIMEOUT:
        return "connecting to the daemon timed out";
    case SV_ERR_NET_IO:
        return "connection to the daemon closed or failed";
    case SV_ERR_TLS_SETUP:
        return "TLS set-up failed (CA, certificate or key)";
    case SV_ERR_TLS_HANDSHAKE:
        return "TLS handshake with the daemon failed";
    case SV_ERR_TLS_CLOSED:
        return "the daemon closed the connection before TLS";
    case SV_ERR_SHARE_FORMAT:
        return "not a key1 share file (or a malformed one)";
    case SV_ERR_SHARE_OPEN:
        return "key1 share cannot be opened: wrong passphrase, or the share file was altered";
    case SV_ERR_SHARE_MIX:
        return "key1 shares do not belong together (another key, another split, or one share twice)";
    case SV_ERR_SHARE_FEW:
        return "fewer key1 shares than the split's threshold";
    case SV_ERR__MAX:
        break;
    }
    return "unknown error";
}
