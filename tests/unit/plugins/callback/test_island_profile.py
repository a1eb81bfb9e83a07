"""The island_profile callback: wall time per role and task, as benchmarks/converge.py reads it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ansible_collections.island.installer.plugins.callback.island_profile import host_runs, role_times

ROOT = Path(__file__).resolve().parents[4]


def test_role_times_sum_each_roles_tasks_largest_first():
    tasks = [
        {"role": "dns", "task": "a", "seconds": 1.0},
        {"role": "k3s", "task": "b", "seconds": 2.5},
        {"role": "dns", "task": "c", "seconds": 2.0},
    ]
    assert list(role_times(tasks).items()) == [("dns", 3.0), ("k3s", 2.5)]


def test_host_runs_count_each_hosts_results_per_role():
    results = [("a1", "k3s"), ("a1", "pki"), ("a1", "k3s"), ("s1", "k3s")]
    assert host_runs(results) == {
        "a1": {"runs": 3, "roles": {"k3s": 2, "pki": 1}},
        "s1": {"runs": 1, "roles": {"k3s": 1}},
    }


def test_a_run_with_the_callback_writes_each_tasks_time_under_its_role(tmp_path):
    roles = tmp_path / "roles" / "slowrole" / "tasks"
    roles.mkdir(parents=True)
    (roles / "main.yml").write_text(
        "- name: The role waits a second\n  ansible.builtin.command: sleep 1\n  changed_when: false\n"
    )
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- name: Profiled\n  hosts: localhost\n  gather_facts: false\n  roles: [slowrole]\n"
        "  tasks:\n    - name: Outside any role\n      ansible.builtin.debug: {msg: hi}\n"
    )
    out = tmp_path / "profile.json"
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(tmp_path / "roles"),
        "ANSIBLE_CALLBACKS_ENABLED": "island.installer.island_profile",
        "ISLAND_PROFILE_JSON": str(out),
    }
    proc = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            str(playbook),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ISLAND PROFILE: wall time per role" in proc.stdout
    figures = json.loads(out.read_text())
    assert figures["roles"]["slowrole"] >= 1.0
    assert [t["task"] for t in figures["tasks"]] == ["slowrole : The role waits a second", "Outside any role"]
    assert figures["tasks"][1]["role"] == "play: Profiled"
    assert figures["hosts"] == {"localhost": {"runs": 2, "roles": {"slowrole": 1, "play: Profiled": 1}}}
