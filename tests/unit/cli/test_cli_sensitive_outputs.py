"""D22: a value marked `sensitive: true` never appears in clear in any output.

`cage show` printed a CageProfile's sensitive pinned env in clear (text and --json); the
other read-only outputs (validate, graph, plan without refresh, policy check, policy
failure details) are checked on the same workspace so a new leak anywhere fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

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
