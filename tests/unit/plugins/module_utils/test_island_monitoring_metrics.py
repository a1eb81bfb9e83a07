"""island-metrics' configuration per host from the island model, and the alert rules' for: durations
set by the operator (plugins/module_utils/island_monitoring.py, metrics_config and rules_with_for,
and their filters). The configurations are checked by the program's own loader, the rewritten rules
by Prometheus's own promtool."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import shutil
import subprocess

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.island.installer.plugins.filter.island_monitoring import (
    island_metrics_config,
    island_rules_for,
)
from ansible_collections.island.installer.plugins.module_utils import island_model as model
from ansible_collections.island.installer.plugins.module_utils import island_monitoring as monitoring

from tests.support import ROOT

GROUPS = {
    "all": ["infra1", "s1", "a1"],
    "island_dns": ["infra1"],
    "island_registry": ["infra1"],
    "island_minio": ["infra1"],
    "island_gitea": ["infra1"],
    "k3s_servers": ["s1"],
    "k3s_agents": ["a1"],
    "island_monitoring": ["infra1"],
}
HOSTVARS = {h: {"island_address": f"10.0.0.{i}"} for i, h in enumerate(GROUPS["all"], 1)}
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
IMAGES = [
    {"reference": "docker.io/library/alpine:3.20", "digest": DIGEST_A},
    {"reference": "ghcr.io/acme/tool@" + DIGEST_B, "digest": DIGEST_B},
]
RULES = ROOT / "roles" / "monitoring" / "files" / "rules" / "island.rules.yml"
PROGRAM = ROOT / "roles" / "monitoring" / "files" / "island-metrics"
PROMTOOL = shutil.which("promtool")


def _config(host, hostvars=HOSTVARS, **kwargs):
    island = model.island(GROUPS, hostvars, "island.internal")
    args = {"textfile_dir": "/var/lib/node_exporter/textfile", "warn_days": 30, "images": IMAGES}
    return island_metrics_config(island, host, hostvars, **(args | kwargs))


def _program():
    loader = importlib.machinery.SourceFileLoader("island_metrics_program", str(PROGRAM))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_each_host_watches_the_island_certificates_the_model_puts_on_it_and_the_operators_own():
    infra = _config("infra1", certificates=["/etc/ssl/own/ldap.crt"])
    assert infra["certificates"] == [
        "/etc/registry/tls/registry.crt",
        "/etc/minio/certs/minio.crt",
        "/etc/gitea/tls/gitea.crt",
        "/etc/prometheus/tls/prometheus.crt",
        "/etc/alertmanager/tls/alertmanager.crt",
        "/etc/blackbox_exporter/tls/blackbox_exporter.crt",
        "/etc/node_exporter/tls/node_exporter.crt",
        # Prometheus's client certificates on the monitoring host, k3s's client CA's included
        "/etc/prometheus/scrape/island/client.crt",
        "/etc/prometheus/scrape/k3s-api/client.crt",
        "/etc/ssl/own/ldap.crt",
    ]
    assert _config("a1")["certificates"] == ["/etc/node_exporter/tls/node_exporter.crt"]
    # and, on every host, every island certificate island_csr/island_cert recorded there
    assert (
        infra["certificate_records"] == _config("a1")["certificate_records"] == "/var/lib/island/certificates"
    )
    assert infra["certificate_warn_days"] == 30
    # an operator's path already in the list is not watched twice
    again = _config("a1", certificates=["/etc/node_exporter/tls/node_exporter.crt"])
    assert again["certificates"] == ["/etc/node_exporter/tls/node_exporter.crt"]


def test_only_k3s_servers_watch_etcd_snapshots_on_the_k3s_roles_schedule():
    assert _config("s1")["etcd_snapshots"] == {
        "dir": "/var/lib/rancher/k3s/server/db/snapshots",
        "schedule_cron": model.role_defaults("k3s")["k3s_etcd_snapshot_schedule_cron"],
    }
    assert "etcd_snapshots" not in _config("a1")
    assert "etcd_snapshots" not in _config("infra1")


def test_the_inventorys_snapshot_schedule_is_the_one_watched():
    hostvars = {h: dict(v) for h, v in HOSTVARS.items()}
    hostvars["s1"]["k3s_etcd_snapshot_schedule_cron"] = "30 2 * * 1-5"
    assert _config("s1", hostvars=hostvars)["etcd_snapshots"]["schedule_cron"] == "30 2 * * 1-5"


def test_a_registry_host_checks_its_own_endpoint_for_the_locks_images_where_the_seeding_put_them():
    registry = _config("infra1")["registry"]
    assert registry == {
        "url": "https://10.0.0.1:5000",
        "ca_file": model.island(GROUPS, HOSTVARS, "island.internal")["pki"]["trust_bundle"],
        "credentials_file": "/etc/island-metrics/registry.json",
        # strip_host, as the registry role seeds: docker.io/library/alpine -> library/alpine
        "images": [
            {"name": "library/alpine", "reference": "3.20", "digest": DIGEST_A},
            {"name": "acme/tool", "reference": DIGEST_B, "digest": DIGEST_B},
        ],
    }
    assert "registry" not in _config("s1")
    # a bundle without images: nothing to check
    assert "registry" not in _config("infra1", images=[])


def test_the_registry_check_asks_at_the_inventorys_port():
    hostvars = {h: dict(v) for h, v in HOSTVARS.items()}
    hostvars["infra1"]["registry_port"] = 5443
    assert _config("infra1", hostvars=hostvars)["registry"]["url"] == "https://10.0.0.1:5443"


@pytest.mark.parametrize("host", ["infra1", "s1", "a1"])
def test_every_hosts_configuration_passes_the_programs_own_check(tmp_path, host):
    config = _config(host, textfile_dir=str(tmp_path))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    loaded = _program().load_config(str(path))  # raises ConfigError naming every problem
    assert loaded["certificates"] == config["certificates"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"warn_days": 0}, "monitoring_certificate_warn_days must be a whole number of days >= 1, not 0"),
        ({"warn_days": "soon"}, "monitoring_certificate_warn_days must be a whole number"),
        ({"certificates": ["relative.crt"]}, "monitoring_metrics_certificates: 'relative.crt' is not"),
        ({"certificates": "/etc/x.crt"}, "monitoring_metrics_certificates must be a list of paths"),
    ],
)
def test_a_setting_island_metrics_would_refuse_is_refused_naming_the_variable(kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        _config("a1", **kwargs)


# --- the rules' for: durations -------------------------------------------------------------------
def _rules(text):
    return {r["alert"]: r for g in yaml.safe_load(text)["groups"] for r in g["rules"] if "alert" in r}


def test_no_durations_leave_the_rule_file_as_shipped():
    text = RULES.read_text()
    assert island_rules_for(text, {}) == text


def test_only_the_named_alerts_for_changes_and_every_comment_stays():
    text = RULES.read_text()
    out = island_rules_for(text, {"IslandTargetDown": "20s", "IslandCertificateFileExpiringSoon": "1m"})
    before, after = _rules(text), _rules(out)
    assert after["IslandTargetDown"]["for"] == "20s"
    assert after["IslandCertificateFileExpiringSoon"]["for"] == "1m"
    for name in set(before) - {"IslandTargetDown", "IslandCertificateFileExpiringSoon"}:
        assert after[name] == before[name], name
    assert [line for line in out.splitlines() if line.lstrip().startswith("#")] == [
        line for line in text.splitlines() if line.lstrip().startswith("#")
    ]
    assert len(out.splitlines()) == len(text.splitlines())


@pytest.mark.skipif(PROMTOOL is None, reason="needs promtool (Debian's prometheus package)")
def test_the_rewritten_rules_pass_promtool_check_rules(tmp_path):
    path = tmp_path / "island.rules.yml"
    path.write_text(island_rules_for(RULES.read_text(), {"IslandTargetDown": "10s"}))
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("durations", "message"),
    [
        ({"IslandNoSuchAlert": "1m"}, "monitoring_alert_for: no alert IslandNoSuchAlert in the rules"),
        ({"IslandEgressAttempt": "1m"}, "IslandEgressAttempt has no for: duration"),
        ({"IslandTargetDown": "5 minutes"}, "monitoring_alert_for.IslandTargetDown is '5 minutes', not a"),
        (["IslandTargetDown"], "monitoring_alert_for must be a mapping"),
    ],
)
def test_a_duration_for_an_unknown_alert_or_in_a_wrong_format_is_refused(durations, message):
    with pytest.raises(AnsibleFilterError, match=message):
        island_rules_for(RULES.read_text(), durations)


def test_the_module_utils_error_is_a_monitoring_error():
    with pytest.raises(monitoring.MonitoringError):
        monitoring.rules_with_for(RULES.read_text(), {"IslandNoSuchAlert": "1m"})
