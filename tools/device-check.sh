#!/usr/bin/env bash
# tools/device-check.sh - the checks that need a real GPU machine, in one
# short run (run from the repository root, as root, after `make deps &&
# make`): what the driver says (nvidia-smi), the live topology probe
# (jazarid topology), one round of GPU health sampling through the real
# NVML (a one-node network's HealthRequest and /metrics), the burn-in
# (build/jazari-burnin on every GPU, then `jz node check` through the
# daemon), and a real GPU job (nvidia-smi -L, and torch when it is there).
# Each step is bounded by a timeout and says what it did; the last line
# sums up: "device-check: N passed, N failed, N skipped".
#
#   tools/device-check.sh [BUILD]       BUILD: the build directory (build)
#   BURNIN_BUDGET=45                    seconds of the direct burn-in run
set -uo pipefail
build=${1:-${JAZARI_BUILD:-build}}
budget=${BURNIN_BUDGET:-45}
here=$(pwd)
work=$(mktemp -d /tmp/jazari-device-check.XXXXXX)
passed=0 failed=0 skipped=0
daemon_pid=

step() { echo; echo "=== $* ==="; }
ok() { echo "--- ok: $*"; passed=$((passed + 1)); }
bad() { echo "--- FAILED: $*"; failed=$((failed + 1)); }
skip() { echo "--- skipped: $*"; skipped=$((skipped + 1)); }

cleanup() {
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid"
        for _ in $(seq 1 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$daemon_pid" 2>/dev/null
    fi
    echo
    echo "device-check: $passed passed, $failed failed, $skipped skipped (logs in $work)"
}
trap cleanup EXIT

jz() { timeout "${JZ_TIMEOUT:-60}" "$build/jz" "$1" --socket "$work/jz.sock" "${@:2}"; }

step "the machine"
uname -a
if command -v nvidia-smi >/dev/null; then
    timeout 60 nvidia-smi && ok "nvidia-smi" || bad "nvidia-smi"
    timeout 30 nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version,ecc.mode.current \
        --format=csv || true
    timeout 30 nvidia-smi topo -m || true
else
    bad "no nvidia-smi: is the NVIDIA driver installed?"
fi
for f in "$build/jazarid" "$build/jz"; do
    [ -x "$f" ] || { bad "$f is not built: run make deps && make"; exit 1; }
done

step "jazarid topology (the live probe: hwloc, CUDA and NVML by dlopen)"
if timeout 60 "$build/jazarid" topology; then ok "topology"; else bad "jazarid topology"; fi
timeout 60 "$build/jazarid" topology --json > "$work/topology.json" 2>&1 || true
gpus=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1])).get("gpus", [])))' \
       "$work/topology.json" 2>/dev/null || echo 0)
echo "the probe sees $gpus GPUs"
[ "$gpus" -gt 0 ] && ok "the probe found GPUs" || bad "the probe found no GPU"

step "a one-node network with GPU health sampling every second"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
http=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
token=$("$build/jazarid" token generate)
mkdir -p "$work/tmp" && chmod 1777 "$work/tmp"
"$build/jazarid" --name devnode --listen "127.0.0.1:$port" --http-listen "127.0.0.1:$http" \
    --state-dir "$work/state" --socket "$work/jz.sock" --tmp-dir "$work/tmp" --join-token "$token" \
    --gpu-health-interval 1s --burnin-timeout 120s > "$work/jazarid.log" 2>&1 &
daemon_pid=$!
up=
for _ in $(seq 1 300); do
    if jz nodes --json 2>/dev/null | grep -q '"state": "up"'; then up=1; break; fi
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -n "$up" ]; then ok "jazarid serves (pid $daemon_pid)"; else bad "jazarid did not come up"; tail -30 "$work/jazarid.log"; exit 1; fi
jz nodes

step "GPU health through the real NVML (HealthRequest once sampled, /metrics)"
sleep 2.5 # two samples at 1 s
[ -f "$build/py/jazari_pb2.py" ] || make -s BUILD="$build" "$build/py/jazari_pb2.py"
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3 # Debian's, with python3-protobuf (make deps)
BUILD=$build SOCK="$work/jz.sock" timeout 60 $PY - <<'EOF' && ok "health sampled" || bad "health"
# The node's HealthReply over its local socket: a hello, a HealthRequest
# (frames of a 4-byte big-endian length and an Envelope).
import os, socket, struct, sys
sys.path.insert(0, os.path.join(os.environ["BUILD"], "py"))
import jazari_pb2 as pb

def send(s, env):
    data = env.SerializeToString()
    s.sendall(struct.pack(">I", len(data)) + data)

