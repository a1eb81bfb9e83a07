"""No silent rollback (issue 15, item 9): the plan compares the verified bundle with the records of the
last bundle applied (controller and hosts) and refuses an older bundle, another bundle under the
same version, or a bundle of another name, unless the operator names its version."""

from __future__ import annotations

import json

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_upgrade import plan
from ansible_collections.island.installer.plugins.module_utils.island_upgrade_bundle import (
    compare_versions,
    decide,
)

CONTROLLER = "controller (/srv/island/island-bundle-applied.json)"


def record(version, lock="1", name="island", created="2026-11-21T12:00:00Z"):
    return {"name": name, "version": version, "created": created, "lock_sha256": lock * 64}


V1 = record("2026.11.0", "1")
V2 = record("2026.12.0", "2", created="2026-12-21T12:00:00Z")
V2_REBUILT = record("2026.12.0", "3", created="2026-12-22T12:00:00Z")

# an older bundle version, a newer one
ORDERED = """
2026.11.0    2026.12.0
2026.9.1     2026.10.0
1.0.0-rc1    1.0.0
1.0.0        2.0.0
v1.2.3       v1.10.0
r9           r10
2026-11      2026-12
"""


@pytest.mark.parametrize(("older", "newer"), [tuple(line.split()) for line in ORDERED.strip().splitlines()])
def test_bundle_versions_are_ordered_as_semantic_versions_or_by_their_numbers(older, newer):
    assert compare_versions(older, newer) == -1
    assert compare_versions(newer, older) == 1
    assert compare_versions(newer, newer) == 0


def test_a_first_run_with_no_record_anywhere_installs():
    decision = decide(V1, {CONTROLLER: None, "server1": None})

    assert decision["action"] == "install"
    assert decision["refused"] == []
    assert "no bundle recorded yet" in decision["line"]


def test_the_same_bundle_again_is_unchanged():
    decision = decide(V2, {CONTROLLER: V2, "server1": json.dumps(V2)})

    assert (decision["action"], decision["refused"]) == ("unchanged", [])


def test_a_newer_bundle_upgrades():
    decision = decide(V2, {CONTROLLER: V1, "server1": V1})

    assert (decision["action"], decision["refused"]) == ("upgrade", [])
    assert decision["line"].startswith("bundle: island 2026.11.0 (created 2026-11-21T12:00:00Z")
    assert decision["line"].endswith("(upgrade)")


def test_an_older_bundle_is_refused_naming_both_versions_where_recorded_and_the_variable():
    decision = decide(V1, {CONTROLLER: V2, "server1": V2, "agent1": None})

    [message] = decision["refused"]
    assert "the bundle island 2026.11.0" in message
    assert "is older than island 2026.12.0" in message
    assert f"recorded on {CONTROLLER}, server1" in message
    assert "-e upgrade_rollback_to=2026.11.0" in message


def test_an_older_bundle_is_refused_on_a_host_with_no_record_by_the_controllers_record():
    decision = decide(V1, {CONTROLLER: V2, "new-agent": None})

    assert decision["refused"] and "is older than island 2026.12.0" in decision["refused"][0]


def test_a_host_record_alone_refuses_an_older_bundle_when_the_controller_lost_its_own():
    decision = decide(V1, {CONTROLLER: None, "server1": json.dumps(V2)})

    assert decision["refused"] and "recorded on server1" in decision["refused"][0]


def test_another_bundle_under_the_same_version_is_refused():
    decision = decide(V2_REBUILT, {CONTROLLER: V2})

    [message] = decision["refused"]
    assert "is not the bundle island 2026.12.0" in message
    assert "two different bundles carry one version" in message
    assert "-e upgrade_rollback_to=2026.12.0" in message


def test_a_bundle_of_another_name_is_refused():
    decision = decide(record("2027.1.0", "4", name="other"), {CONTROLLER: V2})

    assert decision["refused"] and "another name than island 2026.12.0" in decision["refused"][0]


def test_naming_the_bundles_version_allows_the_rollback():
    decision = decide(V1, {CONTROLLER: V2, "server1": V2}, rollback_to="2026.11.0")

    assert (decision["action"], decision["refused"]) == ("rollback", [])
    assert decision["line"].endswith("(rollback)")


def test_naming_another_version_is_refused_naming_both():
    decision = decide(V1, {CONTROLLER: V2}, rollback_to="2026.10.0")

    assert any(
        "upgrade_rollback_to is '2026.10.0' but the bundle to apply is island 2026.11.0" in m
        for m in decision["refused"]
    )
    assert any("is older than island 2026.12.0" in m for m in decision["refused"])


def test_a_record_this_installer_did_not_write_is_refused_not_ignored():
    decision = decide(V2, {CONTROLLER: "not json", "server1": {"name": "island"}})

    assert len(decision["refused"]) == 2
    assert any(f"record on {CONTROLLER} is not a JSON object" in m for m in decision["refused"])
    assert any("record on server1 lacks version, created, lock_sha256" in m for m in decision["refused"])


def test_the_plan_refuses_an_older_bundle_even_when_every_component_version_is_equal():
    lock = {"files": [{"path": "bin/k3s", "sha256": "a" * 64, "size": 1}], "components": {}}
    hosts = {
        "server1": {"components": [], "records": {}, "bundle_record": json.dumps(V2)},
        "agent1": {"components": [], "records": {}, "bundle_record": None},
    }

    refused = plan(lock, hosts, bundle=V1, applied={CONTROLLER: None})
    allowed = plan(lock, hosts, bundle=V1, applied={CONTROLLER: None}, rollback_to="2026.11.0")

    assert refused["refused"] and "is older than island 2026.12.0" in refused["refused"][0]
    assert refused["lines"][0].startswith("bundle: island 2026.12.0")
    assert allowed["refused"] == []
    assert allowed["bundle"]["action"] == "rollback"
