#!/bin/bash
# SPDX-License-Identifier: MIT
# bench_smoke.sh - smoke test of tools/bpool-bench (an automake TESTS
# script: exit 0 pass, 1 fail, 77 skip, 99 hard error).
#
# Runs every workload for a tiny duration on a 4 MiB data file with --json
# and checks that each result line is one flat JSON object with the
# expected fields and sane values: counts above zero, ratios in [0, 1],
# quantiles in order, no misses in the hit loop (BP_READ and BP_PIN), a
# full pass for seqscan, exact hit and miss counts for a trace whose answer
# is known, no reads for BP_OVERWRITE writes, exact page and request counts
# for seqwrite with and without coalescing, checkpoints counted only in
# the checkpoint phase, every page still holding its own stamp after
# random, overwriting and sequential writes, and the page cache left empty
# by bpool's O_DIRECT I/O.  Then --timeline (a line per second, text and
# JSON, and bench/timeline-plot.sh when gnuplot is there), bench/latency.sh
# on a 16 MiB file (its table and per-second lines; when fio is there), the
# text format and usage errors (latency.sh not in sanitizer builds);
# warmup's four lines (prime, cold, warm, summary), the warm run reading
# the dump of the primed pool's 64 resident pages.  And the data file and
# the command line: -s repeats the pages drawn; --checksums and
# --no-header files are made so that the pool opens them, and a file the
# run made goes when the pool refuses it; an existing file without pages,
# or with fewer than a workload needs, is refused as it is; a file past
# 2^63 - 1 bytes or the free space is refused before it is written,
# SIGINT and SIGTERM during its fill leave nothing; every usage error ends
# with the pointer to --help and makes no file.  The JSON options are the
# command line's: null for each setting it left out (flags too), a value
# given as given (0 too); the results have the page size and file size used.
# It compares no figure with any target: it is not a benchmark.
#
# Environment (exported by the harness, see Makefile.am): top_builddir,
# BPOOL_BENCH (the program), BPOOL_TEST_TMPDIR (scratch on the build file
# system: O_DIRECT works there; /tmp may be tmpfs).  The helpers
# (need_program, scratch, pass, fail, expect, finish) are tests/lib.sh's.

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh" || exit 99
bench=${BPOOL_BENCH:-$top_builddir/tools/bpool-bench}
need_program "$bench"
scratch benchtest
data=$work/bench.data

# shape NAME LINES FIELD...: every line is one JSON object with the tools'
# header (tool, version, timestamp, options: doc/tools.md), then flat (keys
# quoted; values numbers, strings or null, never NaN/inf), starting with
# "workload", with each FIELD.
shape() {
    local name=$1 lines=$2 line f
    local re='^\{"workload":"[a-z]+"(,"[a-z_0-9]+":("[^"]*"|-?[0-9]+(\.[0-9]+)?|true|false|null))*\}$'
    shift 2
    json_header "$name: the tools' JSON header" bpool-bench "$lines"
    while read -r line; do
        line=$(drop_options "$line" |
            sed 's/^{"tool":"[^"]*","version":"[^"]*","timestamp":"[^"]*",/{/')
        if ! [[ $line =~ $re ]]; then
            fail "$name: not a flat JSON object: $line"
            return
        fi
        for f in "$@"; do
            if [[ $line != *"\"$f\":"* ]]; then
                fail "$name: no field $f: $line"
                return
            fi
        done
    done <<<"$lines"
    pass "$name: JSON shape"
}

# run NAME ARGS...: run the bench on the data file, stdout into $out; a
# non-zero status fails NAME (and returns 1).
run() {
    local name=$1
    shift
    out=$("$bench" --quiet -f "$data" "$@" 2>"$work/err")
    local st=$?
    if [ "$st" -ne 0 ]; then
        fail "$name: exit status $st: $(cat "$work/err")"
        return 1
    fi
}

# --- hit; it also makes the data file (or skips without O_DIRECT) ---------
if ! out=$("$bench" --quiet -f "$data" --file-size 4M --json --frames 128 -d 0.1 \
        -w 0.02 -t 1,2 hit --verify 2>"$work/err"); then
    if grep -q "O_DIRECT" "$work/err"; then
        echo "SKIP: no O_DIRECT here: $(cat "$work/err")"
        exit 77
    fi
    echo "FAIL: hit: $(cat "$work/err")"
    exit 1
fi
size=$(stat -c %s "$data")
[ "$size" -eq $(((4 << 20) + 8192)) ] && pass "data file made: a header page and 4 MiB of pages" ||
    fail "data file has $size bytes, want $(((4 << 20) + 8192)): a header page and 4 MiB"
[ "$(head -c 8 "$data")" = "bpoolpg" ] && pass "data file made: its header's magic" ||
    fail "data file: no bpool header magic at byte 0: $(head -c 8 "$data" | od -c | head -1)"
n=$(grep -c . <<<"$out")
[ "$n" -eq 28 ] && pass "hit: 28 lines (2 dists x 2 thread counts x 7 variants)" ||
    fail "hit: $n lines, want 28: $out"
shape hit "$out" variant dist threads pages page_size file_size ops elapsed_s ops_s ns_op
expect "hit: every line" "$out" "ops > 0" "ns_op > 0" "elapsed_s > 0" "pages == 128" \
    "dependent == 0" "page_size == 8192" "file_size == 4194304"
# --file-size and --verify as given; -P, -s and --frames... as the file and
# the defaults decided: page_size null in the options, 8192 in the result.
line=$(head -1 <<<"$out")
[ "$(option file "$line")" = "$data" ] && [ "$(option file_size "$line")" = 4194304 ] &&
    [ "$(option verify "$line")" = true ] &&
    [ "$(option frames "$line")" = 128 ] && [ "$(option page_size "$line")" = null ] &&
    [ "$(option seed "$line")" = null ] &&
    pass "hit: options given as given, page_size and seed not given null" ||
    fail "hit: options file, file_size, verify, frames, page_size, seed: $line"
expect "hit bpool, pin, write and optimistic: every pin a hit" "$(grep -E '"variant":"(bpool|pin|write|optimistic)"' <<<"$out")" \
    "misses == 0" "hits > 0" "frames == 128"
missing=
for v in bpool pin write optimistic pread mmap floor; do
    for d in uniform zipf; do
        [[ $out == *"\"variant\":\"$v\",\"dist\":\"$d\""* ]] || missing+=" $v/$d"
    done
done
[ -z "$missing" ] && pass "hit: a line for each variant and distribution" ||
    fail "hit: no line for$missing"

if run "hit --dependent" --json --frames 128 -d 0.05 -w 0.01 -t 2 -D uniform \
        --dependent hit --verify; then
    [ "$(grep -c . <<<"$out")" -eq 7 ] && pass "hit --dependent: 7 lines" ||
        fail "hit --dependent: want 7 lines: $out"
    expect "hit --dependent: every line" "$out" "dependent == 1" "ops > 0" "pages == 128"
    [ "$(option theta "$(head -1 <<<"$out")")" = null ] &&
        pass "hit -D uniform: options.theta null (no zipf)" ||
        fail "hit -D uniform: options.theta not null: $(head -1 <<<"$out")"
