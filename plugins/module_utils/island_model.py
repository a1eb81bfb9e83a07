# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The island model: every component of the island declared once (docs/architecture.md).

For each component this module says which inventory groups carry it, the name of its binary and of
its version record, its ports (the role variable that sets each, whose value is the role's default
unless the inventory sets it), its systemd units and users, where its island certificate and key
live, the S3 tenants it needs, and the directory of the version records. ``island()`` turns the
model, the inventory and the roles' defaults into the one ``island`` fact that playbooks/model.yml
sets on every host; roles, playbooks, filters and modules read that fact (or this module) instead
of restating a port, a path or a group name.

A new component is one more entry in ``COMPONENTS`` (and ``GROUPS`` for a new group), with its role
under roles/ declaring the port variables' defaults.
"""

from __future__ import annotations

import functools
import os

# Where each host keeps the version record of every component that runs there
# (<component>.json, written by roles/common/tasks/record.yml once the component runs it).
RECORD_DIR = "/var/lib/island/components"
# Where island_csr/island_cert record each island certificate of a host (island-metrics reads it).
CERT_RECORD_DIR = "/var/lib/island/certificates"
# Where each host keeps the record of the last bundle applied to the island (name, version,
# created, lock_sha256; written by roles/upgrade once the plan accepted the bundle).
BUNDLE_RECORD = "/var/lib/island/bundle.json"

# The inventory groups, in the order the summary lists them, with their titles. ``required``: an
# island cannot do without the group (k3s_agents is optional: servers run workloads too).
GROUPS = (
    {"name": "island_dns", "title": "DNS", "required": True},
    {"name": "island_registry", "title": "registry", "required": True},
    {"name": "island_minio", "title": "MinIO", "required": True},
    {"name": "island_gitea", "title": "Gitea", "required": True},
    {"name": "k3s_servers", "title": "k3s servers", "required": True},
    {"name": "k3s_agents", "title": "k3s agents", "required": False},
    # Prometheus, Alertmanager and the blackbox exporter (issue 17); optional, so an island without
    # it (and every inventory written before it) keeps working.
    {"name": "island_monitoring", "title": "monitoring", "required": False},
)
_DNS, _REGISTRY, _MINIO, _GITEA, _SERVERS, _AGENTS, _MONITORING = (group["name"] for group in GROUPS)
# Every island group: the components that run on every island host (node_exporter) carry these.
_EVERY = [group["name"] for group in GROUPS]


def _port(
    key,
    service,
    *,
    var=None,
    port=None,
    proto="tcp",
    group=None,
    units=(),
    users=(),
    bind=None,
    switch=None,
    needs=None,
    probe=True,
):
    """A port a component binds: set by the role variable ``var`` (its default in the role's
    defaults/main.yml), or fixed at ``port`` where no variable exists; bound only while the role's
    boolean ``switch`` is on, if it has one, and only on an island whose group ``needs`` has hosts,
    if it names one. ``group``: the group whose hosts bind it, or a list of groups (a host in any
    of them binds it once). ``probe``: whether the blackbox exporter probes it when the component
    has an island certificate (island_model_scrape.probes)."""
    entry = {"key": key, "service": service, "var": var, "port": port, "proto": proto, "group": group}
    entry.update(units=list(units), users=list(users), bind=bind, switch=switch, needs=needs, probe=probe)
    return entry


# Port entry keys that describe the model, not the host's port: left out of island.hosts[].ports.
_MODEL_PORT_KEYS = ("key", "var", "group", "switch", "needs", "probe")


def _scrape(job, port, *, path="/metrics", auth=None, group=None, switch=None):
    """What Prometheus scrapes from a component (issue 17): the ``job`` name, the component's ``port``
    key, the metrics ``path``, always over https verified against the island CA, with ``auth``:

    - ``{"kind": "none"}`` (the default);
    - ``{"kind": "basic", "user_var": <role variable naming the user>, "secret": <file>}``;
    - ``{"kind": "bearer", "secret": <file>}``;
    - ``{"kind": "client_cert", "name": <name>}``: TLS verified against the component's own CA
      (not the island's) with a client certificate that CA's issuer signs, the key made on the
      Prometheus host; the three files live under island_model_scrape.CLIENT_CERT_DIR/<name>
      (ca.crt, client.crt, client.key), installed by the monitoring role;
    - ``{"kind": "client_cert", "name": <name>, "roots": "island"}``: TLS verified against the
      island roots, with an island client certificate (client.crt, client.key under
      CLIENT_CERT_DIR/<name>, issued by the island CA on the Prometheus host by the monitoring
      role) that names island_model_scrape.ISLAND_CLIENT (``client_san``), which the target's TLS
      front requires;

    where ``secret`` is the file in island_secrets_dir (on the controller) that holds the password
    or token, made by the component's role (``island_secret``); the monitoring role reads it there
    and writes it into Prometheus's configuration (0640 root:prometheus, no_log). The targets are the
    hosts of ``group`` (default: the port's group or groups) at their own value of the port; with
    ``switch`` (the role's boolean that turns the endpoint on), only while it is on."""
    entry = {"job": job, "port": port, "path": path, "auth": auth or {"kind": "none"}, "group": group}
    return entry | {"switch": switch}


def _monitoring(name, title, var, *, groups=(_MONITORING,), job=None, auth=None, data=None):
    """A program of roles/monitoring: one web port (``var``) bound by its unit and user of its name,
    TLS by its own island certificate (/etc/<name>/tls/<name>.crt, served through its
    --web.config.file), scraped on that port as ``job`` (default its name), with basic auth as
    monitoring_user and the password in ``auth`` where it requires one."""
    group = list(groups) if len(groups) > 1 else groups[0]
    basic = {"kind": "basic", "user_var": "monitoring_user", "secret": auth} if auth else None
    return {
        "name": name,
        "role": "monitoring",
        "groups": list(groups),
        "ports": [_port("web", title, var=var, group=group, units=[f"{name}.service"], users=[name])],
        "service": None,
        "tls": {"dir": f"/etc/{name}/tls", "name": name},
        "scrape": [_scrape(job or name, "web", auth=basic)],
        # The role variable bounding what it keeps on disk (preflight requires that much free).
        "data": data,
    }


# Each component of the island. ``name`` is the bundle component: its binary (bin/<name>), its
# version record (<name>.json in RECORD_DIR) and its lock entry. ``service``: the island DNS name
# it is reached by (a key of island_names, labelled ``label`` by default), on the hosts of
# ``service_group``. ``tls``: the directory and base name of the island certificate its role has
# issued (<dir>/<name>.crt and .key). ``bundle``: the bundle's top-level directories its hosts
# receive beyond bin/, which every host gets (preflight counts them against the free disk).
# ``scrape``: what Prometheus scrapes from it (``_scrape``; island()["scrape"] resolves the targets).
# Every port of a component with ``tls`` serves TLS with its island certificate, and the blackbox
# exporter probes each of them (island()["probes"]).
COMPONENTS = (
    {
        "name": "coredns",
        "role": "dns",
        "groups": [_DNS],
        "ports": [
            _port(
                "dns",
                "CoreDNS",
                var="dns_port",
                proto=proto,
                group=_DNS,
                bind="island",
                units=["coredns.service"],
                users=["coredns"],
            )
            for proto in ("udp", "tcp")
        ]
        + [
            # /metrics over TLS on the island address (CoreDNS 1.14.3's prometheus { tls }), while
            # dns_metrics_tls is on; off, it stays on loopback in plain HTTP and is not scraped.
            _port(
                "metrics",
                "CoreDNS's metrics",
                var="dns_metrics_port",
                group=_DNS,
                bind="island",
                switch="dns_metrics_tls",
                units=["coredns.service"],
                users=["coredns"],
            )
        ],
        "service": None,
        # Its certificate (/etc/coredns/tls/coredns.crt, the dns role's) serves only the metrics
        # port: "tls" here would make the blackbox exporter probe port 53 as TLS too.
        "tls": None,
        # Prometheus presents no client certificate: CoreDNS asks for none (auth none).
        "scrape": [_scrape("coredns", "metrics", switch="dns_metrics_tls")],
    },
    {
        "name": "registry",
        "role": "registry",
        "bundle": ["oci"],
        "groups": [_REGISTRY],
        "ports": [
            _port(
                "pull",
                "the registry",
                var="registry_port",
                group=_REGISTRY,
                units=["registry.service"],
                users=["registry"],
            ),
            _port(
                "push",
                "the registry push endpoint",
                var="registry_push_port",
                group=_REGISTRY,
                units=["registry-push.service"],
                users=["registry"],
            ),
        ]
        + [
            # Each registry process's metrics (distribution's debug server, plain HTTP, on
            # 127.0.0.1 at this port) behind a socat TLS front on the island address at the same
            # port, which requires Prometheus's island client certificate (roles/registry
            # tasks/metrics.yml). Only on an island with a monitoring host. Not probed: the
            # blackbox exporter has no client certificate, so the front refuses it and logs that at
            # every probe (under TLS 1.3 the probe would still pass, since the client finishes its
            # handshake before the server checks); the scrape verifies the same certificate.
            _port(
                key,
                f"{service}'s metrics",
                var=var,
                group=_REGISTRY,
                units=[f"{unit}.service", f"island-{unit}-metrics.service"],
                users=["registry"],
                needs=_MONITORING,
                probe=False,
            )
            for key, service, var, unit in (
                ("metrics", "the registry", "registry_metrics_port", "registry"),
                ("push_metrics", "the registry push endpoint", "registry_push_metrics_port", "registry-push"),
            )
        ],
        "service": {"key": "registry", "label": "registry", "group": _REGISTRY, "port": "pull"},
        "tls": {"dir": "/etc/registry/tls", "name": "registry"},
        # Both processes' metrics, through their TLS fronts, read with Prometheus's island client
        # certificate (the fronts accept no other).
        "scrape": [
            _scrape("registry", "metrics", auth={"kind": "client_cert", "name": "island", "roots": "island"}),
            _scrape(
                "registry_push",
                "push_metrics",
                auth={"kind": "client_cert", "name": "island", "roots": "island"},
            ),
        ],
    },
    {
        "name": "minio",
        "role": "minio",
        "bundle": ["files"],
        "groups": [_MINIO],
        "ports": [
            _port("s3", "MinIO", var="minio_port", group=_MINIO, units=["minio.service"], users=["minio"]),
            _port(
                "console",
                "MinIO's console",
                var="minio_console_port",
                group=_MINIO,
                switch="minio_console",
                units=["minio.service"],
                users=["minio"],
            ),
        ],
        "service": {"key": "s3", "label": "s3", "group": _MINIO, "port": "s3"},
        "tls": {"dir": "/etc/minio/certs", "name": "minio"},
        # MinIO's cluster metrics (RELEASE.2025-09-07: /minio/v2/metrics/cluster behind the JWT
        # `mc admin prometheus generate` makes), the token made by the minio role.
        "scrape": [
            _scrape(
                "minio",
                "s3",
                path="/minio/v2/metrics/cluster",
                auth={"kind": "bearer", "secret": "minio-prometheus-token"},
                switch="minio_prometheus_token",
            )
        ],
    },
    {
        "name": "gitea",
        "role": "gitea",
        "bundle": ["git"],
        "groups": [_GITEA],
        "ports": [
            _port("http", "Gitea", var="gitea_port", group=_GITEA, units=["gitea.service"], users=["gitea"]),
        ],
        "service": {"key": "git", "label": "git", "group": _GITEA, "port": "http"},
        "tls": {"dir": "/etc/gitea/tls", "name": "gitea"},
        # Gitea 1.26's /metrics behind [metrics] TOKEN ("Authorization: Bearer"), made by the gitea role.
        "scrape": [
            _scrape(
                "gitea",
                "http",
                auth={"kind": "bearer", "secret": "gitea-metrics-token"},
                switch="gitea_metrics",
            )
        ],
    },
    {
        "name": "k3s",
        "role": "k3s",
        "bundle": ["k3s"],
        "groups": [_SERVERS, _AGENTS],
        # Its hosts by the part they play: island.components.k3s.members.servers and .agents.
        "members": {"servers": _SERVERS, "agents": _AGENTS},
        "ports": [
            _port(
                "api", "the k3s API server", port=6443, group=_SERVERS, units=["k3s.service"], users=["root"]
            ),
            _port("etcd", "etcd", port=2379, group=_SERVERS, units=["k3s.service"], users=["root"]),
            _port(
                "etcd_peers", "etcd peers", port=2380, group=_SERVERS, units=["k3s.service"], users=["root"]
            ),
            _port(
                "kubelet", "the kubelet", port=10250, group=_SERVERS, units=["k3s.service"], users=["root"]
            ),
            _port(
                "kubelet",
                "the kubelet",
                port=10250,
                group=_AGENTS,
                units=["k3s-agent.service"],
                users=["root"],
            ),
        ],
        "service": {"key": "api", "label": "api", "group": _SERVERS, "port": "api"},
        "tls": None,
        # The API servers' /metrics, verified against k3s's cluster (server) CA and read with a
        # client certificate of k3s's client CA in the group system:monitoring (roles/k3s
        # tasks_from: metrics_client, called by the monitoring role).
        "scrape": [_scrape("k3s_api", "api", auth={"kind": "client_cert", "name": "k3s-api"})],
        # Its etcd snapshots (minio_etcd_snapshot_bucket, minio_k3s_user).
        "tenants": [
            {"tenant": "k3s", "bucket_var": "minio_etcd_snapshot_bucket", "user_var": "minio_k3s_user"}
        ],
    },
    # The monitoring components (issue 17, roles/monitoring): Prometheus, Alertmanager and the
    # blackbox exporter on island_monitoring, node_exporter on every island host, whatever its groups.
    # Prometheus and Alertmanager require basic auth (their passwords generated by the role).
    _monitoring(
        "prometheus",
        "Prometheus",
        "monitoring_prometheus_port",
        auth="monitoring-prometheus-password",
        data="monitoring_retention_size",
    ),
    _monitoring(
        "alertmanager",
        "Alertmanager",
        "monitoring_alertmanager_port",
        auth="monitoring-alertmanager-password",
    ),
    _monitoring("blackbox_exporter", "the blackbox exporter", "monitoring_blackbox_port"),
    _monitoring("node_exporter", "node_exporter", "monitoring_node_exporter_port", groups=_EVERY, job="node"),
)

# The S3 tenants MinIO provisions for the components that store in it: a bucket, a policy of the
# same name limited to it, and a user with that policy, named by the minio role's variables
# (``bucket_var``, ``user_var``; an empty bucket turns the tenant off). The user's secret key is
# generated once into island_secrets_dir/minio-user-<user>; the consumer reads it through
# roles/common tasks_from credential.
TENANTS = (
    # k3s's etcd snapshots (k3s etcd-s3: list, get, put and delete snapshots; its retention deletes
    # without a VersionID, k3s pkg/etcd/s3/s3.go DeleteSnapshot). The history outlives the account
    # (island_minio_history says why each piece is needed): object locking, retention and noncurrent
    # expiry of ``history_var`` days, and an explicit Deny of ``object_denied``.
    {
        "tenant": "k3s",
        "component": "k3s",
        "bucket_var": "minio_etcd_snapshot_bucket",
        "user_var": "minio_k3s_user",
        "history_var": "minio_snapshot_history_days",
        "bucket_actions": ["s3:ListBucket", "s3:GetBucketLocation"],
        "object_actions": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
        "object_denied": ["s3:DeleteObjectVersion"],
    },
    # The registry's storage with registry_storage: s3. The actions are the S3 calls distribution
    # 2.8.2's s3 driver makes (registry/storage/driver/s3-aws/s3.go): ListObjects and ListObjectsV2
    # (Stat, List, Walk), ListMultipartUploads (resuming a Writer) on the bucket; GetObject,
    # PutObject, CopyObject, UploadPart(Copy), CreateMultipartUpload, CompleteMultipartUpload
    # (s3:PutObject), ListParts, AbortMultipartUpload and DeleteObjects on its objects.
    {
        "tenant": "registry",
        "component": "registry",
        "bucket_var": "minio_registry_bucket",
        "user_var": "minio_registry_user",
        "bucket_actions": ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
        "object_actions": [
            "s3:GetObject",
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:ListMultipartUploadParts",
            "s3:AbortMultipartUpload",
        ],
    },
)

# The island service names' default labels (island_names may relabel them): registry, s3, git, api.
SERVICE_LABELS = {c["service"]["key"]: c["service"]["label"] for c in COMPONENTS if c["service"]}
# Which group's hosts carry each service name (DNS records).
SERVICE_GROUPS = {c["service"]["key"]: c["service"]["group"] for c in COMPONENTS if c["service"]}
# Which bundle components each inventory group carries (node_exporter on every group).
GROUP_COMPONENTS = {g["name"]: [c["name"] for c in COMPONENTS if g["name"] in c["groups"]] for g in GROUPS}
COMPONENT_GROUPS = {c["name"]: list(c["groups"]) for c in COMPONENTS}
REQUIRED_GROUPS = [group["name"] for group in GROUPS if group["required"]]

_ROLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "roles")


class ModelError(ValueError):
    """The inventory or a role's defaults do not give the model what it needs."""


@functools.cache
def role_defaults(role: str, roles_dir: str = _ROLES_DIR) -> dict:
    """A role's defaults/main.yml, the one place its port variables are given a value."""
    # PyYAML comes with ansible-core, on the controller where the model is computed; imported here so
    # that importing the model's constants needs nothing beyond the standard library.
    import yaml  # noqa: PLC0415

    path = os.path.normpath(os.path.join(roles_dir, role, "defaults", "main.yml"))
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle) or {}
    except OSError as err:
        raise ModelError(f"the island model reads the {role} role's defaults from {path}: {err}") from err


def bundle_share() -> dict:
    """Bundle top-level directory to the groups whose hosts receive it (``all``: every host)."""
    share = {"bin": ["all"]}
    for component in COMPONENTS:
        for top in component.get("bundle", []):
            share.setdefault(top, []).extend(component["groups"])
    return share


def host_components(groups: dict, host: str) -> list[str]:
    """The bundle components a host carries, from its inventory groups."""
    return sorted(
        {
            component
            for group, carried in GROUP_COMPONENTS.items()
            if host in groups.get(group, [])
            for component in carried
        }
    )


def service_name(service: str, domain, overrides=None) -> str:
    """`registry` -> `registry.island.internal` (or the operator's label for it, island_names)."""
    labels = {**SERVICE_LABELS, **(overrides or {})}
    if service not in labels:
        raise ModelError(f"unknown island service '{service}' (known: {', '.join(sorted(labels))})")
    return f"{labels[service]}.{str(domain).rstrip('.')}"


def address(hostvars, host: str) -> str:
    """The address the island reaches a host at: island_address, else ansible_host, else its name."""
    values = hostvars.get(host, {}) if hasattr(hostvars, "get") else {}
    return str(values.get("island_address") or values.get("ansible_host") or host)


def _switched_on(entry: dict, role: str, hostvars, host, roles_dir: str) -> bool:
    """Whether the host binds the port: always, or while its role's ``switch`` variable is true."""
    if entry.get("switch") is None:
        return True
    value = setting(role, entry["switch"], hostvars, host, roles_dir)
    return value is True or str(value).strip().lower() in ("true", "yes", "on", "1")


def _needed(entry: dict, groups) -> bool:
    """Whether the island has hosts in the group the port ``needs`` (always, when it names none)."""
    return entry.get("needs") is None or bool(groups.get(entry["needs"]))


def port_value(entry: dict, role: str, hostvars, host=None, roles_dir: str = _ROLES_DIR) -> int:
    """A port's value on a host: the inventory's setting of its variable, else the role's default."""
    if entry["var"] is None:
        return int(entry["port"])
    values = hostvars.get(host, {}) if host is not None else {}
    value = values.get(entry["var"]) if entry["var"] in values else None
    if value is None:
        defaults = role_defaults(role, roles_dir)
        if entry["var"] not in defaults:
            raise ModelError(f"the {role} role's defaults/main.yml does not set {entry['var']}")
        value = defaults[entry["var"]]
    try:
        return int(value)
    except (TypeError, ValueError) as err:
        where = f"on {host}" if host is not None else f"in the {role} role's defaults"
        raise ModelError(f"{entry['var']} {where} is {value!r}, not a port number") from err


def setting(role: str, var: str, hostvars, host=None, roles_dir: str = _ROLES_DIR):
    """A role variable's value as the inventory sets it on ``host``, else the role's default."""
    values = hostvars.get(host, {}) if host is not None else {}
    if var in values and values.get(var) is not None:
        return values.get(var)
    defaults = role_defaults(role, roles_dir)
    if var not in defaults:
        raise ModelError(f"the {role} role's defaults/main.yml does not set {var}")
    return defaults[var]


def _tls(component: dict):
    tls = component["tls"]
    if not tls:
        return None
    base = f"{tls['dir']}/{tls['name']}"
    return {"dir": tls["dir"], "name": tls["name"], "certificate": f"{base}.crt", "key": f"{base}.key"}


def island(groups, hostvars, domain, names=None, *, roles_dir: str = _ROLES_DIR) -> dict:
    """The ``island`` fact: per component its hosts, ports, name, URL and certificate; per host its
    address, components, ports to check and certificates; the services the summary shows; the
    S3 tenants MinIO provisions; the record directory."""
    # Without island_domain (preflight names that problem) the service names are not known yet.
    domain = str(domain).rstrip(".") if domain else None
    all_hosts = list(groups.get("all", []))
    components = {}
    for component in COMPONENTS:
        role = component["role"]
        members = [h for h in all_hosts if any(h in groups.get(g, []) for g in component["groups"])]
        first = members[0] if members else None
        ports = {e["key"]: port_value(e, role, hostvars, first, roles_dir) for e in component["ports"]}
        entry = {
            "groups": list(component["groups"]),
            "hosts": members,
            "ports": ports,
            "instances": [
                {
                    "host": h,
                    "address": address(hostvars, h),
                    "ports": {
                        e["key"]: port_value(e, role, hostvars, h, roles_dir) for e in component["ports"]
                    },
                }
                for h in members
            ],
            "tls": _tls(component),
            "tenants": [t["tenant"] for t in TENANTS if t["component"] == component["name"]],
            # The component's hosts by the part they play (for a component of several groups).
            "members": {
                part: [h for h in members if h in groups.get(group, [])]
                for part, group in component.get("members", {}).items()
            },
        }
        service = component["service"]
        if service and domain:
            entry["name"] = service_name(service["key"], domain, names)
            entry["endpoint"] = f"{entry['name']}:{ports[service['port']]}"
            entry["url"] = f"https://{entry['endpoint']}"
        components[component["name"]] = entry
    hosts = {}
    for host in all_hosts:
        carried = [c for c in COMPONENTS if any(host in groups.get(g, []) for g in c["groups"])]
        hosts[host] = {
            "address": address(hostvars, host),
            "components": host_components(groups, host),
            "ports": [
                {k: v for k, v in e.items() if k not in _MODEL_PORT_KEYS and v is not None}
                | {"port": port_value(e, c["role"], hostvars, host, roles_dir)}
                for c in carried
                for e in c["ports"]
                if _in_group(groups, host, e["group"])
                and _needed(e, groups)
                and _switched_on(e, c["role"], hostvars, host, roles_dir)
            ],
            "certificates": [
                {"service": c["name"], "path": _tls(c)["certificate"]} for c in carried if c["tls"]
            ],
            # The disk its components may fill (Prometheus's retention size), which preflight adds
            # to the free space it requires.
            "data_bytes": sum(_data_bytes(c, hostvars, host, roles_dir) for c in carried),
        }
    first = all_hosts[0] if all_hosts else None
    return {
        "domain": domain,
        "record_dir": RECORD_DIR,
        "bundle_record": BUNDLE_RECORD,
        # Where island_csr records each island certificate a host holds (island-metrics reads it).
        "certificate_records": CERT_RECORD_DIR,
        # Where every host keeps the island roots it trusts (the pki role's pki_trust_bundle_path).
        "pki": {"trust_bundle": str(setting("pki", "pki_trust_bundle_path", hostvars, first, roles_dir))},
        "groups": {
            g["name"]: {"title": g["title"], "hosts": list(groups.get(g["name"], []))} for g in GROUPS
        },
        "required_groups": list(REQUIRED_GROUPS),
        "component_groups": {name: list(gs) for name, gs in COMPONENT_GROUPS.items()},
        "components": components,
        "hosts": hosts,
        "services": services(components, groups, hostvars),
        "tenants": tenants(hostvars, components["minio"]["hosts"], roles_dir),
        "bundle_share": bundle_share(),
        # What Prometheus scrapes and the blackbox exporter probes (island_model_scrape.py).
        "scrape": _scrape_jobs(groups, hostvars, roles_dir, domain),
        "probes": _probes(groups, hostvars, roles_dir),
    }


def _data_bytes(component: dict, hostvars, host, roles_dir) -> int:
    """The bytes a component's ``data`` setting (a size variable of its role) lets it keep on disk."""
    if not component.get("data"):
        return 0
    from ansible_collections.island.installer.plugins.module_utils import island_monitoring  # noqa: PLC0415

    var = component["data"]
    value = setting(component["role"], var, hostvars, host, roles_dir)
    try:
        return island_monitoring.size_bytes(value, var)
    except ValueError as err:
        raise ModelError(f"{err} (on {host})") from err


def _scrape_jobs(groups, hostvars, roles_dir, domain):
    from ansible_collections.island.installer.plugins.module_utils import island_model_scrape  # noqa: PLC0415

    return island_model_scrape.scrape(groups, hostvars, roles_dir, domain=domain)


def _probes(groups, hostvars, roles_dir):
    from ansible_collections.island.installer.plugins.module_utils import island_model_scrape  # noqa: PLC0415

    return island_model_scrape.probes(groups, hostvars, roles_dir)


def _as_groups(group) -> list:
    return list(group) if isinstance(group, list | tuple) else [group]


def _in_group(groups, host, group) -> bool:
    """Whether ``host`` is in ``group`` (a group name, or a list of them: any)."""
    return any(host in groups.get(g, []) for g in _as_groups(group))


def services(components: dict, groups, hostvars) -> list[dict]:
    """The service endpoints the summary shows, for the groups that have hosts."""
    dns = components["coredns"]
    registry, minio, gitea, k3s = (components[n] for n in ("registry", "minio", "gitea", "k3s"))
    if "url" not in registry:  # no island_domain: no names to show (preflight says so)
        return []
    dns_addresses = [address(hostvars, h) for h in groups.get(_DNS, [])]
    rows = [
        (_DNS, "DNS", f"{', '.join(dns_addresses)} (port {dns['ports']['dns']})"),
        (
            _REGISTRY,
            "registry",
            f"{registry['url']} (nodes, read-only); :{registry['ports']['push']} for seeding",
        ),
        (_MINIO, "MinIO (S3)", minio["url"]),
        (_GITEA, "Gitea", gitea["url"]),
        (_SERVERS, "Kubernetes API", k3s["url"]),
    ]
    # Prometheus by its host's address (basic auth: docs/observability.md); its certificate names it.
    rows += [
        (_MONITORING, "Prometheus", f"https://{i['address']}:{i['ports']['web']}")
        for i in components["prometheus"]["instances"][:1]
    ]
    return [{"group": g, "name": n, "endpoint": e} for g, n, e in rows if groups.get(g)]


def minio_user_secret(access_key: str) -> str:
    """The name of the file in island_secrets_dir that holds a MinIO user's secret key: the minio
    role generates it (once, 0600), a consumer reads it through roles/common tasks_from credential."""
    return f"minio-user-{access_key}"


def tenants(hostvars, minio_hosts, roles_dir: str = _ROLES_DIR) -> list[dict]:
    """The S3 tenants, resolved: each with its ``bucket`` and ``user`` (the minio role's variables
    as they are on the first MinIO host), the ``secret`` file name of the user's key, and whether
    it is ``enabled`` (the island has MinIO and the bucket is named)."""
    first = minio_hosts[0] if minio_hosts else None
    out = []
    for tenant in TENANTS:
        bucket = str(setting("minio", tenant["bucket_var"], hostvars, first, roles_dir) or "")
        user = str(setting("minio", tenant["user_var"], hostvars, first, roles_dir) or "")
        days = (
            int(setting("minio", tenant["history_var"], hostvars, first, roles_dir) or 0)
            if "history_var" in tenant
            else 0
        )
        enabled = bool(minio_hosts) and bool(bucket)
        secret = minio_user_secret(user)
        out.append(dict(tenant, bucket=bucket, user=user, secret=secret, enabled=enabled, history_days=days))
    return out


def minio_tenants(tenants) -> dict:
    """The buckets, policies and users MinIO provisions for the tenants its consumers declare
    (``tenants()``'s entries; a tenant whose bucket is empty is off)."""
    out: dict = {"buckets": [], "policies": [], "users": []}
    for tenant in tenants:
        bucket = tenant["bucket"]
        if not bucket:
            continue
        history = tenant.get("history_days") or 0
        out["buckets"].append(
            {"name": bucket, "object_lock": True, "retention_days": history, "noncurrent_days": history}
            if history
            else {"name": bucket}
        )
        arn = f"arn:aws:s3:::{bucket}"
        statements = [
            {"Effect": "Allow", "Action": list(tenant["bucket_actions"]), "Resource": [arn]},
            {"Effect": "Allow", "Action": list(tenant["object_actions"]), "Resource": [f"{arn}/*"]},
        ]
        if tenant.get("object_denied"):
            statements.append(
                {"Effect": "Deny", "Action": list(tenant["object_denied"]), "Resource": [f"{arn}/*"]}
            )
        out["policies"].append({"name": bucket, "policy": {"Version": "2012-10-17", "Statement": statements}})
        out["users"].append({"access_key": tenant["user"], "policies": [bucket]})
    return out
