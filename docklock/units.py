"""Units written in specs and on the command line: memory sizes and durations.

One parser per unit, shared by the cage (healthcheck durations, memory limits for
podman-py), apply (health waits) and the CLI (--lock-timeout, --health-timeout, ...).
Pure functions: no Podman, no files.
"""

from __future__ import annotations

import re

from docklock.errors import CageError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtKMGT]i?|[bB])?\s*$")
_POWERS = {"": 0, "b": 0, "k": 1, "m": 2, "g": 3, "t": 4}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
       "m": 60_000_000_000, "h": 3_600_000_000_000}
_BARE_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def memory_bytes(text: str | int) -> int:
    """`64Mi`, `512m`, `1G`, `1048576` → bytes (units are binary, like Podman's)."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(text)
    if match is None:
        raise CageError(f"not a memory size: {text!r}", hint="use e.g. 64Mi, 512m or 1Gi")
    number, unit = match.groups()
    return int(float(number) * 1024 ** _POWERS[(unit or "")[:1].lower()])


def duration_ns(text: str) -> int:
    """Go-style durations (`2s`, `1m30s`, `500ms`) → nanoseconds."""
    text = text.strip()
    if text in ("", "0"):
        return 0
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise CageError(f"not a duration: {text!r}", hint="use e.g. 500ms, 2s or 1m30s")
    return sum(int(float(n) * _NS[u]) for n, u in parts)


def seconds(text: str) -> float:
    """A duration in seconds: Go-style (`500ms`, `30s`, `1m30s`) or a bare number (`30`).

    Unlike duration_ns, an empty text is refused: on the command line it is a mistake,
    not "no time".
    """
    t = text.strip()
    if _BARE_SECONDS.fullmatch(t):
        return float(t)
    if not t:
        raise CageError("not a duration: empty", hint="use e.g. 30, 500ms, 30s or 1m30s")
    return duration_ns(t) / 1e9
