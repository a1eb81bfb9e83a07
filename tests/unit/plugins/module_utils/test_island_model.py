"""The island model: one declaration of every component, read by preflight, the summary, the
receipt, the upgrade plan and the DNS zone (plugins/module_utils/island_model.py)."""

from __future__ import annotations

import pathlib
import re

import pytest
from ansible_collections.island.installer.plugins.filter.island_summary import island_summary
from ansible_collections.island.installer.plugins.module_utils import island_model as model
from ansible_collections.island.installer.plugins.module_utils import island_model_receipt as receipt

ROOT = pathlib.Path(__file__).resolve().parents[4]

GROUPS = {
    "all": ["infra1", "s1", "s2", "s3", "a1"],
    "island_dns": ["infra1"],
    "island_registry": ["infra1"],
    "island_minio": ["infra1"],
    "island_gitea": ["infra1"],
    "k3s_servers": ["s1", "s2", "s3"],
    "k3s_agents": ["a1"],
}


def _hostvars(**infra):
    hostvars = {
        h: {"island_address": f"10.0.0.{i}", "group_names": []} for i, h in enumerate(GROUPS["all"], 1)
    }
    hostvars["infra1"].update(infra)
    return hostvars


def _ports(island, host):
    return [(p["port"], p["proto"], p["service"]) for p in island["hosts"][host]["ports"]]


def test_without_inventory_settings_every_port_is_its_roles_default():
    island = model.island(GROUPS, _hostvars(), "island.internal")
    assert island["components"]["registry"]["ports"] == {
        "pull": 5000,
        "push": 5001,
        "metrics": 5002,
        "push_metrics": 5003,
    }
    assert island["components"]["minio"]["ports"] == {"s3": 9000, "console": 9001}
    assert island["components"]["gitea"]["ports"] == {"http": 3000}
    assert island["components"]["coredns"]["ports"] == {"dns": 53, "metrics": 9153}
    assert island["components"]["k3s"]["url"] == "https://api.island.internal:6443"


def test_preflight_checks_the_ports_the_inventory_sets_not_the_defaults():
    island = model.island(
        GROUPS, _hostvars(registry_port=5443, minio_port=9443, gitea_port=3443), "island.internal"
    )
    ports = _ports(island, "infra1")
    assert (5443, "tcp", "the registry") in ports
    assert (9443, "tcp", "MinIO") in ports
    assert (3443, "tcp", "Gitea") in ports
    assert not {5000, 9000, 3000} & {port for port, _, _ in ports}
    # The registry's entry keeps what preflight needs to recognise its own listener on a rerun.
    registry = next(p for p in island["hosts"]["infra1"]["ports"] if p["port"] == 5443)
    assert registry == {
        "service": "the registry",
        "port": 5443,
        "proto": "tcp",
        "units": ["registry.service"],
        "users": ["registry"],
    }


def test_minios_console_port_is_checked_only_while_the_console_is_on():
    off = model.island(GROUPS, _hostvars(), "island.internal")
    assert 9001 not in [port for port, _, _ in _ports(off, "infra1")]
    on = model.island(GROUPS, _hostvars(minio_console=True), "island.internal")
    assert (9001, "tcp", "MinIO's console") in _ports(on, "infra1")


def test_each_host_gets_only_the_ports_of_its_groups():
    island = model.island(GROUPS, _hostvars(), "island.internal")
    # node_exporter is on every island host, whatever its groups.
    assert [p for p, _, _ in _ports(island, "s1")] == [6443, 2379, 2380, 10250, 9100]
    assert _ports(island, "a1") == [(10250, "tcp", "the kubelet"), (9100, "tcp", "node_exporter")]
    assert island["hosts"]["a1"]["ports"][0]["units"] == ["k3s-agent.service"]
    dns = island["hosts"]["infra1"]["ports"][:2]
    assert [(p["port"], p["proto"], p.get("bind")) for p in dns] == [
        (53, "udp", "island"),
        (53, "tcp", "island"),
    ]


