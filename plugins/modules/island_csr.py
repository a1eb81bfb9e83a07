#!/usr/bin/python
"""Ansible module island_csr: a service's private key and CSR, made on the host that uses them."""

from __future__ import annotations

DOCUMENTATION = r"""
module: island_csr
short_description: Keep a service's private key on the host and return a CSR for the island CA
description:
  - Runs on the managed host. Makes sure the private key at O(path) exists (ECDSA P-256 by
    default), is mode O(mode) and owned by O(owner)/O(group), and returns a certificate signing
    request for O(subject_alt_names) made with it.
  - The private key never leaves the host; the module never returns it. Only the CSR (public) goes
    to the controller, where M(island_cert_sign) signs it with the island CA.
  - A key is made only when there is none or its type differs from O(key_type). A key file that
    cannot be read as an unencrypted PEM private key is an error, never silently replaced.
  - The key is written atomically with its final mode and owner already set.
  - The CSR is made anew on every run (a signature is randomised); that is not a change. Whether a
    certificate must be issued is decided once, by M(island_cert_sign).
version_added: "1.0.0"
author: Island installer team
requirements:
  - cryptography >= 3.4 on the managed host (Debian 12's 38 and Debian 13's 43 qualify)
options:
  path:
    description: Private key file; its directory must exist unless O(directory) is given.
    type: path
    required: true
  directory:
    description:
      - The owner, group and mode of the key's directory, which is created (or set to them) first.
        Without it the directory must exist and is left as it is.
    type: dict
    suboptions:
      owner: {description: Owner of the directory., type: str}
      group: {description: Group of the directory., type: str}
      mode: {description: Octal mode of the directory (for example V("0750"))., type: raw}
  subject_alt_names:
    description:
      - Names the certificate is for, written V(DNS:<name>) or V(IP:<address>).
      - The first DNS name becomes the subject common name.
    type: list
    elements: str
    required: true
  key_type:
    description: Type of a new key; an existing key of another type is replaced.
    type: str
    choices: [ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096]
    default: ec-p256
  owner:
    description: User that owns the key file (the service user), name or uid.
    type: str
  group:
    description: Group of the key file, name or gid.
    type: str
  mode:
    description: Octal mode (a quoted string such as V("0600"), or an octal YAML number) of the key file.
    type: raw
    default: "0600"
  rotate_with_renewal:
    description:
      - Make a new private key when the certificate at O(certificate_path) (the certificate of
        this key) expires within O(renew_before_days), and return the CSR of the new key, so the
        renewal also rotates the key.
      - The new key waits beside the current one as C(<path>.next) (same mode and owner) until
        M(island_cert) installs the certificate issued for it, which moves it into place first; the
        service keeps its current key and certificate until then, and a rerun keeps the same next
        key. Without rotation due, a leftover C(<path>.next) is removed.
    type: bool
    default: false
  certificate_path:
    description:
      - The certificate of this key, read for O(rotate_with_renewal) and returned as RV(certificate),
        for M(island_cert_sign) to decide whether it is still good.
    type: path
  record_dir:
    description:
      - A directory (made 0755 when absent) where a one-line file records O(certificate_path) when
        that certificate exists, so island-metrics watches its expiry on the host (M(island_cert)
        records a certificate it installs). A new record is a change.
    type: path
  renew_before_days:
    description:
      - With O(rotate_with_renewal), how many days before its expiry the certificate is renewed
        with a new key; give it the value of O(island_cert_sign#module:renew_before_days).
    type: int
    default: 30
attributes:
  check_mode:
    support: full
    description:
      - Nothing is written. With no key yet, the CSR comes from a throw-away key, so that
        M(island_cert_sign) in check mode still predicts a new certificate.
  diff_mode:
    support: full
    description: Shows the key's type, mode and owner before and after.
seealso:
  - module: island_cert_sign
  - module: island_cert
"""

EXAMPLES = r"""
- name: Gitea has a private key and a CSR for its names
  island_csr:
    path: /etc/gitea/tls/gitea.key
    subject_alt_names:
      - "DNS:git.{{ island_domain }}"
      - "IP:{{ ansible_default_ipv4.address }}"
    owner: gitea
    group: gitea
  register: gitea_csr
"""

RETURN = r"""
csr:
  description: PEM of the certificate signing request; pass it to M(island_cert_sign).
  returned: always
  type: str
  sample: "-----BEGIN CERTIFICATE REQUEST-----\n..."
key_created:
  description: Whether a new private key was (or in check mode would be) made.
  returned: always
  type: bool
key_rotation:
  description:
    - With O(rotate_with_renewal), the next key C(<path>.next) - V(created) (the CSR is its own),
      V(kept) (made by an earlier run, still waiting for its certificate), or V(removed) (left over,
      no rotation due); null otherwise.
  returned: always
  type: str
reason:
  description: Why the key was made or its file attributes fixed; null when nothing changed.
  returned: always
  type: str
  sample: no private key yet
public_key_sha256:
  description: SHA-256 of the public key (DER SubjectPublicKeyInfo), to match certificates to keys.
  returned: always
  type: str
certificate:
  description: The text of O(certificate_path) (public), null when there is none yet.
  returned: when O(certificate_path) is given
  type: str
"""

