"""The daily verbs on one Service or Job: `logs`, `exec` and `restart` (issue 12 item 4).

Each takes a `Context` and a target as an operator types it: a bare name (`api`, a
Service or else a Job of that name in the namespace, `default` unless given),
`Job/report`, or a full address `Service/default/api`. The target's containers are the
live containers labelled with its address (one list call), matched to the replicas the
specs render; `--replica N` picks one (1-based, as in the container names).

- `logs` streams each container's stdout and stderr apart (LogLine events); several
  replicas are interleaved by Podman's timestamps, or as they come when following.
- `exec` runs a command in one replica (default 1) and returns its exit code. Refused
  for a container in a deterministic cage: its run is a witnessed, reproducible
  computation, and a command run inside it would be an unrecorded input. The live
  container is judged too (its cage label, else its inspect), so a spec edited but not
  applied cannot open a deterministic container; one whose level cannot be told is
  refused until apply.
- `restart` is a rolling restart: one replica at a time, stopped (its stopTimeout) and
  started again in place (same container, same id: state does not change), and it
  must become healthy (its healthcheck passes; without one: still running after a
  moment) before the next. It takes the state lock like apply, and writes `change`
  ledger entries (action `restart`) per replica: its intent (status `pending`) before
  it is stopped, its outcome after; then a signed checkpoint. The first
  replica that does not become healthy stops the roll (ADR 0017).

Nothing here prints: results are frozen dataclasses, progress goes to `on_event`.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from docklock.engine.context import Context
from docklock.errors import DockLockError

if TYPE_CHECKING:
    from docklock.load import Workspace
    from docklock.model import Address, Resource
    from docklock.objects import DesiredObject, LiveObject
    from docklock.runtime.podman import PodmanRuntime


class VerbError(DockLockError):
    """A daily verb cannot run as asked: unknown target, replica out of range, no
    container, exec refused by the cage."""


class RestartFailedError(VerbError):
    """A rolling restart stopped: a replica did not become healthy."""


class ExecInterrupted(KeyboardInterrupt):
    """Ctrl-C while an exec ran through the API: the command may still be running in
    the container (Podman's API cannot stop an exec session)."""

    def __init__(self, container: str, address: str) -> None:
        super().__init__(container)
        self.container = container
        self.address = address


# The label `docklock run` puts on a Job's container (docklock.cage.jobs.LABEL_JOB_RUN;
# not imported: that module pulls in the cage code).
LABEL_JOB_RUN = "io.docklock.job-run"
# The built-in cage levels and aliases a live container's cage label may name (as in
# docklock.cage.levels; not imported: that module pulls in the seccomp code).
_LEVELS: Mapping[str, str] = {"standard": "standard", "hardened": "hardened",
                              "deterministic": "deterministic",
                              "military-grade": "deterministic"}
# What the deterministic level sets on every container it cages (docklock.cage.levels:
# DETERMINISTIC_HOSTNAME, SEED_ENV; network_none) and no other level does.
_DETERMINISTIC_HOSTNAME = "docklock-cage"
_SEED_ENV = "DOCKLOCK_SEED"


# ---------------------------------------------------------------- targets


@dataclass(frozen=True)
class Replica:
    """One container of a target: its replica number (None for a Job's run-once
    container), its Podman name, what the specs render for it, what Podman has."""

    replica: int | None
    name: str
    desired: DesiredObject | None = None
    live: LiveObject | None = None
    run_id: str = ""  # a `docklock run` container (docklock-job-NS-NAME-RUNID)

    @property
    def label(self) -> str:
        """`api-1` (compose's prefix): the resource name and the replica number; a
        Job's run-once container or `docklock run` container: the Job's name."""
        if self.desired is not None and self.desired.address.kind == "Job":
            return self.desired.address.name
        if self.run_id and self.live is not None and self.live.address:
            return self.live.address.rsplit("/", 1)[-1]
        return self.name if self.replica is None else f"{self._base}-{self.replica}"

    @property
    def _base(self) -> str:
        if self.desired is not None:
            return self.desired.address.name
        return self.name

    @property
    def cage_level(self) -> str:
        """The level the specs render for this container ("" without a desired one)."""
        cage = (self.desired.config.get("cage") if self.desired is not None else None) or {}
        return str(cage.get("level", "")) if isinstance(cage, Mapping) else ""

    @property
    def live_cage_level(self) -> str:
        """The level the live container's cage label names, when it names a built-in
        level or alias ("" for a CageProfile's name or no label: the label alone does
        not say which level such a cage extends)."""
        from docklock.objects import LABEL_CAGE

        if self.live is None:
            return ""
        name = self.live.labels.get(LABEL_CAGE, "")
        return _LEVELS.get(name, "")

    @property
    def matches_desired(self) -> bool:
        """Whether the live container is the one the specs render (same config hash,
        which covers the cage): then the desired level is the live one."""
        return (self.desired is not None and self.live is not None
                and bool(self.live.config_hash)
                and self.live.config_hash == self.desired.config_hash)

    @property
    def cage_name(self) -> str:
        cage = (self.desired.config.get("cage") if self.desired is not None else None) or {}
        return str(cage.get("name", "")) if isinstance(cage, Mapping) else ""


@dataclass(frozen=True)
class Target:
    address: Address
    resource: Resource | None
    replicas: tuple[Replica, ...]  # every desired container, then live extras

    @property
    def is_job(self) -> bool:
        return self.address.kind == "Job"

    def live(self) -> tuple[Replica, ...]:
        return tuple(r for r in self.replicas if r.live is not None)

    def pick(self, replica: int | None, *, default: int | None = None) -> tuple[Replica, ...]:
        """The containers the verb acts on: all live ones, or replica N (1-based)."""
        wanted = replica if replica is not None else default
        live = self.live()
        if not live:
            raise VerbError(f"{self.address} has no containers (it was never applied or "
                            "they were removed)", hint="run `docklock apply`, then try again")
        if wanted is None:
            return live
        numbers = sorted({r.replica for r in self.replicas if r.replica is not None})
        if self.is_job and not numbers:
            if wanted == 1:
                return live[:1]
            numbers = [1]
        if wanted not in numbers:
            span = f"1..{max(numbers)}" if numbers else "none"
            raise VerbError(f"{self.address} has no replica {wanted} (replicas: {span})",
                            hint=f"pick --replica from {span}")
        chosen = tuple(r for r in live if r.replica == wanted)
        if self.is_job and wanted == 1:
            # A Job's container is apply's run-once one or a `docklock run` one, the
            # running one first (what exec can enter).
            chosen = tuple(sorted((r for r in live if r.replica == 1 or r.run_id),
                                  key=lambda r: r.live is None or r.live.status != "running"))
        if not chosen:
            raise VerbError(f"replica {wanted} of {self.address} has no container",
                            hint="run `docklock apply` to create it")
        return chosen


def parse_target(text: str, namespace: str | None = None) -> tuple[Address | None, str]:
    """(address, "") for `Kind/ns/name` or `Kind/name`, (None, name) for a bare name."""
    from docklock.model import Address

    if "/" not in text:
        if not text:
            raise VerbError("name a Service or Job", hint="e.g. `api` or `Service/default/api`")
        return None, text
    try:
        address = Address.parse(text)
    except ValueError as exc:
        raise VerbError(str(exc), hint="name it like `api`, `Job/report` or "
                                       "`Service/default/api`") from exc
    if namespace is not None and text.count("/") == 1:
        address = Address(address.kind, namespace, address.name)
    return address, ""


def resolve_address(resources: Sequence[Resource], known: Sequence[Address], text: str, *,
                    namespace: str | None = None,
                    kinds: Sequence[str] = ("Service", "Job")) -> Address:
    """The address an operator means by `text` (pure).

    A bare name is a Service of that name in `namespace` (default `default`), else a Job
    of that name. `known` are addresses from state/live the specs no longer name."""
    from docklock.model import Address

    address, bare = parse_target(text, namespace)
    every = {r.address for r in resources} | set(known)
    if address is not None:
        if address.kind not in kinds:
            raise VerbError(f"{address} is a {address.kind}: this command takes "
                            + " or ".join(kinds), hint="name a " + " or ".join(kinds))
        if address in every:
            return address
        raise VerbError(f"no {address} in the workspace", hint=_known_hint(every, kinds))
    ns = namespace or "default"
    for kind in kinds:
        candidate = Address(kind, ns, bare)
        if candidate in every:
            return candidate
    raise VerbError(f"no {' or '.join(kinds)} named {bare!r} in namespace {ns}",
                    hint=_known_hint(every, kinds))


def _known_hint(every: set[Address], kinds: Sequence[str]) -> str:
    names = sorted(str(a) for a in every if a.kind in kinds)
    if not names:
        return "the workspace has none: check the specs"
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f"known: {shown}"


def build_target(address: Address, resource: Resource | None,
                 desired: Sequence[DesiredObject], live: Sequence[LiveObject]) -> Target:
    """Match live containers (labelled with `address`) to the rendered ones (pure)."""
    from docklock.objects import LABEL_ADDRESS, LABEL_REPLICA, ObjectKind

    want = sorted((o for o in desired
                   if o.address == address and o.kind is ObjectKind.CONTAINER),
                  key=lambda o: (o.replica or 0, o.name))
    mine = {lv.name: lv for lv in live
            if lv.kind is ObjectKind.CONTAINER
            and (lv.address or lv.labels.get(LABEL_ADDRESS, "")) == str(address)}
    replicas = [Replica(o.replica, o.name, o, mine.pop(o.name, None)) for o in want]
    for lv in sorted(mine.values(), key=lambda x: x.name):
        raw = lv.labels.get(LABEL_REPLICA, "")
        replicas.append(Replica(int(raw) if raw.isdigit() else None, lv.name, None, lv,
                                lv.labels.get(LABEL_JOB_RUN, "")))
    return Target(address, resource, tuple(replicas))


@dataclass(frozen=True)
class _Loaded:
    workspace: Workspace
    desired: tuple[DesiredObject, ...]


def _load(ctx: Context) -> _Loaded:
    from docklock.backend import open_state_store
    from docklock.overrides import overlay
    from docklock.render import render_workspace

    ws = ctx.load()
    # `docklock deploy` overrides (ADR 0014): the replicas that should run.
    ws = overlay(ws, open_state_store(ws.paths).read(cluster=ws.cluster_name).overrides)
    return _Loaded(ws, render_workspace(ws).objects)


def _target(runtime: PodmanRuntime, loaded: _Loaded, text: str, namespace: str | None,
            *, state: Any = None, kinds: Sequence[str] = ("Service", "Job")) -> Target:
    from docklock.backend import open_state_store
    from docklock.model import Address
    from docklock.objects import LABEL_ADDRESS
    from docklock.plan import owned_view

    ws = loaded.workspace
    if state is None:
        state = open_state_store(ws.paths).read(cluster=ws.cluster_name)
    live = owned_view(runtime.list_live(ws.cluster_name), state)
    known: list[Address] = []
    for obj in live.objects.values():
        raw = obj.address or obj.labels.get(LABEL_ADDRESS, "")
        try:
            known.append(Address.parse(raw))
        except ValueError:
            continue
    known.extend(Address.parse(a) for a in state.resources if a.count("/") == 2)
    address = resolve_address(ws.resources, known, text, namespace=namespace, kinds=kinds)
    resource = next((r for r in ws.resources if r.address == address), None)
    return build_target(address, resource, loaded.desired, tuple(live.objects.values()))


# ---------------------------------------------------------------- logs


@dataclass(frozen=True)
class LogLine:
    """One line a container wrote: `label` is compose's prefix (`api-1`)."""

    label: str
    container: str
    replica: int | None
    stream: int  # 1 stdout, 2 stderr
    data: bytes
    time: str = ""


@dataclass(frozen=True)
class LogsOptions:
    replica: int | None = None
    follow: bool = False
    tail: int | None = None
    timestamps: bool = False
    namespace: str | None = None

    def __post_init__(self) -> None:
        if self.tail is not None and self.tail < 0:
            raise VerbError(f"--tail must be 0 or more (got {self.tail})",
                            hint="pass --tail N with N >= 0")
        if self.replica is not None and self.replica < 1:
            raise VerbError(f"--replica must be 1 or more (got {self.replica})",
                            hint="replicas are numbered from 1")


@dataclass(frozen=True)
class LogsResult:
    address: str
    containers: tuple[str, ...]
    lines: int


def logs(ctx: Context, target: str, options: LogsOptions = LogsOptions(), *,
         on_line: Callable[[LogLine], None]) -> LogsResult:
    """Stream the target's logs to `on_line`; returns when every stream ended (with
    `follow`: when the containers stopped, or on KeyboardInterrupt from the caller)."""
    from docklock.runtime.verbs import stream_logs

    loaded = _load(ctx)
    with ctx.connect(loaded.workspace) as runtime:
        tgt = _target(runtime, loaded, target, options.namespace)
        chosen = tgt.pick(options.replica)

        def read(rt: PodmanRuntime, rep: Replica) -> Iterator[LogLine]:
            for chunk in stream_logs(rt, rep.name, follow=options.follow,
                                     tail=options.tail, timestamps=True):
                yield LogLine(rep.label, rep.name, rep.replica, chunk.stream, chunk.data,
                              chunk.time)

        count = 0
        if options.follow and len(chosen) > 1:
            count = _follow_all(chosen, read, on_line, runtime)
        elif options.follow:  # one container: straight through, as it comes
            for line in read(runtime, chosen[0]):
                on_line(line)
                count += 1
        else:
            merged = [line for rep in chosen for line in read(runtime, rep)]
            # Interleave by Podman's timestamps (stable: one container's order stays).
            for line in sorted(merged, key=lambda x: x.time):
                on_line(line)
                count += 1
    return LogsResult(str(tgt.address), tuple(r.name for r in chosen), count)


_DONE = object()


def _follow_all(chosen: Sequence[Replica],
                read: Callable[[PodmanRuntime, Replica], Iterator[LogLine]],
                on_line: Callable[[LogLine], None], runtime: PodmanRuntime) -> int:
    """Follow several containers at once: one reader thread each, on its own connection,
    lines handed to `on_line` in this thread as they arrive."""
    from docklock.runtime.podman import PodmanRuntime

    lines: queue.Queue[Any] = queue.Queue()
    errors: list[BaseException] = []

    def worker(rep: Replica) -> None:
        try:
            with PodmanRuntime(runtime.url, source=f"{runtime.source} (logs)") as rt:
                for line in read(rt, rep):
                    lines.put(line)
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)
        finally:
            lines.put(_DONE)

    threads = [threading.Thread(target=worker, args=(rep,), daemon=True) for rep in chosen]
    for t in threads:
        t.start()
    running, count = len(threads), 0
    while running:
        try:
            item = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if item is _DONE:
            running -= 1
            continue
        on_line(item)
        count += 1
    if errors:
        raise errors[0]
    return count


