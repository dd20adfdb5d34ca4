#!/bin/sh
# Replay the seed corpus through every fuzz target (run by `make check` from
# the build directory). Each target gets its own corpus and, as extra
# nonsense, its sibling's (wire and keyfile, form and multipart); the
# keyfile target also gets private-key seeds made at run time into a
# temporary directory (fuzz/keyfile-seeds.sh).
# Works with both builds: fuzz/replay_* (no libFuzzer) or the libFuzzer
# binaries fuzz/fuzz_* (./configure --enable-fuzz), which run each file
# given on their command line once. Prints how many inputs each target took.
set -eu
srcdir=${srcdir:-.}
corpus="$srcdir/fuzz/corpus"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir "$tmp/keyfile"
if ! sh "$srcdir/fuzz/keyfile-seeds.sh" private "$tmp/keyfile" >"$tmp/seeds.log" 2>&1; then
    cat "$tmp/seeds.log"
    echo "replay: could not make the run-time private-key seeds" >&2
    exit 1
fi

# replay NAME DIR... : every regular file of the DIRs through target NAME
replay() {
    name=$1
    shift
    find "$@" -maxdepth 1 -type f | sort > "$tmp/list"
    n=$(wc -l < "$tmp/list")
    if [ "$n" -eq 0 ]; then
        echo "$name: no inputs found" >&2
        return 1
    fi
    if [ -x "fuzz/fuzz_$name" ]; then
        # libFuzzer: file arguments are executed once each, no fuzzing
        tr '\n' '\0' < "$tmp/list" | xargs -0 "fuzz/fuzz_$name" >"$tmp/$name.log" 2>&1 || {
            cat "$tmp/$name.log"
            echo "fuzz_$name: failed on the corpus" >&2
            return 1
        }
        ran=$(grep -c '^Executed ' "$tmp/$name.log" || true)
        echo "fuzz_$name: replayed $ran inputs (libFuzzer build)"
        [ "$ran" -eq "$n" ]
    elif [ -x "fuzz/replay_$name" ]; then
        tr '\n' '\0' < "$tmp/list" | xargs -0 "fuzz/replay_$name"
    else
        echo "replay: neither fuzz/fuzz_$name nor fuzz/replay_$name is built" >&2
        return 1
    fi
}

replay wire "$corpus/wire" "$corpus/keyfile"
replay keyfile "$corpus/keyfile" "$tmp/keyfile" "$corpus/wire"
replay form "$corpus/form" "$corpus/multipart"
replay multipart "$corpus/multipart" "$corpus/form"
replay share "$corpus/share" "$corpus/keyfile"
