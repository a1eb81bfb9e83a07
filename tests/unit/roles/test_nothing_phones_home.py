"""Nothing phones home (issue 17 item 7, docs/observability.md "Nothing phones home"): each role's
rendered configuration switches its program's update checks and telemetry off, with the setting the
pinned upstream reads. Prometheus (no remote_write or remote_read) and Alertmanager (only the
operator's receivers) are proven in tests/unit/plugins/module_utils/test_island_monitoring.py."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from ansible_collections.island.installer.plugins.module_utils import island_monitoring

from tests.unit.plugins.module_utils.test_island_monitoring import _config

ROLES = Path(__file__).resolve().parents[3] / "roles"


def _vars(role):
    return yaml.safe_load((ROLES / role / "vars" / "main.yml").read_text())


def _render_app_ini(sections):
    """roles/gitea/templates/app.ini.j2 as the role renders it (Ansible's ternary filter)."""
    env = jinja2.Environment(trim_blocks=True, autoescape=False)  # noqa: S701 - an ini file, not HTML
    env.filters["ternary"] = lambda value, yes, no: yes if value else no
    template = env.from_string((ROLES / "gitea" / "templates" / "app.ini.j2").read_text())
    return template.render(gitea_app_ini=sections, ansible_managed="test")


def _ini_section(text, name):
    body = text.split(f"[{name}]\n", 1)[1].split("\n[", 1)[0]
    return dict(line.split(" = ", 1) for line in body.splitlines() if " = " in line)


def test_gitea_checks_for_no_update_and_links_no_outside_avatar():
    base = _vars("gitea")["gitea_app_ini_base"]
    sections = {name: base[name] for name in ("server", "cron.update_checker", "picture")}
    text = _render_app_ini(sections)
    # services/cron/tasks_extended.go registerUpdateGiteaChecker: on by default, asks dl.gitea.com
    assert _ini_section(text, "cron.update_checker") == {"ENABLED": "false"}
    assert _ini_section(text, "server")["OFFLINE_MODE"] == "true"
    # models/avatars/avatar.go generateEmailAvatarLink reads these two only, not OFFLINE_MODE
    assert _ini_section(text, "picture") == {"DISABLE_GRAVATAR": "true", "ENABLE_FEDERATED_AVATAR": "false"}


@pytest.mark.parametrize("console", [False, True])
def test_minio_checks_for_no_update_and_calls_no_home(console):
    """/etc/default/minio (the unit's EnvironmentFile) as the role computes it."""
    role = _vars("minio")
    variables = {
        "minio_volumes": "/var/lib/minio/data",
        "minio_address": "10.77.0.10",
        "minio_port": 9000,
        "minio_console": console,
        "minio_console_port": 9001,
        "island": {"components": {"minio": {"tls": {"dir": "/etc/minio/certs"}}}},
        "_minio_listen_host": trust_as_template(role["_minio_listen_host"]),
        "minio_config_env_file": role["minio_config_env_file"],
    }
    env = Templar(loader=DataLoader(), variables=variables).template(
        trust_as_template(role["minio_default_env"])
    )
    # cmd/common-main.go: only "off" (any case) disables the update check; callhome.go: only "on" enables
    assert env["MINIO_UPDATE"].lower() == "off"
    assert env["MINIO_CALLHOME_ENABLE"] != "on"
    assert env["MINIO_CALLHOME_ENABLE"] == "off"


# CoreDNS plugins that reach something outside the server itself (coredns plugin/ directory, 1.14.3):
# only `forward` may appear, and only in a zone the operator forwards to their own resolvers.
OUTSIDE = {"forward", "grpc", "etcd", "kubernetes", "k8s_external", "route53", "azure", "clouddns",
           "dnstap", "trace", "secondary", "transfer"}  # fmt: skip


def _render_corefile(forward_zones):
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=False, autoescape=False)  # noqa: S701 - not HTML
    template = env.from_string((ROLES / "dns" / "templates" / "Corefile.j2").read_text())
    return template.render(
        ansible_managed="test",
        island_domain="island.internal",
        dns_port=53,
        dns_address="10.77.0.10",
        dns_zone_reload="5s",
        dns_health_address="127.0.0.1:8080",
        dns_ready_address="127.0.0.1:8181",
        dns_metrics_tls=True,
        dns_metrics_address="10.77.0.10:9153",
        dns_metrics_web_config="/etc/coredns/tls/web.yml",
        dns_log_queries=True,
        dns_reverse_zones=[{"zone": "0.77.10.in-addr.arpa"}],
        dns_forward_zones=forward_zones,
    )


