#!/bin/bash
# SPDX-License-Identifier: MIT
# compare.sh - bpool next to what a program would otherwise use, back to
# back on the same data file, and a table of the figures with their ratio.
#
#   bench/compare.sh [-q] [-f FILE] [-s SIZE] [-o DIR]
#
# Runs, in this order:
#   1. fio, libaio + O_DIRECT (the device's limit): 8 KiB random reads at
#      QD32, 128 KiB sequential reads at QD8, 8 KiB sequential reads at QD1
#      (what a scan costs without read-ahead), 8 KiB random writes at QD32,
#      256 KiB sequential writes at QD8;
#   2. fio through the page cache (direct=0, psync, 32 threads) and the
#      page cache it leaves holding the file (fincore);
#   3. bpool-bench: randread (32 threads, and 4 threads x bp_prefetch of 8
#      pages when the library has bp_prefetch, and 1 thread with a read
#      stream of depth 32 when it has read streams), seqscan (and through a
#      read stream of depth 128, read-ahead off), randwrite (with
#      the library's flushers, with none when it has them, and with
#      BP_OVERWRITE write pins when it has them), mixed; the page cache the
#      pool leaves holding the file;
#   4. bpool-bench seqwrite: 1 GiB (quick: 256 MiB) written in page order
#      with BP_OVERWRITE pins, with the library's write coalescing and
#      without; and checkpoint: reader pin latency of resident pages while
#      a writer dirties them, without and with bp_checkpoint back to back;
#   5. bpool-bench hit, which runs the same pin loop (BP_READ, and BP_PIN
#      without a latch) against a buffered pread of a cached page, an mmap
#      of the file and a bare hash-lookup + atomic floor (with 1 thread and
#      one per CPU);
#   6. bench/latency.sh (not with -q): the tails of random 8 KiB reads and
#      writes through the page cache, the device and bpool, 8 and 32
#      threads, each in a 256 MiB memory cgroup; its table is appended
#      and its plots are in DIR/latency;
#   7. bench/checkpoint-tail.sh (not with -q): 4 readers that go to the
#      device beside a writer, fio without and with an fdatasync every 8000
#      writes, bpool-bench checkpoint without and with a checkpoint every
#      8000 pages dirtied; its tables are appended.
# and prints the table (also saved as DIR/table.md).  Every tool's own
# output is kept in DIR (fio's JSON, bpool-bench's result lines).
#
# The default run takes about 9 minutes; -q about 50 seconds, with
# figures that are noisier.  fio's writes overwrite the data file with
# its own bytes: do not use --verify on it afterwards.
#
# Needs: bash, awk, sed, grep, coreutils (dd), fio (apt-get install fio),
# util-linux's fincore (else bpool-bench measures residency with mincore).
# Environment: BPOOL_BENCH (default: tools/bpool-bench next to this script),
# FIO (default: fio).

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bench=${BPOOL_BENCH:-$here/../tools/bpool-bench}
fio=${FIO:-fio}
file=./bpool-compare.data
size=4G
quick=0
outdir=

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
    cat <<EOF
options:
  -q, --quick      short runs (about 50 s in all) instead of about 4 min
  -f, --file PATH  data file (default $file); made if missing; must
                   be on a file system with O_DIRECT (not tmpfs)
  -s, --size SIZE  size of a new data file (default $size)
  -o, --out DIR    keep the tools' output here (default: a new directory
                   bpool-compare.XXXXXX next to the data file)
  -h, --help       this help
EOF
}

while [ $# -gt 0 ]; do
    case $1 in
        -q|--quick) quick=1 ;;
        -f|--file) file=$2; shift ;;
        -s|--size) size=$2; shift ;;
        -o|--out) outdir=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "compare.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

die() { echo "compare.sh: $*" >&2; exit 1; }
[ -x "$bench" ] || die "$bench not found: build it first (make), or set BPOOL_BENCH"
command -v "$fio" >/dev/null 2>&1 ||
    die "fio not found: install it (Debian: apt-get install fio) or set FIO"
