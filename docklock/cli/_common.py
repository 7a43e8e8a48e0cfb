"""Shared CLI plumbing: the parser class, common flags, colour policy, the output sink,
checks of output paths given on the command line, and the engine `Context` a command's
flags describe (`context_of`): commands reach Podman, state and the ledger only through
the engine (docklock/engine), never by importing docklock.runtime or docklock.state.

Only the CLI writes to stdout/stderr, through `Output`, so colour (NO_COLOR, TTY) and
JSON rendering are decided in one place. Usage errors exit 1 (exit 2 means "changes
present / drift / determinism mismatch" in DockLock, not argparse's "bad usage").
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import functools
import json
import os
import re
import stat
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from docklock.errors import EXIT_ERROR, DockLockError
from docklock.units import seconds
from docklock.workspace import WorkspacePaths, find_workspace

if TYPE_CHECKING:
    from docklock.engine.context import Context

_COLORS = {"green": "32", "yellow": "33", "red": "31", "cyan": "36", "bold": "1", "dim": "2"}


class UsageError(DockLockError):
    """A command-line argument that cannot work (e.g. --out naming a folder)."""


class DockLockParser(argparse.ArgumentParser):
    """argparse with DockLock's exit code for bad usage: 1, not argparse's 2.

    Subparsers inherit the class (argparse's add_subparsers defaults `parser_class` to the
    parent's type), so every command and group parser behaves the same. A mistyped
    command suggests the nearest one (`docklock aply` -> "did you mean apply?"), as does
    a mistyped choice of an option, and an unknown flag points at the help of the
    command it was given to (`docklock cluster init --bogus` -> `docklock cluster init
    --help`), not at the top level's.
    """

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            # The innermost parser that ran knows which command took the unknown flags.
            inner = getattr(parsed, _PARSER_ATTR, self)
            if not isinstance(inner, DockLockParser):
                inner = self
            inner._fail(f"unrecognized arguments: {' '.join(extras)}", inner.prog)
        if hasattr(parsed, _PARSER_ATTR):
            delattr(parsed, _PARSER_ATTR)
        return parsed

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None,
                         ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        # A subparser finishes before its parent and its namespace is copied into the
        # parent's: the first parser to set this is the innermost command.
        if not hasattr(parsed, _PARSER_ATTR):
            setattr(parsed, _PARSER_ATTR, self)
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        choice = _INVALID_CHOICE.match(message)
        if choice is not None:
            message = self._suggest(choice.group("arg"), _unquote(choice.group("value")),
                                    message)
            if message.startswith("unknown command"):
                self._fail(message, self.prog, tail="lists them")
        self._fail(message, self.prog)

    def _fail(self, message: str, prog: str, *, tail: str = "lists what it takes") -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"error: {message} (hint: `{prog} --help` {tail})\n")

    def _suggest(self, arg: str, value: str, message: str) -> str:
        """`unknown command 'aply' (did you mean apply?)` for a subcommand; the argparse
        message plus `(did you mean ...?)` for another option's choices."""
        for action in self._actions:
            if action.choices is None or argparse._get_action_name(action) != arg:
                continue
            names = [str(c) for c in action.choices]
            close = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
            if not close:  # a prefix of one name (`docklock led`) is a fair guess too
                close = [n for n in names if n.startswith(value)][:1] if value else []
            if isinstance(action, argparse._SubParsersAction):
                where = self.prog.removeprefix("docklock").strip()
                typed = f"{where} {value}".strip()
                guess = f" (did you mean {where + ' ' if where else ''}{close[0]}?)" \
                    if close else ""
                return f"unknown command '{typed}'{guess}"
            if close:
                return f"{message} (did you mean {close[0]}?)"
        return message


_PARSER_ATTR = "_docklock_parser"
_INVALID_CHOICE = re.compile(r"argument (?P<arg>.+?): invalid choice: (?P<value>'.*?'|\".*?\")"
                             r" \(choose from")


def _unquote(text: str) -> str:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text.strip("'\"")
    return str(value)


def command_group(parser: argparse.ArgumentParser, *, dest: str,
                  metavar: str = "COMMAND") -> argparse._SubParsersAction[Any]:
    """The subcommands of a group (`docklock keys ...`).

    A bare `docklock GROUP` prints the group's help and one error line naming its
    commands on stderr, and exits 1, the same for every group.
    """
    sub = parser.add_subparsers(dest=dest, metavar=metavar, parser_class=DockLockParser)
    parser.set_defaults(handler=functools.partial(_group_help, parser, sub))
    return sub


def _group_help(parser: argparse.ArgumentParser, sub: argparse._SubParsersAction[Any],
                _args: argparse.Namespace, out: Output) -> int:
    names: dict[int, str] = {}
    for name, child in sub.choices.items():  # aliases map to the same parser: keep the first
        names.setdefault(id(child), name)
    metavar = str(sub.metavar or "COMMAND")
    noun = "command" if metavar == "SUBCOMMAND" else metavar.lower()
    article = "an" if noun[0] in "aeiou" else "a"
    out.error(parser.format_help().rstrip())
    out.error(f"error: `{parser.prog}` needs {article} {noun}: {', '.join(names.values())} "
              f"(hint: `{parser.prog} {metavar} --help`)")
    return EXIT_ERROR


def common_parser() -> argparse.ArgumentParser:
    """Flags every command accepts, before or after the command name."""
    p = DockLockParser(add_help=False)
    p.add_argument("-C", dest="directory", metavar="DIR", default=argparse.SUPPRESS,
                   help="workspace folder (default: search upward from the current folder)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show Python tracebacks on errors")
    p.add_argument("--podman-url", default=argparse.SUPPRESS, metavar="URL",
                   help="Podman API URL (also DOCKLOCK_PODMAN_URL)")
    p.add_argument("--no-color", action="store_true", default=argparse.SUPPRESS,
                   help="disable colour (also NO_COLOR)")
    return p


def duration_arg(text: str) -> float:
    """argparse type for --lock-timeout, --health-timeout and the like: seconds.

    Takes a bare number of seconds (`30`) or a Go-style duration (`500ms`, `30s`,
    `1m30s`), the same syntax as healthcheck durations in the specs.
    """
    try:
        return seconds(text)
    except DockLockError:
        raise argparse.ArgumentTypeError(
            f"not a duration: {text!r} (use seconds like 30, or 500ms, 30s, 1m30s)") from None


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """argparse type for a whole number in low..high (--parallelism, --replicas)."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if high is not None and not low <= n <= high:
            raise argparse.ArgumentTypeError(f"{n} is outside {low}..{high}")
        if n < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}")
        return n

    return parse


def ask_yes(out: Output, question: str) -> bool:
    """Terraform's confirmation: True only when the operator types `yes`."""
    out.line(out.paint(question, "bold"))
    out.line("  Only 'yes' will be accepted to approve.")
    try:
        answer = input("  Enter a value: ")
    except EOFError:
        answer = ""
    out.line()
    return answer.strip() == "yes"


def workspace_of(args: argparse.Namespace) -> WorkspacePaths:
    return find_workspace(getattr(args, "directory", None))


def context_of(args: argparse.Namespace) -> Context:
    """The engine Context the flags name: -C (or the workspace found upward),
    --podman-url and --cue. Raises WorkspaceError outside a workspace."""
    from docklock.engine.context import Context

    return Context.find(getattr(args, "directory", None),
                        podman_url=getattr(args, "podman_url", None),
                        cue=getattr(args, "cue", None))


def check_out_path(path: Path, *, flag: str = "--out") -> Path:
    """Refuse an output file the command could not write, before it does any work.

    The folder must exist (nothing is created), the path must not be a folder or a
    device, and a file must be creatable next to it (the writers write a temporary file
    there and rename it).
    """
    def fail(problem: str, hint: str) -> NoReturn:
        raise UsageError(f"{flag} {path}: {problem}", hint=hint)

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        fail(f"cannot use it ({exc.strerror or exc})", "pass a file path you can write")
    if mode is not None and stat.S_ISDIR(mode):
        fail("is a folder", f"name a file in it: {flag} {path / 'NAME.json'}")
    if mode is not None and not stat.S_ISREG(mode):
        fail("is not a regular file", "name a regular file: the output replaces it")
    folder = path.parent
    if not folder.is_dir():
        fail(f"folder {folder} does not exist", "create the folder first, or pass another path")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".check", dir=folder)
    except OSError as exc:
        fail(f"cannot write in {folder} ({exc.strerror or exc})",
             "pass a path in a folder you can write")
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return path


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


def add_cue_option(parser: argparse.ArgumentParser) -> None:
    """`--cue PATH` for every command that loads the specs."""
    parser.add_argument("--cue", metavar="PATH", default=None,
                        help="cue executable for CUE agreements (also DOCKLOCK_CUE; default: "
                             "cue on PATH, then the bundled Node.js launcher)")
