"""DockLock's use cases as a library: plan, apply, destroy, drift, run, verify and the
daily verbs, each a function of a `Context` and options that streams typed events and
returns a result. The CLI (docklock/cli) only parses arguments, renders events and maps
results to exit codes; the agent and CI integrations call these functions directly.

Import the use case modules you need (`from docklock.engine import apply`); this package
imports nothing heavy itself, so `docklock --version` stays fast.
"""

from docklock.engine.context import Context

__all__ = ["Context"]
