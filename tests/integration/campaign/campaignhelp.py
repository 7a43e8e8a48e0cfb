"""Helpers for the attack campaign (issue 11, "Must show": crash test, disk-full test).

The campaign drives the real `docklock` CLI against the harness's private Podman and
then audits the end state from the outside, with no DockLock code in the loop: Podman's
own event log and container list, the ledger's files read as plain JSON lines, the state
file, `/proc` for processes, and flock for the state lock. Every audit returns a list of
readable problems (not a bare assert), so one failing run reports all that is wrong.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from conftest import PodmanHarness, run_cli

LABEL_CLUSTER = "io.docklock.cluster"
LABEL_ADDRESS = "io.docklock.address"
LABEL_REPLICA = "io.docklock.replica"
ROOT_SOCKET = Path("/run/podman/podman.sock")  # the default URL for root (runtime/podman.py)
# The marker every process the campaign starts carries in its environment (and so does
# anything those processes start, e.g. a private `podman system service`).
TAG_VAR = "DOCKLOCK_CAMPAIGN_TAG"

HEALTH = ('{command: [wget, -q, -O-, "http://127.0.0.1:8080/"], interval: 1s, retries: 3, '
          'timeout: 2s}')
HTTPD = '[httpd, -f, -p, "8080", -h, /www]'


# ---------------------------------------------------------------- the workspace


@dataclass(frozen=True)
class Shape:
    """One version of the campaign's specs; the rounds move between shapes.

    `web` depends on `db` (healthy) but not on the Job: a replaced Job with a replaced
    dependent hits issue 11 item 10 (an apply-schedule cycle) on every apply, which the
    campaign saw on its first run; that item has its own test, and here it would turn
    every later round into an exit-1 no-op instead of a kill.
    """

    web_replicas: int = 2
    web_env: str = "a"
    db_env: str = "a"
    job_tag: str = "a"

    def specs(self, image: str) -> str:
        return f"""\
apiVersion: docklock.io/v1
kind: Network
metadata: {{name: backend}}
---
apiVersion: docklock.io/v1
kind: Job
metadata: {{name: migrate}}
spec:
  image: {image}
  command: [sh, -c, "echo migrate {self.job_tag}"]
  networks: [backend]
  timeout: 60
---
apiVersion: docklock.io/v1
kind: Service
metadata: {{name: db}}
spec:
  image: {image}
  command: {HTTPD}
  stopTimeout: 0
  env: {{GEN: "{self.db_env}"}}
  networks: [backend]
  healthcheck: {HEALTH}
---
apiVersion: docklock.io/v1
kind: Service
metadata: {{name: web}}
spec:
  image: {image}
  command: {HTTPD}
  stopTimeout: 0
  replicas: {self.web_replicas}
  env: {{GEN: "{self.web_env}"}}
  networks: [backend]
  dependsOn: [{{name: db, condition: healthy}}]
  healthcheck: {HEALTH}
