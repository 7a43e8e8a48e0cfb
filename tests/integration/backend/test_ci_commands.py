"""Issue 14, must show 5: the examples/ci jobs, run as written, against a workspace on
the postgres backend, real Podman and a real PostgreSQL.

Each job's shell steps are taken from the YAML files (GitHub Actions: the `run` steps
that call docklock, with the workflow's and job's `env`, `${{ secrets.* }}` filled in as
GitHub would; GitLab CI: the job's `script`, with project variables in the
environment) and run with bash as the runners do (`-eo pipefail`), in a fresh copy of
what git holds (docklock.yaml, specs/, docklock.pub) with no private key:

- pull request: validate + policy check, then the plan job: exit 0 with a markdown plan
  of the pull request's change, the database's state unchanged;
- merge: the apply job signs with the CI key from the secret (a signer trusted in
  docklock.pub through `keys trust`), and applies the change;
- schedule: drift + ledger verify pass; after an out-of-band stop the job fails
  (drift exit 2 naming the container) and `ledger verify` still passes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]
from backend_helpers import Workspace, WorkspaceFactory, service, workspace_factory
from conftest import REPO, PodmanHarness

from docklock.ledger.keys import read_public_key_document

pytestmark = [pytest.mark.podman, pytest.mark.postgres]
__all__ = ["workspace_factory"]  # the fixture, imported for pytest to find

EXAMPLES = REPO / "examples" / "ci"
CONN = "DOCKLOCK_PG"  # the variable the examples' docklock.yaml names
NAME = "ci"
CALLS_DOCKLOCK = re.compile(r"(^|[\s;&|(])docklock\s", re.MULTILINE)
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


@dataclass(frozen=True)
class Step:
    name: str
    code: int
    stdout: str
    stderr: str


def _bash(script: str, cwd: Path, env: Mapping[str, str]) -> tuple[int, str, str]:
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                          cwd=cwd, env=dict(env), capture_output=True, text=True,
                          timeout=600, check=False)
    return done.returncode, done.stdout, done.stderr


def _runner_env(podman: PodmanHarness) -> dict[str, str]:
    """A CI runner on the Podman host with docklock on PATH; no DockLock settings."""
    env = podman.cli_env()
    for name in list(env):
        if name.startswith("DOCKLOCK_") and name != "DOCKLOCK_PODMAN_URL":
            del env[name]
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def github_job(job: str, checkout: Path, runner: Mapping[str, str],
               secrets: Mapping[str, str], temp: Path) -> list[Step]:
    """Run the job's docklock steps as GitHub would: stop at the first failure, except
    for steps marked `if: always()`."""
    data = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())
    spec = data["jobs"][job]
    temp.mkdir(parents=True, exist_ok=True)
    context = {"runner.temp": str(temp)} | {f"secrets.{k}": v for k, v in secrets.items()}

    def resolve(value: Any) -> str:
        def one(match: re.Match[str]) -> str:
            assert match.group(1) in context, f"{job}: unknown expression {match.group(0)}"
            return context[match.group(1)]
        return EXPRESSION.sub(one, str(value))

    env = dict(runner, RUNNER_TEMP=str(temp), GITHUB_STEP_SUMMARY=str(temp / "summary.md"),
               GITHUB_PATH=str(temp / "path"))
    for scope in (data.get("env", {}), spec.get("env", {})):
        env.update({k: resolve(v) for k, v in scope.items()})
    steps: list[Step] = []
    failed = False
    for step in spec["steps"]:
        if "run" not in step or not CALLS_DOCKLOCK.search(step["run"]):
            continue  # checkout, artifacts, installing: not ours to run
        if failed and "always()" not in step.get("if", ""):
            continue
        code, out, err = _bash(resolve(step["run"]), checkout, env)
        steps.append(Step(step.get("name", step["run"]), code, out, err))
        failed = failed or code != 0
    assert steps, f"job {job} runs no docklock command"
    return steps


def gitlab_job(job: str, checkout: Path, runner: Mapping[str, str],
               variables: Mapping[str, str]) -> Step:
    """Run the job's `script` as a GitLab shell runner does (one bash, errexit)."""
    data = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())
    spec = data[job]
    env = dict(runner)
    env.update({k: str(v) for k, v in data.get("variables", {}).items()})
    env.update({k: str(v) for k, v in spec.get("variables", {}).items()})
    env.update(variables)
    code, out, err = _bash("\n".join(spec["script"]), checkout, env)
    return Step(job, code, out, err)


def _ci_key(a: Workspace, tmp: Path) -> tuple[str, str]:
    """The README's recipe: a CI key made in a scratch clone, its public half trusted by
    an operator (docklock.pub changes: committed), its private PEM the CI secret.
    (PEM text, key id)."""
    scratch = a.clone(tmp / "ci-key")
    scratch("keys", "init", "--personal")
    scratch("keys", "export-public", "--name", "ci", str(tmp / "ci.pub"))
    scratch("keys", "export", str(tmp / "ci.key"))
    before = (a.root / "docklock.pub").read_text()
    a("keys", "trust", str(tmp / "ci.pub"), "--name", "ci")
    assert (a.root / "docklock.pub").read_text() != before
    found = read_public_key_document(tmp / "ci.pub")
    assert found is not None
    return (tmp / "ci.key").read_text(), found[0].keyid


