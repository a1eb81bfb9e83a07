#!/usr/bin/python
# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin Ansible module over module_utils/island_etcd_snapshot (what k3s's restore checks in a snapshot)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_etcd_snapshot
short_description: Check that a file is an etcd snapshot k3s's cluster-reset would restore
description:
  - Checks what C(k3s server --cluster-reset --cluster-reset-restore-path) checks in the file (k3s
    v1.36.3+k3s1 pkg/etcd/etcd.go Reset and Restore, etcd v3.6 etcdutl snapshot restore) - a
    regular file that ends with the sha256 of the database before it, at a size of a multiple of
    512 bytes plus 32.
  - k3s makes the last of these checks only after it moved the server's database aside, so a bad
    file leaves a stopped server without its database. Checked first, it is refused before anything
    changes.
  - Reads only; never changes anything. Runs where the file is (the controller, for a backup's copy).
version_added: "0.5.0"
author: island installer contributors
options:
  path:
    description: The snapshot file.
    type: path
    required: true
notes:
  - Supports check mode.
"""

EXAMPLES = r"""
- name: The backup's snapshot is one k3s would restore
  island_etcd_snapshot:
    path: /tmp/island-restore.x/etcd-snapshot
  delegate_to: localhost
  run_once: true
  register: snapshot_checked
"""

RETURN = r"""
path:
  description: The file checked.
  returned: success
  type: str
size:
  description: Its size in bytes.
  returned: success
  type: int
sha256:
  description: The sha256 of the whole file (what a copy on a server must have).
  returned: success
  type: str
db_sha256:
  description: The sha256 the snapshot carries at its end, of the database before it.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_etcd_snapshot import (
    EtcdSnapshotError,
    check_snapshot,
)
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module

ARGUMENT_SPEC = {"path": {"type": "path", "required": True}}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, run, EtcdSnapshotError)


def run(module):
    return {"changed": False, **check_snapshot(module.params["path"])}


if __name__ == "__main__":
    main()
