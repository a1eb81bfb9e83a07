# Copyright: island installer contributors
# The island's receipt: one JSON document on the controller saying what the island now runs, so
# the transfer zone can build the next bundle knowing what is already inside (docs/receipt.md).
#
# Runs on the controller only (it needs `cryptography` to read certificates, and git to list
# Gitea's refs). Three parts:
#   - gathering from the services, through the project's own clients: the digest each image
#     reference of the lock resolves to on every registry host (island_oci's RegistryClient, HEAD by
#     tag with the read-only account), and the branches and tags of every seeded repository on
#     every Gitea host (island_gitea's GiteaClient for the token and the repository, git ls-remote
#     through its Git wrapper for the refs, as the seeding reads them);
#   - building the document from those answers and from what the hosts reported (component
#     records, certificate files): pure functions, deterministic, no time of the run in it;
#   - writing it atomically, 0644, only when its bytes differ, after checking that no secret the
#     module was given, and no private key, ended up in it.
from __future__ import annotations

import base64
import concurrent.futures
import glob
import json
import os
import re
import stat

from ansible_collections.island.installer.plugins.module_utils.island_gitea import (
    Git,
    GiteaClient,
    GiteaError,
)
from ansible_collections.island.installer.plugins.module_utils.island_gitea import (
    _remote_refs as gitea_remote_refs,
)
from ansible_collections.island.installer.plugins.module_utils.island_io import atomic_write
from ansible_collections.island.installer.plugins.module_utils.island_oci import (
    ImageReference,
    OCIError,
    RegistryClient,
    target_repository,
)
from ansible_collections.island.installer.plugins.module_utils.island_pki import (
    PkiError,
    cert_not_after,
    describe_certificate,
    load_certificates,
)

SCHEMA_VERSION = 1
RECEIPT_MODE = 0o644

# States, as they appear in the document (docs/receipt.md lists their meaning).
AS_LOCKED = "as locked"
DIFFERENT = "different digest"
MISSING = "missing"
REFS_DIFFER = "refs differ"
RECORDED = "recorded"
NOT_RECORDED = "not recorded"
UNREADABLE = "unreadable"
UNREACHED = "host not reached"
PRESENT = "present"

_RECORD_NAME = re.compile(r"^([a-z0-9][a-z0-9._-]*)\.json$")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


# --- Errors --------------------------------------------------------------------------------------
class ReceiptError(Exception):
    """Base of this module's errors; ``str()`` names the thing at fault and what to do."""


class ReceiptInputError(ReceiptError):
    """The module was given something it cannot use (a bad lock, a missing CA file)."""


class NotConvergedError(ReceiptError):
    """Something a converged island has is not there (yet): fatal, except in check mode before the
    first run, where there is nothing to read."""


class ServiceError(NotConvergedError):
    """A registry or Gitea could not be asked (unreachable, TLS, refused credentials)."""


class CaMissingError(NotConvergedError, ReceiptInputError):
    """The island CA's trust bundle is not in ca_dir."""


class SecretInReceiptError(ReceiptError):
    """The document would contain a secret: it is not written."""


# --- Hosts: component records and certificates ---------------------------------------------------
def parse_record(host, filename, text):
    """(component, entry) from one record file ``<component>.json`` of ``host``.

    A record is ``{"component", "version", "sha256"}`` written by the roles (roles/common
    record.yml) once the component runs that version. Anything else is reported as unreadable,
    never guessed at.
    """
    match = _RECORD_NAME.match(filename)
    component = match.group(1) if match else filename
    where = f"{host}:{filename}"
    try:
        data = json.loads(text)
    except ValueError as exc:
        return component, {"state": UNREADABLE, "detail": f"{where} is not JSON ({exc})"}
    if not isinstance(data, dict):
        return component, {"state": UNREADABLE, "detail": f"{where} is not a JSON object"}
    problems = []
    if not match:
        problems.append("the file name is not <component>.json")
    if data.get("component") != component:
        problems.append(f"it names component {data.get('component')!r}, its file name {component!r}")
    version, sha256 = data.get("version"), data.get("sha256")
    if not isinstance(version, str) or not version:
        problems.append("no version")
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", sha256):
        problems.append("no sha256 of 64 lowercase hex characters")
    if problems:
        return component, {"state": UNREADABLE, "detail": f"{where}: " + "; ".join(problems)}
    return component, {"state": RECORDED, "version": version, "sha256": sha256}


