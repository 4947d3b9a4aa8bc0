#!/bin/bash
# SPDX-License-Identifier: MIT
# kvdb_install.sh - examples/kvdb built the way a user of the library
# builds it: against a `make install` staged with DESTDIR, with nothing
# but `pkg-config --cflags --libs bpool` (an automake TESTS script: exit
# 0 pass, 1 fail, 77 skip, 99 hard error).
#
#   1. `make install DESTDIR=...` from the build directory (works in an
#      out-of-tree build with a read-only source tree, as in distcheck);
#   2. compile every examples/kvdb/*.c (and the four files of
#      tools/common its command line uses, and tools/powercut.c) with the
#      installed bpool.h (the
#      source tree's include/ is not on the path: the compiler's
#      dependency list must name the staged header) and link with the
#      installed libbpool, using the build's compiler and flags (warnings,
#      -Werror and sanitizers as configured);
#   3. run the result on the staged library: put, get, a load, verify
#      with a scan, check;
#   4. what the install holds besides (doc/abi.md, "What is installed"):
#      no libbpool.la, the generated bpool_version.h next to bpool.h,
#      manual pages with the configured version; and `make uninstall
#      DESTDIR=...` removes every file it installed.
#
# A few seconds.  Environment: see tests/kvdb_lib.sh, and KVDB_MAKE (the
# make program), KVDB_CC, KVDB_CFLAGS and KVDB_LDFLAGS (the build's
# compiler and flags), all exported by Makefile.am.

. "${srcdir:-$(dirname "$0")/..}/tests/kvdb_lib.sh"