import hashlib
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_argspec import (
    file_attributes,
)
from ansible_collections.island.installer.plugins.module_utils.island_install import InstallError
from ansible_collections.island.installer.plugins.module_utils.island_install import converge as install
from ansible_collections.island.installer.plugins.module_utils.island_io import (
    FileAttributeError,
    parse_mode,
    read_regular,
    resolve_owner,
)
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module
from ansible_collections.island.installer.plugins.module_utils.island_pki import (
    KEY_TYPES,
    PkiError,
    key_type_of,
    load_csr,
    missing_cryptography,
    public_key_der,
)
from ansible_collections.island.installer.plugins.module_utils.island_pki_host import (
    ensure_certificate_record,
    ensure_key_and_csr,
    load_host_key,
)


def _key_state(path):
    if not os.path.exists(path):
        return {}
    st = os.stat(path)
    key = load_host_key(path)
    return {
        "key_type": key_type_of(key),
        "mode": "%04o" % (st.st_mode & 0o7777),
        "uid": st.st_uid,
        "gid": st.st_gid,
    }


CERTIFICATE_LIMIT = 1024 * 1024  # a certificate with its chain is a few kilobytes


def run(module):
    p = module.params
    mode = parse_mode(p["mode"], 0o600)
    uid, gid = resolve_owner(p["owner"], p["group"])
    # The key's directory first (island_install), in this same call.
    placed = install(
        [{"path": os.path.dirname(p["path"]), **p["directory"]}] if p["directory"] else [],
        [],
        [],
        check_mode=module.check_mode,
    )
    # A certificate already in place (an island converged before records existed) gets its record
    # here; a new one gets it from island_cert, once it is installed.
    record = None
    if p["record_dir"] and p["certificate_path"]:
        record = ensure_certificate_record(p["record_dir"], p["certificate_path"], module.check_mode)
    before = _key_state(p["path"])
    result = ensure_key_and_csr(
        p["path"],
        p["subject_alt_names"],
        key_type=p["key_type"],
        mode=mode,
        uid=uid,
        gid=gid,
        check_mode=module.check_mode,
        rotate_certificate_path=p["certificate_path"] if p["rotate_with_renewal"] else None,
        renew_before_days=p["renew_before_days"],
    )
    reasons = [f"directory {d['path']}: {d['reason']}" for d in placed["directories"] if d["changed"]]
    reasons += [f"record {record} written"] if record else []
    reasons += [result.reason] if result.reason else []
    if result.pending == "created":
        reasons.append(f"new key {p['path']}.next waits for its certificate")
    elif result.pending == "removed":
        reasons.append(f"leftover next key {p['path']}.next removed (no rotation due)")
    reasons += [f"{attr} {old} -> {new}" for attr, (old, new) in sorted(result.attribute_changes.items())]
    after = dict(before)
    if result.key_created:
        after = {"key_type": p["key_type"], "mode": f"{mode:04o}"}
    for attr, (_old, new) in result.attribute_changes.items():
        after[{"owner": "uid", "group": "gid"}.get(attr, attr)] = new
    csr = load_csr(result.csr_pem, "CSR")
    outcome = {
        "changed": result.changed or placed["changed"] or bool(record),
        "csr": result.csr_pem,
        "key_created": result.key_created,
        "key_rotation": result.pending,
        "reason": "; ".join(reasons) or None,
        "public_key_sha256": hashlib.sha256(public_key_der(csr.public_key())).hexdigest(),
        "diff": {"before": before, "after": after},
    }
    if p["certificate_path"]:
        outcome["certificate"] = _certificate_text(p["certificate_path"])
    return outcome


def _certificate_text(path):
    """The certificate file's text; None when absent, "" when unreadable (the CA then sees no good
    certificate and issues one, as for a missing one)."""
    try:
        return read_regular(path, CERTIFICATE_LIMIT, follow_symlinks=True).decode("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return ""


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "directory": {"type": "dict", "options": file_attributes(None)},
            "subject_alt_names": {"type": "list", "elements": "str", "required": True},
            "key_type": {"type": "str", "choices": list(KEY_TYPES), "default": "ec-p256"},
            "rotate_with_renewal": {"type": "bool", "default": False},
            "certificate_path": {"type": "path"},
            "record_dir": {"type": "path"},
            "renew_before_days": {"type": "int", "default": 30},
        }
        | file_attributes("0600"),
        required_if=[("rotate_with_renewal", True, ("certificate_path",))],
        supports_check_mode=True,
    )
    run_module(module, run, (PkiError, FileAttributeError, InstallError), missing=missing_cryptography())


if __name__ == "__main__":
    main()
