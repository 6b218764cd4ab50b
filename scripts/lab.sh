#!/bin/bash
# lab.sh up N | down | exec I CMD... | env I | cut I | heal I | loss I PCT | status
#
# A simulated LAN made of network namespaces, for multi-host peermq tests on one machine:
#   pmqlan            holds only the bridge br0 (no address, no STP, no multicast snooping)
#   pmq1 .. pmqN      one "host" each: interface lan0 = 10.77.0.<i>/24 on br0 (bridge port
#                     port<i> in pmqlan), loopback, no default route
# Every host runs its own system D-Bus and avahi-daemon (allow-interfaces=lan0), in a private
# mount namespace where /run is a bind mount of $LAB/run/pmq<i>, so the fixed paths of both
# daemons do not collide. Clients reach host i's daemon through DBUS_SYSTEM_BUS_ADDRESS, which
# `lab.sh exec` sets. LAB_AVAHI=no starts no daemons (for the embedded backend alone).
#
# Safety: nothing is created in the root namespace except a guard route
# `unreachable 10.77.0.0/24` (the root namespace routes every address out of eth0; with the guard
# a stray lab client run outside the lab fails locally). No lab host has a default route. Teardown
# stops only the PIDs recorded here (checked against /proc/PID/comm), deletes only the
# namespaces recorded here, and removes the guard route only if this script added it.
#
#   up N        create (idempotent) hosts 1..N, N <= 32; waits until every daemon answers
#   down        tear everything down
#   exec I CMD  run CMD in host I, talking to host I's avahi-daemon; also sets
#               PEERMQ_LAB_HOST=I PEERMQ_LAB_ADDRESS=10.77.0.I PEERMQ_LAB_INTERFACE=lan0
#   env I       print the variables `exec I` sets, one NAME=VALUE a line (for a caller that
#               starts many processes and runs `ip netns exec pmqI env ...` itself)
#   cut I/heal I  take host I's bridge port down / up (the host stays up, its link is cut)
#   loss I PCT  host I drops PCT % of the packets it receives on lan0, at random (an nftables
#               table `pmqloss` in its namespace; needs nft); `loss I 0` removes it
#   status      namespaces, daemons, links
# State, configs and logs: $PEERMQ_LAB (default /tmp/peermq-netlab).
set -u

LAB=${PEERMQ_LAB:-/tmp/peermq-netlab}
STATE=$LAB/state
RUN=$LAB/run
LOGS=$LAB/logs
BRIDGE_NS=pmqlan
SUBNET=10.77.0.0/24
T="timeout 10"

log() { echo "lab: $*" >&2; }
die() { log "$*"; exit 1; }

# shellcheck source-path=SCRIPTDIR source=avahi-conf.sh
. "$(dirname "${BASH_SOURCE[0]}")/avahi-conf.sh"

pid_is() {
    local pid=$1 comm=$2
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] &&
        ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}
recorded() {  # PIDFILE COMM -> prints the PID when it still runs COMM
    local pid; pid=$(cat "$1" 2>/dev/null) || return 1
    pid_is "$pid" "$2" && echo "$pid"
}
wait_for() {  # SECONDS COMMAND...
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.1
    done
}
ns_exists() { [ -e "/run/netns/$1" ]; }
record_ns() { grep -qx "$1" "$STATE/namespaces" 2>/dev/null || echo "$1" >>"$STATE/namespaces"; }
host_ns() { echo "pmq$1"; }
bus_address() { echo "unix:path=$RUN/$(host_ns "$1")/dbus/system_bus_socket"; }
bus_answers() {
    DBUS_SYSTEM_BUS_ADDRESS=$(bus_address "$1") timeout 3 dbus-send --system --print-reply \
        --dest=org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus.GetId >/dev/null 2>&1
}
avahi_answers() {
    DBUS_SYSTEM_BUS_ADDRESS=$(bus_address "$1") timeout 3 dbus-send --system --print-reply \
        --dest=org.freedesktop.Avahi / org.freedesktop.Avahi.Server.GetVersionString >/dev/null 2>&1
}
host_ready() {
    grep -q 'Server startup complete' "$LOGS/$(host_ns "$1").avahi.log" 2>/dev/null && avahi_answers "$1"
}
stop_recorded() {  # PIDFILE COMM
    local pid
    pid=$(recorded "$1" "$2") || { rm -f "$1"; return 0; }
    kill "$pid" 2>/dev/null
    if ! wait_for 5 eval "! pid_is $pid $2"; then
        log "$2 pid $pid ignored SIGTERM; sending SIGKILL"
        kill -9 "$pid" 2>/dev/null
    fi
    log "stopped $2 pid $pid"
    rm -f "$1"
}

