"""The engine used from Python, without the CLI, against real Podman (docs/api.md).

One workspace goes through the whole loop in order: a plan (nothing written without a
key), an apply cancelled by `confirm` (nothing made), an apply that streams events and
journals to the ledger, a no-op apply, drift before and after an out-of-band removal, a
Job run and verified, the ledger verified, and a destroy. Error paths: a spec error and
a stale saved plan raise DockLockErrors with a location or a hint, changing nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PodmanHarness

from docklock.apply import ApplyEvent, EventType
from docklock.engine import Context
from docklock.engine import apply as engine_apply
from docklock.engine import drift as engine_drift
from docklock.engine import keys as engine_keys
from docklock.engine import ledger as engine_ledger
from docklock.engine import plan as engine_plan
from docklock.engine import run as engine_run
from docklock.engine.apply import ApplyRequest, PlanReady
from docklock.engine.plan import PlanRequest
from docklock.errors import StalePlanError, ValidationError

pytestmark = pytest.mark.podman

CLUSTER = "engapi"

SPECS = """\
apiVersion: docklock.io/v1
kind: Service
metadata: {{name: web}}
spec:
  image: {image}
  command: [httpd, -f, -p, "8080", -h, /www]
  stopTimeout: 0
  replicas: {replicas}
  healthcheck: {{command: [wget, -q, -O-, "http://127.0.0.1:8080/"], interval: 1s,
                retries: 3, timeout: 2s}}
---
apiVersion: docklock.io/v1
kind: Job
metadata: {{name: hello}}
spec:
  image: {image}
  command: [sh, -c, "echo hello from the job"]
  cage: deterministic
  seed: 3
  timeout: 60
"""


def _write(root: Path, image: str, replicas: int = 1) -> None:
    (root / "specs").mkdir(parents=True, exist_ok=True)
    (root / "specs" / "app.yaml").write_text(SPECS.format(image=image, replicas=replicas))


@pytest.fixture(scope="module")
def ws(podman_harness: PodmanHarness, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[tuple[PodmanHarness, Context]]:
    if podman_harness.process is None or podman_harness.process.poll() is not None:
        podman_harness.start_service()
    root = tmp_path_factory.mktemp("engine-api")
    (root / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\n"
        f"metadata: {{name: {CLUSTER}}}\nspec: {{specs: [specs], securityLevel: standard}}\n")
    _write(root, podman_harness.image)
    yield podman_harness, Context.find(root, podman_url=podman_harness.url)
    podman_harness.remove_all()


def _containers(harness: PodmanHarness) -> list[str]:
    return harness.containers(f"io.docklock.cluster={CLUSTER}")


def test_the_loop_from_python(ws: tuple[PodmanHarness, Context]) -> None:
    harness, ctx = ws

    # plan: a Plan, and nothing recorded in a workspace without a key (plan makes none).
    planned = engine_plan.plan(ctx)
    assert planned.plan.cluster == CLUSTER
    assert planned.plan.has_changes
    assert {c.address for c in planned.plan.changes if c.is_work} >= {"Service/default/web"}
    assert planned.no_key
    assert planned.ledger_problem is not None
    assert not (ctx.paths.root / ".docklock" / "keys" / "signing.key").exists()

    # apply, refused by confirm: nothing is made, the outcome says cancelled.
    asked: list[Any] = []

    def refuse(plan: Any) -> bool:
        asked.append(plan)
        return False

    cancelled = engine_apply.apply(ctx, confirm=refuse)
    assert cancelled.cancelled
    assert cancelled.result is None
    assert not cancelled.ok
    assert len(asked) == 1
    assert asked[0].has_changes
    assert _containers(harness) == []

    # apply: PlanReady first, then the executor's events; the ledger journals it.
    events: list[Any] = []
    outcome = engine_apply.apply(ctx, ApplyRequest(parallelism=4), on_event=events.append,
                                 confirm=lambda plan: True)
    assert outcome.ok, outcome.to_dict()
    assert outcome.result is not None
    assert outcome.result.added >= 1
    assert isinstance(events[0], PlanReady)
    assert events[0].work >= 1
    kinds = [e.type for e in events[1:] if isinstance(e, ApplyEvent)]
    assert kinds[0] is EventType.APPLY_STARTED
    assert kinds[-1] is EventType.APPLY_FINISHED
    assert EventType.CHANGE_DONE in kinds
    assert all(isinstance(e, ApplyEvent) for e in events[1:])
    assert f"{CLUSTER}-default-web-1" in _containers(harness)
    shown = engine_ledger.show(ctx)
    types = [e.type.value for e in shown.entries]
    assert "apply-start" in types
    assert "apply-end" in types
    assert shown.checkpoint is not None

    # a second apply has nothing to do: no confirmation asked, no result.
    again = engine_apply.apply(ctx, confirm=lambda plan: pytest.fail("asked for nothing"))
    assert again.result is None
    assert not again.cancelled
    assert again.ok
    assert again.to_dict()["added"] == 0

    # drift: clean, then a container removed behind DockLock's back is drift.
    clean = engine_drift.drift(ctx)
    assert not clean.has_drift
    assert clean.ledger_problem is None
    harness.podman("rm", "-f", "-t", "0", f"{CLUSTER}-default-web-1")
    drifted = engine_drift.drift(ctx)
    assert drifted.has_drift
    assert any("web" in i.key for i in drifted.report.items)

    # run and verify a Job: a witness, a ledger entry, identical on the re-run.
    ran = engine_run.run(ctx, "hello")
    assert ran.ok
    assert b"hello from the job" in ran.stdout
    assert ran.witness_file.exists()
    assert ran.ledger_seq > 0
    checked = engine_run.verify(ctx, "hello")
    assert checked.identical
    assert checked.ledger_seq > ran.ledger_seq

    # the ledger verifies end to end.
    verdict = engine_ledger.verify(ctx)
    assert verdict.ok, verdict.to_dict()

    # destroy: everything recorded is removed; the ledger records it too.
    gone = engine_apply.destroy(ctx)
    assert gone.ok
    assert gone.result is not None
    assert _containers(harness) == []
    assert "destroy" in {e.payload.get("command") for e in engine_ledger.show(ctx).entries
                         if e.type.value == "apply-start"}


def test_errors_are_raised_with_location_and_change_nothing(
        ws: tuple[PodmanHarness, Context]) -> None:
    harness, ctx = ws
    spec = ctx.paths.root / "specs" / "app.yaml"
    good = spec.read_text()
    try:
        spec.write_text(good.replace("replicas: 1", "replicas: many"))
        with pytest.raises(ValidationError) as info:
            engine_plan.plan(ctx)
        assert "specs/app.yaml:" in info.value.explain()
        with pytest.raises(ValidationError):
            engine_apply.apply(ctx)
        assert _containers(harness) == []
    finally:
        spec.write_text(good)

    # a saved plan goes stale once the specs change: refused before any change.
    if not (ctx.paths.root / ".docklock" / "keys" / "signing.key").exists():
        engine_keys.init(ctx)  # a saved plan is signed
    saved = ctx.paths.root / "saved.plan"
    result = engine_plan.plan(ctx, PlanRequest(out=saved))
    assert result.saved_to == saved
    assert saved.exists()
    _write(ctx.paths.root, harness.image, replicas=2)
    try:
        with pytest.raises(StalePlanError) as stale:
            engine_apply.apply(ctx, ApplyRequest(planfile=saved))
        assert stale.value.hint
        assert _containers(harness) == []
    finally:
        spec.write_text(good)
