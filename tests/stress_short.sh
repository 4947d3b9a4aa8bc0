#!/bin/bash
# SPDX-License-Identifier: MIT
# stress_short.sh - a short pass of tools/bpool-stress (an automake TESTS
# script: exit 0 pass, 1 fail, 77 skip, 99 hard error).
#
# Runs the stress tool a few seconds at a time with several thread counts,
# pool sizes and distributions, including a pool of 4 frames that 8 threads
# fight over (and, holding 2 pages each, must meet -BP_ENOFRAME and retry,
# never report an error), eviction pressure from threads pinning several
# pages at once, and read streams (bp_stream_*) among readers and writers.
# Each run
# checks every page it reads and, after closing, every page of the file
# against the versions it wrote.  Then: a fixed seed with one thread and an
# op count repeats exactly; a kept file verifies and is reused; the checker
# catches a corrupt page and a misdirected one; SIGINT and SIGTERM stop a
# run (exit 130, 143), removing the file it made or keeping it as asked;
# usage errors exit 2.
#
# About 20 s (longer under ThreadSanitizer: fewer operations in the same
# time, but the setup and the checks after reopening are slower).
# BPOOL_STRESS_SCALE (default 1) multiplies every duration, for longer
# runs by hand.
#
# Environment (exported by the harness, see Makefile.am): top_builddir,
# BPOOL_STRESS (the program), BPOOL_TEST_TMPDIR (scratch on the build file
# system: O_DIRECT works there; /tmp may be tmpfs).  The helpers
# (need_program, scratch, pass, fail, secs, field, expect, finish) are
# tests/lib.sh's.

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh" || exit 99
stress=${BPOOL_STRESS:-$top_builddir/tools/bpool-stress}
need_program "$stress"
scratch stress

# run NAME ARGS...: a run on its own data file that must pass; its JSON
# report is left in $out.  Returns 1 (after a FAIL) if it did not pass.
run() {
    local name=$1 st
    shift
    rm -f run.data run.data.dlog
    out=$("$stress" -q --json -f run.data "$@" 2>err)
    st=$?
    if [ "$st" -ne 0 ]; then
        fail "$name: exit status $st, stderr:"
        sed 's/^/    /' err | head -30
        return 1
    fi
    # null: a latency of no pins, a ratio of nothing (doc/tools.md)
    local re='^\{"mode":"[a-z]+","result":"ok"(,"[a-z_0-9]+":("[^"]*"|-?[0-9]+(\.[0-9]+)?|null))*\}$'
    if ! [[ $(drop_options "$out" | sed 's/^{"tool":"bpool-stress","version":"[^"]*","timestamp":"[^"]*",/{/') =~ $re ]]; then
        fail "$name: the report is not the tools' JSON header and one flat object: $out"
        return 1
    fi
    pass "$name: passed, every page verified"
}

# --- Can we run at all (O_DIRECT)? ------------------------------------------
"$stress" -q -f probe.data --pages 16 -n 10 -t 1 >/dev/null 2>err
st=$?
if [ "$st" -eq 3 ] && grep -q -i "O_DIRECT\|ENODIRECT" err; then
    echo "SKIP: no O_DIRECT here: $(cat err)"
    exit 77
fi
[ "$st" -eq 0 ] && pass "probe run" || { fail "probe run: status $st: $(cat err)"; exit 1; }
[ ! -e probe.data ] && pass "a passing run removes its data file" ||
    fail "probe.data left behind"

common=("ops > 0" "errors == 0" "verified > 0" "pages_verified == end_pages")

# --- Thread counts, pool sizes, distributions --------------------------------
if run "1 thread, uniform" -t 1 --pages 1024 --frames 64 -D uniform -d "$(secs 1.5)" -s 11; then
    expect "1 thread, uniform: counts" "$out" "${common[@]}" "threads == 1" \
        "read > 0" "write > 0" "misses > 0" "hit_ratio < 1"
fi

if run "4 threads, zipf, 2048 pages, 128 frames" -t 4 --pages 2048 --frames 128 \
        -D zipf:0.9 -d "$(secs 1.5)" -s 12; then
    expect "zipf: counts" "$out" "${common[@]}" "alloc > 0" \
        "end_pages >= pages" "hits > 0"
fi

