#!/usr/bin/python
"""Ansible module island_ca: the island's root and intermediate CA on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
module: island_ca
short_description: Keep the island's name-constrained root and intermediate CA in a directory
description:
  - Runs on the controller. Makes sure O(path) holds a root CA and an intermediate CA that signs
    the island's service certificates, creating what is missing and never replacing anything that
    exists.
  - Both CA certificates carry critical name constraints limiting them to O(domains) (DNS subtrees)
    and O(ip_ranges) (IP subtrees). With no O(ip_ranges), all IP addresses are excluded. A leaked
    island CA therefore cannot impersonate anything outside the island.
  - Keys are ECDSA P-256 by default, encrypted at rest with O(passphrase) (PEM, PKCS#8, PBES2 with
    scrypt N=2^14 r=8 p=5 and AES-256-CBC, readable by openssl) and stored 0600; every file is
    written atomically.
  - An existing key under a weaker encryption (an older installer's PBKDF2 at 2,048 iterations,
    PBKDF2 under 600,000 iterations, weaker scrypt, or OpenSSL's traditional PEM encryption) is
    re-encrypted with the same passphrase and reported; the key and the certificates stay.
  - Everything that exists is read and checked before anything is written, so a wrong passphrase,
    a corrupt or half-present CA, or a constraint change fails with a message naming the file and
    what to do, and leaves the directory untouched.
  - Rotation is declarative. Raising O(intermediate_generation) issues a new intermediate under the
    same root (certificates then reissue, because their issuer changed). O(next_root_generation)
    creates the next root and adds it to the trust bundle; switching O(root_generation) to it
    makes it sign; O(retired_root_generations) drops old roots from the trust bundle. See
    C(docs/pki.md).
  - Also keeps C(trust-bundle.pem) in O(path), listing every root that is not retired.
version_added: "1.0.0"
author: Island installer team
requirements:
  - cryptography >= 3.4 on the controller
options:
  path:
    description: Directory of the CA (the island's C(island_pki_dir)); created 0700 if missing.
    type: path
    required: true
  passphrase:
    description:
      - Passphrase that encrypts the CA private keys at rest. Never logged.
      - The same passphrase is needed by M(island_cert_sign).
    type: str
    required: true
  domains:
    description: DNS domains of the island; the CA may sign these names and any name below them.
    type: list
    elements: str
    required: true
  ip_ranges:
    description:
      - IP networks (CIDR) the CA may sign addresses in. Empty means no IP address may be signed.
    type: list
    elements: str
    default: []
  name:
    description: Name used in the CA subjects, for example V(Island) gives C(Island Root CA R1).
    type: str
    default: Island
  organization:
    description: Organization (O) of the CA subjects; defaults to O(name).
    type: str
  key_type:
    description: Key type of new CA keys. Existing keys are kept.
    type: str
    choices: [ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096]
    default: ec-p256
  root_days:
    description: Lifetime of a new root CA in days.
    type: int
    default: 3650
  intermediate_days:
    description: Lifetime of a new intermediate CA in days (capped at the root's expiry).
    type: int
    default: 1095
  root_generation:
    description: Generation number of the root that signs the intermediate (files C(root-r<N>.*)).
    type: int
    default: 1
  intermediate_generation:
    description:
      - Generation number of the intermediate under O(root_generation) that signs certificates
        (files C(intermediate-r<N>-i<M>.*)). Raise it to rotate the intermediate.
    type: int
    default: 1
  next_root_generation:
    description:
      - A root to create and trust, but not yet sign with. The first step of a root roll.
    type: int
  retired_root_generations:
    description: Roots that are no longer trusted; they are left out of the trust bundle.
    type: list
    elements: int
    default: []
  warning_days:
    description:
      - Warn when the intermediate expires within this many days (the root is flagged a year
        ahead).
    type: int
    default: 90
attributes:
  check_mode:
    support: full
    description: Runs the same checks and reports what would be created without writing.
  diff_mode:
    support: full
    description: Shows the CA generations and trusted roots before and after.
notes:
  - Name constraints of an existing root never change; to add a domain, roll to a new root.
seealso:
  - module: island_cert_sign
  - module: island_csr
  - module: island_cert
"""

