"""The Python probe: every Python source of run-to-run difference the issue names, one file each.

Writes <outputs>/<id>.txt (the folder is argv[1], default /out) for python-random,
python-time, python-uuid4, python-urandom, python-hash, python-set-order,
python-tempfile and python-object-ids, and prints nothing: `docklock verify` then names
a differing source as `outputs/<id>.txt`, never as a stdout line.

What pins each one in the deterministic cage (docs: the determinism table):
random, uuid4, urandom, tempfile names draw from os.urandom (getrandom gets ENOSYS, so
Python reads the cage's seeded /dev/urandom); hash and set order from PYTHONHASHSEED=0;
time.time() from the libfaketime clock (dynamically linked glibc programs only); id()
from ASLR off (the launcher's personality call) and the same allocations in the same order.
"""

from __future__ import annotations

import datetime
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "/out")

WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
         "india", "juliet", "kilo", "lima")


def write(source: str, lines: list[str]) -> None:
    (OUT / f"{source}.txt").write_text("".join(f"{line}\n" for line in lines))


def python_random() -> list[str]:
    # The module's generator is seeded from os.urandom at import; a new Random() too.
    fresh = random.Random()  # noqa: S311 - the probe looks at it, nothing secret
    return ([f"random.random() {random.random()!r}" for _ in range(3)]  # noqa: S311
            + [f"random.getrandbits(64) {random.getrandbits(64)}",
               f"random.sample {random.sample(WORDS, 4)}",
               f"Random().random() {fresh.random()!r}"])


def python_time() -> list[str]:
    # Each read moves the pinned clock one step: the Nth read is the same on every run.
    return [f"time.time() {time.time()!r}",
            f"time.time_ns() {time.time_ns()}",
            f"datetime.now(UTC) {datetime.datetime.now(datetime.UTC).isoformat()}",
            f"time.ctime() {time.ctime()}"]


def python_uuid4() -> list[str]:
    return [f"uuid4 {uuid.uuid4()}" for _ in range(3)]


def python_urandom() -> list[str]:
    return [f"os.urandom(32) {os.urandom(32).hex()}"]


def python_hash() -> list[str]:
    return ([f"hash({word!r}) {hash(word)}" for word in WORDS[:4]]
            + [f"hash(b'docklock') {hash(b'docklock')}"])


def python_set_order() -> list[str]:
    return [f"set {list(set(WORDS))}", f"frozenset {list(frozenset(w.upper() for w in WORDS))}",
            f"dict from set {list(dict.fromkeys(set(WORDS[:6])))}"]


def python_tempfile() -> list[str]:
    # Names only: the files live on the cage's fresh /tmp and are removed again.
    names = [f"gettempdir {tempfile.gettempdir()}"]
    for _ in range(3):
        handle, path = tempfile.mkstemp(prefix="probe-")
        os.close(handle)
        os.unlink(path)
        names.append(f"mkstemp {path}")
    folder = tempfile.mkdtemp(prefix="probe-")
    os.rmdir(folder)
    names.append(f"mkdtemp {folder}")
    with tempfile.NamedTemporaryFile(suffix=".txt") as named:
        names.append(f"NamedTemporaryFile {named.name}")
    names.append(f"mktemp {tempfile.mktemp()}")  # noqa: S306 - only its name is recorded
    return names


def python_object_ids() -> list[str]:
    objects = [object(), [1, 2, 3], {"k": "v"}, "x" * 100, bytearray(64)]
    lines = [f"id({type(o).__name__}) {id(o):#x}" for o in objects]
    lines.append(f"id(None) {id(None):#x}")  # in the interpreter's data: the load address
    lines.append(f"id(os.getcwd) {id(os.getcwd):#x}")
    return lines


PROBES = {
    "python-random": python_random,
    "python-time": python_time,
    "python-uuid4": python_uuid4,
    "python-urandom": python_urandom,
    "python-hash": python_hash,
    "python-set-order": python_set_order,
    "python-tempfile": python_tempfile,
    "python-object-ids": python_object_ids,
}


def main() -> int:
    for source, probe in PROBES.items():
        write(source, probe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
