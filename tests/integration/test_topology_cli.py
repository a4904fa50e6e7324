"""`jazarid topology` on real machines' XML: the interface of INTERFACE.md."""
import glob
import json
import os

import pytest

from conftest import JAZARID, FIXTURES, run, hwloc_xml, fixture_xml

ALL_XML = sorted(glob.glob(os.path.join(FIXTURES, "hwloc", "*.xml")) +
                 glob.glob(os.path.join(FIXTURES, "topologies", "*.xml")))
LINK_WORDS = {"X", "PIX", "PXB", "PHB", "NODE", "SYS"}


def topology_json(xml):
    r = run([JAZARID, "topology", "--topology-xml", xml, "--json"])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def valid_link(s):
    return s in LINK_WORDS or (s.startswith("NV") and s[2:].isdigit() and int(s[2:]) > 0)


@pytest.mark.parametrize("xml", ALL_XML, ids=os.path.basename)
def test_every_fixture_gives_the_promised_keys(xml):
    t = topology_json(xml)
    for key in ("name", "packages", "numa_nodes", "cores", "pus", "gpus", "gpu_links"):
        assert key in t, key
    assert t["packages"] >= 1 and t["cores"] >= 1 and t["pus"] >= t["cores"]
    for n in t["numa_nodes"]:
        assert set(n) >= {"os_index", "memory_bytes", "cpuset"}
    n = len(t["gpus"])
    assert len(t["gpu_links"]) == n and all(len(row) == n for row in t["gpu_links"])
    buses = [g["pci_bus_id"] for g in t["gpus"]]
    assert buses == sorted(buses), "GPUs must be listed in PCI bus id order"
    for i, g in enumerate(t["gpus"]):
        assert set(g) >= {"index", "uuid", "model", "memory_bytes", "pci_bus_id", "numa", "cpuset"}
        assert g["index"] == i
        assert t["gpu_links"][i][i] == "X"
        for j in range(n):
            assert valid_link(t["gpu_links"][i][j])
            assert t["gpu_links"][i][j] == t["gpu_links"][j][i], "the matrix is symmetric"
    # The view for people prints too, with the matrix header when there are GPUs.
    r = run([JAZARID, "topology", "--topology-xml", xml])
    assert r.returncode == 0, r.stderr
    if n:
        assert "GPU0" in r.stdout


def test_dgx2_sixteen_gpus_nvlink_per_baseboard():
    t = topology_json(hwloc_xml("nvidiaDGX2.xml"))
    gpus = t["gpus"]
    assert len(gpus) == 16
    assert t["packages"] == 2
    assert [g["numa"] for g in gpus] == [0] * 8 + [1] * 8
    assert all(g["model"] == "Tesla V100-SXM3-32GB-H" for g in gpus)
    assert all(g["uuid"].startswith("GPU-") for g in gpus)
    links = t["gpu_links"]
    for i in range(16):
        for j in range(16):
            if i == j:
                continue
            same_board = (i < 8) == (j < 8)
            if same_board:
                assert links[i][j] == "NV6", (i, j, links[i][j])
            else:
                assert links[i][j] == "SYS", (i, j, links[i][j])


def test_power8_nvlink_pairs():
    t = topology_json(hwloc_xml("power8gpudistances.xml"))
    assert len(t["gpus"]) == 4  # each seen as cuda, opencl and nvml: still 4
    links = t["gpu_links"]
    assert links[0][1] == links[2][3] == "NV2"
    for i in (0, 1):
        for j in (2, 3):
            assert links[i][j] == "SYS"
    assert [g["numa"] for g in t["gpus"]] == [0, 0, 1, 1]


def test_name_override_and_default():
    r = run([JAZARID, "topology", "--topology-xml", hwloc_xml("16amd64-4distances.xml"), "--json",
             "--name", "emulated-1"])
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)
    assert t["name"] == "emulated-1" and t["gpus"] == [] and t["gpu_links"] == []


def test_live_probe_without_driver_reports_zero_gpus():
    r = run([JAZARID, "topology", "--json"])
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)
    assert t["cores"] >= 1 and t["pus"] >= 1 and len(t["numa_nodes"]) >= 1
    if not os.path.exists("/dev/nvidiactl"):
        assert t["gpus"] == []


@pytest.mark.parametrize("args,needle", [
    (["--topology-xml", "/nonexistent/machine.xml"], "/nonexistent/machine.xml"),
    (["--topology-xml", "/etc/hostname"], "/etc/hostname"),
    (["--topology-xml"], "needs a value"),
    (["--colour"], "unknown argument '--colour'"),
])
def test_bad_input_one_line_exit_2(args, needle):
    r = run([JAZARID, "topology"] + args)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert needle in lines[0]
    assert r.stdout == ""


def test_truncated_xml_is_refused(tmp_path):
    src = open(hwloc_xml("nvidiaDGX2.xml")).read()
    bad = tmp_path / "half.xml"
    bad.write_text(src[: len(src) // 2])
    r = run([JAZARID, "topology", "--topology-xml", str(bad)])
    assert r.returncode == 2
    assert str(bad) in r.stderr and len(r.stderr.strip().splitlines()) == 1
