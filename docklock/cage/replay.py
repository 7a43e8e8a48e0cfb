"""The deterministic cage's second generation, for Jobs: pin what can be pinned.

`job_cage` takes a resolved deterministic cage and a JobSpec and adds (ADR 0018):
- the launcher (docklock-launch, Podman's --init-path): ASLR off for the job;
- a fake wall clock through libfaketime for dynamically linked glibc programs: it starts
  at the job's epoch and moves `step` per read, so the Nth read of a process returns the
  same value on every run. The monotonic and boot-time clocks stay real unless the job
  sets clock.monotonic: pinned (FAKETIME_DONT_FAKE_MONOTONIC=1): a faked monotonic clock
  hangs timed waits such as Event.wait(0.5) until the job's timeout (libfaketime issues
  #390, #469);
- synthetic /proc and /sys files (uptime, loadavg, stat, meminfo, cpuinfo, swaps, the
  CPU lists) derived from the job's declared resources and epoch, never from the host;
- masked /proc files that leak host state and that runc refuses to bind over (vmstat, …)
  or that hand out kernel randomness (/proc/sys/kernel/random: uuid, boot_id);
- pinned env for language runtimes (see REPLAY_ENV), on top of the level's.

Services are left alone: a long-running program with a fake clock breaks its timers,
and Podman's catatonit init (spec.init) would be replaced by the launcher.

`describe_host` says, mechanism by mechanism, what a HostSupport lets the cage pin (what
`docklock cage show deterministic` prints); `replay_environment` is what a witness records
about a Job's cage so a verify elsewhere can name why replay may differ.

Everything here is pure apart from `detect_host` (reads files) and `replay_environment`
(hashes the libfaketime it mounts when detection did not); files are written by
docklock.cage.files.write_cage_files.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from docklock.cage.host import HostSupport, detect_host, file_sha256
from docklock.cage.levels import DEFAULT_MEMORY, DETERMINISTIC, SOURCE_DATE_EPOCH
from docklock.cage.podman_args import PRELOAD_TARGET
from docklock.cage.seccomp import profile_digest, seccomp_profile
from docklock.errors import CageError
from docklock.model import EnvVar, JobSpec, Resource
from docklock.objects import CageSettings, ReplaySettings
from docklock.units import duration_ns, memory_bytes

# Container path -> synthetic file name (under the content-addressed proc folder).
# runc (1.1) allows binds over these /proc files only; /sys is not restricted.
SYNTHETIC: Mapping[str, str] = {
    "/proc/uptime": "uptime",
    "/proc/loadavg": "loadavg",
    "/proc/stat": "stat",
    "/proc/meminfo": "meminfo",
    "/proc/cpuinfo": "cpuinfo",
    "/proc/swaps": "swaps",
    "/sys/devices/system/cpu/online": "cpu-online",
    "/sys/devices/system/cpu/possible": "cpu-possible",
    "/sys/devices/system/cpu/present": "cpu-present",
}

# Shown empty (Podman masks a file with /dev/null, a folder with an empty read-only
# tmpfs). Host state runc will not let a file be bound over, and kernel randomness.
MASKED: tuple[str, ...] = (
    "/proc/vmstat", "/proc/zoneinfo", "/proc/buddyinfo", "/proc/pagetypeinfo",
    "/proc/schedstat", "/proc/interrupts", "/proc/softirqs", "/proc/diskstats",
    "/proc/partitions", "/proc/pressure", "/proc/sys/kernel/random",
)

# Env a deterministic Job gets on top of the level's pins: (name, value or None for a
# value computed per job, why).
REPLAY_ENV: tuple[tuple[str, str | None, str], ...] = (
    ("SOURCE_DATE_EPOCH", None,
     "the job's epoch: reproducible-builds tools stamp it instead of the time"),
    ("PERL_HASH_SEED", "0", "Perl randomises hash order per process"),
    ("PERL_PERTURB_KEYS", "0", "Perl perturbs key order on insert"),
    ("PYTHONDONTWRITEBYTECODE", "1", ".pyc files embed the source file's mtime"),
    ("OMP_NUM_THREADS", None,
     "OpenMP splits float reductions by thread count; the sum order follows it"),
    ("OPENBLAS_NUM_THREADS", None, "OpenBLAS, the same reason"),
    ("MKL_NUM_THREADS", None, "Intel MKL, the same reason"),
    ("MKL_CBWR", "COMPATIBLE", "MKL picks code paths by CPU unless asked for one path"),
)
_THREAD_VARS = frozenset({"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"})

# The x86-64 baseline (psABI v1): what every x86-64 CPU has, nothing host-specific.
_BASELINE_FLAGS = ("fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat "
                   "pse36 clflush mmx fxsr sse sse2 syscall nx lm")


# The largest epoch the clock accepts: 9999-12-31 23:59:59 UTC (as the schema's maximum
# of spec.clock.epoch); beyond it no date can be written for FAKETIME.
MAX_EPOCH = 253402300799


def _epoch_env(spec: JobSpec) -> EnvVar | None:
    return next((e for e in spec.env if e.name == "SOURCE_DATE_EPOCH"), None)


def clock_epoch(spec: JobSpec) -> int:
    """spec.clock.epoch, else the job's SOURCE_DATE_EPOCH, else 1980.

    A SOURCE_DATE_EPOCH that is not ASCII digits within 0..MAX_EPOCH is an error, not
    silently replaced: the job asked for that epoch and would get another one.
    """
    if spec.clock.epoch is not None:
        return spec.clock.epoch
    env = _epoch_env(spec)
    if env is None:
        return int(SOURCE_DATE_EPOCH)
    if env.sensitive:
        # The clock's start is visible to the job and recorded in plain sight: in the
        # cage's settings (plans, state), /proc/stat's btime, the witness and the ledger.
        raise CageError(
            "a sensitive SOURCE_DATE_EPOCH cannot set the deterministic clock: its value "
            "would show in plans, state, the witness and /proc/stat",
            hint="set spec.clock.epoch (the clock's start is not a secret), or unmark "
                 "SOURCE_DATE_EPOCH as sensitive")
    text = env.value.strip()
    # str.isdigit() accepts "²" and other Unicode digits that int() refuses.
    if text and text.isascii() and text.isdigit() and int(text) <= MAX_EPOCH:
        return int(text)
    raise CageError(
        f"SOURCE_DATE_EPOCH {env.value!r} is not a whole number of seconds in 0..{MAX_EPOCH}",
        hint="set spec.clock.epoch, or SOURCE_DATE_EPOCH to a number of seconds since "
             "1970-01-01 UTC (e.g. 315532800)")


def faketime_value(epoch: int, step: str) -> str:
    """libfaketime's FAKETIME: "@<date> i<seconds>" starts the clock at the date and
    moves it <seconds> per read; a date without "@" stands still."""
    start = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")
    step_ns = duration_ns(step)
    if step_ns == 0:
        return start
    seconds = f"{step_ns / 1e9:.9f}".rstrip("0").rstrip(".")
    return f"@{start} i{seconds}"


def job_cpus(spec: JobSpec) -> int:
    """The CPU count the synthetic files report: the declared cpus rounded up, else 1."""
    cpus = spec.resources.cpus
    return max(1, math.ceil(cpus)) if cpus else 1


def _cpu_list(cpus: int) -> str:
    return "0\n" if cpus == 1 else f"0-{cpus - 1}\n"


def synthetic_files(cpus: int, memory: int, epoch: int) -> dict[str, bytes]:
    """The synthetic files' bytes by name: a function of cpus, memory and epoch only."""
    kb = memory // 1024
    meminfo = "".join(f"{name + ':':<16}{value:>8} kB\n" for name, value in (
        ("MemTotal", kb), ("MemFree", kb), ("MemAvailable", kb), ("Buffers", 0),
        ("Cached", 0), ("SwapCached", 0), ("Active", 0), ("Inactive", 0),
        ("Shmem", 0), ("SReclaimable", 0), ("SwapTotal", 0), ("SwapFree", 0)))
    zeros = " 0" * 10
    stat = (f"cpu {zeros}\n" + "".join(f"cpu{i}{zeros}\n" for i in range(cpus))
            + f"intr 0\nctxt 0\nbtime {epoch}\nprocesses 1\nprocs_running 1\n"
            "procs_blocked 0\nsoftirq" + " 0" * 11 + "\n")
    cpuinfo = "".join(
        f"processor\t: {i}\nvendor_id\t: DockLock\ncpu family\t: 6\nmodel\t\t: 0\n"
        f"model name\t: DockLock deterministic CPU\nstepping\t: 0\ncpu MHz\t\t: 1000.000\n"
        f"physical id\t: 0\nsiblings\t: {cpus}\ncore id\t\t: {i}\ncpu cores\t: {cpus}\n"
        f"flags\t\t: {_BASELINE_FLAGS}\nbogomips\t: 2000.00\n\n" for i in range(cpus))
    cpu_list = _cpu_list(cpus)
    return {
        "uptime": b"1.00 1.00\n",
        "loadavg": b"0.00 0.00 0.00 1/1 1\n",
        "stat": stat.encode(),
        "meminfo": meminfo.encode(),
        "cpuinfo": cpuinfo.encode(),
        "swaps": b"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n",
        "cpu-online": cpu_list.encode(),
        "cpu-possible": cpu_list.encode(),
        "cpu-present": cpu_list.encode(),
    }


