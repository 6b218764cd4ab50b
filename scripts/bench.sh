#!/usr/bin/env bash
# Builds peermq_bench with the `release` preset and runs it. Arguments go to peermq_bench:
#   scripts/bench.sh                      every scenario, about a minute
#   scripts/bench.sh --quick              3 shorter runs per figure
#   scripts/bench.sh --scenario latency   one scenario (raw, best_effort, memory, group_commit,
#                                         latency; `secure`: CurveZMQ against plain, not in the
#                                         default run; `all`: every one)
# PEERMQ_BUILD_DIR overrides the build directory (default: build/release).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${PEERMQ_BUILD_DIR:-$root/build/release}
cd "$root"

if [[ -x scripts/setup.sh ]]; then
    scripts/setup.sh
fi
cmake --preset release -B "$build"
cmake --build "$build" -j2 --target peermq_bench
exec "$build/bench/peermq_bench" "$@"
