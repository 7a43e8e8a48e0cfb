"""The dependency graph of a workspace's resources: edges, cycles, topological waves.

Nodes are the addresses of deployable resources (Service, Job, Image, Network, Volume,
CageProfile; Cluster and Policy are not deployed and are left out). An edge points from
a dependency to its dependent — `u → v` means u must exist (or reach its condition)
before v starts — so topological order is start order and `waves()` are the groups
apply may run in parallel. Edges come from:

* `dependsOn` (attribute `condition`),
* `networks` and `volumes` (the Network / Volume resources, same namespace),
* `image`: an Image resource whose `spec.ref` equals the image, or (same namespace) whose
  name equals it,
* `cage`: a CageProfile of that name in the same namespace.

A dependency cycle raises GraphError naming the cycle in "depends on" order:
`Service/default/a -> Service/default/b -> Service/default/a`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from docklock.errors import GraphError
from docklock.model import Address, ImageSpec, JobSpec, Kind, Resource, ServiceSpec

GRAPH_KINDS = frozenset({Kind.SERVICE.value, Kind.JOB.value, Kind.IMAGE.value,
                         Kind.NETWORK.value, Kind.VOLUME.value, Kind.CAGE_PROFILE.value})


@dataclass(frozen=True)
class Edge:
    dependency: Address
    dependent: Address
    reason: str  # dependsOn | network | volume | image | cage
    condition: str = ""  # for dependsOn: started | healthy | completed
    index: int = -1  # position in the dependent's list (dependsOn/networks/volumes)


@dataclass(frozen=True)
class DanglingReference:
    source: Address
    target: Address
    reason: str
    index: int = -1


def address_key(address: Address) -> tuple[str, str, str]:
    """Sort key of an address (plain tuples compare in C; dataclass order does not)."""
    return (address.kind, address.namespace, address.name)


class ResourceGraph:
    """The dependency graph (edge: dependency → dependent) plus queries and renderers.

    Internally nodes are integers numbered in address order, so hashing and sorting stay
    cheap at tens of thousands of resources, and sorting node ids sorts by address. The
    algorithms (topological generations, reachability, strongly connected components)
    are the few this module needs, written here: no graph library is imported on every
    command (house rule 12).
    """

    def __init__(self, addresses: Sequence[Address],
                 edges: Mapping[tuple[int, int], Mapping[str, str]],
                 resources: Mapping[Address, Resource]) -> None:
        self._addresses = list(addresses)  # sorted by address; index = node id
        self._ids = {a: i for i, a in enumerate(self._addresses)}
        self._reasons = dict(edges)
        self._succ: list[list[int]] = [[] for _ in self._addresses]
        self._pred: list[list[int]] = [[] for _ in self._addresses]
        for u, v in self._reasons:
            self._succ[u].append(v)
            self._pred[v].append(u)
        self.resources = dict(resources)
        self._waves: list[list[int]] | None = None

    def __len__(self) -> int:
        return len(self._addresses)

    def __contains__(self, address: object) -> bool:
        return address in self._ids

    @property
    def nodes(self) -> list[Address]:
        return list(self._addresses)

    def edges(self) -> list[Edge]:
        """Every edge, one per reason, sorted by dependent then dependency."""
        out = []
        for (u, v), why in sorted(self._reasons.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            for reason, condition in sorted(why.items()):
                out.append(Edge(self._addresses[u], self._addresses[v], reason, condition))
        return out

    def _generations(self) -> list[list[int]]:
        if self._waves is None:
            waves, complete = _generations(self._succ, self._pred)
            if not complete:
                raise cycle_error(self)
            self._waves = waves
        return self._waves

    def waves(self) -> list[list[Address]]:
        """Topological generations, each sorted by address: wave n depends only on < n."""
        return [[self._addresses[i] for i in wave] for wave in self._generations()]

    def order(self) -> list[Address]:
        """A start order: topological, ties broken by address."""
        return [self._addresses[i] for wave in self._generations() for i in wave]

    def wave_of(self) -> dict[Address, int]:
        return {self._addresses[i]: n for n, wave in enumerate(self._generations())
                for i in wave}

    def _id(self, address: Address) -> int:
        try:
            return self._ids[address]
        except KeyError:
            raise GraphError(f"{address} is not in the graph") from None

    def dependencies_of(self, address: Address, transitive: bool = False) -> list[Address]:
        """What `address` needs first (direct, or all when transitive), sorted."""
        node = self._id(address)
        found = _reach(self._pred, node) if transitive else self._pred[node]
        return [self._addresses[i] for i in sorted(found)]

    def dependents_of(self, address: Address, transitive: bool = False) -> list[Address]:
        """What needs `address` (direct, or all when transitive), sorted."""
        node = self._id(address)
        found = _reach(self._succ, node) if transitive else self._succ[node]
        return [self._addresses[i] for i in sorted(found)]

    def cycles(self) -> list[list[Address]]:
        """One cycle per strongly connected component, in "depends on" order, closed."""
        out = []
        for component in _strong_components(self._succ):
            if len(component) == 1:
                (node,) = component
                if node in self._succ[node]:
                    out.append([self._addresses[node]] * 2)
                continue
            members = set(component)
            path = _cycle_through(self._pred, members, min(component))
            out.append([self._addresses[i] for i in path])
        return sorted(out, key=lambda c: [address_key(x) for x in c])

    # ------------------------------------------------------------ renderers

    def to_json(self) -> dict[str, Any]:
        """{"nodes": [...], "edges": [...], "waves": [[...]]}; addresses as strings."""
        wave = self.wave_of()
        return {
            "nodes": [{"address": str(a), "kind": a.kind, "namespace": a.namespace,
                       "name": a.name, "wave": wave[a]} for a in self._addresses],
            "edges": [{"from": str(e.dependency), "to": str(e.dependent), "reason": e.reason,
                       **({"condition": e.condition} if e.condition else {})}
                      for e in self.edges()],
            "waves": [[str(a) for a in w] for w in self.waves()],
        }

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)

    def to_dot(self) -> str:
        """Graphviz; arrows point from a dependency to what depends on it (start order)."""
        lines = ["digraph docklock {", "  rankdir=LR;", "  node [shape=box];"]
        for i, wave in enumerate(self.waves()):
            lines.append(f"  subgraph wave_{i} {{ rank=same;")
            for a in wave:
                lines.append(f'    "{a}" [label="{a.kind}\\n{a.namespace}/{a.name}"];')
            lines.append("  }")
        for e in self.edges():
            label = e.reason + (f" ({e.condition})" if e.condition else "")
            lines.append(f'  "{e.dependency}" -> "{e.dependent}" [label="{label}"];')
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_mermaid(self) -> str:
        """Mermaid flowchart; arrows point from a dependency to its dependent."""
        lines = ["flowchart LR"]
        for i, a in enumerate(self._addresses):
            lines.append(f'  n{i}["{a}"]')
        for (u, v), why in sorted(self._reasons.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            for reason, condition in sorted(why.items()):
                label = reason + (f" {condition}" if condition else "")
                lines.append(f"  n{u} -->|{_mermaid_label(label)}| n{v}")
        return "\n".join(lines) + "\n"


def _mermaid_label(text: str) -> str:
    return re.sub(r"[|\"]", "", text)


def _generations(succ: Sequence[Sequence[int]],
                 pred: Sequence[Sequence[int]]) -> tuple[list[list[int]], bool]:
    """Kahn's algorithm by levels: wave n holds the nodes whose dependencies are all in
    waves < n, sorted; False when a cycle leaves nodes that never become ready."""
    indegree = [len(p) for p in pred]
    wave = [i for i, d in enumerate(indegree) if d == 0]
    waves: list[list[int]] = []
    done = 0
    while wave:
        waves.append(wave)
        done += len(wave)
        ready = []
        for u in wave:
            for v in succ[u]:
                indegree[v] -= 1
                if indegree[v] == 0:
                    ready.append(v)
        wave = sorted(ready)
    return waves, done == len(succ)


def _reach(adjacency: Sequence[Sequence[int]], start: int) -> set[int]:
    """Every node reachable from `start` (not `start` itself unless on a cycle)."""
    seen: set[int] = set()
    stack = list(adjacency[start])
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(adjacency[node])
    return seen


def _strong_components(succ: Sequence[Sequence[int]]) -> list[list[int]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit)."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    out: list[list[int]] = []
    for root in range(len(succ)):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            recurse = False
            for j in range(i, len(succ[node])):
                nxt = succ[node][j]
                if nxt not in index:
                    work.append((node, j + 1))
                    work.append((nxt, 0))
                    recurse = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recurse:
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return out


def _cycle_through(pred: Sequence[Sequence[int]], members: set[int],
                   start: int) -> list[int]:
    # Breadth-first from start's dependencies back to start, inside its component: the
    # shortest cycle through it in "depends on" order, deterministic because neighbours
    # are visited in node (= address) order.
    parents: dict[int, int] = {}
    queue = [start]
    seen = {start}
    while queue:
        node = queue.pop(0)
        for nxt in sorted(n for n in pred[node] if n in members):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                path.reverse()
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                parents[nxt] = node
                queue.append(nxt)
    return [start, start]  # pragma: no cover - a strongly connected component has a cycle


def format_cycle(cycle: Sequence[Address]) -> str:
    return " -> ".join(str(a) for a in cycle)


def cycle_error(graph: ResourceGraph) -> GraphError:
    found = graph.cycles()
    text = "; ".join(format_cycle(c) for c in found)
    return GraphError(f"dependency cycle: {text}",
                      hint="remove one dependsOn entry of the cycle")


def build_graph(resources: Iterable[Resource], *, strict: bool = True) -> ResourceGraph:
    """The graph of `resources`. strict: a reference to a missing resource is a GraphError
    (docklock.load reports those earlier, with positions); otherwise it is skipped.
    A cycle raises GraphError (see `cycles` for all of them)."""
    result, found, dangling = analyse(resources)
    if strict and dangling:
        d = dangling[0]
        raise GraphError(f"{d.source} refers to {d.target} ({d.reason}), which is not defined")
    if found:
        raise cycle_error(result)
    return result


def analyse(resources: Iterable[Resource]) -> tuple[ResourceGraph, list[list[Address]],
                                                   list[DanglingReference]]:
    """The graph (missing targets skipped), its cycles and its dangling references, without
    raising; docklock.load reports all of them with positions."""
    by_address: dict[Address, Resource] = {}
    for r in resources:
        if r.kind in GRAPH_KINDS:
            by_address.setdefault(r.address, r)
    addresses = sorted(by_address, key=address_key)
    # Lookups by plain tuples: no Address is built (or hashed in Python) per reference.
    ids = {address_key(a): i for i, a in enumerate(addresses)}
    by_ref: dict[str, list[int]] = {}
    for i, a in enumerate(addresses):
        spec = by_address[a].spec
        if isinstance(spec, ImageSpec):
            by_ref.setdefault(spec.ref, []).append(i)
    reasons: dict[tuple[int, int], dict[str, str]] = {}
    dangling: list[DanglingReference] = []
    image_kind, network_kind = Kind.IMAGE.value, Kind.NETWORK.value
    volume_kind, profile_kind = Kind.VOLUME.value, Kind.CAGE_PROFILE.value

    for me, a in enumerate(addresses):
        spec = by_address[a].spec
        if not isinstance(spec, (ServiceSpec, JobSpec)):
            continue
        ns = a.namespace

        def link(key: tuple[str, str, str], reason: str, condition: str = "",
                 index: int = -1, *, me: int = me, a: Address = a) -> None:
            target = ids.get(key)
            if target is None:
                dangling.append(DanglingReference(a, Address(*key), reason, index))
            else:
                reasons.setdefault((target, me), {})[reason] = condition

        for i, dep in enumerate(spec.dependsOn):
            link((dep.kind, ns, dep.name), "dependsOn", dep.condition.value, i)
        for i, net in enumerate(spec.networks):
            link((network_kind, ns, net), "network", index=i)
        for i, vol in enumerate(spec.volumes):
            link((volume_kind, ns, vol.name), "volume", index=i)
        built = by_ref.get(spec.image)
        image = None
        if built:
            same = [j for j in built if addresses[j].namespace == ns]
            image = (same or built)[0]
        else:
            image = ids.get((image_kind, ns, spec.image))
        if image is not None:
            reasons.setdefault((image, me), {})["image"] = ""
        if spec.cage:
            profile = ids.get((profile_kind, ns, spec.cage))
            if profile is not None:
                reasons.setdefault((profile, me), {})["cage"] = ""
    result = ResourceGraph(addresses, reasons, by_address)
    try:
        result.waves()
    except GraphError:
        return result, result.cycles(), dangling
    return result, [], dangling
