#!/bin/bash
# SPDX-License-Identifier: MIT
# abi_symbols.sh - the library's interface is what doc/abi.md says (an
# automake TESTS script: exit 0 pass, 1 fail, 77 skip, 99 hard error):
#
#   1. the functions declared BP_API in include/bpool.h are exactly the
#      list in src/libbpool.sym;
#   2. .libs/libbpool.so exports exactly that list (nm -D --defined-only),
#      each symbol under the version node of src/libbpool.sym, and nothing
#      else (no bp__ internals, no symbols of libaio);
#   3. the static library .libs/libbpool.a defines every one of them;
#   4. every exported function has a manual page (doc/NAME.3), and the
#      built pages carry the configured version in their .TH line.
#
# Environment (exported by the harness, see Makefile.am): srcdir,
# top_builddir.  Needs nm (binutils).

set -u

top_builddir=${top_builddir:-$(pwd)}
srcdir=${srcdir:-$top_builddir}
. "$srcdir/tests/lib.sh"

if ! command -v nm >/dev/null 2>&1; then
    echo "SKIP: no nm; install the Debian package binutils"
    exit 77
fi
scratch abi
sym=$srcdir/src/libbpool.sym
lib=$top_builddir/.libs

# The list: the names between "global:" and "local:".
sed -n '/^ *global:/,/^ *local:/s/^ *\(bp_[a-z0-9_]*\);$/\1/p' "$sym" | sort >listed
[ -s listed ] || { echo "FAIL: no symbols found in $sym"; exit 99; }
node=$(sed -n 's/^\([A-Z][A-Z0-9_.]*\) *{.*/\1/p' "$sym" | tail -n 1)

# --- 1. the header's BP_API functions ------------------------------------
# One declaration per record, from BP_API to its ';'.
awk '/^BP_API/ {d = 1} d {printf "%s ", $0} d && /;/ {print ""; d = 0}' \
    "$srcdir/include/bpool.h" |
    sed -n 's/^BP_API[^(]*[ *]\(bp_[a-z0-9_]*\) *(.*/\1/p' | sort >declared
if cmp -s declared listed; then
    pass "the $(wc -l <listed) BP_API functions of bpool.h are the list in src/libbpool.sym"
else
    fail "BP_API functions of bpool.h (<) and src/libbpool.sym (>) differ:"
    diff declared listed | grep '^[<>]' | sed 's/^/    /'
fi

# --- 2. what libbpool.so exports -----------------------------------------
so=$lib/libbpool.so
if [ -e "$so" ]; then
    # "T bp_open@@BPOOL_0.2"; the node itself is an absolute symbol (A).
    nm -D --defined-only "$so" >nm.out || { echo "FAIL: nm -D $so"; exit 99; }
    awk '$2 != "A" { print $3 }' nm.out | sed 's/@.*//' | sort >exported
    if cmp -s exported listed; then
        pass "libbpool.so exports exactly the $(wc -l <listed) symbols of src/libbpool.sym"
    else
        fail "libbpool.so exports (<) and src/libbpool.sym lists (>) differ:"
        diff exported listed | grep '^[<>]' | sed 's/^/    /'
    fi
    unversioned=$(awk '$2 != "A" && $3 !~ /@@/ { print $3 }' nm.out)
    wrong=$(awk -v n="$node" '$2 != "A" && $3 ~ /@@/ && $3 !~ ("@@" n "$") { print $3 }' nm.out)
    if [ -z "$unversioned" ] && [ -z "$wrong" ]; then
        pass "every exported symbol has the version $node"
    else
        fail "symbols without the version $node: $unversioned $wrong"
    fi
else
    echo "(no $so: a static-only build; the shared library's checks are skipped)"
fi

# --- 3. the static library ------------------------------------------------
if [ -e "$lib/libbpool.a" ]; then
    nm --defined-only "$lib/libbpool.a" 2>/dev/null |
        awk '$2 == "T" { print $3 }' | sort -u >static
    missing=$(comm -23 listed static)
    [ -z "$missing" ] && pass "libbpool.a defines every listed function" ||
        fail "libbpool.a lacks: $missing"
fi

# --- 4. manual pages -------------------------------------------------------
nopage=
while read -r f; do
    [ -f "$srcdir/doc/$f.3" ] || nopage="$nopage $f"
done <listed
[ -z "$nopage" ] && pass "every exported function has a manual page (doc/NAME.3)" ||
    fail "no doc/NAME.3 for:$nopage"
version=$(sed -n 's/^#define BP_VERSION_STRING "\(.*\)"$/\1/p' \
    "$top_builddir/include/bpool_version.h")
page=$top_builddir/man/bpool.3
if [ -n "$version" ] && [ -f "$page" ]; then
    if grep -q "^\.TH BPOOL 3 .*\"bpool $version\"" "$page"; then
        pass "man/bpool.3 says bpool $version in its .TH line"
    else
        fail "man/bpool.3 has $(grep '^\.TH' "$page"), not bpool $version"
    fi
    # man -l renders it: the version is in the page's footer.
    if command -v man >/dev/null 2>&1; then
        if MANWIDTH=80 man -l "$page" 2>/dev/null | tail -n 3 | grep -q "bpool $version"; then
            pass "man -l man/bpool.3 shows bpool $version"
        else
            fail "man -l man/bpool.3 does not show bpool $version"
        fi
    fi
else
    fail "no version in include/bpool_version.h, or no $page (make builds it)"
fi

finish