if [ -z "$outdir" ]; then
    outdir=$(mktemp -d "$(dirname "$file")/bpool-compare.XXXXXX")
else
    mkdir -p "$outdir"
fi

# seqw_mib: MiB seqwrite writes in each pass (at most io_s seconds);
# ckpt_s: seconds measured in each phase of checkpoint.
if [ "$quick" = 1 ]; then
    io_s=1.5 hit_s=0.2 hit_warm=0.05 warm=0.3 seqw_mib=256 ckpt_s=1
else
    io_s=10 hit_s=2 hit_warm=0.5 warm=2 seqw_mib=1024 ckpt_s=5
fi
ncpu=$(nproc)
# progress WHAT: say on a terminal what runs next, and log the step that
# ended in steps.txt: its wall time, the CPU time the whole machine spent
# busy meanwhile (every process: ours and anybody else's), and the time
# the hypervisor stole from this VM.  Busy CPU well above the tool's own
# (its JSON or result line says how much it used) means someone else ran:
# the machine may be shared, and such a step is noisy.
# timed CMD...: run CMD, adding its CPU time (user + system, children
# included) to step_tool.
timed() {
    local TIMEFORMAT='%U %S' t rc
    # The command's output goes where the caller sent it (fds 5 and 6);
    # time's report, to the group's stderr, is captured in t.
    { t=$( { time "$@" >&5 2>&6; } 2>&1 ); rc=$?; } 5>&1 6>&2
    step_tool=$(awk -v a="$step_tool" -v t="${t##*$'\n'}" 'BEGIN { split(t, x, " "); print a + x[1] + x[2] }')
    return $rc
}
step=
step_tool=0
step_t0=
step_busy0=
step_steal0=
progress() {
    local t busy steal
    t=$(date +%s.%N)
    read -r busy steal < <(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $9 }' /proc/stat)
    if [ -n "$step" ]; then
        awk -v n="$step" -v w="$(awk -v a="$t" -v b="$step_t0" 'BEGIN { print a - b }')" \
            -v b="$((busy - step_busy0))" -v s="$((steal - step_steal0))" \
            -v hz="$(getconf CLK_TCK)" -v ncpu="$ncpu" -v tool="$step_tool" \
            'BEGIN { printf "%-32s %5.1f s: busy %5.1f CPU-s, the tool %5.1f, others %5.1f; stolen %4.1f\n",
                     n, w, b / hz, tool, b / hz - tool, s / hz }' >>"$outdir/steps.txt"
    fi
    step_tool=0
    step=$*
    step_t0=$t
    step_busy0=$busy
    step_steal0=$steal
    [ -t 2 ] && printf '\r\033[K%s' "$*" >&2 || true
}

# --- The data file and the machine -----------------------------------------
"$bench" --quiet -f "$file" --file-size "$size" prepare >"$outdir/prepare.txt"
bytes=$(sed -n 's/.* bytes=\([0-9]*\).*/\1/p' "$outdir/prepare.txt")
{
    echo "date:       $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpu:        $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), $ncpu CPUs"
    echo "memory:     $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    echo "kernel:     $(uname -sr)"
    echo "file:       $file, $((bytes >> 20)) MiB on $(stat -f -c %T "$file") ($(df --output=source "$file" | tail -n 1))"
    echo "fio:        $("$fio" --version)"
    echo "bpool:      $("$bench" --version)"
    echo "load avg:   $(cut -d' ' -f1-3 /proc/loadavg) (before)"
    echo "durations:  ${io_s} s per I/O run, ${hit_s} s per hit line, ${ckpt_s} s per checkpoint phase"
} >"$outdir/machine.txt"

