#!/bin/sh
# Man page checks run by `make check`:
#  1. every page in man/ passes `mandoc -T lint -W warning` without a
#     message (mandoc is in scripts/deps.sh; without it the check fails);
#  2. every directive mod_splitvault registers (svm_cmds[] in
#     mod_splitvault/svm_config.c) has its section in mod_splitvault.8, and
#     the page has no section for a directive the module no longer has;
#  3. every command of splitvault-admin's usage text (tools/svt_admin.c)
#     and every command its main() dispatches is described in
#     splitvault-admin.8;
#  4. every command of the daemon's control socket (cmds[] in
#     splitvaultd/svd_ctl.c) is described in splitvaultctl.8;
#  5. every key of splitvaultd.yaml (keys[] in splitvaultd/svd_conf.c) but
#     the sections is described in splitvaultd.yaml.5.
# So a page cannot fall behind the code silently. Prints every offending
# line or name; exits 1 if there is any.
set -u
top=$(cd "${srcdir:-.}" && pwd)
cd "$top" || exit 1
fail=0

pages=$(ls man/*.[58] 2>/dev/null)
if [ -z "$pages" ]; then
    echo "no man pages in man/"
    exit 1
fi

if ! command -v mandoc >/dev/null 2>&1; then
    echo "mandoc is missing: install it (scripts/deps.sh, Debian package mandoc)"
    exit 1
fi
for p in $pages; do
    out=$(mandoc -T lint -W warning "$p" 2>&1)
    rc=$?
    if [ $rc -ne 0 ] || [ -n "$out" ]; then
        echo "mandoc -T lint -W warning $p (exit $rc):"
        echo "$out"
        fail=1
    fi
done

# $1: what, $2: page, $3: the names the code has, $4: the macro line that
# must describe each (NAME is replaced). Prints the missing ones.
need() {
    missing=$(for n in $3; do
        line=$(echo "$4" | sed "s/NAME/$n/")
        grep -qxF -- "$line" "$2" || grep -qF -- "$line " "$2" || echo "  $n"
    done)
    if [ -n "$missing" ]; then
        echo "$2 does not describe these $1 (add '$4' for each):"
        echo "$missing"
        fail=1
    fi
}

# 2. directives: AP_INIT_*("SplitVault...", in the command table
dirs=$(grep -oE 'AP_INIT_[A-Z0-9_]+\("[A-Za-z0-9]+"' mod_splitvault/svm_config.c |
       sed -e 's/^[^"]*"//' -e 's/"$//' | sort -u)
if [ -z "$dirs" ]; then
    echo "no directive found in mod_splitvault/svm_config.c: update t/check-man.sh"
    fail=1
fi
need "directives" man/mod_splitvault.8 "$dirs" ".Ss NAME"
gone=$(sed -n 's/^\.Ss \(SplitVault[A-Za-z0-9]*\)$/\1/p' man/mod_splitvault.8 | sort -u |
       while read -r d; do echo "$dirs" | grep -qxF "$d" || echo "  $d"; done)
if [ -n "$gone" ]; then
    echo "man/mod_splitvault.8 describes directives svm_config.c does not register:"
    echo "$gone"
    fail=1
fi

# 3. splitvault-admin: a usage line is two spaces, the command, then the end
# of the line, its arguments (an option, a bracket or an upper-case word) or
# the column of its description
usage_cmds=$(sed -n 's/^ *"  \([a-z][a-z0-9-]*\)\( [-[A-Z]\| \{2,\}\|\\n"\).*/\1/p' tools/svt_admin.c | sort -u)
main_cmds=$(grep -oE 'strcmp\(cmd, "[a-z0-9-]+"\)' tools/svt_admin.c |
            sed -e 's/^[^"]*"//' -e 's/").*$//' | grep -vx help | sort -u)
if [ -z "$usage_cmds" ] || [ -z "$main_cmds" ]; then
    echo "no command found in tools/svt_admin.c: update t/check-man.sh"
    fail=1
fi
need "commands of the usage text" man/splitvault-admin.8 "$usage_cmds" ".It Cm NAME"
need "commands main() runs" man/splitvault-admin.8 "$main_cmds" ".It Cm NAME"

# 4. splitvaultctl: the control socket's table { "name", admin_only, ...
ctl_cmds=$(sed -n 's/^ *{ "\([a-z-]*\)", [01], [01], [01], cmd_.*/\1/p' splitvaultd/svd_ctl.c |
           sort -u)
if [ -z "$ctl_cmds" ]; then
    echo "no command found in splitvaultd/svd_ctl.c: update t/check-man.sh"
    fail=1
fi
need "control commands" man/splitvaultctl.8 "$ctl_cmds" ".It Cm NAME"

# 5. splitvaultd.yaml: { "a.b", K_TYPE, ... } but K_SECTION
keys=$(sed -n 's/^ *{ "\([a-z_.]*\)", K_\([A-Z_]*\),.*/\1 \2/p' splitvaultd/svd_conf.c |
       grep -v ' SECTION$' | sed 's/ .*//' | sort -u)
if [ -z "$keys" ]; then
    echo "no key found in splitvaultd/svd_conf.c: update t/check-man.sh"
    fail=1
fi
# a removed key is named in the text only
keys_now=$(for k in $keys; do
    grep -q "{ \"$k\", K_REMOVED" splitvaultd/svd_conf.c || echo "$k"
done)
need "configuration keys" man/splitvaultd.yaml.5 "$keys_now" ".It Cm NAME"

if [ $fail -eq 0 ]; then
    echo "man pages: $(echo "$pages" | wc -l) pages lint clean; $(echo "$dirs" | wc -l)" \
         "directives, $(echo "$usage_cmds" | wc -l) admin commands, $(echo "$ctl_cmds" | wc -l)" \
         "control commands, $(echo "$keys_now" | wc -l) daemon keys described"
fi
exit $fail
