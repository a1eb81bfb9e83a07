"""`--check` on the gitea role writes nothing on the hosts (issue 15, item 17).

Ansible keeps a task from writing in check mode unless the task opts out (`check_mode: false`), or
it is a command or shell task that check mode skips. So the proof is over the task files the role
runs on a host (its own, and those it includes from common and pki): every task that opts out of
check mode either runs on the controller, or is one of the read-only probes named here, each with
the reason it writes nothing."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
TASK_FILES = [
    *sorted((ROOT / "roles" / "gitea" / "tasks").glob("*.yml")),
    ROOT / "roles" / "common" / "tasks" / "service.yml",
    ROOT / "roles" / "common" / "tasks" / "record.yml",
    ROOT / "roles" / "pki" / "tasks" / "issue.yml",
]

# Modules that only read, whatever their arguments.
READ_ONLY_MODULES = {
    "ansible.builtin.stat",
    "ansible.builtin.slurp",
    "ansible.builtin.wait_for",
    "ansible.builtin.assert",
    "ansible.builtin.debug",
    "ansible.builtin.set_fact",
}
# Commands that only read, by task name: `gitea admin user list` (a SELECT on the database);
# `gitea --version` (restore.yml compares it with the dump's before anything changes).
READ_ONLY_COMMANDS = {"Gitea's administrators are listed", "The Gitea on the host tells its version"}


def _tasks(items):
    for task in items or []:
        yield task
        for key in ("block", "rescue", "always"):
            yield from _tasks(task.get(key))


def _module(task):
    skip = {"name", "when", "loop", "loop_control", "register", "vars", "no_log", "check_mode",
            "changed_when", "failed_when", "until", "retries", "delay", "notify", "delegate_to",
            "run_once", "become", "tags", "listen", "block", "rescue", "always"}  # fmt: skip
    return next(k for k in task if k not in skip)


def _opting_out(path):
    return [t for t in _tasks(yaml.safe_load(path.read_text())) if t.get("check_mode") is False]


def test_every_task_that_runs_in_check_mode_on_a_host_only_reads():
    offenders = []
    for path in TASK_FILES:
        for task in _opting_out(path):
            module = _module(task)
            if task.get("delegate_to") == "localhost" or module in READ_ONLY_MODULES:
                continue
            if module == "ansible.builtin.uri" and task[module].get("method", "GET") == "GET":
                continue
            if module == "ansible.builtin.command" and task["name"] in READ_ONLY_COMMANDS:
                assert task.get("changed_when") is False, task["name"]
                continue
            offenders.append(f"{path.relative_to(ROOT)}: {task['name']} ({module})")
    assert offenders == [], "tasks that write on a host in check mode: " + "; ".join(offenders)


def test_the_seeding_preview_reads_the_bundle_on_the_controller_in_check_mode():
    tasks = yaml.safe_load((ROOT / "roles" / "gitea" / "tasks" / "seed.yml").read_text())
    seeding = [t for t in tasks if "island_gitea_seed" in t]
    on_host = [t for t in seeding if t.get("delegate_to") != "localhost"]
    preview = [t for t in seeding if t.get("delegate_to") == "localhost"]
    assert len(on_host) == 1 and len(preview) == 1
    assert "not ansible_check_mode" in on_host[0]["when"]
    assert preview[0]["when"].startswith("ansible_check_mode")
    assert preview[0]["island_gitea_seed"]["bundle"].startswith("{{ island_bundle_dir }}/")
    # No task copies anything to the host for the preview.
    assert not any("preview" in str(t.get("ansible.builtin.copy", {}).get("dest", "")) for t in tasks)
