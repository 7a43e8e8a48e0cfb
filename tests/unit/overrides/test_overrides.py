"""docklock.overrides (deploy overrides) and their place in the recorded state.

Pure tests: a real workspace loaded from a temporary folder, no Podman. The state part
writes real state files through StateStore under its lock.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docklock.errors import StateError
from docklock.load import Workspace, load_workspace
from docklock.overrides import (
    Override,
    OverrideError,
    changes,
    in_effect,
    merge,
    overlay,
)
from docklock.render import render_workspace
from docklock.state import State, StateStore
from docklock.workspace import find_workspace

API = """\
apiVersion: docklock.io/v1
kind: Service
metadata: {name: api}
spec:
  image: localhost/demo/busybox:1
  command: [sleep, "3600"]
  replicas: 2
---
apiVersion: docklock.io/v1
kind: Network
metadata: {name: backend}
spec: {}
"""

WEB = """\
apiVersion: docklock.io/v1
kind: Service
metadata: {name: web}
spec:
  image: localhost/demo/busybox:1
  command: [sleep, "3600"]
  ports:
    - {container: 8080, host: 18080}
"""


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    (tmp_path / "specs").mkdir()
    (tmp_path / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: t}\n"
        "spec: {specs: [specs]}\n")
    (tmp_path / "specs" / "api.yaml").write_text(API)
    (tmp_path / "specs" / "web.yaml").write_text(WEB)
    return load_workspace(find_workspace(tmp_path))


def _in(ws: Workspace, rel: str) -> list:  # type: ignore[type-arg]
    return [r for r in ws.resources if r.location is not None and r.location.file == rel]


def test_round_trip_and_state_file_form() -> None:
    o = Override("Service/default/api", "replicas", 3, by="ann@h", at="2026-01-01T00:00:00Z")
    assert Override.from_dict(o.to_dict()) == o
    assert o.to_dict() == {"address": "Service/default/api", "field": "replicas",
                           "value": 3, "by": "ann@h", "at": "2026-01-01T00:00:00Z"}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"value": -1}, "from 0 to 1000, not -1"),
    ({"value": 1001}, "from 0 to 1000, not 1001"),
    ({"value": True}, "not True"),
    ({"field": "image"}, "cannot override 'image'"),
    ({"address": "Network/default/backend"}, "only the replicas of a Service"),
    ({"address": "api"}, "only the replicas of a Service"),
], ids=["negative", "above-schema-max", "bool", "other-field", "network", "bare-name"])
def test_invalid_overrides_are_refused(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"address": "Service/default/api", "field": "replicas",
                               "value": 3} | kwargs
    with pytest.raises(OverrideError, match=message):
        Override(**args)  # type: ignore[arg-type]


def test_from_dict_refuses_malformed_values() -> None:
    with pytest.raises(OverrideError, match="malformed override"):
        Override.from_dict({"address": "Service/default/api", "field": "replicas",
                            "value": "3"})
    with pytest.raises(OverrideError, match="malformed override"):
        Override.from_dict({"field": "replicas", "value": 3})


def test_merge_sets_keeps_and_clears(ws: Workspace) -> None:
    api = _in(ws, "specs/api.yaml")
    assert [str(r.address) for r in api] == ["Network/default/backend", "Service/default/api"]
    first = merge((), api, replicas=3, reset=False, by="a", at="t1")
    assert first == (Override("Service/default/api", "replicas", 3, by="a", at="t1"),)
    # The same value again keeps who set it first: nothing to store.
    assert merge(first, api, replicas=3, reset=False, by="b", at="t2") == first
    # The spec's own value clears the override, as --reset does.
    assert merge(first, api, replicas=2, reset=False, by="b", at="t2") == ()
    assert merge(first, api, replicas=None, reset=True, by="b", at="t2") == ()
    # A deploy of another file leaves this file's override alone.
    other = Override("Service/default/web", "replicas", 0, by="c", at="t0")
    assert merge((other, *first), api, replicas=None, reset=True, by="b", at="t") == (other,)


def test_merge_refuses_a_file_without_services(ws: Workspace) -> None:
    network_only = [r for r in _in(ws, "specs/api.yaml") if r.kind == "Network"]
    with pytest.raises(OverrideError, match="defines none"):
        merge((), network_only, replicas=3, reset=False, by="a", at="t")
    with pytest.raises(OverrideError, match="from 0 to 1000"):
        merge((), _in(ws, "specs/api.yaml"), replicas=5000, reset=False, by="a", at="t")


def test_overlay_changes_only_the_overridden_service(ws: Workspace) -> None:
    o = Override("Service/default/api", "replicas", 3)
    out = overlay(ws, (o,))
    assert out is not ws
    assert out.by_address("Service/default/api").spec.replicas == 3  # type: ignore[union-attr]
    assert ws.by_address("Service/default/api").spec.replicas == 2  # type: ignore[union-attr]
    assert out.by_address("Service/default/web") is ws.by_address("Service/default/web")
    assert out.graph is not None
    assert out.graph.resources[
        out.by_address("Service/default/api").address].spec.replicas == 3
    # What render makes from it: three api containers.
    names = sorted(obj.name for obj in render_workspace(out).objects
                   if str(obj.address) == "Service/default/api" and obj.replica is not None)
    assert names == ["t-default-api-1", "t-default-api-2", "t-default-api-3"]
    # Nothing applies: the same workspace object comes back.
    assert overlay(ws, ()) is ws
    assert overlay(ws, (Override("Service/default/api", "replicas", 2),)) is ws
    (note,) = overlay(ws, (Override("Service/default/gone", "replicas", 4),)).warnings
    assert note.message == ("deploy override of Service/default/gone replicas ignored: it "
                            "is not in the specs")


def test_overlay_warns_that_an_override_is_in_effect(ws: Workspace) -> None:
    out = overlay(ws, (Override("Service/default/api", "replicas", 3, by="ann@h", at="T"),))
    (note,) = out.warnings
    assert note.severity == "warning"
    assert note.message == ("deploy override in effect: Service/default/api replicas 3 "
                            "(spec: 2; set by ann@h at T)")
    assert note.location is not None
    assert note.location.file == "specs/api.yaml"
    assert note.hint == "`docklock deploy --file specs/api.yaml --reset` returns to the spec"


def test_overlay_refuses_replicas_on_a_fixed_host_port(ws: Workspace) -> None:
    with pytest.raises(OverrideError) as info:
        overlay(ws, (Override("Service/default/web", "replicas", 2, by="ann"),))
    assert "fixed host port 18080" in info.value.message
    assert info.value.location is not None
    assert info.value.location.file == "specs/web.yaml"
    assert "docklock deploy --file specs/web.yaml --reset" in info.value.hint
    # Zero or one replica is fine with a fixed port.
    assert overlay(ws, (Override("Service/default/web", "replicas", 0),)) \
        .by_address("Service/default/web").spec.replicas == 0  # type: ignore[union-attr]


def test_changes_and_in_effect_describe_before_and_after(ws: Workspace) -> None:
    new = (Override("Service/default/api", "replicas", 3),)
    (change,) = changes(ws, (), new)
    assert change.describe() == "Service/default/api replicas 2 -> 3"
    (back,) = changes(ws, new, ())
    assert back.describe() == ("Service/default/api replicas 3 -> 2 (the spec's value: "
                               "override cleared)")
    assert changes(ws, new, new) == ()
    (effect,) = in_effect(ws, new)
    assert (effect.before, effect.after, effect.spec) == (2, 3, 2)


def test_state_round_trips_overrides_and_old_files_load(tmp_path: Path) -> None:
    o = Override("Service/default/api", "replicas", 3, by="a", at="t")
    state = State(lineage="L", serial=4, cluster="c").with_overrides((o,))
    assert State.from_dict(state.to_dict()) == state
    # A state without overrides is written exactly as before the field existed.
    assert "overrides" not in State(lineage="L", serial=4).to_dict()
    old = {"format": 1, "lineage": "L", "serial": 4, "cluster": "c", "resources": {}}
    assert State.from_dict(old).overrides == ()
    with pytest.raises(StateError, match=r"corrupt.*replicas must be"):
        State.from_dict(old | {"overrides": [o.to_dict() | {"value": -3}]})
    with pytest.raises(StateError, match="corrupt"):
        State.from_dict(old | {"overrides": {"x": 1}})


def test_store_sets_overrides_under_the_lock_and_keeps_them(ws: Workspace) -> None:
    store = StateStore(ws.paths)
    o = Override("Service/default/api", "replicas", 3, by="a", at="t")
    with pytest.raises(StateError, match="without holding the state lock"):
        store.set_overrides(store.read(), (o,))
    with store.lock(command="test"):
        s1 = store.set_overrides(store.read(), (o,))
        assert s1.serial == 1
        assert s1.overrides == (o,)
        # Unchanged: no write, no serial bump.
        assert store.set_overrides(s1, (o,)) is s1
        # Any other write (e.g. apply recording an object) keeps the overrides.
        s2 = store.write(s1)
        assert s2.serial == 2
        assert s2.overrides == (o,)
        s3 = store.set_overrides(s2, ())
        assert s3.serial == 3
        assert s3.overrides == ()
    data = json.loads(ws.paths.state.read_text())
    assert "overrides" not in data
    assert data["serial"] == 3
    assert store.read().overrides == ()
