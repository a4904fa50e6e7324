"""Data residency and datasets with real daemons (issue 15, item 3): three
controllers at three sites (casa, rabat, fes) and a GPU agent at casa and at
rabat, all on loopback (the sites are the daemons' `site` settings; the WAN
between them is test_wan's business). The policy binds um6p/health to casa
and says the dataset `corpus` is held at rabat:

* um6p/health's jobs start at casa only; --site rabat is refused at submit;
  a job wider than casa waits with reason Residency;
* a job naming --data corpus goes to rabat, though best fit alone would put
  it on the busier casa node (the same job without --data goes there: the
  test can fail); an unknown dataset is refused with the list;
* its output is relayed by daemons at casa only: jz logs through casa's
  controller shows it, through rabat's controller or through rabat's agent
  it is refused, saying where to ask;
* a gang that no one site can hold waits (SiteNodeLimit) unless it asks
  --span-sites;
* a policy whose residency names a site nobody declared stops jazarid with
  the file's line."""
import os
import subprocess

from conftest import JAZARID, fixture_xml, free_port
from conftest import wait_for as _wait_for
from test_steps import FAST


def wait_for(cond, timeout=30.0, what="condition"):
    return _wait_for(cond, timeout=max(timeout, 30.0), what=what)


H100 = fixture_xml("hgx-h100-8gpu.xml")

POLICY = """
site casa
site rabat
site fes
account um6p 2
account um6p/health 1
account um6p/nlp 1
residency um6p/health casa
dataset corpus rabat
dataset scans casa,fes
"""

SITES = {"c1": "casa", "c2": "rabat", "c3": "fes", "gcasa": "casa", "grabat": "rabat"}


def network(daemon_factory, tmp_path, public_dir):
    pol = tmp_path / "policy"
    pol.write_text(POLICY)
    names = ["c1", "c2", "c3"]
    ports = [free_port() for _ in names]
    spec = ",".join("%s@127.0.0.1:%d" % (n, p) for n, p in zip(names, ports))
    ds = {}
    for n, p in zip(names + ["gcasa", "grabat"], ports + [None, None]):
        tmp = tmp_path / ("tmp-" + n)
        tmp.mkdir(exist_ok=True)
        os.chmod(str(tmp), 0o1777)
        extra = ["--controllers", spec, "--gpu-isolation", "off", "--policy", str(pol), "--site", SITES[n],
                 "--tmp-dir", str(tmp)] + FAST
        sock = os.path.join(public_dir, n + ".sock")  # reached by `nobody` too
        if n.startswith("c"):
            ds[n] = daemon_factory(name=n, port=p, socket=sock, extra=extra + ["--election-timeout", "300ms"])
        else:
            ds[n] = daemon_factory(name=n, xml=H100, socket=sock, extra=extra)
    c1 = ds["c1"]
    wait_for(lambda: c1.jz_json("status").get("leader") in names, what="a leader")
    wait_for(lambda: {n["name"] for n in c1.jz_json("nodes")["nodes"] if n["state"] == "up"} >=
             {"gcasa", "grabat"}, what="both GPU agents up")
    return ds


def submit(d, *args):
    r = d.jz("submit", "--workdir", d.dir, *args)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip().split()[0])


def show(d, jid):
    return d.jz_json("show", str(jid))


def where(d, jid):
    return [n["name"] for n in show(d, jid)["nodes"]]


