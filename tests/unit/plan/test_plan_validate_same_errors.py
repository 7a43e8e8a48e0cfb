"""`validate` and `plan` print a broken spec's problems the same way (issue 12 item 7e).

Both print every problem as `file:line:col: message (hint)` and then `N problems found`
on stderr, exit 1, and write nothing (plan never reaches Podman: --no-refresh and a
refresh alike stop at loading).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from docklock.cli import main

CLUSTER = ("apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: same}\n"
           "spec: {specs: [specs]}\n")
BROKEN = """\
apiVersion: docklock.io/v1
kind: Service
metadata: {name: web}
spec:
  image: localhost/demo/busybox:1
  replicas: many
  bogus: 1
"""
POLICY_FAIL = """\
apiVersion: docklock.io/v1
kind: Policy
metadata: {name: biso}
spec:
  rules:
    - id: needs-user
      message: set a user
      match: {kinds: [Service]}
      assert: {required: [spec], properties: {spec: {required: [user]}}}
---
apiVersion: docklock.io/v1
kind: Service
metadata: {name: web}
spec: {image: localhost/demo/busybox:1}
"""


def _workspace(root: Path, spec: str) -> Path:
    (root / "specs").mkdir(parents=True)
    (root / "docklock.yaml").write_text(CLUSTER)
    (root / "specs" / "web.yaml").write_text(spec)
    return root


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.err.splitlines(), captured.out


@pytest.mark.parametrize(("spec", "count"), [(BROKEN, 2), (POLICY_FAIL, 1)],
                         ids=["schema", "policy"])
def test_validate_and_plan_print_the_same_lines(tmp_path: Path, spec: str, count: int,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    ws = _workspace(tmp_path / "ws", spec)
    v_code, v_err, v_out = _run(capsys, "validate", "-C", str(ws))
    p_code, p_err, p_out = _run(capsys, "plan", "-C", str(ws), "--no-refresh")
    assert (v_code, p_code) == (1, 1)
    assert (v_out, p_out) == ("", "")
    assert p_err == v_err
    assert v_err[-1] == f"{count} problem{'s' if count != 1 else ''} found"
    assert len(v_err) == count + 1
    for line in v_err[:-1]:
        assert line.startswith("specs/web.yaml:"), line
        assert line.endswith(")"), line  # every problem carries its hint
        assert "error:" not in line
    assert not (ws / ".docklock").exists()


def test_the_schema_problems_are_located_at_their_keys(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = _workspace(tmp_path / "ws", BROKEN)
    _code, err, _out = _run(capsys, "plan", "-C", str(ws), "--no-refresh")
    assert err[0].startswith('specs/web.yaml:6:3: expected an integer, got a string "many"')
    assert err[1].startswith("specs/web.yaml:7:3: unknown field 'bogus'")