start_daemons() {  # HOST
    local i=$1 ns; ns=$(host_ns "$1")
    local conf=$LAB/conf/$ns-avahi.conf dbus_pidf=$STATE/$ns.dbus.pid avahi_pidf=$STATE/$ns.avahi.pid
    if recorded "$dbus_pidf" dbus-daemon >/dev/null && recorded "$avahi_pidf" avahi-daemon >/dev/null &&
        host_ready "$i"; then
        return 0
    fi
    # Half-alive from an earlier run: stop what was recorded and start afresh.
    stop_recorded "$avahi_pidf" avahi-daemon
    stop_recorded "$dbus_pidf" dbus-daemon
    rm -rf "${RUN:?}/$ns"
    mkdir -p "$RUN/$ns" "$LAB/conf"
    # The lab link only: lo is denied, so lab hosts never meet over their loopbacks.
    write_avahi_conf "$conf" lan0 lo "$ns" || die "$ns: cannot write $conf"
    : >"$LOGS/$ns.avahi.log"
    $T ip netns exec "$ns" unshare -m --propagation private sh -c '
        set -e
        mount --bind "$1" /run
        mkdir -p /run/dbus
        dbus-daemon --system --fork --print-pid=3 3>"$2"
        setsid avahi-daemon -f "$3" --debug >"$4" 2>&1 </dev/null &
        echo $! >"$5"
    ' sh "$RUN/$ns" "$dbus_pidf" "$conf" "$LOGS/$ns.avahi.log" "$avahi_pidf" ||
        die "$ns: starting dbus-daemon and avahi-daemon failed"
    wait_for 15 host_ready "$i" || {
        sed 's/^/    /' "$LOGS/$ns.avahi.log" >&2
        die "$ns: avahi-daemon did not come up"
    }
}

do_up() {
    local n=${1:-}
    case "$n" in '' | *[!0-9]*) die "usage: lab.sh up N" ;; esac
    [ "$n" -ge 1 ] && [ "$n" -le 32 ] || die "N must be 1..32"
    mkdir -p "$STATE" "$RUN" "$LOGS" "$LAB/conf"
    if ! ip route show "$SUBNET" | grep -q '^unreachable'; then
        $T ip route add unreachable "$SUBNET" || die "cannot add the guard route"
        touch "$STATE/guard-route"
    fi
    if ! ns_exists "$BRIDGE_NS"; then $T ip netns add "$BRIDGE_NS" || die "ip netns add failed"; fi
    record_ns "$BRIDGE_NS"
    $T ip -n "$BRIDGE_NS" link set lo up
    $T ip netns exec "$BRIDGE_NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
        net.ipv6.conf.default.disable_ipv6=1
    if ! $T ip -n "$BRIDGE_NS" link show br0 >/dev/null 2>&1; then
        $T ip -n "$BRIDGE_NS" link add br0 type bridge stp_state 0 mcast_snooping 0 ||
            die "cannot create the bridge"
    fi
    $T ip -n "$BRIDGE_NS" link set br0 up
    local i ns
    for i in $(seq 1 "$n"); do
        ns=$(host_ns "$i")
        if ! ns_exists "$ns"; then $T ip netns add "$ns" || die "ip netns add $ns failed"; fi
        record_ns "$ns"
        $T ip -n "$ns" link set lo up
        if [ "${LAB_IPV6:-no}" != yes ]; then
            $T ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
                net.ipv6.conf.default.disable_ipv6=1
        fi
        if ! $T ip -n "$ns" link show lan0 >/dev/null 2>&1; then
            # Both ends are created inside namespaces: nothing appears in the root namespace.
            $T ip -n "$BRIDGE_NS" link add "port$i" type veth peer name lan0 netns "$ns" ||
                die "cannot create the link of $ns"
        fi
        $T ip -n "$BRIDGE_NS" link set "port$i" master br0
        $T ip -n "$BRIDGE_NS" link set "port$i" up
        $T ip -n "$ns" addr replace "10.77.0.$i/24" dev lan0
        $T ip -n "$ns" link set lan0 up
        if [ "${LAB_AVAHI:-yes}" != no ]; then
            start_daemons "$i"
            log "$ns: 10.77.0.$i dbus=$(cat "$STATE/$ns.dbus.pid") avahi=$(cat "$STATE/$ns.avahi.pid")"
        else
            log "$ns: 10.77.0.$i (no daemons)"
        fi
    done
    echo "$n" >"$STATE/N"
    log "up: $n hosts; run commands with: $0 exec <i> CMD..."
}

