"""The executor: a Plan becomes Podman operations, in dependency order, in parallel.

Owns: the schedule (which step waits for which: `build_schedule`, pure), running it
(`execute`), progress events as data (`ApplyEvent`, rendered by `format_event`), the
result (`ApplyResult`) and the ledger journal of an apply (`ApplyJournal`). It never
prints and never exits: the CLI renders the events and decides the exit code.

Invariants:
- A step starts only when what it waits for is reached. A container waits for its
  image, networks and volumes to exist and for the containers of the services it
  `dependsOn` to meet the edge's condition: `started`, `healthy` (its healthcheck, which
  apply drives itself: Podman without systemd never runs it) or `completed` (exit 0).
  Deletes run in reverse: an object is removed only after everything recorded as
  depending on it is gone. A replace is a delete then a create of the same name; the
  replicas of one service are replaced one at a time, the next only once the previous
  new one is settled (healthy when it has a healthcheck).
- Every plan the plan stage accepts has a schedule: orderings that are only preferred
  (dependents removed first, rolling, old kept until its image is rebuilt or its
  service's new container settled) yield to the required ones instead of closing a
  cycle (ADR 0012).
- A service's working container is never removed before a new one of that service
  settled: a retired `-old-` container or a scaled-down replica waits for it, and a
  replacement without a healthcheck must stay up `min_ready` first (`Settle.STEADY`).
- A Job's run-once container (render marks it) always settles `completed`: apply
  creates it, starts it and waits for it to exit within the Job's `timeout`; exit 0
  finishes the step (and meets `completed` for its dependents), anything else fails it
  naming the job, its exit code and its last output. The exit code is recorded in
  state either way; a job that outlives its timeout is stopped. `started` on a job is
  met once it started.
- At most `parallelism` Podman operations run at once; health waits do not take a slot.
- State is written after every completed step (create+start, start, delete, adoption),
  by the main thread only, so a crash loses at most the steps in flight, and those are
  found again on the next run: the plan adopts a labelled container missing from state,
  and a create that finds its name taken by our own container with the desired config
  hash adopts it instead of failing.
- After the first failure no new change starts; changes already begun finish (a replace
  whose old container is gone still creates the new one), and the rest are reported as
  not attempted. Nothing is rolled back: re-running apply continues from reality.
- Write-ahead (issue 11 D19): with a `write_ahead` hook (the CLI's ledger journal), the
  intent of every step that calls Podman is recorded before the call, from the main
  thread. If it cannot be recorded, or the state cannot be saved, the apply halts: not
  one more step starts (not even the rest of a change already begun), the steps in
  flight finish and are recorded, and the result says why it stopped. The ledger names
  each id Podman made before the state records it; an id it could not name stays out
  of the state too (the next plan adopts or replaces that object, naming its id).
- The result counts what happened in Podman (issue 11 D27): a change that failed or was
  left part-way still counts the objects it created, started or removed, and reports a
  container it renamed aside (`ChangeOutcome.effects`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import itertools
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, Protocol

from docklock._toposort import stable_toposort
from docklock.backend import StateBackend
from docklock.cage import write_cage_files
from docklock.cage.jobs import make_output_folder
from docklock.errors import (
    ApplyError,
    DockLockError,
    HealthTimeoutError,
    PodmanError,
)
from docklock.model import Address, Condition, Resource
from docklock.objects import (
    LABEL_ADDRESS,
    LABEL_CONFIG_HASH,
    ContainerConfig,
    DesiredObject,
    ObjectKind,
    clip,
    describe_owner,
    is_managed,
    is_owned,
    looks_like_id,
    short_id,
)
from docklock.plan import Action, Change, Plan, Reason, stamp_owner
from docklock.render import JOB_RESULT, is_job, job_outputs_folder, job_settings
from docklock.runtime.hostports import listeners
from docklock.runtime.podman import (
    PodmanNotFoundError,
    PodmanRuntime,
    PodmanTimeoutError,
    unix_socket_path,
)
from docklock.state import RecordedObject, State, utc_now
from docklock.units import duration_ns
from docklock.workspace import WorkspacePaths

DEFAULT_PARALLELISM = 8
WAIT_THREADS = 32  # health/completion waits: mostly asleep, so not bounded by parallelism
PROGRESS_EVERY = 10.0  # seconds between "still waiting" events for one change
JOB_WAIT_SLICE = 5.0  # a job is waited for in slices, so Ctrl-C is noticed between them
_LOG_TAIL_LINES = 3
# A job container in these states has not been started yet (apply starts it).
_NOT_STARTED = frozenset({"created", "configured", "initialized"})


class ContainerFailedError(ApplyError):
    """A container exited (or could not start) when it had to keep running."""


class JobFailedError(ContainerFailedError):
    """A job's run-once container exited non-zero, or did not finish within its timeout."""


# ====================================================================== the schedule


class Phase(StrEnum):
    """One step of a change. A replace has two: destroy, then create."""

    DESTROY = "destroy"  # remove the existing object (a delete, or the first half of a replace)
    CREATE = "create"  # build / create / start (create, update, second half of a replace)
    RECORD = "record"  # no Podman call: record a live object found with our labels (adopt)


class Milestone(IntEnum):
    """How far a step got; a waiter names the milestone it needs."""

    STARTED = 1  # the object exists (containers: created and started)
    DONE = 2  # the step is settled (containers: healthy / exited 0 / running, as required)


class Settle(StrEnum):
    """What a started container must do before its step is done."""

    NONE = "none"  # not a container step
    RUNNING = "running"  # must not have exited with an error right after start
    # RUNNING, and still so `ApplyOptions.min_ready` seconds later: a container whose
    # old one (or a retired one of its service) is removed once it settled must prove
    # it stays up first, or a command that dies after a moment takes the service down.
    STEADY = "steady"
    HEALTHY = "healthy"  # its healthcheck must pass (apply runs it)
    COMPLETED = "completed"  # must exit 0 (a dependent waits for `completed`)


@dataclass(frozen=True)
class Wait:
    """`node` must reach `milestone` first; `why` says what the edge stands for."""

    node: str
    milestone: Milestone
    why: str


@dataclass(frozen=True)
class Step:
    """One schedulable step (a node of the schedule); `id` is `<phase>:<object key>`."""

    id: str
    phase: Phase
    key: str
    waits: tuple[Wait, ...] = ()
    settle: Settle = Settle.NONE
    # Create-before-destroy replace: the CREATE step renames the old container out of
    # the way first, and this DESTROY step (after the new one settled) removes it.
    old_after_new: bool = False


def step_id(phase: Phase, key: str) -> str:
    return f"{phase.value}:{key}"


@dataclass(frozen=True)
class Schedule:
    """The steps of a plan in a deterministic order (the plan's), with their waits."""

    steps: tuple[Step, ...]
    changes: Mapping[str, Change]

    def by_id(self) -> dict[str, Step]:
        return {s.id: s for s in self.steps}

    def steps_of(self, key: str) -> list[Step]:
        return [s for s in self.steps if s.key == key]

    def waves(self) -> list[list[str]]:
        """Topological levels: wave n holds the steps whose waits all lie in waves < n."""
        level: dict[str, int] = {}
        by_id = self.by_id()
        for sid in _topological_ids(self.steps):
            waits = by_id[sid].waits
            level[sid] = 1 + max((level[w.node] for w in waits), default=-1)
        out: list[list[str]] = []
        for s in self.steps:
            n = level[s.id]
            while len(out) <= n:
                out.append([])
            out[n].append(s.id)
        return out


Conditions = Mapping[tuple[str, str], Condition]
_STRENGTH = {Condition.STARTED: 0, Condition.HEALTHY: 1, Condition.COMPLETED: 2}


def dependency_conditions(resources: Iterable[Resource]) -> dict[tuple[str, str], Condition]:
    """(dependent address, dependency address) -> condition, from every `dependsOn`."""
    out: dict[tuple[str, str], Condition] = {}
    for res in resources:
        deps = getattr(res.spec, "dependsOn", ())
        for dep in deps:
            edge = (str(res.address), str(Address(dep.kind, res.namespace, dep.name)))
            old = out.get(edge)
            if old is None or _STRENGTH[dep.condition] > _STRENGTH[old]:
                out[edge] = dep.condition
    return out


def settle_modes(desired: Iterable[DesiredObject], conditions: Conditions) -> dict[str, Settle]:
    """How each desired container settles: completed if it is a job's (or a dependent
    waits for its exit), else healthy if it has a healthcheck, else running."""
    completed = {dep for (_, dep), cond in conditions.items() if cond is Condition.COMPLETED}
    out: dict[str, Settle] = {}
    for obj in desired:
        if obj.kind is not ObjectKind.CONTAINER:
            continue
        if is_job(obj.config) or str(obj.address) in completed:
            out[obj.key] = Settle.COMPLETED
        elif obj.config.get("healthcheck"):
            out[obj.key] = Settle.HEALTHY
        else:
            out[obj.key] = Settle.RUNNING
    return out


