#!/bin/bash
# SPDX-License-Identifier: MIT
# latency.sh - the tails of random 8 KiB reads and writes, three ways:
# through the page cache (fio, psync, direct=0), straight to the device
# (fio, psync, direct=1) and through bpool (bpool-bench mixed), each whole
# process in the same memory cgroup, with the same threads, on the same
# file, in turns.
#
#   bench/latency.sh [-f FILE] [-s SIZE] [-t "8 32"] [-d SECS] [-r ROUNDS]
#                    [-m CAP] [-p POOL] [-W PCT] [-R] [-o DIR]
#
# Each engine does uniform random 8 KiB accesses, PCT % of them writes
# (default 30), for SECS seconds (default 20) with each thread count; the
# engines take turns (page cache, device, bpool), ROUNDS times (default
# 1).  For every run it prints one row: operations per second, and p50,
# p99, p99.9 and max of the reads and of the writes.  fio's latency is a
# request's (lat: submission to completion); bpool's is a pin's, hit or
# miss, the write pins' including the wait for a free frame.  fio's
# writes replace whole pages without reading them, so bpool's write pins
# do the same (BP_OVERWRITE): each engine then asks the device for one
# I/O an access, less its hits.  -R makes bpool's write pins read the
# page first (BP_WRITE without BP_OVERWRITE, a read-modify-write, as a
# database updating a row does): about 1.2 I/Os an access at this pool
# size, which a device that caps its IOPS turns into fewer accesses and a
# longer queue.  The ratio
# rows divide bpool's figure by the device's (direct=1) of the same
# round and threads: below 1 means bpool's tail is shorter.
#
# The cap: a cgroup v1 memory controller at /sys/fs/cgroup/memory (as
# root) holds each run to CAP bytes (default 256M), so the page cache
# cannot keep more of the file than a pool of the same memory would;
# bpool's pool is POOL (default 232M, as the issue that asked for this
# run set it: the 32-thread run peaks at 239 MiB with the pool's
# metadata and bpool-bench's own memory.  It was 200M while filling the pool from 32 threads
# had the kernel charge up to 60 MiB more for a moment, which killed
# the run at 216M and above; doc/performance.md, "Filling a pool under
# a memory cap").  Each run gets a new cgroup, so no run is charged for another
# one's page cache.  Without the controller the runs go on and every row
# says "uncapped".
#
# Per-second percentiles of every run are written to DIR as
# "timeline ..." lines (bench/timeline-plot.sh reads them), and, when
# gnuplot is installed, plotted: DIR/latency-T.svg for T threads, the
# three engines side by side.  DIR (default: a new bpool-latency.XXXXXX
# next to the data file) also keeps fio's JSON and bpool-bench's output,
# and the table as table.md.
#
# fio's writes put fio's bytes into the data file: do not run
# bpool-bench --verify on it afterwards.
#
# Needs: bash, awk, sort, fio (apt-get install fio); gnuplot for the plots.
# Environment: BPOOL_BENCH (default tools/bpool-bench next to this
# script), FIO (default fio).

set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bench=${BPOOL_BENCH:-$here/../tools/bpool-bench}
fio=${FIO:-fio}
file=./bpool-latency.data
size=2G
threads="8 32"
secs=20
rounds=1
cap=256M
pool=232M
wpct=30
overwrite=--overwrite
outdir=

usage() { sed -n '3,/^$/s/^# \{0,1\}//p' "$0"; }
die() { echo "latency.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case $1 in
        -R) overwrite=; shift; continue ;;
        -h|--help) usage; exit 0 ;;
        -[fstdrmpWo]) [ $# -ge 2 ] || die "$1 needs a value (see -h)" ;;
        *) echo "latency.sh: unknown option '$1' (see -h)" >&2; exit 2 ;;
    esac
    case $1 in
        -f) file=$2 ;;
        -s) size=$2 ;;
        -t) threads=$2 ;;
        -d) secs=$2 ;;
        -r) rounds=$2 ;;
        -m) cap=$2 ;;
        -p) pool=$2 ;;
        -W) wpct=$2 ;;
        -o) outdir=$2 ;;
    esac
    shift 2
done

[ -x "$bench" ] || die "$bench not found: build it first (make), or set BPOOL_BENCH"
command -v "$fio" >/dev/null 2>&1 || die "fio not found (apt-get install fio)"

