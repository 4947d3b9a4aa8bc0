#!/bin/bash
# SPDX-License-Identifier: MIT
# powercut_campaign.sh - many simulated power cuts in one run, across
# bpool-stress and kvdb (not part of make check: about 25 minutes with the
# defaults; `make powercut-campaign`).  Run from the build directory:
#
#     tests/powercut_campaign.sh [STRESS_CUTS [KVDB_CUTS [DW_CUTS]]]
#                                                   (700, 300, 200)
#
# bpool-stress --power-cut (tools/stress/crash.c) ends each cycle in a cut
# and fails the run if a page lost a version a sync had made durable, or
# (with checksums) if a torn page was not detected.  Its cuts are split
# over four workloads: checksums with 4 threads, checksums with frequent
# syncs of a growing file (the header records the page count), no
# checksums, and 8 KiB pages.  kvdb --power-cut-after cuts a load at a
# random moment; the image must check clean and hold every key committed
# before the cut (bpool pager with checksums, and the pread pager).  Then
# DW_CUTS more bpool-stress cuts of files with a doublewrite area
# (BP_DOUBLEWRITE, checksums): the open after each cut must leave no page
# torn - "torn after reopen" counts those the check still found.
# Prints one "campaign:" line with the totals; exit 0 if nothing was lost.
#
# Environment: top_builddir (default .), BPOOL_STRESS, KVDB.

set -u
top_builddir=${top_builddir:-$(pwd)}
stress=${BPOOL_STRESS:-$top_builddir/tools/bpool-stress}
kvdb=${KVDB:-$top_builddir/examples/kvdb/kvdb}
stress_cuts=${1:-700}
kvdb_cuts=${2:-300}
dw_cuts=${3:-200}
for p in "$stress" "$kvdb"; do
    [ -x "$p" ] || { echo "powercut_campaign: $p not built" >&2; exit 2; }
