"""The daily verbs' pure parts, without Podman: target names, replica picking, the exec
refusal, log framing and prefixes, pod/network rows, ages, tables, describe fields and
ledger matching (issue 12 item 4)."""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import pytest

from docklock.cli.cmd_logs import format_line
from docklock.engine.describe import entry_touches, live_fields, object_fields, summarize
from docklock.engine.verbs import (
    LogLine,
    LogsOptions,
    VerbError,
    build_target,
    refuse_exec,
    resolve_address,
)
from docklock.model import Address, Resource
from docklock.objects import (
    LABEL_ADDRESS,
    LABEL_CLUSTER,
    LABEL_LINEAGE,
    LABEL_REPLICA,
    DesiredObject,
    LiveObject,
    LiveState,
    ObjectKind,
)
from docklock.runtime.verbs import container_row, epoch, read_frames
from docklock.state import State
from docklock.state.model import RecordedObject, RecordedResource
from docklock.status import (
    NamedRow,
    format_age,
    named_rows,
    pod_rows,
    render_description,
    render_named_table,
    render_pods_table,
    render_table,
    to_yaml,
)

API = Address("Service", "default", "api")


def resource(kind: str, name: str, ns: str = "default") -> Resource:
    spec: dict[str, Any] = {}
    if kind in ("Service", "Job"):
        spec = {"image": "img", "command": ["true"]}
    return Resource.from_dict({"apiVersion": "docklock.io/v1", "kind": kind,
                               "metadata": {"name": name, "namespace": ns}, "spec": spec})


def container(address: Address, replica: int | None, *, level: str = "standard",
              env: list[list[Any]] | None = None) -> DesiredObject:
    name = f"c-{address.namespace}-{address.name}-{replica or 1}"
    config = {"name": name, "image": "img", "command": ["httpd", "-f"],
              "env": env or [], "ports": [{"container": 8080, "host": 18080}],
              "cage": {"name": level, "level": level, "cap_drop": ["ALL"],
                       "no_new_privileges": True, "read_only": level != "standard",
                       "seccomp_digest": "sha256:abc" if level != "standard" else None},
              "labels": {}}
    return DesiredObject(f"container:{name}", ObjectKind.CONTAINER, address, name, config,
                         "hash", replica=replica)


def live(name: str, address: Address, replica: int | None, status: str = "running"
         ) -> LiveObject:
    labels = {LABEL_ADDRESS: str(address)}
    if replica is not None:
        labels[LABEL_REPLICA] = str(replica)
    return LiveObject(f"container:{name}", ObjectKind.CONTAINER, name, "id-" + name, labels,
                      status)


# ---------------------------------------------------------------- names


RESOURCES = [resource("Service", "api"), resource("Job", "report"),
             resource("Service", "api", "shop"), resource("Network", "backend")]


@pytest.mark.parametrize(("text", "namespace", "expected"), [
    ("api", None, "Service/default/api"),
    ("report", None, "Job/default/report"),
    ("api", "shop", "Service/shop/api"),
    ("Job/report", None, "Job/default/report"),
    ("Service/shop/api", None, "Service/shop/api"),
    ("Service/api", "shop", "Service/shop/api"),
])
def test_names_resolve_like_an_operator_means_them(text: str, namespace: str | None,
                                                   expected: str) -> None:
    assert str(resolve_address(RESOURCES, [], text, namespace=namespace)) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("nope", "no Service or Job named 'nope' in namespace default"),
    ("Network/backend", "Network/default/backend is a Network: this command takes "
                        "Service or Job"),
    ("Service/default/zzz", "no Service/default/zzz in the workspace"),
    ("a/b/c/d", "not an address: 'a/b/c/d' (expected Kind/namespace/name)"),
    ("", "name a Service or Job"),
])
def test_bad_names_are_verb_errors_with_hints(text: str, message: str) -> None:
    with pytest.raises(VerbError) as err:
        resolve_address(RESOURCES, [], text)
    assert err.value.message == message
    assert err.value.hint


def test_an_address_only_state_or_podman_knows_still_resolves() -> None:
    gone = Address("Service", "default", "old")
    assert resolve_address(RESOURCES, [gone], "old") == gone


# ---------------------------------------------------------------- replicas