def test_residency_and_datasets(daemon_factory, tmp_path, public_dir):
    ds = network(daemon_factory, tmp_path, public_dir)
    c1, c2 = ds["c1"], ds["c2"]
    # Bound jobs start at casa only, whatever is free at rabat (the first
    # is nobody's, whose output nobody reads below).
    r = c1.jz_as("nobody", "submit", "--workdir", public_dir, "--account", "um6p/health", "--gpus-per-node", "1",
                 "--", "sh", "-c", "echo resident-output-0; sleep 30")
    assert r.returncode == 0, r.stderr
    bound = [int(r.stdout.split()[0])]
    bound += [submit(c1, "--account", "um6p/health", "--gpus-per-node", "1", "--time", "5",
                     "--", "sh", "-c", "sleep 30") for i in range(2)]
    for jid in bound:
        wait_for(lambda: show(c1, jid)["state"] == "RUNNING", what="bound job %d to run" % jid)
        assert where(c1, jid) == ["gcasa"], show(c1, jid)
    # --site outside the residency: refused, saying why; nothing queued.
    before = len(c1.jz_json("queue")["jobs"])
    r = c1.jz("submit", "--account", "um6p/health", "--site", "rabat", "--", "true")
    assert r.returncode != 0 and "bound to casa by the policy's residency" in r.stderr, r.stderr
    assert "--site rabat is outside" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert len(c1.jz_json("queue")["jobs"]) == before
    # Wider than casa (its nodes: c1 and gcasa): waits, saying why.
    wide = submit(c1, "--account", "um6p/health", "--nodes", "3", "--", "true")
    wait_for(lambda: show(c1, wide)["reason"] == "Residency", what="the wide job's reason")
    assert show(c1, wide)["state"] == "PENDING"
    # An unbound project may go anywhere; with --data corpus, to rabat,
    # though best fit prefers the busier casa node (as the control shows).
    plain = submit(c1, "--account", "um6p/nlp", "--gpus-per-node", "1", "--", "sleep", "30")
    wait_for(lambda: show(c1, plain)["state"] == "RUNNING", what="the plain job to run")
    assert where(c1, plain) == ["gcasa"], show(c1, plain)
    data = submit(c1, "--account", "um6p/nlp", "--gpus-per-node", "1", "--data", "corpus", "--", "sleep", "30")
    wait_for(lambda: show(c1, data)["state"] == "RUNNING", what="the data job to run")
    assert where(c1, data) == ["grabat"], show(c1, data)
    r = c1.jz("submit", "--data", "atlantis", "--", "true")
    assert r.returncode != 0 and "--data atlantis: no dataset is named so" in r.stderr, r.stderr
    assert "corpus, scans" in r.stderr, r.stderr
    # The output of a bound job leaves casa only through daemons at casa.
    jid = bound[0]
    wait_for(lambda: "resident-output-0" in c1.jz_as("nobody", "logs", str(jid)).stdout,
             what="the output through casa's controller")
    r = c2.jz_as("nobody", "logs", str(jid))
    assert r.returncode != 0 and "output stays in casa" in r.stderr and "c2 is at rabat" in r.stderr, r.stderr
    assert "ask a daemon there" in r.stderr and "resident-output" not in r.stdout
    # Through rabat's agent (which relays it through a controller): refused,
    # naming rabat's agent, or the controller it went through when that one
    # is outside casa too (the leader may be anywhere).
    r = ds["grabat"].jz_as("nobody", "logs", str(jid))
    assert r.returncode != 0 and "output stays in casa" in r.stderr, r.stderr
    assert any(w in r.stderr for w in ("grabat is at rabat", "c2 is at rabat", "c3 is at fes")), r.stderr
    assert "resident-output" not in r.stdout
    # An unbound job's output goes anywhere.
    assert c2.jz("logs", str(plain)).returncode == 0
    # A gang of two GPU nodes: no site has two, so it waits, saying why,
    # unless it may span sites.
    gang = submit(c1, "--nodes", "2", "--gpus-per-node", "1", "--", "sleep", "30")
    wait_for(lambda: show(c1, gang)["reason"] == "SiteNodeLimit", what="the gang's reason")
    spread = submit(c1, "--nodes", "2", "--gpus-per-node", "1", "--span-sites", "--", "sleep", "30")
    wait_for(lambda: show(c1, spread)["state"] == "RUNNING", what="the spanning gang to run")
    assert sorted(where(c1, spread)) == ["gcasa", "grabat"], show(c1, spread)
    assert show(c1, gang)["state"] == "PENDING"
    for j in bound + [wide, plain, data, gang, spread]:
        c1.jz("cancel", str(j))

    # A node whose site the policy does not declare (an agent with no policy
    # of its own): the leader refuses its registration in one line, which
    # its log shows; it never joins, the rest is untouched.
    spec = next(a for a in ds["gcasa"].args if "@127.0.0.1:" in a)
    stray = daemon_factory(name="gtanger", xml=H100, extra=["--controllers", spec, "--gpu-isolation", "off",
                                                            "--site", "tanger"] + FAST)
    wait_for(lambda: "its site 'tanger' is not one the policy declares" in stray.log(), timeout=30,
             what="the leader's refusal in the stray node's log")
    assert "gtanger" not in {n["name"] for n in c1.jz_json("nodes")["nodes"]}


def test_a_residency_naming_an_undeclared_site_stops_jazarid(tmp_path):
    for text, want in (("account a 1\nresidency a marrakech\n",
                        "bad.conf:4: residency a: site 'marrakech' is not declared by a `site` line above "
                        "(declared: casa)"),
                       ("dataset d fes\n", "bad.conf:3: dataset d: site 'fes' is not declared"),
                       ("account a 1\nresidency ghost casa\n", "bad.conf:4: residency ghost: no account is named so")):
        path = tmp_path / "bad.conf"
        path.write_text("# sites\nsite casa\n" + text)
        r = subprocess.run([JAZARID, "--policy", str(path), "--state-dir", str(tmp_path / "s")],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and want in r.stderr, (text, r.stderr)
    # A daemon at a site its policy does not declare: one line, nothing started.
    path = tmp_path / "good.conf"
    path.write_text("site casa\nsite rabat\n")
    r = subprocess.run([JAZARID, "--check-config", "--policy", str(path), "--site", "tanger"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 2 and "site tanger is not one policy %s declares (casa, rabat)" % path in r.stderr, r.stderr
    r = subprocess.run([JAZARID, "--check-config", "--policy", str(path), "--site", "rabat"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
