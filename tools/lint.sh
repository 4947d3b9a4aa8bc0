#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/lint.sh - static analysis of the library's sources (src/):
#   cppcheck    warnings, style, performance and portability checks, with
#               the suppressions in tools/cppcheck.supp (each explained);
#   clang-tidy  the checks and the static analyser chosen in .clang-tidy.
# Both must be clean: any finding makes the script fail.
#
# Usage: tools/lint.sh [--deps] [cppcheck|clang-tidy]...
#   (no tool named: both)
#   --deps   install the missing Debian packages (cppcheck, clang-tidy)
#            with apt-get first; needs root
# Environment: LINT_JOBS  clang-tidy processes at once (default: the
#   number of CPUs, at most 4).  CLANG_TIDY, CPPCHECK  the programs.
#   BP_VERSION_INCLUDE  see tools/version-header.sh.
# Exit status: 0 clean, 1 findings, 2 a tool is missing or failed to run.
#
# Also run by `make lint` and by .ci/run (stage lint).
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2

CPPCHECK=${CPPCHECK:-cppcheck}
CLANG_TIDY=${CLANG_TIDY:-clang-tidy}
jobs=${LINT_JOBS:-$(nproc 2>/dev/null || echo 2)}
[ "$jobs" -gt 4 ] && jobs=4

deps=no
tools=()
for a in "$@"; do
    case $a in
        --deps) deps=yes ;;
        cppcheck|clang-tidy) tools+=("$a") ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "lint: unknown argument '$a' (try --help)" >&2; exit 2 ;;
    esac
done
[ "${#tools[@]}" -eq 0 ] && tools=(cppcheck clang-tidy)

# Debian package of each tool.
pkg_of() { case $1 in cppcheck) echo cppcheck ;; clang-tidy) echo clang-tidy ;; esac; }

need() {
    local tool=$1 prog=$2
    command -v "$prog" >/dev/null 2>&1 && return 0
    if [ "$deps" = yes ] && [ "$(id -u)" -eq 0 ]; then
        echo "lint: installing the Debian package $(pkg_of "$tool")"
        apt-get install -y -q "$(pkg_of "$tool")" >/dev/null ||
            { apt-get update -q >/dev/null && apt-get install -y -q "$(pkg_of "$tool")" >/dev/null; }
        command -v "$prog" >/dev/null 2>&1 && return 0
    fi
    echo "lint: $prog not found; install the Debian package $(pkg_of "$tool") (apt-get install $(pkg_of "$tool"))" >&2
    return 1
}

# The flags the build uses for the library (Makefile.am: AM_CPPFLAGS and
# libbpool_core_la_CPPFLAGS), for tools that parse the sources.
# include/bpool_version.h is generated (configure, or the script).
vtmp=$(mktemp -d) || exit 2
trap 'rm -rf "$vtmp"' EXIT
vinc=$(bash tools/version-header.sh "$vtmp") || exit 2
CFLAGS_LIB=(-std=gnu11 -D_GNU_SOURCE= -DBPOOL_BUILDING -I"$vinc" -Iinclude -Isrc -pthread)

sources=(src/*.c)
status=0

run_cppcheck() {
    need cppcheck "$CPPCHECK" || return 2
    echo "lint: $("$CPPCHECK" --version) on ${#sources[@]} files in src/"
    "$CPPCHECK" --std=c11 --quiet --inline-suppr \
        --enable=warning,style,performance,portability \
        --suppress=missingIncludeSystem \
        --suppressions-list=tools/cppcheck.supp \
        --error-exitcode=1 -j "$jobs" \
        -D_GNU_SOURCE -D__linux__ -DBPOOL_BUILDING -I"$vinc" -Iinclude -Isrc \
        "${sources[@]}"
}

# Drop the diagnostics listed in tools/clang-tidy.known (FILE CHECK per
# line) and repeats (a header's finding comes once per file including
# it).  A diagnostic is its "file:line:col: warning:" line and the notes
# that follow it.
filter_known() {
    awk -v top="$PWD/" '
        FNR == NR {
            if ($0 !~ /^#/ && NF >= 2) known[$1 " " $2] = 1
            next
        }
        /^[^ ]+:[0-9]+:[0-9]+: (warning|error): / {
            file = $1; sub(/:.*/, "", file)
            if (index(file, top) == 1) file = substr(file, length(top) + 1)
            check = $0; sub(/.*\[/, "", check); sub(/\]$/, "", check)
            keep = !((file " " check) in known) && !($0 in seen)
            seen[$0] = 1
        }
        /^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$/ { next }
        keep { print }
    ' tools/clang-tidy.known -
}

run_clang_tidy() {
    need clang-tidy "$CLANG_TIDY" || return 2
    echo "lint: $("$CLANG_TIDY" --version | sed -n 's/.*LLVM version/clang-tidy/p') on ${#sources[@]} files in src/, $jobs at a time"
    local out rc diags
    out=$(printf '%s\n' "${sources[@]}" |
          xargs -P "$jobs" -I{} "$CLANG_TIDY" --quiet {} -- "${CFLAGS_LIB[@]}" 2>&1)
    rc=$?
    diags=$(filter_known <<<"$out")
    if [ -n "$diags" ]; then
        printf '%s\n' "$diags"
        return 1
    fi
    if [ "$rc" -ne 0 ]; then
        # clang-tidy exits non-zero when it cannot compile a file.
        printf '%s\n' "$out"
        return 2
    fi
}

for t in "${tools[@]}"; do
    start=$(date +%s)
    case $t in
        cppcheck) run_cppcheck ;;
        clang-tidy) run_clang_tidy ;;
    esac
    rc=$?
    case $rc in
        0) echo "lint: $t clean ($(( $(date +%s) - start )) s)" ;;
        1) echo "lint: $t found problems" >&2; [ "$status" -eq 0 ] && status=1 ;;
        *) status=2 ;;
    esac
done
exit "$status"