def test_pick_all_live_replicas_one_by_number_or_fail_clearly() -> None:
    want = [container(API, 1), container(API, 2)]
    target = build_target(API, None, want, [live(want[0].name, API, 1),
                                            live(want[1].name, API, 2)])
    assert [r.label for r in target.pick(None)] == ["api-1", "api-2"]
    assert [r.name for r in target.pick(2)] == [want[1].name]
    assert [r.replica for r in target.pick(None, default=1)] == [1]
    with pytest.raises(VerbError, match=r"has no replica 3 \(replicas: 1..2\)"):
        target.pick(3)
    half = build_target(API, None, want, [live(want[0].name, API, 1)])
    with pytest.raises(VerbError, match="replica 2 of Service/default/api has no container"):
        half.pick(2)
    empty = build_target(API, None, want, [])
    with pytest.raises(VerbError, match="Service/default/api has no containers"):
        empty.pick(None)


def test_a_leftover_container_of_the_address_is_a_replica_too() -> None:
    want = [container(API, 1)]
    extra = live("c-default-api-2", API, 2)
    other = live("c-default-web-1", Address("Service", "default", "web"), 1)
    target = build_target(API, None, want, [live(want[0].name, API, 1), extra, other])
    assert [(r.replica, r.name, r.desired is None) for r in target.replicas] == [
        (1, want[0].name, False), (2, extra.name, True)]


def test_exec_is_refused_only_in_a_deterministic_cage() -> None:
    job = Address("Job", "default", "report")
    det = build_target(job, None, [container(job, 1, level="deterministic")],
                       [live("c-default-report-1", job, 1, "exited")])
    with pytest.raises(VerbError, match="deterministic") as err:
        refuse_exec(det, det.replicas[0])
    assert "docklock verify" in err.value.hint
    assert det.replicas[0].label == "report"  # a Job's prefix is its name
    hard = build_target(API, None, [container(API, 1, level="hardened")], [])
    refuse_exec(hard, hard.replicas[0])  # no error


def test_logs_options_are_checked() -> None:
    with pytest.raises(VerbError, match="--tail must be 0 or more"):
        LogsOptions(tail=-1)
    with pytest.raises(VerbError, match="--replica must be 1 or more"):
        LogsOptions(replica=0)


# ---------------------------------------------------------------- log framing


def frame(stream: int, data: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + struct.pack(">I", len(data)) + data


def test_frames_are_read_apart_and_an_unframed_stream_is_stdout() -> None:
    raw = frame(1, b"out\n") + frame(2, b"err\n") + frame(1, b"")
    assert list(read_frames(io.BytesIO(raw).read)) == [(1, b"out\n"), (2, b"err\n"),
                                                       (1, b"")]
    # The 8-byte header probe comes first, then the rest as it is read.
    assert list(read_frames(io.BytesIO(b"plain tty text\n").read)) == [
        (1, b"plain tt"), (1, b"y text\n")]
    assert list(read_frames(io.BytesIO(b"").read)) == []


def test_log_lines_get_compose_prefixes_and_timestamps() -> None:
    line = LogLine("api-1", "c-api-1", 1, 1, b"hello\n", "2026-01-01T00:00:00Z")
    assert format_line(line, prefix=True, timestamps=False, width=7) == b"api-1   | hello\n"
    assert format_line(line, prefix=False, timestamps=True) == \
        b"2026-01-01T00:00:00Z hello\n"
    assert format_line(line, prefix=False, timestamps=False) == b"hello\n"


# ---------------------------------------------------------------- pods and tables


def test_container_rows_read_libpod_list_entries() -> None:
    row = container_row({
        "Names": ["c-default-api-1"], "Id": "abc", "State": "running", "Status": "healthy",
        "Image": "img", "Ports": [{"host_port": 18080, "container_port": 8080,
                                   "protocol": "tcp"}],
        "Networks": ["b", "a"], "Restarts": 2, "StartedAt": "2026-01-01T00:00:10.5Z",
        "Created": 1767225600, "Labels": {LABEL_ADDRESS: str(API)}})
    assert row.health == "healthy"
    assert row.ports == ("0.0.0.0:18080->8080/tcp",)
    assert row.networks == ("a", "b")
    assert row.restarts == 2
    assert row.started_at == pytest.approx(1767225610.5)
    assert row.created_at == 1767225600.0
    assert row.exit_code is None
    done = container_row({"Names": ["x"], "State": "exited", "ExitCode": 3})
    assert done.exit_code == 3
    assert done.started_at == 0.0


@pytest.mark.parametrize(("value", "expected"), [
    (0, 0.0), (-1, 0.0), ("", 0.0), (None, 0.0), ("0001-01-01T00:00:00Z", 0.0),
    ("1767225600", 1767225600.0), ("2026-01-01T01:00:00+01:00", 1767225600.0),
    ("garbage", 0.0)])
def test_epoch_takes_numbers_and_rfc3339(value: Any, expected: float) -> None:
    assert epoch(value) == expected


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "-"), (5, "5s"), (119, "119s"), (120, "2m"), (7199, "119m"), (7200, "2h"),
    (47 * 3600, "47h"), (48 * 3600, "2d")])
