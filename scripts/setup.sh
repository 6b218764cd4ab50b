#!/usr/bin/env bash
# Installs the Debian 12 packages peermq needs to build, test and run its demo. Idempotent: when
# every package is already installed it changes nothing and needs neither root nor the network.
# Runs as root, or through sudo otherwise.
#   scripts/setup.sh [--enable-avahi-at-boot]
# It says what it changes: the packages it installs (those asked for and their dependencies) and
# the installed ones it upgrades, from apt's own plan; apt's output goes to a log
# ($TMPDIR/peermq-setup-apt.log), shown when apt fails. avahi-daemon's package enables the daemon
# at boot, on every interface, and prometheus's starts a server on every interface: no service
# starts while it installs (a policy-rc.d that denies, unless one is there already), and the
# services it installed are disabled at boot again (systemd) unless --enable-avahi-at-boot for
# avahi-daemon. peermq's tests and demo start their own daemon (on lo only) and their own
# Prometheus (on 127.0.0.1), each stopped by PID.
set -euo pipefail

enable_avahi=0
case "${1:-}" in
    '') ;;
    --enable-avahi-at-boot) enable_avahi=1 ;;
    *) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac

packages=(
    build-essential cmake pkg-config git clang
    libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libsqlite3-dev sqlite3 libxxhash-dev
    libavahi-client-dev libavahi-core-dev avahi-daemon avahi-utils dbus
    libgtest-dev libgmock-dev libbenchmark-dev
    libcli11-dev nlohmann-json3-dev libcpp-httplib-dev libsystemd-dev doxygen
    iproute2 nftables procps python3 python3-prometheus-client prometheus curl
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

count() {  # N NOUN: "1 package", "3 packages", "2 dependencies"
    if (($1 == 1)); then echo "1 $2"; elif [[ $2 == *y ]]; then echo "$1 ${2%y}ies"; else echo "$1 ${2}s"; fi
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

echo "setup: ${#missing[@]} of ${#packages[@]} packages missing: ${missing[*]}"
sudo=()
if ((EUID != 0)); then
    command -v sudo >/dev/null || { echo "setup: not root and no sudo; run as root" >&2; exit 1; }
    sudo=(sudo)
fi
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
log=${TMPDIR:-/tmp}/peermq-setup-apt.log
: >"$log"
run_apt() {  # apt-get ARGS...: output to $log, its end shown if apt fails
    if ! "${apt[@]}" "$@" >>"$log" 2>&1; then
        echo "setup: apt-get $1 failed; the end of $log:" >&2
        tail -n 25 "$log" >&2
        exit 1
    fi
}

# Debian's maintainer scripts start services through invoke-rc.d and deb-systemd-invoke, which
# ask /usr/sbin/policy-rc.d first: exit 101 means "not now". Ours lasts as long as this script.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# scripts/setup.sh of peermq: no service starts while it installs.\nexit 101\n' |
        "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    trap '"${sudo[@]}" rm -f "$policy"' EXIT
    echo "setup: no service starts while it installs ($policy, removed at the end)"
fi

avahi_before=$(avahi_daemon_pid)
echo "setup: apt-get update (apt's output: $log)"
run_apt update
# No recommends: avahi-daemon would pull in libnss-mdns, which changes host name resolution.
# apt's plan first, so that what changes is said before it changes: "Inst NAME (VERSION ...)" for
# a new package, "Inst NAME [OLD] (NEW ...)" for an upgrade.
run_apt install --no-install-recommends --simulate "${missing[@]}"
plan=$(sed -n '/^Inst /p' "$log")
mapfile -t new < <(awk '$1 == "Inst" && $3 !~ /^\[/ { print $2 }' <<<"$plan")
mapfile -t upgraded < <(awk '$1 == "Inst" && $3 ~ /^\[/ { print $2 }' <<<"$plan")
echo "setup: installing $(count ${#new[@]} package): the missing and" \
    "$(count $((${#new[@]} - ${#missing[@]})) dependency) (listed in $log)"
if ((${#upgraded[@]} > 0)); then
    echo "setup: upgrading $(count ${#upgraded[@]} installed package) they need newer:" \
        "${upgraded[*]}"
fi
run_apt install --no-install-recommends "${missing[@]}"

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

# The packages enable their services at boot: avahi-daemon would announce on every interface,
# prometheus listen on every interface. Undone unless asked, and said either way.
disable_at_boot() {  # PACKAGE UNIT...
    local package=$1
    shift
    if ! command -v systemctl >/dev/null ||
        ! systemctl is-enabled --quiet "$@" 2>/dev/null; then
        echo "setup: $package installed; not enabled at boot as far as systemctl tells"
    elif "${sudo[@]}" systemctl disable --quiet "$@" 2>>"$log"; then
        echo "setup: $package's package enabled it at boot; disabled it again"
    else
        echo "setup: WARNING: $package is enabled at boot and could not be disabled:" \
            "systemctl disable $* (see $log)" >&2
    fi
}
if [[ " ${missing[*]} " == *" avahi-daemon "* ]]; then
    if ((enable_avahi == 1)); then
        echo "setup: avahi-daemon stays enabled at boot (--enable-avahi-at-boot)"
    else
        disable_at_boot avahi-daemon avahi-daemon.service avahi-daemon.socket
    fi
fi
if [[ " ${missing[*]} " == *" prometheus "* ]]; then
    disable_at_boot prometheus prometheus.service
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
