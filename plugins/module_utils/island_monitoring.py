# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The monitoring programs' configuration, as data, from the island model (issue 17).

``prometheus_config`` turns the model's scrape declarations (``island["scrape"]``) and TLS endpoints
(``island["probes"]``) into Prometheus's configuration; ``alertmanager_config`` turns the operator's
receivers into Alertmanager's. Both are written only in keys that Debian 12's programs (Prometheus
2.42, Alertmanager 0.25) and the releases bundle-spec.yml pins (Prometheus 3.14.0, Alertmanager
0.34.0) read; docs/observability.md lists the differences with their sources. Both are checked on
the controller by the real programs' tools in tests (promtool check config, amtool check-config).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit


class MonitoringError(ValueError):
    """The operator's monitoring settings cannot be turned into a configuration; says which and why."""


# Prometheus's duration format (model.ParseDuration of prometheus/common, the same in 2.42 and 3.14):
# units y, w, d, h, m, s, ms, in that order.
_DURATION = re.compile(
    r"^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$"
)
_UNITS_MS = {
    "y": 365 * 86400000,
    "w": 7 * 86400000,
    "d": 86400000,
    "h": 3600000,
    "m": 60000,
    "s": 1000,
    "ms": 1,
}
# --storage.tsdb.retention.size: units.Base2Bytes (alecthomas/units), B KB MB GB TB PB EB, base 2.
_SIZE = re.compile(r"^[0-9]+(B|KB|MB|GB|TB|PB|EB)$")


def duration_ms(value, what: str) -> int:
    """A Prometheus duration in milliseconds; a clear error naming ``what`` otherwise."""
    text = str(value).strip()
    match = _DURATION.match(text)
    if not text or text == "0" or not match or not any(match.groups()):
        raise MonitoringError(
            f"{what} is {value!r}, not a Prometheus duration: give a number with units y, w, d, h, m, s or "
            "ms, largest first (30s, 15d, 1h30m)"
        )
    numbers = match.groups()[1::2]
    return sum(
        int(n) * _UNITS_MS[u] for n, u in zip(numbers, ("y", "w", "d", "h", "m", "s", "ms"), strict=True) if n
    )


_SIZE_UNITS = {
    "B": 1,
    "KB": 1 << 10,
    "MB": 1 << 20,
    "GB": 1 << 30,
    "TB": 1 << 40,
    "PB": 1 << 50,
    "EB": 1 << 60,
}


def size_bytes(value, what: str = "monitoring_retention_size") -> int:
    """A size as Prometheus reads --storage.tsdb.retention.size (units.Base2Bytes: 1KB = 1024 B)."""
    text = check_retention_size(value, what)
    number, unit = re.fullmatch(r"([0-9]+)([A-Z]+)", text).groups()
    return int(number) * _SIZE_UNITS[unit]


def check_retention_size(value, what: str = "monitoring_retention_size") -> str:
    text = str(value).strip()
    if not _SIZE.match(text):
        raise MonitoringError(
            f"{what} is {value!r}: give a size Prometheus reads for --storage.tsdb.retention.size, a whole "
            "number with B, KB, MB, GB, TB, PB or EB (5GB), no space"
        )
    return text


def _secret(secrets: dict, name: str) -> str:
    if name not in secrets:
        raise MonitoringError(f"the credential {name} was not read from island_secrets_dir")
    return str(secrets[name])


def _static(targets: list[dict], labels) -> list[dict]:
    """One static_config per target, so that each keeps its host's name as a label."""
    return [{"targets": [t["target"]], "labels": {k: str(t[v]) for k, v in labels.items()}} for t in targets]


def check_intervals(scrape_interval, evaluation_interval, probe_timeout) -> None:
    """The scrape and evaluation intervals and the probe timeout are durations Prometheus reads, and
    the probe fits in the interval (Prometheus refuses a scrape_timeout above scrape_interval)."""
    interval = duration_ms(scrape_interval, "monitoring_scrape_interval")
    duration_ms(evaluation_interval, "monitoring_evaluation_interval")
    if duration_ms(probe_timeout, "monitoring_probe_timeout") > interval:
        raise MonitoringError(
            f"monitoring_probe_timeout {probe_timeout} is longer than monitoring_scrape_interval "
            f"{scrape_interval}; Prometheus refuses a scrape_timeout above the interval: shorten it"
        )


