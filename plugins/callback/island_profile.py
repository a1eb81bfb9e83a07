# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a run's time goes: wall time per role and per task, measured as the run happens."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: island_profile
type: aggregate
short_description: Wall time per role and per task of a playbook run, as a table and as JSON
description:
  - Measures the wall time of every task from its start to the start of the next task (with the
    linear strategy every host finishes a task before the next one starts, so this is the time the
    operator waits for it), and sums it per role (tasks outside a role count under their play).
  - Counts the task runs on each host (every result, skipped ones too, as each costs the controller
    templating and a worker), per role, which is what each added host costs a rerun.
  - At the end of the run prints the slowest roles and tasks, and writes every figure as JSON when
    C(output_path) is set. C(benchmarks/converge.py) reads that JSON.
  - Enable it for one run with C(ANSIBLE_CALLBACKS_ENABLED=island.installer.island_profile).
version_added: "0.3.0"
author: island installer contributors
options:
  output_path:
    description: Where to write the figures as JSON (nothing is written when unset).
    type: path
    env:
      - name: ISLAND_PROFILE_JSON
  top:
    description: How many roles and tasks the printed table shows.
    type: int
    default: 12
    env:
      - name: ISLAND_PROFILE_TOP
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


def role_times(tasks):
    """Seconds per role from [{"role": ..., "seconds": ...}], largest first."""
    totals = {}
    for task in tasks:
        totals[task["role"]] = totals.get(task["role"], 0.0) + task["seconds"]
    return {role: round(seconds, 3) for role, seconds in sorted(totals.items(), key=lambda item: -item[1])}


def host_runs(results):
    """Task runs per host and per role from [(host, role)], each host's roles largest first."""
    hosts = {}
    for host, role in results:
        roles = hosts.setdefault(host, {})
        roles[role] = roles.get(role, 0) + 1
    return {
        host: {"runs": sum(roles.values()), "roles": dict(sorted(roles.items(), key=lambda item: -item[1]))}
        for host, roles in sorted(hosts.items())
    }


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "island.installer.island_profile"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._started = time.monotonic()
        self._play = ""
        self._tasks = []  # {"role", "task", "seconds"}, in run order
        self._current = None  # (role, task name, start)
        self._results = []  # (host, role) of every task result

    def _result(self, result):
        task = result._task
        role = task._role.get_name() if task._role else f"play: {self._play}"
        self._results.append((result._host.get_name(), role))

    def v2_runner_on_ok(self, result):
        self._result(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result)

    def v2_runner_on_skipped(self, result):
        self._result(result)

    def v2_runner_on_unreachable(self, result):
        self._result(result)

    def _close_current(self):
        if self._current is not None:
            role, name, start = self._current
            self._tasks.append({"role": role, "task": name, "seconds": round(time.monotonic() - start, 3)})
            self._current = None

    def _start(self, task):
        self._close_current()
        role = task._role.get_name() if task._role else f"play: {self._play}"
        self._current = (role, task.get_name(), time.monotonic())

    def v2_playbook_on_play_start(self, play):
        self._close_current()
        self._play = play.get_name()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._start(task)

    def v2_playbook_on_stats(self, stats):
        self._close_current()
        total = round(time.monotonic() - self._started, 3)
        roles = role_times(self._tasks)
        top = self.get_option("top")
        self._display.banner("ISLAND PROFILE: wall time per role")
        for role, seconds in list(roles.items())[:top]:
            self._display.display(f"{seconds:8.1f} s  {role}")
        self._display.banner("ISLAND PROFILE: slowest tasks")
        for task in sorted(self._tasks, key=lambda t: -t["seconds"])[:top]:
            # Ansible names a role's task "<role> : <name>" already; a play's task gets its play.
            where = (
                "" if task["role"] and task["task"].startswith(f"{task['role']} : ") else f"{task['role']} : "
            )
            self._display.display(f"{task['seconds']:8.1f} s  {where}{task['task']}")
        self._display.display(f"{total:8.1f} s  the whole run, {len(self._tasks)} tasks")
        path = self.get_option("output_path")
        if path:
            tmp = f"{path}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                figures = {"total_seconds": total, "roles": roles, "tasks": self._tasks}
                figures["hosts"] = host_runs(self._results)
                json.dump(figures, handle, indent=1)
            os.replace(tmp, path)