def build_schedule(changes: Sequence[Change], conditions: Conditions,
                   settles: Mapping[str, Settle], *,
                   create_before_destroy: bool = False) -> Schedule:
    """The steps and waits for `changes` (pure; see the module invariants).

    `create_before_destroy`: the runtime can rename a container, so a replace the plan
    marks create-before-destroy starts the new container (under the same name, the old
    one renamed aside) and removes the old one only once the new one is settled.

    Waits come in two strengths. Required ones are what Podman or correctness demands:
    a create after what it needs, a destroy-first replace's create after its destroy, a
    create-before-destroy's removal after the new one settled, a network or volume
    removed only once no container of the plan still holds it. Preferred ones are
    orderings that are merely nicer: dependents stopped before their dependencies, the
    old container kept until its new image is built, replicas one at a time. A
    preferred wait is added only when it closes no cycle, so every plan the plan stage
    accepts has a schedule (issue 11 C10: a replaced Job and its create-before-destroy
    dependent used to wait for each other).
    """
    by_key = {c.key: c for c in changes}
    removed = {c.key for c in changes if c.action is Action.DELETE or (
        c.action is Action.REPLACE and c.kind is not ObjectKind.IMAGE
        and c.existing_id is not None)}
    phases: dict[str, list[Phase]] = {}
    cbd: set[str] = set()
    for c in changes:
        ps: list[Phase] = []
        if c.action is Action.NOOP:
            if Reason.ADOPTED in c.reasons and c.live is not None and c.after is not None:
                ps.append(Phase.RECORD)
        elif (create_before_destroy and c.action is Action.REPLACE and c.create_before_destroy
              and c.kind is ObjectKind.CONTAINER and c.existing_id is not None
              and not _holds_removed_binding(c, by_key, removed)):
            ps = [Phase.CREATE, Phase.DESTROY]
            cbd.add(c.key)
        else:
            if c.key in removed:
                # An image replace is a rebuild: the tag moves, nothing is removed first.
                ps.append(Phase.DESTROY)
            if c.action in (Action.CREATE, Action.UPDATE, Action.REPLACE):
                ps.append(Phase.CREATE)
        if ps:
            phases[c.key] = ps

    waits: dict[str, list[Wait]] = {}
    order: list[tuple[str, Phase, str]] = []
    for c in changes:
        for ph in phases.get(c.key, ()):
            sid = step_id(ph, c.key)
            waits[sid] = []
            order.append((sid, ph, c.key))

    def has(phase: Phase, key: str) -> bool:
        return phase in phases.get(key, ())

    preferred: list[tuple[str, Wait]] = []  # (waiting step, wait), in plan order
    for c in changes:
        key = c.key
        if key in cbd:
            waits[step_id(Phase.DESTROY, key)].append(
                Wait(step_id(Phase.CREATE, key), Milestone.DONE, _NEW_SETTLED))
        if has(Phase.CREATE, key):
            me = waits[step_id(Phase.CREATE, key)]
            if has(Phase.DESTROY, key) and key not in cbd:
                me.append(Wait(step_id(Phase.DESTROY, key), Milestone.DONE, "replace"))
            for dep in c.depends_on:
                dc = by_key.get(dep)
                if dc is None:
                    continue
                if has(Phase.CREATE, dep):
                    ms, why = _milestone_for(c, dc, conditions)
                    me.append(Wait(step_id(Phase.CREATE, dep), ms, why))
                elif has(Phase.RECORD, dep):
                    me.append(Wait(step_id(Phase.RECORD, dep), Milestone.DONE, "adopted first"))
        if has(Phase.DESTROY, key):
            # Reverse order: my dependency is removed only after I am.
            for dep in c.depends_on:
                dc = by_key.get(dep)
                if has(Phase.DESTROY, dep) and dc is not None:
                    entry = (step_id(Phase.DESTROY, dep),
                             Wait(step_id(Phase.DESTROY, key), Milestone.DONE,
                                  "remove dependents first"))
                    if dc.kind in _HELD_KINDS:
                        waits[entry[0]].append(entry[1])  # Podman refuses it in use
                    else:
                        preferred.append(entry)
                if (key not in cbd and has(Phase.CREATE, key) and has(Phase.CREATE, dep)
                        and dc is not None and dc.kind is ObjectKind.IMAGE):
                    # The old container keeps running while its new image builds: a
                    # failed build leaves it untouched.
                    preferred.append((step_id(Phase.DESTROY, key),
                                      Wait(step_id(Phase.CREATE, dep), Milestone.DONE,
                                           "new image built first")))

    _add_keep_working_waits(changes, phases, waits)
    for sid, wait in preferred:
        _add_unless_cycle(waits, sid, wait)
    _add_rolling_waits(changes, phases, waits)
    guarding = {w.node for ws in waits.values() for w in ws if w.why in _GUARD_WAITS}

    def settle_of(ph: Phase, key: str) -> Settle:
        if ph is not Phase.CREATE or by_key[key].kind is not ObjectKind.CONTAINER:
            return Settle.NONE
        mode = settles.get(key, Settle.NONE)
        if mode is Settle.RUNNING and step_id(ph, key) in guarding:
            return Settle.STEADY
        return mode

    steps = tuple(Step(sid, ph, key, tuple(_dedupe(waits[sid])), settle_of(ph, key),
                       old_after_new=ph is Phase.DESTROY and key in cbd)
                  for sid, ph, key in order)
    schedule = Schedule(steps, by_key)
    _topological_ids(steps)  # raises on a cycle
    return schedule


_NEW_SETTLED = "new one settled first"
_REPLACEMENT_SETTLED = "replacement settled first"
# Waits that let an old container go: what they wait for must prove it stays up.
_GUARD_WAITS = frozenset({_NEW_SETTLED, _REPLACEMENT_SETTLED})
# Objects Podman will not remove while a container uses them.
_HELD_KINDS = frozenset({ObjectKind.NETWORK, ObjectKind.VOLUME})


def _holds_removed_binding(c: Change, by_key: Mapping[str, Change],
                           removed: set[str]) -> bool:
    """True when `c`'s container uses a network or volume this plan removes: its old
    container must be gone before that removal, so it cannot outlive its replacement."""
    return any(dep in removed and by_key[dep].kind in _HELD_KINDS for dep in c.depends_on)


def _add_keep_working_waits(changes: Sequence[Change], phases: Mapping[str, list[Phase]],
                            waits: dict[str, list[Wait]]) -> None:
    """A container of a service that is deleted while the same service gets a new or
    restarted container (a retired `...-old-<id>` left by a failed replace, a scaled-down
    replica) is removed only once that container settled (issue 11 D18): if it fails,
    the old one keeps serving instead of the service going down."""
    incoming: dict[str, list[str]] = {}
    for c in changes:
        if c.kind is ObjectKind.CONTAINER and Phase.CREATE in phases.get(c.key, ()):
            incoming.setdefault(c.address, []).append(c.key)
    for c in changes:
        if c.kind is not ObjectKind.CONTAINER or c.action is not Action.DELETE:
            continue
        for key in incoming.get(c.address, ()):
            _add_unless_cycle(waits, step_id(Phase.DESTROY, c.key),
                              Wait(step_id(Phase.CREATE, key), Milestone.DONE,
                                   _REPLACEMENT_SETTLED))


def _add_unless_cycle(waits: dict[str, list[Wait]], sid: str, wait: Wait) -> bool:
    """Add a preferred wait unless `wait.node` already (transitively) waits for `sid`."""
    if wait.node == sid or _reaches(waits, wait.node, sid):
        return False
    waits[sid].append(wait)
    return True


def _milestone_for(c: Change, dep: Change, conditions: Conditions) -> tuple[Milestone, str]:
    if dep.kind is not ObjectKind.CONTAINER or c.kind is not ObjectKind.CONTAINER:
        return Milestone.DONE, f"needs {dep.kind.value}"
    cond = conditions.get((c.address, dep.address), Condition.STARTED)
    if c.address == dep.address:
        cond = Condition.STARTED
    ms = Milestone.STARTED if cond is Condition.STARTED else Milestone.DONE
    return ms, f"dependsOn {dep.address} ({cond.value})"


def _add_rolling_waits(changes: Sequence[Change], phases: Mapping[str, list[Phase]],
                       waits: dict[str, list[Wait]]) -> None:
    """Replicas of one service are replaced one at a time, in replica order."""
    by_address: dict[str, list[Change]] = {}
    for c in changes:
        if (c.kind is ObjectKind.CONTAINER and c.action is Action.REPLACE
                and Phase.CREATE in phases.get(c.key, ())):
            by_address.setdefault(c.address, []).append(c)
    for group in by_address.values():
        group.sort(key=lambda c: (c.replica if c.replica is not None else 0, c.key))
        for prev, nxt in itertools.pairwise(group):
            first = phases[nxt.key][0]
            target = step_id(first, nxt.key)
            source = step_id(Phase.CREATE, prev.key)
            # A replace forced by a network/volume replace must remove every replica
            # before the network goes: rolling would deadlock, so it is skipped there.
            _add_unless_cycle(waits, target, Wait(source, Milestone.DONE, "rolling replace"))