# 8 threads, 4 frames: more pins wanted than frames.  A pin waits (about
# 50 ms) for frames held only by I/O in flight, so with one page per
# operation -BP_ENOFRAME may or may not happen; the run must pass either
# way.
if run "8 threads on a pool of 4 frames" -t 8 --pages 256 --frames 4 -d "$(secs 2)" -s 13; then
    expect "4 frames: contention, not an error" "$out" "${common[@]}" \
        "frames == 4" "write > 0"
fi

# 8 threads holding 2 pages at once on 4 frames: when three holders have
# one page each and a fourth pin holds the last frame, nobody can get a
# second frame, so -BP_ENOFRAME must happen; the run counts it (nofree),
# drops the pins it holds, retries, and never reports an error.
tsan_nodl=${TSAN_OPTIONS:+$TSAN_OPTIONS:}detect_deadlocks=0
if TSAN_OPTIONS=$tsan_nodl \
        run "8 threads holding 2 pages each on 4 frames" -t 8 --pages 256 --frames 4 \
        --hold-pages 2 -m read=15,write=15,hold=70 -d "$(secs 2)" -s 17; then
    expect "4 frames, holds of 2: -BP_ENOFRAME met and retried" "$out" \
        "${common[@]}" "frames == 4" "hold > 0" "nofree > 0"
fi

# Eviction pressure: threads pin 2 pages at once in 8 frames, checkpoints.
# Latches belong to frames, not pages: pinning pages in page order takes
# frame latches in no fixed order, and ThreadSanitizer's lock-order check
# calls that a potential deadlock.  Shared latches cannot deadlock there
# (writers hold one page at a time, glibc's rwlocks prefer readers), so
# the check is off for this run only; data races are still reported.
tsan_nodl=${TSAN_OPTIONS:+$TSAN_OPTIONS:}detect_deadlocks=0
if TSAN_OPTIONS=$tsan_nodl \
        run "6 threads, 8 frames, hold 2 pages at once" -t 6 --pages 512 --frames 8 --hold-pages 2 \
        -m read=40,write=30,hold=15,prefetch=5,alloc=2,flush=3,flushall=1,checkpoint=2,sync=1 \
        -d "$(secs 1.5)" -s 14; then
    expect "hold: counts" "$out" "${common[@]}" "hold > 0" "checkpoint > 0" "sync > 0" \
        "prefetch > 0" "flushall > 0"
fi

# Read streams over sets and ranges of pages, for read, write and pin
# only, some closed early, while other threads read and write the same
# pages; then the same on a pool of 8 frames with holds (eviction
# pressure: a stream's look-ahead meets full pools and busy latches).
if run "4 threads, read streams" -t 4 --pages 1024 --frames 64 \
        -m read=30,write=25,stream=40,alloc=2,flush=2,checkpoint=1 -d "$(secs 1.5)" -s 21; then
    expect "streams: counts" "$out" "${common[@]}" "stream > 0" \
        "stream_pages > stream" "stream_early > 0"
fi
if TSAN_OPTIONS=$tsan_nodl \
        run "6 threads, streams and holds on 8 frames" -t 6 --pages 512 --frames 8 \
        --hold-pages 2 -m read=30,write=20,hold=15,stream=35 -d "$(secs 1.5)" -s 22; then
    expect "streams on 8 frames: counts" "$out" "${common[@]}" "stream > 0" "hold > 0"
fi

# Scans with prefetch, 8 KiB pages, no flushers (evicting threads write).
if run "2 threads, seq scans, 8 KiB pages, no flushers" -t 2 --pages 1024 --frames 32 -P 8192 \
        -D seq --flushers 0 -m read=50,write=30,prefetch=20 -d "$(secs 1.5)" -s 15; then
    expect "seq: counts" "$out" "${common[@]}" "page_size == 8192" "prefetch > 0"
fi

# Hot set and a loop larger than the pool, without read-ahead.
if run "3 threads, hotset" -t 3 --pages 1024 --frames 64 -D hotset:0.05:0.95 \
        -d "$(secs 1)" -s 16; then
    expect "hotset: hit ratio" "$out" "${common[@]}" "hit_ratio > 0.5"
fi
if run "3 threads, loop, no read-ahead" -t 3 --pages 1024 --frames 64 -D loop:96 \
        --no-readahead -d "$(secs 1)" -s 17; then
    expect "loop: counts" "$out" "${common[@]}"
fi

