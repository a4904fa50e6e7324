"""Sites over a WAN, on one machine: N sites, each a LAN, joined through a
router whose inter-site links have the one-way delay, jitter and loss of a
national network. The tests and benchmarks import it (with Wan(...) as w).

Shape. Site s is a bridge namespace (<tag>-s<s>) with its hosts
(<tag>-s<s>h<h>) on veths, subnet 10.<B>.<s>.0/24 (host h is 10.<B>.<s>.<h>,
the router 10.<B>.<s>.254, every host's default route). Inside a site the
bridge forwards in the kernel: a LAN, no delay. The router namespace
(<tag>-rt) has one veth into each site's bridge.

Delay: this kernel has no netem (`tc qdisc add ... netem` answers "Specified qdisc kind is unknown": no sch_netem, no loadable modules), so the router holds
inter-site packets in userspace. It has one TUN device, wan0, and policy
routing: a packet that arrives from a site (iif s<s>) is looked up in table
100, whose only route is wan0, so every inter-site packet is read by the
shim (this file run as a program in the router namespace). The shim reads
the addresses of each IPv4 packet, finds its link (source site,
destination site), and writes it back into wan0 after the link's one-way
delay plus jitter; written back, the packet arrives on wan0 (no rule for
that interface: the main table), so the kernel forwards it to the
destination site's veth. One TUN with routes rather than a TUN per link:
one reader, one loop, and the daemons keep their real addresses (no relay
ports, no rewritten addresses: what they see is what a WAN would give).
Jitter is drawn per packet (uniform in +-jitter around the base) but a
packet never leaves before the previous packet of the same directed link:
a WAN delays, it does not shuffle one flow's packets (reordering TCP
wildly would measure retransmissions, not distance).

Loss and cuts: nftables in the router namespace (table inet <tag>): per
directed link, `numgen random mod 10000 lt N drop` on the packets the shim
wrote back (iifname wan0), so each packet is dropped at most once per
crossing; cut(s) puts the site's subnet in a set whose packets the forward
chain drops both ways (a silent black hole, as a cut fibre: no ICMP, no
reset), heal(s) takes it out.

Clean-up: the namespaces (which take their veths, bridge, TUN and nftables
with them) are deleted on exit, on failure too, and at interpreter exit
if a caller forgot; every process still inside one of them (daemons, jobs,
the shim) is killed first. The shim also exits when its stdin (a pipe
from us) closes, so it never outlives the harness. Names carry the pid and
a counter: two runs, or two Wans in one run, never collide.

Measure: rtt(a, b) pings between two hosts; test_wan.py checks that the
round trip matches twice the asked one-way delay within RTT_TOLERANCE."""
import atexit
import itertools
import json
import os
import random
import re
import select
import signal
import struct
import subprocess
import sys
import time

BASE = 80  # second octet of every site's subnet
TABLE = 100  # the router's routing table for packets that come from a site
_counter = itertools.count()
_live = []  # Wans not yet torn down, for atexit


def sh(*args, check=True):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(str(a) for a in args), r.stderr.strip()))
    return r


class Link:
    """One pair of sites: one-way delay and jitter in ms, loss a fraction
    (each direction)."""

    def __init__(self, delay_ms, jitter_ms=0.0, loss=0.0):
        if delay_ms < 0 or jitter_ms < 0 or not 0 <= loss < 1:
            raise ValueError("a link needs delay >= 0, jitter >= 0 and 0 <= loss < 1")
        self.delay_ms, self.jitter_ms, self.loss = float(delay_ms), float(jitter_ms), float(loss)

    def __repr__(self):
        return "Link(%.1f ms +- %.1f, loss %.2f%%)" % (self.delay_ms, self.jitter_ms, self.loss * 100)


def default_links(sites, lo=15.0, hi=40.0, jitter_ms=2.0, loss=0.005):
    """Between cities: one-way delays spread evenly over lo..hi ms across the
    pairs (the first pair the nearest), 2 ms jitter, 0.5% loss."""
    pairs = list(itertools.combinations(range(1, sites + 1), 2))
    step = (hi - lo) / (len(pairs) - 1) if len(pairs) > 1 else 0.0
    return {p: Link(lo + i * step, jitter_ms, loss) for i, p in enumerate(pairs)}


