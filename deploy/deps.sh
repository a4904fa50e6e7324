#!/bin/sh
# deploy/deps.sh - installs every Debian 12 package that Jazari's build, tests
# and benchmarks need. Idempotent: installs only what is missing. As root it
# runs apt-get; otherwise it prints the command to run.
set -eu

# Build
PKGS="gcc make pkg-config libc6-dev libuv1-dev libssl-dev libprotobuf-c-dev protobuf-c-compiler
libhwloc-dev hwloc libraft-dev liblz4-dev libh2o-dev libsqlite3-dev"
# Tests: Google's protobuf and pytest as foreign peers, clang's libFuzzer and
# sanitizer runtimes, the linters, iproute2 for network namespaces.
PKGS="$PKGS protobuf-compiler python3 python3-protobuf python3-pytest clang
libclang-rt-14-dev cppcheck clang-tidy clang-format iproute2 procps"
# Sites over a WAN (tests/integration/wan.py): loss and cuts by nftables in
# the router namespace, round trips measured with ping.
PKGS="$PKGS nftables iputils-ping"
# The man pages, read with warnings on (tests/integration/test_man_pages.py).
PKGS="$PKGS groff-base"
# A clock far off, for one process (tests/integration/test_trust.py).
PKGS="$PKGS faketime"
# A researcher's multi-node job: PyTorch's gloo all_reduce across the ranks a
# job is given (tests/integration/test_torch.py; ~170 packages, ~640 MB).
PKGS="$PKGS python3-torch"
# A real Slurm client of our front ends: Debian's snakemake 7.x runs a
# workflow with --slurm through build/slurm's sbatch, sacct and scancel
# (tests/integration/test_slurm_cmds.py; skipped without it).
PKGS="$PKGS snakemake"
# Prometheus: promtool checks our /metrics, and a real server scrapes a
# running network (tests/integration/test_metrics.py).
PKGS="$PKGS prometheus"
# The dashboard in a real browser (tests/integration/test_dashboard.py):
# Debian's chromium, driven by npm's playwright-core (below), on Node.
PKGS="$PKGS chromium"
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
# Benchmarks: Slurm is the peer we are measured against, in the same run.
PKGS="$PKGS slurmctld slurmd slurm-client munge"

# playwright-core, pinned, into the repository's build/node (git-ignored),
# only when missing. It downloads no browser: the test uses Debian's.
PLAYWRIGHT_VERSION=1.49.1
playwright() {
    root=$(cd "$(dirname "$0")/.." && pwd)
    have=$(sed -n 's/^ *"version": "\(.*\)",$/\1/p' "$root/build/node/node_modules/playwright-core/package.json" 2>/dev/null || true)
    if [ "$have" = "$PLAYWRIGHT_VERSION" ]; then
        echo "deps: playwright-core $have is in build/node"
    elif command -v npm >/dev/null 2>&1; then
        echo "deps: installing playwright-core $PLAYWRIGHT_VERSION into build/node"
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$root/build/node" --no-audit --no-fund \
            --no-save "playwright-core@$PLAYWRIGHT_VERSION"
    else
        echo "deps: no npm: run deploy/deps.sh again once nodejs and npm are installed (for playwright-core)"
    fi
}

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "deps: all $(echo $PKGS | wc -w) packages are installed"
    playwright
    exit 0
fi
cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing:$missing"
    echo "deps: run as root: apt-get update && $cmd"
    exit 0
fi
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# Packages such as prometheus start a service when installed: the tests
# start their own servers, on ports of their own. A policy-rc.d that
# answers 101 ("action forbidden") keeps invoke-rc.d from starting any;
# ours only, removed afterwards (one the admin had is left as it is).
policy=/usr/sbin/policy-rc.d
made_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# deploy/deps.sh: no service starts while it installs packages\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    made_policy=1
    trap 'rm -f "$policy"' EXIT
    trap 'exit 130' INT TERM # through the EXIT trap
fi
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
if [ -n "$made_policy" ]; then
    rm -f "$policy"
    trap - EXIT INT TERM
fi
playwright