def test_the_summary_shows_the_endpoints_at_the_inventorys_ports():
    hostvars = _hostvars(registry_port=5443, minio_port=9443, gitea_port=3443)
    island = model.island(GROUPS, hostvars, "island.internal", {"registry": "cr"})
    services = [(s["name"], s["endpoint"]) for s in island["services"]]
    lines = island_summary(GROUPS, hostvars, "island.internal", "/secrets", services=services)
    assert "  registry:     https://cr.island.internal:5443 (nodes, read-only); :5001 for seeding" in lines
    assert "  MinIO (S3):   https://s3.island.internal:9443" in lines
    assert "  Gitea:        https://git.island.internal:3443" in lines
    assert "  DNS:          10.0.0.1 (port 53)" in lines
    assert "  Kubernetes API: https://api.island.internal:6443" in lines


def test_the_summary_leaves_out_services_whose_group_has_no_hosts():
    groups = {**GROUPS, "island_gitea": []}
    island = model.island(groups, _hostvars(), "island.internal")
    assert "Gitea" not in [s["name"] for s in island["services"]]


def test_the_receipt_asks_each_registry_and_gitea_host_at_its_own_port():
    island = model.island(GROUPS, _hostvars(registry_port=5443, gitea_port=3443), "island.internal")
    assert receipt.receipt_registries(island) == [{"host": "infra1", "registry": "10.0.0.1:5443"}]
    assert receipt.receipt_gitea(island) == [{"host": "infra1", "url": "https://10.0.0.1:3443"}]
    assert island["hosts"]["infra1"]["certificates"] == [
        {"service": "registry", "path": "/etc/registry/tls/registry.crt"},
        {"service": "minio", "path": "/etc/minio/certs/minio.crt"},
        {"service": "gitea", "path": "/etc/gitea/tls/gitea.crt"},
        {"service": "node_exporter", "path": "/etc/node_exporter/tls/node_exporter.crt"},
    ]
    # Every island host has node_exporter's certificate; the receipt reads it too.
    assert island["hosts"]["s1"]["certificates"] == [
        {"service": "node_exporter", "path": "/etc/node_exporter/tls/node_exporter.crt"}
    ]


def test_the_receipt_lists_every_host_and_marks_those_it_did_not_reach():
    hostvars = _hostvars()
    hostvars["infra1"]["_receipt_host"] = {"name": "infra1", "records": {}}
    hostvars["s1"]["group_names"] = ["k3s_servers"]
    hosts = receipt.receipt_hosts(["infra1", "s1"], ["infra1", "s1"], hostvars)
    assert hosts == [
        {"name": "infra1", "records": {}},
        {"name": "s1", "address": "10.0.0.2", "groups": ["k3s_servers"], "reached": False},
    ]


def test_a_certificate_that_could_not_be_read_is_recorded_with_the_reason():
    results = [
        {"item": {"service": "registry", "path": "/r.crt"}, "content": "Y2VydA=="},
        {"item": {"service": "gitea", "path": "/g.crt"}, "failed": True, "msg": "file not found: /g.crt"},
    ]
    assert receipt.receipt_certificates(results) == [
        {"service": "registry", "path": "/r.crt", "content": "Y2VydA==", "error": ""},
        {"service": "gitea", "path": "/g.crt", "content": None, "error": "file not found: /g.crt"},
    ]


def test_the_upgrade_plan_and_the_receipt_share_the_models_groups():
    assert model.host_components(GROUPS, "infra1") == [
        "coredns",
        "gitea",
        "minio",
        "node_exporter",
        "registry",
    ]
    assert model.host_components(GROUPS, "a1") == ["k3s", "node_exporter"]
    assert model.COMPONENT_GROUPS["k3s"] == ["k3s_servers", "k3s_agents"]
    assert model.REQUIRED_GROUPS == [
        "island_dns",
        "island_registry",
        "island_minio",
        "island_gitea",
        "k3s_servers",
    ]


def test_without_a_domain_the_model_has_no_names_and_preflight_can_still_name_the_problem():
    island = model.island(GROUPS, _hostvars(), None)
    assert island["services"] == []
    assert "name" not in island["components"]["registry"]
    assert island["required_groups"]


def test_a_port_that_is_not_a_number_is_refused_naming_the_variable_and_the_host():
    with pytest.raises(
        model.ModelError, match=r"registry_port on infra1 is 'fivethousand', not a port number"
    ):
        model.island(GROUPS, _hostvars(registry_port="fivethousand"), "island.internal")


