"""docklock.units.seconds and the CLI's duration type: one syntax for every duration."""

from __future__ import annotations

import argparse

import pytest

from docklock.cli import build_parser
from docklock.cli._common import duration_arg
from docklock.errors import CageError
from docklock.units import duration_ns, seconds

GOOD = [
    ("1m30s", 90.0), ("30s", 30.0), ("30", 30.0), ("500ms", 0.5), ("1.5m", 90.0),
    ("0", 0.0), ("2.5", 2.5), ("1h", 3600.0), (" 10s ", 10.0),
]
BAD = ["", "abc", "30x", "-1", "1m 30s", "s", "1.2.3"]


@pytest.mark.parametrize(("text", "expected"), GOOD)
def test_seconds(text: str, expected: float) -> None:
    assert seconds(text) == pytest.approx(expected)
    assert duration_arg(text) == pytest.approx(expected)


@pytest.mark.parametrize("bad", BAD)
def test_seconds_rejects(bad: str) -> None:
    with pytest.raises(CageError):
        seconds(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="not a duration"):
        duration_arg(bad)


def test_seconds_agrees_with_duration_ns() -> None:
    for text in ("2s", "1m30s", "500ms", "1h"):
        assert seconds(text) == duration_ns(text) / 1e9


@pytest.mark.parametrize("argv", [
    ["plan", "--lock-timeout", "1m30s"],
    ["apply", "--lock-timeout", "90"],
    ["destroy", "--lock-timeout", "90s"],
])
def test_cli_lock_timeout_takes_every_form(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).lock_timeout == pytest.approx(90.0)


def test_cli_health_timeout_and_ping_flags() -> None:
    args = build_parser().parse_args(["apply", "--health-timeout", "500ms"])
    assert args.health_timeout == pytest.approx(0.5)
    args = build_parser().parse_args(["podman", "ping", "--interval", "250ms", "--wait", "1m"])
    assert (args.interval, args.wait) == (pytest.approx(0.25), pytest.approx(60.0))


def test_cli_rejects_a_bad_duration(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["plan", "--lock-timeout", "soon"])
    assert exc.value.code == 1
    assert "not a duration: 'soon'" in capsys.readouterr().err
