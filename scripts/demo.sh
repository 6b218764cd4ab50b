#!/usr/bin/env bash
# The peermq demo: three worker processes and a producer find each other with mDNS on the
# loopback interface (no endpoint is configured anywhere), share an at-least-once work queue,
# retry transient failures, dead-letter poison orders into the producer's journal on disk, and
# report on a telemetry topic. Halfway through, one worker is killed with SIGKILL: its unacked
# orders move to the others as soon as heartbeats mark it down.
#
# Installs what it needs (scripts/setup.sh), builds, starts an avahi-daemon restricted to lo if
# none runs (scripts/avahi-lo.sh), and stops everything it started, by PID, when done.
# PEERMQ_BUILD_DIR overrides the build directory (default: build/release).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${PEERMQ_BUILD_DIR:-$root/build/release}
cd "$root"

scripts/setup.sh
cmake --preset release -B "$build" >/dev/null
cmake --build "$build" -j2 --target peermq_order_pipeline
bin=$build/examples/peermq_order_pipeline

work=$(mktemp -d /tmp/peermq-demo.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    scripts/avahi-lo.sh stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== starting an avahi-daemon on lo (only lo; see scripts/avahi-lo.sh)"
scripts/avahi-lo.sh start

echo "== starting three workers"
for name in worker-1 worker-2 worker-3; do
    "$bin" worker "$name" &
    pids+=($!)
done
victim=${pids[2]}

echo "== starting the producer: 40 orders"
"$bin" producer 40 "$work/producer" >"$work/producer.log" 2>&1 &
producer=$!
tail -n +1 -f "$work/producer.log" --pid="$producer" &
tailer=$!

# Wait (with a deadline) for the producer to be halfway, then kill a worker without warning.
deadline=$((SECONDS + 60))
until grep -q HALFWAY "$work/producer.log"; do
    if ((SECONDS > deadline)) || ! kill -0 "$producer" 2>/dev/null; then break; fi
    sleep 0.05
done
if grep -q HALFWAY "$work/producer.log"; then
    echo "== SIGKILL worker-3 (pid $victim): its unacked orders will be redelivered"
    kill -KILL "$victim"
fi

status=0
wait "$producer" || status=$?
wait "$tailer" 2>/dev/null || true
echo "== producer exited with status $status; stopping the workers"
exit "$status"