def test_every_port_variable_of_the_model_is_set_in_its_roles_defaults_only():
    """One definition: the role's defaults/main.yml gives the value, and no other role restates it."""
    for component in model.COMPONENTS:
        for port in component["ports"]:
            if port["var"] is None:
                continue
            assert port["var"] in model.role_defaults(component["role"]), port["var"]
            for other in (ROOT / "roles").glob("*/defaults/main.yml"):
                if other.parts[-3] != component["role"]:
                    assert f"\n{port['var']}:" not in other.read_text(), (port["var"], other)


def test_the_record_directory_and_certificate_paths_are_written_once():
    places = [*ROOT.glob("roles/**/*.yml"), *ROOT.glob("playbooks/*.yml"), *ROOT.glob("plugins/**/*.py")]
    for needle in (
        model.RECORD_DIR,
        model.BUNDLE_RECORD,
        "/etc/registry/tls",
        "/etc/minio/certs",
        "/etc/gitea/tls",
    ):
        found = [
            p.relative_to(ROOT).as_posix()
            for p in places
            if needle in p.read_text()
            and p.name not in ("island_model.py",)
            # examples in module documentation and comments of roles/pki/tasks/issue.yml name paths too
            and p.parts[-2] != "modules"
            and p.name != "issue.yml"
        ]
        assert found == [], (needle, found)


def test_minio_provisions_a_bucket_a_policy_limited_to_it_and_a_user_for_each_declared_tenant():
    island = model.island(GROUPS, _hostvars(), "island.internal")
    tenants = model.minio_tenants(island["tenants"])
    assert tenants["buckets"] == [
        {"name": "k3s-etcd-snapshots", "object_lock": True, "retention_days": 30, "noncurrent_days": 30},
        {"name": "island-registry"},
    ]
    assert tenants["users"] == [
        {"access_key": "k3s-etcd", "policies": ["k3s-etcd-snapshots"]},
        {"access_key": "island-registry", "policies": ["island-registry"]},
    ]
    registry = tenants["policies"][1]
    assert registry["name"] == "island-registry"
    assert registry["policy"]["Statement"][0]["Resource"] == ["arn:aws:s3:::island-registry"]
    assert "s3:ListBucketMultipartUploads" in registry["policy"]["Statement"][0]["Action"]
    assert registry["policy"]["Statement"][1]["Resource"] == ["arn:aws:s3:::island-registry/*"]
    assert island["components"]["registry"]["tenants"] == ["registry"]
    assert island["components"]["k3s"]["tenants"] == ["k3s"]


def test_the_snapshot_account_may_hide_snapshots_but_is_denied_deleting_a_version():
    # MinIO authorises deleting a version as s3:DeleteObject and checks s3:DeleteObjectVersion for
    # an explicit Deny only (cmd/auth-handler.go authorizeRequest): leaving it out is not enough.
    island = model.island(GROUPS, _hostvars(), "island.internal")
    k3s = model.minio_tenants(island["tenants"])["policies"][0]
    assert k3s["name"] == "k3s-etcd-snapshots"
    _bucket, objects, deny = k3s["policy"]["Statement"]
    assert "s3:DeleteObject" in objects["Action"] and objects["Effect"] == "Allow"
    assert deny == {
        "Effect": "Deny",
        "Action": ["s3:DeleteObjectVersion"],
        "Resource": ["arn:aws:s3:::k3s-etcd-snapshots/*"],
    }
    hostvars = _hostvars()
    minio_host = GROUPS["island_minio"][0]
    hostvars[minio_host] = dict(hostvars[minio_host], minio_snapshot_history_days=0)
    buckets = model.minio_tenants(model.island(GROUPS, hostvars, "island.internal")["tenants"])["buckets"]
    assert buckets[0] == {"name": "k3s-etcd-snapshots"}  # 0 days: a plain bucket, no history