do_down() {
    local namespaces=() ns
    [ -f "$STATE/namespaces" ] && mapfile -t namespaces <"$STATE/namespaces"
    for ns in "${namespaces[@]}"; do
        stop_recorded "$STATE/$ns.avahi.pid" avahi-daemon
        stop_recorded "$STATE/$ns.dbus.pid" dbus-daemon
    done
    for ns in "${namespaces[@]}"; do
        ns_exists "$ns" || continue
        local left="" pid
        for pid in $($T ip netns pids "$ns" 2>/dev/null); do
            grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null || left="$left $pid"
        done
        [ -n "$left" ] && log "WARNING: processes not started by lab.sh still run in $ns (left alone):$left"
        $T ip netns del "$ns" && log "deleted $ns"
    done
    if [ -f "$STATE/guard-route" ]; then
        $T ip route del unreachable "$SUBNET" 2>/dev/null && log "removed the guard route"
        rm -f "$STATE/guard-route"
    fi
    rm -rf "${RUN:?}" "${LAB:?}/conf"
    rm -f "$STATE/namespaces" "$STATE/N"
    return 0
}

host_env() {  # I: the environment of host I's processes, one NAME=VALUE a line
    echo "DBUS_SYSTEM_BUS_ADDRESS=$(bus_address "$1")"
    echo "PEERMQ_LAB_HOST=$1"
    echo "PEERMQ_LAB_ADDRESS=10.77.0.$1"
    echo "PEERMQ_LAB_INTERFACE=lan0"
}

do_exec() {
    local i=${1:-}
    case "$i" in '' | *[!0-9]*) die "usage: lab.sh exec I CMD..." ;; esac
    shift
    [ $# -gt 0 ] || die "usage: lab.sh exec I CMD..."
    local ns; ns=$(host_ns "$i")
    ns_exists "$ns" || die "host $i does not exist (lab.sh up N first)"
    local environment
    mapfile -t environment < <(host_env "$i")
    exec ip netns exec "$ns" env "${environment[@]}" "$@"
}

do_link() {  # up|down I
    local i=${2:-}
    case "$i" in '' | *[!0-9]*) die "usage: lab.sh cut|heal I" ;; esac
    ns_exists "$BRIDGE_NS" || die "the lab is not up"
    $T ip -n "$BRIDGE_NS" link set "port$i" "$1" || die "no host $i"
    log "host $i link $1"
}

do_loss() {  # I PCT
    local i=${1:-} pct=${2:-}
    case "$i$pct" in '' | *[!0-9]*) die "usage: lab.sh loss I PCT" ;; esac
    [ -n "$pct" ] && [ "$pct" -le 100 ] || die "usage: lab.sh loss I PCT (0-100)"
    local ns; ns=$(host_ns "$i")
    ns_exists "$ns" || die "host $i does not exist (lab.sh up N first)"
    command -v nft >/dev/null || die "nft is not installed (apt-get install nftables)"
    $T ip netns exec "$ns" nft delete table inet pmqloss 2>/dev/null
    if [ "$pct" -gt 0 ]; then
        $T ip netns exec "$ns" nft -f - <<EOF_NFT || die "nft failed in $ns"
table inet pmqloss {
    chain input {
        type filter hook input priority 0; policy accept;
        iifname "lan0" numgen random mod 100 < $pct drop
    }
}
EOF_NFT
    fi
    log "host $i drops $pct % of what it receives"
}

do_status() {
    local ns
    echo "guard route: $(ip route show "$SUBNET" | grep '^unreachable' || echo none)"
    [ -f "$STATE/namespaces" ] || { echo "no lab"; return 0; }
    while read -r ns; do
        if ! ns_exists "$ns"; then echo "$ns: missing"; continue; fi
        if [ "$ns" = "$BRIDGE_NS" ]; then
            echo "$ns: bridge ports: $(ip -n "$ns" -br link show master br0 2>/dev/null | awk '{print $1 "=" $2}' | xargs)"
        else
            echo "$ns: $(ip -n "$ns" -br addr show lan0 2>/dev/null | awk '{print $3, $2}')" \
                "dbus=$(recorded "$STATE/$ns.dbus.pid" dbus-daemon || echo -)" \
                "avahi=$(recorded "$STATE/$ns.avahi.pid" avahi-daemon || echo -)"
        fi
    done <"$STATE/namespaces"
}

case "${1:-}" in
    up) do_up "${2:-}" ;;
    down) do_down ;;
    exec) shift; do_exec "$@" ;;
    env)
        case "${2:-}" in '' | *[!0-9]*) die "usage: lab.sh env I" ;; esac
        host_env "$2"
        ;;
    cut) do_link down "${2:-}" ;;
    heal) do_link up "${2:-}" ;;
    loss) do_loss "${2:-}" "${3:-}" ;;
    status) do_status ;;
    *) echo "usage: $0 up N | down | exec I CMD... | env I | cut I | heal I | loss I PCT | status" >&2; exit 2 ;;
esac
