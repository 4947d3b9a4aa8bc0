#!/bin/bash
# SPDX-License-Identifier: MIT
# kvdb_concurrent.sh - examples/kvdb from many threads at once (an
# automake TESTS script: exit 0 pass, 1 fail, 77 skip, 99 hard error).
#
#   1. `kvdb mt`: writers inserting, replacing and deleting, readers
#      (gets, and kvdb_mget of 16 keys at once) checking every answer
#      against what the writers have published,
#      scanners checking order and values, and a committer, all at once;
#      then the final contents, the count and `check`; with a pool that
#      holds the tree and with one of 64 frames (every miss evicts);
#   2. a multi-threaded load, verify and unload, then `check` in a new
#      process;
#   3. the same `mt` through the pread pager;
#   4. optimistic descents: `mt` on a tree of height 2, so that lookups
#      read the root and the level-1 nodes optimistically while writers
#      split leaves under them (their parents change) and copy the index
#      after every commit; every answer checked, and the descents shown to
#      be optimistic; then with conflicts injected (--conflict-every):
#      every third read (descents restart) and every read (each descent
#      falls back to latch coupling); a damaged internal node is
#      reported after 4 restarts, not taken for a conflict for ever;
#   5. `mt` with every third commit a compaction (kvdb_compact moves tree
#      pages and cuts the file under the readers and scanners).
#
# About 20 s (ThreadSanitizer: fewer keys).  Environment: see
# tests/kvdb_lib.sh.

. "${srcdir:-$(dirname "$0")/..}/tests/kvdb_lib.sh"

keys=16000
small=4000
load=24000
olc_keys=6000
case $san in
asan) keys=8000 small=3000 load=12000 olc_keys=3000 ;;
tsan) keys=3000 small=1500 load=6000 olc_keys=1500 ;;
esac
olc_base=40000        # keys for a tree of height 2 (8 KiB pages)

# mt NAME ARGS...: one mt run that must print "mt: ok", then check.
mt() {
    local name=$1 f=$2
    shift 2
    rm -f "$f"
    if try "$name" 0 "$@" "$f" mt --writers 3 --readers 2 --scanners 1 --keys "$keys" \
            --commit-ms 30; then
        has "$name: every answer right" out '^mt: ok \(0 wrong answers\)$'
        # A commit (checkpoint + fdatasync) can take longer than a short run
        # on a loaded machine under a sanitizer: require one only from runs
        # of 2 s or more.
        if grep -E -q '[1-9][0-9]* commits' out; then
            pass "$name: committed while running"
        elif awk '/^mt: .* commits in / { s = $(NF-1) } END { exit !(s < 2) }' out; then
            pass "$name: no commit in a run under 2 s (allowed)"
        else
            fail "$name: no commits: $(cat out)"
        fi
        try "$name: check in a new process" 0 "$@" "$f" check
    fi
}

# --- 1. mt -----------------------------------------------------------------------
mt "mt, pool holds the tree" big.db --frames 2048
keys=$small mt "mt, 64 frames" small.db --frames 64

# --- 2. threads through load, verify, unload --------------------------------------
try "load with 4 threads, 64 frames" 0 --frames 64 ld.db load $load --threads 4 \
    --seed 11 --commit-every 3000 && has "all committed" out "^committed $load\$"
try "verify with 4 threads" 0 --frames 64 ld.db verify $load --threads 4 --seed 11
try "unload a third with 3 threads" 0 --frames 64 ld.db unload $((load / 3)) --threads 3 \
    --seed 11 --step 3
try "the rest is there" 0 ld.db verify $((load / 3)) --seed 11 --start 1 --step 3 --sorted
try "check" 0 ld.db check && has "key count" out "^check: ok, $((load - load / 3)) keys\$"

