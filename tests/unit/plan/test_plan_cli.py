"""`docklock plan --no-refresh` and `docklock force-unlock` end to end, in-process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from docklock.cli import main
from docklock.plan import Action, load_plan
from docklock.state import StateStore, locked
from docklock.workspace import WorkspacePaths

CLUSTER = """\
apiVersion: docklock.io/v1
kind: Cluster
metadata: {name: demo}
spec:
  specs: [specs]
  securityLevel: standard
"""

SPECS = {
    "net.yaml": "apiVersion: docklock.io/v1\nkind: Network\nmetadata: {name: backend}\n",
    "api.yaml": """\
apiVersion: docklock.io/v1
kind: Service
metadata: {name: api}
spec:
  image: localhost/demo/busybox:1
  command: [httpd, -f, -p, "8081"]
  replicas: 2
  networks: [backend]
  env:
    MODE: demo
    TOKEN: {value: very-s3cret, sensitive: true}
""",
    "web.yaml": """\
apiVersion: docklock.io/v1
kind: Service
metadata: {name: web}
spec:
  image: localhost/demo/busybox:1
  dependsOn: [{name: api}]
  networks: [backend]
  ports: [{container: 8080, host: 18080}]
""",
}


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "docklock.yaml").write_text(CLUSTER)
    specs = tmp_path / "specs"
    specs.mkdir()
    for name, text in SPECS.items():
        (specs / name).write_text(text)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_plan_text_and_exit_codes(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "-C", str(ws), "--no-refresh")
    assert code == 0
    assert '+ container "demo-default-api-1"' in out
    assert out.rstrip().endswith("Plan: 4 to add, 0 to change, 0 to destroy.")
    assert "very-s3cret" not in out
    assert "env.TOKEN = (sensitive)" in out
    assert "\x1b[" not in out  # not a TTY: no colour
    code, _, _ = run(capsys, "plan", "-C", str(ws), "--no-refresh", "--detailed-exitcode")
    assert code == 2


def test_plan_json_and_markdown(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "-C", str(ws), "--no-refresh", "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert data["cluster"] == "demo"
    assert data["summary"]["add"] == 4
    assert data["lineage"] is None
    assert data["serial"] == 0
    assert sorted(data["files"]) == ["docklock.yaml", "specs/api.yaml", "specs/net.yaml",
                                     "specs/web.yaml"]
    # docs/plan-json.md: file digests and spec_digest are bare sha256 hex.
    assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in data["files"].values())
    assert re.fullmatch(r"[0-9a-f]{64}", data["spec_digest"])
    assert data["options"] == {"destroy": False, "targets": [], "replace": [],
                               "refresh": False}
    assert "very-s3cret" not in out
    code, out, _ = run(capsys, "plan", "-C", str(ws), "--no-refresh", "--format",
                       "markdown")
    assert code == 0
    assert out.startswith("### DockLock plan for `demo`")
    assert "| 🟢 create | `container demo-default-web-1` |" in out


def test_target_and_errors(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "-C", str(ws), "--no-refresh", "--format", "json",
                       "--target", "Service/default/api")
    keys = [c["key"] for c in json.loads(out)["changes"]]
    assert keys == ["network:demo-default-backend", "container:demo-default-api-1",
                    "container:demo-default-api-2"]
    code, _, err = run(capsys, "plan", "-C", str(ws), "--no-refresh", "--target", "nope")
    assert code == 1
    assert "--target nope matches no object" in err


def test_saved_plans_are_signed_deterministic_and_bound(
        ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = WorkspacePaths(ws)
    one, two = ws / "one.plan", ws / "two.plan"
    # plan never creates a key (issue 11 B8); saving a signed plan needs one
    assert run(capsys, "keys", "init", "-C", str(ws))[0] == 0
    assert run(capsys, "plan", "-C", str(ws), "--no-refresh", "--out", str(one))[0] == 0
    assert run(capsys, "plan", "-C", str(ws), "--no-refresh", "--out", str(two))[0] == 0
    envelope = json.loads(one.read_text())
    assert envelope["payloadType"] == "application/vnd.docklock.plan+json"
    assert envelope["signatures"]
    assert "very-s3cret" not in one.read_text()
    assert oct(one.stat().st_mode & 0o777) == "0o600"
    p1, p2 = load_plan(one, paths), load_plan(two, paths)
    assert [c.to_dict() for c in p1.changes] == [c.to_dict() for c in p2.changes]
    assert (p1.lineage, p1.serial) == (None, 0)
    assert {c.action for c in p1.changes} == {Action.CREATE}
    # An altered plan does not verify.
    envelope["payload"] = envelope["payload"][:-8] + "AAAAAAA="
    bad = ws / "bad.plan"
    bad.write_text(json.dumps(envelope))
    from docklock.errors import DockLockError

    with pytest.raises(DockLockError):
        load_plan(bad, paths)


def test_plan_fails_at_once_while_another_command_holds_the_lock(
        ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = StateStore(WorkspacePaths(ws))
    with locked(store, command="docklock apply") as lock:
        code, _, err = run(capsys, "plan", "-C", str(ws), "--no-refresh")
        assert code == 1
        assert "state is locked" in err
        assert "docklock apply" in err
        assert lock.info.id in err
        code, _, err = run(capsys, "plan", "-C", str(ws), "--no-refresh",
                           "--lock-timeout", "200ms")
        assert code == 1
        assert "waited 0.2s" in err
    assert run(capsys, "plan", "-C", str(ws), "--no-refresh")[0] == 0


def test_force_unlock(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = WorkspacePaths(ws)
    stuck = StateStore(paths).lock(command="docklock apply")
    try:
        code, _, err = run(capsys, "force-unlock", "-C", str(ws))
        assert code == 1
        assert "needs the LOCK_ID" in err
        code, _, err = run(capsys, "force-unlock", "-C", str(ws), "wrong")
        assert code == 1
        assert "does not match" in err
        code, out, err = run(capsys, "force-unlock", "-C", str(ws), stuck.info.id)
        assert code == 0
        assert stuck.info.id in out
        assert "still held the lock" in err
        assert run(capsys, "plan", "-C", str(ws), "--no-refresh")[0] == 0
    finally:
        stuck.release()
    code, _, err = run(capsys, "force-unlock", "-C", str(ws), "--yes")
    assert code == 1
    assert "not locked" in err


def test_plan_refuses_a_corrupt_state(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (ws / ".docklock").mkdir()
    (ws / ".docklock" / "state.json").write_text("{oops")
    code, _, err = run(capsys, "plan", "-C", str(ws), "--no-refresh")
    assert code == 1
    assert "corrupt" in err
    assert "backup" in err
    assert (ws / ".docklock" / "state.json").read_text() == "{oops"


def test_plan_format_json_reports_spec_errors_as_json(
        ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # CI reads stdout of `plan --format json`: a bad spec must not leave it empty.
    (ws / "specs" / "bad.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Service\nmetadata:\n  name: bad\n"
        "spec:\n  image: x\n  replicas: -1\n")
    code, out, err = run(capsys, "plan", "-C", str(ws), "--no-refresh", "--format", "json")
    assert code == 1
    data = json.loads(out)
    first = data["errors"][0]
    assert (first["file"], first["line"], first["path"]) == ("specs/bad.yaml", 7,
                                                             "spec.replicas")
    assert "minimum" in err
