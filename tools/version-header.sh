#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/version-header.sh - find, or make, the directory holding
# bpool_version.h for the scripts that compile the sources without
# configure (tools/lint.sh, fuzz/run.sh, run from the top source
# directory).  include/bpool.h includes that header, which configure
# generates from include/bpool_version.h.in; in a tree that was never
# configured, or configured out of tree, it is made here the same way,
# from the version in configure.ac.
#
# Usage: tools/version-header.sh DIR
#   Prints the directory to give the compiler with -I:
#   $BP_VERSION_INCLUDE when it holds the header (make lint and make
#   fuzz-smoke set it to the build's include/), else include/ when the
#   source tree is configured, else DIR, where the header is written.
set -euo pipefail

dir=${1:?usage: tools/version-header.sh DIR}
if [ -n "${BP_VERSION_INCLUDE:-}" ] && [ -f "$BP_VERSION_INCLUDE/bpool_version.h" ]; then
    echo "$BP_VERSION_INCLUDE"
    exit 0
fi
if [ -f include/bpool_version.h ]; then
    echo include
    exit 0
fi
part() {
    sed -n "s/^m4_define(\[bp_version_$1\], *\[\([0-9]*\)\])/\1/p" configure.ac
}
major=$(part major) minor=$(part minor) patch=$(part patch)
if [ -z "$major" ] || [ -z "$minor" ] || [ -z "$patch" ]; then
    echo "version-header: no bp_version_major/minor/patch in configure.ac" >&2
    exit 2
fi
mkdir -p "$dir"
sed -e "s/@BP_VERSION_MAJOR@/$major/" -e "s/@BP_VERSION_MINOR@/$minor/" \
    -e "s/@BP_VERSION_PATCH@/$patch/" \
    -e "s/@PACKAGE_VERSION@/$major.$minor.$patch/" \
    include/bpool_version.h.in >"$dir/bpool_version.h"
echo "$dir"