bytes() {   # SIZE with K/M/G suffix -> bytes
    local n=${1%[KkMmGgTt]} u=${1##*[0-9]}
    case $u in
        K|k) echo $((n << 10)) ;; M|m) echo $((n << 20)) ;;
        G|g) echo $((n << 30)) ;; T|t) echo $((n << 40)) ;; *) echo "$n" ;;
    esac
}
size_b=$(bytes "$size")
cap_b=$(bytes "$cap")

# The data file: made by bpool-bench (a header page, then SIZE bytes of
# pages); fio uses the SIZE bytes after the header, so bpool's header
# page stays bpool's.
"$bench" -q -f "$file" --file-size "$size" prepare >/dev/null ||
    die "cannot make $file"
[ -n "$outdir" ] || outdir=$(mktemp -d "$(dirname "$file")/bpool-latency.XXXXXX")
mkdir -p "$outdir"

cgv1=/sys/fs/cgroup/memory
capped=uncapped
if [ -w "$cgv1" ] && [ -f "$cgv1/memory.limit_in_bytes" ]; then
    capped="cap $cap"
else
    echo "latency.sh: no writable cgroup v1 memory controller; running uncapped" >&2
fi

# Run "$@" in a cgroup of its own capped at CAP (its children too).
in_cap() {
    if [ "$capped" = uncapped ]; then
        "$@"
        return
    fi
    local cg=$cgv1/bpool-latency.$$ r=0
    mkdir "$cg"
    echo "$cap_b" >"$cg/memory.limit_in_bytes"
    bash -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' _ "$cg" "$@" || r=$?
    rmdir "$cg" 2>/dev/null || true
    return $r
}

# fio's per-request log (time ms, latency ns, direction, ...) -> one
# "timeline" line a second, in bpool-bench --timeline's form: operations,
# then p50/p99/p99.9/max of the reads and of the writes.
log_to_timeline() {
    awk -F', *' '{ printf "%d %d %.3f\n", int($1 / 1000), $3, $2 / 1000 }' "$1" |
    sort -k1,1n -k2,2n -k3,3g |
    awk -v wl="$2" -v secs="$secs" '
        function q(p,   i) { i = int(p * n + 0.999999); if (i < 1) i = 1; return v[i] }
        function flush_dir(   pre) {
            if (n == 0) return
            pre = dir == 0 ? "r" : "w"
            cnt[sec, pre] = n
            qs[sec, pre] = sprintf(" %s_p50_us=%.1f %s_p99_us=%.1f %s_p999_us=%.1f %s_max_us=%.1f",
                                   pre, q(0.5), pre, q(0.99), pre, q(0.999), pre, v[n])
            n = 0
        }
        BEGIN { sec = -1; dir = -1 }
        { if ($1 != sec || $2 != dir) { flush_dir(); sec = $1; dir = $2 }
          v[++n] = $3 }
        END { flush_dir()
              for (s = 0; s <= sec && s < secs; s++) {   # not the last, partial second
                  r = cnt[s, "r"] + 0; w = cnt[s, "w"] + 0
                  if (r + w > 0)
                      printf "timeline workload=%s t=%d ops=%d r_ops=%d w_ops=%d%s%s\n", wl, s + 1,
                             r + w, r, w, qs[s, "r"], qs[s, "w"]
              } }'
}

table=$outdir/table.md
{
    echo "| round | threads | engine | ops/s | read p50 | p99 | p99.9 | max | write p50 | p99 | p99.9 | max |"
    echo "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
} >"$table"

