"""A --limit run keeps what the previous receipt said about the hosts it did not reach, marked with
when each was last seen, and the receipt stays deterministic: a rerun on an unchanged island,
limited or not, writes nothing (plugins/module_utils/island_receipt_history.py)."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible_collections.island.installer.plugins.module_utils.island_receipt import (
    RECORDED,
    UNREACHED,
    render,
)
from ansible_collections.island.installer.plugins.module_utils.island_receipt_history import (
    carried_certificates,
    carry_forward,
    hosts_not_reached,
    read_previous,
    utc_now,
)
from ansible_collections.island.installer.plugins.modules import island_receipt

from tests.support.modules import run_module

# island_pki is test_receipt's fixture (a CA and a registry certificate), shared: the tests that
# take it as an argument carry noqa F811, which takes a fixture argument for a redefinition.
from tests.unit.plugins.modules.test_receipt import (  # noqa: F401
    LOCK,
    document,
    island_hosts,
    island_pki,
    module_args,
    record,
)

T1 = "2026-12-01T10:00:00Z"
T2 = "2026-12-02T11:00:00Z"
T3 = "2026-12-03T12:00:00Z"


def receipt(hosts=None, previous=None, now=T1, certificates=()):
    """The document as the module makes it: built, then carried forward from ``previous``."""
    hosts = island_hosts() if hosts is None else hosts
    certificates = list(certificates) + carried_certificates(hosts, previous)
    doc = document(hosts=hosts, certificates=certificates)
    return json.loads(render(carry_forward(doc, LOCK["components"], previous, now=now)))


def limited(names):
    """The island's hosts as receipt.yml passes them when --limit reached only ``names``."""
    out = []
    for h in island_hosts():
        if h["name"] in names:
            out.append(h)
        else:
            out.append({"name": h["name"], "address": h["address"], "groups": h["groups"], "reached": False})
    return out


def cert(host_name, service="registry"):
    return {
        "host": host_name,
        "service": service,
        "path": f"/etc/{service}/tls/{service}.crt",
        "state": "missing",
    }


def test_a_first_receipt_says_when_it_was_written_and_a_rerun_keeps_that_time():
    first = receipt(now=T1)
    assert first["written_at"] == T1
    assert all(h["reached"] and "last_seen" not in h for h in first["hosts"].values())
    again = receipt(previous=first, now=T2)
    assert render(again) == render(first)


def test_a_limited_run_keeps_the_hosts_it_did_not_reach_marked_with_when_they_were_last_seen():
    full = receipt(now=T1)
    partial = receipt(hosts=limited({"infra1", "server1"}), previous=full, now=T2)
    agent = partial["hosts"]["agent1"]
    assert agent["reached"] is False
    assert agent["last_seen"] == T1
    assert agent["components"]["k3s"] == {
        "state": RECORDED,
        "version": "v1.36.3+k3s1",
        "sha256": "a" * 64,
        "expected": True,
    }
    # The island-wide view still counts what agent1 ran when last seen, not a hole.
    assert partial["components"]["k3s"]["running"] == {"v1.36.3+k3s1": ["agent1", "server1", "server2"]}
    assert partial["components"]["k3s"]["state"] == "as bundle"
    assert partial["written_at"] == T2  # the document changed: agent1 and server2 are not reached
    assert "last_seen" not in partial["hosts"]["server1"]


def test_the_same_limited_run_again_changes_nothing_and_last_seen_stays():
    full = receipt(now=T1)
    partial = receipt(hosts=limited({"infra1"}), previous=full, now=T2)
    again = receipt(hosts=limited({"infra1"}), previous=partial, now=T3)
    assert render(again) == render(partial)
    assert again["hosts"]["server1"]["last_seen"] == T1


def test_a_host_reached_again_loses_last_seen_and_reports_what_it_runs_now():
    full = receipt(now=T1)
    partial = receipt(hosts=limited({"infra1"}), previous=full, now=T2)
    hosts = island_hosts()
    hosts[1]["records"]["k3s.json"] = record("k3s", "v1.37.0+k3s1", "b" * 64)
    back = receipt(hosts=hosts, previous=partial, now=T3)
    assert back["hosts"]["server1"]["reached"] is True
    assert "last_seen" not in back["hosts"]["server1"]
    assert back["hosts"]["server1"]["components"]["k3s"]["version"] == "v1.37.0+k3s1"
    assert back["written_at"] == T3


def test_a_host_the_previous_receipt_never_saw_is_not_reached_and_never_seen():
    partial = receipt(hosts=limited({"infra1"}), previous=None, now=T1)
    assert partial["hosts"]["agent1"]["components"] == {"k3s": {"state": UNREACHED, "expected": True}}
    assert partial["hosts"]["agent1"]["last_seen"] is None
    assert "agent1 not reached (last seen never)" in hosts_not_reached(partial)


