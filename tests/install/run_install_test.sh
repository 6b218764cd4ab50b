#!/usr/bin/env bash
# Driver of the install tests (tests/install/CMakeLists.txt sets the PEERMQ_* variables).
#
#   run_install_test.sh install              cmake --install the build tree into a scratch prefix
#   run_install_test.sh cmake-consumer       build + run consumer/ via find_package(peermq)
#   run_install_test.sh pkg-config-consumer  build + run consumer/main.cpp via pkg-config
#   run_install_test.sh debs                 cpack the Debian packages, check what each holds and
#                                            that apt can install them, unpack them into a scratch
#                                            root and build + run the README's first program there
#
# Works offline; writes only below PEERMQ_WORK_DIR.
set -euo pipefail

step=${1:?usage: run_install_test.sh install|cmake-consumer|pkg-config-consumer|debs}
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

debs)
    debs=$PEERMQ_WORK_DIR/debs
    root=$PEERMQ_WORK_DIR/deb-root
    rm -rf "$debs" "$root"
    mkdir -p "$debs" "$root"
    cpack_bin=$(dirname "$PEERMQ_CMAKE")/cpack
    run "$cpack_bin" --config "$PEERMQ_BUILD_DIR/CPackConfig.cmake" -B "$debs" ${config:+-C "$config"} ||
        fail "cpack failed (is the whole build tree built?)"
    dev=$(compgen -G "$debs/peermq-dev_${PEERMQ_VERSION}_*.deb") || fail "no peermq-dev package"
    tools=$(compgen -G "$debs/peermq-tools_${PEERMQ_VERSION}_*.deb") || fail "no peermq-tools package"
    for deb in "$dev" "$tools"; do run dpkg-deb --info "$deb"; done

    # What each holds: the tool in peermq-tools; libraries, headers and package files in -dev.
    contents() { dpkg-deb --contents "$1" | awk '{print $6}'; }
    [[ $(contents "$tools" | grep -c '^\./usr/bin/peermq$') == 1 ]] || fail "peermq-tools has no /usr/bin/peermq"
    contents "$tools" | grep -qx './usr/lib/systemd/system/peermq-consume@.service' ||
        fail "peermq-tools has no systemd unit"
    for file in ./usr/include/peermq/peermq.hpp ./usr/lib/libpeermq_core.a \
        ./usr/lib/cmake/peermq/peermqConfig.cmake ./usr/lib/pkgconfig/peermq.pc; do
        contents "$dev" | grep -qx "$file" || fail "peermq-dev has no $file"
    done
    # apt would install them here: every dependency they declare is satisfiable (a dry run).
    run apt-get install --simulate --no-install-recommends "$dev" "$tools" >"$debs/apt.log" 2>&1 ||
        fail "apt-get install --simulate refused the packages: $(tail -20 "$debs/apt.log")"
    grep -q '^Inst peermq-dev ' "$debs/apt.log" || fail "apt would not install peermq-dev: $(cat "$debs/apt.log")"
    grep -q '^Inst peermq-tools ' "$debs/apt.log" || fail "apt would not install peermq-tools"

    # Unpacked into a scratch root (what dpkg puts on disk, without touching this system).
    for deb in "$dev" "$tools"; do run dpkg-deb -x "$deb" "$root"; done
    run "$root/usr/bin/peermq" --version
    # The unit as systemd reads it, pointed at the unpacked tool (where systemd-analyze exists).
    if command -v systemd-analyze >/dev/null; then
        unit=$PEERMQ_WORK_DIR/peermq-consume@check.service
        sed "s|/usr/bin/peermq|$root/usr/bin/peermq|" \
            "$root/usr/lib/systemd/system/peermq-consume@.service" >"$unit"
        verified=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $verified"
        [[ -z $verified ]] || fail "systemd-analyze verify: $verified"
        echo "systemd-analyze verify: the unit is clean"
    else
        echo "systemd-analyze is not installed: the unit is not verified"
    fi

    # The README's first program, built against the unpacked peermq-dev only, and run.
    program=$PEERMQ_BUILD_DIR/tests/docs/readme_first_program.cpp
    [[ -f $program ]] || fail "no $program (the docs tests generate it)"
    src=$PEERMQ_WORK_DIR/deb-consumer
    build=$PEERMQ_WORK_DIR/deb-consumer-build
    rm -rf "$src" "$build"
    mkdir -p "$src"
    cp "$program" "$src/readme_first_program.cpp"
    cat >"$src/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(readme_first_program LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(peermq 0.1 REQUIRED)
find_package(Threads REQUIRED)
add_executable(first_program readme_first_program.cpp)
target_link_libraries(first_program PRIVATE peermq::peermq Threads::Threads)
CMAKE
    run "$PEERMQ_CMAKE" -S "$src" -B "$build" -G "${PEERMQ_GENERATOR:-Unix Makefiles}" \
        -DCMAKE_CXX_COMPILER="$PEERMQ_CXX" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_PREFIX_PATH="$root/usr" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
        -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
    found_dir=$(sed -n 's/^peermq_DIR:PATH=//p' "$build/CMakeCache.txt")
    [[ $(realpath "$found_dir") == "$(realpath "$root/usr/lib/cmake/peermq")" ]] ||
        fail "find_package(peermq) used $found_dir, not the unpacked package"
    run "$PEERMQ_CMAKE" --build "$build"
    run "$PEERMQ_CMAKE" -DPROGRAM="$build/first_program" \
        -P "$PEERMQ_SOURCE_DIR/tests/docs/check_first_program.cmake"
    echo "packages: $(basename "$dev") $(du -h "$dev" | cut -f1), $(basename "$tools") $(du -h "$tools" | cut -f1)"
    ;;

*)
    echo "unknown step: $step" >&2
    exit 2
    ;;
esac
