"""The policy gate imports what the workspace's policies need, nothing more (issue 12
item 9): without policies no jsonschema, referencing, RE2 or ruamel.yaml; the packaged
catalogs are read by the spec reader and match what ruamel.yaml reads."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

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
