#!/usr/bin/python
# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin Ansible module over module_utils/island_oci_backup: the images pushed inside the island."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_registry_backup
short_description: Back up the images pushed inside the island to an OCI layout, and restore them
description:
  - C(backup) lists every repository (the catalog, page by page) and every tag of the registries,
    leaves out each tag that holds the digest the applied bundle's lock gave it (the bundle brings
    it back), and copies the rest into the OCI image layout O(layout). An image index is copied with
    all its platforms; manifests and blobs are stored as the registry serves them, each checked
    against its digest as it is written. A tag the island moved away from the lock's digest is
    copied, and its C(index.json) entry records the lock's digest in the annotation
    C(io.island.backup.lock-digest). Nothing is written to the registry.
  - Several registries (each registry host with its own storage) go into the one layout; a tag with
    another digest on one than on another is refused, naming both, before anything is copied.
  - C(restore) pushes the layout's images to every registry of O(registries) (blobs, then child
    manifests by digest, then tags) and then checks that each tag resolves to its digest. An image
    already there under its tag and digest is left alone. A tag that holds another digest is refused
    before anything is pushed to any registry, unless it is the lock digest the backup recorded for
    it (seeding put it back after the registry was rebuilt).
  - Check mode runs the restore's checks and plan with HEAD requests only. C(backup) has no check
    mode (it writes only O(layout), a staging directory of the backup).
version_added: "0.9.0"
author: island installer contributors
extends_documentation_fragment:
  - island.installer.tls
options:
  action:
    description: C(backup) (registries to O(layout)) or C(restore) (O(layout) to registries).
    type: str
    choices: [backup, restore]
    required: true
  registries:
    description:
      - The registries as C(host:port), reached over HTTPS; TLS is always verified.
    type: list
    elements: str
    required: true
  username:
    description: The registry account (the read-only one is enough for C(backup)).
    type: str
    required: true
  password:
    description: Password of O(username).
    type: str
    required: true
  layout:
    description:
      - The OCI image layout. C(backup) creates it (it must not hold images yet); C(restore) reads it.
      - Each image is named by the annotation C(org.opencontainers.image.ref.name) as
        C(<reference_host>/<repository>:<tag>).
    type: path
    required: true
  lock:
    description:
      - C(backup) - the applied bundle's lock file (C(island-bundle.yml)); its images are left out.
        Without it every image is backed up.
    type: path
  lock_sha256:
    description:
      - C(backup) - the sha256 the record of the applied bundle names; O(lock) must have it, so that
        a newer bundle brought to the controller is not taken for the applied one.
    type: str
  reference_host:
    description: C(backup) - the registry's island name, the host part of every image's name in the layout.
    type: str
  workers:
    description: How many blobs are copied at once.
    type: int
    default: 4
  retries:
    description: Retries, with backoff, of a request that failed with a connection error or HTTP 5xx.
    type: int
    default: 3
notes:
  - Runs on the controller. C(backup) with O(lock) needs PyYAML (the controller's Python has it).
  - Supports check mode (C(restore)) and diff mode.
seealso:
  - name: Backups
    description: docs/backup.md in this repository.
    link: https://github.com/opencontainers/image-spec/blob/v1.1.0/image-layout.md
"""

EXAMPLES = r"""
- name: The images pushed inside the island are copied into the backup's staging directory
  island_registry_backup:
    action: backup
    registries: ["10.0.0.5:5000"]
    ca_file: /srv/island/pki/trust-bundle.pem
    username: island-node
    password: "{{ registry_pull_password }}"
    layout: "{{ staging }}/oci-images"
    lock: /media/bundle/island-bundle.yml
    lock_sha256: "{{ record.lock_sha256 }}"
    reference_host: registry.island.internal
  delegate_to: localhost
  no_log: true

- name: The backup's images are in the registry again
  island_registry_backup:
    action: restore
    registries: ["10.0.0.5:5001"]
    ca_file: /srv/island/pki/trust-bundle.pem
    username: island-seeder
    password: "{{ registry_push_password }}"
    layout: /tmp/restore/oci-images
  delegate_to: localhost
  no_log: true
"""

RETURN = r"""
images:
  description:
    - C(backup) - each image copied (image, repository, tag, digest, media_type, lock_digest, registry,
      manifests, blobs_downloaded, bytes_downloaded).
    - C(restore) - per registry, the seeding engine's rows (image, repository, tag, digest, old_digest,
      action, changed).
  returned: always
  type: list
  elements: dict
left_out:
  description: C(backup) - the tags left out because they hold the lock's digest (image, digest, registry).
  returned: when action is backup
  type: list
  elements: dict
