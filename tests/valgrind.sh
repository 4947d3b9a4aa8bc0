#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# valgrind.sh - the Check unit-test programs (tests/check_*) under
# valgrind's memcheck: invalid reads and writes, uses of uninitialised
# values, bad frees, and memory definitely lost by the time the program
# exits.  Not part of `make check`: 1.5-2.5 minutes on 2 cores, against 35 s
# for the same programs natively.
#
# Usage: bash tests/valgrind.sh [PROGRAM...]
#   PROGRAM   check_pool, tests/check_pool or a path to a test program;
#             default: every tests/check_* program of the build directory
#             (build them first: `make check TESTS=`).
#
# Environment (each has a default, so the script also runs by hand from
# the top build directory):
#   top_builddir      the build directory; default: the current directory
#   srcdir            the source directory, for tests/data; default: the
#                     directory above this script
#   VALGRIND          the valgrind program; default: valgrind
#   VALGRIND_OPTS     more valgrind options, after the script's own
#   VALGRIND_JOBS     programs run at once; default: the number of CPUs,
#                     at most 4 (memcheck runs one thread at a time, so a
#                     program uses about one CPU)
#   VALGRIND_TIMEOUT  seconds one program may take; default 240
#   CK_RUN_SUITE, CK_RUN_CASE, CK_VERBOSITY  as for the programs themselves
#
# Output: one line per program as it ends (PASS or FAIL, its time, and
# why it failed), then a summary in a fixed order.  Each program's output
# and valgrind's report are in $top_builddir/tests/tmp/valgrind/NAME.log
# (removed by `make clean`); the log of a program that failed is printed
# too.  Exit status: 0 when every program passed with no memcheck error,
# 1 otherwise, 77 (skip) when valgrind is not installed, 99 when there is
# nothing to run.
#
# How the programs are run:
#   - CK_FORK=no: each program runs all its tests in one process, so one
#     memcheck report covers them all, and the leak check at exit sees
#     what every test left behind.  Per-test allocations a test keeps on
#     purpose are still reachable then (tu_keep in tests/testutil.c).
#   - Timeouts: Check enforces none in no-fork mode (its timer kills a
#     forked test), so tcase_set_timeout(), CK_DEFAULT_TIMEOUT and
#     CK_TIMEOUT_MULTIPLIER do not limit anything here; VALGRIND_TIMEOUT
#     bounds each program instead.  (CK_TIMEOUT_MULTIPLIER is set all the
#     same, to 10 unless it is set already: see below.)  The only timing-sensitive checks are a few that
#     want one call to return within 2 or 3 s (check_errors_table,
#     check_faults): a pin or an allocation that must fail at once.
#   - Errors count: --error-exitcode=1, and a failed test exits 1 too;
#     the log tells which (the ERROR SUMMARY lines, Check's
#     "NN%: Checks: ..." line).  Leaks count only when definite;
#     "possibly lost" blocks are listed in the log but do not fail the
#     run.
#
# One program is left out unless named (check_engine: io_uring, which
# memcheck does not follow), and no suppression file is needed:
#   - O_DIRECT I/O through libaio: valgrind wraps io_setup, io_submit and
#     io_getevents.  io_submit checks that the buffers of a write are
#     defined; io_getevents marks the buffers of a completed read (pread
#     and preadv) as defined, so the bytes the kernel wrote there by DMA
#     are not reported as uninitialised.  (The pool's frames are also
#     anonymous mmap memory, which memcheck treats as zeroed.)
#   - check_aio, check_frames, check_errors_table and check_faults tap
#     the engines' calls (bp__io_tap, src/io_engine.h) in the program
#     itself, then call libaio's: memcheck runs them unchanged and still
#     sees the system calls.
#   - check_errors_table forks a child (test_open_eacces: it drops to
#     nobody and opens a file it may not read): a forked child runs
#     under memcheck too, writes its report to the same log and exits 1 on
#     an error, which fails the test that forked it.  The same program sets
#     RLIMIT_FSIZE around one test; valgrind passes that through.
#   - check_faults runs mkfs.ext4 and mount through system(): those
#     programs are not run under valgrind (no --trace-children).
#   - No test program uses SIGKILL (the crash tests are shell scripts).
#
# shellcheck shell=bash

set -u

