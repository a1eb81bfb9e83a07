"""The island's receipt: how the document is built from what the hosts and services reported
(deterministic, a half-done upgrade visible, a moved or missing image recorded), how it is
written (atomic, 0644, only when it differs, never with a secret), and the module in check and
diff mode. The services themselves are asked in tests/integration/test_receipt_services.py."""

from __future__ import annotations

import base64
import itertools
import json
import os
import stat

import pytest
from ansible_collections.island.installer.plugins.filter.island_summary import island_summary
from ansible_collections.island.installer.plugins.module_utils.island_receipt import (
    AS_LOCKED,
    DIFFERENT,
    MISSING,
    NOT_RECORDED,
    RECORDED,
    REFS_DIFFER,
    UNREACHED,
    UNREADABLE,
    ReceiptInputError,
    SecretInReceiptError,
    build_document,
    ca_entry,
    certificate_entry,
    check_no_secrets,
    component_summary,
    etcd_snapshot_entry,
    git_entries,
    host_entry,
    image_entries,
    parse_record,
    render,
    write_receipt,
)
from ansible_collections.island.installer.plugins.modules import island_receipt

from tests.support.island_pki import Service, make_ca
from tests.support.modules import ModuleFail, run_module

SHA_A = "a" * 64
SHA_B = "b" * 64
DIGEST_1 = "sha256:" + "1" * 64
DIGEST_2 = "sha256:" + "2" * 64
DIGEST_3 = "sha256:" + "3" * 64
COMPONENT_GROUPS = {
    "coredns": ["island_dns"],
    "registry": ["island_registry"],
    "k3s": ["k3s_servers", "k3s_agents"],
}
LOCK = {
    "schema_version": 1,
    "bundle": {"name": "island", "version": "2026.12.0", "created": "2026-12-01T00:00:00Z"},
    "files": [],
    "components": {
        "coredns": {"version": "1.14.2", "files": ["bin/coredns"]},
        "registry": {"version": "2.8.2", "files": ["bin/registry"]},
        "k3s": {"version": "v1.36.3+k3s1", "files": ["bin/k3s"]},
    },
    "images": [
        {"reference": "docker.io/library/alpine:3.20", "digest": DIGEST_1, "media_type": "x"},
        {"reference": "ghcr.io/org/tool:1", "digest": DIGEST_2, "media_type": "x"},
        {"reference": "quay.io/org/gone:2", "digest": DIGEST_3, "media_type": "x"},
    ],
    "git": [
        {
            "name": "config",
            "file": "git/config.bundle",
            "refs": {"HEAD": "c" * 40, "refs/heads/main": "c" * 40, "refs/tags/v1": "d" * 40},
        }
    ],
}


def b64(text):
    return base64.b64encode(text.encode()).decode()


def record(component, version, sha256=SHA_A):
    return b64(json.dumps({"component": component, "version": version, "sha256": sha256}))


def host(name, groups, records, address=None, **extra):
    return {
        "name": name,
        "address": address or f"10.0.0.{len(name)}",
        "groups": groups,
        "records": records,
        **extra,
    }


def island_hosts():
    return [
        host(
            "infra1",
            ["island_dns", "island_registry"],
            {"coredns.json": record("coredns", "1.14.2"), "registry.json": record("registry", "2.8.2")},
        ),
        host("server1", ["k3s_servers"], {"k3s.json": record("k3s", "v1.36.3+k3s1")}),
        host("server2", ["k3s_servers"], {"k3s.json": record("k3s", "v1.36.3+k3s1")}),
        host("agent1", ["k3s_agents"], {"k3s.json": record("k3s", "v1.36.3+k3s1")}),
    ]


def document(hosts=None, images=None, git=None, certificates=(), ca=None):
    return build_document(
        bundle=LOCK,
        domain="island.internal",
        hosts=island_hosts() if hosts is None else hosts,
        component_groups=COMPONENT_GROUPS,
        images=images or [],
        git=git or [],
        certificates=list(certificates),
        ca=ca or {"roots": [], "intermediates": []},
    )


