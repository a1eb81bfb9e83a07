#!/usr/bin/python
# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the action island_cert_issue (plugins/action/island_cert_issue.py), which does
the work: it runs island_csr and island_cert on the host and signs on the controller in between."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_cert_issue
short_description: A service's island certificate current on the host, in one task
description:
  - The three steps of the pki role's C(issue) entry point in one task, so that each certificate
    of each host costs the run one task instead of five.
  - On the host (module M(island_csr)) the key, made there and never leaving it, and a CSR, with the
    current certificate read back.
  - On the controller, inside the task's own process, the island CA judges the current certificate
    and signs the CSR only when it must be issued again (near expiry, other names or usages, another
    issuing CA), as M(island_cert_sign) does. The passphrase-protected CA key is decrypted only
    then, and never leaves the controller.
  - On the host (module M(island_cert)) the certificate and its chain installed, owner and mode set.
  - The certificate's path is recorded on the host under /var/lib/island/certificates (the
    O(island_csr#module:record_dir) of M(island_csr)), where island-metrics finds every island
    certificate to watch.
  - Check mode runs the same steps and changes nothing. Put C(no_log) on the task (the CA passphrase
    passes through it) with C(failed_when) false, and show RV(msg) when RV(issue_failed);
    the pki role's issue.yml does.
version_added: "0.14.0"
author: island installer contributors
options:
  name:
    description: Base name of the key and certificate files (<name>.key, <name>.crt) in O(dir).
    type: str
    required: true
  dir:
    description: Directory of the key and certificate on the host (made root-owned, C(0750)).
    type: path
    required: true
  subject_alt_names:
    description: The certificate's names, as C(DNS:<name>) and C(IP:<address>).
    type: list
    elements: str
    required: true
  owner:
    description: Owner of the key and certificate files.
    type: str
    required: true
  group:
    description: Group of the key, certificate and directory.
    type: str
    required: true
  key_mode:
    description: Mode of the key file.
    type: str
    default: "0640"
  usage:
    description: Extended key usages (C(server_auth), C(client_auth)).
    type: list
    elements: str
    default: [server_auth]
  days:
    description: Lifetime of a new certificate.
    type: int
    default: 365
  renew_before_days:
    description: Issue again when the certificate expires within this many days.
    type: int
    default: 30
  rotate_with_renewal:
    description: A renewal for expiry also makes a new key (see M(island_csr)).
    type: bool
    default: false
  ca:
    description:
      - The signing CA as the pki role knows it (C(pki_ca)), on the controller -
        C(intermediate_cert_path), C(intermediate_key_path) and C(intermediate_certificate) (the
        predicted intermediate, for check mode on a fresh island).
    type: dict
    required: true
  ca_passphrase:
    description: Passphrase of the CA keys (never shown; see the description on C(no_log)).
    type: str
    required: true
notes:
  - Runs as an action plugin; the host side needs what M(island_csr) and M(island_cert) need.
"""

EXAMPLES = r"""
- name: The island certificate of the registry is current on the host
  island_cert_issue:
    name: registry
    dir: /etc/registry/tls
    subject_alt_names: ["DNS:registry.island.internal", "IP:10.77.0.10"]
    owner: root
    group: registry
    ca: "{{ pki_ca }}"
    ca_passphrase: "{{ pki_passphrase }}"
  register: registry_cert
  no_log: true
  failed_when: false
"""

RETURN = r"""
issue_failed:
  description: True when a step failed; RV(msg) says which and why (the task itself is
    C(failed_when) false so that its C(no_log) does not hide the reason).
  returned: always
  type: bool
msg:
  description: What happened, or which step failed and why, naming the host and the certificate.
  returned: always
  type: str
reason:
  description: Why the certificate is (or in check mode would be) issued again; null when not.
  returned: always
  type: str
certificate_changed:
  description: Whether the certificate file on the host changed (or would).
  returned: always
  type: bool
key:
  description: What island_csr reported about the key and its directory (C(changed), C(reason)).
  returned: always
  type: dict
not_after:
  description: Expiry (UTC) of the certificate the host holds after this task.
  returned: when known
  type: str
diff:
  description: The certificate's properties before and after, as island_cert_sign reports them.
  returned: always
  type: dict
"""


def main():
    raise SystemExit("island_cert_issue runs as an action plugin (plugins/action/island_cert_issue.py)")


if __name__ == "__main__":
    main()
