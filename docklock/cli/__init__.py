"""The `docklock` command line: parse, call the engine, render, exit.

This is the only place that prints and exits. Each command group lives in its own
module `docklock/cli/cmd_<group>.py` exposing `register(subparsers, common)`; they are
discovered here (the files of this folder), so adding a command never edits a shared
list. Every DockLockError is caught once, in `main`, and turned into a one-line message
and its exit code; so is an OSError (a path that cannot be read or written) and, as a
last resort, any other exception (an internal error). Tracebacks are shown only with
--debug. Usage errors exit 1 like every other error: exit 2 is reserved for "changes
present / drift / determinism mismatch".

Start-up is paid by every command (house rule 12): this module imports nothing at its
top beyond `sys` and `errno` (not even `typing`: about 9 ms with the `re` it pulls in),
`docklock --version` answers before anything else is imported, and the command modules
import their engine code inside their handlers.
"""

from __future__ import annotations

import errno
import sys

from docklock import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; mypy knows the name
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from docklock.cli._common import Output
    from docklock.errors import DockLockError

# errno → what to check, for the one-line OSError message.
_OS_HINTS = {
    errno.ENOENT: "check that the path exists",
    errno.EISDIR: "it is a folder: name a file",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EACCES: "check the permissions of the path",
    errno.EPERM: "check the permissions of the path",
    errno.EROFS: "the file system is read-only: pass a path elsewhere",
    errno.ENOSPC: "the disk is full: free some space",
    errno.ELOOP: "the path is a symlink loop",
}


def command_modules() -> list[str]:
    """The `cmd_*` modules of this package, sorted: a listing of its folder (cheaper than
    pkgutil, which this would be the only user of)."""
    import os

    names = set()
    for package_dir in __path__:
        try:
            entries = os.listdir(package_dir)
        except OSError:
            continue
        for entry in entries:
            stem, dot, suffix = entry.partition(".")
            if stem.startswith("cmd_") and dot and suffix in ("py", "pyc") and stem.isidentifier():
                names.add(stem)
    return sorted(names)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from docklock.cli._common import DockLockParser, common_parser

    common = common_parser()
    parser = DockLockParser(
        prog="docklock",
        description="Declarative plan/apply for caged Podman workloads, with a signed ledger.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"docklock {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                parser_class=DockLockParser)
    for name in command_modules():
        module = importlib.import_module(f"docklock.cli.{name}")
        module.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if (sys.argv[1:] if argv is None else list(argv)) == ["--version"]:
        # The fast path: what argparse's version action prints, with nothing imported.
        sys.stdout.write(f"docklock {__version__}\n")
        return 0
    from docklock.cli._common import Output
    from docklock.errors import EXIT_ERROR, EXIT_INTERRUPTED, DockLockError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (1)
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    out = Output.from_args(args)
    handler = getattr(args, "handler", None)
    if handler is None:
        out.error(parser.format_help().rstrip())
        out.error("error: name a command (hint: `docklock --help` lists them)")
        return EXIT_ERROR
    try:
        code = handler(args, out)
        return int(code or 0)
    except DockLockError as exc:
        return _fail(args, out, exc)
    except KeyboardInterrupt:
        out.error("interrupted (Ctrl-C); state holds every change completed so far")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR
    except OSError as exc:
        return _fail(args, out, _os_error(exc))
    except Exception as exc:  # the last resort: one line, never a traceback
        return _fail(args, out, DockLockError(
            f"internal error: {type(exc).__name__}: {_first_line(str(exc))}",
            hint="rerun with --debug and report it"))


def _fail(args: argparse.Namespace, out: Output, exc: DockLockError) -> int:
    """Report `exc` (called inside the `except` block, so --debug shows the original)."""
    if getattr(args, "debug", False):
        import traceback

        traceback.print_exc()
    if getattr(args, "json", False) and getattr(args, "json_errors", True):
        out.json({"error": exc.to_dict(), "errors": _diagnostics(exc)}, stream=sys.stdout)
    out.error(exc.explain())
    return exc.exit_code


def _os_error(exc: OSError) -> DockLockError:
    """`error: Is a directory: /etc (hint: ...)`: what went wrong and on which path."""
    from docklock.errors import DockLockError

    what = exc.strerror or _first_line(str(exc)) or type(exc).__name__
    if exc.filename is not None:
        what += f": {exc.filename}"
        if exc.filename2 is not None:
            what += f" -> {exc.filename2}"
    # A write that finds the disk full names no path, and still deserves the hint.
    hint = _OS_HINTS.get(exc.errno or 0, "check the path" if exc.filename is not None else "")
    return DockLockError(what, hint=hint)


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def _diagnostics(exc: DockLockError) -> list[dict[str, object]]:
    diags = getattr(exc, "diagnostics", None)
    if diags:
        return [d.to_dict() for d in diags]
    return [exc.to_dict()]