# --- Deterministic ------------------------------------------------------------------------------
def test_the_same_island_reported_in_any_order_gives_the_same_bytes():
    served = {"infra1": {i["reference"]: i["digest"] for i in LOCK["images"]}}
    first = render(document(images=image_entries(LOCK["images"], served)))
    image_orders = itertools.cycle(itertools.permutations(range(3)))
    for order in itertools.islice(itertools.permutations(range(4)), 1, 24, 5):
        hosts = [island_hosts()[i] for i in order]
        for h in hosts:
            h["records"] = dict(reversed(list(h["records"].items())))
            h["groups"] = list(reversed(h["groups"]))
        images = [LOCK["images"][i] for i in next(image_orders)]
        again = render(document(hosts=hosts, images=image_entries(images, served)))
        assert again == first
    parsed = json.loads(first)
    assert list(parsed) == sorted(parsed)  # keys sorted at the top, and recursively by json.dumps
    assert first.endswith(b"}\n")


def test_the_document_carries_no_time_of_the_run():
    text = render(document()).decode()
    # The bundle's own creation time is not copied either: only name and version identify it.
    assert json.loads(text)["bundle"] == {"name": "island", "version": "2026.12.0"}
    assert "2026-12-01" not in text
    assert "days" not in text


# --- Components: records, half-done upgrades ----------------------------------------------------
def test_a_half_done_upgrade_shows_both_versions_and_which_hosts_run_each():
    hosts = island_hosts()
    hosts[1]["records"]["k3s.json"] = record("k3s", "v1.37.0+k3s1", SHA_B)  # server1 upgraded
    doc = document(hosts=hosts)
    k3s = doc["components"]["k3s"]
    assert k3s["running"] == {"v1.36.3+k3s1": ["agent1", "server2"], "v1.37.0+k3s1": ["server1"]}
    assert k3s["state"] == "mixed versions"
    assert doc["hosts"]["server1"]["components"]["k3s"] == {
        "state": RECORDED,
        "version": "v1.37.0+k3s1",
        "sha256": SHA_B,
        "expected": True,
    }
    assert doc["components"]["coredns"]["state"] == "as bundle"


def test_a_host_without_a_record_is_reported_not_recorded_never_guessed():
    hosts = island_hosts()
    hosts[3]["records"] = {}  # agent1 predates component records
    doc = document(hosts=hosts)
    assert doc["hosts"]["agent1"]["components"]["k3s"] == {"state": NOT_RECORDED, "expected": True}
    assert doc["components"]["k3s"]["not_recorded"] == ["agent1"]
    assert doc["components"]["k3s"]["running"] == {"v1.36.3+k3s1": ["server1", "server2"]}
    assert doc["components"]["k3s"]["state"] == "mixed versions"
    none_recorded = document(hosts=[host("infra1", ["island_dns"], {})])
    assert none_recorded["components"]["coredns"]["state"] == NOT_RECORDED
    assert none_recorded["components"]["coredns"]["running"] == {}


def test_every_host_on_an_older_version_differs_from_the_bundle():
    hosts = [host("infra1", ["island_dns"], {"coredns.json": record("coredns", "1.13.0")})]
    summary = component_summary(
        {"infra1": host_entry(hosts[0], LOCK["components"], COMPONENT_GROUPS)}, LOCK["components"]
    )
    assert summary["coredns"]["state"] == "differs from bundle"
    assert summary["coredns"]["bundle_version"] == "1.14.2"
    assert summary["registry"]["state"] == "not deployed"


def test_a_host_not_reached_is_said_so_for_each_component_it_should_run():
    doc = document(
        hosts=[{"name": "agent1", "address": "10.0.0.21", "groups": ["k3s_agents"], "reached": False}]
    )
    assert doc["hosts"]["agent1"]["reached"] is False
    assert doc["hosts"]["agent1"]["components"] == {"k3s": {"state": UNREACHED, "expected": True}}
    assert doc["components"]["k3s"]["not_recorded"] == ["agent1"]


