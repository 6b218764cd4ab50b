#!/usr/bin/env bash
# Builds and runs install_consumer/ against the peermq that tests/install put into a scratch
# prefix: once through find_package(peermq COMPONENTS metrics), once through pkg-config.
#
#   run_install_consumer.sh cmake|pkg-config
set -euo pipefail

how=${1:?usage: run_install_consumer.sh cmake|pkg-config}
for var in PEERMQ_PREFIX PEERMQ_WORK_DIR PEERMQ_CONSUMER_DIR PEERMQ_CMAKE PEERMQ_CXX; do
    [[ -n ${!var:-} ]] || { echo "metrics install test: $var is not set" >&2; exit 2; }
done
fail() { echo "metrics install test: FAIL: $*" >&2; exit 1; }
run() { echo "+ $*"; "$@"; }
[[ -d $PEERMQ_PREFIX ]] || fail "nothing installed in $PEERMQ_PREFIX (install.prefix runs first)"
unset PEERMQ_PEERS PEERMQ_METRICS CMAKE_PREFIX_PATH PKG_CONFIG_PATH
build=$PEERMQ_WORK_DIR/$how
rm -rf "$build"
mkdir -p "$build"

case $how in
cmake)
    run "$PEERMQ_CMAKE" -S "$PEERMQ_CONSUMER_DIR" -B "$build" -G "${PEERMQ_GENERATOR:-Unix Makefiles}" \
        -DCMAKE_CXX_COMPILER="$PEERMQ_CXX" -DCMAKE_CXX_FLAGS="${PEERMQ_CXXFLAGS:-}" \
        -DCMAKE_EXE_LINKER_FLAGS="${PEERMQ_LDFLAGS:-}" -DCMAKE_PREFIX_PATH="$PEERMQ_PREFIX" \
        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
    run "$PEERMQ_CMAKE" --build "$build"
    ;;
pkg-config)
    pc_file=$(find "$PEERMQ_PREFIX" -name peermq.pc | head -n1)
    [[ -n $pc_file ]] || fail "no peermq.pc under $PEERMQ_PREFIX"
    export PKG_CONFIG_PATH=${pc_file%/*}
    pc_text=$(pkg-config --cflags --libs peermq)
    read -ra pc_flags <<<"$pc_text"
    read -ra cxxflags <<<"${PEERMQ_CXXFLAGS:-}"
    read -ra ldflags <<<"${PEERMQ_LDFLAGS:-}"
    run "$PEERMQ_CXX" -std=c++20 -Wall -Wextra -Wpedantic -Werror -Wno-missing-field-initializers \
        "${cxxflags[@]}" "$PEERMQ_CONSUMER_DIR/main.cpp" -o "$build/metrics_install_check" \
        "${pc_flags[@]}" "${ldflags[@]}"
    ;;
*)
    echo "unknown way: $how" >&2
    exit 2
    ;;
esac
run "$build/metrics_install_check"
