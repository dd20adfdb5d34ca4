#!/bin/sh
# Source check run by `make check`: no cycle between mod_splitvault's files.
#
# Each file of the module is a room with one concern; a file may call into
# files below it (docs/hacking.md, "The module"), never back up. This reads
# the symbols each built object defines and uses (nm), draws the graph
# "file A uses a symbol defined in file B", and fails on any cycle, printing
# its path (a.c -> b.c -> a.c) with a symbol behind each step. The module
# record (splitvault_module, in mod_splitvault.c) is not an edge: every file
# names it for its log lines and its configuration, and it is data, the
# root that the hooks hang from.
# Run from the build directory (objects) with srcdir set (the file list).
set -u
top=$(cd "${srcdir:-.}" && pwd)
NM=${NM:-nm}

objs=
for src in "$top"/mod_splitvault/*.c; do
    base=$(basename "$src" .c)
    obj=
    for o in "mod_splitvault/.libs/mod_splitvault_la-$base.o" \
             "mod_splitvault/mod_splitvault_la-$base.o"; do
        if [ -f "$o" ]; then obj=$o; break; fi
    done
    if [ -z "$obj" ]; then
        echo "module graph: no object for mod_splitvault/$base.c (build first)"
        exit 1
    fi
    objs="$objs $base.c=$obj"
done

for pair in $objs; do
    f=${pair%%=*}
    o=${pair#*=}
    # "file kind symbol": D (defined, global) or U (used, undefined here)
    $NM -g "$o" | awk -v f="$f" '
        NF == 2 && $1 == "U" { print f, "U", $2; next }
        NF == 3 && $2 ~ /^[TDBRCGSVW]$/ { print f, "D", $3 }'
done | awk '
    $2 == "D" { def[$3] = $1; next }
    $2 == "U" { nu++; uf[nu] = $1; us[nu] = $3 }
    END {
        for (i = 1; i <= nu; i++) {
            t = def[us[i]]
            if (t == "" || t == uf[i] || us[i] == "splitvault_module") continue
            k = uf[i] SUBSEP t
            if (!(k in edge)) {
                edge[k] = us[i]
                nout[uf[i]]++
                out[uf[i], nout[uf[i]]] = t
                files[uf[i]] = 1; files[t] = 1
            }
        }
        # depth-first search; a grey node met again closes a cycle
        bad = 0; nedges = 0
        for (k in edge) nedges++
        for (f in files) nfiles++
        for (f in files) {
            if (color[f] != "") continue
            sp = 0; stack[++sp] = f; idx[sp] = 0; color[f] = "grey"
            while (sp > 0) {
                n = stack[sp]
                if (idx[sp] < nout[n]) {
                    idx[sp]++
                    m = out[n, idx[sp]]
                    if (color[m] == "grey") {
                        path = ""
                        for (j = 1; j <= sp; j++) if (stack[j] == m) break
                        for (; j <= sp; j++) {
                            nx = (j < sp) ? stack[j + 1] : m
                            path = path stack[j] " -(" edge[stack[j], nx] ")-> "
                        }
                        print "cycle between module files: " path m
                        bad = 1
                    } else if (color[m] == "") {
                        color[m] = "grey"; stack[++sp] = m; idx[sp] = 0
                    }
                } else {
                    color[n] = "black"; sp--
                }
            }
        }
        if (bad) exit 1
        printf "module graph: %d files, %d dependencies, no cycle\n", nfiles, nedges
    }'
