"""The second-generation deterministic Job cage (docklock.cage.replay), without Podman.

Host support is passed in as a HostSupport, so every case (libfaketime or not, launcher
or not) is tested on any machine; only the render test detects this host, and what it
checks (replay on the Job, not on the Service) does not depend on what is found.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from docklock.cage import resolve_cage
from docklock.cage.host import HostSupport, file_sha256
from docklock.cage.podman_args import PRELOAD_TARGET, podman_create_kwargs
from docklock.cage.replay import (
    MASKED,
    MAX_EPOCH,
    REPLAY_ENV,
    SYNTHETIC,
    clock_epoch,
    describe_host,
    faketime_value,
    files_digest,
    job_cage,
    replay_environment,
    resource_job_cage,
    synthetic_files,
)
from docklock.cage.seccomp import (
    ADDR_NO_RANDOMIZE,
    ENOSYS,
    allowed_syscalls,
    denied_with_errno,
    seccomp_profile,
)
from docklock.errors import CageError
from docklock.load.schema import load_schemas
from docklock.model import JobClock, JobSpec, Resource
from docklock.objects import CageSettings, ContainerConfig, EnvVar, ReplaySettings
from docklock.render import container_config, render

FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
LAUNCHER = "/opt/docklock/cage/data/docklock-launch-x86_64"
FULL = HostSupport(arch="x86_64", libfaketime=FAKETIME, libfaketime_digest="sha256:" + "a" * 64,
                   launcher=LAUNCHER, launcher_digest="sha256:" + "b" * 64,
                   kernel_time_namespaces=True)
NO_FAKETIME = replace(FULL, libfaketime=None, libfaketime_digest=None)
NO_LAUNCHER = replace(FULL, launcher=None, launcher_digest=None)
BARE = replace(NO_FAKETIME, launcher=None, launcher_digest=None, arch="riscv64",
               kernel_time_namespaces=False)


def resource(kind: str, name: str, spec: dict[str, Any]) -> Resource:
    return Resource.from_dict({"apiVersion": "docklock.io/v1", "kind": kind,
                               "metadata": {"name": name}, "spec": spec})


def job_spec(**spec: Any) -> JobSpec:
    body: dict[str, Any] = {"image": "localhost/demo/app:1", "command": ["true"],
                            "cage": "deterministic", "seed": 1}
    body.update(spec)
    parsed = resource("Job", "j", body).spec
    assert isinstance(parsed, JobSpec)
    return parsed


def level(name: str, cages_dir: Path | None) -> CageSettings:
    return resolve_cage(name, floor="standard", profiles={}, seed=1, cages_dir=cages_dir)


def caged(cages_dir: Path | None, *, host: HostSupport = FULL, **spec: Any) -> CageSettings:
    return job_cage(level("deterministic", cages_dir), job_spec(**spec), cages_dir, host=host)


def replay_of(cage: CageSettings) -> ReplaySettings:
    assert cage.replay is not None
    return cage.replay


def kwargs_of(cage: CageSettings) -> dict[str, Any]:
    return podman_create_kwargs(ContainerConfig(name="c", image="i", command=("true",),
                                                cage=cage))


# ------------------------------------------------------------ which containers


@pytest.mark.parametrize("name", ["standard", "hardened"])
def test_other_levels_are_returned_unchanged(name: str, tmp_path: Path) -> None:
    cage = level(name, tmp_path)
    assert job_cage(cage, job_spec(cage=name), tmp_path, host=FULL) is cage
    assert cage.replay is None


def test_render_gives_replay_to_the_job_only(tmp_path: Path) -> None:
    resources = [
        resource("Service", "api", {"image": "localhost/demo/app:1",
                                    "cage": "deterministic", "seed": 1}),
        resource("Job", "batch", {"image": "localhost/demo/app:1", "command": ["true"],
                                  "cage": "deterministic", "seed": 1}),
    ]
    configs = {obj.address.kind: container_config(obj)
               for obj in render(resources, cluster="t", cages_dir=tmp_path).objects
               if obj.kind.value == "container"}
    assert set(configs) == {"Service", "Job"}
    service, job = configs["Service"], configs["Job"]
    assert service.cage.level == job.cage.level == "deterministic"
    assert service.cage.replay is None
    assert "FAKETIME" not in {e.name for e in service.env}
    assert "SOURCE_DATE_EPOCH" in {e.name for e in service.env}  # first-generation pin
    assert "masked_paths" not in podman_create_kwargs(service)
    assert job.cage.replay is not None
    assert job.cage.replay.masked == MASKED
    assert "masked_paths" in podman_create_kwargs(job)


# ------------------------------------------------------------ clock


def test_epoch_from_the_clock_then_source_date_epoch_then_1980() -> None:
    sde = {"SOURCE_DATE_EPOCH": "1700000000"}
    assert clock_epoch(job_spec(clock={"epoch": 1234567890}, env=sde)) == 1234567890
    assert clock_epoch(job_spec(env=sde)) == 1700000000
    assert clock_epoch(job_spec()) == 315532800
    assert clock_epoch(job_spec(env={"SOURCE_DATE_EPOCH": " 0 "})) == 0
    assert clock_epoch(job_spec(env={"SOURCE_DATE_EPOCH": str(MAX_EPOCH)})) == MAX_EPOCH
    assert replay_of(caged(None, env=sde)).epoch == 1700000000


@pytest.mark.parametrize("value", [
    "soon", "", "-5", "1.5", "1e9", "²", "١٢٣",  # Unicode digits: isdigit() but not int()
    str(MAX_EPOCH + 1), "99999999999999",  # datetime cannot write the year
])
def test_a_source_date_epoch_that_is_not_a_whole_number_in_range_is_an_error(
        value: str) -> None:
    with pytest.raises(CageError) as caught:
        clock_epoch(job_spec(env={"SOURCE_DATE_EPOCH": value}))
    assert caught.value.message == (
        f"SOURCE_DATE_EPOCH {value!r} is not a whole number of seconds in "
        f"0..{MAX_EPOCH}")
    assert "spec.clock.epoch" in caught.value.hint
    # spec.clock.epoch wins: the env value is then only the job's own business
    assert clock_epoch(job_spec(env={"SOURCE_DATE_EPOCH": value},
                                clock={"epoch": 5})) == 5


def test_a_sensitive_source_date_epoch_cannot_be_the_clock() -> None:
    """The clock's start shows in plans, /proc/stat and the witness: refused, unquoted."""
    secret = {"SOURCE_DATE_EPOCH": {"value": "1700000123", "sensitive": True}}
    with pytest.raises(CageError) as caught:
        clock_epoch(job_spec(env=secret))
    assert "1700000123" not in caught.value.explain()
    assert "sensitive SOURCE_DATE_EPOCH" in caught.value.message
    assert "spec.clock.epoch" in (caught.value.hint or "")
    # with spec.clock.epoch the secret is not used, and nothing derived is sensitive
    assert clock_epoch(job_spec(env=secret, clock={"epoch": 7})) == 7
    env = {e.name: e for e in caged(None, env=secret, clock={"epoch": 7}).env}
    assert env["SOURCE_DATE_EPOCH"].value == "7"
    assert not env["SOURCE_DATE_EPOCH"].sensitive
    assert not env["FAKETIME"].sensitive


