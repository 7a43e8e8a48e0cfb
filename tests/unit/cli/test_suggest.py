"""Usage errors name the nearest command and the help of the command that was typed.

`docklock aply` suggests apply, `docklock ledger verfy` suggests `ledger verify`, a
mistyped option choice suggests the nearest choice, and an unknown flag points at the
help of the command it was given to (e.g. `docklock cluster init --help`). Every one
exits 1 with one `error:` line on stderr (after the usage) and nothing on stdout.
"""

from __future__ import annotations

import pytest

from docklock.cli import main

CASES = {
    "top-level": (["aply"], "error: unknown command 'aply' (did you mean apply?) "
                            "(hint: `docklock --help` lists them)"),
    "top-level-prefix": (["led"], "error: unknown command 'led' (did you mean ledger?) "
                                  "(hint: `docklock --help` lists them)"),
    "top-level-nothing-close": (["xyzzy"], "error: unknown command 'xyzzy' "
                                           "(hint: `docklock --help` lists them)"),
    "group": (["ledger", "verfy"], "error: unknown command 'ledger verfy' (did you mean "
                                   "ledger verify?) (hint: `docklock ledger --help` lists "
                                   "them)"),
    "cluster-group": (["cluster", "iniit"], "error: unknown command 'cluster iniit' (did "
                                            "you mean cluster init?) (hint: `docklock "
                                            "cluster --help` lists them)"),
    "option-choice": (["init", "--security-level", "militry-grade"],
                      "error: argument --security-level: invalid choice: 'militry-grade' "
                      "(choose from 'standard', 'hardened', 'deterministic', "
                      "'military-grade') (did you mean military-grade?) (hint: `docklock "
                      "init --help` lists what it takes)"),
    "unknown-flag-of-cluster-init": (
        ["cluster", "init", "--quantum-cryptoo"],
        "error: unrecognized arguments: --quantum-cryptoo (hint: `docklock cluster init "
        "--help` lists what it takes)"),
    "unknown-flag-of-plan": (["plan", "--bogus"], "error: unrecognized arguments: --bogus "
                                                  "(hint: `docklock plan --help` lists what "
                                                  "it takes)"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_usage_error_suggests(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv, expected = CASES[name]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert errors == [expected]


def test_unknown_flag_shows_the_usage_of_its_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster", "init", "--bogus"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("usage: docklock cluster init "), err


def test_a_good_command_line_carries_no_parser_attribute() -> None:
    from docklock.cli import build_parser

    args = build_parser().parse_args(["ledger", "verify"])
    assert not any(key.startswith("_docklock") for key in vars(args))
