#!/usr/bin/env bash
# Installs the Debian 12 packages peermq needs to build, test and run its demo. Idempotent: when
# every package is already installed it changes nothing and needs neither root nor the network.
# Runs as root, or through sudo otherwise. Usage: scripts/setup.sh
set -euo pipefail

packages=(
    build-essential cmake pkg-config git clang
    libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libsqlite3-dev sqlite3 libxxhash-dev
    libavahi-client-dev libavahi-core-dev avahi-daemon avahi-utils dbus
    libgtest-dev libgmock-dev libbenchmark-dev
    libcli11-dev nlohmann-json3-dev libcpp-httplib-dev doxygen
    iproute2 procps python3 python3-prometheus-client curl
)

is_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

# The PID of a running avahi-daemon according to its pid file, or nothing.
avahi_daemon_pid() {
    local pid
    pid=$(cat /run/avahi-daemon/pid 2>/dev/null) || return 0
    [[ $pid =~ ^[0-9]+$ && $(cat "/proc/$pid/comm" 2>/dev/null) == avahi-daemon ]] && echo "$pid"
    return 0
}

summary() {
    echo "setup: cmake $(cmake --version | head -1 | awk '{print $3}')," \
        "g++ $(g++ -dumpfullversion), clang++ $(clang++ -dumpversion), libzmq $(pkg-config --modversion libzmq)," \
        "avahi $(pkg-config --modversion avahi-client), sqlite $(pkg-config --modversion sqlite3)"
}

missing=()
for package in "${packages[@]}"; do
    is_installed "$package" || missing+=("$package")
done

if ((${#missing[@]} == 0)); then
    echo "setup: all ${#packages[@]} packages are installed; nothing to do."
    summary
    exit 0
fi

echo "setup: installing ${#missing[@]} of ${#packages[@]} packages: ${missing[*]}"
sudo=()
if ((EUID != 0)); then
    command -v sudo >/dev/null || { echo "setup: not root and no sudo; run as root" >&2; exit 1; }
    sudo=(sudo)
fi
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

avahi_before=$(avahi_daemon_pid)
# No recommends: avahi-daemon would pull in libnss-mdns, which changes host name resolution.
"${apt[@]}" update
"${apt[@]}" install --no-install-recommends "${missing[@]}"

# An avahi-daemon started by the package install announces on every interface (eth0 included);
# peermq's tests run their own, restricted to loopback. Stop one the install started.
avahi_after=$(avahi_daemon_pid)
if [[ -z $avahi_before && -n $avahi_after ]]; then
    echo "setup: WARNING: installing avahi-daemon started it (PID $avahi_after) on all" \
        "interfaces; stopping it. Disable its service if your init system restarts it." >&2
    "${sudo[@]}" kill "$avahi_after"
    for _ in $(seq 50); do
        [[ -d /proc/$avahi_after ]] || break
        sleep 0.1
    done
    if [[ -d /proc/$avahi_after ]]; then
        echo "setup: WARNING: avahi-daemon $avahi_after is still running" >&2
    fi
fi

still_missing=()
for package in "${packages[@]}"; do
    is_installed "$package" || still_missing+=("$package")
done
if ((${#still_missing[@]} > 0)); then
    echo "setup: still not installed: ${still_missing[*]}" >&2
    exit 1
fi
echo "setup: installed ${missing[*]}"
summary