def files_digest(files: Mapping[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()


def launcher_file_name(digest: str) -> str:
    """Content-addressed name of the launcher's copy in the cages folder."""
    return f"launch-{digest.removeprefix('sha256:')[:32]}"


def proc_folder_name(digest: str) -> str:
    return f"proc-{digest[:32]}"


def replay_env(spec: JobSpec, replay: ReplaySettings) -> tuple[EnvVar, ...]:
    """REPLAY_ENV with this job's values, plus the libfaketime env when preloaded.

    A value derived from a sensitive spec value is sensitive too (a sensitive
    SOURCE_DATE_EPOCH never becomes the epoch: clock_epoch refuses it): LD_PRELOAD when the
    job's own LD_PRELOAD was.
    """
    values: dict[str, str] = {}
    sensitive: set[str] = set()
    for name, value, _ in REPLAY_ENV:
        if name == "SOURCE_DATE_EPOCH":
            values[name] = str(replay.epoch)
        elif name in _THREAD_VARS:
            values[name] = str(replay.cpus)
        else:
            values[name] = value or ""
    if replay.preload is not None:
        own = next((e for e in spec.env if e.name == "LD_PRELOAD"), None)
        values["LD_PRELOAD"] = f"{PRELOAD_TARGET} {own.value if own else ''}".strip()
        if own is not None and own.sensitive:
            sensitive.add("LD_PRELOAD")
        values["FAKETIME"] = faketime_value(replay.epoch, replay.clock_step)
        if replay.monotonic != "pinned":
            # A faked monotonic clock never reaches a timed wait's deadline (libfaketime
            # issues #390, #469): Event.wait(0.5) would run until the job's timeout.
            values["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
        # Read by the launcher: "auto" drops the preload where the image has no glibc
        # loader, or a libc that lacks the newest version libfaketime was linked against.
        values["DOCKLOCK_FAKETIME"] = replay.faketime
        if replay.preload_glibc is not None:
            values["DOCKLOCK_FAKETIME_GLIBC"] = replay.preload_glibc
    return tuple(EnvVar(k, v, k in sensitive) for k, v in sorted(values.items()))


def job_cage(cage: CageSettings, spec: JobSpec, cages_dir: Path | None, *,
             host: HostSupport | None = None) -> CageSettings:
    """`cage` with the Job pins added when it is deterministic; any other cage as is."""
    if cage.level != DETERMINISTIC:
        return cage
    epoch = clock_epoch(spec)
    host = host if host is not None else detect_host()
    cpus = job_cpus(spec)
    memory = memory_bytes(spec.resources.memory or cage.memory
                          or DEFAULT_MEMORY[DETERMINISTIC] or "512Mi")
    files = synthetic_files(cpus, memory, epoch)
    proc_digest = files_digest(files)
    mode = spec.clock.faketime
    # "auto" needs the launcher to look for glibc's loader inside the container.
    use_preload = host.libfaketime is not None and (
        mode == "always" or (mode == "auto" and host.launcher is not None))
    launcher: str | None = None
    if host.launcher is not None and host.launcher_digest is not None:
        launcher = (str(cages_dir / launcher_file_name(host.launcher_digest))
                    if cages_dir is not None else host.launcher)
    replay = ReplaySettings(
        epoch=epoch, clock_step=spec.clock.step, faketime=mode,
        monotonic=spec.clock.monotonic, cpus=cpus,
        memory_bytes=memory, proc_digest=proc_digest, synthetic=dict(SYNTHETIC),
        masked=MASKED, launcher=launcher,
        launcher_digest=host.launcher_digest if launcher else None,
        preload=host.libfaketime if use_preload else None,
        preload_glibc=host.libfaketime_glibc if use_preload else None,
        proc_dir=(str(cages_dir / proc_folder_name(proc_digest))
                  if cages_dir is not None else None),
    )
    env = {e.name: e for e in cage.env}
    env.update({e.name: e for e in replay_env(spec, replay)})
    draft = replace(cage, env=tuple(env[k] for k in sorted(env)), replay=replay)
    digest = profile_digest(seccomp_profile(draft))
    path = str(cages_dir / f"seccomp-{digest}.json") if cages_dir is not None else None
    return replace(draft, seccomp_digest=digest, seccomp_profile_path=path)


def resource_job_cage(cage: CageSettings, job: Resource,
                      cages_dir: Path | None) -> CageSettings:
    """job_cage for a Job resource: a CageError names the Job and points at its spec
    (what render and `docklock run` call)."""
    if not isinstance(job.spec, JobSpec):
        raise TypeError(f"{job.address} is not a Job")
    try:
        return job_cage(cage, job.spec, cages_dir)
    except CageError as exc:
        raise CageError(f"{job.address}: {exc.message}",
                        location=exc.location or job.location, hint=exc.hint) from exc


def _paths(paths: list[str]) -> str:
    return ", ".join(paths)


def describe_host(host: HostSupport) -> list[tuple[str, str]]:
    """(mechanism, its state on `host`) for every pin of the deterministic Job cage.

    Says what is NOT pinned as plainly as what is: an operator reads this to know what
    a witness can promise on this machine.
    """
    arch = host.arch
    if host.libfaketime is None:
        clock = "not installed: apt-get install libfaketime — clocks are not pinned"
    elif host.launcher is None:
        # Without the launcher nothing checks for glibc's loader, so "auto" preloads nothing.
        clock = (f"libfaketime at {host.libfaketime}, only for jobs with clock.faketime: "
                 f"always (no launcher for {arch} to detect glibc); dynamically linked "
                 "programs only")
    else:
        clock = (f"libfaketime at {host.libfaketime}, dynamically linked programs only "
                 "(the launcher drops it where the image has no glibc loader, or a glibc older "
                 f"than {host.libfaketime_glibc or 'the library needs'})")
    if host.runtime_time_namespaces:
        monotonic = "time namespace offsets"
    elif host.libfaketime is not None:
        monotonic = ("real by default (a faked monotonic clock hangs timed waits); "
                     "libfaketime for jobs with clock.monotonic: pinned; time namespaces "
                     "unused: Podman's API offers no clock offsets")
    elif host.kernel_time_namespaces:
        monotonic = ("not pinned — time namespace: the kernel has them but Podman's API "
                     "offers no clock offsets")
    else:
        monotonic = "not pinned: no libfaketime, and the kernel has no time namespaces"
    aslr = (f"off: the launcher for {arch} sets ADDR_NO_RANDOMIZE (personality)"
            if host.launcher is not None else f"no launcher for {arch}: addresses are random")
    proc = (f"synthetic: {_paths(sorted(SYNTHETIC))} (from the job's cpus, memory and "
            f"epoch); masked: {_paths(list(MASKED))}")
    return [
        ("clock", clock),
        ("monotonic/boot-time clocks", monotonic),
        ("ASLR", aslr),
        ("/proc", proc),
        ("/tmp", "a fresh tmpfs per run; inode numbers not promised"),
        ("env", " ".join(name for name, _, _ in REPLAY_ENV)),
        ("Jobs only", "services in this level keep the first-generation pins"),
    ]


def replay_environment(cage: CageSettings, *,
                       host: HostSupport | None = None) -> dict[str, str]:
    """What a witness records about a Job's replay pins (Witness.environment keys).

    Host paths are left out (they differ between machines without changing the run);
    the digests of what is mounted, whether the preload is on and the clock are kept.
    "none" marks a pin this host did not provide. A cage without replay adds nothing.
    """
    replay = cage.replay
    if replay is None:
        return {}
    faketime_digest = "none"
    if replay.preload is not None:
        host = host if host is not None else detect_host()
        if host.libfaketime == replay.preload and host.libfaketime_digest is not None:
            faketime_digest = host.libfaketime_digest
        elif Path(replay.preload).is_file():
            faketime_digest = file_sha256(Path(replay.preload))
        else:
            faketime_digest = "missing"
    return {
        "libfaketime_digest": faketime_digest,
        "libfaketime_preload": "on" if replay.preload is not None else "off",
        "launcher_digest": replay.launcher_digest or "none",
        "faketime_mode": replay.faketime,
        "clock_epoch": str(replay.epoch),
        "clock_step": f"{duration_ns(replay.clock_step)}ns",  # "1s" == "1000ms"
        "clock_monotonic": replay.monotonic,
        # Which glibc the host's libfaketime needs: a host fact, so recorded here and not
        # in the compared env (docklock.objects.HOST_ENV).
        "libfaketime_glibc": replay.preload_glibc or "none",
    }
