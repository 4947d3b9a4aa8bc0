#!/bin/bash
# SPDX-License-Identifier: MIT
# kvdb_cli.sh - the examples/kvdb program's commands, one process each
# (an automake TESTS script: exit 0 pass, 1 fail, 77 skip, 99 hard error).
#
#   1. put, get, del, count: replace, delete, exit statuses; mget: the
#      pairs found in the order asked, repeats, missing keys (exit 1),
#      bad keys (exit 2);
#   2. scan: order (a prefix before its extensions), FROM and TO bounds,
#      --keys, --count, escaping of bytes that are not printable;
#   3. limits: empty and 1025-byte keys, 1025-byte values, 1024 + 1024;
#      a put of several pairs with one bad pair writes none of them;
#   4. errors: a missing file, a file that is not kvdb's (one with a zero
#      first page too), an empty file (refused by the commands that do
#      not create one, and left empty; put and load make one in it),
#      a file in use by another process, bad options (a command's: its
#      line and the --help line, no other; one that load, verify or
#      unload would ignore is unknown there), a count that is not one
#      (named by load and bench in the same words) and page sizes; a
#      create that fails removes the file it made, and only that;
#   5. check -v and stats on a small generated load, verify (--scan,
#      --absent, a wrong seed), a page size of 16 KiB kept on reopening;
#      --commit-every 0 of load, bench, and the SQLite and LMDB benches
#      (built where their headers are);
#   6. a damaged meta slot: opening falls back to the previous commit;
#      both damaged: refused; a put of two pairs whose second fails on a
#      damaged leaf commits neither; a damaged internal page of a file
#      without checksums is reported, a damaged free list trunk of one
#      refuses the file, stats names a damaged internal page of one; a
#      pool too small for a put fails it in seconds;
#   7. --io pread (the page-cache baseline) on a file without checksums;
#      mget through it and through bpool on the same file agree;
#   8. bench recreates only a kvdb file nobody has open (not an empty
#      file), whichever pager and page size made it; --lookups N runs N
#      lookups; --json's options are null where none was given;
#   9. mt on a file that holds keys already, its own from an earlier run
#      among them;
#  10. load and verify near key index 2^64 - 1: a range past it refused.
#
# A few seconds.  Environment: see tests/kvdb_lib.sh.

. "${srcdir:-$(dirname "$0")/..}/tests/kvdb_lib.sh"

# --- 1. put, get, del, count --------------------------------------------------
try "put into a new file" 0 db put apple red
try "get" 0 db get apple && has "get prints the value" out '^red$'
try "put replaces" 0 db put apple green
try "get the new value" 0 db get apple && has "replaced value" out '^green$'
try "get a missing key: exit 1" 1 db get pear && has "says not found" err 'pear: not found'
# Keys and file names in messages: control bytes as \xHH (doc/tools.md),
# so that a newline cannot split the message nor an escape sequence
# reach the terminal.
try "a missing key of control bytes: exit 1" 1 db get "$(printf 'p\nq\033')" &&
    [ "$(wc -l <err)" -eq 1 ] && has "printed as \\xHH" err '^kvdb: p\\x0aq\\x1b: not found$'
try "a missing file of control bytes: exit 2" 2 "$(printf 'n\nm\033.kv')" get k &&
    [ "$(wc -l <err)" -eq 1 ] && has "printed as \\xHH" err '^kvdb: n\\x0am\\x1b\.kv: '
try "del" 0 db del apple
try "get after del: exit 1" 1 db get apple
try "del a missing key: exit 1" 1 db del apple
try "count after del" 0 db count && has "count is 0" out '^0$'
try "empty value" 0 db put e ""
try "get an empty value" 0 db get e && has "an empty line" out '^$'
try "put for mget" 0 db put m1 one m2 two m3 three
try "mget" 0 db mget m3 m1 e m3 &&
    printf 'm3\tthree\nm1\tone\ne\t\nm3\tthree\n' >want &&
    cmp -s out want && pass "mget: the pairs in the order asked, repeats too" ||
    { fail "mget output:"; diff want out | head; }
try "mget with a missing key: exit 1" 1 db mget m2 nope m1 &&
    [ "$(cut -f1 out | tr '\n' ' ')" = "m2 m1 " ] && has "says which" err 'nope: not found' &&
    pass "mget: the others still printed" || fail "mget m2 nope m1: $(cat out err)"
try "mget of only missing keys: exit 1" 1 db mget x1 x2 && [ ! -s out ] &&
    pass "mget: nothing printed" || fail "mget x1 x2 printed: $(cat out)"
try "mget with no key: exit 2" 2 db mget && has "where to read more" err "^Try 'kvdb --help'"
try "get with two keys: exit 2" 2 db get a b && has "where to read more" err "^Try 'kvdb --help'"
try "mget with an empty key: exit 2" 2 db mget m1 "" && has "the empty key named" err 'mget: .*nvalid'
try "del the mget keys" 0 db del m1 && try "del" 0 db del m2 && try "del" 0 db del m3

# --- 2. scan -----------------------------------------------------------------------
try "put several pairs" 0 db put fig v-fig banana v-banana cherry v-cherry date v-date \
    a v-a ab v-ab elderberry v-elderberry grape v-grape
try "del e" 0 db del e
try "scan" 0 db scan
printf 'a\tv-a\nab\tv-ab\nbanana\tv-banana\ncherry\tv-cherry\ndate\tv-date\nelderberry\tv-elderberry\nfig\tv-fig\ngrape\tv-grape\n' >want
cmp -s out want && pass "scan: every pair in key order, a before ab" ||
    { fail "scan output:"; diff want out | head; }
try "scan FROM" 0 db scan c && [ "$(cut -f1 out | tr '\n' ' ')" = "cherry date elderberry fig grape " ] &&
    pass "scan c: from cherry on" || fail "scan c: $(tr '\n' ' ' <out)"
