"""Status rows from desired objects, recorded state and one live list (pure)."""

from __future__ import annotations

from docklock.model import Address
from docklock.objects import (
    LABEL_ADDRESS,
    LABEL_CLUSTER,
    LABEL_REPLICA,
    DesiredObject,
    LiveObject,
    LiveState,
    ObjectKind,
)
from docklock.state import RecordedObject, State
from docklock.status import compute_status, render_status_table

C = "demo"


def svc(name: str, replicas: int, *, ns: str = "default", cage: str = "hardened",
        health: bool = True) -> list[DesiredObject]:
    out = []
    for i in range(1, replicas + 1):
        cname = f"{C}-{ns}-{name}-{i}"
        config: dict[str, object] = {"cage": {"name": cage, "level": "hardened"}}
        if health:
            config["healthcheck"] = {"command": ["true"]}
        out.append(DesiredObject(f"container:{cname}", ObjectKind.CONTAINER,
                                 Address("Service", ns, name), cname, config, "h", replica=i))
    return out


def lv(name: str, i: int, *, ns: str = "default", status: str = "running",
       health: str = "healthy", ports: tuple[str, ...] = ()) -> LiveObject:
    cname = f"{C}-{ns}-{name}-{i}"
    return LiveObject(f"container:{cname}", ObjectKind.CONTAINER, cname, f"id{i}",
                      {LABEL_ADDRESS: f"Service/{ns}/{name}", LABEL_CLUSTER: C,
                       LABEL_REPLICA: str(i)}, status, health, "img", None, ports)


def test_rows_count_ready_replicas_and_summarise_health() -> None:
    desired = [*svc("web", 3), *svc("db", 1, health=False)]
    live = LiveState({o.key: o for o in [
        lv("web", 1, ports=("127.0.0.1:18080->8080/tcp",)), lv("web", 2),
        lv("web", 3, health="starting"), lv("db", 1, health="")]}, 1)
    report = compute_status(desired, State(), live, cluster=C)
    rows = {r.name: r for r in report.resources}
    assert (rows["web"].ready, rows["web"].desired, rows["web"].status) == (2, 3, "degraded")
    assert rows["web"].health == "mixed"
    assert rows["web"].ports == ("127.0.0.1:18080->8080/tcp",)
    assert rows["web"].cage == "hardened"
    assert (rows["db"].ready, rows["db"].status, rows["db"].health) == (1, "running", "-")
    assert not report.healthy
    assert report.api_calls == 1


def test_missing_and_orphaned_replicas() -> None:
    live = LiveState({o.key: o for o in [lv("web", 1), lv("old", 1)]}, 1)
    report = compute_status(svc("web", 2), State(), live, cluster=C)
    rows = {r.name: r for r in report.resources}
    assert [r.status for r in rows["web"].replicas] == ["running", "missing"]
    assert rows["web"].status == "degraded"
    assert rows["old"].status == "orphaned"
    assert rows["old"].desired == 0


def test_down_when_nothing_runs() -> None:
    live = LiveState({o.key: o for o in [lv("web", 1, status="exited", health="")]}, 1)
    report = compute_status(svc("web", 1), State(), live, cluster=C)
    assert report.resources[0].status == "down"


def test_stopped_replica_health_is_not_reported_as_healthy() -> None:
    # Podman keeps an exited container's last health result; it is stale.
    live = LiveState({o.key: o for o in [lv("web", 1, status="exited")]}, 1)
    row = compute_status(svc("web", 1), State(), live, cluster=C).resources[0]
    assert (row.status, row.health) == ("down", "-")


def test_networks_come_from_the_recorded_state() -> None:
    net = DesiredObject("network:demo-default-backend", ObjectKind.NETWORK,
                        Address("Network", "default", "backend"), "demo-default-backend",
                        {}, "h")
    st = State(lineage="L", serial=1).with_object(
        "Network/default/backend",
        RecordedObject(net.key, ObjectKind.NETWORK, net.name, "nid", "h"))
    report = compute_status([net], st, LiveState({}, 1), cluster=C)
    assert [(r.kind, r.status, r.ready, r.desired) for r in report.resources] == [
        ("Network", "present", 1, 1)]
    pending = compute_status([net], State(), LiveState({}, 1), cluster=C)
    assert pending.resources[0].status == "pending"


def test_filters_and_table() -> None:
    desired = [*svc("web", 1), *svc("web", 1, ns="prod")]
    live = LiveState({o.key: o for o in [lv("web", 1), lv("web", 1, ns="prod")]}, 1)
    report = compute_status(desired, State(), live, cluster=C)
    only = report.only(kinds=("Service",), namespace="prod")
    assert [r.address for r in only.resources] == ["Service/prod/web"]
    table = render_status_table(report)
    assert table.splitlines()[0].split() == ["NAMESPACE", "KIND", "NAME", "READY", "STATUS",
                                             "HEALTH", "PORTS", "CAGE"]
    assert "1/1" in table
    detailed = render_status_table(report, show_namespace=False, detailed=True)
    assert f"└ {C}-default-web-1" in detailed
    assert "LAST CHECK" in detailed.splitlines()[0]
    assert render_status_table(report.only(kinds=("Job",))) == f"No resources in cluster {C}.\n"
