#!/usr/bin/python
"""Ansible module island_cert_sign: the controller signs a host's CSR with the island CA, if needed."""

from __future__ import annotations

DOCUMENTATION = r"""
module: island_cert_sign
short_description: Sign a host's CSR with the island intermediate CA when the certificate needs it
description:
  - Runs on the controller (with C(delegate_to) V(localhost)). Takes the CSR that M(island_csr) made on a
    host and the host's current certificate, and decides, in one place, whether a certificate must
    be issued. If so, signs one with the intermediate CA kept by M(island_ca).
  - "Every name is checked against the intermediate's own name constraints before signing: a name
    outside the island is refused with an error naming it, and nothing is signed."
  - "A certificate is issued when there is none, when it expires within O(renew_before_days), when
    its SANs differ, when its key usage or extended key usage differ, when its issuer is not the
    current intermediate (after a rotation), or when it does not match the host's key. RV(reason)
    says which."
  - The certificate is a server certificate (and a client certificate with V(client_auth) in
    O(usage)) for exactly the SANs asked, CN the first DNS name, valid O(days) days but never past
    the intermediate's expiry.
  - Nothing is written anywhere; install the result on the host with M(island_cert).
version_added: "1.0.0"
author: Island installer team
requirements:
  - cryptography >= 3.4 on the controller
options:
  csr:
    description: PEM of the host's CSR (RV(island_csr#module:csr)).
    type: str
    required: true
  ca_cert_path:
    description: Intermediate CA certificate (RV(island_ca#module:intermediate_cert_path)).
    type: path
    required: true
  ca_key_path:
    description: Encrypted intermediate CA key (RV(island_ca#module:intermediate_key_path)).
    type: path
    required: true
  ca_passphrase:
    description: Passphrase of the CA keys, as given to M(island_ca). Never logged.
    type: str
    required: true
  ca_certificate:
    description:
      - PEM of the intermediate (RV(island_ca#module:intermediate_certificate)). Used only in check
        mode when the CA files do not exist yet (a fresh island), so that check mode still predicts
        every certificate.
    type: str
  subject_alt_names:
    description:
      - Names to certify, V(DNS:<name>) or V(IP:<address>). When empty, the CSR's own names are
        used. Either way, every name must lie inside the CA's name constraints.
    type: list
    elements: str
    default: []
  current_certificate:
    description:
      - PEM of the host's current certificate file (leaf first; a chain after it is ignored), for
        example from C(slurp). Empty when the host has none.
    type: str
    default: ""
  usage:
    description: Extended key usages of the certificate.
    type: list
    elements: str
    choices: [server_auth, client_auth]
    default: [server_auth]
  days:
    description: Lifetime of a new certificate in days.
    type: int
    default: 365
  renew_before_days:
    description: Issue a new certificate when the current one expires within this many days.
    type: int
    default: 30
  requester:
    description: Who asks (usually C(inventory_hostname) and the service); named in error messages.
    type: str
    default: CSR
attributes:
  check_mode:
    support: full
    description:
      - Runs the same decision, signs nothing and returns the current certificate; RV(reason) and
        the diff predict the new subject, SANs and expiry.
  diff_mode:
    support: full
    description: Subject, issuer, SANs, usages and expiry before and after.
seealso:
  - module: island_ca
  - module: island_csr
  - module: island_cert
"""

EXAMPLES = r"""
- name: Read the current Gitea certificate, if any
  ansible.builtin.slurp:
    src: /etc/gitea/tls/gitea.crt
  register: gitea_cert_current
  failed_when: false

- name: The island CA has signed Gitea's certificate
  island_cert_sign:
    csr: "{{ gitea_csr.csr }}"
    current_certificate: "{{ (gitea_cert_current.content | default('')) | b64decode }}"
    ca_cert_path: "{{ island_ca_result.intermediate_cert_path }}"
    ca_key_path: "{{ island_ca_result.intermediate_key_path }}"
    ca_certificate: "{{ island_ca_result.intermediate_certificate }}"
    ca_passphrase: "{{ island_pki_passphrase }}"
    subject_alt_names: ["DNS:git.{{ island_domain }}"]
    requester: "{{ inventory_hostname }} gitea"
  delegate_to: localhost
  register: gitea_cert_signed
"""

RETURN = r"""
reason:
  description: Why a certificate is (or in check mode would be) issued; null when none is needed.
  returned: always
  type: str
  sample: "certificate expires in 12 days (threshold 30); SAN set differs: +dns:git.island.internal"
certificate:
  description:
    - PEM of the certificate to install, the new one or, when nothing changed, the current one.
    - In check mode the current one (empty if the host has none).
  returned: always
  type: str
chain:
  description:
    - PEM certificates to send after it (the intermediate that issued it). The root is not included.
    - In check mode, when a certificate would be issued, the chain the host's file already has.
  returned: always
  type: list
  elements: str
subject_alt_names:
  description: SANs of the certificate, as C(dns:<name>) and C(ip:<address>).
  returned: always
  type: list
  elements: str
  sample: ["dns:git.island.internal", "ip:10.20.0.5"]
not_after:
  description: Expiry (UTC) of the returned certificate, or the predicted one in check mode.
  returned: when there is a certificate or one would be issued
  type: str
  sample: "2027-11-21T12:00:00Z"
serial_number:
  description: Serial number (hex) of the returned certificate.
  returned: when a certificate is returned
  type: str
"""


from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module
from ansible_collections.island.installer.plugins.module_utils.island_pki import (
    USAGES,
    PkiError,
    missing_cryptography,
)
from ansible_collections.island.installer.plugins.module_utils.island_pki_sign import sign_for_host

ARGUMENT_SPEC = {
    "csr": {"type": "str", "required": True},
    "ca_cert_path": {"type": "path", "required": True},
    "ca_key_path": {"type": "path", "required": True},
    "ca_passphrase": {"type": "str", "required": True, "no_log": True},
    "ca_certificate": {"type": "str"},
    "subject_alt_names": {"type": "list", "elements": "str", "default": []},
    "current_certificate": {"type": "str", "default": ""},
    "usage": {"type": "list", "elements": "str", "choices": list(USAGES), "default": ["server_auth"]},
    "days": {"type": "int", "default": 365},
    "renew_before_days": {"type": "int", "default": 30},
    "requester": {"type": "str", "default": "CSR"},
}


def run(module):
    p = module.params
    out, warnings = sign_for_host(
        p["csr"],
        ca_cert_path=p["ca_cert_path"],
        ca_key_path=p["ca_key_path"],
        ca_passphrase=p["ca_passphrase"],
        ca_certificate=p["ca_certificate"],
        subject_alt_names=p["subject_alt_names"],
        current_certificate=p["current_certificate"],
        usage=p["usage"],
        days=p["days"],
        renew_before_days=p["renew_before_days"],
        requester=p["requester"],
        check_mode=module.check_mode,
    )
    for warning in warnings:
        module.warn(warning)
    return out


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, run, PkiError, missing=missing_cryptography())


if __name__ == "__main__":
    main()