def _reaches(waits: Mapping[str, list[Wait]], start: str, goal: str) -> bool:
    """True when `start` (transitively) waits for `goal`."""
    seen = {start}
    stack = [start]
    while stack:
        for w in waits.get(stack.pop(), ()):
            if w.node == goal:
                return True
            if w.node not in seen:
                seen.add(w.node)
                stack.append(w.node)
    return False


def _dedupe(waits: Iterable[Wait]) -> list[Wait]:
    best: dict[str, Wait] = {}
    for w in waits:
        old = best.get(w.node)
        if old is None or w.milestone > old.milestone:
            best[w.node] = w
    return list(best.values())


def _topological_ids(steps: Sequence[Step]) -> list[str]:
    index = {s.id: i for i, s in enumerate(steps)}
    out, stuck = stable_toposort({s.id: [w.node for w in s.waits] for s in steps},
                                 index.__getitem__)
    if stuck:
        raise ApplyError(f"the apply schedule has a cycle through {', '.join(stuck[:4])}",
                         hint="this is a DockLock bug; please report it with the plan JSON")
    return out


# ====================================================================== events and results


class EventType(StrEnum):
    APPLY_STARTED = "apply-started"
    CHANGE_STARTED = "change-started"
    CHANGE_PROGRESS = "change-progress"  # e.g. still waiting for health
    CHANGE_DONE = "change-done"
    CHANGE_FAILED = "change-failed"
    CHANGE_SKIPPED = "change-skipped"  # not attempted, or left part-way
    APPLY_FINISHED = "apply-finished"
    # Given to the write-ahead hook (not the event sink) before a step calls Podman.
    STEP_INTENT = "step-intent"
    # Given to the write-ahead hook after Podman made an object and before the state
    # records it, so the ledger names every id the state will ever hold.
    OBJECT_MADE = "object-made"


class ChangeStatus(StrEnum):
    DONE = "done"
    FAILED = "failed"
    NOT_ATTEMPTED = "not-attempted"
    PARTIAL = "partial"  # some steps done (e.g. old container removed), the rest blocked


@dataclass(frozen=True)
class ApplyEvent:
    """One progress event; `elapsed` is seconds since the change (or the apply) started."""

    type: EventType
    key: str = ""
    address: str = ""
    name: str = ""
    kind: str = ""
    action: str = ""
    elapsed: float = 0.0
    message: str = ""
    id: str = ""
    health: str = ""
    serial: int = 0  # the state serial once the change's records were written
    step: str = ""  # STEP_INTENT: the step about to run (`<phase>:<key>`)
    effects: tuple[str, ...] = ()  # what the change did in Podman so far (see Effect)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type.value, "key": self.key, "address": self.address,
                "name": self.name, "kind": self.kind, "action": self.action,
                "elapsed": round(self.elapsed, 3), "message": self.message, "id": self.id,
                "health": self.health, "serial": self.serial, "step": self.step,
                "effects": list(self.effects)}


class Effect(StrEnum):
    """One thing a change did in Podman (recorded as it happens, counted in the result)."""

    CREATED = "created"  # a container, network or volume was created, an image built
    STARTED = "started"
    RENAMED = "renamed"  # the old container moved aside for its replacement
    REMOVED = "removed"


@dataclass(frozen=True)
class ChangeOutcome:
    key: str
    address: str
    kind: str
    name: str
    action: Action
    status: ChangeStatus
    elapsed: float = 0.0
    id: str = ""
    health: str = ""
    error: str = ""
    hint: str = ""
    effects: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "address": self.address, "kind": self.kind,
                "name": self.name, "action": self.action.value, "status": self.status.value,
                "elapsed": round(self.elapsed, 3), "id": self.id, "health": self.health,
                "error": self.error, "hint": self.hint, "effects": list(self.effects)}


@dataclass(frozen=True)
class ApplyResult:
    """What an apply did; `state` is the state as last written."""

    outcomes: tuple[ChangeOutcome, ...]
    state: State
    elapsed: float
    state_writes: int = 0
    halted: str = ""  # why the apply stopped early (ledger or state not writable)

    def _count(self, effect: Effect, *actions: Action) -> int:
        """Finished changes of `actions`, plus unfinished ones that did `effect` anyway
        (a failed or part-way change still created or removed what it did)."""
        return sum(1 for o in self.outcomes if o.action in actions and (
            o.status is ChangeStatus.DONE or effect.value in o.effects))

    @property
    def added(self) -> int:
        return self._count(Effect.CREATED, Action.CREATE, Action.REPLACE)

    @property
    def changed(self) -> int:
        return self._count(Effect.STARTED, Action.UPDATE)

    @property
    def destroyed(self) -> int:
        return self._count(Effect.REMOVED, Action.DELETE, Action.REPLACE)

    @property
    def renamed_aside(self) -> int:
        """Unfinished replaces whose old container is left under its retired name."""
        return sum(1 for o in self.outcomes if o.status is not ChangeStatus.DONE
                   and Effect.RENAMED.value in o.effects
                   and Effect.REMOVED.value not in o.effects)

    @property
    def partial(self) -> tuple[ChangeOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status is ChangeStatus.PARTIAL)

    @property
    def adopted(self) -> int:
        return sum(1 for o in self.outcomes
                   if o.status is ChangeStatus.DONE and o.action is Action.NOOP)

    @property
    def failed(self) -> tuple[ChangeOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status is ChangeStatus.FAILED)

    @property
    def not_done(self) -> tuple[ChangeOutcome, ...]:
        return tuple(o for o in self.outcomes
                     if o.status in (ChangeStatus.NOT_ATTEMPTED, ChangeStatus.PARTIAL))

    @property
    def ok(self) -> bool:
        return not self.halted and all(o.status is ChangeStatus.DONE for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "added": self.added, "changed": self.changed,
                "destroyed": self.destroyed, "adopted": self.adopted,
                "renamed_aside": self.renamed_aside, "halted": self.halted,
                "elapsed": round(self.elapsed, 3), "serial": self.state.serial,
                "lineage": self.state.lineage,
                "outcomes": [o.to_dict() for o in self.outcomes]}


def summary_line(result: ApplyResult, *, verb: str = "Apply") -> str:
    """`Apply complete: 3 added, 1 changed, 0 destroyed.` (or `Apply failed: ...`)."""
    counts = f"{result.added} added, {result.changed} changed, {result.destroyed} destroyed"
    if result.ok:
        return f"{verb} complete: {counts}."
    extra = [f"{len(result.failed)} failed"] if result.failed else []
    if result.partial:
        extra.append(f"{len(result.partial)} left part-way")
    untried = len(result.not_done) - len(result.partial)
    if untried:
        extra.append(f"{untried} not attempted")
    if result.renamed_aside:
        extra.append(f"{result.renamed_aside} old container(s) kept under a retired name")
    stopped = f" (stopped: {result.halted})" if result.halted else ""
    return f"{verb} failed: {counts}; {', '.join(extra) or 'nothing failed'}{stopped}."


_DONE_VERB = {Action.CREATE: "created", Action.UPDATE: "started", Action.REPLACE: "replaced",
              Action.DELETE: "destroyed", Action.NOOP: "adopted into state"}
_SYMBOL = {Action.CREATE: "+", Action.UPDATE: "~", Action.REPLACE: "-/+",
           Action.DELETE: "-", Action.NOOP: "="}