def test_resource_job_cage_names_the_job_and_its_location() -> None:
    job = resource("Job", "j", {"image": "localhost/demo/app:1", "cage": "deterministic",
                                "env": {"SOURCE_DATE_EPOCH": "²"}})
    with pytest.raises(CageError) as caught:
        resource_job_cage(level("deterministic", None), job, None)
    assert caught.value.message.startswith("Job/default/j: SOURCE_DATE_EPOCH '²' is not")
    assert caught.value.location == job.location
    assert caught.value.hint


# ------------------------------------------------------------ monotonic clock


def test_job_clock_round_trip_and_schema_defaults() -> None:
    clock_schema = (load_schemas().schema("Job")["properties"]["spec"]["properties"]
                    ["clock"]["properties"])
    assert clock_schema["monotonic"]["enum"] == ["real", "pinned"]
    default = JobClock.from_dict({})
    assert default.monotonic == clock_schema["monotonic"]["default"] == "real"
    assert default.faketime == clock_schema["faketime"]["default"]
    assert default.step == clock_schema["step"]["default"]
    assert default.to_dict() == {}
    pinned = JobClock.from_dict({"monotonic": "pinned", "step": "0s"})
    assert pinned.to_dict() == {"monotonic": "pinned", "step": "0s"}
    assert JobClock.from_dict(pinned.to_dict()) == pinned


