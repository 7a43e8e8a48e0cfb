"""The sources of non-determinism a Job can reach, and what the deterministic cage does
about each: the table docs/determinism.md is generated from (tools/gen_determinism_docs.py).

Every id is also a file of the probe job (examples/deterministic-probe/probes/
probe_all.py writes outputs/<id>.txt), and tests/integration/cage/test_probe_table.py
asserts the classes on real Podman: a PINNED or PINNED_DYNAMIC source is byte-identical
across verifies, `verify` names every file that differs, and the sources that cannot be
controlled without ptrace differ every time.

Pure data; nothing here reads the host.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class SourceClass(enum.Enum):
    """What the cage promises about a source, strongest first."""

    PINNED = "pinned"
    PINNED_DYNAMIC = "pinned-dynamic"
    DETECTABLE = "detectable"
    UNCONTROLLABLE = "uncontrollable"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def promised(self) -> bool:
        """Byte-identical between a run and its verify on the same host."""
        return self in (SourceClass.PINNED, SourceClass.PINNED_DYNAMIC)


_LABELS = {
    SourceClass.PINNED: "pinned",
    SourceClass.PINNED_DYNAMIC: "pinned for dynamically linked programs only",
    SourceClass.DETECTABLE: "detectable by verify",
    SourceClass.UNCONTROLLABLE: "not controllable without ptrace",
}


@dataclass(frozen=True)
class Source:
    """One source: `id` (also the probe's output file name without .txt), `what` a
    program reads, its class, and `how` the cage handles it (or why it cannot)."""

    id: str
    what: str
    klass: SourceClass
    how: str


P, PD, D, U = (SourceClass.PINNED, SourceClass.PINNED_DYNAMIC, SourceClass.DETECTABLE,
               SourceClass.UNCONTROLLABLE)
_FAKETIME = ("libfaketime (preloaded): the job's epoch plus N times the step on the "
             "Nth read of the process")
_MONOTONIC = ("real by default: a faked monotonic clock hangs timed waits; "
              "spec.clock.monotonic: pinned pins it for programs that never wait with a "
              "timeout")

SOURCES: tuple[Source, ...] = (
    # pinned: every program, static or dynamic, sees the same bytes.
    Source("urandom", "/dev/urandom and /dev/random", P,
           "seeded stream bound over /dev/urandom and /dev/random (from the job's seed)"),
    Source("getrandom", "the getrandom system call", P,
           "answered ENOSYS by the seccomp profile, so libraries fall back to "
           "/dev/urandom (the seeded stream)"),
    Source("python-random", "Python's random module", P,
           "seeded at start from os.urandom, which reads the seeded stream"),
    Source("python-uuid4", "Python's uuid.uuid4()", P, "os.urandom: the seeded stream"),
    Source("python-urandom", "Python's os.urandom()", P,
           "getrandom → ENOSYS, then /dev/urandom: the seeded stream"),
    Source("python-hash", "Python's hash() of str and bytes", P,
           "PYTHONHASHSEED=0 in the pinned env"),
    Source("python-set-order", "iteration order of a Python set of strings", P,
           "follows hash(): PYTHONHASHSEED=0"),
    Source("python-tempfile", "names from Python's tempfile", P,
           "its name generator is seeded from os.urandom: the seeded stream"),
    Source("python-object-ids", "Python's id() (object addresses)", P,
           "ASLR off (the launcher's personality ADDR_NO_RANDOMIZE) and the same "
           "allocations in the same order"),
    Source("aslr", "addresses of the stack, heap, libc, mmap and [vdso]", P,
           "the launcher (Podman's --init-path) turns ASLR off with personality "
           "ADDR_NO_RANDOMIZE; the seccomp profile allows exactly that flag"),
    Source("hostname", "the host name", P, "fixed: docklock-cage"),
    Source("pid", "process ids", P,
           "a new PID namespace per run: the launcher execs the job as PID 1, its "
           "children are numbered in order of creation"),
    Source("env", "the environment", P,
           "the job's env plus the pinned list (TZ, LC_ALL, seeds, …); nothing from the "
           "host"),
    Source("network", "network interfaces", P, "network none: only lo"),
    Source("uptime", "/proc/uptime", P,
           "synthetic file bound over it (fixed values, not the host's uptime)"),
    Source("loadavg", "/proc/loadavg", P, "synthetic file bound over it (zero load)"),
    Source("proc-stat", "/proc/stat", P,
           "synthetic file from the job's declared cpus (zero counters, btime = the "
           "job's epoch)"),
    Source("meminfo", "/proc/meminfo", P,
           "synthetic file from the job's declared memory"),
    Source("vmstat", "/proc/vmstat (and zoneinfo, buddyinfo, interrupts, …)", P,
           "masked (empty): runc allows no bind over them"),
    Source("cpuinfo", "/proc/cpuinfo", P,
           "synthetic file from the job's declared cpus: a baseline x86-64 CPU, not "
           "the host's model and flags"),
    Source("cpu-count", "the CPU count (os.cpu_count(), /sys/devices/system/cpu/online)", P,
           "synthetic /sys/devices/system/cpu/{online,possible,present} from the job's "
           "declared cpus"),
    Source("kernel-random", "/proc/sys/kernel/random (uuid, boot_id)", P,
           "masked (an empty folder): the files are not there"),
    # pinned only where libfaketime is loaded: dynamically linked glibc programs.
    Source("python-time", "time.time(), time.time_ns(), strftime", PD, _FAKETIME),
    Source("busybox-date", "date (the dynamic Debian busybox)", PD, _FAKETIME),
    Source("busybox-awk-srand", "awk srand() (the dynamic Debian busybox)", PD,
           "srand() with no argument seeds from the clock, which libfaketime pins"),
    # detectable: not pinned; verify names the output file when it reaches one.
    Source("python-monotonic", "time.monotonic(), time.perf_counter()", D, _MONOTONIC),
    Source("python-boottime", "clock_gettime(CLOCK_BOOTTIME)", D, _MONOTONIC),
    Source("busybox-shuf", "shuf (the dynamic Debian busybox)", D,
           "seeded from the monotonic clock (busybox's monotonic_us), which is real by "
           "default; spec.clock.monotonic: pinned pins it"),
    Source("busybox-mktemp", "mktemp (even the dynamic busybox)", D,
           "glibc's name generator reads the clock inside libc (getrandom is ENOSYS), "
           "where no preload reaches"),
    Source("mountinfo", "/proc/self/mountinfo", D,
           "mount ids and the container's storage paths change every run; runc refuses "
           "a bind over it"),
    Source("cgroup", "/proc/self/cgroup", D,
           "names the container's cgroup, new every run"),
    Source("sched", "/proc/self/sched", D, "the kernel's live scheduler counters"),
    Source("inode", "inode numbers of new files", D,
           "the kernel picks them; on the fresh /tmp tmpfs they have repeated, but that "
           "is not promised"),
    Source("file-mtime", "timestamps of new files", D,
           "the kernel stamps them with the real clock; libfaketime changes what a "
           "program reads from the clock, not what the file system writes"),
    Source("kernel-release", "uname's kernel release", D,
           "the host's kernel; the same on one host, recorded in the witness's "
           "environment block so verify names it across hosts"),
    Source("cpu-affinity", "CPUs the job may run on (sched_getaffinity, nproc)", D,
           "the host's CPU set (the declared cpus limit time, not the set); the same on "
           "one host"),
    Source("static-clock", "the wall clock of a statically linked program", D,
           "static programs never load libfaketime, and Podman offers no time "
           "namespace: the host's real clock"),
    Source("static-monotonic", "the monotonic clock of a statically linked program", D,
           "the same: the host's clock, no preload, no time namespace offset"),
    # not controllable without ptrace (or a different kernel interface).
    Source("at-random", "AT_RANDOM: 16 bytes the kernel puts in the auxiliary vector", U,
           "the kernel writes it at exec; only ptrace could change it (glibc derives "
           "the stack protector canary and pointer guard from it)"),
    Source("rdtsc", "the CPU's time-stamp counter (rdtsc instruction)", U,
           "an instruction, not a system call: only trapping it (ptrace + "
           "PR_SET_TSC) could change it"),
    Source("threads", "the interleaving of threads", U,
           "the kernel's scheduler decides it; only a ptrace-based runtime that "
           "serialises threads could fix it (a short CPython run under the GIL often "
           "repeats, but that is luck, not a promise)"),
)

BY_ID: dict[str, Source] = {s.id: s for s in SOURCES}


def sources_of(klass: SourceClass) -> tuple[Source, ...]:
    return tuple(s for s in SOURCES if s.klass is klass)
