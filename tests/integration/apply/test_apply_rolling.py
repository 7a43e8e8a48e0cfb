"""Rolling replace through the executor API, watched from outside while it runs.

Create-before-destroy needs `rename_container` on the runtime (the replacement takes
the old container's name). `DestroyFirstRuntime` is the real runtime with renaming
hidden, to exercise the destroy-then-create path; every call goes to the real Podman
harness.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from applyhelp import apply_ok, cname, ids, make_workspace, service, state, write_specs
from conftest import PodmanHarness

from docklock.apply import ApplyEvent, ApplyOptions, EventType, can_rename, execute
from docklock.load import load_workspace
from docklock.plan import bind_desired, build_plan
from docklock.render import render_workspace
from docklock.runtime.podman import PodmanRuntime
from docklock.state import StateStore
from docklock.workspace import WorkspacePaths

pytestmark = pytest.mark.podman


class DestroyFirstRuntime(PodmanRuntime):
    rename_container = None  # type: ignore[assignment]


def _apply_in_process(ws: Path, url: str, runtime_type: type[PodmanRuntime],
                      events: list[ApplyEvent]) -> int:
    paths = WorkspacePaths(ws)
    loaded = load_workspace(paths)
    rendered = render_workspace(loaded)
    store = StateStore(paths)
    with store.lock(command="test"), runtime_type(url) as rt:
        st = store.read(cluster=loaded.cluster_name)
        plan, _ = build_plan(rendered.objects, st, reader=rt, cluster=loaded.cluster_name,
                             spec_digest=loaded.spec_digest, files=loaded.files)
        result = execute(plan, bind_desired(plan, rendered.objects), store=store, state=st,
                         runtime=rt, paths=paths, cluster=loaded.cluster_name,
                         options=ApplyOptions(parallelism=4), on_event=events.append,
                         runtime_factory=lambda: runtime_type(url))
    assert result.ok, [o.error for o in result.failed]
    return result.state.serial


def _watch(url: str, cluster: str, stop: threading.Event, seen: list[int]) -> None:
    """Count running, healthy-or-starting web containers every few ms."""
    with PodmanRuntime(url) as rt:
        while not stop.is_set():
            live = rt.list_live(cluster)
            seen.append(sum(1 for o in live.objects.values()
                            if o.address == "Service/default/web" and o.status == "running"))
            time.sleep(0.01)


@pytest.mark.parametrize(("runtime_type", "min_running"), [
    (PodmanRuntime, 2),  # create before destroy: never fewer than 2 of 2 running
    (DestroyFirstRuntime, 1),  # destroy first (no rename): one replica at a time goes away
])
def test_rolling_replace_keeps_replicas_up(podman: PodmanHarness, tmp_path: Path,
                                           runtime_type: type[PodmanRuntime],
                                           min_running: int) -> None:
    cluster = "roll" if runtime_type is PodmanRuntime else "roll2"
    ws = make_workspace(tmp_path / "ws", cluster,
                        service("web", podman.image, replicas=2, env={"V": "one"}))
    apply_ok(podman, ws)
    before = ids(podman, cluster)
    serial = state(ws)["serial"]
    write_specs(ws, service("web", podman.image, replicas=2, env={"V": "two"}))

    stop = threading.Event()
    seen: list[int] = []
    watcher = threading.Thread(target=_watch, args=(podman.url, cluster, stop, seen))
    watcher.start()
    events: list[ApplyEvent] = []
    try:
        new_serial = _apply_in_process(ws, podman.url, runtime_type, events)
    finally:
        stop.set()
        watcher.join(timeout=30)

    assert can_rename(runtime_type(podman.url)) is (runtime_type is PodmanRuntime)
    after = ids(podman, cluster)
    assert set(after) == {cname(cluster, "web", 1), cname(cluster, "web", 2)}  # no "-old-"
    assert all(after[n] != before[n] for n in after)
    assert min(seen) == min_running, seen
    done = [e.name for e in events if e.type is EventType.CHANGE_DONE]
    assert done == [cname(cluster, "web", 1), cname(cluster, "web", 2)]
    # One state write per finished step: create-before-destroy records only the new
    # container (its key moves to it); destroy-first drops the record, then writes it.
    assert new_serial - serial == (2 if runtime_type is PodmanRuntime else 4)
