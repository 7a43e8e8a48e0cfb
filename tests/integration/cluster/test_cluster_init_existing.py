"""`docklock cluster init` on an existing workspace (review finding 5).

`--bpi-integration --witness URL VKEY` needs no --force there: it only adds the witnesses
to docklock.yaml's spec.ledger.witnesses, editing the text in place (every other byte,
comments and formatting included, is kept), never touches specs/, and the ledger is
cosigned once registered on the witness, as for a new workspace. Without witnesses, or
without --bpi-integration, it is refused with nothing changed and no hint to use --force
as a way to get there. No Podman is needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "witness"))

from witnessproc import cli, ok, witness_process

from docklock.engine.cluster import Witness, add_witnesses
from docklock.errors import DockLockError

CUSTOM = """\
# The shop cluster; hand-edited, keep these comments.
apiVersion: docklock.io/v1
kind: Cluster
metadata:
  name: 'shop'        # quoted on purpose
spec:
  specs: [ specs ]
  securityLevel:   standard
  policies: []   # none yet
# the end
"""
AUDIT = """\
  # External audit (cluster init --bpi-integration): witnesses cosign every
  # ledger checkpoint, so a rolled-back or forked ledger is caught (docs/witnesses.md).
  ledger:
    witnesses:
      - url: "{url}"
        key: "{key}"