# ---------------------------------------------------------------- exec


@dataclass(frozen=True)
class ExecOptions:
    replica: int | None = None
    interactive: bool = False
    tty: bool = False
    namespace: str | None = None


@dataclass(frozen=True)
class ExecResult:
    address: str
    container: str
    exit_code: int


def exec_command(ctx: Context, target: str, command: Sequence[str],
                 options: ExecOptions = ExecOptions(), *,
                 on_output: Callable[[int, bytes], None] | None = None) -> ExecResult:
    """Run `command` in one replica (default 1); its exit code. Without -i/-t the
    output goes to `on_output(stream, data)`; with them the command has the terminal."""
    from docklock.runtime.verbs import exec_api, exec_interactive, inspect_raw

    if not command:
        raise VerbError("name the command to run after --",
                        hint="e.g. `docklock exec api -- ls /`")
    loaded = _load(ctx)
    with ctx.connect(loaded.workspace) as runtime:
        tgt = _target(runtime, loaded, target, options.namespace)
        rep = tgt.pick(options.replica, default=1)[0]
        assert rep.live is not None
        name = rep.name

        def inspect() -> Mapping[str, Any]:
            try:
                return inspect_raw(runtime, name)
            except DockLockError:
                return {}

        refuse_exec(tgt, rep, inspect)
        if rep.live.status != "running":
            raise VerbError(f"container {rep.name} of {tgt.address} is not running "
                            f"(status {rep.live.status or 'unknown'})",
                            hint="`docklock status` shows why; `docklock logs` its output")
        if options.interactive or options.tty:
            outcome = exec_interactive(runtime, rep.name, command,
                                       interactive=options.interactive, tty=options.tty)
        else:
            try:
                outcome = exec_api(runtime, rep.name, command,
                                   on_output=on_output or (lambda _s, _d: None))
            except KeyboardInterrupt as exc:
                raise ExecInterrupted(rep.name, str(tgt.address)) from exc
    return ExecResult(str(tgt.address), rep.name, outcome.exit_code)


