"""D23/D24: validate never hangs and every bad input is one located error.

Each named case writes one hostile spec file and runs the real `docklock validate` as a
process with a deadline: it must finish well inside 10 s, exit 1, print exactly one
problem line `file:line:col: message (hint)` (the value echoed as a prefix at most), no
traceback, and leave the workspace exactly as it was (validate writes nothing).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

DEADLINE_S = 10.0
CHILD = ("import sys, time\n"
         "from docklock.cli import main\n"
         "started = time.monotonic()\n"
         "code = main(sys.argv[1:])\n"
         "sys.stderr.write(f'\\nELAPSED {time.monotonic() - started:.3f}\\n')\n"
         "sys.exit(code)\n")
CLUSTER = "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: b}\nspec: {specs: [specs]}\n"
SERVICE = "kind: Service\nmetadata: {name: w}\nspec:\n  image: x\n"

POLICY = """\
kind: Policy
metadata: {{name: p}}
spec:
  rules:
    - id: r
      severity: high
      enforcement: deny
      match: {{kinds: [Service]}}
      assert: {assert_}
      controls: ["SOC2:CC6.1"]
---
kind: Service
metadata:
  name: w
  labels: {{x: {label}}}
spec: {{image: x}}
"""


@dataclass(frozen=True)
class Case:
    content: Callable[[], bytes]
    where: str  # expected "file:line:col"
    says: str  # a fragment of the message
    max_line_chars: int = 600  # no echo of a huge value
    lines: int = 1  # problem lines expected (all at `where`)


def _text(s: str) -> Callable[[], bytes]:
    return s.encode


def _policy(assert_: str, label: str = "a") -> Callable[[], bytes]:
    return _text(POLICY.format(assert_=assert_, label=label))


CATASTROPHIC = "a" * 40 + "b"

CASES = {
    # D23: nesting depth, in flow and block style, far past anything a spec needs
    "flow-list-5000-deep": Case(
        _text(SERVICE + "  command: " + "[" * 5000 + "]" * 5000 + "\n"),
        "specs/a.yaml:5:", "nests more than 64 levels"),
    "flow-list-200000-deep": Case(
        _text(SERVICE + "  command: " + "[" * 200_000 + "]" * 200_000 + "\n"),
        "specs/a.yaml:5:", "nests more than 64 levels"),
    "flow-map-deep-with-an-anchor": Case(  # the anchor sends it to the precise reader
        _text(SERVICE + "  user: &u x\n  labels: " + "{a: " * 3000 + "b" + "}" * 3000 + "\n"),
        "specs/a.yaml:6:", "nests more than 64 levels"),
    "block-mapping-deep": Case(
        _text(SERVICE + "  env:\n" + "".join(" " * (4 + i) + f"k{i}:\n" for i in range(300))),
        "specs/a.yaml:", "nests more than 64 levels"),
    # D23: a backtracking regex in a Policy, on a value that makes `re` run forever
    "policy-regex-backtracks": Case(
        _policy('{type: object, properties: {metadata: {type: object, properties: {labels: '
                '{type: object, additionalProperties: {type: string, pattern: "^(a|a)*$"}}}}}}',
                CATASTROPHIC),
        "specs/a.yaml:15:", "does not match '^(a|a)*$'"),
    "policy-pattern-properties-backtracks": Case(
        _policy('{type: object, properties: {metadata: {type: object, properties: {labels: '
                '{type: object, patternProperties: {"^(x|x)*$": {type: integer}}}}}}}',
                CATASTROPHIC),
        "specs/a.yaml:15:", "not of type 'integer'"),
    "policy-regex-lookahead": Case(
        _policy('{type: object, properties: {kind: {pattern: "^(?=S)(a|a)*$"}}}'),
        "specs/a.yaml:9:", "cannot be evaluated safely"),
    # D24: located errors for values Python or the readers could not handle
    "integer-4301-digits": Case(
        _text("kind: Job\nmetadata: {name: j}\nspec:\n  image: x\n  seed: " + "9" * 4301 + "\n"),
        "specs/a.yaml:5:9", "an integer of 4,301 characters"),
    "integer-4301-digits-in-a-key-path": Case(
        _text(SERVICE + "  replicas: !!int " + "1" * 5000 + "\n"),
        "specs/a.yaml:5:13", "an integer of 5,000 characters"),
    "policy-recursive-ref": Case(
        _policy('{$ref: "#/$defs/a", $defs: {a: {$ref: "#/$defs/a"}}}'),
        "specs/a.yaml:9:", "refers to itself without end"),
    "policy-recursive-ref-through-allof": Case(
        _policy('{$defs: {a: {allOf: [{$ref: "#/$defs/b"}]}, b: {not: {$ref: "#/$defs/a"}}}, '
                'anyOf: [{$ref: "#/$defs/a"}]}'),
        "specs/a.yaml:9:", "refers to itself without end"),
    "nul-byte-in-a-quoted-value": Case(
        lambda: (SERVICE.replace("image: x", 'image: "x\0y"')).encode(),
        "specs/a.yaml:4:12", "U+0000 is not allowed"),
    "nul-byte-in-a-plain-value": Case(
        lambda: (SERVICE.replace("image: x", "image: x\0y")).encode(),
        "specs/a.yaml:4:11", "U+0000 is not allowed"),
    "not-utf8": Case(lambda: SERVICE.encode().replace(b"image: x", b"image: x\xff"),
                     "specs/a.yaml:4:11", "not UTF-8 text (byte 0xff)"),
    "huge-string-value": Case(
        _text(SERVICE + "  user: " + "u" * 3_000_000 + "\n"),
        "specs/a.yaml:5:9", "a value of 3,000,000 characters"),
    "long-name-under-the-value-bound": Case(
        _text("kind: Service\nmetadata: {name: " + "n" * 100_000 + "}\nspec: {image: x}\n"),
        "specs/a.yaml:2:", "nnn...", lines=2),  # its pattern and its length
}


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_located_error_in_bounded_time(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    root = tmp_path / "ws"
    (root / "specs").mkdir(parents=True)
    (root / "docklock.yaml").write_text(CLUSTER)
    (root / "specs" / "a.yaml").write_bytes(case.content())
    before = _snapshot(root)
    env = {**os.environ, "NO_COLOR": "1"}
    # The child times validate itself (interpreter start-up on a loaded machine is not
    # what is measured); the subprocess timeout catches a hang outright.
    proc = subprocess.run([sys.executable, "-c", CHILD, "-C", str(root), "validate"],
                          capture_output=True, text=True, timeout=DEADLINE_S * 6,
                          check=False, env=env)
    timing = re.search(r"^ELAPSED ([0-9.]+)$", proc.stderr, re.M)
    assert timing, proc.stderr[-2000:]
    elapsed = float(timing.group(1))
    assert elapsed < DEADLINE_S, f"{name}: validate took {elapsed:.1f}s"
    assert proc.returncode == 1, proc.stdout + proc.stderr
    output = proc.stdout + proc.stderr.replace(timing.group(0), "")
    assert "Traceback" not in output
    assert "internal error" not in output
    problems = [ln for ln in output.splitlines() if re.match(r"^\S+:\d+:\d+: ", ln)]
    assert len(problems) == case.lines, output[:2000]
    for line in problems:
        assert line.startswith(case.where), line[:300]
        assert case.says in line, line[:300]
        assert re.search(r"\(.+\)$", line), f"no hint: {line[:300]}"
        assert len(line) <= case.max_line_chars, f"{len(line)} characters: {line[:200]}..."
    assert _snapshot(root) == before  # validate wrote nothing
