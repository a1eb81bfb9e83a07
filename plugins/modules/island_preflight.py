#!/usr/bin/python
"""Ansible module: read what a host is and what stands in the island's way. Changes nothing."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_preflight
short_description: Check that a host can carry its part of the island
description:
  - Reads the operating system, SELinux's mode, CPU architecture, systemd state, clock, free disk
    space, the sockets that listen on the host and the host firewall's rules (C(nft -j list ruleset),
    C(iptables-save), C(ip6tables-save), firewalld and ufw), and reports every problem as a sentence
    that says what was found and what to do.
  - Never changes anything, in check mode or not.
  - Runs through an action plugin of the same name (plugins/action/island_preflight.py), which adds
    the clock check against the controller (O(clock_skew_bound)) and, with O(fail_on_problems), turns
    the problems into one failure naming the host, as the preflight role uses it.
options:
  clock_skew_bound:
    description:
      - Seconds the host's clock may be off the controller's. The action notes the controller's time
        just before the module is sent and just after its answer; the host's time must fall between
        them, give or take the bound (a controller slowed by load widens the window instead of
        counting its delay as skew). Adds a problem otherwise, and RV(facts.clock_skew_seconds).
        Not checked when unset.
    type: float
  fail_on_problems:
    description: Fail with one message naming the host and every problem, instead of only returning them.
    type: bool
    default: false
  supported_os:
    description:
      - "The releases the island is tested on, per os-release C(ID), each the major C(VERSION_ID)
        (C(debian: [\"12\", \"13\"])). Only C(ID) counts, not C(ID_LIKE): a derivative is another system."
    type: dict
    required: true
  allow_untested_os:
    description:
      - Go on when the system is not in O(supported_os), with a warning that names it, instead of
        reporting a problem. The operator's explicit choice.
    type: bool
    default: false
  inventory_name:
    description:
      - The host's inventory name. Warnings begin with it, since Ansible shows a module's warnings
        without the host they came from.
    type: str
  firewall_check:
    description:
      - Report the island ports (O(ports)) the host firewall would drop or reject for a new
        connection from another host. Off when the operator manages the firewall and has opened them.
    type: bool
    default: true
  architectures:
    description: CPU architectures (C(uname -m)) the bundle carries binaries for.
    type: list
    elements: str
    required: true
  controller_time:
    description:
      - The controller's clock (seconds since the epoch) when the task was sent; the module then
        compares the host's clock with it. Without it the module only returns the host's time
        (C(facts.host_time)) for the caller to bracket between the times it sent the task and got
        the answer, which does not count a loaded controller's delay as skew (the preflight role does).
    type: float
  max_clock_skew:
    description: Largest accepted difference between the host's and the controller's clocks, in seconds.
    type: float
    default: 5
  disk_path:
    description: Where the island keeps its data on this host.
    type: path
    required: true
  disk_required_bytes:
    description: Free bytes needed at O(disk_path).
    type: int
    required: true
  island_address:
    description: The host's island address; services that bind only it do not collide with loopback listeners.
    type: str
  ports:
    description: Ports this host's services will bind.
    type: list
    elements: dict
    default: []
    suboptions:
      port: {description: Port number., type: int, required: true}
      proto: {description: Transport., type: str, choices: [tcp, udp], required: true}
      service: {description: Who needs it, for the message., type: str, required: true}
      bind:
        description: C(island) if the service binds the island address only.
        type: str
        choices: [island, any]
        default: any
      units:
        description: Systemd units allowed to hold the port already (the island's own service, on a rerun).
        type: list
        elements: str
        default: []
      users:
        description:
          - Users whose sockets may hold the port when the owning unit cannot be read (a root without
            CAP_SYS_PTRACE cannot read another user's /proc/<pid>/fd).
        type: list
        elements: str
        default: []
author: Island installer developers
"""

EXAMPLES = r"""
- name: Host is fit for the island
  island_preflight:
    supported_os: {debian: ["12", "13"]}
    architectures: [x86_64, aarch64]
    controller_time: "{{ now(utc=true).timestamp() }}"
    disk_path: /var/lib
    disk_required_bytes: 2147483648
    ports:
      - {port: 53, proto: udp, service: CoreDNS, bind: island, units: [coredns.service]}
  register: preflight
"""

RETURN = r"""
problems:
  description: Every problem found, each a sentence with what to do. Empty when the host is fit.
  returned: always
  type: list
  elements: str
facts:
  description:
    - What was read (os, architecture, systemd, network (default_route, resolved_active),
      clock_skew_seconds, disk_free_bytes, listeners), and warnings (the untested system
      O(allow_untested_os) let through; also shown as the task's warnings).
  returned: always
  type: dict
ansible_facts:
  description:
    - C(os_family) as C(setup) names it (Debian, RedHat), recognised from os-release's ID or ID_LIKE,
      so that no later role gathers facts for it; absent for another family.
    - C(island_preflight.network), the host's C(default_route) and C(resolved_active) (whether
      systemd-resolved runs), for the k3s and dns roles later in the run.
    - C(island_preflight.os_codename), os-release's C(VERSION_CODENAME) (C(bookworm)), empty when it
      has none; the journal role picks the bundle's Debian packages for that release.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module
from ansible_collections.island.installer.plugins.module_utils.island_preflight import run_checks

PORT_SPEC = {
    "port": {"type": "int", "required": True},
    "proto": {"type": "str", "required": True, "choices": ["tcp", "udp"]},
    "service": {"type": "str", "required": True},
    "bind": {"type": "str", "default": "any", "choices": ["island", "any"]},
    "units": {"type": "list", "elements": "str", "default": []},
    "users": {"type": "list", "elements": "str", "default": []},
}


def main():
    module = AnsibleModule(
        argument_spec={
            "supported_os": {"type": "dict", "required": True},
            "allow_untested_os": {"type": "bool", "default": False},
            "firewall_check": {"type": "bool", "default": True},
            "inventory_name": {"type": "str"},
            "architectures": {"type": "list", "elements": "str", "required": True},
            "controller_time": {"type": "float"},
            "max_clock_skew": {"type": "float", "default": 5},
            "disk_path": {"type": "path", "required": True},
            "disk_required_bytes": {"type": "int", "required": True},
            "island_address": {"type": "str"},
            "ports": {"type": "list", "elements": "dict", "default": [], "options": PORT_SPEC},
        },
        supports_check_mode=True,
    )
    run_module(
        module, run, OSError, details=lambda exc: {"msg": f"preflight could not read the host's state: {exc}"}
    )


def run(module):
    problems, facts = run_checks(module.params)
    for warning in facts["warnings"]:
        module.warn(warning)  # shown in the run's output, as well as returned in facts
    result = {"changed": False, "problems": problems, "facts": facts}
    # Kept as host facts for the roles that decide on them later in the run, so that none asks the
    # host again: the OS family (what `setup` would say; the pki role's trust store paths are per
    # family), the default route (k3s role), whether systemd-resolved runs (dns role's resolver) and
    # the Debian release (journal role's packages).
    codename = facts["os"]["VERSION_CODENAME"] or ""
    result["ansible_facts"] = {"island_preflight": {"network": facts["network"], "os_codename": codename}}
    if facts["os"]["family"]:
        result["ansible_facts"]["os_family"] = facts["os"]["family"]
    return result


if __name__ == "__main__":
    main()
