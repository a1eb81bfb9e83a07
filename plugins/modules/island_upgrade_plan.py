#!/usr/bin/python
# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin Ansible module over module_utils/island_upgrade (the upgrade plan and its guards)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_upgrade_plan
short_description: Plan a bundle's component changes host by host, and refuse what must not happen
description:
  - Compares the version of each bundle component that runs on each host (the host's record,
    written by the island's roles once the component runs it) with the version the verified
    bundle's lock brings, and returns the action per host and component (install, upgrade,
    downgrade, replace, unchanged).
  - Given the verified bundle's record, refuses a bundle older than the one the island last took
    (or another bundle under the same version) unless O(rollback_to) names its version.
  - Fails, naming every host, component and version at fault, when the bundle would downgrade a
    component the operator did not allow to go back, when k3s would skip a Kubernetes minor version
    (upstream upgrades one minor at a time), or when a version does not follow its component's scheme.
  - Reads only; never changes anything. Runs on the controller.
version_added: "0.1.0"
author: island installer contributors
options:
  lock:
    description: The verified bundle's lock (the fact island_bundle set by the bundle role).
    type: dict
    required: true
  hosts:
    description:
      - Per host, C(components) (the bundle components it carries, from its groups) and C(records)
        (component name to the host's record, C({component, version, sha256})), and optionally
        C(bundle_record), the host's record of the last bundle applied (its JSON text, or null).
    type: dict
    required: true
  allow_downgrade:
    description: Components that may go back to an older version in this run (a deliberate rollback).
    type: list
    elements: str
    default: []
  allow_minor_skip:
    description:
      - Let k3s skip a Kubernetes minor version. Upstream does not support it; for a cluster rebuilt
        from scratch only.
    type: bool
    default: false
  bundle:
    description:
      - The verified bundle's record, C({name, version, created, lock_sha256}) (the fact
        island_bundle_record set by the bundle role). With it, the bundle itself is checked against
        O(applied).
    type: dict
  applied:
    description:
      - Where a record of the last applied bundle was read (C(controller (<path>)), a host name) to
        that record, or null where there is none.
      - A bundle older than a record, another bundle under a recorded version, or a bundle of
        another name is refused unless O(rollback_to) is its version. The same lock, or a newer
        version, passes; no record at all (day 1) passes.
    type: dict
    default: {}
  rollback_to:
    description:
      - The version of the bundle being applied, named by the operator to roll back to it (or to
        replace a bundle of the same version) on purpose. Any other value is refused.
    type: str
"""

EXAMPLES = r"""
- name: The upgrade is planned and its guards hold
  island_upgrade_plan:
    lock: "{{ island_bundle }}"
    hosts:
      server1:
        components: [k3s]
        records:
          k3s: {component: k3s, version: v1.36.3+k3s1, sha256: "4f2c..."}
    allow_downgrade: []
  delegate_to: localhost
  run_once: true
  register: upgrade_plan
"""

RETURN = r"""
hosts:
  description: Host to component to C({running, bundle, action}); C(running) is null without a record.
  returned: always
  type: dict
components:
  description: Component to C({bundle, running (versions now running somewhere), hosts_to_change}).
  returned: always
  type: dict
lines:
  description: The plan, one readable line per host and component.
  returned: always
  type: list
  elements: str
bundle:
  description:
    - With O(bundle), the decision about the bundle itself, C({action, refused, line, recorded});
      C(action) is install (nothing recorded), unchanged, upgrade or rollback.
  returned: when O(bundle) is given
  type: dict
refused:
  description: What the guards refused (the module fails when this is not empty).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module
from ansible_collections.island.installer.plugins.module_utils.island_upgrade import plan

ARGUMENT_SPEC = {
    "lock": {"type": "dict", "required": True},
    "hosts": {"type": "dict", "required": True},
    "allow_downgrade": {"type": "list", "elements": "str", "default": []},
    "allow_minor_skip": {"type": "bool", "default": False},
    "bundle": {"type": "dict"},
    "applied": {"type": "dict", "default": {}},
    "rollback_to": {"type": "str"},
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, run)


def run(module):
    result = plan(
        module.params["lock"],
        module.params["hosts"],
        allow_downgrade=module.params["allow_downgrade"],
        allow_minor_skip=module.params["allow_minor_skip"],
        bundle=module.params["bundle"],
        applied=module.params["applied"],
        rollback_to=module.params["rollback_to"],
    )
    if result["refused"]:
        module.fail_json(
            msg="the bundle's upgrade is refused: " + "; ".join(result["refused"]),
            changed=False,
            **result,
        )
    return {"changed": False, **result}


if __name__ == "__main__":
    main()
