#!/bin/bash
# SPDX-License-Identifier: MIT
# kvdb_basic.sh - examples/kvdb under constant eviction (an automake TESTS
# script: exit 0 pass, 1 fail, 77 skip, 99 hard error).
#
# With a pool of 64 frames (512 KiB) against a tree of about 15 MiB:
#   1. insert 200,000 random keys (committing every 20,000); the keys are
#      random, and each batch of 10,000 is inserted in key order so that
#      the run takes seconds, not minutes, while still sweeping the whole
#      tree through the pool twenty times (every miss evicts a page);
#   2. verify all of them with get, in key order, and 10,000 in random
#      order; a full scan must return exactly those keys in order;
#   3. a scan with BP_SCAN leaves the index pages resident in a pool that
#      holds a quarter of the file, as the lookups before it left them;
#   4. delete half of the keys; verify both halves (present and absent),
#      the scan, the count and the structure; mget of keys from both
#      halves and of keys never stored prints exactly what a get of each
#      prints, with pools of 64 and of 4096 frames; a scan reading leaves
#      ahead through streams returns what one leaf per descent returns;
#   5. every command is a new process, so all of the above after 1 also
#      verifies what reopening finds; then delete the rest: the tree
#      shrinks to one empty leaf and check still passes; loading again
#      reuses the free pages instead of growing the file, and compacting
#      gives back the ones left;
#   6. random inserts one at a time leave the leaves at least 76% full.
#
# About 30 s on a 2-CPU machine.  Under sanitizers the key count is smaller (KVDB_TEST_SAN).
# Environment: see tests/kvdb_lib.sh.

. "${srcdir:-$(dirname "$0")/..}/tests/kvdb_lib.sh"

n=200000
batch=10000
every=20000
case $san in
asan) n=60000 batch=3000 every=6000 ;;
tsan) n=30000 batch=1500 every=3000 ;;   # height 2 with 80% full leaves
esac
half=$((n / 2))
pool=(--frames 64)

# --- 1. insert -----------------------------------------------------------------
if try "load $n keys, 64 frames" 0 --stats "${pool[@]}" db load $n --seed 5 \
        --batch $batch --commit-every $every; then
    has "load: every key committed" out "^committed $n\$"
    ev=$(field evictions err)
    [ "${ev:-0}" -gt $((n / 20)) ] && pass "constant eviction: $ev evictions" ||
        fail "too few evictions for a 64-frame pool: ${ev:-none}: $(cat err)"
fi
try "check -v" 0 "${pool[@]}" db check -v && has "all keys in the tree" out "^check: ok, $n keys\$"
height=$(field "height" out)
[ "${height:-0}" -ge 2 ] && pass "a tree of height $height" || fail "height ${height:-?}"

# mget_same NAME KEYFILE ARGS...: `kvdb ARGS mget KEY...` (the keys of
# KEYFILE, one a line) must print KEY<tab>VALUE for each key a `kvdb ARGS
# get KEY` finds, in KEYFILE's order, and exit 1 if and only if a get
# finds nothing.
mget_same() {
    local name=$1 keyfile=$2 k v missing=0 ks
    shift 2
    : >want.mget
    while IFS= read -r k; do
        if v=$(kv "$@" get "$k" 2>/dev/null); then
            printf '%s\t%s\n' "$k" "$v" >>want.mget
        else
            missing=1
        fi
    done <"$keyfile"
    mapfile -t ks <"$keyfile"
    if try "$name" "$missing" "$@" mget "${ks[@]}"; then
        cmp -s out want.mget &&
            pass "$name: the answers of $(wc -l <want.mget) gets of ${#ks[@]} keys, in order" ||
            { fail "$name: mget and get differ:"; diff want.mget out | head -n 5; }
    fi
}

# --- 2. verify -----------------------------------------------------------------
try "get every key (key order), then a full scan" 0 "${pool[@]}" db verify $n --seed 5 \
    --sorted --scan && has "the scan returns exactly the keys" out 'exactly as expected'
try "get $((n / 20)) keys in random order" 0 "${pool[@]}" db verify $((n / 20)) --seed 5 --step 20
try "keys of another seed are absent" 0 "${pool[@]}" db verify 2000 --seed 6 --absent

