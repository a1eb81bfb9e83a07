"""The island zone as data: records, refusals, reverse zones, content-derived serials."""

from __future__ import annotations

import dns.zone
import pytest
from ansible_collections.island.installer.plugins.filter.island_dns import (
    island_dns_records,
    island_reverse_zone_file,
    island_reverse_zones,
    island_zone_file,
    island_zone_problems,
)

DOMAIN = "island.test"
GROUPS = {
    "all": ["infra1", "server1", "server2", "server3", "agent1"],
    "island_dns": ["infra1"],
    "island_registry": ["infra1"],
    "island_minio": ["infra1"],
    "island_gitea": ["infra1"],
    "k3s_servers": ["server1", "server2", "server3"],
    "k3s_agents": ["agent1"],
}
HOSTVARS = {
    "infra1": {"island_address": "10.9.0.10"},
    "server1": {"ansible_host": "10.9.0.11"},
    "server2": {"ansible_host": "10.9.0.12"},
    "server3": {"ansible_host": "10.9.0.13"},
    "agent1": {"ansible_host": "10.9.0.21"},
}
NAMESERVERS = [("infra1.island.test", "10.9.0.10")]


def _records(extra=None, **kwargs):
    return island_dns_records(GROUPS, HOSTVARS, DOMAIN, extra, **kwargs)


def _parse(text, origin):
    return dns.zone.from_text(text, origin=origin, relativize=False, check_origin=True)


def _addresses(zone, name, kind="A"):
    rdataset = zone.get_rdataset(name + ".", kind)
    return sorted(r.to_text() for r in rdataset) if rdataset else []


def test_every_host_and_service_has_its_records():
    zone = _parse(island_zone_file(_records(), DOMAIN, NAMESERVERS), DOMAIN)
    assert _addresses(zone, "server2.island.test") == ["10.9.0.12"]
    assert _addresses(zone, "registry.island.test") == ["10.9.0.10"]
    assert _addresses(zone, "s3.island.test") == ["10.9.0.10"]
    assert _addresses(zone, "git.island.test") == ["10.9.0.10"]
    assert _addresses(zone, "api.island.test") == ["10.9.0.11", "10.9.0.12", "10.9.0.13"]


def test_the_api_name_can_point_at_one_address():
    zone = _parse(island_zone_file(_records(api_address="10.9.0.100"), DOMAIN, NAMESERVERS), DOMAIN)
    assert _addresses(zone, "api.island.test") == ["10.9.0.100"]


def test_operator_records_of_every_type_render_and_parse():
    extra = [
        {"name": "www", "type": "CNAME", "value": "registry.island.test"},
        {"name": "_ldap._tcp", "type": "SRV", "value": "0 5 389 infra1.island.test"},
        {"name": "info", "type": "TXT", "value": 'say "hi"'},
        {"name": "v6.island.test", "type": "AAAA", "value": "fd00::10"},
    ]
    records = _records(extra)
    assert island_zone_problems(records, DOMAIN) == []
    zone = _parse(island_zone_file(records, DOMAIN, NAMESERVERS), DOMAIN)
    assert _addresses(zone, "www.island.test", "CNAME") == ["registry.island.test."]
    assert _addresses(zone, "v6.island.test", "AAAA") == ["fd00::10"]


def test_an_unchanged_zone_is_byte_identical_and_a_changed_one_gets_a_new_serial():
    first = island_zone_file(_records(), DOMAIN, NAMESERVERS)
    assert first == island_zone_file(_records(), DOMAIN, NAMESERVERS)
    changed = island_zone_file(
        _records([{"name": "new", "type": "A", "value": "10.9.0.50"}]), DOMAIN, NAMESERVERS
    )
    serial = _parse(first, DOMAIN).get_soa().serial
    assert _parse(changed, DOMAIN).get_soa().serial != serial


def test_a_record_name_outside_the_island_domain_is_refused():
    [problem] = island_zone_problems(
        _records([{"name": "www.example.com", "type": "A", "value": "10.9.0.5"}]), DOMAIN
    )
    assert "dns_records[0] (www.example.com A)" in problem
    assert "outside the island domain island.test" in problem


def test_a_cname_beside_other_data_is_refused():
    extra = [{"name": "registry", "type": "CNAME", "value": "infra1.island.test"}]
    [problem] = island_zone_problems(_records(extra), DOMAIN)
    assert problem.startswith("registry.island.test: a CNAME cannot stand beside other data")


def test_an_a_record_that_disagrees_with_the_inventory_is_refused():
    extra = [{"name": "server1", "type": "A", "value": "10.9.0.99"}]
    [problem] = island_zone_problems(_records(extra), DOMAIN)
    assert "dns_records[0] (server1.island.test A 10.9.0.99) disagrees with the inventory" in problem
    assert "10.9.0.11" in problem


def test_an_invalid_ip_is_refused():
    [problem] = island_zone_problems(_records([{"name": "bad", "type": "A", "value": "10.9.0.300"}]), DOMAIN)
    assert "'10.9.0.300' is not a valid IPv4 address" in problem


def test_an_unknown_type_is_refused():
    [problem] = island_zone_problems(_records([{"name": "mx", "type": "MX", "value": "10 a"}]), DOMAIN)
    assert "type must be one of A, AAAA, CNAME, SRV, TXT" in problem


def test_reverse_zones_give_every_host_its_ptr():
    [zone] = island_reverse_zones(["10.9.0.0/24"])
    assert zone["zone"] == "0.9.10.in-addr.arpa"
    parsed = _parse(island_reverse_zone_file(_records(), zone, NAMESERVERS), zone["zone"])
    assert _addresses(parsed, "11.0.9.10.in-addr.arpa", "PTR") == ["server1.island.test."]
    assert _addresses(parsed, "10.0.9.10.in-addr.arpa", "PTR") == ["infra1.island.test."]


def test_a_network_off_the_octet_boundary_is_refused_for_reverse_zones():
    with pytest.raises(ValueError, match=r"island network 10\.9\.0\.0/20: its reverse zone needs a prefix"):
        island_reverse_zones(["10.9.0.0/20"])
    assert island_reverse_zones(["fd00:1::/64"])[0]["zone"].endswith("ip6.arpa")
