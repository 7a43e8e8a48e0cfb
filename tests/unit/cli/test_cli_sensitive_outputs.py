"""D22: a value marked `sensitive: true` never appears in clear in any output.

`cage show` printed a CageProfile's sensitive pinned env in clear (text and --json); the
other read-only outputs (validate, graph, plan without refresh, policy check, policy
failure details) are checked on the same workspace so a new leak anywhere fails here.

This file also holds `cage show`'s other unit tests: for the deterministic level it says
what this host pins, mechanism by mechanism (issue 13).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from docklock.cage import host as host_module
from docklock.cage.host import HostSupport
from docklock.cli import main

CAGE_SECRET = "hunter2-cage-value"
SERVICE_SECRET = "hunter2-service-value"

SPECS = f"""\
kind: CageProfile
metadata: {{name: sealed}}
spec:
  extends: hardened
  env: {{API_TOKEN: {{value: {CAGE_SECRET}, sensitive: true}}, MODE: visible-mode}}
---
kind: Service
metadata: {{name: web}}
spec:
  image: localhost/demo/busybox:1
  cage: sealed
  env: {{DB_PASS: {{value: {SERVICE_SECRET}, sensitive: true}}}}
"""

# A deny rule that fails on the sensitive value: its detail must not quote it either.
POLICY = """\
kind: Policy
metadata: {name: p}
spec:
  rules:
    - id: env-strings
      severity: high
      enforcement: deny
      message: env values must be plain strings
      match: {kinds: [Service]}
      assert:
        type: object
        properties:
          spec:
            type: object
            properties:
              env: {type: object, additionalProperties: {type: string, pattern: "^x"}}
      controls: ["SOC2:CC6.1"]
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "specs").mkdir(parents=True)
    (root / "docklock.yaml").write_text("apiVersion: docklock.io/v1\nkind: Cluster\n"
                                        "metadata: {name: sens}\nspec: {specs: [specs]}\n")
    (root / "specs" / "a.yaml").write_text(SPECS)
    return root


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_cage_show_masks_a_sensitive_pinned_env_value(
        workspace: Path, capsys: pytest.CaptureFixture[str], extra: list[str]) -> None:
    code, text = _run(["-C", str(workspace), "cage", "show", "sealed", *extra], capsys)
    assert code == 0, text
    assert CAGE_SECRET not in text
    assert "API_TOKEN" in text
    assert "(sensitive)" in text
    assert "visible-mode" in text  # only the sensitive value is masked


