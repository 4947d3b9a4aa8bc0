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
# that version.  Here: 4 cuts with bpool's checksums, 3 without.
#
# About 8 s.  BPOOL_STRESS_SCALE (default 1) multiplies every duration.
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

# cut NAME ARGS...: a power-cut run that must pass; JSON report in $out.
cut() {
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

# ge NAME JSON KEY MIN: field KEY is at least MIN.
ge() {
    local v
    v=$(field "$3" "$2")
    if [ -n "$v" ] && [ "$v" -ge "$4" ]; then pass "$1: $3 = $v"
    else fail "$1: $3 = '$v', want >= $4: $2"; fi
}

if cut "4 power cuts, 4 threads, 1024 pages, 32 frames, checksums" -f p1.data \
        -t 4 --pages 1024 --frames 32 -m "$mix" --power-cut 4 -d "$(secs 1.5)" -s 31; then
    ge "checksums" "$out" cuts 4
    ge "checksums" "$out" cut_pending_writes 1
    ge "checksums" "$out" durable_records 4
    ge "checksums" "$out" pages_verified 4096
    [ "$(field mode "$out")" = power-cut ] && pass "mode power-cut" ||
        fail "mode: $out"
    [ ! -e p1.data ] && [ ! -e p1.data.dlog ] && [ ! -e p1.data.cut ] &&
        pass "a passing run removes its data file, side log and image" ||
        fail "p1.data, its side log or its image left behind"
fi

if cut "3 power cuts without bpool's checksums" -f p2.data --no-checksums -t 2 \
        --pages 512 --frames 16 -m "$mix" --power-cut 3 -d "$(secs 1)" -s 32; then
    ge "no checksums" "$out" cuts 3
    ge "no checksums" "$out" pages_verified 1536
fi

# A growing file: the size set by each allocation is durable only once a
# sync has covered it; the image may end before pages allocated since.
if cut "3 power cuts of a growing file" -f p3.data -t 2 --pages 256 \
        --max-pages 4096 --frames 16 -m read=40,write=40,alloc=15,checkpoint=1 \
        --power-cut 3 -d "$(secs 1)" -s 33; then
    ge "growing file" "$out" alloc 1
    ge "growing file" "$out" cuts 3
fi

finish
