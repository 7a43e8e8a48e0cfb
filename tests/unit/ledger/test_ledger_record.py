"""Plan and drift record what they saw without ever changing keys (issue 11 B8), and a
ledger outage does not take plan's output away; a tampered ledger still stops them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from ledger_helpers import raw_append

from docklock.cli._common import Output
from docklock.cli.cmd_drift import _record as record_drift
from docklock.drift import DriftReport
from docklock.errors import LedgerError
from docklock.ledger import Ledger, load_keyring
from docklock.workspace import WorkspacePaths

CLUSTER = "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: t}\nspec: {}\n"
Run = Callable[..., tuple[int, str, str]]



def _workspace(root: Path, cluster: str = CLUSTER) -> Path:
    root.mkdir(parents=True)
    (root / "docklock.yaml").write_text(cluster)
    (root / "specs").mkdir()
    return root


class _Capture:
    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def _drift(root: Path) -> str:
    err = _Capture()
    record_drift(WorkspacePaths(root), "t", DriftReport(cluster="t"),
                 Output(_Capture(), err, False))  # type: ignore[arg-type]
    return err.text


def _without_genesis(pub: Path) -> None:
    """docklock.pub as written before the `genesis` and `ledger` fields existed."""
    body = json.loads(pub.read_text())
    body.pop("genesis", None)
    body.pop("ledger", None)
    pub.write_text(json.dumps(body, indent=2) + "\n")


@pytest.mark.parametrize("old_format", [False, True])
def test_plan_and_drift_leave_docklock_pub_byte_identical(tmp_path: Path, run: Run,
                                                          old_format: bool) -> None:
    ws = _workspace(tmp_path / "ws")
    assert run(ws, "keys", "init")[0] == 0
    pub = ws / "docklock.pub"
    paths = WorkspacePaths(ws)
    # keys init started the ledger: docklock.pub names it from the start (A4).
    assert load_keyring(paths).ledger == Ledger.open(paths).origin
    if old_format:  # as written before `genesis` and the ledger marker existed
        _without_genesis(pub)
    committed = pub.read_bytes()
    code, _, err = run(ws, "plan", "--no-refresh")
    assert code == 0, err
    assert pub.read_bytes() == committed
    assert _drift(ws) == ""
    assert pub.read_bytes() == committed
    assert [e.type.value for e in Ledger.open(paths).entries()] == ["plan", "drift"]
    # A command that must sign records the ledger's identity (A4) where docklock.pub
    # lacks it (an old file); a current one already has it and stays as it is.
    from docklock.ledger import record_event
    record_event(paths, "apply-start", {"plan": "x"}, create_keys=False)
    assert load_keyring(paths).ledger == Ledger.open(paths).origin
    assert (pub.read_bytes() != committed) is old_format


def test_plan_prints_its_plan_when_the_witness_quorum_is_missed(tmp_path: Path,
                                                                run: Run) -> None:
    from docklock.witness.server import init_witness

    vkey = init_witness(tmp_path / "w", "witness.test/w1").vkey.render()
    ws = _workspace(tmp_path / "ws", CLUSTER.replace(
        "spec: {}\n", f"spec:\n  ledger:\n    witnesses:\n      - url: http://127.0.0.1:9/\n"
                      f"        key: {vkey}\n"))
    assert run(ws, "keys", "init")[0] == 0
    code, out, err = run(ws, "plan", "--no-refresh", "--detailed-exitcode")
    assert code == 0, err
    assert out.strip()  # the plan was printed
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "witness quorum not reached" in warnings[0]
    assert Ledger.open(WorkspacePaths(ws)).latest_checkpoint() is not None  # still signed
    assert "witness quorum not reached" in _drift(ws)


def test_plan_prints_its_plan_without_the_key_passphrase(tmp_path: Path, run: Run,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    ws = _workspace(tmp_path / "ws")
    monkeypatch.setenv("DOCKLOCK_KEY_PASSPHRASE", "correct horse")
    assert run(ws, "keys", "init")[0] == 0
    monkeypatch.delenv("DOCKLOCK_KEY_PASSPHRASE")
    code, _out, err = run(ws, "plan", "--no-refresh")
    assert code == 0, err
    assert "DOCKLOCK_KEY_PASSPHRASE" in err
    assert "warning: not recorded" in err
    assert not (ws / ".docklock" / "ledger" / "entries.jsonl").exists()


def test_plan_after_keys_import_without_the_ledger_warns_and_import_says_why(
        tmp_path: Path, run: Run) -> None:
    origin = _workspace(tmp_path / "origin")
    assert run(origin, "keys", "init")[0] == 0
    from docklock.ledger import record_event
    record_event(WorkspacePaths(origin), "apply-start", {"plan": "x"}, create_keys=False)
    assert run(origin, "keys", "export", str(tmp_path / "k.pem"))[0] == 0
    clone = _workspace(tmp_path / "clone")
    (clone / "docklock.pub").write_bytes((origin / "docklock.pub").read_bytes())
    code, _, err = run(clone, "keys", "import", str(tmp_path / "k.pem"))
    assert code == 0, err
    assert "copy .docklock/ledger" in err
    code, _out, err = run(clone, "plan", "--no-refresh", "--detailed-exitcode")
    assert code == 0, err
    assert "warning: not recorded in the ledger: the ledger is missing" in err
    assert "keys init --force" in err
    assert not (clone / ".docklock" / "ledger" / "entries.jsonl").exists()


def test_plan_and_drift_still_refuse_a_tampered_ledger(tmp_path: Path, run: Run) -> None:
    ws = _workspace(tmp_path / "ws")
    assert run(ws, "keys", "init")[0] == 0
    assert run(ws, "plan", "--no-refresh")[0] == 0
    paths = WorkspacePaths(ws)
    raw_append(Ledger.open(paths), {"summary": "mallory"})
    code, _out, err = run(ws, "plan", "--no-refresh")
    assert code == 1
    assert "refusing to sign over entry seq 1" in err
    with pytest.raises(LedgerError, match="refusing to sign over entry seq 1"):
        _drift(ws)


def test_missing_private_key_hint_names_the_ledger_folder(tmp_path: Path, run: Run) -> None:
    origin = _workspace(tmp_path / "origin")
    assert run(origin, "keys", "init")[0] == 0
    clone = _workspace(tmp_path / "clone")
    (clone / "docklock.pub").write_bytes((origin / "docklock.pub").read_bytes())
    code, _, err = run(clone, "plan", "--no-refresh", "--out", str(clone / "p.plan"))
    assert code == 1
    assert ".docklock/ledger" in err
    assert "keys init --force" in err


def test_deleting_a_ledger_only_plans_wrote_is_caught(tmp_path: Path, run: Run) -> None:
    """A4 with B8: plan never writes docklock.pub, so keys init starts the ledger (a
    signed checkpoint of the empty tree) and names it in docklock.pub; deleting the
    ledger of a workspace that only ever planned is then a failure, not "0 entries"."""
    ws = _workspace(tmp_path / "ws")
    assert run(ws, "keys", "init")[0] == 0
    code, out, err = run(ws, "ledger", "verify")
    assert code == 0, out + err
    assert "1 of 1 checkpoints verified" in out
    assert run(ws, "plan", "--no-refresh")[0] == 0
    import shutil
    shutil.rmtree(ws / ".docklock" / "ledger")
    code, out, err = run(ws, "ledger", "verify")
    assert code == 1
    assert "the ledger is missing" in out + err
