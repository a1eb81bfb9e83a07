# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible's linear strategy, run over Mitogen when it is installed (ansible.cfg's default)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: island_linear
short_description: The linear strategy, over Mitogen's persistent interpreters when Mitogen is installed
description:
  - Runs each task on every host before the next task starts, as Ansible's C(linear) strategy does:
    the order, C(serial), C(throttle), handlers, check mode, diff and C(no_log) are linear's.
  - When the C(mitogen) package is installed on the controller (requirements.txt pins it), the hosts
    are reached through Mitogen (its C(mitogen_linear) strategy): one Python interpreter per host
    stays up for the whole run and receives each module as a call, instead of one SSH command, one
    Python start and one module archive per task. On the demo island this halves a zero-change
    rerun (docs/performance.md).
  - Without Mitogen it is Ansible's own C(linear), with a warning that says so once per run.
  - A play whose connection is C(local) (its C(connection) keyword, or C(-c local)) works on the
    controller alone, with no SSH to save, and runs as plain C(linear): under Mitogen 0.3.54 the
    docker modules' asynchronous tasks there (molecule's create and destroy) never finish.
  - To run without Mitogen although it is installed, set C(ANSIBLE_STRATEGY=linear) for the run.
version_added: "0.10.0"
author: island installer contributors
"""

from ansible.plugins.strategy.linear import StrategyModule as _Linear
from ansible.utils.display import Display

try:
    # mitogen 0.3.54 (BSD-3-Clause): its strategy mixes Mitogen's connection handling into linear.
    from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule as _Base

    MITOGEN = True
except ImportError:  # Mitogen is not installed: Ansible's own linear strategy.
    _Base = _Linear

    MITOGEN = False

display = Display()


class StrategyModule(_Base):
    def __init__(self, tqm):
        super().__init__(tqm)
        if not MITOGEN:
            display.warning(
                "island_linear: the mitogen package is not installed on the controller, so each task "
                "starts Python on each host again (a rerun takes about twice as long); install "
                "requirements.txt, or set ANSIBLE_STRATEGY=linear to silence this"
            )

    def run(self, iterator, play_context, result=0):
        if MITOGEN and iterator._play.connection == "local":
            return _Linear.run(self, iterator, play_context)
        return super().run(iterator, play_context)
