"""The job engine: run a Job resource to completion in its cage and build its Witness.

Flow: `find_job` picks the Job → `prepare_job` (pure apart from hashing inputs and
making the output folder) resolves its cage, confines and hashes its inputs, and builds
the ContainerConfig → `run_prepared` writes the cage files, asks a `JobRuntime` (the
Podman side lives in docklock/runtime/jobs.py) to run it, hashes stdout, stderr and the
captured outputs, and returns the Witness. `verify_job` compares a fresh run with a
recorded witness. Nothing here prints, and nothing here imports podman.

Inputs are workspace paths bound read-only at their `mount`. The outputs folder is a
fresh host folder under `.docklock/jobs/` bound read-write at `spec.outputs` (the root
filesystem may be read-only, and tmpfs contents vanish when the container stops).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from docklock._fs import atomic_write_bytes
from docklock.cage.files import write_cage_files
from docklock.cage.levels import resolve_cage
from docklock.cage.replay import replay_environment, resource_job_cage
from docklock.cage.witness import (
    FieldDifference,
    Witness,
    bytes_digest,
    compare_witnesses,
    env_record,
    path_digest,
    tree_entries,
)
from docklock.errors import DeterminismMismatch, DockLockError, PodmanError
from docklock.model import Address, CageProfileSpec, JobSpec, Kind, Resource
from docklock.objects import (
    HOST_ENV,
    LABEL_ADDRESS,
    LABEL_CLUSTER,
    LABEL_PREFIX,
    LABEL_WORKSPACE,
    ContainerConfig,
    Mount,
    canonical_json,
    podman_name,
)
from docklock.objects import sha256_hex as _sha256_hex
from docklock.workspace import WorkspacePaths

LABEL_JOB_RUN = LABEL_PREFIX + "job-run"


class JobError(DockLockError):
    """A job could not be found, prepared or run to completion."""


class WitnessMismatch(DeterminismMismatch):
    """A re-run differs from the recorded witness (exit 2); carries the differences."""

    def __init__(self, job: str, differences: list[FieldDifference]) -> None:
        names = ", ".join(d.field for d in differences)
        super().__init__(
            f"{job} did not reproduce its witness; differing fields: {names}",
            hint="look for clocks, network or unseeded randomness in the job",
        )
        self.differences = differences


class ContainerRuntime(Protocol):
    """What a job run needs from Podman: docklock.runtime.podman.PodmanRuntime."""

    def image_id(self, ref: str) -> str: ...

    def create_container(self, config: ContainerConfig) -> str: ...

    def start_container(self, name: str) -> None: ...

    def wait_container(self, name: str, timeout: float) -> int: ...

    def logs(self, name: str) -> tuple[bytes, bytes]: ...

    def remove_container(self, name: str, force: bool = True) -> bool: ...

    def containers_labelled(self, labels: Mapping[str, str | None]) -> list[str]: ...

    def host_facts(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class JobOutcome:
    """What one finished job container reported."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    image_digest: str


def run_container(runtime: ContainerRuntime, config: ContainerConfig, *,
                  timeout: float) -> JobOutcome:
    """Create, start, wait (at most `timeout` s), read stdout/stderr, always remove."""
    from docklock.runtime.podman import PodmanTimeoutError

    image_id = runtime.image_id(config.image)
    digest = image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"
    runtime.create_container(config)
    try:
        runtime.start_container(config.name)
        try:
            exit_code = runtime.wait_container(config.name, timeout)
        except PodmanTimeoutError as exc:
            raise JobError(f"{config.labels.get(LABEL_ADDRESS, config.name)} did not "
                           f"finish within {timeout:g}s",
                           hint="raise spec.timeout or make the job faster") from exc
        stdout, stderr = runtime.logs(config.name)
    finally:
        _remove(runtime, config.name)
    return JobOutcome(exit_code, stdout, stderr, digest)


def _remove(runtime: ContainerRuntime, name: str, attempts: int = 3) -> None:
    # Podman 4.3 now and then reports "device or resource busy" unmounting a container's
    # /dev/shm right after it exited; a moment later the removal goes through.
    for attempt in range(attempts):
        try:
            runtime.remove_container(name, force=True)
            return
        except PodmanError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


