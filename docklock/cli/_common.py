"""Shared CLI plumbing: common flags, colour policy, and the output sink.

Only the CLI writes to stdout/stderr, through `Output`, so colour (NO_COLOR, TTY) and
JSON rendering are decided in one place.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from docklock.workspace import WorkspacePaths, find_workspace

_COLORS = {"green": "32", "yellow": "33", "red": "31", "cyan": "36", "bold": "1", "dim": "2"}


def common_parser() -> argparse.ArgumentParser:
    """Flags every command accepts, before or after the command name."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-C", dest="directory", metavar="DIR", default=argparse.SUPPRESS,
                   help="workspace folder (default: search upward from the current folder)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show Python tracebacks on errors")
    p.add_argument("--podman-url", default=argparse.SUPPRESS, metavar="URL",
                   help="Podman API URL (also DOCKLOCK_PODMAN_URL)")
    p.add_argument("--no-color", action="store_true", default=argparse.SUPPRESS,
                   help="disable colour (also NO_COLOR)")
    return p


def workspace_of(args: argparse.Namespace) -> WorkspacePaths:
    return find_workspace(getattr(args, "directory", None))


@dataclass
class Output:
    stdout: TextIO
    stderr: TextIO
    color: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Output:
        color = (
            not getattr(args, "no_color", False)
            and "NO_COLOR" not in os.environ
            and os.environ.get("TERM") != "dumb"
            and sys.stdout.isatty()
        )
        return cls(sys.stdout, sys.stderr, color)

    @property
    def is_tty(self) -> bool:
        return self.stdout.isatty()

    def paint(self, text: str, color: str) -> str:
        if not self.color:
            return text
        return f"\x1b[{_COLORS[color]}m{text}\x1b[0m"

    def line(self, text: str = "") -> None:
        print(text, file=self.stdout, flush=True)

    def info(self, text: str) -> None:
        print(text, file=self.stderr, flush=True)

    def error(self, text: str) -> None:
        print(text, file=self.stderr, flush=True)

    def json(self, value: Any, *, stream: TextIO | None = None) -> None:
        print(json.dumps(value, indent=2, sort_keys=True), file=stream or self.stdout,
              flush=True)
