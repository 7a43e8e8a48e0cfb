"""Loading a valid workspace imports only what it uses (house rule 12, issue 12 item 9).

Each check runs in a fresh interpreter, so modules imported by other tests do not count.
The heavy libraries stay unimported on the common path: ruamel.yaml (the precise reader,
for files with a problem to point at), jsonschema and referencing (to explain an invalid
document), networkx (not used), podman-py and requests (only when connecting),
cryptography (only when signing or verifying) and re2 (only for policy regexes).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

HEAVY = ("ruamel", "jsonschema", "referencing", "networkx", "podman", "requests",
         "urllib3", "cryptography", "re2")

SPECS = """\
apiVersion: docklock.io/v1
kind: Network
metadata: {name: net}
---
apiVersion: docklock.io/v1
kind: Service
metadata: {name: web}
spec:
  image: localhost/demo/web:1
  command: [sleep, "3600"]
  networks: [net]
  dependsOn: [{name: db, condition: healthy}]
  ports: [{container: 80, host: 8080}]
---
apiVersion: docklock.io/v1
kind: Service
metadata: {name: db}
spec:
  image: localhost/demo/db:1
  healthcheck: {command: ["true"], interval: 1s}
  networks: [net]
"""


def _workspace(root: Path, specs: str) -> Path:
    (root / "specs").mkdir(parents=True)
    (root / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: lazy}\n"
        "spec: {specs: [specs], securityLevel: standard}\n")
    (root / "specs" / "app.yaml").write_text(specs)
    return root


def _imported_after(code: str) -> dict[str, Any]:
    """Run `code` in a fresh interpreter; its `result` and the heavy top-level modules."""
    script = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({list(HEAVY)!r}))
        print(json.dumps({{"result": result, "heavy": heavy}}))
        """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def test_loading_a_valid_workspace_imports_no_heavy_library(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "ws", SPECS)
    data = _imported_after(f"""
        from pathlib import Path
        from docklock.load import load_workspace
        from docklock.workspace import WorkspacePaths
        ws = load_workspace(WorkspacePaths(Path({str(root)!r})))
        result = [[str(a) for a in w] for w in ws.graph.waves()]
        """)
    assert data["result"] == [["Network/default/net"], ["Service/default/db"],
                              ["Service/default/web"]]
    assert data["heavy"] == []


def test_an_invalid_document_is_still_explained_with_its_position(tmp_path: Path) -> None:
    # The explanation needs jsonschema and the precise reader: imported on demand.
    root = _workspace(tmp_path / "ws", SPECS.replace("command: [sleep", "comand: [sleep"))
    data = _imported_after(f"""
        from pathlib import Path
        from docklock.errors import ValidationError
        from docklock.load import load_workspace
        from docklock.workspace import WorkspacePaths
        try:
            load_workspace(WorkspacePaths(Path({str(root)!r})))
            result = "loaded"
        except ValidationError as exc:
            result = [str(d) for d in exc.diagnostics]
        """)
    assert data["result"] != "loaded"
    text = " ".join(map(str, data["result"]))
    assert "unknown field 'comand'" in text
    assert "did you mean 'command'" in text
    assert "specs/app.yaml:10:3" in text
    assert {"jsonschema", "ruamel"} <= set(data["heavy"])


def test_missing_spec_folder_is_located_in_docklock_yaml(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "ws", SPECS)
    (root / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: lazy}\n"
        "spec:\n  securityLevel: standard\n  specs: [specs, nope]\n")
    from docklock.errors import ValidationError
    from docklock.load import load_workspace
    from docklock.workspace import WorkspacePaths

    with pytest.raises(ValidationError) as info:
        load_workspace(WorkspacePaths(root))
    (diag,) = info.value.diagnostics
    assert diag.message == "spec folder 'nope' does not exist"
    assert diag.location is not None
    assert (diag.location.file, diag.location.line) == ("docklock.yaml", 6)


def test_fast_reader_patterns_are_ruamels() -> None:
    from ruamel.yaml.resolver import implicit_resolvers

    from docklock.load import yaml as reader

    theirs = {tag.rsplit(":", 1)[1]: rx.match.__self__ for versions, tag, rx, _ in
              implicit_resolvers if (1, 2) in versions}
    for name, ours in (("float", reader._FLOAT_RX), ("int", reader._INT_RX)):
        assert (ours.pattern, ours.flags) == (theirs[name].pattern, theirs[name].flags), name


def test_schema_predicates_compile_on_first_use() -> None:
    from docklock.load.schema import SchemaSet
    from docklock.workspace import package_data

    schemas = SchemaSet.load(package_data("schemas"))
    assert [k for k, entry in schemas.kinds.items() if entry._predicate is not None] == []
    service = {"apiVersion": "docklock.io/v1", "kind": "Service", "metadata": {"name": "w"},
               "spec": {"image": "localhost/web:1"}}
    assert schemas.check(service) == []
    assert [k for k, entry in schemas.kinds.items() if entry._predicate is not None] == [
        "Service"]
    bad = schemas.check({**service, "spec": {"image": 1}})
    assert [p.path for p in bad] == [("spec", "image")]