@pytest.mark.parametrize("argv", [
    ["validate"], ["validate", "--json"], ["graph"], ["graph", "--format", "json"],
    ["graph", "--format", "mermaid"], ["plan", "--no-refresh"],
    ["plan", "--no-refresh", "--format", "json"], ["policy", "check"],
    ["policy", "check", "--json"],
])
def test_no_other_read_only_output_shows_a_sensitive_value(
        workspace: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    (workspace / "specs" / "policy.yaml").write_text(POLICY)
    code, text = _run(["-C", str(workspace), *argv], capsys)
    assert text.strip()
    assert code in (0, 1, 2), text
    assert CAGE_SECRET not in text, text
    assert SERVICE_SECRET not in text, text


def test_a_schema_error_about_a_sensitive_value_does_not_quote_it(
        workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workspace / "specs" / "a.yaml").write_text(
        "kind: Service\nmetadata: {name: web}\nspec:\n  image: x\n"
        f"  env: {{DB_PASS: {{value: {SERVICE_SECRET}, sensitive: 'yes'}}}}\n")
    for argv in (["validate"], ["validate", "--json"]):
        code, text = _run(["-C", str(workspace), *argv], capsys)
        assert code == 1
        # still located at the env entry
        assert "specs/a.yaml:5:" in text or '"line": 5' in text, text
        assert SERVICE_SECRET not in text, text


# ------------------------------------------------------------ cage show: this host

MECHANISMS = ["clock", "monotonic/boot-time clocks", "ASLR", "/proc", "/tmp", "env",
              "Jobs only"]
FULL_HOST = HostSupport(arch="x86_64",
                        libfaketime="/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                        libfaketime_digest="sha256:" + "a" * 64,
                        launcher="/opt/docklock-launch-x86_64",
                        launcher_digest="sha256:" + "b" * 64, kernel_time_namespaces=True)
BARE_HOST = HostSupport(arch="x86_64", libfaketime=None, libfaketime_digest=None,
                        launcher=None, launcher_digest=None, kernel_time_namespaces=True)


def _section(text: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index("  determinism on this host (deterministic Jobs):")
    return lines[start + 1:]


@pytest.mark.parametrize("name", ["deterministic", "military-grade"])
def test_cage_show_deterministic_says_what_this_host_pins(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # outside any workspace
    code, text = _run(["cage", "show", name], capsys)
    assert code == 0, text
    section = _section(text)
    keys = [line.strip().split("  ")[0] for line in section
            if line.startswith("    ") and not line.startswith("     ")]
    assert keys == MECHANISMS
    detected = host_module.detect_host()
    joined = " ".join(" ".join(line.split()) for line in section)
    if detected.libfaketime is not None:
        assert f"libfaketime at {detected.libfaketime}" in joined
    else:
        assert "not installed: apt-get install libfaketime" in joined
    assert "services in this level keep the first-generation pins" in joined

    code, text = _run(["cage", "show", name, "--json"], capsys)
    assert code == 0, text
    here = json.loads(text)["determinism_on_this_host"]
    assert here["host"] == detected.to_dict()
    assert [m["name"] for m in here["mechanisms"]] == MECHANISMS


def test_cage_show_is_honest_about_a_host_without_pins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(host_module, "detect_host", lambda: BARE_HOST)
    code, text = _run(["cage", "show", "deterministic"], capsys)
    assert code == 0, text
    joined = " ".join(" ".join(line.split()) for line in _section(text))
    assert "not installed: apt-get install libfaketime — clocks are not pinned" in joined
    assert ("time namespace: the kernel has them but Podman's API offers no clock "
            "offsets") in joined
    assert "no launcher for x86_64: addresses are random" in joined
    code, text = _run(["cage", "show", "deterministic", "--json"], capsys)
    mechanisms = {m["name"]: m["state"] for m in
                  json.loads(text)["determinism_on_this_host"]["mechanisms"]}
    assert mechanisms["ASLR"] == "no launcher for x86_64: addresses are random"


@pytest.mark.parametrize("name", ["standard", "hardened"])
def test_cage_show_other_levels_have_no_host_section(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    code, text = _run(["cage", "show", name], capsys)
    assert code == 0, text
    assert "determinism on this host" not in text
    code, text = _run(["cage", "show", name, "--json"], capsys)
    assert json.loads(text)["determinism_on_this_host"] is None


def test_cage_show_a_profile_extending_deterministic_has_the_section(
        workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workspace / "specs" / "replay.yaml").write_text(
        "kind: CageProfile\nmetadata: {name: replayed}\nspec: {extends: deterministic}\n")
    code, text = _run(["-C", str(workspace), "cage", "show", "replayed"], capsys)
    assert code == 0, text
    assert "deterministic (via replayed)" in text
    assert len(_section(text)) >= len(MECHANISMS)


# ------------------------------------------------------------ the Job cage's derived env

EPOCH_SECRET = "1700000123"  # 2023-11-14 22:15:23 UTC, as FAKETIME writes it
PRELOAD_SECRET = "/lib/hunter2-preload.so"


def _job_workspace(root: Path, epoch: str, *, sensitive: bool = True,
                   epoch_sensitive: bool | None = None) -> Path:
    (root / "specs").mkdir(parents=True)
    (root / "docklock.yaml").write_text("apiVersion: docklock.io/v1\nkind: Cluster\n"
                                        "metadata: {name: sens}\nspec: {specs: [specs]}\n")
    flag = ", sensitive: true" if sensitive else ""
    epoch_flag = flag if epoch_sensitive is None else (
        ", sensitive: true" if epoch_sensitive else "")
    (root / "specs" / "job.yaml").write_text(
        "kind: Job\nmetadata: {name: stamp}\nspec:\n  image: localhost/demo/busybox:1\n"
        "  command: [date]\n  cage: deterministic\n  env:\n"
        f"    SOURCE_DATE_EPOCH: {{value: '{epoch}'{epoch_flag}}}\n"
        f"    LD_PRELOAD: {{value: {PRELOAD_SECRET}{flag}}}\n")
    return root


@pytest.mark.parametrize("extra", [[], ["--format", "json"]])
def test_plan_masks_the_preload_the_job_cage_keeps(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], extra: list[str]) -> None:
    """LD_PRELOAD keeps the job's sensitive preload after the cage's own: masked."""
    monkeypatch.setattr("docklock.cage.replay.detect_host", lambda: FULL_HOST)
    root = _job_workspace(tmp_path / "ws", EPOCH_SECRET, epoch_sensitive=False)
    code, text = _run(["-C", str(root), "plan", "--no-refresh", *extra], capsys)
    assert code in (0, 2), text
    for name in ("FAKETIME", "LD_PRELOAD", "SOURCE_DATE_EPOCH"):
        assert name in text, text
    assert "FAKETIME_DONT_FAKE_MONOTONIC" in text  # the rest of the env is shown
    assert PRELOAD_SECRET not in text, text
    # the same job with plain values shows them: the check above can fail
    plain = _job_workspace(tmp_path / "plain", EPOCH_SECRET, sensitive=False)
    code, text = _run(["-C", str(plain), "plan", "--no-refresh", *extra], capsys)
    assert PRELOAD_SECRET in text, text
    assert "2023-11-14" in text, text


def test_plan_refuses_a_sensitive_source_date_epoch_as_the_clock(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The clock's start shows in the cage's settings, /proc/stat, the witness and the
    ledger: a sensitive SOURCE_DATE_EPOCH cannot be it (a validation error at the env
    entry, exit 1, the value not quoted)."""
    monkeypatch.setattr("docklock.cage.replay.detect_host", lambda: FULL_HOST)
    root = _job_workspace(tmp_path / "ws", EPOCH_SECRET)
    code, text = _run(["-C", str(root), "plan", "--no-refresh"], capsys)
    assert code == 1, text
    assert text.strip().splitlines()[1:] == ["1 problem found"], text
    assert re.match(r"specs/job\.yaml:8:5: Job/default/stamp: a sensitive "
                    r"SOURCE_DATE_EPOCH cannot set the deterministic clock", text), text
    assert EPOCH_SECRET not in text
    assert not (root / ".docklock" / "state.json").exists()


@pytest.mark.parametrize("value", ["99999999999999", "²", "-1", "soon"])
def test_plan_refuses_a_source_date_epoch_that_is_not_seconds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], value: str) -> None:
    monkeypatch.setattr("docklock.cage.replay.detect_host", lambda: FULL_HOST)
    root = _job_workspace(tmp_path / "ws", value, sensitive=False)
    code, text = _run(["-C", str(root), "plan", "--no-refresh"], capsys)
    assert code == 1, text
    lines = text.strip().splitlines()
    assert lines[1:] == ["1 problem found"], text  # found by validation, at the env key
    assert "Traceback" not in text
    assert re.match(r"specs/job\.yaml:8:5: Job/default/stamp: "
                    rf"SOURCE_DATE_EPOCH {re.escape(repr(value))} is not a whole number "
                    r"of seconds in 0\.\.253402300799 \(set spec\.clock\.epoch",
                    lines[0]), lines[0]
