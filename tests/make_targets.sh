#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# make_targets.sh - the make targets the project names have their rules:
#   1. every name in a .PHONY line of Makefile.am has a rule there (a
#      phony target without one makes "Nothing to be done" and exits 0,
#      so `make mutation` lost to an edit looked like a clean run);
#   2. every `make NAME` shown in README.md and doc/*.md is a target of
#      Makefile.am's .PHONY or one that automake provides (the docs name
#      no target that is not there, and one dropped from .PHONY along
#      with its rule is still caught).
# Reads the sources only; takes well under a second.

. "$(dirname "$0")/lib.sh"

src=${srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
am=$src/Makefile.am
[ -f "$am" ] || { echo "FAIL: no $am"; exit 99; }

# NAME KIND per line: "phony" for a name of .PHONY, "rule" for a target
# of a rule.  Continuation lines are joined first; recipe lines (a tab),
# comments and assignments (an "=" before any ":", or ":=") are not rules.
targets=$(awk '
    {
        line = $0
        while (line ~ /\\$/ && (getline nxt) > 0) {
            sub(/\\$/, " ", line)
            line = line nxt
        }
        if (line ~ /^\t/ || line ~ /^[ \t]*(#|$)/) next
        if (line ~ /^\.PHONY[ \t]*:/) {
            sub(/^\.PHONY[ \t]*:/, "", line)
            n = split(line, w, /[ \t]+/)
            for (i = 1; i <= n; i++) if (w[i] != "") print w[i], "phony"
            next
        }
        if (line ~ /^[^=:#]+::?([^=]|$)/) {
            sub(/:.*/, "", line)
            n = split(line, w, /[ \t]+/)
            for (i = 1; i <= n; i++) if (w[i] != "") print w[i], "rule"
        }
    }' "$am")

phony=$(awk '$2 == "phony" { print $1 }' <<<"$targets" | sort -u)
rules=$(awk '$2 == "rule" { print $1 }' <<<"$targets" | sort -u)
[ -n "$phony" ] || fail "no .PHONY line found in Makefile.am"
missing=$(comm -23 <(printf '%s\n' "$phony") <(printf '%s\n' "$rules"))
if [ -n "$missing" ]; then
    for t in $missing; do
        fail "Makefile.am: '$t' is in .PHONY but has no rule (make $t would do nothing and succeed)"
    done
else
    pass "each of the $(wc -l <<<"$phony") names in Makefile.am's .PHONY has a rule"
fi

# The targets automake makes, which the docs may name too.
automake_targets=(all check check-TESTS recheck install install-strip
    installcheck uninstall clean mostlyclean distclean maintainer-clean
    dist distcheck)
known=$(printf '%s\n' "$phony" "${automake_targets[@]}" | sort -u)

# `make [VAR=value|-option]... NAME` in inline code, or at the start of a
# line of a code block.
docs=()
for f in "$src"/README.md "$src"/doc/*.md; do
    [ -f "$f" ] && docs+=("$f")
done
named=$(grep -ohE '(`|^ *)make( +[A-Z_]+=[^ `]*| +-[^ `]+)* +[A-Za-z][A-Za-z0-9_-]*' \
            "${docs[@]}" | awk '{ print $NF }' | sort -u)
unknown=$(comm -23 <(printf '%s\n' "$named") <(printf '%s\n' "$known"))
if [ -n "$unknown" ]; then
    for t in $unknown; do
        where=$(grep -lE "make( +[^ \`]+)* +$t([^A-Za-z0-9_-]|\$)" "${docs[@]}" |
                sed "s|^$src/||" | paste -sd ' ')
        fail "the docs name 'make $t', which is neither in Makefile.am's .PHONY nor an automake target ($where)"
    done
else
    pass "each make target the docs name ($(wc -w <<<"$named")) is in .PHONY or made by automake"
fi
finish
