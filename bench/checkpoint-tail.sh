#!/bin/bash
# SPDX-License-Identifier: MIT
# checkpoint-tail.sh - what making writes durable does to the tail of
# readers that go to the device: fio with and without an fdatasync every N
# writes, next to bpool-bench checkpoint without and with a checkpoint
# every N pages dirtied, on the same file, in turns.
#
#   bench/checkpoint-tail.sh [-f FILE] [-s SIZE] [-t READERS] [-d SECS]
#                            [-r ROUNDS] [-n EVERY] [-R RATE] [-p POOL]
#                            [-o DIR]
#
# Both engines run READERS threads (default 4) of uniform random 8 KiB
# reads over the whole file, and one writer of random 8 KiB pages at RATE
# pages a second (default 5000), for SECS seconds (default 10) each way:
#
#   fio     readers: psync, direct=1; the writer: psync, direct=1,
#           rate_iops=RATE, first without an fdatasync, then with one
#           after every EVERY writes (default 8000) - what the device does
#           to reads while a flush of its write cache runs;
#   bpool   bpool-bench checkpoint with --pages the whole file (the pool,
#           POOL, default 64M, holds a small part of it, so readers miss):
#           the baseline phase (the flushers write back), then the
#           checkpoint phase with bp_checkpoint after every EVERY pages
#           dirtied.  Its writer pins the page for write (reading it when
#           it is not resident), stamps it and marks it dirty.
#
# The engines take turns, fio first in odd rounds and bpool first in even
# ones, ROUNDS times (default 2).  Each run is one row: reads per second,
# read latency p50, p99, p99.9 and max (fio: a request's, submission to
# completion; bpool: a pin's, hit or miss), and the mean time of an
# fdatasync or of a checkpoint.  bpool adds a row of the reader pins that
# overlapped a checkpoint.  The ratio table divides each engine's p99.9
# and max with durable points by its own without them, in the same round.
#
# DIR (default a new bpool-ckpt.XXXXXX next to the data file) keeps fio's
# JSON, bpool-bench's output and the tables as table.md.  fio's writes put
# fio's bytes into the data file: do not run bpool-bench --verify on it
# afterwards.
#
# Needs: bash, awk, fio (apt-get install fio).  Environment: BPOOL_BENCH
# (default tools/bpool-bench next to this script), FIO (default fio).

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bench=${BPOOL_BENCH:-$here/../tools/bpool-bench}
fio=${FIO:-fio}
file=./bpool-ckpt.data
size=2G
readers=4
secs=10
rounds=2
every=8000
rate=5000
pool=64M
outdir=

usage() {
    sed -n '/^#   bench/,/^#$/p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-2}"
}
die() { echo "checkpoint-tail.sh: $*" >&2; exit 1; }

while getopts "f:s:t:d:r:n:R:p:o:h" opt; do
    case $opt in
        f) file=$OPTARG ;;
        s) size=$OPTARG ;;
        t) readers=$OPTARG ;;
        d) secs=$OPTARG ;;
        r) rounds=$OPTARG ;;
        n) every=$OPTARG ;;
        R) rate=$OPTARG ;;
        p) pool=$OPTARG ;;
        o) outdir=$OPTARG ;;
        h) usage 0 ;;
        *) usage ;;
    esac
done
for v in readers secs rounds every rate; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "-${v:0:1}: want a positive whole number, not '${!v}'"
done
command -v "$fio" >/dev/null || die "fio not found (apt-get install fio)"
[ -x "$bench" ] || die "$bench not found: build bpool first (make)"

"$bench" -f "$file" --file-size "$size" prepare >/dev/null ||
    die "could not make the data file $file"
file_b=$(stat -c %s "$file")
pages=$((file_b / 8192))
[ -n "$outdir" ] || outdir=$(mktemp -d "$(dirname "$file")/bpool-ckpt.XXXXXX")
mkdir -p "$outdir"
table=$outdir/table.md
ratios=$outdir/ratios.md
{
    echo "| round | engine | durable points | reads/s | read p50 | p99 | p99.9 | max | sync or checkpoint |"
    echo "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
} >"$table"
{
    echo "| round | engine | p99.9 with / without | max with / without |"
    echo "| ---: | --- | ---: | ---: |"
} >"$ratios"