def refuse_exec(target: Target, rep: Replica,
                inspect: Callable[[], Mapping[str, Any]] | None = None) -> None:
    """VerbError when the replica's cage admits no exec, or when its level cannot be
    established (pure apart from `inspect`, which returns the live container's inspect
    document and is called only when the specs and the label cannot tell).

    Refused when the specs OR the live container say deterministic. The live container
    decides on its own when it is not the one the specs render (no desired entry, e.g.
    replicas lowered, or another config hash, e.g. the cage edited): its cage label
    when it names a level, else its inspect (the deterministic level's marks: network
    none, the cage hostname, the seed env). Neither: refused, apply first."""
    levels = {rep.cage_level, rep.live_cage_level}
    if "deterministic" not in levels and rep.live is not None and not rep.matches_desired \
            and not rep.live_cage_level:
        raw = inspect() if inspect is not None else {}
        marked = deterministic_marks(raw)
        if marked is None:
            raise VerbError(
                f"exec into {target.address} is refused: container {rep.name} is not the "
                "one the specs render, and its cage level cannot be established",
                hint="run `docklock apply` first, then exec")
        if marked:
            levels.add("deterministic")
    if "deterministic" in levels:
        cage = rep.cage_name if rep.cage_level == "deterministic" else ""
        cage = cage or "deterministic"
        raise VerbError(
            f"exec into {target.address} is refused: it runs in the {cage} cage "
            "(deterministic), whose run is witnessed and must stay reproducible",
            hint="read its output with `docklock logs`, check it with `docklock verify`; "
                 "to debug, run the image yourself outside DockLock")


