#!/usr/bin/python
"""Ansible module: verify an island bundle (signature, lock, every file). Logic: module_utils."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_bundle_verify
short_description: Verify an island bundle's signature, lock file and every file's checksum
description:
  - Checks the detached OpenSSH signature C(island-bundle.yml.sig) of the bundle's lock file
    C(island-bundle.yml) against an C(allowed_signers) file configured in the island (never one
    carried by the bundle), in namespace C(island-bundle).
  - Then loads and validates the lock (schema version 1, see C(docs/bundle-format.md)), checks the
    size of every listed file, then its sha256, and refuses files present in the bundle but not
    listed.
  - The lock, its signature and the allowed signers are read only as regular files, opened without
    blocking (a FIFO is refused at once) and, in the bundle, without following a symbolic link. A
    lock with YAML anchors or aliases, or with a name the bundle builder would not have written
    (a git repository named C(../x), a refname C(git check-ref-format) refuses, a version with
    spaces), is refused. Messages escape non-printable characters (U+2028 included) and cut long
    values.
  - Every problem is collected and reported at once, naming each bad file with its expected and
    actual size or sha256.
  - Files are hashed on a thread pool, largest first, through a fixed-size buffer per worker, so
    memory use does not grow with file size.
  - Runs on the controller and never changes anything; it returns the parsed lock so that plays can
    use it as facts.
version_added: "1.0.0"
author:
  - Island installer team
options:
  bundle_dir:
    description:
      - Directory of the bundle on the controller (holds C(island-bundle.yml)).
    type: path
    required: true
  allowed_signers:
    description:
      - OpenSSH C(allowed_signers) file on the controller listing the keys trusted to sign
        bundles, as for C(ssh-keygen -Y verify). Lines may restrict C(namespaces="island-bundle")
        and carry C(valid-after)/C(valid-before). C(cert-authority) lines are refused.
      - Must not lie inside O(bundle_dir).
      - Required unless O(skip_signature=true).
    type: path
  skip_signature:
    description:
      - Do not check the signature. The result then proves only that the bundle matches its own
        lock, not who made it. The module warns and sets RV(signature_skipped).
    type: bool
    default: false
  workers:
    description:
      - Number of hashing threads. Defaults to the number of CPUs available to the controller.
    type: int
requirements:
  - PyYAML
  - cryptography (Ed25519 and OpenSSH key support)
notes:
  - "Run it on the controller with the Python that runs Ansible, for example with
    C(delegate_to: localhost) and C(ansible_python_interpreter: '{{ ansible_playbook_python }}')."
  - Operators can check the same signature by hand with C(ssh-keygen -Y verify -f allowed_signers
    -I <identity> -n island-bundle -s island-bundle.yml.sig < island-bundle.yml).
attributes:
  check_mode:
    support: full
    description: The module never changes anything; check mode runs the same verification.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
"""

EXAMPLES = r"""
- name: The bundle is signed by a trusted signer and every file matches the lock
  island_bundle_verify:
    bundle_dir: "{{ island_bundle_dir }}"
    allowed_signers: "{{ island_allowed_signers }}"
  register: island_bundle
  delegate_to: localhost
  run_once: true

- name: The bundle's components are known to the play
  ansible.builtin.set_fact:
    island_bundle_lock: "{{ island_bundle.lock }}"

- name: A bundle from a trusted disk is checked for integrity only (loudly reported)
  island_bundle_verify:
    bundle_dir: /media/bundle
    skip_signature: true
    workers: 4
"""

