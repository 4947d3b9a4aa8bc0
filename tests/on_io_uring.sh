#!/bin/bash
# SPDX-License-Identifier: MIT
# on_io_uring.sh NAME-uring.matrix - the engine matrix of make check: run the test
# NAME (a Check program or a tests/*.sh script) once more, on the io_uring
# engine.  The library's bp_options_init takes the engine from
# BPOOL_IO_ENGINE (bp_open(3)), and the tools take their default from it,
# so the test itself is unchanged: a matrix, not a copy.  The Makefile
# lists the tests (ENGINE_MATRIX) and makes each NAME-uring.matrix file.
#
# Exits 77 (skip) where io_uring cannot be had (built without liburing,
# kernel.io_uring_disabled, seccomp); otherwise the test's own status.
# "make check ENGINE_MATRIX_TESTS=" runs the libaio half alone (with the
# tests' own io_uring cases), as .ci/run's sanitizer and distcheck stages
# do to stay within CI's time.  Environment: Makefile.am's
# AM_TESTS_ENVIRONMENT (top_builddir, srcdir, BPOOL_STRESS, ...).

name=${1%-uring.matrix}
stress=${BPOOL_STRESS:-$top_builddir/tools/bpool-stress}
probe="${BPOOL_TEST_TMPDIR:-/tmp}/uring-probe-$$.data"
if ! "$stress" -q --io-engine io_uring -f "$probe" --pages 16 -n 10 -t 1 \
        >/dev/null 2>"$probe.err"; then
    echo "skip: no io_uring engine here: $(head -c 300 "$probe.err")"
    rm -f "$probe" "$probe.err"
    exit 77
fi
rm -f "$probe" "$probe.err"
export BPOOL_IO_ENGINE=io_uring
case $name in
*.sh)
    [ -e "$name" ] || name="$srcdir/$name"
    exec "${BASH:-bash}" "$name" ;;
*)
    exec "$name" ;;
esac