srcdir=${srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
make=${KVDB_MAKE:-make}
cc=${KVDB_CC:-cc}
cflags=${KVDB_CFLAGS:--O2 -std=gnu11 -pthread -Wall -Wextra}
ldflags=${KVDB_LDFLAGS:-}
pkgconfig=${PKG_CONFIG:-pkg-config}
if ! command -v "$pkgconfig" >/dev/null 2>&1; then
    echo "SKIP: no pkg-config"
    exit 77
fi

# --- 1. staged install ------------------------------------------------------------
stage=$work/stage
# MAKEFLAGS carries the outer make's command line (TESTS=...) and jobserver.
# shellcheck disable=SC2086
if (cd "$top_builddir" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
        $make install DESTDIR="$stage") >install.log 2>&1; then
    pass "make install DESTDIR=$stage"
else
    fail "make install failed:"
    tail -n 20 install.log | sed 's/^/    /'
    finish
fi
pc=$(find "$stage" -name bpool.pc | head -n 1)
if [ -z "$pc" ]; then
    fail "no bpool.pc installed"
    finish
fi
pass "bpool.pc installed in ${pc#"$stage"}"

# --- 2. build kvdb from the staged install ---------------------------------------------
# PKG_CONFIG_SYSROOT_DIR puts $stage in front of the -I and -L paths of
# the .pc file, which names the configured prefix.
export PKG_CONFIG_PATH='' PKG_CONFIG_LIBDIR="${pc%/*}" PKG_CONFIG_SYSROOT_DIR="$stage"
export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
pcflags=$("$pkgconfig" --cflags bpool) && pclibs=$("$pkgconfig" --libs bpool) &&
    pass "pkg-config --cflags --libs bpool: $pcflags $pclibs" ||
    { fail "pkg-config does not know bpool"; finish; }
libdir=$(find "$stage" -name 'libbpool.so*' -printf '%h\n' | head -n 1)
if [ -z "$libdir" ]; then
    # a static-only build (--disable-shared): libaio and pthreads too
    pclibs=$("$pkgconfig" --libs --static bpool)
    libdir=$(find "$stage" -name 'libbpool.a' -printf '%h\n' | head -n 1)
fi

src=$srcdir/examples/kvdb
mkdir obj
objs=()
pids=()
# kvdb's command line shares the bpool tools' option and JSON code
# and message code (tools/common) and the power-cut recorder
# (tools/powercut.c, for --power-cut-after): five files of the source
# tree.  Only the recorder
# sees a library internal: src/io_engine.h, the engines' interface, whose
# tap it defines (the installed library refers to the tap weakly).
common=$srcdir/tools/common
version=$("$pkgconfig" --modversion bpool)
for c in "$src"/*.c "$common"/parse.c "$common"/json.c "$common"/poolopt.c \
         "$common"/printable.c "$srcdir"/tools/powercut.c; do
    case ${c##*/} in sqlite_bench.c | lmdb_bench.c) continue ;; esac
    o=obj/$(basename "$c" .c).o
    # two at a time
    if [ ${#pids[@]} -ge 2 ]; then
        wait "${pids[0]}" || touch compile.failed
        pids=("${pids[@]:1}")
    fi
    inc=
    case ${c##*/} in powercut.c) inc=-I$srcdir/src ;; esac
    # shellcheck disable=SC2086
    $cc $cflags -D_GNU_SOURCE -DPACKAGE_VERSION="\"$version\"" $pcflags $inc -MD -MF "$o.d" \
        -c "$c" -o "$o" 2>"$o.log" &
    pids+=($!)
    objs+=("$o")
done
for p in "${pids[@]}"; do
    wait "$p" || touch compile.failed
done
cat obj/*.o.log >build.log
[ ! -e compile.failed ] && pass "compiled examples/kvdb/*.c against the staged bpool.h" ||
    { fail "compiling failed:"; head -n 30 build.log | sed 's/^/    /'; finish; }
# shellcheck disable=SC1003
hdr=$(tr -s ' \\' '\n' <obj/db.o.d | grep '/bpool\.h$' | sort -u)
case $hdr in
"$stage"/*/bpool.h) pass "bpool.h came from the staged install: ${hdr#"$stage"}" ;;
*) fail "bpool.h came from ${hdr:-nowhere}, not from $stage" ;;
esac
# shellcheck disable=SC2086
if $cc $cflags $ldflags -o kvdb-installed "${objs[@]}" $pclibs -lpthread -lm 2>>build.log; then
    pass "linked with the staged libbpool"
else
    fail "linking failed:"
    tail -n 20 build.log | sed 's/^/    /'
    finish
fi
[ ! -s build.log ] && pass "no compiler warnings" ||
    { fail "the compiler said:"; head -n 20 build.log | sed 's/^/    /'; }

# --- 3. run it -------------------------------------------------------------------------
export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if command -v ldd >/dev/null 2>&1 && [ -e "$libdir/libbpool.so" ]; then
    used=$(ldd ./kvdb-installed | sed -n 's/.*libbpool[^ ]* => \([^ ]*\).*/\1/p')
    case $used in
    "$stage"/*) pass "runs on the staged library: ${used#"$stage"}" ;;
    *) fail "the loader picks ${used:-nothing}, not the staged libbpool" ;;
    esac
fi
kvdb=$work/kvdb-installed
try "put" 0 db put hello world
try "get" 0 db get hello && has "the value" out '^world$'
try "load" 0 --frames 64 gen.db load 5000 --seed 2 --commit-every 1000
try "verify --scan" 0 --frames 64 gen.db verify 5000 --seed 2 --sorted --scan
try "check" 0 gen.db check && has "check" out '^check: ok, 5000 keys$'

# --- 4. the rest of the install -----------------------------------------------------
la=$(find "$stage" -name 'libbpool.la')
[ -z "$la" ] && pass "libbpool.la is not installed" ||
    fail "libbpool.la is installed: ${la#"$stage"}"
vh=$(find "$stage" -name bpool_version.h)
if [ "${vh%/*}" = "${hdr%/*}" ]; then
    version=$(sed -n 's/^#define BP_VERSION_STRING "\(.*\)"$/\1/p' "$vh")
    pass "bpool_version.h installed next to bpool.h: bpool $version"
else
    fail "bpool_version.h is at '${vh#"$stage"}', not next to ${hdr#"$stage"}"
fi
page=$(find "$stage" -path '*/man3/bp_open.3')
if [ -n "$page" ] && grep -q "^\.TH BP_OPEN 3 .*\"bpool ${version:-?}\"" "$page"; then
    pass "the installed bp_open(3) says bpool $version"
else
    fail "the installed bp_open(3) (${page#"$stage"}) lacks \"bpool ${version:-?}\": $(grep '^\.TH' "$page" 2>/dev/null)"
fi
# shellcheck disable=SC2086
if (cd "$top_builddir" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
        $make uninstall DESTDIR="$stage") >uninstall.log 2>&1; then
    left=$(find "$stage" -type f | sed "s|^$stage||")
    [ -z "$left" ] && pass "make uninstall removed every file" ||
        fail "make uninstall left:" $left
else
    fail "make uninstall failed:"
    tail -n 20 uninstall.log | sed 's/^/    /'
fi

finish
