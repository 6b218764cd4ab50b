#!/usr/bin/env bash
# Driver of the install tests (tests/install/CMakeLists.txt sets the PEERMQ_* variables).
#
#   run_install_test.sh install              cmake --install the build tree into a scratch prefix
#   run_install_test.sh cmake-consumer       build + run consumer/ via find_package(peermq)
#   run_install_test.sh pkg-config-consumer  build + run consumer/main.cpp via pkg-config
#
# Works offline; writes only below PEERMQ_WORK_DIR.
set -euo pipefail

step=${1:?usage: run_install_test.sh install|cmake-consumer|pkg-config-consumer}
for var in PEERMQ_SOURCE_DIR PEERMQ_BUILD_DIR PEERMQ_WORK_DIR PEERMQ_CONSUMER_DIR PEERMQ_VERSION \
    PEERMQ_LIBDIR PEERMQ_INCLUDEDIR PEERMQ_CMAKE PEERMQ_CXX; do
    [[ -n ${!var:-} ]] || { echo "install test: $var is not set" >&2; exit 2; }
done
prefix=$PEERMQ_WORK_DIR/prefix
config=${PEERMQ_CONFIG:-}
# The consumer must see only the package under test: no static peers, no user search paths.
unset PEERMQ_PEERS CMAKE_PREFIX_PATH PKG_CONFIG_PATH
export LD_LIBRARY_PATH=$prefix/$PEERMQ_LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

fail() { echo "install test: FAIL: $*" >&2; exit 1; }
run() { echo "+ $*"; "$@"; }

# The one file named $1 below the prefix.
find_one() {
    local found
    mapfile -t found < <(find "$prefix" -name "$1")
    ((${#found[@]} == 1)) || fail "expected one $1 under $prefix, found ${#found[@]}: ${found[*]}"
    echo "${found[0]}"
}

case $step in
install)
    rm -rf "$prefix"
    mkdir -p "$PEERMQ_WORK_DIR"
    run "$PEERMQ_CMAKE" --install "$PEERMQ_BUILD_DIR" ${config:+--config "$config"} \
        --prefix "$prefix" ||
        fail "cmake --install failed (is the whole build tree built? run cmake --build first)"

    # The installed headers are exactly the public headers of the modules.
    expected=$(cd "$PEERMQ_SOURCE_DIR" &&
        find core/include discovery/include patterns/include metrics/include -type f \( -name '*.hpp' -o -name '*.h' \) |
        sed 's|^[a-z]*/include/||' | sort)
    installed=$(cd "$prefix/$PEERMQ_INCLUDEDIR" && find . -type f | sed 's|^\./||' | sort)
    [[ $expected == "$installed" ]] ||
        fail "installed headers differ from the public headers:
$(diff <(echo "$expected") <(echo "$installed") || true)"
    [[ -f $prefix/$PEERMQ_INCLUDEDIR/peermq/peermq.hpp ]] || fail "no peermq/peermq.hpp"

    for lib in peermq_core peermq_discovery peermq_patterns peermq_metrics; do
        compgen -G "$prefix/$PEERMQ_LIBDIR/lib$lib.*" >/dev/null ||
            fail "lib$lib is not installed in $prefix/$PEERMQ_LIBDIR"
    done
    for file in peermqConfig.cmake peermqConfigVersion.cmake peermqTargets.cmake peermq.pc; do
        find_one "$file" >/dev/null
    done
    echo "installed into $prefix:"
    (cd "$prefix" && find . -type f | sort)
    ;;

cmake-consumer)
    [[ -d $prefix ]] || fail "nothing installed in $prefix (the install.prefix test runs first)"
    build=$PEERMQ_WORK_DIR/cmake-consumer
    rm -rf "$build" "$build-version"
    common=(-G "${PEERMQ_GENERATOR:-Unix Makefiles}"
        -DCMAKE_CXX_COMPILER="$PEERMQ_CXX"
        -DCMAKE_CXX_FLAGS="${PEERMQ_CXXFLAGS:-}"
        -DCMAKE_EXE_LINKER_FLAGS="${PEERMQ_LDFLAGS:-}"
        -DCMAKE_BUILD_TYPE="${config:-RelWithDebInfo}"
        -DCMAKE_PREFIX_PATH="$prefix"
        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
        -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
    run "$PEERMQ_CMAKE" -S "$PEERMQ_CONSUMER_DIR" -B "$build" "${common[@]}" \
        -DPEERMQ_REQUIRED_VERSION="$PEERMQ_VERSION"

    # The package found must be the one just installed, not one from the system or the build tree.
    found_dir=$(sed -n 's/^peermq_DIR:PATH=//p' "$build/CMakeCache.txt")
    config_file=$(find_one peermqConfig.cmake)
    [[ $(realpath "$found_dir") == "$(realpath "$(dirname "$config_file")")" ]] ||
        fail "find_package(peermq) used $found_dir, not the package in $prefix"

    run "$PEERMQ_CMAKE" --build "$build" ${config:+--config "$config"}
    run "$build/install_check"

    # SameMajorVersion: asking for the next major version must not find this package.
    next_major=$((${PEERMQ_VERSION%%.*} + 1)).0
    if "$PEERMQ_CMAKE" -S "$PEERMQ_CONSUMER_DIR" -B "$build-version" "${common[@]}" \
        -DPEERMQ_REQUIRED_VERSION="$next_major" >"$build-version.log" 2>&1; then
        fail "find_package(peermq $next_major) accepted version $PEERMQ_VERSION"
    fi
    grep -q "version: $PEERMQ_VERSION" "$build-version.log" ||
        fail "find_package(peermq $next_major) failed for another reason: $(cat "$build-version.log")"
    echo "find_package(peermq $next_major) rejected version $PEERMQ_VERSION as expected"
    ;;

pkg-config-consumer)
    [[ -d $prefix ]] || fail "nothing installed in $prefix (the install.prefix test runs first)"
    pc_file=$(find_one peermq.pc)
    PKG_CONFIG_PATH=$(dirname "$pc_file")
    export PKG_CONFIG_PATH
    run pkg-config --exists --print-errors peermq
    version=$(pkg-config --modversion peermq)
    [[ $version == "$PEERMQ_VERSION" ]] || fail "pkg-config says version $version"
    pc_prefix=$(pkg-config --variable=prefix peermq)
    [[ $(realpath "$pc_prefix") == "$(realpath "$prefix")" ]] ||
        fail "peermq.pc points at prefix $pc_prefix, not $prefix"

    build=$PEERMQ_WORK_DIR/pkg-config-consumer
    rm -rf "$build"
    mkdir -p "$build"
    pc_text=$(pkg-config --cflags --libs peermq)
    read -ra pc_flags <<<"$pc_text"
    read -ra cxxflags <<<"${PEERMQ_CXXFLAGS:-}"
    read -ra ldflags <<<"${PEERMQ_LDFLAGS:-}"
    # Warning flags as in consumer/CMakeLists.txt.
    run "$PEERMQ_CXX" -std=c++20 -Wall -Wextra -Wpedantic -Werror -Wno-missing-field-initializers \
        "${cxxflags[@]}" "$PEERMQ_CONSUMER_DIR/main.cpp" \
        -o "$build/install_check" "${pc_flags[@]}" "${ldflags[@]}"
    run "$build/install_check"
    ;;

*)
    echo "unknown step: $step" >&2
    exit 2
    ;;
esac