def test_a_record_left_on_a_host_outside_its_group_is_kept_and_marked_unexpected():
    hosts = [
        host(
            "infra1",
            ["island_dns"],
            {"coredns.json": record("coredns", "1.14.2"), "k3s.json": record("k3s", "v1")},
        )
    ]
    doc = document(hosts=hosts)
    assert doc["hosts"]["infra1"]["components"]["k3s"]["expected"] is False
    assert doc["components"]["k3s"]["running"] == {"v1": ["infra1"]}


@pytest.mark.parametrize(
    ("filename", "text", "detail"),
    [
        ("k3s.json", "{not json", "infra1:k3s.json is not JSON"),
        ("k3s.json", "[1]", "not a JSON object"),
        (
            "k3s.json",
            json.dumps({"component": "coredns", "version": "1", "sha256": SHA_A}),
            "names component",
        ),
        ("k3s.json", json.dumps({"component": "k3s", "sha256": SHA_A}), "no version"),
        ("k3s.json", json.dumps({"component": "k3s", "version": "1", "sha256": "abc"}), "no sha256"),
        ("K3S.json", json.dumps({"component": "K3S", "version": "1", "sha256": SHA_A}), "file name"),
    ],
)
def test_a_record_that_is_not_a_record_is_reported_unreadable_naming_host_and_file(filename, text, detail):
    _component, entry = parse_record("infra1", filename, text)
    assert entry["state"] == UNREADABLE
    assert detail in entry["detail"]
    assert "infra1:" in entry["detail"]


def test_an_unreadable_record_counts_in_the_component_summary():
    hosts = [host("infra1", ["island_dns"], {"coredns.json": b64("{")})]
    doc = document(hosts=hosts)
    assert doc["components"]["coredns"]["unreadable"] == ["infra1"]
    assert doc["components"]["coredns"]["state"] == NOT_RECORDED


# --- Images -------------------------------------------------------------------------------------
def test_a_tag_that_moved_and_a_reference_missing_are_recorded_beside_the_lock():
    served = {
        "registry1": {
            "docker.io/library/alpine:3.20": DIGEST_1,
            "ghcr.io/org/tool:1": DIGEST_3,  # the tag moved
            "quay.io/org/gone:2": None,  # not in the registry
        },
        "registry2": {"docker.io/library/alpine:3.20": DIGEST_1, "ghcr.io/org/tool:1": DIGEST_2},
    }
    images = {i["reference"]: i for i in image_entries(LOCK["images"], served)}
    assert images["docker.io/library/alpine:3.20"] == {
        "reference": "docker.io/library/alpine:3.20",
        "repository": "library/alpine",
        "tag": "3.20",
        "digest_in_lock": DIGEST_1,
        "served": {
            "registry1": {"digest": DIGEST_1, "state": AS_LOCKED},
            "registry2": {"digest": DIGEST_1, "state": AS_LOCKED},
        },
    }
    tool = images["ghcr.io/org/tool:1"]
    assert tool["digest_in_lock"] == DIGEST_2
    assert tool["served"]["registry1"] == {"digest": DIGEST_3, "state": DIFFERENT}
    assert tool["served"]["registry2"] == {"digest": DIGEST_2, "state": AS_LOCKED}
    gone = images["quay.io/org/gone:2"]["served"]
    assert gone == {
        "registry1": {"digest": None, "state": MISSING},
        "registry2": {"digest": None, "state": MISSING},
    }


def test_images_are_named_by_the_repository_the_seeding_used():
    image = {"reference": "ghcr.io/org/tool:1", "digest": DIGEST_2, "media_type": "x"}
    kept = image_entries([image], {}, rule="keep_host", prefix="mirror")[0]
    assert kept["repository"] == "mirror/ghcr.io/org/tool"
    by_digest = image_entries([{"reference": f"ghcr.io/org/tool@{DIGEST_2}", "digest": DIGEST_2}], {})[0]
    assert by_digest["tag"] is None