msg:
  description: A one-line summary.
  returned: always
  type: str
"""

import hashlib
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_argspec import TLS, argument_spec
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module
from ansible_collections.island.installer.plugins.module_utils.island_oci import (
    OCIError,
    OCILayout,
    RegistryClient,
)
from ansible_collections.island.installer.plugins.module_utils.island_oci_backup import (
    ImagesRefusedError,
    backup_images,
    restore_images,
)


def _lock_images(module):
    p = module.params
    if not p["lock"]:
        return []
    try:
        with open(p["lock"], "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ImagesRefusedError(
            f"cannot read the applied bundle's lock {p['lock']} ({exc.strerror}): point island_bundle_dir at "
            "the bundle last applied, which the backup needs to leave its images out. Nothing was backed up."
        ) from None
    actual = hashlib.sha256(data).hexdigest()
    if p["lock_sha256"] and actual != p["lock_sha256"]:
        raise ImagesRefusedError(
            f"{p['lock']} has sha256 {actual}, but the applied bundle's lock has {p['lock_sha256']} (its "
            "record): point island_bundle_dir at the bundle last applied (not a newer one waiting for "
            "upgrade.yml). Nothing was backed up."
        )
    # PyYAML is on the controller only: imported here, so that restore needs the standard library alone.
    from ansible_collections.island.installer.plugins.module_utils.island_bundle_lock import (  # noqa: PLC0415
        BundleError,
        load_lock,
    )

    try:
        return load_lock(data, p["lock"])["images"]
    except BundleError as exc:
        raise ImagesRefusedError(f"{p['lock']}: {exc}") from None


def _client(p, registry):
    return RegistryClient(
        registry, ca_file=p["ca_file"], username=p["username"], password=p["password"], retries=p["retries"]
    )


def run(module):
    p = module.params
    if p["workers"] < 1 or p["retries"] < 0:
        module.fail_json(msg="workers must be at least 1 and retries at least 0")
    if not p["registries"]:
        module.fail_json(msg="registries is empty: name at least one registry as host:port")
    layout = OCILayout(p["layout"])
    if p["action"] == "backup":
        if module.check_mode:
            module.fail_json(
                msg="action backup has no check mode: it writes only the backup's staging directory"
            )
        if not p["reference_host"]:
            module.fail_json(msg="action backup needs reference_host, the registry's island name")
        if os.path.exists(p["layout"]) and (not os.path.isdir(p["layout"]) or os.listdir(p["layout"])):
            module.fail_json(msg=f"{p['layout']} exists and is not an empty directory: give a new path")
        result = backup_images(
            [(r, _client(p, r)) for r in p["registries"]],
            layout,
            _lock_images(module),
            reference_host=p["reference_host"],
            workers=p["workers"],
        )
        return {
            "changed": True,
            "images": result["images"],
            "left_out": result["left_out"],
            "msg": f"{len(result['images'])} images pushed inside the island copied to {p['layout']}, "
            f"{len(result['left_out'])} of the bundle's left out",
        }
    layout.read_index()
    clients = [_client(p, r) for r in p["registries"]]
    # Every registry's checks first: a refusal on one leaves all of them untouched.
    plans = [restore_images(c, layout, check_mode=True, workers=p["workers"]) for c in clients]
    results = (
        plans if module.check_mode else [restore_images(c, layout, workers=p["workers"]) for c in clients]
    )
    rows = [row for result in results for row in result["images"]]
    diff = {"before": {}, "after": {}}
    for result in results:
        diff["before"].update(result["diff"]["before"])
        diff["after"].update(result["diff"]["after"])
    changed = [r for r in rows if r["changed"]]
    verb = "would push" if module.check_mode else "pushed"
    out = {
        "changed": bool(changed),
        "images": rows,
        "msg": f"{len(changed)} of {len(rows)} image tags {verb} to {', '.join(p['registries'])}",
    }
    if module._diff:
        out["diff"] = diff
    return out


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            {
                "action": {"type": "str", "choices": ["backup", "restore"], "required": True},
                "registries": {"type": "list", "elements": "str", "required": True},
                "username": {"type": "str", "required": True},
                "password": {"type": "str", "required": True, "no_log": True},
                "layout": {"type": "path", "required": True},
                "lock": {"type": "path"},
                "lock_sha256": {"type": "str"},
                "reference_host": {"type": "str"},
                "workers": {"type": "int", "default": 4},
                "retries": {"type": "int", "default": 3},
            },
            TLS,
        ),
        supports_check_mode=True,
    )
    run_module(module, run, OCIError, details=lambda exc: {"problems": getattr(exc, "problems", [])})


if __name__ == "__main__":
    main()
