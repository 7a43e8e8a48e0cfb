"""Bad input never crashes the CLI: exit 1, one located `error:` line naming the path or
URL, no traceback (unless --debug), and nothing changed on disk.

One row per way a reviewer found to crash DockLock (C1-C8), plus usage errors (exit 1,
not argparse's 2: exit 2 means "changes present") and bare command groups. Everything
runs in-process through `docklock.cli.main`; the ssh hang (C9) runs as a real process
with a deadline. No Podman is needed: every row fails before reaching it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from docklock.cli import main

LOOP_NOTE = "symbolic link loop"


@dataclass(frozen=True)
class Case:
    """`argv(ws, tmp)` runs after `prepare(ws, tmp)`; the one stderr line holding
    `marker` must also hold every string in `names`."""

    argv: Callable[[Path, Path], list[str]]
    names: tuple[str, ...]
    prepare: Callable[[Path, Path], None] | None = None
    marker: str = "error:"
    chdir: bool = False


def _cluster(ws: Path, spec: str) -> None:
    (ws / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: ws}\n" + spec)


def _spec_loop(ws: Path, _tmp: Path) -> None:
    (ws / "specs" / "loop.yaml").symlink_to("loop.yaml")


def _folder_loop(ws: Path, _tmp: Path) -> None:
    (ws / "loopdir").symlink_to("loopdir")
    _cluster(ws, "spec:\n  specs: [specs, loopdir]\n")


def _bad_podman_url(ws: Path, _tmp: Path) -> None:
    _cluster(ws, "spec:\n  specs: [specs]\n  podmanUrl: 'http://[::1'\n")


def _nodes_not_a_list(ws: Path, _tmp: Path) -> None:
    _cluster(ws, "spec: {nodes: 5}\n")


def _specs_is_a_file(_ws: Path, tmp: Path) -> None:
    (tmp / "other").mkdir()
    (tmp / "other" / "specs").write_text("not a folder\n")


def _ws(*args: str) -> Callable[[Path, Path], list[str]]:
    return lambda ws, _tmp: ["-C", str(ws), *args]


GROUPS = ("keys", "ledger", "policy", "get", "cluster", "cage", "podman")

CASES = {
    # C1: a folder as the saved plan (main's OSError handler; plan.load_plan is not changed)
    "c1-apply-plan-is-a-folder": Case(_ws("apply", "/etc"), ("Is a directory: /etc",)),
    # C2: plan --out is checked before planning, and never creates folders
    "c2-plan-out-is-a-folder": Case(
        lambda ws, tmp: ["-C", str(ws), "plan", "--no-refresh", "--out", str(tmp)],
        ("--out", "is a folder")),
    "c2-plan-out-in-proc": Case(_ws("plan", "--no-refresh", "--out", "/proc/version"),
                                ("--out /proc/version", "cannot write in /proc")),
    "c2-plan-out-folder-missing": Case(
        _ws("plan", "--no-refresh", "--out", "/nonexistent/x/p.json"),
        ("--out /nonexistent/x/p.json", "/nonexistent/x does not exist")),
    "c2-plan-out-is-a-device": Case(_ws("plan", "--no-refresh", "--out", "/dev/null"),
                                    ("--out /dev/null", "not a regular file")),
    # C3
    "c3-ledger-proof-out-is-a-folder": Case(
        lambda ws, tmp: ["-C", str(ws), "ledger", "proof", "0", "--out", str(tmp)],
        ("--out", "is a folder")),
    # C4
    "c4-init-in-a-file": Case(lambda _ws, _tmp: ["init", "docklock.yaml"],
                              ("docklock.yaml is a file, not a folder",), chdir=True),
    "c4-init-in-proc": Case(lambda _ws, _tmp: ["init", "/proc/foo"],
                            ("/proc/foo", "No such file or directory")),
    "c4-init-specs-is-a-file": Case(lambda _ws, tmp: ["init", str(tmp / "other")],
                                    ("specs is a file, not a folder",),
                                    prepare=_specs_is_a_file),
    # C5: symlink loops are located diagnostics; validate and plan print them alike
    # (`file:line:col: message (hint)`, no "error:"; issue 12 item 7e)
    "c5-validate-spec-file-loop": Case(_ws("validate"), ("specs/loop.yaml", LOOP_NOTE),
                                       prepare=_spec_loop, marker="specs/loop.yaml:"),
    "c5-plan-spec-file-loop": Case(_ws("plan", "--no-refresh"),
                                   ("specs/loop.yaml", LOOP_NOTE),
                                   prepare=_spec_loop, marker="specs/loop.yaml:"),
    "c5-plan-spec-folder-loop": Case(_ws("plan", "--no-refresh"),
                                     ("docklock.yaml:5:", "'loopdir'", LOOP_NOTE),
                                     prepare=_folder_loop, marker="docklock.yaml:"),
    # C7
    "c7-status-malformed-podman-url": Case(
        _ws("status", "--podman-url", "http://[::1"),
        ("--podman-url 'http://[::1'", "Invalid IPv6 URL")),
    "c7-validate-malformed-podmanUrl": Case(
        _ws("validate"), ("docklock.yaml:6:", "spec.podmanUrl 'http://[::1'"),
        prepare=_bad_podman_url, marker="docklock.yaml:"),
    # C8: podman ping loads docklock.yaml like every command (no hand-parsing)
    "c8-podman-ping-nodes-not-a-list": Case(
        _ws("podman", "ping"), ("docklock.yaml:4:", "expected a list", "Podman hosts"),
        prepare=_nodes_not_a_list, marker="docklock.yaml:"),
    # usage errors exit 1 (exit 2 is "changes present" in DockLock)
    "usage-unknown-flag": Case(_ws("plan", "--detailed-exitcode", "--bogus"),
                               ("unrecognized arguments: --bogus",)),
    "usage-bad-choice": Case(_ws("plan", "--format", "yaml"), ("'yaml'",)),
    "usage-not-a-number": Case(_ws("ledger", "proof", "first"), ("'first'",)),
    # bare groups: the group's help and one error line on stderr, exit 1
    **{f"bare-{g}": Case(_ws(g), (f"`docklock {g}` needs",)) for g in GROUPS},
    "bare-docklock": Case(lambda _ws, _tmp: [], ("name a command",)),
}


def _snapshot(*roots: Path) -> dict[str, tuple[int, int, bool]]:
    """Every path under `roots` with its size, mtime and whether it is a link."""
    seen: dict[str, tuple[int, int, bool]] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*dirnames, *filenames]:
                path = Path(dirpath) / name
                st = path.lstat()
                seen[str(path)] = (st.st_size, st.st_mtime_ns, path.is_symlink())
    return seen


@pytest.fixture
def ws(tmp_path: Path, capsys: pytest.CaptureFixture[str],
       monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("DOCKLOCK_PODMAN_URL", raising=False)
    root = tmp_path / "ws"
    assert main(["init", str(root)]) == 0
    capsys.readouterr()
    return root


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_one_line_exit_1_and_changes_nothing(
        case: Case, ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    if case.prepare is not None:
        case.prepare(ws, tmp_path)
    if case.chdir:
        monkeypatch.chdir(ws)
    before = _snapshot(tmp_path)

    code = main(case.argv(ws, tmp_path))
    captured = capsys.readouterr()

    assert code == 1, captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""
    lines = [line for line in captured.err.splitlines() if case.marker in line]
    assert len(lines) == 1, captured.err
    for name in case.names:
        assert name in lines[0], captured.err
    assert _snapshot(tmp_path) == before
    assert not Path("/nonexistent").exists()
    assert not (ws / ".docklock").exists()  # no state, lock, key or ledger written


def test_bare_group_prints_its_own_help(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for group in GROUPS:
        assert main(["-C", str(ws), group]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"usage: docklock {group} "), err


def test_internal_error_is_one_line_and_debug_shows_the_traceback(
        ws: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import docklock.cli.cmd_validate as cmd_validate

    def broken(_args: object) -> object:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(cmd_validate, "validate", broken)
    assert main(["-C", str(ws), "validate"]) == 1
    err = capsys.readouterr().err
    assert err == ("error: internal error: ZeroDivisionError: boom "
                   "(hint: rerun with --debug and report it)\n")

    assert main(["--debug", "-C", str(ws), "validate"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.splitlines()[-1].startswith("error: internal error: ZeroDivisionError")


def test_os_error_with_debug_shows_the_traceback(ws: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug", "-C", str(ws), "apply", "/etc"]) == 1
    err = capsys.readouterr().err
    assert "IsADirectoryError" in err
    assert err.splitlines()[-1] == "error: Is a directory: /etc (hint: it is a folder: name a file)"


def test_good_out_path_still_saves_the_plan(ws: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "saved"
    out.mkdir()
    assert main(["keys", "init", "-C", str(ws)]) == 0  # plan never creates a key (#11 B8)
    assert main(["plan", "-C", str(ws), "--no-refresh", "--out", str(out / "p.json")]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["p.json"]  # no probe file left


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert main(["plan", "--help"]) == 0
    assert main(["--version"]) == 0
    assert "usage: docklock plan" in capsys.readouterr().out


def test_ssh_url_that_refuses_fails_fast_with_one_line(tmp_path: Path) -> None:
    """C9: podman-py would wait 300 s for an ssh tunnel that never opens."""
    url = "ssh://nobody@127.0.0.1:1/x"
    env = {k: v for k, v in os.environ.items() if k != "DOCKLOCK_PODMAN_URL"}
    env["NO_COLOR"] = "1"
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "docklock", "podman", "ping", "--podman-url", url],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert time.monotonic() - start < 30
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: no Podman API answered at {url}")
    assert "Traceback" not in result.stderr


def test_a_full_disk_without_a_path_still_gets_its_hint() -> None:
    """A write() that finds the disk full names no file: the hint must not vanish."""
    import errno as errno_module

    from docklock.cli import _os_error

    err = _os_error(OSError(errno_module.ENOSPC, "No space left on device"))
    assert err.message == "No space left on device"
    assert err.hint == "the disk is full: free some space"
    with_path = _os_error(OSError(errno_module.ENOENT, "No such file or directory", "/x"))
    assert with_path.hint == "check that the path exists"
    assert _os_error(OSError(errno_module.EBADF, "Bad file descriptor")).hint == ""