def test_ages_read_like_kubectl(seconds: float, text: str) -> None:
    assert format_age(seconds) == text


def test_pod_rows_and_their_table() -> None:
    job = Address("Job", "default", "report")
    rows = pod_rows([
        container_row({"Names": ["c-default-api-2"], "Id": "2", "State": "running",
                       "Status": "unhealthy", "StartedAt": 100,
                       "Labels": {LABEL_ADDRESS: str(API), LABEL_REPLICA: "2"}}),
        container_row({"Names": ["c-default-api-1"], "Id": "1", "State": "running",
                       "StartedAt": 100,
                       "Labels": {LABEL_ADDRESS: str(API), LABEL_REPLICA: "1"}}),
        container_row({"Names": ["c-default-report-1"], "Id": "3", "State": "exited",
                       "ExitCode": 0, "Labels": {LABEL_ADDRESS: str(job),
                                                 "io.docklock.kind": "Job"}}),
        container_row({"Names": ["theirs"], "Id": "4", "State": "running",
                       "Labels": {LABEL_ADDRESS: str(API), LABEL_LINEAGE: "other"}}),
    ], [container(API, 1)], lineage="mine")
    assert [(r.name, r.ready, r.status) for r in rows] == [
        ("c-default-api-1", True, "Running"), ("c-default-api-2", False,
                                               "Running (unhealthy)"),
        ("c-default-report-1", False, "Completed")]
    assert rows[0].cage == "standard"
    table = render_pods_table(rows[:2], now=160.0).splitlines()
    assert table == ["NAME             READY  STATUS               RESTARTS  AGE",
                     "c-default-api-1  1/1    Running              0         60s",
                     "c-default-api-2  0/1    Running (unhealthy)  0         60s"]
    assert render_pods_table([], now=0) == "No pods found.\n"
    assert rows[0].to_dict(160.0)["age_seconds"] == 60.0


def test_named_rows_compare_specs_state_and_podman() -> None:
    net = Address("Network", "default", "backend")
    gone = Address("Network", "default", "old")
    desired = [DesiredObject("network:n-backend", ObjectKind.NETWORK, net, "n-backend", {},
                             "h"),
               DesiredObject("network:n-new", ObjectKind.NETWORK,
                             Address("Network", "default", "new"), "n-new", {}, "h"),
               DesiredObject("network:n-lost", ObjectKind.NETWORK,
                             Address("Network", "default", "lost"), "n-lost", {}, "h")]
    rec = {str(a): RecordedResource({f"network:{n}": RecordedObject(
        f"network:{n}", ObjectKind.NETWORK, n, "id-" + n, "h")})
        for a, n in ((net, "n-backend"), (gone, "n-old"),
                     (Address("Network", "default", "lost"), "n-lost"))}
    state = State(lineage="L", serial=3, cluster="c", resources=rec)
    there = LiveState({f"network:{n}": LiveObject(f"network:{n}", ObjectKind.NETWORK, n,
                                                  "live-" + n, {LABEL_CLUSTER: "c"},
                                                  "present")
                       for n in ("n-backend", "n-old")})
    rows = named_rows(ObjectKind.NETWORK, desired, state, there)
    assert [(r.resource, r.status, r.id) for r in rows] == [
        ("backend", "present", "live-n-backend"), ("lost", "missing", "id-n-lost"),
        ("new", "pending", ""), ("old", "orphaned", "live-n-old")]
    assert named_rows(ObjectKind.NETWORK, desired, state, there, namespace="x") == ()
    wide = render_named_table(rows[:1], what="networks", wide=True).splitlines()
    assert wide[1].split() == ["backend", "n-backend", "present", "live-n-backe", "yes"]
    vol = NamedRow("volume", "default", "data", "Volume/default/data", "v-data", "present",
                   "v-data", True)
    assert render_named_table([vol], what="volumes", wide=True).splitlines()[1].split() == [
        "data", "v-data", "present", "-", "yes"]


def test_tables_pad_columns_and_yaml_keeps_key_order() -> None:
    assert render_table(["A", "LONGER"], [["xyz", "1"]]) == "A    LONGER\nxyz  1\n"
    assert to_yaml({"b": 1, "a": [1, "x"]}) == "b: 1\na:\n- 1\n- x\n"


