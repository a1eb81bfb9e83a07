#!/usr/bin/python
# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin Ansible module over module_utils/island_backup: the island's encrypted backup archives."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_backup
short_description: Write, verify, extract and prune the island's encrypted backup archives
description:
  - Runs on the controller. The format is described in C(docs/backup.md).
  - C(create) writes ONE archive C(island-backup-<YYYYmmddTHHMMSSZ>.tar.age) into O(directory) - a
    plain tar stream (C(manifest.json) first, then C(manifest.json.sha256), then the parts under
    C(parts/<name>)) encrypted as a whole to the age O(recipients), so the stock C(age) tool
    decrypts it by hand (C(age -d -i key.txt <archive> | tar -x)). The manifest lists each part's
    name, kind (file or directory), source, size and sha256 (and, for a directory, every file's).
    The archive is written atomically, mode 0600; the decryption key is not needed to write it.
  - C(verify) decrypts O(archive) with an age identity and checks every part against the manifest
    without writing anything. A changed byte in any part, a part or file missing or extra, a
    manifest that does not match its own sha256, a link, device or path leaving the archive's
    directory is refused, naming the part. A ciphertext altered after it was written fails age's
    authentication and is refused too, as is an identity the archive was not encrypted to.
  - C(extract) verifies, then extracts into O(dest) (absent or an empty directory, mode 0700)
    through a staging directory beside it, renamed into place at the end; nothing is written at
    O(dest) if the archive is refused.
  - C(restore) verifies, then puts the parts O(names) (default every part but those restored onto
    hosts by their own plays, C(etcd-snapshot), C(gitea), C(oci-images) and C(minio-*)) back
    at the paths their manifest records (the controller they were taken on), or at O(paths). A
    target that exists, other than an empty directory, is refused before anything is written; the
    parts are checked member by member into a staging directory, then moved into place with their
    modes.
  - C(prune) keeps the O(keep) newest archives of O(directory) (by the time in their names) and
    removes the older ones; other files are left alone.
version_added: "0.1.0"
author: island installer contributors
options:
  action:
    description: What to do.
    type: str
    required: true
    choices: [create, verify, extract, restore, prune]
  directory:
    description: The backup directory (C(create), C(prune)), typically removable media; it must exist.
    type: path
  parts:
    description:
      - C(create) - the parts of the backup, files or directories on the controller (the CA directory,
        the secrets directory, the receipt, the bundle record, the inventory, an etcd snapshot file,
        a Gitea dump, MinIO bucket exports, an OCI layout...).
      - Inside a directory part only regular files and directories are allowed; a symbolic link or
        special file is refused, naming it.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The part's name in the archive (C(parts/<name>)); lowercase letters, digits, C(._-).
        type: str
        required: true
      path:
        description: The file or directory on the controller.
        type: path
        required: true
  recipients:
    description:
      - C(create) - the age recipients the archive is encrypted to, C(age1...) public keys
        (C(age-keygen -y key.txt) prints one) or C(ssh-ed25519)/C(ssh-rsa) public keys. Any of their
        identities decrypts the archive.
    type: list
    elements: str
    default: []
  island_name:
    description: C(create) - the island's name, recorded in the manifest.
    type: str
  island_domain:
    description: C(create) - the island's domain, recorded in the manifest.
    type: str
  archive:
    description: C(verify), C(extract), C(restore) - the archive to read.
    type: path
  identity_file:
    description:
      - C(verify), C(extract), C(restore) - a file holding the age identity (C(AGE-SECRET-KEY-1...) lines as
        C(age-keygen) writes them, or an unencrypted OpenSSH private key). It must not be readable
        by group or others (mode 0600). Never put on a command line.
    type: path
  identity:
    description:
      - C(verify), C(extract), C(restore) - the identity's text instead of O(identity_file) (from a vault).
    type: str
  dest:
    description: C(extract) - the directory to extract into; absent or empty, its parent must exist.
    type: path
  names:
    description:
      - C(restore) - the parts to restore; default every part but those restored onto hosts
        (C(etcd-snapshot), C(gitea), C(oci-images), C(minio-*)).
    type: list
    elements: str
    default: []
  paths:
    description: C(restore) - a path for a part that goes elsewhere than where it was taken from.
    type: dict
    default: {}
  keep:
    description: C(prune) - how many of the newest archives to keep (at least 1).
    type: int
attributes:
  check_mode:
    support: full
    description: >-
      C(create) hashes the parts and returns the manifest, C(extract) verifies, C(prune) lists what it
      would remove; nothing is written or removed.
  diff_mode:
    support: none
notes:
  - Runs on the controller (delegated to localhost) with the controller's Python, which has C(pyrage)
    (in requirements.txt); set C(ansible_python_interpreter) to the C(ansible_playbook_python) there.
  - age encryption to a public recipient does not authenticate the writer; compare the archive's
    C(sha256) returned by C(verify) with the one C(create) returned to know it is the same file.
  - Supports check mode.
"""

EXAMPLES = r"""
- name: The controller's state is backed up, encrypted to the operator's key
  island_backup:
    action: create
    directory: /media/backup
    parts:
      - {name: ca, path: "{{ island_pki_dir }}"}
      - {name: secrets, path: "{{ island_secrets_dir }}"}
      - {name: receipt, path: "{{ island_secrets_dir | dirname }}/island-receipt.json"}
    recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p]
    island_domain: "{{ island_domain }}"
  delegate_to: localhost
  run_once: true