def test_consumers_read_their_tenant_as_the_minio_role_names_it_with_the_secret_it_writes():
    # The minio host's inventory renames the registry's bucket and user: the consumer (the
    # registry role) reads the renamed ones from the model, not a default of its own.
    hostvars = _hostvars()
    minio_host = GROUPS["island_minio"][0]
    renamed = {"minio_registry_bucket": "images", "minio_registry_user": "reg"}
    hostvars[minio_host] = dict(hostvars[minio_host], **renamed)
    tenants = {t["tenant"]: t for t in model.island(GROUPS, hostvars, "island.internal")["tenants"]}
    assert (tenants["registry"]["bucket"], tenants["registry"]["user"]) == ("images", "reg")
    assert tenants["registry"]["secret"] == "minio-user-reg" == model.minio_user_secret("reg")
    assert tenants["registry"]["enabled"] and tenants["k3s"]["enabled"]
    assert tenants["k3s"]["secret"] == "minio-user-k3s-etcd"


def test_a_tenant_whose_bucket_is_empty_or_without_minio_is_off():
    hostvars = _hostvars()
    minio_host = GROUPS["island_minio"][0]
    hostvars[minio_host] = dict(hostvars[minio_host], minio_etcd_snapshot_bucket="")
    tenants = model.island(GROUPS, hostvars, "island.internal")["tenants"]
    provisioned = model.minio_tenants(tenants)
    assert provisioned["buckets"] == [{"name": "island-registry"}]
    assert [u["access_key"] for u in provisioned["users"]] == ["island-registry"]
    assert [t["enabled"] for t in tenants] == [False, True]
    without_minio = dict(GROUPS, island_minio=[])
    tenants = model.island(without_minio, _hostvars(), "island.internal")["tenants"]
    assert not any(t["enabled"] for t in tenants)


def test_preflight_counts_each_part_of_the_bundle_on_the_hosts_of_the_components_that_receive_it():
    assert model.bundle_share() == {
        "bin": ["all"],
        "oci": ["island_registry"],
        "files": ["island_minio"],
        "git": ["island_gitea"],
        "k3s": ["k3s_servers", "k3s_agents"],
    }


def test_roles_find_a_components_hosts_in_the_model_not_by_looking_up_its_group():
    """The model says which group carries a component; a role reads island.components.<c>.hosts
    (or .members), and only a play's hosts: line names a group."""
    names = "|".join(group["name"] for group in model.GROUPS)
    lookup = re.compile(rf"groups\[\s*['\"]({names})['\"]")
    places = [*ROOT.glob("roles/**/*.yml"), *ROOT.glob("roles/**/*.j2"), *ROOT.glob("playbooks/*.yml")]
    found = [
        f"{p.relative_to(ROOT).as_posix()}:{n}"
        for p in places
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if lookup.search(line)
    ]
    assert found == []


def test_the_k3s_component_names_its_servers_and_agents():
    island = model.island(GROUPS, _hostvars(), "island.internal")
    assert island["components"]["k3s"]["members"] == {"servers": ["s1", "s2", "s3"], "agents": ["a1"]}
    assert island["components"]["coredns"]["members"] == {}


# Issue 17: the monitoring group and the scrape declarations.
MONITORED = {**GROUPS, "island_monitoring": ["infra1"]}


def test_the_monitoring_group_is_optional_and_an_island_without_it_has_no_monitoring_host():
    assert "island_monitoring" not in model.REQUIRED_GROUPS
    island = model.island(GROUPS, _hostvars(), "island.internal")
    assert island["components"]["prometheus"]["hosts"] == []
    assert [job["job"] for job in island["scrape"]] == ["coredns", "minio", "gitea", "k3s_api", "node"]
    assert "Prometheus" not in [s["name"] for s in island["services"]]


def test_node_exporter_runs_on_every_island_host_once_however_many_groups_it_is_in():
    island = model.island(MONITORED, _hostvars(), "island.internal")
    assert island["components"]["node_exporter"]["hosts"] == GROUPS["all"]
    infra = [p["port"] for p in island["hosts"]["infra1"]["ports"]]
    assert infra.count(9100) == 1
    assert model.host_components(MONITORED, "infra1") == [
        "alertmanager",
        "blackbox_exporter",
        "coredns",
        "gitea",
        "minio",
        "node_exporter",
        "prometheus",
        "registry",
    ]
    # A host of no island group carries nothing.
    assert model.host_components({**MONITORED, "all": [*GROUPS["all"], "bastion"]}, "bastion") == []