# Three files in one pool (--files 3): pages striped over the files, every
# operation, allocations included, reaching all of them; each file holds
# its share of the pages at the end.
if run "4 threads, 3 files in one pool" -t 4 --pages 900 --frames 32 --files 3 \
        -m read=35,write=30,stream=10,prefetch=5,alloc=5,hold=5,flush=4,checkpoint=3,sync=3 \
        --hold-pages 2 -d "$(secs 1.5)" -s 23; then
    expect "3 files: counts" "$out" "${common[@]}" "alloc > 0" \
        "stream > 0" "end_pages > pages"
    [[ $out == *'"files":3,'* ]] && pass "3 files: the options say files 3" ||
        fail "3 files: no \"files\":3 in the options: $out"
    [ ! -e run.data ] && [ ! -e run.data.1 ] && [ ! -e run.data.2 ] &&
        pass "3 files: a passing run removes all its files" ||
        fail "3 files: run.data, .1 or .2 left behind"
fi

# Online resize (-m resize=N): threads pin, hold, stream and checkpoint
# while others resize the pool between half its size and --pool-max; every
# page read is checked, and all of them after the reopen.
if run "4 threads, resizes between 16 and 96 frames" -t 4 --pages 1024 \
        --frames 32 --pool-max $((96 * 4096)) \
        -m read=40,write=30,stream=5,hold=5,checkpoint=2,resize=3 \
        --hold-pages 2 -d "$(secs 1.5)" -s 29; then
    expect "resize: counts" "$out" "${common[@]}" "resize > 0" "hold > 0"
    [[ $out == *'"pool_bytes_max":393216,'* ]] &&
        pass "resize: the options say pool_bytes_max" ||
        fail "resize: no \"pool_bytes_max\":393216 in the options: $out"
fi

# The io_uring engine (where it is built and allowed): the same checks,
# every operation, resizes included.
if "$stress" -q --io-engine io_uring -f u_probe.data --pages 16 -n 10 -t 1 \
        >/dev/null 2>&1; then
    if run "4 threads on io_uring" --io-engine io_uring -t 4 --pages 1024 \
            --frames 32 --pool-max $((64 * 4096)) \
            -m read=40,write=30,stream=8,prefetch=4,alloc=3,hold=5,flush=3,checkpoint=2,resize=2 \
            --hold-pages 2 -d "$(secs 1.5)" -s 31; then
        expect "io_uring: counts" "$out" "${common[@]}" "stream > 0" "resize > 0"
    fi
else
    echo "note: no io_uring engine here; its run is left out"
fi
rm -f u_probe.data

# A run that pins nothing has no hit ratio: null, as bpool-bench and
# bpool-shell write it (it said 0.0000, as if every pin had missed).
rm -f nopin.data nopin.data.dlog
out=$("$stress" -q --json -f nopin.data --pages 16 -t 1 -n 20 -m sync=1 --no-fill -s 3 2>err)
[[ $out == *'"hits":0,"misses":0,"hit_ratio":null,"miss_ratio":null,'* ]] &&
    pass "no pins: hit_ratio and miss_ratio are null" ||
    fail "no pins: $out $(cat err)"
# Nor latencies: "-" in the text report where the JSON has null (it
# printed 0.0 us), the syncs' own a number.
rm -f nopin.data nopin.data.dlog
"$stress" -q -f nopin.data --pages 16 -t 1 -n 20 -m sync=1 --no-fill -s 3 >nopin.txt 2>err
if grep -Eq '^    (hit|miss|write|alloc|flush) +0 +- +- +- +-$' nopin.txt &&
   [ "$(grep -Ec '^    [a-z]+ +0 +- +- +- +-$' nopin.txt)" -eq 5 ] &&
   grep -Eq '^    checkpoint +20( +[0-9]+\.[0-9]){4}$' nopin.txt; then
    pass "no operations of a kind: its latencies are - in the text report"
else
    fail "no operations of a kind: latencies: $(cat nopin.txt err)"
fi
grep -q '^  pool       hit ratio - (0 hits, 0 misses)' nopin.txt &&
    pass "no pins: the text's hit ratio is -, as the JSON's null" ||
    fail "no pins: the text's hit ratio: $(cat nopin.txt err)"