fio_run() {   # ROUND THREADS NAME DIRECT
    local r=$1 t=$2 name=$3 direct=$4 tag=$3-t$2-r$1
    sync
    in_cap "$fio" --name="$name" --filename="$file" --offset=8192 --size="$size_b" \
        --rw=randrw --rwmixread=$((100 - wpct)) --bs=8k --ioengine=psync \
        --direct="$direct" --invalidate=1 --numjobs="$t" --thread \
        --time_based --runtime="$secs" --ramp_time=2 --group_reporting \
        --lat_percentiles=1 --percentile_list=50:99:99.9 \
        --write_lat_log="$outdir/$tag" --per_job_logs=0 --log_avg_msec=0 \
        --output-format=json --output="$outdir/$tag.json" >/dev/null ||
        die "fio failed (see $outdir/$tag.json)"
    log_to_timeline "$outdir/${tag}_lat.log" "$name" >"$outdir/$tag.timeline"
    rm -f "$outdir/${tag}"_*.log
    awk -v r="$r" -v t="$t" -v name="$name" -v capped="$capped" '
        function us(x) { return sprintf("%.0f", x / 1000) }
        /"read" *: *\{/ { d = "r" } /"write" *: *\{/ { d = "w" }
        /"iops" *:/ && !(d "iops" in f) { gsub(/[",]/, ""); f[d "iops"] = $3 }
        /"lat_ns" *: *\{/ { inlat = d }
        inlat != "" && /"max" *:/ && !(d "max" in f) { gsub(/[",]/, ""); f[d "max"] = $3 }
        inlat != "" && /"50.000000"/ { gsub(/[",]/, ""); f[d "50"] = $3 }
        inlat != "" && /"99.000000"/ { gsub(/[",]/, ""); f[d "99"] = $3 }
        inlat != "" && /"99.900000"/ { gsub(/[",]/, ""); f[d "999"] = $3; inlat = "" }
        END { printf "| %s | %s | %s (%s) | %.1f K | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                  r, t, name, capped, (f["riops"] + f["wiops"]) / 1000,
                  us(f["r50"]), us(f["r99"]), us(f["r999"]), us(f["rmax"]),
                  us(f["w50"]), us(f["w99"]), us(f["w999"]), us(f["wmax"]) }' \
        "$outdir/$tag.json" >>"$table"
}

bpool_run() {   # ROUND THREADS
    local r=$1 t=$2 tag=bpool-t$2-r$1
    sync
    in_cap "$bench" -q -f "$file" -p "$pool" -t "$t" -d "$secs" -w 2 \
        -D uniform -W "$wpct" $overwrite --timeline mixed >"$outdir/$tag.txt" ||
        die "bpool-bench failed (see $outdir/$tag.txt)"
    grep '^timeline ' "$outdir/$tag.txt" | sed 's/workload=mixed/workload=bpool/' \
        >"$outdir/$tag.timeline"
    grep '^workload=mixed' "$outdir/$tag.txt" | tr ' ' '\n' | awk -F= -v r="$r" -v t="$t" -v capped="$capped" '
        { f[$1] = $2 }
        END { printf "| %s | %s | bpool (%s) | %.1f K | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n",
                  r, t, capped, f["ops_s"] / 1000,
                  f["rlat_p50_us"], f["rlat_p99_us"], f["rlat_p999_us"], f["rlat_max_us"],
                  f["wlat_p50_us"], f["wlat_p99_us"], f["wlat_p999_us"], f["wlat_max_us"] }' >>"$table"
}

for r in $(seq "$rounds"); do
    for t in $threads; do
        echo "round $r, $t threads: page cache" >&2; fio_run "$r" "$t" pagecache 0
        echo "round $r, $t threads: device" >&2;     fio_run "$r" "$t" device 1
        echo "round $r, $t threads: bpool" >&2;      bpool_run "$r" "$t"
    done
done

# bpool / device, per round and threads, for each column.
awk -F'|' '
    /device/ { for (i = 5; i <= 13; i++) { x = $i; gsub(/[ K]/, "", x); dev[$2, $3, i] = x } }
    /bpool/  { r = $2; t = $3; gsub(/ /, "", r); gsub(/ /, "", t)
               printf "| %s | %s | bpool / device |", r, t
               for (i = 5; i <= 13; i++) { x = $i; gsub(/[ K]/, "", x); d = dev[$2, $3, i]
                   printf " %s |", (d > 0 ? sprintf("%.2f", x / d) : "-") }
               print "" }' "$table" >"$table.ratios"
cat "$table.ratios" >>"$table"
rm -f "$table.ratios"
cat "$table"

if command -v gnuplot >/dev/null 2>&1; then
    for t in $threads; do
        files=()
        for e in pagecache device bpool; do
            for f in "$outdir/$e-t$t-r"*.timeline; do
                [ -s "$f" ] && cp "$f" "$outdir/$e-t$t.timeline" && files+=("$outdir/$e-t$t.timeline")
                break
            done
        done
        [ ${#files[@]} -gt 0 ] &&
            "$here/timeline-plot.sh" -o "$outdir/latency-t$t.svg" \
                -t "random 8 KiB, $wpct % writes, $t threads, $capped" "${files[@]}" >/dev/null &&
            echo "plot: $outdir/latency-t$t.svg" >&2
    done
fi
echo "output: $outdir" >&2
