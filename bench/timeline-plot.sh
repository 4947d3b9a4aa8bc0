#!/bin/bash
# SPDX-License-Identifier: MIT
# timeline-plot.sh - the tails over time: p50, p99 and p99.9 of the pins,
# second by second, from bpool-bench --timeline output, drawn as an SVG
# with gnuplot.
#
#   bench/timeline-plot.sh [-o OUT.svg] [-t TITLE] FILE...
#
# Each FILE holds what bpool-bench --timeline printed (the text form, not
# --json): its "timeline ..." lines are read, the other lines skipped.  A
# FILE is one series per run (checkpoint's two phases are two series),
# named after the file (and the phase), one colour each; p50 is drawn
# solid, p99 dashed, p99.9 dotted, on a log scale of microseconds against
# the second of the run.  The read pins (r_*) are the upper plot; the
# write pins (w_*) a lower one, when some file has any.  Compare runs by
# giving several files, e.g. before and after a change:
#
#   bpool-bench -d 30 --timeline mixed >before.txt
#   bpool-bench -d 30 --timeline mixed >after.txt
#   bench/timeline-plot.sh -o mixed.svg before.txt after.txt
#
#   -o OUT.svg   where to write the plot (default timeline.svg)
#   -t TITLE     the plot's title (default: the files' names)
#   -h           this help
#
# Needs gnuplot (Debian: apt-get install gnuplot-nox).

set -euo pipefail

prog=${0##*/}
usage() { echo "usage: bench/$prog [-o OUT.svg] [-t TITLE] FILE..." >&2; exit 2; }

out=timeline.svg
title=
while getopts "o:t:h" opt; do
    case $opt in
    o) out=$OPTARG ;;
    t) title=$OPTARG ;;
    h) sed -n '3,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || usage
if ! command -v gnuplot >/dev/null 2>&1; then
    echo "$prog: gnuplot is not installed (Debian: apt-get install gnuplot-nox)" >&2
    exit 1
fi
for f in "$@"; do
    if [ ! -r "$f" ]; then
        echo "$prog: cannot read $f" >&2
        exit 1
    fi
    if ! grep -q '^timeline ' "$f"; then
        if grep -q '"timeline":true' "$f"; then
            echo "$prog: $f is --json output; give the text form (bpool-bench --timeline without --json)" >&2
        else
            echo "$prog: $f has no timeline lines (bpool-bench --timeline output)" >&2
        fi
        exit 1
    fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One data file per series: columns t r_p50 r_p99 r_p999 w_p50 w_p99 w_p999
# ("-" where a second had no pins of a kind), found by key, not position.
# Prints a line per series: its data file, whether it has read pins and
# write pins (1 or 0), its name.
n=0
for f in "$@"; do
    n=$((n + 1))
    awk -v dir="$tmp" -v idx="$n" -v name="${f##*/}" '
        $1 != "timeline" { next }
        {
            split("", v)
            for (i = 2; i <= NF; i++) {
                eq = index($i, "=")
                if (eq) v[substr($i, 1, eq - 1)] = substr($i, eq + 1)
            }
            ph = ("phase" in v) ? v["phase"] : ""
            if (!(ph in file)) {
                file[ph] = dir "/" idx "-" (++nser) ".dat"
                label[ph] = ph == "" ? name : name " " ph
                order[nser] = ph
            }
            line = v["t"]
            split("r_p50_us r_p99_us r_p999_us w_p50_us w_p99_us w_p999_us", keys, " ")
            for (k = 1; k <= 6; k++)
                line = line " " ((keys[k] in v) ? v[keys[k]] : "-")
            print line > file[ph]
            if (("r_p99_us" in v) && v["r_p99_us"] != "-") reads[ph] = 1
            if (("w_p99_us" in v) && v["w_p99_us"] != "-") writes[ph] = 1
        }
        END {
            for (s = 1; s <= nser; s++) {
                ph = order[s]
                printf "%s\t%d\t%d\t%s\n", file[ph], (ph in reads), (ph in writes), label[ph]
            }
        }' "$f"
done >"$tmp/series"

if [ -z "$title" ]; then
    title=$(printf '%s ' "${@##*/}")
    title=${title% }
fi
any_reads=$(awk -F'\t' '$2 == 1 { print "yes"; exit }' "$tmp/series")
any_writes=$(awk -F'\t' '$3 == 1 { print "yes"; exit }' "$tmp/series")

# gnuplot strings are single-quoted: double any quote in names and titles.
quote() { printf "'%s'" "${1//\'/\'\'}"; }

# The plot command of one kind of pin (columns 2-4: read, 5-7: write),
# over the series that have some; a series keeps its colour in both.
plot_cmd() {
    local first=$1 kind=$2 sep="plot " color=0 data r w label q dt col
    while IFS=$'\t' read -r data r w label; do
        color=$((color + 1))
        if [ "$kind" = r ]; then [ "$r" = 1 ] || continue; else [ "$w" = 1 ] || continue; fi
        col=$first
        for q in p50 p99 p99.9; do
            case $q in p50) dt=1 ;; p99) dt=2 ;; *) dt=3 ;; esac
            printf '%s%s using 1:%d with linespoints lc %d dt %d pt 7 ps 0.3 title %s' \
                "$sep" "$(quote "$data")" "$col" "$color" "$dt" "$(quote "$label $q")"
            sep=", \\
    "
            col=$((col + 1))
        done
    done <"$tmp/series"
    echo
}

panels=0
[ -z "$any_reads" ] || panels=$((panels + 1))
[ -z "$any_writes" ] || panels=$((panels + 1))
if [ "$panels" -eq 0 ]; then
    echo "$prog: no second with any pins in $*" >&2
    exit 1
fi
{
    echo "set terminal svg size 1000,$((100 + 400 * panels)) dynamic background rgb 'white'"
    echo "set output $(quote "$out")"
    echo "set datafile missing '-'"
    echo "set logscale y"
    echo "set grid"
    echo "set key outside right top"
    echo "set xlabel 'second of the run'"
    echo "set multiplot layout $panels,1 title $(quote "$title")"
    if [ -n "$any_reads" ]; then
        echo "set title 'read pins'"
        echo "set ylabel 'read pin latency (us)'"
        plot_cmd 2 r
    fi
    if [ -n "$any_writes" ]; then
        echo "set title 'write pins'"
        echo "set ylabel 'write pin latency (us)'"
        plot_cmd 5 w
    fi
    echo "unset multiplot"
} >"$tmp/plot.gp"

if ! gnuplot "$tmp/plot.gp" 2>"$tmp/err"; then
    echo "$prog: gnuplot failed:" >&2
    cat "$tmp/err" >&2
    exit 1
fi
echo "$prog: wrote $out"