# How far a measured round trip may be from twice the asked one-way delay:
# the shim's timer and Python's loop add a little (well under a ms on an idle
# machine; more on a loaded one), jitter averages out over the pings.
RTT_TOLERANCE_MS = 3.0
RTT_TOLERANCE_SHARE = 0.10


def rtt_ok(measured_ms, one_way_ms):
    want = 2 * one_way_ms
    return abs(measured_ms - want) <= RTT_TOLERANCE_MS + RTT_TOLERANCE_SHARE * want


class Wan:
    """with Wan(sites=3, hosts=2, links={(1, 2): Link(20, 2, 0.005)}) as w:
    w.ns(s, h) and w.addr(s, h) for host h of site s (both from 1);
    pairs not named in links get default_links' figures; links=None or {}
    (and zero=True) gives every pair no delay and no loss, through the
    same shim: the reference for the benchmarks."""

    def __init__(self, sites=3, hosts=2, links=None, zero=False, seed=1):
        if not 2 <= sites <= 50 or not 1 <= hosts <= 250:
            raise ValueError("a Wan has 2..50 sites of 1..250 hosts")
        self.sites, self.hosts, self.seed = sites, hosts, seed
        self.links = {p: Link(0) for p in itertools.combinations(range(1, sites + 1), 2)} if zero \
            else default_links(sites)
        for (a, b), link in (links or {}).items():
            if a == b or not (1 <= a <= sites and 1 <= b <= sites):
                raise ValueError("link %d-%d: sites are numbered 1..%d, and a link joins two of them"
                                 % (a, b, sites))
            self.links[(min(a, b), max(a, b))] = link
        self.tag = "jw%d-%d" % (os.getpid(), next(_counter))
        self.rt = self.tag + "-rt"
        self.made = []
        self.shim = None

    # names and addresses
    def br(self, s):
        return "%s-s%d" % (self.tag, s)

    def ns(self, s, h):
        return "%s-s%dh%d" % (self.tag, s, h)

    def addr(self, s, h):
        return "10.%d.%d.%d" % (BASE, s, h)

    def subnet(self, s):
        return "10.%d.%d.0/24" % (BASE, s)

    def link(self, a, b):
        return self.links[(min(a, b), max(a, b))]

    def __enter__(self):
        import shutil
        missing = [t for t in ("nft", "ping") if not shutil.which(t)]
        if missing:
            raise RuntimeError("the WAN emulation needs %s (Debian's nftables and iputils-ping: make deps)"
                               % " and ".join(missing))
        _live.append(self)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _netns(self, name):
        sh("ip", "netns", "add", name)
        self.made.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def _build(self):
        self._netns(self.rt)
        for s in range(1, self.sites + 1):
            br = self.br(s)
            self._netns(br)
            sh("ip", "-n", br, "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", br, "link", "set", "br0", "up")
            sh("ip", "-n", self.rt, "link", "add", "s%d" % s, "type", "veth", "peer", "name", "up0", "netns", br)
            sh("ip", "-n", br, "link", "set", "up0", "master", "br0")
            sh("ip", "-n", br, "link", "set", "up0", "up")
            sh("ip", "-n", self.rt, "addr", "add", "10.%d.%d.254/24" % (BASE, s), "dev", "s%d" % s)
            sh("ip", "-n", self.rt, "link", "set", "s%d" % s, "up")
            # Packets from this site go to the shim (unless for the router itself:
            # the local table comes first).
            sh("ip", "-n", self.rt, "rule", "add", "iif", "s%d" % s, "lookup", TABLE)
            for h in range(1, self.hosts + 1):
                ns = self.ns(s, h)
                self._netns(ns)
                sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "p%d" % h, "netns", br)
                sh("ip", "-n", ns, "addr", "add", self.addr(s, h) + "/24", "dev", "eth0")
                sh("ip", "-n", ns, "link", "set", "eth0", "up")
                sh("ip", "-n", ns, "route", "add", "default", "via", "10.%d.%d.254" % (BASE, s))
                sh("ip", "-n", br, "link", "set", "p%d" % h, "master", "br0")
                sh("ip", "-n", br, "link", "set", "p%d" % h, "up")
        sh("ip", "-n", self.rt, "tuntap", "add", "dev", "wan0", "mode", "tun")
        sh("ip", "-n", self.rt, "link", "set", "wan0", "up")
        sh("ip", "-n", self.rt, "route", "add", "default", "dev", "wan0", "table", TABLE)
        # Forwarding on; no reverse-path check (a packet written back into
        # wan0 comes from a site that wan0 does not route to).
        for key in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
                    "net.ipv4.conf.wan0.rp_filter=0"):
            sh("ip", "netns", "exec", self.rt, "sysctl", "-qw", key)
        self._nft()
        conf = {"base": BASE, "seed": self.seed,
                "links": {"%d-%d" % p: [l.delay_ms, l.jitter_ms] for p, l in self.links.items()}}
        self.shim = subprocess.Popen(["ip", "netns", "exec", self.rt, sys.executable, os.path.abspath(__file__),
                                      "shim", json.dumps(conf)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.shim.stdout.readline()  # it says "ready" once it holds wan0
        if line.strip() != "ready":
            raise RuntimeError("the delay shim did not start: %s%s" % (line, self.shim.stderr.read()))

    def _nft(self):
        rules = ["table inet wan {",
                 "  set cut { type ipv4_addr; flags interval; }",
                 "  chain between {",
                 "    type filter hook forward priority 0; policy accept;",
                 "    ip saddr @cut drop",
                 "    ip daddr @cut drop"]
        for (a, b), l in sorted(self.links.items()):
            n = int(round(l.loss * 10000))
            if n:
                for x, y in ((a, b), (b, a)):
                    rules.append('    iifname "wan0" ip saddr %s ip daddr %s numgen random mod 10000 lt %d drop'
                                 % (self.subnet(x), self.subnet(y), n))
        rules += ["  }", "}"]
        r = subprocess.run(["ip", "netns", "exec", self.rt, "nft", "-f", "-"], input="\n".join(rules) + "\n",
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("nft in the router namespace: " + r.stderr.strip())

    def cut(self, s):
        """Site s loses every inter-site link (its LAN goes on)."""
        sh("ip", "netns", "exec", self.rt, "nft", "add", "element", "inet", "wan", "cut", "{ %s }" % self.subnet(s))

    def heal(self, s):
        sh("ip", "netns", "exec", self.rt, "nft", "delete", "element", "inet", "wan", "cut",
           "{ %s }" % self.subnet(s))

    def rtt(self, a, b, count=20, interval=0.05):
        """ping from host a=(site, host) to host b: (avg ms, mdev ms, received share)."""
        r = sh("ip", "netns", "exec", self.ns(*a), "ping", "-n", "-q", "-c", count, "-i", interval, "-W", 2,
               self.addr(*b), check=False)
        got = re.search(r"(\d+) received", r.stdout)
        m = re.search(r"= [\d.]+/([\d.]+)/[\d.]+/([\d.]+) ms", r.stdout)
        received = int(got.group(1)) / count if got else 0.0
        return (float(m.group(1)), float(m.group(2)), received) if m else (None, None, received)

    def close(self):
        if self.shim and self.shim.poll() is None:
            self.shim.stdin.close()  # it exits at EOF; TERM if it does not
            try:
                self.shim.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.shim.terminate()
                self.shim.wait()
        if self.shim:
            for f in (self.shim.stdout, self.shim.stderr):
                f.close()
            self.shim = None
        # Whatever still runs in our namespaces (a daemon, a job a test left)
        # is ours: killed by pid before the namespaces go.
        for ns in self.made:
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        for ns in reversed(self.made):
            sh("ip", "netns", "del", ns, check=False)
        self.made = []
        if self in _live:
            _live.remove(self)


@atexit.register
def _close_all():
    for w in list(_live):
        w.close()


class Network:
    """Jazari on a Wan: in every site s a controller ctl-<s> (host 1, also a
    node) and agents n-<s>[-<h>] (hosts 2..), each daemon on its real
    address, port 7070, --site s<s> and the label s<s> (agents also
    `agent`; the controllers of sites 1 and 2 also `x`, so that
    --constraint x spreads a gang over two sites). Daemon is conftest's."""

    def __init__(self, wan, tmp, extra=(), ctl_extra=()):
        from conftest import Daemon
        self.wan = wan
        self.ctls, self.agents = [], []
        spec = ",".join("ctl-%d@%s:7070" % (s, wan.addr(s, 1)) for s in range(1, wan.sites + 1))
        for s in range(1, wan.sites + 1):
            for h in range(1, wan.hosts + 1):
                ctl = h == 1
                name = "ctl-%d" % s if ctl else ("n-%d" % s if wan.hosts == 2 else "n-%d-%d" % (s, h))
                labels = ["s%d" % s] + (["x"] if ctl and s <= 2 else []) + ([] if ctl else ["agent"])
                d = Daemon(tmp, name=name, netns=wan.ns(s, h), host=wan.addr(s, h), port=7070,
                           extra=list(extra) + (list(ctl_extra) if ctl else []) +
                           ["--controllers", spec, "--site", "s%d" % s, "--labels", ",".join(labels)])
                d.site = s
                (self.ctls if ctl else self.agents).append(d)
        self.everyone = self.ctls + self.agents

    def start(self):
        for d in self.everyone:
            d.start()
        return self

    def shutdown(self, check=True):
        """SIGTERM to every daemon still running (the shutdown path runs, and
        under ASan reports its leaks); one that does not exit 0 fails the
        caller (check=False: only stop them). The jobs they left go too."""
        bad = []
        for d in self.everyone:
            running = d.proc is not None and d.proc.poll() is None
            d.shutdown()
            if running and d.proc.returncode != 0:
                bad.append("%s: exit %s\n%s" % (d.name, d.proc.returncode, d.log()[-3000:]))
        if check and bad:
            raise AssertionError("a daemon did not shut down cleanly:\n" + "\n".join(bad))

    def leader(self, among=None):
        """The leader's name as the first live controller of among sees it, or None."""
        for d in among or self.ctls:
            if d.proc and d.proc.poll() is None:
                r = d.jz("status", "--json")
                if r.returncode == 0:
                    return json.loads(r.stdout).get("leader") or None
        return None

    def ctl(self, name):
        return next(d for d in self.ctls if d.name == name)


# The shim: run in the router namespace as `wan.py shim CONF`.

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000


def shim_main(conf):
    import fcntl
    from collections import deque
    base = conf["base"]
    rng = random.Random(conf["seed"])
    links = {}
    for key, (delay, jitter) in conf["links"].items():
        a, b = (int(x) for x in key.split("-"))
        links[(a, b)] = links[(b, a)] = (delay / 1000.0, jitter / 1000.0)
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", b"wan0", IFF_TUN | IFF_NO_PI))
    queues = {}  # (src site, dst site) -> deque of (due, packet), due never decreasing
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    ctl = sys.stdin.fileno()
    while True:
        now = time.monotonic()
        due = None
        for q in queues.values():
            while q and q[0][0] <= now:
                try:
                    os.write(fd, q.popleft()[1])
                except OSError:
                    pass  # the kernel refused it: a lost packet, as on a WAN
            if q and (due is None or q[0][0] < due):
                due = q[0][0]
        timeout = None if due is None else max(0.0, due - time.monotonic())
        readable, _, _ = select.select([fd, ctl], [], [], timeout)
        if ctl in readable and not os.read(ctl, 4096):
            return 0  # the harness closed our stdin: done
        if fd not in readable:
            continue
        while True:
            try:
                pkt = os.read(fd, 65536)
            except BlockingIOError:
                break
            if len(pkt) < 20 or pkt[0] >> 4 != 4 or pkt[13] != base or pkt[17] != base:
                continue  # not an inter-site IPv4 packet of ours
            key = (pkt[14], pkt[18])
            delay, jitter = links.get(key, (0.0, 0.0))
            t = time.monotonic() + max(0.0, delay + (rng.uniform(-jitter, jitter) if jitter else 0.0))
            q = queues.setdefault(key, deque())
            if q and t < q[-1][0]:
                t = q[-1][0]  # never before the link's previous packet
            if t <= time.monotonic() and not q:
                try:
                    os.write(fd, pkt)
                except OSError:
                    pass
            else:
                q.append((t, pkt))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "shim":
        sys.exit(shim_main(json.loads(sys.argv[2])))
    sys.exit("usage: wan.py shim CONF (run by the Wan harness in its router namespace)")
