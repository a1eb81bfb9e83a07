"""The playbook runner: ansible-playbook and ansible-doc from this virtual environment, against this
checkout (its ansible.cfg, roles and collection), output captured for the test to assert on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import ROOT

ANSIBLE_BIN = Path(sys.executable).parent
"""The directory of this interpreter's ansible-playbook and ansible-doc."""


def ansible_env(**overrides: str | None) -> dict[str, str]:
    """os.environ with this checkout's ansible.cfg, no colour, this venv first on PATH, and
    ``overrides`` (None removes a name)."""
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        PATH=f"{ANSIBLE_BIN}:{os.environ.get('PATH', '')}",
    )
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def ansible(
    program: str, *args: str, env=None, cwd=ROOT, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run ``program`` (ansible-playbook, ansible-doc, ...) installed beside this Python, else the one
    on PATH; never raises on failure. The test skips when there is none (for example a run of the
    unit tests on Debian's python3 with only the ansible package on its path)."""
    found = shutil.which(program, path=str(ANSIBLE_BIN)) or shutil.which(program)
    if found is None:
        pytest.skip(f"{program} is not installed for {sys.executable}")
    return subprocess.run(
        [found, *args],
        env=env if env is not None else ansible_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def run_playbook(playbook, *args: str, inventory="localhost,", env=None, cwd=ROOT, timeout: float = 300):
    """ansible-playbook -i ``inventory`` [args] ``playbook``. ``inventory``: a path or a host list;
    pass ``-c local`` in ``args`` for the local connection."""
    return ansible(
        "ansible-playbook", "-i", str(inventory), *args, str(playbook), env=env, cwd=cwd, timeout=timeout
    )


def run_local_tasks(tmp_path: Path, tasks: list, *args: str, interpreter: str = sys.executable, env=None):
    """One play of ``tasks`` on localhost over the local connection with ``interpreter``."""
    play = tmp_path / "play.yml"
    play.write_text(
        yaml.safe_dump(
            [{"name": "Tasks under test", "hosts": "localhost", "gather_facts": False, "tasks": tasks}],
            sort_keys=False,
        )
    )
    return run_playbook(
        play, "-c", "local", "-e", f"ansible_python_interpreter={interpreter}", *args, env=env
    )


def run_role(tmp_path: Path, inventory: dict, group: str, role: str, *args: str):
    """Write ``inventory`` (a YAML inventory as data) and a play applying ``role`` to ``group``
    under ``tmp_path``, and run it."""
    hosts = tmp_path / "hosts.yml"
    hosts.write_text(yaml.safe_dump(inventory))
    play = tmp_path / f"{role}.yml"
    play.write_text(yaml.safe_dump([{"name": role, "hosts": group, "gather_facts": False, "roles": [role]}]))
    return run_playbook(play, *args, inventory=hosts, env=ansible_env(ANSIBLE_ROLES_PATH=str(ROOT / "roles")))


def ansible_doc(module: str, *args: str) -> subprocess.CompletedProcess:
    """ansible-doc for one of this collection's modules by its short name."""
    return ansible("ansible-doc", "-M", str(ROOT / "plugins" / "modules"), *args, module)


def run_json_play(play, *args: str, interpreter: str = sys.executable, timeout: float = 300):
    """Run ``play`` on localhost (local connection, ``interpreter``) with the json stdout callback;
    returns (the process, each task's result for localhost, in order)."""
    env = ansible_env(ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_PYTHON_INTERPRETER=interpreter)
    proc = run_playbook(play, "-c", "local", *args, env=env, timeout=timeout)
    out = json.loads(proc.stdout[proc.stdout.index("{") :])
    return proc, [task["hosts"]["localhost"] for task in out["plays"][0]["tasks"]]


def run_play_with_secret_vars(tmp_path, playbook_text: str, variables: dict, *args: str):
    """Write ``playbook_text`` and ``variables`` (secrets among them: a 0600 file, never the command
    line) under ``tmp_path`` and run the play on localhost over the local connection with the json
    stdout callback; returns (the process, the json report, {} when there is none)."""
    play = tmp_path / "play.yml"
    play.write_text(playbook_text)
    varfile = tmp_path / "vars.json"
    varfile.write_text(json.dumps(variables))
    os.chmod(varfile, 0o600)
    env = ansible_env(
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOCAL_TEMP=str(tmp_path / ".ansible-tmp")
    )
    proc = run_playbook(play, "-c", "local", "-e", f"@{varfile}", *args, env=env, cwd=tmp_path)
    out = proc.stdout
    return proc, (json.loads(out[out.index("{") :]) if "{" in out else {})


def local_inventory(groups: dict, hosts: dict, **all_vars) -> dict:
    """A YAML inventory (as data) whose hosts use the local connection and this interpreter, so a
    play that gets past its checks touches nothing but this machine. ``groups``: group name ->
    member host names; ``hosts``: host name -> its variables; ``all_vars``: variables of all."""
    return {
        "all": {
            "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, **all_vars},
            "hosts": hosts,
            "children": {
                group: {"hosts": {host: {} for host in members}} for group, members in groups.items()
            },
        }
    }


TEST_ISLAND = {"island_domain": "island.test", "island_networks": ["10.98.0.0/24"]}
"""The island-wide variables of the role tests' inventories."""


def refused(result: subprocess.CompletedProcess) -> str:
    """Assert the run failed; its output (stdout and stderr) with runs of whitespace made one space,
    as Ansible wraps long messages."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    return " ".join(output.split())