"""


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _customised(root: Path) -> None:
    """A plain `docklock init` workspace, then edited the way an operator would."""
    ok("init", str(root))
    (root / "docklock.yaml").write_text(CUSTOM)
    web = root / "specs" / "web.yaml"
    web.write_text("# my web service\n" + web.read_text())
    (root / "specs" / "policy.yaml").write_text((root / "specs" / "policy.yaml").read_text()
                                                + "# reviewed\n")


def test_bpi_integration_adds_only_the_witnesses_and_they_cosign(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    _customised(root)
    specs_before = {k: v for k, v in _files(root).items() if k.startswith("specs/")}
    with witness_process(tmp_path / "witness") as w:
        done = cli("cluster", "init", str(root), "--bpi-integration",
                   "--witness", w.url, w.vkey)
        assert done.returncode == 0, done.stderr
        assert ("kept the existing workspace: added the witnesses to docklock.yaml "
                "spec.ledger.witnesses (the rest of the file and specs/ unchanged)") \
            in done.stdout
        assert "wrote " not in done.stdout
        # docklock.yaml: the same bytes, plus the spec.ledger block after spec's last line.
        lines = CUSTOM.splitlines(keepends=True)
        expected = "".join([*lines[:9], AUDIT.format(url=w.url, key=w.vkey), *lines[9:]])
        assert (root / "docklock.yaml").read_text() == expected
        after = _files(root)
        assert {k: v for k, v in after.items() if k.startswith("specs/")} == specs_before
        assert "created signing key" in done.stdout
        assert "audit: 1 witness in docklock.yaml spec.ledger.witnesses (quorum 1)" \
            in done.stdout
        assert ok("validate", "-C", str(root)) == "2 resources valid\n"

        # Registered on the witness, the next checkpoint is cosigned; verify checks it.
        origin, vkey = ok("witness", "log-key", "-C", str(root)).split()
        assert f"docklock witness add-log --dir WITNESS_DIR {origin} {vkey}" in done.stdout
        ok("witness", "add-log", "--dir", str(w.folder), origin, vkey)
        planned = cli("plan", "--no-refresh", "-C", str(root))
        assert planned.returncode == 0, planned.stderr
        assert "warning" not in planned.stderr
        verify = cli("ledger", "verify", "-C", str(root))
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "no witnesses are configured" not in verify.stdout

        # Again, same witness: nothing to add, docklock.yaml is not rewritten.
        stat_before = (root / "docklock.yaml").stat()
        again = cli("cluster", "init", str(root), "--bpi-integration", "--witness", w.url,
                    w.vkey)
        assert again.returncode == 0, again.stderr
        assert "kept the existing workspace: docklock.yaml already lists these witnesses " \
            "(nothing written)" in again.stdout
        assert "kept the existing signing key" in again.stdout
        assert (root / "docklock.yaml").read_text() == expected
        assert (root / "docklock.yaml").stat().st_mtime_ns == stat_before.st_mtime_ns
        # --bpi-integration alone on it: the listed witnesses are used, nothing written.
        alone = cli("cluster", "init", str(root), "--bpi-integration")
        assert alone.returncode == 0, alone.stderr
        assert "audit: 1 witness" in alone.stdout
        assert {k: v for k, v in _files(root).items() if not k.startswith(".docklock/")} \
            == {k: v for k, v in after.items() if not k.startswith(".docklock/")}


def test_existing_workspace_refusals_change_nothing(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    _customised(root)
    vkey = ok("witness", "init", str(tmp_path / "w")).split()[-1]
    before = _files(root)
    cases = {
        "no-flags": ([], f"error: {root} is already a DockLock workspace (docklock.yaml "
                         "exists); cluster init leaves it as it is (hint: `docklock keys "
                         f"init -C {root}` creates its signing key and ledger; `docklock "
                         f"cluster init {root} --bpi-integration --witness URL VKEY` adds "
                         "witnesses"),
        "bpi-without-witnesses": (["--bpi-integration"],
                                  "error: --bpi-integration (the ledger's external audit) "
                                  "needs at least one witness, and none is configured "
                                  "(hint: pass --witness URL VKEY"),
        "scaffold-flags": (["--bpi-integration", "--witness", "http://127.0.0.1:1", vkey,
                            "--security-level", "hardened", "--add", "job"],
                           f"error: --security-level, --add: {root} is already a DockLock "
                           "workspace (docklock.yaml exists); there --bpi-integration only "
                           "adds witnesses to its docklock.yaml (hint: drop --security-level,"
                           " --add"),
    }
    for name, (args, expected) in cases.items():
        done = cli("cluster", "init", str(root), *args)
        assert done.returncode == 1, (name, done.stdout, done.stderr)
        (error,) = _errors(done.stderr)
        assert error.startswith(expected), (name, error)
        if name != "no-flags":
            assert "--force" not in error, (name, error)
        assert done.stdout == "", name
        assert _files(root) == before, name

    # A docklock.yaml that is not valid YAML: a located error, nothing written.
    (root / "docklock.yaml").write_text("spec:\n  specs: [specs\n")
    before = _files(root)
    done = cli("cluster", "init", str(root), "--bpi-integration", "--witness",
               "http://127.0.0.1:1", vkey)
    assert done.returncode == 1
    assert done.stderr.startswith(f"{root / 'docklock.yaml'}:3:1: invalid YAML"), \
        done.stderr
    assert _files(root) == before


@pytest.mark.parametrize(("text", "expected"), [
    # spec.ledger with a quorum but no witnesses: the list goes after its last line.
    ("kind: Cluster\nspec:\n  ledger:\n    # q\n    quorum: 1\n  specs: [specs]\n",
     "kind: Cluster\nspec:\n  ledger:\n    # q\n    quorum: 1\n    witnesses:\n"
     "      - url: \"http://new:1\"\n        key: \"n\"\n  specs: [specs]\n"),
    # An existing list (with a comment inside, dashes not indented): the new one appended.
    ("spec:\n  ledger:\n    witnesses:\n    # first\n    - url: http://old:1\n"
     "      key: o\n    quorum: 1\n",
     "spec:\n  ledger:\n    witnesses:\n    # first\n    - url: http://old:1\n"
     "      key: o\n    - url: \"http://new:1\"\n      key: \"n\"\n    quorum: 1\n"),
    # `witnesses: []` becomes a block list; `ledger:` with nothing under it gets one.
    ("spec:\n  ledger:\n    witnesses: []  # none\n  a: 1\n",
     "spec:\n  ledger:\n    witnesses:\n      - url: \"http://new:1\"\n        key: \"n\"\n"
     "  a: 1\n"),
    ("spec:\n  ledger:\n  a: 1\n",
     "spec:\n  ledger:\n    witnesses:\n      - url: \"http://new:1\"\n        key: \"n\"\n"
     "  a: 1\n"),
    # A flow list that already lists one: written as a block list, both kept.
    ("spec:\n  ledger:\n    witnesses: [{url: 'http://old:1', key: o}]\n",
     "spec:\n  ledger:\n    witnesses:\n      - url: \"http://old:1\"\n        key: \"o\"\n"
     "      - url: \"http://new:1\"\n        key: \"n\"\n"),
    # CRLF line ends stay CRLF; a last line without a newline gets one.
    ("spec:\r\n  a: 1", "spec:\r\n  a: 1\r\n" + "".join(
        line + "\r\n" for line in AUDIT.format(url="http://new:1", key="n").splitlines())),
])
def test_add_witnesses_edits_only_the_witnesses(tmp_path: Path, text: str,
                                                expected: str) -> None:
    (tmp_path / "docklock.yaml").write_bytes(text.encode())
    listed, _, changed = add_witnesses(tmp_path, [Witness("http://new:1", "n")])
    assert changed
    assert listed[-1] == Witness("http://new:1", "n")
    assert (tmp_path / "docklock.yaml").read_bytes().decode() == expected


def test_add_witnesses_rekeys_and_refuses_flow_style(tmp_path: Path) -> None:
    config = tmp_path / "docklock.yaml"
    config.write_text("spec:\n  ledger:\n    witnesses:\n      - url: http://a:1\n"
                      "        key: old\n    quorum: 1\n")
    config.chmod(0o640)
    listed, quorum, changed = add_witnesses(tmp_path, [Witness("http://a:1", "new")])
    assert (listed, quorum, changed) == ((Witness("http://a:1", "new"),), 1, True)
    assert config.read_text() == ("spec:\n  ledger:\n    witnesses:\n"
                                  "      - url: \"http://a:1\"\n        key: \"new\"\n"
                                  "    quorum: 1\n")
    assert config.stat().st_mode & 0o777 == 0o640

    for text in ("spec: {specs: [specs]}\n", "spec:\n  ledger: {quorum: 1}\n"):
        config.write_text(text)
        with pytest.raises(DockLockError) as caught:
            add_witnesses(tmp_path, [Witness("http://a:1", "k")])
        assert "is not a block mapping; cannot add spec.ledger.witnesses" \
            in caught.value.message
        assert config.read_text() == text