try "scan FROM TO" 0 db scan b e --keys &&
    [ "$(tr '\n' ' ' <out)" = "banana cherry date " ] && pass "scan b e --keys: [b, e)" ||
    fail "scan b e: $(tr '\n' ' ' <out)"
try "scan FROM TO, bounds are keys" 0 db scan cherry fig --keys &&
    [ "$(tr '\n' ' ' <out)" = "cherry date elderberry " ] && pass "FROM included, TO excluded" ||
    fail "scan cherry fig: $(tr '\n' ' ' <out)"
try "scan --count" 0 db scan a c --count && has "3 keys in [a, c)" out '^3$'
try "scan past the end" 0 db scan zzz && [ ! -s out ] && pass "nothing after zzz" ||
    fail "scan zzz printed: $(cat out)"
try "scan an empty range" 0 db scan d d && [ ! -s out ] && pass "[d, d) is empty" ||
    fail "scan d d printed: $(cat out)"
try "odd bytes" 0 db put "$(printf 'tab\there')" "$(printf 'back\\slash\nnl')"
try "scan escapes them" 0 db scan tab tac &&
    has "\\x09, \\\\ and \\x0a" out '^tab\\x09here	back\\\\slash\\x0anl$'

# --- 3. limits -------------------------------------------------------------------
k1024=$(head -c 1024 /dev/zero | tr '\0' k)
v1024=$(head -c 1024 /dev/zero | tr '\0' v)
try "empty key: exit 2" 2 db put "" v && has "names the limit" err 'keys are 1 to 1024 bytes'
try "1025-byte key: exit 2" 2 db put "${k1024}x" v && has "key too long" err 'key of 1025 bytes'
try "1025-byte value: exit 2" 2 db put k "${v1024}x" && has "value too long" err 'value of 1025 bytes'
try "one bad pair of two: exit 2" 2 db put good 1 "" 2 && has "nothing written" err 'nothing written'
try "the good pair was not written either" 1 db get good
try "1024-byte key and value" 0 db put "$k1024" "$v1024"
try "get them back" 0 db get "$k1024" && [ "$(cat out)" = "$v1024" ] &&
    pass "1024-byte value intact" || fail "1024-byte value differs"

# Words with one dash are keys, not options: a scan from "-keys" or
# "-count" lists pairs (they were taken for --keys and --count too).
try "put keys that start with a dash" 0 dash.db put -count a -keys b z c
try "scan from -keys" 0 dash.db scan -keys &&
    printf -- '-keys\tb\nz\tc\n' >want && cmp -s out want &&
    pass "scan -keys: the pairs from -keys on" || fail "scan -keys printed: $(cat out)"
try "scan from -count" 0 dash.db scan -count && [ "$(wc -l <out)" = 3 ] &&
    pass "scan -count: three pairs, not a count" || fail "scan -count printed: $(cat out)"

# --- 4. errors -------------------------------------------------------------------------
try "get from a missing file: exit 2" 2 nosuch.db get a &&
    has "says why" err 'No such file or directory'
[ ! -e nosuch.db ] && pass "get does not create a file" || fail "nosuch.db created"
head -c 40960 /dev/urandom >junk.db
try "a file that is not kvdb's: exit 2" 2 junk.db get a && has "not a kvdb file" err 'not a kvdb file'
: >empty.db
try "an empty file: exit 2" 2 empty.db get a && has "empty" err 'is empty'
# An empty file is no kvdb file yet, as bp_open takes one without
# BP_CREATE: the commands that do not create a file refuse it, naming the
# fix (it was "is empty: not a kvdb file", no more), and leave it empty;
# put and load make a kvdb file in it, as in a file that is not there.
for c in "get a" "count" "check" "scan" "del a"; do
    # shellcheck disable=SC2086
    try "$c on an empty file: exit 2" 2 empty.db $c &&
        has "names the cause and the fix" err \
            "empty\.db is empty: not a kvdb file yet, and left empty; .*put, load or mt - makes one in it\$"
done
[ -e empty.db ] && [ ! -s empty.db ] && pass "and leave it empty" ||
    fail "empty.db changed: $(stat -c %s empty.db) bytes"
try "put into the empty file" 0 empty.db put a b
try "made a kvdb file in it" 0 empty.db get a && has "the value put" out '^b$'
: >empty-load.db
try "load into an empty file" 0 empty-load.db load 10 --seed 2 &&
    has "committed" out '^committed 10$'
# A FIFO or a device is no kvdb file, not an empty one (it said "is
# empty: not a kvdb file", and a put would have written to it).
rm -f fifo.db && mkfifo fifo.db
try "a FIFO: exit 2" 2 fifo.db put k v && has "not a regular file" err 'is not a regular file'
try "/dev/null: exit 2" 2 /dev/null get k && has "not a regular file" err 'is not a regular file'
truncate -s 1M zero.img
printf 'precious' | dd of=zero.img bs=1 seek=819200 conv=notrunc status=none
try "a 1 MiB file whose first page is zero: exit 2" 2 zero.img put k v &&
    has "not a kvdb file" err 'not a kvdb file'
[ "$(stat -c %s zero.img)" = 1048576 ] && grep -q precious zero.img &&
    pass "it is not taken for a creation cut short: untouched" ||
    fail "zero.img was changed: $(stat -c %s zero.img) bytes"
# A page size outside kvdb's range is a usage error, found while the
# options are read: one line, then where to read more (doc/tools.md).  It
# was kvdb_open's refusal, without the second line.
for ps in 5000 4K 128K; do
    try "page size $ps: exit 2" 2 --page-size "$ps" new.db put a b &&
        [ "$(wc -l <err)" -eq 2 ] &&
        has "names the allowed sizes" err "^kvdb: --page-size '$ps': want a power of two from 8K to 64K\$" &&
        has "where to read more" err "^Try 'kvdb --help' for more information\.\$"
done
[ ! -e new.db ] && pass "and makes no file" || fail "new.db made"
try "page size 8K, the least" 0 -P 8K new8.db put a b
try "page size 64K, the most" 0 -P 64K new64.db put a b
try "--frames 0: exit 2" 2 --frames 0 db get a
try "--frames 2 (below bpool's minimum): exit 2" 2 --frames 2 db get a &&
    has "bpool's reason" err 'frames'