def test_a_receipt_without_written_at_carries_with_last_seen_unknown():
    older = receipt(now=T1)
    del older["written_at"]
    partial = receipt(hosts=limited({"infra1"}), previous=older, now=T2)
    assert partial["hosts"]["agent1"]["last_seen"] is None
    assert partial["hosts"]["agent1"]["components"]["k3s"]["state"] == RECORDED


def test_a_host_moved_to_another_group_keeps_its_records_marked_by_its_current_groups():
    full = receipt(now=T1)
    hosts = limited({"infra1"})
    hosts[3]["groups"] = ["k3s_agents", "island_dns"]  # agent1 now carries DNS as well
    partial = receipt(hosts=hosts, previous=full, now=T2)
    assert partial["hosts"]["agent1"]["components"]["coredns"] == {"state": UNREACHED, "expected": True}
    assert partial["hosts"]["agent1"]["components"]["k3s"]["state"] == RECORDED


def test_the_certificates_of_a_host_not_reached_are_kept_from_the_previous_receipt():
    full = receipt(now=T1, certificates=[cert("infra1"), cert("server1", "gitea")])
    partial = receipt(
        hosts=limited({"server1"}), previous=full, now=T2, certificates=[cert("server1", "gitea")]
    )
    assert [(c["host"], c["service"]) for c in partial["certificates"]] == [
        ("infra1", "registry"),
        ("server1", "gitea"),
    ]
    # Only hosts not reached carry: a host reached reports what it has now, nothing older.
    assert carried_certificates(island_hosts(), full) == []


def test_a_host_no_longer_in_the_inventory_is_dropped():
    full = receipt(now=T1)
    fewer = receipt(hosts=island_hosts()[:3], previous=full, now=T2)
    assert "agent1" not in fewer["hosts"]
    assert "agent1" not in json.dumps(fewer["components"])


def test_utc_now_is_an_rfc3339_second_in_utc():
    assert len(utc_now()) == 20 and utc_now().endswith("Z")


# --- Reading the previous receipt ----------------------------------------------------------------
def test_no_previous_receipt_is_no_note(tmp_path):
    assert read_previous(str(tmp_path / "island-receipt.json"), "island.internal") == (None, "")


@pytest.mark.parametrize(
    ("content", "note"),
    [
        ("{not json", "is not JSON"),
        ('{"schema_version": 2, "hosts": {}}', "is not a receipt of schema version 1"),
        (
            '{"schema_version": 1, "island_domain": "other.internal", "hosts": {}}',
            "the island 'other.internal'",
        ),
        ('{"schema_version": 1, "island_domain": "island.internal", "hosts": []}', "has no hosts mapping"),
    ],
)
def test_a_previous_file_that_is_not_this_islands_receipt_is_not_carried_from(tmp_path, content, note):
    path = tmp_path / "island-receipt.json"
    path.write_text(content)
    previous, said = read_previous(str(path), "island.internal")
    assert previous is None
    assert note in said and str(path) in said


def test_the_previous_receipt_is_read_when_it_is_this_islands(tmp_path):
    path = tmp_path / "island-receipt.json"
    path.write_bytes(render(receipt()))
    previous, note = read_previous(str(path), "island.internal")
    assert note == "" and previous["written_at"] == T1


# --- Through the module ---------------------------------------------------------------------------
def test_the_module_keeps_hosts_not_reached_and_the_same_limit_again_changes_nothing(
    tmp_path,
    island_pki,  # noqa: F811
):
    ca_dir, svc = island_pki
    args = module_args(tmp_path, ca_dir, svc)
    first = run_module(island_receipt, args)
    assert first["changed"] and first["receipt"]["written_at"]
    reached = {"infra1"}
    args["hosts"] = [
        h if h["name"] in reached else {"name": h["name"], "groups": h["groups"], "reached": False}
        for h in args["hosts"]
    ]
    limited_run = run_module(island_receipt, args, check_mode=True, diff=True)
    assert limited_run["changed"]
    assert '"last_seen": "' + first["receipt"]["written_at"] in limited_run["diff"]["after"]
    written = run_module(island_receipt, args)
    on_disk = json.loads((tmp_path / "island-receipt.json").read_text())
    assert on_disk["hosts"]["server1"]["last_seen"] == first["receipt"]["written_at"]
    assert on_disk["hosts"]["server1"]["components"] == first["receipt"]["hosts"]["server1"]["components"]
    assert "server1 not reached (last seen " in written["msg"]
    assert not run_module(island_receipt, args)["changed"]


def test_the_module_warns_and_carries_nothing_from_another_islands_receipt(
    tmp_path,
    island_pki,  # noqa: F811
):
    ca_dir, svc = island_pki
    args = module_args(tmp_path, ca_dir, svc)
    (tmp_path / "island-receipt.json").write_text('{"schema_version": 1, "island_domain": "x.internal"}')
    with mock.patch.object(basic.AnsibleModule, "warn") as warn:
        run_module(island_receipt, args)
    assert "the island 'x.internal', not 'island.internal'" in warn.call_args.args[0]
    assert json.loads((tmp_path / "island-receipt.json").read_text())["island_domain"] == "island.internal"
