"""Write docs/determinism.md, what the deterministic cage does and does not promise.

The table comes from docklock.cage.sources.SOURCES, the pinned env from
docklock.cage.levels.pinned_env and docklock.cage.replay.REPLAY_ENV, the /proc and /sys
files from replay.SYNTHETIC and replay.MASKED; the prose around them is here. Nothing
is written by hand in the page, so it cannot drift from the code: rerun it after
changing any of those (a unit test fails when the page is stale).

    .venv/bin/python tools/gen_determinism_docs.py [--out docs/determinism.md] [--check]

--check writes nothing and exits 1 when the file differs from a fresh generation.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "determinism.md"
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from docklock.cage.levels import SEED_ENV, pinned_env  # noqa: E402
from docklock.cage.replay import MASKED, REPLAY_ENV, SYNTHETIC  # noqa: E402
from docklock.cage.sources import SOURCES, SourceClass  # noqa: E402

INTRO = """\
A Job in the `deterministic` cage (alias `military-grade`) is run so that a re-run with
the same image, command, inputs and seed **on the same host** produces the same bytes for
everything the table below calls *pinned*. `docklock run JOB` records a witness (digests of
the image, command, env, inputs, stdout, stderr, exit code and every output file);
`docklock verify JOB` runs it again and compares: exit 0 when identical, exit 2 naming
each field that differs (`stdout_digest`, `outputs/<path>`, …) and keeping the re-run's
evidence in `.docklock/jobs/<Job.namespace.name>/` (`verify-outputs/`, `verify-stdout`,
`verify-stderr`, beside the recorded run's `outputs/`, `stdout`, `stderr`).

This is not a deterministic machine. DockLock does not trace the program (no ptrace,
unlike [Hermit](https://github.com/facebookexperimental/hermit) or
[rr](https://rr-project.org/)): it closes the doors a program usually reads
non-determinism through, and `verify` catches what still gets through. What is and is not
pinned is below, source by source, in plain words.
"""

CLASSES = {
    SourceClass.PINNED: "The same bytes for every program, static or dynamically linked.",
    SourceClass.PINNED_DYNAMIC: (
        "The same bytes for programs linked dynamically against glibc, where the "
        "libfaketime preload is loaded (the Debian image of `tools/debian-image`, most "
        "distribution images). A statically linked program (busybox-static, Go and "
        "musl-static binaries) reads the host's real clock: see `static-clock`."),
    SourceClass.DETECTABLE: (
        "Not pinned. When one reaches a job's stdout, stderr or output files, `verify` "
        "exits 2 and names the field; the job is then not reproducible as written."),
    SourceClass.UNCONTROLLABLE: (
        "Not pinned, and no cage can pin them without tracing the program (ptrace) or "
        "a kernel feature Podman does not expose. Keep them out of outputs."),
}

CLOCK = """\
libfaketime (Debian's `libfaketime`, found on the host and bind-mounted read-only at
`/.docklock/libfaketime.so.1`) is preloaded into the job. It answers `time()`,
`gettimeofday()` and `clock_gettime(CLOCK_REALTIME)` with the job's epoch plus N times the
step on the Nth read in the process, so the Nth read returns the same value on every run.
The monotonic and boot-time clocks stay real by default: a faked monotonic clock makes
timed waits (`pthread_cond_timedwait`, `sem_clockwait`, Python's `Event.wait(timeout)`,
`queue.get(timeout=...)`) wait until the job's timeout (libfaketime issues #390, #469).
A job that never waits with a timeout may pin them too. The Job spec sets it all:

```yaml
spec:
  clock:
    epoch: 315532800   # seconds since 1970 UTC; default: the job's SOURCE_DATE_EPOCH
                       # env (a whole number of seconds, not sensitive), else 1980-01-01
    step: 1ms          # how far the clock moves on every read; "0s" stops it
    faketime: auto     # auto | always | never
    monotonic: real    # real | pinned (pinned: timed waits hang)
```

A `SOURCE_DATE_EPOCH` that is not a whole number of seconds in 0..253402300799, or that is
marked sensitive (the clock's start shows in plans, `/proc/stat` and the witness), is an
error that names the Job's file, line and column: set `spec.clock.epoch` instead.

`faketime: auto` (the default) is decided inside the container by the launcher: it keeps
the preload only when the image has glibc's loader (`/lib64/ld-linux-x86-64.so.2`) and a
`libc.so.6` that defines the newest glibc version the host's libfaketime needs
(`DOCKLOCK_FAKETIME_GLIBC`, e.g. `GLIBC_2.34`; older images such as Debian 11 would
refuse to start the program); musl's loader refuses a glibc preload and static programs
ignore it. Otherwise it drops the cage's entry from `LD_PRELOAD` (the job's own entries
stay) and `FAKETIME`. `always` keeps them regardless, `never` leaves the real clock.
`SOURCE_DATE_EPOCH` (the reproducible-builds convention) is the job's epoch in every case.

The kernel has time namespaces (`/proc/self/ns/time`, Linux 5.6) that could move the
monotonic and boot-time clocks for static programs too, but Podman's API offers no way to
ask for one with offsets, so DockLock does not use them (`docklock cage show
deterministic` says what this host supports).
"""

ASLR = """\
Podman runs DockLock's launcher, `docklock-launch` (a 2.9 KB freestanding static binary,
`docklock/cage/data/launch.c`), as the container's init (`--init-path`). It calls
`personality(ADDR_NO_RANDOMIZE)` and then executes the job in its place, so the job is
PID 1 and its stack, heap, mmap and vDSO addresses repeat from run to run. The cage's
seccomp profile allows `personality` with exactly that value. The launcher's copy is
content-addressed in `.docklock/cages/` and its digest is part of the cage.
"""

PROC_INTRO = """\
Files that would show the host's state are replaced with files computed from the job's
declared `resources` (cpus rounded up, memory; default 1 CPU and the cage's memory) and
its epoch, never from the host. runc allows a bind mount over a few /proc files only;
those are bound, the others masked:
"""

NOT_PROMISED = """\
- **Inode numbers.** The kernel chooses them. On the fresh `/tmp` tmpfs they have
  repeated, which is luck, not a promise.
- **File timestamps.** The kernel stamps mtime and ctime with its real clock; libfaketime
  changes what a program reads from the clock, not what the file system writes. Tools that
  copy a file's mtime into their output (tar, zip, gzip's header) should be given
  `SOURCE_DATE_EPOCH` or `--mtime`.
- **Static programs' clocks.** busybox-static's `date`, `shuf`, `awk srand()` and
  `mktemp`, Go binaries and anything else statically linked read the real clock.
- **busybox `mktemp`, even dynamic.** glibc's temporary-name generator asks `getrandom`
  first (the cage answers ENOSYS) and then reads the clock inside libc, where no preload
  reaches. Python's `tempfile` is pinned (its names come from the seeded stream).
- **Thread interleavings.** The scheduler decides them. A short CPython run often
  repeats under the GIL; a program whose output depends on the order threads run in is
  not reproducible.
- **AT_RANDOM and rdtsc.** The kernel writes 16 fresh random bytes into every process's
  auxiliary vector at exec (glibc derives the stack-protector canary and pointer guard
  from them), and `rdtsc` reads the CPU's cycle counter: neither goes through a system
  call a seccomp profile or a preload can answer.
- **The host.** The kernel release, the CPU set the job may run on, `/proc/self/mountinfo`,
  `/proc/self/cgroup` and `/proc/self/sched` describe this host and this container.
"""

HOSTS = """\
A replay is promised on the host that recorded it. On another host the kernel, the CPU,
Podman or the OCI runtime can change what a program computes (a different libm path, CPU
features a library dispatches on, runtime behaviour). `docklock run` therefore records an
`environment` block in the witness: kernel release, architecture, CPU model and flags,
Podman and OCI runtime versions, cgroup version, distribution, image digest and cage
digest, and what the Job cage brought from the host (the libfaketime library's digest and
whether it was preloaded, the launcher's digest, the clock's mode, epoch and step). It is
recorded, not compared as a difference: `verify` on another host first lists the recorded
facts that differ here, as reasons a replay may differ, and then compares the run
itself. A witness written before environments were recorded gets a one-line note
instead.
"""

PROBE = """\
`examples/deterministic-probe` has the probe jobs. `probe-all`
(`probes/probe_all.py`, in the Debian image) writes one file per source above,
`outputs/<id>.txt`; `docklock verify probe-all` exits 2 because `at-random` and `rdtsc`
differ on every run, and names exactly the output files that differ.
`tests/integration/cage/test_probe_table.py` asserts this table with it on real Podman:
every pinned source byte-identical across 5 verifies, every differing file named.
"""


# Why the level pins each of docklock.cage.levels.pinned_env (a unit test keeps this
# complete; REPLAY_ENV carries its own reasons).
LEVEL_ENV_REASONS = {
    "TZ": "local time is UTC everywhere",
    "LC_ALL": "sorting, number and date formats do not follow the host's locale",
    "LANG": "the same, for programs that read LANG only",
    "SOURCE_DATE_EPOCH": "reproducible-builds tools stamp it instead of the time (the "
                         "job's epoch replaces it for Jobs, below)",
    "PYTHONHASHSEED": "Python's str and bytes hashes, and so set iteration order",
    SEED_ENV: "part of the cage digest (a new seed is a new cage) and visible to the "
              "program",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table() -> list[str]:
    out: list[str] = []
    for klass in SourceClass:
        rows = [s for s in SOURCES if s.klass is klass]
        out += [f"### {klass.label.capitalize()} ({len(rows)})", "", CLASSES[klass], "",
                "| source | what a program reads | what the cage does |",
                "|---|---|---|"]
        out += [f"| `{s.id}` | {_cell(s.what)} | {_cell(s.how)} |" for s in rows]
        out.append("")
    return out


def _env() -> list[str]:
    out = ["The level pins (for every deterministic container):", ""]
    for env in pinned_env(0):
        value = "the job's seed" if env.name == SEED_ENV else f"`{env.value}`"
        why = LEVEL_ENV_REASONS.get(env.name, "(no reason written down yet)")
        out.append(f"- `{env.name}` = {value}: {why}")
    out += ["", "Jobs add (docklock.cage.replay.REPLAY_ENV):", ""]
    computed = {"SOURCE_DATE_EPOCH": "the job's epoch"}
    for name, value, why in REPLAY_ENV:
        shown = f"`{value}`" if value is not None else computed.get(
            name, "the job's CPU count")
        out.append(f"- `{name}` = {shown}: {why.removeprefix(shown + ': ')}")
    out += ["", "With the libfaketime preload also `LD_PRELOAD`, `FAKETIME` (e.g. "
            "`@1980-01-01 00:00:00 i0.001`) and `DOCKLOCK_FAKETIME` (read by the "
            "launcher).", ""]
    return out


def render() -> str:
    out = ["# What the deterministic cage pins, and what it does not", "",
           "<!-- Generated by tools/gen_determinism_docs.py from docklock.cage.sources and "
           "docklock.cage.replay; do not edit. -->", "", INTRO,
           "## The sources, one by one", "",
           "Each id is also the name of the probe's output file (`outputs/<id>.txt`).", ""]
    out += _table()
    out += ["## How", "", "### Randomness", "",
            "`/dev/urandom` and `/dev/random` are bind mounts of a stream derived from the "
            "job's `seed`; the `getrandom` system call answers ENOSYS, so libraries fall "
            "back to them.", "", "### The clock", "", CLOCK,
            "### Addresses (ASLR)", "", ASLR, "### /proc and /sys", "", PROC_INTRO]
    out += [f"- `{target}`: synthetic" for target in sorted(SYNTHETIC)]
    out += [f"- `{path}`: masked (empty)" for path in sorted(MASKED)]
    out += ["", "The host name is `docklock-cage`, the network is `none` (only `lo`), "
            "`/tmp` is a fresh empty tmpfs, the root file system is read-only.", "",
            "### Environment", ""]
    out += _env()
    out += ["Services in the deterministic level get the level's pins but not the "
            "launcher, the clock or the synthetic files: a long-running program with a "
            "fake clock breaks its timers, and Podman's own init would be replaced. Only "
            "Jobs (`docklock run`, `docklock verify`, and apply's run-once Job "
            "containers) get them.", "",
            "## What is not promised", "", NOT_PROMISED,
            "## Across hosts: the witness's environment block", "", HOSTS,
            "## See it", "", PROBE]
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if --out differs from a fresh generation; write nothing")
    args = parser.parse_args(argv)
    text = render()
    try:
        current = args.out.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    if args.check:
        if current != text:
            print(f"{args.out} is out of date: run tools/gen_determinism_docs.py",
                  file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