# --- 3. a scan leaves the index hot ---------------------------------------------
# A pool of a quarter of the file: the lookups make the index pages hot;
# a scan of every leaf (BP_SCAN, prefetched) must not push them out.
pages=$(pages db)
if [ -n "$pages" ] && try "hotscan" 0 --frames $((pages / 4)) db hotscan --lookups 2000; then
    res=$(grep -E -o 'after [0-9]+/[0-9]+' out | grep -E -o '[0-9]+/[0-9]+')
    if [ -n "$res" ] && [ "${res%/*}" -ge $(( ${res#*/} * 9 / 10 )) ]; then
        pass "index pages resident after a full scan with BP_SCAN: $res"
    else
        fail "the scan pushed the index out: $(cat out)"
    fi
fi

# --- 4. delete half ---------------------------------------------------------------
# Keys for mget below, taken before half of them go: every 4999th key of
# the scan, in an order that is not the keys' (some twice), and keys that
# were never stored.
try "sample keys for mget" 0 "${pool[@]}" db scan --keys
awk 'NR % 4999 == 1' out >sample
{ awk 'NR % 2 == 0' sample; awk 'NR % 2 == 1' sample; head -n 3 sample
  printf 'never-stored-%d\n' 1 2 3; } >mget.keys
try "delete the even keys" 0 "${pool[@]}" db unload $half --seed 5 --step 2 --sorted
try "count" 0 db count && has "half left" out "^$half\$"
try "odd keys present, scan exact" 0 "${pool[@]}" db verify $half --seed 5 --start 1 \
    --step 2 --sorted --scan && has "scan after deletes" out 'exactly as expected'
try "even keys absent" 0 "${pool[@]}" db verify $half --seed 5 --step 2 --sorted --absent
try "check after deletes" 0 "${pool[@]}" db check && has "half in the tree" out "^check: ok, $half keys\$"
# A scan reads the leaves ahead through a page stream (bpool: a read
# stream), a scan with --no-hint one leaf per descent: the same pairs in
# the same order, whole and over a range.
if try "scan (leaves read through streams)" 0 "${pool[@]}" db scan && mv out scan.stream &&
        try "scan --no-hint (a leaf per descent)" 0 "${pool[@]}" db scan --no-hint; then
    cmp -s out scan.stream && [ "$(wc -l <out)" -eq $half ] &&
        pass "scans: the same $half pairs in the same order" ||
        fail "scans differ: $(wc -l <scan.stream) and $(wc -l <out) lines"
fi
from=$(sed -n "$((half / 5))p" scan.stream | cut -f1)
to=$(sed -n "$((half / 2))p" scan.stream | cut -f1)
if try "scan FROM TO through streams" 0 --frames 4096 db scan "$from" "$to"; then
    sed -n "$((half / 5)),$((half / 2 - 1))p" scan.stream >want.range
    cmp -s out want.range && pass "range scan: the $(wc -l <out) pairs of [FROM, TO)" ||
        fail "range scan: $(wc -l <out) lines, wanted $(wc -l <want.range)"
fi
mget_same "mget, 64 frames, half of the keys deleted" mget.keys "${pool[@]}" db
mget_same "mget, 4096 frames" mget.keys --frames 4096 db

# --- 5. reopen (every command did), delete the rest, reuse ------------------------
try "random gets after reopening" 0 "${pool[@]}" db verify $((n / 100)) --seed 5 --start 1 --step 50
# --no-compact: the free pages stay in the file, for the load below to reuse
try "delete the odd keys" 0 --no-compact "${pool[@]}" db unload $half --seed 5 --start 1 --step 2 --sorted
try "check on the empty tree" 0 db check -v && has "no keys" out '^check: ok, 0 keys$' &&
    has "height 0 again" out 'height 0'
before=$(pages db)
try "load again" 0 --no-compact "${pool[@]}" db load $((n / 4)) --seed 7 --batch $batch --commit-every $every
after=$(pages db)
[ -n "$before" ] && [ -n "$after" ] && [ "$after" -le "$before" ] &&
    pass "free pages reused: $before pages before, $after after" ||
    fail "the file grew from ${before:-?} to ${after:-?} pages"
try "check after reuse" 0 db check && has "new keys" out "^check: ok, $((n / 4)) keys\$"
try "verify them" 0 db verify $((n / 4)) --seed 7 --sorted --scan
# The free pages are most of the file now: compacting gives them back.
try "compact" 0 "${pool[@]}" db compact
compacted=$(pages db)
[ -n "$compacted" ] && [ "$compacted" -lt $((after / 2)) ] &&
    pass "compacted: $after pages, now $compacted" ||
    fail "compaction left ${compacted:-?} of ${after:-?} pages"
try "check after compacting" 0 db check && has "keys kept" out "^check: ok, $((n / 4)) keys\$"
try "verify after compacting" 0 "${pool[@]}" db verify $((n / 4)) --seed 7 --sorted --scan

# --- 6. leaves stay full under random inserts -----------------------------------
# A full leaf shares with a sibling, or splits two leaves into three, before
# it splits in two: random inserts leave the leaves about 80% full (70%
# with plain splits).  Keys in random order, one at a time, a large pool.
try "load $half keys in random order" 0 --stats fill load $half --seed 11 &&
    shares=$(sed -n 's/.* \([0-9]*\) shares.*/\1/p' err)
[ "${shares:-0}" -gt 0 ] && pass "full leaves shared with siblings: $shares" ||
    fail "no leaf shared with a sibling: $(grep shares err)"
if try "check -v after random inserts" 0 fill check -v; then
    fill=$(sed -n 's/.*level 0: [0-9]* leaf pages, \([0-9]*\)% full.*/\1/p' out)
    [ "${fill:-0}" -ge 76 ] && pass "leaves ${fill}% full" ||
        fail "leaves only ${fill:-?}% full after random inserts (76% wanted)"
fi

finish
