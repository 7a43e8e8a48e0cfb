"""Every source of non-determinism a program can reach, one file each: /out/<id>.txt.

The ids are those of docklock.cage.sources.SOURCES (docs/determinism.md has the table:
which ones the deterministic cage pins, which ones `docklock verify` can only name).
Runs in the Debian 12 image (Python 3.11 and the dynamically linked Debian busybox);
needs nothing but the standard library. Prints nothing: the outputs are the evidence,
so the differences `verify` names are `outputs/<id>.txt` and nothing else.

A failing read is written as its error (e.g. a masked file), never raised: the probe
must cover every id on every run.
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import mmap
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "/out")
LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.malloc.restype = ctypes.c_void_p
LIBC.malloc.argtypes = [ctypes.c_size_t]
LIBC.free.argtypes = [ctypes.c_void_p]
LIBC.getauxval.restype = ctypes.c_ulong
LIBC.getauxval.argtypes = [ctypes.c_ulong]
AT_RANDOM = 25  # auxiliary vector: address of 16 random bytes the kernel wrote at exec


def machine_code(code: bytes, restype: type, *argtypes: type) -> Callable[..., int]:
    """x86-64 bytes as a callable in an executable anonymous mapping: no libc function
    (and so no preload) stands between it and the CPU or the kernel."""
    buf = mmap.mmap(-1, mmap.PAGESIZE,
                    prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    buf.write(code)
    address = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    func = ctypes.CFUNCTYPE(restype, *argtypes)(address)
    func._keep = buf  # type: ignore[attr-defined]  # the mapping lives as long as func
    return func


# rdtsc; shl rdx, 32; or rax, rdx; ret
RDTSC = machine_code(bytes.fromhex("0f3148c1e2204809d0c3"), ctypes.c_uint64)
# mov rax, rsp; ret — the stack pointer
STACK_POINTER = machine_code(bytes.fromhex("4889e0c3"), ctypes.c_uint64)
# mov eax, 228 (clock_gettime); syscall; ret — the kernel's clock, as a static
# program's libc reads it: libfaketime, a preload, never sees this call.
RAW_CLOCK_GETTIME = machine_code(bytes.fromhex("b8e40000000f05c3"), ctypes.c_long,
                                 ctypes.c_int, ctypes.c_void_p)


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def raw_clock(clock_id: int) -> str:
    ts = Timespec()
    rc = RAW_CLOCK_GETTIME(clock_id, ctypes.addressof(ts))
    return f"rc={rc} {ts.tv_sec}.{ts.tv_nsec:09d}"


def read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror} ({path})\n"


def lines(*items: object) -> str:
    return "".join(f"{item}\n" for item in items)


def busybox(*args: str) -> str:
    done = subprocess.run(["busybox", *args], capture_output=True, text=True,
                          check=False)
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}"


def maps_lines(*names: str) -> list[str]:
    found = []
    for line in read("/proc/self/maps").splitlines():
        if any(line.endswith(name) for name in names):
            found.append(line.split()[0] + " " + line.split()[-1])
    return found


def getrandom() -> str:
    try:
        return os.getrandom(16).hex()
    except OSError as exc:  # the deterministic cage answers ENOSYS
        return f"OSError errno {exc.errno}"


def aslr() -> str:
    heap = LIBC.malloc(64)
    LIBC.free(heap)
    mapping = mmap.mmap(-1, mmap.PAGESIZE)
    mapped = ctypes.addressof(ctypes.c_char.from_buffer(mapping))
    return lines(f"stack pointer {STACK_POINTER():#x}",
                 f"libc printf {ctypes.cast(LIBC.printf, ctypes.c_void_p).value:#x}",
                 f"malloc {heap or 0:#x}", f"mmap {mapped:#x}",
                 *maps_lines("[stack]", "[heap]", "[vdso]", "[vvar]"))


def at_random() -> str:
    address = LIBC.getauxval(AT_RANDOM)
    return ctypes.string_at(address, 16).hex() + "\n"


def threads() -> str:
    order: list[int] = []

    def work(n: int) -> None:
        for _ in range(10000):
            order.append(n)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
    digest = hashlib.sha256(bytes(order)).hexdigest()
    return lines(f"{len(order)} appends, {switches} switches between threads", digest)


def new_file_stat() -> os.stat_result:
    fd, name = tempfile.mkstemp(dir="/tmp")
    os.write(fd, b"x")
    os.close(fd)
    try:
        return os.stat(name)
    finally:
        os.unlink(name)


def tempfile_names() -> str:
    with tempfile.NamedTemporaryFile(dir="/tmp") as f:
        named = f.name
    folder = tempfile.mkdtemp(dir="/tmp")
    os.rmdir(folder)
    fd, name = tempfile.mkstemp(dir="/tmp")
    os.close(fd)
    os.unlink(name)
    return lines(named, folder, name)


def probes() -> dict[str, Callable[[], str]]:
    """id -> how this probe reads it (docklock.cage.sources.SOURCES has every id)."""
    def urandom() -> str:
        with open("/dev/urandom", "rb") as f:
            return f.read(32).hex() + "\n"

    stat = new_file_stat()
    return {
        # Read first, before anything else moves the pid counter or the heap.
        "pid": lambda: lines(os.getpid(), os.getppid()),
        "aslr": aslr,
        "at-random": at_random,
        "rdtsc": lambda: lines(RDTSC()),
        "urandom": urandom,
        "getrandom": getrandom,
        "python-random": lambda: lines(random.random(),  # noqa: S311  # the point
                                       random.getrandbits(64),
                                       random.sample(range(100), 5)),
        "python-uuid4": lambda: lines(uuid.uuid4(), uuid.uuid4()),
        "python-urandom": lambda: os.urandom(16).hex() + "\n",
        "python-hash": lambda: lines(hash("docklock"), hash(b"cage"), hash(("a", 1))),
        "python-set-order": lambda: lines(list({"alpha", "beta", "gamma", "delta",
                                                "epsilon", "zeta"})),
        "python-tempfile": tempfile_names,
        "python-object-ids": lambda: lines(id(object()), id([]), id("x" * 100)),
        "python-time": lambda: lines(time.time(), time.time_ns(),
                                     time.strftime("%Y-%m-%d %H:%M:%S")),
        "python-monotonic": lambda: lines(time.monotonic(), time.perf_counter()),
        "python-boottime": lambda: lines(time.clock_gettime(time.CLOCK_BOOTTIME)),
        "hostname": lambda: lines(socket.gethostname(), os.uname().nodename),
        "env": lambda: "".join(f"{k}={v}\n" for k, v in sorted(os.environ.items())),
        "network": lambda: lines(sorted(os.listdir("/sys/class/net"))),
        "uptime": lambda: read("/proc/uptime"),
        "loadavg": lambda: read("/proc/loadavg"),
        "proc-stat": lambda: read("/proc/stat"),
        "meminfo": lambda: read("/proc/meminfo"),
        "vmstat": lambda: read("/proc/vmstat"),
        "cpuinfo": lambda: read("/proc/cpuinfo"),
        "cpu-count": lambda: lines(os.cpu_count(), read("/sys/devices/system/cpu/online")),
        "kernel-random": lambda: read("/proc/sys/kernel/random/uuid")
        + read("/proc/sys/kernel/random/boot_id"),
        "busybox-date": lambda: busybox("date", "+%Y-%m-%d %H:%M:%S %s"),
        "busybox-shuf": lambda: busybox("shuf", "-i", "1-20"),
        "busybox-awk-srand": lambda: busybox("awk", "BEGIN { srand(); print rand() }"),
        "busybox-mktemp": lambda: busybox("mktemp"),
        "mountinfo": lambda: read("/proc/self/mountinfo"),
        "cgroup": lambda: read("/proc/self/cgroup"),
        "sched": lambda: read("/proc/self/sched"),
        "inode": lambda: lines(stat.st_ino),
        "file-mtime": lambda: lines(stat.st_mtime_ns, stat.st_ctime_ns),
        "kernel-release": lambda: lines(os.uname().release),
        "cpu-affinity": lambda: lines(len(os.sched_getaffinity(0))),
        "static-clock": lambda: lines(raw_clock(time.CLOCK_REALTIME)),
        "static-monotonic": lambda: lines(raw_clock(time.CLOCK_MONOTONIC)),
        # Last: while threads wait for the GIL, CPython reads the clock as often as the
        # scheduler makes it wait, so the Nth-read clock is not pinned after this.
        "threads": threads,
    }


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for source, probe in probes().items():
        try:
            text = probe()
        except Exception as exc:  # the file says what failed
            text = f"probe failed: {type(exc).__name__}: {exc}\n"
        (OUT / f"{source}.txt").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
