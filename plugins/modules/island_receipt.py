#!/usr/bin/python
# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin Ansible module over module_utils/island_receipt: write the island's receipt."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_receipt
short_description: Write the island's receipt, a JSON record of what the island now runs
description:
  - Runs on the controller after C(playbooks/site.yml) or C(playbooks/upgrade.yml) (through
    C(playbooks/receipt.yml)) and writes ONE JSON document, schema version 1, described in
    C(docs/receipt.md) - the bundle applied, per host its address, groups and the version of each
    component its records say runs, per component the set of versions running (a half-done upgrade
    shows two), every image reference of the lock with the digest in the lock and the digest each
    registry host serves for it, every git repository of the lock with its refs in the lock and the
    refs each Gitea host holds, each service certificate read on its host (subject, SANs, issuer,
    not_after) and the island CA's roots and intermediates with their not_after.
  - Asks each registry host's read-only endpoint for every reference with C(HEAD) by tag, with the
    read-only account and the island CA; a reference missing, or resolving to a digest other than
    the lock's, is recorded as such, never hidden. Asks each Gitea host for each repository, and
    lists its branches and tags with C(git ls-remote) over HTTPS with the API token.
  - The document is deterministic - keys sorted, lists sorted, no "days left" (only C(not_after)),
    and the one time of a run, C(written_at), kept from the previous receipt unless something else
    changed - so a rerun on an unchanged island writes nothing and reports C(changed=false).
  - A host not reached (outside C(--limit), or not answering) keeps the components and certificates
    the previous receipt at O(path) recorded for it, with C(last_seen), instead of being emptied.
  - Writes atomically (a temporary file in the same directory, then a rename), mode 0644. The
    receipt holds no secret; before writing, the module checks that neither the registry password
    nor the Gitea token, nor any private key, appears in it, and refuses to write otherwise.
  - Check mode builds the same document and writes nothing; with C(--diff) it shows the old and
    the new receipt. In check mode, what an island not converged yet lacks (the CA, the account's
    password file, a registry or Gitea to ask) is a warning and C(changed=true), not a failure.
  - Fails, naming the thing at fault, when a registry cannot be reached or refuses the account,
    when Gitea refuses the token, or when the CA directory or the lock is not usable.
version_added: "0.1.0"
author: island installer contributors
options:
  path:
    description: Where the receipt is written on the controller; its directory must exist.
    type: path
    required: true
  bundle:
    description: The verified lock, as the bundle role sets it in the C(island_bundle) fact.
    type: dict
    required: true
  island_domain:
    description: The island's domain, recorded to tell islands apart.
    type: str
    required: true
  hosts:
    description:
      - Every host of the inventory, as C(playbooks/receipt.yml) gathers them.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Inventory name.
        type: str
        required: true
      address:
        description: The address the island knows the host by.
        type: str
      groups:
        description: The host's inventory groups.
        type: list
        elements: str
        default: []
      reached:
        description:
          - Whether the host answered. A host not reached keeps what the previous receipt said about
            it, marked C(reached=false) with C(last_seen); one the previous receipt does not know has
            its components reported C(host not reached).
        type: bool
        default: true
      records:
        description:
          - The host's component records, file name (C(<component>.json)) to base64 content, as
            C(ansible.builtin.slurp) returns it.
        type: dict
        default: {}
      certificates:
        description:
          - The host's service certificate files (public parts only, leaf and chain).
          - Each has C(service), C(path), and C(content) (base64) or C(error) (why it was not read).
        type: list
        elements: dict
        default: []
  component_groups:
    description:
      - Which inventory groups run which bundle component; a host in one of the groups must have
        a record for that component, or it is reported C(not recorded).
      - Unset, the island model's (C(island.component_groups), plugins/module_utils/island_model.py).
    type: dict
  ca_dir:
    description:
      - The island CA's directory on the controller (C(island_pki_dir)). Its C(trust-bundle.pem)
        verifies the registry's and Gitea's TLS and lists the roots; C(intermediate-*.crt) are
        the intermediates.
    type: path
    required: true
  registries:
    description: Registry hosts to ask, each C(host) (inventory name) and C(registry) (C(address:port)).
    type: list
    elements: dict
    default: []
  registry_username:
    description: The registry's read-only account.
    type: str
    default: island-node
  registry_password:
    description: Its password (from a vault); else O(registry_password_file) is read.
    type: str
  registry_password_file:
    description: File holding the read-only account's password (C(island_secrets_dir/registry-pull-password)).
    type: path
  repository_rule:
    description: How the seeding mapped references to repositories (as for M(island_registry_seed)).
    type: str
    choices: [strip_host, keep_host]
    default: strip_host
  repository_prefix:
    description: Repository prefix the seeding used.
    type: str
    default: ""
  gitea:
    description: Gitea hosts to ask, each C(host) (inventory name) and C(url).
    type: list
    elements: dict
    default: []
  gitea_owner:
    description: The organisation (or user) the bundle's repositories are seeded into.
    type: str
    default: island
  gitea_token:
    description: The installer's API token; else O(gitea_token_file) is read.
    type: str
  gitea_token_file:
    description: File holding the API token (C(island_secrets_dir/gitea-admin-token)).
    type: path
  etcd_snapshot_server:
    description:
      - The k3s server whose C(k3s etcd-snapshot ls -o json) is given in O(etcd_snapshot_list); the
        receipt then records the cluster's newest etcd snapshot (C(etcd_snapshot)). Empty for an
        island without k3s servers (no C(etcd_snapshot) in the receipt).
    type: str
    default: ""
  etcd_snapshot_list:
    description: The output of C(k3s etcd-snapshot ls -o json) on O(etcd_snapshot_server), as text or parsed.
    type: raw
    default: ""
  etcd_snapshot_error:
    description: The error of that command when it failed (the receipt records the snapshot as unreadable).
    type: str
    default: ""
