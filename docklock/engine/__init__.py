"""DockLock's use cases as a library: plan, apply, destroy, drift, run, verify and the
daily verbs, each a function of a `Context` and options that streams typed events and
returns a result. The CLI (docklock/cli) only parses arguments, renders events and maps
results to exit codes; the agent and CI integrations call these functions directly.

Modules: `plan` (plan, record_plan, render_plan), `apply` (apply, destroy, PlanReady,
ApplyOutcome), `drift`, `run` (run, verify of Jobs), `ledger` (verify, show, proof,
verify_proof, repair), `keys`, `validate`, `policy`, `graph`, `lock` (force_unlock),
`podman` (ping), `status` (load_inputs). See docs/api.md and docs/adr/0013.

Import the use case modules you need (`from docklock.engine import apply`); this package
imports nothing heavy itself, so `docklock --version` stays fast.
"""

from docklock.engine.context import Context

__all__ = ["Context"]