def prometheus_config(
    island: dict,
    *,
    ca_file: str,
    secrets: dict,
    blackbox: str,
    user: str,
    rule_files: list,
    scrape_interval: str = "30s",
    evaluation_interval: str = "30s",
    probe_timeout: str = "10s",
) -> dict:
    """Prometheus's configuration (docs/configuration/configuration.md, 2.42 and 3.14): every scrape job
    of the model over https verified against ``ca_file``, with basic auth or a bearer token whose
    value is ``secrets[<the declaration's secret>]`` (the file of island_secrets_dir, read on the
    controller), the blackbox exporter at ``blackbox`` probing every island TLS endpoint, alerts to
    every Alertmanager of the island over https with basic auth as ``user``. No remote_write, no
    remote_read: nothing leaves the island. The result holds credentials: the role writes it 0640
    root:prometheus with no_log and a masked diff (Prometheus shows them as <secret> in its API)."""
    check_intervals(scrape_interval, evaluation_interval, probe_timeout)
    tls = {"ca_file": ca_file}
    scrape_configs = []
    for job in island.get("scrape", []):
        config = {
            "job_name": job["job"],
            "scheme": job["scheme"],
            "metrics_path": job["path"],
            "tls_config": dict(tls),
            "static_configs": _static(job["targets"], {"host": "host"}),
        }
        auth = job["auth"]
        if auth["kind"] == "basic":
            config["basic_auth"] = {"username": auth["user"], "password": _secret(secrets, auth["secret"])}
        elif auth["kind"] == "bearer":
            # authorization: Prometheus 2.26 and later (2.42, 3.14 alike).
            config["authorization"] = {"type": "Bearer", "credentials": _secret(secrets, auth["secret"])}
        elif auth["kind"] == "client_cert":
            # A client certificate (tls_config cert_file, key_file: docs/configuration/
            # configuration.md, 2.42 and 3.14), the target verified against its own CA (ca_file) or,
            # with roots island, against the island roots like every other job.
            island_roots = auth.get("roots") == "island"
            config["tls_config"] = {
                "ca_file": ca_file if island_roots else auth["ca_file"],
                "cert_file": auth["cert_file"],
                "key_file": auth["key_file"],
            }
        elif auth["kind"] != "none":
            raise MonitoringError(
                f"scrape job {job['job']}: auth kind {auth['kind']!r} is not none, basic, bearer "
                "or client_cert"
            )
        scrape_configs.append(config)
    if island.get("probes"):
        # blackbox_exporter's README ("Prometheus Configuration"): the target becomes the probe's
        # ?target= parameter and the instance label; the scrape goes to the exporter itself.
        scrape_configs.append(
            {
                "job_name": "blackbox",
                "scheme": "https",
                "metrics_path": "/probe",
                "params": {"module": ["island_tls"]},
                "scrape_timeout": str(probe_timeout),
                "tls_config": dict(tls),
                "static_configs": _static(
                    island["probes"], {"host": "host", "component": "component", "endpoint": "key"}
                ),
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": blackbox},
                ],
            }
        )
    alertmanagers = [
        f"{i['address']}:{i['ports']['web']}" for i in island["components"]["alertmanager"]["instances"]
    ]
    config = {
        "global": {
            "scrape_interval": str(scrape_interval),
            "evaluation_interval": str(evaluation_interval),
            "external_labels": {"island": str(island.get("domain") or "")},
        },
        "rule_files": list(rule_files),
        "scrape_configs": scrape_configs,
    }
    if alertmanagers:
        config["alerting"] = {
            "alertmanagers": [
                {
                    "scheme": "https",
                    # v2: the only API Alertmanager 0.25+ serves to Prometheus (v1 left Prometheus in 3.0).
                    "api_version": "v2",
                    "basic_auth": {
                        "username": user,
                        "password": _secret(secrets, "monitoring-alertmanager-password"),
                    },
                    "tls_config": dict(tls),
                    "static_configs": [{"targets": alertmanagers}],
                }
            ]
        }
    return config


