"""Values a schema accepts but Podman cannot apply: found at validation, not mid-apply.

JSON Schema (and CUE) check shapes and simple ranges; some values pass them and still
fail, or silently misbehave, once they reach Podman. Each check here names the rule it
enforces and why, and runs on a document that already passed its schema:

* `cpus`: a number, but NaN passes every JSON Schema comparison; below 0.01 the CFS
  quota (cpus x 100 ms) is under the kernel's 1 ms floor ("CPU cfs quota cannot be less
  than 1ms"). The host's CPU count is not checked here: a workspace may target other
  nodes, and plan sees the real host.
* memory sizes (`resources.memory`, a CageProfile's `memory`): at least 6 MiB (runc
  could not even start its init process below that: "unable to set memory limit") and
  at most 2^63-1 bytes (Podman's int64).
* healthcheck durations: each fits Go's time.Duration (int64 nanoseconds, ~292 years);
  `interval` and `timeout` are more than zero (zero would never run the check, so a
  `healthy` dependency would wait forever).
* `ports[].hostIp`: a real IPv4 or IPv6 address (the schema's pattern admits `999.1.1.1`).
* a Network's `subnet`: a real network (prefix length within the address family; no
  host bits set, e.g. `10.99.0.1/16` is written `10.99.0.0/16`).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterator, Mapping
from typing import Any

from docklock.errors import CageError
from docklock.units import duration_ns, memory_bytes

PathItem = str | int
Problem = tuple[tuple[PathItem, ...], str, str]  # (JSON path, message, hint)

MIN_CPUS = 0.01
MIN_MEMORY_BYTES = 6 * 1024 * 1024
INT64_MAX = 2**63 - 1


def value_problems(doc: Any) -> list[Problem]:
    """Every value of a schema-valid document that Podman could not apply."""
    if not isinstance(doc, Mapping):
        return []
    spec = doc.get("spec")
    if not isinstance(spec, Mapping):
        return []
    kind = doc.get("kind")
    out: list[Problem] = []
    if kind in ("Service", "Job"):
        out.extend(_limits(spec))
        out.extend(_healthcheck(spec))
        out.extend(_ports(spec))
    elif kind == "CageProfile" and isinstance(spec.get("memory"), str):
        out.extend(_memory(("spec", "memory"), spec["memory"]))
    elif kind == "Network" and isinstance(spec.get("subnet"), str):
        out.extend(_subnet(spec["subnet"]))
    return out


def _limits(spec: Mapping[str, Any]) -> Iterator[Problem]:
    limits = spec.get("resources")
    if not isinstance(limits, Mapping):
        return
    cpus = limits.get("cpus")
    path: tuple[PathItem, ...] = ("spec", "resources", "cpus")
    if isinstance(cpus, float) and not math.isfinite(cpus):
        yield (path, f"cpus must be a number, not {cpus}",
               "write the CPU share as a number such as 0.5 or 2")
    elif isinstance(cpus, (int, float)) and not isinstance(cpus, bool) and cpus < MIN_CPUS:
        yield (path, f"cpus {cpus} is below {MIN_CPUS}: the CPU quota would be under the "
                     "kernel's 1 ms per 100 ms period",
               f"use at least {MIN_CPUS}")
    memory = limits.get("memory")
    if isinstance(memory, str):
        yield from _memory(("spec", "resources", "memory"), memory)


def _memory(path: tuple[PathItem, ...], text: str) -> Iterator[Problem]:
    try:
        size = memory_bytes(text)
    except OverflowError:  # so many digits that the float is infinite
        size = INT64_MAX + 1
    except (CageError, ValueError):
        return  # the schema's pattern reports malformed sizes
    if size < MIN_MEMORY_BYTES:
        yield (path, f"memory {text} is {size:,} bytes, below the {MIN_MEMORY_BYTES:,} "
                     "(6 MiB) a container needs to start",
               "use at least 6Mi")
    elif size > INT64_MAX:
        yield (path, f"memory {text} is larger than Podman can represent (2^63-1 bytes)",
               "use a real size, e.g. 512Mi or 4Gi")


def _healthcheck(spec: Mapping[str, Any]) -> Iterator[Problem]:
    hc = spec.get("healthcheck")
    if not isinstance(hc, Mapping):
        return
    for key in ("interval", "timeout", "startPeriod"):
        text = hc.get(key)
        if not isinstance(text, str):
            continue
        path: tuple[PathItem, ...] = ("spec", "healthcheck", key)
        try:
            ns = duration_ns(text)
        except OverflowError:  # so many digits that the float is infinite
            ns = INT64_MAX + 1
        except (CageError, ValueError):
            continue  # the schema's pattern reports malformed durations
        if ns > INT64_MAX:
            yield (path, f"healthcheck {key} {text} is longer than Podman accepts "
                         "(about 292 years)", "use a duration such as 30s, 5m or 1h")
        elif ns == 0 and key != "startPeriod":
            what = "the check would never run" if key == "interval" \
                else "every check would fail at once"
            yield (path, f"healthcheck {key} {text} is zero: {what}",
                   "use a positive duration such as 2s")


def _ports(spec: Mapping[str, Any]) -> Iterator[Problem]:
    ports = spec.get("ports")
    if not isinstance(ports, list):
        return
    for i, port in enumerate(ports):
        ip = port.get("hostIp") if isinstance(port, Mapping) else None
        if not isinstance(ip, str):
            continue
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            yield (("spec", "ports", i, "hostIp"), f"hostIp {ip!r} is not an IP address",
                   "use an IPv4 or IPv6 address such as 127.0.0.1, 0.0.0.0 or ::1")


def _subnet(subnet: str) -> Iterator[Problem]:
    path: tuple[PathItem, ...] = ("spec", "subnet")
    try:
        ipaddress.ip_network(subnet, strict=True)
    except ValueError as exc:
        hint = "write it as address/prefix, e.g. 10.89.0.0/24 or fd00:1::/64"
        try:
            loose = ipaddress.ip_network(subnet, strict=False)
        except ValueError:
            pass
        else:
            hint = f"the network address of this subnet is {loose}: write that"
        yield (path, f"subnet {subnet!r} is not a valid network ({exc})", hint)
