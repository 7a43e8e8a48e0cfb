"""`docklock cluster init` of the product document (issue 12 item 5), as a user runs it.

`--quantum-crypto` is the default hybrid Ed25519 + ML-DSA key (said so), cluster init
creates the key and starts the ledger like `keys init`, `--no-quantum-crypto` is refused,
and `--bpi-integration` lists witnesses in docklock.yaml (a real `docklock witness serve`
process cosigns once the ledger is registered) or is refused with nothing written.
No Podman is needed: nothing here starts a container.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "witness"))

from witnessproc import cli, ok, witness_process

KEYS_LINE = "keys: hybrid Ed25519 + ML-DSA-87 (post-quantum; the default): created signing key "


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_cluster_init_creates_the_key_and_starts_the_ledger(tmp_path: Path) -> None:
    root = tmp_path / "prod"
    done = cli("cluster", "init", str(root), "--name", "prod", "--security-level",
               "military-grade", "--quantum-crypto")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    (keys,) = [line for line in lines if line.startswith("keys: ")]
    assert keys.startswith(KEYS_LINE)
    key_id = keys.removeprefix(KEYS_LINE)
    assert "ledger: started (a signed checkpoint of the empty ledger)" in lines
    assert (root / "docklock.pub").is_file()
    assert (root / ".docklock" / "keys" / "signing.key").stat().st_mode & 0o077 == 0
    assert "securityLevel: military-grade" in (root / "docklock.yaml").read_text()
    assert ok("validate", "-C", str(root)) == "2 resources valid\n"
    shown = json.loads(ok("keys", "show", "--json", "-C", str(root)))
    assert shown["current"] == key_id
    assert shown["keys"][0]["algorithm"] == "mldsa87-ed25519"
    verify = cli("ledger", "verify", "-C", str(root))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "1 of 1 checkpoints verified" in verify.stdout

    # Again with --force: the files are rewritten, the key and the ledger are kept.
    again = cli("cluster", "init", str(root), "--name", "prod", "--force")
    assert again.returncode == 0, again.stderr
    assert f"(post-quantum; the default): kept the existing signing key {key_id}" \
        in again.stdout
    assert json.loads(ok("keys", "show", "--json", "-C", str(root)))["current"] == key_id
    assert cli("ledger", "verify", "-C", str(root)).returncode == 0

    # Plain `docklock init` stays a scaffold: no key, no ledger.
    plain = tmp_path / "plain"
    ok("init", str(plain))
    assert sorted(p.name for p in plain.iterdir()) == [".gitignore", "docklock.yaml", "specs"]


def test_refusals_write_nothing(tmp_path: Path) -> None:
    root = tmp_path / "w"
    cases = {
        "no-quantum-crypto": (["--no-quantum-crypto"],
                              "error: --no-quantum-crypto: DockLock signs only with hybrid "
                              "post-quantum keys"),
        "bpi-without-witnesses": (["--bpi-integration"],
                                  "error: --bpi-integration (the ledger's external audit) "
                                  "needs at least one witness, and none is configured "
                                  "(hint: pass --witness URL VKEY"),
        "witness-without-bpi": (["--witness", "http://127.0.0.1:1", "w+1+AA=="],
                                "turns on (hint: add --bpi-integration)"),
        "witness-bad-url": (["--bpi-integration", "--witness", "ftp://x", "w+1+AA=="],
                            "--witness URL 'ftp://x' is not an http(s) URL"),
        "witness-bad-key": (["--bpi-integration", "--witness", "http://127.0.0.1:1",
                             "not-a-key"], "--witness key 'not-a-key' is not a witness "
                                           "verifier key"),
        "unknown-flag": (["--post-quantum"], "error: unrecognized arguments: --post-quantum "
                                             "(hint: `docklock cluster init --help` lists "
                                             "what it takes)"),
    }
    for name, (args, expected) in cases.items():
        done = cli("cluster", "init", str(root), *args)
        assert done.returncode == 1, (name, done.stdout, done.stderr)
        errors = _errors(done.stderr)
        assert len(errors) == 1, (name, done.stderr)
        assert expected in errors[0], (name, errors[0])
        assert done.stdout == "", name
        assert not root.exists(), name

    # An existing workspace without witnesses: --force --bpi-integration is refused and
    # leaves docklock.yaml (and the rest) as it was.
    ok("cluster", "init", str(root))
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    done = cli("cluster", "init", str(root), "--force", "--bpi-integration")
    assert done.returncode == 1
    assert "none is configured" in _errors(done.stderr)[0]
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_bpi_integration_lists_witnesses_and_they_cosign(tmp_path: Path) -> None:
    with witness_process(tmp_path / "witness") as w:
        root = tmp_path / "audited"
        done = cli("cluster", "init", str(root), "--name", "audited", "--bpi-integration",
                   "--witness", w.url, w.vkey)
        assert done.returncode == 0, done.stderr
        config = (root / "docklock.yaml").read_text()
        assert "  ledger:\n    witnesses:\n" in config
        assert ok("validate", "-C", str(root)) == "2 resources valid\n"
        assert "audit: 1 witness in docklock.yaml spec.ledger.witnesses (quorum 1)" \
            in done.stdout
        # The witness does not know this ledger yet: a warning, and the command to run.
        assert "warning:" in done.stderr
        (register,) = [line.strip() for line in done.stdout.splitlines()
                       if "docklock witness add-log" in line]
        origin, vkey = ok("witness", "log-key", "-C", str(root)).split()
        assert register == ("register this ledger on each witness: docklock witness "
                            f"add-log --dir WITNESS_DIR {origin} {vkey}")
        ok("witness", "add-log", "--dir", str(w.folder), origin, vkey)
        # The next checkpoint is cosigned; verify checks the witness.
        planned = cli("plan", "--no-refresh", "-C", str(root))
        assert planned.returncode == 0, planned.stderr
        assert "warning" not in planned.stderr
        verify = cli("ledger", "verify", "-C", str(root))
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "no witnesses are configured" not in verify.stdout

        # Re-initialising with --force keeps the witnesses of the docklock.yaml it replaces.
        again = cli("cluster", "init", str(root), "--name", "audited", "--force",
                    "--bpi-integration")
        assert again.returncode == 0, again.stderr
        assert w.vkey in (root / "docklock.yaml").read_text()
        assert "kept the existing signing key" in again.stdout