_WEBHOOK_KEYS = {"url", "send_resolved", "max_alerts"}
_SMTP_KEYS = {"smarthost", "from", "to", "auth_username", "require_tls", "hello"}


def _check_webhook(index: int, hook) -> list[str]:
    where = f"monitoring_webhooks[{index}]"
    if not isinstance(hook, dict):
        return [f"{where} is {hook!r}: give a mapping with url (and send_resolved, max_alerts)"]
    problems = []
    unknown = sorted(set(hook) - _WEBHOOK_KEYS)
    if unknown:
        problems.append(
            f"{where} has keys Alertmanager's webhook receiver does not take here: {', '.join(unknown)}"
        )
    url = str(hook.get("url") or "")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(
            f"{where}.url is {url!r}: give an http:// or https:// URL of a receiver inside the island"
        )
    if parts.username or parts.password:
        problems.append(
            f"{where}.url carries credentials; Alertmanager would log them: use a receiver that needs none"
        )
    if "send_resolved" in hook and not isinstance(hook["send_resolved"], bool):
        problems.append(f"{where}.send_resolved must be true or false")
    if "max_alerts" in hook and (not isinstance(hook["max_alerts"], int) or hook["max_alerts"] < 0):
        problems.append(f"{where}.max_alerts must be a whole number (0: all)")
    return problems


def _check_smtp(smtp: dict, password: str) -> list[str]:
    if not isinstance(smtp, dict):
        return [f"monitoring_smtp is {smtp!r}: give a mapping (smarthost, from, to, ...) or {{}} for none"]
    if not smtp:
        return []
    problems = []
    unknown = sorted(set(smtp) - _SMTP_KEYS)
    if unknown:
        problems.append(
            f"monitoring_smtp has keys the role does not pass to Alertmanager: {', '.join(unknown)} "
            f"(it takes {', '.join(sorted(_SMTP_KEYS))}; the password is monitoring_smtp_password)"
        )
    smarthost = str(smtp.get("smarthost") or "")
    if not re.fullmatch(r"[^\s:]+:[0-9]+", smarthost):
        problems.append(f"monitoring_smtp.smarthost is {smarthost!r}: give host:port of the island's relay")
    for key in ("from", "to"):
        if not smtp.get(key):
            problems.append(f"monitoring_smtp.{key} is missing: Alertmanager needs a sender and recipients")
    if smtp.get("auth_username") and not password:
        problems.append(
            "monitoring_smtp.auth_username is set without monitoring_smtp_password: give it from a vault"
        )
    return problems


def alertmanager_config(
    webhooks,
    *,
    smtp=None,
    smtp_password: str = "",
    ca_file: str,
    group_by=("alertname", "instance"),
    group_wait: str = "30s",
    group_interval: str = "5m",
    repeat_interval: str = "4h",
) -> dict:
    """Alertmanager's configuration (docs/configuration.md of 0.25 and 0.34): every alert routed to
    the receiver ``island`` made of the operator's webhooks and SMTP relay, or to ``null`` (a
    receiver that sends nothing) when there are none. TLS to a receiver is verified against
    ``ca_file``. With an SMTP account the result holds ``smtp_password`` (auth_password): the role
    writes it 0640 root:alertmanager with no_log and a masked diff."""
    webhooks = list(webhooks or [])
    smtp = smtp or {}
    problems = [p for i, hook in enumerate(webhooks) for p in _check_webhook(i, hook)]
    problems += _check_smtp(smtp, smtp_password)
    for what, value in (
        ("monitoring_group_wait", group_wait),
        ("monitoring_group_interval", group_interval),
        ("monitoring_repeat_interval", repeat_interval),
    ):
        try:
            duration_ms(value, what)
        except MonitoringError as err:
            problems.append(str(err))
    if problems:
        raise MonitoringError("; ".join(problems))
    tls = {"tls_config": {"ca_file": ca_file}}
    receiver: dict = {"name": "island"}
    if webhooks:
        receiver["webhook_configs"] = [
            {
                "url": str(h["url"]),
                "send_resolved": bool(h.get("send_resolved", True)),
                "http_config": dict(tls),
            }
            | ({"max_alerts": int(h["max_alerts"])} if "max_alerts" in h else {})
            for h in webhooks
        ]
    if smtp:
        to = smtp["to"]
        email = {
            "to": ", ".join(to) if isinstance(to, list | tuple) else str(to),
            "from": str(smtp["from"]),
            "smarthost": str(smtp["smarthost"]),
            "require_tls": bool(smtp.get("require_tls", True)),
            "send_resolved": True,
            "tls_config": {"ca_file": ca_file},
        }
        if smtp.get("hello"):
            email["hello"] = str(smtp["hello"])
        if smtp.get("auth_username"):
            email["auth_username"] = str(smtp["auth_username"])
            email["auth_password"] = str(smtp_password)
        receiver["email_configs"] = [email]
    receivers = [{"name": "null"}]
    if webhooks or smtp:
        receivers.append(receiver)
    return {
        "route": {
            "receiver": "island" if webhooks or smtp else "null",
            "group_by": list(group_by),
            "group_wait": str(group_wait),
            "group_interval": str(group_interval),
            "repeat_interval": str(repeat_interval),
        },
        "receivers": receivers,
    }