# --- A fixed seed, one thread and an op count repeat exactly ---------------
if run "seed 42, 1 thread, 3000 ops" -t 1 --pages 512 --frames 64 -n 3000 -s 42; then
    first=$out
    if run "same again" -t 1 --pages 512 --frames 64 -n 3000 -s 42; then
        same=1
        for k in ops read write alloc prefetch flush flushall checkpoint sync \
                 stream stream_pages end_pages verified; do
            [ "$(field $k "$first")" = "$(field $k "$out")" ] || same=0
        done
        [ $same -eq 1 ] && pass "--seed: the same operations twice" ||
            fail "--seed: runs differ: $first / $out"
        expect "3000 ops" "$out" "ops == 3000" "seed == 42"
    fi
fi

# --- Keep, verify, reuse -------------------------------------------------------
"$stress" -q -f kept.data -t 2 --pages 256 --frames 16 -d "$(secs 1)" --keep -s 18 >/dev/null 2>err &&
    [ -f kept.data ] && pass "--keep keeps the data file" ||
    fail "--keep: $(cat err)"
out=$("$stress" --json -f kept.data --verify-only 2>err)
expect "--verify-only on a kept file" "$out" "pages_verified == pages" "bad_pages == 0"
# It runs no workload: its options leave out the workload's, which it
# never used (a seed drawn at random, the default threads and time).
unused=
for k in threads duration_s ops dist seed max_pages mix hold_pages fill; do
    [ -z "$(option $k "$out")" ] || unused+=" $k"
done
[ -z "$unused" ] && [ "$(option pages "$out")" = null ] &&
    pass "--verify-only: options without the workload's" ||
    fail "--verify-only: options it did not use:$unused: $out"
# A run's options: what the command line gave, null for what it left to
# the tool (doc/tools.md); the result has the values used.
out=$("$stress" --json -f opts.data -t 2 --pages 64 --frames 8 -d "$(secs 0.3)" --keep \
    --checkpoint-rate 0 2>err)
[ "$(option threads "$out")" = 2 ] && [ "$(option pages "$out")" = 64 ] &&
    [ "$(option frames "$out")" = 8 ] && [ "$(option seed "$out")" = null ] &&
    [ "$(option dist "$out")" = null ] && [ "$(option ops "$out")" = null ] &&
    [ -n "$(field seed "$out")" ] && [ "$(field seed "$out")" != null ] &&
    [ "$(field dist "$out")" = mix ] &&
    pass "a run's options: given as given, null when left to the tool" ||
    fail "a run's options: $out $(cat err)"
# Each of them: the page size, the library's settings and the flags not
# given are null (the result has the page size used), a 0 given is 0.
got='' want=''
for k in files page_size fixed_buffers readahead checksums header doublewrite \
         atomic crash power_cut queue_depth flushers mix hold_pages fill \
         hang_timeout_s reuse; do
    got+=" $k=$(option $k "$out")"
    want+=" $k=null"
done
[ "$got" = "$want" ] && [ "$(option file "$out")" = opts.data ] &&
    [ "$(option checkpoint_rate "$out")" = 0 ] && [ "$(field page_size "$out")" = 4096 ] &&
    [ "$(field checksums "$out")" = 0 ] && [ "$(option keep "$out")" = true ] &&
    pass "a run's options: null when not given, flags too; 0 given is 0; the result's page size" ||
    fail "a run's options:$got, file $(option file "$out"), checkpoint_rate $(option checkpoint_rate "$out"): $out"
# --reuse of that file (64 pages and those its allocations added) with
# another --pages: the option as given, the result the file's pages; the
# run's other settings as given, the mix as its string.
out=$("$stress" --json -f opts.data --keep --reuse -t 1 --pages 100 --max-pages 50 \
    -P 4K -d "$(secs 0.2)" -m read=3,write=1 --hold-pages 2 --no-fill \
    --hang-timeout 30 2>err)
[ "$(option pages "$out")" = 100 ] && [ "$(option max_pages "$out")" = 50 ] &&
    [ "$(option page_size "$out")" = 4096 ] &&
    [[ $out == *'"options":{'*'"mix":"read=3,write=1",'*'},"mode"'* ]] &&
    [ "$(option hold_pages "$out")" = 2 ] && [ "$(option fill "$out")" = false ] &&
    [ "$(option hang_timeout_s "$out")" = 30.000 ] && [ "$(option reuse "$out")" = true ] &&
    [ "$(option keep "$out")" = true ] &&
    [ "$(field pages "$out")" -ge 64 ] && [ "$(field pages "$out")" -lt 100 ] &&
    pass "--reuse: options.pages, max_pages, page_size, mix, hold_pages, fill, hang_timeout_s, reuse and keep as given, the result's pages the file's" ||
    fail "--reuse: options pages $(option pages "$out"), max_pages $(option max_pages "$out"): $out $(cat err)"
