"""Commands that only read need no private key (issue 14): validate, plan without --out,
drift and status run against real Podman in a workspace whose docklock.pub, state and
ledger exist but whose private key does not (a teammate's or CI's checkout). They exit as
they would with the key, create no key and leave docklock.pub byte for byte as it was.

(validate and `plan --no-refresh` without any state are covered by
test_ledger_fresh_clone.py; this adds plan with a live refresh, drift and status.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from docklock.cli import main

if TYPE_CHECKING:  # tests/conftest.py; this folder's conftest.py shadows the name at run time
    from conftest import PodmanHarness

pytestmark = pytest.mark.podman

CLUSTER = "keyless"
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        podman_harness: PodmanHarness) -> Run:
    if podman_harness.process is None or podman_harness.process.poll() is not None:
        podman_harness.start_service()
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("DOCKLOCK_PODMAN_URL", podman_harness.url)
    for name in ("DOCKLOCK_KEY_PASSPHRASE", "DOCKLOCK_SIGNING_KEY",
                 "DOCKLOCK_SIGNING_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)

    def _run(root: Path, *args: str) -> tuple[int, str, str]:
        code = main(["-C", str(root), *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return _run


def test_read_only_commands_run_without_the_private_key(
        cli: Run, podman_harness: PodmanHarness, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "specs").mkdir(parents=True)
    (root / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\n"
        f"metadata: {{name: {CLUSTER}}}\nspec: {{specs: [specs], securityLevel: standard}}\n")
    (root / "specs" / "app.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Service\nmetadata: {name: web}\nspec:\n"
        f"  image: {podman_harness.image}\n"
        "  command: [httpd, -f, -p, '8080', -h, /www]\n  stopTimeout: 0\n")
    try:
        code, _, err = cli(root, "apply", "--auto-approve")
        assert code == 0, err
        key = root / ".docklock" / "keys" / "signing.key"
        key.rename(tmp_path / "elsewhere.key")  # the key lives on another machine
        pub = (root / "docklock.pub").read_bytes()
        ledger = (root / ".docklock" / "ledger" / "entries.jsonl").read_bytes()

        assert cli(root, "validate")[0] == 0
        code, out, err = cli(root, "plan", "--detailed-exitcode")
        assert code == 0, err
        assert "No changes" in out
        code, out, err = cli(root, "drift")
        assert code == 0, out + err
        code, out, err = cli(root, "status")
        assert code == 0, err
        assert "web" in out
        # Nothing to sign with: nothing recorded, no key made, docklock.pub untouched.
        assert not key.exists()
        assert (root / "docklock.pub").read_bytes() == pub
        assert (root / ".docklock" / "ledger" / "entries.jsonl").read_bytes() == ledger

        # An out-of-band change is still found, and named, without the key.
        podman_harness.podman("rm", "-f", f"{CLUSTER}-default-web-1")
        code, out, err = cli(root, "drift")
        assert code == 2, out + err
        assert "web" in out
        assert not key.exists()
        assert (root / "docklock.pub").read_bytes() == pub
    finally:
        podman_harness.remove_all()
