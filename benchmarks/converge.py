#!/usr/bin/env python3
"""Benchmark: the operator's loop on the demo island, and what each added k3s agent costs.

    .cache/venv/bin/python benchmarks/converge.py [--agents 1,4,8] [--keep]

For each agent count it brings up an island of the demo's shape (one infra host carrying DNS, the
registry, MinIO, Gitea and the monitoring; three k3s servers; N agents) with tools/demo.sh
(containers, signed test bundle), then times, with the island_profile callback recording the time per role:

  1. the first converge of playbooks/site.yml (hosts up and bundle built beforehand);
  2. a zero-change rerun (it must report zero changes);
  3. --check --diff on the converged island;
  4. a rerun after one changed setting (an extra DNS record: the zone changes, CoreDNS reloads).

It prints each figure against issue 16's targets, the per-role times of the rerun, and the cost of
each added agent on a rerun (least-squares slope over the agent counts). Figures go to
.cache/bench/converge.json as well. Not part of the tests: each island takes minutes to converge.
The island of the demo itself (inventory/demo, its containers) is left alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / ".cache" / "bench"

# Issue 16's targets, in seconds.
TARGETS = {"first": 120.0, "rerun": 40.0, "check": 40.0, "per_agent": 2.0}
CHANGED_SETTING = '{"dns_records": [{"name": "bench", "type": "TXT", "value": "converge benchmark"}]}'


def write_inventory(agents: int) -> Path:
    """An inventory of the demo's shape with `agents` agents, on a network of its own."""
    island = BENCH / f"agents{agents}"
    inventory = island / "inventory"
    (inventory / "group_vars").mkdir(parents=True, exist_ok=True)
    octet = 80 + agents  # 10.<octet>.0.0/24: apart from the demo's 10.77.0.0/24
    hosts = {"infra1": f"10.{octet}.0.10"}
    hosts.update({f"server{i}": f"10.{octet}.0.{10 + i}" for i in (1, 2, 3)})
    hosts.update({f"agent{i}": f"10.{octet}.0.{20 + i}" for i in range(1, agents + 1)})
    lines = ["---", "all:", "  hosts:"]
    lines += [f"    {name}: {{ansible_host: {address}}}" for name, address in hosts.items()]
    lines += ["  children:"]
    for group in ("island_dns", "island_registry", "island_minio", "island_gitea", "island_monitoring"):
        lines += [f"    {group}:", "      hosts: {infra1: {}}"]
    lines += ["    k3s_servers:", "      hosts: {server1: {}, server2: {}, server3: {}}"]
    agent_hosts = ", ".join(f"agent{i}: {{}}" for i in range(1, agents + 1))
    lines += ["    k3s_agents:", f"      hosts: {{{agent_hosts}}}"]
    (inventory / "hosts.yml").write_text("\n".join(lines) + "\n")
    # The demo's island-wide settings, with this island's state directory and network.
    demo_vars = (ROOT / "inventory" / "demo" / "group_vars" / "all.yml").read_text()
    demo_vars = demo_vars.replace('"{{ playbook_dir }}/../.cache/demo"', f'"{island}"')
    demo_vars = demo_vars.replace("10.77.0.0/24", f"10.{octet}.0.0/24")
    demo_vars = demo_vars.replace("network: island-demo", f"network: island-bench{agents}")
    (inventory / "group_vars" / "all.yml").write_text(demo_vars)
    return inventory


def demo(command: str, inventory: Path, *args: str) -> None:
    env = {
        **os.environ,
        "ISLAND_DEMO_INVENTORY": str(inventory / "hosts.yml"),
        "ISLAND_DEMO_DIR": str(inventory.parent),
    }
    subprocess.run(["bash", str(ROOT / "tools" / "demo.sh"), command, *args], check=True, env=env, cwd=ROOT)


