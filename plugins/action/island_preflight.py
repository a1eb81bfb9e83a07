# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action island_preflight: the module on the host, framed by the controller's clock, and the
host's problems as one failure naming it (docs: plugins/modules/island_preflight.py)."""

from __future__ import annotations

import time

from ansible.plugins.action import ActionBase
from ansible_collections.island.installer.plugins.module_utils.island_preflight import check_clock

# Options of this action, not of the module (the module is called without them).
_ACTION_ARGS = ("clock_skew_bound", "fail_on_problems")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        module_args = {key: value for key, value in self._task.args.items() if key not in _ACTION_ARGS}
        bound = self._task.args.get("clock_skew_bound")
        host = (task_vars or {}).get("inventory_hostname", "this host")
        # The controller's time just before the module is sent and just after its answer: the host's
        # clock must fall between them, give or take the bound, so a controller slowed by load widens
        # the window instead of counting its own delay as skew.
        sent = time.time()
        outcome = self._execute_module(
            module_name=self._task.action, module_args=module_args, task_vars=task_vars
        )
        answered = time.time()
        result.update(outcome)
        if outcome.get("failed") or "problems" not in outcome:
            return result
        problems = list(outcome["problems"])
        host_time = (outcome.get("facts") or {}).get("host_time")
        if bound is not None and host_time is not None:
            host_time = float(host_time)
            skew = max(host_time - answered, 0.0) + min(host_time - sent, 0.0)
            result["facts"] = {**outcome["facts"], "clock_skew_seconds": round(skew, 3)}
            # the module's own check and message, given the skew measured here
            problems += check_clock(skew, 0.0, float(bound))[0]
        result["problems"] = problems
        if problems and self._task.args.get("fail_on_problems", False):
            result["failed"] = True
            result["msg"] = f"preflight on {host}: {'; '.join(problems)}"
        return result
