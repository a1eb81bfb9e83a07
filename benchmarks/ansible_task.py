#!/usr/bin/env python3
"""Benchmark: what one task costs on this machine, ansible-core 2.19 against 2.18.

    .cache/venv/bin/python benchmarks/ansible_task.py [--tasks 40] [--rounds 3]

The molecule scenarios run on ansible-core 2.18 (.cache/molecule-venv, requirements-molecule.txt)
and everything else on 2.19 (.cache/venv): this measures why. Each version runs the same playbook
of N trivial tasks (`command: true`, the local connection, no facts) `--rounds` times; the figure
is the best round's wall time and the CPU time of the run (the controller, its workers and the
modules), per task. Both virtual environments come from tools/lib/setup.sh (tools/test.sh sets
them up). Not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = {
    "ansible-core 2.19 (.cache/venv)": ROOT / ".cache" / "venv" / "bin",
    "ansible-core 2.18 (.cache/molecule-venv)": ROOT / ".cache" / "molecule-venv" / "bin",
}


def playbook(tasks: int) -> str:
    lines = ["- hosts: localhost", "  gather_facts: false", "  connection: local", "  tasks:"]
    for i in range(tasks):
        lines += [f"    - name: task {i}", "      ansible.builtin.command: 'true'"]
        lines += ["      changed_when: false"]
    return "\n".join(lines) + "\n"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(bindir: Path, book: Path) -> tuple[float, float]:
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    command = [str(bindir / "ansible-playbook"), "-i", "localhost,", str(book)]
    command += ["-e", "ansible_python_interpreter=/usr/bin/python3"]
    cpu, start = children_cpu(), time.perf_counter()
    proc = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{bindir}/ansible-playbook failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return wall, children_cpu() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    missing = [str(b) for b in VERSIONS.values() if not (b / "ansible-playbook").exists()]
    if missing:
        raise SystemExit(f"no ansible-playbook in {', '.join(missing)}: run tools/test.sh lint to set up")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        book = Path(tmp) / "tasks.yml"
        book.write_text(playbook(args.tasks))
        for name, bindir in VERSIONS.items():
            rounds = [run(bindir, book) for _ in range(args.rounds)]
            wall, cpu = min(rounds)
            results[name] = (wall / args.tasks, cpu / args.tasks)
            per_wall, per_cpu = wall / args.tasks * 1000, cpu / args.tasks * 1000
            print(f"{name}: {per_wall:6.0f} ms wall, {per_cpu:6.0f} ms CPU per task")
    (new_wall, new_cpu), (old_wall, old_cpu) = results.values()
    ratios = f"{new_wall / old_wall:.2f}x wall, {new_cpu / old_cpu:.2f}x CPU"
    print(f"2.19 / 2.18 per task: {ratios} ({os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