# A create that fails after the file was made takes the file back; a file
# that was there before stays.
# (2e9 frames: more memory than any test machine has, so bp_open refuses
# the pool after kvdb made the file.)
try "a create whose pool bpool refuses: exit 2" 2 --frames 2000000000 made.db put a b &&
    has "bpool's reason" err 'more than this machine'
[ ! -e made.db ] && pass "the failed create left no file" || fail "made.db left behind"
: >there.db
try "the same on an empty file that was there: exit 2" 2 --frames 2000000000 there.db put a b
[ -e there.db ] && pass "the file that was there stays" || fail "there.db removed"
shm=/dev/shm/kvdb-cli-$$.db
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] && [ -w /dev/shm ]; then
    try "a create on tmpfs (no O_DIRECT): exit 2" 2 "$shm" put a b &&
        has "says why" err 'O_DIRECT'
    [ ! -e "$shm" ] && pass "and leaves no file" || fail "$shm left behind"
    rm -f "$shm"
fi
try "--io foo: exit 2" 2 --io foo db get a
try "unknown option: exit 2" 2 --bogus db get a
# A command's unknown option: the line naming it, then where to read
# more, and the file as it was (scan, bench, check, mt and hotscan
# printed their usage line between the two).
sum=$(cksum <db)
# load, verify and unload each take the options they use, and no other:
# an option one of them would ignore is unknown there (they shared one
# list, and load took --absent, unload --absent and --commit-every,
# verify --commit-every, and did nothing with them).
for c in "scan --bogus" "load 5 --bogus" "bench 5 --bogus" "check --bogus" \
         "mt --bogus" "hotscan --bogus" "load 5 --absent" "unload 5 --absent" \
         "unload 5 --commit-every 2" "verify 5 --commit-every 2"; do
    o=--${c#*--}
    o=${o%% *}
    # shellcheck disable=SC2086
    try "$c: exit 2" 2 db $c &&
        has "one line names $o" err "^kvdb: unknown option or missing value: $o\$" &&
        has "where to read more" err "^Try 'kvdb --help' for more information\.\$" &&
        { [ "$(wc -l <err)" -eq 2 ] && pass "and no other line" ||
              fail "$c: $(wc -l <err) lines: $(cat err)"; }
done
[ "$(cksum <db)" = "$sum" ] && pass "and the file is left as it was" || fail "db changed"
try "unknown command: exit 2" 2 db frobnicate
try "missing argument: exit 2" 2 db put onlykey
# A count that is not a number is named, in the same words by load and
# bench (bench printed its usage line), then the --help line; no file.
for c in load bench; do
    try "$c of a bad count: exit 2" 2 nf.db $c 10x &&
        has "the count named" err "^kvdb: $c: N wants a whole number below 2\\^64, not \"10x\"\$" &&
        has "where to read more" err "^Try 'kvdb --help' for more information\.\$" &&
        { [ "$(wc -l <err)" -eq 2 ] && pass "and no other line" ||
              fail "$c 10x: $(wc -l <err) lines: $(cat err)"; }
done
try "bench of 0 keys: exit 2" 2 nf.db bench 0 &&
    has "says why" err '^kvdb: bench: N 0: want 1 or more$' &&
    { [ "$(wc -l <err)" -eq 2 ] && pass "and the --help line, no other" ||
          fail "bench 0: $(wc -l <err) lines: $(cat err)"; }
[ ! -e nf.db ] && pass "and no file made" || fail "nf.db made"
try "an option without its value: exit 2" 2 db load 5 --seed &&
    [ "$(wc -l <err)" -eq 2 ] && has "one line says why" err 'missing value: --seed'
try "no arguments: exit 2" 2
try "--help" 0 --help
for c in put get del scan count check stats load verify unload mt hotscan bench; do
    grep -q "^  $c" out || fail "--help does not list $c"
done
pass "--help lists the commands"
# load takes --step K as verify and unload do (--help listed it for those
# two only): keys I, I+K, ..., and "committed" names I + N x K.
sed -n '/^  load N/,/^  verify N/{/^  verify N/!p}' out | grep -q -- '--step K' &&
    pass "--help gives load's --step K" || fail "--help: no --step K under load"
# Every option load, verify and unload take is under its command: load's
# --sorted (all N keys in key order, --batch N) was under none, and
# verify's and unload's --batch B neither.
sed -n '/^  load N/,/^  verify N/{/^  verify N/!p}' out | grep -q -- '--sorted' &&
    pass "--help gives load's --sorted" || fail "--help: no --sorted under load"
for c in verify unload; do
    sed -n "/^  $c N/,/^  [a-z]/{/^  $c N/p;/^   /p}" out | grep -q -- '--batch B' &&
        pass "--help gives $c's --batch B" || fail "--help: no --batch B under $c"
done
try "load --step 3" 0 step.db load 20 --step 3 --seed 8 && has "committed I + N x K" out '^committed 60$'
try "verify them by the same step" 0 step.db verify 20 --step 3 --seed 8 --scan
try "load --sorted" 0 sorted.db load 30 --sorted --seed 9 && has "committed all" out '^committed 30$'
try "verify them in batches" 0 sorted.db verify 30 --batch 7 --seed 9 --scan
try "unload them in batches" 0 sorted.db unload 30 --batch 7 --seed 9
try "and they are gone" 0 sorted.db verify 30 --sorted --seed 9 --absent

# A file in use by another process: kvdb locks it while open.
"$kvdb" --frames 64 busy.db load 100000 --commit-every 500 >load.out 2>load.err &
bg=$!
for _ in $(seq 1 400); do
    grep -q committed load.out 2>/dev/null && break
    sleep 0.05
done
try "a file in use: exit 2" 2 busy.db get a && has "says so" err 'in use by another process'
kill "$bg" 2>/dev/null
wait "$bg" 2>/dev/null

# --- 5. check, stats, verify, page size ------------------------------------------------
try "load 3000" 0 --frames 16 gen.db load 3000 --seed 3 --commit-every 1000 &&
    has "committed everything" out '^committed 3000$'
# --commit-every 0: no commit along the way, one after the last key, and
# its "committed" line (the close committed the keys, and no line said
# so); bench's inserts likewise.
try "load --commit-every 0" 0 ce0.db load 50 --seed 6 --commit-every 0 &&
    [ "$(grep '^committed' out)" = "committed 50" ] &&
    pass "one commit, after the last key" ||
    fail "load --commit-every 0 said: $(grep '^committed' out | tr '\n' ' ')"
try "the keys are there" 0 ce0.db verify 50 --seed 6 --scan
try "bench --commit-every 0" 0 --frames 64 ce0b.db bench 100 --lookups 10 \
    --commit-every 0 --json && has "taken as given" out '"commit_every":0,"seed"'
# So do the SQLite and LMDB benches (they refused it), that bench.sh -c 0
# may compare the engines: built as bench.sh builds them, where their
# headers are.
kvsrc=${srcdir:-$top_builddir}/examples/kvdb
for e in sqlite lmdb; do
    case $e in
    sqlite) h=/usr/include/sqlite3.h lib=-lsqlite3 ;;
    lmdb) h=/usr/include/lmdb.h lib=-llmdb ;;
    esac
    if [ ! -e "$h" ]; then
        echo "skip ${e}_bench --commit-every 0: no $h"
        continue
    fi
    if ! ${KVDB_CC:-cc} -O2 -std=gnu11 -D_GNU_SOURCE -I"$kvsrc" \
            -I"$kvsrc/../../include" -o "${e}_bench" "$kvsrc/${e}_bench.c" \
            "$kvsrc/keygen.c" "$kvsrc/benchutil.c" "$lib" -pthread 2>build.err; then
        fail "${e}_bench.c does not build: $(head -n 3 build.err)"
        continue
    fi
    if timeout -k 10 "$limit" "./${e}_bench" "$e.db" 300 --lookups 30 \
            --commit-every 0 >out 2>err; then
        pass "${e}_bench --commit-every 0"
        has "${e}_bench: all 300 keys" out ' keys=300 '
        has "${e}_bench: every lookup found its key" out ' missing=0( |$)'
    else
        fail "${e}_bench --commit-every 0: exit status $?: $(head -n 3 err)"
    fi
