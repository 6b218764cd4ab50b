#!/usr/bin/env bash
# Runs peermq's libFuzzer targets (tests/fuzz/) built with clang, ASan and UBSan (build/fuzz; with
# -u, UBSan alone in build/fuzz-ubsan, which then stands for build/fuzz below).
#   scripts/fuzz.sh [-t SECONDS | -n RUNS] [-j WORKERS] [-u] [-m] [TARGET...]
#   scripts/fuzz.sh SECONDS                    every target for SECONDS (the old usage)
# Targets: envelope (the wire decoders), node (a node driven by fake peers while a legitimate
# producer and consumer use it: tests/fuzz/node_fuzz.cpp). Default: both.
#   -t SECONDS  run each target this long (default 60)
#   -n RUNS     run each target for this many executions in all (over its workers) instead
#   -j WORKERS  processes per target (libFuzzer -jobs and -workers; default 1). The machine's
#               other users come first: the workers run under `nice -n 10`
#   -u          UBSan without ASan (build/fuzz-ubsan): the node target runs ~1.7 times as many
#               executions in the same time (two workers on two cores, over an hour: ~170
#               against ~100 exec/s each), for runs whose figure is a count of executions; what
#               only ASan sees (a read past a buffer that does not crash) is left to runs of the
#               default build
#   -m          afterwards, minimize the repository's corpus of each target
#               (tests/fuzz/corpus/<target>/, replayed by `ctest -L fuzz`) together with what
#               the runs found (libFuzzer -merge=1 into a fresh directory, which replaces it);
#               commit the result to keep it
# A run reads the repository's corpus and writes what it finds to build/fuzz/corpus/<target>,
# kept between runs. A crash or a failed invariant leaves its input in
# build/fuzz/artifacts/<target>/ and makes this script exit non-zero; replay it with
#   build/fuzz/tests/fuzz/peermq_<target>_fuzz <input>
# Worker logs: build/fuzz/logs/<target>/. The CI replays the targets deterministically instead
# (ctest -L fuzz).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=60
runs=
workers=1
merge=0
if [[ $# -eq 1 && $1 =~ ^[0-9]+$ ]]; then
    seconds=$1
    shift
fi
ubsan_only=0
while getopts "t:n:j:um" option; do
    case $option in
        t) seconds=$OPTARG ;;
        n) runs=$OPTARG ;;
        j) workers=$OPTARG ;;
        m) merge=1 ;;
        u) ubsan_only=1 ;;
        *) sed -n '2,26p' "$0" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
targets=("$@")
((${#targets[@]} > 0)) || targets=(envelope node)
build=$root/build/fuzz
flags=()  # the preset's
if ((ubsan_only)); then
    build=$root/build/fuzz-ubsan
    flags=(-DCMAKE_CXX_FLAGS="-fsanitize=undefined,fuzzer-no-link -fno-omit-frame-pointer -fno-sanitize-recover=undefined")
fi
cd "$root"

scripts/setup.sh >/dev/null
cmake --preset fuzz -B "$build" "${flags[@]}" >/dev/null
binaries=()
for target in "${targets[@]}"; do binaries+=("peermq_${target}_fuzz"); done
cmake --build "$build" -j2 --target "${binaries[@]}"

# Per target: the longest input, and what else it needs. The node target keeps a node and its
# state from one input to the next (an attack is a sequence), so an input that allocates more
# than it frees is the rule: libFuzzer's per-input leak check would run LeakSanitizer after
# nearly every input. The target bounds its memory itself (its RSS invariant); a per-input
# timeout above its own watchdog's 60 s. Its node's threads (timers, retries) add coverage of
# their own, so libFuzzer would never find the time to grow its inputs: they may be long at once.
# LeakSanitizer's check at exit is left to the ASan test pass (scripts/test.sh), whose nodes are
# all closed: this target never frees its harness, and frames still in flight inside libzmq when
# the process ends were reported (114 bytes once in 1.3 M executions, allocated by libzmq).
# Its inputs cost milliseconds each, so libFuzzer's entropic power schedule, whose bookkeeping
# took 18 % of a worker's time, is left off (-entropic=0: 15 % more executions in the same time).
declare -A environment=(
    [envelope]=""
    [node]="detect_leaks=0"
)
declare -A options=(
    [envelope]="-max_len=4096"
    [node]="-max_len=2048 -len_control=0 -detect_leaks=0 -timeout=120 -entropic=0"
)
# A minimized corpus keeps the inputs that reach new code: for the node target, whose threads
# make hit counts vary from run to run, by edges only (2678 inputs by hit counts, 582 by edges).
declare -A merge_options=(
    [envelope]=""
    [node]="-use_counters=0"
)

status=0
for target in "${targets[@]}"; do
    binary=$build/tests/fuzz/peermq_${target}_fuzz
    corpus=$build/corpus/$target
    artifacts=$build/artifacts/$target
    logs=$build/logs/$target
    mkdir -p "$corpus" "$artifacts" "$logs"
    seeds=()
    [[ -d tests/fuzz/corpus/$target ]] && seeds=("$root/tests/fuzz/corpus/$target")
    limit=(-max_total_time="$seconds")
    what="${seconds}s"
    if [[ -n $runs ]]; then
        limit=(-runs=$(((runs + workers - 1) / workers)))
        what="$runs runs"
    fi
    echo "fuzz: $target for $what, $workers worker(s) (corpus $corpus, artifacts $artifacts)"
    parallel=()
    ((workers > 1)) && parallel=(-jobs="$workers" -workers="$workers")
    started=$(date +%s)
    # shellcheck disable=SC2086 # the options are words
    if ! (cd "$logs" && ASAN_OPTIONS=${environment[$target]} nice -n 10 "$binary" "${limit[@]}" \
        "${parallel[@]}" ${options[$target]} \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "${seeds[@]}"); then
        status=1
    fi
    echo "fuzz: $target ran for $(($(date +%s) - started))s"
    if ((workers > 1)); then
        grep -h -E '^(Done|stat::)' "$logs"/fuzz-*.log || true
    fi
    if compgen -G "$artifacts/*" >/dev/null; then
        echo "fuzz: $target: failing inputs in $artifacts:" >&2
        ls "$artifacts" >&2
        status=1
    fi
    if ((merge)) && [[ $status -eq 0 ]]; then
        fresh=$(mktemp -d "$build/merge-$target.XXXXXX")
        # shellcheck disable=SC2086
        (cd "$logs" && ASAN_OPTIONS=${environment[$target]} nice -n 10 "$binary" -merge=1 \
            ${options[$target]} ${merge_options[$target]} "$fresh" "${seeds[@]}" "$corpus")
        mkdir -p "tests/fuzz/corpus/$target"
        rm -f "tests/fuzz/corpus/$target"/*
        mv "$fresh"/* "tests/fuzz/corpus/$target/"
        rmdir "$fresh"
        count=$(find "tests/fuzz/corpus/$target" -type f | wc -l)
        echo "fuzz: tests/fuzz/corpus/$target: $count inputs," \
            "$(du -sh "tests/fuzz/corpus/$target" | cut -f1)"
    fi
done
exit $status