"""


def make_workspace(root: Path, cluster: str, specs: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\n"
        f"metadata: {{name: {cluster}}}\nspec: {{specs: [specs], securityLevel: standard}}\n")
    write_specs(root, specs)
    return root


def write_specs(root: Path, specs: str) -> None:
    (root / "specs").mkdir(exist_ok=True)
    (root / "specs" / "app.yaml").write_text(specs)


def docklock_exe() -> str:
    return shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")


# ---------------------------------------------------------------- environments


@dataclass(frozen=True)
class Envs:
    """The two ways the campaign reaches Podman.

    `url`: DOCKLOCK_PODMAN_URL names the harness's service (no private service).
    `private`: no URL and a default socket that does not answer, so DockLock starts its
    own `podman system service`, pointed at the harness's store through storage.conf /
    containers.conf; killing DockLock then tests that this service does not leak.
    """

    tag: str
    url: dict[str, str]
    private: dict[str, str] | None  # None when the host's root socket exists (not ours)


def campaign_envs(harness: PodmanHarness, folder: Path) -> Envs:
    tag = uuid.uuid4().hex
    url = harness.cli_env(**{TAG_VAR: tag})
    real = shutil.which("podman")
    if ROOT_SOCKET.exists() or real is None:
        # A live system socket would be the host's default store: never aim at it.
        return Envs(tag, url, None)
    # DockLock starts `podman system service` from PATH; this `podman` is the real one
    # with the harness's store options in front, exactly as the harness runs it. (A
    # storage.conf in the environment is not enough: the exit command conmon runs when a
    # container stops does not see it, so containers never reach "exited" and a Job's
    # wait hangs until its timeout.)
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "podman"
    shim.write_text("#!/bin/sh\nexec " + " ".join([real, *harness.global_args]) + ' "$@"\n')
    shim.chmod(0o755)
    private = dict(harness.env)
    private.update({"PATH": f"{bin_dir}:{harness.env.get('PATH', os.defpath)}",
                    "NO_COLOR": "1", TAG_VAR: tag})
    private.pop("DOCKLOCK_PODMAN_URL", None)
    return Envs(tag, url, private)


def cli(ws: Path, env: Mapping[str, str], *args: str,
        timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return run_cli([*args, "-C", str(ws)], env=dict(env), timeout=timeout)


def show(done: subprocess.CompletedProcess[str]) -> str:
    return (f"`{' '.join(str(a) for a in done.args[1:])}` exit {done.returncode}\n"
            f"--- stdout\n{done.stdout.strip()}\n--- stderr\n{done.stderr.strip()}")


# ---------------------------------------------------------------- Podman, from outside


@dataclass(frozen=True)
class Live:
    name: str
    id: str
    state: str
    labels: Mapping[str, str]

    @property
    def slot(self) -> tuple[str, str]:
        return (self.labels.get(LABEL_ADDRESS, "?"), self.labels.get(LABEL_REPLICA, "?"))


def live_containers(harness: PodmanHarness, cluster: str) -> list[Live]:
    out = harness.podman("ps", "-a", "--no-trunc", "--filter",
                         f"label={LABEL_CLUSTER}={cluster}", "--format", "json").stdout
    return [Live(c["Names"][0], c["Id"], c["State"], c.get("Labels") or {})
            for c in json.loads(out or "[]")]


def live_networks(harness: PodmanHarness, cluster: str) -> dict[str, str]:
    out = harness.podman("network", "ls", "--filter", f"label={LABEL_CLUSTER}={cluster}",
                         "--format", "{{.Name}} {{.ID}}").stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


@dataclass(frozen=True)
class Event:
    status: str  # create, remove, rename, start, died, ...
    id: str
    name: str
    order: int  # position in Podman's events log (which is chronological)


def container_events(harness: PodmanHarness, cluster: str, since: str) -> list[Event]:
    """Podman's own record of every container event of `cluster` since `since` (RFC 3339).

    Read from the store's events log (events_logger = "file"), so it sees containers that
    were created and removed between two listings too.
    """
    out = harness.podman("events", "--stream=false", "--since", since, "--filter",
                         "type=container", "--format", "json", timeout=120).stdout
    events = []
    for n, line in enumerate(out.splitlines()):
        if not line.strip():
            continue
        ev = json.loads(line)
        if (ev.get("Attributes") or {}).get(LABEL_CLUSTER) != cluster:
            continue
        events.append(Event(str(ev.get("Status", "")), str(ev.get("ID", "")),
                            str(ev.get("Name", "")), n))
    return events


def dump_events(harness: PodmanHarness, cluster: str, since: str, path: Path) -> None:
    """Podman's events of `cluster`, one per line, kept beside the workspace for diagnosis."""
    path.write_text("".join(f"{e.order:6} {e.status:<14} {e.id[:12]} {e.name}\n"
                            for e in container_events(harness, cluster, since)))


# ---------------------------------------------------------------- the workspace's files


@dataclass
class LedgerText:
    """The ledger's entries as plain JSON (no DockLock code), and lines that are not."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: list[str] = field(default_factory=list)
    torn_tail: bool = False


def read_ledger(ws: Path) -> LedgerText:
    """The entries as stored, through the workspace's backend (files or PostgreSQL)."""
    from docklock.backend import ledger_storage
    from docklock.workspace import WorkspacePaths

    out = LedgerText()
    raw = b"".join(ledger_storage(WorkspacePaths(ws)).read_entries(0))
    out.torn_tail = bool(raw) and not raw.endswith(b"\n")
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            out.bad_lines.append(line[:120].decode(errors="replace"))
            continue
        if isinstance(entry, dict):
            out.entries.append(entry)
        else:
            out.bad_lines.append(line[:120].decode(errors="replace"))
    return out


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from strings_in(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from strings_in(v)


# Entries that are not the record of one change: a plan or drift check names objects it
# does not change, and an apply's start/end entries list keys, not what happened to each.
NOT_CHANGES = frozenset({"plan", "drift", "apply-start", "apply-end", "witness",
                         "key-rotation"})


def recorded_ids(ledger: LedgerText) -> set[str]:
    """Every full container id any change-recording ledger entry mentions."""
    found: set[str] = set()
    for entry in ledger.entries:
        if entry.get("type") in NOT_CHANGES:
            continue
        found.update(s for s in strings_in(entry.get("payload")) if len(s) == 64)
    return found


def state_ids(ws: Path) -> dict[str, str]:
    """object key -> recorded Podman id, from the state as stored (state.json's bytes,
    through the workspace's backend)."""
    from docklock.backend import open_state_store
    from docklock.backend.migrate import stored_bytes
    from docklock.workspace import WorkspacePaths

    stored = stored_bytes(open_state_store(WorkspacePaths(ws)))
    if stored is None:
        raise FileNotFoundError("the workspace holds no state")
    data = json.loads(stored)
    out: dict[str, str] = {}
    for res in data.get("resources", {}).values():
        for key, obj in res.get("objects", {}).items():
            out[key] = obj.get("id", "")
    return out


# ---------------------------------------------------------------- processes and the lock


@dataclass(frozen=True)
class Proc:
    pid: int
    argv: tuple[str, ...]

    def __str__(self) -> str:
        return f"pid {self.pid}: {' '.join(self.argv)[:160]}"


def tagged_processes(tag: str) -> list[Proc]:
    """DockLock processes and `podman system service`s started by the campaign (by tag)."""
    needle = f"{TAG_VAR}={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = tuple(a.decode(errors="replace") for a in
                         (entry / "cmdline").read_bytes().split(b"\0") if a)
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle not in environ or not argv:
            continue
        joined = " ".join(argv)
        is_docklock = any(Path(a).name == "docklock" for a in argv[:2])
        is_service = Path(argv[0]).name == "podman" and "system service" in joined
        if is_docklock or is_service:
            found.append(Proc(int(entry.name), argv))
    return found