# ---------------------------------------------------------------- describe


def test_object_fields_mask_sensitive_env_and_show_ports() -> None:
    obj = container(API, 1, env=[["MODE", "prod", False], ["TOKEN", "s3cret", True]])
    fields = object_fields(obj)["fields"]
    assert fields["env"] == ["MODE=prod", "TOKEN=(sensitive)"]
    assert fields["ports"] == ["18080->8080/tcp"]
    assert "s3cret" not in json.dumps(object_fields(obj))


def test_live_fields_from_inspect() -> None:
    got = live_fields({"Id": "abc", "RestartCount": 1,
                       "State": {"Status": "exited", "ExitCode": 2,
                                 "StartedAt": "0001-01-01T00:00:00Z",
                                 "Health": {"Status": "unhealthy"}},
                       "NetworkSettings": {"Networks": {"n": {"IPAddress": "10.0.0.2"}}}},
                      ["p"], "exited")
    assert got == {"id": "abc", "status": "exited", "health": "unhealthy", "started": "",
                   "restarts": 1, "ports": ["p"], "ips": {"n": "10.0.0.2"}, "exit_code": 2}


def test_ledger_entries_match_the_address_or_its_keys_exactly() -> None:
    keys = {"container:c-default-api-1"}
    assert entry_touches({"address": "Service/default/api"}, "Service/default/api", keys)
    assert entry_touches({"changes": ["container:c-default-api-1"]}, "x", keys)
    assert not entry_touches({"address": "Service/default/api2"}, "Service/default/api",
                             keys)
    assert summarize("change", {"command": "restart", "action": "restart",
                                "key": "container:c", "status": "failed",
                                "message": "unhealthy"}) == \
        "[restart] restart container:c failed - unhealthy"
    assert summarize("apply-end", {"command": "apply", "ok": True, "added": 2}) == \
        "apply ended: ok=True, added=2"
    assert summarize("apply-start", {"command": "destroy", "changes": ["a", "b"]}) == \
        "destroy started: 2 change(s)"


def test_render_description_shows_every_section() -> None:
    text = render_description({
        "name": "api", "namespace": "default", "kind": "Service",
        "address": "Service/default/api", "source": "specs/app.yaml:3:1",
        "labels": {"tier": "back"}, "spec": {"replicas": 2},
        "objects": [object_fields(container(API, 1))],
        "replicas": [{"name": "c-default-api-1", "replica": 1, "id": "a" * 64,
                      "status": "running", "health": "healthy", "started": "t",
                      "restarts": 0, "ports": [], "ips": {}, "exit_code": None}],
        "cage": {"name": "standard", "level": "standard", "cap_drop": ["ALL"],
                 "cap_add": [], "tmpfs": {}},
        "entries": [{"seq": 4, "time": "t", "type": "change", "summary": "s"}]})
    for expected in ("Source:           specs/app.yaml:3:1", "Labels:           tier=back",
                     "  replicas: 2", "  container c-default-api-1 (hash hash)",
                     "    command:          httpd -f", "    Id:               aaaaaaaaaaaa",
                     "  Cap drop:         ALL", "  No new privileges: -",
                     "Ledger (last 1):", "  #4 t change: s"):
        assert expected in text.splitlines(), expected


# ---------------------------------------------------------------- review fixes


def test_describe_masks_sensitive_values_in_the_spec_wherever_they_sit() -> None:
    from docklock.engine.describe import mask_spec

    spec = {"image": "img", "env": {"DB_PASSWORD": {"value": "topsecretvalue42",
                                                    "sensitive": True},
                                    "MODE": {"value": "prod"}, "PLAIN": "x",
                                    "ODD": {"value": "odd-secret", "sensitive": "yes"}},
            "replicas": 2}
    masked = mask_spec(spec)
    assert masked["env"]["DB_PASSWORD"] == {"value": "(sensitive)", "sensitive": True}
    assert masked["env"]["MODE"] == {"value": "prod"}
    assert masked["env"]["PLAIN"] == "x"
    assert "secret" not in json.dumps(masked)
    assert spec["env"]["DB_PASSWORD"]["value"] == "topsecretvalue42"  # a copy
    assert mask_spec(None) is None


