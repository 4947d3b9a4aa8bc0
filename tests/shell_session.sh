#!/bin/bash
# shell_session.sh - end-to-end test of tools/bpool-shell (an automake TESTS
# script: exit 0 pass, 1 fail, 77 skip, 99 hard error).
#
# Runs scripted sessions on a fresh data file and compares their output
# with the expected text: allocate, write, hexdump, writehex, flush, sync,
# stats; reopen in a new process and check the bytes survived (through the
# shell and in the raw file); then the error paths: unknown command, -k,
# page out of range, unbalanced quote, junk input, --help, bad option.
#
# Environment (exported by the harness, see Makefile.am): top_builddir
# (absolute build directory), srcdir; optional BPOOL_SHELL (the program)
# and BPOOL_TEST_TMPDIR (scratch directory on the build file system).

set -u

top_builddir=${top_builddir:-$(pwd)}
shell=${BPOOL_SHELL:-$top_builddir/tools/bpool-shell}
if [ ! -x "$shell" ]; then
    echo "FAIL: $shell not found or not executable (build it first)"
    exit 99
fi

# The data file must be on a file system with O_DIRECT: the build tree,
# never /tmp (may be tmpfs).
tmpbase=${BPOOL_TEST_TMPDIR:-$top_builddir}
mkdir -p "$tmpbase" || exit 99
work=$(mktemp -d "$tmpbase/shelltest.XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 99

failures=0
checks=0

pass() { checks=$((checks + 1)); echo "ok   $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL $*"; }

# run NAME EXPECTED_STATUS -- ARGS... < input
# Runs the shell, keeping stdout in NAME.out, stderr in NAME.err and the
# status in $status; checks the status.
run() {
    local name=$1 want=$2
    shift 3
    "$shell" "$@" >"$name.out" 2>"$name.err"
    status=$?
    if [ "$status" -eq "$want" ]; then
        pass "$name: exit status $status"
    else
        fail "$name: exit status $status, expected $want"
        echo "  --- stdout:"; sed 's/^/  /' "$name.out"
        echo "  --- stderr:"; sed 's/^/  /' "$name.err"
    fi
}

# same WHAT FILE EXPECTED_FILE: compare exactly, show the diff on failure.
same() {
    if diff -u "$3" "$2" >"$2.diff"; then
        pass "$1"
    else
        fail "$1"
        sed 's/^/  /' "$2.diff"
    fi
}

# has WHAT FILE REGEX: FILE has a line matching the extended REGEX.
has() {
    if grep -E -q -e "$3" "$2"; then
        pass "$1"
    else
        fail "$1: no line matching /$3/ in $2:"
        sed 's/^/  /' "$2"
    fi
}

echo "bpool-shell: $shell"
echo "work dir:    $work"

# ---------------------------------------------------------------------------
# 1. A session on a new file.
# ---------------------------------------------------------------------------
cat >s1.in <<'EOF'
# comments and blank lines are ignored

alloc 3
write 1 0 "hello, bpool\n"
hexdump 1
writehex 1 0x20 de ad be ef
writehex 1 36 0x0102 0304
read 1 0x20 8
pin 2 write; fill 2 0x41 0 5; pinned; unpin 2
read 2 0 16
flush 1
sync
stats
quit
info
EOF
run s1 0 -- --page-size 4096 --frames 16 test.data <s1.in
if [ "$status" -ne 0 ] && grep -q -e 'O_DIRECT' -e 'AIO' s1.err; then
    echo "SKIP: this file system or kernel cannot run bpool here:"
    sed 's/^/  /' s1.err
    exit 77
fi

cat >s1.exp <<'EOF'
allocated 3 pages: 0-2
wrote 13 bytes to page 1 at offset 0
00000000: 6865 6c6c 6f2c 2062 706f 6f6c 0a00 0000  hello, bpool....
00000010: 0000 0000 0000 0000 0000 0000 0000 0000  ................
*
00000ff0: 0000 0000 0000 0000 0000 0000 0000 0000  ................
wrote 4 bytes to page 1 at offset 32
wrote 4 bytes to page 1 at offset 36
00000020: dead beef 0102 0304                      ........
pinned page 2 for write
wrote 5 bytes to page 2 at offset 0
2 write
unpinned page 2
00000000: 4141 4141 4100 0000 0000 0000 0000 0000  AAAAA...........
flushed page 1
synced
EOF
stat_names='hits misses reads writes evictions evict_writes io_errors io_submits allocs nofree syncs dirty pinned resident hot cold nonresident cold_target hit_ratio'
sed '/^hits /,/^hit_ratio /d' s1.out >s1.main
same "session output (alloc, write, hexdump, writehex, read, pin, fill, flush, sync)" s1.main s1.exp
sed -n '/^hits /,/^hit_ratio /p' s1.out | cut -d' ' -f1 | tr '\n' ' ' | sed 's/ $//' >s1.names
echo "$stat_names" >s1.names.exp
printf '%s\n' "$(cat s1.names)" >s1.names.got
same "stats prints every bp_stats field in order, then hit_ratio" s1.names.got s1.names.exp
writes=$(awk '$1 == "writes" { print $2 }' s1.out)
if [ -n "$writes" ] && [ "$writes" -gt 0 ]; then
    pass "stats: writes = $writes > 0"
else
    fail "stats: writes = '$writes', expected > 0"
fi
has "stats: hit_ratio has four decimals" s1.out '^hit_ratio [01]\.[0-9]{4}$'
if [ ! -s s1.err ]; then pass "session: nothing on stderr"; else
    fail "session: stderr not empty:"; sed 's/^/  /' s1.err; fi
if grep -q '^file ' s1.out; then fail "commands after quit must not run"; else
    pass "commands after quit are not run"; fi

# ---------------------------------------------------------------------------
# 2. Reopen in a new process: the bytes survived.
# ---------------------------------------------------------------------------
run s2 0 -- --page-size 4096 -c "read 1 0 16; read 1 0x20 8; info" test.data </dev/null
cat >s2.exp <<'EOF'
00000000: 6865 6c6c 6f2c 2062 706f 6f6c 0a00 0000  hello, bpool....
00000020: dead beef 0102 0304                      ........
EOF
grep -v -E '^[a-z_]+ ' s2.out >s2.main
same "reopened: page 1 holds what was written" s2.main s2.exp
has "info: 3 pages" s2.out '^pages 3$'
has "info: page_size 4096" s2.out '^page_size 4096$'
for f in file frames queue_depth dio_mem_align dio_offset_align frame_align \
         align_source io_engine huge_pages; do
    has "info: has $f" s2.out "^$f "
done

size=$(stat -c %s test.data)
if [ "$size" -eq $((3 * 4096)) ]; then pass "file size is 3 pages ($size)"
else fail "file size is $size, expected $((3 * 4096))"; fi
od -A d -t x1 -j 4096 -N 16 test.data | head -1 >raw.out
echo "0004096 68 65 6c 6c 6f 2c 20 62 70 6f 6f 6c 0a 00 00 00" >raw.exp
same "raw file: page 1 bytes are on disk" raw.out raw.exp
od -A d -t x1 -j 8192 -N 8 test.data | head -1 >raw2.out
echo "0008192 41 41 41 41 41 00 00 00" >raw2.exp
same "raw file: page 2 bytes are on disk" raw2.out raw2.exp

# ---------------------------------------------------------------------------
# 3. Errors.
# ---------------------------------------------------------------------------
S=(--page-size 4096 test.data)

printf 'frobnicate 1 2\ninfo\n' >e1.in
run junk 1 -- "${S[@]}" <e1.in
has "unknown command: message" junk.err '^error: unknown command "frobnicate"$'
if [ ! -s junk.out ]; then pass "unknown command: stops at the first error"
else fail "unknown command: later commands ran:"; sed 's/^/  /' junk.out; fi

printf 'frobnicate\nalloc\nread 3 0 1\n' >e2.in
run keep_going 1 -- -k "${S[@]}" <e2.in
has "-k: the error is reported" keep_going.err '^error: unknown command'
cat >keep_going.exp <<'EOF'
allocated 1 page: 3
00000000: 00                                       .
EOF
same "-k: the commands after the error ran" keep_going.out keep_going.exp

run range 1 -- "${S[@]}" -c "read 99" </dev/null
cat >range.exp <<'EOF'
error: page 99 is out of range: page number beyond the end of the data file
  the file has 4 pages, numbered 0 to 3
  hint: add pages with: alloc [N]
EOF
same "page out of range: error names the range" range.err range.exp

run quote 1 -- "${S[@]}" -c 'write 1 0 "abc; read 1' </dev/null
has "unbalanced quote: error" quote.err '^error: unbalanced double quote'
if [ ! -s quote.out ]; then pass "unbalanced quote: nothing of the line ran"
else fail "unbalanced quote: something ran:"; sed 's/^/  /' quote.out; fi

run bignum 1 -- "${S[@]}" -c "read 1 99999999999999999999999999" </dev/null
has "huge number: error" bignum.err 'is too large'
run negnum 1 -- "${S[@]}" -c "fill 1 -1" </dev/null
has "negative number: error" negnum.err 'is not a number'
run span 1 -- "${S[@]}" -c "write 1 4090 01234567" </dev/null
has "write past the end of the page: error" span.err 'past the end of the page'
run usage 1 -- "${S[@]}" -c "write 1" </dev/null
has "missing argument: usage hint" usage.err '^  usage: write PAGE OFFSET TEXT$'
run readpin 1 -- "${S[@]}" -c "pin 1 read; write 1 0 x" </dev/null
has "write to a page pinned for read: refused" readpin.err 'pinned for read'

printf 'alloc \001\377\000junk\nread 1 0 "' >binary.in
head -c 200000 /dev/zero | tr '\0' 'x' >>binary.in
printf '\nwrite 1 0 "\\q"\nread\n' >>binary.in
head -c 100000 /dev/zero | tr '\0' 'y' >>binary.in
echo >>binary.in
run binary 1 -- -k "${S[@]}" <binary.in
n=$(grep -c '^error: ' binary.err)
if [ "$n" -eq 5 ]; then pass "binary junk and long lines: 5 errors, no crash"
else fail "binary junk: $n errors, expected 5:"; sed 's/^/  /' binary.err; fi

run file_script 1 -- "${S[@]}" -f /dev/stdin <<'EOF'
read 1 0 1
bogus
EOF
has "-f: errors carry FILE:LINE" file_script.err '^/dev/stdin:2: error: unknown command "bogus"$'

# ---------------------------------------------------------------------------
# 4. Options.
# ---------------------------------------------------------------------------
run help 0 -- --help </dev/null
for c in open close info alloc pin unpin pinned write writehex fill read \
         flush sync stats help quit; do
    has "--help lists $c" help.out "^  $c( |$)"
done
for o in --command --file --keep-going --frames --page-size --help --version; do
    has "--help lists $o" help.out -- "$o"
done
run version 0 -- --version </dev/null
has "--version" version.out '^bpool-shell \(bpool\) [0-9]+\.[0-9]+\.[0-9]+$'
run badopt 2 -- --bogus </dev/null
has "bad option: usage on stderr" badopt.err '^usage: bpool-shell'
run badframes 2 -- --frames lots </dev/null
run twofiles 2 -- a.data b.data </dev/null
if [ ! -e bpool.data ] && [ ! -e a.data ]; then
    pass "no data file created by --help or bad usage"
else
    fail "a data file was created by --help or bad usage"
fi

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ] || exit 1
exit 0