def test_the_monotonic_clock_is_real_unless_pinned() -> None:
    real = caged(None)
    assert replay_of(real).monotonic == "real"
    env = {e.name: e.value for e in real.env}
    assert env["FAKETIME_DONT_FAKE_MONOTONIC"] == "1"
    assert env["FAKETIME"] == "@1980-01-01 00:00:00 i0.001"  # the wall clock stays pinned
    pinned = caged(None, clock={"monotonic": "pinned"})
    assert replay_of(pinned).monotonic == "pinned"
    assert "FAKETIME_DONT_FAKE_MONOTONIC" not in {e.name for e in pinned.env}
    assert "FAKETIME" in {e.name for e in pinned.env}
    # without the preload there is nothing to tell libfaketime
    bare = caged(None, host=NO_FAKETIME)
    assert "FAKETIME_DONT_FAKE_MONOTONIC" not in {e.name for e in bare.env}


def test_replay_settings_recorded_before_the_choice_were_pinned() -> None:
    body = replay_of(caged(None)).to_dict()
    assert body["monotonic"] == "real"
    del body["monotonic"]
    assert ReplaySettings.from_dict(body).monotonic == "pinned"


# ------------------------------------------------------------ sensitive values


def _env_of(cage: CageSettings) -> dict[str, EnvVar]:
    return {e.name: e for e in cage.env}


def test_ld_preload_is_sensitive_when_the_jobs_own_was() -> None:
    env = _env_of(caged(None, env={"LD_PRELOAD": {"value": "/lib/secret.so",
                                                  "sensitive": True}}))
    assert env["LD_PRELOAD"].value == f"{PRELOAD_TARGET} /lib/secret.so"
    assert env["LD_PRELOAD"].sensitive
    assert not env["FAKETIME"].sensitive
    assert not env["SOURCE_DATE_EPOCH"].sensitive
    assert not _env_of(caged(None, env={"LD_PRELOAD": "/lib/own.so"}))[
        "LD_PRELOAD"].sensitive


@pytest.mark.parametrize(("step", "expected"), [
    ("0s", "1980-01-01 00:00:00"),  # no "@": libfaketime keeps the clock still
    ("1ms", "@1980-01-01 00:00:00 i0.001"),
    ("2.5s", "@1980-01-01 00:00:00 i2.5"),
])
def test_faketime_value(step: str, expected: str) -> None:
    assert faketime_value(315532800, step) == expected
    env = {e.name: e.value for e in caged(None, clock={"step": step}).env}
    assert env["FAKETIME"] == expected


def test_faketime_value_starts_at_the_epoch() -> None:
    assert faketime_value(1700000000, "1ms") == "@2023-11-14 22:13:20 i0.001"


# ------------------------------------------------------------ synthetic files


def test_synthetic_files_depend_only_on_cpus_memory_and_epoch() -> None:
    files = synthetic_files(4, 256 * 1024 * 1024, 315532800)
    assert files == synthetic_files(4, 256 * 1024 * 1024, 315532800)
    assert set(files) == set(SYNTHETIC.values())
    meminfo = files["meminfo"].decode().splitlines()
    assert meminfo[0].split() == ["MemTotal:", str(256 * 1024), "kB"]
    assert files["cpuinfo"].decode().count("processor\t:") == 4
    assert files["cpu-online"] == files["cpu-possible"] == files["cpu-present"] == b"0-3\n"
    assert synthetic_files(1, 2**20, 0)["cpu-online"] == b"0\n"
    assert b"btime 315532800\n" in files["stat"]
    # each input changes something, and the digest follows
    for other in (synthetic_files(2, 256 * 1024 * 1024, 315532800),
                  synthetic_files(4, 128 * 1024 * 1024, 315532800),
                  synthetic_files(4, 256 * 1024 * 1024, 315532801)):
        assert files_digest(other) != files_digest(files)


def test_the_job_cage_derives_its_files_from_the_declared_resources() -> None:
    a = replay_of(caged(None, resources={"cpus": 2.5, "memory": "64Mi"}))
    b = replay_of(caged(None, resources={"cpus": 2.5, "memory": "64Mi"},
                        image="other:1", command=["sh", "-c", "echo other"]))
    assert (a.cpus, a.memory_bytes) == (3, 64 * 1024 * 1024)  # cpus rounded up
    assert a.proc_digest == b.proc_digest == files_digest(
        synthetic_files(3, 64 * 1024 * 1024, 315532800))
    env = {e.name: e.value for e in caged(None, resources={"cpus": 2.5}).env}
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "3"
    assert {name for name, _, _ in REPLAY_ENV} <= set(env)


# ------------------------------------------------------------ seccomp


