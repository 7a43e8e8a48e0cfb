"""BISO policies: rules as JSON Schema with compliance controls, checked before Podman.

Public API (everything else is internal):

- `evaluate(resources, *, cluster, packs, policies, today, locate=None,
  cluster_doc=None) -> PolicyReport` checks every resource against the enabled built-in
  packs and the workspace's Policy documents (their rules and `spec.exceptions`);
  raises ValidationError for malformed rules or exceptions, an exception naming no
  active rule, unknown packs and non-`builtin:` entries in spec.policies.
- `evaluate_workspace(resources, cluster, *, today=None, locate=None, cluster_doc=None)`
  does the same for a loaded workspace (Policy documents picked out of `resources`,
  packs from the Cluster spec). `locate(resource, json_path)` (docklock.load.positions)
  and `cluster_doc` (the Cluster resource) make errors point at the offending key.
- `check_policies_valid(policies) -> list[Diagnostic]` lists every problem in Policy
  documents (validate calls it to report them with every other spec problem).
- `PolicyReport` (digest, deny_failures, warnings, summary, frameworks, to_dict,
  to_diagnostics) and the renderers `render_text`, `render_json`, `render_sarif`,
  `render_framework`.
- `effective_view(resource, cluster_spec, profiles)` is the document an assert sees;
  `document_path(view_path)` maps a failure's view path to the document key behind it.

The names are imported on first use (PEP 562): the gate of a workspace without rules
never loads the engine (house rule 12). Type checkers see the plain imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docklock.policy.catalog import pack_names
    from docklock.policy.engine import (
        PolicyException,
        Rule,
        Selector,
        active_rules,
        check_policies_valid,
        document_path,
        effective_view,
        evaluate,
        evaluate_workspace,
        image_pinned,
        runs_as_non_root,
    )
    from docklock.policy.report import render_framework, render_json, render_sarif, render_text
    from docklock.policy.results import (
        ControlStatus,
        ControlView,
        ExceptionRef,
        FrameworkView,
        PolicyReport,
        RuleInfo,
        RuleResult,
        Status,
        Summary,
    )

_WHERE = {
    "pack_names": "catalog",
    "PolicyException": "engine",
    "Rule": "engine",
    "Selector": "engine",
    "active_rules": "engine",
    "check_policies_valid": "engine",
    "document_path": "engine",
    "effective_view": "engine",
    "evaluate": "engine",
    "evaluate_workspace": "engine",
    "image_pinned": "engine",
    "runs_as_non_root": "engine",
    "render_framework": "report",
    "render_json": "report",
    "render_sarif": "report",
    "render_text": "report",
    "ControlStatus": "results",
    "ControlView": "results",
    "ExceptionRef": "results",
    "FrameworkView": "results",
    "PolicyReport": "results",
    "RuleInfo": "results",
    "RuleResult": "results",
    "Status": "results",
    "Summary": "results",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


__all__ = [
    "ControlStatus",
    "ControlView",
    "ExceptionRef",
    "FrameworkView",
    "PolicyException",
    "PolicyReport",
    "Rule",
    "RuleInfo",
    "RuleResult",
    "Selector",
    "Status",
    "Summary",
    "active_rules",
    "check_policies_valid",
    "document_path",
    "effective_view",
    "evaluate",
    "evaluate_workspace",
    "image_pinned",
    "pack_names",
    "render_framework",
    "render_json",
    "render_sarif",
    "render_text",
    "runs_as_non_root",
]
