"""The policy gate imports what the workspace's policies need, nothing more (issue 12
item 9): without policies no jsonschema, referencing, RE2 or ruamel.yaml; the packaged
catalogs are read by the spec reader and match what ruamel.yaml reads."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from docklock.policy import catalog

CHECK = """
from datetime import date
from docklock.model import ClusterSpec, Resource
from docklock.policy import evaluate_workspace
web = Resource.from_dict({{"kind": "Service", "metadata": {{"name": "web"}},
                          "spec": {{"image": "localhost/web:1", "user": "1000"}}}})
resources = [web] + {extra}
report = evaluate_workspace(resources, ClusterSpec(policies={packs!r}), today=date(2026, 1, 1))
import sys
loaded = {{m.split(".")[0] for m in sys.modules}}
import json
print(json.dumps({{"summary": [str(r.status) for r in report.results],
                  "frameworks": sorted(report.frameworks),
                  "loaded": sorted(loaded & {{"jsonschema", "referencing", "re2", "ruamel"}})}}))
"""

REGEX_POLICY = """[Resource.from_dict({"kind": "Policy", "metadata": {"name": "p"},
    "spec": {"rules": [{"id": "img", "match": {"kinds": ["Service"]},
                        "assert": {"properties": {"image": {"pattern": "^localhost/"}}}}]}})]"""


def _run(packs: tuple[str, ...], extra: str = "[]") -> dict[str, list[str]]:
    code = textwrap.dedent(CHECK).format(packs=packs, extra=extra)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    data: dict[str, list[str]] = json.loads(out.stdout)
    return data


def test_no_policies_loads_no_validator_regex_engine_or_ruamel() -> None:
    data = _run(())
    assert data["summary"] == []
    assert data["frameworks"] == ["CIS-Docker", "HIPAA", "ISO27001", "SOC2"]
    assert data["loaded"] == []


def test_rules_bring_jsonschema_and_a_regex_brings_re2() -> None:
    data = _run(("builtin:baseline",))
    assert {"PASS", "WARN"} <= set(data["summary"])
    assert {"jsonschema", "referencing"} <= set(data["loaded"])
    assert "ruamel" not in data["loaded"]
    data = _run((), REGEX_POLICY)
    assert data["summary"] == ["PASS"]
    assert "re2" in data["loaded"]


@pytest.mark.parametrize("name", catalog.pack_names())
def test_packs_read_as_ruamel_reads_them(name: str) -> None:
    text = (catalog._packs_dir() / f"{name}.yaml").read_text(encoding="utf-8")
    assert catalog._load_yaml(name) == YAML(typ="safe", pure=True).load(text)


GATE = """
import json, sys
from pathlib import Path
from docklock.load import load_workspace
from docklock.policy.gate import check_workspace
from docklock.workspace import WorkspacePaths
outcome = check_workspace(load_workspace(WorkspacePaths(Path({root!r}))))
loaded = sorted(m for m in sys.modules if m.startswith("docklock.policy."))
print(json.dumps({{"digest": outcome.report.digest, "diagnostics": len(outcome.diagnostics),
                  "loaded": loaded}}))
"""


def _gate_workspace(root: Path, policies: str) -> Path:
    (root / "specs").mkdir(parents=True)
    (root / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: gate}\n"
        f"spec: {{specs: [specs], securityLevel: standard{policies}}}\n")
    (root / "specs" / "web.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Service\nmetadata: {name: web}\n"
        "spec: {image: localhost/web:1}\n")
    return root


def test_gate_without_rules_skips_the_engine_and_reports_as_it(tmp_path: Path) -> None:
    from datetime import date

    from docklock.load import load_workspace
    from docklock.policy import evaluate_workspace
    from docklock.policy.gate import check_workspace, empty_report
    from docklock.workspace import WorkspacePaths

    root = _gate_workspace(tmp_path / "ws", "")
    ws = load_workspace(WorkspacePaths(root))
    slow = evaluate_workspace(ws.resources, ws.cluster_spec, cluster_doc=ws.cluster)
    fast = empty_report(date.today())
    assert fast == slow
    assert fast.digest == slow.digest
    assert check_workspace(ws).report == slow
    assert tuple(slow.to_diagnostics()) == ()

    out = subprocess.run([sys.executable, "-c", textwrap.dedent(GATE).format(root=str(root))],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["digest"] == slow.digest
    assert "docklock.policy.engine" not in data["loaded"]


def test_gate_with_a_pack_still_runs_the_engine(tmp_path: Path) -> None:
    root = _gate_workspace(tmp_path / "ws", ", policies: ['builtin:baseline']")
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(GATE).format(root=str(root))],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert "docklock.policy.engine" in data["loaded"]
    assert data["diagnostics"] > 0  # the baseline warns about this bare service


def test_facade_names_resolve_to_their_modules() -> None:
    import docklock.policy as policy

    assert sorted(policy.__all__) == sorted(policy._WHERE)
    for name in policy.__all__:
        assert getattr(policy, name) is getattr(
            sys.modules[f"docklock.policy.{policy._WHERE[name]}"], name)
    with pytest.raises(AttributeError, match="nothing_here"):
        policy.nothing_here  # noqa: B018