def test_prometheus_scrapes_what_each_component_declares_at_the_inventorys_ports():
    hostvars = _hostvars(monitoring_prometheus_port=9443)
    hostvars["s2"]["monitoring_node_exporter_port"] = 9200
    island = model.island(MONITORED, hostvars, "island.internal")
    jobs = {job["job"]: job for job in island["scrape"]}
    assert list(jobs) == [
        "coredns",
        "registry",
        "registry_push",
        "minio",
        "gitea",
        "k3s_api",
        "prometheus",
        "alertmanager",
        "blackbox_exporter",
        "node",
    ]
    assert {job["scheme"] for job in jobs.values()} == {"https"}
    assert [t["target"] for t in jobs["prometheus"]["targets"]] == ["10.0.0.1:9443"]
    assert [t["target"] for t in jobs["node"]["targets"]] == [
        "10.0.0.1:9100",
        "10.0.0.2:9100",
        "10.0.0.3:9200",
        "10.0.0.4:9100",
        "10.0.0.5:9100",
    ]
    assert [t["host"] for t in jobs["node"]["targets"]] == GROUPS["all"]
    # Prometheus and Alertmanager require the account; the exporters none.
    assert jobs["prometheus"]["auth"] == {
        "kind": "basic",
        "user": "island-monitor",
        "secret": "monitoring-prometheus-password",
    }
    assert jobs["alertmanager"]["auth"]["secret"] == "monitoring-alertmanager-password"
    assert jobs["node"]["auth"] == {"kind": "none"}
    # MinIO's cluster metrics and Gitea's /metrics with the bearer tokens their roles make.
    assert jobs["minio"]["path"] == "/minio/v2/metrics/cluster"
    assert jobs["minio"]["auth"] == {"kind": "bearer", "secret": "minio-prometheus-token"}
    assert [t["target"] for t in jobs["minio"]["targets"]] == ["10.0.0.1:9000"]
    assert jobs["gitea"]["auth"] == {"kind": "bearer", "secret": "gitea-metrics-token"}


def test_the_k3s_api_servers_are_scraped_with_a_client_certificate_against_k3s_own_ca():
    island = model.island(MONITORED, _hostvars(), "island.internal")
    job = next(j for j in island["scrape"] if j["job"] == "k3s_api")
    assert [t["target"] for t in job["targets"]] == ["10.0.0.2:6443", "10.0.0.3:6443", "10.0.0.4:6443"]
    assert job["path"] == "/metrics"
    assert job["auth"] == {
        "kind": "client_cert",
        "name": "k3s-api",
        "dir": "/etc/prometheus/scrape/k3s-api",
        "ca_file": "/etc/prometheus/scrape/k3s-api/ca.crt",
        "cert_file": "/etc/prometheus/scrape/k3s-api/client.crt",
        "key_file": "/etc/prometheus/scrape/k3s-api/client.key",
        "roots": "own",
    }
    # Not probed by the blackbox exporter against the island CA: its certificate is k3s's own CA's.
    assert not [p for p in island["probes"] if p["component"] == "k3s"]


def test_each_registry_process_is_scraped_through_its_front_with_an_island_client_certificate():
    hostvars = _hostvars(registry_push_metrics_port=5903, pki_trust_bundle_path="/etc/island/roots.pem")
    island = model.island(MONITORED, hostvars, "island.internal")
    jobs = {j["job"]: j for j in island["scrape"] if j["component"] == "registry"}
    assert [t["target"] for t in jobs["registry"]["targets"]] == ["10.0.0.1:5002"]
    assert [t["target"] for t in jobs["registry_push"]["targets"]] == ["10.0.0.1:5903"]
    assert jobs["registry"]["path"] == "/metrics"
    island_cert = {
        "kind": "client_cert",
        "name": "island",
        "roots": "island",
        "dir": "/etc/prometheus/scrape/island",
        # The island roots, as every other job; the client certificate is the island CA's.
        "ca_file": "/etc/island/roots.pem",
        "cert_file": "/etc/prometheus/scrape/island/client.crt",
        "key_file": "/etc/prometheus/scrape/island/client.key",
        # What the fronts require (socat commonname=): one name for every monitoring host's certificate.
        "client_san": "DNS:island-prometheus.island.internal",
    }
    assert jobs["registry"]["auth"] == jobs["registry_push"]["auth"] == island_cert
    # preflight and the firewall check cover both ports, the debug server's (loopback) and the
    # front's (island address) alike; a rerun finds them held by the island's own units.
    ports = [p for p in island["hosts"]["infra1"]["ports"] if p["port"] in (5002, 5903)]
    assert ports == [
        {
            "service": "the registry's metrics",
            "port": 5002,
            "proto": "tcp",
            "units": ["registry.service", "island-registry-metrics.service"],
            "users": ["registry"],
        },
        {
            "service": "the registry push endpoint's metrics",
            "port": 5903,
            "proto": "tcp",
            "units": ["registry-push.service", "island-registry-push-metrics.service"],
            "users": ["registry"],
        },
    ]
    # Not probed: the front refuses a handshake without Prometheus's client certificate.
    assert [p["port"] for p in island["probes"] if p["component"] == "registry"] == [5000, 5001]


