#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# coverage.sh - line and branch coverage of src/ by `make check`.
#
# Usage: tests/coverage.sh [BUILD-DIR]
#
# Copies the sources to BUILD-DIR/tree (default: _coverage in the current
# directory), configures them there with gcc's --coverage at -O0 (and
# BP_TEST_COVERAGE, so that a test's forked child writes its counters
# before _exit: tu_child_exit), runs
# `make check`, and prints, per
# file of src/, the lines and branches the tests executed (gcovr), then
# the uncovered lines of each file.  The source tree is not modified.
# Needs gcovr (Debian package gcovr); without it, says how to install it
# and exits 77.  `make coverage` runs it.  doc/analysis.md has the last
# figures.

set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/.." && pwd)
build=${1:-$PWD/_coverage}

if ! command -v gcovr >/dev/null 2>&1; then
    echo "coverage.sh: gcovr is not installed; install it with: apt-get install gcovr"
    exit 77
fi
# A private copy of the sources, configured in place: the tree this runs
# from may be configured itself, and is never touched.
rm -rf "$build"
mkdir -p "$build/tree" || exit 1
tree=$build/tree
if git -C "$srcdir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$srcdir" && git ls-files -z --cached --others --exclude-standard |
        xargs -0 tar cf - 2>/dev/null) | tar xf - -C "$tree"
else
    (cd "$srcdir" && tar cf - --exclude=./_ci --exclude=./_coverage \
        --exclude='*.o' --exclude='*.gc*' .) | tar xf - -C "$tree"
fi
cd "$tree" || exit 1
jobs=$(nproc 2>/dev/null || echo 2)
echo "coverage.sh: building with --coverage in $tree"
{ autoreconf -fi && ./configure -q CFLAGS='-O0 -g --coverage -DBP_TEST_COVERAGE' LDFLAGS='--coverage'; } \
    >/dev/null 2>&1 || { echo "coverage.sh: configure failed"; exit 1; }
make -j"$jobs" >/dev/null 2>&1 || { echo "coverage.sh: the build failed"; exit 1; }
echo "coverage.sh: running make check"
# -O0 with counters: about as slow as a debug build, whose Check time
# limits are tripled (configure.ac, BP_CK_TIMEOUT_MULTIPLIER).
CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-3} make -j"$jobs" check >/dev/null 2>&1
rc=$?
[ "$rc" -eq 0 ] || echo "coverage.sh: make check failed (exit $rc); the figures are what ran"

# Per file: lines executed, then branches taken (each with the missing
# line numbers), then the totals.
echo; echo "== lines"
gcovr -r "$tree" --filter "$tree/src/" 2>/dev/null
echo; echo "== branches"
gcovr -r "$tree" --filter "$tree/src/" \
      --branches --print-summary 2>/dev/null
# The failing side of an assert() is a branch no correct run can take;
# the same figure without the lines that hold one, for comparison.
echo; echo "== branches, assert() lines left out"
gcovr -r "$tree" --filter "$tree/src/" --exclude-lines-by-pattern '.*\bassert\(.*' \
      --branches 2>/dev/null | tail -n 2 | head -n 1
exit "$rc"