def deterministic_marks(raw: Mapping[str, Any]) -> bool | None:
    """From a container's inspect: True if it carries a mark of the deterministic level
    (network none, the cage hostname, the seed env), False if it cannot be one (it has
    a network: every deterministic cage has none), None if the document does not say
    (pure)."""
    config = raw.get("Config") or {}
    host = raw.get("HostConfig") or {}
    if not isinstance(config, Mapping) or not isinstance(host, Mapping):
        return None
    env = config.get("Env") or ()
    mode = str(host.get("NetworkMode") or "")
    if (mode == "none" or config.get("Hostname") == _DETERMINISTIC_HOSTNAME
            or any(str(e).startswith(_SEED_ENV + "=") for e in env)):
        return True
    return False if mode else None


# ---------------------------------------------------------------- restart


@dataclass(frozen=True)
class RestartOptions:
    replica: int | None = None
    namespace: str | None = None
    lock_timeout: float = 0.0
    health_timeout: float | None = None  # None: derived from the healthcheck
    min_ready: float = 1.0


@dataclass(frozen=True)
class RestartEvent:
    """`restarting` before a replica is stopped; `done` / `failed` once it settled."""

    phase: str  # restarting | done | failed
    address: str
    container: str
    replica: int | None
    health: str = ""
    message: str = ""
    elapsed: float = 0.0


