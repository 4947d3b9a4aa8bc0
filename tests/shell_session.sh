#!/bin/bash
# SPDX-License-Identifier: MIT
# shell_session.sh - end-to-end test of tools/bpool-shell (an automake TESTS
# script: exit 0 pass, 1 fail, 77 skip, 99 hard error).
#
# Runs scripted sessions on fresh data files and compares their output with
# the expected text:
#   1. a session: alloc, write, hexdump, writehex, fill, pin, flush, sync,
#      stats (every bp_stats field, hit ratio, the shell's pin latency);
#   2. reopen in a new process: the bytes survived (through the shell and
#      in the raw file); info shows every bp_info field;
#   3. error paths: unknown command, -k, out of range, quotes, huge and
#      negative numbers, binary bytes, long lines, -f FILE:LINE prefixes;
#   4. command-line options, --help, --version;
#   5. open's options, seen through info;
#   6. pins: read/write/scan, the pinned set, unpin lists;
#   7. fill patterns, page ranges, compare;
#   8. flush/sync/checkpoint, prefetch, stream (read streams), evict,
#      warm;
#   9. frames and clock on a small pool;
#  10. load and bench: exact counts where the policy makes them certain,
#      repeatable runs otherwise; holes counted in the range's own file,
#      after its doublewrite area;
#  11. signals: Ctrl-C cancels a command and ends a script (130), SIGTERM
#      closes the pool cleanly (143), end of input writes back, a closed
#      output pipe does not crash;
#  12. a fuzz loop: thousands of random and mutated command lines, run with
#      -k, must not crash the shell (exit status < 128) nor change the
#      pages no command named.
# (tests/shell_tty.sh drives a real terminal session through tmux.)
#
# Environment (exported by the harness, see Makefile.am): top_builddir
# (absolute build directory), srcdir; optional BPOOL_SHELL (the program)
# and BPOOL_TEST_TMPDIR (scratch directory on the build file system);
# SHELL_FUZZ_LINES (default 4000) and SHELL_FUZZ_SEED (default 1).

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

# lacks WHAT FILE REGEX: no line of FILE matches the extended REGEX.
lacks() {
    if grep -E -q -e "$3" "$2"; then
        fail "$1: a line matches /$3/ in $2:"
        sed 's/^/  /' "$2"
    else
        pass "$1"
    fi
}

# empty WHAT FILE: FILE is empty.
empty() {
    if [ ! -s "$2" ]; then pass "$1"; else
        fail "$1: not empty:"; sed 's/^/  /' "$2"; fi
}

# field FILE NAME: the value of a "NAME value" line.
field() { awk -v n="$2" '$1 == n { print $2; exit }' "$1"; }

