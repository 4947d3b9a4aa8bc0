#!/bin/bash
# SPDX-License-Identifier: MIT
# bench.sh - kvdb's measurements (examples/kvdb/README.md, "Performance"):
# inserts/s and point lookups/s of kvdb with bpool's pool at 10% and at
# 100% of the data size, one key per lookup and 16 keys per kvdb_mget; the same with pages read and written by plain
# pread/pwrite through the kernel's page cache (kvdb --io pread, no cache
# of kvdb's own); and SQLite on the same keys with a page cache of the
# same sizes (sqlite_bench.c, built here if SQLite's headers are found).
# For each run it also reports how much of the file the kernel's page
# cache held afterwards: what the run really used for caching.
#
# usage: examples/kvdb/bench.sh [-n KEYS] [-l LOOKUPS] [-c COMMIT_EVERY]
#                               [-d DIR] [-k KVDB] [-s SEED]
#
#   -n KEYS        keys inserted (default 500000)
#   -l LOOKUPS     random point lookups timed (default 200000)
#   -c N           commit every N inserts (default 10000)
#   -d DIR         scratch directory, on a disk file system (O_DIRECT;
#                  not tmpfs); default ./kvdb-bench, removed at the end
#   -k KVDB        the kvdb program (default: examples/kvdb/kvdb under the
#                  current directory, i.e. run from the top build directory)
#   -s SEED        key seed (default 42)
#
# Every run starts from an empty file and one process: `kvdb bench`
# inserts KEYS keys in random order, one thread, committing every N (a
# durable commit: checkpoint + fdatasync), closes, drops the file from the
# page cache, reopens and times LOOKUPS lookups of random present keys
# after an untimed warm-up of a quarter as many; then again from a cold
# start, 16 keys per kvdb_mget (kvdb only: SQLite's rows show -).  The data size is the
# size of kvdb's file after the inserts, measured by the first (pread) run.

set -u
here=$(cd "$(dirname "$0")" && pwd)
n=500000
lookups=200000
every=10000
dir=./kvdb-bench
kvdb=./examples/kvdb/kvdb
seed=42
while getopts n:l:c:d:k:s:h opt; do
    case $opt in
    n) n=$OPTARG ;;
    l) lookups=$OPTARG ;;
    c) every=$OPTARG ;;
    d) dir=$OPTARG ;;
    k) kvdb=$OPTARG ;;
    s) seed=$OPTARG ;;
    *) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 2 ;;
    esac
done
if [ ! -x "$kvdb" ]; then
    echo "bench.sh: $kvdb not found: build first (make), run from the top" \
        "build directory or give -k" >&2
    exit 2
fi
mkdir -p "$dir" || exit 2
dir=$(cd "$dir" && pwd)
cleanup() {
    local f
    for f in kv.db sq.db sq.db-wal sq.db-shm sqlite_bench sq.err; do
        rm -f "${dir:?}/$f"
    done
    for f in pread bpool-100 bpool-10 sqlite-100 sqlite-10; do
        rm -f "$dir/$f.out" "$dir/$f.err"
    done
    rmdir "$dir" 2>/dev/null
}
trap cleanup EXIT

# --- the machine ---------------------------------------------------------------------
echo "# kvdb bench: $n keys, $lookups lookups, commit every $every, seed $seed"
echo "# cpu: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), $(nproc) cores"
echo "# memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "# kernel: $(uname -sr)"
echo "# file system: $(df --output=fstype "$dir" 2>/dev/null | tail -n 1) on $(df -P "$dir" | awk 'NR == 2 { print $1 }')"

# --- SQLite, if it can be built --------------------------------------------------------
sqlite=
cc=${CC:-cc}
if sq_flags=$(pkg-config --cflags --libs sqlite3 2>/dev/null) ||
        { [ -e /usr/include/sqlite3.h ] && sq_flags=-lsqlite3; }; then
    # shellcheck disable=SC2086
    if $cc -O2 -std=gnu11 -D_GNU_SOURCE -I"$here" -o "$dir/sqlite_bench" \
            "$here/sqlite_bench.c" "$here/keygen.c" $sq_flags 2>"$dir/sq.err"; then
        sqlite=$dir/sqlite_bench
        echo "# sqlite: $(sqlite3 --version 2>/dev/null | cut -d' ' -f1 || echo built)"
    else
        echo "# sqlite: sqlite_bench.c did not build: $(head -n 3 "$dir/sq.err")"
    fi
else
    echo "# sqlite: no SQLite headers (Debian: apt-get install libsqlite3-dev): skipped"
fi

# run NAME CMD...: one run; its "bench ..." line goes to $dir/NAME.out
results=()
run() {
    local name=$1
    shift
    echo "# $name: $*" >&2
    if ! "$@" >"$dir/$name.out" 2>"$dir/$name.err"; then
        echo "bench.sh: $name failed:" >&2
        cat "$dir/$name.err" >&2
        return 1
    fi
    results+=("$name")
    cat "$dir/$name.out"
}
val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" "$dir/$2.out"; }

# --- the runs -------------------------------------------------------------------------------
common=(bench "$n" --lookups "$lookups" --commit-every "$every" --seed "$seed")
run pread "$kvdb" --io pread "$dir/kv.db" "${common[@]}" || exit 1
data_mb=$(val file_mb pread)
# pools in frames of 8 KiB: 100% and 10% of the file
f100=$(awk -v m="$data_mb" 'BEGIN { printf "%d", m * 1048576 / 8192 + 1 }')
f10=$(awk -v f="$f100" 'BEGIN { f = int(f / 10); if (f < 16) f = 16; print f }')
mb100=$(awk -v f="$f100" 'BEGIN { printf "%.1f", f * 8192 / 1048576 }')
mb10=$(awk -v f="$f10" 'BEGIN { printf "%.1f", f * 8192 / 1048576 }')
run bpool-100 "$kvdb" --frames "$f100" "$dir/kv.db" "${common[@]}"
run bpool-10 "$kvdb" --frames "$f10" "$dir/kv.db" "${common[@]}"
if [ -n "$sqlite" ]; then
    sqc=("$n" --lookups "$lookups" --commit-every "$every" --seed "$seed")
    run sqlite-100 "$sqlite" "$dir/sq.db" "${sqc[@]}" --cache-kb $((f100 * 8))
    run sqlite-10 "$sqlite" "$dir/sq.db" "${sqc[@]}" --cache-kb $((f10 * 8))
fi

# --- the table ----------------------------------------------------------------------------
echo
echo "data: $n keys, kvdb file $data_mb MiB; pools: 100% = $f100 frames" \
    "($mb100 MiB), 10% = $f10 frames ($mb10 MiB)"
echo
echo "| engine | own cache | inserts/s | lookups/s | lookups/s, 16 per mget | page cache after inserts | page cache after lookups | file |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for r in "${results[@]}"; do
    case $r in
    pread) what="kvdb, pread/pwrite"; cache="none" ;;
    bpool-*) what="kvdb, bpool"; cache="$(val pool_mb "$r") MiB (${r#bpool-}%)" ;;
    sqlite-*) what="SQLite"; cache="$(val pool_mb "$r") MiB (${r#sqlite-}%)" ;;
    esac
    mget=$(val mget_lookups_per_s "$r")
    printf '| %s | %s | %s | %s | %s | %s MiB | %s MiB | %s MiB |\n' "$what" "$cache" \
        "$(val inserts_per_s "$r")" "$(val lookups_per_s "$r")" "${mget:--}" \
        "$(val page_cache_mb_after_inserts "$r")" \
        "$(val page_cache_mb_after_lookups "$r")" "$(val file_mb "$r")"
done
