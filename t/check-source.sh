#!/bin/sh
# Source checks run by `make check`:
#  1. no banned C library function anywhere in our C sources;
#  2. lib/ (the core both sides share) includes no httpd or APR header;
#  3. no private key is kept in the tree (test and demo keys are made at run time);
#  4. every log tag of the module ("SVnnnnn:" at the start of a log message)
#     marks one log site only: tests and operators grep for a tag and must
#     find the one place that wrote it.
# Prints every offending line; exits 1 if there is any.
set -u
top=$(cd "${srcdir:-.}" && pwd)
cd "$top" || exit 1
fail=0

c_files=$(find lib mod_splitvault splitvaultd tools fuzz t bench -name '*.[ch]' 2>/dev/null | sort)
n=$(echo "$c_files" | grep -c . || true)

banned='(^|[^A-Za-z0-9_>.])(sprintf|vsprintf|strcpy|strcat|strtok|gets|rand|srand)[[:space:]]*\('
# strip // comments and string contents before matching, so prose can name them
hits=$(for f in $c_files; do
    sed -e 's/"\([^"\\]\|\\.\)*"/""/g' -e 's@/\*.*\*/@@g' -e 's@//.*$@@' "$f" | grep -nE "$banned" | sed "s@^@$f:@"
done)
if [ -n "$hits" ]; then
    echo "banned functions (use snprintf, apr_cpystrn, RAND_bytes ...):"
    echo "$hits"
    fail=1
fi

hdr=$(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](httpd|http_[a-z_]+|ap_[a-z_]+|util_[a-z_]+|mod_[a-z_]+|apr[a-z_0-9]*|apu[a-z_0-9]*)\.h[>"]' lib/*.c lib/*.h 2>/dev/null)
if [ -n "$hdr" ]; then
    echo "lib/ must not include httpd or APR headers:"
    echo "$hdr"
    fail=1
fi

if command -v git >/dev/null 2>&1 && git rev-parse --git-dir >/dev/null 2>&1; then
    keys=$(git ls-files -z | xargs -0 grep -lE -- '-----BEGIN (ENCRYPTED |RSA |EC )?PRIVATE KEY-----' 2>/dev/null \
           | grep -v '^t/check-source.sh$')
    if [ -n "$keys" ]; then
        echo "private keys in the tree (generate them at run time):"
        echo "$keys"
        fail=1
    fi
fi

# a tag is a string that starts with it; comments may name tags freely
dups=$(for f in mod_splitvault/*.c; do
    sed -e 's@/\*.*\*/@@g' -e 's@^[[:space:]]*\*.*$@@' "$f" | grep -o '"SV[0-9]\{5\}:' | sed -e 's@^"@@' -e 's@:$@@' -e "s@^@$f @"
done | sort -k2 | awk '{ n[$2]++; at[$2] = at[$2] " " $1 } END { for (t in n) if (n[t] > 1) print t " in" at[t] }')
if [ -n "$dups" ]; then
    echo "log tags used at more than one log site (give each its own, see docs/hacking.md):"
    echo "$dups"
    fail=1
fi

if [ $fail -eq 0 ]; then
    echo "source checks: $n C files clean (banned functions, lib/ headers, no private keys, unique log tags)"
fi
exit $fail
