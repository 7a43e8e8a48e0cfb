"""`docklock describe ADDRESS`: everything about one resource in one place, like
kubectl describe (issue 12 item 4).

The spec (and the file:line it comes from), the objects it renders to (key fields of
each container, network, volume), the live state of each replica (one list call, one
inspect per container), the cage (level, seccomp, capabilities, read-only, limits),
and the last N ledger entries that name the address or one of its objects.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from docklock.engine.context import Context
from docklock.errors import DockLockError

if TYPE_CHECKING:
    from docklock.objects import DesiredObject

DESCRIBE_FORMAT = 1
SENSITIVE_MASK = "(sensitive)"  # as docklock.load.schema.SENSITIVE_MASK and plans
ALL_KINDS = ("Service", "Job", "Network", "Volume", "Image", "CageProfile", "Policy")
# Container config fields describe shows (the rest is in `docklock plan --format json`).
_CONTAINER_FIELDS = ("image", "command", "entrypoint", "env", "ports", "networks", "mounts",
                     "healthcheck", "user", "workdir", "restart", "stop_timeout", "cpus",
                     "memory", "pids_limit")


@dataclass(frozen=True)
class Description:
    address: str
    kind: str
    namespace: str
    name: str
    source: str  # spec file:line, "" if the specs no longer name it
    labels: Mapping[str, str] = field(default_factory=dict)
    spec: Mapping[str, Any] | None = None
    objects: tuple[Mapping[str, Any], ...] = ()
    replicas: tuple[Mapping[str, Any], ...] = ()
    cage: Mapping[str, Any] | None = None
    entries: tuple[Mapping[str, Any], ...] = ()
    ledger_problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"format": DESCRIBE_FORMAT, "address": self.address, "kind": self.kind,
                "namespace": self.namespace, "name": self.name, "source": self.source,
                "labels": dict(self.labels), "spec": self.spec,
                "objects": [dict(o) for o in self.objects],
                "replicas": [dict(r) for r in self.replicas],
                "cage": None if self.cage is None else dict(self.cage),
                "entries": [dict(e) for e in self.entries],
                "ledger_problem": self.ledger_problem}


def describe(ctx: Context, target: str, *, entries: int = 5,
             namespace: str | None = None) -> Description:
    """Describe the resource `target` names (see docklock.engine.verbs for names)."""
    from docklock.engine.verbs import VerbError, _load, _target
    from docklock.runtime.verbs import inspect_raw

    if entries < 0:
        raise VerbError(f"--entries must be 0 or more (got {entries})",
                        hint="pass --entries N with N >= 0")
    loaded = _load(ctx)
    ws = loaded.workspace
    with ctx.connect(ws) as runtime:
        tgt = _target(runtime, loaded, target, namespace, kinds=ALL_KINDS)
        replicas: list[dict[str, Any]] = []
        for rep in tgt.replicas:
            row: dict[str, Any] = {"name": rep.name, "replica": rep.replica, "id": "",
                                   "status": "missing", "health": "", "started": "",
                                   "restarts": 0, "ports": [], "ips": {}, "exit_code": None}
            if rep.live is not None:
                try:
                    raw = inspect_raw(runtime, rep.name)
                except DockLockError:
                    raw = {}
                row.update(live_fields(raw, rep.live.ports, rep.live.status))
            replicas.append(row)
    resource = tgt.resource
    ours = [o for o in loaded.desired if o.address == tgt.address]
    source = ""
    if resource is not None and resource.location is not None:
        source = str(resource.location.relative_to(ws.paths.root))
    found, problem = ledger_entries(ctx, ws.cluster_name, str(tgt.address),
                                    {o.key for o in ours} | {f"container:{r.name}"
                                                             for r in tgt.replicas},
                                    entries)
    return Description(
        str(tgt.address), tgt.address.kind, tgt.address.namespace, tgt.address.name, source,
        dict(resource.metadata.labels) if resource is not None else {},
        mask_spec(resource.to_dict().get("spec")) if resource is not None else None,
        tuple(object_fields(o) for o in ours), tuple(replicas), cage_fields(ours),
        tuple(found), problem)


def mask_spec(value: Any) -> Any:
    """A spec with every value marked sensitive (`NAME: {value: ..., sensitive: true}`,
    wherever it sits: env of a Service, Job or CageProfile) replaced by the mask plans,
    state and `get` use (pure; returns a copy)."""
    if isinstance(value, Mapping):
        if "sensitive" in value and value.get("sensitive") is not False and "value" in value:
            return {k: (SENSITIVE_MASK if k == "value" else mask_spec(v))
                    for k, v in value.items()}
        return {k: mask_spec(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_spec(v) for v in value]
    return value


def object_fields(obj: DesiredObject) -> dict[str, Any]:
    """Key fields of one rendered object; sensitive env values masked (pure)."""
    from docklock.objects import ObjectKind

    config = obj.config
    fields: dict[str, Any] = {}
    if obj.kind is ObjectKind.CONTAINER:
        for key in _CONTAINER_FIELDS:
            value = config.get(key)
            if key == "env" and isinstance(value, list):
                value = [f"{e[0]}=" + (SENSITIVE_MASK if len(e) > 2 and e[2] else str(e[1]))
                         for e in value]
            elif key == "ports" and isinstance(value, list):
                value = [_port_text(p) for p in value]
            elif key == "mounts" and isinstance(value, list):
                value = [f"{m.get('source')}:{m.get('target')}" + (":ro" if m.get("read_only")
                                                                   else "") for m in value]
            elif key == "healthcheck" and isinstance(value, Mapping):
                value = " ".join(str(x) for x in value.get("command") or ()) + (
                    f" (every {value.get('interval', '?')}, retries {value.get('retries', '?')})")
            fields[key] = value
    else:
        fields = {k: v for k, v in config.items() if k not in ("labels",)}
    return {"kind": obj.kind.value, "name": obj.name, "key": obj.key, "replica": obj.replica,
            "config_hash": obj.config_hash, "fields": fields}


def _port_text(p: Mapping[str, Any]) -> str:
    host = p.get("host")
    target = f"{p.get('container')}/{p.get('protocol', 'tcp')}"
    if host:
        ip = p.get("hostIP") or p.get("host_ip")
        return f"{ip + ':' if ip else ''}{host}->{target}"
    return target


def cage_fields(objs: Sequence[DesiredObject]) -> dict[str, Any] | None:
    """The cage of the resource's first container (every replica shares it; pure)."""
    from docklock.objects import ObjectKind

    for o in objs:
        if o.kind is not ObjectKind.CONTAINER:
            continue
        cage = o.config.get("cage")
        if not isinstance(cage, Mapping):
            continue
        seccomp = "podman default"
        if cage.get("seccomp_digest"):
            seccomp = f"generated (sha256 {str(cage.get('seccomp_digest'))[:16]})"
        elif cage.get("seccomp_profile_path"):
            seccomp = str(cage.get("seccomp_profile_path"))
        return {"name": cage.get("name"), "level": cage.get("level"), "seccomp": seccomp,
                "cap_drop": list(cage.get("cap_drop") or ()),
                "cap_add": list(cage.get("cap_add") or ()),
                "no_new_privileges": bool(cage.get("no_new_privileges")),
                "read_only": bool(cage.get("read_only")),
                "network_none": bool(cage.get("network_none")),
                "tmpfs": dict(cage.get("tmpfs") or {}),
                "memory": o.config.get("memory") or cage.get("memory"),
                "pids_limit": o.config.get("pids_limit") or cage.get("pids_limit"),
                "cpus": o.config.get("cpus"),
                "denied_syscalls": len(cage.get("denied_syscalls") or ())}
    return None


