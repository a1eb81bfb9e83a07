#!/usr/bin/env python3
"""Benchmark: what one task on a container costs through `docker exec` against SSH.

    .cache/venv/bin/python benchmarks/connection.py [--hosts 4] [--tasks 20] [--rounds 2]

The molecule scenarios reach their instances over SSH (.config/molecule/config.yml) rather than
with community.docker's `docker` connection: this measures why. It starts N instances of the test
image (as the scenarios do: systemd, sshd, the controller's key as root's authorized_keys) on an
internal docker network of its own, then runs the same playbook of trivial tasks (`command: true`)
on all of them, alternately through each connection, `--rounds` times, with ansible-core 2.18 (the
scenarios' venv). The figures are the best round's wall time and the CPU the whole machine spent
during it (from /proc/stat: the controller, docker's daemon and runc, sshd and the modules), per
task and host, and the ratio. The instances and the network are removed at the end. Needs the
docker engine and the test image (tools/test.sh sets both up). Not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
NETWORK = "island-bench-conn"
SUBNET = "10.77.250"  # .0/24; a subnet no scenario uses (they take 10.77.1-10)
IMAGE = os.environ.get("ISLAND_TEST_IMAGE", "island-test:latest")
BINDIR = CACHE / "molecule-venv" / "bin"
KEY = CACHE / "ssh" / "id_ed25519"


def docker(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise SystemExit(f"docker {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def busy_seconds() -> float:
    """CPU time the whole machine has spent busy so far (user, nice, system, irq, softirq)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(value) for value in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def start_hosts(count: int) -> list[tuple[str, str]]:
    docker("network", "create", "--internal", "--subnet", f"{SUBNET}.0/24", NETWORK)
    hosts = []
    for index in range(count):
        name, address = f"{NETWORK}-{index + 1}", f"{SUBNET}.{index + 10}"
        docker(
            "run",
            "-d",
            "--name",
            name,
            "--hostname",
            name,
            "--network",
            NETWORK,
            "--ip",
            address,
            "--cap-add",
            "SYS_ADMIN",
            "--cap-add",
            "NET_ADMIN",
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "apparmor=unconfined",
            "--cgroupns",
            "host",
            "-v",
            "/sys/fs/cgroup:/sys/fs/cgroup:rw",
            "--tmpfs",
            "/run",
            "--tmpfs",
            "/run/lock",
            "-v",
            f"{KEY}.pub:/root/.ssh/authorized_keys:ro",
            IMAGE,
        )
        hosts.append((name, address))
    return hosts


def known_hosts(hosts: list[tuple[str, str]], path: Path) -> None:
    """Each instance's host key, read through docker once sshd has made it."""
    lines = []
    for name, address in hosts:
        for _ in range(60):
            key = docker("exec", name, "cat", "/etc/ssh/ssh_host_ed25519_key.pub", check=False)
            if key:
                break
            time.sleep(1)
        else:
            raise SystemExit(f"{name} made no SSH host key within 60 s; see: docker logs {name}")
        lines.append(f"{address} {key}")
    path.write_text("\n".join(lines) + "\n")


def inventory(hosts: list[tuple[str, str]], known: Path) -> str:
    lines = ["[docker]"] + [f"{name} ansible_connection=community.docker.docker" for name, _ in hosts]
    ssh_args = f"-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes"
    lines += ["[ssh]"] + [f"{name}-ssh ansible_host={address}" for name, address in hosts]
    lines += [
        "[ssh:vars]",
        "ansible_connection=ssh",
        "ansible_user=root",
        f"ansible_ssh_private_key_file={KEY}",
        f"ansible_ssh_common_args='{ssh_args}'",
    ]
    return "\n".join(lines) + "\n"


def playbook(tasks: int) -> str:
    lines = [
        "- hosts: '{{ target }}'",
        "  gather_facts: false",
        "  vars: {ansible_python_interpreter: /usr/bin/python3}",
        "  tasks:",
    ]
    for i in range(tasks):
        lines += [f"    - name: task {i}", "      ansible.builtin.command: 'true'"]
        lines += ["      changed_when: false"]
    return "\n".join(lines) + "\n"


def run(target: str, inventory_file: Path, book: Path) -> tuple[float, float]:
    # community.docker comes from the `ansible` package in .cache/venv, as for the scenarios
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    python = str(CACHE / "venv" / "bin" / "python3")
    collections = subprocess.run([python, "-c", purelib], capture_output=True, text=True, check=True).stdout
    collections = collections.strip()
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": collections}
    command = [str(BINDIR / "ansible-playbook"), "-i", str(inventory_file), "-e", f"target={target}"]
    command.append(str(book))
    cpu, start = busy_seconds(), time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"the {target} run failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return wall, busy_seconds() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if not (BINDIR / "ansible-playbook").exists() or not KEY.exists():
        raise SystemExit("no .cache/molecule-venv or .cache/ssh key: run `tools/test.sh molecule pki` first")
    docker("rm", "-f", *(f"{NETWORK}-{i + 1}" for i in range(args.hosts)), check=False)
    docker("network", "rm", NETWORK, check=False)
    results = {}
    try:
        hosts = start_hosts(args.hosts)
        with tempfile.TemporaryDirectory() as tmp:
            names = ("known_hosts", "hosts.ini", "tasks.yml")
            known, inventory_file, book = (Path(tmp) / name for name in names)
            known_hosts(hosts, known)
            inventory_file.write_text(inventory(hosts, known))
            book.write_text(playbook(args.tasks))
            rounds = {"docker": [], "ssh": []}
            for _ in range(args.rounds):
                for target, figures in rounds.items():
                    figures.append(run(target, inventory_file, book))
            per = args.tasks * args.hosts
            for target, figures in rounds.items():
                wall, cpu = min(figures)
                results[target] = (wall, cpu)
                print(
                    f"{target:6}: {wall:6.1f} s wall, {cpu:6.1f} s CPU "
                    f"for {args.tasks} tasks on {args.hosts} hosts "
                    f"({wall / args.tasks * 1000:5.0f} ms wall per task, "
                    f"{cpu / per * 1000:4.0f} ms CPU per task and host)"
                )
    finally:
        docker("rm", "-f", *(f"{NETWORK}-{i + 1}" for i in range(args.hosts)), check=False)
        docker("network", "rm", NETWORK, check=False)
    (docker_wall, docker_cpu), (ssh_wall, ssh_cpu) = results["docker"], results["ssh"]
    print(
        f"docker exec / ssh: {docker_wall / ssh_wall:.2f}x wall, {docker_cpu / ssh_cpu:.2f}x CPU "
        f"({os.cpu_count()} cores, ansible-core 2.18)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
