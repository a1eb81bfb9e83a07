#!/usr/bin/python
# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check, before anything changes, that MinIO can use this host's drives."""

DOCUMENTATION = r"""
---
module: island_preflight_minio
short_description: Refuse MinIO drives on the root filesystem before anything changes
description:
  - Reports, as sentences, the drives of this host that MinIO would refuse because they are on the
    same device as C(/), in a deployment of more than one drive (MinIO RELEASE.2025-09-07T16-13-09Z,
    C(cmd/xl-storage.go), "drive is part of root drive, will not be used"). A drive that does not
    exist yet is judged by its nearest existing parent directory.
  - Reads only; the caller asserts that O(drives) gave no problems.
version_added: "1.0.0"
author: island installer contributors
options:
  drives:
    description: This host's MinIO drives (absolute paths).
    type: list
    elements: path
    required: true
  drive_total:
    description: The number of drives of the whole deployment (every host); 1 allows a drive on C(/).
    type: int
    required: true
notes:
  - Supports check mode.
"""

EXAMPLES = r"""
- name: MinIO's drives are each a filesystem of their own
  island_preflight_minio:
    drives: [/mnt/disk1, /mnt/disk2]
    drive_total: 4
  register: _drives
  failed_when: _drives.problems | length > 0
"""

RETURN = r"""
problems:
  description: What MinIO would refuse, naming the drives and the fix; empty when all is well.
  returned: always
  type: list
  elements: str
on_root:
  description: The drives found on the root filesystem (whatever the layout).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module
from ansible_collections.island.installer.plugins.module_utils.island_preflight_minio import (
    check_drives,
    drives_on_root,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "drives": {"type": "list", "elements": "path", "required": True},
            "drive_total": {"type": "int", "required": True},
        },
        supports_check_mode=True,
    )
    run_module(
        module, run, OSError, details=lambda exc: {"msg": f"preflight could not read MinIO's drives: {exc}"}
    )


def run(module):
    drives, total = module.params["drives"], module.params["drive_total"]
    return {"changed": False, "problems": check_drives(drives, total), "on_root": drives_on_root(drives)}


if __name__ == "__main__":
    main()
