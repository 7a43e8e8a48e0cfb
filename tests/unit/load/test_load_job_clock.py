"""A deterministic Job's SOURCE_DATE_EPOCH that cannot start its clock (not a whole number
of seconds in range, or marked sensitive) is a validation error at the env entry, as plan
and run would refuse it; other cages and spec.clock.epoch leave the value alone."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from docklock.errors import ValidationError
from docklock.load import load_workspace
from docklock.workspace import WorkspacePaths

MakeWorkspace = Callable[..., WorkspacePaths]


def _job(cage: str, value: str, *, clock: str = "") -> str:
    return ("kind: Job\nmetadata: {name: j}\nspec:\n  image: localhost/x:1\n"
            f"  cage: {cage}\n{clock}  env:\n    A: b\n    SOURCE_DATE_EPOCH: {value}\n")


@pytest.mark.parametrize(("value", "says"), [
    ("soon", "'soon' is not a whole number of seconds"),
    ("'99999999999999'", "is not a whole number of seconds in 0..253402300799"),
    ("{value: '5', sensitive: true}", "a sensitive SOURCE_DATE_EPOCH cannot set"),
])
def test_a_bad_source_date_epoch_is_located(make_workspace: MakeWorkspace, value: str,
                                            says: str) -> None:
    with pytest.raises(ValidationError) as info:
        load_workspace(make_workspace({"specs/j.yaml": _job("deterministic", value)}))
    (d,) = [d for d in info.value.diagnostics if "SOURCE_DATE_EPOCH" in d.message]
    assert says in d.message
    assert d.message.startswith("Job/default/j: ")
    assert str(d.location) == "specs/j.yaml:8:5"  # the SOURCE_DATE_EPOCH key
    assert d.path == "spec.env.SOURCE_DATE_EPOCH"
    assert "spec.clock.epoch" in (d.hint or "")
    assert "'5'" not in d.message  # a sensitive value is not quoted


@pytest.mark.parametrize(("cage", "clock"), [
    ("hardened", ""),  # no clock to start
    ("deterministic", "  clock: {epoch: 7}\n"),  # the env value is not the clock
])
def test_other_cages_and_an_explicit_epoch_leave_it_alone(make_workspace: MakeWorkspace,
                                                          cage: str, clock: str) -> None:
    ws = load_workspace(make_workspace({"specs/j.yaml": _job(cage, "soon", clock=clock)}))
    assert len(ws.resources) == 1
