# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible's linear strategy, run over Mitogen when it is installed (ansible.cfg's default)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: island_linear
short_description: The linear strategy, over Mitogen's persistent interpreters when Mitogen is installed
description:
  - Runs each task on every host before the next task starts, as Ansible's C(linear) strategy does;
    the order, C(serial), C(throttle), handlers, check mode, diff and C(no_log) are linear's.
  - When the C(mitogen) package is installed on the controller (requirements.txt pins it), the hosts
    are reached through Mitogen (its C(mitogen_linear) strategy) - one Python interpreter per host
    stays up for the whole run and receives each module as a call, instead of one SSH command, one
    Python start and one module archive per task. On the demo island this halves a zero-change
    rerun (docs/performance.md).
  - Without Mitogen it is Ansible's own C(linear), with a warning that says so once per run.
  - A play whose connection is C(local) (its C(connection) keyword, or C(-c local)) works on the
    controller alone, with no SSH to save, and runs as plain C(linear); under Mitogen 0.3.54 the
    docker modules' asynchronous tasks there (molecule's create and destroy) never finish.
  - To run without Mitogen although it is installed, set C(ANSIBLE_STRATEGY=linear) for the run.
  - Before the first play it imports this collection's filter, test and action plugins and their
    module_utils, and Ansible's own filters and tests, once, in the controller's main process. Each
    task on each host runs in a process forked from it, and Ansible's collection loader compiles a
    collection's Python from source, with no bytecode cache, so without this every fork compiled
    again each filter its templates named (on a zero-change rerun of the demo island, about a
    quarter of the controller's work), and wrapped every Ansible filter again.
  - Under Mitogen it also keeps one compiled copy of each file Mitogen's module finder reads. The
    finder (ansible_mitogen/module_finder.py, mitogen 0.3.x) compiles a module and every
    module_utils it imports, from source, for each module it is asked about, so
    ansible.module_utils.basic and its imports were compiled again for every distinct module of a
    run. The same file and source always give the same code object, so results are unchanged.
  - A task whose C(when) is false on a host is decided in the controller's main process, with the
    same variables, play context and evaluation a worker uses, and its result (the worker's skipped
    result, byte for byte) goes through the results queue as a worker's would, so the callbacks,
    C(register), handlers and the recap are unchanged. Only the fork is saved - on a zero-change rerun
    of the demo island about a third of all task runs are skipped ones, and a fork cost about 2/3
    of a task that runs (docs/performance.md). A task with a loop (its C(when) is per item) or a
    delegation, a condition that is true, raises, or warns, goes to a worker as before, which then
    decides and reports it.
  - Likewise a task of an action that works on the controller alone and ends at once
    (C(set_fact), C(assert), C(debug), a role's C(validate_argument_spec), and C(include_tasks) and
    C(include_role), whose executor only names what the strategy then includes) runs in the main
    process, by Ansible's own TaskExecutor as a worker runs it, on a copy of the task (a worker's is
    its fork's), and its result goes through the results queue. Not with a loop, C(until),
    C(delegate_to), C(async) or C(timeout), which go to a worker. About a quarter of a rerun's task
    runs on an agent are of these actions.
  - C(ISLAND_IN_PROCESS=0) turns both off for a run.
version_added: "0.10.0"
author: island installer contributors
"""

import importlib
import os
from pathlib import Path

from ansible.executor.task_executor import TaskExecutor
from ansible.plugins import loader as plugin_loader
from ansible.plugins.loader import filter_loader, test_loader
from ansible.plugins.strategy.linear import StrategyModule as _Linear
from ansible.utils.display import Display

try:
    # mitogen 0.3.54 (BSD-3-Clause): its strategy mixes Mitogen's connection handling into linear.
    from ansible_mitogen import module_finder as _module_finder
    from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule as _Base

    MITOGEN = True
except ImportError:  # Mitogen is not installed: Ansible's own linear strategy.
    _Base = _Linear
    _module_finder = None

    MITOGEN = False

try:  # ansible-core 2.19: the template engine, the task context and the result a worker sends
    from ansible._internal import _task as _task_context
    from ansible._internal._display_utils import DeferredWarningContext
    from ansible._internal._templating._engine import TemplateEngine as _Templar
    from ansible.executor.task_result import _RawTaskResult

    CORE_219 = True
except ImportError:  # ansible-core 2.16-2.18
    from ansible.template import Templar as _Templar

    CORE_219 = False

display = Display()

# This collection's plugin directories whose Python the forks of the main process would otherwise
# each compile again (see the description).
_PRELOADED = ("filter", "test", "action")


def share_mitogen_compiles():
    """Make Mitogen's module finder compile each (name, source) once per process (see the
    description). Called before Mitogen forks its connection multiplexer, which does the scanning,
    so the multiplexer inherits it. Returns True when the finder is there to patch."""
    module_finder = _module_finder
    if module_finder is None:
        return False
    if getattr(module_finder, "_island_compiled", None) is not None:
        return True
    compiled = {}

    def compile_once(source, filename, mode, *args, **kwargs):
        if args or kwargs:
            return compile(source, filename, mode, *args, **kwargs)
        key = (filename, mode, source)
        code = compiled.get(key)
        if code is None:
            code = compiled[key] = compile(source, filename, mode)
        return code

    # module_finder calls compile() by its global name (mitogen 0.3.x: get_code and
    # _scan_importlib_find_spec); a module global of that name is found before the builtin.
    module_finder.compile = compile_once
    module_finder._island_compiled = compiled
    return True


def preload_collection_plugins():
    """Import this collection's filter, test and action plugins (and the module_utils they import)
    in this process, so the forks that run the tasks find them compiled in sys.modules, where
    Ansible's plugin loader looks first (ansible-core 2.16-2.19, PluginLoader._load_module_source).
    Returns the names imported (a second call finds them in sys.modules and costs nothing)."""
    package = "ansible_collections.island.installer.plugins"
    try:
        # a namespace package (no __init__.py) under the collection loader and under pytest alike
        plugins_dir = Path(next(iter(importlib.import_module(package).__path__)))
    except ImportError:  # the collection is not on the collections path: nothing to preload
        return []
    names = []
    for kind in _PRELOADED:
        for path in sorted((plugins_dir / kind).glob("*.py")):
            if path.name == "__init__.py":
                continue
            name = f"{package}.{kind}.{path.stem}"
            try:
                importlib.import_module(name)
            except Exception as exc:  # the fork loads it again and reports its error there
                display.vvv(f"island_linear: {name} not preloaded: {exc}")
                continue
            names.append(name)
    # Ansible's own filters and tests: the Jinja plugin loader wraps every one of them the first
    # time a process templates (Jinja2Loader._ensure_non_collection_wrappers, ansible-core 2.19),
    # which each fork did again.
    for loader in (filter_loader, test_loader):
        try:
            for _plugin in loader.all():
                pass
        except Exception as exc:  # the forks load them as before and report an error there
            display.vvv(f"island_linear: {loader.type} plugins not preloaded: {exc}")
    return names


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
        preload_collection_plugins()
        if MITOGEN:
            share_mitogen_compiles()
        if MITOGEN and iterator._play.connection == "local":
            return _Linear.run(self, iterator, play_context)
        return super().run(iterator, play_context)

    def _queue_task(self, host, task, task_vars, play_context):
        fields = None
        result = skipped_result(host, task, task_vars, play_context, self._loader)
        if result is None and in_process(task):
            result, fields = self._execute_here(host, task, task_vars, play_context)
        if result is None:
            return super()._queue_task(host, task, task_vars, play_context)
        # What StrategyBase._queue_task records, and what a worker sends, without the worker.
        self._queued_task_cache[(host.name, task._uuid)] = {
            "host": host,
            "task": task,
            "task_vars": task_vars,
            "play_context": play_context,
        }
        self._tqm.send_callback("v2_runner_on_start", host, task)
        if fields is None:
            fields = task.dump_attrs()
        if CORE_219:
            self._final_q.send_task_result(
                _RawTaskResult(host=host, task=task, return_data=result, task_fields=fields)
            )
        else:
            self._final_q.send_task_result(host.name, task._uuid, result, task_fields=fields)
        self._pending_results += 1
        return None

    def _execute_here(self, host, task, task_vars, play_context):
        """Run `task` on `host` with Ansible's TaskExecutor in this process, as a worker runs it
        (WorkerProcess._run, ansible-core 2.16-2.19): on a copy of the task, since the executor
        finalises the task it runs, and of the variables it may add to. Returns the result and the
        run task's fields, as a worker sends them."""
        copy = task.copy()
        variables = task_vars.copy()
        if CORE_219:
            with _task_context.TaskContext(copy):
                result = TaskExecutor(
                    host,
                    copy,
                    variables,
                    play_context,
                    self._loader,
                    plugin_loader.get_plugin_loader_namespace(),
                    self._final_q,
                    self._variable_manager,
                ).run()
        else:
            with open(os.devnull, encoding="utf-8") as stdin:
                result = TaskExecutor(
                    host,
                    copy,
                    variables,
                    play_context,
                    stdin,
                    self._loader,
                    plugin_loader,
                    self._final_q,
                    self._variable_manager,
                ).run()
        return result, copy.dump_attrs()


