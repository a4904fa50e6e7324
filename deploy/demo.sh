#!/usr/bin/env bash
# deploy/demo.sh BUILD - the first run: three controllers and two agents on
# loopback, each believing it is a real GPU server (a DGX-2, an HGX H100, a
# PCIe box, A100 pairs, a POWER8, from hwloc XML); jz asks for the network and
# a node's hardware, queues jobs, then the leader is killed and the network
# carries on. Everything lives in
# a temporary directory and is stopped at the end.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
export JAZARI_BUILD=$here/$build
[ -x "$JAZARI_BUILD/jazarid" ] || JAZARI_BUILD=$build
dir=$(mktemp -d /tmp/jazari-demo.XXXXXX)
trap '"$here/deploy/localnet.sh" stop "$dir" >/dev/null; rm -rf "$dir"' EXIT
jz() { "$JAZARI_BUILD/jz" "$@"; }
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step "deploy/localnet.sh start   # 3 controllers + 2 agents, emulated GPU nodes"
"$here/deploy/localnet.sh" start "$dir" 3 2
export JAZARI_SOCKET=$dir/ctl-1.sock
leader=$(jz status --json | sed -n 's/.*"leader": "\(ctl-[0-9]*\)".*/\1/p')
export JAZARI_SOCKET=$dir/$leader.sock

step "jz status"
jz status
step "jz nodes"
jz nodes
step "jz node ctl-1      # its hardware: the tree and the nvidia-smi topo -m matrix"
jz node ctl-1
step "jz web   # the dashboard in a browser: its address, with a session token for you"
jz web
mkdir -p "$dir/work"
cd "$dir/work"
step "jz submit --name train --gpus-per-node 4 --time 1:00:00 -- sh -c 'echo training on GPUs \$CUDA_VISIBLE_DEVICES of \$JAZARI_NODELIST; sleep 600'"
jz submit --name train --gpus-per-node 4 --time 1:00:00 -- sh -c 'echo training on GPUs $CUDA_VISIBLE_DEVICES of $JAZARI_NODELIST; sleep 600'
if [ "$(id -u)" = 0 ]; then
    step "JAZARI_SOCKET=agent-1.sock jz submit -- true   # root on an agent is not the network's admin"
    JAZARI_SOCKET=$dir/agent-1.sock jz submit -- true || true
    step "jz submit --name eval -- sh -c 'echo evaluated on \$JAZARI_NODELIST'   # root on a controller is"
    jz submit --name eval -- sh -c 'echo evaluated on $JAZARI_NODELIST'
else
    step "JAZARI_SOCKET=agent-1.sock jz submit --name eval -- sh -c 'echo evaluated on \$JAZARI_NODELIST'   # from an agent"
    JAZARI_SOCKET=$dir/agent-1.sock jz submit --name eval -- sh -c 'echo evaluated on $JAZARI_NODELIST'
