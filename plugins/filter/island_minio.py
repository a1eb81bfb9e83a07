# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A MinIO deployment's layout as a filter (plugins/module_utils/island_minio_layout.py)."""

from __future__ import annotations

from ansible_collections.island.installer.plugins.module_utils.island_minio_layout import host_drives, layout


def island_minio_layout(hosts, drives_per_host, drive_path, domain, port):
    """`minio_hosts | island_minio_layout(...)`: drives, MINIO_VOLUMES, erasure set sizes."""
    return layout(hosts, drives_per_host, drive_path, domain, port)


def island_minio_host_drives(groups, hostvars, host):
    """`groups | island_minio_host_drives(hostvars, inventory_hostname)`: {drives, drive_total}."""
    return host_drives(groups, hostvars, host)


class FilterModule:
    def filters(self):
        return {
            "island_minio_layout": island_minio_layout,
            "island_minio_host_drives": island_minio_host_drives,
        }
