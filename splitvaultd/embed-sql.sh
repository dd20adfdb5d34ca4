#!/bin/sh
# Emit a C file holding the share-store schemas and upgrades as strings:
#   embed-sql.sh NAME FILE [NAME FILE ...] > svd_schema.c
set -eu
emit() {
    printf 'const char %s[] =\n' "$1"
    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$/\\n"/' "$2"
    printf '    "";\n\n'
}
printf '/* Generated from sql/daemon/ by splitvaultd/embed-sql.sh: do not edit. */\n'
printf '#include "svd_schema.h"\n\n'
while [ $# -ge 2 ]; do
    emit "$1" "$2"
    shift 2
done
