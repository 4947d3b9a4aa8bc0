#!/bin/bash
# SPDX-License-Identifier: MIT
# bench.sh - kvdb's measurements (examples/kvdb/README.md, "Performance"):
# inserts/s and point lookups/s of kvdb on bpool next to SQLite and LMDB,
# on the same keys, in two regimes:
#
#   capped     each run is a whole process in a memory cgroup of CAP MiB
#              (-m; default 16), so that the kernel's page cache cannot
#              serve one engine from memory another is denied: kvdb's pool
#              and SQLite's cache are CAP - 4 MiB (4 MiB for the process
#              itself), LMDB has no cache of its own and its page cache is
#              what the cap leaves; kvdb through pread/pwrite (no cache of
#              its own, the page cache under the cap) too.  The data should
#              be several times CAP (-n).
#   uncapped   the pool and SQLite's cache at 100% of the data, no cap:
#              where mmap (LMDB) is at its best.  The data is kvdb's
#              file at its peak (during the load it holds the tree and
#              the copies its commits make), so nothing is evicted.
#
# Lookups are timed by 1, 2 and 4 threads (every engine here allows
# concurrent readers; SQLite's threads each have a connection and a share
# of the cache), and for kvdb also 16 keys per kvdb_mget.  For each run the
# table has how much of the file the kernel's page cache held afterwards
# (what the run really used for caching beyond its own cache), the file's
# size after the close (kvdb compacts at close; SQLite checkpoints and
# removes its WAL; for LMDB also the pages its tree uses, its map being
# sparse), and the most disk the run used while it inserted: kvdb's file
# before the close, SQLite's file and WAL after each commit, LMDB's file.
#
# usage: examples/kvdb/bench.sh [-n KEYS] [-l LOOKUPS] [-c COMMIT_EVERY]
#                               [-m CAP_MB] [-d DIR] [-k KVDB] [-s SEED]
#                               [-r ROUNDS]
#
#   -n KEYS        keys inserted (default 400000)
#   -l LOOKUPS     random point lookups timed (default 100000)
#   -c N           commit every N inserts (default 10000; 0: no commit
#                  along the way, one after the last insert, in every
#                  engine)
#   -m CAP_MB      the memory cap of the capped runs (default 16)
#   -d DIR         scratch directory, on a disk file system (O_DIRECT;
#                  not tmpfs); default ./kvdb-bench, removed at the end
#   -k KVDB        the kvdb program (default: examples/kvdb/kvdb under the
#                  current directory, i.e. run from the top build directory)
#   -s SEED        key seed (default 42)
#   -r ROUNDS      run every engine ROUNDS times (default 1), in reverse
#                  order every other round, and print each round's ratios
#                  of kvdb to SQLite and LMDB and their medians: the way
#                  to compare engines on a disk whose speed drifts (the
#                  table then has the median operations/s of the rounds)
#
# The cap is a cgroup v1 memory controller (/sys/fs/cgroup/memory: limit
# on memory and, where the kernel counts it, memory+swap) or a cgroup v2
# one (memory.max, memory.swap.max); it needs root.  Where neither can be
# made, the capped runs run without it and the table says "uncapped".
#
# Every run starts from an empty file and one process: it inserts KEYS
# keys in random order, one thread, committing every N (0: once, after
# the last insert; a durable commit: kvdb_commit, SQLite's COMMIT with
# synchronous=FULL, LMDB's mdb_txn_commit), closes, drops the file from the page cache, reopens
# and times LOOKUPS lookups of random present keys after an untimed
# warm-up of a quarter as many.  SQLite is built from sqlite_bench.c where
# libsqlite3-dev is found, LMDB from lmdb_bench.c where liblmdb-dev is.
#
# Exit status: 0 when every run succeeded; 1 when one failed (its errors
# are printed when it fails, and the runs that failed are named again at
# the end; the table leaves them out); 2 bad usage.

