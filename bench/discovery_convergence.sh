#!/usr/bin/env bash
# discovery_convergence.sh: how long N nodes on N hosts of the namespace lab (scripts/lab.sh) take
# to find each other, per discovery backend, and what discovery costs once nothing changes.
# Prints the tables of docs/spec/discovery.md §8. Needs root (network namespaces); not run by
# the default tests (`ctest -L scale` runs it once at 32 hosts, as a check that the mesh forms).
#
#   bench/discovery_convergence.sh [-n "8 16 24 32"] [-b "avahi embedded static"] [-r RUNS]
#                                  [-i SECONDS] [-w SECONDS] [-p PEERMQ] [-k DIR]
#     -n  host counts (each <= 32)                        -b  backends, in this order
#     -r  runs per backend and count (default 3)          -p  the peermq tool (default: build/ci)
#     -i  idle window in seconds (default 20; 0: none)    -k  keep the logs: DIR/<backend>-<N>-<run>
#     -w  the idle window starts this long after the nodes' launch (default 60)
#
# A run: one `peermq consume` node per host 1..N, all launched at once, in a cluster of the run's
# own; `avahi`: each host's avahi-daemon; `embedded`: the in-process mDNS stack on lan0 (no
# daemons in the lab); `static`: no mDNS at all, every node given every other's address and key
# (the reference: the same processes and the same full mesh of CurveZMQ links, without discovery).
# Every node logs at info, host 1 at debug. The run ends when every node has logged `peer alive`
# for each of the N-1 others (deadline 60 s: a run that does not get there fails the script);
# the nodes are then stopped by PID (SIGTERM: a clean leave).
#
# Per run:  mesh      launch -> the last `peer alive` of the last node: everyone alive to everyone
#           host 1    launch -> host 1's last peer alive; from host 1's debug log, per peer, the
#                     first contact (`peer record found` or `peer greeted first`) and contact ->
#                     `peer alive` (median / max), and how many peers greeted it first
#           busy      the machine's CPU busy from launch to mesh, in cores (of `nproc`)
#           CPU       what the nodes, and for `avahi` the lab's avahi and D-Bus daemons, spent
# Per backend, after its runs, the idle window: N-1 nodes on hosts 1..N-1 of the largest N, left
# running, measured from 60 s (-w) after their launch for -i seconds: the CPU of the daemons and of
# the nodes (in % of one core, all summed), and the packets per second that host N, which runs
# no node, receives. Then a node joins the settled cluster on host N and is timed until it is
# alive to all and all to it. Each table row gives the median (and range) of its runs, and the
# ratio to the static reference measured in the same session.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
counts="8 16 24 32"
backends="avahi embedded static"
runs=3
idle=20
warmup=60
keep=
peermq=$root/build/ci/tools/peermq
while getopts "n:b:r:i:w:p:k:" option; do
    case $option in
        n) counts=$OPTARG ;;
        b) backends=$OPTARG ;;
        r) runs=$OPTARG ;;
        i) idle=$OPTARG ;;
        w) warmup=$OPTARG ;;
        p) peermq=$OPTARG ;;
        k) keep=$OPTARG ;;
        *) sed -n '2,31p' "$0" >&2; exit 2 ;;
    esac
done
[[ -x $peermq ]] || { echo "convergence: no peermq tool at $peermq (build it, or -p)" >&2; exit 2; }
lab=$root/scripts/lab.sh
work=$(mktemp -d /tmp/peermq-convergence.XXXXXX)
lab_state=${PEERMQ_LAB:-/tmp/peermq-netlab}/state
max_n=0
for n in $counts; do ((n > max_n)) && max_n=$n; done
((max_n >= 2 && max_n <= 32)) || { echo "convergence: host counts must be 2..32" >&2; exit 2; }

