"""Builders for plan tests: specs from short documents, state "as applied", live "as created".

Nothing here talks to Podman: recorded state is what a successful apply of some specs
would have written, and live state is what Podman would list after it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from docklock.model import ImageSpec, Resource
from docklock.objects import (
    LABEL_ADDRESS,
    LABEL_CLUSTER,
    LABEL_CONFIG_HASH,
    LABEL_LINEAGE,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    DesiredObject,
    LiveObject,
    LiveState,
    ObjectKind,
)
from docklock.render import (
    JOB_RESULT,
    KIND_JOB,
    LABEL_KIND,
    Rendered,
    constant_context_digest,
    is_job,
    render,
)
from docklock.state import RecordedObject, State

CLUSTER = "demo"
CREATED = "2026-01-01T00:00:00Z"


def fake_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def resources(docs: Iterable[Mapping[str, Any]]) -> list[Resource]:
    """`{kind, name, namespace?, spec}` short documents -> Resources."""
    return [Resource.from_dict({
        "apiVersion": "docklock.io/v1", "kind": d["kind"],
        "metadata": {"name": d["name"], "namespace": d.get("namespace", "default")},
        "spec": d.get("spec") or {}}) for d in docs]


def digest_for(contexts: Mapping[str, str] | None):  # type: ignore[no-untyped-def]
    """A context digest where `contexts` maps a context folder to a content version."""
    def digest(spec: ImageSpec) -> str:
        version = (contexts or {}).get(spec.context, "v1")
        return f"{constant_context_digest(spec)}:{version}"
    return digest


def render_docs(docs: Sequence[Mapping[str, Any]], *, contexts: Mapping[str, str] | None = None,
                security_level: str = "standard") -> Rendered:
    return render(resources(docs), cluster=CLUSTER, security_level=security_level,
                  context_digest=digest_for(contexts))


def image_id_of(ref: str, version: str = "v1") -> str:
    return "sha256:" + fake_id(f"image {ref} {version}")


def recorded(objects: Iterable[DesiredObject], *, lineage: str = "lineage-1",
             serial: int = 1) -> State:
    """The state an apply of `objects` would have written."""
    state = State(lineage=lineage, serial=serial, cluster=CLUSTER)
    for obj in objects:
        image_id = None
        if obj.kind is ObjectKind.CONTAINER:
            image_id = image_id_of(str(obj.config["image"]))
        oid = obj.name if obj.kind is ObjectKind.VOLUME else fake_id(obj.key)
        state = state.with_object(str(obj.address), RecordedObject.from_desired(
            obj, id=oid, created=CREATED, image_id=image_id))
    return state


def live_from(state: State, *, lineage_labels: bool = True) -> dict[str, LiveObject]:
    """What Podman lists right after the apply that wrote `state` (services running,
    jobs exited 0). `lineage_labels=False`: as an older DockLock (no lineage label)
    left them."""
    out: dict[str, LiveObject] = {}
    for address, rec in state.iter_objects():
        labels = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_CLUSTER: state.cluster or CLUSTER,
                  LABEL_ADDRESS: address, LABEL_CONFIG_HASH: rec.config_hash}
        if lineage_labels and state.lineage:
            labels[LABEL_LINEAGE] = state.lineage
        status = "running" if rec.kind is ObjectKind.CONTAINER else "present"
        exit_code = None
        if is_job(rec.config):
            labels[LABEL_KIND] = KIND_JOB
            status, exit_code = "exited", 0
        out[rec.key] = LiveObject(key=rec.key, kind=rec.kind, name=rec.name, id=rec.id,
                                  labels=labels, status=status, image=rec.image_id or "",
                                  exit_code=exit_code)
    return out


def with_recorded_exit(state: State, key: str, code: int) -> State:
    """`state` with the exit code apply records after a job's run."""
    address, rec = state.objects_by_key()[key]
    config = {**rec.config, JOB_RESULT: {"exit_code": code, "finished": CREATED}}
    return state.with_object(address, replace(rec, config=config))


def apply_live_changes(objects: dict[str, LiveObject],
                       changes: Iterable[Mapping[str, Any]]) -> LiveState:
    """Mutate a live view as a case describes (out-of-band edits).

    `add: {ours: {...}}` labels the object for a cluster (default: this one) with a
    lineage (default: the one `recorded()` gives; `lineage: null` for none); an added
    object without this cluster's label is listed in `LiveState.others`, as an
    unfiltered list call reports it.
    """
    others: dict[str, LiveObject] = {}
    for ch in changes:
        if "add" in ch:
            a = ch["add"]
            labels = dict(a.get("labels") or {})
            if "ours" in a:
                ours = a["ours"]
                labels.update({LABEL_MANAGED_BY: MANAGED_BY,
                               LABEL_CLUSTER: ours.get("cluster", CLUSTER),
                               LABEL_ADDRESS: ours["address"],
                               LABEL_CONFIG_HASH: ours.get("hash", "")})
                lineage = ours.get("lineage", "lineage-1")
                if lineage:
                    labels[LABEL_LINEAGE] = lineage
            kind = ObjectKind(a["key"].split(":", 1)[0])
            target = objects if labels.get(LABEL_CLUSTER) == CLUSTER else others
            target[a["key"]] = LiveObject(
                key=a["key"], kind=kind, name=a["key"].split(":", 1)[1],
                id=a.get("id", fake_id("live " + a["key"])), labels=labels,
                status=a.get("status", "running" if kind is ObjectKind.CONTAINER
                              else "present"), image=a.get("image", ""))
            continue
        key = ch["key"]
        if ch.get("remove"):
            del objects[key]
            continue
        obj = objects[key]
        if "status" in ch:
            obj = replace(obj, status=ch["status"])
        if "hash" in ch:
            obj = replace(obj, labels={**obj.labels, LABEL_CONFIG_HASH: ch["hash"]})
        if "id" in ch:
            obj = replace(obj, id=ch["id"])
        if "image" in ch:
            obj = replace(obj, image=ch["image"])
        if "exit_code" in ch:
            obj = replace(obj, exit_code=ch["exit_code"])
        if ch.get("drop_lineage"):
            obj = replace(obj, labels={k: v for k, v in obj.labels.items()
                                       if k != LABEL_LINEAGE})
        objects[key] = obj
    return LiveState(objects, api_calls=1, others=others)
