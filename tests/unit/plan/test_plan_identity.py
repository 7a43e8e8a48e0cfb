"""Workspace identity (issue 11 B7) and the plan-time image check (C13), without Podman.

The golden cases (cases/25, 39-45) cover diff()'s ownership decisions; these tests
cover the pieces around it: the owner labels, who-owns rules, the clash error's text,
the image lookup and the refresh's call count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from plan_helpers import CLUSTER, live_from, recorded, render_docs

from docklock.errors import Location, ValidationError
from docklock.objects import (
    LABEL_ADDRESS,
    LABEL_CLUSTER,
    LABEL_LINEAGE,
    LABEL_MANAGED_BY,
    LABEL_WORKSPACE,
    MANAGED_BY,
    LiveImages,
    LiveObject,
    LiveState,
    ObjectKind,
    describe_owner,
    is_owned,
    with_owner,
)
from docklock.plan import (
    OwnershipError,
    PlanOptions,
    build_plan,
    check_images,
    diff,
    owned_view,
    owns,
    stamp_owner,
)
from docklock.state import State, StateStore
from docklock.workspace import WorkspacePaths

WEB = {"kind": "Service", "name": "web",
       "spec": {"image": "localhost/demo/busybox:1", "replicas": 2}}
BUILT = {"kind": "Image", "name": "app",
         "spec": {"ref": "localhost/demo/app:1", "context": "app"}}
USES_BUILT = {"kind": "Service", "name": "api", "spec": {"image": "localhost/demo/app:1"}}


# ---------------------------------------------------------------- owner labels


def test_owner_labels_never_change_a_config_hash() -> None:
    objs = render_docs([WEB, BUILT, {"kind": "Network", "name": "n"}]).objects
    stamped = stamp_owner({o.key: o for o in objs}, "L1", "/srv/ws")
    for obj in objs:
        s = stamped[obj.key]
        assert s.config_hash == obj.config_hash
        assert s.config["labels"][LABEL_LINEAGE] == "L1"
        assert s.config["labels"][LABEL_WORKSPACE] == "/srv/ws"
        # Everything else about the labels is kept.
        assert s.config["labels"][LABEL_ADDRESS] == obj.config["labels"][LABEL_ADDRESS]
        assert LABEL_LINEAGE not in obj.config["labels"]  # the original is untouched
    # The container config apply creates from carries the labels too.
    web = stamped["container:demo-default-web-1"]
    from docklock.render import container_config
    assert container_config(web).labels[LABEL_LINEAGE] == "L1"


def test_with_owner_without_a_workspace_path() -> None:
    obj = render_docs([WEB]).objects[0]
    assert LABEL_WORKSPACE not in with_owner(obj, "L", None).config["labels"]


def _live(name: str, labels: dict[str, str], oid: str = "a" * 64) -> LiveObject:
    return LiveObject(f"container:{name}", ObjectKind.CONTAINER, name, oid, labels, "running")


MANAGED = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_CLUSTER: CLUSTER,
           LABEL_ADDRESS: "Service/default/web"}


@pytest.mark.parametrize(("labels", "lineage", "recorded_id", "ours"), [
    pytest.param({LABEL_LINEAGE: "L"}, "L", None, True, id="same-lineage"),
    pytest.param({LABEL_LINEAGE: "L"}, "M", "a" * 64, False, id="other-lineage-even-if-recorded"),
    pytest.param({LABEL_LINEAGE: "L"}, None, None, False, id="empty-state-owns-nothing"),
    pytest.param({}, "L", "a" * 12, True, id="legacy-recorded-same-id"),
    pytest.param({}, "L", "b" * 64, False, id="legacy-recorded-other-id"),
    pytest.param({}, "L", None, False, id="legacy-unrecorded"),
])
def test_who_owns_a_live_object(labels: dict[str, str], lineage: str | None,
                                recorded_id: str | None, ours: bool) -> None:
    obj = _live("demo-default-web-1", {**MANAGED, **labels})
    rec = None
    if recorded_id is not None:
        state = recorded(render_docs([WEB]).objects)
        address, r = state.objects_by_key()[obj.key]
        from dataclasses import replace
        rec = (address, replace(r, id=recorded_id))
    assert owns(obj, lineage, rec) is ours


def test_is_owned_needs_cluster_and_lineage() -> None:
    labels = {**MANAGED, LABEL_LINEAGE: "L"}
    assert is_owned(labels, CLUSTER, "L")
    assert not is_owned(labels, CLUSTER, "M")
    assert not is_owned(labels, CLUSTER, None)
    assert not is_owned(labels, "other", "L")
    assert not is_owned(MANAGED, CLUSTER, "L")


def test_describe_owner_names_cluster_lineage_and_workspace() -> None:
    text = describe_owner({**MANAGED, LABEL_LINEAGE: "L9", LABEL_WORKSPACE: "/srv/b"})
    assert "cluster 'demo'" in text
    assert "lineage L9" in text
    assert "workspace /srv/b" in text
    assert "older DockLock" in describe_owner(MANAGED)
    assert describe_owner({"x": "y"}) == "not managed by DockLock"


def test_every_clash_is_reported_at_once() -> None:
    desired = render_docs([WEB]).objects
    state = recorded(desired, lineage="mine")
    foreign = {**MANAGED, LABEL_LINEAGE: "theirs", LABEL_WORKSPACE: "/srv/theirs"}
    live = LiveState({o.key: _live(o.name, foreign) for o in desired})
    with pytest.raises(OwnershipError) as err:
        diff(desired, state, live, cluster=CLUSTER)
    assert [c.key for c in err.value.clashes] == [
        "container:demo-default-web-1", "container:demo-default-web-2"]
    assert err.value.message.startswith("2 name clashes")
    assert len(err.value.diagnostics) == 2  # --format json lists each one
    lines = err.value.explain().splitlines()
    assert len(lines) == 2
    assert all("lineage theirs" in line and "/srv/theirs" in line and "hint:" in line
               for line in lines)
    assert "this workspace's lineage is mine" in lines[0]
    assert err.value.exit_code == 1


def test_lost_state_is_named_when_this_folder_made_the_objects() -> None:
    desired = render_docs([WEB]).objects
    made_here = {**MANAGED, LABEL_LINEAGE: "old", LABEL_WORKSPACE: "/srv/a"}
    live = LiveState({o.key: _live(o.name, made_here) for o in desired}, 1)
    with pytest.raises(OwnershipError) as err:
        diff(desired, State.empty(CLUSTER), live, cluster=CLUSTER, workspace="/srv/a")
    assert "state file was lost or replaced" in err.value.hint
    assert "lineage old" in err.value.hint
    with pytest.raises(OwnershipError) as other:  # another folder: the two-workspace hint
        diff(desired, State.empty(CLUSTER), live, cluster=CLUSTER, workspace="/srv/b")
    assert "another cluster name" in other.value.hint


def test_owned_view_drops_only_other_lineages() -> None:
    state = recorded(render_docs([WEB]).objects, lineage="mine")
    live = LiveState({
        "container:a": _live("a", {**MANAGED, LABEL_LINEAGE: "mine"}),
        "container:b": _live("b", {**MANAGED, LABEL_LINEAGE: "theirs"}),
        "container:c": _live("c", dict(MANAGED)),  # no lineage: drift still judges it
    }, 1)
    assert sorted(owned_view(live, state).objects) == ["container:a", "container:c"]
    assert sorted(owned_view(live, State.empty(CLUSTER)).objects) == ["container:c"]


def test_no_refresh_cannot_see_clashes() -> None:
    desired = render_docs([WEB]).objects
    changes, _ = diff(desired, State.empty(CLUSTER), None, cluster=CLUSTER)
    assert {c.action.value for c in changes} == {"create"}


def test_converged_workspace_with_lineage_labels_is_no_op() -> None:
    desired = render_docs([WEB]).objects
    state = recorded(desired, lineage="lineage-1")
    changes, _ = diff(desired, state, LiveState(live_from(state)), cluster=CLUSTER)
    assert all(c.action.value == "no-op" and not c.reasons for c in changes)


# ---------------------------------------------------------------- the image check


@pytest.mark.parametrize(("ref", "present"), [
    ("localhost/demo/busybox:1", True),
    ("demo/busybox:1", True),  # short name: found under localhost/ as Podman would
    ("busybox:1", True),
    ("localhost/demo/busybox", False),  # :latest is not there
    ("localhost/demo/busybox:2", False),
    ("other/busybox:1", False),
    ("emo/busybox:1", False),  # a suffix, but not at a path boundary
    ("localhost/x@sha256:" + "c" * 64, True),
    ("localhost/y@sha256:" + "d" * 64, False),
    ("sha256:" + "e" * 64, True),
    ("e" * 12, True),
    ("f" * 12, False),
])
def test_live_images_lookup(ref: str, present: bool) -> None:
    images = LiveImages(ids=frozenset({"e" * 64}),
                        tags=frozenset({"localhost/demo/busybox:1"}),
                        digests=frozenset({"localhost/x@sha256:" + "c" * 64}))
    assert images.has(ref) is present


def test_missing_images_are_located_errors_once_per_resource() -> None:
    desired = render_docs([WEB, BUILT, USES_BUILT,
                           {"kind": "Job", "name": "mig",
                            "spec": {"image": "localhost/gone:1", "command": ["true"]}}]).objects
    seen: list[tuple[str, str]] = []

    def locate(address: str, path: str) -> Location:
        seen.append((address, path))
        return Location(f"specs/{address.rsplit('/', maxsplit=1)[-1]}.yaml", 7, 10)

    with pytest.raises(ValidationError) as err:
        check_images(desired, LiveImages(), locate=locate)
    diags = err.value.diagnostics
    # web (2 replicas) once; the job once; api's image is built by an Image resource.
    assert [(str(d.location), d.path) for d in diags] == [
        ("specs/mig.yaml:7:10", "spec.image"), ("specs/web.yaml:7:10", "spec.image")]
    assert "localhost/gone:1" in diags[0].message
    assert "Job/default/mig" in diags[0].message
    assert "podman build" in diags[0].hint
    assert sorted(seen) == [("Job/default/mig", "spec.image"),
                            ("Service/default/web", "spec.image")]
    check_images(desired, LiveImages(tags=frozenset({"localhost/demo/busybox:1",
                                                     "localhost/gone:1"})))


@dataclass
class FakeReader:
    """Counts list calls like PodmanRuntime does (one per call)."""

    images: LiveImages = field(default_factory=LiveImages)
    calls: list[str] = field(default_factory=list)

    def list_live(self, cluster: str, *, unlabelled: bool = False) -> LiveState:
        self.calls.append(f"containers unlabelled={unlabelled}")
        return LiveState({}, 1)

    def list_networks(self, cluster: str, *, unlabelled: bool = False) -> LiveState:
        self.calls.append(f"networks unlabelled={unlabelled}")
        return LiveState({}, 1)

    def list_volumes(self, cluster: str, *, unlabelled: bool = False) -> LiveState:
        self.calls.append(f"volumes unlabelled={unlabelled}")
        return LiveState({}, 1)

    def list_images(self) -> LiveImages:
        self.calls.append("images")
        return LiveImages(self.images.ids, self.images.tags, self.images.digests, 1)


def _plan(reader: FakeReader, docs: list[dict[str, object]], **opts: object) -> int:
    desired = render_docs(docs).objects
    _, calls = build_plan(desired, State.empty(CLUSTER), cluster=CLUSTER, spec_digest="d",
                          reader=reader, options=PlanOptions(**opts))  # type: ignore[arg-type]
    return calls


def test_plan_refresh_is_one_image_call_plus_one_unfiltered_call_per_kind() -> None:
    reader = FakeReader(LiveImages(tags=frozenset({"localhost/demo/busybox:1"})))
    assert _plan(reader, [WEB, {"kind": "Network", "name": "n"}]) == 3
    assert reader.calls == ["images", "containers unlabelled=True",
                            "networks unlabelled=True"]


def test_plan_fails_on_a_missing_image_before_listing_anything_else() -> None:
    reader = FakeReader()
    with pytest.raises(ValidationError, match="localhost/demo/busybox:1"):
        _plan(reader, [WEB])
    assert reader.calls == ["images"]


def test_no_image_call_without_images_in_use_nor_for_destroy_nor_no_refresh() -> None:
    reader = FakeReader()
    _plan(reader, [{"kind": "Network", "name": "n"}])
    _plan(reader, [WEB], destroy=True)
    _plan(reader, [WEB], refresh=False)
    assert "images" not in reader.calls


def test_images_built_here_are_listed_once_for_ownership() -> None:
    reader = FakeReader()
    assert _plan(reader, [BUILT, USES_BUILT]) == 2
    assert reader.calls == ["images", "containers unlabelled=True"]


# ---------------------------------------------------------------- images of others

APP_REF = "localhost/demo/app:1"
APP_ID = "9" * 64


def _built(labels: dict[str, str]) -> LiveImages:
    return LiveImages(ids=frozenset({APP_ID}), tags=frozenset({APP_REF}),
                      built={APP_REF: (APP_ID, {**MANAGED, **labels})})


def _image_diff(images: LiveImages, *, state: State | None = None,
                destroy: bool = False) -> None:
    desired = render_docs([BUILT, USES_BUILT]).objects
    diff(desired, state if state is not None else State.empty(CLUSTER), LiveState({}, 1),
         cluster=CLUSTER, images=images, options=PlanOptions(destroy=destroy))


def test_an_image_another_workspace_built_is_not_rebuilt_over() -> None:
    with pytest.raises(OwnershipError, match=r"image localhost/demo/app:1 .* lineage L2"):
        _image_diff(_built({LABEL_LINEAGE: "L2"}))


def test_an_image_this_workspace_built_is_ours() -> None:
    desired = render_docs([BUILT, USES_BUILT]).objects
    state = recorded(desired, lineage="L1")
    _image_diff(_built({LABEL_LINEAGE: "L1"}), state=state)
    # Legacy (no lineage label): ours when the state records that very image.
    rec = state.objects_by_key()["image:" + APP_REF][1]
    legacy = LiveImages(ids=frozenset({rec.id}), tags=frozenset({APP_REF}),
                        built={APP_REF: (rec.id, dict(MANAGED))})
    _image_diff(legacy, state=state)
    with pytest.raises(OwnershipError, match="no lineage label"):
        _image_diff(_built({}), state=state)  # another image id


def test_destroy_never_removes_a_recorded_ref_another_workspace_rebuilt() -> None:
    desired = render_docs([BUILT, USES_BUILT]).objects
    state = recorded(desired, lineage="L1")
    with pytest.raises(OwnershipError, match="image localhost/demo/app:1"):
        _image_diff(_built({LABEL_LINEAGE: "L2"}), state=state, destroy=True)


def test_an_image_not_built_by_docklock_may_be_built_over() -> None:
    _image_diff(LiveImages(ids=frozenset({APP_ID}), tags=frozenset({APP_REF})))


# ---------------------------------------------------------------- lineage claim


def test_claim_lineage_writes_once_and_only_under_the_lock(tmp_path: Path) -> None:
    store = StateStore(WorkspacePaths(tmp_path))
    empty = store.read(cluster=CLUSTER)
    assert empty.lineage is None
    from docklock.errors import StateError
    with pytest.raises(StateError, match="lock"):
        store.claim_lineage(empty)
    with store.lock(command="test"):
        claimed = store.claim_lineage(empty)
        assert claimed.lineage
        assert claimed.serial == 1
        assert not claimed.resources
        assert store.claim_lineage(claimed) is claimed  # already has one: no write
    assert store.read(cluster=CLUSTER).lineage == claimed.lineage
    assert store.read(cluster=CLUSTER).serial == 1
