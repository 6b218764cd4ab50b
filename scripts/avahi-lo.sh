#!/bin/bash
# avahi-lo.sh start|stop|restart|status [STATE_DIR]
#
# A system D-Bus (only if none answers) and an avahi-daemon restricted to the loopback interface,
# for peermq's system tests and for trying peermq on one machine. Safe by construction:
#   - the daemon's config allows lo only and denies every other interface present, IPv4 only,
#     no wide-area, no reflector, no hinfo/workstation records;
#   - after start, /proc/net/igmp must show the mDNS group 224.0.0.251 (FB0000E0) joined on lo
#     and on no other interface, else the daemon we started is killed at once;
#   - only PIDs this script recorded in STATE_DIR are ever stopped, after checking
#     /proc/PID/comm (PIDs get reused). Nothing is ever killed by name.
# An avahi-daemon that someone else started is reused when it passes the same mDNS check, and
# is never stopped by this script.
#
#   start    idempotent; exit 0 when a loopback-only daemon answers on the system bus
#   stop     stops what this script started (daemon, then bus)
#   restart  stops and starts again the avahi-daemon this script started (keeps the bus);
#            fails if the running daemon is not ours
#   status   prints what runs and whose it is
#
# STATE_DIR defaults to $PEERMQ_AVAHI_STATE or /tmp/peermq-avahi. Logs: STATE_DIR/avahi-daemon.log.
set -u

CMD=${1:-status}
STATE=${2:-${PEERMQ_AVAHI_STATE:-/tmp/peermq-avahi}}
CONF=$STATE/avahi-daemon.conf
LOG=$STATE/avahi-daemon.log
AVAHI_PIDF=$STATE/avahi.pid
DBUS_PIDF=$STATE/dbus.pid  # written only when this script started the bus
BUS_SOCKET=/run/dbus/system_bus_socket
if [ -n "${DBUS_SYSTEM_BUS_ADDRESS:-}" ] && [ "$DBUS_SYSTEM_BUS_ADDRESS" != "unix:path=$BUS_SOCKET" ]; then
    echo "avahi-lo: DBUS_SYSTEM_BUS_ADDRESS points elsewhere; this script manages $BUS_SOCKET" >&2
    exit 2
fi

log() { echo "avahi-lo: $*" >&2; }

# shellcheck source-path=SCRIPTDIR source=avahi-conf.sh
. "$(dirname "${BASH_SOURCE[0]}")/avahi-conf.sh"

# pid_is PID COMM: PID is alive (not a zombie) and runs COMM
pid_is() {
    local pid=$1 comm=$2
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] &&
        ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}

# recorded PIDFILE COMM: prints the recorded PID when it still runs COMM
recorded() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    pid_is "$pid" "$2" && echo "$pid"
}

bus_answers() {
    [ -S "$BUS_SOCKET" ] && timeout 3 dbus-send --system --print-reply --dest=org.freedesktop.DBus \
        /org/freedesktop/DBus org.freedesktop.DBus.GetId >/dev/null 2>&1
}

avahi_on_bus() {
    timeout 3 dbus-send --system --print-reply --dest=org.freedesktop.Avahi / \
        org.freedesktop.Avahi.Server.GetVersionString >/dev/null 2>&1
}

