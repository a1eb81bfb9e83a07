"""playbooks/remove-node.yml refuses, before anything changes, what the island's rules forbid: no
node named, a host outside the inventory's k3s groups, removing the last server or leaving an even
number of servers, and a preview. The inventory's hosts use the local connection and this machine
has no k3s, so a refusal here also shows that the run stopped before any kubectl or host task (the
island scenario's verify_nodes.yml removes nodes of a real cluster of the k3s double)."""

from __future__ import annotations

import pytest
import yaml

from tests.support import ROOT
from tests.support.playbook import TEST_ISLAND, local_inventory, refused, run_playbook

PLAYBOOK = ROOT / "playbooks" / "remove-node.yml"


@pytest.fixture
def inventory(tmp_path):
    def make(servers: int = 3, agents: int = 1):
        hosts = tmp_path / "hosts.yml"
        names_s = [f"server{i + 1}" for i in range(servers)]
        names_a = [f"agent{i + 1}" for i in range(agents)]
        addresses = {
            name: {"island_address": f"10.98.0.{i + 10}"} for i, name in enumerate(names_s + names_a)
        }
        hosts.write_text(
            yaml.safe_dump(
                local_inventory(
                    {"k3s_servers": names_s, "k3s_agents": names_a, "island_dns": names_s[:1]},
                    addresses,
                    **TEST_ISLAND,
                    island_pki_dir=str(tmp_path / "pki"),
                    island_secrets_dir=str(tmp_path / "secrets"),
                )
            )
        )
        return hosts

    return make


def remove(hosts, *args: str):
    return run_playbook(PLAYBOOK, *args, inventory=hosts)


def test_a_removal_without_a_node_is_refused(inventory):
    output = refused(remove(inventory()))
    assert "name the inventory host to remove: -e node=<host>" in output
    assert "Nothing was changed" in output


def test_a_host_outside_the_k3s_groups_is_refused_naming_the_hosts_there(inventory):
    output = refused(remove(inventory(), "-e", "node=nosuch"))
    assert "nosuch is not a host of k3s_servers or k3s_agents in this inventory" in output
    assert "hosts: server1, server2, server3, agent1" in output


def test_leaving_an_even_number_of_servers_is_refused(inventory):
    output = refused(remove(inventory(), "-e", "node=server3"))
    assert "would leave 2 k3s servers; the island keeps an odd number (1, 3 or 5)" in output
    assert "remove two servers together" in output


def test_removing_the_last_server_is_refused(inventory):
    output = refused(remove(inventory(servers=1), "-e", "node=server1"))
    assert "would leave no k3s server" in output


def test_an_agent_or_two_servers_pass_the_inventory_rules(inventory):
    # the inventory rules hold; the run stops at the cluster, which this machine does not run
    for node in ("agent1", "server2,server3"):
        output = refused(remove(inventory(), "-e", f"node={node}"))
        assert "odd number" not in output and "no k3s server" not in output
        assert "the cluster cannot be read through server1" in output


def test_a_preview_is_refused(inventory):
    output = refused(remove(inventory(), "-e", "node=agent1", "--check"))
    assert "remove-node.yml has no check mode" in output


RESTORE = ROOT / "playbooks" / "restore.yml"


def test_replacing_the_first_server_is_refused_and_needs_no_archive(inventory):
    output = refused(run_playbook(RESTORE, "-e", "restore_k3s_server=server1", inventory=inventory()))
    # the controller's restore is not asked for: only the lost server is named
    assert "restore.yml needs restore_archive" not in output
    assert (
        "server1 is the first host of k3s_servers: site.yml starts the cluster there (cluster-init)" in output
    )
    assert "Nothing was changed" in output


def test_replacing_a_server_does_not_apply_the_inventory_count_rules(inventory):
    # the inventory keeps its three servers (the replacement takes the place): no odd-count refusal;
    # the run stops at the cluster, which this machine does not run
    output = refused(run_playbook(RESTORE, "-e", "restore_k3s_server=server3", inventory=inventory()))
    assert "odd number" not in output and "first host" not in output
    assert "the cluster cannot be read through server1" in output