def _personality_rules(profile: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in profile["syscalls"]
            if "personality" in r["names"] and r["action"] == "SCMP_ACT_ALLOW"]


def test_the_profile_allows_personality_only_with_addr_no_randomize() -> None:
    assert ADDR_NO_RANDOMIZE == 0x40000
    profile = seccomp_profile(caged(None))
    assert "personality" not in allowed_syscalls(profile)  # never unconditionally
    ours = [r for r in _personality_rules(profile)
            if any(a["value"] == 0x40000 for a in r.get("args", []))]
    assert len(ours) == 1
    assert ours[0]["args"] == [{"index": 0, "value": 0x40000, "valueTwo": 0,
                                "op": "SCMP_CMP_EQ"}]
    # the first-generation level's profile has no such rule
    assert not any(a["value"] == 0x40000 for r in _personality_rules(
        seccomp_profile(level("deterministic", None))) for a in r.get("args", []))
    assert denied_with_errno(profile)["getrandom"] == ENOSYS


def test_without_a_launcher_there_is_no_personality_rule() -> None:
    profile = seccomp_profile(caged(None, host=NO_LAUNCHER))
    assert not any(a["value"] == 0x40000 for r in _personality_rules(profile)
                   for a in r.get("args", []))
    assert denied_with_errno(profile)["getrandom"] == ENOSYS


# ------------------------------------------------------------ digests


def test_the_digest_leaves_host_paths_out(tmp_path: Path) -> None:
    one = caged(tmp_path / "one")
    two = caged(tmp_path / "two")
    elsewhere = caged(tmp_path / "two", host=replace(
        FULL, libfaketime="/usr/local/lib/faketime/libfaketime.so.1",
        launcher="/elsewhere/docklock-launch-x86_64"))
    assert replay_of(one).launcher != replay_of(two).launcher
    assert replay_of(one).proc_dir != replay_of(two).proc_dir
    assert replay_of(two).preload != replay_of(elsewhere).preload
    assert one.seccomp_profile_path != two.seccomp_profile_path
    assert one.digest == two.digest == elsewhere.digest


@pytest.mark.parametrize(("spec", "host"), [
    ({"clock": {"epoch": 1}}, FULL),
    ({"clock": {"step": "2ms"}}, FULL),
    ({"clock": {"monotonic": "pinned"}}, FULL),
    ({}, replace(FULL, launcher_digest="sha256:" + "c" * 64)),
    ({}, NO_FAKETIME),  # preload on or off is part of the cage
    ({"resources": {"cpus": 2}}, FULL),
])
def test_the_digest_changes_with_what_decides_the_run(spec: dict[str, Any],
                                                      host: HostSupport) -> None:
    assert caged(None, host=host, **spec).digest != caged(None).digest


@pytest.mark.parametrize(("one", "other"), [("1s", "1000ms"), ("1ms", "0.001s"),
                                            ("0s", "0ms"), ("1m30s", "90s")])
def test_a_step_written_differently_is_the_same_cage(one: str, other: str) -> None:
    a = caged(None, clock={"step": one})
    b = caged(None, clock={"step": other})
    assert replay_of(a).clock_step != replay_of(b).clock_step  # as written, recorded
    assert a.digest == b.digest
    assert replay_of(a).digest_body()["clock_step"] == replay_of(b).digest_body()[
        "clock_step"]


# ------------------------------------------------------------ Podman arguments


def test_podman_arguments_of_the_job_cage(tmp_path: Path) -> None:
    cage = caged(tmp_path)
    replay = replay_of(cage)
    kwargs = kwargs_of(cage)
    assert kwargs["init"] is True
    assert kwargs["init_path"] == replay.launcher
    assert replay.launcher is not None
    assert Path(replay.launcher).parent == tmp_path  # the content-addressed copy
    assert kwargs["masked_paths"] == list(MASKED)
    binds = {m["target"]: m for m in kwargs["mounts"] if m["type"] == "bind"}
    assert replay.proc_dir is not None
    for target, name in SYNTHETIC.items():
        assert binds[target] == {"type": "bind", "source": f"{replay.proc_dir}/{name}",
                                 "target": target, "read_only": True}
    assert binds[PRELOAD_TARGET] == {"type": "bind", "source": FAKETIME,
                                     "target": PRELOAD_TARGET, "read_only": True}
    env = kwargs["environment"]
    assert env["LD_PRELOAD"] == PRELOAD_TARGET
    assert env["FAKETIME"] == "@1980-01-01 00:00:00 i0.001"
    assert env["DOCKLOCK_FAKETIME"] == "auto"
    assert env["SOURCE_DATE_EPOCH"] == "315532800"


