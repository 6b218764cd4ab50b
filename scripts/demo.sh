#!/usr/bin/env bash
# The peermq demo: the programs of examples/ run as separate processes that find each other with
# mDNS on the loopback interface (no endpoint is configured anywhere), in three steps:
#   1. worker pool: a ventilator, three workers and a sink; one worker is killed with SIGKILL
#      mid-run, the tasks it held go to the others, and the sink still gets every result;
#   2. order pipeline: orders -> payment -> inventory over at-least-once queues; a retried
#      payment, a CHF order that payment rejects into the order service's dead-letter journal,
#      `peermq dlq list`, the fix (payment restarted with a rule set that accepts CHF),
#      `peermq dlq replay`, and the order completes;
#   3. telemetry: two sensor sites publishing on topics, a dashboard, and a late joiner that
#      sees only what is published after it joined.
#
# Installs what it needs (scripts/setup.sh), builds, starts an avahi-daemon restricted to lo if
# none runs (scripts/avahi-lo.sh), and stops everything it started, by PID, when done. Each
# process writes to a log of its own; the lines shown are picked from those logs, and every log
# is printed if a step fails. PEERMQ_BUILD_DIR overrides the build directory (default:
# build/release; a directory that is already configured is built as it is).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${PEERMQ_BUILD_DIR:-$root/build/release}
cd "$root"

work=$(mktemp -d /tmp/peermq-demo.XXXXXX)
declare -A pids=()  # name -> PID of every process this script started and has not reaped
cleanup() {
    local name
    for name in "${!pids[@]}"; do
        kill -TERM "${pids[$name]}" 2>/dev/null || true
    done
    for name in "${!pids[@]}"; do
        wait "${pids[$name]}" 2>/dev/null || true
    done
    # Stops the daemon (and bus) only if this run started them: they are recorded in $work/avahi.
    scripts/avahi-lo.sh stop "$work/avahi" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

step() { echo; echo "== $*"; }
say() { echo "   $*"; }

fail() {
    echo "demo: FAILED: $*" >&2
    local log
    for log in "$work"/*.log; do
        [[ -e $log ]] || continue
        echo "--- ${log##*/}" >&2
        tail -n 40 "$log" >&2
    done
    exit 1
}

# start NAME PROGRAM ARGS...: runs an example in the background, its output in $work/NAME.log.
start() {
    local name=$1 program=$2
    shift 2
    "$bin/$program" "$@" >"$work/$name.log" 2>&1 &
    pids[$name]=$!
}

# stop NAME: SIGTERM, then waits for it to exit.
stop() {
    kill -TERM "${pids[$1]}" 2>/dev/null || true
    wait "${pids[$1]}" 2>/dev/null || true
    unset "pids[$1]"
}

# wait_for NAME REGEX [SECONDS]: until NAME's log has a line matching REGEX (default 20 s).
wait_for() {
    local deadline=$((SECONDS + ${3:-20}))
    until grep -Eq -- "$2" "$work/$1.log" 2>/dev/null; do
        ((SECONDS < deadline)) || fail "$1 did not print /$2/ within ${3:-20} s"
        sleep 0.05
    done
}

# wait_for_lines NAME REGEX COUNT: until NAME's log has COUNT lines matching REGEX (20 s at most).
wait_for_lines() {
    local deadline=$((SECONDS + 20))
    until (($(grep -Ec -- "$2" "$work/$1.log" 2>/dev/null || true) >= $3)); do
        ((SECONDS < deadline)) || fail "$1 did not print $3 lines /$2/ within 20 s"
        sleep 0.05
    done
}

# show NAME REGEX: NAME's log lines matching REGEX, indented.
show() { grep -E -- "$2" "$work/$1.log" | sed 's/^/   /' || true; }

# peermq ARGS...: the command-line tool, its output indented.
peermq() {
    echo "   \$ peermq $*"
    "$build/tools/peermq" "$@" 2>&1 | sed 's/^/     /' || fail "peermq $* failed"
}

step "installing what is missing (scripts/setup.sh)"
scripts/setup.sh | sed 's/^/   /'

step "building the examples and the peermq tool in $build (the first time takes a few minutes)"
if [[ ! -f $build/CMakeCache.txt ]]; then
    cmake --preset release -B "$build" >"$work/build.log" 2>&1 || fail "cmake configure failed"
