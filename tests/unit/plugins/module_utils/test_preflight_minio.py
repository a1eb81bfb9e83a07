"""Preflight refuses MinIO drives on the root filesystem in a multi-drive deployment, naming them
(module_utils/island_preflight_minio.py, after MinIO's cmd/xl-storage.go), and finds each host's
drives from the inventory and the minio role's defaults (island_minio_layout.host_drives)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_minio_layout import host_drives
from ansible_collections.island.installer.plugins.module_utils.island_preflight_minio import (
    UPSTREAM_MESSAGE,
    check_drives,
    drives_on_root,
    nearest_existing,
)

ROOT_DEVICE, OTHER_DEVICE = 1, 2


def check_drives_as_mounted(drives, total, device):
    """check_drives with every drive existing, on the devices ``device`` gives."""
    return check_drives(drives, total, device=device, exists=lambda _path: True)


def fake_device(mounts):
    """st_dev by the longest mount point that holds the path (/ is ROOT_DEVICE)."""

    def device(path):
        best = max((m for m in mounts if path == m or path.startswith(m.rstrip("/") + "/")), key=len)
        return mounts[best]

    return device


def test_drives_on_the_root_filesystem_of_a_multi_drive_layout_are_refused_by_name():
    device = fake_device({"/": ROOT_DEVICE})
    problems = check_drives_as_mounted(["/var/lib/minio/disk1", "/var/lib/minio/disk2"], 4, device=device)
    assert len(problems) == 1
    assert "MinIO drives on the root filesystem: /var/lib/minio/disk1, /var/lib/minio/disk2." in problems[0]
    assert UPSTREAM_MESSAGE in problems[0]
    assert "mount a filesystem of its own at each drive" in problems[0]


def test_only_the_drives_on_the_root_filesystem_are_named():
    device = fake_device({"/": ROOT_DEVICE, "/mnt/disk1": OTHER_DEVICE, "/mnt/disk2": 3})
    problems = check_drives_as_mounted(["/mnt/disk1", "/mnt/disk2", "/mnt/disk3"], 3, device=device)
    assert "root filesystem: /mnt/disk3." in problems[0]


def test_a_single_drive_may_live_on_the_root_filesystem_as_upstream_allows():
    assert check_drives_as_mounted(["/var/lib/minio/data"], 1, device=fake_device({"/": ROOT_DEVICE})) == []


def test_drives_each_on_their_own_filesystem_pass():
    device = fake_device({"/": ROOT_DEVICE, "/mnt/disk1": OTHER_DEVICE, "/mnt/disk2": 3})
    assert check_drives_as_mounted(["/mnt/disk1", "/mnt/disk2"], 4, device=device) == []


def test_a_drive_not_created_yet_is_judged_by_its_nearest_existing_parent(tmp_path):
    (tmp_path / "mnt").mkdir()
    assert nearest_existing(str(tmp_path / "mnt" / "disk1" / "deeper")) == str(tmp_path / "mnt")
    assert nearest_existing(str(tmp_path / "mnt")) == str(tmp_path / "mnt")
    assert nearest_existing("/no/such/place/at/all") == "/"


def test_the_real_root_filesystem_is_recognised(tmp_path):
    """On this machine: a directory on / is found, one on another filesystem (if any) is not."""
    root_device = os.stat("/").st_dev
    others = [p for p in ("/dev/shm", "/run") if os.path.isdir(p) and os.stat(p).st_dev != root_device]
    if os.stat(tmp_path).st_dev != root_device or not others:
        pytest.skip("needs tmp_path on / and a writable directory on another filesystem")
    elsewhere = Path(tempfile.mkdtemp(dir=others[0]))
    try:
        drives = [str(tmp_path / "disk1"), str(elsewhere / "disk2")]
        assert drives_on_root(drives) == [str(tmp_path / "disk1")]
    finally:
        elsewhere.rmdir()


def test_a_hosts_drives_come_from_the_inventory_or_the_minio_roles_defaults():
    groups = {"island_minio": ["infra1"], "minio_single": ["box"], "all": ["infra1", "box", "other"]}
    hostvars = {"infra1": {}, "box": {"minio_group": "minio_single", "minio_drives_per_host": 2}, "other": {}}
    assert host_drives(groups, hostvars, "infra1") == {"drives": ["/var/lib/minio/data"], "drive_total": 1}
    assert host_drives(groups, hostvars, "box") == {
        "drives": ["/var/lib/minio/data1", "/var/lib/minio/data2"],
        "drive_total": 2,
    }
    assert host_drives(groups, hostvars, "other") == {"drives": [], "drive_total": 0}


def test_a_distributed_deployments_drive_total_counts_every_host():
    groups = {"island_minio": ["minio1", "minio2"]}
    hostvars = {
        h: {"minio_drive_path": "/mnt/disk", "minio_drives_per_host": 2} for h in groups["island_minio"]
    }
    assert host_drives(groups, hostvars, "minio2") == {
        "drives": ["/mnt/disk1", "/mnt/disk2"],
        "drive_total": 4,
    }