rm -f opts.data opts.data.*
"$stress" -q -f kept.data -t 2 -d 1 >/dev/null 2>err
st=$?
[ "$st" -eq 2 ] && grep -q -- "--reuse" err && pass "an existing file needs --reuse (exit 2)" ||
    fail "existing file without --reuse: status $st: $(cat err)"
out=$("$stress" -q --json -f kept.data --reuse -t 3 --frames 16 -d "$(secs 1)" -s 19 2>err)
expect "--reuse runs on the kept file" "$out" "${common[@]}" "pages >= 256"
[ -f kept.data ] && pass "--reuse leaves a file it did not make" || fail "--reuse removed kept.data"
# --reuse of a file another pool holds waits up to 10 s of the clock for
# it, then gives up (exit 3): it counted 1000 tries of 10 ms, which took
# 12 to 24 s with the tries' own time (doc/bpool-stress.1).
"$stress" -q -f kept.data --reuse -t 1 --frames 16 -d 30 >/dev/null 2>&1 &
holder=$!
sleep 1
t0=$(date +%s%N)
"$stress" -q -f kept.data --reuse -t 1 --frames 16 -d 1 >/dev/null 2>err
st=$?
waited=$(( ($(date +%s%N) - t0) / 1000000 ))
kill -INT "$holder" 2>/dev/null
wait "$holder"
if [ "$st" -eq 3 ] && grep -q BP_ELOCKED err && [ "$waited" -ge 9900 ] &&
        [ "$waited" -le 11500 ]; then
    pass "--reuse of a locked file: refused after ${waited} ms (exit 3)"
else
    fail "--reuse of a locked file: status $st after ${waited} ms: $(cat err)"
fi
# --reuse counts the file's pages through a pool: a file with a
# doublewrite area, or without a header page, holds another number than
# its size in pages less one (which made a false FAIL: "the pool has 326
# pages; it had 544 and bp_alloc_page returned 38 new ones").
for layout in --doublewrite --no-header; do
    rm -f lay.data lay.data.dlog
    out=$("$stress" -q --json -f lay.data -t 2 --pages 256 --frames 16 \
          -d "$(secs 0.5)" -s 5 "$layout" --keep 2>err)
    made=$(field end_pages "$out")
    [ -n "$made" ] || { fail "$layout: the first run: $(cat err)"; continue; }
    reopen=()
    [ "$layout" = --no-header ] && reopen=(--no-header)
    out=$("$stress" -q --json -f lay.data --reuse "${reopen[@]}" -t 2 \
          --frames 16 -d "$(secs 0.5)" -s 6 2>err)
    st=$?
    [ "$st" -eq 0 ] && pass "--reuse of a file made with $layout: exit 0" ||
        fail "--reuse of a file made with $layout: exit status $st: $(cat err)"
    expect "--reuse of a file made with $layout: its pages" "$out" \
        "${common[@]}" "pages == $made"
done
rm -f lay.data lay.data.dlog

# --- The checker catches damage ------------------------------------------------
# caught NAME REGEX ARGS...: a run on bad.data, a damaged copy of kept.data,
# must fail (exit 1), say REGEX on stderr and keep the file.
caught() {
    local name=$1 re=$2 st
    shift 2
    "$stress" -f bad.data "$@" >out 2>err
    st=$?
    [ "$st" -eq 1 ] && grep -q "$re" err && [ -f bad.data ] && pass "$name" ||
        fail "$name: status $st: $(cat err)"
}
ps=4096   # page n is at byte (n + 1) * ps: after the header page
cp kept.data bad.data
printf 'X' | dd of=bad.data bs=1 seek=$((6 * ps + 1000)) conv=notrunc status=none
caught "a corrupt byte in page 5: exit 1, page named" "page 5 .*checksum mismatch" \
    --verify-only
cp kept.data bad.data
dd if=kept.data of=bad.data bs=$ps skip=4 seek=8 count=1 conv=notrunc status=none
caught "page 3's image in page 7: exit 1, misdirected" "page 3 .* in place of page 7" \
    --verify-only
cp kept.data bad.data
dd if=/dev/zero of=bad.data bs=512 seek=$((10 * ps / 512 + 4)) count=1 conv=notrunc status=none
caught "a torn page 9 stops --reuse: exit 1, file kept" "page 9 " --reuse -d 1

