"""`docklock keys ...` and `docklock ledger ...` through the real argument parser."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from ledger_helpers import Clock

from docklock.cli import main
from docklock.ledger import Ledger, load_keyring, load_signer
from docklock.workspace import WorkspacePaths

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(workspace: WorkspacePaths, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("NO_COLOR", "1")

    def _run(*args: str) -> tuple[int, str, str]:
        code = main(["-C", str(workspace.root), *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return _run


def _commands(workspace: WorkspacePaths, groups: tuple[int, ...] = (3, 2)) -> Ledger:
    ledger = Ledger(workspace, "t", clock=Clock())
    signer = load_signer(workspace)
    for n in groups:
        for i in range(n):
            ledger.append("change", {"address": f"Service/default/w{i}", "action": "create"},
                          serial=i)
        ledger.checkpoint(signer)
    return ledger


def test_keys_init_show_and_refuse_second_init(run: Run, workspace: WorkspacePaths) -> None:
    code, out, _ = run("keys", "init", "--algorithm", "mldsa65-ed25519")
    assert code == 0
    keyid = load_keyring(workspace).current
    assert keyid in out
    assert "docklock.pub" in out
    code, out, _ = run("keys", "show", "--json")
    info = json.loads(out)
    assert code == 0
    assert info["current"] == keyid
    assert info["keys"][0]["algorithm"] == "mldsa65-ed25519"
    assert info["private_key"]["mode"] == "0600"
    assert info["private_key"]["encrypted"] is False
    code, _, err = run("keys", "init")
    assert code == 1
    assert "keys rotate" in err
    code, out, _ = run("keys", "show")
    assert code == 0
    assert "current" in out


def test_ledger_verify_ok_and_json(run: Run, workspace: WorkspacePaths) -> None:
    run("keys", "init")
    _commands(workspace)
    code, out, _ = run("ledger", "verify")
    assert code == 0
    assert "ledger OK" in out
    # keys init signs the empty ledger (A4), then two commands checkpoint
    assert "3 of 3 checkpoints verified" in out
    code, out, _ = run("ledger", "verify", "--json")
    report = json.loads(out)
    assert code == 0
    assert report["ok"] is True
    assert report["entries"] == 5
    code, out, _ = run("ledger", "verify", "--from-checkpoint", "--json")
    assert code == 0
    assert json.loads(out)["verified_from"] == 3


def test_ledger_verify_fails_naming_the_entry(run: Run, workspace: WorkspacePaths) -> None:
    run("keys", "init")
    ledger = _commands(workspace)
    data = ledger.entries_path.read_bytes()
    ledger.entries_path.write_bytes(data.replace(b"Service/default/w1", b"Service/default/w9",
                                                 1))
    code, out, err = run("ledger", "verify")
    assert code == 1
    assert "FAILED" in out
    assert "entry seq 1 (line 2)" in err
    code, out, _ = run("ledger", "verify", "--json")
    assert code == 1
    problem = json.loads(out)["problem"]
    assert (problem["seq"], problem["line"], problem["kind"]) == (1, 2, "entry")


def test_ledger_show(run: Run, workspace: WorkspacePaths) -> None:
    run("keys", "init")
    _commands(workspace)
    code, out, _ = run("ledger", "show")
    assert code == 0
    assert "5 entries" in out
    assert "Service/default/w0" in out
    code, out, _ = run("ledger", "show", "--json", "--tail", "2")
    data = json.loads(out)
    assert [e["seq"] for e in data["entries"]] == [3, 4]
    assert data["checkpoint"]["size"] == 5


def test_ledger_show_summarises_plan_counts_without_python_repr(
        run: Run, workspace: WorkspacePaths) -> None:
    run("keys", "init")
    ledger = _commands(workspace, groups=(1,))
    ledger.append("plan", {"summary": {"add": 1, "change": 0, "destroy": 2}}, serial=1)
    ledger.append("apply-end", {"summary": {"add": 0, "change": 0}}, serial=1)
    code, out, _ = run("ledger", "show", "--tail", "2")
    assert code == 0
    assert "add=1 destroy=2" in out
    assert "no changes" in out
    assert "{'" not in out


def test_ledger_proof_round_trip(run: Run, workspace: WorkspacePaths, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    run("keys", "init")
    _commands(workspace)
    proof_file = tmp_path / "proof.json"
    code, _, err = run("ledger", "proof", "2", "--out", str(proof_file))
    assert code == 0
    assert "written" in err
    code, out, _ = run("ledger", "verify-proof", str(proof_file))
    assert code == 0
    assert "proof OK" in out
    # Offline, outside the workspace, with only the public keyring.
    monkeypatch.chdir(tmp_path)
    assert main(["ledger", "verify-proof", str(proof_file), "--key",
                 str(workspace.root / "docklock.pub")]) == 0
    assert "proof OK" in capsys.readouterr().out
    assert main(["ledger", "verify-proof", str(proof_file)]) == 1
    assert "--key" in capsys.readouterr().err
    code, out, _ = run("ledger", "proof", "1")
    assert json.loads(out)["seq"] == 1
    proof = json.loads(proof_file.read_text())
    proof["seq"] = 3
    proof_file.write_text(json.dumps(proof))
    code, _, err = run("ledger", "verify-proof", str(proof_file))
    assert code == 1
    assert "seq" in err
    code, _, err = run("ledger", "proof", "99")
    assert code == 1
    assert "not covered" in err


def test_keys_rotate_keeps_the_ledger_verifiable(run: Run, workspace: WorkspacePaths) -> None:
    run("keys", "init")
    _commands(workspace)
    old = load_keyring(workspace).current
    code, out, _ = run("keys", "rotate")
    assert code == 0
    new = load_keyring(workspace).current
    assert new != old
    assert "key-rotation entry seq 5" in out
    assert (workspace.keys / "retired" / f"{old[:16]}.key").stat().st_mode & 0o777 == 0o600
    code, out, _ = run("ledger", "verify", "--json")
    assert code == 0
    assert json.loads(out)["keys"] == [old, new]


def test_ledger_repair(run: Run, workspace: WorkspacePaths) -> None:
    run("keys", "init")
    ledger = _commands(workspace)
    with ledger.entries_path.open("ab") as f:
        f.write(b'{"torn')
    assert run("ledger", "verify")[0] == 1
    code, out, _ = run("ledger", "repair")
    assert code == 0
    assert "torn-entries" in out
    assert run("ledger", "verify")[0] == 0
    assert run("ledger", "repair")[1].startswith("nothing to repair")


def test_bare_group_prints_usage(run: Run) -> None:
    assert run("ledger")[0] == 1
    assert run("keys")[0] == 1
