"""examples/ci (issue 12 item 8, issue 14 item 5): the GitHub Actions and GitLab CI
examples are valid YAML of the expected shape, and every `docklock ...` command line in
their shell steps parses with the real parser, so the examples cannot rot when an option
is renamed. Since issue 14 they run on fresh checkouts pointed at the shared backend:
no job copies state, only the apply job sees the CI key
(tests/integration/backend/test_ci_commands.py runs their commands for real)."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from docklock.cli import build_parser
from docklock.cli._common import _group_help

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "ci"
CONTROL = {";", "&&", "||", "|", "(", ")", "&", "!", "{", "}"}
KEYWORDS = {"if", "then", "elif", "else", "fi", "do", "done", "while", "until", "time"}
REDIRECT = {">", ">>", "<", "<<", ">&", "<&", "&>", ">|"}


def load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def github_scripts(data: dict[Any, Any]) -> Iterator[tuple[str, str]]:
    for job_name, job in data["jobs"].items():
        for step in job["steps"]:
            if "run" in step:
                yield job_name, step["run"]


def gitlab_scripts(data: dict[Any, Any]) -> Iterator[tuple[str, str]]:
    for job_name, job in data.items():
        if isinstance(job, dict) and "script" in job:
            for key in ("before_script", "script", "after_script"):
                for line in job.get(key, []):
                    yield job_name, line


def shell_lines(script: str) -> Iterator[str]:
    """Logical lines of a shell script (backslash continuations joined)."""
    pending = ""
    for raw in script.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        yield pending + raw
        pending = ""
    if pending:
        yield pending


def docklock_commands(line: str) -> Iterator[tuple[list[str], str | None]]:
    """(argv after `docklock`, the control operator after the command or None) of every
    simple command of `line` that runs docklock; redirections and what follows them are
    not arguments."""
    line = re.sub(r"(^|\s)\d+(?=[<>])", r"\1", line)  # `2>file`: the fd is no argument
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>!{}")
    lexer.whitespace_split = True
    tokens = list(lexer)
    i = 0
    while i < len(tokens):
        j = i
        while j < len(tokens) and tokens[j] not in CONTROL:
            j += 1
        words = tokens[i:j]
        while words and (("=" in words[0] and not words[0].startswith("-"))
                         or words[0] in KEYWORDS):
            words = words[1:]  # VAR=value prefixes, `if`, `then`, ...
        if words and words[0] == "docklock":
            args = []
            for word in words[1:]:
                if word in REDIRECT:
                    break
                args.append(word)
            yield args, tokens[j] if j < len(tokens) else None
        i = j + 1


def commands_of(scripts: Iterator[tuple[str, str]]
                ) -> list[tuple[str, list[str], str | None]]:
    return [(job, args, after) for job, script in scripts for line in shell_lines(script)
            for args, after in docklock_commands(line)]


def parses(args: list[str]) -> argparse.Namespace:
    parser = build_parser()
    try:
        ns = parser.parse_args(args)
    except SystemExit as exc:
        pytest.fail(f"`docklock {shlex.join(args)}` does not parse (exit {exc.code})")
    handler = getattr(ns, "handler", None)
    if handler is None or getattr(handler, "func", None) is _group_help:
        pytest.fail(f"`docklock {shlex.join(args)}` names a group, not a command")
    return ns


def test_the_tokeniser_finds_commands_inside_shell_constructs() -> None:
    line = ('code=0; if true; then docklock plan --format markdown > "$T/plan.md" '
            '|| code=$?; fi && docklock -C "$LIVE" drift 2>err.txt; '
            "docklock ledger show --tail 5 > x")
    assert list(docklock_commands(line)) == [
        (["plan", "--format", "markdown"], "||"),
        (["-C", "$LIVE", "drift"], ";"),
        (["ledger", "show", "--tail", "5"], None)]
    assert list(shell_lines("docklock plan \\\n  --detailed-exitcode\necho x")) == [
        "docklock plan    --detailed-exitcode", "echo x"]
    with pytest.raises(pytest.fail.Exception, match="does not parse"):
        parses(["plan", "--no-such-option"])
    with pytest.raises(pytest.fail.Exception, match="names a group"):
        parses(["ledger"])


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_every_docklock_command_line_parses(name: str) -> None:
    data = load(name)
    scripts = github_scripts(data) if name.startswith("github") else gitlab_scripts(data)
    found = commands_of(scripts)
    by_command: dict[str, list[tuple[str, argparse.Namespace, str | None]]] = {}
    for job, args, after in found:
        ns = parses(args)
        words = [a for a in args if not a.startswith("-")]
        if "-C" in args:  # -C takes a value
            words.remove(args[args.index("-C") + 1])
        key = " ".join(words[:2]) if words[0] in ("ledger", "policy") else words[0]
        by_command.setdefault(key, []).append((job, ns, after))
    # What the examples promise: validate and policy on review, a markdown plan with
    # --detailed-exitcode, apply on merge, and drift + ledger verify on the schedule,
    # every one in the checkout itself (no -C to a live workspace folder).
    assert set(by_command) == {"validate", "policy check", "plan", "apply", "drift",
                               "ledger verify"}
    ((job, plan, _after),) = by_command["plan"]
    assert job == "plan"
    assert (plan.format, plan.detailed_exitcode) == ("markdown", True)
    ((job, apply, after),) = by_command["apply"]
    assert job == "apply"
    assert apply.auto_approve
    assert apply.planfile is None
    assert after not in ("||", "&", ";"), "a failed apply must fail its job"
    assert {job for job, _ns, _after in by_command["validate"]} == {"validate", "apply"}
    for job, _ns, after in by_command["drift"] + by_command["ledger verify"]:
        assert job == "drift"
        assert after not in ("||", "&", ";"), "a drift job must fail when drift exits 2"
    for key, found_here in by_command.items():
        for job, ns, _after in found_here:
            assert getattr(ns, "directory", None) is None, (job, key)


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_no_job_copies_state_or_a_key_file(name: str) -> None:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    assert "state.json" not in code
    assert "DOCKLOCK_WORKSPACE" not in code
    assert "signing.key" not in code


def test_github_workflow_shape() -> None:
    data = load("github-actions.yml")
    triggers: dict[str, Any] = data["on"] if "on" in data else data[True]  # YAML 1.1: on=true
    assert set(triggers) == {"pull_request", "push", "schedule", "workflow_dispatch"}
    assert triggers["push"]["branches"] == ["main"]
    assert len(triggers["schedule"][0]["cron"].split()) == 5
    jobs = data["jobs"]
    assert set(jobs) == {"validate", "plan", "comment", "apply", "drift"}
    for name, job in jobs.items():
        assert "runs-on" in job, name
        assert not job.get("continue-on-error"), name
        for step in job.get("steps", []):
            assert ("uses" in step) != ("run" in step), (name, step)
            if "uses" in step:
                assert "@v" in step["uses"], step["uses"]  # pinned to a major version
    for name in ("plan", "apply", "drift"):
        assert jobs[name]["runs-on"] == ["self-hosted", "docklock"]
        # A fresh checkout pointed at the shared backend: the connection from a secret.
        assert jobs[name]["steps"][0]["uses"].startswith("actions/checkout@")
        assert jobs[name]["env"]["DOCKLOCK_PG"] == "${{ secrets.DOCKLOCK_PG }}"
    # The CI key only where apply runs; review and schedule jobs need none.
    assert jobs["apply"]["env"]["DOCKLOCK_SIGNING_KEY"] == \
        "${{ secrets.DOCKLOCK_SIGNING_KEY }}"
    for name, job in jobs.items():
        if name != "apply":
            assert "SIGNING_KEY" not in str(job), name
    assert "schedule" in jobs["drift"]["if"]
    assert "pull_request" in jobs["plan"]["if"]
    assert "push" in jobs["apply"]["if"]
    assert "refs/heads/main" in jobs["apply"]["if"]
    assert jobs["apply"]["concurrency"]["cancel-in-progress"] is False
    assert jobs["comment"]["permissions"] == {"pull-requests": "write"}
    assert data["permissions"] == {"contents": "read"}  # least privilege elsewhere


def test_gitlab_pipeline_shape() -> None:
    data = load("gitlab-ci.yml")
    stages = data["stages"]
    jobs = {k: v for k, v in data.items() if isinstance(v, dict) and "script" in v}
    assert set(jobs) == {"validate", "plan", "apply", "drift"}
    for name, job in jobs.items():
        assert job["stage"] in stages, name
        assert all(isinstance(line, str) for line in job["script"]), name
        assert not job.get("allow_failure"), name
    assert stages.index("plan") < stages.index("apply")
    assert jobs["drift"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    assert jobs["plan"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    assert jobs["apply"]["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH'}]
    assert jobs["plan"]["tags"] == jobs["apply"]["tags"] == jobs["drift"]["tags"] == \
        ["docklock"]
    assert jobs["apply"]["resource_group"]
    assert jobs["plan"]["artifacts"]["paths"] == [".docklock/plan.md"]
    # The CI key (a File variable) is read only by the apply job.
    for name, job in jobs.items():
        uses_key = any("DOCKLOCK_CI_KEY" in line or "SIGNING_KEY" in line
                       for line in job["script"])
        assert uses_key == (name == "apply"), name
