"""A dry run shows secret-file drift (issue 15, item 18): `--check --diff` on a file that holds
secrets names each key that changes with the values masked, and never shows a value."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml
from ansible_collections.island.installer.plugins.filter.island_masked_diff import island_masked_diff
from ansible_collections.island.installer.plugins.module_utils.island_masked_diff import MASK, masked_diff

from tests.support import ROOT
from tests.support.playbook import run_local_tasks

OLD_SECRET = "old-s3cr3t-Value"
NEW_SECRET = "new-s3cr3t-Value"

CASES = {
    "ini": (
        f"; managed\nAPP_NAME = Island Git\n\n[database]\nDB_TYPE = postgres\nPASSWD = `{OLD_SECRET}`\n"
        "[oauth2]\nJWT_SECRET_URI = file:/etc/gitea/secrets/jwt_secret\n",
        f"; managed\nAPP_NAME = Island Git\n\n[database]\nDB_TYPE = postgres\nPASSWD = `{NEW_SECRET}`\n"
        f"[security]\nINTERNAL_TOKEN = {NEW_SECRET}x\n",
        ["~ [database] PASSWD", "+ [security] INTERNAL_TOKEN", "- [oauth2] JWT_SECRET_URI"],
    ),
    "env": (
        f'MINIO_ROOT_USER="island-root"\nMINIO_ROOT_PASSWORD="{OLD_SECRET}"\n',
        f'# Managed\nMINIO_ROOT_USER="island-root"\nMINIO_ROOT_PASSWORD="{NEW_SECRET}"\n',
        ["~ MINIO_ROOT_PASSWORD"],
    ),
    "yaml": (
        yaml.safe_dump({"token": OLD_SECRET, "configs": {"r:5000": {"auth": {"password": OLD_SECRET}}}}),
        yaml.safe_dump(
            {"token": NEW_SECRET, "configs": {"r:5000": {"auth": {"password": OLD_SECRET}}}, "x": [1]}
        ),
        ["~ token", "+ x[0]"],
    ),
    "htpasswd": (
        f"pull:$2b$10${OLD_SECRET}\npush:$2b$10$same\n",
        f"pull:$2b$10${NEW_SECRET}\npush:$2b$10$same\n",
        ["~ pull"],
    ),
}


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_changed_keys_are_named_and_no_value_appears(fmt):
    before, after, expected = CASES[fmt]
    lines = masked_diff(before, after, fmt, "/etc/x")
    text = "\n".join(lines)
    for marker in expected:
        assert any(marker in line for line in lines), (marker, lines)
    assert len(lines) == len(expected), lines
    for secret in (OLD_SECRET, NEW_SECRET, "island-root", "$2b$10$", "file:/etc", "Island Git"):
        assert secret not in text
    assert MASK in text


def test_unchanged_content_shows_nothing_and_a_new_file_lists_every_key_masked():
    _before, after, _ = CASES["env"]
    assert masked_diff(after, after, "env", "/etc/minio/config.env") == []
    lines = masked_diff(None, after, "env", "/etc/minio/config.env")
    assert lines[0] == "/etc/minio/config.env: new file"
    assert {line.split(": ", 1)[1].split(" =")[0] for line in lines[1:]} == {
        "+ MINIO_ROOT_USER",
        "+ MINIO_ROOT_PASSWORD",
    }
    assert NEW_SECRET not in "\n".join(lines)


def test_unparseable_content_is_reported_without_its_content():
    lines = masked_diff(f"PASSWORD {OLD_SECRET}\n", f"PASSWORD={NEW_SECRET}\n", "env", "/etc/x")
    assert lines == [
        "/etc/x: the file on the host is not readable as env; it would be replaced (values masked)"
    ]
    lines = masked_diff("a: 1\n", f"a: [{NEW_SECRET}\n", "yaml", "/etc/y")
    assert NEW_SECRET not in "\n".join(lines) and "not readable as yaml" in lines[0]


def test_the_filter_reads_slurp_results_and_a_missing_file_is_new():
    before, after, _ = CASES["ini"]
    files = [{"path": "/etc/gitea/app.ini", "content": after, "format": "ini"}] * 2
    slurped = [
        {"content": base64.b64encode(before.encode()).decode(), "item": files[0]},
        {"failed": True, "msg": "file not found: /etc/gitea/app.ini", "item": files[1]},
    ]
    lines = island_masked_diff(slurped, files)
    assert "/etc/gitea/app.ini: ~ [database] PASSWD = ******** -> ******** (changed)" in lines
    assert "/etc/gitea/app.ini: new file" in lines
    assert NEW_SECRET not in "\n".join(lines) and OLD_SECRET not in "\n".join(lines)


def test_the_filter_reads_island_install_read_results_and_an_absent_file_is_new():
    before, after, _ = CASES["ini"]
    files = [
        {"path": "/etc/gitea/app.ini", "content": after, "format": "ini"},
        {"path": "/etc/gitea/other.ini", "content": after, "format": "ini"},
    ]
    lines = island_masked_diff({"/etc/gitea/app.ini": before, "/etc/gitea/other.ini": None}, files)
    assert "/etc/gitea/app.ini: ~ [database] PASSWD = ******** -> ******** (changed)" in lines
    assert "/etc/gitea/other.ini: new file" in lines
    assert NEW_SECRET not in "\n".join(lines) and OLD_SECRET not in "\n".join(lines)


def test_check_diff_through_the_common_task_file_shows_keys_and_never_values(tmp_path):
    target = tmp_path / "config.env"
    target.write_text(f'MINIO_ROOT_USER="island-root"\nMINIO_ROOT_PASSWORD="{OLD_SECRET}"\n')
    task = {
        "name": "Masked diff",
        "ansible.builtin.include_role": {"name": str(ROOT / "roles" / "common"), "tasks_from": "secret_diff"},
        "vars": {
            "common_secret_diff_files": [
                {
                    "path": str(target),
                    "content": f'MINIO_ROOT_USER="island-root"\nMINIO_ROOT_PASSWORD="{NEW_SECRET}"\n',
                    "format": "env",
                }
            ]
        },
    }
    before = target.read_bytes()
    proc = run_local_tasks(tmp_path, [task], "--check", "--diff", "-v")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shown = " ".join(proc.stdout.split())  # the callback may wrap long lines
    assert f"{target}: ~ MINIO_ROOT_PASSWORD = ******** -> ******** (changed)" in shown
    assert OLD_SECRET not in proc.stdout + proc.stderr
    assert NEW_SECRET not in proc.stdout + proc.stderr
    assert target.read_bytes() == before
    quiet = run_local_tasks(tmp_path, [task], "--check")
    assert quiet.returncode == 0, quiet.stdout
    assert "MINIO_ROOT_PASSWORD" not in quiet.stdout


# --- every no_log task that writes a file on a host has its masked diff ---------------------------
def _tasks(items):
    for task in items or []:
        yield task
        for key in ("block", "rescue", "always"):
            yield from _tasks(task.get(key))


def _dests(task, module):
    dest = task[module]["dest"]
    loop = task.get("loop")
    if isinstance(loop, list) and "{{ item." in dest:
        out = []
        for item in loop:
            value = dest
            for key, field in item.items():
                value = value.replace(f"{{{{ item.{key} }}}}", str(field))
            out.append(value)
        return out
    return [dest]


def test_every_no_log_file_written_on_a_host_has_a_masked_diff():
    missing = []
    for path in sorted((ROOT / "roles").glob("*/tasks/*.yml")):
        tasks = list(_tasks(yaml.safe_load(path.read_text())))
        diffed = set()
        for task in tasks:
            include = task.get("ansible.builtin.include_role") or {}
            if include.get("tasks_from") == "secret_diff":
                diffed |= {f["path"] for f in task["vars"]["common_secret_diff_files"]}
        for task in tasks:
            module = next(
                (
                    m
                    for m in ("ansible.builtin.copy", "ansible.builtin.template", "island_install")
                    if m in task
                ),
                None,
            )
            if module is None or not task.get("no_log") or task.get("delegate_to") == "localhost":
                continue
            if module == "island_install":
                # A no_log island_install lists its files literally, so that each can be checked here.
                files = task[module].get("files") or []
                dests = (
                    [f["dest"] for f in files] if isinstance(files, list) else [f"(not a list: {files!r})"]
                )
            else:
                dests = _dests(task, module)
            for dest in dests:
                if dest not in diffed:
                    missing.append(f"{Path(path).relative_to(ROOT)}: {task['name']} -> {dest}")
    assert missing == [], "no_log files without a masked diff: " + "; ".join(missing)
