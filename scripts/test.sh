#!/usr/bin/env bash
# Installs the dependencies, builds peermq with the `ci` preset (warnings are errors) and runs every
# test: unit, integration, install, system and fault. Arguments go to ctest:
#   scripts/test.sh              everything
#   scripts/test.sh -L unit      one label
#   scripts/test.sh -R Journal   by name
# PEERMQ_BUILD_DIR overrides the build directory (default: build/ci).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${PEERMQ_BUILD_DIR:-$root/build/ci}
cd "$root"

scripts/setup.sh
cmake --preset ci -B "$build"
cmake --build "$build" -j2
exec ctest --test-dir "$build" --output-on-failure --no-tests=error -j2 "$@"
