#!/usr/bin/env bash
# deploy/demo.sh BUILD - the first run: a jazarid that believes it is an
# NVIDIA DGX-2 (emulated from its hwloc XML), asked through jz for its
# hardware, then stopped. Everything lives in a temporary directory.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${JAZARI_SHARED:-$here/../shared}
xml=$shared/topologies/nvidiaDGX2.xml
[ -r "$xml" ] || xml=$here/tests/fixtures/topologies/hgx-h100-8gpu.xml
tmp=$(mktemp -d /tmp/jazari-demo.XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        wait "$pid" || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# A free loopback port, chosen by the kernel.
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sock=$tmp/jazarid.sock
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step "$build/jazarid --name dgx2-demo --site rabat --topology-xml $(basename "$xml") &"
"$build/jazarid" --name dgx2-demo --site rabat --listen "127.0.0.1:$port" --state-dir "$tmp/state" \
    --socket "$sock" --topology-xml "$xml" 2>"$tmp/jazarid.log" &
pid=$!
for _ in $(seq 1 200); do
    [ -S "$sock" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/jazarid.log"; exit 1; }
    sleep 0.05
done
export JAZARI_SOCKET=$sock
step "jz ping"
"$build/jz" ping
step "jz nodes"
"$build/jz" nodes
step "jz node dgx2-demo"
"$build/jz" node dgx2-demo
step "jz node dgx2-demo --json | head -20"
"$build/jz" node dgx2-demo --json | head -20
step "kill -TERM jazarid"
kill -TERM "$pid"
wait "$pid"
pid=
echo "daemon log:"
sed 's/^/  /' "$tmp/jazarid.log"