# eq WHAT GOT WANT: the strings are equal.
eq() {
    if [ "$2" = "$3" ]; then pass "$1 ($2)"; else
        fail "$1: got '$2', expected '$3'"; fi
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
pinned page 2 for write (hit)
wrote 5 bytes to page 2 at offset 0
2 write
unpinned page 2
00000000: 4141 4141 4100 0000 0000 0000 0000 0000  AAAAA...........
flushed page 1
synced
EOF
stat_names='hits misses reads writes evictions evict_writes flusher_writes write_requests write_errors clean_waits throttle_waits prefetch_pages prefetch_hits prefetch_wasted readahead_windows io_errors io_submits allocs nofree syncs dirty pinned resident hot cold nonresident cold_target optimistic_reads optimistic_conflicts admissions miss_lock_wait_ns miss_lock_hold_ns miss_victim_writes miss_victim_write_ns miss_frame_waits miss_frame_wait_ns miss_reads miss_submit_ns miss_device_ns miss_read_waits miss_read_wait_ns warm_listed warm_done warm_pages resizes io_fixed_buffers io_fixed_files hit_ratio shell_pins shell_pin_us_min shell_pin_us_avg shell_pin_us_p50 shell_pin_us_p99 shell_pin_us_max'
sed '/^hits /,/^shell_pin_us_max /d' s1.out >s1.main
same "session output (alloc, write, hexdump, writehex, read, pin, fill, flush, sync)" s1.main s1.exp
sed -n '/^hits /,/^shell_pin_us_max /p' s1.out | cut -d' ' -f1 | tr '\n' ' ' | sed 's/ $//' >s1.names
echo "$stat_names" >s1.names.exp
printf '%s\n' "$(cat s1.names)" >s1.names.got
same "stats prints every bp_stats field in order, hit_ratio, pin latency" s1.names.got s1.names.exp
writes=$(field s1.out writes)
if [ -n "$writes" ] && [ "$writes" -gt 0 ]; then
    pass "stats: writes = $writes > 0"
else
    fail "stats: writes = '$writes', expected > 0"
fi
has "stats: hit_ratio has four decimals" s1.out '^hit_ratio [01]\.[0-9]{4}$'
# no pin yet: no ratio ("-", as every tool prints a ratio of no pins)
run s0 0 -- --page-size 4096 --frames 16 test.data -c "stats" </dev/null
has "stats before any pin: hit_ratio -" s0.out '^hit_ratio -$'
has "stats: latency in microseconds, two decimals" s1.out '^shell_pin_us_p99 [0-9]+\.[0-9]{2}$'
eq "stats: shell_pins counts the shell's pins" "$(field s1.out shell_pins)" 7
empty "session: nothing on stderr" s1.err
lacks "commands after quit are not run" s1.out '^file '

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
info_names='file page_size pages frames frames_max pool_bytes queue_depth aio_lanes dio_mem_align dio_offset_align frame_align align_source io_engine huge_pages flushers dirty_low dirty_high dirty_max coalesce_bytes checkpoint_rate readahead_min readahead_max checksums page_payload format_version file_id doublewrite_pages torn_repaired atomic_write_max atomic_writes files'
for f in $info_names; do
    has "info: has $f" s2.out "^$f "
done
has "info: file_id, the header's 16 bytes in hex" s2.out '^file_id [0-9a-f]{32}$'
if grep -q '^file_id 0\{32\}$' s2.out; then fail "info: file_id is all zeros for a file with a header"
else pass "info: file_id is not all zeros for a file with a header"; fi
has "info: one file" s2.out '^files 1$'

size=$(stat -c %s test.data)
if [ "$size" -eq $((4 * 4096)) ]; then pass "file size is a header page and 3 pages ($size)"
else fail "file size is $size, expected $((4 * 4096)): a header page and 3 pages"; fi
od -A d -t x1 -j $((2 * 4096)) -N 16 test.data | head -1 >raw.out
echo "0008192 68 65 6c 6c 6f 2c 20 62 70 6f 6f 6c 0a 00 00 00" >raw.exp
same "raw file: page 1 bytes are on disk" raw.out raw.exp
od -A d -t x1 -j $((3 * 4096)) -N 8 test.data | head -1 >raw2.out
echo "0012288 41 41 41 41 41 00 00 00" >raw2.exp
same "raw file: page 2 bytes are on disk" raw2.out raw2.exp

# ---------------------------------------------------------------------------
# 3. Errors.
# ---------------------------------------------------------------------------
S=(--page-size 4096 test.data)

printf 'frobnicate 1 2\ninfo\n' >e1.in
run junk 1 -- "${S[@]}" <e1.in
has "unknown command: message, near its line" junk.err '^near line 1: error: unknown command "frobnicate"$'
has "unknown command: a hint" junk.err '^  hint: "help" lists the commands$'
empty "unknown command: stops at the first error" junk.out

printf 'frobnicate\nalloc\nread 3 0 1\n' >e2.in
run keep_going 1 -- -k "${S[@]}" <e2.in
has "-k: the error is reported" keep_going.err '^near line 1: error: unknown command'
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
has "unbalanced quote: says nothing ran" quote.err 'nothing of this line was run'
empty "unbalanced quote: nothing of the line ran" quote.out

run bignum 1 -- "${S[@]}" -c "read 1 99999999999999999999999999" </dev/null
has "huge number: error" bignum.err 'is too large'
run bigpage 1 -- "${S[@]}" -c "read 18446744073709551616" </dev/null
has "page number above 2^64-1: error" bigpage.err 'is too large'
run negnum 1 -- "${S[@]}" -c "fill 1 -1" </dev/null
has "negative number: error" negnum.err 'is not a number'
run hexnum 1 -- "${S[@]}" -c "read 1 0x" </dev/null
has "0x without digits: error" hexnum.err 'is not a number'
run span 1 -- "${S[@]}" -c "write 1 4090 01234567" </dev/null
has "write past the end of the page: error" span.err 'past the end of the page'
run span2 1 -- "${S[@]}" -c "read 1 4000 200" </dev/null
has "read past the end of the page: says how many fit" span2.err 'at most 96 fit'
run usage 1 -- "${S[@]}" -c "write 1" </dev/null
has "missing argument: usage hint" usage.err '^  usage: write PAGE OFFSET TEXT$'
run toomany 1 -- "${S[@]}" -c "sync now" </dev/null
has "too many arguments: error" toomany.err '^error: sync: too many arguments$'
run readpin 1 -- "${S[@]}" -c "pin 1 read; write 1 0 x" </dev/null
has "write to a page pinned for read: refused" readpin.err 'pinned for read'
has "write to a page pinned for read: the fix" readpin.err 'pin 1 write'
run badesc 1 -- "${S[@]}" -c 'write 1 0 "\q"' </dev/null
has "unknown escape: error" badesc.err 'unknown escape'
run badhex 1 -- "${S[@]}" -c 'writehex 1 0 dex' </dev/null
has "odd hex digits: error" badhex.err 'is not hex bytes'
run nopool 1 -- "${S[@]}" -c 'close; info' </dev/null
has "no pool: error and the fix" nopool.err '^  hint: open one with: open FILE \[create\]$'
run badopen 1 -- "${S[@]}" -c 'open missing.data; info' </dev/null
has "open of a missing file: error" badopen.err '^error: cannot open missing.data: No such file'
has "open of a missing file: the fix" badopen.err 'open FILE create'
lacks "open of a missing file: the open pool stays open" badopen.out '^closed'
if [ ! -e missing.data ]; then pass "open without create: no file made"; else
    fail "open without create made missing.data"; fi

printf 'alloc \001\377\000junk\nread 1 0 "' >binary.in
head -c 200000 /dev/zero | tr '\0' 'x' >>binary.in
printf '\nwrite 1 0 "\\q"\nread\n' >>binary.in
head -c 100000 /dev/zero | tr '\0' 'y' >>binary.in
echo >>binary.in
run binary 1 -- -k "${S[@]}" <binary.in
n=$(grep -E -c '^near line [0-9]+: error: ' binary.err)
if [ "$n" -eq 5 ]; then pass "binary junk and long lines: 5 errors, no crash"
else fail "binary junk: $n errors, expected 5:"; sed 's/^/  /' binary.err; fi
has "binary bytes are shown escaped" binary.err '"\\x01\\xff\\x00junk"'

# A line longer than 1 MiB is skipped, not run, and the next one runs.
{ printf 'write 1 0 '; head -c 1100000 /dev/zero | tr '\0' 'z'; printf '\nread 1 0 4\n'; } >long.in
run longline 1 -- -k "${S[@]}" <long.in
has "line over 1 MiB: error" longline.err '^near line 1: error: line 1 is longer than 1048576 bytes; it was skipped$'
has "line over 1 MiB: the next line runs" longline.out '^00000000: 6865 6c6c'

run file_script 1 -- "${S[@]}" -f /dev/stdin <<'EOF'
read 1 0 1
bogus
EOF
has "-f: errors carry FILE:LINE" file_script.err '^/dev/stdin:2: error: unknown command "bogus"$'
printf 'read 1 0 1\n# a comment\n\nbogus\nread 1 0 1\n' >named.txt
run file_named 1 -- "${S[@]}" -f named.txt </dev/null
has "-f FILE: the error names the file and line (blank and comment lines count)" \
    file_named.err '^named.txt:4: error: unknown command "bogus"$'
run piped_line 1 -- "${S[@]}" <named.txt
has "piped script: the error names the line" piped_line.err \
    '^near line 4: error: unknown command "bogus"$'
run nofile 1 -- "${S[@]}" -f no-such-script </dev/null
has "-f of a missing script: error" nofile.err '^error: cannot read script no-such-script'
# Found before the data file is touched: a new one is not created.
run nofile_new 1 -- --page-size 4096 fresh-nofile.data -f no-such-script </dev/null
has "-f of a missing script, new file: error" nofile_new.err '^error: cannot read script no-such-script'
[ ! -e fresh-nofile.data ] && pass "-f of a missing script: the data file was not created" ||
    fail "-f of a missing script created the data file"
mkdir -p a-dir
run dirscript 1 -- "${S[@]}" -f a-dir </dev/null
has "-f of a directory: error" dirscript.err '^error: cannot read script a-dir: Is a directory'

run mixed 0 -- "${S[@]}" -c "read 1 0 2" -f /dev/stdin -c "read 1 2 2" <<'EOF'
read 1 4 2
EOF
cat >mixed.exp <<'EOF'
00000000: 6865                                     he
00000004: 6f2c                                     o,
00000002: 6c6c                                     ll
EOF
same "-c and -f run in command-line order" mixed.out mixed.exp

# bpool-shell(1)'s "run a script on another file": the file is the
# operand, made when missing, and the scripts run on its pool; no
# ./bpool.data is made next to it (an "open" in the script came after
# the shell had made that one).
mkdir -p example && (
    cd example || exit 1
    printf 'alloc\nwritehex 0 0x10 de ad be ef\npin 0 write\nfill 0 0xff 0 4\nunpin 0\nsync\nstats\n' >session.bp
    "$shell" -k --frames 16 -f session.bp test.data >../example.out 2>../example.err
) </dev/null
eq "the manual's script example: exit status" "$?" 0
has "the manual's script example: the script ran on its pool" example.out '^synced$'
[ -s example/test.data ] && [ ! -e example/bpool.data ] &&
    pass "the manual's script example: test.data made, no bpool.data" ||
    fail "the manual's script example: files $(ls example)"

# bpool-shell(1)'s pipe example, on a new file: the pages are allocated
# before the load (without, "load: the file has no pages" and nothing).
rm -f example/data.bp
ratio=$(cd example && printf 'alloc 1000\nload random 1000\nstats\n' |
        "$shell" data.bp 2>../pipe.err | awk '$1 == "hit_ratio"')
[[ $ratio =~ ^hit_ratio\ [01]\.[0-9]{4}$ ]] &&
    pass "the manual's pipe example: '$ratio'" ||
    fail "the manual's pipe example: '$ratio' $(cat pipe.err)"

# Many files in one pool: attach, FILE:PAGE, alloc file=, files, detach.
rm -f mf.data
run mf 0 -- "${S[@]}" -c "attach mf.data create; alloc 2 file=1; write 1:1 0 hello; read 1:1 0 5; files; pin 1:0; pinned; unpin 1:0; detach 1; files; read 1 0 5" </dev/null
has "attach: says the file number" mf.out '^attached mf.data as file 1 \(0 pages\)'
has "alloc file=1: pages of file 1" mf.out '^allocated 2 pages: 1:0-1$'
has "write FILE:PAGE" mf.out '^wrote 5 bytes to page 1:1 at offset 0$'
has "read FILE:PAGE: the bytes" mf.out '^00000000: 6865 6c6c 6f +hello$'
has "files: file 0" mf.out '^ +0 +4 +[0-9]+ +[0-9]+ +test.data$'
has "files: file 1, 2 pages" mf.out '^ +1 +2 +2 +[0-9]+ +mf.data$'
has "pin FILE:PAGE, pinned lists it so" mf.out '^1:0 read$'
has "detach" mf.out '^detached file 1: written back, synced and closed$'
eq "files after detach: file 0 alone" "$(grep -cE '^ +[0-9]+ +[0-9]+ ' mf.out)" 3
has "file 0's pages unchanged" mf.out '^00000000: 6865 6c6c 6f +hello$'
eq "mf.data: a header page and 2 pages" "$(stat -c %s mf.data)" $((3 * 4096))
od -A d -t x1 -j $((2 * 4096)) -N 5 mf.data | head -1 >mf_raw.out
echo "0008192 68 65 6c 6c 6f" >mf_raw.exp
same "detach wrote file 1's page 1 to mf.data" mf_raw.out mf_raw.exp
# A range of another file's pages is printed F:A-B, which the shell takes
# back, and F:A-F:B is read too; a range with ends in two files is not.
rm -f mfr.data
run mfr 1 -- -k "${S[@]}" -c "attach mfr.data create; alloc 3 file=1; prefetch 1:0-2; read 1:0-2 0 1; read 1:0-1:2 0 1; read 0-1:2" </dev/null
has "alloc file=1: the range with one prefix" mfr.out '^allocated 3 pages: 1:0-2$'
has "prefetch: the range with one prefix" mfr.out '^prefetch: queued pages 1:0-2 \(3 pages\)$'
eq "F:A-B and F:A-F:B both read 3 pages" "$(grep -c '^page 1:[0-2]:$' mfr.out)" 6
has "a range over two files: refused, naming them" mfr.err \
    '^error: page "0-1:2": the first page is in file 0 and the last in file 1; '
# clock names a page of another file as every other command does (F:PAGE),
# in the list as under the hands.
rm -f mfc.data
run mfc 0 -- "${S[@]}" -c "attach mfc.data create; alloc 2 file=1; read 1:1 0 1; clock" </dev/null
has "clock: a page of file 1 listed as 1:1" mfc.out '^ +[0-9]+ +1:1 +[0-9]+  (hot|cold|cold-test) '
eq "clock: no raw page id of file 1" "$(grep -cE '^ +[0-9]+ +[0-9]{6,} ' mfc.out)" 0
run mf_nofile 1 -- "${S[@]}" -c "read 7:0" </dev/null
has "a page of no attached file: error" mf_nofile.err '^error: page 7:0: no file 7 is attached'
run tr 0 -- "${S[@]}" -c "alloc 8; write 6 0 gone; truncate 5; info; alloc; read 5 0 4" </dev/null
has "truncate: what was cut" tr.out '^file 0: 5 pages, [0-9]+ cut off$'
has "truncate: the next page allocated is the first cut" tr.out 'allocated 1 page: 5$'
run tr_pinned 1 -- "${S[@]}" -c "pin 2; truncate 1" </dev/null
has "truncate past a pinned page: error" tr_pinned.err 'this shell holds page 2 pinned'
run tr_grow 1 -- "${S[@]}" -c "truncate 999999" </dev/null
has "truncate that would grow: the library's detail" tr_grow.err 'a cut only shrinks'
# A count or an option given twice is refused, not the last one taken
# ("truncate 5 3" cut the file to 3 pages), and nothing is done.
pages_before=$("$shell" "${S[@]}" -c "info" </dev/null | awk '$1 == "pages" { print $2 }')
run tr_twice 1 -- "${S[@]}" -c "truncate 5 3" </dev/null
has "truncate N N: refused" tr_twice.err '^error: "3": the page count is given twice$'
eq "truncate N N: the file as it was" \
    "$("$shell" "${S[@]}" -c "info" </dev/null | awk '$1 == "pages" { print $2 }')" "$pages_before"
run twice_opts 1 -- "${S[@]}" -k -c "alloc 1 2; alloc file=0 file=1; load seq 5 range=0-1 range=2-3; stream 0 depth=1 depth=2; open test.data frames=8 frames=9" </dev/null
eq "options given twice: each refused" \
    "$(grep -cE '^error: (load: |stream: |open: )?"[^"]+": (the (count|file number) is|that option is) given twice$' twice_opts.err)" 5
# Without file 0: info says so ("file -"), and load names the cause.
run mf_nofile0 1 -- "${S[@]}" -k -c "attach mf.data; detach 0; info; load seq; load seq 2 range=1:0-1" </dev/null
eq "info after detach 0: file -" "$(field mf_nofile0.out file)" -
has "load after detach 0: no file 0" mf_nofile0.err 'load: no file 0 is attached'
has "load of file 1's pages after detach 0" mf_nofile0.out '^load seq: 2 pins of pages 1:0-1 '
run mf_pinned 1 -- "${S[@]}" -c "attach mf.data; pin 1:0; detach 1" </dev/null
has "detach of a file with a page pinned: error" mf_pinned.err 'this shell holds page 1:0 pinned'
run mf_prefix 1 -- "${S[@]}" -c "read :3" </dev/null
has "FILE:PAGE without FILE: error" mf_prefix.err "put a file number before ':'"
# attach makes a missing file only when asked, as open does, whatever
# flags the pool was opened with (the shell's first pool has BP_CREATE:
# a typo made a new file).
rm -f typo.data at1.data at2.data
run at_typo 1 -- "${S[@]}" -c "attach typo.data" </dev/null
has "attach of a missing file: error" at_typo.err '^error: cannot attach typo.data: No such file or directory$'
has "attach of a missing file: the fix" at_typo.err 'hint: attach FILE create makes a new one'
[ ! -e typo.data ] && pass "attach of a missing file: no file made" ||
    fail "attach typo.data made the file"
run at_create 0 -- "${S[@]}" -c "attach at1.data create; open test.data; attach at2.data create; alloc file=1" </dev/null
has "attach create, pool with BP_CREATE: made" at_create.out '^attached at1.data as file 1 \(0 pages\)'
has "attach create, pool without it: made" at_create.out '^attached at2.data as file 1 \(0 pages\)'
eq "at2.data: a header page and the page allocated" "$(stat -c %s at2.data)" $((2 * 4096))
run at_bad 1 -- -k "${S[@]}" -c "attach at1.data bogus; attach at1.data create create" </dev/null
eq "attach with a bad option: 2 errors" "$(grep -c '^error: ' at_bad.err)" 2
# Hints fit the case: a file to be made whose directory is missing (open
# and attach with create, dump) needs the directory, not "create"; the
# pool's own file attached again needs no other pool closed; a file
# opened otherwise than it was made needs noheader or checksums.
run hints 1 -- -k "${S[@]}" -c "attach no-dir/a.data create; dump no-dir/d.dump; attach test.data; attach ./test.data; open no-dir/x.data create" </dev/null
eq "a missing directory: the hint says so, 3 times" \
    "$(grep -c '^  hint: its directory does not exist: make it first' hints.err)" 3
lacks "a missing directory: no hint to create the file" hints.err 'to create it: open FILE create'
eq "attach of the pool's own file: the hint names its number, twice" \
    "$(grep -c "^  hint: it is this pool's file 0 already: name its pages 0:PAGE$" hints.err)" 2
head -c 16384 /dev/zero >nohdr.bin
run hint_fmt 1 -- -k "${S[@]}" -c "open nohdr.bin; open test.data checksums" </dev/null
eq "a file opened otherwise than made: the hint names noheader and checksums" \
    "$(grep -c '^  hint: open it as it was made: a file without a header with --no-header (open FILE noheader), one with page checksums with --checksums' hint_fmt.err)" 1
# A file made without checksums that open asks to have them: refused
# before the open pool is closed, saying so.
has "open checksums of a file made without: refused, why" hint_fmt.err 'test.data was made without page checksums \(its header says so\)'
has "and the fix" hint_fmt.err '^  hint: leave checksums out to open it as it was made'
# A file made with them is opened so, at the start and by open, without
# the option; --no-checksums on it is a usage error.
run ck_make 0 -- --page-size 4096 --checksums ck.data -c "alloc 2" </dev/null
run ck_take 0 -- --page-size 4096 ck.data -c "info; open ck.data; info" </dev/null
eq "a file made with checksums: opened with them, twice" \
    "$(grep -c '^checksums 1$' ck_take.out)" 2
# ... but for itself only: a new file open makes is made as the command
# line says (without), not as the first file was.
run ck_new 0 -- ck.data -c "open cknew.data create; info" </dev/null
has "a new file after it: without checksums" ck_new.out '^checksums 0$'
run ck_no 2 -- --no-checksums ck.data -c "info" </dev/null
has "--no-checksums on a file made with them: usage error" ck_no.err 'ck.data was made with page checksums \(its header says so\), and --no-checksums says without'
# A file with a header whose length is not whole pages needs checking,
# not another page size (which the header fixes); a read-only open of a
# doublewrite file whose creation stopped before its area was laid out
# needs one writable open, not a backup.
cp test.data odd.data && printf 'abc' >>odd.data
run hint_size 1 -- -c info odd.data </dev/null
has "a header file of odd length: check it, no page size" hint_size.err \
    '^  hint: its length is not whole pages after its header; no option opens it'
lacks "a header file of odd length: no --page-size" hint_size.err 'hint: give the page size'
rm -f cut-dw.data
run mk_dw 0 -- --doublewrite -c info cut-dw.data </dev/null
truncate -s "$(head -c 20 cut-dw.data | od -An -tu4 -j16 -N4 | tr -d ' ')" cut-dw.data
run hint_cut 1 -- --read-only -c info cut-dw.data </dev/null
has "a creation cut short, read-only: open it writable once" hint_cut.err \
    '^  hint: open it once without --read-only, which finishes its creation'
# A bare page number is a page of file 0: one of 2^36 or more (the id of
# a page of another file: 68719476739 is 1:3) is refused, naming F:PAGE;
# a range ending there stays in its file.  stream names pages F:PAGE.
rm -f ids.data
run ids 1 -- -k "${S[@]}" -c "attach ids.data create; alloc 4 file=1; read 68719476739 0 1; pin 68719476736; prefetch 68719476736-68719476739; stream 1:0-100; stream 2-68719476739; read 1:3 0 1" </dev/null
eq "bare page numbers of 2^36 and more: 3 errors" "$(grep -c '^error: ' ids.err)" 3
has "a bare page number of 2^36 or more: the F:PAGE syntax named" ids.err \
    '^error: page "68719476739": a file.s pages are numbered below 2\^36 \(68719476736\); a page of another file of the pool is F:PAGE'
has "stream of another file's pages: F:PAGE" ids.out '^stream 1:0-3 \(read, depth [0-9]+\): 4 pages, .*; clipped to the end of the file$'
has "a bare range past 2^36: clipped to file 0's end" ids.out '^stream 2-[0-9]+ \(read, depth [0-9]+\): [0-9]+ pages, .*; clipped to the end of the file$'
eq "page 1:3 read once, as 1:3" "$(grep -c '^00000000: 00 ' ids.out)" 1

# Online resize: poolmax= reserves, resize grows and shrinks, info shows
# both counts; a pinned page in a leaving frame, a size beyond the reserve.
rm -f rs.data
run rs 0 -- "${S[@]}" -c "open rs.data create frames=8 poolmax=256K; info; alloc 2; write 1 0 xx; resize 128K; info; read 1 0 2; resize 32K; info; read 1 0 2" </dev/null
has "info: the reserve" rs.out '^frames_max 64$'
has "resize up" rs.out '^resized: 8 -> 32 frames \(131072 bytes\) in [0-9.]+ s$'
has "resize down" rs.out '^resized: 32 -> 8 frames \(32768 bytes\) in [0-9.]+ s$'
eq "info: frames after each resize" "$(grep -E '^frames [0-9]+$' rs.out | tr '\n' ' ')" "frames 8 frames 32 frames 8 "
eq "the page survives both" "$(grep -c '^00000000: 7878 ' rs.out)" 2
run rs_big 1 -- "${S[@]}" -c "open rs.data create frames=8 poolmax=256K; resize 1M" </dev/null
has "resize beyond the reserve: error naming the range" rs_big.err 'this pool takes 4 to 64 frames'
has "resize beyond the reserve: hint" rs_big.err 'poolmax=SIZE'
run rs_small 1 -- "${S[@]}" -c "open rs.data create frames=8 poolmax=256K; resize 8K" </dev/null
has "resize below 4 frames: the bound and a size that is enough" rs_small.err \
    '^  hint: a pool has at least 4 frames: resize 16384 or more$'
lacks "resize below 4 frames: no reserve named" rs_small.err 'poolmax'
run rs_open 1 -- "${S[@]}" -c "open rs.data create frames=8 poolmax=16K" </dev/null
has "poolmax below the pool: error" rs_open.err 'poolmax=16384 bytes is below the pool'

# ---------------------------------------------------------------------------
# 4. Options.
# ---------------------------------------------------------------------------
all_cmds='open close info alloc pin unpin pinned write writehex fill read compare flush sync checkpoint prefetch attach detach truncate files resize dump warm stream evict stats frames clock load bench help quit'
run help 0 -- --help </dev/null
for c in $all_cmds; do
    has "--help lists $c" help.out "^  $c( |$)"
done
for o in --command --file --keep-going --no-create --frames --pool-size \
         --page-size --flushers --no-flush --no-readahead --queue-depth \
         --checkpoint-rate --pool-max --io-engine --no-fixed-buffers --help \
         --version; do
    has "--help lists $o" help.out -- "$o"
done
has "--help tells the exit statuses" help.out 'Exit status'
run helpcmds 0 -- "${S[@]}" -c "help" </dev/null
for c in $all_cmds; do
    has "help lists $c" helpcmds.out "^  $c( |$)"
done
for c in $all_cmds hexdump cmp exit; do
    run "help_$c" 0 -- "${S[@]}" -c "help $c" </dev/null
    has "help $c: usage line" "help_$c.out" '^usage: '
done
# Every option open takes is in its usage line, checksums too.
has "--help: open's usage has checksums" help.out '^  open FILE .*\[checksums\]'
has "help open: the usage has checksums" help_open.out '^usage: open FILE .*\[checksums\]'
has "help open: checksums explained" help_open.out '^  checksums '
# help open says what bpool-shell(1) says of SIZE and rate=.
has "help open: SIZE takes a T suffix too" help_open.out 'SIZE takes K, M, G or T suffixes'
has "help open: rate=0 is no limit" help_open.out '^  rate=N .*\(0: no limit\)$'
run helpbad 1 -- "${S[@]}" -c "help nope" </dev/null
has "help of an unknown command: error" helpbad.err 'help: unknown command "nope"'
run version 0 -- --version </dev/null
has "--version" version.out '^bpool-shell \(bpool\) [0-9]+\.[0-9]+\.[0-9]+$'
has "--version tells about line editing" version.out '^line editing: (libedit|none)$'
run badopt 2 -- --bogus </dev/null
has "bad option: one line names it" badopt.err "^bpool-shell: unknown option or missing value: '--bogus'$"
has "bad option: then where to read more" badopt.err "^Try 'bpool-shell --help' for more information.$"
eq "bad option: two lines on stderr" "$(wc -l <badopt.err)" 2
run badframes 2 -- --frames lots </dev/null
has "bad --frames: error" badframes.err "^bpool-shell: --frames 'lots': not a number: want a whole number from 4 to 2147483647$"
run badpool 2 -- --frames 8 --pool-size 1M </dev/null
has "--frames with --pool-size: error" badpool.err 'not both'
run badflushers 2 -- --flushers 99 </dev/null
run twofiles 2 -- a.data b.data </dev/null
if [ ! -e bpool.data ] && [ ! -e a.data ]; then
    pass "no data file created by --help or bad usage"
else
    fail "a data file was created by --help or bad usage"
fi
# The engine options reach bp_open: --io-engine picks the engine, and
# --no-fixed-buffers keeps io_uring's requests off registered buffers
# (where io_uring can be had: auto names the engine it took).
run engine_auto 0 -- --io-engine auto engine.data -c "alloc 64" -c "info" </dev/null
# Registered buffers need sparse tables (Linux 5.19) and locked memory
# (CAP_IPC_LOCK here: under RLIMIT_MEMLOCK, tests run at once share it);
# registered files Linux 6.4.
kernel=$(uname -r)
kmajor=${kernel%%.*}
kminor=${kernel#*.}
kminor=${kminor%%[!0-9]*}
capeff=$(awk '/^CapEff:/ { print $2 }' /proc/self/status)
if [ -n "$capeff" ] && (( (16#$capeff >> 14) & 1 )) &&
   { [ "$kmajor" -gt 5 ] || { [ "$kmajor" -eq 5 ] && [ "$kminor" -ge 19 ]; }; }; then
    want_buffers='[1-9][0-9]*'
else
    want_buffers='[0-9]+'
fi
if [ "$kmajor" -gt 6 ] || { [ "$kmajor" -eq 6 ] && [ "$kminor" -ge 4 ]; }; then
    want_files='[1-9][0-9]*'
else
    want_files='0'
fi
if grep -q '^io_engine io_uring' engine_auto.out; then
    run engine_uring 0 -- --io-engine io_uring --frames 16 engine.data \
        -c "info" -c "read 40" -c "stats" </dev/null
    has "--io-engine io_uring: the engine" engine_uring.out '^io_engine io_uring\+O_DIRECT$'
    has "--io-engine io_uring: reads with registered buffers" engine_uring.out "^io_fixed_buffers $want_buffers\$"
    has "--io-engine io_uring: reads with the registered file" engine_uring.out "^io_fixed_files $want_files\$"
    run engine_nofixed 0 -- --io-engine io_uring --no-fixed-buffers --frames 16 \
        engine.data -c "read 41" -c "stats" </dev/null
    has "--no-fixed-buffers: none with registered buffers" engine_nofixed.out '^io_fixed_buffers 0$'
    has "--no-fixed-buffers: the file still registered" engine_nofixed.out "^io_fixed_files $want_files\$"
fi
run engine_libaio 0 -- --io-engine libaio engine.data -c "info" </dev/null
has "--io-engine libaio: the engine" engine_libaio.out '^io_engine libaio\+O_DIRECT$'
# An engine that cannot be had: the hint follows the library's detail
# (a bpool built without liburing, a kernel that refuses io_uring), not
# the aio-max-nr advice, which fits a libaio context refused for that
# limit; the same with the engine from BPOOL_IO_ENGINE.  (Where io_uring
# can be had, nothing to check.)
if ! "$shell" --io-engine io_uring engine.data -c "info" >engine_nouring.out \
        2>engine_nouring.err </dev/null; then
    if grep -q 'built without liburing' engine_nouring.err; then
        want_hint='^  hint: this bpool has no io_uring engine: use --io-engine libaio or auto, or rebuild bpool with liburing-dev installed$'
    else
        want_hint='^  hint: use --io-engine libaio, or auto to fall back to it where io_uring cannot be had$'
    fi
    has "--io-engine io_uring, none here: the hint fits the detail" \
        engine_nouring.err "$want_hint"
    lacks "--io-engine io_uring, none here: no aio-max-nr advice" \
        engine_nouring.err 'aio-max-nr'
    BPOOL_IO_ENGINE=io_uring "$shell" engine.data -c "info" >engine_nouring_env.out \
        2>engine_nouring_env.err </dev/null
    has "BPOOL_IO_ENGINE=io_uring, none here: the hint fits the detail" \
        engine_nouring_env.err "$want_hint"
    lacks "BPOOL_IO_ENGINE=io_uring, none here: no aio-max-nr advice" \
        engine_nouring_env.err 'aio-max-nr'
else
    echo "note: io_uring can be had here; the hints of an engine that cannot are left out"
fi
run nocreate 1 -- --no-create nothere.data -c "info" </dev/null
has "--no-create: a missing file is an error" nocreate.err 'No such file'
has "--no-create: the fix is the command line's" nocreate.err \
    '^  hint: drop --no-create to create it, or name a file that exists$'
lacks "--no-create: no fix of a command's" nocreate.err 'open FILE create'
if [ ! -e nothere.data ]; then pass "--no-create: no file made"; else
    fail "--no-create made the file"; fi
run cmdline_opts 0 -- --page-size 4k --pool-size 64k --no-flush \
    --no-readahead --queue-depth 8 --checkpoint-rate 500 o1.data -c info </dev/null
eq "--pool-size 64k: 16 frames" "$(field cmdline_opts.out frames)" 16
eq "--page-size 4k" "$(field cmdline_opts.out page_size)" 4096
eq "--no-flush: 0 flushers" "$(field cmdline_opts.out flushers)" 0
eq "--no-readahead: readahead_max 0" "$(field cmdline_opts.out readahead_max)" 0
eq "--checkpoint-rate 500" "$(field cmdline_opts.out checkpoint_rate)" 500
qd=$(field cmdline_opts.out queue_depth)
if [ -n "$qd" ] && [ "$qd" -ge 1 ] && [ "$qd" -le 8 ]; then
    pass "--queue-depth 8: granted $qd"
else fail "--queue-depth 8: queue_depth '$qd'"; fi
# --read-only: reads work, every command that changes pages fails with the
# reason and the fix, the file is untouched, a missing file is not made.
has "--help lists --read-only" help.out -- "--read-only"
cp test.data ro.data
sum_before=$(cksum <ro.data)
run readonly 1 -- --page-size 4096 --read-only -k ro.data -c "read 1 0 5; \
    write 1 0 x; alloc; pin 2 write; flush; sync; checkpoint; load seq 3 write; info" </dev/null
has "--read-only: pages are read" readonly.out '^00000000: 6865 6c6c 6f'
has "--read-only: write refused" readonly.err '^error: cannot pin page 1 for write: Read-only file system$'
has "--read-only: alloc refused" readonly.err '^error: cannot allocate .*Read-only file system$'
has "--read-only: the detail says why" readonly.err 'is read-only \(BP_RDONLY\)'
has "--read-only: the hint says what to do" readonly.err 'start the shell without it'
has "--read-only: sync succeeds" readonly.out '^synced$'
has "--read-only: a load that pins nothing has no hit ratio" readonly.out '^load seq: 0 pins .* hit ratio -, '
eq "--read-only: no flushers" "$(field readonly.out flushers)" 0
eq "--read-only: the file is unchanged" "$(cksum <ro.data)" "$sum_before"
run pswrong 2 -- --page-size 8192 ro.data -c "info" </dev/null
has "--page-size other than the header's: a usage error naming the file's" pswrong.err 'has pages of 4096 bytes .*give --page-size 4096'
# A header that records no page size a pool takes: the open's error (the
# start-up check of --pool against it divided by it: SIGFPE).
{ printf 'bpoolpg\n'; head -c 24568 /dev/zero; } >zerops.data
run zerops 1 -- --pool 1M zerops.data -c "info" </dev/null
has "a header with page size 0: the open names it damaged" zerops.err 'is damaged'
has "a damaged header: the hint fits" zerops.err 'hint: no option opens it'
run dwold 1 -- --page-size 4096 --doublewrite ro.data -c "info" </dev/null
has "--doublewrite on a file made without: the hint fits" dwold.err 'hint: open it without --doublewrite'
# --pool-max below the pool's size of the library's default: a usage error
# naming the pool's size, before the file is made (it was bp_open's
# refusal, exit 1), not a hint to use more frames.
run pmax 2 -- --pool-max 8K pmax.data -c "info" </dev/null
has "--pool-max below the default pool: a usage error naming the pool" pmax.err '^bpool-shell: --pool-max 8192 is below the pool.s 67108864 bytes \(8192 frames of 8192 bytes\)'
lacks "--pool-max below the default pool: no hint to use more frames" pmax.err 'use at least 4 frames'
if [ ! -e pmax.data ]; then pass "--pool-max below the pool: no file made"; else
    fail "--pool-max below the pool made the file"; fi
run ronew 1 -- --read-only ronew.data -c "info" </dev/null
has "--read-only on a missing file: the hint fits" ronew.err 'a read-only session opens only a file that exists'
if [ ! -e ronew.data ]; then pass "--read-only: no file made"; else
    fail "--read-only made the file"; fi

# ---------------------------------------------------------------------------
# 5. open's options.
# ---------------------------------------------------------------------------
run open_opts 0 -- "${S[@]}" </dev/null -c \
    "open o2.data create pagesize=8k frames=6 flushers=2 rate=100; info; close; open o2.data pagesize=8k pool=1M noflush noreadahead; info"
has "open create: opened message" open_opts.out '^opened o2.data: 0 pages of 8192 bytes, 6 frames$'
has "open: closes the open pool first" open_opts.out '^closed test.data$'
has "open pool=1M: 128 frames" open_opts.out '^opened o2.data: 0 pages of 8192 bytes, 128 frames$'
has "open flushers=2" open_opts.out '^flushers 2$'
has "open rate=100" open_opts.out '^checkpoint_rate 100$'
has "open noflush: flushers 0" open_opts.out '^flushers 0$'
has "open noreadahead: readahead_min 0" open_opts.out '^readahead_min 0$'
has "close: says so" open_opts.out '^closed o2.data$'
run open_excl 1 -- "${S[@]}" -c "open o2.data excl" </dev/null
has "open excl of an existing file: error" open_excl.err 'cannot create o2.data: File exists'
run open_bad 1 -- -k "${S[@]}" </dev/null -c \
    "open o2.data frames=2; open o2.data frames=8 pool=1M; open o2.data pagesize=3000; open o2.data bogus; open o2.data flushers=99; open . ; open \"\""
has "open frames=2: invalid pool size" open_bad.err 'cannot open o2.data: invalid pool size'
has "open frames= and pool=: error" open_bad.err 'give frames=N or pool=SIZE, not both'
has "open pagesize=3000: invalid page size" open_bad.err 'invalid page size'
has "open bogus option: error" open_bad.err 'unknown option "bogus"'
has "open flushers=99: too large" open_bad.err 'flushers "99" is too large \(at most 16\)'
has "open of a directory: error" open_bad.err 'cannot open .: Is a directory'
has "open of an empty name: error" open_bad.err 'bad file name'
# A name with a NUL byte would be cut there (and name another file): open,
# attach, dump and warm refuse it alike.
rm -f nm
run names 1 -- -k "${S[@]}" </dev/null -c 'open "nm\0a" create; attach "nm\0b"; dump "nm\0c"; warm "nm\0d"; attach ""'
eq "names with a NUL byte: 5 errors" "$(grep -c '^error: [a-z]*: bad file name "nm\\x00[a-d]" (it must not be empty nor hold a NUL byte)$\|^error: attach: bad file name ""' names.err)" 5
[ ! -e nm ] && pass "names with a NUL byte: the name before it not used" ||
    fail "a name with a NUL byte made the file nm"
# Sizes the library would refuse leave the open pool open.
run open_keeps 1 -- -k "${S[@]}" </dev/null -c "pin 1; open o2.data frames=2; open o2.data pool=1K pagesize=4K; pinned"
has "open frames=2 with a pool open: error" open_keeps.err 'cannot open o2.data: invalid pool size'
has "open pool=1K: too small" open_keeps.err 'pool=1024 bytes is too small'
# Without a page size anywhere, a new file's is the default (8K): a pool
# of 16K is 2 frames, refused before the open pool is closed.
run open_keeps8 1 -- -k test.data </dev/null -c "pin 1; open o3.data create pool=16K; pinned"
has "open of a new file, pool=16K: 2 of its 8K pages, too small" open_keeps8.err 'pool=16384 bytes is too small: a pool has at least 4 frames \(32768 bytes of 8192-byte pages\)'
has "open of a new file, pool=16K: the pool stays open" open_keeps8.out '^1 '
has "and the pool stays open, its page pinned" open_keeps.out '^1 '
# So do the other options bp_open would refuse: a queue deeper than its
# 65536 (the shell took up to 2^32 - 1, closed the pool, then failed), a
# poolmax below the pool, flags that contradict each other.
run open_keeps2 1 -- -k "${S[@]}" </dev/null -c "pin 1; open o2.data queue=100000; open o2.data frames=8 poolmax=16K; open o2.data pool=1M poolmax=512K; open o2.data noheader doublewrite; open o2.data pagesize=4k; pinned"
has "open queue=100000: too deep" open_keeps2.err 'queue depth "100000" is too large \(at most 65536\)'
has "open poolmax= below frames=" open_keeps2.err 'poolmax=16384 bytes is below the pool'
has "open poolmax= below pool=" open_keeps2.err 'poolmax=524288 bytes is below the pool'
has "open noheader doublewrite: refused" open_keeps2.err 'doublewrite with noheader'
has "open pagesize= not the file's: refused" open_keeps2.err 'o2.data has pages of 8192 bytes \(its header says so\), not 4096'
has "and says which to give" open_keeps2.err 'hint: open it with pagesize=8192'
lacks "none of them closed the pool" open_keeps2.out '^closed '
has "and the pool stays open, its page pinned" open_keeps2.out '^1 '
run open_ro 1 -- -k --read-only "${S[@]}" </dev/null -c "open o2.data create; open new.data excl; info"
has "open create in a read-only session: refused" open_ro.err 'open: create: a read-only pool cannot create its file'
has "open excl in a read-only session: refused" open_ro.err 'open: excl: a read-only pool cannot create its file'
has "and the pool stays open" open_ro.out '^file test.data$'
run open_size 1 -- "${S[@]}" -c "open test.data pagesize=64k" </dev/null
has "open with the wrong page size: error" open_size.err 'cannot open test.data'

# ---------------------------------------------------------------------------
# 6. Pins.
# ---------------------------------------------------------------------------
P=(--page-size 4096 --frames 8 --no-readahead --no-flush pins.data)
run pins 0 -- "${P[@]}" </dev/null -c \
    "alloc 6; pin 1; pin 2 write; pin 3 read scan; pin 4 scan write; pinned; unpin 2 4; pinned; unpin all; pinned; unpin all"
cat >pins.exp <<'EOF'
allocated 6 pages: 0-5
pinned page 1 for read (hit)
pinned page 2 for write (hit)
pinned page 3 for read as a scan (hit)
pinned page 4 for write as a scan (hit)
1 read
2 write
3 read scan
4 write scan
unpinned page 2
unpinned page 4
1 read
3 read scan
unpinned 2 pages
no pinned pages
unpinned 0 pages
EOF
same "pin read/write/scan, pinned, unpin PAGE..., unpin all" pins.out pins.exp
run pinmiss 1 -- "${P[@]}" -c "pin 5; pin 5 read" -k </dev/null
has "pin of a page not in memory: a miss" pinmiss.out '^pinned page 5 for read \(miss\)$'
has "pinning a page twice: error" pinmiss.err 'already pinned for read'
run unpinbad 1 -- "${P[@]}" -c "pin 1; unpin 1 2" </dev/null
has "unpin of a page not pinned: error" unpinbad.err 'page 2 is not pinned by this shell'
lacks "unpin with a bad page unpins nothing" unpinbad.out '^unpinned'
run pinbad 1 -- -k "${P[@]}" -c "pin 1 bogus; pin 1 write write; pin 99; pin x" </dev/null
n=$(grep -c '^error: ' pinbad.err)
eq "pin with bad arguments: 4 errors" "$n" 4
# The shell keeps at most 64 pins.  (ThreadSanitizer's deadlock detector
# stops at 64 locks held by one thread: 64 latches plus a mutex is more,
# so it is turned off for this run.)
cmds="alloc 70"; for i in $(seq 0 64); do cmds="$cmds; pin $i"; done
TSAN_OPTIONS="${TSAN_OPTIONS:-}${TSAN_OPTIONS:+:}detect_deadlocks=0" \
    run pinmax 1 -- --page-size 4096 --frames 80 pinmax.data -c "$cmds" </dev/null
has "65th pin: refused" pinmax.err 'the shell keeps at most 64 pages pinned'
run nofree 1 -- --page-size 4096 --frames 4 pins.data -c "pin 0; pin 1; pin 2; pin 3; pin 4" </dev/null
has "more pins than frames: no frame error" nofree.err 'no frame can be freed'
has "more pins than frames: the fix" nofree.err 'unpin pages'

# ---------------------------------------------------------------------------
# 7. Fill patterns, page ranges, compare.
# ---------------------------------------------------------------------------
run fills 0 -- "${P[@]}" </dev/null -c \
    'fill 1 0xdeadbeef 0 10; fill 2 text:"ab c" 4 10; fill 3 seq; fill 4 65 16 3; read 1 0 16; read 2 0 16; read 3 0xf0 32; read 4 0 32; read 1-2 0 4; read 1+2 0 2'
cat >fills.exp <<'EOF'
wrote 10 bytes to page 1 at offset 0
wrote 10 bytes to page 2 at offset 4
wrote 4096 bytes to page 3 at offset 0
wrote 3 bytes to page 4 at offset 16
00000000: dead beef dead beef dead 0000 0000 0000  ................
00000000: 0000 0000 6162 2063 6162 2063 6162 0000  ....ab cab cab..
000000f0: f0f1 f2f3 f4f5 f6f7 f8f9 fafb fcfd feff  ................
00000100: 0001 0203 0405 0607 0809 0a0b 0c0d 0e0f  ................
00000000: 0000 0000 0000 0000 0000 0000 0000 0000  ................
00000010: 4141 4100 0000 0000 0000 0000 0000 0000  AAA.............
page 1:
00000000: dead beef                                ....
page 2:
00000000: 0000 0000                                ....
page 1:
00000000: dead                                     ..
page 2:
00000000: 0000                                     ..
EOF
same "fill BYTE / 0xHEX / text: / seq, read of a page range" fills.out fills.exp
run fillbad 1 -- -k "${P[@]}" </dev/null -c \
    'fill 1 256; fill 1 0xzzzz; fill 1 text:; fill 1 7 4096; fill 1 7 4000 97; fill 1 7 0 0; read 0-99; read 5-1'
n=$(grep -c '^error: ' fillbad.err)
eq "fill and read with bad arguments: 8 errors" "$n" 8
has "fill byte 256: too large" fillbad.err 'fill byte "256" is too large \(at most 255\)'
has "read of a page range past the end: error" fillbad.err 'page 99 is out of range'

run cmp 0 -- "${P[@]}" -c "compare 1 2; compare 5 0; cmp 1 1; compare 1 2 32 16" </dev/null
cat >cmp.exp <<'EOF'
pages 1 and 2 differ in 14 bytes on 1 line, the first at offset 0 (0x0)
< 00000000: dead beef dead beef dead 0000 0000 0000  ................
> 00000000: 0000 0000 6162 2063 6162 2063 6162 0000  ....ab cab cab..
pages 5 and 0 are equal (4096 bytes from offset 0)
pages 1 and 1 are the same page
pages 1 and 2 are equal (16 bytes from offset 32)
EOF
same "compare: differences, equal pages, ranges" cmp.out cmp.exp
run cmpmany 0 -- "${P[@]}" -c "compare 3 0" </dev/null
has "compare: counts the differing bytes" cmpmany.out '^pages 3 and 0 differ in 4080 bytes on 256 lines, the first at offset 1 \(0x1\)$'
has "compare: shows at most 16 lines" cmpmany.out '^\(240 more lines differ'

# ---------------------------------------------------------------------------
# 8. flush, sync, checkpoint, prefetch, evict.
# ---------------------------------------------------------------------------
run wb 0 -- "${P[@]}" </dev/null -c \
    "write 5 0 a; flush 5; flush 5; write 5 1 b; flush all; write 5 2 c; checkpoint; checkpoint; pin 5 write; write 5 3 d; flush all; unpin 5; sync"
cat >wb.exp <<'EOF'
wrote 1 byte to page 5 at offset 0
flushed page 5
page 5 is clean or not in memory: nothing to write
wrote 1 byte to page 5 at offset 1
flushed 1 page
wrote 1 byte to page 5 at offset 2
checkpoint: wrote 1 page, synced
checkpoint: wrote 0 pages, synced
pinned page 5 for write (hit)
wrote 1 byte to page 5 at offset 3
flushed 0 pages
note: 1 page pinned for write by this shell was not written (unpin it, then run it again)
unpinned page 5
synced
EOF
same "flush PAGE, flush all, checkpoint, sync (with a write pin)" wb.out wb.exp
# sync and checkpoint of a page the shell holds for write and changed:
# the library refuses (EDEADLK) rather than call it durable.
for c in sync checkpoint; do
    run "wb$c" 1 -- "${P[@]}" </dev/null -c "pin 5 write; write 5 4 e; $c"
    has "$c with a dirty write pin: the page and the fix" "wb$c.err" \
        'page 5 of .* is dirty and held for write by the calling thread'
    has "$c with a dirty write pin: the shell's hint" "wb$c.err" \
        'hint: this shell holds the page for write: unpin it first'
done
od -A n -c -j $((6 * 4096)) -N 4 pins.data | tr -d ' ' >wb.raw
eq "flushed bytes are on disk" "$(cat wb.raw)" abcd
run flushpin 1 -- "${P[@]}" -c "pin 5 write; flush 5" </dev/null
has "flush of a page pinned for write: refused with the fix" flushpin.err 'hint: unpin it first: unpin 5'

run pf 0 -- "${P[@]}" </dev/null -c \
    "stats reset; prefetch 0-3 wait; frames; prefetch 2+2 scan; prefetch 5-99 wait; stats"
has "prefetch: queued pages" pf.out '^prefetch: queued pages 0-3 \(4 pages\)$'
has "prefetch wait: all resident" pf.out '^prefetch: 4 of 4 pages resident$'
has "prefetch FIRST+COUNT scan" pf.out '^prefetch: queued pages 2-3 \(2 pages\), as a scan$'
has "prefetch clipped to the end of the file" pf.out '^prefetch: queued page 5, clipped to the end of the file$'
has "frames after prefetch: prefetched state" pf.out '^ +[0-9]+ +0 +0  no +prefetched '
pp=$(field pf.out prefetch_pages)
if [ -n "$pp" ] && [ "$pp" -ge 4 ]; then pass "stats: prefetch_pages $pp >= 4"
else fail "stats: prefetch_pages '$pp', expected >= 4"; fi
# A range that ends at the largest number is clipped to the end of the
# file (it once did nothing, "(0 pages)": its count wrapped to 0; the
# parser now caps a range's end at the largest page of a file, and the
# commands clip that to the file's pages).
run pfmax 0 -- "${P[@]}" -c "prefetch 0-18446744073709551615 wait; stream 0-18446744073709551615; prefetch 2+18446744073709551614" </dev/null
has "prefetch 0-2^64-1: the file's pages, clipped" pfmax.out '^prefetch: queued pages 0-5 \(6 pages\), clipped to the end of the file$'
has "prefetch 0-2^64-1 wait: they arrive" pfmax.out '^prefetch: [1-6] of 6 pages resident'
has "stream 0-2^64-1: the file's pages, clipped" pfmax.out '^stream 0-5 \(read, depth [0-9]+\): 6 pages, 0 errors, .*; clipped to the end of the file$'
has "prefetch FIRST+COUNT to 2^64-1: clipped" pfmax.out '^prefetch: queued pages 2-5 \(4 pages\), clipped to the end of the file$'
run pfbad 1 -- -k "${P[@]}" -c "prefetch 99; prefetch 1 bogus; prefetch 5-2" </dev/null
n=$(grep -c '^error: ' pfbad.err)
eq "prefetch with bad arguments: 3 errors" "$n" 3

# stream: 40 pages written back and evicted, read by a stream (64 frames:
# depth at most 8), then again (all hits), then past the end (clipped).
ST=(--page-size 4096 --frames 64 --no-readahead --no-flush st.data)
run st0 0 -- "${ST[@]}" -c "alloc 40; load seq 40 write; sync" </dev/null
run st 0 -- "${ST[@]}" </dev/null -c \
    "stream 0-39 depth=8; stream 0-39; stream 30-99 scan; stream 0+4 json"
has "stream: every page read by the stream" st.out \
    '^stream 0-39 \(read, depth 8\): 40 pages, 0 errors, 0\.16 MiB in [0-9.]+ ms, [0-9.]+ MiB/s; [0-9]+ requests?, 0 hits, 40 reads$'
req=$(sed -n 's/^stream 0-39 (read, depth 8): 40 pages.*; \([0-9]*\) requests\{0,1\}, 0 hits.*/\1/p' st.out)
if [ -n "$req" ] && [ "$req" -ge 1 ] && [ "$req" -le 40 ]; then
    pass "stream: 40 pages in $req requests (1 to 40)"
else fail "stream: requests '$req', expected 1 to 40"; fi
has "stream again: all hits, no reads" st.out \
    '^stream 0-39 \(read, depth 8\): 40 pages, 0 errors, 0\.16 MiB in [0-9.]+ ms, [0-9.]+ MiB/s; 0 requests, 40 hits, 0 reads$'
has "stream scan, clipped to the end of the file" st.out \
    '^stream 30-39 \(read, scan, depth 8\): 10 pages, 0 errors, .*; 0 requests, 10 hits, 0 reads; clipped to the end of the file$'
has "stream json: the tools' header and the counts" st.out \
    '^\{"tool":"bpool-shell",.*"options":\{[^{}]*"first":0,"last":3,[^{}]*\},"command":"stream","first":0,"last":3,"pages":4,"errors":0,"page_size":4096,"elapsed_s":[0-9.]+,"mib_s":[0-9.]+,"requests":0,"hits":4,"reads":0,.*"interrupted":false\}$'
eq "stream: pages unpinned" "$("$shell" "${ST[@]}" -c "stream 0-39; stats" </dev/null | awk '$1 == "pinned" { print $2 }')" 0
# A page that fails its checksum is shown and the stream goes on.
run stk0 0 -- --page-size 4096 --frames 64 --no-readahead --checksums stk.data \
    -c "alloc 6; write 0 0 a; write 1 0 b; write 2 0 c; write 3 0 d; write 4 0 e; write 5 0 f; sync" </dev/null
printf 'XXXX' | dd of=stk.data bs=1 seek=$((3 * 4096 + 100)) conv=notrunc status=none
run stk 1 -- --page-size 4096 --frames 64 --no-readahead --checksums stk.data \
    -c "stream 0-5" </dev/null
has "stream over a corrupt page: the other pages are read" stk.out \
    '^stream 0-5 \(read, depth 8\): 6 pages, 1 error, 0\.02 MiB in [0-9.]+ ms, [0-9.]+ MiB/s; [0-9]+ requests?, 0 hits, 5 reads$'
has "stream over a corrupt page: its error" stk.err '^error: stream: page 2 failed: page checksum mismatch'
has "stream over a corrupt page: the command fails" stk.err '^error: stream: 1 of 6 pages failed$'
run stbad 1 -- -k "${ST[@]}" </dev/null -c \
    "stream; stream 99; stream 5-2; stream 1 depth=0; stream 1 depth=2000; stream 1 bogus; pin 3 write; stream 0-5"
n=$(grep -c '^error: ' stbad.err)
eq "stream with bad arguments: 7 errors" "$n" 7
has "stream over a page the shell holds for write: refused" stbad.err \
    '^error: stream: page 3 is pinned for write by this shell'

# --doublewrite: a new file gets the area (bpool-shell once ignored it).
run dwn 0 -- --page-size 4096 --frames 16 --doublewrite dw.data -c \
    "alloc 2; write 1 0 x; flush all; info" </dev/null
has "--doublewrite: the new file has an area" dwn.out '^doublewrite_pages 256$'
has "--doublewrite: format version 2" dwn.out '^format_version 2$'
has "info: atomic_writes" dwn.out '^atomic_writes [01]$'
run dwa 0 -- --page-size 4096 --frames 16 --doublewrite --atomic dw.data -c "info" </dev/null
has "--atomic: accepted" dwa.out '^atomic_writes [01]$'
run dwo 0 -- --page-size 4096 --frames 16 x.data -c \
    "open dwo.data create doublewrite atomic frames=16; info" </dev/null
has "open ... doublewrite: the new file has an area" dwo.out '^doublewrite_pages 256$'

cat >ev.exp <<'EOF'
pinned page 0 for read (miss)
evicted 0 pages; kept 1 pinned, dirty or under I/O (unpin all, flush all, then evict again)
unpinned page 0
evicted page 0
page 0 is not in memory: nothing to evict
00000000: de                                       .
wrote 1 byte to page 2 at offset 0
flushed page 2
evicted page 2
pinned page 3 for read (miss)
evicted 1 page; kept 1 pinned, dirty or under I/O (unpin all, flush all, then evict again)
unpinned page 3
evicted 1 page
EOF
# "evict 2" of a dirty page fails: run the rest with -k and check both.
run ev 1 -- -k "${P[@]}" </dev/null -c \
    "pin 0; evict 0-5; unpin 0; evict 0; evict 0; read 1 0 1; write 2 0 x; evict 2; flush 2; evict 2; pin 3; evict all; unpin 3; evict all"
same "evict PAGE / range / all; pinned and dirty pages are kept" ev.out ev.exp
has "evict of a dirty page: error" ev.err 'cannot evict page 2: Device or resource busy'
has "evict of a dirty page: the fix" ev.err 'flush PAGE'
run evpin 1 -- "${P[@]}" -c "pin 1; evict 1" </dev/null
has "evict of a page the shell holds: the fix" evpin.err 'hint: unpin it first: unpin 1'
run evclip 0 -- "${P[@]}" -c "read 1 0 1; evict 1-999999" </dev/null
has "evict of a range past the end: clipped, and said so" evclip.out \
    '^evicted 1 page \(the range clipped to the end of the file\)$'

# warm ... wait says how many pages this warm read (warm_pages counts
# every warm's since open): all at first, none when all are resident, then
# those evicted since.
run wm1 0 -- --page-size 4096 wm.data -c "alloc 20; dump wm.dump" </dev/null
run wm 0 -- wm.data -c "warm wm.dump wait; warm wm.dump wait; evict 0-4; warm wm.dump wait" </dev/null
eq "warm wait: the pages each warm read" \
    "$(sed -n 's/^warm: done in [0-9.]* s: //p' wm.out | tr '\n' ,)" \
    "20 pages read, 20 resident,0 pages read, 20 resident,5 pages read, 20 resident,"

# ---------------------------------------------------------------------------
# 9. frames and clock on a small pool.
# ---------------------------------------------------------------------------
F=(--page-size 4096 --frames 4 --no-readahead --no-flush fr.data)
run fr0 0 -- "${F[@]}" -c "alloc 6" </dev/null
run fr 0 -- "${F[@]}" </dev/null -c \
    "pin 0; pin 1 write; pin 2 scan; write 1 0 x; frames all; frames; clock; unpin all; load seq 6; clock; clock summary"
# frame, page, pins, dirty, state are certain; the clock column is the
# policy's and is checked for being one of its words.
awk '/^ frame /,/^4 frames/' fr.out | sed -n '1,6p' | awk '{ print $1, $2, $3, $4, $5 }' >fr.cols
cat >fr.cols.exp <<'EOF'
frame page pins dirty state
0 0 1 no valid
1 1 1 yes valid
2 2 1 no valid
3 - 0 no free
4 frames: 3 in use,
EOF
same "frames all: frame, page, pins, dirty, state" fr.cols fr.cols.exp
has "frames all: summary" fr.out '^4 frames: 3 in use, 1 free; 1 dirty, 3 pinned, 0 under I/O, 0 prefetched$'
has "frames: free frames left out, and said so" fr.out '^4 frames: 3 in use, 1 free; .*\(free frames not shown: frames all\)$'
bad=$(awk '/^ +[0-9]+ +([0-9]+|-) +[0-9]+  (yes|no) / { if ($6 !~ /^(hot|cold|cold-test|free)$/ || $7 !~ /^[01]$/) print }' fr.out)
eq "frames: clock column is hot/cold/cold-test/free, ref 0/1" "$bad" ""
has "frames: a scan pin is cold with no test period" fr.out '^ +2 +2 +1  no +valid +cold +0$'
has "clock: header" fr.out '^  pos     page  frame  status       ref  hands$'
has "clock: hot hand marked" fr.out '<- hot'
has "clock: cold hand marked" fr.out '<- (hot )?cold'
has "clock: test hand marked after evictions" fr.out '<- (hot )?(cold )?test'
has "clock: a non-resident page" fr.out '^ +[0-9]+ +[0-9]+ +-  nonresident  -'
has "clock: summary with m_c" fr.out '^clock: [0-9]+ hot, [0-9]+ cold, [0-9]+ nonresident, [0-9]+ free frames?; m_c [0-9]+ \(min [0-9]+, max [0-9]+\)$'
has "clock: where the hands are" fr.out '^hands: hot (at page [0-9]+|-), cold (at page [0-9]+|-), test (at page [0-9]+|-)$'
# The counts of the last full listing match its lines.
awk '/^  pos /{ h = c = n = 0; next } /^ +[0-9]+ +[0-9]+ +([0-9]+|-)  / { if ($4 == "hot") h++; else if ($4 == "nonresident") n++; else c++ } /^clock: / { print h, c, n, "/", $2, $4, $6; exit }' <(sed -n '/^unpinned 3 pages/,$p' fr.out) >fr.counts
read -r h c n _ sh sc sn <fr.counts
eq "clock: hot count matches the list" "$h" "$sh"
eq "clock: cold count matches the list" "$c" "$sc"
eq "clock: nonresident count matches the list" "$n" "$sn"
run frbad 1 -- -k "${F[@]}" -c "frames x; clock x" </dev/null
n=$(grep -c '^error: ' frbad.err)
eq "frames/clock with bad arguments: 2 errors" "$n" 2

# ---------------------------------------------------------------------------
# 10. load and bench.
# ---------------------------------------------------------------------------
L=(--page-size 4096 --frames 8 --no-readahead --no-flush ld.data)
run ld0 0 -- "${L[@]}" -c "alloc 40" </dev/null
# A scan of a fresh pool misses on every pin; after "evict all" a loop
# over 3 pages misses 3 times, then hits.
run ld1 0 -- "${L[@]}" -c "load seq; evict all; load loop 30 window=3; load seq 8 range=0-2 write" </dev/null
cat >ld1.exp <<'EOF'
load seq: 40 pins of pages 0-39 (read): 0 hits, 40 misses, hit ratio 0.0000, 32 evictions
evicted 8 pages
load loop: 30 pins of pages 0-2 (read): 27 hits, 3 misses, hit ratio 0.9000, 0 evictions
load seq: 8 pins of pages 0-2 (write): 8 hits, 0 misses, hit ratio 1.0000, 0 evictions
EOF
same "load seq / loop / range / write: exact counts" ld1.out ld1.exp
has "load over pages never written: a note says they are holes" ld1.err \
    '^note: 40 of the 40 pages are holes in ld.data \(allocated, never written back\)'
run ldwrite 0 -- --page-size 4096 --frames 8 --no-readahead --no-flush ldw.data \
    -c "alloc 40; load seq 40 write; flush all; sync" </dev/null
run ldwritten 0 -- --page-size 4096 --frames 8 --no-readahead --no-flush ldw.data \
    -c "load seq" </dev/null
has "load over written pages: the load line" ldwritten.out '^load seq: 40 pins of pages 0-39 \(read\): 0 hits, 40 misses'
lacks "load over written pages: no note about holes" ldwritten.err 'holes'
# Holes are looked for in the range's own file, after its header page and
# doublewrite area: they were counted in file 0 at a page id's offset
# (for an attached file's pages) and in the doublewrite area (page 0 is
# after it), and the JSON options named file 0 and the page id.
run ldattached 0 -- --page-size 4096 --frames 8 --no-readahead --no-flush ldw.data \
    -c "attach lda.data create; alloc 10 file=1; load seq 10 range=1:0-9 write; flush all; sync; load seq range=1:0-9 json" </dev/null
has "load of an attached file's pages: JSON names its file and page numbers" \
    ldattached.out '"options":\{"file":"lda.data","pattern":"seq","n":null,"first":0,"last":9,'
has "load of an attached file's written pages: no holes" ldattached.out '"hole_pages":0,'
run lddw 0 -- --page-size 4096 --frames 8 --no-readahead --no-flush --doublewrite lddw.data \
    -c "alloc 40; load seq 40 write; flush all; sync; load seq json" </dev/null
has "load over written pages after a doublewrite area: no holes" lddw.out '"hole_pages":0,'
run lddwholes 0 -- --page-size 4096 --frames 8 --no-readahead --no-flush --doublewrite \
    lddw2.data -c "alloc 40; load seq" </dev/null
has "load over pages never written after a doublewrite area: 40 holes" lddwholes.err \
    '^note: 40 of the 40 pages are holes in lddw2.data '

# The 40 pages after the header page: still zeros.
cmp -s <(tail -c +$((4096 + 1)) ld.data) <(head -c $((40 * 4096)) /dev/zero) && pass "load write: bytes unchanged" || fail "load write changed the file"
for p in random zipf; do
    run "ld_$p" 0 -- "${L[@]}" -c "load $p 500 seed=7; load $p 200 theta=1.2 range=5+20 scan" </dev/null
    run "ld_${p}2" 0 -- "${L[@]}" -c "load $p 500 seed=7; load $p 200 theta=1.2 range=5+20 scan" </dev/null
    same "load $p: a seeded run repeats" "ld_${p}2.out" "ld_$p.out"
    has "load $p: result line" "ld_$p.out" "^load $p: 500 pins of pages 0-39 \(read\): [0-9]+ hits?, [0-9]+ miss(es)?, hit ratio [01]\.[0-9]{4}, [0-9]+ evictions?$"
    has "load $p scan: range and scan" "ld_$p.out" "^load $p: 200 pins of pages 5-24 \(read, scan\): "
done
run ld_default 0 -- "${L[@]}" -c "load loop" </dev/null
has "load loop: default window is frames + frames/4 (10), 3 rounds" ld_default.out '^load loop: 30 pins of pages 0-9 '
h1=$(awk '/^load zipf: 500/ { print $9 }' ld_zipf.out)
h2=$(awk '/^load random: 500/ { print $9 }' ld_random.out)
if [ -n "$h1" ] && [ -n "$h2" ] && [ "$h1" -gt "$h2" ]; then
    pass "zipf hits more than random on the same pool ($h1 > $h2)"
else fail "zipf hits '$h1', random hits '$h2'"; fi
run bench 0 -- "${L[@]}" -c "bench zipf 300; stats" </dev/null
has "bench: load line" bench.out '^bench zipf: 300 pins of pages 0-39 \(read\): '
has "bench: timing and latency" bench.out '^bench: [0-9.]+ ms, [0-9]+ pins/s; pin latency us: p50 [0-9.]+, p90 [0-9.]+, p99 [0-9.]+, max [0-9.]+$'
if awk '/^bench: / { if (!($8 + 0 <= $10 + 0 && $10 + 0 <= $12 + 0 && $12 + 0 <= $14 + 0)) bad = 1; n++ }
        END { exit !(n == 1 && !bad) }' FS='[ ,]+' bench.out; then
    pass "bench: p50 <= p90 <= p99 <= max (tools/common's histogram)"
else fail "bench: percentiles out of order: $(grep '^bench: ' bench.out)"; fi
eq "bench: the shell's pins counted in stats" "$(field bench.out shell_pins)" 300
run benchjson 0 -- "${L[@]}" -c "bench zipf 300 json; load seq 10 json" </dev/null
has "bench json: the tools' JSON header and the same keys as bpool-bench" benchjson.out \
    '^\{"tool":"bpool-shell","version":"[0-9.]+","timestamp":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z","options":\{[^{}]*"pattern":"zipf"[^{}]*\},"command":"bench","pins":300,"hits":[0-9]+,"misses":[0-9]+,"hit_ratio":[01]\.[0-9]{4},"miss_ratio":[01]\.[0-9]{4},.*"elapsed_s":[0-9.]+,"ops_s":[0-9]+,"lat_p50_us":[0-9.]+,"lat_p90_us":[0-9.]+,"lat_p99_us":[0-9.]+,"lat_max_us":[0-9.]+,"first":0,"last":[0-9]+,"theta":0\.990,"seed":1,"mode":"read","scan":false,"interrupted":false\}$'
has "load json: one object, no latency" benchjson.out \
    '^\{"tool":"bpool-shell",.*"command":"load","pins":10,.*"interrupted":false\}$'
eq "bench json: nothing but the two objects on stdout" "$(wc -l <benchjson.out)" 2
# The options as given, null for the rest (doc/tools.md): "bench zipf
# 300" gave n only; the second run gives every option.
has "bench json: options left to the defaults are null" benchjson.out \
    '"options":\{"file":"[^"]*","pattern":"zipf","n":300,"first":null,"last":null,"window":null,"theta":null,"seed":null,"write":null,"scan":null\}'
run benchjson2 0 -- "${L[@]}" -c "bench loop 20 range=2-9 window=3 theta=0.5 seed=7 write scan json; stream 0-3 depth=2 scan json; stream 0-3 json" </dev/null
has "bench json: every option given is there as given" benchjson2.out \
    '"options":\{"file":"[^"]*","pattern":"loop","n":20,"first":2,"last":9,"window":3,"theta":0\.500,"seed":7,"write":true,"scan":true\}'
has "bench json: the values used after the counts" benchjson2.out \
    '"first":2,"last":4,"window":3,"mode":"write","scan":true,"interrupted":false\}$'
has "stream json: depth and scan as given" benchjson2.out \
    '"options":\{"file":"[^"]*","first":0,"last":3,"depth":2,"scan":true\},"command":"stream"'
has "stream json: scan null when not given, false in the result" benchjson2.out \
    '"options":\{"file":"[^"]*","first":0,"last":3,"depth":null,"scan":null\},"command":"stream",.*"scan":false,"interrupted":false\}$'
# A bench whose first pin fails (every frame pinned) times no pin: its
# latencies are null, as its ratios are, not 0.
rm -f bj0.data
run benchjson0 1 -- -k --page-size 4096 --frames 4 bj0.data -c \
    "alloc 8; evict all; pin 0; pin 1; pin 2; pin 3; bench seq 1 range=5-5 json" </dev/null
has "bench json, no pin: null latencies" benchjson0.out \
    '"pins":0,.*"hit_ratio":null,.*"lat_p50_us":null,"lat_p90_us":null,"lat_p99_us":null,"lat_max_us":null,'
run ldbad 1 -- -k "${L[@]}" </dev/null -c \
    "load; load nope; load zipf theta=0; load zipf theta=abc; load seq 99999999999999; load loop window=0; load seq range=30-99; load seq bogus; pin 1 write; load seq write; load seq range=0-3"
n=$(grep -c '^error: ' ldbad.err)
eq "load with bad arguments: 10 errors" "$n" 10
has "load over a page the shell holds for write: refused" ldbad.err 'load: page 1 is pinned for write by this shell'
run ldempty 1 -- --page-size 4096 empty.data -c "load seq" </dev/null
has "load on an empty file: error and the fix" ldempty.err 'hint: add pages first: alloc N'

# ---------------------------------------------------------------------------
# 11. Signals and the end of a session.
# ---------------------------------------------------------------------------
cp ld.data ld.before
# handlers_ready PID: wait (at most 30 s) until bpool-shell has installed
# its SIGINT and SIGTERM handlers (SigCgt in /proc/PID/status), then a
# second more, so a signal sent next is never taken by the default action
# of a shell still starting up on a loaded machine.
handlers_ready() {
    local i cgt
    for i in $(seq 300); do
        cgt=$(sed -n 's/^SigCgt:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null)
        [ -n "$cgt" ] && (( (16#$cgt & 0x4002) == 0x4002 )) && break
        sleep 0.1
    done
    sleep 1
}
# signal_and_wait PID SIG: once PID's handlers are in place, send it SIG
# and wait for it to end; its exit status goes to $status.
signal_and_wait() {
    handlers_ready "$1"
    kill -"$2" "$1"
    wait "$1"
    status=$?
}
# Ctrl-C cancels a long load: the script ends with status 130.
"$shell" "${L[@]}" -c "write 39 0 keep; load random 1000000000000; write 38 0 never" >int.out 2>int.err &
signal_and_wait $! INT
eq "Ctrl-C: a script ends with status 130" "$status" 130
has "Ctrl-C: the command says it was interrupted" int.err '^error: load: interrupted$'
has "Ctrl-C: the pins done are reported" int.out '^load random: [0-9]+ pins of pages 0-39 '
eq "Ctrl-C: the write before it is on disk" "$(od -A n -c -j $((40 * 4096)) -N 4 ld.data | tr -d ' ')" keep
cmp -s <(head -c $((38 * 4096)) ld.data) <(head -c $((38 * 4096)) ld.before) &&
    pass "Ctrl-C: the other pages are unchanged" || fail "Ctrl-C: other pages changed"
# SIGTERM: the pool is closed cleanly (a dirty page is written back).
"$shell" "${L[@]}" -c "write 37 0 term; load random 1000000000000" >term.out 2>term.err &
signal_and_wait $! TERM
eq "SIGTERM: status 143" "$status" 143
eq "SIGTERM: the dirty page was written back" "$(od -A n -c -j $((38 * 4096)) -N 4 ld.data | tr -d ' ')" term
# Ctrl-C while a script waits for input.
"$shell" "${L[@]}" >int2.out 2>int2.err < <(sleep 3; echo "read 0") &
signal_and_wait $! INT
eq "Ctrl-C while reading a script: status 130" "$status" 130
has "Ctrl-C while reading a script: interrupted, no line named" int2.err '^error: reading commands: interrupted$'
empty "Ctrl-C while reading a script: the next line is not run" int2.out
# SIGTERM while a script waits for input: a quiet end, status 143.
"$shell" "${L[@]}" >term2.out 2>term2.err < <(sleep 3; echo "read 0") &
signal_and_wait $! TERM
eq "SIGTERM while reading a script: status 143" "$status" 143
empty "SIGTERM while reading a script: no error" term2.err
# End of input (Ctrl-D in a terminal) writes back and syncs.
printf 'write 36 0 eof!\n' | "$shell" "${L[@]}" >eof.out 2>eof.err
eq "end of input: status 0" "$?" 0
eq "end of input: the page was written back" "$(od -A n -c -j $((37 * 4096)) -N 4 ld.data | tr -d ' ')" 'eof!'
# A closed output pipe: no crash, the pool is closed.
"$shell" "${L[@]}" -c "write 35 0 pipe; read 0-39; read 0-39" 2>pipe.err | head -1 >/dev/null
status=${PIPESTATUS[0]}
if [ "$status" -lt 128 ]; then pass "closed output pipe: no crash (status $status)"
else fail "closed output pipe: status $status"; fi
eq "closed output pipe: the page was written back" "$(od -A n -c -j $((36 * 4096)) -N 4 ld.data | tr -d ' ')" pipe
# The output is checked after every command, not once per line (nor, for
# -c, never): the command after the one whose output was lost does not
# run, the shell says why and exits 1.  (200 stats outrun the pipe's
# buffer and head's read.)
cmds="write 34 0 seen"
for _ in $(seq 200); do cmds="$cmds; stats"; done
cmds="$cmds; write 33 0 late"
printf '%s\n' "$cmds" >gone.in
for how in -c stdin -f; do
    case $how in
        -c) "$shell" "${L[@]}" -c "$cmds" 2>gone.err </dev/null | head -1 >/dev/null
            st=${PIPESTATUS[0]} ;;
        stdin) "$shell" "${L[@]}" 2>gone.err <gone.in | head -1 >/dev/null
            st=${PIPESTATUS[0]} ;;
        -f) "$shell" "${L[@]}" -f gone.in 2>gone.err </dev/null | head -1 >/dev/null
            st=${PIPESTATUS[0]} ;;
    esac
    eq "output closed ($how): exit status 1" "$st" 1
    has "output closed ($how): says so" gone.err '^bpool-shell: cannot write the output \(Broken pipe\); closing the pool and stopping$'
    eq "output closed ($how): the command before ran" "$(od -A n -c -j $((35 * 4096)) -N 4 ld.data | tr -d ' ')" seen
    eq "output closed ($how): the later command did not" "$(od -A n -t x1 -j $((34 * 4096)) -N 4 ld.data | tr -d ' ')" 00000000
done

# ---------------------------------------------------------------------------
# 12. Fuzz: random and mutated command lines must not crash the shell nor
# touch pages no command names.  Pages 0-3 hold known bytes; the inputs
# never contain the characters 0-3, so no command can name those pages
# (nor offsets, counts or sizes that reach them), whatever the mutation.
# ---------------------------------------------------------------------------
fuzz_lines=${SHELL_FUZZ_LINES:-4000}
fuzz_seed=${SHELL_FUZZ_SEED:-1}
Z=(--page-size 4096 --frames 8 fz.data)
run fz0 0 -- "${Z[@]}" </dev/null -c \
    'alloc 10; fill 0 seq; fill 1 text:"protected page 1 "; fill 2 0xdeadbeef; fill 3 0xa5; sync'
tail -c +$((4096 + 1)) fz.data | head -c $((4 * 4096)) >fz.protected   # after the header page
LC_ALL=C awk -v n="$fuzz_lines" -v seed="$fuzz_seed" '
function r(k) { return int(rand() * k) }
function pick(s,   a, k) { k = split(s, a, "|"); return a[1 + r(k)] }
function num() { return pick("4|5|6|7|8|9|44|99|5-9|4+5|9-4|x|-5|999999999999999999999999|x4|4k|") }
function page() { return pick("4|5|6|7|8|9|5-9|4+5|9-5|99|-4|x|") }
function junkbyte(   c) { c = r(256); if (c >= 48 && c <= 51) c += 10; return sprintf("%c", c) }
function junk(k,   s, i) { s = ""; for (i = 0; i < k; i++) s = s junkbyte(); return s }
function cmdline() {
    return pick("open fz.data|open fz.data pagesize=8k|open fz.data frames=" num() "|open other.data create|close|info|alloc|alloc " pick("4|5|x|-4") \
        "|pin " page() " " pick("read|write|scan|write scan|bogus|") "|unpin " page() "|unpin all|pinned" \
        "|write " page() " " num() " " pick("hi|\"a b;c\"|\"\\x4e\\n\"|\"unbalanced|x\"y\"z|\"\\q\"") \
        "|writehex " page() " " num() " " pick("de ad|beef|xdead|zz|d") \
        "|fill " page() " " pick("seq|text:ab|text:\"x y\"|xdeadbeef|99|" num()) " " num() " " num() \
        "|read " page() " " num() " " num() "|hexdump " page() "|compare " page() " " page() " " num() \
        "|flush " pick("all|" page()) "|sync|checkpoint|prefetch " page() " " pick("scan||bogus") \
        "|evict " pick("all|" page()) "|stats|stats reset|stats x|frames|frames all|clock|clock summary" \
        "|load " pick("seq|random|zipf|loop|x") " " pick("9|44|") " " pick("write|scan|range=4-9|window=5|theta=" pick(".5|9|x|-9") "|seed=" num() "|") \
        "|bench zipf 44|help|help " pick("load|x|open") "|" junk(8) "|quit|exit")
}
function mutate(s,   i, k, m) {
    m = r(6)
    for (k = 0; k < m; k++) {
        i = 1 + r(length(s) + 1)
        if (r(3) == 0) s = substr(s, 1, i - 1) substr(s, i + 1)
        else if (r(2) == 0) s = substr(s, 1, i - 1) junkbyte() substr(s, i)
        else s = substr(s, 1, i - 1) pick(";|\"|\\|#| |=|-|+|x|9") substr(s, i)
    }
    return s
}
BEGIN {
    srand(seed)
    for (l = 0; l < n; l++) {
        if (r(20) == 0) { print junk(1 + r(200)); continue }
        s = cmdline()
        if (r(4) == 0) s = s ";" cmdline()
        if (r(2) == 0) s = mutate(s)
        print s
    }
}' >fz.in
if LC_ALL=C grep -q '[0-3]' fz.in; then
    fail "fuzz input contains the digits 0-3 (generator bug)"
else
    pass "fuzz input: $(wc -l <fz.in) lines, seed $fuzz_seed, no digit 0-3"
fi
chunks=8
split -n l/$chunks -d fz.in fz.chunk.
crashed=0
for f in fz.chunk.*; do
    "$shell" -k "${Z[@]}" <"$f" >"$f.out" 2>"$f.err"
    st=$?
    if [ "$st" -ge 128 ] || [ "$st" -gt 1 ]; then
        crashed=$((crashed + 1))
        echo "  $f: exit status $st; last lines of stderr:"
        tail -5 "$f.err" | sed 's/^/    /'
    fi
done
eq "fuzz: no run crashed or ended abnormally ($chunks runs)" "$crashed" 0
nerr=$(cat fz.chunk.*.err | grep -c 'error: ')
if [ "$nerr" -gt 0 ]; then pass "fuzz: errors were reported ($nerr)"; else
    fail "fuzz: no error reported: the input was not exercised"; fi
lacks "fuzz: no sanitizer report" <(cat fz.chunk.*.err) 'Sanitizer|runtime error'
cmp -s <(tail -c +$((4096 + 1)) fz.data | head -c $((4 * 4096))) fz.protected && pass "fuzz: pages 0-3 unchanged" ||
    fail "fuzz: pages 0-3 changed"
size=$(stat -c %s fz.data)
if [ $((size % 4096)) -eq 0 ]; then pass "fuzz: file size $size is whole pages"
else fail "fuzz: file size $size is not a multiple of 4096"; fi
run fz_after 0 -- "${Z[@]}" -c "read 0 0 16; read 3 4080" </dev/null
cat >fz_after.exp <<'EOF'
00000000: 0001 0203 0405 0607 0809 0a0b 0c0d 0e0f  ................
00000ff0: a5a5 a5a5 a5a5 a5a5 a5a5 a5a5 a5a5 a5a5  ................
EOF
same "fuzz: the file opens and reads afterwards" fz_after.out fz_after.exp

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ] || exit 1
exit 0
