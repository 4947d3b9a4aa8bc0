#!/bin/bash
# SPDX-License-Identifier: MIT
# stress_powercut.sh - a short power-cut pass of tools/bpool-stress (an
# automake TESTS script: exit 0 pass, 1 fail, 77 skip, 99 hard error).
#
# bpool-stress --power-cut ends each crash cycle in a simulated power cut
# (tools/powercut.h): the child records every write to the data file, and
# at a random moment writes the image a cut could leave - what the last
# fdatasync covered, plus the later writes each left out, kept or torn at
# 512-byte or 4 KiB pieces - and the parent checks that image: every page
# at least the version a completed checkpoint or sync made durable (the
# side log), and a torn page detected (by bpool's checksum; with
# --no-checksums by the tool's own) and only where a write came after
# that version.  Here: 4 cuts with bpool's checksums, 3 without, 2 on the
# io_uring engine, 3 with a doublewrite area, 3 of a file that grows (the
# size is durable only once a sync covered it), and 4 of a growing file
# without bpool's checksums.
#
# About 10 s.  BPOOL_STRESS_SCALE (default 1) multiplies every duration.
#
# Environment (exported by the harness, see Makefile.am): top_builddir,
# BPOOL_STRESS (the program), BPOOL_TEST_TMPDIR (scratch on the build file
# system).  The helpers are tests/lib.sh's.

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh" || exit 99
stress=${BPOOL_STRESS:-$top_builddir/tools/bpool-stress}
need_program "$stress"
scratch powercut

# Frequent checkpoints and syncs, so that every cycle makes versions
# durable before the cut.
mix=read=55,write=35,prefetch=2,flush=1,flushall=0.05,checkpoint=0.5,sync=0.25

if stress_ok "4 power cuts, 4 threads, 1024 pages, 32 frames, checksums" -f p1.data \
        -t 4 --pages 1024 --frames 32 -m "$mix" --power-cut 4 -d "$(secs 1.5)" -s 31; then
    expect "checksums" "$out" "cuts >= 4" "cut_pending_writes >= 1" \
        "durable_records >= 4" "pages_verified >= 4096"
    # A cut is neither a kill nor a clean exit: cycles = kills +
    # clean_exits + cuts, as in crash mode and the text report.
    expect "every cycle counted as a cut, once" "$out" "cycles == cuts" \
        "kills == 0" "clean_exits == 0"
    [ "$(field mode "$out")" = power-cut ] && pass "mode power-cut" ||
        fail "mode: $out"
    # The options as given: --power-cut's count (it was true), --cycles
    # null as it was not given (it was the count).
    [ "$(option power_cut "$out")" = 4 ] && [ "$(option cycles "$out")" = null ] &&
        pass "options: power_cut 4 as given, cycles null" ||
        fail "options: power_cut $(option power_cut "$out"), cycles $(option cycles "$out")"
    [ ! -e p1.data ] && [ ! -e p1.data.dlog ] && [ ! -e p1.data.cut ] &&
        pass "a passing run removes its data file, side log and image" ||
        fail "p1.data, its side log or its image left behind"
fi

if stress_ok "3 power cuts without bpool's checksums" -f p2.data --no-checksums -t 2 \
        --pages 512 --frames 16 -m "$mix" --power-cut 3 -d "$(secs 1)" -s 32; then
    expect "no checksums" "$out" "cuts >= 3" "pages_verified >= 1536"
fi

# The io_uring engine (where it is built and allowed): the recorder taps
# the engines' calls, so io_uring's writes are recorded as libaio's are.
if "$stress" -q --io-engine io_uring -f p5_probe.data --pages 16 -n 10 -t 1 \
        >/dev/null 2>&1; then
    if stress_ok "2 power cuts on io_uring" -f p5.data --io-engine io_uring \
            -t 4 --pages 1024 --frames 32 -m "$mix" --power-cut 2 \
            -d "$(secs 1)" -s 35; then
        expect "io_uring" "$out" "cuts >= 2" "cut_pending_writes >= 1" \
            "pages_verified >= 2048"
        [[ $out == *'"io_engine":"io_uring"'* ]] &&
            pass "the cuts ran on io_uring" || fail "engine: $out"
    fi
else
    echo "note: no io_uring engine here; its power cuts are left out"
fi

# With a doublewrite area: the open after each cut repairs what it tore,
# so the check finds no torn page at all.
if stress_ok "3 power cuts with a doublewrite area" -f p4.data --doublewrite -t 4 \
        --pages 1024 --frames 32 -m "$mix" --power-cut 3 -d "$(secs 1)" -s 34; then
    expect "doublewrite" "$out" "cuts >= 3" "torn_pages_detected == 0" \
        "pages_verified >= 3072"
fi

# A growing file: the size set by each allocation is durable only once a
# sync has covered it; the image may end before pages allocated since.
if stress_ok "3 power cuts of a growing file" -f p3.data -t 2 --pages 256 \
        --max-pages 4096 --frames 16 -m read=40,write=40,alloc=15,checkpoint=1 \
        --power-cut 3 -d "$(secs 1)" -s 33; then
    expect "growing file" "$out" "alloc >= 1" "cuts >= 3"
fi

# A growing file without bpool's checksums: a page allocated since the
# last sync is durable at version 0, so one the cut tore goes back to
# zeros - written by the tool, since its own check's read left the torn
# bytes in the pool.  The next cycle and --verify-only of the kept file
# (which covers the last cut's put-backs) must find zeros there.
if stress_ok "4 power cuts of a growing file without bpool's checksums" \
        -f p6.data --keep --no-checksums -t 2 --pages 256 --max-pages 4096 \
        --frames 16 -m read=40,write=40,alloc=15,checkpoint=1 \
        --power-cut 4 -d "$(secs 0.6)" -s 36; then
    expect "growing file, no checksums" "$out" "alloc >= 1" "cuts >= 4" \
        "torn_pages_detected >= 1"
    out=$("$stress" -q --json -f p6.data --verify-only 2>err)
    expect "--verify-only after the cuts" "$out" "pages_verified == pages" \
        "bad_pages == 0"
    [ "$(field bad_pages "$out")" = 0 ] || sed 's/^/    /' err | head -10
fi

finish
