#!/usr/bin/python
# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin Ansible module over module_utils/island_minio_prometheus: MinIO's Prometheus bearer token."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_minio_prometheus_token
short_description: The bearer token Prometheus scrapes MinIO's metrics with, kept 0600 on the controller
description:
  - "Runs on the controller: C(delegate_to: localhost), C(run_once: true), C(no_log: true)."
  - Writes to O(path) the JWT that C(mc admin prometheus generate) makes (HS512; claims C(exp) 100
    years ahead, C(sub) the access key, C(iss) C(prometheus)), signed with the account's secret
    key, which MinIO checks on C(/minio/v2/metrics/cluster) (RELEASE.2025-09-07T16-13-09Z,
    cmd/jwt.go and cmd/metrics.go) unless C(MINIO_PROMETHEUS_AUTH_TYPE=public).
  - A token already there is kept while it verifies with O(secret_key), names O(access_key), has
    the issuer and does not expire within O(renew_days); otherwise it is replaced (atomically,
    mode 0600). The token is never returned.
version_added: "0.11.0"
author: island installer contributors
options:
  path:
    description: The token file on the controller (in island_secrets_dir).
    type: path
    required: true
  access_key:
    description: The MinIO account the token is for (the root user, or a user allowed admin:Prometheus).
    type: str
    required: true
  secret_key:
    description: That account's secret key, which signs the token.
    type: str
    required: true
    no_log: true
  renew_days:
    description: Replace a token that expires within this many days.
    type: int
    default: 365
notes:
  - Supports check mode.
"""

EXAMPLES = r"""
- name: Prometheus has a bearer token for MinIO's metrics
  island_minio_prometheus_token:
    path: "{{ island_secrets_dir }}/minio-prometheus-token"
    access_key: "{{ minio_root_user }}"
    secret_key: "{{ minio_root_secret }}"
  delegate_to: localhost
  run_once: true
  no_log: true
"""

RETURN = r"""
reason:
  description: Why the token was (or would be) written; empty when nothing changed.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_minio_prometheus import (
    PrometheusTokenError,
    converge,
)
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module

ARGUMENT_SPEC = {
    "path": {"type": "path", "required": True},
    "access_key": {"type": "str", "required": True},
    "secret_key": {"type": "str", "required": True, "no_log": True},
    "renew_days": {"type": "int", "default": 365},
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, run, PrometheusTokenError)


def run(module):
    params = module.params
    return converge(
        params["path"],
        params["access_key"],
        params["secret_key"],
        renew_days=params["renew_days"],
        check_mode=module.check_mode,
    )


if __name__ == "__main__":
    main()
