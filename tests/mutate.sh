#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# mutate.sh - mutation testing: put one small, deliberate bug into the
# sources at a time (a "mutant", tests/mutants/*.mut), build, run the tests
# that should notice, and report whether they did (killed) or not
# (survived).  A surviving mutant is a bug the suite is blind to: either a
# test is missing, or the mutant changes nothing observable (then its file
# says "equivalent:" and why).
#
# Usage: tests/mutate.sh [OPTION...] [MUTANT...]
#   MUTANT        names (file names without .mut) or paths; default: all
#   --ci          only the mutants marked "ci: yes" (the short CI subset)
#   --list        list the mutants and exit
#   --timeout S   time limit of one test program (default 300 s)
#   --lanes N     mutants run N at a time, each lane in a tree of its own
#                 (default: 2 when there are 2 or more CPUs, else 1)
#   --keep        keep the scratch tree (printed at the end)
#   -h, --help    this text
#
# The sources are copied (git ls-files, or the whole tree) into a scratch
# directory, configured and built once there; the tree you run it from is
# never modified.  Each mutant is applied to the copy, the tests it names
# are built and run - with `make check TESTS=...` when it names a script,
# else with `make check-TESTS`, which rebuilds only the Check programs it
# names - and the file is restored.  With lanes, the built copy is copied
# once per lane (its directory names have the
# same length, so the absolute paths that configure and libtool wrote,
# in text files and binaries alike, are rewritten in place) and each
# lane takes the next mutant from a shared queue: the tests spend much
# of their time waiting for I/O, so two lanes on two CPUs take
# about two thirds of one lane's time (doc/analysis.md).  Results are
# printed as they come.
# Exit status: 0 when every mutant not marked equivalent was killed, 1 when
# one survived or a mutant no longer applies (its text is not found
# exactly once: the source changed, so update the mutant), 2 on usage.
#
# A mutant file:
#   # what the bug is and what it would cost a user (any number of lines)
#   file: src/pool.c
#   tests: tests/check_checksum tests/check_pool
#   ci: yes                        (optional: part of the CI subset)
#   case: NAME                     (optional: run only this Check test
#                                  case of the programs, CK_RUN_CASE)
#   engine: io_uring               (optional: run the tests on this I/O
#                                  engine, BPOOL_IO_ENGINE)
#   equivalent: why it cannot be observed   (optional)
#   @@ old
#   exact lines of the source (found exactly once in the file)
#   @@ new
#   the lines that replace them
#   @@ end

set -uo pipefail

prog=mutate.sh
here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/.." && pwd)
mutdir=$here/mutants
timeout_s=300
ci_only=no
list_only=no
keep=no
lanes=
names=()

usage() { sed -n '/^# Usage:/,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//' | sed '$d'; }

while [ $# -gt 0 ]; do
    case $1 in
        --ci) ci_only=yes ;;
        --list) list_only=yes ;;
        --keep) keep=yes ;;
        --timeout) timeout_s=${2:?--timeout needs a value}; shift ;;
        --lanes) lanes=${2:?--lanes needs a value}; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "$prog: unknown option '$1'"; echo "Try '$prog --help' for more information."; exit 2 ;;
        *) names+=("$1") ;;
    esac
    shift
done

# field FILE NAME: the value of "NAME: value" in a mutant's header.
field() { sed -n "/^@@ old/q; s/^$2: *//p" "$1" | head -n 1; }