fi
step "jz submit --gpus-per-node 32 -- python3 huge.py   # refused before it reaches the log"
jz submit --gpus-per-node 32 -- python3 huge.py || true
step "jz wait 2; cat jazari-2.out"
jz wait 2
cat jazari-2.out
step "jz submit --nodes 2 --tasks-per-node 2 -- sh -c 'echo rank \$RANK of \$WORLD_SIZE on \$JAZARI_NODENAME, master \$MASTER_ADDR:\$MASTER_PORT'"
gang=$(jz submit --json --name gang --nodes 2 --tasks-per-node 2 -- sh -c 'echo rank $RANK of $WORLD_SIZE on $JAZARI_NODENAME, master $MASTER_ADDR:$MASTER_PORT' | tr -dc 0-9)
jz wait "$gang" >/dev/null
step "jz logs $gang   # read on each node through the daemons"
jz logs "$gang"
port=$(cat "$dir/port-1")
step "a stranger at the port: a well-formed frame in plaintext, no certificate"
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf '\0\0\0\4\x52\x02\x18\x01' >&3
reply=$(timeout 5 cat <&3 | head -c 64 | od -An -c | head -2 || true)
exec 3>&-
echo "the daemon answered: ${reply:-nothing}"
for _ in $(seq 1 100); do grep -q "TLS handshake failed" "$dir"/ctl-1.log && break; sleep 0.05; done
grep -h "TLS handshake failed" "$dir"/ctl-1.log | tail -1
who=$(id -un)
[ "$(id -u)" = 0 ] && who=nobody
mkdir -p "$dir/shared" && chmod 711 "$dir" && chmod 1777 "$dir/shared"
step "jz token create --user $who --role researcher > $who.jzcred   # (admin) credentials for a person"
jz token create --user "$who" --role researcher > "$dir/$who.jzcred"
sed -n '1,7p' "$dir/$who.jzcred"
step "jz --credentials $who.jzcred submit -- id -un   # from 'another machine': TLS, no socket"
(cd "$dir/shared" && env -u JAZARI_SOCKET "$JAZARI_BUILD/jz" --credentials "$dir/$who.jzcred" submit --name remote -- id -un) | tee "$dir/remote.id"
env -u JAZARI_SOCKET "$JAZARI_BUILD/jz" --credentials "$dir/$who.jzcred" wait "$(cat "$dir/remote.id")" >/dev/null
cat "$dir/shared/jazari-$(cat "$dir/remote.id").out"
step "jz --credentials $who.jzcred show 1   # someone else's job: private, as if it did not exist"
env -u JAZARI_SOCKET "$JAZARI_BUILD/jz" --credentials "$dir/$who.jzcred" show 1 || true
step "jz token revoke user:$who; jz --credentials $who.jzcred queue   # revoked: refused at once"
jz token revoke "user:$who"
env -u JAZARI_SOCKET "$JAZARI_BUILD/jz" --credentials "$dir/$who.jzcred" queue || true
step "jz queue"
jz queue
step "jz show 1"
for _ in $(seq 1 100); do jz show 1 | grep -q RUNNING && break; sleep 0.05; done
jz show 1
# An admin's half: a GPU node whose NVML is the tests' stand-in library
# (four A100s, driven by a file), a job on it, then XID 79 injected: the
# health loop drains the node and requeues the job; jz events tells it.
fake_nvml=$JAZARI_BUILD/tests/fake/libnvidia-ml.so.1
if [ -r "$fake_nvml" ]; then
    echo "" > "$dir/nvml.state"
    JAZARI_NVML_LIB=$fake_nvml JAZARI_CUDA_LIB=/nonexistent FAKE_NVML_STATE=$dir/nvml.state \
        "$JAZARI_BUILD/jazarid" --config "$dir/network.conf" --name gpu-a100 --site site-1 --labels a100box \
        --listen "127.0.0.1:$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')" \
        --controllers "$(cat "$dir/controllers")" --state-dir "$dir/gpu-a100" --socket "$dir/gpu-a100.sock" \
        --gpu-health-interval 1s --heartbeat-interval 200ms >"$dir/agent-9.log" 2>&1 &
    echo $! > "$dir/agent-9.pid"
    for _ in $(seq 1 200); do jz nodes 2>/dev/null | grep -q "^gpu-a100 .* up " && break; sleep 0.05; done
    step "jz submit --name finetune --constraint a100box --gpus-per-node 2 -- sleep 600   # on gpu-a100"
    ft=$(jz submit --name finetune --constraint a100box --gpus-per-node 2 -- sleep 600)
    echo "$ft"
    for _ in $(seq 1 200); do jz show "$ft" --json | grep -q '"state": "RUNNING"' && break; sleep 0.05; done
    step "echo 'gpu 1 lost=1' 'xid 1 79 1' > nvml.state   # inject: GPU 1 of gpu-a100 falls off the bus (XID 79)"
    printf 'gpu 1 lost=1\nxid 1 79 1\n' > "$dir/nvml.state"
    for _ in $(seq 1 200); do jz nodes | grep -q "^gpu-a100 .* drain" && break; sleep 0.05; done
    for _ in $(seq 1 200); do jz show "$ft" --json | grep -q '"state": "PENDING"' && break; sleep 0.05; done
    step "jz nodes   # drained by the health checks, with the reason"
    jz nodes
    step "jz show $ft   # requeued: it waits for a healthy node"
    jz show "$ft" | head -8
    step "jz events --max 6"
    jz events --max 6
    step "printf '' > nvml.state   # the GPU is back after a reset: the node returns by itself (resume=auto)"
    printf '' > "$dir/nvml.state"
    for _ in $(seq 1 200); do jz nodes | grep -q "^gpu-a100 .* up " && break; sleep 0.05; done
    jz nodes | grep -E "^(NAME|gpu-a100) "
    jz cancel "$ft" >/dev/null
fi
http=$(cat "$dir/http-${leader#ctl-}")
step "curl -s http://127.0.0.1:$http/metrics | grep '^jazari_nodes'   # Prometheus metrics"
/usr/bin/python3 -c 'import sys, urllib.request; print("".join(l for l in urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().splitlines(True) if l.startswith("jazari_nodes")), end="")' "http://127.0.0.1:$http/metrics"
echo "the dashboard: http://127.0.0.1:$http/ (jz web prints the address with a sign-in token)"

step "kill -9 the leader ($leader), then ask another controller"
kill -9 "$(cat "$dir/$leader.pid")"
rm -f "$dir/$leader.pid"
other=ctl-1
[ "$leader" = ctl-1 ] && other=ctl-2
export JAZARI_SOCKET=$dir/$other.sock
for _ in $(seq 1 100); do
    jz status --json 2>/dev/null | grep -q "\"leader\": \"ctl-" && ! jz status --json | grep -q "\"leader\": \"$leader\"" && break
    sleep 0.05
done
jz status
step "jz queue --all   # every acknowledged job is still there"
jz queue --all
step "jz nodes   # the dead leader's node is marked down once it misses its heartbeats"
for _ in $(seq 1 200); do jz nodes | grep -q " down " && break; sleep 0.05; done
jz nodes
step "jz cancel 1"
jz cancel 1
jz queue --all
step "jz audit   # (admin) who changed what, from where, when"
jz audit
