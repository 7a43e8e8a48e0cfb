"""tools/gen_cli_docs.py (issue 12 item 8): the CLI reference covers every registered
command, alias, positional argument and option, each in its own command's section.

The tree is walked here independently of the generator (argparse's `choices`), so a
command the generator skipped would be caught. docs/cli.md itself is regenerated with
`.venv/bin/doit docs`; the last test fails when it is stale."""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from docklock.cli import build_parser
from docklock.cli._common import command_group, common_parser

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_docs",
                                                  REPO / "tools" / "gen_cli_docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_cli_docs"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def tree(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
         ) -> Iterator[tuple[tuple[str, ...], list[str], argparse.ArgumentParser]]:
    """(path, every name incl. aliases, parser) of each command below `parser`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            names: dict[int, list[str]] = {}
            for name, child in action.choices.items():
                names.setdefault(id(child), []).append(name)
            for group in names.values():
                child = action.choices[group[0]]
                yield (*path, group[0]), group, child
                yield from tree(child, (*path, group[0]))


def sections(text: str) -> dict[str, str]:
    """'docklock keys init' → the markdown under its heading, up to the next heading."""
    out: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^#{2,4} (docklock(?: [\w-]+)+)$", line)
        if m:
            current = m.group(1)
            assert current not in out, f"{current} documented twice"
            out[current] = ""
        elif line.startswith("## "):
            current = None
        elif current is not None:
            out[current] += line + "\n"
    return out


def visible_options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions if a.help is not argparse.SUPPRESS
            for s in a.option_strings}


def test_every_registered_command_and_option_is_documented(gen: ModuleType,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "cli.md"
    assert gen.main(["--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    found = sections(text)
    common = visible_options(common_parser()) | {"-h", "--help"}
    commands = list(tree(build_parser()))
    assert len(commands) >= 30  # the tree really was walked (apply, keys init, ...)
    for path, names, parser in commands:
        title = "docklock " + " ".join(path)
        assert title in found, f"{title} has no section"
        body = found[title]
        assert f"`{title}`" in text  # listed in the command table
        for alias in names[1:]:
            assert f"`docklock {' '.join((*path[:-1], alias))}`" in body
        assert f"```text\n{title} " in body  # its usage
        for option in sorted(visible_options(parser) - common):
            assert re.search(rf"`{re.escape(option)}[` ]", body), f"{title}: {option}"
        for action in parser._actions:
            if (not action.option_strings and action.help is not argparse.SUPPRESS
                    and not isinstance(action, argparse._SubParsersAction)):
                meta = action.metavar or action.dest
                assert isinstance(meta, str)
                assert meta in body, f"{title}: {meta}"
    assert set(found) == {"docklock " + " ".join(p) for p, _n, _c in commands}
    top = text.split("## Commands")[0]  # the options every command takes, listed once
    for option in visible_options(build_parser()):
        assert f"`{option}" in top, option


def test_a_new_command_group_appears_without_touching_the_generator(
        gen: ModuleType) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    group = sub.add_parser("frobnicate", help="frob | things", aliases=["frob"],
                           description="Frobnicate things.\n\nIn two paragraphs.")
    inner = command_group(group, dest="frob_command")
    deep = inner.add_parser("deeper", help="one level down")
    deep.add_argument("THING", help="what to frob")
    deep.add_argument("--level", type=int, choices=[1, 2, 3], default=2, help="how hard")
    deep.add_argument("--tag", action="append", metavar="T", help="a tag")
    deep.add_argument("--hidden", help=argparse.SUPPRESS)
    text = gen.render(parser, gen.option_strings(common_parser()))
    found = sections(text)
    assert "frob \\| things" in text  # a | in a help text does not break the table
    assert "Aliases: `docklock frob`." in found["docklock frobnicate"]
    assert "In two paragraphs." in found["docklock frobnicate"]
    assert "[`deeper`](#docklock-frobnicate-deeper)" in found["docklock frobnicate"]
    body = found["docklock frobnicate deeper"]
    assert "- `THING` — what to frob" in body
    assert "- `--level {1,2,3}` — how hard (default `2`)" in body
    assert "- `--tag T` — a tag (repeatable)" in body
    assert "--hidden" not in text
    assert "-C DIR" not in body.split("```")[-1]  # common options are listed once, on top


def test_check_mode_reports_a_stale_file_and_writes_nothing(
        gen: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.md"
    out.write_text("stale\n")
    assert gen.main(["--out", str(out), "--check"]) == 1
    assert out.read_text() == "stale\n"
    assert "out of date" in capsys.readouterr().err
    assert gen.main(["--out", str(out)]) == 0
    assert gen.main(["--out", str(out), "--check"]) == 0
    assert "is up to date" not in capsys.readouterr().err


def test_doit_docs_task_runs_the_generator_on_docs_cli_md() -> None:
    spec = importlib.util.spec_from_file_location("dodo_for_test", REPO / "dodo.py")
    assert spec is not None
    assert spec.loader is not None
    dodo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dodo)
    commands = [getattr(action, "_action", None) for action in dodo.task_docs()["actions"]]
    assert [str(REPO / "tools" / "gen_cli_docs.py"), "--out",
            str(REPO / "docs" / "cli.md")] in [c[1:] for c in commands if isinstance(c, list)]


def test_docs_cli_md_is_up_to_date(gen: ModuleType) -> None:
    """A command or help text changed without `doit docs` makes docs/cli.md stale."""
    import subprocess

    done = subprocess.run([sys.executable, str(REPO / "tools" / "gen_cli_docs.py"),
                           "--out", str(REPO / "docs" / "cli.md"), "--check"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, ("docs/cli.md is stale: run `.venv/bin/doit docs` "
                                  f"({done.stdout}{done.stderr})")