def test_without_a_monitoring_host_the_registry_binds_no_metrics_port_and_is_not_scraped():
    island = model.island(GROUPS, _hostvars(), "island.internal")
    registry = [
        p["port"] for p in island["hosts"]["infra1"]["ports"] if p["service"].startswith("the registry")
    ]
    assert registry == [5000, 5001]
    assert not [j for j in island["scrape"] if j["component"] == "registry"]


def test_an_island_client_certificate_scrape_with_unknown_roots_is_refused(monkeypatch):
    auth = {"kind": "client_cert", "name": "island", "roots": "somewhere"}
    broken = dict(model.COMPONENTS[-1], scrape=[model._scrape("node", "web", auth=auth)])
    monkeypatch.setattr(model, "COMPONENTS", (*model.COMPONENTS[:-1], broken))
    with pytest.raises(model.ModelError, match=r"roots 'somewhere': give own .* or island"):
        model.island(MONITORED, _hostvars(), "island.internal")


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden"])
def test_a_client_cert_scrape_without_a_plain_name_is_refused(monkeypatch, name):
    auth = {"kind": "client_cert", "name": name}
    broken = dict(model.COMPONENTS[-1], scrape=[model._scrape("node", "web", auth=auth)])
    monkeypatch.setattr(model, "COMPONENTS", (*model.COMPONENTS[:-1], broken))
    with pytest.raises(model.ModelError, match=r"client_cert auth is named .*plain directory name"):
        model.island(MONITORED, _hostvars(), "island.internal")


def test_a_scrape_whose_endpoint_is_switched_off_is_left_out():
    island = model.island(
        MONITORED, _hostvars(gitea_metrics=False, minio_prometheus_token="no"), "island.internal"
    )
    assert not {"gitea", "minio"} & {job["job"] for job in island["scrape"]}


def test_coredns_metrics_are_scraped_over_tls_on_the_island_address_while_dns_metrics_tls_is_on():
    hostvars = _hostvars()
    hostvars["infra1"]["dns_metrics_port"] = 9253
    island = model.island(MONITORED, hostvars, "island.internal")
    job = next(j for j in island["scrape"] if j["job"] == "coredns")
    assert (job["scheme"], job["path"], job["auth"]) == ("https", "/metrics", {"kind": "none"})
    assert [t["target"] for t in job["targets"]] == ["10.0.0.1:9253"]
    # preflight checks the port on the island address, as CoreDNS's own
    metrics = next(p for p in island["hosts"]["infra1"]["ports"] if p["service"] == "CoreDNS's metrics")
    assert (metrics["port"], metrics["proto"], metrics["bind"]) == (9253, "tcp", "island")
    assert metrics["units"] == ["coredns.service"]
    off = model.island(MONITORED, _hostvars(dns_metrics_tls=False), "island.internal")
    assert "coredns" not in [j["job"] for j in off["scrape"]]
    assert "CoreDNS's metrics" not in [p["service"] for p in off["hosts"]["infra1"]["ports"]]


