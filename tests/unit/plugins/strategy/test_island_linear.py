"""The island_linear strategy: linear over Mitogen when it is installed, Ansible's linear otherwise."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
PLUGIN = ROOT / "plugins" / "strategy" / "island_linear.py"


def run_playbook(
    tmp_path: Path, strategy: str | None, local_play: bool = False
) -> subprocess.CompletedProcess:
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- name: Which interpreter runs the modules\n"
        "  hosts: localhost\n" + ("  connection: local\n" if local_play else "") + "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: The module's parent process is read\n"
        "      ansible.builtin.shell: >-\n"
        "        tr '\\0' ' ' < /proc/$PPID/cmdline; echo;\n"
        "        tr '\\0' ' ' < /proc/$(ps -o ppid= -p $PPID | tr -d ' ')/cmdline\n"
        "      register: parent\n"
        "      changed_when: false\n"
        "    - name: It is shown\n"
        "      ansible.builtin.debug: {var: parent.stdout}\n"
    )
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    env.pop("ANSIBLE_STRATEGY", None)
    if strategy:
        env["ANSIBLE_STRATEGY"] = strategy
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            # the connection as a variable, not -c: a play whose connection is local runs plain linear
            *("-i", "localhost,", "-e", "ansible_connection=local"),
            *("-e", f"ansible_python_interpreter={sys.executable}"),
            str(playbook),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_project_runs_its_modules_in_mitogens_persistent_interpreter(tmp_path):
    run = run_playbook(tmp_path, None)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "mitogen" in run.stdout.lower()
    assert "mitogen package is not installed" not in run.stdout + run.stderr


def test_a_play_with_connection_local_runs_without_mitogen(tmp_path):
    # molecule's docker driver creates and destroys its instances in such plays, with asynchronous
    # tasks that never finish under Mitogen 0.3.54
    run = run_playbook(tmp_path, None, local_play=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "mitogen" not in run.stdout.lower()


def test_ansible_strategy_linear_runs_without_mitogen(tmp_path):
    run = run_playbook(tmp_path, "linear")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "mitogen" not in run.stdout.lower()


def test_without_the_mitogen_package_it_is_ansibles_linear_with_a_warning():
    # ansible_mitogen made unimportable (None in sys.modules), the plugin loaded from its file.
    code = textwrap.dedent(
        f"""\
        import importlib.util, sys
        sys.modules["ansible_mitogen"] = None
        spec = importlib.util.spec_from_file_location("island_linear", {str(PLUGIN)!r})
        plugin = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(plugin)
        from ansible.plugins.strategy.linear import StrategyModule as Linear
        assert plugin.MITOGEN is False
        assert plugin.StrategyModule.__mro__[1] is Linear, plugin.StrategyModule.__mro__
        print("fallback ok")
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "fallback ok" in run.stdout


