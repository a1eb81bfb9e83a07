#!/usr/bin/python
"""Ansible module island_cert: install a service certificate with its chain on the host."""

from __future__ import annotations

DOCUMENTATION = r"""
module: island_cert
short_description: Install a service certificate and its chain on the host, atomically
description:
  - Runs on the managed host. Writes O(certificate) followed by O(chain) (the intermediate; the
    root is distributed separately, as the island trust bundle) to O(path), atomically (a temp file
    in the same directory, then a rename) and only when the content differs.
  - Before writing, checks that every certificate was issued by the next one in the chain and,
    with O(key_path), that the certificate matches the host's private key, so a mixed-up
    certificate never replaces a working one.
  - Whether a certificate is due is decided by M(island_cert_sign); this module only installs what
    it returned.
version_added: "1.0.0"
author: Island installer team
requirements:
  - cryptography >= 3.4 on the managed host
options:
  path:
    description: Certificate file to write (leaf then chain, PEM).
    type: path
    required: true
  certificate:
    description: PEM of the leaf certificate (RV(island_cert_sign#module:certificate)).
    type: str
    required: true
  chain:
    description: PEM certificates that follow the leaf (RV(island_cert_sign#module:chain)).
    type: list
    elements: str
    default: []
  key_path:
    description: The private key made by M(island_csr); the certificate must match it.
    type: path
  owner:
    description: User that owns the file, name or uid.
    type: str
  group:
    description: Group of the file, name or gid.
    type: str
  mode:
    description: Octal mode (a quoted string such as V("0600"), or an octal YAML number) of the file.
    type: raw
    default: "0644"
  record_dir:
    description:
      - A directory (made 0755 when absent) where a one-line file records O(path) once it is
        installed, so island-metrics watches its expiry (see M(island_csr)). A new record is a change.
    type: path
attributes:
  check_mode:
    support: full
    description: Runs the same checks and comparison, writes nothing.
  diff_mode:
    support: full
    description: Subject, issuer, SANs and expiry of the installed certificate before and after.
notes:
  - In check mode M(island_cert_sign) returns the current certificate, which may be empty when the
    host has none yet; skip this module then (see EXAMPLES).
seealso:
  - module: island_cert_sign
  - module: island_csr
"""

EXAMPLES = r"""
- name: Gitea serves the island certificate
  island_cert:
    path: /etc/gitea/tls/gitea.crt
    certificate: "{{ gitea_cert_signed.certificate }}"
    chain: "{{ gitea_cert_signed.chain }}"
    key_path: /etc/gitea/tls/gitea.key
    owner: gitea
    group: gitea
  when: gitea_cert_signed.certificate | length > 0
  notify: Restart gitea
"""

RETURN = r"""
reason:
  description: Why the file was (or would be) written or its attributes fixed; null if unchanged.
  returned: always
  type: str
  sample: certificate content differs
subject_alt_names:
  description: SANs of the installed certificate.
  returned: always
  type: list
  elements: str
not_after:
  description: Expiry (UTC) of the installed certificate.
  returned: always
  type: str
"""


from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_argspec import (
    file_attributes,
)
from ansible_collections.island.installer.plugins.module_utils.island_io import (
    FileAttributeError,
    parse_mode,
    resolve_owner,
)
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module
from ansible_collections.island.installer.plugins.module_utils.island_pki import (
    PkiError,
    missing_cryptography,
)
from ansible_collections.island.installer.plugins.module_utils.island_pki_host import (
    ensure_certificate_file,
    ensure_certificate_record,
)


def run(module):
    p = module.params
    uid, gid = resolve_owner(p["owner"], p["group"])
    result = ensure_certificate_file(
        p["path"],
        p["certificate"],
        chain=p["chain"],
        key_path=p["key_path"],
        mode=parse_mode(p["mode"], 0o644),
        uid=uid,
        gid=gid,
        check_mode=module.check_mode,
    )
    reasons = [result.reason] if result.reason else []
    reasons += [f"{attr} {old} -> {new}" for attr, (old, new) in sorted(result.attribute_changes.items())]
    record = None
    if p["record_dir"] and not module.check_mode:
        record = ensure_certificate_record(p["record_dir"], p["path"])
    reasons += [f"record {record} written"] if record else []
    return {
        "changed": result.changed or bool(record),
        "reason": "; ".join(reasons) or None,
        "subject_alt_names": result.after["subject_alt_names"],
        "not_after": result.after["not_after"],
        "diff": {"before": result.before, "after": result.after},
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "certificate": {"type": "str", "required": True},
            "chain": {"type": "list", "elements": "str", "default": []},
            "key_path": {"type": "path"},
            "record_dir": {"type": "path"},
        }
        | file_attributes("0644"),
        supports_check_mode=True,
    )
    run_module(module, run, (PkiError, FileAttributeError), missing=missing_cryptography())


if __name__ == "__main__":
    main()