set -u
here=$(cd "$(dirname "$0")" && pwd)
n=400000
lookups=100000
every=10000
cap=16
dir=./kvdb-bench
kvdb=./examples/kvdb/kvdb
seed=42
rounds=1
while getopts n:l:c:m:d:k:s:r:h opt; do
    case $opt in
    n) n=$OPTARG ;;
    m) cap=$OPTARG ;;
    l) lookups=$OPTARG ;;
    c) every=$OPTARG ;;
    d) dir=$OPTARG ;;
    k) kvdb=$OPTARG ;;
    s) seed=$OPTARG ;;
    r) rounds=$OPTARG ;;
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
    for f in kv.db sq.db sq.db-wal sq.db-shm lm.db lm.db-lock sqlite_bench \
             lmdb_bench sq.err lm.err; do
        rm -f "${dir:?}/$f"
    done
    rm -f "$dir"/*.out "$dir"/*.err
    rmdir "$dir" 2>/dev/null
    [ -n "${cg:-}" ] && rmdir "$cg" 2>/dev/null
}
trap cleanup EXIT

# --- the machine ---------------------------------------------------------------------
commits="commit every $every"
[ "$every" = 0 ] && commits="one commit, after the last insert"
echo "# kvdb bench: $n keys, $lookups lookups, $commits, seed $seed"
echo "# cpu: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), $(nproc) cores"
echo "# memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "# kernel: $(uname -sr)"
echo "# file system: $(df --output=fstype "$dir" 2>/dev/null | tail -n 1) on $(df -P "$dir" | awk 'NR == 2 { print $1 }')"

# --- SQLite and LMDB, if they can be built --------------------------------------------
cc=${CC:-cc}
# build NAME SOURCE FLAGS...: $dir/NAME from SOURCE, keygen.c and benchutil.c, or fail
build() {
    local name=$1 src=$2
    shift 2
    $cc -O2 -std=gnu11 -D_GNU_SOURCE -I"$here" -I"$here/../../include" \
        -o "$dir/$name" "$here/$src" "$here/keygen.c" "$here/benchutil.c" "$@" \
        -pthread 2>"$dir/$name.err"
}
sqlite=
if sq_flags=$(pkg-config --cflags --libs sqlite3 2>/dev/null) ||
        { [ -e /usr/include/sqlite3.h ] && sq_flags=-lsqlite3; }; then
    # shellcheck disable=SC2086
    if build sqlite_bench sqlite_bench.c $sq_flags; then
        sqlite=$dir/sqlite_bench
        echo "# sqlite: $(sqlite3 --version 2>/dev/null | cut -d' ' -f1 || echo built)"
    else
        echo "# sqlite: sqlite_bench.c did not build: $(head -n 3 "$dir/sqlite_bench.err")"
    fi
else
    echo "# sqlite: no SQLite headers (Debian: apt-get install libsqlite3-dev): skipped"
fi
lmdb=
if [ -e /usr/include/lmdb.h ]; then
    if build lmdb_bench lmdb_bench.c -llmdb; then
        lmdb=$dir/lmdb_bench
        echo "# lmdb: $(dpkg-query -W -f '${Version}' liblmdb-dev 2>/dev/null || echo built)"
    else
        echo "# lmdb: lmdb_bench.c did not build: $(head -n 3 "$dir/lmdb_bench.err")"
    fi
else
    echo "# lmdb: no LMDB headers (Debian: apt-get install liblmdb-dev): skipped"
fi

# --- the memory cap ---------------------------------------------------------------------
# A cgroup of our own, limited to $cap MiB (memory and swap alike), for
# one run at a time: capped CMD... runs CMD in it.
cg=
capped_note="uncapped: no memory cgroup could be made (needs root and cgroup v1 or v2)"
bytes=$((cap * 1048576))
if [ -d /sys/fs/cgroup/memory ] && mkdir "/sys/fs/cgroup/memory/kvdb-bench.$$" 2>/dev/null; then
    cg=/sys/fs/cgroup/memory/kvdb-bench.$$
    if echo "$bytes" >"$cg/memory.limit_in_bytes"; then
        [ -e "$cg/memory.memsw.limit_in_bytes" ] &&
            echo "$bytes" >"$cg/memory.memsw.limit_in_bytes"
        capped_note="capped: cgroup v1 memory.limit_in_bytes = $cap MiB"
    else
        rmdir "$cg"; cg=
    fi
elif [ -e /sys/fs/cgroup/cgroup.controllers ] &&
        grep -qw memory /sys/fs/cgroup/cgroup.controllers &&
        mkdir "/sys/fs/cgroup/kvdb-bench.$$" 2>/dev/null; then
    cg=/sys/fs/cgroup/kvdb-bench.$$
    if echo "$bytes" >"$cg/memory.max"; then
        [ -e "$cg/memory.swap.max" ] && echo 0 >"$cg/memory.swap.max"
        capped_note="capped: cgroup v2 memory.max = $cap MiB"
    else
        rmdir "$cg"; cg=
    fi
fi
echo "# $capped_note"
capped() {
    if [ -z "$cg" ]; then
        "$@"
        return
    fi
    # A subshell joins the cgroup, then becomes the command.
    (echo "$BASHPID" >"$cg/cgroup.procs" && exec "$@")
}

# run NAME CMD...: one run; its "bench ..." line goes to $dir/NAME.out.
# A run that fails is named in failed, and the script ends with status 1.
results=()
failed=()
run() {
    local name=$1
    shift
    echo "# $name: $*" >&2
    if ! "$@" >"$dir/$name.out" 2>"$dir/$name.err"; then
        echo "bench.sh: $name failed:" >&2
        cat "$dir/$name.err" >&2
        failed+=("$name")
        return 1
    fi
    [[ $name == *.r* ]] || results+=("$name")
    cat "$dir/$name.out"
}
val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" "$dir/$2.out"; }
# med FIELD ENGINE: the median of FIELD over the rounds (the value itself
# with one round)
med() {
    local r x
    for ((r = 1; r <= rounds; r++)); do
        x=; [ "$r" -gt 1 ] && x=".r$r"
        [ -e "$dir/$2$x.out" ] && val "$1" "$2$x"
    done | sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.0f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# --- the runs -------------------------------------------------------------------------------
common=(bench "$n" --lookups "$lookups" --commit-every "$every" --seed "$seed" \
    --threads 4)
sqc=("$n" --lookups "$lookups" --commit-every "$every" --seed "$seed" --threads 4)
# Capped: the engines' own caches get the cap less 4 MiB.
own=$((cap > 8 ? cap - 4 : cap / 2))
fcap=$((own * 1048576 / 8192))
# one ENGINE SUFFIX: one run of ENGINE (capped-bpool ... full-lmdb), its
# output in $dir/ENGINE$SUFFIX.out.  Uncapped, the pool and SQLite's
# cache are 100% of kvdb's file at its peak (f100, from round 1).
one() {
    local e=$1 x=$2
    # Each kvdb run from no file, not from the file the run before left:
    # kvdb bench refuses to recreate a file that is not a sound kvdb file,
    # such as one left by a run the cap killed while it made the file.
    case $e in *-bpool | *-pread) rm -f "$dir/kv.db" ;; esac
    case $e in
    capped-bpool) run "$e$x" capped "$kvdb" --frames "$fcap" "$dir/kv.db" "${common[@]}" ;;
    capped-pread) run "$e$x" capped "$kvdb" --io pread "$dir/kv.db" "${common[@]}" ;;
    capped-sqlite) [ -z "$sqlite" ] || run "$e$x" capped "$sqlite" "$dir/sq.db" \
        "${sqc[@]}" --cache-kb $((own * 1024)) ;;
    capped-lmdb) [ -z "$lmdb" ] || run "$e$x" capped "$lmdb" "$dir/lm.db" "${sqc[@]}" ;;
    full-bpool) run "$e$x" "$kvdb" --frames "$f100" "$dir/kv.db" "${common[@]}" ;;
    full-sqlite) [ -z "$sqlite" ] || run "$e$x" "$sqlite" "$dir/sq.db" "${sqc[@]}" \
        --cache-kb $((f100 * 8)) ;;
    full-lmdb) [ -z "$lmdb" ] || run "$e$x" "$lmdb" "$dir/lm.db" "${sqc[@]}" ;;
    esac
}
engines=(capped-bpool capped-pread capped-sqlite capped-lmdb full-bpool full-sqlite full-lmdb)
# failures: name the runs that failed and return 1, or return 0.
failures() {
    [ ${#failed[@]} -eq 0 ] && return 0
    echo "bench.sh: these runs failed: ${failed[*]}" >&2
    return 1
}
one capped-bpool "" || { failures; exit; }
data_mb=$(val file_mb capped-bpool)
peak_mb=$(val peak_mb capped-bpool)
f100=$(awk -v m="$peak_mb" 'BEGIN { printf "%d", m * 1048576 / 8192 + 1 }')
for e in "${engines[@]:1}"; do
    one "$e" ""
done
# Rounds 2..R: the engines again, in reverse order every other round, so
# that a disk drifting during the runs favours no engine (their outputs
# go to ENGINE.rN.out, for the table of ratios by round).
for ((r = 2; r <= rounds; r++)); do
    order=("${engines[@]}")
    if ((r % 2 == 0)); then
        order=()
        for ((i = ${#engines[@]} - 1; i >= 0; i--)); do order+=("${engines[i]}"); done
    fi
    for e in "${order[@]}"; do
        one "$e" ".r$r" >/dev/null
    done
done

# --- the table ----------------------------------------------------------------------------
echo
echo "data: $n keys, kvdb file $data_mb MiB ($peak_mb MiB at its peak); capped runs: ${capped_note%%:*}," \
    "$cap MiB a process; uncapped pools: $f100 frames" \
    "($(awk -v f="$f100" 'BEGIN { printf "%.1f", f * 8192 / 1048576 }') MiB)"
[ "$rounds" -gt 1 ] && echo "operations/s: the median of $rounds rounds; the rest from round 1"
echo
echo "| memory | engine | own cache | inserts/s | lookups/s | 2 threads | 4 threads | lookups/s, 16 per mget | page cache after inserts | page cache after lookups | file after close | file at its peak |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for r in "${results[@]}"; do
    case $r in
    capped-*) mem="${capped_note%%:*} $cap MiB" ;;
    full-*) mem="uncapped" ;;
    esac
    case ${r#*-} in
    pread) what="kvdb, pread/pwrite"; cache="none" ;;
    bpool) what="kvdb on bpool"; cache="$(val pool_mb "$r") MiB" ;;
    sqlite) what="SQLite"; cache="$(val pool_mb "$r") MiB" ;;
    lmdb) what="LMDB"; cache="none (mmap)" ;;
    esac
    mget=$(med mget_lookups_per_s "$r")
    live=$(val live_mb "$r")
    peak=$(val peak_mb "$r")
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s MiB | %s MiB | %s MiB%s | %s MiB |\n' "$mem" "$what" \
        "$cache" "$(med inserts_per_s "$r")" "$(med lookups_per_s "$r")" \
        "$(med lookups_per_s_t2 "$r")" "$(med lookups_per_s_t4 "$r")" "${mget:--}" \
        "$(val page_cache_mb_after_inserts "$r")" \
        "$(val page_cache_mb_after_lookups "$r")" "$(val file_mb "$r")" \
        "${live:+ ($live live)}" "${peak:--}"
done

# --- ratios by round (-r) -------------------------------------------------------------------
# kvdb on bpool over SQLite and over LMDB, inserts/s and 1-thread
# lookups/s, each round's engines against each other, then the median.
[ "$rounds" -gt 1 ] || { failures; exit; }
# ratio FIELD ENGINE_A ENGINE_B SUFFIX: A's FIELD over B's in one round
ratio() {
    local a b
    a=$(val "$1" "$2$4") b=$(val "$1" "$3$4")
    awk -v a="${a:-0}" -v b="${b:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "-" }'
}
median() { tr ' ' '\n' | grep -v '^-*$' | sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; else printf "-" }'; }
echo
echo "ratios of kvdb on bpool to the others, by round ($rounds rounds, engines in turn, reversed every other round):"
echo
echo "| round | inserts/s, capped: / SQLite | / LMDB | lookups/s, capped: / SQLite | / LMDB | lookups/s, uncapped: / SQLite | / LMDB |"
echo "|---|---:|---:|---:|---:|---:|---:|"
cols=("inserts_per_s capped-bpool capped-sqlite" "inserts_per_s capped-bpool capped-lmdb"
      "lookups_per_s capped-bpool capped-sqlite" "lookups_per_s capped-bpool capped-lmdb"
      "lookups_per_s full-bpool full-sqlite" "lookups_per_s full-bpool full-lmdb")
declare -a all
for ((r = 1; r <= rounds; r++)); do
    x=; [ "$r" -gt 1 ] && x=".r$r"
    line="| $r"
    for ((c = 0; c < ${#cols[@]}; c++)); do
        # shellcheck disable=SC2086
        v=$(ratio ${cols[c]} "$x")
        all[c]="${all[c]:-} $v"
        line+=" | $v"
    done
    echo "$line |"
done
line="| median"
for ((c = 0; c < ${#cols[@]}; c++)); do
    line+=" | $(echo "${all[c]}" | median)"
done
echo "$line |"
failures
