#!/bin/bash
# SPDX-License-Identifier: MIT
# kvdb_crash.sh - examples/kvdb after crashes (an automake TESTS script:
# exit 0 pass, 1 fail, 77 skip, 99 hard error).
#
# A commit is copy-on-write: the pages of the last commit are never
# written in place, and the meta slot naming a new commit is written after
# everything it points to is durable (examples/kvdb/README.md).  So after
# a crash at any moment, opening the file must find a tree that passes
# `check` and holds every key committed before the last commit that
# completed (`load` prints "committed I" once keys below I are durable).
#
#   1. kill -9 during a load, at a random moment (often inside a commit:
#      commits are frequent), several times in a row on one file, each
#      round going on from the last key known to be committed;
#   2. crash injection (--crash-after-writes N): the process dies just
#      before its Nth page or meta write, for N across the first commits
#      and in the middle of later ones;
#   3. the same with the pread/pwrite pager;
#   4. free pages damaged while free (as a torn write would leave them)
#      are overwritten without being read (nothing quarantined), and
#      the tree that reuses them checks clean;
#   5. simulated power cuts (--power-cut-after MS, tools/powercut.h): the
#      writes no fdatasync covered yet are left out, kept or torn in the
#      image the next round opens - a kill cannot show that the commit
#      protocol's syncs are in the right places - with both pagers;
#   6. crashes and power cuts while kvdb_compact moves pages and cuts
#      the file: every key is there and the file checks, whenever it
#      stopped.
#
# About 10 s.  Environment: see tests/kvdb_lib.sh.

. "${srcdir:-$(dirname "$0")/..}/tests/kvdb_lib.sh"

rounds=3
per=60000

# committed FILE: the last "committed I" in FILE, or nothing.
committed() { sed -n 's/^committed \([0-9]*\)$/\1/p' "$1" | tail -n 1; }

# after NAME DB DONE IO...: the file must check and hold keys [0, DONE).
after() {
    local name=$1 db=$2 done=$3
    shift 3
    settle "$@" "$db"
    try "$name: check" 0 "$@" "$db" check || return 1
    local n
    n=$(sed -n 's/^check: ok, \([0-9]*\) keys$/\1/p' out)
    [ "${n:-0}" -ge "$done" ] && pass "$name: $n keys, at least the $done committed" ||
        fail "$name: ${n:-?} keys, but $done were committed"
    if [ "$done" -gt 0 ]; then
        try "$name: every committed key there" 0 "$@" "$db" verify "$done" --seed 21 --sorted
    fi
}

# --- 1. kill -9 ---------------------------------------------------------------------
kv db put first-key x >/dev/null 2>err || fail "creating db: $(cat err)"
done=0
killed=0
for r in $(seq 1 $rounds); do
    "$kvdb" --frames 64 db load $per --start "$done" --seed 21 --commit-every 700 \
        >load.out 2>load.err &
    pid=$!
    # 0.4 to 1.2 s: several commits happen, the last often in progress
    sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.4 + (r % 800) / 1000 }')"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    st=$?
    [ "$st" -eq 137 ] && killed=$((killed + 1))
    if [ "$st" -ne 137 ] && [ "$st" -ne 0 ]; then
        fail "round $r: load exited with $st: $(head -c 500 load.err)"
        continue
    fi
    c=$(committed load.out)
    [ -n "$c" ] && done=$c
    after "kill -9, round $r" db "$done"
done
[ "$killed" -gt 0 ] && pass "$killed of $rounds loads killed mid-way" ||
    fail "no load was killed: raise per= (the loads finish too soon)"

# --- 2. crash injection ------------------------------------------------------------
# The process counts every page write (bpool's write hook) and meta write,
# and exits with status 99 just before the Nth.
kv inj.db put first-key x >/dev/null 2>err || fail "creating inj.db: $(cat err)"
done=0
for n in 1 3 10 45 100 250; do
    kv --frames 16 --crash-after-writes $n inj.db load 3000 --start "$done" --seed 21 \
        --commit-every 50 >load.out 2>load.err
    st=$?
    [ "$st" -eq 99 ] || { fail "crash after $n writes: exit status $st: $(head -c 300 load.err)"; continue; }
    c=$(committed load.out)
    [ -n "$c" ] && done=$c
    after "crash before write $n" inj.db "$done"
done
[ "$done" -gt 0 ] && pass "commits completed between the crashes: keys below $done" ||
    fail "no commit ever completed"

# --- 3. the pread pager -------------------------------------------------------------------
kv --io pread pr.db put first-key x >/dev/null 2>err || fail "creating pr.db: $(cat err)"
done=0
for n in 3 60 400; do
    kv --io pread --crash-after-writes $n pr.db load 3000 --start "$done" --seed 21 \
        --commit-every 50 >load.out 2>load.err
    st=$?
    [ "$st" -eq 99 ] || { fail "pread: crash after $n writes: exit status $st"; continue; }
    c=$(committed load.out)
    [ -n "$c" ] && done=$c
    after "pread: crash before write $n" pr.db "$done" --io pread
done
"$kvdb" --io pread pr.db load 200000 --start "$done" --seed 21 --commit-every 500 \
    >load.out 2>load.err &
