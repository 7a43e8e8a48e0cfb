"""Two commands of one workspace checkpointing at once, against a real witness process.

Witnesses are asked after the ledger lock is released, so a later checkpoint (B, bigger)
can be cosigned before an earlier one (A). The witness then answers A with 409 and a size
larger than A's: that is not a rollback when the local ledger holds that bigger,
cosigned checkpoint (issue 11 review, 4).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from witnessproc import _exe, env, make_workspace, set_witnesses, witness_process

from docklock.ledger import Ledger
from docklock.ledger.record import record_event
from docklock.ledger.witnessing import cosign, ledger_settings, verify_witnesses
from docklock.workspace import WorkspacePaths


def test_an_overtaken_checkpoint_is_superseded_not_a_rollback(tmp_path: Path) -> None:
    with witness_process(tmp_path / "w") as w:
        ws = make_workspace(tmp_path / "ws")
        w.add_log(ws)
        paths = WorkspacePaths(ws)
        # The exact interleaving, made deterministic: A and B write their checkpoints
        # (witnesses not listed yet, so nobody asks), then B is cosigned first.
        _, cp_a = record_event(paths, "plan", {"command": "A"})
        _, cp_b = record_event(paths, "plan", {"command": "B"})
        assert cp_b.size > cp_a.size
        set_witnesses(ws, w)
        settings = ledger_settings(paths)
        assert settings is not None
        ledger = Ledger.open(paths)
        assert cosign(ledger, cp_b, settings).ok
        late = cosign(ledger, cp_a, settings)
        assert late.ok, late.outcomes
        assert "superseded" in late.outcomes[0].message
        assert "rolled back" not in late.outcomes[0].message
        assert verify_witnesses(paths).ok


def test_a_real_rollback_is_still_reported(tmp_path: Path) -> None:
    """The same 409 when the local ledger really lost the bigger checkpoint."""
    import shutil

    with witness_process(tmp_path / "w") as w:
        ws = make_workspace(tmp_path / "ws")
        w.add_log(ws)
        paths = WorkspacePaths(ws)
        _, cp_a = record_event(paths, "plan", {"command": "A"})
        shutil.copytree(paths.ledger, tmp_path / "old-ledger")
        set_witnesses(ws, w)
        record_event(paths, "plan", {"command": "B"})  # cosigned: the witness moves on
        shutil.rmtree(paths.ledger)
        shutil.copytree(tmp_path / "old-ledger", paths.ledger)
        settings = ledger_settings(paths)
        assert settings is not None
        report = cosign(Ledger.open(paths), cp_a, settings)
        assert not report.ok
        assert "rolled back" in report.outcomes[0].message


def test_two_commands_checkpointing_at_once_neither_reports_a_rollback(
        tmp_path: Path) -> None:
    with witness_process(tmp_path / "w") as w:
        ws = make_workspace(tmp_path / "ws", w)
        for round_ in range(3):  # bounded: 3 rounds of 2 concurrent commands
            procs = [subprocess.Popen([_exe(), "plan", "--no-refresh", "-C", str(ws)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=env()) for _ in range(2)]
            results = [(p.communicate(timeout=60), p.returncode) for p in procs]
            for (_out, err), code in results:
                assert "rolled back" not in err, (round_, err)
                assert code == 0, (round_, code, err)
        assert verify_witnesses(WorkspacePaths(ws)).ok