@dataclass(frozen=True)
class ReplicaRestart:
    container: str
    replica: int | None
    id: str
    ok: bool
    health: str
    message: str
    elapsed: float
    ledger_seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"container": self.container, "replica": self.replica, "id": self.id,
                "ok": self.ok, "health": self.health, "message": self.message,
                "elapsed": round(self.elapsed, 3), "ledger_seq": self.ledger_seq}


@dataclass(frozen=True)
class RestartResult:
    address: str
    restarted: tuple[ReplicaRestart, ...]
    skipped: tuple[str, ...] = ()  # containers not reached because the roll stopped
    ledger_problem: str | None = None

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.restarted) and not self.skipped

    @property
    def failed(self) -> ReplicaRestart | None:
        return next((r for r in self.restarted if not r.ok), None)

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "ok": self.ok,
                "restarted": [r.to_dict() for r in self.restarted],
                "skipped": list(self.skipped), "ledger_problem": self.ledger_problem}


def restart(ctx: Context, target: str, options: RestartOptions = RestartOptions(), *,
            on_event: Callable[[RestartEvent], None] | None = None) -> RestartResult:
    """Rolling, health-gated restart of a Service's replicas (see the module doc)."""
    from docklock.apply import health_timeout
    from docklock.backend import open_state_store
    from docklock.ledger import Ledger, ensure_keys
    from docklock.runtime.verbs import restart_container, wait_healthy
    from docklock.units import duration_ns

    emit = on_event or (lambda _e: None)
    store = open_state_store(ctx.paths)
    with store.lock(command="docklock restart", timeout=options.lock_timeout):
        loaded = _load(ctx)
        ws = loaded.workspace
        state = store.read(cluster=ws.cluster_name)
        with ctx.connect(ws) as runtime:
            tgt = _target(runtime, loaded, target, options.namespace, state=state)
            if tgt.is_job:
                raise VerbError(f"{tgt.address} is a Job: it runs once and is not restarted",
                                hint=f"run it again with `docklock run {tgt.address}`")
            chosen = tgt.pick(options.replica)
            # The key and the ledger first: if it cannot record, nothing is restarted.
            signer = ensure_keys(ctx.paths)
            ledger = Ledger.open(ctx.paths, ws.cluster_name, signer=signer)
            done: list[ReplicaRestart] = []
            problem: str | None = None
            try:
                for i, rep in enumerate(chosen):
                    config: Mapping[str, Any] = (rep.desired.config if rep.desired is not None
                                                 else {})
                    emit(RestartEvent("restarting", str(tgt.address), rep.name, rep.replica))
                    started = time.monotonic()
                    hc = config.get("healthcheck") or {}
                    interval = max(duration_ns(str(hc.get("interval", "2s"))) / 1e9, 0.1)
                    limit = health_timeout(config, options.health_timeout)
                    key = rep.desired.key if rep.desired else f"container:{rep.name}"
                    existing = rep.live.id if rep.live else ""
                    # Write-ahead, as apply: the intent is recorded before Podman is
                    # touched (a ledger that cannot take it stops the roll here).
                    ledger.append("change", {
                        "command": "restart", "key": key, "address": str(tgt.address),
                        "action": "restart", "status": "pending", "phase": "restarting",
                        "existing_id": existing, "replica": rep.replica},
                        serial=state.serial or None)
                    try:
                        cid = restart_container(runtime, rep.name, stop_timeout=int(
                            config.get("stop_timeout", 10)))
                        settled = wait_healthy(runtime, rep.name, has_healthcheck=bool(hc),
                                               interval=interval, limit=limit,
                                               min_ready=options.min_ready)
                        ok, health, message = settled.ok, settled.health, settled.message
                    except DockLockError as exc:
                        cid = rep.live.id if rep.live is not None else ""
                        ok, health, message = False, "", exc.message
                    elapsed = time.monotonic() - started
                    entry = ledger.append("change", {
                        "command": "restart", "key": key, "address": str(tgt.address),
                        "action": "restart", "status": "done" if ok else "failed",
                        "id": cid, "existing_id": existing,
                        "replica": rep.replica, "health": health, "message": message,
                        "elapsed": round(elapsed, 3)}, serial=state.serial or None)
                    result = ReplicaRestart(rep.name, rep.replica, cid, ok, health, message,
                                            elapsed, entry.seq)
                    done.append(result)
                    emit(RestartEvent("done" if ok else "failed", str(tgt.address), rep.name,
                                      rep.replica, health, message, elapsed))
                    if not ok:
                        skipped = tuple(r.name for r in chosen[i + 1:])
                        break
                else:
                    skipped = ()
            finally:
                try:
                    ledger.checkpoint(signer)
                except DockLockError as exc:
                    problem = exc.message
                ledger.close()
    return RestartResult(str(tgt.address), tuple(done), skipped, problem)


__all__ = ["LABEL_JOB_RUN", "ExecInterrupted", "ExecOptions", "ExecResult", "LogLine",
           "LogsOptions", "LogsResult", "Replica", "ReplicaRestart", "RestartEvent",
           "RestartFailedError", "RestartOptions", "RestartResult", "Target", "VerbError",
           "build_target", "deterministic_marks", "exec_command", "logs", "parse_target",
           "refuse_exec", "resolve_address", "restart"]
