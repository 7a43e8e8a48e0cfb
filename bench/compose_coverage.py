"""Mapped-key fraction of `docklock import compose` over the corpus, beside kompose's.

Every compose key the converter counts (a service key, a deploy / healthcheck sub-key,
a top-level network / volume / secret key) in tests/corpus/compose/*/ is one
occurrence; DockLock's fraction is occurrences mapped / occurrences seen. kompose's
published conversion table (kubernetes/kompose docs/conversion.md, commit b724c0e,
the V3 column: ✓ converts, n not yet, x no 1-1 conversion) gives a status per key; on
the occurrences whose key that table lists, kompose's fraction is the share of
occurrences whose key is ✓ there. Both fractions on that same key list are printed,
then per key.

    .venv/bin/python bench/compose_coverage.py [--markdown]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

from docklock.importers.compose import Finding, convert_compose

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "corpus" / "compose"

# kompose docs/conversion.md (b724c0eb790c29fa1c5dc037b857e595896ccffe), V3 column.
KOMPOSE: dict[str, str] = {
    "build": "✓", "build: context": "✓", "build: dockerfile": "✓", "build: args": "n",
    "build: cache_from": "n", "cap_add, cap_drop": "✓", "command": "✓", "configs": "✓",
    "cgroup_parent": "x", "container_name": "✓", "credential_spec": "x", "deploy": "✓",
    "deploy: mode": "✓", "deploy: replicas": "✓", "deploy: placement": "✓",
    "deploy: update_config": "✓", "deploy: resources": "✓", "deploy: restart_policy": "✓",
    "deploy: labels": "✓", "devices": "x", "depends_on": "x", "dns": "x", "dns_search": "x",
    "domainname": "✓", "tmpfs": "✓", "entrypoint": "✓", "env_file": "✓",
    "environment": "✓", "expose": "✓", "endpoint_mode": "✓", "extends": "✓",
    "external_links": "x", "extra_hosts": "n", "group_add": "✓", "healthcheck": "✓",
    "hostname": "✓", "image": "✓", "isolation": "x", "labels": "✓", "links": "x",
    "logging": "x", "network_mode": "x", "networks": "✓", "networks: aliases": "x",
    "networks: addresses": "x", "pid": "✓", "ports": "✓", "secrets": "✓",
    "security_opt": "x", "stop_grace_period": "✓", "stop_signal": "x", "sysctls": "n",
    "ulimits": "x", "userns_mode": "x", "volumes": "✓", "restart": "✓",
    "volume: driver": "x", "volume: driver_opts": "x", "volume: external": "x",
    "volume: labels": "x", "network: driver": "x", "network: driver_opts": "x",
    "network: enable_ipv6": "x", "network: ipam": "x", "network: internal": "x",
    "network: labels": "x", "network: external": "x",
}


def kompose_key(path: str) -> str:
    """A finding's path (`services.web.deploy.replicas`) as a key of kompose's table."""
    parts = re.sub(r"\[\d+\]", "", path).split(".")
    if parts[0] == "services" and len(parts) >= 3:
        key = parts[2]
        if key in ("cap_add", "cap_drop"):
            return "cap_add, cap_drop"
        if key == "deploy" and len(parts) >= 4:
            return f"deploy: {parts[3]}"
        return key
    if parts[0] in ("networks", "volumes") and len(parts) >= 3:
        return f"{parts[0][:-1]}: {parts[2]}"
    if parts[0] in ("secrets", "configs"):
        return parts[0]
    return path


def corpus_findings() -> list[Finding]:
    found: list[Finding] = []
    for folder in sorted(p for p in CORPUS.iterdir() if p.is_dir()):
        compose = next(p for p in (folder / "compose.yaml", folder / "docker-compose.yml")
                       if p.exists())
        env = {"IMAGE": "localhost/docklock-test/busybox:1"}
        result = convert_compose(compose, environ=env, display=f"{folder.name}/{compose.name}")
        found.extend(f for f in result.findings if f.counted)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--markdown", action="store_true", help="print the per-key table "
                        "as Markdown (for docs/compose-import.md)")
    args = parser.parse_args(argv)
    findings = corpus_findings()
    projects = len([p for p in CORPUS.iterdir() if p.is_dir()])
    seen = len(findings)
    mapped = sum(f.mapped for f in findings)
    per_key: dict[str, Counter[str]] = defaultdict(Counter)
    for f in findings:
        c = per_key[kompose_key(f.path)]
        c["seen"] += 1
        c["mapped"] += int(f.mapped)
    listed = {k: c for k, c in per_key.items() if k in KOMPOSE}
    l_seen = sum(c["seen"] for c in listed.values())
    l_ours = sum(c["mapped"] for c in listed.values())
    l_kompose = sum(c["seen"] for k, c in listed.items() if KOMPOSE[k] == "✓")
    print(f"corpus: {projects} compose projects, {seen} key occurrences, "
          f"{len(per_key)} distinct keys")
    print(f"docklock, all keys:                {mapped}/{seen} = {mapped / seen:.1%}")
    print(f"on kompose's key list ({len(listed)} keys, {l_seen} occurrences):")
    print(f"  docklock:                        {l_ours}/{l_seen} = {l_ours / l_seen:.1%}")
    print(f"  kompose (table says converts):   {l_kompose}/{l_seen} = {l_kompose / l_seen:.1%}")
    keys = sorted(per_key, key=lambda k: (k not in KOMPOSE, k))
    if args.markdown:
        print("\n| key | seen | docklock mapped | kompose table |")
        print("|---|---:|---:|:---:|")
        for k in keys:
            c = per_key[k]
            print(f"| `{k}` | {c['seen']} | {c['mapped']} | {KOMPOSE.get(k, 'not listed')} |")
    else:
        print(f"\n{'key':34} {'seen':>5} {'ours':>5}  kompose")
        for k in keys:
            c = per_key[k]
            print(f"{k:34} {c['seen']:>5} {c['mapped']:>5}  {KOMPOSE.get(k, 'not listed')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