def test_a_new_component_brings_its_own_scrape_targets(monkeypatch):
    extra = {
        "name": "exampled",
        "role": "registry",
        "groups": ["island_registry"],
        "ports": [model._port("pull", "exampled", var="registry_port", group="island_registry")],
        "service": None,
        "tls": {"dir": "/etc/exampled/tls", "name": "exampled"},
        "scrape": [
            model._scrape("exampled", "pull", path="/debug/metrics", auth={"kind": "bearer", "secret": "t"})
        ],
    }
    monkeypatch.setattr(model, "COMPONENTS", (*model.COMPONENTS, extra))
    island = model.island(MONITORED, _hostvars(registry_port=5443), "island.internal")
    job = next(j for j in island["scrape"] if j["job"] == "exampled")
    assert job["path"] == "/debug/metrics"
    assert job["auth"] == {"kind": "bearer", "secret": "t"}
    assert [t["target"] for t in job["targets"]] == ["10.0.0.1:5443"]
    assert {"component": "exampled", "target": "10.0.0.1:5443"}.items() <= next(
        p for p in island["probes"] if p["component"] == "exampled"
    ).items()


def test_a_scrape_declaration_that_names_no_port_of_its_component_is_refused(monkeypatch):
    broken = dict(model.COMPONENTS[-1], scrape=[model._scrape("node", "metrics")])
    monkeypatch.setattr(model, "COMPONENTS", (*model.COMPONENTS[:-1], broken))
    with pytest.raises(
        model.ModelError, match=r"node_exporter's scrape job node names port 'metrics'; its ports are web"
    ):
        model.island(MONITORED, _hostvars(), "island.internal")


def test_an_unknown_auth_kind_is_refused_naming_the_kinds(monkeypatch):
    broken = dict(
        model.COMPONENTS[-1], scrape=[model._scrape("node", "web", auth={"kind": "digest", "secret": "x"})]
    )
    monkeypatch.setattr(model, "COMPONENTS", (*model.COMPONENTS[:-1], broken))
    with pytest.raises(model.ModelError, match=r"kind 'digest'.*give kind none, basic.*or client_cert"):
        model.island(MONITORED, _hostvars(), "island.internal")


def test_the_blackbox_exporter_probes_every_island_tls_endpoint_each_host_binds():
    island = model.island(MONITORED, _hostvars(registry_port=5443, minio_console=True), "island.internal")
    probes = [(p["host"], p["component"], p["port"]) for p in island["probes"]]
    assert probes[:9] == [
        ("infra1", "registry", 5443),
        ("infra1", "registry", 5001),
        ("infra1", "minio", 9000),
        ("infra1", "minio", 9001),
        ("infra1", "gitea", 3000),
        ("infra1", "prometheus", 9090),
        ("infra1", "alertmanager", 9093),
        ("infra1", "blackbox_exporter", 9115),
        ("infra1", "node_exporter", 9100),
    ]
    assert probes[9:] == [(h, "node_exporter", 9100) for h in ("s1", "s2", "s3", "a1")]
    # CoreDNS (no TLS) and k3s (its own CA, not the island's) are not probed against the island roots.
    assert not {"coredns", "k3s"} & {p["component"] for p in island["probes"]}
    # The console's port only while it is on.
    off = model.island(MONITORED, _hostvars(), "island.internal")
    assert 9001 not in [p["port"] for p in off["probes"]]


def test_the_summary_shows_prometheus_by_its_hosts_address():
    island = model.island(MONITORED, _hostvars(), "island.internal")
    assert {
        "group": "island_monitoring",
        "name": "Prometheus",
        "endpoint": "https://10.0.0.1:9090",
    } in island["services"]


def test_preflight_requires_the_disk_prometheus_may_fill_on_the_monitoring_hosts_only():
    island = model.island(MONITORED, _hostvars(), "island.internal")
    assert island["hosts"]["infra1"]["data_bytes"] == 5 * 1024**3  # monitoring_retention_size 5GB
    assert island["hosts"]["s1"]["data_bytes"] == 0
    island = model.island(MONITORED, _hostvars(monitoring_retention_size="512MB"), "island.internal")
    assert island["hosts"]["infra1"]["data_bytes"] == 512 * 1024**2
    with pytest.raises(model.ModelError, match=r"monitoring_retention_size is '5 G'.*\(on infra1\)"):
        model.island(MONITORED, _hostvars(monitoring_retention_size="5 G"), "island.internal")