# Actions that work on the controller alone and end at once. An include's executor only returns what
# to include (TaskExecutor._execute_internal): the strategy, in this process either way, includes it.
_IN_PROCESS_ACTIONS = frozenset(
    f"{prefix}{name}"
    for prefix in ("", "ansible.builtin.", "ansible.legacy.")
    for name in ("set_fact", "assert", "debug", "validate_argument_spec", "include_tasks", "include_role")
)


def in_process(task):
    """Whether `task` runs in the main process (the description says which and why)."""
    if os.environ.get("ISLAND_IN_PROCESS", "1") == "0":
        return False
    return (
        task.action in _IN_PROCESS_ACTIONS
        and task.loop is None
        and not task.loop_with
        and not task.until
        and not task.delegate_to
        and not task.async_val
        and not getattr(task, "timeout", None)
    )


def skipped_result(host, task, task_vars, play_context, loader):
    """The result a worker would send for `task` on `host` when its `when` is false there, or None
    when the task must go to a worker: no condition, a loop (the condition is per item), a delegation
    (the condition sees the delegated host's variables), a true condition, or any error or warning
    while deciding (the worker then decides again and reports it as it always has).

    The steps are TaskExecutor._execute_internal's up to its skip (ansible-core 2.16-2.19): the play
    context with the task's and the host's overrides, its magic variables added to a copy of the
    task's variables, the condition evaluated with them; then the result as _execute and run finish
    it (the `_ansible_no_log` flag, `changed`)."""
    if os.environ.get("ISLAND_IN_PROCESS", "1") == "0":
        return None
    if not task.when or task.loop is not None or task.loop_with or task.delegate_to:
        return None
    try:
        templar = _Templar(loader=loader, variables=task_vars)
        tempvars = task_vars.copy()
        context = play_context.set_task_and_variable_override(task=task, variables=task_vars, templar=templar)
        context.post_validate(templar=templar)
        if not context.remote_addr:
            context.remote_addr = host.address
        context.update_vars(tempvars)
        decide = _decide_219 if CORE_219 else _decide_216
        return decide(task, templar, task_vars, tempvars, context)
    except Exception as exc:  # the worker decides, and reports the error as it always has
        display.vvvv(f"island_linear: {task.get_name()} on {host.name} left to a worker: {exc}")
        return None


def _decide_219(task, templar, task_vars, tempvars, _context):
    """ansible-core 2.19: the skip as TaskExecutor._execute returns it, or None."""
    false_condition = {}
    with _task_context.TaskContext(task), DeferredWarningContext(variables=task_vars) as warnings:
        holds = task._resolve_conditional(task.when, tempvars, result_context=false_condition)
        if holds or warnings.get_warnings() or warnings.get_deprecation_warnings():
            return None
        result = dict(changed=False, skipped=True, skip_reason="Conditional result was False")
        result |= false_condition
        task.update_result_no_log(templar, result)
    return result


def _decide_216(task, templar, _task_vars, tempvars, context):
    """ansible-core 2.16-2.18: the skip as TaskExecutor._execute returns it, or None."""
    evaluate = getattr(task, "evaluate_conditional_with_result", None)
    if evaluate is None:  # an ansible-core this was not written against: the worker decides
        return None
    holds, false_condition = evaluate(templar, tempvars)
    if holds:
        return None
    return dict(
        changed=False,
        skipped=True,
        skip_reason="Conditional result was False",
        false_condition=false_condition,
        _ansible_no_log=context.no_log,
    )
