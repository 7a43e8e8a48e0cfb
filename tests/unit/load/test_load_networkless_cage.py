"""C11: a cage without networking (deterministic, military-grade, a CageProfile extending
it, or the cluster floor) must not silently drop published ports or networks: validation
reports each at its own key, with the other errors of the run."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from docklock.errors import ValidationError
from docklock.load import load_workspace
from docklock.workspace import WorkspacePaths

MakeWorkspace = Callable[..., WorkspacePaths]

PROFILE = "---\nkind: CageProfile\nmetadata: {name: sealed}\nspec: {extends: military-grade}\n"


def _service(cage: str | None, *, extra: str = "") -> str:
    cage_line = f"  cage: {cage}\n" if cage else ""
    return ("kind: Service\nmetadata: {name: web}\nspec:\n  image: localhost/x:1\n"
            f"{cage_line}  ports:\n    - {{container: 80, host: 18080}}\n{extra}")


@pytest.mark.parametrize(("cage", "floor", "why"), [
    ("deterministic", "standard", "cage 'deterministic'"),
    ("military-grade", "standard", "cage 'military-grade'"),
    ("sealed", "standard", "CageProfile extending deterministic"),
    (None, "deterministic", "the cluster's securityLevel 'deterministic'"),
])
def test_ports_in_a_networkless_cage_are_located_errors(
        make_workspace: MakeWorkspace, cage: str | None, floor: str, why: str) -> None:
    files = {"specs/web.yaml": _service(cage) + PROFILE}
    with pytest.raises(ValidationError) as info:
        load_workspace(make_workspace(files, level=floor))
    diags = [d for d in info.value.diagnostics if "publishes ports" in d.message]
    assert len(diags) == 1, [d.message for d in info.value.diagnostics]
    d = diags[0]
    assert str(d.location) == f"specs/web.yaml:{6 if cage else 5}:3"  # the `ports:` key
    assert d.path == "spec.ports"
    assert why in d.message
    assert "network none" in d.message
    assert d.hint


def test_networks_too_and_collected_with_other_errors(make_workspace: MakeWorkspace) -> None:
    files = {
        "specs/web.yaml": _service("deterministic", extra="  networks: [back]\n")
        + "---\nkind: Network\nmetadata: {name: back}\n",
        "specs/job.yaml": "kind: Job\nmetadata: {name: j}\nspec:\n  image: x\n"
                          "  cage: deterministic\n  networks: [back]\n"
                          "  dependsOn: [{name: nowhere}]\n",
    }
    with pytest.raises(ValidationError) as info:
        load_workspace(make_workspace(files))
    shown = sorted(f"{d.location} {d.path}" for d in info.value.diagnostics)
    assert shown == [
        "specs/job.yaml:6:3 spec.networks",
        "specs/job.yaml:7:16 spec.dependsOn[0].name",  # collected together
        "specs/web.yaml:6:3 spec.ports",
        "specs/web.yaml:8:3 spec.networks",
    ]


@pytest.mark.parametrize("cage", ["standard", "hardened", "locked"])
def test_cages_with_networking_keep_their_ports(make_workspace: MakeWorkspace,
                                                cage: str) -> None:
    files = {"specs/web.yaml": _service(cage, extra="  networks: [back]\n")
             + "---\nkind: Network\nmetadata: {name: back}\n"
             + "---\nkind: CageProfile\nmetadata: {name: locked}\nspec: {extends: hardened}\n"}
    assert load_workspace(make_workspace(files)).by_address("web")


def test_a_deterministic_service_without_ports_is_fine(make_workspace: MakeWorkspace) -> None:
    files = {"specs/a.yaml": "kind: Service\nmetadata: {name: a}\n"
                             "spec: {image: x, cage: deterministic}\n"}
    assert load_workspace(make_workspace(files)).by_address("a")