def recv(s):
    def exact(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                raise SystemExit("the daemon closed the connection")
            b += c
        return b
    env = pb.Envelope()
    env.ParseFromString(exact(struct.unpack(">I", exact(4))[0]))
    return env

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect(os.environ["SOCK"])
hello = pb.Envelope(request_id=1, version=1)
hello.hello.protocol_version = 1
hello.hello.software_version = "device-check"
hello.hello.kind = pb.PEER_CLIENT
send(s, hello)
assert recv(s).HasField("hello_reply")
env = pb.Envelope(request_id=2, version=1)
env.health_request.SetInParent()
send(s, env)
reply = recv(s)
if not reply.HasField("health_reply"):
    raise SystemExit("no health reply: %s" % reply)
r = reply.health_reply
print("sampling:", r.sampling, " GPUs sampled:", len(r.gpus), " conditions:", len(r.conditions))
for g in r.gpus:
    print("GPU %d %s %s: %u C (slowdown %u), %.0f/%.0f W, util %u%%, mem %.1f/%.1f GiB, ECC sbe/dbe "
          "volatile %d/%d aggregate %d/%d, retired pending %s, remap corr/uncorr %d/%d pending %s failed %s, "
          "throttle 0x%x, XIDs %d; known: %s" % (
        g.gpu, g.uuid, g.model, g.temp_c, g.temp_slowdown_c, g.power_mw / 1000, g.power_limit_mw / 1000,
        g.util_gpu_pct, g.mem_used / 2**30, g.mem_total / 2**30, g.ecc_sbe_volatile, g.ecc_dbe_volatile,
        g.ecc_sbe_aggregate, g.ecc_dbe_aggregate, g.retired_pages_pending, g.remapped_rows_corrected,
        g.remapped_rows_uncorrected, g.remap_pending, g.remap_failed, g.throttle_reasons, g.xid_events,
        ",".join(g.known)))
for c in r.conditions:
    print("condition %s gpu %d: %s" % (c.name, c.gpu, c.text))
sys.exit(0 if r.sampling and len(r.gpus) > 0 else 1)
EOF
if command -v curl >/dev/null; then
    timeout 10 curl -s "http://127.0.0.1:$http/metrics" | grep -E '^jazari_gpu_(temperature|power|memory_used|ecc)' | head -40
else
    python3 -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$http/metrics', timeout=10).read().decode())" \
        | grep -E '^jazari_gpu_(temperature|power|memory_used|ecc)' | head -40
fi

step "the burn-in program, directly, on every GPU ($budget s)"
if [ -x "$build/jazari-burnin" ]; then
    timeout $((budget + 120)) "$build/jazari-burnin" --budget "$budget" > "$work/burnin.out"; rc=$?
    cat "$work/burnin.out"
    case $rc in
    0) ok "jazari-burnin passed" ;;
    124) bad "jazari-burnin ran past its budget and the timeout" ;;
    *) bad "jazari-burnin exit $rc: $(head -1 "$work/burnin.out")" ;;
    esac
    # A quick run on one GPU only, and a usage error (exit 2).
    timeout 120 "$build/jazari-burnin" --quick --gpu 0 | head -3
    timeout 10 "$build/jazari-burnin" --size 17 >/dev/null; [ $? -eq 2 ] && ok "bad usage exits 2" || bad "bad usage"
else
    bad "no $build/jazari-burnin: make builds it only when nvcc (the CUDA toolkit) is found"
fi

step "jz node check devnode (the daemon runs the burn-in: burnin_timeout 120 s, budget 97 s)"
JZ_TIMEOUT=300 jz node check devnode; rc=$?
[ $rc -eq 0 ] && ok "jz node check passed" || bad "jz node check exit $rc"
jz node devnode | head -3

step "a real GPU job: nvidia-smi -L on one GPU, and on all of them"
for g in 1 "$gpus"; do
    id=$(jz submit --parsable --gpus-per-node "$g" --output "$work/job-$g.out" -- nvidia-smi -L)
    if [ -z "$id" ]; then bad "submit"; continue; fi
    JZ_TIMEOUT=120 jz wait "$id"
    jz show "$id" | head -5
    cat "$work/job-$g.out"
    n=$(grep -c '^GPU ' "$work/job-$g.out" 2>/dev/null || echo 0)
    [ "$n" -eq "$g" ] && ok "a job of $g GPUs sees $n" || bad "a job of $g GPUs sees $n"
done

step "torch in a job, when torch is installed"
if python3 -c 'import torch' 2>/dev/null; then
    id=$(jz submit --parsable --gpus-per-node 1 --output "$work/torch.out" -- python3 -c \
        'import torch; print("cuda", torch.cuda.is_available(), torch.cuda.device_count(), torch.cuda.get_device_name(0)); x = torch.randn(4096, 4096, device="cuda"); y = x @ x; torch.cuda.synchronize(); print("matmul ok", float(y.abs().sum()) > 0)')
    JZ_TIMEOUT=300 jz wait "$id"
    cat "$work/torch.out"
    grep -q "matmul ok True" "$work/torch.out" && ok "torch on a GPU in a job" || bad "torch in a job"
else
    skip "no torch"
fi

step "the daemon's log (health and burn-in lines)"
grep -E "health|burnin|gpu " "$work/jazarid.log" | tail -30
[ "$failed" -eq 0 ]