fi
# The options are the command line's, null for what the workload chose
# (doc/tools.md): hit's thread counts without -t, theta unless given.
if run "hit, default threads" --json -d 0.02 -w 0 -D zipf:0.5 --variant floor hit; then
    line=$(head -1 <<<"$out")
    got="$(option threads "$line") $(option thread_counts "$line") $(option theta "$line") $(option duration_s "$line")"
    [ "$got" = "null null 0.500 0.020" ] &&
        pass "hit without -t: options threads and thread_counts null, theta as given" ||
        fail "hit without -t: options threads, thread_counts, theta, duration_s: $got, want null null 0.500 0.020: $line"
    # Every setting the command line left out is null, flags too; the
    # result has the page size and the file's size used.
    got='' want=''
    for k in file_size page_size seed prefetch checkpoint_every checkpoint_rate \
             fixed_buffers readahead checksums header doublewrite atomic stream \
             overwrite dependent verify timeline queue_depth flushers; do
        got+=" $k=$(option $k "$line")"
        want+=" $k=null"
    done
    [ "$got" = "$want" ] &&
        [ "$(field page_size "$line")" = 8192 ] && [ "$(field file_size "$line")" = 4194304 ] &&
        pass "hit: the options not given are null; the result has page_size and file_size" ||
        fail "hit: options not given:$got; result page_size $(field page_size "$line"), file_size $(field file_size "$line"): $line"
fi
# A later -D replaces an earlier one whole: zipf without THETA is 0.99
# again (it kept 0.5, with options.theta null).
if run "hit, -D twice" --json -d 0.02 -w 0 -t 1 -D zipf:0.5 -D zipf --variant floor hit; then
    line=$(head -1 <<<"$out")
    [ "$(option theta "$line")" = null ] && [ "$(field theta "$line")" = 0.99 ] &&
        pass "-D zipf:0.5 -D zipf: theta 0.99" ||
        fail "-D zipf:0.5 -D zipf: $line"
fi

short=(-d 0.15 -w 0.05)

# --- randread ---------------------------------------------------------------
if run randread --json "${short[@]}" --frames 32 -t 4 randread --verify; then
    shape randread "$out" threads ops reads_s read_mib_s lat_p50_us lat_p99_us \
        lat_p999_us hit_ratio pool_rss_mib rss_ratio cache_mib
    expect "randread: values" "$out" "ops > 0" "reads_s > 0" "reads > 0" \
        "hit_ratio >= 0" "hit_ratio <= 1" "threads == 4" "frames == 32" \
        "lat_p50_us <= lat_p99_us" "lat_p99_us <= lat_p999_us" \
        "lat_p999_us <= lat_max_us" "nofree == 0"
    expect "randread: bpool left the page cache empty" "$out" "cache_mib < 1"
    expect "randread: CPU per read" "$out" "stream == 0" "cpu_us_per_read > 0"
    shape "randread: miss phases" "$out" phase_lock_us phase_victim_us \
        phase_frame_wait_us phase_submit_us phase_device_us phase_read_wait_us \
        victim_writes frame_waits read_waits
    expect "randread: a miss waits for the device" "$out" "phase_device_us > 0" \
        "phase_submit_us > 0" "phase_victim_us == 0"
fi

# --- randread --stream: one thread by default, the pages through a stream;
# its depth is clipped to 1/8 of the frames ---------------------------------
if run "randread --stream" --json "${short[@]}" --frames 128 --stream 8 randread --verify; then
    shape "randread --stream" "$out" stream stream_depth stream_reads stream_requests \
        pages_per_request stream_waits cpu_us_per_read lat_p99_us
    expect "randread --stream: values" "$out" "threads == 1" "stream == 8" \
        "stream_depth == 8" "ops > 0" "reads > 0" "stream_reads > 0" \
        "stream_requests > 0" "cpu_us_per_read > 0" "lat_p50_us <= lat_p99_us" \
        "hit_ratio >= 0" "hit_ratio <= 1"
fi
if run "randread --stream=64, clipped" --json "${short[@]}" --frames 128 -t 2 \
        --stream=64 randread; then
    expect "randread --stream=64 on 128 frames" "$out" "threads == 2" "stream == 64" \
        "stream_depth == 16" "ops > 0"
fi

# --- seqscan: one full pass, every page read (read-ahead may turn the pins
# into hits) ------------------------------------------------------------------
if run seqscan --json --frames 32 seqscan --verify; then
    shape seqscan "$out" ops mib_s elapsed_s frames pool_mib queue_depth miss_ratio
    expect "seqscan: one pass" "$out" "ops == 512" "reads >= 512" "misses <= 512" \
        "mib_s > 0" "pages == 512"
fi