# fio_run ROUND FSYNC: readers and the writer, fdatasync every FSYNC
# writes (0: never).  Prints "p999 max" of the readers for the ratios.
fio_run() {
    local r=$1 fs=$2 tag=fio-fsync$2-r$1 what
    [ "$fs" -eq 0 ] && what="none" || what="fdatasync every $fs writes"
    "$fio" --filename="$file" --offset=8192 --size=$((file_b - 8192)) --bs=8k \
        --direct=1 --time_based --runtime="$secs" --ramp_time=2 \
        --lat_percentiles=1 --percentile_list=50:99:99.9 \
        --name=readers --rw=randread --ioengine=psync --numjobs="$readers" \
        --thread --group_reporting \
        --name=writer --new_group --rw=randwrite --ioengine=psync \
        --rate_iops="$rate" --fdatasync="$fs" \
        --output-format=json --output="$outdir/$tag.json" >/dev/null ||
        die "fio failed (see $outdir/$tag.json)"
    awk -v r="$r" -v what="$what" -v table="$table" '
        function us(x) { return sprintf("%.0f", x / 1000) }
        /"jobname" *:/ { gsub(/[",]/, ""); job = $3 }
        /"read" *: *\{/ { d = "r" } /"write" *: *\{/ { d = "w" }
        /"sync" *: *\{/ { d = "s" }
        job == "readers" && d == "r" && /"iops" *:/ && !("iops" in f) {
            gsub(/[",]/, ""); f["iops"] = $3 }
        job == "readers" && d == "r" && /"lat_ns" *: *\{/ { inlat = 1 }
        inlat && /"max" *:/ && !("max" in f) { gsub(/[",]/, ""); f["max"] = $3 }
        inlat && /"50.000000"/ { gsub(/[",]/, ""); f["50"] = $3 }
        inlat && /"99.000000"/ { gsub(/[",]/, ""); f["99"] = $3 }
        inlat && /"99.900000"/ { gsub(/[",]/, ""); f["999"] = $3; inlat = 0 }
        job == "writer" && d == "s" && /"mean" *:/ && !("sync" in f) {
            gsub(/[",]/, ""); f["sync"] = $3 }
        END {
            printf "| %s | fio | %s | %.1f K | %s | %s | %s | %s | %s |\n", r, what,
                f["iops"] / 1000, us(f["50"]), us(f["99"]), us(f["999"]), us(f["max"]),
                (f["sync"] > 0 ? sprintf("%.1f ms", f["sync"] / 1e6) : "-") >>table
            print f["999"] / 1000, f["max"] / 1000
        }' "$outdir/$tag.json"
}

# bpool_run ROUND: both phases of bpool-bench checkpoint.  Prints "p999
# max" of the baseline, then of the checkpoint phase, for the ratios.
bpool_run() {
    local r=$1 tag=bpool-r$1
    "$bench" -f "$file" -p "$pool" -t "$readers" -d "$secs" -w 2 --pages "$pages" \
        --dirty-rate "$rate" --checkpoint-every "$every" checkpoint \
        >"$outdir/$tag.txt" 2>"$outdir/$tag.err" ||
        die "bpool-bench failed (see $outdir/$tag.err)"
    grep '^workload=checkpoint' "$outdir/$tag.txt" | awk -v r="$r" -v every="$every" \
        -v table="$table" '
        function row(what, p) {
            printf "| %s | bpool | %s | %s | %.0f | %.0f | %.0f | %.0f | %s |\n", r, what,
                (p == "" ? sprintf("%.1f K", f["ops_s"] / 1000) : sprintf("%s pins", f["ckpt_ops"])),
                f[p "lat_p50_us"], f[p "lat_p99_us"], f[p "lat_p999_us"], f[p "lat_max_us"],
                (f["phase"] == "checkpoint" ? sprintf("%.1f ms", f["checkpoint_mean_ms"]) : "-") >>table
        }
        {
            delete f
            for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
            if (f["phase"] == "baseline") {
                row("none (the flushers write back)", "")
            } else {
                row("checkpoint every " every " pages dirtied", "")
                row("pins that overlapped a checkpoint", "ckpt_")
            }
            print f["lat_p999_us"], f["lat_max_us"]
        }'
}

ratio_row() {   # ROUND ENGINE "p999 max" (without) "p999 max" (with)
    awk -v r="$1" -v e="$2" -v a="$3" -v b="$4" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        printf "| %s | %s | %.2f | %.2f |\n", r, e, y[1] / x[1], y[2] / x[2] }' >>"$ratios"
}

for r in $(seq 1 "$rounds"); do
    order="fio bpool"
    [ $((r % 2)) -eq 0 ] && order="bpool fio"
    for e in $order; do
        echo "checkpoint-tail.sh: round $r of $rounds: $e" >&2
        if [ "$e" = fio ]; then
            without=$(fio_run "$r" 0)
            with=$(fio_run "$r" "$every")
            ratio_row "$r" "fio, fdatasync" "$without" "$with"
        else
            mapfile -t b < <(bpool_run "$r")
            ratio_row "$r" "bpool, checkpoint" "${b[0]}" "${b[1]}"
        fi
    done
done
cat "$table"
echo
cat "$ratios"
echo >>"$table"
cat "$ratios" >>"$table"
echo "checkpoint-tail.sh: output in $outdir" >&2
