#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# license.sh - the licence ships and every source file says it: LICENSE
# (MIT) is at the top of the source tree (in the tarball too, when run by
# make distcheck), and each C, header and shell file under src, include,
# tools, tests, examples, fuzz and bench has an SPDX-License-Identifier
# line within its first three lines.

. "$(dirname "$0")/lib.sh"

src=${srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
if [ -f "$src/LICENSE" ] && grep -q '^MIT License' "$src/LICENSE"; then
    pass "LICENSE is the MIT licence"
else
    fail "LICENSE is missing from $src or is not the MIT licence"
fi
missing=0
n=0
while IFS= read -r -d '' f; do
    n=$((n + 1))
    if ! head -n 3 "$f" | grep -q 'SPDX-License-Identifier: MIT'; then
        fail "no SPDX-License-Identifier line: ${f#"$src"/}"
        missing=$((missing + 1))
    fi
done < <(find "$src/src" "$src/include" "$src/tools" "$src/tests" \
             "$src/examples" "$src/fuzz" "$src/bench" -type f \
             \( -name '*.c' -o -name '*.h' -o -name '*.sh' -o -name '*.h.in' \) \
             -print0)
[ "$missing" -eq 0 ] && pass "all $n source files carry SPDX-License-Identifier: MIT"
finish