def tls_server_config(tls: dict) -> dict:
    """exporter-toolkit's tls_server_config for a component's island certificate (web/tls_config.go,
    v0.8.2 and v0.17.1: cert_file, key_file, min_version)."""
    return {"cert_file": tls["certificate"], "key_file": tls["key"], "min_version": "TLS12"}


def existing_basic_auth_line(web_config_text, user: str) -> str:
    """``user:<hash>`` from a web configuration already on a host (empty when there is none), so the
    hash is kept while it still verifies the password."""
    import yaml  # noqa: PLC0415  (comes with ansible-core on the controller)

    try:
        data = yaml.safe_load(web_config_text or "") or {}
    except yaml.YAMLError:
        return ""
    users = data.get("basic_auth_users") if isinstance(data, dict) else None
    hashed = users.get(user) if isinstance(users, dict) else None
    return f"{user}:{hashed}" if isinstance(hashed, str) else ""


# --- island-metrics (roles/monitoring/files/island-metrics): each host's configuration -------------
# k3s writes its etcd snapshots to <data-dir>/server/db/snapshots unless --etcd-snapshot-dir says
# otherwise (docs.k3s.io/cli/etcd-snapshot, "--etcd-snapshot-dir ... (default: ${data-dir}/db/snapshots)"
# where data-dir is the server's, /var/lib/rancher/k3s/server); the k3s role sets no other.
K3S_SNAPSHOT_DIR = "/var/lib/rancher/k3s/server/db/snapshots"
# Where the registry check's account is kept on a registry host (root, 0600; island-metrics refuses
# a file with group or other bits).
METRICS_CREDENTIALS_FILE = "/etc/island-metrics/registry.json"


def _metrics_images(images) -> list[dict]:
    """The lock's images as island-metrics asks the island registry for them: the repository the
    seeding put each in (strip_host, island_oci_common.target_repository: docker.io/library/alpine ->
    library/alpine), its tag (or digest) and the lock's digest."""
    # Imported here: the rest of this module needs nothing beyond the standard library.
    from ansible_collections.island.installer.plugins.module_utils.island_oci_common import (  # noqa: PLC0415
        ImageReference,
        OCIError,
        target_repository,
    )

    out = []
    for image in sorted(images or [], key=lambda i: str(i.get("reference"))):
        try:
            ref = ImageReference.parse(str(image["reference"]))
        except OCIError as err:
            raise MonitoringError(f"the bundle's lock: {err}") from None
        out.append(
            {
                "name": target_repository(ref, "strip_host", ""),
                "reference": ref.tag or ref.digest,
                "digest": str(image["digest"]),
            }
        )
    return out