mutants=()
if [ ${#names[@]} -eq 0 ]; then
    for m in "$mutdir"/*.mut; do mutants+=("$m"); done
else
    for n in "${names[@]}"; do
        if [ -f "$n" ]; then mutants+=("$n")
        elif [ -f "$mutdir/$n.mut" ]; then mutants+=("$mutdir/$n.mut")
        else echo "$prog: no mutant '$n' in $mutdir"; exit 2
        fi
    done
fi
if [ "$ci_only" = yes ]; then
    sel=()
    for m in "${mutants[@]}"; do
        [ "$(field "$m" ci)" = yes ] && sel+=("$m")
    done
    mutants=("${sel[@]}")
fi
if [ "$list_only" = yes ]; then
    for m in "${mutants[@]}"; do
        printf '%-40s %-22s %s%s\n' "$(basename "$m" .mut)" "$(field "$m" file)" \
            "$(field "$m" tests)" "$([ -n "$(field "$m" equivalent)" ] && echo '  (equivalent)')"
    done
    exit 0
fi
[ ${#mutants[@]} -gt 0 ] || { echo "$prog: no mutants selected"; exit 2; }

# --- a private copy of the tree, configured and built once ---------------
work=$(mktemp -d "${TMPDIR:-/var/tmp}/bpool-mutate.XXXXXX") || exit 1
# The name configure records (pwd): the lanes' rewrite looks for it.
work=$(cd "$work" && pwd -P) || exit 1
[ "$keep" = yes ] || trap 'rm -rf "$work"' EXIT
tree=$work/lane1
mkdir -p "$tree"
if git -C "$srcdir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$srcdir" && git ls-files -z --cached --others --exclude-standard |
        xargs -0 tar cf - 2>/dev/null) | tar xf - -C "$tree"
else
    (cd "$srcdir" && tar cf - --exclude=./_ci --exclude='*.o' .) | tar xf - -C "$tree"
fi
jobs=$(nproc 2>/dev/null || echo 2)
# The test programs to build up front: only the mutants' own when they
# name Check programs alone (the CI subset: 8 of some 40 programs); every
# one when a script is among their tests, as a script may run any.
needed=
for m in "${mutants[@]}"; do
    for t in $(field "$m" tests); do
        case $t in
            *.sh) needed=ALL; break 2 ;;
            *) case " $needed " in *" $t "*) ;; *) needed="$needed $t" ;; esac ;;
        esac
    done
done
# Check programs alone need neither the tools nor a static library (half
# of every library compile): the copy builds just those programs, and
# the library they link, which saves about a third of the build.
if [ "$needed" = ALL ]; then
    build_first=(all) build_tests=(check TESTS=) configure_opts=()
else
    build_first=() build_tests=($needed) configure_opts=(--disable-static)
fi
echo "$prog: building a copy of the tree in $tree"
t0=$(date +%s)
if ! (cd "$tree" && autoreconf -fi >/dev/null 2>&1 &&
      ./configure -q "${configure_opts[@]}" >/dev/null &&
      { [ ${#build_first[@]} -eq 0 ] ||
        make -j"$jobs" "${build_first[@]}" >/dev/null 2>&1; } &&
      make -j"$jobs" "${build_tests[@]}" >/dev/null 2>&1); then
    echo "$prog: the unmutated tree does not build; fix that first"
    exit 1
fi
echo "$prog: built in $(( $(date +%s) - t0 )) s; ${#mutants[@]} mutants"

# apply OLD NEW FILE: replace the text of OLD (a file) by NEW's in FILE,
# which must hold it exactly once.
apply() {
    OLD=$1 NEW=$2 perl -0777 -i -pe '
        BEGIN { local $/; open(my $o, "<", $ENV{OLD}) or die; $old = <$o>;
                open(my $n, "<", $ENV{NEW}) or die; $new = <$n>; }
        $count = () = /\Q$old\E/g;
        die "found $count times\n" unless $count == 1;
        s/\Q$old\E/$new/;' "$3"
}

# run_mutant LANE MUTANT: apply MUTANT in lane LANE's tree, build and run
# its tests, restore the file; prints the result line and, for a mutant
# not killed, a line "NOT name (why)" to the lane's survivors file.
run_mutant() {
    local lane=$1 m=$2 lt=$work/lane$1 lw=$work/scratch$1
    local name file tests equiv tcase engine start err verdict progs t run_target
    mkdir -p "$lw"
    name=$(basename "$m" .mut)
    file=$(field "$m" file)
    tests=$(field "$m" tests)
    equiv=$(field "$m" equivalent)
    tcase=$(field "$m" case)
    engine=$(field "$m" engine)
    sed -n '/^@@ old$/,/^@@ new$/p' "$m" | sed '1d;$d' >"$lw/old"
    sed -n '/^@@ new$/,/^@@ end$/p' "$m" | sed '1d;$d' >"$lw/new"
    # The last line of each side has its newline, as the source's does.
    cp "$lt/$file" "$lw/orig"
    start=$(date +%s)
    if ! err=$(apply "$lw/old" "$lw/new" "$lt/$file" 2>&1); then
        verdict=STALE
        echo "$name (does not apply: $err)" >>"$lw/survivors"
    else
        # A script runs the tools and the shared library: `make check`
        # rebuilds all of them.  Check programs alone need only themselves
        # (built just below) and check-TESTS, which builds nothing else.
        progs= run_target=check-TESTS
        for t in $tests; do
            case $t in *.sh) run_target=check ;; *) progs="$progs $t" ;; esac
        done
        if ! (cd "$lt" && make -j"$jobs" $progs >"$lw/build.log" 2>&1); then
            verdict=KILLED   # by the compiler: it does not even build
        elif (cd "$lt" && rm -f tests/*.log tests/*.trs &&
              env ${tcase:+CK_RUN_CASE="$tcase"} \
                  ${engine:+BPOOL_IO_ENGINE="$engine"} \
              timeout -k 10 $((timeout_s * $(echo "$tests" | wc -w) + 60)) \
                  make "$run_target" TESTS="$tests" check_PROGRAMS="$progs" \
                      >"$lw/check.log" 2>&1); then
            verdict=SURVIVED
        else
            verdict=KILLED
        fi
        cp "$lw/orig" "$lt/$file"
        touch "$lt/$file"
        if [ "$verdict" = SURVIVED ]; then
            if [ -n "$equiv" ]; then
                verdict=EQUIVALENT
            else
                echo "$name" >>"$lw/survivors"
            fi
        elif [ -n "$equiv" ]; then
            verdict="KILLED (marked equivalent: remove the mark)"
        fi
    fi
    printf '%-11s %-40s %4ss  %s\n' "$verdict" "$name" \
        "$(( $(date +%s) - start ))" "$tests"
}

# The lanes' trees: copies of the built one, their paths rewritten.
[ -n "$lanes" ] || { lanes=1; [ "$jobs" -ge 2 ] && lanes=2; }
[ "$lanes" -gt ${#mutants[@]} ] && lanes=${#mutants[@]}
[ "$lanes" -ge 1 ] || lanes=1
[ "$lanes" -le 9 ] || lanes=9   # lane1..lane9: one length, see above
for ((l = 2; l <= lanes; l++)); do
    cp -a "$tree" "$work/lane$l"
    grep -rlF -- "$tree" "$work/lane$l" | while IFS= read -r f; do
        FROM=$tree TO=$work/lane$l perl -e '
            my $f = shift; my @st = stat $f or die;
            open(my $in, "<:raw", $f) or die; local $/; my $d = <$in>; close $in;
            $d =~ s/\Q$ENV{FROM}\E/$ENV{TO}/g;
            open(my $out, ">:raw", $f) or die; print $out $d; close $out;
            utime $st[8], $st[9], $f;' "$f"
    done
    # A lane that still names lane 1 would test lane 1's programs, and one
    # that does not build would "kill" every mutant: prove neither.
    if grep -rqF -- "$tree" "$work/lane$l"; then
        echo "$prog: the copy of the tree for lane $l still names $tree"
        exit 1
    fi
    if ! (cd "$work/lane$l" &&
          make -j"$jobs" "${build_first[@]}" "${build_tests[@]}" >/dev/null 2>&1); then
        echo "$prog: the copy of the tree for lane $l does not build"
        exit 1
    fi
done
[ "$lanes" -gt 1 ] && echo "$prog: $lanes lanes"

# Each lane takes the next mutant from the queue (a counter under flock).
echo 0 >"$work/next"
lane_worker() {
    local lane=$1 i
    while :; do
        i=$(flock "$work/next" bash -c 'i=$(cat "$1"); echo $((i + 1)) >"$1"; echo "$i"' _ "$work/next")
        case $i in ''|*[!0-9]*) echo "$prog: lane $lane: the queue failed"; break ;; esac
        [ "$i" -lt ${#mutants[@]} ] || break
        run_mutant "$lane" "${mutants[$i]}" | tee -a "$work/results.$lane"
    done
}
for ((l = 1; l <= lanes; l++)); do
    lane_worker "$l" &
done
wait

killed=0 survived=0 equivalent=0 stale=0
survivors=()
while IFS= read -r line; do
    case $line in
        KILLED*) killed=$((killed + 1)) ;;
        SURVIVED*) survived=$((survived + 1)) ;;
        EQUIVALENT*) equivalent=$((equivalent + 1)) ;;
        STALE*) stale=$((stale + 1)) ;;
    esac
done < <(cat "$work"/results.* 2>/dev/null)
while IFS= read -r line; do
    survivors+=("$line")
done < <(cat "$work"/scratch*/survivors 2>/dev/null)

# Every mutant has its line, or the run failed (a lane died, the queue
# broke): a mutant that did not run is not a mutant killed.
ran=$((killed + survived + equivalent + stale))
if [ "$ran" -ne ${#mutants[@]} ]; then
    echo "$prog: $ran of ${#mutants[@]} mutants ran"
    stale=$((stale + ${#mutants[@]} - ran))
    survivors+=("$(( ${#mutants[@]} - ran )) mutants that did not run")
fi
considered=$((killed + survived))
score=100
[ "$considered" -gt 0 ] && score=$((100 * killed / considered))
echo
echo "mutants: ${#mutants[@]}; killed $killed, survived $survived," \
     "equivalent $equivalent, stale $stale; score ${score}% of non-equivalent"
for s in "${survivors[@]}"; do echo "  not killed: $s"; done
[ "$keep" = yes ] && echo "scratch tree kept: $work"
[ "$survived" -eq 0 ] && [ "$stale" -eq 0 ]
