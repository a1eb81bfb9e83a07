"""What the upgrade plan is given of each host, from the one read the upgrade role makes there."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.island.installer.plugins.filter.island_upgrade import island_upgrade_hosts

ISLAND = {
    "record_dir": "/var/lib/island/records",
    "bundle_record": "/var/lib/island/bundle.json",
    "hosts": {"a1": {"components": ["k3s", "node_exporter"]}, "s1": {"components": ["k3s"]}},
}


def test_each_hosts_components_found_records_and_bundle_record():
    hostvars = {
        "a1": {
            "_upgrade_read": {
                "read": {
                    "/var/lib/island/records/k3s.json": '{"version": "v1.36.3+k3s1"}',
                    "/var/lib/island/records/node_exporter.json": None,
                    "/var/lib/island/bundle.json": '{"version": "1.0.0"}',
                }
            }
        },
        "s1": {"_upgrade_read": {"read": {"/var/lib/island/records/k3s.json": None}}},
    }
    assert island_upgrade_hosts(["a1", "s1"], hostvars, ISLAND) == {
        "a1": {
            "components": ["k3s", "node_exporter"],
            "records": {"k3s": {"version": "v1.36.3+k3s1"}},
            "bundle_record": '{"version": "1.0.0"}',
        },
        "s1": {"components": ["k3s"], "records": {}},
    }


def test_a_record_that_is_not_json_and_a_host_not_read_are_named():
    broken = {"s1": {"_upgrade_read": {"read": {"/var/lib/island/records/k3s.json": "garbage"}}}}
    with pytest.raises(AnsibleFilterError, match=r"s1:/var/lib/island/records/k3s\.json is not a record"):
        island_upgrade_hosts(["s1"], broken, ISLAND)
    with pytest.raises(AnsibleFilterError, match="the records of s1 were not read"):
        island_upgrade_hosts(["s1"], {"s1": {}}, ISLAND)