# --- Git ----------------------------------------------------------------------------------------
def test_git_refs_served_are_compared_with_the_lock_and_a_missing_repository_recorded():
    served = {
        "gitea1": {
            "config": {"refs/heads/main": "c" * 40, "refs/tags/v1": "d" * 40, "refs/heads/x": "e" * 40}
        },
        "gitea2": {"config": {"refs/heads/main": "f" * 40, "refs/tags/v1": "d" * 40}},
        "gitea3": {"config": None},
    }
    (entry,) = git_entries(LOCK["git"], served, "island")
    assert entry["repository"] == "island/config"
    assert entry["refs_in_lock"] == {"refs/heads/main": "c" * 40, "refs/tags/v1": "d" * 40}  # no HEAD
    assert entry["served"]["gitea1"]["state"] == AS_LOCKED  # refs beyond the lock are kept and shown
    assert entry["served"]["gitea1"]["refs"]["refs/heads/x"] == "e" * 40
    assert entry["served"]["gitea2"]["state"] == REFS_DIFFER
    assert entry["served"]["gitea3"] == {"refs": {}, "state": MISSING}


# --- Certificates and the CA (real certificates from the island's own PKI code) ------------------
@pytest.fixture
def island_pki(tmp_path):
    ca = make_ca(tmp_path / "ca")
    svc = Service(tmp_path / "infra1", "registry")
    svc.issue(ca, ["DNS:registry.island.internal", "IP:127.0.0.10"])
    return tmp_path / "ca", svc


def test_a_certificate_read_on_a_host_gives_its_subject_sans_issuer_and_expiry(island_pki):
    _ca_dir, svc = island_pki
    entry = certificate_entry(
        "infra1",
        {"service": "registry", "path": "/etc/registry/tls/registry.crt", "content": b64(svc.current())},
    )
    assert entry["state"] == "present"
    assert entry["subject_alt_names"] == ["dns:registry.island.internal", "ip:127.0.0.10"]
    assert entry["issuer"] == "CN=Island Intermediate CA R1-I1,O=Island"
    assert entry["not_after"].endswith("Z")
    assert "days" not in json.dumps(entry)


def test_a_missing_certificate_is_recorded_with_the_reason():
    entry = certificate_entry(
        "infra1",
        {"service": "gitea", "path": "/etc/gitea/tls/gitea.crt", "error": "file not found: /etc/..."},
    )
    assert entry["state"] == MISSING and "file not found" in entry["detail"]
    garbage = certificate_entry("infra1", {"service": "gitea", "path": "/x.crt", "content": b64("hello")})
    assert garbage["state"] == UNREADABLE and "infra1:/x.crt" in garbage["detail"]


def test_the_ca_lists_its_roots_and_each_intermediate_with_the_certificates_it_issued(island_pki):
    ca_dir, svc = island_pki
    cert = certificate_entry(
        "infra1", {"service": "registry", "path": "/r.crt", "content": b64(svc.current())}
    )
    ca = ca_entry(str(ca_dir), [cert])
    assert [r["subject"] for r in ca["roots"]] == ["CN=Island Root CA R1,O=Island"]
    (inter,) = ca["intermediates"]
    assert inter["file"] == "intermediate-r1-i1.crt"
    assert inter["issued"] == ["infra1/registry"]
    assert inter["not_after"] > cert["not_after"]


def test_a_ca_directory_without_its_trust_bundle_is_refused_naming_the_file(tmp_path):
    with pytest.raises(ReceiptInputError, match=r"trust-bundle.pem.*island_pki_dir"):
        ca_entry(str(tmp_path), [])


# --- Writing ------------------------------------------------------------------------------------
def test_the_receipt_is_written_0644_and_a_second_write_changes_nothing(tmp_path):
    path = tmp_path / "island-receipt.json"
    data = render(document())
    first = write_receipt(str(path), data)
    assert first.changed and first.reason == "no receipt yet"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_bytes() == data
    mtime = path.stat().st_mtime_ns
    second = write_receipt(str(path), data)
    assert not second.changed and path.stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == ["island-receipt.json"]  # no temporary file left


