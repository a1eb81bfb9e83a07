# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A MinIO deployment's layout: its drives, its MINIO_VOLUMES and the erasure sets upstream accepts.

Upstream (MinIO, cmd/endpoint-ellipses.go) expands ``{N...M}`` ellipses in MINIO_VOLUMES and
accepts an erasure set size of 2 to 16 that divides the drive count and, with ellipses, is
symmetric with the leftmost pattern: the hosts when distributed, else the drives (getSetIndexes).
Host labels are zero-padded when either end of the range starts with 0 (ellipses.go).
"""

from __future__ import annotations

import re

from ansible_collections.island.installer.plugins.module_utils.island_model import COMPONENT_GROUPS, setting

_NUMBERED = re.compile(r"^(.*?)([0-9]+)$")


def drives(drive_path: str, drives_per_host: int) -> list[str]:
    """``drive_path`` itself with one drive, else drive_path1 .. drive_pathN."""
    count = int(drives_per_host)
    return [drive_path] if count == 1 else [f"{drive_path}{n}" for n in range(1, count + 1)]


def expand_hosts(first: str, last: str, prefix: str) -> list[str]:
    """What upstream expands ``<prefix>{first...last}`` to (zero-padded when either end starts with 0)."""
    padded = (len(first) > 1 and first.startswith("0")) or last.startswith("0")
    return [
        f"{prefix}{n:0{len(last)}d}" if padded else f"{prefix}{n}" for n in range(int(first), int(last) + 1)
    ]


def set_sizes(drive_total: int, symmetry: int) -> list[int]:
    """Erasure set sizes (2..16) that divide the drives and are symmetric with the leftmost pattern."""
    if symmetry < 1:
        return []
    return [
        size
        for size in range(2, 17)
        if drive_total % size == 0 and ((symmetry % size == 0) if symmetry > size else (size % symmetry == 0))
    ]


def layout(hosts, drives_per_host, drive_path: str, domain, port) -> dict:
    """The deployment's layout on ``hosts`` (the group's hosts, in inventory order).

    ``drives``: each host's drive paths; ``volumes``: MINIO_VOLUMES; ``drive_total``;
    ``set_sizes``: the erasure set sizes upstream would accept; ``hosts_in_sequence``: whether the
    hosts are <prefix><N> with consecutive N in inventory order, as a distributed deployment needs.
    """
    hosts = list(hosts)
    count = int(drives_per_host)
    distributed = len(hosts) > 1
    drives_pattern = drive_path if count == 1 else f"{drive_path}{{1...{count}}}"
    matches = [_NUMBERED.match(host) for host in hosts]
    in_sequence = False
    hosts_pattern = None
    if hosts and all(matches):
        prefixes = sorted({m.group(1) for m in matches})
        first, last = matches[0].group(2), matches[-1].group(2)
        hosts_pattern = f"{matches[0].group(1)}{{{first}...{last}}}"
        in_sequence = len(prefixes) == 1 and expand_hosts(first, last, prefixes[0]) == hosts
    volumes = (
        f"https://{hosts_pattern}.{domain}:{port}{drives_pattern}"
        if distributed and hosts_pattern
        else drives_pattern
    )
    drive_total = len(hosts) * count
    return {
        "distributed": distributed,
        "drives": drives(drive_path, count) if count >= 1 else [],
        "volumes": volumes,
        "drive_total": drive_total,
        "set_sizes": set_sizes(drive_total, len(hosts) if distributed else count),
        "hosts_in_sequence": in_sequence,
    }


def host_drives(groups, hostvars, host) -> dict:
    """A host's MinIO drives and its deployment's drive count, from the inventory and the minio role's
    defaults (the deployment is the host's minio_group, by default the island model's MinIO group);
    no drives when the host is not in it."""
    group = setting("minio", "minio_group", hostvars, host) or COMPONENT_GROUPS["minio"][0]
    hosts = list(groups.get(group, []))
    if host not in hosts:
        return {"drives": [], "drive_total": 0}
    per_host = int(setting("minio", "minio_drives_per_host", hostvars, host))
    return {
        "drives": drives(setting("minio", "minio_drive_path", hostvars, host), per_host),
        "drive_total": per_host * len(hosts),
    }
