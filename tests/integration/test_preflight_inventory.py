"""playbooks/preflight.yml refuses each bad inventory on the controller, before any host is contacted.

The inventories' hosts use the local connection, so a regression that let a bad inventory through
would touch nothing but this machine.
"""

from __future__ import annotations

import pytest
import yaml

from tests.support import ROOT
from tests.support.playbook import local_inventory, run_playbook

PLAYBOOK = ROOT / "playbooks" / "preflight.yml"


def _inventory(servers=("s1", "s2", "s3"), agents=("a1",), addresses=None, domain="island.test", drop=()):
    addresses = addresses or {}
    hosts = ["infra", *servers, *agents]
    groups = {
        "island_dns": ["infra"],
        "island_registry": ["infra"],
        "island_minio": ["infra"],
        "island_gitea": ["infra"],
        "k3s_servers": list(servers),
        "k3s_agents": list(agents),
    }
    all_vars = {"island_domain": domain} if domain else {}
    return local_inventory(
        {group: members for group, members in groups.items() if group not in drop},
        {h: {"ansible_host": addresses.get(h, f"10.99.0.{i + 10}")} for i, h in enumerate(hosts)},
        **all_vars,
    )


def _run(tmp_path, inventory):
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    return run_playbook(PLAYBOOK, inventory=path)


BAD_INVENTORIES = {
    "even_k3s_servers": (
        {"servers": ("s1", "s2")},
        "k3s_servers has 2 hosts (s1, s2); embedded etcd needs an odd number",
    ),
    "missing_required_group": ({"drop": ("island_dns",)}, "group 'island_dns' is missing or empty"),
    "host_in_both_k3s_groups": ({"agents": ("s3",)}, "host s3 is in both k3s_servers and k3s_agents"),
    "duplicate_addresses": (
        {"addresses": {"s1": "10.99.0.50", "a1": "10.99.0.50"}},
        "hosts a1, s1 share the address 10.99.0.50",
    ),
    "missing_island_domain": ({"domain": None}, "island_domain is not set"),
}


@pytest.mark.parametrize("case", sorted(BAD_INVENTORIES))
def test_preflight_refuses_a_bad_inventory_before_touching_a_host(tmp_path, case):
    overrides, message = BAD_INVENTORIES[case]
    result = _run(tmp_path, _inventory(**overrides))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert message in output
    # The host checks never ran: the inventory check stops the play first.
    assert "TASK [preflight : Host state is read and the host is fit for the island]" not in output
