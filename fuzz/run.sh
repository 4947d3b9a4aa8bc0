#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# fuzz/run.sh - build the libFuzzer targets with clang and run each one
# for a bounded time (a smoke run; see doc/analysis.md).
#
#   fuzz_trace         tools/trace.c: trace_load() on arbitrary file bytes
#   fuzz_shell_parse   tools/shell/parse.c: a bpool-shell line, its words,
#                      numbers, sizes and page ranges
#
# Usage: fuzz/run.sh [--deps] [--build-only] [SECONDS [TARGET...]]
#   SECONDS  run time per target (default 10)
#   TARGET   fuzz_trace, fuzz_shell_parse (default: both)
#   --deps   install clang (Debian package clang) with apt-get if missing;
#            needs root
#   --build-only  build, do not run
# Environment: CLANG (default clang), FUZZ_BUILD (build directory,
#   default fuzz/build), FUZZ_ARGS (more libFuzzer flags, e.g. -jobs=2),
#   BP_VERSION_INCLUDE (see tools/version-header.sh).
# Each target starts from its seed corpus in fuzz/corpus/TARGET and keeps
# what it finds in FUZZ_BUILD/corpus-TARGET; a crash leaves its input in
# FUZZ_BUILD (crash-*, leak-*, timeout-*) and makes the script fail.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
top=$(pwd)
CLANG=${CLANG:-clang}
build=${FUZZ_BUILD:-$top/fuzz/build}
deps=no
build_only=no
secs=10
targets=()
for a in "$@"; do
    case $a in
        --deps) deps=yes ;;
        --build-only) build_only=yes ;;
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        fuzz_trace|fuzz_shell_parse) targets+=("$a") ;;
        *[!0-9]*|'') echo "fuzz: unknown argument '$a' (try --help)" >&2; exit 2 ;;
        *) secs=$a ;;
    esac
done
[ "${#targets[@]}" -eq 0 ] && targets=(fuzz_trace fuzz_shell_parse)

if ! command -v "$CLANG" >/dev/null 2>&1; then
    if [ "$deps" = yes ] && [ "$(id -u)" -eq 0 ]; then
        echo "fuzz: installing the Debian package clang"
        apt-get install -y -q clang >/dev/null ||
            { apt-get update -q >/dev/null && apt-get install -y -q clang >/dev/null; }
    fi
    if ! command -v "$CLANG" >/dev/null 2>&1; then
        echo "fuzz: $CLANG not found; install the Debian package clang (apt-get install clang)" >&2
        exit 2
    fi
fi

mkdir -p "$build" || exit 2
# include/bpool_version.h is generated (configure, or the script).
vinc=$(bash tools/version-header.sh "$build/include") || exit 2
flags=(-g -O1 -std=gnu11 -D_GNU_SOURCE= -fno-omit-frame-pointer
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -I"$vinc" -Iinclude -Isrc -Itools -Itools/shell)

build_target() {
    local t=$1 srcs
    case $t in
        fuzz_trace) srcs=(fuzz/fuzz_trace.c tools/trace.c); libs=(-lz) ;;
        fuzz_shell_parse)
            srcs=(fuzz/fuzz_shell_parse.c tools/shell/parse.c
                  tools/shell/report.c tools/common/parse.c
                  tools/common/printable.c src/error.c); libs=() ;;
    esac
    echo "fuzz: building $t"
    "$CLANG" "${flags[@]}" -o "$build/$t" "${srcs[@]}" "${libs[@]}"
}

status=0
for t in "${targets[@]}"; do
    build_target "$t" || { echo "fuzz: cannot build $t" >&2; exit 2; }
done
[ "$build_only" = yes ] && exit 0

for t in "${targets[@]}"; do
    mkdir -p "$build/corpus-$t"
    extra=()
    [ "$t" = fuzz_shell_parse ] && extra=(-close_fd_mask=2 -dict="$top/fuzz/shell.dict")
    echo "fuzz: running $t for ${secs}s"
    # shellcheck disable=SC2086
    (cd "$build" && ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
        "./$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
        -print_final_stats=1 "${extra[@]}" ${FUZZ_ARGS:-} \
        "corpus-$t" "$top/fuzz/corpus/$t") > "$build/$t.log" 2>&1
    rc=$?
    grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done [0-9]+ runs)' "$build/$t.log" | sed "s/^/fuzz: $t: /"
    if [ "$rc" -ne 0 ]; then
        echo "fuzz: $t FAILED (exit $rc); the report:" >&2
        tail -n 60 "$build/$t.log" >&2
        status=1
    else
        echo "fuzz: $t ok"
    fi
done
exit "$status"
