"""Write docs/cli.md, the CLI reference, from the parser the `docklock` command builds.

Walks `docklock.cli.build_parser()`: every command and nested group (aliases included),
its one-line help, description, usage, positional arguments and options (metavar,
choices, default, help). The options every command accepts (-C, --debug, --podman-url,
--no-color) are listed once at the top. Nothing is written by hand, so the page cannot
drift from the code: rerun it after adding a command (`.venv/bin/doit docs`).

    .venv/bin/python tools/gen_cli_docs.py [--out docs/cli.md] [--check]

--check writes nothing and exits 1 when the file differs from a fresh generation.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "cli.md"
WIDTH = "100"  # usage lines wrap at COLUMNS: fixed, so the output does not depend on the tty


@dataclass(frozen=True)
class Command:
    """One parser of the tree: `path` is its words after `docklock` (empty for the root)."""

    path: tuple[str, ...]
    aliases: tuple[str, ...]
    summary: str
    parser: argparse.ArgumentParser


def subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[list[str], str,
                                                                  argparse.ArgumentParser]]:
    """(names, one-line help, parser) of each direct subcommand, first name first.

    argparse maps every alias to the same parser object; they are grouped by identity.
    """
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
        grouped: dict[int, list[str]] = {}
        for name, child in action.choices.items():
            grouped.setdefault(id(child), []).append(name)
        for names in grouped.values():
            yield names, helps.get(names[0], ""), action.choices[names[0]]


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[Command]:
    """Every command below `parser`, depth first, in registration order."""
    for names, summary, child in subcommands(parser):
        here = (*path, names[0])
        yield Command(here, tuple(names[1:]), summary, child)
        yield from walk(child, here)


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.help:
        return ""
    try:  # expands %(default)s and the like, as --help does
        text = parser._get_formatter()._expand_help(action)
    except (KeyError, TypeError, ValueError):
        text = action.help
    return " ".join(str(text).split())


def _metavar(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.metavar is not None:
        meta = action.metavar if isinstance(action.metavar, str) else " ".join(action.metavar)
    elif action.choices is not None:
        meta = "{" + ",".join(str(c) for c in action.choices) + "}"
    else:
        meta = action.dest.upper()
    if action.nargs == "?":
        return f"[{meta}]"
    if action.nargs in ("*", "+", argparse.REMAINDER):
        return f"{meta}..."
    return meta


def _argument_line(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    meta = _metavar(action)
    if action.option_strings:
        label = ", ".join(f"`{s}{' ' + meta if meta else ''}`" for s in action.option_strings)
    else:
        label = f"`{meta or action.dest}`"
    extra = []
    if action.choices is not None and action.metavar is not None:  # else in the metavar
        extra.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
    default = action.default
    if (action.option_strings and action.nargs != 0 and default not in (None, False, [], "")
            and default is not argparse.SUPPRESS
            and "default" not in (action.help or "")):
        extra.append(f"default `{default}`")
    if isinstance(action, argparse._AppendAction) and "repeatable" not in (action.help or ""):
        extra.append("repeatable")
    text = _help(parser, action)
    if extra:
        text = f"{text} ({'; '.join(extra)})" if text else "; ".join(extra)
    return f"- {label}" + (f" — {text}" if text else "")


def _arguments(parser: argparse.ArgumentParser, skip: set[str]) -> tuple[list[str], list[str]]:
    positionals, options = [], []
    for action in parser._actions:
        if action.help is argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        if (isinstance(action, argparse._HelpAction | argparse._VersionAction)
                and parser.prog != "docklock"):
            continue
        if action.option_strings:
            if set(action.option_strings) & skip:
                continue
            options.append(_argument_line(parser, action))
        else:
            positionals.append(_argument_line(parser, action))
    return positionals, options


def _usage(parser: argparse.ArgumentParser) -> str:
    """The usage lines without argparse's `usage: ` prefix (continuations re-indented)."""
    prefix = "usage: "
    lines = parser.format_usage().rstrip().split("\n")
    if lines[0].startswith(prefix):
        lines = [lines[0][len(prefix):]] + [
            line[len(prefix):] if line.startswith(" " * len(prefix)) else line
            for line in lines[1:]]
    return "\n".join(lines)


def _anchor(path: Sequence[str]) -> str:
    return "docklock-" + "-".join(path).lower()


def _paragraphs(text: str | None) -> list[str]:
    if not text:
        return []
    return [" ".join(block.split()) for block in text.strip().split("\n\n") if block.strip()]


def render(parser: argparse.ArgumentParser, common: set[str]) -> str:
    """The markdown page for the whole tree under `parser` (the `docklock` parser)."""
    commands = list(walk(parser))
    out = ["# DockLock command-line reference", "",
           "<!-- Generated by tools/gen_cli_docs.py from docklock.cli.build_parser(); do not "
           "edit. Regenerate with `.venv/bin/doit docs`. -->", ""]
    out += _paragraphs(parser.description)
    out += ["", "Exit codes everywhere: 0 success / nothing to do, 1 error (one line on stderr, "
            "with a hint), 2 changes present, drift found or a determinism mismatch, "
            "130 interrupted.", "", "## Options of every command", "",
            "These are accepted before or after the command name "
            "(`docklock -C DIR plan` or `docklock plan -C DIR`).", ""]
    _, top_options = _arguments(parser, set())
    out += top_options
    out += ["", "## Commands", "", "| command | what it does |", "|---|---|"]
    for cmd in commands:
        words = " ".join(cmd.path)
        summary = cmd.summary.replace("|", "\\|")
        out.append(f"| [`docklock {words}`](#{_anchor(cmd.path)}) | {summary} |")
    for cmd in commands:
        words = " ".join(cmd.path)
        out += ["", f"{'#' * min(len(cmd.path) + 1, 4)} docklock {words}", ""]
        if cmd.summary:
            out += [cmd.summary[0].upper() + cmd.summary[1:] + ".", ""]
        if cmd.aliases:
            alias_list = ", ".join(f"`docklock {' '.join((*cmd.path[:-1], a))}`"
                                   for a in cmd.aliases)
            out += [f"Aliases: {alias_list}.", ""]
        for para in _paragraphs(cmd.parser.description):
            if para != cmd.summary:
                out += [para, ""]
        usage = _usage(cmd.parser)
        out += ["```text", usage, "```"]
        children = [(names, summary) for names, summary, _ in subcommands(cmd.parser)]
        if children:
            out += ["", "Subcommands: " + ", ".join(
                f"[`{names[0]}`](#{_anchor((*cmd.path, names[0]))})"
                for names, _ in children) + "."]
        positionals, options = _arguments(cmd.parser, common | {"-h", "--help"})
        if positionals:
            out += ["", "Arguments:", "", *positionals]
        if options:
            out += ["", "Options:", "", *options]
        for para in _paragraphs(cmd.parser.epilog):
            out += ["", para]
    return "\n".join(out).rstrip() + "\n"


def generate() -> str:
    os.environ["COLUMNS"] = WIDTH
    from docklock.cli import build_parser
    from docklock.cli._common import common_parser

    return render(build_parser(), option_strings(common_parser()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if --out differs from a fresh generation; write nothing")
    args = parser.parse_args(argv)
    text = generate()
    try:
        current = args.out.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    if args.check:
        if current != text:
            print(f"{args.out} is out of date: run tools/gen_cli_docs.py", file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.out.write_text(text, encoding="utf-8")
        print(f"{args.out} rewritten")
    else:
        print(f"{args.out} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