def test_check_mode_writes_nothing_and_says_what_would_change(tmp_path):
    path = tmp_path / "island-receipt.json"
    preview = write_receipt(str(path), b"{}\n", check_mode=True)
    assert preview.changed and not path.exists()
    path.write_bytes(b"{}\n")
    os.chmod(path, 0o600)
    mode = write_receipt(str(path), b"{}\n", check_mode=True)
    assert mode.changed and mode.reason == "mode 0600 -> 0644"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert write_receipt(str(path), b"{}\n").changed
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_receipt_path_in_a_missing_directory_is_refused_naming_the_variable(tmp_path):
    with pytest.raises(ReceiptInputError, match="island_receipt_path"):
        write_receipt(str(tmp_path / "nope" / "r.json"), b"{}\n")


def test_a_document_holding_a_secret_or_a_private_key_is_refused():
    check_no_secrets(b'{"a": "b"}', {"registry password": "s3cret-value", "Gitea token": ""})
    with pytest.raises(SecretInReceiptError, match="registry password"):
        check_no_secrets(b'{"a": "xx s3cret-value xx"}', {"registry password": "s3cret-value"})
    with pytest.raises(SecretInReceiptError, match="private key"):
        check_no_secrets("-----BEGIN EC PRIVATE KEY-----\n", {})


# --- The module, in-process (no registry, no Gitea: those are in tests/integration) --------------
def module_args(tmp_path, ca_dir, svc, **extra):
    infra = host(
        "infra1",
        ["island_dns", "island_registry"],
        {"coredns.json": record("coredns", "1.14.2"), "registry.json": record("registry", "2.8.2")},
        certificates=[
            {"service": "registry", "path": "/etc/registry/tls/registry.crt", "content": b64(svc.current())}
        ],
    )
    args = {
        "path": str(tmp_path / "island-receipt.json"),
        "bundle": {**LOCK, "images": [], "git": []},
        "island_domain": "island.internal",
        "hosts": [infra, host("server1", ["k3s_servers"], {})],
        "component_groups": COMPONENT_GROUPS,
        "ca_dir": str(ca_dir),
    }
    args.update(extra)
    return args


def test_the_module_writes_then_reports_no_change_and_check_mode_shows_the_diff(tmp_path, island_pki):
    ca_dir, svc = island_pki
    args = module_args(tmp_path, ca_dir, svc)
    preview = run_module(island_receipt, args, check_mode=True, diff=True)
    assert preview["changed"] and not (tmp_path / "island-receipt.json").exists()
    assert preview["diff"]["before"] == "" and '"schema_version": 1' in preview["diff"]["after"]
    written = run_module(island_receipt, args)
    assert written["changed"]
    assert "k3s not recorded" in written["msg"]
    on_disk = json.loads((tmp_path / "island-receipt.json").read_text())
    assert on_disk == written["receipt"]
    assert on_disk["certificates"][0]["subject_alt_names"][0] == "dns:registry.island.internal"
    again = run_module(island_receipt, args, check_mode=True, diff=True)
    assert not again["changed"] and again["diff"]["before"] == again["diff"]["after"]
    assert not run_module(island_receipt, args)["changed"]
    # What runs changes: the receipt follows, and --check --diff shows the line that moves.
    args["hosts"][1]["records"] = {"k3s.json": record("k3s", "v1.36.3+k3s1")}
    moved = run_module(island_receipt, args, check_mode=True, diff=True)
    assert moved["changed"] and '"server1"' in moved["diff"]["after"]


def test_the_module_refuses_a_lock_that_is_not_one(tmp_path, island_pki):
    ca_dir, svc = island_pki
    with pytest.raises(ModuleFail) as failed:
        run_module(island_receipt, module_args(tmp_path, ca_dir, svc, bundle={"bundle": {}}))
    assert "island_bundle" in failed.value.args[0]["msg"]


def test_the_module_without_the_registry_password_says_which_file_it_needs(tmp_path, island_pki):
    ca_dir, svc = island_pki
    args = module_args(
        tmp_path,
        ca_dir,
        svc,
        bundle=LOCK,
        registries=[{"host": "infra1", "registry": "127.0.0.1:9"}],
        registry_password_file=str(tmp_path / "registry-pull-password"),
    )
    with pytest.raises(ModuleFail) as failed:
        run_module(island_receipt, args)
    assert "registry-pull-password" in failed.value.args[0]["msg"]


