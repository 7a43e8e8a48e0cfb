"""The read-mostly daily verbs against real Podman: `logs`, `exec`, `describe` and
`get pods|jobs|networks|volumes|all` (issue 12 item 4), on ONE applied workspace: a
two-replica Service `api` on a network, a Volume, and a Job `report` in a
deterministic cage. `restart` (which changes containers) has its own module."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import PodmanHarness
from ruamel.yaml import YAML
from verbshelp import HEALTH, Ran, dl, ledger, run_in, workspace

pytestmark = pytest.mark.podman

CLUSTER = "verbs"
SECRET = "topsecretvalue42"
API = ('[sh, -c, "echo api-out-$(hostname); echo api-err >&2; '
       'exec httpd -f -p 8080 -h /www"]')


def specs(image: str) -> str:
    return f"""\
apiVersion: docklock.io/v1
kind: Network
metadata: {{name: backend}}
---
apiVersion: docklock.io/v1
kind: Volume
metadata: {{name: data}}
---
apiVersion: docklock.io/v1
kind: Service
metadata: {{name: api, labels: {{tier: back}}}}
spec:
  image: {image}
  command: {API}
  replicas: 2
  stopTimeout: 0
  networks: [backend]
  healthcheck: {HEALTH}
  env:
    DB_PASSWORD: {{value: {SECRET}, sensitive: true}}
---
apiVersion: docklock.io/v1
kind: Job
metadata: {{name: report}}
spec:
  image: {image}
  command: [sh, -c, "echo report done; echo report warn >&2"]
  cage: deterministic
  timeout: 60
