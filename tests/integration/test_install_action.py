"""The island_install action in a playbook (issue 16): a bundle file, a rendered file, a record read
back and a retired file pruned in ONE task; --check --diff shows the change and writes nothing; the
rerun reports no change; a file the lock does not list is refused, naming it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.support.playbook import ansible_doc, run_local_tasks


def _task(tmp_path: Path, unit_text: str, lock_path: str = "bin/tool") -> list:
    bundle = tmp_path / "bundle"
    live = tmp_path / "live"
    return [
        {
            "name": "The binary, the unit and the record",
            "island_install": {
                "bundle_dir": str(bundle),
                "lock": [{"path": lock_path, "sha256": hashlib.sha256(b"binary\n").hexdigest()}],
                "directories": [{"path": str(live / "etc"), "mode": "0755"}],
                "files": [
                    {"src": "bin/tool", "dest": str(live / "tool"), "mode": "0755"},
                    {"content": unit_text, "dest": str(live / "etc" / "tool.service"), "mode": "0644"},
                ],
                "prune": [{"path": str(live), "pattern": "*.old"}],
                "read": [str(live / "record.json")],
            },
            "register": "_installed",
        },
        {
            "name": "Shown",
            "ansible.builtin.debug": {
                "msg": "REPLACED={{ _installed.replaced | length }} READ={{ _installed.read }}"
            },
        },
    ]


def _setup(tmp_path: Path) -> Path:
    (tmp_path / "bundle" / "bin").mkdir(parents=True)
    (tmp_path / "bundle" / "bin" / "tool").write_bytes(b"binary\n")
    live = tmp_path / "live"
    live.mkdir()
    (live / "record.json").write_text('{"version": "1"}')
    (live / "tool.old").write_text("retired\n")
    return live


def test_check_diff_then_apply_then_a_rerun_with_no_change(tmp_path):
    live = _setup(tmp_path)
    check = run_local_tasks(tmp_path, _task(tmp_path, "[Service]\nExecStart=/tool\n"), "--check", "--diff")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "+ExecStart=/tool" in check.stdout
    assert "REPLACED=2" in check.stdout
    assert sorted(p.name for p in live.iterdir()) == ["record.json", "tool.old"]

    applied = run_local_tasks(tmp_path, _task(tmp_path, "[Service]\nExecStart=/tool\n"))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "changed=1" in applied.stdout
    assert (live / "tool").read_bytes() == b"binary\n"
    assert (live / "etc" / "tool.service").read_text() == "[Service]\nExecStart=/tool\n"
    assert sorted(p.name for p in live.iterdir()) == ["etc", "record.json", "tool"]
    assert "READ={" in applied.stdout and '"version": "1"' in applied.stdout

    again = run_local_tasks(tmp_path, _task(tmp_path, "[Service]\nExecStart=/tool\n"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "changed=0" in again.stdout and "REPLACED=0" in again.stdout

    changed_unit = run_local_tasks(tmp_path, _task(tmp_path, "[Service]\nExecStart=/tool --new\n"), "--diff")
    assert changed_unit.returncode == 0
    assert "-ExecStart=/tool" in changed_unit.stdout and "+ExecStart=/tool --new" in changed_unit.stdout
    assert "REPLACED=1" in changed_unit.stdout


def test_a_file_the_lock_does_not_list_is_refused_before_anything_changes(tmp_path):
    live = _setup(tmp_path)
    result = run_local_tasks(tmp_path, _task(tmp_path, "[Service]\n", lock_path="bin/other"))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert "the bundle's lock lists no file bin/tool" in output
    assert "build the bundle with this component" in output
    assert sorted(p.name for p in live.iterdir()) == ["record.json", "tool.old"]


def test_the_documentation_renders_and_names_every_option_the_action_accepts():
    from ansible_collections.island.installer.plugins.action.island_install import FILE_KEYS, ActionModule
    from ansible_collections.island.installer.plugins.modules import island_install

    proc = ansible_doc("--json", "island_install")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["island_install"]["doc"]
    assert set(doc["options"]) == set(ActionModule._VALID_ARGS)
    # the module takes what the action sends: the task's options less the controller's own
    assert set(island_install.ARGUMENT_SPEC) == set(ActionModule._VALID_ARGS) - {"bundle_dir", "lock"}
    assert set(doc["options"]["files"]["suboptions"]) == FILE_KEYS
    assert doc["attributes"]["check_mode"]["support"] == doc["attributes"]["diff_mode"]["support"] == "full"
