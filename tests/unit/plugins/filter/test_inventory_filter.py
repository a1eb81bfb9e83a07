"""Inventory sanity as the preflight role sees it: each bad inventory is named precisely."""

from __future__ import annotations

from ansible_collections.island.installer.plugins.filter.island_inventory import (
    island_bundle_share_bytes,
    island_inventory_problems,
)

REQUIRED = ["island_dns", "island_registry", "k3s_servers"]


def _inventory(servers=("s1", "s2", "s3"), agents=("a1",), hostvars=None):
    hosts = list(dict.fromkeys(["infra", *servers, *agents]))
    groups = {
        "all": hosts,
        "island_dns": ["infra"],
        "island_registry": ["infra"],
        "k3s_servers": list(servers),
        "k3s_agents": list(agents),
    }
    values = {host: {"ansible_host": f"10.0.0.{i + 10}"} for i, host in enumerate(hosts)}
    for host, extra in (hostvars or {}).items():
        values[host].update(extra)
    return groups, values


def test_a_sane_inventory_has_no_problems():
    groups, hostvars = _inventory()
    assert island_inventory_problems(groups, hostvars, REQUIRED, "island.internal") == []


def test_an_even_number_of_k3s_servers_is_refused():
    groups, hostvars = _inventory(servers=("s1", "s2"))
    [problem] = island_inventory_problems(groups, hostvars, REQUIRED, "island.internal")
    assert "k3s_servers has 2 hosts (s1, s2)" in problem
    assert "odd number" in problem


def test_a_missing_required_group_is_named():
    groups, hostvars = _inventory()
    del groups["island_dns"]
    [problem] = island_inventory_problems(groups, hostvars, REQUIRED, "island.internal")
    assert "group 'island_dns' is missing or empty" in problem


def test_a_host_in_both_k3s_groups_is_refused():
    groups, hostvars = _inventory(agents=("s3",))
    [problem] = island_inventory_problems(groups, hostvars, REQUIRED, "island.internal")
    assert "host s3 is in both k3s_servers and k3s_agents" in problem


def test_two_hosts_sharing_an_address_are_both_named():
    groups, hostvars = _inventory(hostvars={"s2": {"ansible_host": "10.0.0.11"}})
    [problem] = island_inventory_problems(groups, hostvars, REQUIRED, "island.internal")
    assert "hosts s1, s2 share the address 10.0.0.11" in problem


def test_island_address_takes_precedence_and_must_be_an_ip():
    groups, hostvars = _inventory(hostvars={"s1": {"island_address": "not-an-ip"}})
    [problem] = island_inventory_problems(groups, hostvars, REQUIRED, "island.internal")
    assert "island_address 'not-an-ip', which is not an IP address" in problem


def test_a_missing_or_invalid_island_domain_is_refused():
    groups, hostvars = _inventory()
    assert "island_domain is not set" in island_inventory_problems(groups, hostvars, REQUIRED, None)[0]
    assert "not a valid DNS domain" in island_inventory_problems(groups, hostvars, REQUIRED, "Island")[0]


def test_every_problem_is_reported_at_once():
    groups, hostvars = _inventory(servers=("s1", "s2"), agents=("s2",))
    del groups["island_registry"]
    assert len(island_inventory_problems(groups, hostvars, REQUIRED, None)) == 4


def test_a_host_receives_only_its_groups_share_of_the_bundle():
    files = [
        {"path": "bin/k3s", "size": 100},
        {"path": "oci/blobs/sha256/aa", "size": 1000},
        {"path": "k3s/images.tar.zst", "size": 10},
        {"path": "git/config.bundle", "size": 5},
    ]
    share = {"bin": ["all"], "oci": ["island_registry"], "k3s": ["k3s_servers"], "git": ["island_gitea"]}
    assert island_bundle_share_bytes(files, ["k3s_servers"], share) == 110
    assert island_bundle_share_bytes(files, ["island_registry", "island_gitea"], share) == 1105