def _no_key_here(checkout: Path) -> None:
    assert not (checkout / ".docklock" / "keys").exists()
    assert not (checkout / ".docklock" / "state.json").exists()


def _state(a: Workspace) -> dict[str, Any]:
    rows = a.sql("SELECT data FROM docklock_state WHERE workspace = %s", [NAME])
    state: dict[str, Any] = json.loads(bytes(rows[0][0]))
    return state


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_ci_jobs_on_the_shared_backend(ci: str, podman: PodmanHarness,
                                       workspace_factory: WorkspaceFactory,
                                       tmp_path: Path) -> None:
    image = podman.image
    a = workspace_factory(NAME, "postgres", service("web", image) + "---\n"
                          + service("api", image), folder="operator", connection_env=CONN)
    a("apply", "--auto-approve")
    key_pem, ci_keyid = _ci_key(a, tmp_path)
    runner = _runner_env(podman)
    conninfo = a.env[CONN]
    web1, web2 = f"{NAME}-default-web-1", f"{NAME}-default-web-2"

    def run(job: str, checkout: Path, *, key: bool = False) -> tuple[int, str, str]:
        """(exit code of the job, its stdout, its stderr)."""
        if ci == "github":
            secrets = {"DOCKLOCK_PG": conninfo, "DOCKLOCK_SIGNING_KEY": key_pem}
            steps = github_job(job, checkout, runner, secrets, tmp_path / f"temp-{job}")
            code = next((s.code for s in steps if s.code != 0), 0)
            return (code, "".join(s.stdout for s in steps), "".join(s.stderr for s in steps))
        variables = {"DOCKLOCK_PG": conninfo}
        if key:  # protected File variable: the apply job of the default branch only
            (tmp_path / "ci-key-file").write_text(key_pem)
            variables["DOCKLOCK_CI_KEY"] = str(tmp_path / "ci-key-file")
        step = gitlab_job(job, checkout, runner, variables)
        return step.code, step.stdout, step.stderr

    # Pull request: web 1 -> 2 replicas. A fresh checkout of the branch, no key.
    pr = a.clone(tmp_path / "pr")
    pr.write_specs(service("web", image, replicas=2) + "---\n" + service("api", image))
    serial = _state(a)["serial"]
    code, out, err = run("validate", pr.root)
    assert code == 0, (out, err)
    code, out, err = run("plan", pr.root)
    assert code == 0, (out, err)  # plan exits 2 (changes): the job still passes
    plan_md = ((tmp_path / "temp-plan" / "plan.md") if ci == "github"
               else pr.root / ".docklock" / "plan.md").read_text()
    assert web2 in plan_md
    assert "| " in plan_md  # the summary table of the markdown plan
    assert web1 not in plan_md.split("<details>")[0]  # only the new replica changes
    if ci == "github":
        assert (tmp_path / "temp-plan" / "summary.md").read_text() == plan_md
    assert "not recorded in the ledger" in err
    assert _state(a)["serial"] == serial  # a review plan writes nothing
    assert not (pr.root / ".docklock" / "keys").exists()

    # Merge: the main branch's fresh checkout applies with the CI key from the secret.
    main = pr.clone(tmp_path / "main")
    (main.root / "docklock.pub").write_text((a.root / "docklock.pub").read_text())
    code, out, err = run("apply", main.root, key=True)
    assert code == 0, (out, err)
    assert "Apply complete: 1 added, 0 changed, 0 destroyed." in out
    assert podman.containers(f"io.docklock.cluster={NAME}") == [
        f"{NAME}-default-api-1", web1, web2]
    _no_key_here(main.root)
    assert _state(a)["serial"] > serial

    # Schedule: a fresh checkout of main; nothing drifted, the ledger verifies.
    nightly = main.clone(tmp_path / "nightly")
    code, out, err = run("drift", nightly.root)
    assert code == 0, (out, err)
    assert "ledger OK" in out
    # The apply's checkpoint was signed by the CI key, and the ledger says so.
    signed_by = out.split("hybrid signatures by ", 1)[1].split(")")[0]
    assert ci_keyid[:16] in signed_by, out
    # Out of band: the job fails (drift exit 2 names the container), the ledger still
    # verifies (GitHub: its step runs after the failure; GitLab: it runs first).
    podman.podman("stop", "-t", "0", web2)
    code, out, err = run("drift", nightly.root)
    assert code == 2, (out, err)
    assert web2 in out
    assert "ledger OK" in out
    _no_key_here(nightly.root)
    verified = json.loads(a("ledger", "verify", "--json").stdout)
    assert verified["ok"], verified
    assert ci_keyid in verified["keys"]
