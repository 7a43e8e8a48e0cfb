"""`docklock deploy --file F --replicas N` end to end on real Podman (issue 12 item 5).

The override is shown in the plan, kept in state (not written to the spec), recorded in
the ledger, a repeated deploy is a no-op, `--reset` returns to the spec's count, only
F's resources are deployed, and bad requests fail with one line, exit 1, nothing changed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import PodmanHarness, run_cli

pytestmark = pytest.mark.podman

CLUSTER = "dep"


def _service(name: str, image: str, replicas: int, extra: str = "") -> str:
    return ("apiVersion: docklock.io/v1\nkind: Service\n"
            f"metadata: {{name: {name}}}\nspec:\n  image: {image}\n"
            '  command: [sleep, "600"]\n  stopTimeout: 0\n'
            f"  replicas: {replicas}\n{extra}")


def _workspace(root: Path, image: str) -> Path:
    (root / "specs").mkdir(parents=True)
    (root / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\n"
        f"metadata: {{name: {CLUSTER}}}\nspec: {{specs: [specs], securityLevel: standard}}\n")
    (root / "specs" / "api.yaml").write_text(
        "# the api: two replicas by default\n" + _service("api", image, 2))
    (root / "specs" / "other.yaml").write_text(_service("other", image, 1))
    (root / "specs" / "net.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Network\nmetadata: {name: backend}\nspec: {}\n")
    (root / "specs" / "fixed.yaml").write_text(_service(
        "fixed", image, 1, "  ports:\n    - {container: 8080, host: 18931}\n"))
    return root


def _cli(harness: PodmanHarness, ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli([*args, "-C", str(ws)], env=harness.cli_env(), timeout=240)


def _running(harness: PodmanHarness, name: str) -> list[str]:
    out = harness.podman("ps", "--filter", f"label=io.docklock.cluster={CLUSTER}",
                         "--format", "{{.Names}}").stdout
    return sorted(n for n in out.split() if n.startswith(f"{CLUSTER}-default-{name}-"))


def _state(ws: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ws / ".docklock" / "state.json").read_text())
    return data


def _entries(ws: Path) -> list[dict[str, Any]]:
    lines = (ws / ".docklock" / "ledger" / "entries.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _errors(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


def test_deploy_overrides_replicas_records_them_and_resets(podman: PodmanHarness,
                                                           tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws", podman.image)
    spec_before = (ws / "specs" / "api.yaml").read_text()

    first = _cli(podman, ws, "deploy", "--file", str(ws / "specs" / "api.yaml"),
                 "--replicas", "3", "--auto-approve")
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout.splitlines()
    assert out[0] == "Overrides (docklock deploy): Service/default/api replicas 2 -> 3"
    assert "Plan: 3 to add, 0 to change, 0 to destroy." in out
    # The plan itself carries the override as a warning (text, markdown and JSON).
    assert "warning: deploy override in effect: Service/default/api replicas 3 (spec: 2; " \
        "set by " in first.stdout
    assert "Deploy complete: 3 added, 0 changed, 0 destroyed." in first.stdout
    assert _running(podman, "api") == [f"{CLUSTER}-default-api-{i}" for i in (1, 2, 3)]
    assert _running(podman, "other") == []  # only the resources of the file
    assert (ws / "specs" / "api.yaml").read_text() == spec_before  # the spec is untouched
    state = _state(ws)
    (override,) = state["overrides"]
    assert (override["address"], override["field"], override["value"]) == \
        ("Service/default/api", "replicas", 3)
    assert override["by"]
    assert override["at"]
    deploys = [e for e in _entries(ws) if e["payload"].get("command") == "docklock deploy"]
    assert len(deploys) == 1
    assert deploys[0]["type"] == "plan"
    assert deploys[0]["payload"]["override_changes"] == [
        {"address": "Service/default/api", "field": "replicas", "before": 2, "after": 3,
         "spec": 2}]
    assert deploys[0]["payload"]["file"] == "specs/api.yaml"
    assert deploys[0]["serial"] == 1  # the state write that stored the override
    # The deploy entry, then the apply's journal, named as a deploy.
    entries = _entries(ws)
    at = entries.index(deploys[0])
    assert entries[at + 1]["type"] == "apply-start"
    assert entries[at + 1]["payload"]["command"] == "deploy"
    assert entries[-1]["type"] == "apply-end"
    assert sum(1 for e in entries[at:] if e["type"] == "change"
               and e["payload"]["status"] == "done") == 3
    verify = _cli(podman, ws, "ledger", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # The same deploy again: nothing to do, nothing stored or recorded.
    serial, size = state["serial"], len(_entries(ws))
    again = _cli(podman, ws, "deploy", "--file", "specs/api.yaml", "--replicas", "3",
                 "--auto-approve")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[0] == \
        "Overrides in effect: Service/default/api replicas 3 (spec: 2)"
    assert "No changes." in again.stdout
    assert _state(ws)["serial"] == serial
    assert len(_entries(ws)) == size

    # The product document's commands answer: health lists the three replicas, and is
    # "not healthy" (exit 2) because the other files were not deployed.
    health = _cli(podman, ws, "cluster", "health", "--detailed")
    assert health.returncode == 2, health.stdout + health.stderr
    assert "Cluster dep: NOT healthy" in health.stdout
    assert f"{CLUSTER}-default-api-3" in health.stdout
    assert f"{CLUSTER}-default-other-1  no     missing" in health.stdout
    every = _cli(podman, ws, "get", "services", "--all-namespaces", "--json")
    assert every.returncode == 0, every.stdout + every.stderr
    assert "Service/default/api" in every.stdout

    # --reset: back to the spec's two replicas, the override gone, recorded.
    reset = _cli(podman, ws, "deploy", "--file", "specs/api.yaml", "--reset",
                 "--auto-approve")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert reset.stdout.splitlines()[0] == ("Overrides (docklock deploy): Service/default/"
                                            "api replicas 3 -> 2 (the spec's value: "
                                            "override cleared)")
    assert "Deploy complete: 0 added, 0 changed, 1 destroyed." in reset.stdout
    assert _running(podman, "api") == [f"{CLUSTER}-default-api-{i}" for i in (1, 2)]
    assert "overrides" not in _state(ws)
    last = [e for e in _entries(ws) if e["payload"].get("command") == "docklock deploy"][-1]
    assert last["payload"]["overrides"] == []


def test_bad_deploys_fail_with_one_line_and_change_nothing(podman: PodmanHarness,
                                                           tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws", podman.image)
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text(_service("api", podman.image, 1))
    (ws / "notes.txt").write_text("not a spec\n")
    cases = {
        "outside": (["--file", str(outside), "--replicas", "3"],
                    f"{outside} is outside the workspace"),
        "not-a-spec-file": (["--file", str(ws / "notes.txt"), "--replicas", "3"],
                            "notes.txt is not one of its spec files"),
        "missing": (["--file", "specs/nope.yaml"], "specs/nope.yaml does not exist"),
        "auto-scaling": (["--file", "specs/api.yaml", "--auto-scaling"],
                         "--auto-scaling needs the reconcile agent, which DockLock does "
                         "not have yet (issue 17)"),
        "no-service": (["--file", "specs/net.yaml", "--replicas", "2"],
                       "this file defines none"),
        "fixed-port": (["--file", "specs/fixed.yaml", "--replicas", "2"],
                       "specs/fixed.yaml:1:1: Service/default/fixed publishes fixed host "
                       "port 18931"),
        "negative": (["--file", "specs/api.yaml", "--replicas", "-1"],
                     "argument --replicas: -1 is outside 0..1000"),
        "too-many": (["--file", "specs/api.yaml", "--replicas", "1001"],
                     "argument --replicas: 1001 is outside 0..1000"),
        "reset-and-replicas": (["--file", "specs/api.yaml", "--reset", "--replicas", "2"],
                               "not allowed with argument"),
    }
    for name, (args, expected) in cases.items():
        done = _cli(podman, ws, "deploy", *args, "--auto-approve")
        assert done.returncode == 1, (name, done.stdout, done.stderr)
        errors = _errors(done)
        assert len(errors) == 1, (name, done.stderr)
        assert expected in errors[0], (name, errors[0])
        assert "Traceback" not in done.stderr
    assert not (ws / ".docklock" / "state.json").exists()
    assert not (ws / ".docklock" / "ledger" / "entries.jsonl").exists()
    assert _running(podman, "api") == []


def test_engine_deploy_from_python_streams_events_and_a_refusal_changes_nothing(
        podman: PodmanHarness, tmp_path: Path) -> None:
    from docklock.apply import ApplyEvent
    from docklock.engine import Context
    from docklock.engine.deploy import DeployPlanned, DeployRequest, deploy

    ws = _workspace(tmp_path / "ws", podman.image)
    ctx = Context.find(ws, podman_url=podman.cli_env()["DOCKLOCK_PODMAN_URL"])
    request = DeployRequest(file=ws / "specs" / "api.yaml", replicas=1)
    seen: list[object] = []

    refused = deploy(ctx, request, on_event=seen.append, confirm=lambda _plan: False)
    assert refused.cancelled
    assert not refused.ok
    (planned,) = seen
    assert isinstance(planned, DeployPlanned)
    assert [c.describe() for c in planned.changes] == ["Service/default/api replicas 2 -> 1"]
    assert planned.work == 1
    assert not (ws / ".docklock" / "state.json").exists()  # nothing stored
    assert _running(podman, "api") == []

    seen.clear()
    done = deploy(ctx, request, on_event=seen.append, confirm=lambda _plan: True)
    assert done.ok
    assert done.result is not None
    assert done.result.added == 1
    assert [o.value for o in done.overrides] == [1]
    assert any(isinstance(e, ApplyEvent) for e in seen)
    assert _running(podman, "api") == [f"{CLUSTER}-default-api-1"]