def format_elapsed(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def format_event(event: ApplyEvent) -> str | None:
    """One line for a person, or None for events not shown line by line."""
    try:
        action = Action(event.action) if event.action else Action.NOOP
    except ValueError:
        action = Action.NOOP
    what = f"{event.kind} {event.name} ({event.address})"
    took = format_elapsed(event.elapsed)
    if event.type is EventType.CHANGE_DONE:
        health = f", {event.health}" if event.health else ""
        ident = f" [id={short_id(event.id)}]" if event.id else ""
        return f"{_SYMBOL[action]} {what}: {_DONE_VERB[action]}{health} after {took}{ident}"
    if event.type is EventType.CHANGE_FAILED:
        return f"! {what}: {action.value} FAILED after {took}: {event.message}"
    if event.type is EventType.CHANGE_SKIPPED:
        return f"  {what}: {action.value} {event.message}"
    if event.type is EventType.CHANGE_PROGRESS:
        return f"  {what}: {event.message} ({took} elapsed)"
    return None


EventSink = Callable[[ApplyEvent], None]


def _no_events(_event: ApplyEvent) -> None:
    return None


# ====================================================================== runtime access


RuntimeFactory = Callable[[], PodmanRuntime]


class _Clients:
    """One PodmanRuntime per worker thread: podman-py clients are not promised thread-safe."""

    def __init__(self, factory: RuntimeFactory) -> None:
        self._factory = factory
        self._local = threading.local()
        self._all: list[PodmanRuntime] = []
        self._lock = threading.Lock()

    def get(self) -> PodmanRuntime:
        rt: PodmanRuntime | None = getattr(self._local, "rt", None)
        if rt is None:
            rt = self._factory()
            self._local.rt = rt
            with self._lock:
                self._all.append(rt)
        return rt

    @property
    def api_calls(self) -> int:
        with self._lock:
            return sum(rt.api_calls for rt in self._all)

    def close(self) -> None:
        with self._lock:
            clients, self._all = self._all, []
        for rt in clients:
            with contextlib.suppress(Exception):
                rt.close()


def worker_factory(runtime: PodmanRuntime) -> RuntimeFactory:
    """Connections for worker threads to the same Podman service as `runtime`."""

    def make() -> PodmanRuntime:
        return PodmanRuntime(runtime.url, source=f"{runtime.source} (worker)")

    return make


# ====================================================================== options


@dataclass(frozen=True)
class ApplyOptions:
    parallelism: int = DEFAULT_PARALLELISM
    health_timeout: float | None = None  # None: derived from each healthcheck
    # A `completed` dependency that is not a Job (which brings its own spec.timeout)
    # must exit within this.
    completion_timeout: float = 300.0
    first_check_delay: float = 0.2  # first healthcheck this soon after start
    # A replacement without a healthcheck must still run this long before the container
    # it replaces is removed (Settle.STEADY; Kubernetes' minReadySeconds).
    min_ready: float = 2.0
    verify_running: bool = True  # one list call at the end: did anything exit since?

    def __post_init__(self) -> None:
        if self.parallelism < 1:
            raise ApplyError(f"parallelism must be at least 1 (got {self.parallelism})",
                             hint="pass --parallelism N with N >= 1")


def health_timeout(config: Mapping[str, Any], override: float | None = None) -> float:
    """How long a container may take to become healthy: its start period plus enough
    checks for `retries` failures, with a margin; at least 10 s."""
    if override is not None:
        return override
    hc = config.get("healthcheck") or {}
    interval = duration_ns(str(hc.get("interval", "2s"))) / 1e9
    timeout = duration_ns(str(hc.get("timeout", "5s"))) / 1e9
    start = duration_ns(str(hc.get("startPeriod", "0s"))) / 1e9
    retries = int(hc.get("retries", 5))
    return max(10.0, start + (retries + 1) * (interval + timeout) + 5.0)


# ====================================================================== the executor


class _Interrupted(Exception):
    """A wait noticed that the apply is being interrupted."""


@dataclass
class _Msg:
    kind: str  # record | reached | failed | progress
    step: str
    milestone: Milestone | None = None
    recorded: RecordedObject | None = None
    drop: bool = False
    error: BaseException | None = None
    message: str = ""
    id: str = ""
    health: str = ""


@dataclass
class _ChangeRun:
    change: Change
    steps: list[str]
    started: float | None = None
    finished: float | None = None
    status: ChangeStatus | None = None
    id: str = ""
    health: str = ""
    error: str = ""
    hint: str = ""
    steps_done: int = 0
    last_progress: float = 0.0
    effects: list[str] = dataclasses.field(default_factory=list)  # under Executor._lock


WriteAhead = Callable[[ApplyEvent], None]


class Executor:
    """Runs one schedule. Use `execute()`; this class keeps its bookkeeping together."""

    def __init__(self, plan: Plan, desired: Mapping[str, DesiredObject], *,
                 store: StateBackend, state: State, runtime: PodmanRuntime,
                 paths: WorkspacePaths, cluster: str, conditions: Conditions,
                 options: ApplyOptions, on_event: EventSink,
                 runtime_factory: RuntimeFactory | None,
                 write_ahead: WriteAhead | None = None) -> None:
        self.plan = plan
        self.desired = desired
        self.store = store
        self.state = state
        self.runtime = runtime
        self.paths = paths
        self.cluster = cluster
        self.options = options
        self.emit = on_event
        self.clients = _Clients(runtime_factory or worker_factory(runtime))
        settles = settle_modes(desired.values(), conditions)
        self.schedule = build_schedule(plan.changes, conditions, settles,
                                       create_before_destroy=can_rename(runtime))
        self.steps = self.schedule.by_id()
        self.cbd_keys = frozenset(s.key for s in self.schedule.steps if s.old_after_new)
        self.runs: dict[str, _ChangeRun] = {}
        for s in self.schedule.steps:
            c = self.schedule.changes[s.key]
            self.runs.setdefault(s.key, _ChangeRun(c, [])).steps.append(s.id)
        self.msgs: queue.Queue[_Msg] = queue.Queue()
        self.abort = threading.Event()
        self.reached: dict[str, Milestone] = {}
        self.dead: dict[str, str] = {}  # step -> why it can never reach DONE
        self.stopping = False
        self.state_writes = 0
        self.started_containers: list[str] = []  # keys settled as RUNNING (verified at end)
        self._lock = threading.Lock()
        self.job_records: dict[str, RecordedObject] = {}  # a job's record, for its result
        self.t0 = time.monotonic()
        self.write_ahead = write_ahead
        self.halted = ""  # why no step may start any more (ledger/state not writable)
        self.unsaved: State | None = None  # records the state file could not take yet
        self.named_ids: set[str] = set()  # ids of objects made that the ledger named

    # ------------------------------------------------------------------ main loop

    def run(self) -> ApplyResult:
        self.emit(ApplyEvent(EventType.APPLY_STARTED,
                             message=f"{len(self.runs)} change(s), "
                                     f"parallelism {self.options.parallelism}"))
        unmet: dict[str, int] = {}
        waiters: dict[str, list[tuple[str, Milestone]]] = {}
        for s in self.schedule.steps:
            unmet[s.id] = len(s.waits)
            for w in s.waits:
                waiters.setdefault(w.node, []).append((s.id, w.milestone))
        order = {s.id: i for i, s in enumerate(self.schedule.steps)}
        ready: list[tuple[int, str]] = [(order[sid], sid) for sid, n in unmet.items() if n == 0]
        heapq.heapify(ready)
        pending = set(unmet)
        in_flight = 0  # Podman operations running (waits excluded)
        busy = 0  # operations + waits outstanding
        satisfied: set[tuple[str, str]] = set()
        futures: list[Future[None]] = []

        def reach(sid: str, ms: Milestone) -> None:
            if self.reached.get(sid, 0) >= ms:
                return
            self.reached[sid] = ms
            for d, need in waiters.get(sid, ()):
                if need <= ms and (d, sid) not in satisfied:
                    satisfied.add((d, sid))
                    unmet[d] -= 1
                    if unmet[d] == 0 and d in pending:
                        heapq.heappush(ready, (order[d], d))

        def kill(sid: str) -> None:
            """`sid` failed: whoever still waits on it (transitively) cannot run."""
            root = self.runs[self.steps[sid].key].change
            why = f"{root.address} ({root.name}) failed"
            stack = [sid]
            while stack:
                cur = stack.pop()
                if cur in self.dead:
                    continue
                self.dead[cur] = why
                for d, need in waiters.get(cur, ()):
                    if (d, cur) in satisfied or need <= self.reached.get(cur, 0):
                        continue
                    if d in pending:
                        pending.discard(d)
                        stack.append(d)
                        self._blocked(self.steps[d], why)

        ops = ThreadPoolExecutor(max_workers=self.options.parallelism,
                                 thread_name_prefix="docklock-apply")
        waits = ThreadPoolExecutor(max_workers=WAIT_THREADS,
                                   thread_name_prefix="docklock-wait")
        try:
            while True:
                while ready and in_flight < self.options.parallelism:
                    _, sid = heapq.heappop(ready)
                    if sid not in pending:
                        continue
                    step = self.steps[sid]
                    run = self.runs[step.key]
                    if (self.stopping and run.started is None) or self.halted:
                        continue  # reported as not attempted (or left part-way) at the end
                    if step.phase is not Phase.RECORD and not self._intend(step):
                        continue  # halted: the step stays pending
                    pending.discard(sid)
                    self._begin(run)
                    if step.phase is Phase.RECORD:
                        self._adopt(step)
                        reach(sid, Milestone.DONE)
                        self._step_done(step)
                        continue
                    in_flight += 1
                    busy += 1
                    futures.append(ops.submit(self._op_guarded, step))
                if busy == 0:
                    break
                try:
                    batch = [self.msgs.get(timeout=1.0)]
                except queue.Empty:
                    continue
                with contextlib.suppress(queue.Empty):
                    while len(batch) < 64:
                        batch.append(self.msgs.get_nowait())
                # Records of steps that finished together go to disk in one write, before
                # any message of the batch can release a step that depends on them; the
                # ledger names each new id first.
                records = self._note_made([m for m in batch if m.kind == "record"])
                self._record_all(records)
                for msg in batch:
                    step = self.steps[msg.step]
                    if msg.kind == "progress":
                        self._progress(step, msg)
                    elif msg.kind == "reached":
                        assert msg.milestone is not None
                        first = self.reached.get(step.id) is None
                        reach(step.id, msg.milestone)
                        run = self.runs[step.key]
                        run.id = msg.id or run.id
                        run.health = msg.health or run.health
                        if first:
                            in_flight -= 1  # the Podman operation itself is over
                        if msg.milestone is Milestone.DONE:
                            busy -= 1
                            self._step_done(step)
                        elif step.settle in (Settle.HEALTHY, Settle.COMPLETED,
                                             Settle.STEADY):
                            futures.append(waits.submit(self._settle_guarded, step,
                                                        msg.id))
                    elif msg.kind == "failed":
                        if self.reached.get(step.id) is None:
                            in_flight -= 1
                        busy -= 1
                        self._failed(step, msg.error)
                        kill(step.id)
                        self.stopping = True
        except KeyboardInterrupt:
            self.abort.set()
            self.stopping = True
            self._drain(futures)
            raise
        except BaseException:
            self.abort.set()  # health waits stop at their next check
            raise
        finally:
            ops.shutdown(wait=True)
            waits.shutdown(wait=True)
        if self.unsaved is not None:  # one more try: the in-flight steps are recorded
            with contextlib.suppress(DockLockError, OSError):
                self.state = self.store.write(self.unsaved)
                self.unsaved = None
                self.state_writes += 1
        for sid in sorted(pending, key=order.__getitem__):
            run = self.runs[self.steps[sid].key]
            if run.status is None:
                why = "not attempted after an earlier failure" if self.stopping else \
                    "not attempted"
                if self.halted:
                    why = f"the apply stopped ({self.halted})"
                self._blocked(self.steps[sid], why)
        if self.options.verify_running and self.started_containers:
            with contextlib.suppress(PodmanError):
                self._verify_running()
        self.clients.close()
        result = self._result()
        self.emit(ApplyEvent(EventType.APPLY_FINISHED, elapsed=result.elapsed,
                             message=summary_line(result)))
        return result

    def _drain(self, futures: Sequence[Future[None]]) -> None:
        """After Ctrl-C: let running operations finish and record what they did.

        No new step or wait starts, and running waits stop at their next check (abort
        is set). A worker puts its messages before its future is done, so once every
        future is done and the queue is empty, everything has been seen.
        """
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                msg = self.msgs.get(timeout=0.2)
            except queue.Empty:
                if all(f.done() for f in futures):
                    return
                continue
            if msg.kind == "record":
                # A write torn by the interrupt itself makes later writes refuse (the
                # serial moved); the next plan adopts what could not be recorded.
                for kept in self._note_made([msg]):
                    with contextlib.suppress(DockLockError):
                        self._record(self.steps[kept.step], kept)

    # ------------------------------------------------------------------ bookkeeping

    def _begin(self, run: _ChangeRun) -> None:
        if run.started is None:
            run.started = time.monotonic()
            run.last_progress = run.started
            self.emit(self._event(EventType.CHANGE_STARTED, run))

    def _event(self, etype: EventType, run: _ChangeRun, message: str = "") -> ApplyEvent:
        c = run.change
        now = run.finished or time.monotonic()
        elapsed = now - run.started if run.started is not None else 0.0
        with self._lock:
            effects = tuple(run.effects)
        return ApplyEvent(etype, key=c.key, address=c.address, name=c.name,
                          kind=c.kind.value, action=c.action.value, elapsed=elapsed,
                          message=message, id=run.id, health=run.health,
                          serial=self.state.serial, effects=effects)

    def _intend(self, step: Step) -> bool:
        """Record the step's intent before it calls Podman; False (and halted) when the
        write-ahead hook cannot record it."""
        if self.write_ahead is None:
            return True
        event = dataclasses.replace(self._event(EventType.STEP_INTENT, self.runs[step.key],
                                                step.phase.value), step=step.id)
        try:
            self.write_ahead(event)
        except (DockLockError, OSError) as exc:
            self._halt(f"the ledger could not record the intent of {step.id}: "
                       f"{exc.message if isinstance(exc, DockLockError) else exc}")
            return False
        return True

    def _halt(self, why: str) -> None:
        if not self.halted:
            self.halted = why
        self.stopping = True

    def _effect(self, key: str, effect: Effect) -> None:
        with self._lock:
            self.runs[key].effects.append(effect.value)

    def _step_done(self, step: Step) -> None:
        run = self.runs[step.key]
        run.steps_done += 1
        if run.steps_done == len(run.steps) and run.status is None:
            run.status = ChangeStatus.DONE
            run.finished = time.monotonic()
            self.emit(self._event(EventType.CHANGE_DONE, run))

    def _failed(self, step: Step, error: BaseException | None) -> None:
        run = self.runs[step.key]
        if run.status is not None and run.status is not ChangeStatus.DONE:
            return
        run.status = ChangeStatus.FAILED
        run.finished = time.monotonic()
        if isinstance(error, DockLockError):
            run.error, run.hint = error.message, error.hint
        else:
            run.error = f"{type(error).__name__}: {error}"
        self.emit(self._event(EventType.CHANGE_FAILED, run, run.error))

    def _blocked(self, step: Step, why: str) -> None:
        run = self.runs[step.key]
        if run.status is not None:
            return
        run.finished = time.monotonic()
        if run.steps_done > 0:
            run.status = ChangeStatus.PARTIAL
            msg = f"left part-way ({run.steps_done} of {len(run.steps)} steps): {why}"
        else:
            run.status = ChangeStatus.NOT_ATTEMPTED
            msg = f"not attempted: {why}" if not why.startswith("not attempted") else why
        run.error = msg
        self.emit(self._event(EventType.CHANGE_SKIPPED, run, msg))

    def _progress(self, step: Step, msg: _Msg) -> None:
        run = self.runs[step.key]
        now = time.monotonic()
        if now - run.last_progress >= PROGRESS_EVERY:
            run.last_progress = now
            self.emit(self._event(EventType.CHANGE_PROGRESS, run, msg.message))

    def _record(self, step: Step, msg: _Msg) -> None:
        self._record_all([msg])

    def _note_made(self, msgs: Sequence[_Msg]) -> list[_Msg]:
        """Give the write-ahead hook each object Podman just made (its id), before the
        state records it; return the records the state may take.

        If the ledger cannot name a new id the apply halts, and that record is left out
        of the state too: the state never holds an id the ledger does not name (else
        the next plan finds the object as recorded, changes nothing, and no ledger
        entry ever names it). The object stays in Podman with this workspace's labels;
        the next plan adopts it (or replaces it, when the state still records the one
        it replaced), and that change's entry names its id."""
        if self.write_ahead is None:
            return list(msgs)
        kept: list[_Msg] = []
        for msg in msgs:
            rec = msg.recorded
            if rec is None or not rec.id:
                kept.append(msg)
                continue
            run = self.runs[self.steps[msg.step].key]
            event = dataclasses.replace(self._event(EventType.OBJECT_MADE, run),
                                        step=msg.step, id=rec.id)
            try:
                self.write_ahead(event)
            except (DockLockError, OSError) as exc:
                self._halt(f"the ledger could not record {rec.id[:12]} made by {msg.step}: "
                           f"{exc.message if isinstance(exc, DockLockError) else exc}")
                if rec.id not in self.named_ids:
                    continue  # unnamed: the state must not record it either
            self.named_ids.add(rec.id)
            kept.append(msg)
        return kept

    def _record_all(self, msgs: Sequence[_Msg]) -> None:
        """Apply the records to the state and write it once (if anything changed).

        A write that fails (disk full) halts the apply; the records are kept in memory
        and written with the next one, or once more at the end."""
        base = self.unsaved if self.unsaved is not None else self.state
        new = base
        for msg in msgs:
            c = self.runs[self.steps[msg.step].key].change
            if msg.drop:
                new = new.without_object(c.address, c.key)
            elif msg.recorded is not None:
                new = new.with_object(c.address, msg.recorded)
        if new is self.state:
            return
        try:
            self.state = self.store.write(new)
        except (DockLockError, OSError) as exc:
            self.unsaved = new
            text = exc.message if isinstance(exc, DockLockError) else str(exc)
            self._halt(f"the state could not be saved: {text}")
            return
        self.unsaved = None
        self.state_writes += 1

    def _adopt(self, step: Step) -> None:
        c = self.runs[step.key].change
        obj = self.desired[c.key]
        assert c.live is not None
        image_id = c.live.image if looks_like_id(c.live.image) else None
        rec = RecordedObject.from_desired(obj, id=c.live.id, created=utc_now(),
                                          image_id=image_id)
        self._record(step, _Msg("record", step.id, recorded=rec))
        self.runs[step.key].id = c.live.id

    def _verify_running(self) -> None:
        """One list call: a container that exited with an error since it started fails."""
        live = self.runtime.list_live(self.cluster)
        for key in self.started_containers:
            run = self.runs[key]
            obj = live.objects.get(key)
            if run.status is not ChangeStatus.DONE or obj is None:
                continue
            if obj.status in ("exited", "stopped") and (obj.exit_code or 0) != 0:
                run.status = None
                err = ContainerFailedError(
                    f"container {obj.name} exited with code "
                    f"{obj.exit_code} after it started",
                    hint=f"see `podman logs {obj.name}`")
                self._failed(self.steps[run.steps[-1]], err)

    def _result(self) -> ApplyResult:
        outcomes: list[ChangeOutcome] = []
        for key, run in self.runs.items():
            c = run.change
            status = run.status or ChangeStatus.NOT_ATTEMPTED
            elapsed = ((run.finished or time.monotonic()) - run.started
                       if run.started is not None else 0.0)
            with self._lock:
                effects = tuple(run.effects)
            outcomes.append(ChangeOutcome(key, c.address, c.kind.value, c.name, c.action,
                                          status, elapsed, run.id, run.health, run.error,
                                          run.hint, effects))
        return ApplyResult(tuple(outcomes), self.state, time.monotonic() - self.t0,
                           self.state_writes, self.halted)

    # ------------------------------------------------------------------ workers

    def _op_guarded(self, step: Step) -> None:
        try:
            self._op(step)
        except BaseException as exc:  # every failure goes back to the main thread
            self.msgs.put(_Msg("failed", step.id, error=exc))

    def _settle_guarded(self, step: Step, cid: str) -> None:
        try:
            health = self._settle(step, cid)
            self.msgs.put(_Msg("reached", step.id, Milestone.DONE, id=cid, health=health))
        except BaseException as exc:
            self.msgs.put(_Msg("failed", step.id, error=exc))

    def _op(self, step: Step) -> None:
        c = self.runs[step.key].change
        rt = self.clients.get()
        if step.phase is Phase.DESTROY:
            if self._destroy(rt, c):
                self._effect(c.key, Effect.REMOVED)
            if not step.old_after_new:  # else the key already records the new container
                self.msgs.put(_Msg("record", step.id, drop=True))
            self.msgs.put(_Msg("reached", step.id, Milestone.DONE))
            return
        obj = self.desired.get(c.key)
        if obj is None:
            raise ApplyError(f"{c.key}: the plan has no desired configuration for it",
                             hint="make a new plan")
        if c.kind is ObjectKind.CONTAINER:
            self._container(rt, step, c, obj)
            return
        if c.kind is ObjectKind.IMAGE:
            oid = self._build(rt, obj)
        elif c.kind is ObjectKind.NETWORK:
            oid = self._network(rt, obj)
        else:
            oid = self._volume(rt, obj)
        self._effect(c.key, Effect.CREATED)
        rec = RecordedObject.from_desired(obj, id=oid, created=utc_now())
        self.msgs.put(_Msg("record", step.id, recorded=rec))
        self.msgs.put(_Msg("reached", step.id, Milestone.DONE, id=oid))

    # -- destroy

    def _destroy(self, rt: PodmanRuntime, c: Change) -> bool:
        """Remove the change's existing object; False when it was already gone."""
        target = c.existing_id or c.name
        if c.kind is ObjectKind.CONTAINER:
            stop = _stop_timeout(c)
            running = c.live is None or c.live.status in ("running", "paused", "")
            if stop > 0 and running:
                try:
                    rt.stop_container(target, timeout=stop)
                except PodmanError as exc:
                    if not _not_found(exc):
                        raise
                    return False
            return rt.remove_container(target, force=True)
        if c.kind is ObjectKind.NETWORK:
            return rt.remove_network(c.name)
        if c.kind is ObjectKind.VOLUME:
            return rt.remove_volume(c.name)
        _remove_image(rt, c.name)  # an image
        return True

    # -- create

    def _container(self, rt: PodmanRuntime, step: Step, c: Change,
                   obj: DesiredObject) -> None:
        config = ContainerConfig.from_dict(obj.config)
        try:
            self._container_ops(rt, step, c, obj, config)
        except PodmanError as exc:
            better = explain_podman_error(rt, exc, config, self.cluster)
            if better is exc:
                raise
            raise better from exc

    def _container_ops(self, rt: PodmanRuntime, step: Step, c: Change, obj: DesiredObject,
                       config: ContainerConfig) -> None:
        job = is_job(obj.config)
        if c.action is Action.UPDATE:
            cid = c.existing_id or obj.name
        else:
            write_cage_files(config.cage, self.paths.cages)
            if job:
                self._fresh_outputs(obj, config)
            if c.key in self.cbd_keys and self._rename_old(rt, c):
                self._effect(c.key, Effect.RENAMED)
            cid = self._create_container(rt, config, obj)
            self._effect(c.key, Effect.CREATED)
        if not job or rt.inspect_container(cid).status in _NOT_STARTED:
            # A job that already ran (or runs) is never started again: that would
            # re-run it. Its exit code is what the settle step reads.
            rt.start_container(cid)
            self._effect(c.key, Effect.STARTED)
        info = rt.inspect_container(cid)
        rec = RecordedObject.from_desired(obj, id=info.id or cid, created=utc_now(),
                                          image_id=info.image_id or None)
        if job:
            with self._lock:
                self.job_records[c.key] = rec
        self.msgs.put(_Msg("record", step.id, recorded=rec))
        if not info.running and (step.settle is not Settle.COMPLETED):
            if (step.settle in (Settle.RUNNING, Settle.STEADY) and info.exit_code == 0
                    and info.status):
                pass  # exited 0 at once: nothing waits on it running
            else:
                raise self._exited(rt, c, info.name or obj.name, info.exit_code, info.error)
        if step.settle in (Settle.RUNNING, Settle.STEADY):
            self.started_containers.append(c.key)
        if step.settle is Settle.RUNNING:
            self.msgs.put(_Msg("reached", step.id, Milestone.DONE, id=info.id))
            return
        self.msgs.put(_Msg("reached", step.id, Milestone.STARTED, id=info.id))

    def _fresh_outputs(self, obj: DesiredObject, config: ContainerConfig) -> None:
        """Give a job run an empty outputs folder (the one render bound, nowhere else)."""
        settings = job_settings(obj.config)
        if settings is None or settings.outputs is None:
            return
        folder = job_outputs_folder(self.paths, obj.address)
        if settings.outputs != str(folder):
            raise ApplyError(f"{obj.address}: the job's outputs folder "
                             f"{settings.outputs} is not {folder}",
                             hint="the workspace moved since the plan was made; plan again")
        if folder.exists():
            shutil.rmtree(folder)
        make_output_folder(folder, config.user)

    def _rename_old(self, rt: PodmanRuntime, c: Change) -> bool:
        """Move the old container out of the way of its replacement's name.

        A crash after this leaves a renamed container that still carries this cluster's
        labels: the next plan deletes it (and re-creates the recorded name).
        """
        old = c.existing_id
        if old is None:
            return False
        try:
            rt.rename_container(old, retired_name(c.name, old))
        except PodmanError as exc:
            if not _not_found(exc):
                raise
            return False
        return True

    def _create_container(self, rt: PodmanRuntime, config: ContainerConfig,
                          obj: DesiredObject) -> str:
        try:
            return rt.create_container(config)
        except PodmanError as exc:
            if "already in use" not in exc.message and "already exists" not in exc.message:
                raise
            # A crash between create and the state write leaves our container behind:
            # the same name with the same config hash is adopted, not duplicated.
            try:
                info = rt.inspect_container(config.name)
            except PodmanError:
                raise exc from None
            if self._ours(info.labels, obj) and \
                    info.labels.get(LABEL_CONFIG_HASH) == obj.config_hash:
                return info.id
            if self._ours(info.labels, obj):
                # Ours but with another config (a plan made without refresh): replace it.
                rt.remove_container(info.id, force=True)
                return rt.create_container(config)
            raise

    def _ours(self, labels: Mapping[str, str], obj: DesiredObject) -> bool:
        # Stricter than "managed": adopting a name clash needs the same resource address
        # and this workspace's lineage (another workspace may share the cluster name).
        return (is_owned(labels, self.cluster, self.state.lineage)
                and labels.get(LABEL_ADDRESS) == str(obj.address))

    def _build(self, rt: PodmanRuntime, obj: DesiredObject) -> str:
        cfg = obj.config
        context = self.paths.confine(str(cfg["context"]), what="image context")
        return rt.build_image(context, str(cfg.get("containerfile", "Containerfile")),
                              obj.name, dict(cfg.get("build_args") or {}),
                              labels=dict(cfg.get("labels") or {}))

    def _network(self, rt: PodmanRuntime, obj: DesiredObject) -> str:
        cfg = obj.config
        try:
            return rt.create_network(obj.name, dict(cfg.get("labels") or {}),
                                     bool(cfg.get("internal", False)), cfg.get("subnet"),
                                     driver=str(cfg.get("driver", "bridge")))
        except PodmanError as exc:
            found = rt.list_networks(self.cluster).objects.get(obj.key)
            if found is not None and found.config_hash == obj.config_hash and \
                    is_owned(found.labels, self.cluster, self.state.lineage):
                return found.id
            raise exc from None

    def _volume(self, rt: PodmanRuntime, obj: DesiredObject) -> str:
        cfg = obj.config
        try:
            return rt.create_volume(obj.name, dict(cfg.get("labels") or {}))
        except PodmanError as exc:
            found = rt.list_volumes(self.cluster).objects.get(obj.key)
            if found is not None and found.config_hash == obj.config_hash and \
                    is_owned(found.labels, self.cluster, self.state.lineage):
                return found.id
            raise exc from None

    # -- settle

    def _settle(self, step: Step, cid: str) -> str:
        c = self.runs[step.key].change
        obj = self.desired[c.key]
        rt = self.clients.get()
        if step.settle is Settle.STEADY:
            return self._await_steady(rt, c, cid)
        if step.settle is Settle.COMPLETED:
            if is_job(obj.config):
                return self._await_job(rt, step, c, obj, cid)
            try:
                code = rt.wait_container(cid, timeout=self.options.completion_timeout)
            except PodmanError as exc:
                raise HealthTimeoutError(f"container {c.name} did not complete: "
                                         f"{exc.message}", hint=exc.hint) from exc
            if code != 0:
                raise self._exited(rt, c, c.name, code, "")
            return "completed"
        return self._await_healthy(rt, c, obj, cid)

    def _await_job(self, rt: PodmanRuntime, step: Step, c: Change, obj: DesiredObject,
                   cid: str) -> str:
        """Wait for a job to exit within its timeout; record its exit code; fail unless 0."""
        settings = job_settings(obj.config)
        limit = float(settings.timeout if settings is not None
                      else self.options.completion_timeout)
        start = time.monotonic()
        code: int | None = None
        while code is None:
            if self.abort.is_set():
                raise _Interrupted
            left = limit - (time.monotonic() - start)
            if left <= 0:
                break
            try:
                code = rt.wait_container(cid, timeout=min(JOB_WAIT_SLICE, left))
            except PodmanTimeoutError:
                self.msgs.put(_Msg("progress", step.id,
                                   message="waiting for the job to finish"))
        if code is None:
            # Out of time: stop it, so the next plan sees a failed run (and re-runs it)
            # rather than waiting on it again.
            with contextlib.suppress(PodmanError):
                rt.stop_container(cid, timeout=0)
            with contextlib.suppress(PodmanError):
                self._record_job_result(step, c, rt.inspect_container(cid).exit_code,
                                        timed_out=True)
            raise self._job_failed(rt, c, f"did not finish within {limit:g}s (stopped)",
                                   hint="raise the Job's spec.timeout, or make it faster; "
                                        f"see `podman logs {c.name}`")
        self._record_job_result(step, c, code)
        if code != 0:
            raise self._job_failed(rt, c, f"exited with code {code}",
                                   hint=f"see `podman logs {c.name}`; fix the job and run "
                                        "apply again (a failed job is re-run)")
        return "completed"

    def _record_job_result(self, step: Step, c: Change, code: int, *,
                           timed_out: bool = False) -> None:
        with self._lock:
            rec = self.job_records.get(c.key)
        if rec is None:
            return
        result: dict[str, Any] = {"exit_code": code, "finished": utc_now()}
        if timed_out:
            result["timed_out"] = True
        rec = dataclasses.replace(rec, config={**rec.config, JOB_RESULT: result})
        self.msgs.put(_Msg("record", step.id, recorded=rec))

    def _job_failed(self, rt: PodmanRuntime, c: Change, what: str, *,
                    hint: str) -> JobFailedError:
        tail = self._log_tail(rt, c.name)
        logs = f"; last output: {clip(tail)}" if tail else ""
        return JobFailedError(f"job {c.address} {what}{logs}", hint=hint)

    def _log_tail(self, rt: PodmanRuntime, name: str) -> str:
        with contextlib.suppress(PodmanError):
            out, err = rt.logs(name)
            lines = (out + err).decode("utf-8", "replace").strip().splitlines()
            return " | ".join(line.strip() for line in lines[-_LOG_TAIL_LINES:])
        return ""

    def _await_steady(self, rt: PodmanRuntime, c: Change, cid: str) -> str:
        """Still running (or exited 0) `min_ready` seconds after it started."""
        if self.abort.wait(self.options.min_ready):
            raise _Interrupted
        info = rt.inspect_container(cid)
        if not info.running and info.exit_code != 0:
            raise self._exited(rt, c, info.name or c.name, info.exit_code, info.error)
        return ""

    def _await_healthy(self, rt: PodmanRuntime, c: Change, obj: DesiredObject,
                       cid: str) -> str:
        hc = obj.config.get("healthcheck") or {}
        interval = max(duration_ns(str(hc.get("interval", "2s"))) / 1e9, 0.1)
        limit = health_timeout(obj.config, self.options.health_timeout)
        start = time.monotonic()
        delay = min(self.options.first_check_delay, interval)
        last = ""
        checks = 0
        while True:
            if self.abort.wait(delay):
                raise _Interrupted
            result = rt.run_healthcheck(cid)
            checks += 1
            last = result.output or last
            if not result.running:
                info = rt.inspect_container(cid)
                raise self._exited(rt, c, c.name, info.exit_code, info.error)
            if result.status == "healthy":
                return "healthy"
            waited = time.monotonic() - start
            if result.status == "unhealthy":
                raise HealthTimeoutError(
                    f"container {c.name} is unhealthy after {checks} check(s) "
                    f"in {waited:.1f}s; last health output: {clip(last) or '(none)'}",
                    hint=f"check the service and its healthcheck; `podman logs {c.name}`")
            if waited >= limit:
                raise HealthTimeoutError(
                    f"container {c.name} did not become healthy within "
                    f"{limit:.0f}s (health: {result.status or 'none'}); last health output: "
                    f"{clip(last) or '(none)'}",
                    hint="raise the healthcheck's retries/startPeriod, or fix the service")
            self.msgs.put(_Msg("progress", self.runs[c.key].steps[-1],
                               message=f"waiting to be healthy ({result.status or '...'})"))
            delay = interval

    def _exited(self, rt: PodmanRuntime, c: Change, name: str, code: int,
                oci_error: str) -> ContainerFailedError:
        tail = self._log_tail(rt, name)
        why = f"; {oci_error}" if oci_error else ""
        logs = f"; last output: {clip(tail)}" if tail else ""
        return ContainerFailedError(
            f"container {name} exited with code {code}{why}{logs}",
            hint=f"see `podman logs {name}`; fix the spec and run apply again")


_PORT_IN_USE = re.compile(r":(\d+): bind: address already in use")
_NETWORK_NAMED = re.compile(r"network with name or ID (\S+?):")


def explain_podman_error(rt: PodmanRuntime, exc: PodmanError, config: ContainerConfig,
                         cluster: str) -> PodmanError:
    """The same error with a message and hint naming the real cause (issue 11 C14), or
    `exc` itself when it is none of the causes told apart here.

    Podman's words are kept; what DockLock finds out is added: which host port and who
    holds it, which container holds the name and whose it is, which image or network is
    missing. Looks things up in Podman (and, for a local Podman, the host's listening
    sockets) only after the failure.
    """
    text = exc.message.lower()
    if "address already in use" in text:
        return _port_in_use(rt, exc, config, cluster)
    if "already in use" in text or "already exists" in text:
        return _name_in_use(rt, exc, config)
    if any(n in text for n in ("image not known", "no such image", "image not found")):
        ref = config.image
        return PodmanError(
            f"{exc.message}; image {ref} is not in Podman's local images",
            hint=f"pull, build or load it (`podman pull {ref}`, `podman build -t {ref} "
                 "...`, `podman load -i FILE`) or add an Image resource that builds it, "
                 "then run `docklock apply` again")
    if "network not found" in text or "unable to find network" in text:
        m = _NETWORK_NAMED.search(exc.message)
        net = m.group(1) if m else ", ".join(config.networks) or "(unknown)"
        return PodmanError(
            f"{exc.message}; network {net} does not exist in Podman (removed after the "
            "plan was made?)",
            hint="run `docklock plan` and `docklock apply` again: the plan re-creates a "
                 "network DockLock manages; one it does not manage must be created first "
                 f"(`podman network create {net}`)")
    return exc


def _port_in_use(rt: PodmanRuntime, exc: PodmanError, config: ContainerConfig,
                 cluster: str) -> PodmanError:
    m = _PORT_IN_USE.search(exc.message)
    ports = [p.host for p in config.ports if p.host]
    port = int(m.group(1)) if m else (ports[0] if len(ports) == 1 else None)
    if port is None:
        return PodmanError(f"{exc.message}; one of the host ports "
                           f"{', '.join(map(str, ports))} is already in use",
                           hint="free the port, or publish another one (spec.ports[].host); "
                                "`ss -ltnp` shows who listens")
    owners: list[str] = []
    with contextlib.suppress(PodmanError):
        live = rt.list_live(cluster, unlabelled=True)
        for obj in (*live.objects.values(), *live.others.values()):
            if obj.name == config.name or obj.status != "running":
                continue
            if any(p.split("->", 1)[0].rsplit(":", 1)[-1] == str(port) for p in obj.ports):
                owners.append(f"container {obj.name} ({describe_owner(obj.labels)})")
    if not owners and unix_socket_path(rt.url) is not None:
        # Podman runs here: the holder is a process of this host.
        owners = [f"process {who}" for who in listeners(port)]
    by = f" by {', '.join(owners)}" if owners else ""
    hint = (f"free host port {port} (stop what holds it) or publish another one "
            f"(spec.ports[].host); `ss -ltnp 'sport = :{port}'` shows who listens")
    return PodmanError(f"{exc.message}; host port {port} is already in use{by}", hint=hint)


def _name_in_use(rt: PodmanRuntime, exc: PodmanError, config: ContainerConfig) -> PodmanError:
    name = config.name
    try:
        info = rt.inspect_container(name)
    except PodmanError:
        return PodmanError(f"{exc.message}; another container already has the name {name}",
                           hint=f"`podman ps -a --filter name=^{name}$` shows it; remove or "
                                "rename it, or rename the resource")
    owner = describe_owner(info.labels)
    if not is_managed(info.labels, None):
        hint = (f"it is not DockLock's (no DockLock labels), so DockLock leaves it alone: "
                f"remove or rename it (`podman rm -f {name}`, `podman rename {name} "
                "OTHER`), or rename the resource")
    else:
        hint = ("it belongs to another DockLock workspace: destroy it there, or give this "
                "workspace another cluster name (metadata.name in docklock.yaml) or the "
                "resource another name")
    return PodmanError(f"{exc.message}; container {name} ({short_id(info.id)}) already "
                       f"exists and is {owner}", hint=hint)


def can_rename(runtime: object) -> bool:
    """Whether the runtime offers `rename_container(name, new_name)` (create before
    destroy needs it: the replacement takes the old container's name). Test runtimes
    that wrap PodmanRuntime may hide it to exercise destroy-then-create."""
    return callable(getattr(runtime, "rename_container", None))


def retired_name(name: str, old_id: str) -> str:
    """The name an old container carries while its replacement starts."""
    return f"{name}-old-{old_id.removeprefix('sha256:')[:12]}"


def _remove_image(rt: PodmanRuntime, ref: str) -> None:
    """Untag/remove a built image; one still used by other containers is left alone.

    """
    try:
        rt.remove_image(ref)
    except PodmanError as exc:
        text = exc.message.lower()
        if "in use" not in text and "being used" not in text and not _not_found(exc):
            raise


def _stop_timeout(c: Change) -> int:
    cfg = c.before.config if c.before is not None and c.before.config else None
    if cfg is not None and "stop_timeout" in cfg:
        with contextlib.suppress(TypeError, ValueError):
            return max(0, int(cfg["stop_timeout"]))
    return 10


def _not_found(exc: PodmanError) -> bool:
    return isinstance(exc, PodmanNotFoundError) or "no such" in exc.message.lower()


def execute(
    plan: Plan,
    desired: Mapping[str, DesiredObject],
    *,
    store: StateBackend,
    state: State,
    runtime: PodmanRuntime,
    paths: WorkspacePaths,
    cluster: str,
    conditions: Conditions | None = None,
    options: ApplyOptions | None = None,
    on_event: EventSink | None = None,
    runtime_factory: RuntimeFactory | None = None,
    write_ahead: WriteAhead | None = None,
) -> ApplyResult:
    """Apply `plan` (its changes bound to `desired` by `docklock.plan.bind_desired`).

    The caller holds the state lock through `store` and passes the state the plan was
    checked against. Returns the result; raises only for a broken schedule or Ctrl-C
    (after recording every operation that finished). `write_ahead` records each step's
    intent before it calls Podman (ApplyJournal.intent); if it raises, nothing more
    starts and `ApplyResult.halted` says why.
    """
    # The workspace's identity comes first (issue 11 B7): a never-written state gets
    # its lineage now, and every object apply makes carries it (labels only: no hash
    # changes), so no other workspace ever mistakes them for its own.
    state = store.claim_lineage(state)
    desired = stamp_owner(desired, state.lineage or "", str(paths.root))
    ex = Executor(plan, desired, store=store, state=state, runtime=runtime, paths=paths,
                  cluster=cluster, conditions=conditions or {},
                  options=options or ApplyOptions(), on_event=on_event or _no_events,
                  runtime_factory=runtime_factory, write_ahead=write_ahead)
    try:
        return ex.run()
    finally:
        ex.clients.close()


# ====================================================================== ledger journal


class LedgerLike(Protocol):
    def append(self, type: Any, payload: Mapping[str, Any], *,
               serial: int | None = None) -> Any: ...


class ApplyJournal:
    """Ledger entries for one apply: apply-start; before each step that calls Podman a
    `change` entry with status `pending` (its intent: `intent`, the executor's
    write-ahead hook); one `change` per finished change (done / failed / not-done,
    with what it did in Podman); apply-end. Feed it the events (`journal.on_event`)
    and call `finish(result)`."""

    def __init__(self, ledger: LedgerLike, plan: Plan, *, command: str = "apply") -> None:
        self.ledger = ledger
        self.plan = plan
        self.command = command
        self.serial = plan.serial
        # The Podman id each change found (what a delete or replace removes).
        self._existing = {c.key: c.existing_id or "" for c in plan.changes}

    def start(self) -> None:
        s = self.plan.summary
        self.ledger.append("apply-start", {
            "command": self.command, "cluster": self.plan.cluster,
            "lineage": self.plan.lineage, "plan_serial": self.plan.serial,
            "spec_digest": self.plan.spec_digest, "summary": s.to_dict(),
            "changes": [c.key for c in self.plan.changes if c.is_work],
        }, serial=self.plan.serial)

    def intent(self, event: ApplyEvent) -> None:
        """Write-ahead: record that `event.step` is about to call Podman (raises if the
        ledger cannot take it; the executor then changes nothing more)."""
        if event.type is EventType.OBJECT_MADE:
            self.ledger.append("change", {
                "key": event.key, "address": event.address, "action": event.action,
                "status": "made", "step": event.step, "id": event.id,
            }, serial=event.serial or None)
            return
        self.ledger.append("change", {
            "key": event.key, "address": event.address, "action": event.action,
            "status": "pending", "step": event.step, "phase": event.message,
            "existing_id": self._existing.get(event.key, ""),
        }, serial=event.serial or None)

    def on_event(self, event: ApplyEvent) -> None:
        if event.type not in (EventType.CHANGE_DONE, EventType.CHANGE_FAILED,
                              EventType.CHANGE_SKIPPED):
            return
        status = {EventType.CHANGE_DONE: "done", EventType.CHANGE_FAILED: "failed",
                  EventType.CHANGE_SKIPPED: "not-done"}[event.type]
        self.ledger.append("change", {
            "key": event.key, "address": event.address, "action": event.action,
            "status": status, "id": event.id, "health": event.health,
            "elapsed": round(event.elapsed, 3), "message": event.message,
            "effects": list(event.effects), "existing_id": self._existing.get(event.key, ""),
        }, serial=event.serial or None)

    def finish(self, result: ApplyResult) -> None:
        self.ledger.append("apply-end", {
            "command": self.command, "ok": result.ok, "added": result.added,
            "changed": result.changed, "destroyed": result.destroyed,
            "adopted": result.adopted, "halted": result.halted,
            "failed": [o.key for o in result.failed],
            "not_done": [o.key for o in result.not_done],
            "lineage": result.state.lineage, "serial": result.state.serial,
            "elapsed": round(result.elapsed, 3),
        }, serial=result.state.serial)