done
try "check -v" 0 gen.db check -v && has "check: ok" out '^check: ok, 3000 keys$' &&
    has "the shape of the tree" out 'level 0: [0-9]+ leaf pages'
try "verify --scan" 0 gen.db verify 3000 --seed 3 --scan &&
    has "scan exact" out 'exactly as expected'
try "verify --absent (another seed)" 0 gen.db verify 500 --seed 4 --absent
try "verify with the wrong seed: exit 1" 1 gen.db verify 100 --seed 4 &&
    has "names a missing key" err 'missing'
try "stats" 0 gen.db stats &&
    has "stats: keys and height" out 'tree: 3000 keys, height [0-9]+' &&
    has "stats: hit ratio" out 'hit ratio [0-9.]+' &&
    has "stats: reads and writes" out '^reads [0-9]+, writes [0-9]+'
try "--stats after a command" 0 --stats gen.db count &&
    has "--stats: pool counters on stderr" err 'hit ratio [0-9.]+'
# ... and after the commit that ends it: its sync counted (the counters
# were printed before it, syncs 0)
try "a file for it" 0 st.db put a 1
try "--stats after a put" 0 --stats st.db put stats-key 1 &&
    has "--stats: the put's commit synced" err 'syncs [1-9]'
try "--checksums with --io pread: exit 2" 2 --io pread --checksums pr.db count &&
    has "says why" err 'cannot verify' && has "where to read more" err "^Try 'kvdb --help'"
[ ! -e pr.db ] && pass "and makes no file" || fail "pr.db made"
for c in "verify 10 --absent --scan" "load 10 --scan" "unload 10 --scan"; do
    # shellcheck disable=SC2086
    try "$c: exit 2" 2 scan.db $c && has "says why" err 'scan goes with verify' &&
        has "where to read more" err "^Try 'kvdb --help'"
done

try "page size 16384" 0 --page-size 16384 big.db put a b
try "kept on reopening" 0 big.db stats && has "16 KiB pages" out 'pages of 16384 bytes'

# --- 6. meta slots -----------------------------------------------------------------
kv meta.db put first 1 >/dev/null 2>&1
kv meta.db put second 2 >/dev/null 2>&1   # the next commit
try "stats names the last commit" 0 meta.db stats
seq=$(field "last commit" out)
if [ -n "$seq" ]; then
    cp meta.db meta2.db
    # slot s % 2 is at offset 0 or at half the page (8192 / 2)
    off=$(( (seq % 2) * 4096 + 30 ))
    printf 'X' | dd of=meta.db bs=1 seek=$off conv=notrunc status=none
    try "newest slot damaged: opens" 0 meta.db stats &&
        has "the commit before" out "last commit $((seq - 1))\$"
    try "which has first" 0 meta.db get first
    try "but not second" 1 meta.db get second
    try "and is consistent" 0 meta.db check
    try "a new commit after the fallback" 0 meta.db put third 3
    try "check after it" 0 meta.db check && has "two keys" out 'ok, 2 keys'
    off2=$(( ((seq + 1) % 2) * 4096 + 30 ))
    printf 'X' | dd of=meta2.db bs=1 seek=$((off)) conv=notrunc status=none
    printf 'X' | dd of=meta2.db bs=1 seek=$((off2)) conv=notrunc status=none
    try "both slots damaged: exit 2" 2 meta2.db get first &&
        has "says both" err 'both slots are damaged'
else
    fail "no commit number in stats: $(cat out)"
fi

