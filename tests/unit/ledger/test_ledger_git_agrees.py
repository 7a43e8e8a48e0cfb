"""The ledger's git reader (reads .git files, no subprocess) and plan's (`git rev-parse`)
must name the same commit: a plan and the ledger entries of its apply point at one commit.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from docklock.ledger import git_commit
from docklock.plan import git_info


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    # No user or system git config may change what these repos look like.
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{var}_NAME", "t")
        monkeypatch.setenv(f"GIT_{var}_EMAIL", "t@example.invalid")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def commit(repo: Path, name: str) -> str:
    (repo / name).write_text(name + "\n")
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", name)
    return git(repo, "rev-parse", "HEAD")


def both(where: Path) -> tuple[str | None, str | None]:
    info = git_info(where)
    return git_commit(where), info.commit if info is not None else None


def test_readers_agree_on_checkout_packed_refs_detached_and_worktree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    assert both(repo) == (None, None)  # unborn branch: no commit yet

    first = commit(repo, "a.txt")
    sub = repo / "ws"
    sub.mkdir()
    assert both(repo) == (first, first)
    assert both(sub) == (first, first)  # a workspace in a sub-folder of the checkout

    second = commit(repo, "b.txt")
    git(repo, "pack-refs", "--all")  # the branch now lives in packed-refs only
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert both(repo) == (second, second)

    git(repo, "checkout", "-q", "--detach", first)
    assert both(repo) == (first, first)
    git(repo, "checkout", "-q", "main")

    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(wt))
    assert (wt / ".git").is_file()
    assert both(wt) == (second, second)
    third = commit(wt, "c.txt")
    assert both(wt) == (third, third)
    assert both(repo) == (second, second)  # the main checkout did not move


def test_readers_agree_outside_git(tmp_path: Path) -> None:
    # tmp_path could sit inside a checkout on some machine: then they must still agree.
    proc = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "--git-dir"],
                          capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        assert both(tmp_path)[0] == both(tmp_path)[1]
    else:
        assert both(tmp_path) == (None, None)
