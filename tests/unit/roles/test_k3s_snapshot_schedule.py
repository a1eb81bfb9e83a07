"""The etcd snapshot schedule and retention (issue 18, snapshot policy) are data in the servers'
config.yaml; a schedule k3s would refuse at start, or a retention below 1, is refused by the role
before any host changes (roles/k3s/tasks/schedule.yml)."""

from __future__ import annotations

import pytest
import yaml

from tests.support import ROOT
from tests.support.playbook import refused, run_local_tasks


def _check(tmp_path, cron, retention):
    return run_local_tasks(
        tmp_path,
        [
            {
                "name": "The schedule is checked through the k3s role",
                "ansible.builtin.include_role": {"name": "k3s", "tasks_from": "schedule"},
                "vars": {"k3s_etcd_snapshot_schedule_cron": cron, "k3s_etcd_snapshot_retention": retention},
            }
        ],
    )


@pytest.mark.parametrize(
    ("cron", "retention"), [("0 */12 * * *", 5), ("30 2 * * 1-5", "10"), ("*/30 * * * *", 1)]
)
def test_a_schedule_of_five_fields_and_a_positive_retention_pass(tmp_path, cron, retention):
    result = _check(tmp_path, cron, retention)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("cron", "retention"),
    [("0 */12 * *", 5), ("@daily", 5), ("0 12 * * * *", 5), ("0 */12 * * *", 0), ("0 0 * * *", "x")],
)
def test_a_schedule_k3s_would_refuse_or_no_retention_is_refused_naming_both(tmp_path, cron, retention):
    output = refused(_check(tmp_path, cron, retention))
    assert f"k3s_etcd_snapshot_schedule_cron is '{cron}'" in output
    assert "a cron spec of five fields" in output and "Nothing was changed" in output


def test_the_defaults_are_upstreams_and_go_into_the_servers_config():
    defaults = yaml.safe_load((ROOT / "roles" / "k3s" / "defaults" / "main.yml").read_text())
    assert defaults["k3s_etcd_snapshot_schedule_cron"] == "0 */12 * * *"
    assert defaults["k3s_etcd_snapshot_retention"] == 5
    server_config = yaml.safe_load((ROOT / "roles" / "k3s" / "vars" / "main.yml").read_text())[
        "k3s_config_server"
    ]
    assert "'etcd-snapshot-schedule-cron': k3s_etcd_snapshot_schedule_cron" in server_config
    assert "'etcd-snapshot-retention': k3s_etcd_snapshot_retention | int" in server_config
