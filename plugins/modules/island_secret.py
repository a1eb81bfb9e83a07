#!/usr/bin/python
# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin Ansible module over module_utils/island_secret: the island's secrets, generated once and read."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_secret
short_description: The island's secrets, generated once on the controller, and credentials other roles made
description:
  - "Runs on the controller: C(delegate_to: localhost), C(run_once: true), C(no_log: true)."
  - Each name of O(generate) that has no file in O(dir) yet gets a new secret of O(length) letters
    and digits from the system's CSPRNG, written atomically, mode 0600, in a 0700 directory. A name
    whose file exists keeps its value (a secret is generated once).
  - Each name of O(read) is a credential another role created (for example a MinIO tenant user's
    secret key, which the minio role generates); a missing one fails with O(missing) before anything
    changes, outside check mode.
  - The values are returned in RV(secrets) to the caller's registered result, never set as a fact.
  - In check mode nothing is written, and a secret that does not exist yet reads as an empty string.
version_added: "0.4.0"
author: island installer contributors
options:
  dir:
    description: The directory on the controller that keeps the island's secrets (island_secrets_dir).
    type: path
    required: true
  generate:
    description: File names of the secrets this caller owns, generated when missing.
    type: list
    elements: str
    default: []
  read:
    description: File names of credentials another role created; each must exist.
    type: list
    elements: str
    default: []
  length:
    description: Length of a generated secret.
    type: int
    default: 40
  missing:
    description: What to tell the operator when a name of O(read) does not exist (which role makes it).
    type: str
    default: ""
  missing_fails:
    description:
      - Fail when a name of O(read) does not exist (outside check mode). With C(false) the module
        generates nothing either and returns RV(missing) and RV(msg) instead, for an assert after it -
        the task itself has C(no_log), which would hide its own failure message from the operator.
    type: bool
    default: true
notes:
  - Supports check mode.
"""

EXAMPLES = r"""
- name: The join tokens are generated once, and the snapshot user's key is read
  island_secret:
    dir: "{{ island_secrets_dir }}"
    generate: [k3s-token, k3s-agent-token]
    read: [minio-user-k3s-etcd]
    missing: run the minio role first, which creates that user
    missing_fails: false
  delegate_to: localhost
  run_once: true
  no_log: true
  register: _k3s_secret

- name: The credentials other roles make exist
  ansible.builtin.assert:
    that: _k3s_secret.missing | length == 0
    fail_msg: "{{ _k3s_secret.msg }}"
    quiet: true
  run_once: true
"""

RETURN = r"""
secrets:
  description: Each name of generate and read, and its value.
  returned: success
  type: dict
created:
  description: The names generated on this run (or that would be, in check mode).
  returned: success
  type: list
  elements: str
missing:
  description: The files of O(read) that do not exist (only with O(missing_fails=false)).
  returned: success
  type: list
  elements: str
msg:
  description: What is missing and what to do (empty when nothing is).
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module
from ansible_collections.island.installer.plugins.module_utils.island_secret import SecretError, converge

ARGUMENT_SPEC = {
    "dir": {"type": "path", "required": True},
    "generate": {"type": "list", "elements": "str", "default": [], "no_log": False},
    "read": {"type": "list", "elements": "str", "default": [], "no_log": False},
    "length": {"type": "int", "default": 40},
    "missing": {"type": "str", "default": ""},
    "missing_fails": {"type": "bool", "default": True},
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, run, SecretError)


def run(module):
    params = module.params
    return converge(
        params["dir"],
        params["generate"],
        params["read"],
        length=params["length"],
        missing=params["missing"],
        missing_fails=params["missing_fails"],
        check_mode=module.check_mode,
    )


if __name__ == "__main__":
    main()
