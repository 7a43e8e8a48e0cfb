"""`docklock keys init --personal | export-public | trust | import | untrust | show` as a
team uses them (issue 14), through the CLI.

Alice's workspace holds the workspace key. Bob starts from a clone (docklock.yaml, specs
and docklock.pub: the committed files), makes his own key there and hands Alice its public
half; CI's key is handed in through DOCKLOCK_SIGNING_KEY_FILE. The ledger here is local,
so Bob's and CI's signing is exercised in Alice's folder with their key from the
environment, as a shared backend would let them do from their own clones.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from docklock.cli import main

CLUSTER = "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: t}\nspec: {}\n"
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("NO_COLOR", "1")
    for name in ("DOCKLOCK_KEY_PASSPHRASE", "DOCKLOCK_SIGNING_KEY",
                 "DOCKLOCK_SIGNING_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)

    def _run(root: Path, *args: str, env: dict[str, str] | None = None
             ) -> tuple[int, str, str]:
        with monkeypatch.context() as m:
            for k, v in (env or {}).items():
                m.setenv(k, v)
            code = main(["-C", str(root), *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return _run


def _workspace(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "docklock.yaml").write_text(CLUSTER)
    (root / "specs").mkdir()
    return root


@pytest.fixture
def team(tmp_path: Path, run: Run) -> tuple[Path, Path]:
    """Alice's workspace (keys init) and Bob's clone with his own personal key."""
    alice = _workspace(tmp_path / "alice")
    assert run(alice, "keys", "init", "--algorithm", "mldsa65-ed25519")[0] == 0
    bob = _workspace(tmp_path / "bob")
    shutil.copy2(alice / "docklock.pub", bob / "docklock.pub")
    return alice, bob


def test_a_personal_key_leaves_docklock_pub_alone_and_plan_still_works(
        team: tuple[Path, Path], run: Run) -> None:
    _, bob = team
    committed = (bob / "docklock.pub").read_bytes()
    code, out, err = run(bob, "keys", "init", "--personal", "--algorithm", "mldsa65-ed25519")
    assert code == 0, err
    assert "docklock.pub unchanged" in out
    assert (bob / "docklock.pub").read_bytes() == committed
    assert (bob / ".docklock" / "keys" / "signing.key").stat().st_mode & 0o077 == 0
    # Not trusted yet: read-only commands still work; they only say nothing was recorded.
    code, _, err = run(bob, "plan", "--no-refresh")
    assert code == 0, err
    assert "not recorded in the ledger" in err
    assert "not in docklock.pub yet" in err
    assert (bob / "docklock.pub").read_bytes() == committed


def test_personal_needs_a_keyring_to_join(tmp_path: Path, run: Run) -> None:
    lone = _workspace(tmp_path / "lone")
    code, _, err = run(lone, "keys", "init", "--personal")
    assert code == 1
    assert "no docklock.pub to join" in err
    assert not (lone / ".docklock" / "keys" / "signing.key").exists()


def test_bob_is_trusted_signs_and_is_removed(team: tuple[Path, Path], run: Run,
                                            tmp_path: Path) -> None:
    alice, bob = team
    assert run(bob, "keys", "init", "--personal", "--algorithm", "mldsa65-ed25519")[0] == 0
    pub = tmp_path / "bob.pub"
    code, out, err = run(bob, "keys", "export-public", str(pub), "--name", "bob")
    assert code == 0, err
    doc = json.loads(pub.read_text())
    assert doc["name"] == "bob"
    assert doc["format"] == "docklock.io/public-key/v1"
    assert "PRIVATE" not in pub.read_text()
    assert run(bob, "keys", "export-public", str(pub))[0] == 1  # never overwrites

    # `keys import` of a public key file trusts it, as `keys trust` does.
    code, out, err = run(alice, "keys", "import", str(pub))
    assert code == 0, err
    assert f"trusted signer bob {doc['keyid']}" in out
    assert "commit it" in out
    code, out, _ = run(alice, "keys", "show", "--json")
    signers = json.loads(out)["signers"]
    assert [(s["name"], s["keyid"], s["active"]) for s in signers] == [
        ("bob", doc["keyid"], True)]
    code, out, _ = run(alice, "keys", "show")
    assert "signers" in out
    assert "bob  trusted  since size 1" in out

    # Bob signs (his key from the environment, as on his own clone of a shared backend).
    bob_key = {"DOCKLOCK_SIGNING_KEY_FILE": str(bob / ".docklock" / "keys" / "signing.key")}
    code, out, err = run(alice, "plan", "--no-refresh", "--out", str(tmp_path / "p.plan"),
                         env=bob_key)
    assert code == 0, err
    code, out, err = run(alice, "ledger", "verify", "--json")
    assert code == 0, out + err
    assert doc["keyid"] in json.loads(out)["keys"]

    code, out, err = run(alice, "keys", "untrust", "bob")
    assert code == 0, err
    assert "removed signer bob" in out
    assert "stays valid" in out
    code, _, err = run(alice, "plan", "--no-refresh", "--out", str(tmp_path / "q.plan"),
                       env=bob_key)
    assert code == 1
    assert "does not trust to sign: it was removed with `keys untrust`" in err
    assert not (tmp_path / "q.plan").exists()
    assert run(alice, "ledger", "verify")[0] == 0  # what Bob signed still verifies


def test_trust_refuses_a_private_key_file_and_a_clone_without_a_key(
        team: tuple[Path, Path], run: Run, tmp_path: Path) -> None:
    alice, bob = team
    private = tmp_path / "alice.key"
    assert run(alice, "keys", "export", str(private))[0] == 0
    code, _, err = run(alice, "keys", "trust", str(private), "--name", "x")
    assert code == 1
    assert "is not a public key file" in err
    # Bob's clone has no key in charge: it cannot add signers.
    assert run(bob, "keys", "init", "--personal")[0] == 0
    pub = tmp_path / "bob.pub"
    assert run(bob, "keys", "export-public", str(pub), "--name", "bob")[0] == 0
    code, _, err = run(bob, "keys", "trust", str(pub))
    assert code == 1
    assert "neither the current key" in err


def test_ci_key_from_the_environment(team: tuple[Path, Path], run: Run,
                                     tmp_path: Path) -> None:
    alice, _ = team
    scratch = _workspace(tmp_path / "scratch")
    shutil.copy2(alice / "docklock.pub", scratch / "docklock.pub")
    assert run(scratch, "keys", "init", "--personal")[0] == 0
    ci_key = tmp_path / "ci.key"
    assert run(scratch, "keys", "export", str(ci_key))[0] == 0
    secret = ci_key.read_text()
    ci_env = {"DOCKLOCK_SIGNING_KEY": secret}
    # export-public works with a key not trusted yet (that is how it gets trusted) ...
    code, _, err = run(alice, "keys", "export-public", str(tmp_path / "ci.pub"), "--name",
                       "ci", env=ci_env)
    assert code == 0, err
    # ... while signing with it is refused, naming the variable, until it is trusted.
    code, _, err = run(alice, "plan", "--no-refresh", "--out", str(tmp_path / "p.plan"),
                       env=ci_env)
    assert code == 1
    assert "DOCKLOCK_SIGNING_KEY holds key" in err
    assert run(alice, "keys", "trust", str(tmp_path / "ci.pub"))[0] == 0
    code, _, err = run(alice, "plan", "--no-refresh", "--out", str(tmp_path / "p.plan"),
                       env=ci_env)
    assert code == 0, err
    code, out, _ = run(alice, "keys", "show", env=ci_env)
    assert "private key from DOCKLOCK_SIGNING_KEY" in out
    assert run(alice, "ledger", "verify")[0] == 0


def test_a_signer_moves_its_private_key_to_another_clone(team: tuple[Path, Path], run: Run,
                                                         tmp_path: Path) -> None:
    """`keys import` of a private key accepts an active signer's key, not only the
    workspace key; a stranger's key is still refused."""
    alice, bob = team
    assert run(bob, "keys", "init", "--personal")[0] == 0
    assert run(bob, "keys", "export-public", str(tmp_path / "bob.pub"), "--name", "bob")[0] == 0
    assert run(alice, "keys", "trust", str(tmp_path / "bob.pub"))[0] == 0
    assert run(bob, "keys", "export", str(tmp_path / "bob.key"))[0] == 0
    laptop = _workspace(tmp_path / "laptop")
    shutil.copy2(alice / "docklock.pub", laptop / "docklock.pub")
    code, out, err = run(laptop, "keys", "import", str(tmp_path / "bob.key"))
    assert code == 0, err
    assert "imported signing key" in out
    stranger = _workspace(tmp_path / "stranger")
    shutil.copy2(alice / "docklock.pub", stranger / "docklock.pub")
    assert run(stranger, "keys", "init", "--personal")[0] == 0
    assert run(stranger, "keys", "export", str(tmp_path / "s.key"))[0] == 0
    other = _workspace(tmp_path / "other")
    shutil.copy2(alice / "docklock.pub", other / "docklock.pub")
    code, _, err = run(other, "keys", "import", str(tmp_path / "s.key"))
    assert code == 1
    assert "not a trusted signer" in err
