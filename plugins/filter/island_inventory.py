"""Inventory sanity for the island, as Ansible filters (run on the controller, before any host is
contacted). Each problem is a sentence naming the group or host at fault and what to do."""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.island.installer.plugins.module_utils.island_model import COMPONENT_GROUPS
from ansible_collections.island.installer.plugins.module_utils.island_model import address as _address

K3S_SERVERS, K3S_AGENTS = COMPONENT_GROUPS["k3s"]
_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def island_address(hostvars, host):
    """The address a host is known by in the island: island_address, else ansible_host, else its name."""
    return _address(hostvars, host)


def island_addresses(hosts, hostvars):
    """The island addresses of a list of hosts (a group), in the group's order."""
    return [island_address(hostvars, host) for host in hosts]


def _domain_problems(domain):
    if not domain:
        return [
            "inventory: island_domain is not set; set it in group_vars/all (for example "
            "island_domain: island.internal), every service name derives from it"
        ]
    labels = str(domain).rstrip(".").split(".")
    if len(labels) < 2 or not all(_DNS_LABEL.match(label) for label in labels):
        return [
            f"inventory: island_domain '{domain}' is not a valid DNS domain of two or more labels in "
            f"lower case (for example island.internal)"
        ]
    return []


def island_inventory_problems(groups, hostvars, required_groups, domain=None):
    """Return every inventory problem found; an empty list means the inventory is sane."""
    problems = _domain_problems(domain)

    for group in required_groups:
        if not groups.get(group):
            problems.append(
                f"inventory: group '{group}' is missing or empty; the island needs at least one "
                f"host in it (one host may carry several groups, see inventory/demo/hosts.yml)"
            )

    servers = list(groups.get(K3S_SERVERS, []))
    if servers and len(servers) % 2 == 0:
        problems.append(
            f"inventory: {K3S_SERVERS} has {len(servers)} hosts ({', '.join(servers)}); embedded etcd needs "
            f"an odd number (1, 3 or 5) to keep quorum: add a server or move one to {K3S_AGENTS}"
        )

    for host in sorted(set(servers) & set(groups.get(K3S_AGENTS, []))):
        problems.append(
            f"inventory: host {host} is in both {K3S_SERVERS} and {K3S_AGENTS}; a k3s server "
            f"already runs workloads: remove it from {K3S_AGENTS}"
        )

    by_address = {}
    for host in sorted(groups.get("all", [])):
        value = hostvars.get(host, {}).get("island_address")
        if value is not None:
            try:
                ipaddress.ip_address(str(value))
            except ValueError:
                problems.append(
                    f"inventory: host {host} has island_address '{value}', which is not an IP "
                    f"address: set it to the host's address on the island network"
                )
                continue
        by_address.setdefault(island_address(hostvars, host), []).append(host)
    for address, hosts in sorted(by_address.items()):
        if len(hosts) > 1:
            problems.append(
                f"inventory: hosts {', '.join(hosts)} share the address {address}; every host needs "
                f"its own (set ansible_host or island_address), or list one host in several groups"
            )
    return problems


def island_bundle_share_bytes(files, group_names, share):
    """Bytes of the bundle that land on a host in `group_names`.

    `share` maps a bundle top-level directory (bin, k3s, oci, git, files) to the groups whose hosts
    receive it; the group `all` means every host.
    """
    total = 0
    for entry in files or []:
        top = str(entry["path"]).split("/", 1)[0]
        groups = share.get(top, [])
        if "all" in groups or set(groups) & set(group_names):
            total += int(entry["size"])
    return total


class FilterModule:
    def filters(self):
        return {
            "island_inventory_problems": island_inventory_problems,
            "island_address": island_address,
            "island_addresses": island_addresses,
            "island_bundle_share_bytes": island_bundle_share_bytes,
        }