# --- 6b. a put of several pairs that fails on a damaged page --------------------------
# damage SRC PAGE DST: DST is SRC with page PAGE damaged.
damage() {
    cp "$1" "$3"
    printf 'XXXX' | dd of="$3" bs=1 seek=$(($2 * 8192 + 100)) conv=notrunc status=none
}
# leaf_of KEY OTHER: the page of gen.db whose damage makes KEY unreadable
# while OTHER still reads - KEY's leaf, not shared with OTHER.
leaf_of() {
    local p
    for p in $(seq 1 $(( $(pages gen.db) - 1 ))); do
        damage gen.db "$p" probe.db
        if ! kv probe.db get "$1" >/dev/null 2>&1 && kv probe.db get "$2" >/dev/null 2>&1; then
            echo "$p"
            return
        fi
    done
}
kv gen.db scan --keys >keys 2>/dev/null
first=$(head -n 1 keys) last=$(tail -n 1 keys)
leaf=$(leaf_of "$last" "$first")
[ -n "$leaf" ] && damage gen.db "$leaf" dmg.db
if [ -n "$leaf" ]; then
    # "0" goes to the first leaf, "~" to the damaged last one: the second
    # put fails before it changes anything, and the first must not be
    # committed either (all pairs or none).
    try "a pair on a damaged leaf: exit 2" 2 dmg.db put 0 first "~" second &&
        has "says why" err 'checksum'
    try "the pair before it was not committed" 1 dmg.db get 0
    try "count unchanged" 0 dmg.db count && has "3000 keys" out '^3000$'
    try "verify meets the damaged leaf: exit 2" 2 dmg.db verify 3000 --seed 3 &&
        has "says it stopped, not 'all as expected'" out \
            '^verify: [0-9]* keys in .*, stopped by the error above$'
    # One mget of the first key and the last, one of their leaves damaged:
    # the leaves are read in page order, so the key whose leaf comes first
    # keeps its answer (the batch's error used to replace it) and the other
    # carries the error.  Which leaf comes first is the file's layout.
    fleaf=$(leaf_of "$first" "$last")
    if [ -z "$fleaf" ]; then
        fail "no page of gen.db holds its first key alone"
    elif [ "$fleaf" -lt "$leaf" ]; then
        try "mget beside a damaged leaf: exit 2" 2 dmg.db mget "$first" "$last" &&
            has "the key read first keeps its value" out "^$first	" &&
            has "the other carries the error" err "mget: $last: .*checksum"
    else
        damage gen.db "$fleaf" fdmg.db
        try "mget beside a damaged leaf: exit 2" 2 fdmg.db mget "$first" "$last" &&
            has "the key read first keeps its value" out "^$last	" &&
            has "the other carries the error" err "mget: $first: .*checksum"
    fi
else
    fail "no page of gen.db holds its last key alone"
fi

# A damaged internal page of a file without checksums (nothing catches it
# before the tree reads it): reported, not followed out of the page.
kv --no-checksums --no-compact nc.db load 3000 --seed 3 >/dev/null 2>&1
root=
for p in $(seq 1 $(( $(pages nc.db) - 1 ))); do
    if [ "$(od -An -tu1 -j $((p * 8192)) -N1 nc.db | tr -d ' ')" = 2 ]; then
        root=$p
        break
    fi
done
if [ -n "$root" ]; then
    off=$(od -An -tu2 -j $((root * 8192 + 32)) -N2 nc.db | tr -d ' ')
    printf '\377\377' | dd of=nc.db bs=1 seek=$((root * 8192 + off)) conv=notrunc status=none
    try "a key length of 65535 in an internal page: scan exit 2" 2 --no-compact nc.db \
        scan --keys --no-hint && has "names it" err "page $root: bad key length"
    try "get: exit 2" 2 --no-compact nc.db get 0000 && has "names it" err 'bad key length'
else
    fail "nc.db has no internal page"
fi

# A damaged leaf of a file without checksums (a cell count past the
# page's end): every command that reads it says so and exits 2 - none
# reads cells out of the page, takes a key for missing, or changes it.
kv --no-checksums --no-compact nl.db load 3000 --seed 3 >/dev/null 2>&1
kv --no-compact nl.db scan --keys >nl.keys 2>/dev/null
# The leftmost leaf of the last commit's tree: the root's first child.
# Page 0 holds two meta slots (at 0 and 4096: the sequence at +24, the
# root at +32); an internal page holds its first child at +24.
u64() { od -An -tu8 -j "$2" -N8 "$1" | tr -d ' '; }
# put_le64 FILE VALUE OFFSET: an 8-byte little-endian VALUE at OFFSET.
put_le64() {
    local i bytes=
    for i in 0 1 2 3 4 5 6 7; do
        bytes=$bytes$(printf '\\0%03o' $((($2 >> (8 * i)) & 255)))
    done
    printf '%b' "$bytes" | dd of="$1" bs=1 seek="$3" conv=notrunc status=none
}
if [ "$(u64 nl.db 24)" -gt "$(u64 nl.db $((4096 + 24)))" ]; then meta=0; else meta=4096; fi
root=$(u64 nl.db $((meta + 32)))
leaf=
if [ "$(od -An -tu1 -j $((root * 8192)) -N1 nl.db | tr -d ' ')" = 2 ]; then
    leaf=$(u64 nl.db $((root * 8192 + 24)))
fi
if [ -n "$leaf" ]; then
    printf '\377\017' | dd of=nl.db bs=1 seek=$((leaf * 8192 + 2)) conv=notrunc status=none
    for c in "scan --count" "scan --count --no-hint" "verify 3000 --seed 3"; do
        # shellcheck disable=SC2086
        try "a leaf with 4095 cells: $c exit 2" 2 --no-compact nl.db $c &&
            has "names the page" err "page $leaf: "
    done
    bad_key=
    while read -r key; do
        kv --no-compact nl.db get "$key" >/dev/null 2>&1
        if [ $? -eq 2 ]; then bad_key=$key; break; fi
    done <nl.keys
    if [ -n "$bad_key" ]; then
        try "get of a key in it: exit 2, not 'not found'" 2 --no-compact nl.db get "$bad_key" &&
            has "says why" err "page $leaf: "
        try "put of that key: exit 2" 2 --no-compact nl.db put "$bad_key" v
        try "count unchanged" 0 --no-compact nl.db count && has "3000 keys" out '^3000$'
    else
        fail "no key of nl.db reads the damaged leaf $leaf"
    fi
