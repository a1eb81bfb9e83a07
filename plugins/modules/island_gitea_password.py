#!/usr/bin/python
# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin Ansible module over module_utils/island_gitea: a Gitea user's password, off the command line."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_gitea_password
short_description: Give a Gitea user the password an operator supplies, through the REST API
description:
  - Gitea 1.26 takes a password on its command line only (C(gitea admin user create --password)),
    where other users of the host can read it. This module sets it through Gitea's REST API over
    verified TLS instead (C(PATCH /api/v1/admin/users/{username}), authenticated with an admin
    token), with C(must_change_password=false).
  - Idempotent by trial. The password is tried first with basic authentication on
    C(GET /api/v1/user); when it works nothing changes. Otherwise it is set, reported as changed,
    and tried again.
  - Check mode only tries the password and reports whether it would be set.
version_added: "0.1.0"
author: island installer contributors
extends_documentation_fragment: [island.installer.gitea.connection, island.installer.tls]
options:
  token:
    description: Access token of a site administrator, with the admin scope (C(all) or write:admin).
    type: str
    required: true
  username:
    description: The user whose password is set.
    type: str
    required: true
  password:
    description:
      - The password. Gitea refuses one shorter than its C(MIN_PASSWORD_LENGTH) (8 by default).
    type: str
    required: true
notes:
  - Supports check mode.
"""

EXAMPLES = r"""
- name: The administrator has the password from the vault
  island_gitea_password:
    url: https://10.77.6.10:3000
    ca_file: /etc/island/pki/island-roots.pem
    token: "{{ gitea_token }}"
    username: island-admin
    password: "{{ vault_gitea_admin_password }}"
  no_log: true
"""

RETURN = r"""
msg:
  description: Whether the password already worked, was set, or would be set.
  returned: always
  type: str
  sample: the supplied password of island-admin was set
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_argspec import gitea_module_args
from ansible_collections.island.installer.plugins.module_utils.island_gitea import GiteaError, ensure_password
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module


def main():
    module = AnsibleModule(
        **gitea_module_args(
            {
                "token": {"type": "str", "required": True, "no_log": True},
                "username": {"type": "str", "required": True},
                "password": {"type": "str", "required": True, "no_log": True},
            },
            auth=False,
        )
    )
    run_module(module, run, GiteaError)


def run(module):
    p = module.params
    changed, msg = ensure_password(
        p["url"], p["ca_file"], p["token"], p["username"], p["password"], check_mode=module.check_mode
    )
    return {"changed": changed, "msg": msg}


if __name__ == "__main__":
    main()