here=$(cd "$(dirname "$0")" && pwd)
top_builddir=$(cd "${top_builddir:-.}" && pwd) || exit 99
srcdir=${srcdir:-${top_srcdir:-$(dirname "$here")}}
top_srcdir=${top_srcdir:-$srcdir}
export top_builddir srcdir top_srcdir
export CK_FORK=no
# Check ignores it in no-fork mode, but the tests read it as the sign of a
# slow build, as under the sanitizers (check_pagetable then allows more
# lookups to miss while the table is being rebuilt): memcheck is slower
# still, and runs one thread at a time.
export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-10}

valgrind=${VALGRIND:-valgrind}
limit=${VALGRIND_TIMEOUT:-240}
jobs=${VALGRIND_JOBS:-$(nproc 2>/dev/null || echo 2)}
[ "$jobs" -gt 4 ] && [ -z "${VALGRIND_JOBS:-}" ] && jobs=4
[ "$jobs" -ge 1 ] || jobs=1

if ! command -v "$valgrind" >/dev/null 2>&1; then
    echo "SKIP: $valgrind not found; install it (Debian, Ubuntu) with:"
    echo "    apt-get install -y valgrind"
    exit 77
fi

# The programs: the arguments, or every tests/check_* executable of the
# build directory (not the .c, .o, .log or .trs files beside them).
progs=()
if [ "$#" -gt 0 ]; then
    for a in "$@"; do
        case $a in
            */*) p=$(cd "$(dirname "$a")" 2>/dev/null && pwd)/${a##*/} ;;
            *) p=$top_builddir/tests/$a ;;
        esac
        if [ ! -f "$p" ] || [ ! -x "$p" ]; then
            echo "FAIL: $p: no such test program (build it: make check TESTS=)"
            exit 99
        fi
        progs+=("$p")
    done
else
    # The slowest first, so that none of them ends up running alone at
    # the end.  Under memcheck on 2 cores: check_concurrency 50-150 s,
    # nearly all of it test_readers_writers_one_page (its readers re-pin
    # the page until the writers are done, some 10 million times under
    # memcheck, and each checks the whole page), check_aio,
    # check_clockpro and check_writeback 10-30 s each, the others < 10 s.
    for n in check_concurrency check_aio check_clockpro check_writeback; do
        p=$top_builddir/tests/$n
        [ -f "$p" ] && [ -x "$p" ] && progs+=("$p")
    done
    # check_engine is left out: nearly all of it drives io_uring, and
    # memcheck (3.19) does not follow the rings the kernel shares with
    # the program - its first io_uring test waits for ever there.  Name
    # it to run it all the same.
    for p in "$top_builddir"/tests/check_*; do
        case ${p##*/} in
            *.*|check_concurrency|check_aio|check_clockpro|check_writeback)
                continue ;;
            check_engine)
                echo "valgrind.sh: check_engine left out (io_uring; see the script)"
                continue ;;
        esac
        [ -f "$p" ] && [ -x "$p" ] && progs+=("$p")
    done
fi
if [ "${#progs[@]}" -eq 0 ]; then
    echo "FAIL: no test programs in $top_builddir/tests (build them: make check TESTS=)"
    exit 99
fi

logdir=$top_builddir/tests/tmp/valgrind
mkdir -p "$logdir" || exit 99

# shellcheck disable=SC2206   # VALGRIND_OPTS is a list of words
vg_cmd=("$valgrind" --tool=memcheck --error-exitcode=1 --leak-check=full
        --errors-for-leak-kinds=definite --track-fds=no --num-callers=30
        ${VALGRIND_OPTS:-})

now_ms() { date +%s%3N; }

