"""Helpers for the cage proofs: run a command in a cage through podman-py, build the
glibc test image. Tests may use podman-py directly; the package may not (only runtime/).
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import podman as podman_py
from conftest import PYTHON_IMAGE, PodmanHarness, build_tool_image

from docklock.cage import podman_create_kwargs, resolve_cage, write_cage_files
from docklock.objects import CageSettings, ContainerConfig

GLIBC_IMAGE = "localhost/docklock-test/glibc-mt:1"

# A multithreaded glibc program: glibc >= 2.34 creates threads with clone3 and only
# falls back to clone on ENOSYS. It also reports what clone3 and getrandom return.
MT_SOURCE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *work(void *arg) {
    long n = (long)arg, sum = 0;
    for (long i = 0; i < 200000; i++) sum += i % (n + 2);
    return (void *)sum;
}

int main(void) {
    pthread_t t[8];
    for (long i = 0; i < 8; i++) {
        int rc = pthread_create(&t[i], NULL, work, (void *)i);
        if (rc != 0) { printf("pthread_create failed: %s\n", strerror(rc)); return 3; }
    }
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    printf("threads=8 ok\n");
    errno = 0;
    long r = syscall(SYS_clone3, NULL, 0);
    printf("clone3 errno=%d\n", r == -1 ? errno : 0);
    unsigned char buf[8];
    errno = 0;
    r = getrandom(buf, sizeof buf, 0);
    printf("getrandom errno=%d\n", r == -1 ? errno : 0);
    return 0;
}
"""


@dataclass(frozen=True)
class Ran:
    exit_code: int
    stdout: str
    stderr: str


def job_workspace(root: Path, cluster: str, specs: str, image: str) -> Path:
    """A workspace at `root`: docklock.yaml (Cluster `cluster`, floor hardened) and
    specs/jobs.yaml holding `specs` with `{image}` replaced by `image`."""
    (root / "docklock.yaml").write_text(
        f"apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {{name: {cluster}}}\n"
        "spec:\n  specs: [specs]\n  securityLevel: hardened\n")
    (root / "specs").mkdir(exist_ok=True)
    (root / "specs" / "jobs.yaml").write_text(specs.replace("{image}", image))
    return root


def cage(level: str, cages_dir: Path, *, seed: int | None = None) -> CageSettings:
    return resolve_cage(level, floor="standard", profiles={}, seed=seed, cages_dir=cages_dir)


def run_in_cage(harness: PodmanHarness, settings: CageSettings, command: list[str], *,
                cages_dir: Path | None, image: str | None = None) -> Ran:
    """Create the container with podman_create_kwargs, run it to the end, remove it.

    `cages_dir` None: the caller wrote the cage's files itself."""
    if cages_dir is not None:
        write_cage_files(settings, cages_dir)
    config = ContainerConfig(name=f"cage-test-{uuid.uuid4().hex[:10]}",
                             image=image or harness.image, command=tuple(command),
                             cage=settings)
    with podman_py.PodmanClient(base_url=harness.url) as client:
        container = client.containers.create(**podman_create_kwargs(config))
        try:
            container.start()
            code = int(container.wait(condition="exited", timeout=120))
            out = b"".join(container.logs(stdout=True, stderr=False)).decode(errors="replace")
            err = b"".join(container.logs(stdout=False, stderr=True)).decode(errors="replace")
        finally:
            container.remove(force=True)
    return Ran(code, out, err)


def sh(harness: PodmanHarness, settings: CageSettings, script: str, *,
       cages_dir: Path) -> Ran:
    return run_in_cage(harness, settings, ["sh", "-c", script], cages_dir=cages_dir)


def status_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def build_glibc_image(harness: PodmanHarness) -> str:
    """Compile MT_SOURCE with the host gcc; import it with its glibc as a tiny image."""
    if harness.podman("image", "exists", GLIBC_IMAGE, check=False).returncode == 0:
        return GLIBC_IMAGE
    gcc = shutil.which("gcc")
    if gcc is None:
        raise RuntimeError("gcc is needed to build the glibc test binary (apt-get install gcc)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "mt.c").write_text(MT_SOURCE)
        subprocess.run([gcc, "-O2", "-pthread", "-o", str(work / "mt"), str(work / "mt.c")],
                       check=True, capture_output=True)
        libs = _shared_libraries(work / "mt")
        with tarfile.open(work / "rootfs.tar", "w") as tar:
            for folder in ("tmp", "proc", "sys", "dev", "etc"):
                info = tarfile.TarInfo(folder)
                info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
                tar.addfile(info)
            tar.add(work / "mt", arcname="bin/mt")
            for lib in libs:
                tar.add(lib.resolve(), arcname=str(lib).lstrip("/"))
        harness.podman("import", "-q", "--change", 'CMD ["/bin/mt"]',
                       str(work / "rootfs.tar"), GLIBC_IMAGE)
    return GLIBC_IMAGE


def build_python_image(harness: PodmanHarness) -> str:
    """The Debian 12 + Python 3.11 image (tools/debian-image) in the harness's store.

    Idempotent and cheap once built (the session's store keeps it; the root file system
    is cached on the machine): callers may call it in every test."""
    return build_tool_image(harness, "debian-image", PYTHON_IMAGE)


def _shared_libraries(binary: Path) -> list[Path]:
    out = subprocess.run(["ldd", str(binary)], check=True, capture_output=True, text=True)
    libs = []
    for line in out.stdout.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if path.startswith("/"):
            libs.append(Path(path))
    return libs