def lock_problem(ws: Path) -> str:
    """'' if nobody holds the state lock, else who does (read from the lock file)."""
    path = ws / ".docklock" / "state.lock"
    if not path.exists():
        return ""
    with path.open("rb") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return f"the state lock is held: {path.read_text(errors='replace').strip()}"
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return ""


def stop_tagged(tag: str) -> list[Proc]:
    """Kill what the campaign leaked (after recording it), so the run leaves nothing."""
    left = tagged_processes(tag)
    for proc in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, 9)
    return left


# ---------------------------------------------------------------- the audit


def audit(harness: PodmanHarness, ws: Path, cluster: str, env: Mapping[str, str], *,
          since: str, tag: str, expect_serviced: bool = True) -> list[str]:
    """Everything issue 11 requires of the end state, as a list of problems ('' = none).

    converged (plan --detailed-exitcode exits 0), no duplicate or retired containers,
    no orphans either way, `ledger verify` OK, every container Podman created for this
    workspace since `since` named by a change entry of the ledger, each removal followed
    by a ledger entry for its key, no leaked processes, no held state lock.
    """
    problems: list[str] = []
    plan = cli(ws, env, "plan", "--detailed-exitcode")
    if plan.returncode != 0:
        problems.append("not converged: " + show(plan))
    live = live_containers(harness, cluster)
    slots: dict[tuple[str, str], list[str]] = {}
    for c in live:
        slots.setdefault(c.slot, []).append(c.name)
        if "-old-" in c.name:
            problems.append(f"retired container left behind: {c.name} ({c.state})")
    problems += [f"duplicate containers for {addr} replica {rep}: {names}"
                 for (addr, rep), names in sorted(slots.items()) if len(names) > 1]
    try:
        recorded = state_ids(ws)
    except (OSError, ValueError) as exc:
        problems.append(f"state.json unreadable: {exc}")
        recorded = {}
    rec_containers = {k.removeprefix("container:"): v for k, v in recorded.items()
                      if k.startswith("container:")}
    live_by_id = {c.id: c for c in live}
    problems += [f"orphan: {c.name} ({c.id[:12]}, {c.state}) is in Podman, not in state"
                 for c in live if c.id not in set(rec_containers.values())]
    problems += [f"ghost: state records {name} ({cid[:12]}) that Podman does not have"
                 for name, cid in sorted(rec_containers.items()) if cid not in live_by_id]
    nets = live_networks(harness, cluster)
    problems += [f"ghost: state records {k} that Podman does not have"
                 for k in recorded if k.startswith("network:")
                 and k.removeprefix("network:") not in nets]
    verify = cli(ws, env, "ledger", "verify")
    if verify.returncode != 0:
        problems.append("ledger verify failed: " + show(verify))
    problems += unrecorded_changes(harness, ws, cluster, since=since)
    leaked = tagged_processes(tag)
    problems += [f"leaked process: {p}" for p in leaked]
    held = lock_problem(ws)
    if held:
        problems.append(held)
    return problems