@dataclass(frozen=True)
class PreparedJob:
    address: Address
    spec: JobSpec
    config: ContainerConfig
    inputs: Mapping[str, str]  # container mount path -> digest
    output_dir: Path | None  # host folder bound at spec.outputs
    run_id: str
    cages_dir: Path
    seed: int = 0
    meta: Mapping[str, Any] = field(default_factory=dict)
    # HMAC key for sensitive env values in the witness (docklock.ledger.witness_key).
    witness_key: bytes | None = field(default=None, repr=False)


def find_job(resources: Iterable[Resource], wanted: str) -> Resource:
    """A Job by name (`report`), `Job/report` or address (`Job/default/report`)."""
    try:
        address = Address.parse(wanted, default_kind=Kind.JOB.value)
    except ValueError as exc:
        raise JobError(str(exc), hint="name a job like `report` or `Job/default/report`") \
            from exc
    if address.kind != Kind.JOB.value:
        raise JobError(f"{wanted} is not a Job", hint="`docklock run` runs Job resources")
    jobs = [r for r in resources if r.kind == Kind.JOB.value]
    for job in jobs:
        if job.address == address:
            return job
    known = ", ".join(str(j.address) for j in jobs) or "none"
    raise JobError(f"no Job {address} in the workspace", hint=f"jobs: {known}")


def cage_profiles(resources: Iterable[Resource]) -> dict[str, CageProfileSpec]:
    return {r.name: r.spec for r in resources
            if r.kind == Kind.CAGE_PROFILE.value and isinstance(r.spec, CageProfileSpec)}


def job_folder(paths: WorkspacePaths, address: Address) -> Path:
    return paths.dot / "jobs" / f"{address.kind}.{address.namespace}.{address.name}"


def input_mounts(job: Resource, paths: WorkspacePaths) -> tuple[Mount, ...]:
    """A Job's inputs as read-only binds of workspace paths (confined; JobError if one is
    missing). Shared by `prepare_job` and render (a Job's run-once container in apply)."""
    spec = job.spec
    if not isinstance(spec, JobSpec):
        raise JobError(f"{job.address} is not a Job")
    mounts: list[Mount] = []
    for item in spec.inputs:
        host = paths.confine(item.path, what=f"{job.address} input")
        if not host.exists():
            raise JobError(f"{job.address}: input {item.path!r} does not exist",
                           location=job.location, hint="inputs are workspace paths")
        mounts.append(Mount("bind", str(host), item.mount, read_only=True))
    return tuple(mounts)


def make_output_folder(output_dir: Path, user: str | None) -> Path:
    """Create a job's (new, empty) outputs folder under its private job folder.

    The job folder (the parent) is 0700: nobody else on the host may reach the outputs.
    The folder itself must not exist yet (FileExistsError otherwise).
    """
    _private_folder(output_dir.parent)  # nobody else on the host may reach the runs
    output_dir.mkdir(mode=0o755)
    if user not in (None, "", "root", "0", "0:0"):
        # A non-root job user must be able to write its outputs; the 0700 parent
        # keeps the folder private on the host.
        os.chmod(output_dir, 0o777)  # noqa: S103
    return output_dir


def prepare_job(job: Resource, *, paths: WorkspacePaths, floor: str,
                profiles: Mapping[str, CageProfileSpec], cluster: str,
                run_id: str | None = None) -> PreparedJob:
    """Resolve the cage, hash the inputs, make the output folder, build the config."""
    spec = job.spec
    if not isinstance(spec, JobSpec):
        raise JobError(f"{job.address} is not a Job")
    run_id = run_id or uuid.uuid4().hex[:12]
    cage = resource_job_cage(resolve_cage(spec.cage, floor=floor, profiles=profiles,
                                          seed=spec.seed, cages_dir=paths.cages),
                             job, paths.cages)
    mounts: list[Mount] = list(input_mounts(job, paths))
    inputs = {m.target: path_digest(Path(m.source)) for m in mounts}
    output_dir: Path | None = None
    if spec.outputs:
        output_dir = make_output_folder(job_folder(paths, job.address) / f"run-{run_id}",
                                        spec.user)
        mounts.append(Mount("bind", str(output_dir), spec.outputs))
    # Networks and volumes are named like render names them for services.
    mounts.extend(Mount("volume", podman_name(cluster, job.namespace, v.name), v.path,
                        v.readOnly) for v in spec.volumes)
    networks = tuple(podman_name(cluster, job.namespace, n) for n in spec.networks)
    # The workspace label tells this workspace's job runs from another's with the same
    # cluster and job names on the same Podman (sweep_job_containers relies on it).
    labels = {LABEL_ADDRESS: str(job.address), LABEL_JOB_RUN: run_id,
              LABEL_CLUSTER: cluster, LABEL_WORKSPACE: str(paths.root)}
    config = ContainerConfig(
        name=f"docklock-job-{job.namespace}-{job.name}-{run_id}",
        image=spec.image, command=spec.command, entrypoint=spec.entrypoint, env=spec.env,
        networks=networks, mounts=tuple(mounts), user=spec.user, workdir=spec.workdir,
        cpus=spec.resources.cpus, memory=spec.resources.memory,
        pids_limit=spec.resources.pids, cage=cage, labels=labels,
    )
    return PreparedJob(address=job.address, spec=spec, config=config, inputs=inputs,
                       output_dir=output_dir, run_id=run_id, cages_dir=paths.cages,
                       seed=spec.seed, witness_key=_witness_key(paths, spec))


