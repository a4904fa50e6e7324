#!/usr/bin/env bash
# deploy/localnet.sh - a Jazari network on this machine, on loopback.
#
#   deploy/localnet.sh start [DIR] [N] [A]   N controllers (default 3) and A
#                                       agents (default 2), each emulating a
#                                       GPU node from hwloc XML
#   deploy/localnet.sh status [DIR]     jz status from the first controller
#   deploy/localnet.sh stop [DIR]       SIGTERM every daemon, wait for it
#
# DIR (default /tmp/jazari-localnet) holds each daemon's state, socket, log
# and pid. Ports are chosen free by the kernel. Print the environment to use
# the network with: `eval $(deploy/localnet.sh env DIR)`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${JAZARI_BUILD:-$here/build}
fixtures=$here/tests/fixtures
cmd=${1:-}
dir=${2:-/tmp/jazari-localnet}
n=${3:-3}
agents=${4:-2}

xmls=("$fixtures/hwloc/nvidiaDGX2.xml" "$here/tests/fixtures/topologies/hgx-h100-8gpu.xml"
      "$here/tests/fixtures/topologies/pcie-8gpu-2socket.xml" "$here/tests/fixtures/topologies/a100-pcie-nvbridge-4gpu.xml"
      "$fixtures/hwloc/power8gpudistances.xml")

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start() {
    if [ -e "$dir/controllers" ]; then
        echo "localnet: $dir already holds a network; stop it first" >&2
        exit 1
    fi
    mkdir -p "$dir"
    spec=""
    for i in $(seq 1 "$n"); do
        port=$(free_port)
        echo "$port" > "$dir/port-$i"
        spec="${spec:+$spec,}ctl-$i@127.0.0.1:$port"
    done
    echo "$spec" > "$dir/controllers"
    # One token for the whole new network: every daemon derives the CA from
    # it and talks TLS from the first byte. Kept in a private config file,
    # not on the command lines that ps shows.
    (umask 077 && echo "join_token = $("$build/jazarid" token generate)" > "$dir/network.conf")
    for i in $(seq 1 "$n"); do
        xml=${xmls[$(( (i - 1) % ${#xmls[@]} ))]}
        [ -r "$xml" ] || xml=${xmls[1]}
        free_port > "$dir/http-$i" # its /metrics and dashboard
        "$build/jazarid" --config "$dir/network.conf" --name "ctl-$i" --site "site-$i" --listen "127.0.0.1:$(cat "$dir/port-$i")" \
            --http-listen "127.0.0.1:$(cat "$dir/http-$i")" \
            --controllers "$spec" --state-dir "$dir/ctl-$i" --socket "$dir/ctl-$i.sock" \
            --http-listen "127.0.0.1:$(free_port)" \
            --topology-xml "$xml" --election-timeout 500ms >"$dir/ctl-$i.log" 2>&1 &
        echo $! > "$dir/ctl-$i.pid"
    done
    for i in $(seq 1 "$agents"); do
        xml=${xmls[$(( (n + i - 1) % ${#xmls[@]} ))]}
        [ -r "$xml" ] || xml=${xmls[1]}
        "$build/jazarid" --config "$dir/network.conf" --name "agent-$i" --site "site-$i" --listen "127.0.0.1:$(free_port)" \
            --controllers "$spec" --state-dir "$dir/agent-$i" --socket "$dir/agent-$i.sock" \
            --topology-xml "$xml" >"$dir/agent-$i.log" 2>&1 &
        echo $! > "$dir/agent-$i.pid"
    done
    # Ready when every node is registered and up (a deadline, not a fixed sleep).
    want=$((n + agents))
    for _ in $(seq 1 300); do
        if "$build/jz" status --json --socket "$dir/ctl-1.sock" 2>/dev/null | grep -q "\"nodes_up\": $want,"; then
            echo "localnet: $n controllers and $agents agents up in $dir"
            return 0
        fi
        sleep 0.05
    done
    echo "localnet: no leader elected; logs in $dir" >&2
    stop
    exit 1
}

stop() {
    for pidf in "$dir"/agent-*.pid "$dir"/ctl-*.pid; do
        [ -e "$pidf" ] || continue
        pid=$(cat "$pidf")
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pidf in "$dir"/agent-*.pid "$dir"/ctl-*.pid; do
        [ -e "$pidf" ] || continue
        pid=$(cat "$pidf")
        for _ in $(seq 1 200); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$pidf"
    done
    # Jobs' supervisors outlive their daemon by design (a restart keeps the
    # jobs): a network that is stopped for good takes its jobs with it.
    find "$dir" -path '*/jobs/*' \( -name tasks -o -name pid \) 2>/dev/null | while read -r f; do
        case $f in
        */tasks) while read -r g; do kill -KILL -- "-$g" 2>/dev/null || true; done <"$f" ;;
        *) kill -KILL "$(cut -d' ' -f1 "$f")" 2>/dev/null || true ;;
        esac
    done
    rm -f "$dir/controllers"
}

case "$cmd" in
start) start ;;
stop) stop; echo "localnet: stopped" ;;
status) "$build/jz" status --socket "$dir/ctl-1.sock" ;;
env) echo "export JAZARI_SOCKET=$dir/ctl-1.sock" ;;
*) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