pid=$!
sleep 0.7
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
c=$(committed load.out)
[ -n "$c" ] && done=$c
after "pread: kill -9" pr.db "$done" --io pread

# --- 5. power cuts ------------------------------------------------------------------------
# cut NAME DB IO...: a load cut at a random moment (0.3 to 1.1 s); the
# image replaces DB and must hold every key committed before the cut.  The
# load asks for ten times $per keys so that it is still running when the cut
# comes: through the page cache (--io pread) $per keys take only 0.6 s.  The
# cut ends it, so the larger count costs no time.
cut() {
    local name=$1 db=$2 ms st
    shift 2
    ms=$(( 300 + RANDOM % 800 ))
    kv "$@" --frames 64 --power-cut-after "$ms" "$db" load $((per * 10)) --start "$done" \
        --seed 21 --commit-every 700 >load.out 2>load.err
    st=$?
    if [ "$st" -ne 98 ] || [ ! -e "$db.cut" ]; then
        fail "$name: exit status $st, wanted 98 (the cut): $(head -c 500 load.err)"
        return 1
    fi
    mv "$db.cut" "$db"
    c=$(committed load.out)
    [ -n "$c" ] && done=$c
    after "$name ($(sed -n 's/^kvdb: power cut after //p' load.err))" "$db" "$done" "$@"
}
kv pc.db put first-key x >/dev/null 2>err || fail "creating pc.db: $(cat err)"
done=0
for r in $(seq 1 $rounds); do
    cut "power cut, round $r" pc.db
done
kv --io pread pcr.db put first-key x >/dev/null 2>err || fail "creating pcr.db: $(cat err)"
done=0
for r in 1 2; do
    cut "pread: power cut, round $r" pcr.db --io pread
done

# --- 6. compaction -------------------------------------------------------------------------
# kvdb_compact moves the tree's pages below a cut and commits before it cuts
# the file: a crash or a power cut at any moment leaves a file that checks
# and holds every key, compacted or not.
kv --no-compact --frames 64 cp.db load 20000 --seed 21 --commit-every 500 >/dev/null 2>&1 ||
    fail "loading cp.db"
before=$(pages --no-compact cp.db)
for n in 1 2 3 5 10 20 35 50 70; do
    cp cp.db cpn.db
    kv --frames 16 --crash-after-writes $n cpn.db compact >out 2>err
    st=$?
    [ "$st" -eq 99 ] || [ "$st" -eq 0 ] ||
        { fail "compact, crash before write $n: exit status $st: $(head -c 300 err)"; continue; }
    after "compact, crash before write $n" cpn.db 20000 --no-compact
done
for ms in 2 5 10 20 40; do
    cp cp.db cpc.db
    kv --frames 16 --power-cut-after $ms cpc.db compact >out 2>err
    st=$?
    [ "$st" -eq 98 ] && mv cpc.db.cut cpc.db
    [ "$st" -eq 98 ] || [ "$st" -eq 0 ] ||
        { fail "compact, power cut after $ms ms: exit status $st: $(head -c 300 err)"; continue; }
    after "compact, power cut after $ms ms" cpc.db 20000 --no-compact
done
try "compact" 0 --frames 16 cp.db compact
now=$(pages --no-compact cp.db)
[ -n "$before" ] && [ -n "$now" ] && [ "$now" -lt $((before * 2 / 3)) ] &&
    pass "compacted: $before pages, now $now" ||
    fail "compaction left ${now:-?} of ${before:-?} pages"
after "compacted" cp.db 20000 --no-compact

# --- 4. damaged free pages ----------------------------------------------------------------
# A free page may be torn by a crash.  kvdb overwrites free pages without
# reading them (BP_OVERWRITE), so a torn one is simply rewritten: nothing
# is quarantined, and the pages it now holds check clean.
kv --frames 64 fp.db load 3000 --seed 21 --commit-every 1000 >/dev/null 2>&1
kv --no-compact fp.db unload 2000 --seed 21 >/dev/null 2>&1
try "free pages listed" 0 fp.db check -v
free=$(sed -n 's/^  free pages: \([0-9 ]*\).*/\1/p' out)
if [ -n "$free" ]; then
    nbad=0
    for p in $free; do
        printf 'torn' | dd of=fp.db bs=1 seek=$((p * 8192 + 100)) conv=notrunc status=none
        nbad=$((nbad + 1))
    done
    try "a load meets the $nbad damaged pages" 0 --stats --frames 64 fp.db load 3000 \
        --start 5000 --seed 21 --commit-every 1000 &&
        has "none quarantined: overwritten unread" err "[^0-9]0 quarantined"
    try "check after it" 0 fp.db check && has "keys" out '^check: ok, 4000 keys$'
    try "another session" 0 --stats --frames 64 fp.db load 3000 --start 9000 --seed 21 &&
        has "none quarantined" err "[^0-9]0 quarantined"
    try "check again" 0 fp.db check && has "keys" out '^check: ok, 7000 keys$'
    try "the data" 0 fp.db verify 1000 --seed 21 --start 2000 --sorted
else
    fail "check -v listed no free pages: $(cat out)"
fi

finish