def metrics_config(
    island: dict,
    host: str,
    *,
    textfile_dir: str,
    warn_days,
    certificates=(),
    snapshot_cron: str | None = None,
    images=(),
    credentials_file: str = METRICS_CREDENTIALS_FILE,
) -> dict:
    """island-metrics' configuration for ``host`` (the schema at the top of the program): every
    island certificate the model puts on the host (``island.hosts[host].certificates``) and the
    operator's ``certificates``; on a k3s server its etcd snapshots and the schedule
    ``snapshot_cron`` (k3s_etcd_snapshot_schedule_cron); on a registry host the lock's ``images``
    checked against the host's own read-only endpoint with the account in ``credentials_file``."""
    problems = []
    try:
        days = int(warn_days)
    except (TypeError, ValueError):
        days = 0
    if isinstance(warn_days, bool) or days < 1 or str(days) != str(warn_days).strip():
        problems.append(
            f"monitoring_certificate_warn_days must be a whole number of days >= 1, not {warn_days!r}"
        )
    if not isinstance(certificates, list | tuple):
        problems.append(f"monitoring_metrics_certificates must be a list of paths, not {certificates!r}")
        certificates = []
    extra = [str(p) for p in certificates]
    problems += [
        f"monitoring_metrics_certificates: {p!r} is not an absolute path"
        for p in extra
        if not p.startswith("/")
    ]
    if problems:
        raise MonitoringError("; ".join(problems))
    paths = [c["path"] for c in island["hosts"][host]["certificates"]]
    # Prometheus's client certificates on a monitoring host, the one k3s's client CA signs included
    # (the island-signed ones are in the records as well; each path is watched once).
    if "prometheus" in island["hosts"][host]["components"]:
        paths += [j["auth"]["cert_file"] for j in island["scrape"] if j["auth"].get("kind") == "client_cert"]
    config: dict = {
        "textfile_dir": str(textfile_dir),
        "certificate_warn_days": days,
        "certificates": list(dict.fromkeys(paths + extra)),
        # and every island certificate issued on the host, whichever role issued it (island_csr)
        "certificate_records": island["certificate_records"],
    }
    if host in island["components"]["k3s"]["members"].get("servers", []):
        config["etcd_snapshots"] = {"dir": K3S_SNAPSHOT_DIR, "schedule_cron": str(snapshot_cron)}
    registry = [i for i in island["components"]["registry"]["instances"] if i["host"] == host]
    if registry and images:
        address = registry[0]["address"]
        address = f"[{address}]" if ":" in address else address
        config["registry"] = {
            "url": f"https://{address}:{registry[0]['ports']['pull']}",
            "ca_file": island["pki"]["trust_bundle"],
            "credentials_file": str(credentials_file),
            "images": _metrics_images(images),
        }
    return config


def rules_with_for(text: str, durations, what: str = "monitoring_alert_for") -> str:
    """The rule file ``text`` with the ``for:`` of the alerts named in ``durations`` ({alert:
    duration}) replaced, every other line (comments included) unchanged. An alert that is not in
    the file, one without a ``for:`` (it fires at once) or a duration Prometheus would not read is
    refused, naming ``what``."""
    import yaml  # noqa: PLC0415  (comes with ansible-core on the controller)

    if not isinstance(durations, dict):
        raise MonitoringError(f"{what} must be a mapping of alert names to durations, not {durations!r}")
    if not durations:
        return text
    rules = {
        r["alert"]: r
        for group in (yaml.safe_load(text) or {}).get("groups", [])
        for r in group.get("rules", [])
        if "alert" in r
    }
    problems = []
    for name, value in durations.items():
        if name not in rules:
            problems.append(f"{what}: no alert {name} in the rules (they are {', '.join(sorted(rules))})")
        elif "for" not in rules[name]:
            problems.append(f"{what}: {name} has no for: duration (it fires as soon as its expression holds)")
        try:
            duration_ms(value, f"{what}.{name}")
        except MonitoringError as err:
            problems.append(str(err))
    if problems:
        raise MonitoringError("; ".join(problems))
    lines = text.splitlines(keepends=True)
    current = None
    for index, line in enumerate(lines):
        alert = re.match(r"^\s*- alert:\s*(\S+)\s*$", line)
        if alert:
            current = alert.group(1)
            continue
        found = re.match(r"^(\s+)for:\s*\S+\s*$", line)
        if found and current in durations:
            lines[index] = f"{found.group(1)}for: {durations[current]}\n"
            current = None
    out = "".join(lines)
    changed = {
        r["alert"]: r.get("for")
        for group in yaml.safe_load(out)["groups"]
        for r in group["rules"]
        if r.get("alert") in durations
    }
    if changed != {k: str(v) for k, v in durations.items()}:
        raise MonitoringError(f"{what}: the rule file's for: lines could not all be replaced ({changed})")
    return out