# --- fio -------------------------------------------------------------------
# run_fio NAME ARGS...: one fio job on the data file, JSON into NAME.json.
run_fio() {
    local name=$1
    shift
    progress "fio $name"
    # --offset: the first page is bpool's header page; fio's writes must
    # leave it alone, or bpool-bench finds no header in the file.
    timed "$fio" --name="$name" --filename="$file" --offset=8192 --size="$bytes" --runtime="$io_s" \
        --time_based --group_reporting --randrepeat=0 --norandommap \
        --output-format=json "$@" >"$outdir/fio-$name.json" 2>"$outdir/fio-$name.err" ||
        die "fio $name failed: $(cat "$outdir/fio-$name.err")"
}

# fio_get NAME SECTION KEY: KEY (iops, bw_bytes, p50, p99, p999: clat in
# ns) of SECTION (read or write) in fio's pretty-printed JSON, one key a
# line, so awk reads it without a JSON parser.  KEY cpu_us_io: the job's
# CPU time (usr_cpu + sys_cpu, percent of the run) per I/O, microseconds.
fio_get() {
    awk -v sec="$2" -v key="$3" '
        key == "cpu_us_io" && $1 == "\"iops\"" && iops == "" && cur == sec { iops = $3 + 0 }
        key == "cpu_us_io" && $1 == "\"usr_cpu\"" { cpu += $3 }
        key == "cpu_us_io" && $1 == "\"sys_cpu\"" { cpu += $3 }
        key == "cpu_us_io" { if (/"(read|write|trim|sync)" : \{/) { cur = $1; gsub(/"/, "", cur) }; next }
        END { if (key == "cpu_us_io" && iops > 0) printf "%.1f\n", cpu / 100 / iops * 1e6 }
        /^ *"(read|write|trim|sync)" : \{/ { cur = $1; gsub(/"/, "", cur); inclat = 0 }
        cur != sec { next }
        /"clat_ns" : \{/ { inclat = 1 }
        /"lat_ns" : \{/ { inclat = 0 }
        key == "iops" && $1 == "\"iops\"" { print $3 + 0; exit }
        key == "bw_bytes" && $1 == "\"bw_bytes\"" { print $3 + 0; exit }
        inclat && key == "p50" && $1 == "\"50.000000\"" { print $3 + 0; exit }
        inclat && key == "p99" && $1 == "\"99.000000\"" { print $3 + 0; exit }
        inclat && key == "p999" && $1 == "\"99.900000\"" { print $3 + 0; exit }
    ' "$outdir/fio-$1.json"
}

# First, what the machine does without us: a shared machine's neighbours
# show up here.
progress "idle (nothing of ours runs)"
sleep "$warm"
direct=(--ioengine=libaio --direct=1)
run_fio randread "${direct[@]}" --rw=randread --bs=8k --iodepth=32
run_fio seqread128k "${direct[@]}" --rw=read --bs=128k --iodepth=8
run_fio seqread8k "${direct[@]}" --rw=read --bs=8k --iodepth=1
run_fio randwrite "${direct[@]}" --rw=randwrite --bs=8k --iodepth=32
run_fio seqwrite256k "${direct[@]}" --rw=write --bs=256k --iodepth=8
# io_uring, where fio and the kernel have it: the baseline of bpool's
# io_uring engine, with fixed buffers and a registered file as bpool's.
uring_fio=0
if "$fio" --enghelp=io_uring >/dev/null 2>&1; then
    run_fio randread_uring --ioengine=io_uring --fixedbufs=1 --registerfiles=1 \
        --direct=1 --rw=randread --bs=8k --iodepth=32 && uring_fio=1
fi
# Buffered: fio drops the file's cached pages first (invalidate=1), so this
# starts cold and warms the page cache as it goes.
run_fio buffered --ioengine=psync --direct=0 --invalidate=1 --rw=randread \
    --bs=8k --thread --numjobs=32

# cached_mib: the data file's bytes in the page cache, in MiB.
cached_mib() {
    if command -v fincore >/dev/null 2>&1; then
        fincore --bytes --noheadings --output RES "$file" |
            awk '{ printf "%.1f", $1 / 1048576 }'
    else
        "$bench" --quiet -f "$file" prepare | sed -n 's/.* cache_mib=\([^ ]*\).*/\1/p'
    fi
}
buffered_cache=$(cached_mib)
# Drop the file's clean pages (coreutils dd: count=0 with nocache).
dd if="$file" iflag=nocache count=0 status=none

# --- bpool-bench -------------------------------------------------------------
# run_bench NAME ARGS...: result lines into NAME.txt.
run_bench() {
    local name=$1
    shift
    progress "bpool-bench $name"
    timed "$bench" --quiet -f "$file" "$@" >"$outdir/bench-$name.txt" 2>"$outdir/bench-$name.err" ||
        die "bpool-bench $* failed: $(cat "$outdir/bench-$name.err")"
}
bench_help=$("$bench" --help)
has_opt() { [[ $bench_help == *"$1"* ]]; }
# has_workload NAME: the help's list of workloads names it.
has_workload() { [[ $bench_help == *$'\n'"  $1 "* ]]; }

run_bench randread -d "$io_s" -w "$warm" -t 32 randread
if has_opt --prefetch; then
    run_bench randread-prefetch -d "$io_s" -w "$warm" -t 4 --prefetch 8 randread
fi
if has_opt --stream; then
    # One thread and one stream of depth 32: the reads in flight of fio's
    # QD32, kept by the library instead of 32 threads.
    run_bench randread-stream -d "$io_s" -w "$warm" --stream 32 -t 1 randread
fi
# The io_uring engine, where this bpool-bench and the kernel have it.
if has_opt --io-engine &&
    "$bench" --quiet -f "$file" --io-engine io_uring -d 0.1 -w 0 -t 1 randread \
        >/dev/null 2>&1; then
    run_bench randread-uring -d "$io_s" -w "$warm" -t 32 --io-engine io_uring randread
fi
run_bench seqscan -d "$io_s" seqscan
if has_opt --stream; then
    run_bench seqscan-stream -d "$io_s" --stream 128 seqscan
fi
run_bench randwrite -d "$io_s" -w "$warm" -t 32 randwrite
if has_opt --flushers; then
    run_bench randwrite-noflush -d "$io_s" -w "$warm" -t 32 --flushers 0 randwrite
fi
if has_opt --overwrite; then
    run_bench randwrite-overwrite -d "$io_s" -w "$warm" -t 32 --overwrite randwrite
fi
run_bench mixed -d "$io_s" -w "$warm" -t 32 mixed
bpool_cache=$(cached_mib)
if has_workload seqwrite; then
    # --pages is in pages of the default 8 KiB.
    run_bench seqwrite -d "$io_s" --pages $((seqw_mib * 128)) seqwrite
fi
if has_workload checkpoint; then
    run_bench checkpoint -d "$ckpt_s" checkpoint
fi
threads_hit=1
[ "$ncpu" -gt 1 ] && threads_hit="1 $ncpu"
run_bench hit -d "$hit_s" -w "$hit_warm" -t "${threads_hit// /,}" hit
progress ""
echo "load avg:   $(cut -d' ' -f1-3 /proc/loadavg) (after)" >>"$outdir/machine.txt"

# --- The table -----------------------------------------------------------------
# field NAME FILE [REGEX]: NAME=value from the first result line of
# bench-FILE.txt that matches REGEX (grep -E).
field() {
    { grep -E -- "${3:-workload=}" "$outdir/bench-$2.txt" || true; } | head -n 1 |
        sed -n "s/.*\\<$1=\\([^ ]*\\).*/\\1/p"
}

table=$outdir/table.md
# row WORKLOAD BASELINE BASE_FIG BPOOL_FIG UNIT KIND TARGET
#   KIND: up (more is better: ratio bpool/baseline), down (less is better:
#   ratio baseline/bpool, i.e. how many times faster bpool is), mem (less
#   is better, ratio bpool/baseline, target an upper bound), info (no
#   target).  Figures may be empty (not measured): the row says so.
row() {
    awk -v w="$1" -v b="$2" -v x="$3" -v y="$4" -v u="$5" -v kind="$6" -v t="$7" '
        function fmt(v) {
            if (v == "") return "-"
            if (v + 0 >= 1000) return sprintf("%.0f", v)
            if (v + 0 >= 10) return sprintf("%.1f", v)
            return sprintf("%.2f", v)
        }
        BEGIN {
            r = ""; met = ""
            if (x != "" && y != "") {
                if (kind == "down") { if (y + 0 > 0) r = x / y }
                else if (x + 0 > 0) r = y / x
            }
            if (r != "" && t != "") {
                if (kind == "mem") met = (r <= t) ? "yes" : "no"
                else met = (r >= t) ? "yes" : "no"
            }
            tgt = (t == "") ? "" : ((kind == "mem") ? "<= " t : ">= " t)
            printf "| %s | %s | %s %s | %s %s | %s | %s | %s |\n", w, b, fmt(x), u, fmt(y), u,
                (r == "") ? "-" : sprintf("%.2f", r), tgt, met
        }'
}

mib() { awk -v b="$1" 'BEGIN { if (b != "") printf "%.1f", b / 1048576 }'; }
us() { awk -v n="$1" 'BEGIN { if (n != "") printf "%.1f", n / 1000 }'; }
kib() { awk -v b="$1" 'BEGIN { if (b != "") printf "%.0f", b / 1024 }'; }

{
    cat "$outdir/machine.txt"
    echo
    echo "| workload | baseline | baseline figure | bpool figure | ratio | target | met |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    fio_rr=$(fio_get randread read iops)
    row "randread 8 KiB, 32 threads" "fio libaio direct QD32" "$fio_rr" \
        "$(field reads_s randread)" "IOPS" up 0.9
    if [ -s "$outdir/bench-randread-prefetch.txt" ]; then
        row "randread 8 KiB, 4 threads x bp_prefetch 8" "fio libaio direct QD32" "$fio_rr" \
            "$(field reads_s randread-prefetch)" "IOPS" up 0.9
    fi
    if [ -s "$outdir/bench-randread-stream.txt" ]; then
        row "randread 8 KiB, 1 thread x read stream 32" "fio libaio direct QD32, 1 job" \
            "$fio_rr" "$(field reads_s randread-stream)" "IOPS" up ""
        row "randread CPU time per read, 1 thread x read stream 32" "fio libaio direct QD32" \
            "$(fio_get randread read cpu_us_io)" "$(field cpu_us_per_read randread-stream)" \
            "us" down ""
    fi
    row "randread p99 latency" "fio clat p99 QD32" "$(us "$(fio_get randread read p99)")" \
        "$(field lat_p99_us randread)" "us" down ""
    row "randread CPU time per read" "fio libaio direct QD32" "$(fio_get randread read cpu_us_io)" \
        "$(awk -v c="$(field cpu_s randread)" -v r="$(field reads_s randread)" \
            -v e="$(field elapsed_s randread)" 'BEGIN { if (r * e > 0) printf "%.1f", c * 1e6 / (r * e) }')" \
        "us" down ""
    if [ -s "$outdir/bench-randread-uring.txt" ]; then
        if [ "$uring_fio" = 1 ]; then
            row "randread 8 KiB, 32 threads, io_uring engine" "fio io_uring direct QD32, fixed buffers" \
                "$(fio_get randread_uring read iops)" "$(field reads_s randread-uring)" \
                "IOPS" up ""
            row "randread CPU time per read, io_uring engine" "fio io_uring direct QD32, fixed buffers" \
                "$(fio_get randread_uring read cpu_us_io)" \
                "$(field cpu_us_per_read randread-uring)" "us" down ""
        fi
        row "randread 8 KiB, 32 threads, io_uring engine" "bpool's libaio engine" \
            "$(field reads_s randread)" "$(field reads_s randread-uring)" "IOPS" up 1.0
        row "randread CPU time per read, io_uring engine (target: <= 0.7 x)" \
            "bpool's libaio engine" "$(field cpu_us_per_read randread)" \
            "$(field cpu_us_per_read randread-uring)" "us" down 1.43
    fi
    row "randread through the page cache" "fio psync direct=0, 32 thr" \
        "$(fio_get buffered read iops)" "$(field reads_s randread)" "IOPS" up ""
    row "seqscan, 1 thread" "fio 128 KiB QD8 direct" \
        "$(mib "$(fio_get seqread128k read bw_bytes)")" "$(field mib_s seqscan)" "MiB/s" up 0.9
    if [ -s "$outdir/bench-seqscan-stream.txt" ]; then
        row "seqscan, 1 thread, read stream 128 (no read-ahead)" "fio 128 KiB QD8 direct" \
            "$(mib "$(fio_get seqread128k read bw_bytes)")" "$(field mib_s seqscan-stream)" \
            "MiB/s" up ""
    fi
    row "seqscan, 1 thread" "fio 8 KiB QD1 direct" \
        "$(mib "$(fio_get seqread8k read bw_bytes)")" "$(field mib_s seqscan)" "MiB/s" up ""
    fio_rw=$(fio_get randwrite write iops)
    row "randwrite, 32 threads, flushers=$(field flushers randwrite)" "fio libaio direct QD32" \
        "$fio_rw" "$(field writes_s randwrite)" "IOPS" up 0.8
    if [ -s "$outdir/bench-randwrite-noflush.txt" ]; then
        row "randwrite, 32 threads, no flushers" "fio libaio direct QD32" "$fio_rw" \
            "$(field writes_s randwrite-noflush)" "IOPS" up ""
    fi
    if [ -s "$outdir/bench-randwrite-overwrite.txt" ]; then
        row "randwrite --overwrite (BP_OVERWRITE), 32 threads" "fio libaio direct QD32" \
            "$fio_rw" "$(field writes_s randwrite-overwrite)" "IOPS" up 0.8
    fi
    row "bp_flush_all after randwrite ($(field flush_pages randwrite) pages)" \
        "fio libaio direct QD32" "$fio_rw" "$(field flush_pages_s randwrite)" "IOPS" up ""
    printf '| mixed zipf 0.99, 20%% writes, pool 1/8, 32 thr | - | - | %s ops/s, hit ratio %s, p99 %s us | - | | |\n' \
        "$(field ops_s mixed)" "$(field hit_ratio mixed)" "$(field lat_p99_us mixed)"
    if [ -s "$outdir/bench-seqwrite.txt" ]; then
        on="coalesce=on " off="coalesce=off "
        row "seqwrite $seqw_mib MiB, coalesced to $(kib "$(field coalesce_bytes seqwrite "$on")") KiB ($(field pages_per_request seqwrite "$on") pages/request)" \
            "fio 256 KiB QD8 direct" "$(mib "$(fio_get seqwrite256k write bw_bytes)")" \
            "$(field mib_s seqwrite "$on")" "MiB/s" up ""
        row "seqwrite $seqw_mib MiB, coalesced vs not (pages/s to the end of bp_flush_all)" \
            "bpool, coalescing off ($(field write_requests seqwrite "$off") requests)" \
            "$(field pages_s seqwrite "$off")" "$(field pages_s seqwrite "$on")" "pages/s" up ""
    fi
    if [ -s "$outdir/bench-checkpoint.txt" ]; then
        base="phase=baseline " ck="phase=checkpoint "
        readers="$(field threads checkpoint "$ck") readers, $(field dirty_rate checkpoint "$ck") pages/s dirtied"
        row "checkpoint: reader pin p99, $readers" "no checkpoint" \
            "$(field lat_p99_us checkpoint "$base")" "$(field lat_p99_us checkpoint "$ck")" "us" down ""
        row "checkpoint: reader pin p99.9" "no checkpoint" \
            "$(field lat_p999_us checkpoint "$base")" "$(field lat_p999_us checkpoint "$ck")" "us" down ""
        row "checkpoint: reader pins/s" "no checkpoint" \
            "$(field ops_s checkpoint "$base")" "$(field ops_s checkpoint "$ck")" "ops/s" up ""
        printf '| checkpoint: bp_checkpoint back to back | - | - | %s checkpoints, mean %s ms, max %s ms, %s pages | - | | |\n' \
            "$(field checkpoints checkpoint "$ck")" "$(field checkpoint_mean_ms checkpoint "$ck")" \
            "$(field checkpoint_max_ms checkpoint "$ck")" "$(field checkpoint_pages checkpoint "$ck")"
    fi
    for t in $threads_hit; do
        for d in uniform zipf; do
            sel="dist=$d( theta=[^ ]*)? threads=$t "
            bp=$(field ns_op hit "variant=bpool $sel")
            row "hit $d, $t thr" "buffered pread, cached" "$(field ns_op hit "variant=pread $sel")" \
                "$bp" "ns/op" down 25
            row "hit $d, $t thr" "hash lookup + atomic floor" "$(field ns_op hit "variant=floor $sel")" \
                "$bp" "ns/op" down 0.5
            pin=$(field ns_op hit "variant=pin $sel")
            if [ -n "$pin" ]; then
                row "hit $d, $t thr, BP_PIN (no latch)" "hash lookup + atomic floor" \
                    "$(field ns_op hit "variant=floor $sel")" "$pin" "ns/op" down 0.5
            fi
            row "hit $d, $t thr" "mmap, cached" "$(field ns_op hit "variant=mmap $sel")" \
                "$bp" "ns/op" down ""
        done
    done
    row "RSS of the pool (randread)" "frames" "$(field pool_mib randread)" \
        "$(field pool_rss_mib randread)" "MiB" mem 1.02
    row "page cache holding the file after the runs" "fio direct=0" "$buffered_cache" \
        "$bpool_cache" "MiB" mem 0.01
    echo
    echo "ratio: bpool/baseline for throughput and memory, baseline/bpool for"
    echo "times (ns/op, latency), so above 1 means bpool is faster or larger."
    echo
    echo "CPU time of each step: the whole machine's busy time, the tool's own"
    echo "(user + system, as time(1) says) and the rest: other processes, and"
    echo "interrupt and kernel-worker time, some of it for the tool's own I/O:"
    echo
    sed 's/^/    /' "$outdir/steps.txt"
    echo
    echo "Raw output: $outdir"
} >"$table"
if [ "$quick" = 0 ]; then
    progress "latency.sh: page cache, device and bpool"
    BPOOL_BENCH=$bench FIO=$fio "$here/latency.sh" -f "$file" -s "$size" \
        -o "$outdir/latency" >/dev/null 2>"$outdir/latency.err" ||
        die "bench/latency.sh failed: $(tail -n 3 "$outdir/latency.err")"
    progress ""
    {
        echo
        echo "Tails of random 8 KiB accesses, 30 % writes (bench/latency.sh; us):"
        echo
        cat "$outdir/latency/table.md"
        echo
        echo "Plots: $outdir/latency/latency-t*.svg"
    } >>"$table"
    progress "checkpoint-tail.sh: reads beside fdatasync and checkpoints"
    BPOOL_BENCH=$bench FIO=$fio "$here/checkpoint-tail.sh" -f "$file" -s "$size" \
        -o "$outdir/checkpoint-tail" >/dev/null 2>"$outdir/checkpoint-tail.err" ||
        die "bench/checkpoint-tail.sh failed: $(tail -n 3 "$outdir/checkpoint-tail.err")"
    progress ""
    {
        echo
        echo "Readers beside durable points (bench/checkpoint-tail.sh; us):"
        echo
        cat "$outdir/checkpoint-tail/table.md"
    } >>"$table"
fi
cat "$table"
