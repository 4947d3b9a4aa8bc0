# SPDX-License-Identifier: MIT
# kvdb_lib.sh - shared by the tests/kvdb_*.sh scripts, which source it
# (it is not a test itself).
#
# It finds the kvdb program, makes a scratch directory on the build file
# system (O_DIRECT works there; /tmp may be tmpfs) and changes into it,
# skips the test (exit 77) where O_DIRECT does not work, and provides:
#
#   kv ARGS...          run kvdb with a time limit (status 124 if it hangs)
#   try NAME WANT ARGS...  run kvdb ARGS, stdout in ./out, stderr in ./err;
#                       pass if the exit status is WANT
#   has NAME FILE ERE   pass if FILE has a line matching ERE
#   pass/fail MSG       count a check
#   field KEY [FILE]    the number after "KEY " or "KEY=" in FILE (stdin)
#   pages ARGS...       pages in the file (kvdb ARGS stats)
#   finish              print the totals and exit 0 or 1
#   $san                none, asan or tsan: scripts scale their sizes down
#                       under sanitizers (KVDB_TEST_SAN, set by Makefile.am)
#
# Environment (exported by the harness, see Makefile.am): top_builddir,
# KVDB (the program), BPOOL_TEST_TMPDIR, KVDB_TEST_SAN (the sanitizer flags
# of the build), TSAN_OPTIONS; KVDB_TEST_TIMEOUT (seconds per command,
# default 300) may be set by hand.

set -u

top_builddir=${top_builddir:-$(pwd)}
kvdb=${KVDB:-$top_builddir/examples/kvdb/kvdb}
if [ ! -x "$kvdb" ]; then
    echo "FAIL: $kvdb not found or not executable (build it first)"
    exit 99
fi
tmpbase=${BPOOL_TEST_TMPDIR:-$top_builddir/tests/tmp}
mkdir -p "$tmpbase" || exit 99
work=$(mktemp -d "$tmpbase/kvdb.XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 99

case ${KVDB_TEST_SAN:-} in
*thread*) san=tsan ;;
*address*) san=asan ;;
*) san=none ;;
esac
# A latch belongs to a bpool frame, not to a page, and a page can be in a
# different frame each time it is read.  Latch coupling (parent, then
# child) therefore takes frame latches in no fixed order over a run, which
# ThreadSanitizer's lock-order check reports as a possible deadlock.  The
# tree's latch order (top-down) cannot cycle, so that check is off; data
# races are still reported, and every command runs under a time limit in
# case of a real deadlock.
if [ "$san" = tsan ]; then
    TSAN_OPTIONS=${TSAN_OPTIONS:+$TSAN_OPTIONS:}detect_deadlocks=0
    export TSAN_OPTIONS
fi
limit=${KVDB_TEST_TIMEOUT:-300}

failures=0
checks=0
pass() { checks=$((checks + 1)); echo "ok   $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL $*"; }

kv() { timeout -k 10 "$limit" "$kvdb" "$@"; }

# try NAME WANT ARGS...: status $st; out and err hold the output.
try() {
    local name=$1 want=$2
    shift 2
    kv "$@" >out 2>err
    st=$?
    if [ "$st" -eq "$want" ]; then
        pass "$name"
        return 0
    fi
    [ "$st" -eq 124 ] && name="$name: TIMED OUT after $limit s"
    fail "$name: exit status $st, wanted $want; stdout/stderr:"
    tail -n 5 out | sed 's/^/    /'
    head -n 20 err | sed 's/^/    /'
    return 1
}

# settle ARGS...: after a kill -9, wait (10 s at most) until the killed
# process no longer holds the file ARGS name (as "kvdb ARGS stats" takes
# it): its io_uring rings, if it ran on io_uring, keep the file and its
# lock until the kernel has torn them down, a moment after the process is
# gone (doc/errors.md, BP_ELOCKED).
settle() {
    local i
    for i in $(seq 1 100); do
        kv "$@" stats >/dev/null 2>err && return 0
        grep -q "in use by another pool" err || return 0
        sleep 0.1
    done
}

# has NAME FILE ERE
has() {
    if grep -E -q -- "$3" "$2"; then
        pass "$1"
    else
        fail "$1: no line matches /$3/ in:"
        head -n 20 "$2" | sed 's/^/    /'
    fi
}

# field KEY [FILE]: first number following "KEY " or "KEY=" in FILE
# (default: stdin).
field() {
    grep -E -o -- "$1[ =][0-9]+" ${2+"$2"} | head -n 1 | grep -E -o '[0-9]+$'
}

# pages FILE...: the number of pages in a kvdb file (kvdb stats).
pages() {
    kv "$@" stats 2>/dev/null | sed -n 's/.*: \([0-9]*\) pages of .*/\1/p'
}

finish() {
    echo "$checks checks, $failures failed"
    [ "$failures" -eq 0 ] && exit 0
    exit 1
}

# O_DIRECT: kvdb's pool needs it; tmpfs and some others refuse it.
kv probe.kvdb put k v >/dev/null 2>probe.err
probe=$?
if [ "$probe" -ne 0 ] && grep -q -i "O_DIRECT" probe.err; then
    echo "SKIP: no O_DIRECT in $work: $(cat probe.err)"
    exit 77
fi
if [ "$probe" -ne 0 ]; then
    echo "FAIL: kvdb cannot create a file in $work (status $probe):"
    cat probe.err
    exit 99
fi
rm -f probe.kvdb probe.err
