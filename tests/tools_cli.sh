#!/bin/bash
# SPDX-License-Identifier: MIT
# tools_cli.sh - the command-line conventions every bpool tool shares
# (doc/tools.md): bpool-shell, bpool-bench, bpool-stress, bpool-sim and
# kvdb (an automake TESTS script: exit 0 pass, 1 fail, 77 skip, 99 hard
# error).
#
#   1. -V and --version print "PROG (bpool) VERSION" and exit 0; --help
#      exits 0;
#   2. a usage error is one line naming the problem, then "Try 'PROG
#      --help' for more information.", exit status 2; a bad trace is
#      refused in the same words by bpool-bench and bpool-sim;
#   3. one size grammar: decimal, 0x hex, K/M/G/T suffixes (powers of
#      1024); junk and overflow are one-line usage errors;
#   4. a letter means the same in every tool: -p the pool size in bytes,
#      -P the page size, -s the seed, -q quiet, -j JSON;
#   5. --json results carry "tool", "version", an ISO 8601 UTC
#      "timestamp" and the "options" the command line gave (null for each
#      one it left to the default, the value used in the result), and the
#      same keys for the same quantities (elapsed_s, hit_ratio with
#      miss_ratio; null for a ratio of nothing).
# At the end, in a section of its own: bpool-sim's frame counts (too few
# to split, far more than the trace's pages, more than memory) and empty
# traces, a --pool of more frames than a pool has, and file names with
# control bytes in messages.
#
# About 10 s.  Environment: as tests/lib.sh (BPOOL_SHELL, BPOOL_BENCH,
# BPOOL_STRESS, BPOOL_SIM, KVDB, BPOOL_TEST_TMPDIR).

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh" || exit 99
shell=${BPOOL_SHELL:-$top_builddir/tools/bpool-shell}
bench=${BPOOL_BENCH:-$top_builddir/tools/bpool-bench}
stress=${BPOOL_STRESS:-$top_builddir/tools/bpool-stress}
sim=${BPOOL_SIM:-$top_builddir/tools/bpool-sim}
kvdb=${KVDB:-$top_builddir/examples/kvdb/kvdb}
for p in "$shell" "$bench" "$stress" "$sim" "$kvdb"; do
    need_program "$p"
done
scratch toolscli

declare -A prog=([bpool-shell]=$shell [bpool-bench]=$bench
                 [bpool-stress]=$stress [bpool-sim]=$sim [kvdb]=$kvdb)
tools=(bpool-shell bpool-bench bpool-stress bpool-sim kvdb)

# usage_error NAME TOOL REGEX ARGS...: TOOL ARGS exits 2 with exactly two
# lines on stderr, "TOOL: ..." matching REGEX and the pointer to --help,
# and nothing on stdout.
usage_error() {
    local name=$1 tool=$2 re=$3 st
    shift 3
    "${prog[$tool]}" "$@" >out 2>err </dev/null
    st=$?
    if [ "$st" -eq 2 ] && [ "$(wc -l <err)" -eq 2 ] && [ ! -s out ] &&
            grep -q -E -e "^$tool: $re" err &&
            [ "$(sed -n 2p err)" = "Try '$tool --help' for more information." ]; then
        pass "$tool: $name: exit 2, '$(head -n 1 err)'"
    else
        fail "$tool: $name: status $st, stdout $(wc -c <out) bytes, stderr:"
        sed 's/^/    /' err
    fi
}

# --- 1. -V, --version, --help ---------------------------------------------------------
for t in "${tools[@]}"; do
    for v in -V --version; do
        out=$("${prog[$t]}" "$v" 2>&1 </dev/null)
        st=$?
        first=$(head -n 1 <<<"$out")
        [ "$st" -eq 0 ] && [[ $first =~ ^$t\ \(bpool\)\ [0-9]+\.[0-9]+\.[0-9]+ ]] &&
            pass "$t $v: '$first'" || fail "$t $v: status $st: '$out'"
    done
    "${prog[$t]}" --help >out 2>err </dev/null
    st=$?
    [ "$st" -eq 0 ] && [ -s out ] && [ ! -s err ] && pass "$t --help: exit 0, on stdout" ||
        fail "$t --help: status $st"
done
# All report the one version configure gave.
versions=$(for t in "${tools[@]}"; do "${prog[$t]}" -V </dev/null | head -n 1 |
    sed 's/.* //'; done | sort -u | wc -l)