"""


@pytest.fixture(scope="module")
def ws(podman_harness: PodmanHarness, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[Path]:
    root = workspace(tmp_path_factory.mktemp("verbs") / "ws", CLUSTER,
                     specs(podman_harness.image))
    done = dl(podman_harness, root, "apply", "--auto-approve", timeout=240)
    assert done.returncode == 0, f"apply failed:\n{done.stdout}\n{done.stderr}"
    yield root
    podman_harness.remove_all()


Cli = Callable[..., Ran]


@pytest.fixture
def cli(podman_harness: PodmanHarness, ws: Path, capfd: pytest.CaptureFixture[str]) -> Cli:
    """`docklock -C WS ...` in this process (see verbshelp.run_in)."""
    def call(*args: str) -> Ran:
        return run_in(podman_harness, ws, *args, capfd=capfd)

    return call


# ---------------------------------------------------------------- logs


def test_logs_interleaves_replicas_with_compose_prefixes_and_keeps_stderr_apart(
        podman_harness: PodmanHarness, ws: Path, cli: Cli) -> None:
    done = cli("logs", "api")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert sorted(line.split(" | ")[0] for line in out) == ["api-1", "api-2"]
    assert all(" | api-out-" in line for line in out)
    assert sorted(done.stderr.splitlines()) == ["api-1 | api-err", "api-2 | api-err"]


def test_logs_of_one_replica_has_no_prefix_and_tail_and_timestamps_work(
        podman_harness: PodmanHarness, ws: Path, cli: Cli) -> None:
    one = cli("logs", "Service/default/api", "--replica", "2")
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("api-out-"), one.stdout
    assert one.stderr == "api-err\n"
    tail = cli("logs", "report", "--tail", "1", "--timestamps")
    assert tail.returncode == 0, tail.stderr
    # --tail counts the container's log (both streams): its last line went to stderr.
    assert tail.stdout == ""
    stamp, _, text = tail.stderr.strip().partition(" report ")
    assert stamp.startswith("report | 20"), tail.stderr
    assert text == "warn"
    two = cli("logs", "report", "--tail", "2")
    assert two.stdout == "report | report done\n"
    assert two.stderr == "report | report warn\n"
    # Following a container that has stopped ends at once, with its whole log.
    stopped = cli("logs", "-f", "report")
    assert stopped.returncode == 0
    assert stopped.stdout == "report | report done\n"
    none = cli("logs", "report", "--tail", "0")
    assert none.returncode == 0
    assert none.stdout == ""
    assert none.stderr == ""


def test_logs_follow_shows_new_lines_until_ctrl_c(podman_harness: PodmanHarness,
                                                  ws: Path, cli: Cli) -> None:
    import shutil
    import sys

    exe = shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")
    proc = subprocess.Popen([exe, "-C", str(ws), "logs", "-f", "--tail", "0", "api"],
                            env=podman_harness.cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        # Written to PID 1's stdout: the container's log, not exec's output.
        wrote = cli("exec", "api", "--replica", "2", "--",
                   "sh", "-c", "echo followed-line > /proc/1/fd/1")
        assert wrote.returncode == 0, wrote.stderr
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == "api-2 | followed-line\n"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_logs_errors_are_one_line_and_exit_1(cli: Cli) -> None:
    unknown = cli("logs", "nope")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines() == [
        "error: no Service or Job named 'nope' in namespace default (hint: known: "
        "Job/default/report, Service/default/api)"]
    out_of_range = cli("logs", "api", "--replica", "3")
    assert out_of_range.returncode == 1
    assert "Service/default/api has no replica 3 (replicas: 1..2)" in out_of_range.stderr
    assert len(out_of_range.stderr.strip().splitlines()) == 1
    network = cli("logs", "Network/backend")
    assert network.returncode == 1
    assert "Network/default/backend is a Network" in network.stderr


# ---------------------------------------------------------------- exec


def test_exec_runs_in_the_replica_and_exits_with_the_command_code(
        podman_harness: PodmanHarness, ws: Path, cli: Cli) -> None:
    code = cli("exec", "api", "--", "sh", "-c", "echo to-out; "
              "echo to-err >&2; exit 3")
    assert code.returncode == 3
    assert code.stdout == "to-out\n"
    assert code.stderr == "to-err\n"
    first = cli("exec", "api", "--", "hostname")
    second = cli("exec", "api", "--replica", "2", "--", "hostname")
    assert first.returncode == second.returncode == 0
    logs2 = cli("logs", "api", "--replica", "2").stdout
    assert f"api-out-{second.stdout.strip()}" in logs2
    assert first.stdout != second.stdout


def test_exec_interactive_goes_through_podman_remote(podman_harness: PodmanHarness,
                                                     ws: Path, cli: Cli) -> None:
    done = dl(podman_harness, ws, "exec", "-i", "api", "--", "cat", input="piped-in\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "piped-in\n"


def test_exec_is_refused_in_a_deterministic_cage_and_errors_are_one_line(
        podman_harness: PodmanHarness, ws: Path, cli: Cli) -> None:
    refused = cli("exec", "report", "--", "true")
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: exec into Job/default/report is refused: it runs in "
                               "the deterministic cage")
    assert "(hint: " in lines[0]
    missing = cli("exec", "api", "--replica", "5", "--", "true")
    assert missing.returncode == 1
    assert "has no replica 5" in missing.stderr
    nocmd = cli("exec", "api")
    assert nocmd.returncode == 1
    assert "name the command to run after --" in nocmd.stderr
    absent = cli("exec", "api", "--", "/no/such/binary")
    assert absent.returncode != 0


# ---------------------------------------------------------------- describe


def test_describe_shows_source_objects_replicas_cage_and_ledger(
        podman_harness: PodmanHarness, ws: Path, cli: Cli) -> None:
    done = cli("describe", "api")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "Address:          Service/default/api" in text
    assert "Source:           specs/app.yaml:9:1" in text
    assert "Labels:           tier=back" in text
    assert "verbs-default-api-1:" in text
    assert "verbs-default-api-2:" in text
    assert "Health:           healthy" in text
    assert "Level:            standard" in text
    assert "Ledger (last 5):" in text
    assert "create container:verbs-default-api-2 done" in text


def test_describe_json_and_yaml_carry_the_same_data(podman_harness: PodmanHarness,
                                                    ws: Path, cli: Cli) -> None:
    js = cli("describe", "Service/default/api", "-o", "json",
            "--entries", "2")
    assert js.returncode == 0, js.stderr
    body = json.loads(js.stdout)
    assert body["address"] == "Service/default/api"
    assert body["source"] == "specs/app.yaml:9:1"
    assert body["spec"]["replicas"] == 2
    assert [r["replica"] for r in body["replicas"]] == [1, 2]
    assert all(r["status"] == "running" and len(r["id"]) == 64 for r in body["replicas"])
    assert all(r["ips"].get("verbs-default-backend") for r in body["replicas"])
    assert body["cage"]["level"] == "standard"
    assert body["cage"]["cap_drop"] == ["ALL"]
    assert len(body["entries"]) == 2
    kinds = {o["kind"] for o in body["objects"]}
    assert kinds == {"container"}
    ym = cli("describe", "Service/default/api", "-o", "yaml",
            "--entries", "2")
    assert ym.returncode == 0
    loaded = YAML(typ="safe").load(ym.stdout)
    assert loaded["address"] == body["address"]
    assert loaded["spec"] == body["spec"]
    job = json.loads(cli("describe", "report", "-o", "json").stdout)
    assert job["cage"]["level"] == "deterministic"
    assert job["cage"]["network_none"] is True
    assert job["replicas"][0]["status"] == "exited"
    net = json.loads(cli("describe", "Network/backend", "-o",
                        "json").stdout)
    assert net["objects"][0]["kind"] == "network"
    assert net["replicas"] == []
    bad = cli("describe", "Service/default/zzz")
    assert bad.returncode == 1
    assert len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.startswith("error: no Service/default/zzz in the workspace (hint: "
                                 "known: ")
    neg = cli("describe", "api", "--entries", "-1")
    assert neg.returncode == 1
    assert "--entries must be 0 or more" in neg.stderr


# ---------------------------------------------------------------- get


def test_get_pods_table_wide_json_yaml(podman_harness: PodmanHarness, cli: Cli) -> None:
    table = cli("get", "pods")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"verbs-default-api-1", "verbs-default-api-2"}
    assert rows["verbs-default-api-1"][1:4] == ["1/1", "Running", "0"]
    wide = cli("get", "pods", "-o", "wide", "-A")
    head = wide.stdout.splitlines()[0].split()
    assert head[:2] == ["NAMESPACE", "NAME"]
    assert head[-5:] == ["IMAGE", "PORTS", "NETWORKS",
                                                               "NODE", "CAGE"]
    assert "verbs-default-backend" in wide.stdout
    assert podman_harness.image in wide.stdout
    js = json.loads(cli("get", "pods", "-o", "json").stdout)
    assert [p["replica"] for p in js["pods"]] == [1, 2]
    assert all(p["ready"] and p["status"] == "Running" for p in js["pods"])
    assert set(js) >= {"format", "cluster", "pods"}
    assert "jobs" not in js
    ym = YAML(typ="safe").load(cli("get", "pods", "-o", "yaml").stdout)
    assert [p["name"] for p in ym["pods"]] == [p["name"] for p in js["pods"]]
    other_ns = cli("get", "pods", "-n", "other")
    assert other_ns.returncode == 0
    assert other_ns.stdout.strip() == "No pods found."


def test_get_jobs_networks_volumes_and_all(cli: Cli) -> None:
    jobs = cli("get", "jobs")
    assert jobs.returncode == 0, jobs.stderr
    row = jobs.stdout.splitlines()[1].split()
    assert row[:4] == ["report", "Completed", "0", "deterministic"]
    nets = json.loads(cli("get", "networks", "-o", "json").stdout)
    assert [(n["name"], n["podman_name"], n["status"]) for n in nets["networks"]] == [
        ("backend", "verbs-default-backend", "present")]
    vols = cli("get", "volumes", "-o", "wide")
    assert vols.stdout.splitlines()[0].split() == ["NAME", "PODMAN", "NAME", "STATUS", "ID",
                                                   "RECORDED"]
    assert vols.stdout.splitlines()[1].split()[:3] == ["data", "verbs-default-data",
                                                       "present"]
    every = cli("get", "all")
    assert every.returncode == 0
    sections = [line for line in every.stdout.splitlines() if line.startswith("== ")]
    assert sections == ["== services ==", "== pods ==", "== jobs ==", "== networks ==",
                        "== volumes =="]
    body = json.loads(cli("get", "all", "-o", "json").stdout)
    assert {"services", "pods", "jobs", "networks", "volumes"} <= set(body)
    bad = cli("get", "pods", "-o", "xml")
    assert bad.returncode == 1
    assert "invalid choice: 'xml'" in bad.stderr


def test_get_services_and_status_keep_their_json(podman_harness: PodmanHarness,
                                                 ws: Path, cli: Cli) -> None:
    svc = cli("get", "services", "-A", "--json")
    assert svc.returncode == 0, svc.stderr
    body = json.loads(svc.stdout)
    assert [r["address"] for r in body["resources"]] == ["Service/default/api"]
    assert body["resources"][0]["ready"] == 2
    assert body["locked_by"] is None
    assert set(body) == {"format", "cluster", "serial", "healthy", "api_calls", "resources",
                         "locked_by"}
    assert json.loads(cli("get", "svc", "-o", "json").stdout)[
        "resources"] == body["resources"]
    table = cli("get", "services", "--all-namespaces")
    assert table.stdout.splitlines()[0].split()[:3] == ["NAMESPACE", "KIND", "NAME"]
    status = json.loads(cli("status", "--json").stdout)
    assert {r["address"] for r in status["resources"]} >= {"Service/default/api",
                                                           "Job/default/report"}
    health = cli("cluster", "health", "--detailed")
    assert health.returncode == 0, health.stdout + health.stderr
    assert f"Cluster {CLUSTER}: healthy" in health.stdout
    assert ledger(ws)  # apply wrote entries (describe read them above)


def test_a_service_never_applied_has_no_containers_to_show(
        podman_harness: PodmanHarness, tmp_path: Path, capfd: pytest.CaptureFixture[str]
        ) -> None:
    fresh = workspace(tmp_path / "fresh", "verbs-fresh", specs(podman_harness.image))
    for verb in (["logs", "api"], ["exec", "api", "--", "true"], ["restart", "api"]):
        done = run_in(podman_harness, fresh, *verb, capfd=capfd)
        assert done.returncode == 1, verb
        assert done.stderr.strip().splitlines() == [
            "error: Service/default/api has no containers (it was never applied or they "
            "were removed) (hint: run `docklock apply`, then try again)"], verb
    pods = run_in(podman_harness, fresh, "get", "pods", capfd=capfd)
    assert pods.returncode == 0
    assert pods.stdout.strip() == "No pods found."
    assert not (fresh / ".docklock" / "state.json").exists()


# ---------------------------------------------------------------- review fixes


def test_describe_masks_sensitive_env_in_every_format(cli: Cli) -> None:
    for fmt in ("text", "json", "yaml"):
        done = cli("describe", "api", "-o", fmt)
        assert done.returncode == 0, done.stderr
        assert SECRET not in done.stdout + done.stderr, fmt
        assert "(sensitive)" in done.stdout, fmt
    spec = json.loads(cli("describe", "api", "-o", "json").stdout)["spec"]
    assert spec["env"]["DB_PASSWORD"] == {"value": "(sensitive)", "sensitive": True}


def edited(ws: Path, old: str, new: str) -> str:
    """Edit specs/app.yaml (not applied); returns the text to restore."""
    path = ws / "specs" / "app.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return text


def test_exec_is_refused_when_the_live_container_is_deterministic_though_the_spec_is_not(
        ws: Path, cli: Cli) -> None:
    saved = edited(ws, "cage: deterministic", "cage: hardened")
    try:
        refused = cli("exec", "report", "--", "true")
    finally:
        (ws / "specs" / "app.yaml").write_text(saved)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: exec into Job/default/report is refused: it "
                                     "runs in the deterministic cage"), refused.stderr


SLOW = """\
apiVersion: docklock.io/v1
kind: Job
metadata: {{name: {name}}}
spec:
  image: {image}
  command: [sh, -c, "echo {name}-start; sleep 5"]
  cage: {cage}
  timeout: 60