# --- The summary names the receipt --------------------------------------------------------------
def test_the_summary_names_the_receipt_when_one_was_written():
    lines = island_summary({}, {}, "island.internal", "/s", receipt="/inv/island-receipt.json")
    assert lines[-1] == "Receipt of what the island runs (docs/receipt.md): /inv/island-receipt.json"
    assert not any("Receipt" in line for line in island_summary({}, {}, "island.internal", "/s"))


def test_check_mode_before_the_first_run_warns_instead_of_failing(tmp_path, island_pki):
    _ca_dir, svc = island_pki
    args = module_args(tmp_path, tmp_path / "no-ca-yet", svc)
    with pytest.raises(ModuleFail) as failed:
        run_module(island_receipt, args)
    assert "trust-bundle.pem" in failed.value.args[0]["msg"]
    preview = run_module(island_receipt, args, check_mode=True)
    assert preview["changed"] and "would be written after the real run" in preview["msg"]
    assert not (tmp_path / "island-receipt.json").exists()


def _snapshot(name, node, location, created, *, size=4096, ready=True):
    return {
        "spec": {"snapshotName": name, "nodeName": node, "location": location},
        "status": {"creationTime": created, "size": str(size), "readyToUse": ready},
    }


def test_the_newest_etcd_snapshot_is_recorded_with_every_place_it_is_kept():
    listing = {
        "items": [
            _snapshot(
                "island-install-server1-100",
                "server1",
                "file:///db/island-install-server1-100",
                "2026-12-03T10:00:00Z",
            ),
            _snapshot(
                "island-install-server1-100",
                "s3",
                "s3://k3s-etcd/island-install-server1-100",
                "2026-12-03T10:00:00Z",
            ),
            _snapshot(
                "etcd-snapshot-server1-200",
                "s3",
                "s3://k3s-etcd/etcd-snapshot-server1-200",
                "2026-12-03T12:00:00Z",
                size=8192,
            ),
            _snapshot(
                "etcd-snapshot-server1-200",
                "server1",
                "file:///db/etcd-snapshot-server1-200",
                "2026-12-03T12:00:00Z",
                size=8192,
            ),
            _snapshot(
                "broken-server1-300", "server1", "file:///db/broken", "2026-12-03T13:00:00Z", ready=False
            ),
        ]
    }
    entry = etcd_snapshot_entry("server1", json.dumps(listing))
    assert entry == {
        "server": "server1",
        "state": "present",
        "count": 2,
        "newest": {
            "name": "etcd-snapshot-server1-200",
            "created": "2026-12-03T12:00:00Z",
            "size": 8192,
            "locations": ["file:///db/etcd-snapshot-server1-200", "s3://k3s-etcd/etcd-snapshot-server1-200"],
        },
    }
    # ansible-core 2.16-2.18 hand the module the listing already parsed: the same entry
    assert etcd_snapshot_entry("server1", listing) == entry


def test_no_snapshot_and_a_listing_that_failed_are_recorded_as_such():
    assert etcd_snapshot_entry("server1", '{"items": []}') == {
        "server": "server1",
        "state": "none",
        "count": 0,
    }
    failed = etcd_snapshot_entry("server1", "", "etcd database not found in /var/lib/rancher/k3s/server\n")
    assert failed == {
        "server": "server1",
        "state": UNREADABLE,
        "detail": "etcd database not found in /var/lib/rancher/k3s/server",
    }
    assert etcd_snapshot_entry("server1", "not json")["state"] == UNREADABLE


def test_the_receipt_records_the_snapshot_only_for_an_island_with_k3s_and_names_a_missing_one(
    tmp_path, island_pki
):
    ca_dir, svc = island_pki
    args = module_args(tmp_path, ca_dir, svc)
    without = run_module(island_receipt, args, check_mode=True)
    assert "etcd_snapshot" not in without["receipt"]
    args.update(etcd_snapshot_server="server1", etcd_snapshot_list='{"items": []}')
    written = run_module(island_receipt, args)
    assert written["receipt"]["etcd_snapshot"] == {"server": "server1", "state": "none", "count": 0}
    assert "etcd snapshot none on server1" in written["msg"]
