#!/usr/bin/env bash
# Installs the dependencies, builds peermq with the `ci` preset (warnings are errors) and runs every
# test: unit, integration, hostile, security, install, system, fault, fuzz replays, CLI, metrics,
# examples. Then, on a full run, compiles the libraries and the tool with clang's thread-safety
# analysis (the `tsa` preset: which lock guards what, docs/design/threads.md), and builds the
# unit, integration, hostile and security tests again under AddressSanitizer and
# UndefinedBehaviorSanitizer (the `asan` preset, with LeakSanitizer) and runs them there too.
# Arguments go to ctest, and a run with arguments skips both passes:
#   scripts/test.sh              everything but the `scale` label (the 32-host lab: ctest -L scale),
#                                then the thread-safety and sanitizer passes
#   scripts/test.sh -L unit      one label
#   scripts/test.sh -R Journal   by name
# PEERMQ_BUILD_DIR overrides the build directory (default: build/ci), PEERMQ_ASAN_BUILD_DIR the
# sanitizer one (default: build/asan), PEERMQ_TSA_BUILD_DIR the thread-safety one (default:
# build/tsa). PEERMQ_SANITIZE=0 skips the sanitizer pass, =1 runs it even with arguments (which
# it then also gets); PEERMQ_TSA=0 skips the thread-safety pass, =1 runs it even with arguments.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${PEERMQ_BUILD_DIR:-$root/build/ci}
asan_build=${PEERMQ_ASAN_BUILD_DIR:-$root/build/asan}
tsa_build=${PEERMQ_TSA_BUILD_DIR:-$root/build/tsa}
sanitize=${PEERMQ_SANITIZE:-$(( $# == 0 ? 1 : 0 ))}
tsa=${PEERMQ_TSA:-$(( $# == 0 ? 1 : 0 ))}
cd "$root"

scripts/setup.sh
cmake --preset ci -B "$build"
cmake --build "$build" -j2
status=0
selection=("$@")
(($# == 0)) && selection=(-LE scale)
ctest --test-dir "$build" --output-on-failure --no-tests=error -j2 "${selection[@]}" || status=$?

if [[ $tsa == 1 ]]; then
    # A compile-time check: the tests hold no annotated lock, so only the library code is built.
    echo "test: the libraries and the tool under clang -Wthread-safety ($tsa_build)"
    cmake --preset tsa -B "$tsa_build" -DPEERMQ_BUILD_TESTS=OFF -DPEERMQ_BUILD_BENCH=OFF \
        -DPEERMQ_BUILD_EXAMPLES=OFF
    cmake --build "$tsa_build" -j2 --target peermq_core peermq_discovery peermq_patterns \
        peermq_metrics peermq_cli || status=$?
fi

if [[ $sanitize == 1 ]]; then
    echo "test: the unit, integration, hostile and security tests again under ASan + UBSan ($asan_build)"
    cmake --preset asan -B "$asan_build" -DPEERMQ_WERROR=ON -DPEERMQ_BUILD_BENCH=OFF \
        -DPEERMQ_BUILD_EXAMPLES=OFF -DPEERMQ_BUILD_TOOLS=OFF
    cmake --build "$asan_build" -j2 --target peermq_unit_tests peermq_integration_tests \
        peermq_hostile_tests peermq_security_tests peermq_driver
    # Any report fails the test: UBSan aborts (-fno-sanitize-recover), LeakSanitizer at exit.
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest --test-dir "$asan_build" --output-on-failure --no-tests=error -j2 \
        -L 'unit|integration|hostile|security' -LE install "$@" || status=$?
fi
exit "$status"