def test_the_jobs_own_ld_preload_is_kept_after_libfaketime() -> None:
    env = {e.name: e.value for e in caged(
        None, env={"LD_PRELOAD": "/lib/own.so"}).env}
    assert env["LD_PRELOAD"] == f"{PRELOAD_TARGET} /lib/own.so"


@pytest.mark.parametrize("mode", ["auto", "always"])
def test_a_host_without_libfaketime_preloads_nothing(mode: str, tmp_path: Path) -> None:
    cage = caged(tmp_path, host=NO_FAKETIME, clock={"faketime": mode})
    assert replay_of(cage).preload is None
    kwargs = kwargs_of(cage)
    for name in ("LD_PRELOAD", "FAKETIME", "DOCKLOCK_FAKETIME"):
        assert name not in kwargs["environment"]
    assert PRELOAD_TARGET not in {m["target"] for m in kwargs["mounts"]}
    assert kwargs["init_path"] == replay_of(cage).launcher  # ASLR is still off


def test_a_host_without_a_launcher(tmp_path: Path) -> None:
    cage = caged(tmp_path, host=NO_LAUNCHER)  # faketime auto
    replay = replay_of(cage)
    assert replay.launcher is None
    assert replay.launcher_digest is None
    assert replay.preload is None  # nothing would drop it in an image without glibc
    kwargs = kwargs_of(cage)
    assert "init_path" not in kwargs
    assert "init" not in kwargs
    assert "LD_PRELOAD" not in kwargs["environment"]
    assert kwargs["masked_paths"] == list(MASKED)  # the rest still applies
    # "always" is the job's own promise that its image has glibc
    always = replay_of(caged(tmp_path, host=NO_LAUNCHER, clock={"faketime": "always"}))
    assert always.preload == FAKETIME


def test_faketime_never_preloads_nothing() -> None:
    cage = caged(None, clock={"faketime": "never"})
    assert replay_of(cage).preload is None
    assert "LD_PRELOAD" not in {e.name for e in cage.env}
    assert replay_of(cage).launcher == LAUNCHER  # no cages folder: the packaged one


# ------------------------------------------------------------ serialisation


def test_settings_round_trip(tmp_path: Path) -> None:
    cage = caged(tmp_path, clock={"epoch": 99, "step": "0s"}, resources={"cpus": 2})
    replay = replay_of(cage)
    assert ReplaySettings.from_dict(replay.to_dict()) == replay
    again = CageSettings.from_dict(cage.to_dict())
    assert again == cage
    assert again.digest == cage.digest
    assert again.to_dict() == cage.to_dict()


def test_a_cage_without_replay_keeps_its_digest_from_before_replay() -> None:
    """Literals computed with c472efd's docklock/objects.py (before ReplaySettings)."""
    cage = CageSettings(
        name="deterministic", level="deterministic", read_only=True,
        tmpfs={"/tmp": "rw,size=64m"}, seccomp_profile_path="/somewhere/seccomp-x.json",
        seccomp_digest="ab" * 32, network_none=True, hostname="docklock-cage",
        pids_limit=256, memory="512Mi",
        env=(EnvVar("TZ", "UTC"), EnvVar("PYTHONHASHSEED", "0")), timezone="UTC",
        umask="0022", random_source="/x/random-1", denied_syscalls=("getrandom", "mount"))
    assert "replay" not in cage.to_dict()
    assert cage.digest == "f35343d220ad2c89bf375baac65cc9447f71cd26c2ea89077a871f0cd0b29fcb"
    assert CageSettings(name="hardened", level="hardened").digest == (
        "967f26ccd29b6184d8d89ea5bf5b77df38b4adc382290f7c5b537e924920c912")


# ------------------------------------------------------------ what a host offers


def _described(host: HostSupport) -> dict[str, str]:
    lines = describe_host(host)
    assert [k for k, _ in lines] == ["clock", "monotonic/boot-time clocks", "ASLR", "/proc",
                                     "/tmp", "env", "Jobs only"]
    return dict(lines)