def timed_run(inventory: Path, name: str, *args: str) -> dict:
    """One ansible-playbook run of site.yml with the island_profile callback: its figures."""
    island = inventory.parent
    profile = island / f"profile-{name}.json"
    log = island / f"{name}.log"
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_CALLBACKS_ENABLED": "island.installer.island_profile",
        "ISLAND_PROFILE_JSON": str(profile),
    }
    # the ansible-playbook of the venv running this script (.cache/venv), whatever PATH says
    playbook = str(Path(sys.executable).parent / "ansible-playbook")
    command = [playbook, "-i", str(inventory / "hosts.yml"), "playbooks/site.yml", *args]
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{name}: ansible-playbook failed (exit {proc.returncode}); see {log}")
    recap = re.findall(r"^\S+\s*: ok=\d+\s+changed=(\d+)", log.read_text(), re.MULTILINE)
    figures = json.loads(profile.read_text())
    return {
        "seconds": round(elapsed, 1),
        "changed": sum(map(int, recap)),
        "roles": figures["roles"],
        "hosts": figures.get("hosts", {}),
    }


def slope(points: list[tuple[int, float]]) -> float | None:
    """Least-squares seconds per agent."""
    if len({x for x, _ in points}) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


def verdict(value: float | None, target: float) -> str:
    if value is None:
        return "not measured"
    return f"{value:6.1f} s  (target <= {target:.0f} s: {'met' if value <= target else 'NOT met'})"


def measure(agents: int, keep: bool) -> dict:
    inventory = write_inventory(agents)
    print(f"== island with {agents} agent(s): hosts and bundle", flush=True)
    demo("prepare", inventory)
    try:
        runs = {"first": timed_run(inventory, "first")}
        runs["rerun"] = timed_run(inventory, "rerun")
        if runs["rerun"]["changed"]:
            raise SystemExit(f"the rerun with {agents} agent(s) changed {runs['rerun']['changed']} things")
        runs["check"] = timed_run(inventory, "check", "--check", "--diff")
        runs["changed"] = timed_run(inventory, "changed", "-e", CHANGED_SETTING)
        for name, run in runs.items():
            print(f"   {name:8s} {run['seconds']:7.1f} s, {run['changed']} changed", flush=True)
        return runs
    finally:
        if not keep:
            demo("down", inventory)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--agents", default="1", help="comma-separated agent counts (e.g. 1,4,8)")
    parser.add_argument("--keep", action="store_true", help="leave each island running")
    args = parser.parse_args()
    counts = sorted({int(n) for n in args.agents.split(",")})
    BENCH.mkdir(parents=True, exist_ok=True)
    results = {agents: measure(agents, args.keep) for agents in counts}

    base = results[counts[0]]
    per_agent = slope([(agents, runs["rerun"]["seconds"]) for agents, runs in results.items()])
    print(f"\nThe island with {counts[0]} agent(s), on {os.cpu_count()} cores:")
    print(f"  first converge          {verdict(base['first']['seconds'], TARGETS['first'])}")
    print(f"  zero-change rerun       {verdict(base['rerun']['seconds'], TARGETS['rerun'])}")
    print(f"  --check --diff          {verdict(base['check']['seconds'], TARGETS['check'])}")
    print(f"  rerun, one change       {base['changed']['seconds']:6.1f} s")
    print(f"  each added agent        {verdict(per_agent, TARGETS['per_agent'])} (rerun, agents {counts})")
    print("Zero-change rerun, seconds per role:")
    for role, seconds in base["rerun"]["roles"].items():
        print(f"  {seconds:7.1f}  {role}")
    agent = base["rerun"]["hosts"].get("agent1")
    if agent:
        # What each added agent costs comes from the task runs on it: each one is templated, run and
        # reported by the controller, whose two cores the hosts share.
        print(f"Zero-change rerun, task runs on one agent (agent1): {agent['runs']}")
        for role, runs in agent["roles"].items():
            print(f"  {runs:7d}  {role}")
    out = BENCH / "converge.json"
    out.write_text(json.dumps({"targets": TARGETS, "per_agent": per_agent, "islands": results}, indent=1))
    print(f"Figures: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