# run_one PROGRAM: run it under memcheck, print its result line and
# write "PASS|FAIL SECONDS WHY" to $logdir/NAME.result.
run_one() {
    local prog=$1 name=${1##*/} log result why rc start ms errs checks vpid
    log=$logdir/$name.log
    local cmd=("${vg_cmd[@]}" "$prog")
    # A libtool wrapper script (a shared build) runs the real program
    # through libtool, or memcheck would check /bin/sh.
    if [ "$(head -c 2 "$prog")" = '#!' ] && [ -x "$top_builddir/libtool" ]; then
        cmd=("$top_builddir/libtool" --mode=execute "${vg_cmd[@]}" "$prog")
    fi
    start=$(now_ms)
    # timeout runs the program in a process group of its own, and must:
    # Check's runner answers SIGTERM by signalling its whole process group
    # (killpg), which would otherwise take this script and its caller
    # down with it.  So a SIGTERM or ^C to this script is passed on to
    # timeout, which passes it on to that group.
    local tpid
    ( cd "$top_builddir" && exec timeout -k 10 "$limit" "${cmd[@]}" ) \
        >"$log" 2>&1 </dev/null &
    tpid=$!
    trap 'kill -TERM "$tpid" 2>/dev/null' TERM INT
    wait "$tpid"
    rc=$?
    # (a signal ends the wait early: wait for timeout to finish)
    while kill -0 "$tpid" 2>/dev/null; do
        wait "$tpid"
        rc=$?
    done
    trap - TERM INT
    ms=$(( $(now_ms) - start ))
    # A program that was killed left its scratch directory (tu_dir in
    # tests/testutil.c) behind.
    vpid=$(sed -n 's/^==\([0-9]*\)== Command: .*/\1/p' "$log" | head -n 1)
    [ -n "$vpid" ] && rm -rf "$top_builddir/tests/tmp-$vpid-"??????
    # Every process's errors: the program's and any forked child's.
    errs=$(sed -n 's/^==[0-9]*== ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" |
           awk '{ n += $1 } END { print n + 0 }')
    checks=$(grep -E '^[0-9]+%: Checks: [0-9]+' "$log" | tail -n 1)
    why=
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        why="timed out after ${limit}s"
    elif ! grep -q '^==[0-9]*== ERROR SUMMARY:' "$log"; then
        why="exit $rc, no memcheck summary"
    else
        [ "$errs" -gt 0 ] && why="memcheck: $errs error(s)"
        case $checks in
            100%:*) ;;
            '') why="${why:+$why; }no Check summary" ;;
            *) why="${why:+$why; }tests: $checks" ;;
        esac
        [ -z "$why" ] && [ "$rc" -ne 0 ] && why="exit $rc"
    fi
    if [ -z "$why" ]; then
        result=PASS
        why=${checks#*: }
    else
        result=FAIL
    fi
    printf '%s %d.%d %s\n' "$result" $((ms / 1000)) $((ms % 1000 / 100)) "$why" \
        >"$logdir/$name.result"
    printf '%-4s %-22s %6d.%ds  %s\n' "$result" "$name" $((ms / 1000)) \
        $((ms % 1000 / 100)) "$why"
}

echo "memcheck: ${#progs[@]} program(s), $jobs at a time, ${limit}s each at most;" \
     "logs in $logdir"
"$valgrind" --version
t0=$(now_ms)
# Stopped (^C, a CI time limit): stop the programs too, then give up.
# shellcheck disable=SC2317   # called by the trap
stop() {
    trap - TERM INT
    echo "memcheck: stopped; stopping the programs still running"
    # shellcheck disable=SC2046   # one pid per word
    kill -TERM $(jobs -p) 2>/dev/null
    wait
    exit 1
}
trap stop TERM INT
for prog in "${progs[@]}"; do
    rm -f "$logdir/${prog##*/}.result"
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n
    done
    run_one "$prog" &
done
wait

# Summary, in the order the programs were given; the logs of failures.
failed=0
echo
echo "memcheck summary ($(( ($(now_ms) - t0) / 1000 ))s in all):"
for prog in "${progs[@]}"; do
    name=${prog##*/}
    if read -r result secs why <"$logdir/$name.result" 2>/dev/null; then
        :
    else
        result=FAIL secs='?' why="no result"
    fi
    printf '  %-4s %-22s %7ss  %s\n' "$result" "$name" "$secs" "$why"
    [ "$result" = PASS ] || failed=$((failed + 1))
done
if [ "$failed" -gt 0 ]; then
    for prog in "${progs[@]}"; do
        name=${prog##*/}
        result=
        read -r result _ <"$logdir/$name.result" 2>/dev/null
        [ "${result:-FAIL}" = PASS ] && continue
        printf '\n----- %s -----\n' "$logdir/$name.log"
        cat "$logdir/$name.log"
    done
    echo
    echo "memcheck: $failed of ${#progs[@]} program(s) failed"
    exit 1
fi
echo "memcheck: all ${#progs[@]} program(s) clean"
exit 0
