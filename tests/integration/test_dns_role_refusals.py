"""The dns role refuses bad zone input on the controller, before any host is touched.

The play runs the role against hosts with the local connection and a bundle-less island; the
validation is the role's first task, so a regression that let bad input through would fail on the
next task (the service install needs a bundle), never touch another machine.
"""

from __future__ import annotations

import pytest

from tests.support.playbook import TEST_ISLAND, local_inventory, refused, run_role

BAD_INPUT = {
    "record_outside_the_domain": (
        {"dns_records": [{"name": "www.example.com", "type": "A", "value": "10.98.0.5"}]},
        "dns_records[0] (www.example.com A): the name is outside the island domain island.test",
    ),
    "cname_beside_other_data": (
        {"dns_records": [{"name": "registry", "type": "CNAME", "value": "dns1.island.test"}]},
        "registry.island.test: a CNAME cannot stand beside other data",
    ),
    "a_records_that_disagree": (
        {"dns_records": [{"name": "dns1", "type": "A", "value": "10.98.0.99"}]},
        "(dns1.island.test A 10.98.0.99) disagrees with the inventory",
    ),
    "invalid_ip": (
        {"dns_records": [{"name": "bad", "type": "A", "value": "10.98.0.256"}]},
        "'10.98.0.256' is not a valid IPv4 address",
    ),
    "unaligned_network": (
        {"island_networks": ["10.98.0.0/20"]},
        "island network 10.98.0.0/20: its reverse zone needs a prefix on a 8-bit boundary",
    ),
    "name_with_a_semicolon": (
        {"dns_records": [{"name": "a;x", "type": "A", "value": "10.98.0.5"}]},
        "dns_records[0] (a;x.island.test A): name 'a;x.island.test' is not a valid DNS name",
    ),
    "ttl_with_an_injected_record": (
        {"dns_records": [{"name": "a", "type": "A", "value": "10.98.0.5", "ttl": "60 IN A 6.6.6.6"}]},
        # the argument spec (ttl: int) refuses it before the role's own check
        "argument ''ttl'' is of type str found in ''dns_records''",
    ),
    "forward_zone_inside_the_island": (
        {"dns_forward_zones": [{"zone": "corp.island.test", "servers": ["10.1.1.1"]}]},
        "corp.island.test lies inside the island domain island.test",
    ),
}


def _run(tmp_path, extra_vars):
    inventory = local_inventory(
        {"island_dns": ["dns1"], "island_registry": ["dns1"]},
        {"dns1": {"island_address": "10.98.0.10"}},
        **{**TEST_ISLAND, **extra_vars},
    )
    return run_role(tmp_path, inventory, "island_dns", "dns")


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_the_dns_role_refuses_bad_zone_input_before_any_change(tmp_path, case):
    extra, message = BAD_INPUT[case]
    output = refused(_run(tmp_path, extra))
    assert message in output
    assert "TASK [common : The service has its own system user" not in output
