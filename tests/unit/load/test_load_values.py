"""D25: values that pass the schema but that Podman cannot apply are validation errors,
each at its own key with a hint — never a failure halfway through an apply."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from docklock.errors import ValidationError
from docklock.load import load_workspace
from docklock.workspace import WorkspacePaths

MakeWorkspace = Callable[..., WorkspacePaths]


def _service(body: str) -> str:
    return "kind: Service\nmetadata: {name: web}\nspec:\n  image: x\n" + body


def _network(subnet: str) -> str:
    return f"kind: Network\nmetadata: {{name: n}}\nspec:\n  subnet: '{subnet}'\n"


# name → (document, expected "line:col path", fragment of the message)
BAD = {
    "cpus-nan": (_service("  resources: {cpus: .nan}\n"), "5:15 spec.resources.cpus",
                 "not nan"),
    "cpus-nan-upper": (_service("  resources:\n    cpus: .NaN\n"), "6:5 spec.resources.cpus",
                       "not nan"),
    # inf and negative numbers: the schema's bounds (0 < cpus <= 1024) refuse them
    "cpus-inf": (_service("  resources: {cpus: .inf}\n"), "5:15 spec.resources.cpus",
                 "greater than the maximum of 1024"),
    "cpus-negative-inf": (_service("  resources: {cpus: -.inf}\n"),
                          "5:15 spec.resources.cpus", "less than or equal to the minimum"),
    "cpus-negative": (_service("  resources: {cpus: -2}\n"), "5:15 spec.resources.cpus",
                      "less than or equal to the minimum"),
    "cpus-below-the-cfs-floor": (_service("  resources: {cpus: 0.001}\n"),
                                 "5:15 spec.resources.cpus", "below 0.01"),
    "memory-below-6mi": (_service("  resources: {memory: 1k}\n"),
                         "5:15 spec.resources.memory", "below the 6,291,456"),
    "memory-beyond-int64": (_service("  resources: {memory: 99999999999999999999Ti}\n"),
                            "5:15 spec.resources.memory", "larger than Podman"),
    "memory-infinite": (_service("  resources: {memory: '" + "9" * 400 + "'}\n"),
                        "5:15 spec.resources.memory", "larger than Podman"),
    "cageprofile-memory-tiny": ("kind: CageProfile\nmetadata: {name: c}\n"
                                "spec: {extends: hardened, memory: 1m}\n",
                                "3:27 spec.memory", "below the 6,291,456"),
    "interval-beyond-go-duration": (
        _service("  healthcheck: {command: ['true'], interval: 100000000h}\n"),
        "5:36 spec.healthcheck.interval", "longer than Podman accepts"),
    "timeout-infinite": (
        _service("  healthcheck: {command: ['true'], timeout: " + "9" * 400 + "s}\n"),
        "5:36 spec.healthcheck.timeout", "longer than Podman accepts"),
    "start-period-beyond": (
        _service("  healthcheck: {command: ['true'], startPeriod: 999999999999h}\n"),
        "5:36 spec.healthcheck.startPeriod", "longer than Podman accepts"),
    "interval-zero": (_service("  healthcheck: {command: ['true'], interval: 0s}\n"),
                      "5:36 spec.healthcheck.interval", "never run"),
    "timeout-zero": (_service("  healthcheck: {command: ['true'], timeout: 0ms}\n"),
                     "5:36 spec.healthcheck.timeout", "fail at once"),
    "subnet-prefix-99": (_network("10.99.0.0/99"), "4:3 spec.subnet", "not a valid network"),
    "subnet-octet-300": (_network("10.300.0.0/16"), "4:3 spec.subnet", "not a valid network"),
    "subnet-host-bits": (_network("10.99.0.1/16"), "4:3 spec.subnet", "host bits set"),
    "subnet-ipv6-prefix": (_network("fd00::/129"), "4:3 spec.subnet", "not a valid network"),
    "host-ip-octet-999": (_service("  ports: [{container: 80, host: 8080, hostIp: 999.1.1.1}]\n"),
                          "5:39 spec.ports[0].hostIp", "not an IP address"),
    "host-ip-colons": (_service("  ports: [{container: 80, host: 8080, hostIp: ':::'}]\n"),
                       "5:39 spec.ports[0].hostIp", "not an IP address"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_unapplicable_value_is_a_located_error(make_workspace: MakeWorkspace,
                                               name: str) -> None:
    doc, where, says = BAD[name]
    with pytest.raises(ValidationError) as info:
        load_workspace(make_workspace({"specs/a.yaml": doc}))
    shown = [f"{d.location.line}:{d.location.column} {d.path}" if d.location else d.path
             for d in info.value.diagnostics]
    assert shown == [where]
    d = info.value.diagnostics[0]
    assert d.location is not None
    assert d.location.file == "specs/a.yaml"
    assert says in d.message
    assert d.hint
    if name == "subnet-host-bits":
        assert "10.99.0.0/16" in d.hint  # says what to write


GOOD = {
    "cpus-small": _service("  resources: {cpus: 0.01, memory: 6Mi}\n"),
    "cpus-whole": _service("  resources: {cpus: 2}\n"),
    "durations": _service("  healthcheck: {command: ['true'], interval: 500ms, timeout: 1h, "
                          "startPeriod: 0s}\n"),
    "ipv6-host-ip": _service("  ports: [{container: 80, host: 8080, hostIp: '::1'}]\n"),
    "wildcard-host-ip": _service("  ports: [{container: 80, host: 8080, hostIp: 0.0.0.0}]\n"),
    "subnet-v4": _network("10.99.0.0/16"),
    "subnet-v6": _network("fd00:1::/64"),
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_applicable_values_still_validate(make_workspace: MakeWorkspace, name: str) -> None:
    assert load_workspace(make_workspace({"specs/a.yaml": GOOD[name]})).resources
