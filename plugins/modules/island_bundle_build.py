#!/usr/bin/python
"""Ansible module: build or update a signed island bundle from a bundle spec (transfer zone)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_bundle_build
short_description: Build a signed island bundle from a bundle spec (transfer zone only)
description:
  - Reads a bundle spec (see C(docs/bundle-spec.md)) naming components and extra files by URL with
    a sha256 or the upstream's checksum file, images by reference (optionally by platform), git
    repositories by URL and refs.
  - Downloads each file and checks it against its sha256 while it streams; a download that does
    not match is refused and nothing of it is kept.
  - Pulls every image into ONE OCI image layout under C(oci/), keeping the upstream manifest and
    blob bytes, so every digest is the upstream digest.
  - Resolves the spec's C(debs) section with apt on this machine (its sources must be the named
    Debian release), the packages named and the dependencies the release's baseline system lacks,
    each downloaded against the sha256 of apt's signed index into C(debs/<release>/).
  - Writes a C(git bundle) per repository, then the lock file C(island-bundle.yml), and signs it
    (C(island-bundle.yml.sig), SSHSIG, namespace C(island-bundle)).
  - A rerun downloads nothing that is present and verified, and rewrites neither the lock nor the
    signature when the content did not change.
  - This is the only part of the project that reaches the network. Run it in the transfer zone.
author: Island installer developers
options:
  spec:
    description: Path of the bundle spec (YAML) on the controller.
    type: path
    required: true
  bundle_dir:
    description: The bundle directory to build or update.
    type: path
    required: true
  cache_dir:
    description:
      - Where downloaded archives, checksum files and git mirrors are kept between runs.
      - Defaults to the bundle directory's name with C(.cache) appended, beside it.
    type: path
  signing_key:
    description: OpenSSH Ed25519 private key that signs the lock file.
    type: path
    required: true
  signing_key_passphrase:
    description: Passphrase of O(signing_key), if it has one.
    type: str
  workers:
    description: Parallel blob downloads and hashing threads.
    type: int
    default: 4
notes:
  - Runs on the controller with the Python that runs Ansible (PyYAML and cryptography needed).
"""

EXAMPLES = r"""
- name: The bundle holds what the spec names, signed
  island_bundle_build:
    spec: bundle-spec.yml
    bundle_dir: /media/bundle
    signing_key: ~/.ssh/island-bundle-signing
    signing_key_passphrase: "{{ vault_bundle_signing_passphrase }}"
"""

RETURN = r"""
lock:
  description: The lock file now in the bundle, parsed.
  returned: success
  type: dict
files:
  description: Bundle paths by outcome (downloaded, extracted, present).
  returned: success
  type: dict
downloaded:
  description: Every URL fetched in this run (checksum files included).
  returned: success
  type: list
  elements: str
git_written:
  description: Git bundle files written in this run.
  returned: success
  type: list
  elements: str
removed:
  description: Files removed because the spec no longer produces them.
  returned: success
  type: list
  elements: str
debs:
  description:
    - The Debian packages of the spec's debs section as apt resolved them (the packages named and
      the dependencies the release's baseline lacks), each with package, version, architecture and
      file (its name under debs/<release>/ in the bundle). Empty without a debs section.
  returned: success
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_bundle_build import build
from ansible_collections.island.installer.plugins.module_utils.island_bundle_lock import BundleError
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module
from ansible_collections.island.installer.plugins.module_utils.island_oci_common import OCIError


def main():
    module = AnsibleModule(
        argument_spec={
            "spec": {"type": "path", "required": True},
            "bundle_dir": {"type": "path", "required": True},
            "cache_dir": {"type": "path"},
            "signing_key": {"type": "path", "required": True, "no_log": False},
            "signing_key_passphrase": {"type": "str", "no_log": True},
            "workers": {"type": "int", "default": 4},
        },
        supports_check_mode=False,
    )
    run_module(module, run, (BundleError, OCIError))


def run(module):
    params = module.params
    result = build(
        params["spec"],
        params["bundle_dir"],
        signing_key=params["signing_key"],
        passphrase=params["signing_key_passphrase"],
        cache_dir=params["cache_dir"],
        workers=params["workers"],
    )
    for warning in result.pop("warnings"):
        module.warn(warning)
    return result


if __name__ == "__main__":
    main()