def expected_components(groups, component_groups, bundle_components):
    """The bundle's components a host in ``groups`` runs, by the component -> groups table."""
    return sorted(
        name
        for name, wanted in component_groups.items()
        if name in bundle_components and set(wanted) & set(groups)
    )


def _decode(content, what):
    try:
        return base64.b64decode(content, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReceiptInputError(f"{what} is not base64 of UTF-8 text ({exc})") from None


def certificate_entry(host, cert):
    """One service certificate read on a host: its public description, or why it is missing.

    ``cert``: {service, path, content (base64, as slurp returns it) | error}. The file holds the
    leaf and its chain (roles/pki issue.yml); the leaf is described, the chain gives its issuer.
    """
    entry = {"host": host, "service": cert["service"], "path": cert["path"]}
    if cert.get("content") is None:
        detail = cert.get("error") or "not read"
        state = MISSING if "not found" in detail.lower() or "no such file" in detail.lower() else UNREADABLE
        return {**entry, "state": state, "detail": detail}
    what = f"{host}:{cert['path']}"
    try:
        certs = load_certificates(_decode(cert["content"], what), what)
    except (PkiError, ReceiptInputError) as exc:
        return {**entry, "state": UNREADABLE, "detail": str(exc)}
    if not certs:
        return {**entry, "state": UNREADABLE, "detail": f"{what} holds no PEM certificate"}
    described = describe_certificate(certs[0])
    return {
        **entry,
        "state": PRESENT,
        "subject": described["subject"],
        "subject_alt_names": described["subject_alt_names"],
        "issuer": described["issuer"],
        "serial_number": described["serial_number"],
        "not_after": described["not_after"],
    }


def host_entry(host, bundle_components, component_groups):
    """A host of the inventory as the receipt lists it, with its components' records.

    ``host``: {name, address, groups, reached, records: {file name: base64 content}}.
    """
    name = host["name"]
    groups = sorted(g for g in host.get("groups") or [] if g not in ("all", "ungrouped"))
    expected = expected_components(groups, component_groups, bundle_components)
    components = {}
    if not host.get("reached", True):
        components = {c: {"state": UNREACHED} for c in expected}
    else:
        for filename, content in sorted((host.get("records") or {}).items()):
            what = f"{name}:{filename}"
            try:
                text = _decode(content, what)
            except ReceiptInputError as exc:
                component, entry = filename.rsplit(".", 1)[0], {"state": UNREADABLE, "detail": str(exc)}
            else:
                component, entry = parse_record(name, filename, text)
            components[component] = entry
        for component in expected:
            components.setdefault(component, {"state": NOT_RECORDED})
    for component, entry in components.items():
        entry["expected"] = component in expected
    return {
        "address": host.get("address") or name,
        "groups": groups,
        "reached": bool(host.get("reached", True)),
        "components": dict(sorted(components.items())),
    }


def component_summary(hosts_doc, bundle_components):
    """Per component: the bundle's version, and which hosts run which version.

    More than one version, or hosts not recorded, is a half-done rollout: the receipt shows it
    instead of reporting the bundle's version for every host.
    """
    names = set(bundle_components)
    for host in hosts_doc.values():
        names.update(host["components"])
    out = {}
    for name in sorted(names):
        running, not_recorded, unreadable = {}, [], []
        for host_name, host in sorted(hosts_doc.items()):
            entry = host["components"].get(name)
            if entry is None:
                continue
            if entry["state"] == RECORDED:
                running.setdefault(entry["version"], []).append(host_name)
            elif entry["state"] == UNREADABLE:
                unreadable.append(host_name)
            else:
                not_recorded.append(host_name)
        bundle_version = (bundle_components.get(name) or {}).get("version")
        if not running and not unreadable and not not_recorded:
            state = "not deployed"
        elif len(running) == 1 and not not_recorded and not unreadable and bundle_version in running:
            state = "as bundle"
        elif len(running) > 1 or (running and (not_recorded or unreadable)):
            state = "mixed versions"
        elif running:
            state = "differs from bundle"
        else:
            state = NOT_RECORDED
        out[name] = {
            "bundle_version": bundle_version,
            "running": {v: running[v] for v in sorted(running)},
            "not_recorded": not_recorded,
            "unreadable": unreadable,
            "state": state,
        }
    return out


# --- Registry: what each image reference resolves to --------------------------------------------
def image_target(reference, rule="strip_host", prefix=""):
    """(repository, tag or digest) where the seeding put ``reference`` in the island registry."""
    ref = ImageReference.parse(reference)
    return target_repository(ref, rule, prefix), ref.tag or ref.digest


def query_registry(
    registry, references, *, ca_file, username, password, rule="strip_host", prefix="", workers=4, retries=2
):
    """{reference: digest served or None} from one registry (``host:port``), HEAD by tag.

    Raises ServiceError naming the registry when it cannot be reached or refuses the account.
    """
    try:
        client = RegistryClient(
            registry, ca_file=ca_file, username=username, password=password, retries=retries, timeout=60.0
        )
        client.ping()
        targets = {r: image_target(r, rule, prefix) for r in references}

        def head(reference):
            repo, target = targets[reference]
            found = client.head_manifest(repo, target, image=reference)
            return reference, found[0] if found else None

        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            served = dict(pool.map(head, sorted(references)))
        client.close()
    except OCIError as exc:
        raise ServiceError(
            f"registry {registry}: {exc}. The receipt needs the read-only endpoint reachable from the "
            "controller, the island CA and the read-only account (registry_pull_user)"
        ) from None
    return served


def image_entries(bundle_images, served_by_registry, rule="strip_host", prefix=""):
    """Per image of the lock: the digest in the lock and what each registry host serves."""
    out = []
    for image in sorted(bundle_images, key=lambda i: i["reference"]):
        reference, locked = image["reference"], image["digest"]
        served = {}
        for host, answers in sorted(served_by_registry.items()):
            digest = answers.get(reference)
            if digest is None:
                served[host] = {"digest": None, "state": MISSING}
            else:
                served[host] = {"digest": digest, "state": AS_LOCKED if digest == locked else DIFFERENT}
        repo, target = image_target(reference, rule, prefix)
        out.append(
            {
                "reference": reference,
                "repository": repo,
                "tag": target if not target.startswith("sha256:") else None,
                "digest_in_lock": locked,
                "served": served,
            }
        )
    return out


# --- Gitea: the branches and tags of every seeded repository -------------------------------------
def query_gitea(url, names, *, ca_file, token, owner, timeout=120):
    """{repository name: {ref: object id} or None when absent} from one Gitea.

    The token is checked first (GET /api/v1/user), each repository looked up through the REST API,
    its refs listed with ``git ls-remote`` (as the seeding reads them: a tag is its tag object for
    annotated tags, exactly as the bundle's lock lists it). Raises ServiceError naming Gitea.
    """
    try:
        client = GiteaClient(url, ca_file, token=token, timeout=timeout)
        login = client.me()["login"]
        out = {}
        with Git(ca_file, login, token, timeout) as git:
            for name in sorted(names):
                if client.get_repo(owner, name) is None:
                    out[name] = None
                    continue
                repo_url = f"{client.url}/{owner}/{name}.git"
                out[name] = gitea_remote_refs(git, repo_url)
    except GiteaError as exc:
        raise ServiceError(
            f"Gitea at {url}: {exc}. The receipt reads the token in island_secrets_dir/gitea-admin-token "
            "and needs git on the controller"
        ) from None
    return out


def git_entries(bundle_git, served_by_gitea, owner):
    """Per repository of the lock: its refs in the lock and the refs each Gitea host holds."""
    out = []
    for repo in sorted(bundle_git, key=lambda r: r["name"]):
        locked = {r: c for r, c in repo["refs"].items() if r != "HEAD"}
        served = {}
        for host, answers in sorted(served_by_gitea.items()):
            refs = answers.get(repo["name"])
            if refs is None:
                served[host] = {"refs": {}, "state": MISSING}
                continue
            same = all(refs.get(r) == c for r, c in locked.items())
            served[host] = {"refs": dict(sorted(refs.items())), "state": AS_LOCKED if same else REFS_DIFFER}
        out.append(
            {
                "name": repo["name"],
                "repository": f"{owner}/{repo['name']}",
                "refs_in_lock": dict(sorted(locked.items())),
                "served": served,
            }
        )
    return out


# --- The CA on the controller --------------------------------------------------------------------
def ca_entry(ca_dir, certificates):
    """The island CA's public certificates in ``ca_dir`` (roles/pki, island_pki's layout): the
    roots every node trusts (trust-bundle.pem) and each intermediate with the host certificates it
    issued (matched by the issuer of each certificate read on the hosts)."""
    bundle_path = os.path.join(ca_dir, "trust-bundle.pem")
    try:
        with open(bundle_path, encoding="ascii") as handle:
            roots = load_certificates(handle.read(), bundle_path, error=ReceiptInputError)
    except OSError as exc:
        raise CaMissingError(
            f"cannot read the island CA's trust bundle {bundle_path} ({exc.strerror}): point ca_dir at "
            "island_pki_dir, where the pki role keeps the CA"
        ) from None
    if not roots:
        raise ReceiptInputError(f"{bundle_path} holds no certificate: rerun playbooks/site.yml (pki role)")
    intermediates = []
    for path in sorted(glob.glob(os.path.join(ca_dir, "intermediate-*.crt"))):
        with open(path, encoding="ascii") as handle:
            found = load_certificates(handle.read(), path, error=ReceiptInputError)
        if not found:
            raise ReceiptInputError(f"{path} holds no certificate: restore it from a backup")
        described = describe_certificate(found[0])
        issued = sorted(
            f"{c['host']}/{c['service']}"
            for c in certificates
            if c.get("state") == PRESENT and c["issuer"] == described["subject"]
        )
        intermediates.append(
            {
                "file": os.path.basename(path),
                "subject": described["subject"],
                "serial_number": described["serial_number"],
                "not_after": described["not_after"],
                "issued": issued,
            }
        )
    return {
        "roots": [
            {
                "subject": r.subject.rfc4514_string(),
                "serial_number": f"{r.serial_number:x}",
                "not_after": cert_not_after(r).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            for r in roots
        ],
        "intermediates": intermediates,
    }


# --- The document --------------------------------------------------------------------------------
def check_lock(bundle):
    """The parts of the verified lock (the island_bundle fact) the receipt reads."""
    problems = []
    if not isinstance(bundle, dict):
        raise ReceiptInputError("bundle must be the verified lock (the island_bundle fact), a mapping")
    meta = bundle.get("bundle")
    if not isinstance(meta, dict) or not meta.get("name") or not meta.get("version"):
        problems.append("bundle.name and bundle.version")
    if not isinstance(bundle.get("components", {}), dict):
        problems.append("components (a mapping)")
    for key in ("images", "git"):
        if not isinstance(bundle.get(key, []), list):
            problems.append(f"{key} (a list)")
    if problems:
        raise ReceiptInputError(
            "bundle is not a verified lock (docs/bundle-format.md): missing or wrong "
            + ", ".join(problems)
            + "; pass island_bundle as the bundle role sets it"
        )


def etcd_snapshot_entry(server, listing, error=""):
    """The newest etcd snapshot of the cluster, from ``k3s etcd-snapshot ls -o json`` on ``server``.

    ``listing`` is that command's output, as text or parsed (an ETCDSnapshotFileList; k3s lists each
    snapshot once per place it is kept, a ``file://`` copy on its node and an ``s3://`` copy in the
    bucket, under the same ``spec.snapshotName``), ``error`` its error text when it failed. The
    entry names the newest snapshot ready to use (by ``status.creationTime``, then name) with every
    location it has, and how many snapshots the cluster holds; ``state`` is ``present``, ``none``
    or ``unreadable``.
    """
    entry = {"server": server}
    try:
        parsed = None if error else (listing if isinstance(listing, dict) else json.loads(listing))
        items = None if parsed is None else parsed["items"]
    except (TypeError, ValueError, KeyError) as exc:
        items, error = None, f"k3s etcd-snapshot ls -o json printed no snapshot list ({exc})"
    if items is None:
        return {**entry, "state": UNREADABLE, "detail": (error or "").strip()[:500]}
    by_name = {}
    for item in items:
        spec, status = item.get("spec") or {}, item.get("status") or {}
        if not spec.get("snapshotName") or status.get("readyToUse") is False:
            continue
        snap = by_name.setdefault(
            spec["snapshotName"],
            {"name": spec["snapshotName"], "created": status.get("creationTime"), "locations": []},
        )
        snap["locations"].append(spec.get("location"))
        if status.get("size") is not None:
            snap["size"] = int(status["size"])
    if not by_name:
        return {**entry, "state": "none", "count": 0}
    newest = max(by_name.values(), key=lambda s: (s["created"] or "", s["name"]))
    newest["locations"] = sorted(loc for loc in newest["locations"] if loc)
    return {**entry, "state": PRESENT, "count": len(by_name), "newest": newest}


def build_document(
    *,
    bundle,
    domain,
    hosts,
    component_groups,
    images,
    git,
    certificates,
    ca,
    etcd_snapshot=None,
):
    """The receipt as a plain dict. Every input is already gathered; nothing here reads the clock.

    ``etcd_snapshot`` (etcd_snapshot_entry) is given when the island has a k3s server."""
    components = bundle.get("components") or {}
    hosts_doc = {h["name"]: host_entry(h, components, component_groups) for h in hosts}
    extra = {"etcd_snapshot": etcd_snapshot} if etcd_snapshot is not None else {}
    return {
        **extra,
        "schema_version": SCHEMA_VERSION,
        "island_domain": domain,
        "bundle": {"name": bundle["bundle"]["name"], "version": bundle["bundle"]["version"]},
        "hosts": dict(sorted(hosts_doc.items())),
        "components": component_summary(hosts_doc, components),
        "images": images,
        "git": git,
        "certificates": sorted(certificates, key=lambda c: (c["host"], c["service"], c["path"])),
        "ca": ca,
    }


def render(document):
    """The document's bytes: keys sorted, two-space indent, one trailing newline."""
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def check_no_secrets(data, secrets):
    """Refuse a document that holds one of ``secrets`` or a private key: the receipt is 0644 and
    is carried out of the island to the transfer zone."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    if _PRIVATE_KEY.search(text):
        raise SecretInReceiptError("the receipt would contain a private key; nothing was written")
    for name, value in secrets.items():
        if value and value in text:
            raise SecretInReceiptError(f"the receipt would contain the {name}; nothing was written")


class WriteResult:
    def __init__(self, changed, reason, before):
        self.changed = changed
        self.reason = reason
        self.before = before


def write_receipt(path, data, check_mode=False):
    """Write ``data`` to ``path`` atomically, 0644, when its bytes or its mode differ."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ReceiptInputError(
            f"the directory of the receipt {path} does not exist: create it or set island_receipt_path"
        )
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ReceiptInputError(
            f"{path} exists and is not a regular file: move it away or choose another path"
        )
    before = None
    if st is not None:
        with open(path, "rb") as handle:
            before = handle.read()
    if before is None:
        reason = "no receipt yet"
    elif before != data:
        reason = "what the island runs differs from the receipt"
    elif stat.S_IMODE(st.st_mode) != RECEIPT_MODE:
        reason = f"mode {stat.S_IMODE(st.st_mode):04o} -> {RECEIPT_MODE:04o}"
    else:
        return WriteResult(False, "", before)
    if not check_mode:
        if before == data:
            os.chmod(path, RECEIPT_MODE)
        else:
            atomic_write(path, data, RECEIPT_MODE)
    return WriteResult(True, reason, before)
