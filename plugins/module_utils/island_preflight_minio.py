# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preflight for MinIO's drives on a managed host: no drive of a multi-drive deployment on the root
filesystem.

MinIO RELEASE.2025-09-07T16-13-09Z, cmd/xl-storage.go newXLStorage -> getDiskInfo: unless the
deployment is a single drive (globalIsErasureSD) or runs in CI/CD mode, a drive on the same device
as / (internal/disk/root_disk.go IsRootDisk -> disk_unix.go SameDisk compares stat().st_dev) is
refused with "drive is part of root drive, will not be used", left offline and retried for ever; a
deployment whose drives are all on / never initialises. The check runs before the role creates the
drives, so a drive that does not exist yet is judged by its nearest existing parent: that is the
filesystem it would be created on.

Runs on managed hosts with their system Python, stdlib only. Returns problems as sentences.
"""

from __future__ import annotations

import os

UPSTREAM_MESSAGE = "drive is part of root drive, will not be used"


def nearest_existing(path: str, exists=os.path.lexists) -> str:
    """``path`` itself if it exists, else its nearest existing parent directory."""
    current = os.path.normpath(path)
    while not exists(current) and current != os.path.dirname(current):
        current = os.path.dirname(current)
    return current


def _device(path):
    return os.stat(path).st_dev


def drives_on_root(drives, root="/", device=_device, exists=os.path.lexists) -> list:
    """The drives whose filesystem (or, not created yet, their nearest parent's) is root's."""
    root_device = device(root)
    return [drive for drive in drives if device(nearest_existing(drive, exists)) == root_device]


def check_drives(drives, drive_total: int, root="/", device=_device, exists=os.path.lexists) -> list:
    """Problems (sentences) with this host's MinIO drives in a deployment of ``drive_total`` drives."""
    if drive_total <= 1:  # a single drive may live on / (upstream's globalIsErasureSD)
        return []
    on_root = drives_on_root(drives, root, device, exists)
    if not on_root:
        return []
    return [
        f"MinIO drives on the root filesystem: {', '.join(on_root)}. MinIO refuses a drive on the same "
        f'device as / in every layout but a single drive ("{UPSTREAM_MESSAGE}"), so this deployment '
        f"of {drive_total} drives would never initialise: mount a filesystem of its own at each drive "
        "(a disk, partition or volume), or use a single drive (one host, minio_drives_per_host: 1)"
    ]