eq_one() { [ "$2" = "$3" ] && pass "$1" || fail "$1: '$2', want '$3'"; }
eq_one "every tool reports the same version" "$versions" 1
# The JSON examples of the manuals and doc/tools.md show that version.
docdir=${srcdir:-$top_builddir}/doc
version=$("$sim" -V </dev/null | sed -n '1s/.* //p')
stale=$(grep -o '"version":"[^"]*"' "$docdir"/*.1 "$docdir"/tools.md |
    grep -v -F "\"version\":\"$version\"")
[ -z "$stale" ] && pass "the documents' JSON examples show version $version" ||
    fail "JSON examples of another version than $version: $stale"

# --- 2. usage errors -------------------------------------------------------------------
for t in "${tools[@]}"; do
    usage_error "unknown option" "$t" "unknown option or missing value: '--bogus'" --bogus
    usage_error "unknown short option" "$t" "unknown option or missing value: '-Z'" -Z
    # Before the last letter of a cluster, the word before it was named.
    before=(-P 8K)
    [ "$t" = bpool-sim ] && before=(-n 4)
    usage_error "unknown short option in a cluster" "$t" \
        "unknown option or missing value: '-Z'\$" "${before[@]}" -ZV
done
usage_error "missing value" bpool-bench "unknown option or missing value: '--pool'" hit --pool
usage_error "no workload" bpool-bench "no workload given" -q
usage_error "bad workload" bpool-bench "unknown workload 'nosuch'" nosuch
usage_error "extra operand" bpool-stress "unexpected argument 'extra'" extra
usage_error "two files" bpool-shell "only one FILE may be given" a.data b.data
usage_error "bad engine" bpool-bench "--io-engine 'aio': want libaio, io_uring or auto" --engine aio randread
# --engine is --io-engine; BPOOL_IO_ENGINE gives the default, the option wins.
out=$(BPOOL_IO_ENGINE=auto "$bench" -q -j -f e.data -p 512K -d 0.05 -w 0 -t 1 \
    --engine libaio randread 2>&1)
[[ $out == *'"io_engine":"libaio"'* ]] &&
    pass "bpool-bench --engine libaio: the option over BPOOL_IO_ENGINE" ||
    fail "bpool-bench --engine libaio: $out"
usage_error "no frames" bpool-sim "-n FRAMES is required" trace.txt
usage_error "no command" kvdb "no COMMAND given after FILE" x.db
usage_error "unknown command" kvdb "unknown command or arguments: frobnicate" x.db frobnicate
usage_error "a pool setting kvdb has not" kvdb "--flushers: kvdb takes only" --flushers 1 x.db get a
usage_error "a command's number not a number" kvdb "--seed wants a number, not \"abc\"" \
    x.db load 10 --seed abc
usage_error "a command's threads out of range" kvdb "load: --threads 0: want 1 to 64" \
    x.db load 10 --threads 0
usage_error "a command's step 0" kvdb "verify: --step 0: want 1 or more" x.db verify 10 --step 0
usage_error "mt's numbers" kvdb "mt: bad numbers" x.db mt --keys 0
# Numbers that wrap: thread counts whose sum overflows, a count past 64
# bits, and one whose keys' order would not fit in memory.
usage_error "mt's thread counts that wrap" kvdb "mt: bad numbers" x.db mt \
    --writers 2 --readers 18446744073709551614 --scanners 1 --keys 100
usage_error "a count past 64 bits" kvdb "load: N wants a whole number below 2\\^64, not \"18446744073709552k\"" x.db load 18446744073709552k
"${prog[kvdb]}" x.db load 2305843009213693952 --sorted >out 2>err </dev/null
st=$?
[ "$st" -eq 2 ] && grep -q "out of memory ordering" err && [ ! -e x.db ] &&
    pass "kvdb load of 2^61 sorted keys: exit 2, out of memory, no file" ||
    fail "kvdb load of 2^61 sorted keys: status $st: $(cat err)"
# A bad choice is named as --policy's is: option, value, then the choices.
usage_error "bad policy" bpool-sim "--policy 'foo': choose one of clockpro, lru, clock\$" --policy foo
usage_error "bad variant" bpool-sim "--variant 'foo': choose one of paper, authors, authors-slip\$" --variant foo
# One loader reads traces (tools/trace.c): bpool-bench and bpool-sim refuse
# a bad one in the same words, with exit status 2, and bpool-bench makes
# no data file for it.
printf '1\n-3\n' >neg.trc
printf '1\n2x\n' >junk.trc
printf '%s\n' 1 281474976710655 >wide.trc
printf '5\n\0\0\0junk\n7\n' >nul.trc
for trc in neg.trc junk.trc wide.trc nul.trc missing.trc; do
    "$bench" -q -f tr.data trace "$trc" >/dev/null 2>bench.err </dev/null
    b=$?
    "$sim" -n 4 "$trc" >/dev/null 2>sim.err </dev/null
    s=$?
    [ "$b" -eq 2 ] && [ "$s" -eq 2 ] && [ ! -e tr.data ] &&
        [ "$(sed 's/^bpool-sim: //' sim.err)" = "$(sed 's/^bpool-bench: //' bench.err |
            sed 's/ (at most 2^36 - 1, the last page of one data file)/ (at most 2^48 - 2)/')" ] &&
        pass "a bad trace ($trc): the same words from bpool-bench and bpool-sim" ||
        fail "a bad trace ($trc): bpool-bench status $b: $(cat bench.err); bpool-sim status $s: $(cat sim.err)"
done
# A duration of 0 is refused by every timed workload, hit too (its
# threads would run until stopped).
timeout 60 "${prog[bpool-bench]}" -f hd.data --file-size 1M -d 0 -t 1 \
    --variant floor hit >out 2>err </dev/null
st=$?
[ "$st" -eq 2 ] && grep -q "duration above 0" err &&
    pass "bpool-bench -d 0 hit: exit 2, says why" ||
    fail "bpool-bench -d 0 hit: status $st: $(cat err)"
# A pool too small for the threads asked for is a usage error (the
# options contradict each other) that leaves no data file behind, for
# every workload that checks it; a file there before stays.
# (The check comes once the file is there: the default pool is an eighth
# of it.  So "created" may come first.)
for w in randread seqwrite warmup; do
    rm -f small.data
    "${prog[bpool-bench]}" -q -f small.data --file-size 1M --frames 8 -t 4 \
        -d 1 "$w" >out 2>err </dev/null
    st=$?
    if [ "$st" -eq 2 ] && [ ! -s out ] && [ ! -e small.data ] &&
            tail -n 2 err | head -n 1 | grep -q -E \
                "^bpool-bench: $w: a pool of 8 frames is too small for 4 threads.*--frames 16" &&
            [ "$(tail -n 1 err)" = "Try 'bpool-bench --help' for more information." ]; then
        pass "bpool-bench $w: a pool too small for the threads: exit 2, no file left"
    else
        fail "bpool-bench $w: a pool too small: status $st, file $(ls small.data 2>&1), stderr:"
        sed 's/^/    /' err
    fi
done
"${prog[bpool-bench]}" -q -f small.data --file-size 1M prepare >/dev/null 2>&1
usage_error "a pool too small, the file there before" bpool-bench \
    "randread: a pool of 8 frames is too small" \
    -q -f small.data --frames 8 -t 4 -d 1 randread
[ -s small.data ] && pass "bpool-bench: a file there before a usage error stays" ||
    fail "bpool-bench: a usage error removed a file it had not made"
rm -f small.data
# A file of another page size: prepare says so, it does not report
# offsets of the wrong size.
"${prog[bpool-bench]}" -q -f ps.data --file-size 1M -P 8K prepare >/dev/null 2>&1
"${prog[bpool-bench]}" -q -f ps.data -P 4K prepare >out 2>err </dev/null
st=$?
[ "$st" -eq 2 ] && grep -q "has pages of 8192 bytes" err &&
    pass "bpool-bench prepare -P 4K of an 8 KiB file: exit 2, says so" ||
    fail "bpool-bench prepare -P 4K of an 8 KiB file: status $st: $(cat out err)"
# --verify-only of an empty file: refused, the file left empty.
: >empty.data
"${prog[bpool-stress]}" -f empty.data --verify-only >out 2>err </dev/null
st=$?
[ "$st" -eq 3 ] && [ ! -s empty.data ] && grep -q "is empty" err &&
    pass "bpool-stress --verify-only of an empty file: exit 3, not written" ||
    fail "bpool-stress --verify-only of an empty file: status $st, $(wc -c <empty.data) bytes: $(cat err)"
# A bpool file of no pages (a header page alone) is no stress run's file
# either: --reuse ran on it and failed its first pin (exit 1).
"${prog[bpool-shell]}" -P 4K nopages.data -c quit >/dev/null 2>&1 </dev/null
sum=$(cksum <nopages.data)
for a in --reuse --verify-only; do
    "${prog[bpool-stress]}" -q -f nopages.data "$a" >out 2>err </dev/null
    st=$?
    [ "$st" -eq 3 ] && [ "$(cksum <nopages.data)" = "$sum" ] &&
        grep -q "nopages.data has no pages: not a data file of a stress run" err &&
        pass "bpool-stress $a of a file of no pages: exit 3, the file as it was" ||
        fail "bpool-stress $a of a file of no pages: status $st: $(cat err)"
done
# --verify-only only reads: a read-only pool, which shares the file with
# another reader (here a read-only bpool-shell holding it open); it opened
# the file writable, and waited 10 s for the reader to go, then gave up
# with BP_ELOCKED (a file the user may not write it refused with EACCES).
if "${prog[bpool-stress]}" -q -f ro.data --pages 64 -t 1 -n 200 --keep >/dev/null 2>err; then
    rm -f hold.fifo && mkfifo hold.fifo
    "${prog[bpool-shell]}" --read-only ro.data <hold.fifo >hold.out 2>&1 &
    holder=$!
    exec 3>hold.fifo
    echo info >&3
    for _ in $(seq 100); do grep -q '^page_size' hold.out && break; sleep 0.1; done
    sum=$(cksum <ro.data)
    timeout 60 "${prog[bpool-stress]}" -q -f ro.data --verify-only >out 2>err </dev/null
    st=$?
    exec 3>&-
    wait "$holder"
    [ "$st" -eq 0 ] && [ "$(cksum <ro.data)" = "$sum" ] &&
        pass "bpool-stress --verify-only beside a reader: exit 0, the file as it was" ||
        fail "bpool-stress --verify-only beside a reader: status $st: $(cat err hold.out)"
else
    fail "bpool-stress: a file for --verify-only: $(cat err)"
fi
# A directory or a device is no data file, whatever the options: said so
# (it was told to give --reuse or remove it, or that /dev/null is empty).
mkdir -p a-dir
for f in a-dir /dev/null; do
    for a in "" --reuse --verify-only; do
        # shellcheck disable=SC2086
        "${prog[bpool-stress]}" -q -f "$f" $a >out 2>err </dev/null
        st=$?
        [ "$st" -eq 3 ] && grep -q "^bpool-stress: $f is not a regular file" err &&
            pass "bpool-stress -f $f $a: exit 3, not a regular file" ||
            fail "bpool-stress -f $f $a: status $st: $(cat err)"
    done
done
# Nor is a FIFO: bpool-shell says so at once, at its start (read-only
# too) and in an open; it used to wait for ever for a writer, reading the
# header before bp_open.
rm -f data.fifo && mkfifo data.fifo
fifo_refused() {   # what: the rest: the shell's arguments
    local what=$1
    shift
    timeout -k 1 20 "${prog[bpool-shell]}" "$@" >out 2>err </dev/null
    local st=$?
    [ "$st" -eq 1 ] && grep -q "data.fifo: not a regular file" err &&
        pass "bpool-shell $what: a FIFO refused at once, exit 1" ||
        fail "bpool-shell $what: status $st (124: it waited): $(cat err)"
}
fifo_refused "FIFO" -c info data.fifo
fifo_refused "--read-only FIFO" --read-only -c info data.fifo
fifo_refused "open FIFO" -c "open data.fifo" ro.data
# A file that cannot be made, whatever the reason: exit 3 (it was 1, "a
# check failed", for reasons not on a list: ENOTDIR, ENAMETOOLONG, ELOOP).
: >plain.txt
ln -sf loop-b loop-a && ln -sf loop-a loop-b
for f in plain.txt/x "$(printf 'n%.0s' $(seq 300))" loop-a; do
    "${prog[bpool-stress]}" -q -f "$f" --pages 64 -n 10 >out 2>err </dev/null
    st=$?
    [ "$st" -eq 3 ] && grep -q "^bpool-stress: bp_open" err &&
        pass "bpool-stress -f ${f:0:20}: exit 3, the file could not be made" ||
        fail "bpool-stress -f ${f:0:20}: status $st: $(cat err)"
done
# An empty file name is refused before anything is made (bpool-bench
# wrote a whole file before it failed to rename it to "").
usage_error "an empty -f" bpool-bench "-f needs a file name" -f '' prepare
usage_error "an empty -f" bpool-stress "-f needs a file name" -f ''
usage_error "an empty FILE" kvdb "FILE is empty" '' get k
# A pass from a cold pool has no unmeasured time before it.
usage_error "-w with seqscan" bpool-bench "seqscan takes no --warmup" -w 1 seqscan
usage_error "-w with trace" bpool-bench "trace takes no --warmup" -w 1 trace x.trace
usage_error "-w with prepare" bpool-bench "prepare takes no --warmup: it runs no workload, only makes the data file \\(if it is missing\\) and reports it\$" \
    -w 1 prepare
# The shell's open: frames=0 is no silent default; rate=0 is no limit.
"${prog[bpool-shell]}" -P 4K z.data -c "open z.data frames=0" >out 2>err </dev/null
grep -q "frames=0: a pool has at least 4 frames" err &&
    pass "bpool-shell open frames=0: refused" || fail "open frames=0: $(cat out err)"
out=$("${prog[bpool-shell]}" -P 4K --checkpoint-rate 100 z.data \
    -c "open z.data rate=0; info" 2>&1 </dev/null)
[ "$(awk '$1 == "checkpoint_rate" { print $2 }' <<<"$out")" = 0 ] &&
    pass "bpool-shell open rate=0: no limit, over --checkpoint-rate" ||
    fail "open rate=0: $out"
usage_error "--pool with --frames" bpool-bench "give --pool or --frames, not both" \
    -p 1M --frames 64 hit
usage_error "--pool with --frames" bpool-shell "give --pool or --frames, not both" \
    -p 1M --frames 64
# A pool has at most 2^31 - 1 frames (bp_open(3)): the range says so.
usage_error "--frames beyond a pool" bpool-bench "--frames '4294967295': want a whole number from 4 to 2147483647" \
    --frames 4294967295 hit
# A value that is not a number gets the range too, as one out of range
# does: in every tool, and for an item of a list.
usage_error "a number out of range" bpool-bench "--threads '0': want a whole number from 1 to 1024\$" \
    -t 0 hit
usage_error "not a number" bpool-bench "--threads 'abc': not a number: want a whole number from 1 to 1024\$" \
    -t abc hit
usage_error "a list item not a number" bpool-bench "--threads 'x': not a number: want a whole number from 1 to 1024\$" \
    -t 1,x hit
usage_error "a sign" bpool-bench "--threads '-1': not a number: want a whole number from 1 to 1024\$" \
    -t -1 hit
usage_error "not a number" bpool-stress "--threads 'abc': not a number: want a whole number from 1 to [0-9]+\$" \
    -t abc
usage_error "not a number" bpool-sim "--partitions 'x': not a number: want a whole number from 1 to 1048576\$" \
    --partitions x -n 8 t.trc
usage_error "not a number" bpool-shell "--frames 'lots': not a number: want a whole number from 4 to 2147483647\$" \
    --frames lots
# An unknown operation in --mix is named with the operations there are.
usage_error "--mix of an unknown operation" bpool-stress \
    "--mix 'foo': unknown operation: choose one of read, write, alloc, prefetch, flush, flushall, checkpoint, sync, hold, stream, resize\$" \
    -f mix.data -d 0.2 --pages 256 -m read=1,foo=1
# A new file's --max-pages below its --pages (given or the default) is
# the command line contradicting itself, not a max to raise.
usage_error "--max-pages below --pages" bpool-stress \
    "--max-pages 10 is below --pages 256: give --max-pages 256 or more\$" \
    -f maxp.data -d 0.2 --max-pages 10 --pages 256
usage_error "--max-pages below the default --pages" bpool-stress \
    "--max-pages 10 is below --pages 16384 \\(the default\\): give --max-pages 16384 or more\$" \
    -f maxp.data -d 0.2 --max-pages 10
[ ! -e maxp.data ] && pass "bpool-stress: and no file made" || fail "maxp.data made"
usage_error "dirty watermarks out of order" bpool-stress "the dirty watermarks need" \
    --dirty-low 50 --dirty-high 40
# One watermark against the others' defaults (10, 30, 75): a usage error
# before any file is made (it was bp_open's refusal: exit 1 or 3).
for t in bpool-shell bpool-bench bpool-stress; do
    usage_error "--dirty-low above the default high" "$t" \
        "the dirty watermarks need .*here 80, 30 \\(default\\) and 75 \\(default\\); give the others too" \
        --dirty-low 80
done
# Pool settings that contradict each other on the line alone: the
# doublewrite area lives in the header, and --pool-max is the most the
# pool may grow to (bp_open refused them: exit 1 or 3, and the shell's
# hint said to use more frames).
for t in bpool-shell bpool-bench bpool-stress; do
    w=(); [ "$t" = bpool-bench ] && w=(hit)
    usage_error "--no-header with --doublewrite" "$t" \
        "--doublewrite needs the file's header: not with --no-header" \
        --no-header --doublewrite "${w[@]}"
    usage_error "--pool-max below --pool" "$t" \
        "--pool-max 524288 is below --pool 1048576: give at least that, or leave --pool-max out" \
        -p 1M --pool-max 512K "${w[@]}"
    usage_error "--pool-max below --frames" "$t" \
        "--pool-max 65536 is below --frames times --page-size 131072: give at least that, or leave --pool-max out" \
        -P 4K --frames 32 --pool-max 64K "${w[@]}"
done
# --pool-max below a pool of the default size, or of --frames of the page
# size the tool settles on: a usage error too (bpool-shell exited 1 and
# bpool-stress 3 after bp_open's BP_EPOOLSIZE; bpool-bench 1).
poolmax_re="--pool-max [0-9]+ is below the pool's [0-9]+ bytes \\([0-9]+ frames of [0-9]+ bytes\\): give at least that, or leave --pool-max out"
usage_error "--pool-max below the default pool" bpool-shell "$poolmax_re" \
    --pool-max 4M -c info
head -c 8M /dev/zero >raw.data     # a file that exists: bpool-bench makes none
usage_error "--pool-max below the default pool" bpool-bench "$poolmax_re" \
    --no-header -f raw.data -d 0.1 --pool-max 64K randread
rm -f raw.data
usage_error "--pool-max below --frames" bpool-stress "$poolmax_re" \
    --pool-max 8K --frames 16 -d 0.3 -q
[ ! -e bpool.data ] && [ ! -e a.data ] && [ ! -e x.db ] && [ ! -e bpool-bench.data ] &&
    [ ! -e bpool-stress.data ] && pass "no usage error made a file" ||
    fail "a usage error made a file: $(ls)"

# --- 3. one size grammar ------------------------------------------------------------------
for t in bpool-shell bpool-bench bpool-stress kvdb; do
    usage_error "size junk" "$t" "--pool '64Q': not a size: want a number, decimal or 0x hex, with an optional K, M, G or T" \
        -p 64Q
    usage_error "size with a sign" "$t" "--pool '-1': not a size" -p -1
    usage_error "size overflow" "$t" "--pool '16777216T': too large" -p 16777216T
    usage_error "hex overflow" "$t" "--pool '0x10000000000000000': too large" \
        -p 0x10000000000000000
    usage_error "size 0" "$t" "--pool '0x0': want a size above 0" -p 0x0
    # (kvdb checks it once FILE and COMMAND are known: the file's pages)
    usage_error "a pool below 4 frames" "$t" "--pool 1024 is 0 frames of [0-9]+ bytes; a pool has at least 4: give --pool [0-9]+K or more" \
        -p 1k $([ "$t" = kvdb ] && echo nofile.kv get k)
done
# The advice fits the page size in force: 12K is too few 8K pages, and
# the size it names is enough.
usage_error "a pool below 4 frames: the size named" bpool-bench \
    "--pool 12288 is 1 frame of 8192 bytes; a pool has at least 4: give --pool 32K or more" -p 12K randread
usage_error "a pool below 4 frames of kvdb's pages" kvdb \
    "--pool 16384 is 2 frames of 8192 bytes; a pool has at least 4: give --pool 32K or more" -p 16K kv.db get k
# (kvdb's own range, 8K to 64K: tests/kvdb_cli.sh.)
for t in bpool-shell bpool-bench bpool-stress; do
    usage_error "page size not a power of two" "$t" "--page-size '5000'" -P 5000
    usage_error "a pool below 4 frames of the page size" "$t" \
        "--pool 131072 is 2 frames of 65536 bytes; a pool has at least 4: give --pool 256K or more" \
        -P 64K -p 128K
done
# Without -P too: the default page size (bpool-bench's 8K), and
# bpool-shell's file's (its header's page size, or 8K for a new file); the
# pool was raised to 4 frames, or refused by the open (exit 1), and no
# file is made.
usage_error "a pool below 4 frames of the default page size" bpool-bench \
    "--pool 16384 is 2 frames of 8192 bytes; a pool has at least 4" -p 16K randread
usage_error "a pool below 4 frames of a new file's page size" bpool-shell \
    "--pool 16384 is 2 frames of 8192 bytes; a pool has at least 4" -p 16K new.data
"$shell" -P 64K big.data -c quit >/dev/null 2>&1
usage_error "a pool below 4 frames of the file's page size" bpool-shell \
    "--pool 131072 is 2 frames of 65536 bytes; a pool has at least 4" -p 128K big.data
[ ! -e new.data ] && [ ! -e bpool-bench.data ] && pass "no file made for a pool too small" ||
    fail "a file made for a pool too small: $(ls)"
# The grammar takes hex, suffixes up to T, and KiB/KB spellings: the same
# pool from each spelling (bpool-shell's info names its frames).
for spec in 262144 0x40000 256K 256k 256KiB 256KB 0x100K; do
    out=$("$shell" -P 4K -p "$spec" --no-flush sz.data -c info 2>&1 </dev/null)
    frames=$(awk '$1 == "frames" { print $2 }' <<<"$out")
    [ "$frames" = 64 ] && pass "bpool-shell -p $spec: 64 frames of 4 KiB" ||
        fail "bpool-shell -p $spec: frames '$frames': $out"
done
# T is a size (its error is the range's, not "not a size").
usage_error "T parses, then is out of range" bpool-bench "--coalesce '1T': want a size below 4G" \
    --coalesce 1T seqwrite
# The shell's commands take the same grammar.
out=$("$shell" -P 4K sz.data -c "open sz.data pool=0x10000; info" 2>&1 </dev/null)
[ "$(awk '$1 == "frames" { print $2 }' <<<"$out")" = 16 ] &&
    pass "bpool-shell open pool=0x10000: 16 frames" || fail "open pool=0x10000: $out"
"$shell" -P 4K sz.data -c "open sz.data pool=1T" >out 2>err </dev/null
grep -q "not a size" err && fail "open pool=1T: T not taken: $(cat err)" ||
    pass "bpool-shell open pool=1T: T is a size suffix"

# --- 4. a letter means the same in every tool ------------------------------------------
# -p is the pool size in bytes, -P the page size.
out=$("$shell" -P 8K -p 512K pf.data -c info 2>&1 </dev/null)
[ "$(awk '$1 == "frames" { print $2 }' <<<"$out")" = 64 ] &&
    [ "$(awk '$1 == "page_size" { print $2 }' <<<"$out")" = 8192 ] &&
    pass "bpool-shell -p 512K -P 8K: 64 frames of 8 KiB" || fail "bpool-shell -p/-P: $out"
# What the command line leaves to the workload, the tool or the library
# is null in "options"; what it gives is there as given.
out=$("$bench" -q -j -f p.data --file-size 1M prepare 2>/dev/null | head -n 1)
[ "$(option threads "$out")" = null ] && [ "$(option pages "$out")" = null ] &&
    pass "bpool-bench --json: threads and pages not given are null" ||
    fail "bpool-bench --json prepare options: $out"
[ "$(option file "$out")" = p.data ] && [ "$(option file_size "$out")" = 1048576 ] &&
    [ "$(option page_size "$out")" = null ] && [ "$(option seed "$out")" = null ] &&
    [ "$(option checkpoint_rate "$out")" = null ] && [ "$(option fixed_buffers "$out")" = null ] &&
    [ "$(field page_size "$out")" = 8192 ] && [ "$(field bytes "$out")" = 1048576 ] &&
    pass "bpool-bench --json: -f and --file-size as given, -P, -s... null; the result's page_size" ||
    fail "bpool-bench --json prepare: file, file_size, page_size, seed: $out"
# Without -f, the default file is null too.
out=$(cd "$work" && mkdir -p dflt && cd dflt && "$bench" -q -j --file-size 1M prepare 2>/dev/null)
[ "$(option file "$out")" = null ] && [ "$(field file "$out")" = bpool-bench.data ] &&
    pass "bpool-bench --json: no -f, options.file null, the result's file the default" ||
    fail "bpool-bench --json without -f: $out"
rm -rf "$work/dflt"
out=$("$bench" -q -j -f b.data --file-size 1M -P 8K -p 512K -s 5 -d 0.05 -w 0 -t 1 \
    --checkpoint-rate 0 --no-fixed-buffers randread 2>err)
st=$?
if [ "$st" -eq 0 ]; then
    expect "bpool-bench -p 512K -P 8K: 64 frames of 8 KiB" "$out" "frames == 64" \
        "page_size == 8192"
    [ "$(option seed "$out")" = 5 ] && [ "$(option pool_bytes "$out")" = 524288 ] &&
        [ "$(option page_size "$out")" = 8192 ] &&
        pass "bpool-bench: -s is the seed, -p the pool size, -P the page size in its JSON options" ||
        fail "bpool-bench options: $out"
    # A value given that is also the default is kept, not null: 0 for
    # --checkpoint-rate; a flag that turns a default off is false.
    [ "$(option checkpoint_rate "$out")" = 0 ] && [ "$(option fixed_buffers "$out")" = false ] &&
        [ "$(option prefetch "$out")" = null ] && [ "$(option readahead "$out")" = null ] &&
        [ "$(field file_size "$out")" = 1048576 ] && [ "$(field checksums "$out")" = 0 ] &&
        pass "bpool-bench --json: --checkpoint-rate 0 and --no-fixed-buffers as given, the rest null" ||
        fail "bpool-bench --json: checkpoint_rate, fixed_buffers, prefetch, readahead: $out"
    # threads a number, as in bpool-stress's options (it was "1"); hit's
    # list of counts, --rate, --variant, --dependent and --rounds there too.
    [[ $out == *'"threads":1,'* ]] && [ "$(option rate "$out")" = null ] &&
        [ "$(option rounds "$out")" = null ] &&
        pass "bpool-bench --json: threads a number, rate and rounds not given null" ||
        fail "bpool-bench --json: threads, rate, rounds: $out"
    out=$("$bench" -q -j -f b.data -P 8K --frames 16 -t 1,2 -d 0.02 -w 0 --variant floor \
        --dependent -D uniform hit 2>err | head -n 1)
    [ "$(option threads "$out")" = null ] && [[ $out == *'"thread_counts":"1,2",'* ]] &&
        [ "$(option variant "$out")" = floor ] && [ "$(option dependent "$out")" = true ] &&
        pass "bpool-bench --json: hit's thread counts, --variant and --dependent" ||
        fail "bpool-bench --json hit options: $out $(cat err)"
    out=$("$bench" -q -j -f b.data -P 8K --frames 16 -t 1 -d 0.02 -w 0 --rate 500 \
        randread 2>err)
    [ "$(option rate "$out")" = 500 ] && pass "bpool-bench --json: --rate in the options" ||
        fail "bpool-bench --json --rate: $out $(cat err)"
elif grep -q O_DIRECT err; then
    echo "SKIP: no O_DIRECT here: $(cat err)"
    exit 77
else
    fail "bpool-bench run: status $st: $(cat err)"
fi
out=$("$stress" -q -j -f s.data --pages 128 -P 8K -p 256K -s 5 -t 1 -n 200 2>err)
st=$?
[ "$st" -eq 0 ] && expect "bpool-stress -p 256K -P 8K: 32 frames of 8 KiB, -s the seed" \
    "$out" "frames == 32" "page_size == 8192" "seed == 5" ||
    fail "bpool-stress run: status $st: $(cat err)"
"$kvdb" -P 16K -p 1M k.db put a b >/dev/null 2>err &&
    out=$("$kvdb" -p 1M k.db stats 2>&1) &&
    [[ $out == *"64 frames of 16384 bytes (1.0 MiB)"* ]] &&
    pass "kvdb -p 1M -P 16K: 64 frames of 16 KiB" || fail "kvdb -p/-P: $(cat err) $out"
# A pool for an existing file counts in the file's pages (16K here).
usage_error "a pool below 4 frames of the file's pages" kvdb \
    "--pool 32768 is 2 frames of 16384 bytes; a pool has at least 4: give --pool 64K or more" -p 32K k.db get a
out=$("$kvdb" --pool-mb 1 k.db stats 2>&1)
[[ $out == *"64 frames of 16384 bytes"* ]] && pass "kvdb --pool-mb: a deprecated alias of --pool" ||
    fail "kvdb --pool-mb: $out"
out=$("$shell" --pool-size 64K -P 4K pf2.data -c info 2>&1 </dev/null)
[ "$(awk '$1 == "frames" { print $2 }' <<<"$out")" = 16 ] &&
    pass "bpool-shell --pool-size: a deprecated alias of --pool" || fail "--pool-size: $out"
# Every tool with --pool takes --pool-size, and its --help says so.
for t in bpool-shell bpool-bench bpool-stress; do
    "${prog[$t]}" --help 2>&1 | grep -q -- '--pool-size' &&
        pass "$t --help: --pool-size named as the alias it is" ||
        fail "$t --help does not name --pool-size"
done
# A file of no whole number of pages is the command line contradicting
# it too (another -P would read it).
head -c 12345 /dev/zero | tr '\0' 'x' >odd.data
usage_error "a file of no whole number of pages" bpool-bench \
    "odd.data has 12345 bytes, not a whole number of 8192-byte pages: give the -P it was made with" \
    -f odd.data --no-header prepare
out=$("$stress" -q -j -f s2.data --pages 128 -P 8K --pool-size 256K -t 1 -n 100 2>&1)
expect "bpool-stress --pool-size 256K -P 8K: 32 frames" "$out" "frames == 32"
# An existing file's header decides the page size without -P; another -P
# or a file without a header is a usage error in the command line's words.
"$stress" -q -f s8.data --pages 128 -P 8K -t 1 -n 100 --keep >/dev/null 2>err ||
    fail "bpool-stress --keep: $(cat err)"
out=$("$stress" -q -j -f s8.data --verify-only 2>&1)
[ "$(field page_size "$out")" = 8192 ] && [ "$(option page_size "$out")" = null ] &&
    [[ $out == *'"result":"ok"'* ]] &&
    pass "bpool-stress --verify-only without -P: the file's page size (null in the options)" ||
    fail "bpool-stress --verify-only without -P: $out"
usage_error "another page size than the file's" bpool-stress \
    "s8.data has pages of 8192 bytes \(its header says so\), not 4096: give --page-size 8192" \
    -f s8.data --verify-only -P 4K
head -c 12345 /dev/zero | tr '\0' 'x' >junk.data
usage_error "a file without a header" bpool-stress \
    "junk.data has no bpool header: give --no-header" -f junk.data --reuse
# --no-header on a file with one: a usage error in every tool (it was
# the library's BP_EFORMAT: exit 3 in bpool-stress, 1 in bpool-shell).
usage_error "--no-header on a file with a header" bpool-stress \
    "s8.data has a bpool header, and --no-header says it has none: drop --no-header" \
    -f s8.data --no-header --reuse
usage_error "--no-header on a file with a header" bpool-bench \
    "s8.data has a bpool header, and --no-header says it has none: drop --no-header" \
    -f s8.data --no-header randread
usage_error "--no-header on a file with a header" bpool-shell \
    "s8.data has a bpool header, and --no-header says it has none: drop --no-header" \
    --no-header -c info s8.data
: >empty.data
# --verify-only of a file with checksums and two corrupt pages: both are
# reported and counted, the scan going on past the first (it stopped
# there: "bad_pages":0, the second page never named).
if "$stress" -q --checksums -f ck2.data -P 4K --pages 64 -t 1 -n 300 --keep >/dev/null 2>err; then
    for pg in 5 9; do
        printf 'CORRUPT!' | dd of=ck2.data bs=1 seek=$((4096 * (1 + pg) + 100)) \
            conv=notrunc status=none
    done
    out=$("$stress" -j --checksums -f ck2.data --verify-only 2>err)
    st=$?
    [ "$st" -eq 1 ] && [[ $out == *'"result":"FAIL"'* && $out == *'"bad_pages":2'* ]] &&
        grep -q "page 5 of ck2.data fails its checksum" err &&
        grep -q "page 9 of ck2.data fails its checksum" err &&
        pass "bpool-stress --verify-only: both corrupt pages reported, exit 1" ||
        fail "bpool-stress --verify-only of 2 corrupt pages: status $st: $out $(cat err)"
else
    fail "bpool-stress --checksums --keep: $(cat err)"
fi
"$stress" -f empty.data --reuse >out 2>err
st=$?
[ "$st" -eq 3 ] && grep -q "a run without --reuse/--verify-only makes a new one" err &&
    pass "bpool-stress --reuse of an empty file: exit 3, how to make one" ||
    fail "bpool-stress --reuse of an empty file: status $st: $(cat err)"

# --- 5. JSON results ---------------------------------------------------------------------
# (bpool-bench's and bpool-stress's runs above, bpool-sim's and kvdb's here.)
json_header "bpool-bench --json: the tools' header" bpool-bench "$(
    "$bench" -q -j -f b.data -p 512K -d 0.05 -w 0 -t 1 randread 2>/dev/null)"
out=$("$stress" -q -j -f s.data --pages 128 -p 256K -t 1 -n 200 2>/dev/null)
json_header "bpool-stress --json: the tools' header" bpool-stress "$out"
expect "bpool-stress --json: elapsed_s, hit_ratio and miss_ratio" "$out" "elapsed_s >= 0" \
    "hit_ratio >= 0" "miss_ratio >= 0"
# Reads only: the write pins' latencies are null, not 0 (doc/tools.md).
out=$("$stress" -q -j -f s.data --pages 128 -p 256K -t 1 -n 200 -m read=1 2>/dev/null)
[[ $out == *'"write_count":0,"write_p50_us":null,"write_p99_us":null,"write_p999_us":null,"write_max_us":null'* ]] &&
    [[ $out == *'"hit_p50_us":'[0-9]* ]] &&
    pass "bpool-stress --json, reads only: write latencies null" ||
    fail "bpool-stress --json, reads only: $out"
seq 0 99 >trace.txt
out=$("$sim" -j -n 8,16 trace.txt)
json_header "bpool-sim --json: the tools' header" bpool-sim "$out"
# The options given, --variant too (it was left out); null when left to
# the default (paper), as tools.md says of every option.
[ "$(option variant "$(head -n 1 <<<"$out")")" = null ] &&
    [ "$(option variant "$("$sim" -j --variant authors -n 8 trace.txt)")" = authors ] &&
    [ "$(option variant "$("$sim" -j -p lru --variant authors -n 8 trace.txt)")" = null ] &&
    pass "bpool-sim --json: the variant in its options (null not given, and for lru)" ||
    fail "bpool-sim --json: no variant in its options: $out"
expect "bpool-sim --json: elapsed_s, hit_ratio and miss_ratio" "$out" "elapsed_s >= 0" \
    "hit_ratio == 0" "miss_ratio == 1"
out=$("$kvdb" -j -p 1M kb.db bench 500 --lookups 500 2>/dev/null)
json_header "kvdb bench --json: the tools' header" kvdb "$out"
expect "kvdb bench --json: the same keys" "$out" "hit_ratio >= 0" "miss_ratio >= 0" \
    "insert_elapsed_s >= 0" "lookup_elapsed_s >= 0" "inserts_s > 0"
ts=$(field timestamp "$out")
now=$(date -u +%s)
then_=$(date -u -d "$ts" +%s 2>/dev/null)
[ -n "$then_" ] && [ $((now - then_)) -ge 0 ] && [ $((now - then_)) -lt 600 ] &&
    pass "timestamp is UTC and now ($ts)" || fail "timestamp '$ts', now $(date -u)"
# JSON text is UTF-8: the bytes of a name that are not (a file name in
# Latin-1) are written as the code points of their values, \u00XX; UTF-8
# passes as it is.  They were copied, and the object was no JSON.
latin=$(printf 'caf\351.trc')
echo 1 >"$latin"
out=$("$sim" -j -n 4 "$latin")
[[ $out == *'"trace":"caf\u00e9.trc"'* ]] && ! grep -q $'\351' <<<"$out" &&
    pass "--json: a Latin-1 name's byte escaped as \\u00e9" ||
    fail "--json: a Latin-1 name: $out"
echo 1 >café.trc
out=$("$sim" -j -n 4 café.trc)
[[ $out == *'"trace":"café.trc"'* ]] && pass "--json: a UTF-8 name as it is" ||
    fail "--json: a UTF-8 name: $out"

# === bpool-sim: the command line, memory and empty traces; a pool too ===
# === large for its frame count ============================================
# (a section of its own, kept whole at the end of the script)
usage_error "frames too few to split" bpool-sim \
    "-n 8 cannot be split 3 ways \(--partitions\): each part needs at least 4 frames" \
    --partitions 3 -n 8 trace.txt
usage_error "one of the frame counts too few to split" bpool-sim \
    "-n 12 cannot be split 4 ways" --partitions 4 -n 16,12 trace.txt
# An empty trace pins nothing: its ratios are null (JSON) and "-" (text),
# as bpool-bench and bpool-shell print a ratio of no pins, not 0.
: >empty.trc
out=$("$sim" -j -n 4 empty.trc 2>&1)
json_header "bpool-sim --json, an empty trace: the tools' header" bpool-sim "$out"
[[ $out == *'"refs":0,'*'"hit_ratio":null,"miss_ratio":null,'* ]] &&
    pass "bpool-sim --json, an empty trace: hit_ratio and miss_ratio null" ||
    fail "bpool-sim --json, an empty trace: $out"
out=$("$sim" -n 4 empty.trc 2>&1)
[ "$out" = "policy=clockpro frames=4 refs=0 hits=0 misses=0 miss_ratio=-" ] &&
    pass "bpool-sim, an empty trace: miss_ratio=-" || fail "bpool-sim, an empty trace: $out"
# Frames beyond the trace's pages replay alike (nothing is evicted) and
# take no memory: 2^30 frames for a trace of one page fit in a 2 GiB
# address space (they took 16 to 24 GiB), and the line names the frames
# asked for.  Not under a sanitizer, whose shadow memory needs the space.
if [ -z "${BPOOL_TEST_SANITIZED:-}" ]; then
    echo 7 >one.trc
    for args in "-p clockpro" "-p lru" "-p clock" "--partitions 4"; do
        # shellcheck disable=SC2086
        out=$(ulimit -v 2097152 && "$sim" -j $args -n 16,1073741824 one.trc 2>err)
        st=$?
        if [ "$st" -eq 0 ] && [ "$(grep -c . <<<"$out")" -eq 2 ]; then
            expect "bpool-sim $args -n 2^30, one page: as with 16 frames" \
                "$(sed -n 2p <<<"$out")" "frames == 1073741824" "refs == 1" \
                "misses == 1" "hits == 0"
        else
            fail "bpool-sim $args -n 2^30, one page: status $st: $(cat err)"
        fi
    done
    # A million pages in 48 MiB: memory runs out, which is exit 1 with
    # a message (not a crash).
    seq 0 999999 >million.trc
    (ulimit -v 49152 && "$sim" -n 1000000 million.trc) >out 2>err
    st=$?
    [ "$st" -eq 1 ] && [ ! -s out ] && grep -q "^bpool-sim: out of memory" err &&
        pass "bpool-sim out of memory: exit 1, '$(cat err)'" ||
        fail "bpool-sim out of memory: status $st: $(cat out err)"
fi

# A --pool of more frames than a pool has is named by its own count, not
# 2^32 - 1 (bpool-bench: tests/bench_smoke.sh).
usage_error "a pool of 2^41 frames" bpool-stress \
    "a pool of 9007199254740992 bytes is 2199023255552 frames of 4096 bytes; a pool has at most 2147483647 frames" \
    -P 4K -p 8192T

# A file name's control bytes - a newline, an escape sequence - are
# printed as \xHH, in the tool's own words and in the library's detail
# alike, so a message stays one line and cannot rewrite the terminal.
nl_path="$PWD/no"$'\n'"dir/"$'\e'"[31mdata"
for tool in bpool-bench bpool-stress bpool-shell; do
    case $tool in
    bpool-bench) args=(-f "$nl_path" prepare) ;;
    bpool-stress) args=(-f "$nl_path" -d 1) ;;
    bpool-shell) args=(-c info "$nl_path") ;;
    esac
    "${prog[$tool]}" "${args[@]}" >out 2>err </dev/null
    st=$?
    if [ "$st" -ne 0 ] && grep -q -F 'no\x0adir/\x1b[31mdata' err &&
            ! LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' err out &&
            ! grep -q '^dir/' err; then
        pass "$tool: a file name's control bytes as \\xHH ($(wc -l <err) lines)"
    else
        fail "$tool: a file name with control bytes: status $st, stderr:"
        sed -n l err | sed 's/^/    /'
    fi
done

finish
