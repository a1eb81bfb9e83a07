# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The monitoring programs' configuration as filters (plugins/module_utils/island_monitoring.py)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.island.installer.plugins.filter.island_htpasswd import island_htpasswd_line
from ansible_collections.island.installer.plugins.module_utils import island_model as model
from ansible_collections.island.installer.plugins.module_utils import island_monitoring as monitoring


def island_prometheus_config(island, **kwargs):
    """Prometheus's configuration from the island model (island_monitoring.prometheus_config)."""
    try:
        return monitoring.prometheus_config(island, **kwargs)
    except monitoring.MonitoringError as err:
        raise AnsibleFilterError(f"monitoring: {err}") from err


def island_alertmanager_config(webhooks, **kwargs):
    """Alertmanager's configuration from the operator's receivers (island_monitoring.alertmanager_config)."""
    try:
        return monitoring.alertmanager_config(webhooks, **kwargs)
    except monitoring.MonitoringError as err:
        raise AnsibleFilterError(f"monitoring: {err}") from err


def island_retention_size(value):
    """--storage.tsdb.retention.size as Prometheus reads it, or an error naming the variable."""
    try:
        return monitoring.check_retention_size(value)
    except monitoring.MonitoringError as err:
        raise AnsibleFilterError(f"monitoring: {err}") from err


def island_duration(value, what="a duration"):
    """A Prometheus duration, checked (returned unchanged), or an error naming ``what``."""
    try:
        monitoring.duration_ms(value, what)
    except monitoring.MonitoringError as err:
        raise AnsibleFilterError(f"monitoring: {err}") from err
    return str(value)


def island_monitoring_intervals(scrape_interval, evaluation_interval, probe_timeout):
    """True when the intervals and the probe timeout are valid, else an error naming the variable."""
    try:
        monitoring.check_intervals(scrape_interval, evaluation_interval, probe_timeout)
    except monitoring.MonitoringError as err:
        raise AnsibleFilterError(f"monitoring: {err}") from err
    return True


def island_tls_server_config(tls):
    """exporter-toolkit's tls_server_config for a component's island certificate."""
    return monitoring.tls_server_config(tls)


def island_basic_auth_users(password, user, existing=""):
    """exporter-toolkit's basic_auth_users: {user: bcrypt hash}, the hash in ``existing`` (the web
    configuration on the host) kept while it still verifies ``password``."""
    line = island_htpasswd_line(
        password, user, existing=monitoring.existing_basic_auth_line(existing, str(user))
    )
    return {str(user): line.split(":", 1)[1]}


def island_metrics_config(island, host, hostvars, **kwargs):
    """island-metrics' configuration for ``host`` (island_monitoring.metrics_config); the etcd
    snapshot schedule is the k3s role's k3s_etcd_snapshot_schedule_cron as the inventory sets it."""
    try:
        cron = None
        if host in island["components"]["k3s"]["members"].get("servers", []):
            cron = model.setting("k3s", "k3s_etcd_snapshot_schedule_cron", hostvars, host)
        return monitoring.metrics_config(island, host, snapshot_cron=cron, **kwargs)
    except (monitoring.MonitoringError, model.ModelError) as err:
        raise AnsibleFilterError(f"monitoring: {err}") from err


def island_rules_for(text, durations, what="monitoring_alert_for"):
    """A rule file's text with the for: of some alerts replaced (island_monitoring.rules_with_for)."""
    try:
        return monitoring.rules_with_for(str(text), durations, what)
    except monitoring.MonitoringError as err:
        raise AnsibleFilterError(f"monitoring: {err}") from err


class FilterModule:
    def filters(self):
        return {
            "island_prometheus_config": island_prometheus_config,
            "island_alertmanager_config": island_alertmanager_config,
            "island_retention_size": island_retention_size,
            "island_duration": island_duration,
            "island_monitoring_intervals": island_monitoring_intervals,
            "island_tls_server_config": island_tls_server_config,
            "island_basic_auth_users": island_basic_auth_users,
            "island_metrics_config": island_metrics_config,
            "island_rules_for": island_rules_for,
        }
