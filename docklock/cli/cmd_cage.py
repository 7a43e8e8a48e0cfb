"""`docklock cage show LEVEL|PROFILE [--json]`: the effective cage and its denied syscalls.

Levels and aliases work anywhere; CageProfile names need a workspace (-C or the
current folder) to read the profiles from. For the deterministic level (or a profile
extending it) it also says what THIS host lets a deterministic Job pin, mechanism by
mechanism (docklock.cage.replay.describe_host over the detected HostSupport).
"""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from docklock.cli._common import Output, command_group
from docklock.errors import EXIT_OK, WorkspaceError

# The mask plans use for sensitive values (docklock.plan.SENSITIVE; not imported here so
# `cage show` does not load the planner).
SENSITIVE = "(sensitive)"


def register(sub: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> None:
    cage = sub.add_parser("cage", parents=[common], help="inspect cage levels and profiles",
                          description="Inspect the built-in cage levels and CageProfiles.")
    cage_sub = command_group(cage, dest="cage_command")
    show = cage_sub.add_parser(
        "show", parents=[common],
        help="print a cage's effective settings and denied syscalls",
        description="Print a cage's effective settings and denied syscalls. For the "
                    "deterministic level (and profiles extending it) also print what this "
                    "host pins for deterministic Jobs, one line per mechanism: clock "
                    "(libfaketime), monotonic clocks, ASLR (the launcher), /proc, /tmp and "
                    "env; what is not pinned here is said so.")
    show.add_argument("cage", metavar="LEVEL|PROFILE",
                      help="standard, hardened, deterministic, military-grade or a "
                           "CageProfile name")
    show.add_argument("--seed", type=int, default=None,
                      help="seed for the deterministic level (default 0)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=_show)


def _profiles(args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """CageProfiles and the cages folder of the workspace, if there is one.

    Levels need no workspace (and are shown even in a workspace whose specs do not
    validate); CageProfile names need the workspace's specs.
    """
    from docklock.cage import ALIASES, LEVELS
    from docklock.cage.jobs import cage_profiles
    from docklock.workspace import find_workspace

    explicit = getattr(args, "directory", None)
    try:
        paths = find_workspace(explicit)
    except WorkspaceError:
        if explicit is not None:
            raise
        return {}, None  # outside a workspace only levels exist
    if args.cage in LEVELS or args.cage in ALIASES:
        return {}, paths.cages
    from docklock.load import load_workspace

    return cage_profiles(load_workspace(paths).resources), paths.cages


def _show(args: argparse.Namespace, out: Output) -> int:
    from docklock.cage import resolve_cage, seccomp_profile
    from docklock.cage.seccomp import base_profile_path, denied_with_errno

    profiles, cages_dir = _profiles(args)
    # Shown as asked: the workspace floor is checked by validate/plan, not here.
    settings = resolve_cage(args.cage, floor="standard", profiles=profiles, seed=args.seed,
                            cages_dir=cages_dir)
    profile = seccomp_profile(settings)
    denied = denied_with_errno(profile) if settings.denied_syscalls else {}
    base = str(base_profile_path())
    here = _determinism_here() if settings.level == "deterministic" else None
    if args.json:
        body = settings.to_dict()
        # A CageProfile's env may be marked sensitive: masked here as in plans and state.
        body["env"] = [[e.name, SENSITIVE if e.sensitive else e.value, e.sensitive]
                       for e in settings.env]
        out.json({"cage": settings.name, "level": settings.level, "digest": settings.digest,
                  "settings": body, "seccomp_base_profile": base,
                  "seccomp_default_errno": profile.get("defaultErrnoRet"),
                  "denied_syscalls": {n: _errno_name(e) for n, e in sorted(denied.items())},
                  # null for the levels that pin nothing per host
                  "determinism_on_this_host": None if here is None else {
                      "host": here[0],
                      "mechanisms": [{"name": k, "state": v} for k, v in here[1]]}})
        return EXIT_OK
    s = settings
    rows = [
        ("level", s.level if s.name == s.level else f"{s.level} (via {s.name})"),
        ("digest", s.digest),
        ("capabilities", "drop " + ",".join(s.cap_drop)
         + (f"; add {','.join(s.cap_add)}" if s.cap_add else "; add none")),
        ("no-new-privileges", "yes" if s.no_new_privileges else "no"),
        ("root filesystem", "read-only" if s.read_only else "writable"),
        ("tmpfs", ", ".join(f"{p} ({o})" for p, o in sorted(s.tmpfs.items())) or "-"),
        ("network", "none" if s.network_none else "as the spec says"),
        ("hostname", s.hostname or "Podman's default"),
        ("timezone", s.timezone or "image default"),
        ("umask", s.umask or "image default"),
        ("pids limit", str(s.pids_limit) if s.pids_limit else "Podman's default"),
        ("memory limit", s.memory or "none (unless the spec sets one)"),
        ("pinned env", " ".join(f"{e.name}={SENSITIVE if e.sensitive else e.value}"
                                for e in s.env) or "-"),
        ("random source", s.random_source or ("seeded stream (bound at run time)"
                                               if s.level == "deterministic" else "kernel")),
        ("seccomp", (f"generated from {base}, default errno ENOSYS"
                     if s.denied_syscalls else f"Podman's default ({base})")),
        ("seccomp digest", s.seccomp_digest or "-"),
        ("seccomp file", s.seccomp_profile_path or "-"),
    ]
    out.line(f"cage {out.paint(s.name, 'bold')}")
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        out.line(f"  {key:<{width}}  {value}")
    if denied:
        out.line(f"  denied syscalls ({len(denied)}):")
        for errno in sorted({*denied.values()}):
            names = sorted(n for n, e in denied.items() if e == errno)
            label = f"    {_errno_name(errno)}: "
            text = textwrap.fill(" ".join(names), width=96, initial_indent=label,
                                 subsequent_indent=" " * len(label))
            out.line(text)
        if "unshare" in denied:
            out.line("    clone: allowed only without namespace flags")
    else:
        out.line("  denied syscalls: Podman's default list only")
    if here is not None:
        out.line("  determinism on this host (deterministic Jobs):")
        width = max(len(k) for k, _ in here[1])
        for key, value in here[1]:
            label = f"    {key:<{width}}  "
            out.line(textwrap.fill(value, width=96, initial_indent=label,
                                   subsequent_indent=" " * len(label),
                                   break_on_hyphens=False, break_long_words=False))
    return EXIT_OK


def _determinism_here() -> tuple[dict[str, object], list[tuple[str, str]]]:
    """This host's HostSupport (as JSON) and its mechanism lines."""
    from docklock.cage.host import detect_host
    from docklock.cage.replay import describe_host

    host = detect_host()
    return host.to_dict(), describe_host(host)


def _errno_name(errno: int) -> str:
    return {1: "EPERM", 38: "ENOSYS"}.get(errno, str(errno))
