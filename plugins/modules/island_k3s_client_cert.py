#!/usr/bin/python
# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin Ansible module over module_utils/island_k3s_client_cert: a k3s client certificate for a CSR."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_k3s_client_cert
short_description: Sign a CSR made on another host with k3s's client CA, on a k3s server
description:
  - Runs on a k3s server (C(delegate_to) the first one), where k3s keeps its client CA
    (C(<data-dir>/server/tls/client-ca.crt) and C(.key)); the CA key is read there and never leaves it.
  - Kubernetes takes the certificate's common name as the user and each organization as a group.
    With O(organization) C(system:monitoring) the user may GET C(/metrics), C(/healthz), C(/livez),
    C(/readyz) and nothing else, through Kubernetes's bootstrap RBAC policy, so no RBAC object is made.
  - The subject is O(common_name) and O(organization), whatever the CSR asks. The certificate is
    for client authentication only.
  - O(current) is kept while the CA signed it, it names the CSR's key and the subject, and it does
    not expire within O(renew_before_days); otherwise a new certificate is returned. The module
    writes nothing; the caller stores RV(certificate) where its client reads it.
version_added: "0.11.0"
author: island installer contributors
options:
  csr:
    description: PEM of the client's CSR, made on the client's host.
    type: str
    required: true
  current:
    description: PEM of the client's current certificate, if it has one.
    type: str
    default: ""
  common_name:
    description: The user name the certificate carries.
    type: str
    required: true
  organization:
    description: The group the certificate carries.
    type: str
    default: system:monitoring
  ca_cert_path:
    description: k3s's client CA certificate on this server.
    type: path
    default: /var/lib/rancher/k3s/server/tls/client-ca.crt
  ca_key_path:
    description: k3s's client CA key on this server.
    type: path
    default: /var/lib/rancher/k3s/server/tls/client-ca.key
  days:
    description: Lifetime of a new certificate in days.
    type: int
    default: 365
  renew_before_days:
    description: Sign a new certificate when the current one expires within this many days.
    type: int
    default: 30
requirements:
  - python cryptography on the k3s server
notes:
  - Supports check mode (it signs nothing it would not return).
"""

EXAMPLES = r"""
- name: Prometheus's client certificate for the API server's /metrics is signed by k3s's client CA
  island_k3s_client_cert:
    csr: "{{ _prometheus_csr.csr }}"
    current: "{{ _prometheus_current_certificate | default('') }}"
    common_name: island-prometheus
  delegate_to: "{{ island.components.k3s.members.servers[0] }}"
  run_once: true
  register: _prometheus_k3s_client
"""

RETURN = r"""
certificate:
  description: PEM of the certificate (the current one when it serves).
  returned: success
  type: str
not_after:
  description: When the certificate expires (ISO 8601).
  returned: success
  type: str
reason:
  description: Why a new certificate was signed; empty when the current one serves.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_k3s_client_cert import (
    CRYPTOGRAPHY_ERROR,
    ClientCertError,
    converge,
)
from ansible_collections.island.installer.plugins.module_utils.island_module import (
    missing_library,
    run_module,
)

ARGUMENT_SPEC = {
    "csr": {"type": "str", "required": True},
    "current": {"type": "str", "default": ""},
    "common_name": {"type": "str", "required": True},
    "organization": {"type": "str", "default": "system:monitoring"},
    "ca_cert_path": {"type": "path", "default": "/var/lib/rancher/k3s/server/tls/client-ca.crt"},
    "ca_key_path": {
        "type": "path",
        "default": "/var/lib/rancher/k3s/server/tls/client-ca.key",
        "no_log": False,
    },
    "days": {"type": "int", "default": 365},
    "renew_before_days": {"type": "int", "default": 30},
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, run, ClientCertError, missing=missing_library("cryptography", CRYPTOGRAPHY_ERROR))


def _read(path, what):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ClientCertError(
            f"{what} {path} cannot be read ({exc.strerror}): is this host a k3s server?"
        ) from exc


def run(module):
    params = module.params
    return converge(
        params["csr"],
        _read(params["ca_cert_path"], "k3s's client CA certificate"),
        _read(params["ca_key_path"], "k3s's client CA key"),
        params["common_name"],
        params["organization"],
        current_pem=params["current"],
        days=params["days"],
        renew_before_days=params["renew_before_days"],
    )


if __name__ == "__main__":
    main()