# Interfaces other than lo on which the mDNS group is joined (by anyone).
mdns_joined_off_lo() {
    awk '/^[0-9]/ { dev = $2 } /FB0000E0/ { if (dev != "lo") print dev }' /proc/net/igmp | sort -u
}
mdns_joined_on_lo() {
    awk '/^[0-9]/ { dev = $2 } /FB0000E0/ { if (dev == "lo") found = 1 } END { exit !found }' \
        /proc/net/igmp
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds or the deadline passes
wait_for() {
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.1
    done
}

# stop_recorded PIDFILE COMM LABEL: SIGTERM, wait up to 5 s, then SIGKILL
stop_recorded() {
    local file=$1 comm=$2 label=$3 pid
    pid=$(recorded "$file" "$comm") || { rm -f "$file"; return 0; }
    kill "$pid" 2>/dev/null
    if ! wait_for 5 eval "! pid_is $pid $comm"; then
        log "$label pid $pid ignored SIGTERM; sending SIGKILL"
        kill -9 "$pid" 2>/dev/null
        wait_for 5 eval "! pid_is $pid $comm"
    fi
    log "stopped $label pid $pid"
    rm -f "$file"
}

# The daemon's configuration: lo allowed, every other interface present denied.
write_conf() {
    local deny="" dev
    for dev in /sys/class/net/*; do
        dev=${dev##*/}
        [ "$dev" = lo ] && continue
        deny="${deny:+$deny,}$dev"
    done
    write_avahi_conf "$CONF" lo "$deny"
}

start_bus() {
    if bus_answers; then
        return 0
    fi
    if recorded "$DBUS_PIDF" dbus-daemon >/dev/null; then
        log "our dbus-daemon pid $(cat "$DBUS_PIDF") runs but does not answer"
        return 1
    fi
    mkdir -p /run/dbus
    if [ -f /run/dbus/pid ]; then
        local pid; pid=$(cat /run/dbus/pid 2>/dev/null)
        if pid_is "$pid" dbus-daemon; then
            log "dbus-daemon pid $pid (not ours) runs but does not answer on $BUS_SOCKET"
            return 1
        fi
        log "removing stale /run/dbus/pid ($pid)"
        rm -f /run/dbus/pid
    fi
    [ -S "$BUS_SOCKET" ] && rm -f "$BUS_SOCKET"
    if ! timeout 10 dbus-daemon --system --fork --print-pid=3 3>"$DBUS_PIDF"; then
        log "dbus-daemon did not start"
        rm -f "$DBUS_PIDF"
        return 1
    fi
    if ! wait_for 5 bus_answers; then
        log "the system bus does not answer"
        stop_recorded "$DBUS_PIDF" dbus-daemon dbus-daemon
        return 1
    fi
    log "started dbus-daemon pid $(cat "$DBUS_PIDF")"
}

# Refuses (and kills OUR daemon) when the mDNS group is joined anywhere but lo.
check_mdns_lo_only() {
    local off_lo; off_lo=$(mdns_joined_off_lo | xargs)
    if [ -n "$off_lo" ]; then
        log "SAFETY: mDNS group 224.0.0.251 joined on non-loopback interface(s): $off_lo"
        return 1
    fi
    if ! mdns_joined_on_lo; then
        log "mDNS group 224.0.0.251 is not joined on lo"
        return 1
    fi
}

