#!/bin/bash
# SPDX-License-Identifier: MIT
# atomic_writes.sh - BP_DOUBLEWRITE on a file that takes atomic writes
# (an automake TESTS script: exit 0 pass, 1 fail, 77 skip, 99 hard error).
#
# Where statx(STATX_WRITE_ATOMIC) says the file takes atomic writes of a
# page and the device does them itself - or anywhere statx says so, with
# BP_ATOMIC - bpool writes pages in place with RWF_ATOMIC, one page a
# request, instead of through the doublewrite area.  XFS with reflink
# takes atomic writes on any device (Linux 6.16 and later, in software),
# so this script makes a small XFS image, loop-mounts it and checks there:
#   - a loop device does no atomic writes itself: by default the area is
#     used (atomic_writes 0); with --atomic (BP_ATOMIC) atomic writes are
#     (bp_info atomic_writes 1, bpool-shell info);
#   - one write request per page, where a file without the area takes a
#     run of adjacent pages in one;
#   - bpool-stress with verification, and bpool-stress --power-cut: the
#     simulated device keeps an RWF_ATOMIC write whole or drops it, so no
#     page is torn after the reopen, without the area's repair.
# Skipped (77) unless run as root with mkfs.xfs, a loop device and a
# kernel whose XFS reports atomic writes.
#
# Environment: top_builddir, BPOOL_SHELL, BPOOL_STRESS, BPOOL_TEST_TMPDIR
# (see Makefile.am).  The helpers are tests/lib.sh's.

# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh" || exit 99
shell=${BPOOL_SHELL:-$top_builddir/tools/bpool-shell}
stress=${BPOOL_STRESS:-$top_builddir/tools/bpool-stress}
need_program "$shell"
need_program "$stress"
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root to mount an XFS image"
command -v mkfs.xfs >/dev/null || skip "no mkfs.xfs (Debian's xfsprogs)"
scratch atomic
truncate -s 320M xfs.img || exit 99
mkfs.xfs -q -f -m reflink=1 xfs.img 2>err || skip "mkfs.xfs failed: $(cat err)"
mkdir mnt
mount -o loop xfs.img mnt 2>err || skip "cannot loop-mount XFS here: $(cat err)"
# Removed only once unmounted: rm -rf of a busy mount would empty it and
# leave the mount and its loop device behind.
unmount() {
    umount "$work/mnt" 2>/dev/null || umount -l "$work/mnt" 2>/dev/null
    mountpoint -q "$work/mnt" || rm -rf "$work"
}
trap unmount EXIT

# info KEY OUTPUT: the value of KEY in bpool-shell info's "key value" lines.
info() { awk -v k="$1" '$1 == k { print $2 }' <<<"$2"; }
# eq WHAT GOT WANT
eq() { [ "$2" = "$3" ] && pass "$1" || fail "$1: $2, want $3"; }

out=$("$shell" --page-size 4096 --frames 32 --flushers 0 --doublewrite --atomic mnt/a.data -c \
    "alloc 8; write 0 0 a; write 1 0 b; write 2 0 c; write 3 0 d; write 4 0 e; write 5 0 f; write 6 0 g; write 7 0 h; flush all; info; stats" 2>err) ||
    { fail "bpool-shell on XFS: $(cat err)"; finish; }
max=$(info atomic_write_max "$out")
[[ $max =~ ^[0-9]+$ ]] || { fail "info printed no atomic_write_max: $out"; finish; }
[ "$max" -gt 0 ] || skip "this kernel's XFS reports no atomic writes (atomic_write_max 0)"
eq "XFS: atomic writes in use" "$(info atomic_writes "$out")" 1
eq "XFS: the area is there (unused)" "$(info doublewrite_pages "$out")" 256
eq "XFS: 8 pages written" "$(info writes "$out")" 8
eq "XFS: one request per page" "$(info write_requests "$out")" 8
back=$("$shell" --page-size 4096 --doublewrite --atomic mnt/a.data -c "read 7 0 1" 2>&1)
[[ $back == "00000000: 68 "* ]] && pass "XFS: the pages read back" ||
    fail "XFS: read back: $back"

out=$("$shell" --page-size 4096 --doublewrite mnt/a.data -c "info" 2>&1)
eq "without --atomic, on a loop device: the area is used" "$(info atomic_writes "$out")" 0

# The same writes on a file without the area: one request for the run.
out=$("$shell" --page-size 4096 --frames 32 --flushers 0 mnt/b.data -c \
    "alloc 8; write 0 0 a; write 1 0 b; write 2 0 c; write 3 0 d; write 4 0 e; write 5 0 f; write 6 0 g; write 7 0 h; flush all; info; stats" 2>&1)
eq "no area: no atomic writes" "$(info atomic_writes "$out")" 0
eq "no area: one request for 8 adjacent pages" "$(info write_requests "$out")" 1

mix=read=55,write=35,prefetch=2,flush=1,flushall=0.05,checkpoint=0.5,sync=0.25
if stress_ok "stress on XFS with atomic writes" -f mnt/s.data --doublewrite --atomic -t 4 \
        --pages 1024 --frames 32 -m "$mix" -d "$(secs 1)" -s 51; then
    expect "stress: verified" "$out" "pages_verified >= 1024" "errors == 0"
fi
if stress_ok "power cuts on XFS with atomic writes" -f mnt/p.data --doublewrite --atomic -t 4 \
        --pages 1024 --frames 32 -m "$mix" --power-cut 4 -d "$(secs 1)" -s 52; then
    expect "power cuts: no torn page after reopen" "$out" "cuts >= 4" \
        "torn_pages_detected == 0" "pages_verified >= 4096"
fi
finish