# --- 5. compaction under readers ------------------------------------------------------
# Every third commit of mt's committer is a kvdb_compact: tree pages move
# and the file is cut while readers and scanners go on (writers wait).
# The file starts with a load that leaves half of it free (no compaction
# at its close), so that the first compaction has pages to move whatever
# the size of the run.
for pool in "--frames 2048" "--frames 64"; do
    rm -f cmp.db
    name="mt, a compaction every 3rd commit, $pool"
    # shellcheck disable=SC2086
    kv --no-compact $pool cmp.db load "$keys" --seed 3 --commit-every 500 >/dev/null 2>&1 ||
        fail "$name: the load before it"
    # shellcheck disable=SC2086
    if try "$name" 0 $pool cmp.db mt --writers 3 --readers 2 --scanners 1 --keys "$keys" \
            --commit-ms 10 --compact-every 3; then
        has "$name: every answer right" out '^mt: ok \(0 wrong answers\)$'
        cuts=$(sed -n 's/.* commits (\([0-9]*\) pages cut by compactions).*/\1/p' out)
        ncommits=$(sed -n 's/.* \([0-9]*\) commits (.*/\1/p' out)
        if [ "${ncommits:-0}" -ge 3 ]; then
            [ "${cuts:-0}" -gt 0 ] && pass "$name: $cuts pages cut" ||
                fail "$name: $ncommits commits, and the compactions cut nothing: $(cat out)"
        else
            pass "$name: ${ncommits:-0} commits, no compaction yet (allowed)"
        fi
        # shellcheck disable=SC2086
        try "$name: check in a new process" 0 $pool cmp.db check
    fi
done

# --- 3. pread pager ------------------------------------------------------------------
keys=$small mt "mt through pread/pwrite" pr.db --io pread

# --- 4. optimistic descents ------------------------------------------------------------
# descents FILE: "reads conflicts restarted latched" from kvdb --stats
descents() {
    sed -n 's/^descents: \([0-9]*\) optimistic reads (\([0-9]*\) conflicts), '\
'\([0-9]*\) descents restarted, \([0-9]*\) latched .*/\1 \2 \3 \4/p' "$1"
}
if try "a tree of height 2" 0 --frames 4096 olc.db load $olc_base --seed 11 &&
        try "its stats" 0 olc.db stats && has "height 2" out '^tree: .* height 2,'; then
    for every in 0 3 1; do
        name="optimistic mt"
        inject=()
        if [ $every -gt 0 ]; then
            name="$name, a conflict every $every reads"
            [ $every -eq 1 ] && name="optimistic mt, a conflict at every read"
            inject=(--conflict-every $every)
        fi
        cp olc.db o.db
        try "$name" 0 --stats "${inject[@]}" --frames 4096 o.db mt --writers 2 \
            --readers 3 --scanners 1 --keys $olc_keys --commit-ms 30 || continue
        has "$name: every answer right" out '^mt: ok \(0 wrong answers\)$'
        read -r reads conflicts restarted latched <<<"$(descents err)"
        echo "     descents: ${reads:-?} optimistic reads, ${conflicts:-?} conflicts," \
            "${restarted:-?} restarted, ${latched:-?} latched"
        case $every in
        0) [ "${reads:-0}" -gt 0 ] && pass "$name: reads were optimistic" ||
               fail "$name: no optimistic reads: $(grep descents err)" ;;
        3) [ "${restarted:-0}" -gt 0 ] && pass "$name: descents restarted" ||
               fail "$name: no restarts: $(grep descents err)"
           # The conflicts reported are counted as conflicts.
           [ "${conflicts:-0}" -gt 0 ] && pass "$name: conflicts counted" ||
               fail "$name: no conflicts counted: $(grep descents err)" ;;
        1) [ "${latched:-0}" -gt 0 ] && pass "$name: descents fell back to latches" ||
               fail "$name: no fallback: $(grep descents err)" ;;
        esac
        try "$name: the loaded keys are intact" 0 o.db verify $olc_base --seed 11
        try "$name: check" 0 o.db check
    done
fi
# A damaged internal node (here the root's type byte, in a file without
# checksums) looks like a conflict to an optimistic descent: it restarts 4
# times, then the latched descent reports the damage.
if try "a file without checksums" 0 --no-checksums nc.db load 3000 --seed 3; then
    s0=$(od -An -t u8 -j 24 -N 8 nc.db)               # meta slots: seq at 24,
    s1=$(od -An -t u8 -j $((4096 + 24)) -N 8 nc.db)   # root at 32, the second
    slot=0                                            # at half of 8 KiB
    [ "$s1" -gt "$s0" ] && slot=4096
    root=$(($(od -An -t u8 -j $((slot + 32)) -N 8 nc.db)))
    printf '\007' | dd of=nc.db bs=1 seek=$((root * 8192)) conv=notrunc status=none
    if try "damaged root: get fails" 2 --stats nc.db get somekey; then
        has "damaged root: reported by the latched descent" err \
            "page $root: expected an internal page"
        has "damaged root: 4 restarts, then latches" err \
            '^descents: .* 4 descents restarted, 1 latched '
    fi
fi

finish
