#!/usr/bin/python
# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin Ansible module over module_utils/island_gitea: seed a Gitea repository from a git bundle."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_gitea_seed
short_description: Fill a Gitea repository with every branch and tag of a git bundle, forward only
description:
  - Runs on the Gitea host (where the bundle has landed and been checked by sha256). Verifies the
    bundle with C(git bundle verify), then pushes its branches and tags to
    C(<url>/<owner>/<repository>.git) with the real git client over HTTPS.
  - A missing repository is created through the REST API (private unless O(private=false)), with
    the bundle's HEAD branch as default branch, and receives every branch and tag.
  - An existing repository is updated ref by ref, forward only. A branch whose commit on Gitea is
    not an ancestor of the bundle's (checked with C(git merge-base --is-ancestor)), and a tag that
    would move, are history rewrites; the module then fails naming the repository, each ref and
    its old and new commit, and pushes nothing, unless O(allow_force=true). Refs Gitea holds that
    the bundle lacks are kept. The push is atomic.
  - Reports C(changed=false) when every ref already points at the bundle's commit.
  - Check mode fetches and compares but writes nothing; it lists each ref's old and new commit
    (and with C(--diff) shows them as before/after).
  - The credential goes to git through a C(GIT_ASKPASS) helper that reads it from the environment,
    never on a command line; git runs without system or global configuration.
  - Authenticates with O(username) and O(password) (the user name git presents too), or with a
    token of scope write:repository. O(ca_file) serves the REST API and git (C(GIT_SSL_CAINFO)).
version_added: "0.1.0"
author: island installer contributors
extends_documentation_fragment: [island.installer.gitea, island.installer.tls]
options:
  bundle:
    description: Path of the git bundle on the host the module runs on.
    type: path
    required: true
  owner:
    description: Organisation (or the authenticated user) owning the repository.
    type: str
    required: true
  repository:
    description: Repository name.
    type: str
    required: true
  private:
    description: Visibility of a repository the module creates (an existing one keeps its own).
    type: bool
    default: true
  allow_force:
    description: Push history rewrites (non-fast-forward branches, moved tags) instead of failing.
    type: bool
    default: false
notes:
  - Needs git on the host; runs on ansible-core alone (Python standard library only).
  - Supports check mode and diff mode.
seealso:
  - module: island_gitea
"""

EXAMPLES = r"""
- name: Gitea holds the bundle's cluster-config repository, moved forward only
  island_gitea_seed:
    url: https://git.island.internal:3000
    ca_file: /usr/local/share/ca-certificates/island-ca.crt
    username: island-admin
    token: "{{ gitea_admin_token }}"
    bundle: /var/lib/island/bundle/git/cluster-config.bundle
    owner: platform
    repository: cluster-config
  no_log: true  # the task carries a secret (principle 6)
  register: seeded
"""

RETURN = r"""
repository:
  description: C(owner/repository).
  returned: always
  type: str
  sample: platform/cluster-config
created:
  description: Whether the repository was (in check mode, would be) created.
  returned: always
  type: bool
refs:
  description: Every branch and tag of the bundle.
  returned: always
  type: list
  elements: dict
  contains:
    ref:
      description: Full ref name.
      type: str
      sample: refs/heads/main
    old:
      description: Commit (or tag object) Gitea held before; null when the ref was absent.
      type: str
    new:
      description: Commit (or tag object) of the bundle.
      type: str
    action:
      description:
        - C(unchanged), C(create), C(fast-forward), or C(forced) (a rewrite allowed by O(allow_force)).
      type: str
      sample: fast-forward
msg:
  description: A one-line summary.
  returned: always
  type: str
  sample: "platform/cluster-config: 1 of 3 refs updated: refs/heads/main fast-forward 1a2b3c4d -> 9f8e7d6c"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_argspec import gitea_module_args
from ansible_collections.island.installer.plugins.module_utils.island_gitea import (
    GiteaClient,
    GiteaError,
    seed_repository,
)
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module


def main():
    module = AnsibleModule(
        **gitea_module_args(
            {
                "bundle": {"type": "path", "required": True},
                "owner": {"type": "str", "required": True},
                "repository": {"type": "str", "required": True},
                "private": {"type": "bool", "default": True},
                "allow_force": {"type": "bool", "default": False},
            }
        )
    )
    run_module(module, run, GiteaError)


def run(module):
    p = module.params
    result = seed_repository(
        GiteaClient.from_params(p),
        p["bundle"],
        p["owner"],
        p["repository"],
        allow_force=p["allow_force"],
        check_mode=module.check_mode,
        private=p["private"],
    )
    out = result.to_dict()
    out["msg"] = result.summary()
    if module._diff:
        out["diff"] = result.diff()
    return out


if __name__ == "__main__":
    main()