def test_with_mitogen_installed_the_strategy_carries_mitogens_mixin():
    from ansible.plugins.strategy.linear import StrategyModule as Linear
    from ansible_mitogen.strategy import StrategyMixin

    code = textwrap.dedent(
        f"""\
        import importlib.util
        spec = importlib.util.spec_from_file_location("island_linear", {str(PLUGIN)!r})
        plugin = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(plugin)
        print(plugin.MITOGEN, [c.__module__ + "." + c.__name__ for c in plugin.StrategyModule.__mro__])
        """
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("True")
    assert f"{StrategyMixin.__module__}.StrategyMixin" in run.stdout
    assert f"{Linear.__module__}.StrategyModule" in run.stdout


def test_the_collections_filters_and_actions_are_imported_once_before_the_forks():
    # The tasks run in forks of the main process; what it imported they find in sys.modules instead
    # of compiling it again from source in every fork (Ansible's collection loader keeps no bytecode).
    spec = importlib.util.spec_from_file_location("island_linear_preload", PLUGIN)
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    names = plugin.preload_collection_plugins()
    expected = {
        f"ansible_collections.island.installer.plugins.{kind}.{path.stem}"
        for kind in ("filter", "action")
        for path in (ROOT / "plugins" / kind).glob("*.py")
        if path.name != "__init__.py"
    }
    assert expected and expected <= set(names)
    assert all(name in sys.modules for name in names)
    # module_utils a filter imports come with it
    assert "ansible_collections.island.installer.plugins.module_utils.island_bundle_debs" in sys.modules


def test_mitogens_module_finder_compiles_each_file_once_and_finds_the_same_imports():
    from ansible_mitogen import module_finder

    spec = importlib.util.spec_from_file_location("island_linear_compiles", PLUGIN)
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    module_path = ROOT / "plugins" / "modules" / "island_install.py"
    search_path = (str(ROOT / "plugins" / "module_utils"),)
    before = module_finder.scan("ansible_module_island_install", str(module_path), search_path)
    assert plugin.share_mitogen_compiles()
    first = module_finder.scan("ansible_module_island_install", str(module_path), search_path)
    again = module_finder.scan("ansible_module_island_install", str(module_path), search_path)
    assert first == again == before
    source = b"import os\n"
    assert module_finder.compile(source, "x", "exec") is module_finder.compile(source, "x", "exec")
    assert module_finder.compile(b"import sys\n", "x", "exec") is not module_finder.compile(
        source, "x", "exec"
    )


SKIP_PLAY = """\
- name: Tasks whose condition is false on a host
  hosts: all
  gather_facts: false
  handlers:
    - name: A handler false on every host
      ansible.builtin.debug: {msg: never}
      when: inventory_hostname == 'nobody'
  tasks:
    # who evaluated the condition: the pipe lookup's parent is the process that templated it
    - name: Skipped on a, run on b
      ansible.builtin.command: /bin/true
      register: r_plain
      changed_when: false
      when: (lookup('ansible.builtin.pipe', 'echo $PPID >> @RECORD@') != '') or inventory_hostname == 'b'
    - name: Skipped with no_log
      ansible.builtin.debug: {msg: secret}
      register: r_no_log
      no_log: true
      when: r_plain is not skipped and inventory_hostname == 'a'
    - name: A block false on a
      when: inventory_hostname == 'b'
      block:
        - name: First in the block
          ansible.builtin.set_fact: {block_first: 1}
        - name: Second in the block
          ansible.builtin.command: /bin/true
          register: r_block
          changed_when: true
          notify: A handler false on every host
    - name: An include false everywhere
      ansible.builtin.include_tasks: missing-file-never-read.yml
      when: inventory_hostname == 'nobody'
    - name: Once, false
      ansible.builtin.debug: {msg: once}
      register: r_once
      run_once: true
      when: inventory_hostname == 'nobody'
    - name: A loop decides per item, in a worker
      ansible.builtin.debug: {msg: "{{ item }}"}
      register: r_loop
      loop: [1, 2]
      when: item == 2
    - name: Delegated, false on a
      ansible.builtin.debug: {msg: delegated}
      register: r_delegated
      delegate_to: b
      when: inventory_hostname == 'b'
    - name: The connection's own variables are seen as a worker sees them
      ansible.builtin.debug: {msg: "{{ ansible_connection }}"}
      register: r_magic
      when: ansible_connection != 'local'
    - name: A condition that fails is the worker's to report
      ansible.builtin.debug: {msg: x}
      register: r_error
      ignore_errors: true
      when: undefined_variable_here | bool
    # actions of the controller alone, run in the main process
    - name: A fact, and which process templated it
      ansible.builtin.set_fact:
        fact_here: "{{ inventory_hostname }}-fact"
        fact_pid: "{{ lookup('ansible.builtin.pipe', 'echo $PPID') }}"
      register: r_fact
    - name: An assertion that holds
      ansible.builtin.assert:
        that: fact_here == inventory_hostname ~ '-fact'
        quiet: true
      register: r_assert
    - name: An assertion that fails on a, secret
      ansible.builtin.assert:
        that: inventory_hostname == 'b'
        fail_msg: "{{ inventory_hostname }} is not b"
      register: r_assert_fails
      ignore_errors: true
      no_log: true
    - name: A variable shown
      ansible.builtin.debug: {var: fact_here}
      register: r_debug
    - name: A role's arguments validated, and refused
      block:
        - name: The role with good arguments
          ansible.builtin.include_role: {name: checked}
          vars: {checked_count: 3}
        - name: The role with a bad one
          ansible.builtin.include_role: {name: checked}
          vars: {checked_count: many}
      rescue:
        - name: The refusal is kept
          ansible.builtin.set_fact:
            r_refused: "{{ ansible_failed_result }}"
    - name: A file included on b
      ansible.builtin.include_tasks: included.yml
      when: inventory_hostname == 'b'
    - name: What each host registered is written
      ansible.builtin.copy:
        content: "{{ {'plain': r_plain, 'no_log': r_no_log, 'block': r_block | default(none), 'once': r_once,
                      'loop': r_loop, 'delegated': r_delegated, 'magic': r_magic,
                      'error': r_error, 'fact': r_fact, 'assert': r_assert, 'assert_fails': r_assert_fails,
                      'debug': r_debug, 'checked': r_checked, 'refused': r_refused,
                      'facts': [fact_here], 'included': r_included | default(none)} | to_nice_json }}"
        dest: "@OUT@/{{ inventory_hostname }}.json"
        mode: "0644"
"""


def untimed(value):
    """A registered result without the times a command reports (they differ between any two runs)
    and the pid of the process that templated a fact."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items() if k not in ("start", "end", "delta", "fact_pid")}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    return value


def run_skips(tmp_path: Path, in_process: bool) -> tuple[subprocess.Popen, str, str]:
    out = tmp_path / ("in-process" if in_process else "workers")
    out.mkdir()
    record = out / "evaluated-by"
    playbook = out / "play.yml"
    role = out / "roles" / "checked"
    (role / "meta").mkdir(parents=True)
    (role / "tasks").mkdir()
    (role / "meta" / "argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    short_description: A role that checks its arguments\n"
        "    options:\n      checked_count: {type: int, required: true, description: How many}\n"
    )
    (out / "included.yml").write_text(
        "- name: The included task runs\n"
        "  ansible.builtin.set_fact:\n    r_included: '{{ inventory_hostname }}'\n"
    )
    (role / "tasks" / "main.yml").write_text(
        "- name: The count is kept\n  ansible.builtin.set_fact:\n    r_checked: '{{ checked_count }}'\n"
    )
    playbook.write_text(SKIP_PLAY.replace("@RECORD@", str(record)).replace("@OUT@", str(out)))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "true"}
    env.pop("ANSIBLE_STRATEGY", None)
    env["ISLAND_IN_PROCESS"] = "1" if in_process else "0"
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            *("-i", "a,b", "-e", "ansible_connection=local"),
            *("-e", f"ansible_python_interpreter={sys.executable}"),
            str(playbook),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stdout, _ = proc.communicate(timeout=300)
    return proc, stdout, out


def test_skips_and_controller_actions_run_in_the_main_process_with_the_workers_results(tmp_path):
    workers, workers_out, workers_dir = run_skips(tmp_path, in_process=False)
    main, main_out, main_dir = run_skips(tmp_path, in_process=True)
    assert workers.returncode == 0, workers_out
    assert main.returncode == 0, main_out
    # every host registered the same results, skipped ones (false_condition, no_log) included
    for host in ("a", "b"):
        # (each run has its own directory, which the first task's condition names)
        with_workers = untimed(
            json.loads((workers_dir / f"{host}.json").read_text().replace(str(workers_dir), "@"))
        )
        in_process = untimed(json.loads((main_dir / f"{host}.json").read_text().replace(str(main_dir), "@")))
        assert in_process == with_workers, host
    registered = json.loads((main_dir / "a.json").read_text())
    assert registered["plain"]["skipped"] is True and registered["plain"]["false_condition"]
    assert registered["no_log"]["skipped"] is True
    assert registered["once"]["skipped"] is True
    assert "undefined_variable_here" in registered["error"]["msg"]
    assert registered["assert_fails"]["failed"] is True and registered["assert"]["failed"] is False
    assert registered["checked"] == 3 and "checked_count" in registered["refused"]["msg"]
    assert registered["facts"] == ["a-fact"] and registered["debug"]["fact_here"] == "a-fact"
    assert registered["included"] is None
    assert json.loads((main_dir / "b.json").read_text())["included"] == "b"

    # the facts were templated in the main process (fact_pid is its pid), with workers in a fork
    main_pids = {
        json.loads((main_dir / f"{h}.json").read_text())["fact"]["ansible_facts"]["fact_pid"] for h in "ab"
    }
    worker_pids = {
        json.loads((workers_dir / f"{h}.json").read_text())["fact"]["ansible_facts"]["fact_pid"] for h in "ab"
    }
    assert main_pids == {str(main.pid)}
    assert str(workers.pid) not in worker_pids

    def recap(text):
        return [line.split() for line in text.splitlines() if re.match(r"^[ab]\s+: ok=", line)]

    def tasks(text):
        return re.findall(r"^(?:TASK|RUNNING HANDLER) \[(.*)\]", text, re.MULTILINE)

    assert recap(main_out) == recap(workers_out) and recap(main_out)
    assert tasks(main_out) == tasks(workers_out)
    # the first task's condition: with workers both hosts' were templated in forks; in the main
    # process, a's (false, skipped there) and b's (true: b's goes to a worker, which evaluates again)
    evaluated_in_main = (main_dir / "evaluated-by").read_text().split()
    evaluated_by_workers = (workers_dir / "evaluated-by").read_text().split()
    assert str(workers.pid) not in evaluated_by_workers
    assert evaluated_in_main.count(str(main.pid)) == 2, (main.pid, evaluated_in_main)
    assert len(evaluated_in_main) == 3
