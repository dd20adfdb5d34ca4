/*
 * sv_pwpolicy.h - what a new staff password must be.
 *
 * One rule for every place a staff password is set: the staff console's
 * pages (mod_splitvault) and splitvault-admin staff-add / staff-passwd. The
 * length that counts is that of the text a person typed: characters, as
 * Unicode code points of valid UTF-8, not bytes.
 */
#ifndef SV_PWPOLICY_H
#define SV_PWPOLICY_H

#include <stddef.h>

#define SV_PWPOLICY_MIN_CHARS 12    /* characters (code points) */
#define SV_PWPOLICY_MAX_BYTES 1024  /* bytes, as sign-in reads at most */

/* NULL when pw (len bytes) is acceptable as a new password; else why not,
 * one sentence for a person (a static string, never holding any of pw):
 * not valid UTF-8, more than one line (NUL, CR or LF), fewer than
 * SV_PWPOLICY_MIN_CHARS characters, more than SV_PWPOLICY_MAX_BYTES bytes. */
const char *sv_pwpolicy_check(const char *pw, size_t len);

/* The number of code points of valid UTF-8 text s (len bytes); (size_t)-1
 * when s is not valid UTF-8 (RFC 3629: no overlong form, no surrogate,
 * nothing above U+10FFFF). */
size_t sv_utf8_chars(const char *s, size_t len);

#endif /* SV_PWPOLICY_H */
