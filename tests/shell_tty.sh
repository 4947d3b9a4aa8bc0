#!/bin/bash
# SPDX-License-Identifier: MIT
# shell_tty.sh - tools/bpool-shell in a real terminal, driven through tmux
# (send-keys, capture-pane): the banner and prompt, tab completion of
# command names, keywords (only those that may come there; key= with no
# blank after it) and file names, history (recalled with Up, kept
# in ~/.bpool_history across sessions), Ctrl-C at the prompt and during a
# long command, and Ctrl-D leaving after writing back.  Completion and
# history are checked only when the shell was built with libedit
# (bpool-shell --version says).  An automake TESTS script: exit 0 pass,
# 1 fail, 77 skip (no tmux), 99 hard error.
#
# Environment: as tests/shell_session.sh (top_builddir, BPOOL_SHELL,
# BPOOL_TEST_TMPDIR); SHELL_TTY_TIMEOUT (seconds to wait for the screen
# to show something, default 30).

set -u

top_builddir=${top_builddir:-$(pwd)}
shell=${BPOOL_SHELL:-$top_builddir/tools/bpool-shell}
if [ ! -x "$shell" ]; then
    echo "FAIL: $shell not found or not executable (build it first)"
    exit 99
fi
if ! command -v tmux >/dev/null 2>&1; then
    echo "SKIP: tmux is not installed (Debian package tmux)"
    exit 77
fi

tmpbase=${BPOOL_TEST_TMPDIR:-$top_builddir}
mkdir -p "$tmpbase" || exit 99
work=$(mktemp -d "$tmpbase/shelltty.XXXXXX") || exit 99
sock="bpool-tty-$$"
tmux_() { tmux -L "$sock" -f /dev/null "$@"; }
trap 'tmux_ kill-server >/dev/null 2>&1; rm -rf "$work"' EXIT
cd "$work" || exit 99

timeout=${SHELL_TTY_TIMEOUT:-30}
failures=0
checks=0
pass() { checks=$((checks + 1)); echo "ok   $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL $*"; }

# The pane's text, wrapped lines joined, into screen.txt.
screen() { tmux_ capture-pane -p -J -t tty -S -500 >screen.txt; }

# shows WHAT REGEX [COUNT]: wait until the screen has COUNT (default 1)
# lines matching REGEX.
shows() {
    local what=$1 re=$2 want=${3:-1} i n
    for ((i = 0; i < timeout * 10; i++)); do
        screen
        n=$(grep -E -c -e "$re" screen.txt)
        if [ "$n" -ge "$want" ]; then pass "$what"; return 0; fi
        sleep 0.1
    done
    fail "$what: the screen has $n lines matching /$re/, expected $want:"
    sed 's/^/  | /' screen.txt
    return 1
}

# keys TEXT: type TEXT literally.  key KEY...: press keys (Enter, Tab...).
keys() { tmux_ send-keys -t tty -l "$1"; sleep 0.2; }
key() { tmux_ send-keys -t tty "$@"; sleep 0.2; }

# start: run the shell in a new tmux session named tty, on a server of
# its own.  Killing the last session ends the server a moment later, and
# a new-session sent meanwhile meets the dying server ("server exited
# unexpectedly", seen on a loaded machine): so the old server is killed
# and the new session tried again until it is there.
start() {
    local i
    tmux_ kill-server >/dev/null 2>&1
    for ((i = 0; i < timeout * 10; i++)); do
        tmux_ new-session -d -s tty -x 160 -y 50 \
            "env HOME='$work' '$shell' --page-size 4096 --frames 8 tty.data; echo EXIT=\$?; sleep 600" \
            2>/dev/null && tmux_ has-session -t tty 2>/dev/null && return 0
        sleep 0.1
    done
    fail "tmux: no session could be started in ${timeout} s"
}

echo "bpool-shell: $shell"
echo "work dir:    $work"
editing=$("$shell" --version | sed -n 's/^line editing: //p')
echo "line editing: $editing"

