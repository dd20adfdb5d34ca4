#!/bin/sh
# Seeds for the fuzz_keyfile target (input layout: see fuzz/fuzz_keyfile.c;
# the first byte of every seed selects the loader).
#
#   fuzz/keyfile-seeds.sh public DIR    what fuzz/corpus/keyfile/ holds: public
#                                       keys, broken PEM, and template seeds
#                                       that make private-key texts in memory
#   fuzz/keyfile-seeds.sh private DIR   private-key seeds, made at run time
#                                       into a temporary DIR, never committed
#
# Needs the openssl command. Private keys only ever pass through pipes and
# the DIR given for `private`, which must not be inside fuzz/corpus.
set -eu

usage() {
    echo "usage: $0 public|private DIR" >&2
    exit 2
}
[ $# -eq 2 ] || usage
mode=$1
dir=$2
command -v openssl >/dev/null 2>&1 || { echo "$0: openssl not found" >&2; exit 1; }
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# seed NAME SELECTOR-BYTES < content
seed() {
    { printf "$2"; cat; } > "$dir/$1"
}

# public halves of fresh keys (the private halves stay in the pipe)
pub_of() {
    openssl genpkey "$@" 2>/dev/null | openssl pkey -pubout
}

case $mode in
public)
    pub_of -algorithm X25519 > "$tmp/pub.pem"
    seed public-valid '\000' < "$tmp/pub.pem"
    sed 's/$/\r/' "$tmp/pub.pem" | seed public-valid-crlf '\000'
    { printf '\n \t\n'; cat "$tmp/pub.pem"; printf '\n\n'; } | seed public-valid-space '\000'
    pub_of -algorithm ED25519 | seed public-type-ed25519 '\000'
    pub_of -algorithm X448 | seed public-type-x448 '\000'
    pub_of -algorithm EC -pkeyopt ec_paramgen_curve:P-256 | seed public-type-ec '\000'
    head -c 60 "$tmp/pub.pem" | seed public-truncated '\000'
    head -n 2 "$tmp/pub.pem" | seed public-noend '\000'
    sed '2s/^\(....\)./\1*/' "$tmp/pub.pem" | seed public-badb64 '\000'
    cat "$tmp/pub.pem" "$tmp/pub.pem" | seed public-twoblocks '\000'
    { cat "$tmp/pub.pem"; printf 'garbage\n'; } | seed public-trailing '\000'
    sed '1a\
Proc-Type: 4,ENCRYPTED\
' "$tmp/pub.pem" | seed public-header '\000'
    sed 's/PUBLIC KEY/CERTIFICATE/' "$tmp/pub.pem" | seed public-label-cert '\000'
    sed 's/PUBLIC KEY/PUBLIC  KEY/' "$tmp/pub.pem" | seed public-label-bad '\000'
    openssl pkey -pubin -in "$tmp/pub.pem" -outform DER > "$tmp/pub.der"
    { printf -- '-----BEGIN PUBLIC KEY-----\n'
      { cat "$tmp/pub.der"; printf '\000'; } | openssl base64
      printf -- '-----END PUBLIC KEY-----\n'; } | seed public-der-extra '\000'
    { printf -- '-----BEGIN PUBLIC KEY-----\n'
      head -c 43 "$tmp/pub.der" | openssl base64
      printf -- '-----END PUBLIC KEY-----\n'; } | seed public-der-short '\000'
    printf '' | seed public-empty '\000'
    { printf -- '-----BEGIN PUBLIC KEY-----\n'
      head -c 16400 /dev/zero | tr '\000' 'A'
      printf -- '\n-----END PUBLIC KEY-----\n'; } | seed public-toolarge '\000'
    # other loaders given public or broken text
    seed private-public-given '\001' < "$tmp/pub.pem"
    printf '' | seed private-empty '\001'
    printf -- '-----BEGIN NOTHING-----\nAAAA\n-----END NOTHING-----\n' | seed private-label-other '\001'
    seed passphrase-public-given '\002\004abcd' < "$tmp/pub.pem"
    printf '' | seed passphrase-empty '\002\000'
    # templates: selector, template, cut (u16), patches {u16 offset, u8 value}
    printf '' | seed template-plain '\003\000\000\000'
    printf '' | seed template-encrypted '\003\001\000\000'
    printf '' | seed template-encrypted-wrongpass '\007\001\000\000'
    printf '' | seed template-encrypted-nopass '\013\001\000\000'
    printf '' | seed template-public '\003\002\000\000'
    printf '' | seed template-plain-cut '\003\000\000\100'
    printf '' | seed template-encrypted-cut '\003\001\000\220'
    printf '' | seed template-plain-patch-label '\003\000\000\000\000\013Q'
    printf '' | seed template-plain-patch-b64 '\003\000\000\000\000\050!'
    printf '' | seed template-plain-patch-der '\003\000\000\000\000\052B\000\060C'
    printf '' | seed template-encrypted-patch '\003\001\000\000\000\144A\000\200z'
    printf '' | seed template-public-patch '\003\002\000\000\000\063Z'
    # key derivations over the caps (refused before deriving anything)
    printf '' | seed template-pbkdf2-overcap '\003\003\000\000'
    printf '' | seed template-pbkdf2-overcap-nopass '\013\003\000\000'
    printf '' | seed template-pbkdf2-overcap-patch '\003\003\000\000\000\120A\000\140z'
    printf '' | seed template-scrypt-overcap '\003\004\000\000'
    printf '' | seed template-scrypt-overcap-wrongpass '\007\004\000\000'
    printf '' | seed template-scrypt-overcap-cut '\003\004\000\200'
    ;;
private)
    case $(cd "$dir" && pwd) in
    */fuzz/corpus*) echo "$0: refusing to write private keys under fuzz/corpus" >&2; exit 1 ;;
    esac
    openssl genpkey -algorithm X25519 > "$tmp/k.pem"
    openssl genpkey -algorithm X25519 -aes256 -pass pass:pass1234 > "$tmp/ke.pem"
    seed private-valid '\001' < "$tmp/k.pem"
    seed private-valid-encrypted '\002\010pass1234' < "$tmp/ke.pem"
    seed private-wrongpass '\002\005wrong' < "$tmp/ke.pem"
    seed private-needpass '\001' < "$tmp/ke.pem"
    seed private-public-loader '\000' < "$tmp/k.pem"
    openssl genpkey -algorithm ED25519 | seed private-type-ed25519 '\001'
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 > "$tmp/ec.pem"
    seed private-type-ec '\001' < "$tmp/ec.pem"
    openssl pkey -in "$tmp/ec.pem" -traditional | seed private-type-ec-traditional '\001'
    head -c 80 "$tmp/k.pem" | seed private-truncated '\001'
    { cat "$tmp/k.pem"; printf 'x'; } | seed private-trailing '\001'
    cat "$tmp/k.pem" "$tmp/k.pem" | seed private-twoblocks '\001'
    ;;
*)
    usage
    ;;
esac
