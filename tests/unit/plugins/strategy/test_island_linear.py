"""The island_linear strategy: linear over Mitogen when it is installed, Ansible's linear otherwise."""

from __future__ import annotations

import importlib.util
import os
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
