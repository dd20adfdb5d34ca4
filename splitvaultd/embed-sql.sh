#!/bin/sh
# Emit a C file holding the share-store schemas as strings:
#   embed-sql.sh sqlite3.sql pgsql.sql > svd_schema.c
set -eu
emit() {
    printf 'const char %s[] =\n' "$1"
    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$/\\n"/' "$2"
    printf '    "";\n\n'
}
printf '/* Generated from sql/daemon/ by splitvaultd/embed-sql.sh: do not edit. */\n'
printf '#include "svd_schema.h"\n\n'
emit svd_schema_sqlite3 "$1"
emit svd_schema_pgsql "$2"
