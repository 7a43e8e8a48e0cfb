"""The engine API without Podman: requests round-trip, outcomes render, the constants the
CLI keeps for a fast parser agree with their sources, and the use cases that need no
Podman (plan --no-refresh, validate, graph, force-unlock, policy) run from Python."""

from __future__ import annotations

from pathlib import Path

import pytest

from docklock.engine import Context
from docklock.engine.apply import ApplyOutcome, ApplyRequest, DestroyRequest
from docklock.engine.plan import PlanRequest
from docklock.errors import LockError, ValidationError, WorkspaceError
from docklock.plan import PlanError

CLUSTER = """\
apiVersion: docklock.io/v1
kind: Cluster
metadata: {name: unit}
spec:
  specs: [specs]
  securityLevel: standard
"""

SPECS = """\
apiVersion: docklock.io/v1
kind: Network
metadata: {name: backend}
---
apiVersion: docklock.io/v1
kind: Service
metadata: {name: api}
spec:
  image: localhost/demo/busybox:1
  command: [httpd, -f, -p, "8081"]
  replicas: 2
  networks: [backend]
"""


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    (tmp_path / "docklock.yaml").write_text(CLUSTER)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "app.yaml").write_text(SPECS)
    return Context.find(tmp_path)


def test_requests_round_trip() -> None:
    plan = PlanRequest(destroy=True, targets=("Service/default/api",), replace=("x",),
                       refresh=False, lock_timeout=2.5, out=Path("/tmp/p.plan"))
    assert PlanRequest.from_dict(plan.to_dict()) == plan
    apply = ApplyRequest(planfile=Path("p.plan"), parallelism=3, lock_timeout=1.0,
                         health_timeout=9.0)
    assert ApplyRequest.from_dict(apply.to_dict()) == apply
    destroy = DestroyRequest(targets=("Service/default/api",), parallelism=2)
    assert DestroyRequest.from_dict(destroy.to_dict()) == destroy
    assert PlanRequest.from_dict({}) == PlanRequest()


def test_the_parser_constants_agree_with_their_sources() -> None:
    from docklock.cli import cmd_keys, cmd_plan
    from docklock.engine import keys, podman
    from docklock.engine import plan as engine_plan
    from docklock.ledger.keys import ALGORITHMS, DEFAULT_ALGORITHM, PASSPHRASE_ENV
    from docklock.plan import RENDERERS
    from docklock.runtime.podman import ENV_URL

    assert tuple(sorted(RENDERERS)) == engine_plan.FORMATS == cmd_plan.FORMATS
    assert tuple(sorted(ALGORITHMS)) == keys.ALGORITHM_NAMES == cmd_keys.ALGORITHM_NAMES
    assert DEFAULT_ALGORITHM == keys.DEFAULT_ALGORITHM == cmd_keys.DEFAULT_ALGORITHM
    assert PASSPHRASE_ENV == keys.PASSPHRASE_ENV == cmd_keys.PASSPHRASE_ENV
    assert ENV_URL == podman.ENV_URL


def test_plan_without_refresh_from_python(ctx: Context) -> None:
    from docklock.engine.plan import make_plan, plan, render_plan

    result = plan(ctx, PlanRequest(refresh=False))
    assert result.plan.cluster == "unit"
    assert result.plan.summary.add == 3  # network + 2 replicas
    assert result.no_key  # no private key: nothing recorded, and none created
    assert not (ctx.paths.root / ".docklock" / "keys" / "signing.key").exists()
    assert render_plan(result.plan).endswith("Plan: 3 to add, 0 to change, 0 to destroy.")
    assert render_plan(result.plan, "json").startswith("{")
    again = make_plan(ctx, PlanRequest(refresh=False, targets=("Network/default/backend",)))
    assert [c.address for c in again.changes if c.is_work] == ["Network/default/backend"]


def test_plan_of_a_broken_spec_raises_with_its_location(ctx: Context) -> None:
    from docklock.engine.plan import plan

    spec = ctx.paths.root / "specs" / "app.yaml"
    spec.write_text(SPECS.replace("replicas: 2", "replicas: two"))
    with pytest.raises(ValidationError) as info:
        plan(ctx, PlanRequest(refresh=False))
    assert info.value.diagnostics[0].location is not None
    assert "app.yaml:" in info.value.explain()
    assert not (ctx.paths.root / ".docklock" / "state").exists()


def test_validate_collects_every_problem(ctx: Context) -> None:
    from docklock.engine.validate import validate

    good = validate(ctx)
    assert good.valid
    assert good.resources == 2
    spec = ctx.paths.root / "specs" / "app.yaml"
    spec.write_text(SPECS.replace("replicas: 2", "replicas: two")
                    .replace("networks: [backend]", "networks: [nowhere]"))
    bad = validate(ctx)
    assert not bad.valid
    assert bad.workspace is None
    assert len(bad.errors) >= 1
    assert all(d.location is not None for d in bad.errors)
    assert bad.to_dict()["valid"] is False


def test_graph_and_policy_from_python(ctx: Context) -> None:
    from docklock.engine.graph import graph_of
    from docklock.engine.policy import check

    body = graph_of(ctx).to_json()
    assert {n["address"] for n in body["nodes"]} == {"Network/default/backend",
                                                    "Service/default/api"}
    assert [(e["from"], e["to"]) for e in body["edges"]] == [
        ("Network/default/backend", "Service/default/api")]
    report = check(ctx)
    assert report.digest


def test_saved_plan_with_targets_is_refused_before_the_lock(ctx: Context) -> None:
    from docklock.engine.apply import apply

    with pytest.raises(PlanError) as info:
        apply(ctx, ApplyRequest(planfile=Path("x.plan"), targets=("Service/default/api",)))
    assert info.value.hint
    assert not (ctx.paths.root / ".docklock" / "state.lock").exists()
    assert not (ctx.paths.root / ".docklock" / "state").exists()


def test_force_unlock_without_a_lock_says_so(ctx: Context) -> None:
    from docklock.engine.lock import Unlocked, force_unlock

    with pytest.raises(LockError, match="not locked"):
        force_unlock(ctx, None)
    assert Unlocked(None, held=False).description == "an unnamed lock"
    assert Unlocked(None, held=True).to_dict() == {"lock": None, "held": True}


def test_context_outside_a_workspace(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError):
        Context.find(tmp_path / "nowhere")


def test_outcome_bodies() -> None:
    class _Plan:  # only what ApplyOutcome reads when nothing ran
        changes = ()

    noop = ApplyOutcome(_Plan(), None, serial=4, lineage="L")  # type: ignore[arg-type]
    assert noop.ok
    assert noop.to_dict() == {"ok": True, "added": 0, "changed": 0, "destroyed": 0,
                              "adopted": 0, "renamed_aside": 0, "halted": "",
                              "outcomes": [], "serial": 4, "lineage": "L"}
    cancelled = ApplyOutcome(_Plan(), None, cancelled=True)  # type: ignore[arg-type]
    assert not cancelled.ok
    assert cancelled.to_dict()["cancelled"] is True