start_avahi() {
    local pid
    if pid=$(recorded "$AVAHI_PIDF" avahi-daemon); then
        if check_mdns_lo_only && avahi_on_bus; then
            log "our avahi-daemon pid $pid already runs (loopback only)"
            return 0
        fi
        log "our avahi-daemon pid $pid is not healthy; restarting it"
        stop_recorded "$AVAHI_PIDF" avahi-daemon avahi-daemon
    fi
    # A stale pid file pointing at a reused PID would make avahi-daemon refuse to start.
    if [ -f /run/avahi-daemon/pid ] && ! pid_is "$(cat /run/avahi-daemon/pid 2>/dev/null)" avahi-daemon; then
        log "removing stale /run/avahi-daemon/pid"
        rm -f /run/avahi-daemon/pid
    fi
    if timeout 5 avahi-daemon -c 2>/dev/null; then
        pid=$(cat /run/avahi-daemon/pid 2>/dev/null)
        if check_mdns_lo_only && wait_for 5 avahi_on_bus; then
            log "reusing avahi-daemon pid $pid started by someone else (loopback only; not ours to stop)"
            return 0
        fi
        log "an avahi-daemon (pid $pid, not ours) runs and is not loopback-only; refusing"
        return 1
    fi
    if [ -n "$(mdns_joined_off_lo)" ]; then
        log "SAFETY: some process already joined 224.0.0.251 on $(mdns_joined_off_lo | xargs); refusing"
        return 1
    fi
    write_conf || return 1
    : >"$LOG"
    # Foreground (--debug) so that the log goes to a file: there is no syslog here.
    setsid avahi-daemon -f "$CONF" --debug >"$LOG" 2>&1 </dev/null &
    echo $! >"$AVAHI_PIDF"
    pid=$(cat "$AVAHI_PIDF")
    # Alive-or-not, not its name: right after the spawn /proc/PID/comm may still say setsid.
    wait_for 10 eval "grep -q 'Server startup complete' '$LOG' || ! kill -0 $pid 2>/dev/null" || true
    if ! grep -q 'Server startup complete' "$LOG"; then
        log "avahi-daemon did not come up; its log:"
        sed 's/^/    /' "$LOG" >&2
        stop_recorded "$AVAHI_PIDF" avahi-daemon avahi-daemon
        return 1
    fi
    if ! check_mdns_lo_only || grep 'New relevant interface' "$LOG" | grep -qv ' lo\.IPv4'; then
        log "SAFETY: killing avahi-daemon pid $pid"
        stop_recorded "$AVAHI_PIDF" avahi-daemon avahi-daemon
        return 1
    fi
    if ! wait_for 5 avahi_on_bus; then
        log "avahi-daemon pid $pid does not answer on D-Bus"
        stop_recorded "$AVAHI_PIDF" avahi-daemon avahi-daemon
        return 1
    fi
    log "started avahi-daemon pid $pid on lo only (log: $LOG)"
}

do_start() {
    mkdir -p "$STATE" || return 1
    ip link set lo up 2>/dev/null
    start_bus && start_avahi
}

do_stop() {
    stop_recorded "$AVAHI_PIDF" avahi-daemon avahi-daemon
    if [ -f "$DBUS_PIDF" ]; then
        stop_recorded "$DBUS_PIDF" dbus-daemon dbus-daemon
        # dbus-daemon leaves its pid file and socket behind; a later start needs them gone.
        if [ -f /run/dbus/pid ] && ! pid_is "$(cat /run/dbus/pid 2>/dev/null)" dbus-daemon; then
            rm -f /run/dbus/pid
        fi
        bus_answers || rm -f "$BUS_SOCKET"
    fi
    return 0
}

do_restart() {
    if ! recorded "$AVAHI_PIDF" avahi-daemon >/dev/null; then
        log "no avahi-daemon started by this script runs (state: $STATE); not restarting"
        return 1
    fi
    stop_recorded "$AVAHI_PIDF" avahi-daemon avahi-daemon
    do_start
}

do_status() {
    local pid
    if pid=$(recorded "$AVAHI_PIDF" avahi-daemon); then
        echo "avahi-daemon: pid $pid (ours)"
    elif timeout 5 avahi-daemon -c 2>/dev/null; then
        echo "avahi-daemon: pid $(cat /run/avahi-daemon/pid 2>/dev/null) (not ours)"
    else
        echo "avahi-daemon: not running"
    fi
    if pid=$(recorded "$DBUS_PIDF" dbus-daemon); then
        echo "dbus-daemon: pid $pid (ours)"
    elif bus_answers; then
        echo "dbus-daemon: a system bus answers (not ours)"
    else
        echo "dbus-daemon: no system bus"
    fi
    echo "mDNS group joined on: $(awk '/^[0-9]/ { dev = $2 } /FB0000E0/ { print dev }' /proc/net/igmp | sort -u | xargs)"
}

case "$CMD" in
    start) do_start ;;
    stop) do_stop ;;
    restart) do_restart ;;
    status) do_status ;;
    *) echo "usage: $0 start|stop|restart|status [STATE_DIR]" >&2; exit 2 ;;
esac
