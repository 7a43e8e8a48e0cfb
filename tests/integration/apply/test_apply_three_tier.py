"""db <- api <- web with `healthy` conditions, on the real Podman harness, through the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from applyhelp import (
    apply_ok,
    cli,
    cname,
    ids,
    make_workspace,
    recorded,
    state,
    statuses,
    three_tier,
    write_specs,
)
from conftest import PodmanHarness

from docklock.apply import can_rename
from docklock.runtime.podman import PodmanRuntime

pytestmark = pytest.mark.podman
C = "tier"


def _created(output: str) -> list[str]:
    return re.findall(r"^\+ container (\S+) ", output, re.MULTILINE)


def _replaced(output: str) -> list[str]:
    return re.findall(r"^-/\+ container (\S+) ", output, re.MULTILINE)


def test_three_tier_from_empty_to_running_then_scale_then_roll(
        podman: PodmanHarness, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", C, three_tier(podman.image))

    # 1. empty -> running, in dependency order, every container healthy
    first = apply_ok(podman, ws)
    assert _created(first.stdout) == [cname(C, "db"), cname(C, "api"), cname(C, "web")]
    assert "Apply complete: 3 added, 0 changed, 0 destroyed." in first.stdout
    assert statuses(podman, C) == {cname(C, n): "running" for n in ("db", "api", "web")}
    health = podman.podman("ps", "--filter", f"label=io.docklock.cluster={C}",
                           "--format", "{{.Names}} {{.Status}}").stdout
    assert health.count("(healthy)") == 3, health
    # State was written after every change, not once at the end (plus the lineage claim
    # before the first create, ADR 0010: serial 1).
    assert state(ws)["serial"] == 4
    before = ids(podman, C)
    assert recorded(ws) == {f"container:{n}": i for n, i in before.items()}

    # 2. nothing to do
    again = cli(podman, ws, "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes." in again.stdout

    status = cli(podman, ws, "status", "--json")
    assert status.returncode == 0, status.stderr
    rows = {r["name"]: r for r in json.loads(status.stdout)["resources"]}
    assert {n: (r["ready"], r["desired"], r["health"]) for n, r in rows.items()} == {
        "db": (1, 1, "healthy"), "api": (1, 1, "healthy"), "web": (1, 1, "healthy")}
    assert rows["web"]["cage"] == "standard"

    # 3. web 1 -> 3 replicas: exactly two containers added, nothing else touched
    write_specs(ws, three_tier(podman.image, web_replicas=3))
    scaled = apply_ok(podman, ws)
    assert sorted(_created(scaled.stdout)) == [cname(C, "web", 2), cname(C, "web", 3)]
    assert "Apply complete: 2 added, 0 changed, 0 destroyed." in scaled.stdout
    after = ids(podman, C)
    assert set(after) == {*before, cname(C, "web", 2), cname(C, "web", 3)}
    assert {n: after[n] for n in before} == before
    # Both creates are recorded; two that finish together may share one state write.
    assert state(ws)["serial"] in (5, 6)
    serial = state(ws)["serial"]

    # 4. an env value of web changes: its replicas roll, one at a time, in order
    write_specs(ws, three_tier(podman.image, web_replicas=3, web_env={"COLOR": "blue"}))
    rolled = apply_ok(podman, ws)
    assert _replaced(rolled.stdout) == [cname(C, "web", i) for i in (1, 2, 3)]
    assert "Apply complete: 3 added, 0 changed, 3 destroyed." in rolled.stdout
    final = ids(podman, C)
    for i in (1, 2, 3):
        assert final[cname(C, "web", i)] != after[cname(C, "web", i)]
    assert final[cname(C, "db")] == before[cname(C, "db")]
    assert final[cname(C, "api")] == before[cname(C, "api")]
    # One write per finished step: create-before-destroy (the runtime can rename) writes
    # once per replica; destroy-first drops the record, then writes the new one.
    assert can_rename(PodmanRuntime)
    assert state(ws)["serial"] - serial == 3
    started = {}
    for i in (1, 2, 3):
        name = cname(C, "web", i)
        started[i] = podman.podman("inspect", name, "--format",
                                   "{{.State.StartedAt}}").stdout.strip()
    # Replica n+1 was only started after replica n (rolling, not all at once).
    assert started[1] < started[2] < started[3]
    env = podman.podman("inspect", cname(C, "web", 2), "--format",
                        "{{range .Config.Env}}{{println .}}{{end}}").stdout
    assert "COLOR=blue" in env
    settled = cli(podman, ws, "plan", "--detailed-exitcode")
    assert settled.returncode == 0, settled.stdout


def test_saved_plan_applies_once_and_is_then_stale(podman: PodmanHarness,
                                                   tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", "saved", three_tier(podman.image)
                        .split("---\n")[0])
    assert cli(podman, ws, "keys", "init").returncode == 0  # plan never creates a key
    planned = cli(podman, ws, "plan", "--out", str(ws / "p.plan"))
    assert planned.returncode == 0, planned.stderr
    applied = cli(podman, ws, "apply", str(ws / "p.plan"))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete: 1 added, 0 changed, 0 destroyed." in applied.stdout
    assert statuses(podman, "saved") == {cname("saved", "db"): "running"}
    again = cli(podman, ws, "apply", str(ws / "p.plan"))
    assert again.returncode == 1
    assert "stale plan" in again.stderr
    assert len(ids(podman, "saved")) == 1


def test_apply_refuses_without_a_terminal_or_auto_approve(podman: PodmanHarness,
                                                          tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", "notty", three_tier(podman.image).split("---\n")[0])
    refused = cli(podman, ws, "apply")
    assert refused.returncode == 1
    assert "stdin is not a terminal" in refused.stderr
    assert "--auto-approve" in refused.stderr
    assert ids(podman, "notty") == {}


def test_lost_state_is_neither_adopted_nor_duplicated(podman: PodmanHarness,
                                                     tmp_path: Path) -> None:
    # Issue 11 B7 (docs/adr/0010): the state's lineage is the workspace's identity. With
    # state.json gone the live objects carry a lineage this workspace no longer has, so
    # apply stops at plan time naming them (and this folder) instead of adopting them;
    # restoring the state (here its backup) recovers them, nothing duplicated.
    ws = make_workspace(tmp_path / "ws", "adopt", three_tier(podman.image))
    apply_ok(podman, ws)
    before = ids(podman, "adopt")
    dot = ws / ".docklock"
    (dot / "state.json").rename(dot / "lost.json")
    refused = cli(podman, ws, "apply", "--auto-approve")
    assert refused.returncode == 1, refused.stdout
    assert "state file was lost or replaced" in refused.stderr
    assert ids(podman, "adopt") == before
    (dot / "state.json.backup").rename(dot / "state.json")  # one change behind
    again = apply_ok(podman, ws)
    assert "found in Podman were recorded in state." in again.stdout
    assert ids(podman, "adopt") == before
    assert recorded(ws) == {f"container:{n}": i for n, i in before.items()}
    assert cli(podman, ws, "plan", "--detailed-exitcode").returncode == 0


def test_destroy_removes_everything_in_reverse_order(podman: PodmanHarness,
                                                     tmp_path: Path) -> None:
    extra_docs = (
        "---\napiVersion: docklock.io/v1\nkind: Network\nmetadata: {name: backend}\n"
        "---\napiVersion: docklock.io/v1\nkind: Volume\nmetadata: {name: data}\n")
    specs = three_tier(podman.image).replace(
        "  healthcheck:", "  networks: [backend]\n  volumes: [{name: data, path: /data}]\n"
        "  healthcheck:", 1) + extra_docs
    ws = make_workspace(tmp_path / "ws", "gone", specs)
    apply_ok(podman, ws)
    nets = podman.podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert "gone-default-backend" in nets
    out = cli(podman, ws, "destroy", "--auto-approve")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Destroy complete: 0 added, 0 changed, 5 destroyed." in out.stdout
    order = re.findall(r"^- (?:container|network|volume) (\S+) ", out.stdout, re.MULTILINE)
    assert order.index(cname("gone", "web")) < order.index(cname("gone", "api")) \
        < order.index(cname("gone", "db")) < order.index("gone-default-backend")
    assert order.index(cname("gone", "db")) < order.index("gone-default-data")
    assert ids(podman, "gone") == {}
    assert "gone-default-backend" not in podman.podman(
        "network", "ls", "--format", "{{.Name}}").stdout.split()
    assert "gone-default-data" not in podman.podman(
        "volume", "ls", "--format", "{{.Name}}").stdout.split()
    assert state(ws)["resources"] == {}


def test_create_finding_its_own_container_adopts_it(podman: PodmanHarness,
                                                    tmp_path: Path) -> None:
    # A plan made before the containers existed, applied after they were created but never
    # recorded (what a crash between create and the state write leaves behind).
    ws = make_workspace(tmp_path / "ws", "race2", three_tier(podman.image))
    assert cli(podman, ws, "keys", "init").returncode == 0  # plan never creates a key
    # Apply claims the state's lineage (serial 1, no objects) before its first create
    # (docs/adr/0010): a crash after the creates leaves exactly this state behind.
    claimed = json.dumps({"format": 1, "lineage": "race2-lineage", "serial": 1,
                          "cluster": "race2", "resources": {}})
    (ws / ".docklock" / "state.json").write_text(claimed)
    planned = cli(podman, ws, "plan", "--out", str(ws / "early.plan"))
    assert planned.returncode == 0, planned.stderr
    apply_ok(podman, ws)
    before = ids(podman, "race2")
    (ws / ".docklock" / "state.json.backup").unlink()
    (ws / ".docklock" / "state.json").write_text(claimed)
    late = cli(podman, ws, "apply", str(ws / "early.plan"))
    assert late.returncode == 0, late.stdout + late.stderr
    assert "Apply complete: 3 added, 0 changed, 0 destroyed." in late.stdout
    assert ids(podman, "race2") == before  # adopted, not duplicated or re-created
    assert recorded(ws) == {f"container:{n}": i for n, i in before.items()}
    assert cli(podman, ws, "plan", "--detailed-exitcode").returncode == 0


def test_apply_target_brings_up_only_the_target_and_its_dependencies(
        podman: PodmanHarness, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", "tgt", three_tier(podman.image))
    first = apply_ok(podman, ws, "--target", "Service/default/api")
    assert _created(first.stdout) == [cname("tgt", "db"), cname("tgt", "api")]
    assert set(statuses(podman, "tgt")) == {cname("tgt", "db"), cname("tgt", "api")}
    # The rest follows on a plain apply; the targeted ones are left alone.
    kept = ids(podman, "tgt")
    rest = apply_ok(podman, ws)
    assert _created(rest.stdout) == [cname("tgt", "web")]
    now = ids(podman, "tgt")
    assert all(now[n] == i for n, i in kept.items())
    refused = cli(podman, ws, "apply", "--auto-approve", "--target", "web",
                  str(tmp_path / "x.plan"))
    assert refused.returncode == 1
    assert "do not go with a saved plan" in refused.stderr