def _witness_key(paths: WorkspacePaths, spec: JobSpec) -> bytes | None:
    """The workspace's witness HMAC key, made only when a sensitive value needs it."""
    if not any(e.sensitive for e in spec.env):
        return None
    from docklock.ledger import witness_key

    return witness_key(paths)


@dataclass(frozen=True)
class JobRun:
    """A finished run: its witness plus the raw output (which the witness only digests)."""

    witness: Witness
    stdout: bytes
    stderr: bytes


def sweep_job_containers(runtime: ContainerRuntime, job: PreparedJob) -> list[str]:
    """Remove the containers earlier runs of this job in this workspace left (a run or
    verify killed with -9 never removes its own). Call only under the job's lock
    (docklock.cage.joblock): then no live run of the job owns one."""
    labels = job.config.labels
    left = [name for name in runtime.containers_labelled({
        LABEL_ADDRESS: labels[LABEL_ADDRESS], LABEL_CLUSTER: labels[LABEL_CLUSTER],
        LABEL_WORKSPACE: labels[LABEL_WORKSPACE], LABEL_JOB_RUN: None})
        if name != job.config.name]
    for name in left:
        _remove(runtime, name)
    return left


def run_prepared(runtime: ContainerRuntime, job: PreparedJob) -> JobRun:
    """Run a prepared job and build its witness (raises JobError on timeout)."""
    write_cage_files(job.config.cage, job.cages_dir)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    outcome = run_container(runtime, job.config, timeout=job.spec.timeout)
    duration = time.monotonic() - t0
    outputs: dict[str, str] = {}
    outputs_digest: str | None = None
    if job.output_dir is not None:
        outputs = tree_entries(job.output_dir)
        outputs_digest = "sha256:" + _sha256_hex(canonical_json(outputs))
    cage = job.config.cage
    effective_env = {e.name: e for e in job.config.env}
    effective_env.update({e.name: e for e in cage.env if e.name not in HOST_ENV})
    # Self-contained: the digests are fields too, but a reader of the environment
    # block alone sees everything that ties the run to this host and this cage.
    environment = {**runtime.host_facts(), **replay_environment(cage),
                   "image_digest": outcome.image_digest, "cage_digest": cage.digest}
    witness = Witness(
        job=str(job.address), image=job.config.image, image_digest=outcome.image_digest,
        command=(*job.config.entrypoint, *job.config.command),
        env=env_record(tuple(effective_env.values()), key=job.witness_key), inputs=dict(job.inputs),
        seed=job.seed, cage=cage.name, cage_digest=cage.digest,
        seccomp_digest=cage.seccomp_digest, exit_code=outcome.exit_code,
        stdout_digest=bytes_digest(outcome.stdout),
        stderr_digest=bytes_digest(outcome.stderr),
        outputs=outputs, outputs_digest=outputs_digest,
        meta={"run_id": job.run_id, "started": started.isoformat(timespec="seconds"),
              "duration_s": round(duration, 3), "level": cage.level,
              "outputs_folder": str(job.output_dir) if job.output_dir else None},
        environment=environment,
    )
    return JobRun(witness, outcome.stdout, outcome.stderr)