- name: The backup matches its manifest
  island_backup:
    action: verify
    archive: /media/backup/island-backup-20261203T024333Z.tar.age
    identity_file: /root/island-backup-key.txt

- name: Only the seven newest backups are kept
  island_backup:
    action: prune
    directory: /media/backup
    keep: 7
"""

RETURN = r"""
restored:
  description: C(restore) - each part restored (or, in check mode, that would be), with its path.
  returned: restore
  type: list
  elements: dict
path:
  description: The archive written, read or verified.
  returned: create, verify, extract, restore
  type: str
sha256:
  description: The sha256 of the archive file (the ciphertext); not returned by C(create) in check mode.
  returned: create, verify, extract, restore
  type: str
size:
  description: The archive's size in bytes.
  returned: create (not in check mode), verify, extract
  type: int
manifest:
  description: The manifest (see docs/backup.md).
  returned: create, verify, extract
  type: dict
manifest_sha256:
  description: The sha256 of manifest.json, as manifest.json.sha256 in the archive holds it.
  returned: create, verify, extract
  type: str
parts:
  description: The parts' names (C(restore) - the parts restored).
  returned: create, verify, extract, restore
  type: list
  elements: str
dest:
  description: Where the archive was (or would be) extracted.
  returned: extract
  type: str
kept:
  description: The archives kept, newest first.
  returned: prune
  type: list
  elements: str
removed:
  description: The archives removed (or that would be in check mode).
  returned: prune
  type: list
  elements: str
problems:
  description: When an archive is refused, each thing that does not match its manifest, naming the part.
  returned: failure
  type: list
  elements: str
msg:
  description: A one-line summary.
  returned: always
  type: str
"""

import sys

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_backup import (
    BackupError,
    create,
    extract,
    load_identities,
    prune,
    restore,
    verify,
)
from ansible_collections.island.installer.plugins.module_utils.island_backup_age import PYRAGE_IMPORT_ERROR
from ansible_collections.island.installer.plugins.module_utils.island_module import (
    missing_library,
    run_module,
)

ARGUMENT_SPEC = {
    "action": {
        "type": "str",
        "required": True,
        "choices": ["create", "verify", "extract", "restore", "prune"],
    },
    "directory": {"type": "path"},
    "parts": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": {"name": {"type": "str", "required": True}, "path": {"type": "path", "required": True}},
    },
    "recipients": {"type": "list", "elements": "str", "default": []},
    "island_name": {"type": "str"},
    "island_domain": {"type": "str"},
    "archive": {"type": "path"},
    "identity_file": {"type": "path"},
    "identity": {"type": "str", "no_log": True},
    "dest": {"type": "path"},
    "names": {"type": "list", "elements": "str", "default": []},
    "paths": {"type": "dict", "default": {}},
    "keep": {"type": "int"},
}
IDENTITY = ("identity_file", "identity")
REQUIRED_IF = [
    ("action", "create", ("directory", "parts", "recipients")),
    ("action", "prune", ("directory", "keep")),
    ("action", "verify", ("archive",)),
    ("action", "verify", IDENTITY, True),
    ("action", "extract", ("archive", "dest")),
    ("action", "extract", IDENTITY, True),
    ("action", "restore", ("archive",)),
    ("action", "restore", IDENTITY, True),
]


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=REQUIRED_IF,
        mutually_exclusive=[IDENTITY],
        supports_check_mode=True,
    )
    missing = None
    if module.params["action"] != "prune":
        hint = f" (requirements.txt). This ran with {sys.executable}; on the controller, run the task with "
        hint += "ansible_python_interpreter: '{{ ansible_playbook_python }}'"
        missing = missing_library("pyrage", PYRAGE_IMPORT_ERROR, hint=hint)
    run_module(module, run, BackupError, missing=missing, details=_problems)


def _problems(exc):
    return {"problems": exc.problems} if hasattr(exc, "problems") else {}


def run(module):
    params, check = module.params, module.check_mode
    action = params["action"]
    if action == "create":
        return create(
            params["directory"],
            params["parts"],
            params["recipients"],
            island_name=params["island_name"],
            island_domain=params["island_domain"],
            check_mode=check,
        )
    if action == "prune":
        return prune(params["directory"], params["keep"], check_mode=check)
    identities = load_identities(params["identity_file"], params["identity"])
    if action == "verify":
        return verify(params["archive"], identities)
    if action == "restore":
        return restore(
            params["archive"], identities, parts=params["names"], paths=params["paths"], check_mode=check
        )
    return extract(params["archive"], params["dest"], identities, check_mode=check)


if __name__ == "__main__":
    main()