"""


def test_exec_and_logs_find_a_docklock_run_container_and_judge_its_cage_live(
        podman_harness: PodmanHarness, ws: Path, cli: Cli) -> None:
    """`docklock run` names its container docklock-job-NS-NAME-RUNID and labels no cage:
    exec and logs find it, and a deterministic one stays refused when the spec is edited
    to a weaker cage (judged from its inspect)."""
    import shutil
    import sys

    extra = ws / "specs" / "slow.yaml"
    extra.write_text(SLOW.format(name="slow", image=podman_harness.image, cage="standard")
                     + "---\n" + SLOW.format(name="detslow", image=podman_harness.image,
                                             cage="deterministic"))
    exe = shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")
    runs = [subprocess.Popen([exe, "-C", str(ws), "run", job], env=podman_harness.cli_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for job in ("slow", "detslow")]
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            names = podman_harness.podman("ps", "--format", "{{.Names}}").stdout.split()
            if {"slow", "detslow"} <= {n.rsplit("-", 1)[0].removeprefix("docklock-job-default-")
                                      for n in names if n.startswith("docklock-job-")}:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the runs did not start: {names}")
        inside = cli("exec", "slow", "--", "echo", "inside")
        assert inside.returncode == 0, inside.stderr
        assert inside.stdout == "inside\n"
        logs = cli("logs", "slow")
        assert logs.returncode == 0, logs.stderr
        assert logs.stdout == "slow | slow-start\n"
        jobs = json.loads(cli("get", "jobs", "-o", "json").stdout)["jobs"]
        cages = {j["resource"]: j["cage"] for j in jobs}
        assert cages["slow"] == "standard"
        assert cages["detslow"] == "deterministic"
        # The spec now says standard; the running container is deterministic.
        extra.write_text(extra.read_text().replace("cage: deterministic", "cage: standard"))
        refused = cli("exec", "detslow", "--", "true")
        assert refused.returncode == 1
        assert refused.stderr.startswith("error: exec into Job/default/detslow is refused: "
                                         "it runs in the deterministic cage"), refused.stderr
    finally:
        for proc in runs:
            try:
                proc.wait(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
        extra.unlink()
    assert [p.returncode for p in runs] == [0, 0], [p.stderr.read() for p in runs
                                                    if p.stderr is not None]


def test_ctrl_c_during_exec_says_the_command_may_still_run(
        podman_harness: PodmanHarness, ws: Path, cli: Cli) -> None:
    import shutil
    import sys

    exe = shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")
    proc = subprocess.Popen([exe, "-C", str(ws), "exec", "api", "--", "sh", "-c",
                             "echo started; exec sleep 27"], env=podman_harness.cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.readline() == "started\n"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert err.splitlines() == [
        "interrupted (Ctrl-C); the command may still be running in container "
        f"{CLUSTER}-default-api-1 (hint: find it with `docklock exec Service/default/api -- "
        "ps`, end it with `docklock exec Service/default/api -- kill PID`)"]
    # It is: the exec session outlived the client.
    ps = cli("exec", "api", "--", "ps")
    assert "sleep 27" in ps.stdout
    cli("exec", "api", "--", "pkill", "-f", "sleep 27")
