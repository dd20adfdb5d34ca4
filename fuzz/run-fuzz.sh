#!/bin/sh
# Fuzz one target for a while, from a libFuzzer build directory.
#
#   cd BUILD && sh SRC/fuzz/run-fuzz.sh wire|keyfile|form|multipart|share SECONDS [libFuzzer options...]
#
# The committed seeds and run-time private-key seeds (fuzz/keyfile-seeds.sh)
# are copied into a fresh working corpus, so the tree is never written to;
# new inputs stay in that working corpus and crash/leak/timeout artifacts go
# to ./fuzz-artifacts-TARGET/. Prints libFuzzer's final statistics.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 wire|keyfile|form|multipart|share SECONDS [libFuzzer options...]" >&2; exit 2; }
target=$1
secs=$2
shift 2
src=$(cd "$(dirname "$0")/.." && pwd)
bin="fuzz/fuzz_$target"
[ -x "$bin" ] || { echo "$0: $bin not built (configure --enable-fuzz CC=clang; make $bin)" >&2; exit 1; }

work=$(mktemp -d "/tmp/sv-fuzz-$target.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus" "$work/seeds"
cp "$src/fuzz/corpus/$target"/* "$work/corpus/"
if [ "$target" = keyfile ]; then
    sh "$src/fuzz/keyfile-seeds.sh" private "$work/seeds"
fi
art="$PWD/fuzz-artifacts-$target"
mkdir -p "$art"

echo "fuzz_$target: $(ls "$work/corpus" | wc -l) seeds + $(ls "$work/seeds" | wc -l) run-time seeds, ${secs}s"
start=$(date +%s)
rc=0
"$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$art/" \
    -timeout=10 -rss_limit_mb=2048 "$@" "$work/corpus" "$work/seeds" || rc=$?
end=$(date +%s)
echo "fuzz_$target: ran $((end - start))s, exit $rc, corpus now $(ls "$work/corpus" | wc -l) inputs"
if [ -n "$(ls "$art" 2>/dev/null)" ]; then
    echo "fuzz_$target: artifacts in $art:"
    ls -l "$art"
    rc=1
else
    rmdir "$art"
fi
exit $rc