def _server_blocks(text):
    """{zone: [plugin names]} of each server block (top-level directives only)."""
    blocks, zone, depth = {}, None, 0
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if depth == 0 and line.endswith("{"):
            zone = line[:-1].strip().rsplit(":", 1)[0]
            blocks[zone] = []
        elif depth == 1 and zone:
            blocks[zone].append(re.split(r"\s", line, maxsplit=1)[0])
        depth += line.count("{") - line.count("}")
    return blocks


def test_coredns_answers_for_the_island_only_and_has_no_plugin_that_reaches_outside():
    blocks = _server_blocks(_render_corefile([]))
    assert set(blocks) == {"island.internal", "0.77.10.in-addr.arpa"}  # no "." block: outside names REFUSED
    assert all(not OUTSIDE & set(plugins) for plugins in blocks.values()), blocks


def test_coredns_forwards_only_the_zones_the_operator_names_to_their_resolvers():
    blocks = _server_blocks(_render_corefile([{"zone": "corp.example", "servers": ["10.1.0.53"]}]))
    assert "." not in blocks
    assert [zone for zone, plugins in blocks.items() if OUTSIDE & set(plugins)] == ["corp.example"]
    assert OUTSIDE & set(blocks["corp.example"]) == {"forward"}


def test_prometheus_writes_reads_and_traces_nowhere(tmp_path):
    """No remote_write, remote_read or tracing (an OTLP endpoint; without one Prometheus v3.14.0
    starts no tracer: tracing/tracing.go); targets and Alertmanagers are island addresses only."""
    config = _config(tmp_path)
    assert not {"remote_write", "remote_read", "tracing"} & set(config)
    addresses = [
        target.rsplit(":", 1)[0]
        for job in config["scrape_configs"] + config["alerting"]["alertmanagers"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    assert addresses and all(a.startswith("10.0.0.") for a in addresses), addresses


def test_alertmanager_sends_nowhere_without_the_operators_receivers():
    """Only the `null` receiver and no tracing (Alertmanager v0.34.0 tracing/tracing.go: no endpoint,
    no tracer); the gossip cluster is off in the unit (cmd/alertmanager/main.go cluster.listen-address)."""
    config = island_monitoring.alertmanager_config([], ca_file="/ca.pem")
    assert config["receivers"] == [{"name": "null"}]
    assert "tracing" not in config
    unit = (ROLES / "monitoring" / "tasks" / "server.yml").read_text()
    assert "--cluster.listen-address=" in unit


def test_traefik_deployed_by_k3s_checks_for_no_version_and_sends_no_usage():
    """k3s's Traefik takes its chart's globalArguments ("--global.checknewversion" by default); the
    k3s role's HelmChartConfig for `traefik` (written on the first server, tasks/ready.yml) turns both
    off."""
    config = _vars("k3s")["k3s_traefik_config"]
    assert (config["apiVersion"], config["kind"]) == ("helm.cattle.io/v1", "HelmChartConfig")
    assert config["metadata"] == {"name": "traefik", "namespace": "kube-system"}
    values = yaml.safe_load(config["spec"]["valuesContent"])
    assert values["globalArguments"] == [
        "--global.checknewversion=false",
        "--global.sendanonymoususage=false",
    ]
    ready = (ROLES / "k3s" / "tasks" / "ready.yml").read_text()
    assert "server/manifests/island-traefik-config.yaml" in ready and "k3s_traefik_config" in ready