else
    fail "nl.db's root is not an internal page"
fi

# A damaged right sibling of the leftmost leaf, in a file without
# checksums: a put that shares the full leftmost leaf's cells with it, and
# a delete that merges the emptied leftmost leaf into it, say so and exit
# 2 naming the sibling (they read its bytes after letting it go, or its
# cells by offsets out of the page: SIGSEGV).
kv --no-checksums --no-compact sb.db load 3000 --seed 3 >/dev/null 2>&1
kv --no-compact sb.db scan --keys >sb.keys 2>/dev/null
if [ "$(u64 sb.db 24)" -gt "$(u64 sb.db $((4096 + 24)))" ]; then meta=0; else meta=4096; fi
root=$(u64 sb.db $((meta + 32)))
sib=
if [ "$(od -An -tu1 -j $((root * 8192)) -N1 sb.db | tr -d ' ')" = 2 ]; then
    off=$(od -An -tu2 -j $((root * 8192 + 32)) -N2 sb.db | tr -d ' ')
    sib=$(u64 sb.db $((root * 8192 + off + 2)))   # child 1: the first cell's
fi
if [ -n "$sib" ]; then
    first=$(head -n1 sb.keys)
    cp sb.db sa.db
    printf '\011' | dd of=sa.db bs=1 seek=$((sib * 8192)) conv=notrunc status=none
    big=$(head -c 1000 /dev/zero | tr '\0' v)
    st=0
    for i in $(seq 10 40); do
        kv --no-compact sa.db put "$first$i" "$big" >out 2>err
        st=$?
        [ $st -ne 0 ] && break
    done
    [ $st -eq 2 ] && has "a put meeting it names it" err "page $sib: " ||
        fail "a put beside the damaged sibling $sib: exit $st, $(cat err)"
    cp sb.db sd.db
    printf '\360\377' | dd of=sd.db bs=1 seek=$((sib * 8192 + 32)) conv=notrunc status=none
    st=0
    while read -r key; do
        kv --no-compact sd.db del "$key" >out 2>err
        st=$?
        [ $st -ne 0 ] && break
    done <sb.keys
    [ $st -eq 2 ] && has "a delete merging into it names it" err "page $sib: " ||
        fail "deletes beside the damaged sibling $sib: exit $st, $(cat err)"
else
    fail "sb.db's root is not an internal page"
fi

