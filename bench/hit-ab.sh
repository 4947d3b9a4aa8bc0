#!/bin/bash
# SPDX-License-Identifier: MIT
# hit-ab.sh - the hit path of two builds side by side, each against the
# floor of its own run: `bpool-bench hit` with the floor among its
# variants, run by A and B in turn (A first in odd rounds, B first in even
# ones); per build and variant, the median ns per operation over the
# rounds and the median of its ratio to the floor's ns in the same run.
# The ratio is what the hit targets are stated in, and it is steadier on
# a shared machine than either figure alone: the memory latency of these
# VMs moves from one second to the next, and the variants of one run
# share it.
#
#   bench/hit-ab.sh [-r ROUNDS] [-f FILE] A_BENCH B_BENCH [BENCH-ARG...]
#
# A_BENCH and B_BENCH are bpool-bench programs (e.g. an older build's
# tools/bpool-bench and this one).  BENCH-ARGs go to both before the
# word `hit` (default: -d 1 -t 1 -D uniform --variant
# bpool,pin,optimistic,floor); give --variant with floor in it.
# Both use the same data file (-f, default ./bpool-ab.data).  Every run's
# result lines are kept in a temporary file named at the end.
set -euo pipefail

rounds=8
file=./bpool-ab.data
while getopts r:f:h opt; do
    case $opt in
    r) rounds=$OPTARG ;;
    f) file=$OPTARG ;;
    h) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -lt 2 ]; then
    echo "hit-ab.sh: need two bpool-bench programs (see -h)" >&2
    exit 2
fi
a=$1 b=$2
shift 2
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-d 1 -t 1 -D uniform --variant bpool,pin,optimistic,floor)

out=$(mktemp /tmp/hit-ab.XXXXXX)
run() {   # run LABEL PROGRAM ROUND
    "$2" -f "$file" "${args[@]}" hit 2>/dev/null | grep '^workload=hit' |
        sed "s/^/build=$1 round=$3 /" >>"$out" || true
}
for ((i = 1; i <= rounds; i++)); do
    if ((i % 2)); then run A "$a" "$i"; run B "$b" "$i"
    else run B "$b" "$i"; run A "$a" "$i"; fi
    printf 'hit-ab.sh: round %d of %d\r' "$i" "$rounds" >&2
done
echo >&2

printf '%-6s %-11s %7s %9s %8s %6s\n' build variant threads ns_op x_floor runs
awk '
function median(list,   n, v, i, j, t) {
    n = split(list, v, " ")
    for (i = 2; i <= n; i++)
        for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
{
    delete kv
    for (i = 1; i <= NF; i++) { split($i, p, "="); kv[p[1]] = p[2] }
    key = kv["build"] " " kv["variant"] " " kv["threads"]
    run = kv["build"] " " kv["round"] " " kv["threads"]
    ns[key] = ns[key] " " kv["ns_op"]
    rows[NR] = key; runs[NR] = run; nsof[NR] = kv["ns_op"]
    if (kv["variant"] == "floor") floor[run] = kv["ns_op"]
    if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
}
END {
    for (r = 1; r <= NR; r++)
        if (runs[r] in floor && floor[runs[r]] > 0)
            ratio[rows[r]] = ratio[rows[r]] " " nsof[r] / floor[runs[r]]
    for (k = 1; k <= nk; k++) {
        split(order[k], f, " ")
        printf "%-6s %-11s %7s %9.1f %8s %6d\n", f[1], f[2], f[3], median(ns[order[k]]),
            (order[k] in ratio) ? sprintf("%.2f", median(ratio[order[k]])) : "-",
            split(ns[order[k]], tmp, " ")
    }
}' "$out" | sort -k1,1 -k3,3n -k2,2
echo "(result lines: $out)"