pids=()
stop_nodes() {  # SIGTERM to the nodes this script started, then SIGKILL what is left after 10 s
    local pid deadline=$((SECONDS + 10))
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}
lab_mode=
finish() {
    stop_nodes
    [[ -n $lab_mode ]] && "$lab" down >/dev/null 2>&1
    rm -rf "$work"
}
trap finish EXIT
trap 'exit 130' INT TERM

lab_up() {  # MODE (avahi | none): the lab at max_n hosts, with or without daemons
    [[ $lab_mode == "$1" ]] && return 0
    [[ -n $lab_mode ]] && "$lab" down >/dev/null 2>&1
    if [[ $1 == avahi ]]; then "$lab" up "$max_n" 2>/dev/null; else LAB_AVAHI=no "$lab" up "$max_n" 2>/dev/null; fi
    lab_mode=$1
    local i
    host_env=()
    for i in $(seq 1 "$max_n"); do host_env[i]=$("$lab" env "$i"); done
}

# The static backend's keys: a key pair per host (PEERMQ_SECRET_KEY), made once.
static_peers=()
static_secrets=()
make_keys() {
    ((${#static_peers[@]} > 0)) && return 0
    local i pair
    for i in $(seq 1 32); do
        pair=$("$peermq" keys generate --json)
        static_peers+=("10.77.0.$i:7000#$(sed -n 's/.*"public_key": *"\([^"]*\)".*/\1/p' <<<"$pair")")
        static_secrets+=("$(sed -n 's/.*"secret_key": *"\([^"]*\)".*/\1/p' <<<"$pair")")
    done
}

daemon_pids() {  # the lab's avahi-daemons and D-Bus daemons, one PID a line
    local i
    for i in $(seq 1 "$max_n"); do
        cat "$lab_state/pmq$i.avahi.pid" "$lab_state/pmq$i.dbus.pid" 2>/dev/null || true
    done
}

cpu_busy() {  # the busy and total jiffies of the machine
    awk '/^cpu / { busy = $2 + $3 + $4 + $7 + $8; print busy, busy + $5 + $6; exit }' /proc/stat
}

new_run() {  # a fresh cluster name and log directory
    cluster=conv-$RANDOM$RANDOM
    rm -rf "$work/run"
    mkdir -p "$work/run"
}

launch() {  # BACKEND N FIRST LAST: nodes on hosts FIRST..LAST of $cluster, logs in $work/run/h<i>.log
    local backend=$1 n=$2 i level args
    for i in $(seq "$3" "$4"); do
        level=info
        ((i == 1)) && level=debug
        args=(consume q --cluster "$cluster" --name "h$i" --interface lan0)
        local environment=()
        case $backend in
            avahi | embedded) args+=(--discovery "$backend") ;;
            static)
                environment=(PEERMQ_SECRET_KEY="${static_secrets[i - 1]}")
                args+=(--discovery static --port 7000)
                local j
                for ((j = 1; j <= n; j++)); do ((j != i)) && args+=(--peer "${static_peers[j - 1]}"); done
                ;;
        esac
        # Straight into the host's namespace with its environment (lab.sh env, read before the
        # launch): a shell per node would compete with the nodes for the CPU being measured.
        local lab_env
        mapfile -t lab_env <<<"${host_env[i]}"
        ip netns exec "pmq$i" env "${lab_env[@]}" PEERMQ_LOG=$level PEERMQ_LOG_FORMAT=logfmt \
            "${environment[@]}" "$peermq" "${args[@]}" >/dev/null 2>"$work/run/h$i.log" &
        pids+=($!)
    done
}

# awk functions the log readers and the table share: a log line's time, its peer id, a median.
# shellcheck disable=SC2016  # awk's own $fields, not the shell's
awk_lib='
    function secs(ts) {  # ts=2026-12-07T00:01:02.345Z -> seconds since the 1st of the month
        return (substr(ts, 12, 2) * 86400) + (substr(ts, 15, 2) * 3600) + \
               (substr(ts, 18, 2) * 60) + substr(ts, 21, 6)
    }
    function id_of(   f) { for (f = 1; f <= NF; f++) if ($f ~ /^id=/) return $f; return "" }
    function sort(a, n,   i, j, v) { for (i = 2; i <= n; i++) { v = a[i]; for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]; a[j + 1] = v } }
    function med(a, n) { sort(a, n); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }  # sorts a
'

# The per-node figures from the logs: for each log, its first `peer alive` per peer id.
# Prints "<nodes complete> <seconds of the last alive of all>" relative to $1 (seconds of day).
alive_state() {
    awk -v n="$2" -v t0="$1" "$awk_lib"'
        FNR == 1 { file++ }
        /msg="peer alive"/ {
            key = file SUBSEP id_of()
            if (!(key in seen)) {
                seen[key] = 1; count[file]++
                t = secs($1) - t0; if (t > last) last = t
            }
        }
        END { c = 0; for (f = 1; f <= file; f++) if (count[f] >= n - 1) c++; printf "%d %.3f\n", c, last }
    ' "$work"/run/h*.log
}

# Host 1's phases, from its debug log: "<last alive> <found med> <found max> <contact->alive med>
# <contact->alive max> <greeted first>", seconds after t0.
host1_phases() {
    awk -v t0="$1" "$awk_lib"'
        /msg="peer record found"|msg="peer greeted first"/ {
            id = id_of(); if (id == "id=00000000-0000-0000-0000-000000000000" || (id in contact)) next
            contact[id] = secs($1) - t0
            if ($0 ~ /greeted first/) greeted++
        }
        /msg="peer record found"/ { id = id_of(); if (!(id in found)) found[id] = secs($1) - t0 }
        /msg="peer alive"/ { id = id_of(); if (!(id in alive)) alive[id] = secs($1) - t0 }
        END {
            nf = 0; for (id in found) fs[++nf] = found[id]
            nc = 0; last = 0
            for (id in alive) { if (alive[id] > last) last = alive[id]; if (id in contact) ca[++nc] = alive[id] - contact[id] }
            fmed = nf ? med(fs, nf) : -1; fmax = nf ? fs[nf] : -1
            cmed = nc ? med(ca, nc) : -1; cmax = nc ? ca[nc] : -1
            printf "%.2f %.2f %.2f %.2f %.2f %d\n", last, fmed, fmax, cmed, cmax, greeted
        }
    ' "$work/run/h1.log"
}

now_secs() { date -u +%d:%H:%M:%S.%N | awk -F: '{ printf "%.3f\n", $1 * 86400 + $2 * 3600 + $3 * 60 + $4 }'; }

proc_cpu() {  # PIDS...: their utime + stime in jiffies, summed
    local pid total=0 t
    for pid in "$@"; do
        t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null) || t=0
        total=$((total + t))
    done
    echo "$total"
}

# Until the daemons are quiet (under 2 % of a core between them over a second; at most 30 s): a
# run measures discovery on a LAN whose daemons run already, not their own start (the lab's 32
# daemons announce their hosts for seconds after `lab.sh up`) nor the previous run's goodbyes.
settle() {  # DAEMON PIDS...
    local deadline=$((SECONDS + 30)) started=$SECONDS before after hz
    hz=$(getconf CLK_TCK)
    while ((SECONDS < deadline)); do
        before=$(proc_cpu "$@")
        sleep 1  # the measuring window
        after=$(proc_cpu "$@")
        if (((after - before) * 50 < hz)); then
            ((SECONDS - started > 2)) && echo "  (the daemons settled in $((SECONDS - started)) s)" >&2
            return 0
        fi
    done
    echo "convergence: the daemons did not settle within 30 s; measuring anyway" >&2
}

results=$work/results
: >"$results"
failed=0
one_run() {  # BACKEND N RUN
    local backend=$1 n=$2 run=$3 t0 busy0 total0 busy1 total1 state deadline daemons=() d0=0
    [[ $backend == avahi ]] && mapfile -t daemons < <(daemon_pids)
    ((${#daemons[@]} > 0)) && settle "${daemons[@]}"
    ((${#daemons[@]} > 0)) && d0=$(proc_cpu "${daemons[@]}")
    read -r busy0 total0 < <(cpu_busy)
    new_run
    t0=$(now_secs)
    launch "$backend" "$n" 1 "$n"
    deadline=$((SECONDS + 60))
    state=$(alive_state "$t0" "$n")
    until [[ ${state%% *} -ge $n ]]; do
        if ((SECONDS >= deadline)); then
            echo "convergence: $backend, $n hosts, run $run: only ${state%% *} of $n nodes saw every peer alive within 60 s (logs: $work/run, kept)" >&2
            cp -r "$work/run" "/tmp/peermq-convergence-failed-$backend-$n-$run"
            failed=1
            stop_nodes
            return 0
        fi
        sleep 0.5  # a poll of the logs; the times come from the logs' own timestamps
        state=$(alive_state "$t0" "$n")
    done
    read -r busy1 total1 < <(cpu_busy)
    local node_cpu daemon_cpu=0.00
    node_cpu=$(awk -v j="$(proc_cpu "${pids[@]}")" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", j / hz }')
    if ((${#daemons[@]} > 0)); then
        daemon_cpu=$(awk -v j=$(($(proc_cpu "${daemons[@]}") - d0)) -v hz="$(getconf CLK_TCK)" \
            'BEGIN { printf "%.2f", j / hz }')
    fi
    local mesh=${state#* } cores
    cores=$(awk -v b=$((busy1 - busy0)) -v t=$((total1 - total0)) -v c="$(nproc)" \
        'BEGIN { printf "%.2f", (t > 0 ? c * b / t : 0) }')
    stop_nodes
    local phases
    phases=$(host1_phases "$t0")
    if [[ -n $keep ]]; then
        mkdir -p "$keep/$backend-$n-$run" && cp "$work"/run/*.log "$keep/$backend-$n-$run/"
        echo "$t0" >"$keep/$backend-$n-$run/launch"
    fi
    echo "$backend $n $run $mesh $phases $cores $node_cpu $daemon_cpu" >>"$results"
    printf '  %-8s %2d hosts run %d: mesh %6.2f s  host 1: %s  busy %s cores, CPU s: nodes %s daemons %s\n' \
        "$backend" "$n" "$run" "$mesh" "$phases" "$cores" "$node_cpu" "$daemon_cpu" >&2
}

idle_results=$work/idle
: >"$idle_results"
idle_window() {  # BACKEND: nodes on hosts 1..max_n-1, host max_n has none
    local backend=$1 daemons=() pid i started
    [[ $backend == avahi ]] && mapfile -t daemons < <(daemon_pids)
    started=$SECONDS
    new_run
    launch "$backend" $((max_n - 1)) 1 $((max_n - 1))
    while ((SECONDS < started + warmup)); do sleep 1; done
    local hz d0 n0 p0 d1 n1 p1 t0 t1
    hz=$(getconf CLK_TCK)
    rx() { "$lab" exec "$max_n" cat /sys/class/net/lan0/statistics/rx_packets; }
    d0=$(proc_cpu "${daemons[@]}"); n0=$(proc_cpu "${pids[@]}"); p0=$(rx); t0=$(now_secs)
    sleep "$idle"  # the measurement window itself, not a synchronisation
    d1=$(proc_cpu "${daemons[@]}"); n1=$(proc_cpu "${pids[@]}"); p1=$(rx); t1=$(now_secs)
    # Then a node joins the settled cluster on host max_n, as a worker joins a running pool: until
    # it sees every node alive and every node sees it (each log then counts max_n - 1 peers).
    local tj join=-1 state deadline=$((SECONDS + 60))
    tj=$(now_secs)
    launch "$backend" "$max_n" "$max_n" "$max_n"
    state=$(alive_state "$tj" "$max_n")
    until [[ ${state%% *} -ge $max_n ]] || ((SECONDS >= deadline)); do
        sleep 0.5
        state=$(alive_state "$tj" "$max_n")
    done
    if [[ ${state%% *} -ge $max_n ]]; then
        join=${state#* }
    else
        echo "convergence: $backend: the node joining on host $max_n was not alive to all within 60 s" >&2
        failed=1
    fi
    stop_nodes
    local line
    line=$(awk -v dd=$((d1 - d0)) -v dn=$((n1 - n0)) -v dp=$((p1 - p0)) -v dt="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" -v hz="$hz" \
        'BEGIN { printf "%.1f %.1f %.1f", 100 * dd / hz / dt, 100 * dn / hz / dt, dp / dt }')
    echo "$backend $((max_n - 1)) $line $join" >>"$idle_results"
    printf '  %-8s idle, %d nodes: avahi and D-Bus daemons %s %% of a core, nodes %s %%, host %d receives %s packets/s; a node joining: alive to all in %s s\n' \
        "$backend" $((max_n - 1)) "$(cut -d' ' -f1 <<<"$line")" "$(cut -d' ' -f2 <<<"$line")" \
        "$max_n" "$(cut -d' ' -f3 <<<"$line")" "$join" >&2
}

echo "convergence: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) at the start; runs of $counts hosts, backends $backends" >&2
for backend in $backends; do
    case $backend in
        avahi) lab_up avahi ;;
        embedded) lab_up none ;;
        static) lab_up none; make_keys ;;
        *) echo "convergence: unknown backend $backend" >&2; exit 2 ;;
    esac
    for n in $counts; do
        for run in $(seq 1 "$runs"); do one_run "$backend" "$n" "$run"; done
    done
    ((idle > 0)) && idle_window "$backend"
done

echo
echo "load $(cut -d' ' -f1-3 /proc/loadavg) at the end; seconds after launch, median (min-max) of $runs runs:"
awk "$awk_lib"'
    function cell(k, col,   a, n) { n = split(vals[k, col], a, " "); return sprintf("%.2f (%.2f-%.2f)", med(a, n), a[1], a[n]) }
    function m(k, col,   a, n) { n = split(vals[k, col], a, " "); return med(a, n) }
    {
        k = $1 SUBSEP $2
        if (!(k in seen)) { seen[k] = 1; order[++rows] = k }
        for (c = 4; c <= NF; c++) vals[k, c] = vals[k, c] (vals[k, c] == "" ? "" : " ") $c
    }
    END {
        printf "| backend | hosts | mesh alive | vs static | host 1 alive | record found med / max | contact -> alive med / max | greeted first | busy cores | CPU s, nodes | CPU s, daemons |\n"
        printf "|---|---|---|---|---|---|---|---|---|---|---|\n"
        for (r = 1; r <= rows; r++) {
            split(order[r], kk, SUBSEP)
            ref = "static" SUBSEP kk[2]
            ratio = (ref in seen && kk[1] != "static") ? sprintf("%.1fx", m(order[r], 4) / m(ref, 4)) : "-"
            printf "| %s | %s | %s | %s | %s | %.2f / %.2f | %.2f / %.2f | %s | %.2f | %.2f | %.2f |\n", kk[1], kk[2], cell(order[r], 4), ratio, cell(order[r], 5), \
                m(order[r], 6), m(order[r], 7), m(order[r], 8), m(order[r], 9), m(order[r], 10), m(order[r], 11), m(order[r], 12), m(order[r], 13)
        }
    }' "$results"
if [[ -s $idle_results ]]; then
    echo
    echo "idle, from $warmup s after launch for $idle s (host $max_n runs no node); then a node joins on host $max_n:"
    echo "| backend | nodes | avahi and D-Bus daemons, % of a core | nodes, % of a core | packets/s at host $max_n | join: alive to all, s |"
    echo "|---|---|---|---|---|---|"
    awk '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' "$idle_results"
fi
exit "$failed"
