# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What Prometheus scrapes and what the blackbox exporter probes, resolved from the island model
(issue 17, docs/observability.md): each component's ``scrape`` declarations
(island_model._scrape) become jobs with their targets, and every port of a component with an
island certificate becomes a probed TLS endpoint. island_model.island() exposes both as
``island.scrape`` and ``island.probes``; a new component in COMPONENTS brings its own."""

from __future__ import annotations

from ansible_collections.island.installer.plugins.module_utils import island_model as model

# Where the monitoring role installs a client_cert scrape's files on the Prometheus host: one
# directory per declaration (root:prometheus 0750), the CA that verifies the target (ca.crt), the
# client certificate (client.crt) and its key (client.key, root:prometheus 0640, made there).
CLIENT_CERT_DIR = "/etc/prometheus/scrape"
# The name every island client certificate of Prometheus carries (DNS:<this>.<island domain>), on
# each monitoring host with its own key; a TLS front that serves Prometheus alone requires it
# (socat's commonname=, roles/registry tasks/metrics.yml), since every island host also holds
# island client certificates of its own (journal-upload).
ISLAND_CLIENT = "island-prometheus"


def _scrape_auth(auth: dict, role: str, hostvars, host, roles_dir: str, *, domain=None) -> dict:
    """A scrape declaration's auth, resolved: its kind, the user (basic) and the secret file, or
    (client_cert) its directory and the CA, certificate and key files in it; with ``roots: island``
    the CA file is the island trust bundle and ``client_san`` the name the certificate carries."""
    kind = auth.get("kind", "none")
    if kind == "none":
        return {"kind": "none"}
    if kind == "client_cert":
        name = str(auth.get("name") or "")
        if not name or "/" in name or name.startswith("."):
            raise model.ModelError(
                f"a scrape's client_cert auth is named {name!r}: give a plain directory name"
            )
        roots = auth.get("roots", "own")
        if roots not in ("own", "island"):
            raise model.ModelError(
                f"a scrape's client_cert auth {name} has roots {roots!r}: give own (the component's CA, "
                "ca.crt beside the client certificate) or island (the island trust bundle)"
            )
        directory = f"{CLIENT_CERT_DIR}/{name}"
        out = {
            "kind": kind,
            "name": name,
            "roots": roots,
            "dir": directory,
            "ca_file": f"{directory}/ca.crt",
            "cert_file": f"{directory}/client.crt",
            "key_file": f"{directory}/client.key",
        }
        if roots == "island":
            trust = model.setting("pki", "pki_trust_bundle_path", hostvars, host, roles_dir)
            out["ca_file"] = str(trust)
            out["client_san"] = f"DNS:{ISLAND_CLIENT}.{domain}" if domain else None
        return out
    if kind not in ("basic", "bearer") or not auth.get("secret"):
        raise model.ModelError(
            f"a scrape's auth is kind {kind!r} with secret {auth.get('secret')!r}: give kind none, "
            "basic (user_var and secret), bearer (secret), secret naming its file in island_secrets_dir, "
            "or client_cert (name)"
        )
    out = {"kind": kind, "secret": str(auth["secret"])}
    if kind == "basic":
        out["user"] = str(model.setting(role, auth["user_var"], hostvars, host, roles_dir))
    return out


def scrape(groups, hostvars, roles_dir: str = model._ROLES_DIR, *, domain=None) -> list[dict]:
    """Every scrape job the components declare (``scrape`` of COMPONENTS), resolved: its ``job``,
    ``component``, ``scheme`` (https), metrics ``path``, ``auth`` ({kind, user, secret}) and
    ``targets`` (each host of its group in inventory order, with its ``address``, its own ``port``
    and ``target`` address:port). A job whose group has no hosts, or whose port the island does not
    bind (its ``needs`` group has no hosts), is left out."""
    all_hosts = list(groups.get("all", []))
    jobs = []
    for component in model.COMPONENTS:
        role = component["role"]
        by_key = {e["key"]: e for e in component["ports"]}
        for declared in component.get("scrape", []):
            if declared["port"] not in by_key:
                raise model.ModelError(
                    f"{component['name']}'s scrape job {declared['job']} names port {declared['port']!r}; "
                    f"its ports are {', '.join(sorted(by_key))}"
                )
            entry = by_key[declared["port"]]
            if not model._needed(entry, groups):
                continue
            group = declared["group"] or entry["group"] or component["groups"]
            hosts = [h for h in all_hosts if model._in_group(groups, h, group)]
            if declared.get("switch"):
                switch = {"var": None, "switch": declared["switch"]}
                hosts = [h for h in hosts if model._switched_on(switch, role, hostvars, h, roles_dir)]
            if not hosts:
                continue
            targets = []
            for host in hosts:
                port = model.port_value(entry, role, hostvars, host, roles_dir)
                target = f"{model.address(hostvars, host)}:{port}"
                targets.append(
                    {"host": host, "address": model.address(hostvars, host), "port": port, "target": target}
                )
            jobs.append(
                {
                    "job": declared["job"],
                    "component": component["name"],
                    "scheme": "https",
                    "path": declared["path"],
                    "auth": _scrape_auth(
                        declared["auth"], role, hostvars, hosts[0], roles_dir, domain=domain
                    ),
                    "targets": targets,
                }
            )
    names = [job["job"] for job in jobs]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise model.ModelError(
            f"scrape job names must be unique; declared more than once: {', '.join(twice)}"
        )
    return jobs


def probes(groups, hostvars, roles_dir: str = model._ROLES_DIR) -> list[dict]:
    """Every island endpoint the blackbox exporter probes over verified TLS: each port of each
    component with an island certificate (``tls``), unless the port says ``probe`` False, on each
    host that binds it, in inventory order: its ``component``, ``key``, ``service``, ``host``,
    ``address``, ``port`` and ``target``."""
    out = []
    for host in groups.get("all", []):
        for component in model.COMPONENTS:
            if not component["tls"]:
                continue
            for entry in component["ports"]:
                if not entry.get("probe", True) or not model._in_group(groups, host, entry["group"]):
                    continue
                if not model._switched_on(entry, component["role"], hostvars, host, roles_dir):
                    continue
                port = model.port_value(entry, component["role"], hostvars, host, roles_dir)
                out.append(
                    {
                        "component": component["name"],
                        "key": entry["key"],
                        "service": entry["service"],
                        "host": host,
                        "address": model.address(hostvars, host),
                        "port": port,
                        "target": f"{model.address(hostvars, host)}:{port}",
                    }
                )
    return out