# --- SIGINT and SIGTERM stop a run: the threads stop, the pool is closed,
# and the data file the run made is removed (--keep: kept, its name
# printed), exit 128 + the signal.  They ended it at once, the file left
# behind.  Sent once the file is there (the handlers come before it); a
# job of a script ignores SIGINT unless started under job control, and
# one whose make was started in the background (nohup make check &)
# inherits SIGINT ignored, which job control does not undo: env puts it
# back to its default where it can (coreutils 8.31 and later).
# stopped NAME SIG WANT ARGS...: a run on sig.data stopped by SIG must end
# with status WANT and leave sig.data (WANT "kept") or nothing ("gone").
default_int=
env --default-signal=INT true 2>/dev/null && default_int="env --default-signal=INT"
stopped() {
    local name=$1 sig=$2 want=$3 pid st left
    shift 3
    rm -f sig.data sig.data.dlog sig.data.cut
    set -m
    $default_int "$stress" -q -f sig.data "$@" >out 2>err &
    pid=$!
    set +m
    for _ in $(seq 1000); do [ -e sig.data ] && break; sleep 0.01; done
    sleep 0.5
    kill -"$sig" "$pid"
    wait "$pid"
    st=$?
    left=$(ls sig.data* 2>/dev/null | tr '\n' ' ')
    if [ "$st" -ne $((128 + $(kill -l "$sig"))) ] || ! grep -q "^bpool-stress: stopped by SIG$sig$" err; then
        fail "$name: status $st: $(cat err)"
    elif [ "$want" = gone ] && [ -z "$left" ] && grep -q "removed sig.data, made by this run" err; then
        pass "$name: exit $st, the file it made removed"
    elif [ "$want" = kept ] && [ -e sig.data ] && grep -q "data file kept: sig.data" err; then
        pass "$name: exit $st, the file kept and named"
    else
        fail "$name: status $st, left '$left': $(cat err)"
    fi
}
stopped "SIGTERM during a run" TERM gone -t 2 --pages 256 --frames 16 -d 60
stopped "SIGINT during a run" INT gone -t 2 --pages 256 --frames 16 -d 60
stopped "SIGTERM during crash cycles" TERM gone -t 2 --pages 256 --frames 16 --crash \
    --cycles 1000 -d 1
stopped "SIGINT during a run with --keep" INT kept -t 2 --pages 256 --frames 16 -d 60 --keep
"$stress" -q -f sig.data --verify-only >/dev/null 2>err &&
    pass "a run stopped by SIGINT: its kept file verifies" ||
    fail "a run stopped by SIGINT: its kept file: $(cat err)"
rm -f sig.data sig.data.dlog

# --- Usage -------------------------------------------------------------------
"$stress" --help >help.out 2>&1
st=$?
opts=$(grep -o -- '--[a-z][a-z-]*' help.out | sort -u)
missing=
for o in --threads --duration --ops --dist --mix --hold-pages --seed --file \
         --pages --max-pages --pool --pool-size --frames --pool-max --page-size --flushers --queue-depth \
         --checkpoint-rate --no-readahead --no-fill --reuse --keep --verify-only \
         --crash --cycles --power-cut --files --json --quiet --hang-timeout --help --version; do
    grep -q -x -- "$o" <<<"$opts" || missing+=" $o"
done
[ "$st" -eq 0 ] && [ -z "$missing" ] && pass "--help lists every option" ||
    fail "--help: status $st, missing:$missing"
"$stress" --version | grep -q '^bpool-stress (bpool) [0-9.]*$' && pass "--version" ||
    fail "--version"
for args in "--bogus" "-t 0" "-D zipf:2" "-m read=x" "-m nosuch=1" "-P 5000" \
            "--crash -n 10" "extra" "--frames 8 -m hold=1 --hold-pages 5" \
            "--files 0" "--files 65" "--files 2 --power-cut 1" \
            "--frames 32 --pool-max 4096 -m resize=1"; do
    # shellcheck disable=SC2086
    "$stress" -q -f usage.data $args >/dev/null 2>err
    st=$?
    [ "$st" -eq 2 ] && [ -s err ] && [ ! -e usage.data ] &&
        pass "usage error exits 2: '$args'" ||
        fail "'$args': status $st, stderr: $(cat err)"
done

finish