RETURN = r"""
lock:
  description: The parsed and validated lock file.
  returned: success
  type: dict
  sample:
    schema_version: 1
    bundle: {name: island, version: "2026.11.0", created: "2026-11-21T12:00:00Z"}
    files:
      - path: bin/k3s
        sha256: 591b3a35c9cda16b4f18cc85fe8a06feb067a7bb0eb54234a7b71f2598b260a5
        size: 4
    components: {k3s: {version: v1.31.2+k3s1, files: [bin/k3s]}}
    images: []
    git: []
bundle:
  description: Name, version and creation time of the bundle (the lock's C(bundle) section).
  returned: success
  type: dict
  sample: {name: island, version: "2026.11.0", created: "2026-11-21T12:00:00Z"}
lock_sha256:
  description:
    - The sha256 of the lock's bytes, the very bytes whose signature was checked and that were
      parsed. With C(bundle), it identifies the bundle in the records of the last applied bundle
      (docs/upgrades.md).
  returned: success
  type: str
  sample: 0b2e3c6f1f1a9b9a4b9b2a0e3b7c0d6d1b2c3d4e5f60718293a4b5c6d7e8f901
files_verified:
  description: Number of files whose size and sha256 match the lock.
  returned: success
  type: int
  sample: 1342
bytes_verified:
  description: Total size of the files verified, in bytes.
  returned: success
  type: int
  sample: 2147483648
seconds:
  description: Wall-clock time of the verification.
  returned: success
  type: float
  sample: 1.9
signature_skipped:
  description: True when the signature was not checked (O(skip_signature=true)).
  returned: always
  type: bool
  sample: false
signature:
  description: Who signed the lock, when the signature was checked.
  returned: success
  type: dict
  contains:
    checked:
      description: Whether the signature was checked.
      type: bool
    principals:
      description: Principals of the allowed_signers line that vouched for the key.
      type: str
      sample: release@island.example
    fingerprint:
      description: SHA256 fingerprint of the signing key, as ssh-keygen prints it.
      type: str
      sample: SHA256:on+FrwL0lNo4qj7CRoWJb8ZSIXhf7ZTpYYv3zlUngPk
    namespace:
      description: Signature namespace.
      type: str
      sample: island-bundle
    hash_algorithm:
      description: Hash algorithm of the signature.
      type: str
      sample: sha512
    allowed_signers_line:
      description: Line of the allowed_signers file that matched.
      type: int
      sample: 3
problems:
  description: On failure because files do not match the lock, one entry per bad file.
  returned: failure
  type: list
  elements: dict
  sample:
    - path: bin/k3s
      problem: sha256
      message: "bin/k3s: corrupt: expected sha256 591b..., found bc4f... (4 bytes)"
      expected_size: 4
      actual_size: 4
      expected_sha256: 591b3a35c9cda16b4f18cc85fe8a06feb067a7bb0eb54234a7b71f2598b260a5
      actual_sha256: bc4f38e1d2ebdc54aab41d3dac6ee34fab0d4b02ab1e964571f1a1d0ff10d39c
lock_problems:
  description: On failure because the lock does not follow its schema, one message per field at fault.
  returned: failure
  type: list
  elements: str
  sample: ["files[3] (bin/k3s).sha256: must be 64 lowercase hex characters, got 'abc'"]
"""

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_module import (
    missing_library,
    run_module,
)

try:
    from ansible_collections.island.installer.plugins.module_utils.island_bundle import verify_bundle
    from ansible_collections.island.installer.plugins.module_utils.island_bundle_lock import BundleError
except ImportError:  # PyYAML or cryptography missing in the Python that runs the module
    IMPORT_ERROR: str | None = traceback.format_exc()
    BundleError = ()  # nothing to catch: run_module fails on IMPORT_ERROR before running
else:
    IMPORT_ERROR = None


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "bundle_dir": {"type": "path", "required": True},
            "allowed_signers": {"type": "path"},
            "skip_signature": {"type": "bool", "default": False},
            "workers": {"type": "int"},
        },
        required_if=[("skip_signature", False, ("allowed_signers",))],
        supports_check_mode=True,
    )
    skipped = module.params["skip_signature"]
    run_module(
        module,
        run,
        BundleError,
        missing=missing_library(
            "PyYAML and cryptography",
            IMPORT_ERROR,
            reason="to verify island bundles",
            hint="; run this module on the controller with"
            " ansible_python_interpreter: '{{ ansible_playbook_python }}'",
        ),
        details=lambda exc: {"signature_skipped": skipped, **exc.details()},
    )


def run(module):
    params = module.params
    skipped = params["skip_signature"]
    if params["workers"] is not None and params["workers"] < 1:
        module.fail_json(
            msg=f"workers must be at least 1, got {params['workers']}", signature_skipped=skipped
        )
    if skipped:
        module.warn(
            f"SIGNATURE NOT CHECKED for bundle {params['bundle_dir']} (skip_signature: true): the files"
            " are checked against the lock, but nothing proves who made the lock"
        )
    result = verify_bundle(
        params["bundle_dir"],
        allowed_signers=None if skipped else params["allowed_signers"],
        skip_signature=skipped,
        workers=params["workers"],
    )
    signature = (
        {"checked": False} if result.signature is None else {"checked": True, **result.signature.as_dict()}
    )
    return {
        "changed": False,
        "lock": result.lock,
        "bundle": result.lock["bundle"],
        "lock_sha256": result.lock_sha256,
        "files_verified": result.files_verified,
        "bytes_verified": result.bytes_verified,
        "seconds": round(result.seconds, 3),
        "signature": signature,
        "signature_skipped": skipped,
    }


if __name__ == "__main__":
    main()
