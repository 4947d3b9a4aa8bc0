#!/bin/bash
# SPDX-License-Identifier: MIT
# ab.sh - two builds of bpool-bench side by side: each workload run by A
# and B in turn, A first in odd rounds and B first in even ones (ABBA), so
# that the drift of a shared machine's disk hits both alike; prints each
# run's figure and, per workload, the geometric mean of B/A over the
# rounds (use an even number of rounds).
#
#   bench/ab.sh [-r ROUNDS] [-f FILE] A_BENCH B_BENCH [WORKLOAD...]
#
# A_BENCH and B_BENCH are bpool-bench programs (e.g. an older build's
# tools/bpool-bench and this one), each with arguments of its own after
# commas: "tools/bpool-bench,--engine,libaio" and
# "tools/bpool-bench,--engine,io_uring" compare the I/O engines.  Where
# both result lines have cpu_us_per_read, its B/A is printed too (cpu).  WORKLOADs are given as bpool-bench
# arguments in one word each, with commas for spaces, e.g.
# "randread,-d,5" (default: randread, seqscan, mixed, checkpoint with
# short durations).  The figure compared is the first of ops_s, iops,
# mib_s, pages_s found in the result line (the last line for workloads
# that print several: checkpoint's phase with checkpoints running).
# Both builds use the same data file (-f, default ./bpool-ab.data, made
# by the first run).

set -euo pipefail

rounds=4
file=./bpool-ab.data
while getopts "r:f:h" opt; do
    case $opt in
    r) rounds=$OPTARG ;;
    f) file=$OPTARG ;;
    h) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -lt 2 ]; then
    echo "usage: bench/ab.sh [-r ROUNDS] [-f FILE] A_BENCH B_BENCH [WORKLOAD...]" >&2
    exit 2
fi
IFS=, read -r -a a <<<"$1"
IFS=, read -r -a b <<<"$2"
shift 2
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] ||
    workloads=("randread,-d,5" "seqscan,-d,5" "mixed,-d,5" "checkpoint,-d,3")

# The compared figure of one result line.
figure() {
    local k
    for k in ops_s iops mib_s pages_s; do
        if [[ $1 =~ (^|[[:space:]])$k=([0-9.]+) ]]; then
            echo "$k ${BASH_REMATCH[2]}"
            return
        fi
    done
    echo "? 0"
}

printf '%-28s %5s %14s %14s %7s\n' workload round A B B/A
for w in "${workloads[@]}"; do
    IFS=, read -r -a args <<<"$w"
    ratios=()
    cpu_ratios=()
    for ((i = 1; i <= rounds; i++)); do
        # A then B in odd rounds, B then A in even ones: whichever runs
        # second in a pair may meet a device that drifted (or a cache the
        # first one warmed), so neither build always gets that place.
        if ((i % 2)); then
            la=$("${a[@]}" -f "$file" "${args[@]}" 2>/dev/null | tail -1)
            lb=$("${b[@]}" -f "$file" "${args[@]}" 2>/dev/null | tail -1)
        else
            lb=$("${b[@]}" -f "$file" "${args[@]}" 2>/dev/null | tail -1)
            la=$("${a[@]}" -f "$file" "${args[@]}" 2>/dev/null | tail -1)
        fi
        read -r ka va <<<"$(figure "$la")"
        read -r kb vb <<<"$(figure "$lb")"
        r=$(awk -v a="$va" -v b="$vb" 'BEGIN { printf "%.3f", (a > 0 ? b / a : 0) }')
        ratios+=("$r")
        cpu=""
        if [[ $la =~ cpu_us_per_read=([0-9.]+) ]]; then
            ca=${BASH_REMATCH[1]}
            if [[ $lb =~ cpu_us_per_read=([0-9.]+) ]]; then
                cb=${BASH_REMATCH[1]}
                cr=$(awk -v a="$ca" -v b="$cb" 'BEGIN { printf "%.3f", (a > 0 ? b / a : 0) }')
                cpu_ratios+=("$cr")
                cpu="  cpu_us_per_read $ca $cb: $cr"
            fi
        fi
        printf '%-28s %5d %14s %14s %7s  (%s)%s\n' "${w//,/ }" "$i" "$va" "$vb" "$r" "$ka" "$cpu"
    done
    # The geometric mean: with ABBA order an even number of rounds
    # cancels the order effect, which a median of two middles would not.
    gm=$(printf '%s\n' "${ratios[@]}" | awk '$1 > 0 { l += log($1); n++ } END { printf "%.3f", n ? exp(l / n) : 0 }')
    cpu=""
    if [ ${#cpu_ratios[@]} -gt 0 ]; then
        cpu="  cpu $(printf '%s\n' "${cpu_ratios[@]}" | awk '$1 > 0 { l += log($1); n++ } END { printf "%.3f", n ? exp(l / n) : 0 }')"
    fi
    printf '%-28s %5s %14s %14s %7s%s\n' "${w//,/ }" gmean "" "" "$gm" "$cpu"
done
