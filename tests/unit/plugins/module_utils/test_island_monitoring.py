"""The monitoring programs' configuration from the island model (plugins/module_utils/island_monitoring.py),
checked by the real programs' own tools (Debian 12's promtool 2.42, amtool 0.25, blackbox_exporter
0.23's --config.check), and refused with a clear error where the operator's input is wrong."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest
import yaml
from ansible_collections.island.installer.plugins.filter.island_monitoring import island_basic_auth_users
from ansible_collections.island.installer.plugins.module_utils import island_model as model
from ansible_collections.island.installer.plugins.module_utils import island_monitoring as monitoring

ROOT = pathlib.Path(__file__).resolve().parents[4]
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
SECRETS = {
    "monitoring-prometheus-password": "p-secret",
    "monitoring-alertmanager-password": "a-secret",
    "minio-prometheus-token": "m-token",
    "gitea-metrics-token": "g-token",
}
PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
BLACKBOX = shutil.which("prometheus-blackbox-exporter")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool (Debian package prometheus) not installed"
)
needs_amtool = pytest.mark.skipif(AMTOOL is None, reason="amtool (prometheus-alertmanager) not installed")


def _config(tmp_path, **kwargs):
    island = model.island(GROUPS, HOSTVARS, "island.internal")
    ca = tmp_path / "island-roots.pem"
    ca.write_text("")
    args = {
        "ca_file": str(ca),
        "secrets": SECRETS,
        "blackbox": "10.0.0.1:9115",
        "user": "island-monitor",
        "rule_files": [str(tmp_path / "rules" / "*.yml")],
    }
    return monitoring.prometheus_config(island, **(args | kwargs))


def test_every_declared_job_is_scraped_over_verified_tls_with_its_auth(tmp_path):
    config = _config(tmp_path)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
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
        "blackbox",
    ]
    roots = str(tmp_path / "island-roots.pem")
    for name, job in jobs.items():
        assert job["scheme"] == "https"
        if name not in ("k3s_api", "registry", "registry_push"):
            assert job["tls_config"] == {"ca_file": roots}
        assert "insecure_skip_verify" not in job["tls_config"]
    # The registry's metrics fronts: verified against the island roots like the rest, read with
    # Prometheus's island client certificate, which they require.
    for name, port in (("registry", 5002), ("registry_push", 5003)):
        assert jobs[name]["tls_config"] == {
            "ca_file": roots,
            "cert_file": "/etc/prometheus/scrape/island/client.crt",
            "key_file": "/etc/prometheus/scrape/island/client.key",
        }
        assert not {"basic_auth", "authorization"} & set(jobs[name])
        assert jobs[name]["metrics_path"] == "/metrics"
        target = {"targets": [f"10.0.0.1:{port}"], "labels": {"host": "infra1"}}
        assert jobs[name]["static_configs"] == [target]
    # The k3s API servers: verified against k3s's cluster CA, read with the client certificate.
    k3s = "/etc/prometheus/scrape/k3s-api"
    assert jobs["k3s_api"]["tls_config"] == {
        "ca_file": f"{k3s}/ca.crt",
        "cert_file": f"{k3s}/client.crt",
        "key_file": f"{k3s}/client.key",
    }
    assert not {"basic_auth", "authorization"} & set(jobs["k3s_api"])
    assert jobs["k3s_api"]["static_configs"] == [{"targets": ["10.0.0.2:6443"], "labels": {"host": "s1"}}]
    assert jobs["prometheus"]["basic_auth"] == {"username": "island-monitor", "password": "p-secret"}
    assert jobs["alertmanager"]["basic_auth"] == {"username": "island-monitor", "password": "a-secret"}
    assert "basic_auth" not in jobs["node"]
    # CoreDNS's /metrics: TLS verified against the island roots, no credentials (it asks for none).
    assert not {"basic_auth", "authorization"} & set(jobs["coredns"])
    assert jobs["gitea"]["authorization"] == {"type": "Bearer", "credentials": "g-token"}
    assert jobs["node"]["static_configs"] == [
        {"targets": ["10.0.0.1:9100"], "labels": {"host": "infra1"}},
        {"targets": ["10.0.0.2:9100"], "labels": {"host": "s1"}},
        {"targets": ["10.0.0.3:9100"], "labels": {"host": "a1"}},
    ]


def test_the_blackbox_job_probes_every_island_tls_endpoint_through_the_local_exporter(tmp_path):
    blackbox = next(j for j in _config(tmp_path)["scrape_configs"] if j["job_name"] == "blackbox")
    targets = [c["targets"][0] for c in blackbox["static_configs"]]
    assert targets[:4] == ["10.0.0.1:5000", "10.0.0.1:5001", "10.0.0.1:9000", "10.0.0.1:3000"]
    assert "10.0.0.3:9100" in targets
    assert blackbox["params"] == {"module": ["island_tls"]}
    assert blackbox["relabel_configs"][-1] == {"target_label": "__address__", "replacement": "10.0.0.1:9115"}


def test_nothing_leaves_the_island_and_alerts_go_to_its_alertmanagers_with_the_account(tmp_path):
    config = _config(tmp_path)
    assert not {"remote_write", "remote_read"} & set(config)
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"] == [{"targets": ["10.0.0.1:9093"]}]
    assert alertmanagers["basic_auth"]["password"] == "a-secret"
    assert alertmanagers["api_version"] == "v2"


@needs_promtool
def test_debians_promtool_accepts_the_configuration_and_the_web_configuration(tmp_path):
    (tmp_path / "rules").mkdir()
    # A real key pair (promtool loads the client certificate and key it names): openssl, self-signed.
    key, crt = str(tmp_path / "c.key"), str(tmp_path / "c.crt")
    openssl = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=infra1"
    subprocess.run(
        [*openssl.split(), "-keyout", key, "-out", crt],
        check=True,
        capture_output=True,
    )
    config = _config(tmp_path)
    k3s = next(j for j in config["scrape_configs"] if j["job_name"] == "k3s_api")
    k3s["tls_config"] = {"ca_file": crt, "cert_file": crt, "key_file": key}  # the host's paths, here
    for job in config["scrape_configs"]:
        if job["job_name"] in ("registry", "registry_push"):  # the island roots as generated
            job["tls_config"] |= {"cert_file": crt, "key_file": key}
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(path)], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    web = tmp_path / "web.yml"
    web.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": monitoring.tls_server_config(
                    {"certificate": str(tmp_path / "c.crt"), "key": str(tmp_path / "c.key")}
                ),
                "basic_auth_users": island_basic_auth_users("p-secret", "island-monitor"),
            }
        )
    )
    result = subprocess.run(
        [PROMTOOL, "check", "web-config", str(web)], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_debians_promtool_refuses_a_key_it_does_not_know(tmp_path):
    """The check above can fail: a configuration with a key Prometheus 2.42 lacks is refused."""
    config = _config(tmp_path)
    config["scrape_configs"][0]["scrape_protocols"] = ["PrometheusText0.0.4"]  # came in 2.49
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(path)], check=False, capture_output=True, text=True
    )
    assert result.returncode != 0


@needs_promtool
def test_debians_promtool_refuses_a_client_certificate_that_is_not_there(tmp_path):
    """The generated client_cert jobs name their files; promtool checks that they exist."""
    (tmp_path / "rules").mkdir()
    path = tmp_path / "prometheus.yml"
    config = _config(tmp_path)
    for job in config["scrape_configs"]:
        if "cert_file" in job["tls_config"]:
            job["tls_config"] = {k: str(tmp_path / "absent" / k) for k in job["tls_config"]}
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [PROMTOOL, "check", "config", str(path)], check=False, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "absent" in result.stdout + result.stderr


def test_the_account_hash_is_kept_while_it_still_verifies_the_password():
    first = island_basic_auth_users("p-secret", "island-monitor")
    on_host = yaml.safe_dump({"tls_server_config": {}, "basic_auth_users": first})
    assert island_basic_auth_users("p-secret", "island-monitor", on_host) == first
    assert island_basic_auth_users("changed", "island-monitor", on_host) != first


@needs_amtool
@pytest.mark.parametrize(
    "webhooks,smtp,password",
    [
        ([], {}, ""),
        (
            [
                {"url": "https://hooks.island.internal:8443/alerts"},
                {"url": "http://10.0.0.9:9000/", "max_alerts": 5},
            ],
            {},
            "",
        ),
        (
            [],
            {
                "smarthost": "mail.island.internal:25",
                "from": "a@island.internal",
                "to": ["ops@island.internal"],
            },
            "",
        ),
        (
            [],
            {
                "smarthost": "mail.island.internal:587",
                "from": "a@island.internal",
                "to": ["ops@island.internal", "b@island.internal"],
                "auth_username": "alerts",
            },
            "relay-secret",
        ),
    ],
)
def test_debians_amtool_accepts_each_receiver_configuration(tmp_path, webhooks, smtp, password):
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    config = monitoring.alertmanager_config(webhooks, smtp=smtp, smtp_password=password, ca_file=str(ca))
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([AMTOOL, "check-config", str(path)], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert config["route"]["receiver"] == ("island" if webhooks or smtp else "null")


def test_without_receivers_alerts_go_to_the_null_receiver_only():
    config = monitoring.alertmanager_config([], ca_file="/ca.pem")
    assert config["receivers"] == [{"name": "null"}]


@pytest.mark.parametrize(
    "webhooks,smtp,password,message",
    [
        (
            [{"url": "ftp://x/"}],
            {},
            "",
            r"monitoring_webhooks\[0\]\.url is 'ftp://x/': give an http:// or https://",
        ),
        ([{"url": "https://u:p@x/"}], {}, "", r"monitoring_webhooks\[0\]\.url carries credentials"),
        ([{"url": "https://x/", "name": "a"}], {}, "", r"monitoring_webhooks\[0\] has keys .*: name"),
        ([], {"smarthost": "mail", "from": "a", "to": ["b"]}, "", r"smarthost is 'mail': give host:port"),
        ([], {"smarthost": "m:25", "to": ["b"]}, "", r"monitoring_smtp\.from is missing"),
        (
            [],
            {"smarthost": "m:25", "from": "a", "to": ["b"], "auth_username": "u"},
            "",
            r"auth_username is set without monitoring_smtp_password",
        ),
        ([], {"smarthost": "m:25", "from": "a", "to": ["b"], "password": "x"}, "", r"keys .*: password"),
    ],
)
def test_a_receiver_alertmanager_would_refuse_or_that_would_leak_is_refused_naming_it(
    webhooks, smtp, password, message
):
    with pytest.raises(monitoring.MonitoringError, match=message):
        monitoring.alertmanager_config(webhooks, smtp=smtp, smtp_password=password, ca_file="/ca.pem")


@pytest.mark.parametrize(
    "value,ms",
    [("30s", 30000), ("15d", 15 * 86400000), ("1h30m", 5400000), ("500ms", 500), ("2w", 14 * 86400000)],
)
def test_prometheus_durations_are_read_as_prometheus_reads_them(value, ms):
    assert monitoring.duration_ms(value, "x") == ms


@pytest.mark.parametrize("value", ["", "0", "30", "1m1h", "10 s", "1.5h"])
def test_a_duration_prometheus_would_refuse_is_refused_naming_the_variable(value):
    with pytest.raises(
        monitoring.MonitoringError, match=r"monitoring_retention_time is .*not a Prometheus duration"
    ):
        monitoring.duration_ms(value, "monitoring_retention_time")


def test_a_probe_longer_than_the_scrape_interval_is_refused(tmp_path):
    with pytest.raises(monitoring.MonitoringError, match=r"monitoring_probe_timeout 1m is longer than"):
        _config(tmp_path, probe_timeout="1m")


@pytest.mark.parametrize(
    "value,ok", [("5GB", True), ("512MB", True), ("5 GB", False), ("5G", False), ("", False)]
)
def test_the_retention_size_is_one_prometheus_reads(value, ok):
    if ok:
        assert monitoring.check_retention_size(value) == value
    else:
        with pytest.raises(monitoring.MonitoringError, match=r"monitoring_retention_size is"):
            monitoring.check_retention_size(value)


@pytest.mark.skipif(BLACKBOX is None, reason="prometheus-blackbox-exporter not installed")
def test_debians_blackbox_exporter_accepts_the_probe_module(tmp_path):
    """The role's module (roles/monitoring/vars/main.yml) as the role renders it, checked by 0.23."""
    vars_file = yaml.safe_load((ROOT / "roles/monitoring/vars/main.yml").read_text())
    module = vars_file["monitoring_blackbox_config"]["modules"]["island_tls"]
    module["timeout"] = "10s"
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    module["tcp"]["tls_config"]["ca_file"] = str(ca)
    path = tmp_path / "blackbox.yml"
    path.write_text(yaml.safe_dump({"modules": {"island_tls": module}}))
    result = subprocess.run(
        [BLACKBOX, "--config.check", f"--config.file={path}"], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