notes:
  - Runs on the controller; needs C(cryptography) (in requirements.txt) and git (for C(git ls-remote)).
  - Supports check mode and diff mode.
seealso:
  - module: island_registry_seed
  - module: island_gitea_seed
"""

EXAMPLES = r"""
- name: The island's receipt records what the island now runs
  island_receipt:
    path: "{{ island_secrets_dir | dirname }}/island-receipt.json"
    bundle: "{{ island_bundle }}"
    island_domain: "{{ island_domain }}"
    hosts: "{{ receipt_hosts }}"
    ca_dir: "{{ island_pki_dir }}"
    registries: [{host: infra1, registry: "10.77.0.10:5000"}]
    registry_password_file: "{{ island_secrets_dir }}/registry-pull-password"
    gitea: [{host: infra1, url: "https://10.77.0.10:3000"}]
    gitea_token_file: "{{ island_secrets_dir }}/gitea-admin-token"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
path:
  description: Where the receipt is.
  returned: always
  type: str
  sample: inventory/demo/island-receipt.json
receipt:
  description: The document written (or that would be written in check mode); see docs/receipt.md.
  returned: when the document could be built
  type: dict
reason:
  description: Why the file was (or would be) written; empty when unchanged.
  returned: always
  type: str
  sample: what the island runs differs from the receipt
msg:
  description: A one-line summary, naming what is not as the bundle says.
  returned: always
  type: str
  sample: >-
    receipt inventory/demo/island-receipt.json unchanged: bundle island 2026.11.0, everything as
    the bundle says
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_model import COMPONENT_GROUPS
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module
from ansible_collections.island.installer.plugins.module_utils.island_receipt import (
    AS_LOCKED,
    PRESENT,
    NotConvergedError,
    ReceiptError,
    ReceiptInputError,
    build_document,
    ca_entry,
    certificate_entry,
    check_lock,
    check_no_secrets,
    etcd_snapshot_entry,
    git_entries,
    image_entries,
    query_gitea,
    query_registry,
    render,
    write_receipt,
)
from ansible_collections.island.installer.plugins.module_utils.island_receipt_history import (
    carried_certificates,
    carry_forward,
    hosts_not_reached,
    read_previous,
)


class SecretMissingError(NotConvergedError, ReceiptInputError):
    """The file of a secret the receipt needs does not exist (yet)."""


def _secret(params, value_key, file_key, what):
    if params[value_key]:
        return params[value_key]
    path = params[file_key]
    if not path:
        raise ReceiptInputError(f"{what}: give {value_key} or {file_key}")
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as exc:
        raise SecretMissingError(
            f"{what}: cannot read {path} ({exc.strerror}); it is made by playbooks/site.yml"
        ) from None


def _attention(doc):
    """Short phrases for what is not as the bundle says, for the summary line."""
    out = hosts_not_reached(doc)
    for name, comp in doc["components"].items():
        if comp["state"] not in ("as bundle", "not deployed"):
            out.append(f"{name} {comp['state']}")
    for image in doc["images"]:
        for host, served in image["served"].items():
            if served["state"] != AS_LOCKED:
                out.append(f"{image['reference']} {served['state']} on {host}")
    for repo in doc["git"]:
        for host, served in repo["served"].items():
            if served["state"] != AS_LOCKED:
                out.append(f"git {repo['repository']} {served['state']} on {host}")
    out.extend(
        f"certificate {c['host']}/{c['service']} {c['state']}"
        for c in doc["certificates"]
        if c["state"] != PRESENT
    )
    snapshot = doc.get("etcd_snapshot")
    if snapshot and snapshot["state"] != PRESENT:
        out.append(f"etcd snapshot {snapshot['state']} on {snapshot['server']}")
    return out