# --- randwrite, then every page still holds its own stamp -------------------
if run randwrite --json "${short[@]}" --frames 32 -t 4 randwrite; then
    shape randwrite "$out" writes_s flush_pages flush_s flush_pages_s flushers
    expect "randwrite: values" "$out" "ops > 0" "writes >= 0" "flush_pages >= 0" \
        "lat_p50_us <= lat_p99_us" "overwrite == 0"
    [[ $out =~ \"writes\":([1-9]|[0-9]+,.*\"flush_pages\":[1-9]) ]] ||
        [[ $out =~ \"flush_pages\":[1-9] ]] &&
        pass "randwrite: pages were written" || fail "randwrite: nothing written: $out"
fi
# --- seqscan --stream: one pass through read streams (default depth 128,
# clipped to 1/8 of the frames), every page read by the streams, read-ahead
# off, adjacent pages in fewer requests ---------------------------------------
if run "seqscan --stream" --json --frames 256 seqscan --stream --verify; then
    shape "seqscan --stream" "$out" stream stream_depth stream_reads stream_requests mib_s
    expect "seqscan --stream: one pass" "$out" "ops == 512" "pages == 512" \
        "stream == 128" "stream_depth == 32" "stream_reads == 512" "reads == 512" \
        "readahead_windows == 0" "stream_requests < 512" "mib_s > 0"
    # Read-ahead is off by the workload's choice, not the command line's:
    # readahead_windows 0 above, and null in the options.
    [ "$(option readahead "$out")" = null ] &&
        pass "seqscan --stream: options.readahead null (not given)" ||
        fail "seqscan --stream: options.readahead not null: $out"
fi
if run "seqscan --stream 4, 2 threads" --json --frames 64 -t 2 --stream 4 seqscan --verify; then
    expect "seqscan --stream 4, 2 threads: one pass" "$out" "ops == 512" \
        "stream == 4" "stream_depth == 4" "threads == 2" "stream_reads == 512"
fi

if run "seqscan after randwrite" --json --frames 32 -t 2 seqscan --verify; then
    expect "stamps intact after randwrite" "$out" "ops == 512"
fi

# --- randwrite --overwrite: misses are not read; the pages are rewritten ---
if run "randwrite --overwrite" --json "${short[@]}" --frames 32 -t 4 --overwrite \
        randwrite --verify; then
    shape "randwrite --overwrite" "$out" overwrite writes_s flush_pages
    expect "randwrite --overwrite: no reads" "$out" "overwrite == 1" "ops > 0" \
        "reads == 0" "misses > 0"
fi
if run "seqscan after randwrite --overwrite" --json --frames 32 -t 2 seqscan --verify; then
    expect "stamps intact after randwrite --overwrite" "$out" "ops == 512"
fi

# --- seqwrite: every page written once, by fewer requests with coalescing ---
if run seqwrite --json --frames 32 seqwrite --verify; then
    n=$(grep -c . <<<"$out")
    [ "$n" -eq 2 ] && pass "seqwrite: 2 lines (coalescing on and off)" ||
        fail "seqwrite: $n lines, want 2: $out"
    shape seqwrite "$out" coalesce coalesce_bytes pages_s mib_s write_requests \
        pages_per_request flush_s total_s frames pool_mib queue_depth miss_ratio
    expect "seqwrite: every page written once, none read" "$out" "ops == 512" \
        "pages == 512" "writes == 512" "reads == 0" "pages_s > 0" "mib_s > 0" \
        "write_requests > 0" "total_s >= elapsed_s" "cache_mib < 1"
    expect "seqwrite: coalescing on" "$(grep '"coalesce":"on"' <<<"$out")" \
        "coalesce_bytes == 262144" "write_requests < writes"
    expect "seqwrite: coalescing off" "$(grep '"coalesce":"off"' <<<"$out")" \
        "coalesce_bytes == 8192" "write_requests == 512"
fi
if run "seqwrite --coalesce" --json --frames 32 --pages 64 --coalesce 16K seqwrite; then
    expect "seqwrite --coalesce 16K: one pass, 2 pages a request at most" "$out" \
        "coalesce_bytes == 16384" "ops == 64" "writes == 64" "pages_per_request <= 2"
fi
if run "seqscan after seqwrite" --json --frames 32 seqscan --verify; then
    expect "stamps intact after seqwrite" "$out" "ops == 512"
fi

# --- checkpoint: two phases; checkpoints only in the second ----------------
if run checkpoint --json -d 0.3 -w 0.05 --frames 64 -t 2 --dirty-rate 2000 \
        checkpoint --verify; then
    n=$(grep -c . <<<"$out")
    [ "$n" -eq 2 ] && pass "checkpoint: 2 lines (baseline, checkpoint)" ||
        fail "checkpoint: $n lines, want 2: $out"
    shape checkpoint "$out" phase threads ops_s lat_p50_us lat_p99_us lat_p999_us \
        lat_max_us dirtied writes checkpoints checkpoint_mean_ms
    expect "checkpoint: every phase" "$out" "ops > 0" "threads == 2" "pages == 32" \
        "misses == 0" "dirtied > 0" "lat_p50_us <= lat_p99_us" \
        "lat_p99_us <= lat_p999_us" "lat_p999_us <= lat_max_us"
    expect "checkpoint: none in the baseline" "$(grep '"phase":"baseline"' <<<"$out")" \
        "checkpoints == 0" "syncs == 0"
    expect "checkpoint: some in the checkpoint phase" \
        "$(grep '"phase":"checkpoint"' <<<"$out")" "checkpoints > 0" \
        "syncs >= checkpoints" "checkpoint_mean_ms > 0" \
        "checkpoint_max_ms >= checkpoint_mean_ms" "ckpt_ops > 0" "ckpt_ops <= ops" \
        "ckpt_busy > 0" "ckpt_lat_p50_us <= ckpt_lat_p999_us" \
        "ckpt_lat_p999_us <= ckpt_lat_max_us" "ckpt_lat_max_us <= lat_max_us"
fi
# A checkpoint begun in the warm-up counts only its part in the measured
# time: ckpt_busy, a share of it, reached 1.3 with its whole time (slow
# checkpoints, of 20 pages a second, make that likely).
for i in 1 2; do
    run "checkpoint after a warm-up" --json -d 0.5 -w 0.3 -p 1M \
        --checkpoint-rate 20 checkpoint || break
    expect "checkpoint after a warm-up: ckpt_busy a fraction ($i)" \
        "$(grep '"phase":"checkpoint"' <<<"$out")" "ckpt_busy >= 0" "ckpt_busy <= 1"
done
if run "checkpoint --checkpoint-every" --json -d 0.2 -w 0 --frames 64 -t 1 \
        --dirty-rate 2000 --checkpoint-every 20 checkpoint; then
    expect "checkpoint --checkpoint-every 20" "$(grep '"phase":"checkpoint"' <<<"$out")" \
        "checkpoint_every == 20" "checkpoints > 0" "checkpoints <= dirtied"
    [ "$(option checkpoint_every "$out" | sort -u)" = 20 ] &&
        pass "checkpoint --checkpoint-every 20: in the options" ||
        fail "checkpoint --checkpoint-every 20: options: $out"
fi
# --checkpoint-every 0 and --checkpoint-rate 0 are values as given (back to
# back, no limit), not null as when they are left out.
if run "checkpoint --checkpoint-every 0" --json -d 0.1 -w 0 --frames 64 -t 1 \
        --dirty-rate 2000 --checkpoint-every 0 --checkpoint-rate 0 checkpoint; then
    line=$(head -1 <<<"$out")
    [ "$(option checkpoint_every "$line")" = 0 ] && [ "$(option checkpoint_rate "$line")" = 0 ] &&
        [ "$(field checkpoint_every "$line")" = 0 ] &&
        pass "checkpoint: --checkpoint-every 0 and --checkpoint-rate 0 given: 0 in the options" ||
        fail "checkpoint: options checkpoint_every, checkpoint_rate: $line"
fi
# No checkpoint while measuring: no pin overlapped one, and the latencies
# of no pins are null, as the mean time of no checkpoints is - never 0.
if run "checkpoint, none due" --json -d 0.1 -w 0 --frames 64 -t 1 \
        --dirty-rate 2000 --checkpoint-every 1000000000 checkpoint; then
    line=$(grep '"phase":"checkpoint"' <<<"$out")
    expect "checkpoint, none due" "$line" "checkpoints == 0" "ckpt_ops == 0"
    nulls=0
    for k in checkpoint_mean_ms ckpt_lat_p50_us ckpt_lat_p99_us ckpt_lat_p999_us \
            ckpt_lat_max_us; do
        [[ $line == *"\"$k\":null"* ]] && nulls=$((nulls + 1))
    done
    [ "$nulls" -eq 5 ] && pass "checkpoint, none due: the latencies of no pins are null" ||
        fail "checkpoint, none due: a latency of no pins that is not null: $line"
fi
# A page set four times the pool: the readers miss, and every page they
# read still holds its own stamp.
if run "checkpoint, readers that miss" --json -d 0.3 -w 0.05 --frames 64 -t 2 \
        --pages 256 --dirty-rate 2000 checkpoint --verify; then
    expect "checkpoint, readers that miss" "$out" "pages == 256" "misses > 0" \
        "ops > 0"
fi

# --- mixed ------------------------------------------------------------------
if run mixed --json "${short[@]}" -t 4 --overwrite mixed; then
    shape mixed "$out" dist write_pct hit_ratio wlat_p99_us overwrite \
        rlat_p50_us rlat_p99_us rlat_p999_us rlat_max_us phase_device_us
    expect "mixed: read latencies" "$out" "rlat_p50_us <= rlat_p99_us" \
        "rlat_p99_us <= rlat_max_us"
    expect "mixed: values" "$out" "write_pct == 20" "frames == 64" \
        "hit_ratio > 0" "hit_ratio <= 1" "ops > 0" "overwrite == 1"
    [[ $out == *'"dist":"zipf"'* ]] && pass "mixed: zipf by default" ||
        fail "mixed: not zipf: $out"
fi

# --- warmup: a priming run, one cold and one warm run, a summary -----------
if run warmup --json -t 2 -w 3 -d 2 --rounds 1 warmup --verify; then
    n=$(grep -c . <<<"$out")
    [ "$n" -eq 4 ] && pass "warmup: 4 lines (prime, cold, warm, summary)" ||
        fail "warmup: $n lines, want 4: $out"
    shape warmup "$out" kind
    prime=$(grep '"kind":"prime"' <<<"$out")
    expect "warmup: prime" "$prime" "frames == 64" "resident == 64" \
        "steady_hit_ratio > 0" "steady_hit_ratio <= 1" \
        "target_hit_ratio < steady_hit_ratio" "target_hit_ratio > 0"
    expect "warmup: the warm run read the dump" "$(grep '"kind":"warm"' <<<"$out")" \
        "warm_listed == 64" "warm_pages > 0" "warm_pages <= 64" "reach_s > 0" \
        "warming_s > 0" "speedup > 0"
    expect "warmup: the cold run" "$(grep '"kind":"cold"' <<<"$out")" "reach_s > 0" \
        "hit_ratio_end > 0"
    expect "warmup: summary" "$(grep '"kind":"summary"' <<<"$out")" "rounds == 1" \
        "warm_speedup > 0" "warm_speedup_min == warm_speedup"
    # Latency ratios, which may pass 1: not named *_ratio, which the tools
    # keep for fractions (doc/tools.md).
    shape "warmup: summary" "$(grep '"kind":"summary"' <<<"$out")" \
        miss_us_warm_over_cold miss_us_warming_over_after
    [[ $out != *'miss_ratio'* ]] && pass "warmup: no miss_ratio without hit_ratio" ||
        fail "warmup: a miss_ratio that is no fraction of pins: $out"
    left=$(ls "$data".warm* 2>/dev/null)
    [ -z "$left" ] && pass "warmup: the dump removed" ||
        fail "warmup: $left left behind"
fi
"$bench" --quiet -f "$data" --rounds 2 randread >/dev/null 2>"$work/err"
st=$?
[ "$st" -eq 2 ] && grep -q "only warmup takes --rounds" "$work/err" &&
    pass "--rounds: warmup only" || fail "--rounds randread: status $st: $(cat "$work/err")"

# --- resize: pins go on while the pool grows and shrinks by half ----------
if run resize --json --frames 64 -t 2 -w 0.3 -d 1.5 resize --verify; then
    shape resize "$out" up_mean_ms down_max_ms lat_p99_us rlat_p99_us frames \
        frames_up frames_down frames_max hits misses evictions resizes
    expect "resize: sizes and counts" "$out" "frames == 64" "frames_up == 96" \
        "frames_down == 32" "frames_max == 96" "pin_errors == 0" "pins > 0" \
        "resizes >= 4" "up_back_n >= 1" "down_n >= 1" "resize_pins > 0"
    got="$(option pool_bytes_max "$out") $(option dist "$out") $(option theta "$out") $(option frames "$out")"
    [ "$got" = "null null null 64" ] &&
        pass "resize: options null for the reserve, dist and theta it chose" ||
        fail "resize: options pool_bytes_max, dist, theta, frames: $got, want null null null 64: $out"
    expect "resize: the dist and theta it used, in the result" "$out" "theta == 0.99"
    # The pool's counts are the measured span's, as pins and the steps'
    # counts: each pin is one hit or miss, give or take the pins threads
    # make between the pool's count and their own at either end (a few,
    # more on a loaded machine: 0.5 % allowed); the warm-up's 0.3 s held
    # a third of them.
    hm=$(( $(field hits "$out") + $(field misses "$out") ))
    pins=$(field pins "$out")
    slack=$(( pins / 200 + 8 ))
    steps=$(( $(field up_n "$out") + $(field up_back_n "$out") +
              $(field down_n "$out") + $(field down_back_n "$out") ))
    rz=$(field resizes "$out")
    if [ $((hm - pins)) -ge -$slack ] && [ $((hm - pins)) -le $slack ] &&
       [ "$rz" -ge $((steps - 1)) ] && [ "$rz" -le $((steps + 1)) ]; then
        pass "resize: hits and misses are the measured pins' ($hm, $pins pins)"
    else
        fail "resize: hits + misses $hm for $pins pins, resizes $rz for $steps steps: $out"
    fi
fi
# Down by half stops at 4 frames, the fewest a pool has: 6 frames go down
# to 4 (bp_resize was asked for 3, which it refuses, and the error named
# the frame count as a page).
if run "resize of 6 frames" --json --frames 6 -t 1 -w 0 -d 1.2 resize; then
    expect "resize of 6 frames: down to 4" "$out" "frames == 6" "frames_up == 9" \
        "frames_down == 4" "down_n >= 1" "pin_errors == 0"
fi

# --- trace: 10 pages ten times with 16 frames: 10 misses, 90 hits.  The pages
# are 37 apart, so no read-ahead takes them for a sequential run. -------------
for _ in 1 2 3 4 5 6 7 8 9 10; do seq 0 37 333; done >"$work/loop.trc"
printf '# a comment\n\n' >>"$work/loop.trc"
gzip -c "$work/loop.trc" >"$work/loop.trc.gz"
for t in loop.trc loop.trc.gz; do
    if run "trace $t" --json --frames 16 trace "$work/$t" --verify; then
        shape "trace $t" "$out" trace refs hit_ratio elapsed_s frames pool_mib \
            queue_depth miss_ratio
        expect "trace $t: exact counts" "$out" "refs == 100" "replayed == 100" \
            "hits == 90" "misses == 10" "hit_ratio == 0.9" "reads == 10" "max_page == 333"
    fi
done
printf '3\nx7\n' >"$work/bad.trc"
"$bench" --quiet -f "$data" trace "$work/bad.trc" >/dev/null 2>"$work/err"
st=$?
[ "$st" -eq 2 ] && grep -q "bad.trc:2:" "$work/err" &&
    pass "bad trace: exit 2 naming file and line" ||
    fail "bad trace: status $st: $(cat "$work/err")"
# Traces are read as bpool-sim reads them (tools/trace.c): a comment longer
# than 255 bytes is one line (its end was taken for a page number), and a
# page number is one of a data file, below 2^36 (up to 2^48 passed, and
# with -P 1M the file's size wrapped).
{ printf '# %0300d\n' 0; seq 0 37 333; } >"$work/long.trc"
if run "trace with a long comment" --json --frames 16 trace "$work/long.trc"; then
    expect "trace with a long comment: its pages only" "$out" "refs == 10" \
        "replayed == 10" "max_page == 333"
fi
printf '1\n68719476736\n' >"$work/far.trc"
"$bench" --quiet -f "$work/far.data" -P 1M trace "$work/far.trc" >/dev/null 2>"$work/err"
st=$?
[ "$st" -eq 2 ] && [ ! -e "$work/far.data" ] &&
    grep -q "far.trc:2: page number too large (at most 2^36 - 1" "$work/err" &&
    pass "trace of page 2^36: exit 2 naming the line, no data file made" ||
    fail "trace of page 2^36: status $st: $(cat "$work/err")"

# --- Text output: key=value pairs -------------------------------------------
if run text --frames 32 -d 0.05 -w 0 -t 2 randread; then
    [[ $out =~ ^workload=randread\ dist=uniform\ threads=2\ .*\ reads_s=[0-9]+\ .*hit_ratio=[0-9.]+ ]] &&
        pass "text: key=value line" || fail "text: $out"
fi
if run "text seqwrite" --frames 32 --pages 64 --coalesce 64K seqwrite; then
    [[ $out =~ ^workload=seqwrite\ coalesce=on\ coalesce_bytes=65536\ .*\ pages_s=[0-9]+\ mib_s=[0-9.]+\ write_requests=[0-9]+\  ]] &&
        pass "text: seqwrite line" || fail "text seqwrite: $out"
fi
if run "text checkpoint" --frames 16 -t 1 -d 0.05 -w 0 checkpoint; then
    first=$(sed -n 1p <<<"$out") second=$(sed -n 2p <<<"$out")
    [[ $first =~ ^workload=checkpoint\ phase=baseline\ .*\ checkpoint_mean_ms=-\  ]] &&
        [[ $second =~ ^workload=checkpoint\ phase=checkpoint\ .*\ lat_p99_us=[0-9.]+\ .*\ checkpoints=[0-9]+\  ]] &&
        pass "text: checkpoint lines" || fail "text checkpoint: $out"
fi

# --- Ctrl-C: the partial result of the run in progress, then exit 130 ----------
for fmt in text json; do
    j=()
    [ "$fmt" = json ] && j=(--json)
    "$bench" --quiet -f "$data" "${j[@]}" --frames 32 -d 60 -w 0 -t 2 randread \
        >"$work/int.out" 2>"$work/int.err" &
    pid=$!
    # Ctrl-C half a second after bpool-bench's run has set its handler
    # (SigCgt in /proc/PID/status: a background job starts with SIGINT
    # ignored, and a loaded machine may take a while to get there), so
    # that the run has measured something; again every half second.
    for _ in $(seq 300); do
        cgt=$(sed -n 's/^SigCgt:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null)
        [ -n "$cgt" ] && (( (16#$cgt & 0x2) == 0x2 )) && break
        sleep 0.1
    done
    sleep 0.5
    for _ in $(seq 60); do
        kill -INT "$pid" 2>/dev/null || break
        sleep 0.5
    done
    wait "$pid"
    st=$?
    out=$(cat "$work/int.out")
    [ "$st" -eq 130 ] && pass "Ctrl-C ($fmt): exit 130" ||
        fail "Ctrl-C ($fmt): status $st, stderr: $(cat "$work/int.err")"
    if [ "$fmt" = json ]; then
        shape "Ctrl-C: partial result" "$out" ops elapsed_s interrupted
        expect "Ctrl-C: the second of a 60 s run, measured" "$out" "ops > 0" \
            "elapsed_s > 0.2" "elapsed_s < 30"
        [[ $out == *',"interrupted":true}' ]] && pass "Ctrl-C: marked interrupted" ||
            fail "Ctrl-C: not marked interrupted: $out"
    else
        [[ $out =~ ^workload=randread\ .*\ ops=[1-9][0-9]*\ elapsed_s=.*\ interrupted=1$ ]] &&
            pass "Ctrl-C (text): the result line, interrupted=1" || fail "Ctrl-C (text): '$out'"
    fi
done

# --- Ctrl-C (or SIGTERM) while the data file is filled: the partial file
# is removed and the process ends of the signal (130, 143).  Signalled as
# soon as the temporary file is there, well before 1 GiB is written; a
# fill that ends first says nothing (a device too fast for the test).
for sig in INT TERM; do
    "$bench" --quiet -f "$work/int.data" --file-size 1G prepare \
        >/dev/null 2>"$work/err" &
    pid=$!
    for _ in $(seq 1000); do
        compgen -G "$work/int.data.tmp.*" >/dev/null && break
        sleep 0.01
    done
    sleep 0.1
    kill -"$sig" "$pid"
    wait "$pid"
    st=$?
    left=$(ls "$work"/int.data* 2>/dev/null)
    want=$((128 + $(kill -l "$sig")))
    if [ "$st" -eq 0 ]; then
        echo "# SIG$sig during the fill not tried: the fill ended first"
        rm -f "$work/int.data"
    elif [ "$st" -eq "$want" ] && [ -z "$left" ]; then
        pass "SIG$sig while the data file is made: exit $st, nothing left"
    else
        fail "SIG$sig while the data file is made: status $st, left '$left': $(cat "$work/err")"
    fi
done

# --- --rate: the threads together pin about N pages a second, not as
# fast as they can (a run of this size unpaced makes far more); a loaded
# machine may make them fall behind, never run ahead.
if run "mixed --rate" --json -d 1 -w 0.2 -t 4 --frames 64 --pages 256 \
        --rate 2000 mixed; then
    expect "mixed --rate 2000: about 2000 pins a second" "$out" "rate == 2000" \
        "ops_s >= 1000" "ops_s <= 2200"
fi

# --- --timeline: a line per measured second before the result, in order,
# with each second's quantiles of the read and the write pins --------------
# timeline_text NAME OUT LINES KINDS: OUT (text) has LINES timeline lines
# t=1..LINES, then a result line whose ops they add up to; in each, the
# pins of the kinds in KINDS (r, w or rw) have counts and quantiles in
# order, the other kind none ("-").
timeline_text() {
    local name=$1 out=$2 lines=$3 kinds=$4 why
    why=$(awk -v want="$lines" -v kinds="$kinds" '
        function num(k) { if (!(k in v)) { print k " missing: " $0; bad = 1; exit 1 } return v[k] }
        {
            split("", v)
            for (i = 2; i <= NF; i++) { eq = index($i, "="); v[substr($i, 1, eq - 1)] = substr($i, eq + 1) }
        }
        $1 == "timeline" {
            n++
            if (num("t") != n) { print "t=" v["t"] ", want " n; bad = 1; exit 1 }
            if (num("ops") + 0 <= 0 || v["ops"] != num("r_ops") + num("w_ops")) {
                print "ops != r_ops + w_ops or 0: " $0; bad = 1; exit 1
            }
            sum += v["ops"]
            for (j = 1; j <= 2; j++) {
                p = j == 1 ? "r" : "w"
                if (index(kinds, p)) {
                    a = num(p "_p50_us"); b = num(p "_p99_us"); c = num(p "_p999_us"); d = num(p "_max_us")
                    if (!(num(p "_ops") > 0 && a > 0 && a + 0 <= b + 0 && b + 0 <= c + 0 && c + 0 <= d + 0)) {
                        print p "_*: not 0 < p50 <= p99 <= p999 <= max: " $0; bad = 1; exit 1
                    }
                } else if (num(p "_ops") != 0 || num(p "_p99_us") != "-") {
                    print p "_*: pins of a kind the workload has none of: " $0; bad = 1; exit 1
                }
            }
            next
        }
        $1 ~ /^workload=/ && !result++ {
            if (n != want) { print n " timeline lines before the result, want " want; bad = 1; exit 1 }
            if (num("ops") != sum) { print "the seconds ops add up to " sum ", the result has " v["ops"]; bad = 1; exit 1 }
        }
        END { if (!bad && !result) print "no result line" }' <<<"$out")
    [ -z "$why" ] && pass "$name" || fail "$name: $why"
}
if run "mixed --timeline" -d 2 -w 0.1 -t 4 --timeline mixed; then
    timeline_text "mixed --timeline: 2 seconds, read and write pins" "$out" 2 rw
    [[ $out =~ ^timeline\ workload=mixed\ t=1\ ops=[0-9]+\ r_ops=[0-9]+\ w_ops=[0-9]+\ r_p50_us=[0-9.]+\ r_p99_us=[0-9.]+\ r_p999_us=[0-9.]+\ r_max_us=[0-9.]+\ w_p50_us=[0-9.]+\ w_p99_us=[0-9.]+\ w_p999_us=[0-9.]+\ w_max_us=[0-9.]+$'\n' ]] &&
        pass "mixed --timeline: the fields in order" || fail "mixed --timeline: $out"
    if command -v gnuplot >/dev/null 2>&1; then
        printf '%s\n' "$out" >"$work/mixed.tl"
        if "${top_srcdir:-$(dirname "$0")/..}/bench/timeline-plot.sh" -o "$work/mixed.svg" "$work/mixed.tl" \
                >/dev/null 2>"$work/err" && grep -q "<svg" "$work/mixed.svg" &&
                grep -q "mixed.tl p99.9" "$work/mixed.svg"; then
            pass "timeline-plot.sh: an SVG of the mixed run"
        else
            fail "timeline-plot.sh: $(cat "$work/err")"
        fi
    fi
fi
if run "randwrite --timeline" -d 2 -w 0.1 -t 2 --timeline randwrite; then
    timeline_text "randwrite --timeline: 2 seconds of write pins" "$out" 2 w
fi
if run "checkpoint --timeline" -d 1 -w 0 --frames 64 -t 1 --timeline checkpoint; then
    n=$(grep -c '^timeline workload=checkpoint phase=baseline t=1 ' <<<"$out")
    m=$(grep -c '^timeline workload=checkpoint phase=checkpoint t=1 ' <<<"$out")
    [ "$n" -eq 1 ] && [ "$m" -eq 1 ] && [ "$(grep -c '^timeline ' <<<"$out")" -eq 2 ] &&
        pass "checkpoint --timeline: one second per phase" ||
        fail "checkpoint --timeline: $out"
fi
if run "randread --timeline --json" --json -d 2 -w 0.1 --frames 32 -t 4 --timeline \
        randread; then
    # A timeline object's first member after the options; the options
    # themselves say "timeline":true too.
    tl=$(grep '},"timeline":true,' <<<"$out")
    n=$(grep -c . <<<"$tl")
    [ "$n" -eq 2 ] && pass "randread --timeline --json: 2 timeline objects" ||
        fail "randread --timeline --json: $n timeline objects, want 2: $out"
    json_header "randread --timeline --json: the tools' JSON header" bpool-bench "$tl"
    expect "randread --timeline --json: quantiles in order" "$tl" "ops > 0" \
        "r_ops == ops" "w_ops == 0" "r_p50_us > 0" "r_p50_us <= r_p99_us" \
        "r_p99_us <= r_p999_us" "r_p999_us <= r_max_us"
    [[ $(sed -n 1p <<<"$tl") == *'"timeline":true,"workload":"randread","t":1,'*'"w_p50_us":null,"w_p99_us":null,"w_p999_us":null,"w_max_us":null}' ]] &&
        [[ $(sed -n 2p <<<"$tl") == *'"t":2,'* ]] &&
        pass "randread --timeline --json: t=1, t=2, no write pins (null)" ||
        fail "randread --timeline --json: $tl"
    res=$(grep -v '},"timeline":true,' <<<"$out")
    shape "randread --timeline --json: the result" "$res" ops lat_p99_us
    [[ $(option timeline "$res") == true ]] && pass "randread --timeline --json: in the options" ||
        fail "randread --timeline --json: not in the options: $res"
fi

# --- bench/latency.sh: page cache, device and bpool in one table ------------
# Not in a sanitizer build: the script is what is tried here, and the
# sanitizers' shadow memory would not fit bpool-bench in the run's 64 MiB
# memory cgroup (ThreadSanitizer's is several times the pool).
if [ -n "${BPOOL_TEST_SANITIZED:-}" ]; then
    echo "# latency.sh not tried: a sanitizer build"
elif command -v fio >/dev/null 2>&1; then
    lat=$work/latency
    if BPOOL_BENCH=$bench "${top_srcdir:-$(dirname "$0")/..}/bench/latency.sh" \
            -f "$work/lat.data" -s 16M -t 2 -d 2 -m 64M -p 8M -o "$lat" \
            >"$work/out" 2>"$work/err"; then
        # Each engine's row: round 1, 2 threads, ops/s above 0, then eight
        # latencies (read and write p50, p99, p99.9, max) in order.
        for e in pagecache device bpool; do
            row=$(grep "^| 1 | 2 | $e (" "$lat/table.md")
            why=$(awk -F'|' '{ ops = $5; gsub(/[ K]/, "", ops); if (!(ops > 0)) { print "ops/s " $5; exit }
                               for (i = 6; i <= 13; i += 4)
                                   if (!($i + 0 <= $(i + 1) + 0 && $(i + 1) + 0 <= $(i + 2) + 0 &&
                                         $(i + 2) + 0 <= $(i + 3) + 0 && $(i + 3) + 0 > 0)) {
                                       print "quantiles out of order: " $0; exit } }' <<<"$row")
            [ -n "$row" ] && [ -z "$why" ] && pass "latency.sh: the $e row" ||
                fail "latency.sh: $e: ${why:-no row}: $(cat "$lat/table.md")"
            # Its seconds: both of them, each with reads and writes.
            n=$(grep -c "^timeline workload=$e t=[12] ops=[1-9][0-9]* r_ops=[1-9][0-9]* w_ops=[1-9][0-9]* r_p50_us=[0-9.]* .* w_max_us=[0-9.]*$" \
                "$lat/$e-t2-r1.timeline" 2>/dev/null)
            [ "$n" = 2 ] && pass "latency.sh: $e, a timeline line a second" ||
                fail "latency.sh: $e: $n timeline lines: $(cat "$lat/$e-t2-r1.timeline")"
        done
        grep -q "^| *1 *| *2 *| bpool / device | [0-9.]* |" "$lat/table.md" &&
            pass "latency.sh: the ratio row" || fail "latency.sh: no ratio row: $(cat "$lat/table.md")"
    else
        fail "latency.sh: $(tail -n 3 "$work/err")"
    fi
else
    echo "# latency.sh not tried: no fio"
fi

# --- a --file-size below the smallest file (4 pages) makes that file, and
# the same command again takes it (it refused it: "exists with 32768
# bytes of pages, not the 8192 --file-size asks for") ---
for n in 1 2; do
    "$bench" --quiet -f "$work/small.data" --file-size 8K prepare >/dev/null \
        2>"$work/err" && pass "--file-size 8K prepare, run $n" ||
        fail "--file-size 8K prepare, run $n: $(cat "$work/err")"
done
rm -f "$work/small.data"

# --- An existing file without pages (empty, or a header page alone) is
# refused before a pool opens it, and left as it was: resize divided by
# its page count (SIGFPE), hit said "out of memory", randread pinned past
# its end, seqscan passed over nothing, and bp_open wrote a header into
# the empty file.  One with fewer pages than a workload needs is refused
# alike. ---
: >"$work/empty.data"
head -c 8192 "$data" >"$work/hdr.data"
for f in empty hdr; do
    sum=$(cksum <"$work/$f.data")
    for wl in hit randread seqscan randwrite mixed seqwrite checkpoint warmup \
            resize prepare; do
        t=(-d 0.2 -w 0)
        [ "$wl" = warmup ] && t=(-d 1 -w 3)     # its least
        timeout 60 "$bench" --quiet -f "$work/$f.data" "${t[@]}" -t 1 "$wl" \
            >/dev/null 2>"$work/err"
        st=$?
        [ "$st" -eq 2 ] && [ "$(cksum <"$work/$f.data")" = "$sum" ] &&
            grep -q "$f.data has no pages: remove it to have it made again, or give another --file" \
                "$work/err" &&
            [ "$(tail -n 1 "$work/err")" = "Try 'bpool-bench --help' for more information." ] &&
            pass "$wl on a file of no pages ($f): a usage error, the file as it was" ||
            fail "$wl on a file of no pages ($f): status $st: $(cat "$work/err")"
    done
done
# A file of too few pages with a --file-size: the pages are what is
# wrong, not the size (it said to give --file-size 24576, the file's own,
# which failed the same way).
head -c $((8192 * 4)) "$data" >"$work/three.data"
"$bench" --quiet -f "$work/three.data" --file-size 24576 prepare >/dev/null 2>"$work/err"
st=$?
[ "$st" -eq 2 ] && grep -q "three.data has 3 pages; prepare needs at least 4" "$work/err" &&
    ! grep -q -- "give --file-size" "$work/err" &&
    pass "too few pages with --file-size: the pages named, no --file-size offered" ||
    fail "too few pages with --file-size: status $st: $(cat "$work/err")"
rm -f "$work/three.data"
echo 600 >"$work/past.trc"
sum=$(cksum <"$data")
"$bench" --quiet -f "$data" trace "$work/past.trc" >/dev/null 2>"$work/err"
st=$?
[ "$st" -eq 2 ] && [ "$(cksum <"$data")" = "$sum" ] &&
    grep -q "has 512 pages; trace needs at least 601: remove it" "$work/err" &&
    pass "trace of a page past the file's end: a usage error naming the pages" ||
    fail "trace of a page past the file's end: status $st: $(cat "$work/err")"

# --- -s seeds the threads' draws: from copies of one file, randwrite with
# one thread and one seed writes the pages of one sequence (one run's set
# within the other's: the runs differ only in length), with another seed
# others.  The pages written are those whose version (the word after the
# stamp) is no longer 0.
"$bench" --quiet -f "$work/seed.data" --file-size 4M prepare >/dev/null 2>&1
# prepare reports what the page cache holds of the file, and leaves it
# there (reading the header dropped the whole file's cache: 0 after a cat)
cat "$work/seed.data" >/dev/null
out=$("$bench" --quiet --json -f "$work/seed.data" prepare 2>"$work/err")
expect "prepare: the page cache's share after a cat" "$out" "cache_mib >= 3"
written() { od -A n -t u8 -v -w8192 -j 8192 "$1" | awk '$2 > 0 { print NR - 1 }' | sort; }
for r in a:5 b:5 c:6; do
    cp "$work/seed.data" "$work/seed.$r"
    "$bench" --quiet -f "$work/seed.$r" -s "${r#*:}" -t 1 --rate 1000 -d 0.2 -w 0 \
        --frames 16 randwrite >/dev/null 2>"$work/err" ||
        fail "randwrite -s ${r#*:}: $(cat "$work/err")"
    written "$work/seed.$r" >"$work/pages.${r%:*}"
done
nested() { [ -z "$(comm -23 "$1" "$2")" ] || [ -z "$(comm -13 "$1" "$2")" ]; }
n=$(grep -c . "$work/pages.a")
[ "$n" -gt 20 ] && nested "$work/pages.a" "$work/pages.b" &&
    pass "-s 5 twice: the pages of one sequence ($n)" ||
    fail "-s 5 twice: $n pages, not of one sequence: $(comm -3 "$work/pages.a" "$work/pages.b" | head -5)"
! nested "$work/pages.a" "$work/pages.c" && pass "-s 5 and -s 6: other pages" ||
    fail "-s 5 and -s 6: the pages of one sequence: the seed is not used"

# --- The options of a file's format: a new data file is made with them,
# so that the pool opens it.  --checksums: every page written through a
# pool, which seals its trailer; --no-header: page 0 at byte 0.  A first
# open that fails removes the file the run made, and only that one.
fmt_run() {     # fmt_run NAME FILE ARGS...: as run, on FILE
    local name=$1 file=$2
    shift 2
    out=$("$bench" --quiet --json -f "$file" "$@" 2>"$work/err")
    local st=$?
    [ "$st" -eq 0 ] && return 0
    fail "$name: exit status $st: $(cat "$work/err")"
    return 1
}
cs=$work/cs.data
if fmt_run "--checksums seqscan, a new file" "$cs" --file-size 4M --checksums \
        --frames 32 seqscan --verify; then
    expect "--checksums seqscan: every page read and checked" "$out" "ops == 512" \
        "reads >= 512"
    flags=$(od -A n -t u1 -j 20 -N 1 "$cs" | tr -d ' ')
    trailer=$(tail -c +$((8192 + 8192 - 3)) "$cs" | head -c 4)
    [ "$flags" = 1 ] && [ "$trailer" = bpck ] &&
        pass "--checksums: the header says so, page 0 ends in its trailer" ||
        fail "--checksums: header flags '$flags', page 0's trailer magic '$trailer'"
fi
if fmt_run "--checksums randwrite" "$cs" --checksums "${short[@]}" --frames 16 -t 2 \
        randwrite --verify && fmt_run "--checksums seqscan after randwrite" "$cs" \
        --checksums --frames 32 seqscan --verify; then
    expect "--checksums: the pages written back pass their checksums" "$out" "ops == 512"
fi
"$bench" --quiet -f "$cs" "${short[@]}" -t 1 --no-checksums randread \
    >/dev/null 2>"$work/err"
st=$?
[ "$st" -eq 2 ] && [ -f "$cs" ] && grep -q "made with page checksums (its header says so)" "$work/err" &&
    pass "a file with checksums, --no-checksums: a usage error, the file kept" ||
    fail "a file with checksums, --no-checksums: status $st: $(cat "$work/err")"
if fmt_run "a file with checksums, neither option: opened with them" "$cs" \
        "${short[@]}" -t 1 randread; then
    [ "$(field checksums "$out")" = 1 ] && [ "$(option checksums "$out")" = null ] &&
        pass "the header's setting taken: checksums 1 in the result, null in the options" ||
        fail "the header's setting not taken: $out"
fi
nh=$work/nh.data
if fmt_run "--no-header seqscan, a new file" "$nh" --file-size 4M --no-header \
        --frames 32 seqscan --verify; then
    expect "--no-header seqscan: every page read and checked" "$out" "ops == 512"
    size=$(stat -c %s "$nh")
    first=$(od -A n -t u8 -N 8 "$nh" | tr -d ' ')
    [ "$size" -eq $((4 << 20)) ] && [ "$first" = 0 ] &&
        pass "--no-header: 4 MiB of pages, page 0 at byte 0" ||
        fail "--no-header: $size bytes, first word '$first'"
fi
if fmt_run "--no-header randread" "$nh" --no-header "${short[@]}" --frames 32 -t 2 \
        randread --verify; then
    expect "--no-header randread" "$out" "ops > 0" "reads > 0"
fi
# The command line and the file disagreeing on the header: a usage error
# naming --no-header (it blamed --file-size, whose advice led nowhere).
"$bench" --quiet -f "$nh" --file-size 4M "${short[@]}" -t 1 randread \
    >/dev/null 2>"$work/err"
st=$?
[ "$st" -eq 2 ] && grep -q "has no bpool header: give --no-header" "$work/err" &&
    pass "a file without a header, opened without --no-header: says so" ||
    fail "a file without a header, without --no-header: status $st: $(cat "$work/err")"
"$bench" --quiet -f "$data" --no-header "${short[@]}" -t 1 randread \
    >/dev/null 2>"$work/err"
st=$?
[ "$st" -eq 2 ] && grep -q "has a bpool header, and --no-header" "$work/err" &&
    pass "a file with a header, opened with --no-header: says so" ||
    fail "a file with a header, with --no-header: status $st: $(cat "$work/err")"
# (A pool larger than the machine's memory: the options alone are fine,
# bp_open refuses it after the run made the file.)
"$bench" --quiet -f "$work/bad.data" --file-size 4M --frames 2000000000 "${short[@]}" \
    -t 1 randread >/dev/null 2>"$work/err"
st=$?
[ "$st" -eq 1 ] && [ ! -e "$work/bad.data" ] && grep -q "removed" "$work/err" &&
    pass "a pool refused on a file the run made: the file removed" ||
    fail "a pool refused on a file the run made: status $st: $(ls "$work"/bad.data*) $(cat "$work/err")"

# --- A data file too large to make: refused before anything is written.
# Past 2^63 - 1 bytes the size wrapped negative, fallocate said EINVAL and
# the fill wrote until the disk was full: under a timeout, should it ever
# write again.
for fs in 8388608T 0x7fffffffffffe000; do
    timeout 10 "$bench" --quiet -f "$work/huge.data" --file-size "$fs" prepare \
        >/dev/null 2>"$work/err"
    st=$?
    left=$(ls "$work"/huge.data* 2>/dev/null)
    [ "$st" -eq 2 ] && [ -z "$left" ] && grep -q "largest file size" "$work/err" &&
        [ "$(tail -n 1 "$work/err")" = "Try 'bpool-bench --help' for more information." ] &&
        pass "--file-size $fs: a usage error, nothing made" ||
        fail "--file-size $fs: status $st, left '$left': $(cat "$work/err")"
done
# 4 EiB: an off_t, but more than any file system here has free.
timeout 10 "$bench" --quiet -f "$work/huge.data" --file-size 4194304T prepare \
    >/dev/null 2>"$work/err"
st=$?
left=$(ls "$work"/huge.data* 2>/dev/null)
[ "$st" -eq 1 ] && [ -z "$left" ] && grep -q "MiB free" "$work/err" &&
    pass "--file-size 4194304T: more than the free space, refused" ||
    fail "--file-size 4194304T: status $st, left '$left': $(cat "$work/err")"

# --- Usage --------------------------------------------------------------------
"$bench" --help >"$work/out" 2>&1 && grep -q "randread" "$work/out" &&
    grep -q -- "--json" "$work/out" && pass "--help" || fail "--help"
# --help says what the program does with an existing file of another size.
grep -A1 -- "--file-size SIZE" "$work/out" | grep -q "of another size is refused" &&
    ! grep -q "used as it is" "$work/out" &&
    pass "--help: an existing file of another --file-size is refused" ||
    fail "--help on --file-size: $(grep -A1 -- "--file-size SIZE" "$work/out")"
for args in "nosuch" "-t 0 hit" "-t 1,2 randread" "trace" "--overwrite hit" \
        "--overwrite seqwrite" "--dirty-rate 10 mixed" "--variant pin,nosuch hit" \
        "--coalesce 0 seqwrite" "-d 0 checkpoint" "--stream mixed" \
        "--stream 0 randread" "--stream=2000 seqscan" "--stream 4 --prefetch 4 randread" \
        "--timeline seqscan" "--timeline hit" "--rate 1000 hit" "--rate 0 mixed" \
        "--rate 1000 --stream 4 randread" "-W 50 randread" "-W 50 randwrite" \
        "--variant pread randread" "--dependent mixed" "--prefetch 4 seqscan" \
        "--prefetch 4 checkpoint" "-d 0 hit" "-d 0 randread" "-d 0 randwrite" \
        "-d 0 mixed" "-d 0 resize" "-w 1 warmup" "-d 0.5 warmup" \
        "--frames 64 --pool-max 256K resize" "--frames 4 resize" \
        "--file-size 8M prepare" \
        "-P 4K prepare"; do
    # One line naming the error, then the pointer to --help (doc/tools.md);
    # the data file, which exists, is neither changed nor removed.
    # shellcheck disable=SC2086
    "$bench" --quiet -f "$data" $args >/dev/null 2>"$work/err"
    st=$?
    [ "$st" -eq 2 ] && [ "$(wc -l <"$work/err")" -eq 2 ] &&
        [ "$(tail -n 1 "$work/err")" = "Try 'bpool-bench --help' for more information." ] &&
        pass "usage error exits 2: '$args': $(head -n 1 "$work/err")" ||
        fail "'$args': status $st, stderr: $(cat "$work/err")"
done
[ "$(stat -c %s "$data")" -eq $(((4 << 20) + 8192)) ] &&
    pass "the usage errors left the data file as it was" ||
    fail "the usage errors changed the data file: $(stat -c %s "$data") bytes"
# A --pool past the most frames a pool has: the frames it would be, not
# 2^32 - 1, and before a data file is made.
"$bench" --quiet -f "$work/none.data" -p 8192T randread >/dev/null 2>"$work/err"
st=$?
[ "$st" -eq 2 ] && grep -q "is 1099511627776 frames of 8192 bytes" "$work/err" &&
    [ ! -e "$work/none.data" ] && pass "-p 8192T: its 2^40 frames refused" ||
    fail "-p 8192T: status $st: $(cat "$work/err")"
# A usage error that is not about an existing file makes none.
"$bench" --quiet -f "$work/none.data" -d 0 randread >/dev/null 2>&1
[ ! -e "$work/none.data" ] && pass "-d 0 randread: no data file made" ||
    fail "-d 0 randread made its data file"

finish