def live_fields(raw: Mapping[str, Any], ports: Sequence[str], status: str) -> dict[str, Any]:
    """What describe shows of a container's inspect document (pure)."""
    state = raw.get("State") or {}
    health = state.get("Health") or state.get("Healthcheck") or {}
    networks = (raw.get("NetworkSettings") or {}).get("Networks") or {}
    started = str(state.get("StartedAt") or "")
    if started.startswith("0001-01-01"):
        started = ""
    code = state.get("ExitCode")
    return {"id": str(raw.get("Id", "")), "status": str(state.get("Status") or status),
            "health": str(health.get("Status") or ""), "started": started,
            "restarts": int(raw.get("RestartCount") or 0), "ports": list(ports),
            "ips": {str(n): str((c or {}).get("IPAddress") or "") for n, c in networks.items()},
            "exit_code": code if state.get("Status") in ("exited", "stopped") else None}


def ledger_entries(ctx: Context, cluster: str, address: str, keys: set[str],
                   n: int) -> tuple[list[dict[str, Any]], str | None]:
    """The last `n` ledger entries naming `address` or one of `keys` (read-only; no
    signature check: `docklock ledger verify` does that)."""
    from docklock.ledger import Ledger

    if n == 0:
        return [], None
    found: deque[dict[str, Any]] = deque(maxlen=n)
    try:
        ledger = Ledger.open(ctx.paths, cluster)
        try:
            for entry in ledger.entries():
                if entry_touches(entry.payload, address, keys):
                    found.append({"seq": entry.seq, "time": entry.time, "type": entry.type.value,
                                  "actor": entry.actor,
                                  "summary": summarize(entry.type.value, entry.payload)})
        finally:
            ledger.close()
    except DockLockError as exc:
        return list(found), exc.message
    return list(found), None


def entry_touches(payload: Mapping[str, Any], address: str, keys: set[str]) -> bool:
    """Whether a ledger payload names the address or one of its object keys (pure)."""
    text = json.dumps(payload, sort_keys=True)
    return f'"{address}"' in text or any(f'"{k}"' in text for k in keys)


def summarize(kind: str, payload: Mapping[str, Any]) -> str:
    """One line for a ledger entry (pure)."""
    if kind == "change":
        parts = [str(payload.get("action", "")), str(payload.get("key", "")),
                 str(payload.get("status", ""))]
        if payload.get("command") and payload.get("command") != "apply":
            parts.insert(0, f"[{payload['command']}]")
        if payload.get("message"):
            parts.append(f"- {payload['message']}")
        return " ".join(p for p in parts if p)
    if kind == "apply-start":
        changes = payload.get("changes")
        count = len(changes) if isinstance(changes, list) else "?"
        return f"{payload.get('command', 'apply')} started: {count} change(s)"
    if kind == "apply-end":
        return f"{payload.get('command', 'apply')} ended: " + ", ".join(
            f"{k}={payload[k]}" for k in ("ok", "added", "changed", "destroyed")
            if k in payload)
    if kind == "drift":
        return f"drift={payload.get('drift')}"
    if kind == "witness":
        return f"{payload.get('event')} {payload.get('job')}"
    if kind == "plan":
        summary = payload.get("summary")
        return f"plan {summary}" if summary else "plan"
    return kind