def test_describe_a_host_with_everything() -> None:
    said = _described(FULL)
    assert said["clock"].startswith(f"libfaketime at {FAKETIME}")
    assert "dynamically linked programs only" in said["clock"]
    assert said["monotonic/boot-time clocks"].startswith("real by default")
    assert "clock.monotonic: pinned" in said["monotonic/boot-time clocks"]
    assert "Podman's API offers no clock offsets" in said["monotonic/boot-time clocks"]
    assert said["ASLR"].startswith("off: the launcher for x86_64")
    for path in (*SYNTHETIC, *MASKED):
        assert path in said["/proc"]
    assert said["/proc"].index("synthetic:") < said["/proc"].index("masked:")
    assert "inode numbers not promised" in said["/tmp"]
    assert said["env"].split() == [name for name, _, _ in REPLAY_ENV]
    assert said["Jobs only"] == "services in this level keep the first-generation pins"


def test_describe_a_host_without_libfaketime_or_launcher() -> None:
    said = _described(replace(BARE, arch="x86_64", kernel_time_namespaces=True))
    assert said["clock"] == ("not installed: apt-get install libfaketime — clocks are "
                             "not pinned")
    assert said["monotonic/boot-time clocks"] == (
        "not pinned — time namespace: the kernel has them but Podman's API offers no "
        "clock offsets")
    assert said["ASLR"] == "no launcher for x86_64: addresses are random"
    bare = _described(BARE)
    assert bare["ASLR"] == "no launcher for riscv64: addresses are random"
    assert "the kernel has no time namespaces" in bare["monotonic/boot-time clocks"]


def test_describe_libfaketime_without_a_launcher() -> None:
    said = _described(NO_LAUNCHER)
    assert "clock.faketime: always" in said["clock"]
    assert said["ASLR"] == "no launcher for x86_64: addresses are random"


# ------------------------------------------------------------ witness environment


def test_replay_environment(tmp_path: Path) -> None:
    assert replay_environment(level("deterministic", None), host=FULL) == {}
    assert replay_environment(caged(tmp_path, clock={"epoch": 7, "step": "0s"}),
                              host=FULL) == {
        "libfaketime_digest": FULL.libfaketime_digest,
        "libfaketime_preload": "on",
        "launcher_digest": FULL.launcher_digest,
        "faketime_mode": "auto",
        "clock_epoch": "7",
        "clock_step": "0ns",
        "clock_monotonic": "real",
        "libfaketime_glibc": FULL.libfaketime_glibc or "none",
    }
    # "1s" and "1000ms" are one clock: recorded alike, so verify sees no difference
    assert (replay_environment(caged(tmp_path, clock={"step": "1s"}), host=FULL)["clock_step"]
            == replay_environment(caged(tmp_path, clock={"step": "1000ms"}),
                                  host=FULL)["clock_step"] == "1000000000ns")
    bare = replay_environment(caged(tmp_path, host=BARE), host=BARE)
    assert bare["libfaketime_digest"] == "none"
    assert bare["libfaketime_preload"] == "off"
    assert bare["launcher_digest"] == "none"
    assert all(isinstance(v, str) for v in bare.values())
    assert not any(str(tmp_path) in v for v in bare.values())  # no host paths


def test_replay_environment_hashes_a_library_detection_did_not_see(tmp_path: Path) -> None:
    library = tmp_path / "libfaketime.so.1"
    library.write_bytes(b"not really a library")
    cage = caged(tmp_path, host=replace(FULL, libfaketime=str(library)))
    said = replay_environment(cage, host=FULL)  # FULL knows another path
    assert said["libfaketime_digest"] == file_sha256(library)
    library.unlink()
    assert replay_environment(cage, host=FULL)["libfaketime_digest"] == "missing"


def test_the_glibc_libfaketime_needs_is_a_host_fact(tmp_path: Path) -> None:
    """Two hosts whose libfaketime was built against different glibc versions give the
    job the same cage (digest) and the same compared env; the value is recorded in the
    witness's environment block instead."""
    from docklock.objects import HOST_ENV

    new = caged(tmp_path, host=replace(FULL, libfaketime_glibc="GLIBC_2.34"))
    old = caged(tmp_path, host=replace(FULL, libfaketime_glibc="GLIBC_2.7"))
    assert new.digest == old.digest
    env_new = {e.name: e.value for e in new.env}
    assert env_new["DOCKLOCK_FAKETIME_GLIBC"] == "GLIBC_2.34"  # the launcher still reads it
    assert "DOCKLOCK_FAKETIME_GLIBC" in HOST_ENV
    assert replay_environment(new, host=FULL)["libfaketime_glibc"] == "GLIBC_2.34"
    assert replay_environment(old, host=FULL)["libfaketime_glibc"] == "GLIBC_2.7"
