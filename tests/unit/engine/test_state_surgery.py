"""`docklock state pull|list|show|rm` without Podman: a state written through the store,
then read and edited through the engine and the CLI, and the ledger's record of rm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docklock.backend import BACKEND_TYPES
from docklock.cli import cmd_state, main
from docklock.engine import Context
from docklock.engine import state as engine_state
from docklock.errors import KeyMaterialError, StateError
from docklock.ledger import Ledger, verify_ledger
from docklock.ledger.keys import init_keys
from docklock.objects import ObjectKind
from docklock.state import RecordedObject, StateStore
from docklock.workspace import WorkspacePaths

CLUSTER = """\
apiVersion: docklock.io/v1
kind: Cluster
metadata: {name: surgery}
spec: {specs: [specs]}
"""

RECORDED = (
    ("Service/default/web", ObjectKind.CONTAINER, "surgery-default-web-1"),
    ("Service/default/web", ObjectKind.CONTAINER, "surgery-default-web-2"),
    ("Service/default/api", ObjectKind.CONTAINER, "surgery-default-api-1"),
    ("Network/default/backend", ObjectKind.NETWORK, "surgery-backend"),
)


def _obj(kind: ObjectKind, name: str) -> RecordedObject:
    return RecordedObject(key=f"{kind.value}:{name}", kind=kind, name=name,
                          id=f"{abs(hash(name)):064x}"[:64], config_hash="c" * 64,
                          created="2026-01-01T00:00:00Z")


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    (tmp_path / "docklock.yaml").write_text(CLUSTER)
    (tmp_path / "specs").mkdir()
    paths = WorkspacePaths(tmp_path)
    store = StateStore(paths)
    with store.lock(command="test"):
        state = store.read(cluster="surgery")
        for address, kind, name in RECORDED:
            state = state.with_object(address, _obj(kind, name))
        store.write(state)
    return Context.find(tmp_path)


def _keys(ctx: Context) -> None:
    init_keys(ctx.paths)


def test_cli_keeps_the_backend_names() -> None:
    assert cmd_state.BACKEND_TYPES == BACKEND_TYPES


def test_pull_is_the_stored_bytes(ctx: Context, capsysbinary: pytest.CaptureFixture[bytes]
                                  ) -> None:
    stored = ctx.paths.state.read_bytes()
    assert engine_state.pull(ctx) == stored
    assert main(["-C", str(ctx.paths.root), "state", "pull"]) == 0
    assert capsysbinary.readouterr().out == stored


def test_pull_without_state_prints_nothing(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "docklock.yaml").write_text(CLUSTER)
    assert main(["-C", str(tmp_path), "state", "pull"]) == 0
    out = capsys.readouterr()
    assert out.out == ""
    assert "no state recorded yet" in out.err


def test_list_and_show(ctx: Context, capsys: pytest.CaptureFixture[str]) -> None:
    listing = engine_state.list_state(ctx)
    assert [r.address for r in listing.resources] == [
        "Network/default/backend", "Service/default/api", "Service/default/web"]
    assert listing.resources[2].objects == 2
    assert listing.serial == 1
    assert main(["-C", str(ctx.paths.root), "state", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Network/default/backend", "Service/default/api", "Service/default/web"]
    assert main(["-C", str(ctx.paths.root), "state", "list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["resources"][0] == {"address": "Network/default/backend", "objects": 1,
                                   "kinds": ["network"]}
    # Short forms name the same address (a bare name is a Service).
    view = engine_state.show(ctx, "web")
    assert view.address == "Service/default/web"
    assert [o.name for o in view.objects] == ["surgery-default-web-1", "surgery-default-web-2"]
    assert engine_state.show(ctx, "Network/backend").address == "Network/default/backend"
    assert main(["-C", str(ctx.paths.root), "state", "show", "Service/default/web",
                 "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert sorted(shown["objects"]) == ["container:surgery-default-web-1",
                                        "container:surgery-default-web-2"]


def test_show_unknown_names_close_matches(ctx: Context,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(StateError) as caught:
        engine_state.show(ctx, "Service/default/wbe")
    assert caught.value.message == "Service/default/wbe is not in the recorded state"
    assert caught.value.hint.startswith("did you mean Service/default/web?")
    # A Network's name given as a Service's: the same name under another kind.
    with pytest.raises(StateError) as caught:
        engine_state.show(ctx, "backend")
    assert "did you mean Network/default/backend?" in caught.value.hint
    assert main(["-C", str(ctx.paths.root), "state", "show", "nothing-like-it"]) == 1
    err = capsys.readouterr().err
    assert "nothing-like-it (Service/default/nothing-like-it) is not in the recorded " \
           "state" in err
    assert "did you mean" not in err


def test_rm_needs_the_key_and_changes_nothing_without_it(ctx: Context) -> None:
    before = ctx.paths.state.read_bytes()
    with pytest.raises(KeyMaterialError):
        engine_state.rm(ctx, ["web"])
    assert ctx.paths.state.read_bytes() == before
    # --dry-run needs no key and writes nothing.
    dry = engine_state.rm(ctx, ["web", "Service/default/api"], dry_run=True)
    assert [v.address for v in dry.removed] == ["Service/default/web", "Service/default/api"]
    assert dry.object_count == 3
    assert ctx.paths.state.read_bytes() == before
    assert not ctx.paths.ledger.exists()


def test_rm_removes_under_the_lock_and_records_it(ctx: Context,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _keys(ctx)
    assert main(["-C", str(ctx.paths.root), "state", "rm", "web",
                 "Network/default/backend"]) == 0
    out = capsys.readouterr()
    assert "Removed Service/default/web (2 object(s): surgery-default-web-1, " \
           "surgery-default-web-2)" in out.out
    assert "stay in Podman, unrecorded" in out.err
    state = StateStore(ctx.paths).read()
    assert sorted(state.resources) == ["Service/default/api"]
    assert state.serial == 2
    ledger = Ledger.open(ctx.paths)
    (entry,) = [e for e in ledger.entries() if e.type == "state-rm"]
    assert entry.serial == 2
    assert entry.payload["addresses"] == ["Service/default/web", "Network/default/backend"]
    assert sorted(o["name"] for o in entry.payload["objects"]) == [
        "surgery-backend", "surgery-default-web-1", "surgery-default-web-2"]
    assert ledger.latest_checkpoint() is not None
    assert ledger.latest_checkpoint().size == ledger.size  # type: ignore[union-attr]
    assert verify_ledger(ctx.paths).ok


def test_rm_with_one_unknown_address_removes_nothing(ctx: Context) -> None:
    _keys(ctx)
    before = ctx.paths.state.read_bytes()
    with pytest.raises(StateError, match="Service/default/nope is not in the recorded"):
        engine_state.rm(ctx, ["web", "Service/default/nope"])
    assert ctx.paths.state.read_bytes() == before
    assert not any(e.type == "state-rm" for e in Ledger.open(ctx.paths).entries())


def test_rm_refuses_while_another_command_holds_the_lock(ctx: Context) -> None:
    _keys(ctx)
    other = StateStore(ctx.paths)
    with other.lock(command="docklock apply"), pytest.raises(StateError) as caught:
        engine_state.rm(ctx, ["web"])
    assert "docklock apply" in caught.value.message
    assert "Service/default/web" in StateStore(ctx.paths).read().resources