def keep_outputs(job: PreparedJob, destination: Path) -> Path | None:
    """Move this run's outputs to `destination` (replacing what was there)."""
    if job.output_dir is None:
        return None
    if destination.exists():
        shutil.rmtree(destination)
    job.output_dir.rename(destination)
    return destination


def sweep_stale_runs(folder: Path) -> list[str]:
    """Remove the `run-*` outputs folders a killed run or verify left in a job folder.

    Call only while holding the job's lock (docklock.cage.joblock): then no live run of
    the job owns one. Returns the names removed.
    """
    removed = []
    for path in sorted(folder.glob("run-*")) if folder.is_dir() else ():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def discard_outputs(job: PreparedJob) -> None:
    if job.output_dir is not None and job.output_dir.exists():
        shutil.rmtree(job.output_dir)


# What a job folder keeps beside `outputs/`: the recorded run's streams, and the
# evidence of the last verify that differed (removed again by an identical verify).
STDOUT_FILE, STDERR_FILE = "stdout", "stderr"
VERIFY_PREFIX = "verify-"


def _private_folder(folder: Path) -> Path:
    """A job folder, made if missing, 0700: the runs' outputs and streams are private."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    return folder


def keep_streams(folder: Path, run: JobRun, *, prefix: str = "") -> tuple[Path, Path]:
    """Write the run's stdout and stderr as 0600 files `<prefix>stdout`/`<prefix>stderr`
    in the job folder `folder` (made 0700 if missing); returns their paths."""
    _private_folder(folder)
    out, err = folder / f"{prefix}{STDOUT_FILE}", folder / f"{prefix}{STDERR_FILE}"
    atomic_write_bytes(out, run.stdout, mode=0o600)
    atomic_write_bytes(err, run.stderr, mode=0o600)
    return out, err


def kept_stream(folder: Path, name: str, digest: str) -> bytes | None:
    """A kept stream's bytes if the file is there and still matches `digest` (the
    witness's), else None: a stale or missing file is no evidence."""
    try:
        data = (folder / name).read_bytes()
    except OSError:
        return None
    return data if bytes_digest(data) == digest else None


def keep_verify_evidence(job: PreparedJob, run: JobRun, folder: Path) -> Path:
    """A differing verify's evidence in the job folder: its outputs at `verify-outputs/`
    (replacing older ones) and its streams as `verify-stdout`/`verify-stderr`."""
    _private_folder(folder)
    outputs = folder / f"{VERIFY_PREFIX}outputs"
    if job.output_dir is not None:
        keep_outputs(job, outputs)
    elif outputs.exists():
        shutil.rmtree(outputs)  # an older verify's, from when the job had outputs
    keep_streams(folder, run, prefix=VERIFY_PREFIX)
    return folder


def discard_verify_evidence(folder: Path) -> None:
    """Remove an older verify's evidence (an identical verify makes it moot)."""
    if not folder.is_dir():
        return
    for path in folder.glob(f"{VERIFY_PREFIX}*"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def verify_witness(expected: Witness, actual: Witness) -> None:
    """Raise DeterminismMismatch (exit 2) naming every differing field."""
    diffs = compare_witnesses(expected, actual)
    if diffs:
        raise WitnessMismatch(expected.job, diffs)


def record_in_ledger(paths: WorkspacePaths, payload: Mapping[str, Any]) -> int:
    """Append a `witness` ledger entry and sign a checkpoint; returns the entry's seq."""
    from docklock.ledger import EntryType, record_event

    entry, _ = record_event(paths, EntryType.WITNESS, payload)
    return entry.seq


def witness_entry(witness: Witness, event: str, *,
                  differences: Iterable[FieldDifference] = (),
                  environment_differences: Iterable[FieldDifference] = ()) -> dict[str, Any]:
    """The ledger payload for a run (`event` "run") or a verify ("verify"); a verify
    also names the recorded environment facts this host does not share."""
    payload: dict[str, Any] = {"event": event, "job": witness.job,
                               "witness_digest": witness.digest, "witness": witness.to_dict()}
    if event == "verify":
        diffs = [d.to_dict() for d in differences]
        payload["identical"] = not diffs
        payload["differences"] = diffs
        payload["environment_differences"] = [d.to_dict() for d in environment_differences]
    return payload
