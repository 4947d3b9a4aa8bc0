# SPDX-License-Identifier: MIT
# lib.sh - what the tests of the tools (bench_smoke.sh, stress_short.sh,
# stress_crash.sh) share: checking for the program, a scratch directory, the
# ok/FAIL lines and their count, and checks on JSON reports.  Sourced,
# not run:  . "$(dirname "$0")/lib.sh"
#
# The scripts are automake TESTS scripts: exit 0 pass, 1 fail, 77 skip,
# 99 hard error.  The harness exports top_builddir, BPOOL_TEST_TMPDIR and
# the programs' paths (see AM_TESTS_ENVIRONMENT in Makefile.am); each has
# a default, so a script also runs by hand from the top build directory.
# shellcheck shell=bash

set -u

top_builddir=${top_builddir:-$(pwd)}

# need_program PATH: the program under test must be there; if not, it is
# a hard error (99): nothing can be tested.
need_program() {
    if [ ! -x "$1" ]; then
        echo "FAIL: $1 not found or not executable (build it first)"
        exit 99
    fi
}

# scratch NAME: make a fresh directory $work, removed on exit, under
# $BPOOL_TEST_TMPDIR: on the build file system, where O_DIRECT works
# (/tmp may be tmpfs, which has none).  Work in it, so that the files a
# script makes need no path and a failed run leaves nothing elsewhere.
scratch() {
    local tmpbase=${BPOOL_TEST_TMPDIR:-$top_builddir}
    mkdir -p "$tmpbase" || exit 99
    work=$(mktemp -d "$tmpbase/$1.XXXXXX") || exit 99
    cd "$work" || exit 99
    work=$PWD                   # absolute, whatever BPOOL_TEST_TMPDIR was
    trap 'rm -rf "$work"' EXIT
}

failures=0
checks=0
pass() { checks=$((checks + 1)); echo "ok   $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL $*"; }

# finish: print the count of checks and exit: 0 if none failed, else 1.
finish() {
    echo "$checks checks, $failures failed"
    exit $((failures > 0))
}

# secs N: N seconds times BPOOL_STRESS_SCALE (default 1), so every
# duration of a script can be stretched at once for a longer run by hand.
secs() { awk -v a="$1" -v s="${BPOOL_STRESS_SCALE:-1}" 'BEGIN { printf "%g", a * s }'; }

# A result object of the tools (doc/tools.md) is flat but for its
# "options" object; field and expect look at the results only.
# drop_options JSON: the object without its "options" member.
drop_options() { sed 's/"options":{[^{}]*},\{0,1\}//' <<<"$1"; }

# field KEY JSON: the value of KEY in a flat JSON object (quotes removed).
field() { drop_options "$2" | sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }

# option KEY JSON: the value of KEY in the object's "options".
option() { sed -n 's/.*"options":{\([^{}]*\)}.*/,\1}/p' <<<"$2" |
    sed -n "s/.*[,{]\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }

# json_header NAME TOOL LINES: every line of LINES is one JSON object that
# starts as the tools' convention says: "tool":TOOL, "version", an ISO 8601
# UTC "timestamp" and an "options" object, then flat members.
json_header() {
    local name=$1 tool=$2 line bad=
    local re='^\{"tool":"'"$tool"'","version":"[0-9]+\.[0-9]+\.[0-9]+[^"]*","timestamp":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z","options":\{("[a-z_0-9]+":("[^"]*"|-?[0-9]+(\.[0-9]+)?|true|false|null)(,|\}))+(,"[a-z_0-9]+":("[^"]*"|-?[0-9]+(\.[0-9]+)?|true|false|null))*\}$'
    while IFS= read -r line; do
        [[ $line =~ $re ]] || { bad=$line; break; }
    done <<<"$3"
    if [ -z "$3" ] || [ -n "$bad" ]; then
        fail "$name: not a $tool JSON result object: ${bad:-(none)}"
    else
        pass "$name"
    fi
}

# stress_ok NAME ARGS...: "$stress" -q --json ARGS... must exit 0 with
# result ok; its JSON report is left in $out.  A file system without
# O_DIRECT skips the whole script (exit 77).  Returns 1 (after a FAIL) if
# the run did not pass.
stress_ok() {
    local name=$1 st
    shift
    out=$("$stress" -q --json "$@" 2>err)
    st=$?
    if [ "$st" -eq 3 ] && grep -q -i "O_DIRECT\|ENODIRECT" err; then
        echo "SKIP: no O_DIRECT here: $(cat err)"
        exit 77
    fi
    if [ "$st" -ne 0 ] || [ "$(field result "$out")" != ok ]; then
        fail "$name: exit status $st: $out"
        sed 's/^/    /' err | head -30
        return 1
    fi
    pass "$name: passed"
}

# expect NAME LINES COND...: each COND is "key OP number" or "key OP key2"
# (OP one of == != < <= > >=) and must hold on every line of LINES, each a
# flat JSON object; a key that is missing or null fails.  One awk process
# checks them all, so a script can afford many.
expect() {
    local name=$1 lines=$2 why
    shift 2
    why=$(awk -v conds="$(printf '%s;' "$@")" '
        {
            s = $0; sub(/"options":\{[^{}]*\},?/, "", s); gsub(/^\{|\}$/, "", s)
            split("", val)
            n = split(s, kv, ",")
            for (i = 1; i <= n; i++) {
                k = kv[i]; sub(/:.*/, "", k); gsub(/"/, "", k)
                v = kv[i]; sub(/^[^:]*:/, "", v); gsub(/"/, "", v)
                val[k] = v
            }
            nc = split(conds, c, ";")
            for (j = 1; j < nc; j++) {
                split(c[j], t, " "); a = t[1]; op = t[2]; b = t[3]
                if (!(a in val) || val[a] == "null") { print a " missing, line " NR ": " $0; exit 1 }
                x = val[a] + 0
                if (b ~ /^-?[0-9.]+$/) y = b + 0
                else if (b in val) y = val[b] + 0
                else { print b " missing, line " NR ": " $0; exit 1 }
                ok = (op == "==") ? x == y : (op == "!=") ? x != y : (op == "<") ? x < y : \
                     (op == "<=") ? x <= y : (op == ">") ? x > y : (op == ">=") ? x >= y : 0
                if (!ok) {
                    print "\"" c[j] "\" is false on line " NR ": " a "=" val[a] \
                          ((b in val) ? ", " b "=" val[b] : "") ": " $0
                    exit 1
                }
            }
        }' <<<"$lines")
    if [ -n "$why" ]; then
        fail "$name: $why"
    else
        pass "$name"
    fi
}
