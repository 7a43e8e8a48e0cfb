"""C17: `--help` lists every command at every level, and `destroy --help` offers only
options destroy uses."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

import pytest

from docklock.cli import build_parser, main


def _groups(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
            ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser,
                                dict[str, argparse.ArgumentParser]]]:
    """(command path, parser, {first name: child parser}) for every parser with commands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            children: dict[str, argparse.ArgumentParser] = {}
            seen: set[int] = set()
            for name, child in action.choices.items():
                if id(child) not in seen:  # aliases map to the same parser
                    seen.add(id(child))
                    children[name] = child
            yield path, parser, children
            for name, child in children.items():
                yield from _groups(child, (*path, name))


def _all_commands() -> list[tuple[str, ...]]:
    return [(*path, name) for path, _p, children in _groups(build_parser())
            for name in children]


def test_the_walk_finds_the_known_commands() -> None:
    found = {" ".join(c) for c in _all_commands()}
    for expected in ("plan", "apply", "destroy", "validate", "podman", "podman ping",
                     "cage show", "ledger verify", "keys init", "get services",
                     "cluster init", "policy check"):
        assert expected in found


@pytest.mark.parametrize("path", sorted({p for p, _x, _c in _groups(build_parser())}),
                         ids=lambda p: " ".join(p) or "docklock")
def test_help_lists_every_command(path: tuple[str, ...]) -> None:
    for group_path, parser, children in _groups(build_parser()):
        if group_path != path:
            continue
        text = parser.format_help()
        for name in children:
            # argparse lists a command as an indented row: "    NAME   help text"
            assert re.search(rf"^\s+{re.escape(name)}(\s|$| \()", text, re.M), (
                f"`docklock {' '.join(path)} --help` does not list {name!r}:\n{text}")


def test_main_help_lists_podman(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert re.search(r"^\s+podman\s+\S", capsys.readouterr().out, re.M)


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings}


def _command(*path: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        action = next(a for a in parser._actions
                      if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def test_destroy_offers_no_option_it_ignores(capsys: pytest.CaptureFixture[str]) -> None:
    destroy = _command("destroy")
    # destroy reads no spec (no CUE), starts no container (no health wait), has no saved
    # plan and replaces nothing
    for ignored in ("--health-timeout", "--cue", "--replace", "--refresh"):
        assert ignored not in _options(destroy)
    assert not [a for a in destroy._actions if not a.option_strings
                and a.dest == "planfile"]
    assert main(["destroy", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--health-timeout" not in text
    assert "--cue" not in text