# ---------------------------------------------------------------------------
# Session 1.
# ---------------------------------------------------------------------------
start
shows "banner" '^bpool-shell [0-9.]+ - type "help"'
shows "the file is opened" '^opened tty.data: 0 pages of 4096 bytes, 8 frames$'
shows "prompt" '^bpool> $'

if [ "$editing" = libedit ]; then
    keys "al"; key Tab; keys "2"; key Enter
    shows "Tab completes a command name (al -> alloc)" '^allocated 2 pages: 0-1$'
    keys "pin 0 w"; key Tab; key Enter
    shows "Tab completes a keyword (w -> write)" '^pinned page 0 for write'
    keys "unpin a"; key Tab; key Enter
    shows "Tab completes unpin a -> all" '^unpinned 1 page$'
    keys "help lo"; key Tab; key Enter
    shows "Tab completes a command name after help" '^usage: load '
    keys "open tty.d"; key Tab; key Enter
    shows "Tab completes a file name after open" '^opened tty.data: 2 pages' 1
    key Up; key Enter
    shows "Up recalls the last line" '^opened tty.data: 2 pages' 2
    keys "open tty.data fr"; key Tab; keys "9"; key Enter
    shows "Tab completes frames= with no blank after it" '^opened tty.data: 2 pages of 4096 bytes, 9 frames$'
    keys "stream 0-1 dep"; key Tab; keys "1"; key Enter
    shows "Tab completes depth= with no blank after it" '^stream 0-1 \(read, depth 1\): 2 pages'
    keys "load seq r"; key Tab; keys "0-1"; key Enter
    shows "Tab after a pattern offers options only (r -> range=)" '^load seq: 2 pins of pages 0-1 '
else
    keys "alloc 2"; key Enter
    shows "a command runs" '^allocated 2 pages: 0-1$'
    echo "(no libedit: completion and history not checked)"
fi

# Ctrl-C at the prompt drops the line being typed.
keys "write 1 0 never"
key C-c
keys "read 1 0 4"; key Enter
shows "Ctrl-C at the prompt drops the line" '^00000000: 0000 0000 '
# Ctrl-C cancels a long command; the shell goes on.
keys "load random 1000000000000"; key Enter
sleep 1
key C-c
shows "Ctrl-C cancels the running command" '^error: load: interrupted$'
shows "the cancelled load reports its pins" '^load random: [0-9]+ pins of pages 0-1 '
keys "pinned"; key Enter
shows "the shell goes on after Ctrl-C" '^no pinned pages$'
# An error ends its line: what follows may rely on it (after a failed
# open, a truncate cut the file still open).
keys "open missing.data; write 1 0 xyz"; key Enter
shows "a failed open at a terminal" '^error: cannot open missing.data'
keys "read 1 0 4"; key Enter
shows "the rest of its line was not run" '^00000000: 0000 0000 ' 2
# Ctrl-D leaves, writing back.
keys "write 1 0 bye"; key Enter
shows "a write" '^wrote 3 bytes to page 1 at offset 0$'
key C-d
shows "Ctrl-D leaves with status 0" '^EXIT=0$'
got=$(od -A n -c -j $((2 * 4096)) -N 3 tty.data | tr -d ' ')
if [ "$got" = bye ]; then pass "Ctrl-D wrote the page back"
else fail "after Ctrl-D page 1 starts with '$got', expected 'bye'"; fi

# ---------------------------------------------------------------------------
# Session 2: the history was kept.
# ---------------------------------------------------------------------------
if [ "$editing" = libedit ]; then
    if [ -s .bpool_history ] && grep -q 'write' .bpool_history; then
        pass "history saved in ~/.bpool_history"
    else
        fail "\$HOME/.bpool_history missing or without the session's lines"
    fi
    start
    shows "second session: prompt" '^bpool> $'
    key Up; key Enter
    shows "second session: Up recalls the last line of the first" '^wrote 3 bytes to page 1 at offset 0$'
    keys "quit"; key Enter
    shows "quit leaves with status 0" '^EXIT=0$'
fi

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ] || exit 1
exit 0