done
work=$(mktemp -d "$top_builddir/tests/campaign.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 2

lost=0 undetected=0 failed=0 cuts=0 torn_writes=0 torn_found=0 dw_torn_writes=0 dw_torn=0
num() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" <<<"$2"; }

# stress NAME CUTS ARGS...: one bpool-stress run of CUTS power cuts.
stress_run() {
    local name=$1 n=$2 out st
    shift 2
    rm -f s.data s.data.dlog s.data.cut
    out=$("$stress" -q --json -f s.data --power-cut "$n" "$@" 2>err)
    st=$?
    cuts=$((cuts + $(num cuts "$out")))
    torn_writes=$((torn_writes + $(num cut_torn_writes "$out")))
    torn_found=$((torn_found + $(num torn_pages_detected "$out")))
    if [ "$st" -ne 0 ]; then
        failed=$((failed + 1))
        grep -q 'durable write' err && lost=$((lost + 1))
        grep -q "passed bpool's checksum" err && undetected=$((undetected + 1))
        echo "FAIL stress $name (exit $st):"; sed 's/^/    /' err | head -20
    else
        echo "ok   stress $name: $(num cuts "$out") cuts, $(num cut_torn_writes "$out") torn writes, $(num torn_pages_detected "$out") torn pages detected"
    fi
}

mix=read=55,write=35,prefetch=2,flush=1,flushall=0.05,checkpoint=0.5,sync=0.25
q=$((stress_cuts / 4))
stress_run "checksums, 4 threads" "$q" -t 4 --pages 2048 --frames 64 -m "$mix" -d 0.5 -s 41
stress_run "checksums, growing file" "$q" -t 2 --pages 256 --max-pages 8192 --frames 32 \
    -m read=40,write=40,alloc=15,checkpoint=1,sync=1 -d 0.5 -s 42
stress_run "no checksums" "$q" --no-checksums -t 2 --pages 1024 --frames 32 -m "$mix" -d 0.5 -s 43
stress_run "8 KiB pages" "$((stress_cuts - 3 * q))" -P 8K -t 3 --pages 1024 --frames 48 \
    -m "$mix" -d 0.5 -s 44

# kvdb: each round a load cut after 0.3 to 1.1 s; the image replaces the
# file and must hold every key committed before the cut.  The load asks for
# 600,000 keys so that it is still running when the cut comes (through the
# page cache 60,000 take only 0.6 s); the cut ends it.
committed() { sed -n 's/^committed \([0-9]*\)$/\1/p' "$1" | tail -n 1; }
kv_rounds() {
    local db=$1 n=$2 done=0 r ms st c keys
    shift 2
    rm -f "$db" "$db".*
    "$kvdb" "$@" "$db" put first-key x >/dev/null 2>err || { echo "FAIL kvdb: $(cat err)"; failed=$((failed + 1)); return; }
    for r in $(seq 1 "$n"); do
        ms=$(( 300 + RANDOM % 800 ))
        timeout -k 10 300 "$kvdb" "$@" --frames 64 --power-cut-after "$ms" "$db" load 600000 \
            --start "$done" --seed 21 --commit-every 700 >load.out 2>load.err
        st=$?
        if [ "$st" -ne 98 ] || [ ! -e "$db.cut" ]; then
            failed=$((failed + 1))
            echo "FAIL kvdb $* round $r: exit $st: $(head -c 300 load.err)"
            return
        fi
        mv "$db.cut" "$db"
        cuts=$((cuts + 1))
        c=$(committed load.out)
        [ -n "$c" ] && done=$c
        if ! timeout -k 10 300 "$kvdb" "$@" "$db" check >out 2>err; then
            failed=$((failed + 1)); lost=$((lost + 1))
            echo "FAIL kvdb $* round $r: check: $(head -c 300 err)"
            return
        fi
        keys=$(sed -n 's/^check: ok, \([0-9]*\) keys$/\1/p' out)
        if [ "${keys:-0}" -lt "$done" ] || { [ "$done" -gt 0 ] &&
            ! timeout -k 10 300 "$kvdb" "$@" "$db" verify "$done" --seed 21 --sorted >/dev/null 2>err; }; then
            failed=$((failed + 1)); lost=$((lost + 1))
            echo "FAIL kvdb $* round $r: $done committed, ${keys:-?} keys: $(head -c 300 err)"
            return
        fi
    done
    echo "ok   kvdb ${*:-bpool pager}: $n cuts, every committed key there (last $done)"
}
kv_rounds k.db $((kvdb_cuts - kvdb_cuts / 5))
kv_rounds kp.db $((kvdb_cuts / 5)) --io pread

# Doublewrite: every torn page must be repaired by the open.
dw_run() {
    local name=$1 n=$2 before_w=$torn_writes before_t=$torn_found
    shift 2
    stress_run "$name" "$n" --doublewrite "$@"
    dw_torn_writes=$((dw_torn_writes + torn_writes - before_w))
    dw_torn=$((dw_torn + torn_found - before_t))
}
h=$((dw_cuts / 2))
dw_run "doublewrite, 4 threads" "$h" -t 4 --pages 2048 --frames 64 -m "$mix" -d 0.5 -s 45
dw_run "doublewrite, 8 KiB pages" "$((dw_cuts - h))" -P 8K -t 3 --pages 1024 --frames 48 \
    -m "$mix" -d 0.5 -s 46

echo "campaign: $cuts cuts (bpool-stress $stress_cuts asked, kvdb $kvdb_cuts asked," \
     "doublewrite $dw_cuts asked), $torn_writes torn writes in the images," \
     "$torn_found torn pages detected at reopen, runs failed $failed, lost durable" \
     "data $lost, undetected torn pages $undetected; with doublewrite" \
     "$dw_torn_writes torn writes, $dw_torn torn after reopen"
[ "$dw_torn" -eq 0 ] || failed=$((failed + 1))
[ "$failed" -eq 0 ]
