#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# mutants_apply.sh - every mutant still applies: the "@@ old" text of each
# tests/mutants/*.mut is found exactly once in the file it names, and
# every test program it names exists.  A mutant that no longer applies
# tests nothing (tests/mutate.sh calls it STALE), and only CI's subset of
# them is run on every change, so a refactor can leave the others behind
# unnoticed; this check takes a second and covers them all.

. "$(dirname "$0")/lib.sh"

src=${srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
n=0
stale=0
for m in "$src"/tests/mutants/*.mut; do
    n=$((n + 1))
    name=$(basename "$m" .mut)
    file=$(sed -n 's/^file: *//p' "$m" | head -n 1)
    if [ -z "$file" ] || [ ! -f "$src/$file" ]; then
        fail "$name: names no file of the tree ('$file')"
        stale=$((stale + 1))
        continue
    fi
    for t in $(sed -n 's/^tests: *//p' "$m" | head -n 1); do
        [ -f "$src/$t" ] || [ -f "$src/$t.c" ] || [ -f "$src/$t.sh" ] ||
            { fail "$name: names the test $t, which does not exist"; stale=$((stale + 1)); }
    done
    # The same extraction and the same exact, whole-text match as mutate.sh.
    found=$(sed -n '/^@@ old$/,/^@@ new$/p' "$m" | sed '1d;$d' |
        perl -0777 -ne '
            BEGIN { local $/; open(my $o, "<", "/dev/stdin") or die; $old = <$o>; }
            $count = () = /\Q$old\E/g; print $count;' "$src/$file")
    if [ "$found" != 1 ]; then
        fail "$name: its old text is found ${found:-0} times in $file, not once (update it to the code)"
        stale=$((stale + 1))
    fi
done
# Every mutant ships in the tarball: Makefile.am's MUTANTS names it.
if [ -f "$src/Makefile.am" ]; then
    for m in "$src"/tests/mutants/*.mut; do
        rel=tests/mutants/$(basename "$m")
        grep -q "^[[:space:]]*$rel\( \\\\\)\?$" "$src/Makefile.am" ||
            { fail "$rel: not in Makefile.am's MUTANTS (it would not ship)"; stale=$((stale + 1)); }
    done
fi
[ "$n" -gt 0 ] || fail "no mutants found under $src/tests/mutants"
[ "$stale" -eq 0 ] && pass "all $n mutants apply to the sources they name"
finish
