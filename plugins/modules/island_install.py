#!/usr/bin/python
# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin Ansible module over module_utils/island_install; its action (plugins/action) drives it."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_install
short_description: Bundle files checked against the lock, rendered files and directories, in one call per host
description:
  - Puts files in place on a host and reads files back, in one round trip when nothing changes.
  - A file with O(files[].src) comes from the island bundle on the controller; its sha256 in the
    bundle's lock (O(lock)) is what may sit at O(files[].dest). When the host's file differs, the
    action copies the bundle's file to the host, and the host copies it beside its live path while
    hashing it and renames it into place only when the hash is the lock's (same directory, fsync,
    rename, directory fsync). A copy that does not match is removed and the task fails; the live file
    is left as it was.
  - A file with O(files[].content) is rendered on the controller (a template lookup) and written
    atomically when its sha256 differs.
  - Owners and modes are set when they differ. Directories are created first.
  - Each path of O(read) is read back as text (null when absent), for a caller that decides on it.
  - With C(--diff), rendered files show their text diff, bundle files their sha256 before and after.
version_added: "0.9.0"
author: island installer contributors
options:
  bundle_dir:
    description: The bundle directory on the controller (island_bundle_dir); needed for O(files[].src).
    type: path
  lock:
    description: The bundle lock's files (island_bundle.files), each with path and sha256.
    type: list
    elements: dict
    default: []
  directories:
    description: Directories that exist, with their mode and owner, before any file is placed.
    type: list
    elements: dict
    default: []
    suboptions:
      path: {description: The directory., type: path, required: true}
      mode: {description: Its mode (for example "0755")., type: raw}
      owner: {description: Its owner., type: str}
      group: {description: Its group., type: str}
  files:
    description: Files in place; each has exactly one of src and content.
    type: list
    elements: dict
    default: []
    suboptions:
      dest: {description: The live path on the host., type: path, required: true}
      src: {description: The file's path inside the bundle, as the lock lists it., type: str}
      content: {description: The file's text, rendered on the controller., type: str}
      mode: {description: Its mode (for example "0755")., type: raw}
      owner: {description: Its owner., type: str}
      group: {description: Its group., type: str}
  prune:
    description:
      - Directories to tidy after the files are placed. Every file of O(prune[].path) whose name
        matches the glob O(prune[].pattern) and that is not one of O(files) is removed (a retired
        root certificate, for example).
    type: list
    elements: dict
    default: []
    suboptions:
      path: {description: The directory., type: path, required: true}
      pattern:
        description: A glob on file names (for example island-root-r*.crt).
        type: str
        required: true
  read:
    description: Paths on the host read back as text into RV(read) (null for a missing file).
    type: list
    elements: path
    default: []
attributes:
  check_mode:
    support: full
    description: Reports every file, directory and pruned file that would change; writes nothing.
  diff_mode:
    support: full
    description: Rendered files show their text before and after; bundle files their sha256.
  action:
    support: full
    description: The action plugin resolves the lock, hashes rendered content and copies bundle files.
notes:
  - Rendered content is a module argument; a task writing a secret has C(no_log) (the result names
    rendered content by sha256 only).
"""

EXAMPLES = r"""
- name: The binary from the bundle and the hardened unit are in place
  island_install:
    bundle_dir: "{{ island_bundle_dir }}"
    lock: "{{ island_bundle.files }}"
    files:
      - {src: bin/coredns, dest: /usr/local/bin/coredns, mode: "0755"}
      - dest: /etc/systemd/system/coredns.service
        content: "{{ lookup('template', 'service.j2') }}"
        mode: "0644"
    read: [/var/lib/island/components/coredns.json]
  register: _installed
  notify: Restart coredns
"""

RETURN = r"""
files:
  description:
    - Each file, with changed, reason (absent, content, or the attributes that differed), sha256
      (on the host) and want (the lock's or the content's).
  returned: success
  type: list
  elements: dict
changed_files:
  description: The live paths that changed (or would, in check mode).
  returned: success
  type: list
  elements: str
replaced:
  description: The live paths whose content changed (or would), not only their owner or mode.
  returned: success
  type: list
  elements: str
directories:
  description: Each directory, with changed and reason.
  returned: success
  type: list
  elements: dict
pruned:
  description: The files O(prune) removed (or would, in check mode).
  returned: success
  type: list
  elements: str
read:
  description: Each path of O(read) and its text, null when the file does not exist.
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_install import InstallError, converge
from ansible_collections.island.installer.plugins.module_utils.island_io import FileAttributeError
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module

ARGUMENT_SPEC = {
    "directories": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {
            "path": {"type": "path", "required": True},
            "mode": {"type": "raw"},
            "owner": {"type": "str"},
            "group": {"type": "str"},
        },
    },
    "files": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {
            "dest": {"type": "path", "required": True},
            "sha256": {"type": "str", "required": True},
            "src": {"type": "str"},
            "content": {"type": "str"},
            "staged": {"type": "path"},
            "mode": {"type": "raw"},
            "owner": {"type": "str"},
            "group": {"type": "str"},
        },
    },
    "prune": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {"path": {"type": "path", "required": True}, "pattern": {"type": "str", "required": True}},
    },
    "read": {"type": "list", "elements": "path", "default": []},
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, run, (InstallError, FileAttributeError))


def run(module):
    params = module.params
    return converge(
        params["directories"],
        params["files"],
        params["read"],
        check_mode=module.check_mode,
        diff=module._diff,
        prune=params["prune"],
    )


if __name__ == "__main__":
    main()