def unrecorded_changes(harness: PodmanHarness, ws: Path, cluster: str, *,
                       since: str, after_seq: int = -1) -> list[str]:
    """Podman changes of `cluster` since `since` that the ledger does not record.

    A created container must have its id in a change-recording entry. A removed one must
    have an entry for its key (`container:<name>`, the retired `-old-` suffix dropped)
    after the first entry naming its id (or after `after_seq` when no entry names it).
    """
    ledger = read_ledger(ws)
    problems = [f"ledger line is not JSON: {line!r}" for line in ledger.bad_lines]
    if ledger.torn_tail:
        problems.append("ledger ends in a torn line (no final newline)")
    ids = recorded_ids(ledger)
    events = container_events(harness, cluster, since)
    created = {e.id: e for e in events if e.status == "create"}
    removed = {e.id: e for e in events if e.status == "remove"}
    mentioned = {s for x in ledger.entries if x.get("type") not in NOT_CHANGES
                 for s in strings_in(x.get("payload"))}
    for cid, e in sorted(created.items(), key=lambda kv: kv[1].order):
        if cid in ids:
            continue
        # Say how close the ledger came: a retired name carries a 12-digit id prefix.
        near = sorted(m for m in mentioned if m.endswith(f"-old-{cid[:12]}"))
        how = (f"named only by the retired key {near[0]}, never by its id" if near
               else "in no ledger change entry")
        problems.append(f"unrecorded create: {e.name} ({cid[:12]}) is {how}")
    for cid, e in sorted(removed.items(), key=lambda kv: kv[1].order):
        # A retired container is removed under its own key (`<name>-old-<id12>`); a
        # replaced one under its name's key.
        keys = {"container:" + e.name, "container:" + e.name.split("-old-")[0]}
        first = next((int(x.get("seq", -1)) for x in ledger.entries
                      if x.get("type") not in NOT_CHANGES
                      and cid in set(strings_in(x.get("payload")))), after_seq)
        later = [x for x in ledger.entries if int(x.get("seq", -1)) > first
                 and x.get("type") not in NOT_CHANGES
                 and keys & set(strings_in(x.get("payload")))]
        # A change that found the container (its `existing_id`) and says it removed it
        # records both at once: an apply killed before it could name what it made leaves
        # that container to the next apply, which names it only when it replaces it.
        later += [x for x in ledger.entries if x.get("type") not in NOT_CHANGES
                  and isinstance(x.get("payload"), dict)
                  and x["payload"].get("existing_id") == cid
                  and "removed" in x["payload"].get("effects", ())]
        if not later:
            problems.append(f"unrecorded remove: {e.name} ({cid[:12]}) has no ledger change "
                            f"entry for {' or '.join(sorted(keys))} after its creation")
    return problems


def changes_without_intent(harness: PodmanHarness, ws: Path, cluster: str, *,
                           since: str, skip: int, after_seq: int) -> list[str]:
    """Containers Podman created or removed (its events of `cluster` since `since`, less
    the first `skip`) with no change entry for their key among the ledger entries after
    `after_seq` (the write-ahead rule of item 19: the ledger names each change before
    Podman makes it, so this holds even when the apply failed half-way)."""
    ledger = read_ledger(ws)
    keys: set[str] = set()
    for entry in ledger.entries:
        if int(entry.get("seq", -1)) > after_seq and entry.get("type") not in NOT_CHANGES:
            keys.update(strings_in(entry.get("payload")))
    problems = []
    for e in container_events(harness, cluster, since)[skip:]:
        if e.status not in ("create", "remove"):
            continue
        names = {"container:" + e.name, "container:" + e.name.split("-old-")[0]}
        if not names & keys:
            problems.append(f"Podman {e.status}d {e.name} ({e.id[:12]}) and the ledger has no "
                            f"change entry for {' or '.join(sorted(names))} in this apply")
    return problems


def last_seq(ws: Path) -> int:
    entries = read_ledger(ws).entries
    return max((int(e.get("seq", -1)) for e in entries), default=-1)


# ---------------------------------------------------------------- a watched apply


class Watched:
    """`docklock apply --auto-approve` as a child process whose output is read as it comes,
    so the campaign can aim a kill at a phase: before the plan is printed (loading,
    locking, refreshing, the ledger's first entries) or after it (the Podman changes)."""

    def __init__(self, ws: Path, env: Mapping[str, str]) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen([docklock_exe(), "apply", "--auto-approve", "-C", str(ws)],
                                     env=dict(env), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.out: list[str] = []
        self.err: list[str] = []
        self.planned = threading.Event()
        self.plan_at = 0.0
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.out),
                                          daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, self.err),
                                          daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str], into: list[str]) -> None:
        for line in stream:
            into.append(line)
            if line.startswith(("Plan:", "No changes")) and not self.planned.is_set():
                self.plan_at = time.monotonic() - self.started
                self.planned.set()
        self.planned.set()  # the output ended (the process exited) without a plan line

    def kill_at(self, delay: float) -> bool:
        """SIGKILL the apply `delay` s after its start (or now); False if it ended first."""
        try:
            self.proc.wait(timeout=max(0.0, self.started + delay - time.monotonic()))
            return False
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=60)
            return self.proc.returncode == -signal.SIGKILL

    def finish(self, timeout: float = 300) -> tuple[int, str, str]:
        self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=30)
        return self.proc.returncode, "".join(self.out), "".join(self.err)