fi
cmake --build "$build" -j2 --target peermq_examples peermq_cli >>"$work/build.log" 2>&1 ||
    fail "the build failed"
rm -f "$work/build.log"
bin=$build/examples
started=$SECONDS

step "starting an avahi-daemon on lo (only lo; see scripts/avahi-lo.sh)"
scripts/avahi-lo.sh start "$work/avahi" 2>&1 | sed 's/^/   /' ||
    fail "no avahi-daemon on lo (scripts/avahi-lo.sh start); the examples need mDNS"
# Every node binds and announces on lo only (it is also the examples' default).
export PEERMQ_INTERFACE=lo

# --- 1. worker pool ------------------------------------------------------------------------------
step "1. worker pool: a ventilator, three workers and a sink find each other with mDNS"
start sink peermq_pool_sink --expect 60
start ventilator peermq_pool_ventilator --tasks 60 --work-ms 50 --workers 3
for n in 1 2 3; do
    start "worker-$n" peermq_pool_worker --name "worker-$n"
done
wait_for ventilator "workers ready"
show ventilator "workers ready|sent"
wait_for worker-3 "task [0-9]+ done"
say "SIGKILL worker-3 (pid ${pids[worker-3]}) while it holds tasks"
{ kill -KILL "${pids[worker-3]}" && wait "${pids[worker-3]}"; } 2>/dev/null || true  # no "Killed" line
unset "pids[worker-3]"
wait "${pids[ventilator]}" || fail "the ventilator did not get every task acked"
unset "pids[ventilator]"
wait_for sink "all done"
show ventilator "tasks acked"
show sink "all done|duplicate"
for name in worker-1 worker-2 sink; do stop "$name"; done

# --- 2. order pipeline ---------------------------------------------------------------------------
step "2. order pipeline: orders -> payment -> inventory; payment accepts EUR and USD"
start inventory peermq_inventory_service
start payment peermq_payment_service --data-dir "$work/payment" --currencies EUR,USD
start orders peermq_orders_service --data-dir "$work/orders" --orders 12
wait_for orders "dead-lettered in"
show payment "bank timeout|rejected|order 3 charged"
show orders "dead-lettered"
wait_for_lines inventory "complete" 11
say "inventory completed the 11 other orders"

step "the dead letter is in the order service's journal"
peermq dlq list --data-dir "$work/orders"

step "the fix: payment restarts with a rule set that accepts CHF; then replay"
stop payment
start payment-v2 peermq_payment_service --data-dir "$work/payment" --currencies EUR,USD,CHF
wait_for payment-v2 "accepting"
show payment-v2 "accepting"
peermq dlq replay --data-dir "$work/orders" --all
wait_for inventory "order 7 complete"
show payment-v2 "order 7 charged"
show inventory "order 7 complete"
peermq dlq list --data-dir "$work/orders"
say "(empty: the replayed order is no longer a dead letter)"
for name in orders payment-v2 inventory; do stop "$name"; done

# --- 3. telemetry --------------------------------------------------------------------------------
step "3. telemetry: sensors in berlin and paris publish on sensors.<site>.<kind>"
start dashboard peermq_telemetry_dashboard --prefix sensors.
start sensor-berlin peermq_telemetry_sensor --site berlin --interval-ms 100
start sensor-paris peermq_telemetry_sensor --site paris --kinds temperature,pressure --interval-ms 100
for topic in berlin.temperature berlin.humidity paris.temperature paris.pressure; do
    wait_for dashboard "sensors\.$topic #"
done
say "the dashboard (prefix sensors.) hears all four sensors:"
grep -E "sensors\..* #" "$work/dashboard.log" | head -n 4 | sed 's/^/   /'
wait_for_lines dashboard "sensors\..* #" 40
say "a second dashboard joins late, for sensors.paris. only"
start late-dashboard peermq_telemetry_dashboard --name late-dashboard --prefix sensors.paris.
wait_for_lines late-dashboard "sensors\.paris\..* #" 8
stop late-dashboard
stop dashboard
show dashboard "sensors\.paris\..*: #"
show late-dashboard "sensors\.paris\..*: #"
say "topics are live streams: each dashboard got only what was published once it had found the sensors"
for name in sensor-berlin sensor-paris; do stop "$name"; done

step "done in $((SECONDS - started)) s; everything this demo started is stopped"
