#!/bin/bash
# SPDX-License-Identifier: MIT
# stress_crash.sh - a short crash pass of tools/bpool-stress (an automake
# TESTS script: exit 0 pass, 1 fail, 77 skip, 99 hard error).
#
# bpool-stress --crash runs the workload in a child, kills it with SIGKILL
# at a random moment, reopens the data file with a fresh pool and checks
# every page: consistent (no torn or mixed page), and at least the version
# that a completed bp_checkpoint/bp_sync made durable, as recorded in the
# fsync'd side log.  Here: 3 cycles with frequent checkpoints, 2 cycles
# with a pool of 6 frames; then proof that the check has teeth: put back
# an older copy of the data file and --verify-only must report the durable
# writes it lacks.
#
# About 8 s.  BPOOL_STRESS_SCALE (default 1) multiplies every duration.
#
# Environment (exported by the harness, see Makefile.am): top_builddir,
# BPOOL_STRESS (the program), BPOOL_TEST_TMPDIR (scratch on the build file
# system).  The helpers (need_program, scratch, pass, fail, secs, field,
# finish) are tests/lib.sh's.

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh" || exit 99
stress=${BPOOL_STRESS:-$top_builddir/tools/bpool-stress}
need_program "$stress"
scratch crash

# The default mix with checkpoints and syncs 25 times as often, so
# every cycle makes versions durable before the kill.
mix=read=60,write=30,alloc=0.5,prefetch=2,flush=1,flushall=0.05,checkpoint=0.5,sync=0.25

# crash NAME ARGS...: a crash run that must pass; JSON report in $out.
crash() {
    local name=$1
    shift
    stress_ok "$name" --crash "$@"
}

# --- 3 cycles, 4 threads ------------------------------------------------------
if crash "3 crash cycles, 4 threads, 1024 pages, 32 frames" -f c1.data -t 4 \
        --pages 1024 --frames 32 -m "$mix" --cycles 3 -d "$(secs 1.5)" -s 21; then
    expect "3 cycles" "$out" "cycles >= 3" "kills >= 2" "durable_records >= 2" \
        "floor_pages >= 1024" "pages_verified >= 3072" "checkpoint >= 1"
    [ "$(field errors "$out")" = 0 ] && pass "3 cycles: no errors" ||
        fail "3 cycles: errors: $out"
    [ ! -e c1.data ] && [ ! -e c1.data.dlog ] &&
        pass "a passing crash run removes its data file and side log" ||
        fail "c1.data or its side log left behind"
fi

# --- Two files in one pool: crash cycles over both ---------------------------
if crash "2 crash cycles, 2 files in one pool" -f cf.data --files 2 -t 4 \
        --pages 512 --frames 24 -m "$mix" --cycles 2 -d "$(secs 1)" -s 23; then
    expect "2 files" "$out" "cycles >= 2" "pages_verified >= 1024" \
        "durable_records >= 1"
    [[ $out == *'"files":2,'* ]] && pass "2 files: the options say files 2" ||
        fail "2 files: no \"files\":2 in the options: $out"
    [ ! -e cf.data ] && [ ! -e cf.data.1 ] &&
        pass "2 files: a passing crash run removes both files" ||
        fail "2 files: cf.data or cf.data.1 left behind"
fi

# --- The io_uring engine: crash cycles with resizes (where io_uring is) ----
if "$stress" -q --io-engine io_uring -f cu_probe.data --pages 16 -n 10 -t 1 \
        >/dev/null 2>&1; then
    if crash "2 crash cycles on io_uring, with resizes" -f cu.data --io-engine io_uring \
            -t 4 --pages 512 --frames 24 -m "$mix,resize=1" --cycles 2 \
            -d "$(secs 1)" -s 25; then
        expect "io_uring" "$out" "cycles >= 2" "pages_verified >= 512" \
            "durable_records >= 1"
        [[ $out == *'"io_engine":"io_uring"'* ]] &&
            pass "io_uring: the options say io_engine io_uring" ||
            fail "io_uring: no \"io_engine\":\"io_uring\" in the options: $out"
    fi
else
    echo "note: no io_uring engine here; its crash run is left out"
fi
rm -f cu_probe.data

# --- A pool of 6 frames: -BP_ENOFRAME retried in the children too ----------
if crash "2 crash cycles, 6 threads, 6 frames" -f c2.data -t 6 --pages 256 --frames 6 \
        -m "$mix" --cycles 2 -d "$(secs 1)" -s 22; then
    expect "6 frames" "$out" "cycles >= 2" "pages_verified >= 512"
fi

# --- The check has teeth ---------------------------------------------------
# A file with history, an older copy of it, one crash cycle with frequent
# checkpoints on it (seed 8: killed late in the cycle), then the old copy
# put back: pages the side log says are durable at a newer version must be
# reported lost.
"$stress" -q -f c3.data -t 2 --pages 256 --frames 16 -n 2000 --keep -s 23 >/dev/null 2>err ||
    fail "making c3.data: $(cat err)"
cp c3.data c3.old
if crash "1 crash cycle on a reused file" -f c3.data --reuse --keep -t 2 --frames 16 \
        -m read=50,write=40,checkpoint=5 --cycles 1 -d "$(secs 1)" -s 8; then
    expect "reused file" "$out" "durable_records >= 1"
    out=$("$stress" --json -f c3.data --verify-only 2>err)
    [ "$(field result "$out")" = ok ] && pass "--verify-only after the crash: ok" ||
        fail "--verify-only after the crash: $out $(cat err)"
    cp c3.old c3.data
    "$stress" -f c3.data --verify-only >out 2>err
    st=$?
    if [ "$st" -eq 1 ] && grep -q "made durable by a completed checkpoint" err &&
            grep -q "a durable write was lost" err; then
        pass "an older file than the side log: exit 1, durable writes lost: $(grep -c 'durable write was lost' err) pages shown"
    else
        fail "old copy: status $st: $(head -5 err)"
    fi
fi

# --- SIGTERM after a good cycle: the report has that cycle's figures -----
# Its line is printed when the next cycle starts; stopped there, the
# summary still counts the pages the side log made durable (the fill's,
# at least), not 0.
"$stress" -f c4.data -t 2 --pages 256 --frames 16 -m "$mix" --crash --cycles 50 \
    -d "$(secs 1)" -s 7 >c4.out 2>c4.err &
pid=$!
for _ in $(seq 600); do
    grep -q '^cycle 1/' c4.out && break
    sleep 0.1
done
kill -TERM "$pid"
wait "$pid"
st=$?
durable=$(sed -n 's/^  crash .* \([0-9]*\) pages with a durable version$/\1/p' c4.out)
if [ "$st" -eq 143 ] && grep -q '^  result     interrupted$' c4.out &&
        [ "${durable:-0}" -ge 256 ]; then
    pass "SIGTERM after a cycle: exit 143, $durable pages with a durable version"
else
    fail "SIGTERM after a cycle: status $st, durable pages '${durable}': $(cat c4.out c4.err)"
fi

finish
