"""Policy regexes run on RE2: linear time in the input, whatever the pattern.

A Policy's `assert` is a JSON Schema its author controls, so its `pattern` and
`patternProperties` regexes are untrusted: with Python's backtracking `re`, a pattern
like `^(a|a)*$` against forty `a`s and a `b` never finishes. RE2 (google-re2) matches in
time linear in the input and refuses the features that need backtracking (lookaround,
backreferences), so:

* `pattern_problem` tells policy validation which regexes RE2 refuses, so the author gets
  a located error up front instead of a hang later;
* `policy_validator_class(base)` is `base` (any JSON Schema draft) with the keywords
  that run regexes (`pattern`, `patternProperties`, `additionalProperties`, which
  consults `patternProperties`) evaluated by RE2.

RE2's `$` matches only at the end of the text, as ECMA-262's (and JSON Schema's) does;
`\\d` and `\\w` are ASCII, as in ECMA-262. `unevaluatedProperties` consults
`patternProperties` through jsonschema's own `re`, so an assert using both is refused
by validation (see docklock.policy.engine._assert_problems).

RE2 and jsonschema are imported on first use: a workspace whose policies have no regex
never loads RE2 (house rule 12).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

# Compiled programs are bounded too: a pattern whose automaton needs more is refused.
MAX_PROGRAM_BYTES = 8 << 20


@functools.cache
def _options() -> Any:
    import re2  # type: ignore[import-untyped,unused-ignore]

    options = re2.Options()
    options.log_errors = False  # RE2 would log every refused pattern to stderr
    options.max_mem = MAX_PROGRAM_BYTES
    return options


class PatternError(ValueError):
    """RE2 cannot run this pattern (unsupported syntax or too large)."""


@functools.lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> Any:
    """The compiled RE2 program; PatternError when RE2 refuses the pattern."""
    import re2  # type: ignore[import-untyped,unused-ignore]

    try:
        return re2.compile(pattern, _options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", errors="replace")
        raise PatternError(str(reason)) from exc


def pattern_problem(pattern: str) -> str | None:
    """Why RE2 refuses `pattern`, or None when it runs."""
    try:
        compile_pattern(pattern)
    except PatternError as exc:
        return str(exc)
    return None


def search(pattern: str, text: str) -> bool:
    return compile_pattern(pattern).search(text) is not None


# ---------------------------------------------------------------- jsonschema keywords


def _pattern(validator: Any, pattern: str, instance: Any, _schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not search(pattern, instance):
        import jsonschema

        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: Mapping[str, Any], instance: Any,
                        _schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, additional: Any, instance: Any,
                           schema: Mapping[str, Any]) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    extras = [key for key in instance if key not in properties
              and not any(search(p, key) for p in patterns)]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        import jsonschema

        # jsonschema's own wording, so details read the same as before.
        shown = sorted(extras, key=str)
        if patterns:
            verb = "does" if len(shown) == 1 else "do"
            joined = ", ".join(repr(each) for each in shown)
            regexes = ", ".join(repr(each) for each in sorted(patterns))
            yield jsonschema.ValidationError(
                f"{joined} {verb} not match any of the regexes: {regexes}")
        else:
            verb = "was" if len(shown) == 1 else "were"
            joined = ", ".join(repr(each) for each in shown)
            yield jsonschema.ValidationError(
                f"Additional properties are not allowed ({joined} {verb} unexpected)")


@functools.cache
def policy_validator_class(base: Any) -> Any:
    """`base` (a jsonschema validator class) with every regex keyword run by RE2."""
    import jsonschema

    keywords = {"pattern": _pattern, "patternProperties": _pattern_properties,
                "additionalProperties": _additional_properties}
    return jsonschema.validators.extend(
        base, validators={k: v for k, v in keywords.items() if k in base.VALIDATORS})