EXAMPLES = r"""
- name: Island CA exists, constrained to the island's names
  island_ca:
    path: "{{ island_pki_dir }}"
    passphrase: "{{ island_pki_passphrase }}"
    domains: ["{{ island_domain }}"]
    ip_ranges: [10.20.0.0/16]
  delegate_to: localhost
  run_once: true
  no_log: true
  register: island_ca_result

- name: Rotate the intermediate (certificates reissue on the next run of island_cert_sign)
  island_ca:
    path: "{{ island_pki_dir }}"
    passphrase: "{{ island_pki_passphrase }}"
    domains: ["{{ island_domain }}"]
    intermediate_generation: 2
  delegate_to: localhost
  run_once: true

- name: Root roll, step 1 of 3 - create and trust root R2, keep signing under R1
  island_ca:
    path: "{{ island_pki_dir }}"
    passphrase: "{{ island_pki_passphrase }}"
    domains: ["{{ island_domain }}"]
    next_root_generation: 2
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
changes:
  description: What was (or in check mode would be) created or fixed.
  returned: always
  type: list
  elements: str
  sample: ["created root CA R1", "created intermediate CA R1-I1"]
reason:
  description: The changes joined in one sentence, or null when nothing changed.
  returned: always
  type: str
  sample: created intermediate CA R1-I2
root_certificate:
  description: PEM of the root CA that signs the intermediate.
  returned: always
  type: str
root_cert_path:
  description: File of the root CA certificate.
  returned: always
  type: str
  sample: /srv/island/pki/root-r1.crt
intermediate_certificate:
  description: PEM of the intermediate CA that signs certificates (the chain to send with them).
  returned: always
  type: str
intermediate_cert_path:
  description:
    - File of the intermediate certificate.
    - Pass it to M(island_cert_sign) as O(island_cert_sign#module:ca_cert_path).
  returned: always
  type: str
  sample: /srv/island/pki/intermediate-r1-i1.crt
intermediate_key_path:
  description:
    - File of the encrypted intermediate key.
    - Pass it to M(island_cert_sign) as O(island_cert_sign#module:ca_key_path).
  returned: always
  type: str
  sample: /srv/island/pki/intermediate-r1-i1.key
intermediate_not_after:
  description: Expiry of the intermediate (UTC).
  returned: always
  type: str
  sample: "2029-11-21T12:00:00Z"
root_not_after:
  description: Expiry of the signing root (UTC).
  returned: always
  type: str
  sample: "2036-11-19T12:00:00Z"
trust_bundle:
  description: PEM of every root that is not retired, oldest first; what every node must trust.
  returned: always
  type: str
trust_bundle_path:
  description: File holding RV(trust_bundle).
  returned: always
  type: str
  sample: /srv/island/pki/trust-bundle.pem
trusted_root_generations:
  description: Generation numbers of the roots in RV(trust_bundle).
  returned: always
  type: list
  elements: int
  sample: [1, 2]
name_constraints:
  description: The permitted DNS domains and IP ranges the CA certificates carry.
  returned: always
  type: dict
  sample: {"domains": ["island.internal"], "ip_ranges": ["10.20.0.0/16"]}
"""


from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module
from ansible_collections.island.installer.plugins.module_utils.island_pki import (
    KEY_TYPES,
    PkiError,
    cert_not_after,
    cert_pem,
    missing_cryptography,
)
from ansible_collections.island.installer.plugins.module_utils.island_pki_ca import CaSpec, ensure_ca


def _state(result, files):
    return {
        "files": files,
        "signing_root": result.root.cert.subject.rfc4514_string(),
        "signing_intermediate": result.intermediate.cert.subject.rfc4514_string(),
        "trusted_root_generations": result.trusted_generations,
    }


def run(module):
    p = module.params
    spec = CaSpec(**p)  # the module's options are CaSpec's parameters, name for name
    result = ensure_ca(spec, check_mode=module.check_mode)
    for warning in result.warnings:
        module.warn(warning)
    return {
        "changed": result.changed,
        "changes": result.changes,
        "reason": "; ".join(result.changes) or None,
        "root_certificate": cert_pem(result.root.cert),
        "root_cert_path": result.root.cert_path,
        "root_not_after": cert_not_after(result.root.cert).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "intermediate_certificate": cert_pem(result.intermediate.cert),
        "intermediate_cert_path": result.intermediate.cert_path,
        "intermediate_key_path": result.intermediate.key_path,
        "intermediate_not_after": cert_not_after(result.intermediate.cert).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "trust_bundle": result.trust_bundle,
        "trust_bundle_path": result.trust_bundle_path,
        "trusted_root_generations": result.trusted_generations,
        "name_constraints": {
            "domains": list(spec.constraints.domains),
            "ip_ranges": [str(n) for n in spec.constraints.ip_ranges],
        },
        "diff": {"before": {"files": result.files_before}, "after": _state(result, result.files_after())},
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "passphrase": {"type": "str", "required": True, "no_log": True},
            "domains": {"type": "list", "elements": "str", "required": True},
            "ip_ranges": {"type": "list", "elements": "str", "default": []},
            "name": {"type": "str", "default": "Island"},
            "organization": {"type": "str"},
            "key_type": {"type": "str", "choices": list(KEY_TYPES), "default": "ec-p256"},
            "root_days": {"type": "int", "default": 3650},
            "intermediate_days": {"type": "int", "default": 1095},
            "root_generation": {"type": "int", "default": 1},
            "intermediate_generation": {"type": "int", "default": 1},
            "next_root_generation": {"type": "int"},
            "retired_root_generations": {"type": "list", "elements": "int", "default": []},
            "warning_days": {"type": "int", "default": 90},
        },
        supports_check_mode=True,
    )
    run_module(module, run, PkiError, missing=missing_cryptography())


if __name__ == "__main__":
    main()
