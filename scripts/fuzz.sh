#!/usr/bin/env bash
# Runs peermq's libFuzzer targets (tests/fuzz/) built with clang, ASan and UBSan.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     default 60
# Corpora are kept in build/fuzz/corpus/<target> between runs; a crash leaves its input in
# build/fuzz/crash-* and makes this script exit non-zero. The CI replays the targets
# deterministically instead (ctest -L fuzz).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-60}
build=$root/build/fuzz
cd "$root"

scripts/setup.sh >/dev/null
cmake --preset fuzz -B "$build" >/dev/null
targets=(envelope)
cmake --build "$build" -j2 --target $(printf 'peermq_%s_fuzz ' "${targets[@]}")
for target in "${targets[@]}"; do
    corpus=$build/corpus/$target
    mkdir -p "$corpus"
    echo "fuzz: $target for ${seconds}s (corpus $corpus)"
    (cd "$build" && "$build/tests/fuzz/peermq_${target}_fuzz" -max_total_time="$seconds" \
        -max_len=4096 -print_final_stats=1 "$corpus")
done
