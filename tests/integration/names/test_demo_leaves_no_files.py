"""`./dev demo` leaves a clean checkout clean (issue 12 item 7d).

The demo task (dodo.py `demo`) runs `docklock -C <repo> plan`, `apply --auto-approve` and
`status` on the repository's own workspace. Here the same three commands run on a fresh
clone of the repository against the test Podman; afterwards `git status --porcelain`
must print nothing (docklock.pub, which the first apply writes, is ignored by the
repository's .gitignore; .docklock/ always was). The clone's web service publishes a free
port instead of 18080 (committed in the clone) so a demo running on the host does not
collide with the test.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from conftest import REPO, PodmanHarness, run_cli

DEMO_IMAGE = "localhost/demo/busybox:1"


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(cwd), "-c", "user.name=t", "-c",
                           "user.email=t@example.invalid", *args],
                          capture_output=True, text=True, check=True, timeout=60)
    return done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_demo_leaves_no_untracked_files(podman: PodmanHarness, tmp_path: Path) -> None:
    clone = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    web = clone / "specs" / "web.yaml"
    text = web.read_text()
    assert "host: 18080" in text
    web.write_text(text.replace("host: 18080", f"host: {_free_port()}"))
    _git(clone, "commit", "-q", "-m", "test port", "--", "specs/web.yaml")
    assert _git(clone, "status", "--porcelain") == ""
    podman.podman("tag", podman.image, DEMO_IMAGE)
    try:
        for args in (["plan"], ["apply", "--auto-approve"], ["status"]):
            done = run_cli(["-C", str(clone), *args], env=podman.cli_env(), timeout=240)
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        assert (clone / "docklock.pub").is_file()  # the apply did write it...
        assert _git(clone, "status", "--porcelain", "--untracked-files=all") == ""  # ...ignored
    finally:
        podman.podman("untag", DEMO_IMAGE, DEMO_IMAGE, check=False)
