"""Man pages (man/): one per jz command and jazarid.8, roff that groff
reads without a warning, and true to the programs: every option that
`jz CMD --help` lists is documented in the command's page, every shared
option in jz.1, every setting of `jazarid --help` in jazarid.8 — so a
new option without its documentation fails here."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import JAZARID, JZ, ROOT, run

MAN = os.path.join(ROOT, "man")
# Commands whose pages their authors are writing: each must still lack one
# (take it out of here with its page), and every other command must have one.
PENDING = set()


def commands():
    out = run([JZ, "help"]).stdout
    table = out.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in table.splitlines()]


def help_section(args, section):
    """The words of a section ("options", "subcommands") of `jz ARGS --help`."""
    r = run([JZ] + args + ["--help"])
    assert r.returncode == 0 and not r.stderr, (args, r.stderr)
    words, on = [], False
    for line in r.stdout.splitlines():
        if line == section + ":":
            on = True
        elif not line.startswith("  "):
            on = False
        elif on:
            words.append(line.split()[0])
    return words


SHARED = help_section(["ping"], "options")  # ping has no options of its own


def source(path):
    """A page's roff without font changes and with its escaped dashes
    plain, for looking options up."""
    with open(path) as f:
        return re.sub(r"\\f[BIRP]", "", f.read()).replace("\\-", "-")


def documents(text, opt):
    return re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), text) is not None


def pages():
    found = []
    for sec in ("man1", "man8"):
        d = os.path.join(MAN, sec)
        found += [os.path.join(d, f) for f in sorted(os.listdir(d))]
    return found


def test_every_command_has_a_page_and_every_page_a_command():
    names = commands()
    assert len(names) >= 15 and "submit" in names
    have = {f[len("jz-"):-len(".1")] for f in os.listdir(os.path.join(MAN, "man1")) if f.startswith("jz-")}
    assert sorted(set(names) - have - PENDING) == [], "commands without a page in man/man1"
    assert sorted(PENDING & have) == [], "a page was written: take its command out of PENDING"
    assert sorted(have - set(names)) == [], "pages of commands jz does not have"
    assert os.path.exists(os.path.join(MAN, "man1", "jz.1"))
    assert os.path.exists(os.path.join(MAN, "man8", "jazarid.8"))
    # jz.1 names each command's page.
    top = source(os.path.join(MAN, "man1", "jz.1"))
    for n in names:
        assert "jz-%s" % n in top, n


@pytest.mark.parametrize("cmd", [c for c in commands() if c not in PENDING])
def test_each_page_documents_its_commands_options(cmd):
    page = source(os.path.join(MAN, "man1", "jz-%s.1" % cmd))
    assert re.search(r"^\.SH NAME\njz-%s - \S" % re.escape(cmd), page, re.M), "NAME line"
    assert ".SH SYNOPSIS" in page and ".SH DESCRIPTION" in page and ".SH SEE ALSO" in page
    opts = set(help_section([cmd], "options"))
    for sub in help_section([cmd], "subcommands"):
        assert documents(page, sub), "subcommand %s" % sub
        opts |= set(help_section([cmd, sub], "options"))
    missing = sorted(o for o in opts - set(SHARED) if not documents(page, o))
    assert missing == [], "options of jz %s --help not in man/man1/jz-%s.1" % (cmd, cmd)


def test_jz1_documents_the_shared_options():
    page = source(os.path.join(MAN, "man1", "jz.1"))
    assert len(SHARED) >= 5 and "--socket" in SHARED
    assert [o for o in SHARED if not documents(page, o)] == []
    for var in ("JAZARI_SOCKET", "JAZARI_CREDENTIALS", "JAZARI_SERVER"):
        assert var in page


def test_jazarid8_documents_every_setting():
    out = run([JAZARID, "--help"]).stdout
    settings = re.findall(r"^  (--[a-z0-9-]+) ", out, re.M)
    assert len(settings) > 20
    page = source(os.path.join(MAN, "man8", "jazarid.8"))
    assert [s for s in settings if not documents(page, s)] == []


@pytest.mark.skipif(not shutil.which("groff"), reason="groff is not installed")
@pytest.mark.parametrize("path", pages(), ids=os.path.basename)
def test_groff_reads_each_page_without_a_warning(path):
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", path], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    # And it says something: the rendered page has its sections.
    r = subprocess.run(["groff", "-man", "-Tascii", "-P-cbou", path], capture_output=True, text=True, timeout=60)
    assert "NAME" in r.stdout and "SYNOPSIS" in r.stdout and len(r.stdout) > 400, r.stdout
