"""Two projects whose clusters share metadata.name, in one database: the default
workspace key is the same, so the second must be stopped before it shares (or shows)
the first one's state and ledger: `keys init` refuses a workspace that holds anything,
and commands refuse a workspace whose ledger another docklock.pub signed, or, in a
project without docklock.pub, any workspace that is not empty."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from backend_helpers import service
from conftest import PodmanHarness
from test_state_cli import ENV, Cli, _base_env, _cluster

pytestmark = pytest.mark.postgres

NAME = "shop"  # both projects' cluster


def _project(root: Path, env: dict[str, str], workspace: str | None = None) -> Cli:
    (root / "specs").mkdir(parents=True)
    text = _cluster(NAME, "postgres")
    if workspace is not None:
        text = text.replace(f"connectionEnv: {ENV}}}",
                            f"connectionEnv: {ENV}, workspace: {workspace}}}")
    (root / "docklock.yaml").write_text(text)
    return Cli(root, env)


def _set_workspace(cli: Cli, workspace: str | None) -> None:
    (cli.root / "docklock.yaml").unlink()
    (cli.root / "specs").rmdir()
    _project(cli.root, cli.env, workspace)


@pytest.fixture
def first(pg_conninfo: str, tmp_path: Path) -> Cli:
    """Project one: its key, its ledger started in workspace 'shop'."""
    cli = _project(tmp_path / "one", {**_base_env(), ENV: pg_conninfo})
    cli("keys", "init")
    assert cli("state", "list").returncode == 0
    return cli


def test_keys_init_refuses_a_workspace_another_project_holds(first: Cli,
                                                             tmp_path: Path) -> None:
    second = _project(tmp_path / "two", first.env)
    refused = second("keys", "init", ok=None)
    assert refused.returncode == 1, refused.stdout
    err = refused.stderr
    assert "workspace 'shop'" in err
    assert "already holds a ledger" in err
    assert "spec.backend.workspace" in err
    assert "copy docklock.pub" in err
    assert not (second.root / "docklock.pub").exists()
    # The first project's ledger is untouched and still its own.
    verify = json.loads(first("ledger", "verify", "--json").stdout)
    assert verify["ok"], verify
    # A unique key is the fix.
    _set_workspace(second, "shop-two")
    second("keys", "init")
    # A teammate's personal key never starts a docklock.pub: allowed on a used workspace.
    mate = _project(tmp_path / "mate", first.env)
    (mate.root / "docklock.pub").write_bytes((first.root / "docklock.pub").read_bytes())
    mate("keys", "init", "--personal")


def test_commands_refuse_a_workspace_signed_for_another_docklock_pub(
        first: Cli, tmp_path: Path) -> None:
    # Project two was set up with its own key (and so its own ledger) elsewhere, then
    # its docklock.yaml lost the workspace key: it now names project one's workspace.
    second = _project(tmp_path / "two", first.env, workspace="shop-two")
    second("keys", "init")
    _set_workspace(second, None)
    for args in (("state", "list"), ("state", "pull"), ("state", "show", "web"),
                 ("plan", "--no-refresh"), ("drift",), ("status",),
                 ("apply", "--auto-approve"), ("ledger", "show")):
        refused = second(*args, ok=None)
        assert refused.returncode == 1, (args, refused.stdout)
        line = refused.stderr.strip().splitlines()[0]
        assert "workspace 'shop'" in line, line
        assert "belongs to another project" in line, line
        assert "spec.backend.workspace" in refused.stderr

    # The same project's docklock.pub (a clone) is accepted.
    clone = _project(tmp_path / "clone", first.env)
    (clone.root / "docklock.pub").write_bytes((first.root / "docklock.pub").read_bytes())
    assert clone("state", "list").returncode == 0


def test_first_checkpoint_by_another_genesis_key_is_refused(first: Cli,
                                                            tmp_path: Path) -> None:
    """A docklock.pub that records no ledger yet (never checkpointed): the origin cannot
    be compared, so the first checkpoint's signer is."""
    second = _project(tmp_path / "two", first.env, workspace="shop-two")
    second("keys", "init")
    pub = json.loads((second.root / "docklock.pub").read_text())
    pub.pop("ledger", None)
    (second.root / "docklock.pub").write_text(json.dumps(pub))
    _set_workspace(second, None)
    refused = second("state", "list", ok=None)
    assert refused.returncode == 1, refused.stdout
    assert "first checkpoint is not signed by docklock.pub's genesis key" in refused.stderr