def run(module):
    p = module.params
    check_lock(p["bundle"])
    bundle = p["bundle"]
    ca_file = f"{p['ca_dir'].rstrip('/')}/trust-bundle.pem"
    # Hosts this run did not reach keep what the previous receipt said about them.
    previous, note = read_previous(p["path"], p["island_domain"])
    if note:
        module.warn(note)
    certificates = [
        certificate_entry(host["name"], cert)
        for host in p["hosts"]
        for cert in host.get("certificates") or []
    ] + carried_certificates(p["hosts"], previous)
    ca = ca_entry(p["ca_dir"], certificates)
    references = [i["reference"] for i in bundle.get("images") or []]
    names = [g["name"] for g in bundle.get("git") or []]
    secrets = {}
    served_images, served_git = {}, {}
    if p["registries"] and references:
        secrets["registry password"] = _secret(p, "registry_password", "registry_password_file", "registry")
        for reg in p["registries"]:
            served_images[reg["host"]] = query_registry(
                reg["registry"],
                references,
                ca_file=ca_file,
                username=p["registry_username"],
                password=secrets["registry password"],
                rule=p["repository_rule"],
                prefix=p["repository_prefix"],
            )
    if p["gitea"] and names:
        secrets["Gitea token"] = _secret(p, "gitea_token", "gitea_token_file", "Gitea")
        for server in p["gitea"]:
            served_git[server["host"]] = query_gitea(
                server["url"], names, ca_file=ca_file, token=secrets["Gitea token"], owner=p["gitea_owner"]
            )
    doc = build_document(
        bundle=bundle,
        domain=p["island_domain"],
        hosts=p["hosts"],
        component_groups=p["component_groups"] or COMPONENT_GROUPS,
        images=image_entries(
            bundle.get("images") or [], served_images, p["repository_rule"], p["repository_prefix"]
        ),
        git=git_entries(bundle.get("git") or [], served_git, p["gitea_owner"]),
        certificates=certificates,
        ca=ca,
        etcd_snapshot=(
            etcd_snapshot_entry(p["etcd_snapshot_server"], p["etcd_snapshot_list"], p["etcd_snapshot_error"])
            if p["etcd_snapshot_server"]
            else None
        ),
    )
    doc = carry_forward(doc, bundle.get("components"), previous)
    data = render(doc)
    check_no_secrets(data, secrets)
    written = write_receipt(p["path"], data, check_mode=module.check_mode)
    attention = _attention(doc)
    verb = ("would be written" if module.check_mode else "written") if written.changed else "unchanged"
    state = "; ".join(attention) if attention else "everything as the bundle says"
    bundle_name = f"{doc['bundle']['name']} {doc['bundle']['version']}"
    result = {
        "changed": written.changed,
        "path": p["path"],
        "receipt": doc,
        "reason": written.reason,
        "msg": f"receipt {p['path']} {verb}: bundle {bundle_name}, {state}",
    }
    if module._diff:
        result["diff"] = {
            "before_header": p["path"],
            "after_header": p["path"],
            "before": (written.before or b"").decode("utf-8", "replace"),
            "after": data.decode("utf-8"),
        }
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "bundle": {"type": "dict", "required": True},
            "island_domain": {"type": "str", "required": True},
            "hosts": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "name": {"type": "str", "required": True},
                    "address": {"type": "str"},
                    "groups": {"type": "list", "elements": "str", "default": []},
                    "reached": {"type": "bool", "default": True},
                    "records": {"type": "dict", "default": {}},
                    "certificates": {"type": "list", "elements": "dict", "default": []},
                },
            },
            "component_groups": {"type": "dict"},
            "ca_dir": {"type": "path", "required": True},
            "registries": {"type": "list", "elements": "dict", "default": []},
            "registry_username": {"type": "str", "default": "island-node"},
            "registry_password": {"type": "str", "no_log": True},
            "registry_password_file": {"type": "path", "no_log": False},
            "repository_rule": {
                "type": "str",
                "choices": ["strip_host", "keep_host"],
                "default": "strip_host",
            },
            "repository_prefix": {"type": "str", "default": ""},
            "gitea": {"type": "list", "elements": "dict", "default": []},
            "gitea_owner": {"type": "str", "default": "island"},
            "gitea_token": {"type": "str", "no_log": True},
            "gitea_token_file": {"type": "path"},
            "etcd_snapshot_server": {"type": "str", "default": ""},
            # raw: ansible-core 2.16-2.18 hand over JSON text from a template as the parsed mapping
            "etcd_snapshot_list": {"type": "raw", "default": ""},
            "etcd_snapshot_error": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    for name in ("registries", "gitea"):
        for item in module.params[name]:
            key = "registry" if name == "registries" else "url"
            if not item.get("host") or not item.get(key):
                module.fail_json(msg=f"each item of {name} needs host and {key}, got {item!r}")
    run_module(module, run_or_predict, ReceiptError)


def run_or_predict(module):
    try:
        return run(module)
    except NotConvergedError as exc:
        if not module.check_mode:
            raise
        # Check mode before the island is converged (no CA, no secrets, no services yet): nothing
        # to read, nothing written.
        module.warn(f"the receipt cannot be predicted: {exc}")
        return {
            "changed": True,
            "path": module.params["path"],
            "reason": "the services could not be asked in check mode",
            "msg": f"receipt {module.params['path']} would be written after the real run ({exc})",
        }


if __name__ == "__main__":
    main()