# A damaged free list trunk in a file without checksums: an entry past
# the file's end, an entry listed twice, the trunk listing itself.  Each
# would hand a page out twice (two nodes written over each other); the
# file is refused at open, naming the trunk or the page, and left as it
# was.
kv --no-checksums --no-compact fl.db load 3000 --seed 3 >/dev/null 2>&1
kv --no-compact fl.db unload 1000 --seed 3 >/dev/null 2>&1
if [ "$(u64 fl.db 24)" -gt "$(u64 fl.db $((4096 + 24)))" ]; then meta=0; else meta=4096; fi
trunk=$(u64 fl.db $((meta + 48)))
entries=$(od -An -tu2 -j $((trunk * 8192 + 2)) -N2 fl.db | tr -d ' ')
if [ "$trunk" -gt 0 ] && [ "$entries" -ge 2 ]; then
    e0=$((trunk * 8192 + 32))   # the trunk's first entry
    cp fl.db flfar.db; put_le64 flfar.db 4294967295 $((e0 + 8))
    cp fl.db fldup.db; put_le64 fldup.db "$(u64 fl.db $e0)" $((e0 + 8))
    cp fl.db flself.db; put_le64 flself.db "$trunk" $((e0 + 8))
    for c in "flfar past the file's end|trunk $trunk lists page 4294967295" \
             "fldup listed twice|holds page $(u64 fl.db $e0) twice" \
             "flself the trunk itself|page $trunk is a free list trunk and an entry"; do
        f=${c%% *}; rest=${c#* }; what=${rest%%|*}; msg=${rest#*|}
        sum=$(cksum <$f.db)
        try "free list entry $what: put exit 2" 2 --no-compact $f.db put k v &&
            has "says so" err "$msg"
        [ "$(cksum <$f.db)" = "$sum" ] && pass "$f.db is left as it was" ||
            fail "$f.db changed"
    done
else
    fail "fl.db has no free list trunk of two entries (trunk '$trunk')"
fi

# A file cut short while closed (its last commit used more pages than it
# has): refused at open, not written into - new pages would take numbers
# the committed tree still uses.
kv cut.db load 3000 --seed 4 >/dev/null 2>&1
half=$(( $(pages cut.db) / 2 ))
truncate -s $((half * 8192)) cut.db
try "a file cut short: get exit 2" 2 cut.db get 0000 && has "says so" err 'cut short'
try "a file cut short: put exit 2" 2 cut.db put k v && has "says so" err 'cut short'
[ "$(stat -c %s cut.db)" = $((half * 8192)) ] && pass "the cut file is left as it was" ||
    fail "cut.db changed: $(stat -c %s cut.db) bytes, not $((half * 8192))"

# A pool too small for a change of a tall tree (4 frames, 1 KiB keys and
# values: height 3): the put fails with bpool's no-frame error within a
# few seconds, not after minutes of retries holding the tree's locks.
big=() more=()
for i in $(seq 1000 1399); do
    pair=("$i${k1024:4}" "$v1024")
    if [ "$i" -lt 1300 ]; then big+=("${pair[@]}"); else more+=("${pair[@]}"); fi
done
try "a tree of 300 1 KiB pairs" 0 tall.db put "${big[@]}"
t0=$(date +%s)
try "4 frames: the put fails" 2 --frames 4 tall.db put "${more[@]}" &&
    has "says why" err 'no frame'
t1=$(date +%s)
[ $((t1 - t0)) -lt 30 ] && pass "and says so within seconds ($((t1 - t0)) s)" ||
    fail "the failing put took $((t1 - t0)) s"
try "nothing of it committed" 0 tall.db count && has "300 keys" out '^300$'

# stats walks the index of a file without checksums as a descent does:
# a damaged root (a cell count past the page's end; its first child
# pointing back to itself) is named, exit 2, and not walked out of the
# page or round in a circle.
try "the same tree without checksums" 0 --no-checksums --no-compact ntall.db put "${big[@]}"
if [ "$(u64 ntall.db 24)" -gt "$(u64 ntall.db $((4096 + 24)))" ]; then meta=0; else meta=4096; fi
root=$(u64 ntall.db $((meta + 32)))
if [ "$(od -An -tu2 -j $((root * 8192 + 4)) -N2 ntall.db | tr -d ' ')" -ge 2 ]; then
    cp ntall.db ncells.db
    printf '\377\377' | dd of=ncells.db bs=1 seek=$((root * 8192 + 2)) conv=notrunc status=none
    try "stats: a root of 65535 cells: exit 2" 2 --no-compact ncells.db stats &&
        has "names it" err "index: .*page $root: more cells than the page holds"
    cp ntall.db ncycle.db
    put_le64 ncycle.db "$root" $((root * 8192 + 24))
    try "stats: a root that is its own child: exit 2" 2 --no-compact ncycle.db stats &&
        has "names it" err "index: .*page $root: the index reaches this page twice"
else
    fail "ntall.db's root $root is below level 2"
fi

# --- 7. --io pread ---------------------------------------------------------------------
try "pread: needs a file without checksums" 2 --io pread db get a &&
    has "says why" err 'checksums'
try "pread: load" 0 --io pread pr.db load 2000 --seed 9
try "pread: verify --scan" 0 --io pread pr.db verify 2000 --seed 9 --scan
try "pread: put, get" 0 --io pread pr.db put x y
try "bpool reads a pread file" 0 pr.db get x && has "same bytes" out '^y$'
try "pread: check" 0 --io pread pr.db check
try "pread: keys for mget" 0 --io pread pr.db scan --keys
{ awk 'NR % 37 == 5' out; echo no-such-key; } >keys
mapfile -t ks <keys
try "pread: mget" 1 --io pread pr.db mget "${ks[@]}" && mv out pread.out &&
    try "bpool: mget of the same keys" 1 pr.db mget "${ks[@]}" &&
    cmp -s out pread.out && [ "$(wc -l <out)" -eq $((${#ks[@]} - 1)) ] &&
    pass "mget: pread and bpool agree on ${#ks[@]} keys" ||
    fail "mget through pread and bpool: $(diff pread.out out | head -n 3)"

# A page write that fails (a full file system) leaves the page's change
# in memory only (check_kvdb_write reads it back), so no later commit may
# succeed: the
# load fails, and the file holds its last good commit (a commit over the
# lost page left a damaged tree).  As root, on an 8 MiB loop-mounted ext4.
if [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null; then
    # Unmounted whatever ends the script (kvdb_lib.sh's trap removes $work).
    trap 'umount "$work/full" 2>/dev/null; rm -rf "$work"' EXIT
    truncate -s 8M full.img && mkfs.ext4 -q full.img && mkdir -p full &&
        mount -o loop full.img full 2>/dev/null
    if mountpoint -q full; then
        try "pread on a full disk: the load fails" 2 --io pread --no-compact \
            full/p.db load 100000 --commit-every 1000 --seed 2
        try "the file holds a sound last commit" 0 --io pread --no-compact \
            full/p.db check
        umount full
    else
        echo "skip: cannot mount an ext4 image here (pread on a full disk)"
    fi
    rm -f full.img
fi

# --- 8. bench recreates only a kvdb file nobody has open ---------------------------
printf 'not a database\n' >notes.txt
try "bench refuses a file that is not kvdb's" 2 notes.txt bench 100 &&
    has "says why" err 'not a kvdb file' &&
    grep -qx 'not a database' notes.txt &&
    pass "and leaves it as it was" || fail "notes.txt changed: $(head -c 60 notes.txt)"
try "bench of a kvdb file" 0 bn.db bench 500 --lookups 100
"$kvdb" --frames 64 bn.db load 1000000 --commit-every 500 >load.out 2>load.err &
loader=$!
for _ in $(seq 1 400); do
    grep -q committed load.out 2>/dev/null && break
    sleep 0.05
done
try "bench refuses a file another process has open" 2 bn.db bench 500 &&
    has "says in use" err 'in use by another process'
kill "$loader" 2>/dev/null
wait "$loader" 2>/dev/null
try "and the file kept its keys" 0 bn.db count &&
    [ "$(cat out)" -gt 500 ] && pass "more keys than the bench's" ||
    fail "bn.db holds $(cat out) keys"
# An empty file is not a kvdb file either (get says so): bench leaves it
# as it is, its mode too (it removed and made it anew, mode 0600).
: >empty-bench.db
chmod 640 empty-bench.db
try "bench refuses an empty file" 2 empty-bench.db bench 100 &&
    has "says why" err 'is empty' && has "and that it is left" err 'left as it is'
[ -e empty-bench.db ] && [ ! -s empty-bench.db ] &&
    [ "$(stat -c %a empty-bench.db)" = 640 ] &&
    pass "the empty file is left as it was, mode 640" ||
    fail "empty-bench.db changed: $(stat -c '%s bytes, mode %a' empty-bench.db 2>&1)"
# A kvdb file is recreated whichever pager made it and whatever its page
# size: through pread, one with bpool's page checksums (pread cannot
# verify them; bench refused the file, and bench.sh's pread run after its
# bpool run had no result); with a pool too small for the old file's
# pages but right for the new file's.
try "bench through bpool, with checksums" 0 two.db bench 200 --lookups 50 &&
    has "through bpool" out '^bench io=bpool '
try "bench through pread of bpool's file" 0 --io pread two.db bench 200 --lookups 50 &&
    has "through pread" out '^bench io=pread '
try "bench through bpool of pread's file" 0 two.db bench 200 --lookups 50 &&
    has "through bpool" out '^bench io=bpool '
try "bench with 64 KiB pages" 0 -P 64K two.db bench 200 --lookups 50
try "bench with a pool of 4 frames of 8 KiB over them" 0 -p 32K two.db bench 200 \
    --lookups 50 && has "8 KiB pages" out ' page=8192 '
# --lookups is a count of lookups, taken as given: 0 is refused (it ran
# 16), and others are not rounded down to a multiple of 16.
try "bench --lookups 0: exit 2" 2 lk.db bench 10 --lookups 0 &&
    has "says why" err 'lookups 0: want 1 or more'
[ ! -e lk.db ] && pass "bench --lookups 0 makes no file" || fail "lk.db made"
try "bench --lookups 10" 0 --frames 64 lk.db bench 100 --lookups 10 &&
    has "10 lookups, not 16" out ' lookups=10 '
try "bench --lookups 37 --json" 0 --frames 64 lk.db bench 100 --lookups 37 --json &&
    has "37 lookups, not 32" out '"lookups":37,'
# The JSON options: null for what the command line left to kvdb's or
# bpool's default, as doc/tools.md says (they were filled with the
# defaults: frames 8192, io "bpool", seed 42...); the result after them
# has the values used.
opts() { sed -n 's/.*"options":{\([^{}]*\)}.*/\1/p' out; }
try "bench --json, no options" 0 lk.db bench 100 --json &&
    [ "$(opts)" = '"file":"lk.db","io":null,"frames":null,"pool_bytes":null,"page_size":null,"checksums":null,"keys":100,"lookups":null,"commit_every":null,"seed":null,"threads":null' ] &&
    pass "options not given are null" || fail "options: $(opts)"
has "the values used in the result" out '},"command":"bench","io":"bpool","frames":8192,"page_size":8192,"checksums":true,"lookups":100,"commit_every":10000,"seed":42,"threads":1,'
try "bench --json, every option" 0 --io bpool --frames 64 -P 16K --checksums lk.db \
    bench 100 --lookups 20 --commit-every 50 --seed 7 --threads 2 --json &&
    [ "$(opts)" = '"file":"lk.db","io":"bpool","frames":64,"pool_bytes":null,"page_size":16384,"checksums":true,"keys":100,"lookups":20,"commit_every":50,"seed":7,"threads":2' ] &&
    pass "options given are as given" || fail "options: $(opts)"
try "bench --json, pread and a pool size" 0 --io pread -p 1M --no-checksums lk.db \
    bench 100 --json &&
    [ "$(opts)" = '"file":"lk.db","io":"pread","frames":null,"pool_bytes":1048576,"page_size":null,"checksums":false,"keys":100,"lookups":null,"commit_every":null,"seed":null,"threads":null' ] &&
    pass "--io pread, -p and --no-checksums as given" || fail "options: $(opts)"
has "pread's values in the result" out '"command":"bench","io":"pread","frames":0,"page_size":8192,"checksums":false,'
# Fewer lookups than threads: every thread count still measures them all
# (threads past the lookups had none, and 3 lookups by 4 threads gave 0/s)
try "bench --lookups 3 --threads 4" 0 --frames 64 lk.db bench 100 --lookups 3 \
    --threads 4 --json &&
    if grep -E -q '"lookups_s_threads_[0-9]+":0[,}]' out; then
        fail "a thread count measured no lookup: $(cat out)"
    else
        pass "a rate of every thread count"
    fi

# --- 9. mt on a file that holds keys already -----------------------------------------
# The writers' puts replace the keys an earlier mt left and their deletes
# remove them: the count mt expects allows for them (a second run said
# "count 76, expected 152" and FAILED on a sound file).
try "mt on a new file" 0 mt.db mt --keys 100 && has "mt: ok" out '^mt: ok '
try "mt again on the same file" 0 mt.db mt --keys 100 && has "mt: ok" out '^mt: ok '
try "other keys beside them" 0 mt.db load 40 --seed 5
try "mt beside other keys" 0 mt.db mt --keys 100 && has "mt: ok" out '^mt: ok '
try "count: mt's 76 and the 40 loaded" 0 mt.db count && has "116 keys" out '^116$'
# Keys of the user's, whose values are no generated ones: not wrong
# answers of mt's (its scanners took them for such), in runs long enough
# for the scanners to meet them.
try "keys of the user's" 0 mtu.db put a 1 zz-user 2
try "mt beside the user's keys" 0 mtu.db mt --keys 3000 &&
    has "mt: ok" out '^mt: ok ' && has "scans ran" out '\([1-9][0-9]* scans'
try "and the file checks" 0 mt.db check

# --- 10. generated keys near the last key index --------------------------------------
# A --start whose N keys would run past index 2^64 - 1 is a usage error,
# found before the file is touched (the indices wrapped: load committed
# keys from 0); up to it they are keys like any other.
try "load past key index 2^64 - 1: exit 2" 2 wrap.db load 10 --start 18446744073709551615 &&
    has "says why" err 'run past key index 2\^64 - 1' &&
    has "where to read more" err "^Try 'kvdb --help'"
[ ! -e wrap.db ] && pass "and makes no file" || fail "wrap.db made"
try "verify and unload too" 2 wrap.db verify 3 --start 18446744073709551614 --step 2
try "load the last 10 key indices" 0 wrap.db load 10 --start 18446744073709551605 &&
    has "committed up to 2^64 - 1" out '^committed 18446744073709551615$'
try "verify them, exactly" 0 wrap.db verify 10 --start 18446744073709551605 --scan
try "none of them is key index 0" 0 wrap.db verify 1 --absent

finish