def test_a_lock_held_under_another_workspace_names_it(pg_conninfo: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workspace keys whose 64-bit lock keys collided (simulated: alpha's holder also
    takes beta's key): beta's locker is told which workspace's session holds it."""
    from docklock.backend import pg
    from docklock.backend.pg_state import PgStateStore
    from docklock.errors import LockError

    monkeypatch.setenv(ENV, pg_conninfo)
    alpha = PgStateStore(pg.connect(ENV, "alpha", shared=False), "alpha")
    beta = PgStateStore(pg.connect(ENV, "beta", shared=False), "beta")
    try:
        with alpha.lock(command="docklock apply"):
            alpha.backend.rows("SELECT pg_advisory_lock(hashtextextended(%s, 0))",
                               ("docklock:state:beta",))
            with pytest.raises(LockError) as caught:
                beta.lock(command="docklock apply")
            message = caught.value.message
            assert "left no holder record" in message
            assert "workspace 'alpha'" in message
            assert "docklock apply" in message
            assert "may share a lock key" in message
            alpha.backend.rows("SELECT pg_advisory_unlock(hashtextextended(%s, 0))",
                               ("docklock:state:beta",))
        with beta.lock(command="docklock apply"):  # its own key, free again
            assert beta.is_locked()
    finally:
        alpha.backend.close()
        beta.backend.close()


def test_a_project_without_docklock_pub_is_refused_a_used_workspace(
        first: Cli, tmp_path: Path) -> None:
    """No docklock.pub: nothing to compare the ledger with, but a project's own workspace
    is empty until its first apply (which makes docklock.pub first), so one that already
    holds state or a ledger is another project's."""
    second = _project(tmp_path / "two", first.env)
    for args in (("state", "list"), ("state", "pull"), ("state", "show", "web"),
                 ("plan", "--no-refresh"), ("drift",), ("apply", "--auto-approve"),
                 ("ledger", "show")):
        refused = second(*args, ok=None)
        assert refused.returncode == 1, (args, refused.stdout)
        line = refused.stderr.strip().splitlines()[0]
        assert "workspace 'shop'" in line, line
        assert "already holds a ledger" in line, line
        assert "no docklock.pub" in line, line
        assert "spec.backend.workspace" in refused.stderr
        assert "copy docklock.pub" in refused.stderr
    assert not (second.root / "docklock.pub").exists()
    # With the owner's docklock.pub it is a clone of that project, and reads it.
    (second.root / "docklock.pub").write_bytes((first.root / "docklock.pub").read_bytes())
    assert second("state", "list").returncode == 0


@pytest.mark.podman
def test_a_new_project_without_keys_starts_on_an_empty_workspace(
        podman: PodmanHarness, pg_conninfo: str, tmp_path: Path) -> None:
    """The first apply of a project with no docklock.pub yet, on an empty workspace: it
    is not refused, makes docklock.pub, and the project reads its workspace afterwards."""
    fresh = _project(tmp_path / "fresh", podman.cli_env(**{ENV: pg_conninfo}),
                     workspace="fresh")
    (fresh.root / "specs" / "app.yaml").write_text(service("web", podman.image))
    assert fresh("state", "list").stdout.strip() == ""  # empty: nothing to refuse
    assert not (fresh.root / "docklock.pub").exists()
    fresh("apply", "--auto-approve")
    assert (fresh.root / "docklock.pub").exists()
    assert fresh("state", "list").stdout.splitlines() == ["Service/default/web"]
    fresh("destroy", "--auto-approve")
