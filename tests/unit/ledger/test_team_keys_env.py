"""CI keys (issue 14): DOCKLOCK_SIGNING_KEY (the PEM text, e.g. a CI secret) or
DOCKLOCK_SIGNING_KEY_FILE (a path) stand in for .docklock/keys/signing.key.

The workspace here is a fresh clone's: docklock.pub and the ledger, no private key file;
CI's key is a trusted signer (or the current key) handed in by the environment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from docklock.errors import KeyMaterialError
from docklock.ledger import (
    HybridSigner,
    Ledger,
    keys_exist,
    load_keyring,
    optional_signer,
    require_signer,
    rotate_keys,
    verify_ledger,
)
from docklock.ledger.keys import (
    SIGNING_KEY_ENV,
    SIGNING_KEY_FILE_ENV,
    Keyring,
    key_source,
    public_keyring_path,
    signing_key_path,
    write_signing_key,
)
from docklock.ledger.trust import trust_signer
from docklock.workspace import WorkspacePaths

FAST = "mldsa65-ed25519"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
    monkeypatch.delenv(SIGNING_KEY_FILE_ENV, raising=False)
    return monkeypatch


@pytest.fixture
def ci(workspace: WorkspacePaths, signer: HybridSigner) -> HybridSigner:
    """CI's key, trusted by the workspace key; then the workspace key file is gone (a
    fresh clone on the CI runner)."""
    key = HybridSigner.generate(FAST)
    trust_signer(workspace, key.public_key, "ci", signer=signer)
    signing_key_path(workspace).unlink()
    return key


def _pem(key: HybridSigner, passphrase: str | None = None) -> str:
    return key.to_pem(passphrase).decode("utf-8")


def test_the_key_text_in_the_environment_signs(workspace: WorkspacePaths, ci: HybridSigner,
                                               env: pytest.MonkeyPatch) -> None:
    assert not keys_exist(workspace)
    assert optional_signer(workspace) is None
    env.setenv(SIGNING_KEY_ENV, _pem(ci))
    assert keys_exist(workspace)
    assert key_source(workspace).label == SIGNING_KEY_ENV
    assert require_signer(workspace).keyid == ci.keyid
    signer = optional_signer(workspace)
    assert signer is not None
    with Ledger.open(workspace, signer=signer) as ledger:
        ledger.append("drift", {"summary": "from CI"})
        assert ledger.checkpoint(signer).keyid == ci.keyid
    assert verify_ledger(workspace).ok
    assert not signing_key_path(workspace).exists()  # nothing was written to disk


def test_a_one_line_secret_with_escaped_newlines_is_accepted(
        workspace: WorkspacePaths, ci: HybridSigner, env: pytest.MonkeyPatch) -> None:
    env.setenv(SIGNING_KEY_ENV, _pem(ci).replace("\n", "\\n"))
    assert require_signer(workspace).keyid == ci.keyid


def test_an_encrypted_key_text_needs_the_passphrase(workspace: WorkspacePaths,
                                                    ci: HybridSigner,
                                                    env: pytest.MonkeyPatch) -> None:
    env.setenv(SIGNING_KEY_ENV, _pem(ci, "s3cret"))
    with pytest.raises(KeyMaterialError, match="encrypted"):
        require_signer(workspace)
    env.setenv("DOCKLOCK_KEY_PASSPHRASE", "s3cret")
    assert require_signer(workspace).keyid == ci.keyid


def test_a_key_file_named_by_the_environment_must_be_private(
        workspace: WorkspacePaths, ci: HybridSigner, env: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "ci.key"
    path.parent.mkdir()
    write_signing_key(workspace, ci, path=path)
    env.setenv(SIGNING_KEY_FILE_ENV, str(path))
    assert require_signer(workspace).keyid == ci.keyid
    path.chmod(0o644)
    with pytest.raises(KeyMaterialError, match="accessible by group or others"):
        require_signer(workspace)
    env.setenv(SIGNING_KEY_FILE_ENV, str(tmp_path / "missing.key"))
    with pytest.raises(KeyMaterialError, match=SIGNING_KEY_FILE_ENV):
        require_signer(workspace)


def test_a_key_docklock_pub_does_not_trust_is_named_at_once(
        workspace: WorkspacePaths, ci: HybridSigner, env: pytest.MonkeyPatch) -> None:
    stranger = HybridSigner.generate(FAST)
    env.setenv(SIGNING_KEY_ENV, _pem(stranger))
    with pytest.raises(KeyMaterialError) as info:
        require_signer(workspace)
    message = info.value.message
    assert SIGNING_KEY_ENV in message
    assert stranger.keyid[:16] in message
    assert "neither the current key nor a trusted signer" in message
    assert "keys trust" in info.value.hint


def test_the_current_key_from_the_environment_works_too(
        workspace: WorkspacePaths, signer: HybridSigner, env: pytest.MonkeyPatch) -> None:
    signing_key_path(workspace).unlink()
    env.setenv(SIGNING_KEY_ENV, _pem(signer))
    assert require_signer(workspace).keyid == signer.keyid


def test_both_variables_set_is_an_error(workspace: WorkspacePaths, ci: HybridSigner,
                                        env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv(SIGNING_KEY_ENV, _pem(ci))
    env.setenv(SIGNING_KEY_FILE_ENV, str(tmp_path / "ci.key"))
    with pytest.raises(KeyMaterialError, match="both"):
        require_signer(workspace)


def test_first_apply_with_an_environment_key_starts_docklock_pub(
        tmp_path: Path, env: pytest.MonkeyPatch) -> None:
    root = tmp_path / "new"
    root.mkdir()
    paths = WorkspacePaths(root)
    key = HybridSigner.generate(FAST)
    env.setenv(SIGNING_KEY_ENV, _pem(key))
    assert require_signer(paths, create=True).keyid == key.keyid
    assert Keyring.load(public_keyring_path(paths)).current == key.keyid
    assert not signing_key_path(paths).exists()


def test_rotate_refuses_a_key_from_the_environment(workspace: WorkspacePaths,
                                                   signer: HybridSigner,
                                                   env: pytest.MonkeyPatch) -> None:
    env.setenv(SIGNING_KEY_ENV, _pem(signer))
    with pytest.raises(KeyMaterialError, match="comes from DOCKLOCK_SIGNING_KEY"):
        rotate_keys(workspace)
    assert load_keyring(workspace).current == signer.keyid


def test_a_personal_key_nobody_trusted_yet_is_a_key_error_for_read_only_recording(
        workspace: WorkspacePaths, signer: HybridSigner, env: pytest.MonkeyPatch) -> None:
    """plan/drift report KeyMaterialError from optional_signer as "not recorded"."""
    write_signing_key(workspace, HybridSigner.generate(FAST))
    with pytest.raises(KeyMaterialError, match=r"is not in docklock\.pub yet"):
        optional_signer(workspace)
