"""Write-ahead of made ids (issue 11 D19, ADR 0012): the state never records an object
id the ledger could not name.

The disk-full campaign found it: the ledger filled up while a replace's create was in
flight; Podman made the new container, its `made` entry could not be written, yet the
state recorded it, so the next apply saw nothing to do and no ledger entry ever named
that container. Here the executor runs against a fake Podman and a write-ahead hook that
refuses `object-made` events.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from docklock.apply import ApplyEvent, ApplyResult, EventType, execute, retired_name
from docklock.errors import DockLockError
from docklock.model import Resource
from docklock.objects import DesiredObject, LiveState
from docklock.plan import Action, PlanOptions, bind_desired, build_plan
from docklock.render import JOB_RESULT, render
from docklock.runtime.podman import ContainerConfig, ContainerInfo
from docklock.state import State, StateStore
from docklock.workspace import WorkspacePaths

CLUSTER = "demo"
WEB_KEY = "container:demo-default-web-1"
NET_KEY = "network:demo-default-backend"


@dataclass
class FakePodman:
    """Just what the executor calls for networks and plain service containers."""

    containers: dict[str, str] = field(default_factory=dict)  # id -> name
    networks: dict[str, str] = field(default_factory=dict)  # id -> name
    started: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def _new_id(self) -> str:
        return f"{next(self._ids):064x}"

    def create_network(self, name: str, labels: dict[str, str], internal: bool,
                       subnet: str | None, *, driver: str = "bridge") -> str:
        oid = self._new_id()
        self.networks[oid] = name
        return oid

    def create_container(self, config: ContainerConfig) -> str:
        oid = self._new_id()
        self.containers[oid] = config.name
        return oid

    def rename_container(self, old: str, new_name: str) -> None:
        self.containers[old] = new_name

    def start_container(self, cid: str) -> None:
        self.started.add(cid)

    def inspect_container(self, cid: str) -> ContainerInfo:
        status = "running" if cid in self.started else "created"
        return ContainerInfo(cid, self.containers[cid], status, cid in self.started, 0,
                             "", "", 0, "", "")

    def wait_container(self, cid: str, timeout: float | None = None) -> int:
        return 0

    def list_live(self, cluster: str, *, unlabelled: bool = False) -> LiveState:
        return LiveState({}, 1)

    def close(self) -> None:
        return None


def docs(gen: str) -> list[Resource]:
    return [Resource.from_dict({"apiVersion": "docklock.io/v1", "kind": kind,
                                "metadata": {"name": name, "namespace": "default"},
                                "spec": spec})
            for kind, name, spec in [
                ("Network", "backend", {}),
                ("Service", "web", {"image": "localhost/demo/busybox:1",
                                    "command": ["sleep", "600"], "stopTimeout": 0,
                                    "env": {"GEN": gen}, "networks": ["backend"]})]]


def run(tmp_path: Path, podman: FakePodman, state: State, objects: Sequence[DesiredObject],
        write_ahead: Callable[[ApplyEvent], None]) -> ApplyResult:
    paths = WorkspacePaths(tmp_path)
    paths.dot.mkdir(exist_ok=True)
    plan, _ = build_plan(objects, state, cluster=CLUSTER, spec_digest="d",
                         options=PlanOptions(refresh=False))
    store = StateStore(paths)
    with store.lock(command="test"):
        return execute(plan, bind_desired(plan, objects), store=store, state=state,
                       runtime=podman, paths=paths, cluster=CLUSTER,  # type: ignore[arg-type]
                       runtime_factory=lambda: podman,  # type: ignore[arg-type,return-value]
                       write_ahead=write_ahead)


def apply_once(tmp_path: Path, podman: FakePodman, state: State, gen: str,
               write_ahead: Callable[[ApplyEvent], None]) -> ApplyResult:
    return run(tmp_path, podman, state, render(docs(gen), cluster=CLUSTER).objects,
               write_ahead)


class Ledger:
    """A write-ahead hook (the journal's place) that refuses the events `refuse` picks,
    as a full disk does; it keeps the ids its `made` entries named."""

    def __init__(self, refuse: Callable[[ApplyEvent], bool] = lambda _e: False) -> None:
        self.refuse = refuse
        self.named: list[str] = []  # ids named by `made` entries
        self.events: list[ApplyEvent] = []

    def __call__(self, event: ApplyEvent) -> None:
        self.events.append(event)
        if self.refuse(event):
            raise DockLockError("writing the ledger failed: [Errno 28] No space left on "
                                "device")
        if event.type is EventType.OBJECT_MADE:
            self.named.append(event.id)


def recorded_ids(state: State) -> dict[str, str]:
    return {key: obj.id for key, (_, obj) in state.objects_by_key().items()}


def made(event: ApplyEvent) -> bool:
    return event.type is EventType.OBJECT_MADE


def test_every_recorded_id_is_named_when_the_ledger_takes_everything(
        tmp_path: Path) -> None:
    podman, ledger = FakePodman(), Ledger()
    result = apply_once(tmp_path, podman, State.empty(CLUSTER), "a", ledger)
    assert result.ok
    assert not result.halted
    ids = recorded_ids(result.state)
    assert set(ids) == {NET_KEY, WEB_KEY}
    assert set(ids.values()) <= set(ledger.named)


def test_a_created_object_the_ledger_cannot_name_stays_out_of_state(tmp_path: Path) -> None:
    # The network's id is named; the container's `made` entry fails (disk full).
    podman = FakePodman()
    ledger = Ledger(lambda e: made(e) and e.key == WEB_KEY)
    result = apply_once(tmp_path, podman, State.empty(CLUSTER), "a", ledger)
    assert result.halted.startswith("the ledger could not record")
    (cid,) = podman.containers  # Podman made it ...
    ids = recorded_ids(result.state)
    assert cid not in ids.values()  # ... but only what the ledger named is in state
    assert ids == {NET_KEY: ledger.named[0]}
    on_disk = StateStore(WorkspacePaths(tmp_path)).read(cluster=CLUSTER)
    assert recorded_ids(on_disk) == ids
    # So the next plan does not take the container as recorded: it creates the key
    # (refreshed, it adopts the live one; unrefreshed, the create finds the name taken
    # by ours with this hash and adopts it), and either way the id gets named then.
    assert [c.key for c in build_plan(render(docs("a"), cluster=CLUSTER).objects,
                                      on_disk, cluster=CLUSTER, spec_digest="a",
                                      options=PlanOptions(refresh=False))[0].changes
            if c.action is Action.CREATE] == [WEB_KEY]


def test_a_replacement_the_ledger_cannot_name_leaves_the_old_record(tmp_path: Path) -> None:
    # The campaign's case: create-before-destroy replace, the ledger full once the new
    # container exists. State keeps recording the old id (now renamed aside), so the next
    # plan replaces the unnamed container, and that change's entry names it.
    podman = FakePodman()
    first = apply_once(tmp_path, podman, State.empty(CLUSTER), "a", Ledger())
    old = recorded_ids(first.state)[WEB_KEY]
    ledger = Ledger(made)
    result = apply_once(tmp_path, podman, first.state, "b", ledger)
    assert result.halted.startswith("the ledger could not record")
    assert [e.step for e in ledger.events if made(e)] == [f"create:{WEB_KEY}"]
    (new,) = set(podman.containers) - {old}
    assert podman.containers[old] == retired_name("demo-default-web-1", old)
    assert recorded_ids(result.state)[WEB_KEY] == old
    assert new not in recorded_ids(
        StateStore(WorkspacePaths(tmp_path)).read(cluster=CLUSTER)).values()


def test_a_job_result_for_an_id_already_named_is_still_recorded(tmp_path: Path) -> None:
    # Only an id the ledger never named is kept out: once named, a later record of the
    # same object (the job's exit code) goes to state even if its repeated entry fails.
    podman = FakePodman()
    ledger = Ledger(lambda e: made(e) and e.id in ledger.named)
    objects = render([Resource.from_dict({
        "apiVersion": "docklock.io/v1", "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "default"},
        "spec": {"image": "localhost/demo/busybox:1", "command": ["true"],
                 "timeout": 5}})], cluster=CLUSTER).objects
    result = run(tmp_path, podman, State.empty(CLUSTER), objects, ledger)
    assert result.halted.startswith("the ledger could not record")
    (cid,) = podman.containers
    assert [e.id for e in ledger.events if made(e)] == [cid, cid]
    (job,) = [obj for _, obj in result.state.objects_by_key().values()]
    assert job.id == cid
    assert job.config[JOB_RESULT]["exit_code"] == 0
