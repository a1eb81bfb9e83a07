"""The minio role refuses, before anything changes, drives MinIO would not use and seed sources
outside the bundle; so does the preflight role for the drives.

The plays run against hosts with the local connection and a bundle-less island: the checks come
first, so a regression that let bad input through would fail on a later task, never touch another
machine.
"""

from __future__ import annotations

import os

import pytest
import yaml

from tests.support.playbook import (
    ROOT,
    TEST_ISLAND,
    ansible_env,
    local_inventory,
    refused,
    run_playbook,
    run_role,
)

FIRST_CHANGE = "TASK [common : The service has its own system user"


def _run(tmp_path, role, extra_vars, hosts=("minio1",)):
    """The minio role, or the preflight role's MinIO drive check (its other host checks judge this
    machine, not the inventory), on ``hosts`` of island_minio."""
    inventory = local_inventory(
        {"island_minio": list(hosts)},
        {host: {"island_address": f"10.98.0.{10 + n}"} for n, host in enumerate(hosts)},
        **{
            **TEST_ISLAND,
            **{f"island_{d}_dir": str(tmp_path / d) for d in ("bundle", "pki", "secrets")},
            **extra_vars,
        },
    )
    if role == "preflight":
        hosts_file = tmp_path / "hosts.yml"
        hosts_file.write_text(yaml.safe_dump(inventory))
        play = tmp_path / "preflight-minio.yml"
        task = {
            "name": "MinIO drives",
            "ansible.builtin.include_role": {"name": "preflight", "tasks_from": "minio"},
        }
        play.write_text(yaml.safe_dump([{"hosts": "island_minio", "gather_facts": False, "tasks": [task]}]))
        return run_playbook(
            play, inventory=hosts_file, env=ansible_env(ANSIBLE_ROLES_PATH=str(ROOT / "roles"))
        )
    return run_role(tmp_path, inventory, "island_minio", role)


@pytest.fixture
def on_root(tmp_path):
    if os.stat(tmp_path).st_dev != os.stat("/").st_dev:
        pytest.skip("needs pytest's tmp_path on the root filesystem")
    return tmp_path / "mnt" / "disk"


@pytest.mark.parametrize("role", ["minio", "preflight"])
def test_two_drives_on_the_root_filesystem_are_refused_naming_them(tmp_path, on_root, role):
    output = refused(_run(tmp_path, role, {"minio_drive_path": str(on_root), "minio_drives_per_host": 2}))
    assert f"MinIO drives on the root filesystem: {on_root}1, {on_root}2." in output
    assert "drive is part of root drive, will not be used" in output
    assert FIRST_CHANGE not in output
    assert not on_root.parent.exists()


def test_a_distributed_deployments_drives_on_the_root_filesystem_are_refused_on_each_host(tmp_path, on_root):
    output = refused(_run(tmp_path, "minio", {"minio_drive_path": str(on_root)}, hosts=("minio1", "minio2")))
    for host in ("minio1", "minio2"):
        assert f"minio on {host}: MinIO drives on the root filesystem: {on_root}." in output


@pytest.mark.parametrize("src", ["../../secrets", "/etc", "seed/../../x"])
def test_a_seed_source_outside_the_bundles_files_is_refused(tmp_path, src):
    extra = {"minio_buckets": [{"name": "data"}], "minio_seed": [{"bucket": "data", "src": src}]}
    output = refused(_run(tmp_path, "minio", extra))
    assert "minio_seed[].src must be a directory below the bundle's files/" in output
    assert f"refused: {src}" in output
    assert FIRST_CHANGE not in output
