"""Issue 11 D27: the summary counts what happened in Podman, including the part of a
change that failed or was left part-way (created, started, removed, renamed aside)."""

from __future__ import annotations

import pytest

from docklock.apply import (
    ApplyEvent,
    ApplyJournal,
    ApplyResult,
    ChangeOutcome,
    ChangeStatus,
    Effect,
    EventType,
    summary_line,
)
from docklock.plan import Action, Plan
from docklock.state import State


def outcome(action: Action, status: ChangeStatus, *effects: Effect) -> ChangeOutcome:
    return ChangeOutcome("k", "Service/default/x", "container", "x", action, status,
                         effects=tuple(e.value for e in effects))


def test_a_failed_replace_that_renamed_and_created_counts_the_new_container() -> None:
    # Podman went away after the old container was renamed aside and the new one created
    result = ApplyResult((outcome(Action.REPLACE, ChangeStatus.FAILED,
                                  Effect.RENAMED, Effect.CREATED),), State(), 1.0)
    assert (result.added, result.changed, result.destroyed) == (1, 0, 0)
    assert result.renamed_aside == 1
    assert summary_line(result) == (
        "Apply failed: 1 added, 0 changed, 0 destroyed; 1 failed, 1 old container(s) "
        "kept under a retired name.")


@pytest.mark.parametrize(("o", "counts"), [
    (outcome(Action.REPLACE, ChangeStatus.PARTIAL, Effect.REMOVED), (0, 0, 1)),
    (outcome(Action.CREATE, ChangeStatus.FAILED, Effect.CREATED, Effect.STARTED), (1, 0, 0)),
    (outcome(Action.UPDATE, ChangeStatus.FAILED, Effect.STARTED), (0, 1, 0)),
    (outcome(Action.DELETE, ChangeStatus.FAILED), (0, 0, 0)),
    (outcome(Action.CREATE, ChangeStatus.NOT_ATTEMPTED), (0, 0, 0)),
    (outcome(Action.REPLACE, ChangeStatus.DONE), (1, 0, 1)),
])
def test_counts_follow_the_effects(o: ChangeOutcome, counts: tuple[int, int, int]) -> None:
    result = ApplyResult((o,), State(), 1.0)
    assert (result.added, result.changed, result.destroyed) == counts
    assert result.to_dict()["outcomes"][0]["effects"] == list(o.effects)


def test_a_halted_apply_is_not_ok_and_says_why() -> None:
    result = ApplyResult((outcome(Action.CREATE, ChangeStatus.DONE),
                          outcome(Action.CREATE, ChangeStatus.NOT_ATTEMPTED)), State(), 1.0,
                         halted="the ledger could not record the intent of create:k")
    assert not result.ok
    line = summary_line(result)
    assert line.startswith("Apply failed: 1 added, 0 changed, 0 destroyed; 1 not attempted")
    assert "(stopped: the ledger could not record the intent of create:k)" in line
    assert result.to_dict()["halted"].startswith("the ledger")


class _Ledger:
    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, object]]] = []

    def append(self, type: str, payload: dict[str, object], *,
               serial: int | None = None) -> None:
        self.entries.append((type, dict(payload)))


def test_the_journal_writes_the_intent_and_the_effects() -> None:
    ledger = _Ledger()
    journal = ApplyJournal(ledger, Plan(cluster="c", lineage="l", serial=1, spec_digest="d",
                                        changes=()))
    journal.intent(ApplyEvent(EventType.STEP_INTENT, key="container:a", address="A",
                              action="replace", message="create", step="create:container:a"))
    journal.on_event(ApplyEvent(EventType.CHANGE_FAILED, key="container:a", action="replace",
                                effects=("renamed", "created")))
    (t1, intent), (t2, done) = ledger.entries
    assert (t1, intent["status"], intent["step"]) == ("change", "pending", "create:container:a")
    assert (t2, done["status"], done["effects"]) == ("change", "failed", ["renamed", "created"])
