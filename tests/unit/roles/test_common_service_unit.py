"""The hardened unit every island service runs under (roles/common/templates/service.j2; issue 15,
item 15): Restart=always with a start limit, a system-call filter, UMask=0077, other processes and
non-process /proc entries hidden, IPC removed, no writable-and-executable memory unless the role
records why. Rendered with the role's defaults, parsed by section, and checked by systemd-analyze
verify where systemd is installed."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml

ROLE = Path(__file__).resolve().parents[3] / "roles" / "common"


def _render(**overrides) -> str:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    values = {
        key: value
        for key, value in defaults.items()
        if key.startswith("common_service_") and not (isinstance(value, str) and "{{" in value)
    }
    values.update(
        common_service_name="demo",
        common_service_description="Island demo service",
        common_service_user="demo",
        common_service_exec="/bin/sleep infinity",
        common_service_read_write_paths=["/var/lib/demo"],
        ansible_managed="test",
    )
    values.update(overrides)
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=False, autoescape=False)  # noqa: S701 - a unit file
    return env.from_string((ROLE / "templates" / "service.j2").read_text()).render(**values)


def _sections(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#",))
    parser.optionxform = str
    parser.read_string(text)
    return parser


def test_the_service_comes_back_after_any_exit_within_a_start_limit():
    unit = _sections(_render())
    assert unit["Service"]["Restart"] == "always"
    assert unit["Unit"]["StartLimitBurst"] == "5"
    assert unit["Unit"]["StartLimitIntervalSec"] == "60s"


def test_the_unit_filters_system_calls_hides_proc_and_keeps_files_private():
    service = _sections(_render())["Service"]
    assert service["SystemCallFilter"] == "@system-service"
    assert service["UMask"] == "0077"
    assert service["ProtectProc"] == "invisible"
    assert service["ProcSubset"] == "pid"
    assert service["RemoveIPC"] == "yes"
    assert service["MemoryDenyWriteExecute"] == "yes"


def test_a_program_that_needs_proc_or_writable_code_gets_it_with_the_reason_recorded():
    text = _render(
        common_service_proc_subset="all",
        common_service_memory_deny_write_execute=False,
        common_service_memory_deny_write_execute_reason="its JIT maps writable code",
    )
    service = _sections(text)["Service"]
    assert service["ProcSubset"] == "all"
    assert "MemoryDenyWriteExecute" not in service
    assert "# MemoryDenyWriteExecute is off for this program: its JIT maps writable code" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_every_directive_of_the_unit(tmp_path):
    unit = tmp_path / "island-demo.service"
    unit.write_text(_render(common_service_user="root", common_service_read_write_paths=[str(tmp_path)]))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    # verify prints every unknown key or bad value as "Unknown key name" / "Failed to parse" lines
    output = result.stdout + result.stderr
    own = [line for line in output.splitlines() if unit.name in line]
    assert own == [], output
