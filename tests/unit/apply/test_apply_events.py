"""Progress events and summaries are data; these are their one-line renderings."""

from __future__ import annotations

import pytest

from docklock.apply import (
    ApplyEvent,
    ApplyOptions,
    ApplyResult,
    ChangeOutcome,
    ChangeStatus,
    EventType,
    format_elapsed,
    format_event,
    summary_line,
)
from docklock.errors import ApplyError
from docklock.plan import Action
from docklock.state import State


def ev(etype: EventType, action: str = "create", **kw: object) -> ApplyEvent:
    base: dict[str, object] = {"key": "container:c-default-web-1",
                               "address": "Service/default/web", "name": "c-default-web-1",
                               "kind": "container", "action": action, "elapsed": 1.25}
    base.update(kw)
    return ApplyEvent(etype, **base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("event", "line"), [
    (ev(EventType.CHANGE_DONE, id="52b43e6455becee00bbe", health="healthy"),
     "+ container c-default-web-1 (Service/default/web): created, healthy after 1.2s "
     "[id=52b43e6455be]"),
    (ev(EventType.CHANGE_DONE, "replace"),
     "-/+ container c-default-web-1 (Service/default/web): replaced after 1.2s"),
    (ev(EventType.CHANGE_DONE, "delete", elapsed=0.04),
     "- container c-default-web-1 (Service/default/web): destroyed after 0.0s"),
    (ev(EventType.CHANGE_DONE, "update"),
     "~ container c-default-web-1 (Service/default/web): started after 1.2s"),
    (ev(EventType.CHANGE_DONE, "no-op"),
     "= container c-default-web-1 (Service/default/web): adopted into state after 1.2s"),
    (ev(EventType.CHANGE_FAILED, message="container c-default-web-1 exited with code 3"),
     "! container c-default-web-1 (Service/default/web): create FAILED after 1.2s: "
     "container c-default-web-1 exited with code 3"),
    (ev(EventType.CHANGE_SKIPPED, message="not attempted: Service/default/api (x) failed"),
     "  container c-default-web-1 (Service/default/web): create not attempted: "
     "Service/default/api (x) failed"),
    (ev(EventType.CHANGE_PROGRESS, message="waiting to be healthy (starting)", elapsed=75),
     "  container c-default-web-1 (Service/default/web): waiting to be healthy (starting) "
     "(1m15s elapsed)"),
])
def test_format_event(event: ApplyEvent, line: str) -> None:
    assert format_event(event) == line


@pytest.mark.parametrize("etype", [EventType.APPLY_STARTED, EventType.CHANGE_STARTED,
                                   EventType.APPLY_FINISHED])
def test_events_without_a_line(etype: EventType) -> None:
    assert format_event(ev(etype)) is None


def test_event_round_trips_to_json_data() -> None:
    d = ev(EventType.CHANGE_DONE, id="abc").to_dict()
    assert d["type"] == "change-done"
    assert d["elapsed"] == 1.25
    assert d["id"] == "abc"


@pytest.mark.parametrize(("seconds", "text"), [(0.04, "0.0s"), (9.96, "10.0s"),
                                               (59.9, "59.9s"), (61, "1m01s"),
                                               (3600, "60m00s")])
def test_format_elapsed(seconds: float, text: str) -> None:
    assert format_elapsed(seconds) == text


def outcome(action: Action, status: ChangeStatus, key: str = "k") -> ChangeOutcome:
    return ChangeOutcome(key, "Service/default/x", "container", "x", action, status)


def test_summary_counts_replace_as_add_and_destroy() -> None:
    result = ApplyResult((outcome(Action.CREATE, ChangeStatus.DONE),
                          outcome(Action.CREATE, ChangeStatus.DONE),
                          outcome(Action.REPLACE, ChangeStatus.DONE),
                          outcome(Action.UPDATE, ChangeStatus.DONE),
                          outcome(Action.NOOP, ChangeStatus.DONE)), State(), 1.0)
    assert summary_line(result) == "Apply complete: 3 added, 1 changed, 1 destroyed."
    assert result.adopted == 1
    assert result.ok


def test_summary_of_a_failed_apply_counts_only_what_was_done() -> None:
    result = ApplyResult((outcome(Action.CREATE, ChangeStatus.DONE),
                          outcome(Action.CREATE, ChangeStatus.FAILED),
                          outcome(Action.CREATE, ChangeStatus.NOT_ATTEMPTED),
                          outcome(Action.REPLACE, ChangeStatus.PARTIAL)), State(), 1.0)
    assert not result.ok
    assert summary_line(result, verb="Destroy") == (
        "Destroy failed: 1 added, 0 changed, 0 destroyed; 1 failed, 1 left part-way, "
        "1 not attempted.")
    assert [o.status for o in result.not_done] == [ChangeStatus.NOT_ATTEMPTED,
                                                   ChangeStatus.PARTIAL]
    assert result.to_dict()["ok"] is False


def test_parallelism_must_be_positive() -> None:
    with pytest.raises(ApplyError, match="parallelism"):
        ApplyOptions(parallelism=0)


def test_volume_ids_are_names_and_are_not_cut() -> None:
    line = format_event(ev(EventType.CHANGE_DONE, id="ws-one-default-data"))
    assert "[id=ws-one-default-data]" in line