def live_caged(name: str, address: Address, replica: int | None, cage: str | None, *,
               config_hash: str = "", run_id: str = "") -> LiveObject:
    from docklock.objects import LABEL_CAGE, LABEL_CONFIG_HASH

    labels = {LABEL_ADDRESS: str(address)}
    if replica is not None:
        labels[LABEL_REPLICA] = str(replica)
    if cage is not None:
        labels[LABEL_CAGE] = cage
    if config_hash:
        labels[LABEL_CONFIG_HASH] = config_hash
    if run_id:
        labels["io.docklock.job-run"] = run_id
    return LiveObject(f"container:{name}", ObjectKind.CONTAINER, name, "id-" + name, labels,
                      "running")


NETWORKED = {"Config": {"Hostname": "abc", "Env": ["PATH=/bin"]},
             "HostConfig": {"NetworkMode": "bridge"}}


def test_exec_refusal_judges_the_live_container_not_only_the_specs() -> None:
    det = "c-default-api-1"
    # The spec says hardened (edited, not applied), the live container is deterministic.
    edited = build_target(API, None, [container(API, 1, level="hardened")],
                          [live_caged(det, API, 1, "deterministic", config_hash="old")])
    assert edited.replicas[0].desired is not None
    with pytest.raises(VerbError, match="deterministic"):
        refuse_exec(edited, edited.replicas[0], lambda: NETWORKED)
    # Replicas lowered (not applied): replica 2 has no desired entry; its label says it.
    lowered = build_target(API, None, [container(API, 1, level="deterministic")],
                           [live_caged("c-default-api-2", API, 2, "military-grade")])
    with pytest.raises(VerbError, match="deterministic"):
        refuse_exec(lowered, lowered.replicas[1])
    # A CageProfile's name on a container the specs do not render: the inspect decides.
    profiled = build_target(API, None, [], [live_caged(det, API, 1, "myprofile")])
    rep = profiled.replicas[0]
    for marks in ({"Config": {"Env": ["DOCKLOCK_SEED=0"]}, "HostConfig": {}},
                  {"Config": {"Hostname": "docklock-cage"}, "HostConfig": {}},
                  {"Config": {}, "HostConfig": {"NetworkMode": "none"}}):
        with pytest.raises(VerbError, match="deterministic"):
            refuse_exec(profiled, rep, lambda m=marks: m)  # type: ignore[misc]
    refuse_exec(profiled, rep, lambda: NETWORKED)  # a network: not deterministic
    with pytest.raises(VerbError, match="cannot be established") as err:
        refuse_exec(profiled, rep, lambda: {})
    assert err.value.hint == "run `docklock apply` first, then exec"
    with pytest.raises(VerbError, match="cannot be established"):
        refuse_exec(profiled, rep)
    # The live container the specs render (same config hash): the specs' level stands,
    # no inspect needed.
    want = container(API, 1, level="hardened")
    same = build_target(API, None, [want], [live_caged(want.name, API, 1, "myprofile",
                                                       config_hash="hash")])

    def no_inspect() -> dict[str, Any]:
        raise AssertionError("not needed")

    refuse_exec(same, same.replicas[0], no_inspect)


def test_a_docklock_run_container_is_the_jobs_container_for_exec_and_logs() -> None:
    job = Address("Job", "default", "slow")
    want = container(job, 1)
    run = live_caged("docklock-job-default-slow-abc123", job, None, None, run_id="abc123")
    target = build_target(job, None, [want], [run])
    chosen = target.pick(None, default=1)
    assert [r.name for r in chosen] == [run.name]
    assert chosen[0].label == "slow"
    # Apply's run-once container has exited: the running `docklock run` one comes first.
    done = replace_status(live(want.name, job, 1), "exited")
    both = build_target(job, None, [want], [done, run])
    assert [r.name for r in both.pick(None, default=1)] == [run.name, want.name]
    assert [r.label for r in both.pick(None)] == ["slow", "slow"]


def replace_status(obj: LiveObject, status: str) -> LiveObject:
    from dataclasses import replace

    return replace(obj, status=status)


def test_a_docklock_run_container_shows_its_jobs_cage_in_get_jobs() -> None:
    from docklock.cage.jobs import LABEL_JOB_RUN
    from docklock.engine.verbs import LABEL_JOB_RUN as VERBS_LABEL

    assert VERBS_LABEL == LABEL_JOB_RUN
    job = Address("Job", "default", "slow")
    rows = pod_rows([container_row({
        "Names": ["docklock-job-default-slow-abc123"], "Id": "9", "State": "running",
        "Labels": {LABEL_ADDRESS: str(job), LABEL_JOB_RUN: "abc123"}})],
        [container(job, 1, level="deterministic")])
    assert [(r.kind, r.cage) for r in rows] == [("Job", "deterministic")]
