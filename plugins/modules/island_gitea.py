#!/usr/bin/python
# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin Ansible module over module_utils/island_gitea: Gitea organisations, teams, repositories."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_gitea
short_description: Make Gitea hold the island's organisations, teams and repositories
description:
  - Converges a Gitea server (1.26) through its REST API to the organisations (with their teams)
    and repositories given. Nothing is ever deleted; only the fields given are compared and set.
  - Each object is read first; one that is absent is created, one whose fields differ is patched
    with the differing fields only. A rerun with the same arguments reports C(changed=false).
  - Check mode reads only and reports what would change. With C(--diff) it shows each object's
    fields before and after.
  - TLS is always verified, against O(ca_file) (the island CA) when given.
  - Authenticates as an admin user, or with a token of scope write:organization and
    write:repository.
version_added: "0.1.0"
author: island installer contributors
extends_documentation_fragment: [island.installer.gitea, island.installer.tls]
options:
  organizations:
    description: Organisations Gitea must hold.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Organisation name (Gitea's C(username) of the organisation).
        type: str
        required: true
      full_name:
        description: Display name.
        type: str
      description:
        description: Description.
        type: str
      website:
        description: Website URL.
        type: str
      location:
        description: Location.
        type: str
      visibility:
        description: Who can see the organisation.
        type: str
        choices: [public, limited, private]
      teams:
        description: Teams of the organisation (the built-in C(Owners) team needs no entry).
        type: list
        elements: dict
        default: []
        suboptions:
          name:
            description: Team name.
            type: str
            required: true
          description:
            description: Description.
            type: str
          permission:
            description: Access of the team's members to the team's repositories.
            type: str
            choices: [read, write, admin]
          includes_all_repositories:
            description: Whether the team has access to every repository of the organisation.
            type: bool
          can_create_org_repo:
            description: Whether members may create repositories in the organisation.
            type: bool
          units:
            description: Repository units the team can use, for example C(repo.code).
            type: list
            elements: str
  repositories:
    description: Repositories Gitea must hold (empty when created; fill them with M(island_gitea_seed)).
    type: list
    elements: dict
    default: []
    suboptions:
      owner:
        description: Organisation (or the authenticated user) owning the repository.
        type: str
        required: true
      name:
        description: Repository name.
        type: str
        required: true
      description:
        description: The repository's description.
        type: str
      website:
        description: Website URL shown on the repository.
        type: str
      private:
        description: Whether the repository is private.
        type: bool
      default_branch:
        description: Default branch.
        type: str
notes:
  - Runs on ansible-core alone (Python standard library only).
  - Supports check mode and diff mode.
seealso:
  - module: island_gitea_seed
"""

EXAMPLES = r"""
- name: Gitea holds the platform organisation, its teams and the repositories of the bundle
  island_gitea:
    url: https://git.island.internal:3000
    ca_file: /usr/local/share/ca-certificates/island-ca.crt
    username: island-admin
    password: "{{ gitea_admin_password }}"
    organizations:
      - name: platform
        full_name: Island platform
        visibility: private
        teams:
          - name: operators
            permission: write
            includes_all_repositories: true
            units: [repo.code, repo.issues, repo.pulls, repo.releases]
    repositories:
      - owner: platform
        name: cluster-config
        private: true
        default_branch: main
  no_log: true  # the task carries a secret (principle 6)
"""

RETURN = r"""
objects:
  description: One entry per organisation, team and repository, in argument order.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: C(organization), C(team) or C(repository).
      type: str
      sample: team
    name:
      description: Name (C(org/team) for a team, C(owner/repo) for a repository).
      type: str
      sample: platform/operators
    action:
      description: C(create), C(update) or C(unchanged) (in check mode, what would be done).
      type: str
      sample: update
    reason:
      description: Why; for an update each differing field with its old and new value.
      type: str
      sample: "permission: 'read' -> 'write'"
msg:
  description: A one-line summary.
  returned: always
  type: str
  sample: "1 of 4 objects changed: update team platform/operators (permission: 'read' -> 'write')"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_argspec import (
    gitea_module_args,
    list_of,
)
from ansible_collections.island.installer.plugins.module_utils.island_gitea import (
    GiteaClient,
    GiteaError,
    converge,
)
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module

TEAM_SPEC = {
    "name": {"type": "str", "required": True},
    "description": {"type": "str"},
    "permission": {"type": "str", "choices": ["read", "write", "admin"]},
    "includes_all_repositories": {"type": "bool"},
    "can_create_org_repo": {"type": "bool"},
    "units": {"type": "list", "elements": "str"},
}
ORG_SPEC = {
    "name": {"type": "str", "required": True},
    "full_name": {"type": "str"},
    "description": {"type": "str"},
    "website": {"type": "str"},
    "location": {"type": "str"},
    "visibility": {"type": "str", "choices": ["public", "limited", "private"]},
    "teams": {"type": "list", "elements": "dict", "default": [], "options": TEAM_SPEC},
}
REPO_SPEC = {
    "owner": {"type": "str", "required": True},
    "name": {"type": "str", "required": True},
    "description": {"type": "str"},
    "website": {"type": "str"},
    "private": {"type": "bool"},
    "default_branch": {"type": "str"},
}


def main():
    module = AnsibleModule(
        **gitea_module_args({"organizations": list_of(ORG_SPEC), "repositories": list_of(REPO_SPEC)})
    )
    run_module(module, run, GiteaError)


def run(module):
    p = module.params
    client = GiteaClient.from_params(p)
    result = converge(client, p["organizations"], p["repositories"], check_mode=module.check_mode)
    out = {"changed": result.changed, "objects": result.items, "msg": result.summary()}
    if module._diff:
        out["diff"] = {"before": result.before, "after": result.after}
    return out


if __name__ == "__main__":
    main()
