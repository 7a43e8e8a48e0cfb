"""Crash campaign (issue 11, "Must show"): SIGKILL `docklock apply` at random points.

A workspace with a network, a healthchecked `db`, a `migrate` Job and a 2-3 replica `web`
that depends on both is applied through the real CLI on the harness's private Podman.
Each round changes the specs (scale up, roll web's env, scale down, roll db and re-run
the job) so kills land in creates, rolling replaces (renames) and deletes, starts
`docklock apply --auto-approve` and SIGKILLs it after a random delay drawn across the
duration of a clean apply measured first. Every other round lets DockLock start its own
private `podman system service` (no URL given), so a kill also tests that it does not
leak. At least 30 rounds must end in a kill; then one un-killed apply must converge and
the audit (campaignhelp.audit) must find nothing: no changes planned, no duplicates or
retired containers, no orphans, `ledger verify` OK, every Podman change of the
workspace recorded in the ledger, no leaked processes, no held state lock.

The seed is random per run and printed in the failure message; rerun one with
DOCKLOCK_CAMPAIGN_SEED=<seed>.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from campaignhelp import (
    Shape,
    audit,
    campaign_envs,
    cli,
    docklock_exe,
    dump_events,
    make_workspace,
    show,
    stop_tagged,
    tagged_processes,
    write_specs,
)
from conftest import PodmanHarness

pytestmark = [pytest.mark.podman, pytest.mark.campaign]

KILLS = 30  # rounds that must end in a SIGKILL
MAX_ROUNDS = 60  # rounds whose apply finished before its kill do not count
ROUNDS_BUDGET = 200.0  # seconds for all rounds (the suite's bound)
CLUSTER = "campkill"


@dataclass(frozen=True)
class Round:
    n: int
    step: str
    mode: str
    delay: float
    killed: bool
    code: int | None
    last_output: str  # the last line the apply printed before it died

    def __str__(self) -> str:
        end = "KILLED" if self.killed else f"exit {self.code}"
        return (f"round {self.n:2} {self.step:<10} {self.mode:<7} delay {self.delay:5.2f}s "
                f"{end}: {self.last_output[:90]}")


def next_shape(shape: Shape, n: int) -> tuple[str, Shape]:
    """The spec change of round n: creates, replaces (renames), deletes, in turn."""
    step = n % 4
    if step == 0:
        return "scale-up", Shape(3, shape.web_env, shape.db_env, shape.job_tag)
    if step == 1:
        return "roll-web", Shape(shape.web_replicas, f"w{n}", shape.db_env, shape.job_tag)
    if step == 2:
        return "scale-down", Shape(2, shape.web_env, shape.db_env, shape.job_tag)
    return "roll-db+job", Shape(shape.web_replicas, shape.web_env, f"d{n}", f"j{n}")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def test_apply_killed_at_random_points_then_converges_with_everything_recorded(
        podman: PodmanHarness, tmp_path: Path) -> None:
    seed = int(os.environ.get("DOCKLOCK_CAMPAIGN_SEED") or secrets.randbelow(2**31))
    rng = random.Random(seed)
    envs = campaign_envs(podman, tmp_path / "private")
    since = (datetime.now(UTC) - timedelta(seconds=2)).isoformat(timespec="seconds")
    shape = Shape()
    ws = make_workspace(tmp_path / "ws", CLUSTER, shape.specs(podman.image))
    rounds: list[Round] = []
    problems: list[str] = []
    leaks_seen: list[str] = []
    clean = elapsed = 0.0
    try:
        started = time.monotonic()
        first = cli(ws, envs.url, "apply", "--auto-approve")
        clean = time.monotonic() - started
        assert first.returncode == 0, show(first)

        kills = 0
        budget_end = time.monotonic() + ROUNDS_BUDGET
        for n in range(MAX_ROUNDS):
            if kills >= KILLS or time.monotonic() > budget_end:
                break
            step, shape = next_shape(shape, n)
            write_specs(ws, shape.specs(podman.image))
            private = n % 2 == 1 and envs.private is not None
            env = envs.private if private and envs.private is not None else envs.url
            delay = rng.uniform(0.0, clean)
            proc = subprocess.Popen([docklock_exe(), "apply", "--auto-approve", "-C", str(ws)],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
            try:
                proc.wait(timeout=delay)
                killed = False
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
            out, err = proc.communicate(timeout=60)
            killed = killed and proc.returncode == -signal.SIGKILL
            kills += killed
            rounds.append(Round(n, step, "private" if private else "url", delay, killed,
                                proc.returncode, _last_line(err if err.strip() else out)))
            if not killed and proc.returncode != 0:
                problems.append(f"round {n}: apply failed without being killed "
                                f"(exit {proc.returncode}): {_last_line(err)}")
                if not any(p.startswith("first un-killed failure") for p in problems):
                    problems.append(f"first un-killed failure, round {n}:\n{out}\n{err}")
            leaks_seen += [f"after round {n}: {p}" for p in tagged_processes(envs.tag)]
        elapsed = time.monotonic() - started

        final_env = envs.private if envs.private is not None else envs.url
        final = cli(ws, final_env, "apply", "--auto-approve")
        if final.returncode != 0:
            problems.append("the final, un-killed apply failed: " + show(final))
        problems += audit(podman, ws, CLUSTER, envs.url, since=since, tag=envs.tag)
        dump_events(podman, CLUSTER, since, tmp_path / "events.txt")
    finally:
        leaked = stop_tagged(envs.tag)
    kills = sum(r.killed for r in rounds)
    if kills < KILLS:
        problems.append(f"only {kills} of {len(rounds)} rounds ended in a kill (want {KILLS})")
    distinct_leaks = sorted({s.split(": ", 1)[1] for s in leaks_seen})
    report = "\n".join([
        f"crash campaign seed {seed} (rerun: DOCKLOCK_CAMPAIGN_SEED={seed}); clean apply "
        f"{clean:.1f}s; {len(rounds)} rounds, {kills} killed, {elapsed:.0f}s",
        *[f"  {p}" for p in dict.fromkeys(problems)],
        f"processes seen alive between rounds (distinct): {len(distinct_leaks)}",
        *[f"  {p}" for p in distinct_leaks[:10]],
        f"killed at the end of the test: {len(leaked)}",
        "rounds:", *[f"  {r}" for r in rounds],
    ])
    if os.environ.get("DOCKLOCK_CAMPAIGN_REPORT"):
        Path(os.environ["DOCKLOCK_CAMPAIGN_REPORT"]).write_text(report + "\n")
    assert not problems, report
