#!/usr/bin/python
# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin Ansible module over module_utils/island_minio_backup (MinIO buckets as backup parts)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_minio_bucket_backup
short_description: Export MinIO buckets as backup parts, and restore a bucket from its part
description:
  - C(export) writes each bucket of O(buckets) to O(dest)/minio-<bucket> on the host that runs the
    module, a directory with C(index.json) (each object's key, size, sha256, ETag, content type and
    user metadata) and C(objects/), each object's bytes in a file named by the sha256 of its key,
    so that no key can escape the directory or collide with another. A bucket MinIO does not hold
    fails the task before anything is read, naming the buckets it holds.
  - C(restore) checks the export at O(src) (every file against the index) first, then writes the
    objects the bucket lacks with their content type and metadata, leaves alone the objects with the
    same bytes, and refuses, naming them and writing nothing, objects whose bytes differ unless
    O(overwrite). Every object written is read back and compared (ETag as MD5, else sha256).
  - Talks to MinIO through the C(minio) Python SDK over HTTPS verified with the island CA.
version_added: "0.1.0"
author: island installer contributors
extends_documentation_fragment:
  - island.installer.tls
requirements:
  - minio == 7.2.20 (and its dependencies, see requirements.txt) on the host that runs the module
options:
  action:
    description: C(export) buckets into O(dest), or C(restore) one bucket from O(src).
    type: str
    choices: [export, restore]
    required: true
  endpoint:
    description: MinIO's S3 API as C(host:port). Always HTTPS, always verified.
    type: str
    required: true
  access_key:
    description: The root user or another identity allowed to read and write the buckets.
    type: str
    required: true
  secret_key:
    description: Secret key of O(access_key).
    type: str
    required: true
  region:
    description: Region the requests are signed for.
    type: str
    default: us-east-1
  timeout:
    description: Seconds to wait for MinIO to answer a request.
    type: int
    default: 30
  buckets:
    description: C(export) - the buckets to export.
    type: list
    elements: str
    default: []
  dest:
    description: C(export) - an existing directory; each bucket goes to its C(minio-<bucket>) below it.
    type: path
  bucket:
    description: C(restore) - the bucket to restore into (it must exist).
    type: str
  src:
    description: C(restore) - the export directory (the part C(minio-<bucket>) extracted from a backup).
    type: path
  overwrite:
    description:
      - C(restore) - replace objects whose content differs from the backup's instead of refusing.
        In a versioned bucket the replaced content stays as an older version.
    type: bool
    default: false
notes:
  - Supports check mode (C(restore) reports what it would write; C(export) writes only below O(dest)
    and runs in check mode as well, since a backup reads).
seealso:
  - module: island.installer.island_backup
"""

EXAMPLES = r"""
- name: The operator's buckets are exported into the backup's staging directory
  island_minio_bucket_backup:
    action: export
    endpoint: 10.0.0.5:9000
    access_key: "{{ minio_root_user }}"
    secret_key: "{{ minio_root_secret }}"
    ca_file: "{{ island_pki_dir }}/trust-bundle.pem"
    buckets: [artifacts]
    dest: "{{ _backup_staging.path }}"
  no_log: true

- name: Bucket artifacts holds the backup's objects again
  island_minio_bucket_backup:
    action: restore
    endpoint: 10.0.0.5:9000
    access_key: "{{ minio_root_user }}"
    secret_key: "{{ minio_root_secret }}"
    ca_file: "{{ island_pki_dir }}/trust-bundle.pem"
    bucket: artifacts
    src: /tmp/restore/minio-artifacts
  no_log: true
"""

RETURN = r"""
exports:
  description: C(export) - per bucket, its part name, path, number of objects and bytes.
  returned: when action is export
  type: list
  elements: dict
parts:
  description: C(export) - the backup parts, C(name) and C(path) each, as island_backup takes them.
  returned: when action is export
  type: list
  elements: dict
written:
  description: C(restore) - the keys written because the bucket lacked them.
  returned: when action is restore
  type: list
  elements: str
replaced:
  description: C(restore) - the keys whose differing content was replaced (O(overwrite)).
  returned: when action is restore
  type: list
  elements: str
unchanged:
  description: C(restore) - how many objects already held the backup's bytes.
  returned: when action is restore
  type: int
msg:
  description: A one-line summary.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_argspec import TLS, argument_spec
from ansible_collections.island.installer.plugins.module_utils.island_minio import (
    Connection,
    MinioStateError,
    sdk_missing,
)
from ansible_collections.island.installer.plugins.module_utils.island_minio_backup import (
    export_buckets,
    restore_bucket,
)
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module

CONNECTION_OPTIONS = ("endpoint", "access_key", "secret_key", "ca_file", "region", "timeout")
ARGUMENT_SPEC = argument_spec(
    {
        "action": {"type": "str", "required": True, "choices": ["export", "restore"]},
        "endpoint": {"type": "str", "required": True},
        "access_key": {"type": "str", "required": True, "no_log": False},
        "secret_key": {"type": "str", "required": True, "no_log": True},
        "region": {"type": "str", "default": "us-east-1"},
        "timeout": {"type": "int", "default": 30},
        "buckets": {"type": "list", "elements": "str", "default": []},
        "dest": {"type": "path"},
        "bucket": {"type": "str"},
        "src": {"type": "path"},
        "overwrite": {"type": "bool", "default": False},
    },
    TLS,
)


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
        required_if=[("action", "export", ("dest",)), ("action", "restore", ("bucket", "src"))],
    )
    run_module(module, run, MinioStateError, missing=sdk_missing())


def run(module):
    p = module.params
    conn = Connection(**{key: p[key] for key in CONNECTION_OPTIONS})
    if p["action"] == "export":
        exports = export_buckets(conn, p["buckets"], p["dest"])
        summary = ", ".join(f"{e['bucket']} ({e['objects']} objects, {e['bytes']} bytes)" for e in exports)
        parts = [{"name": e["part"], "path": e["path"]} for e in exports]
        return {
            "changed": False,
            "exports": exports,
            "parts": parts,
            "msg": f"exported {summary or 'no bucket'}",
        }
    result = restore_bucket(
        conn, p["bucket"], p["src"], overwrite=p["overwrite"], check_mode=module.check_mode
    )
    verb = "would write" if module.check_mode else "wrote"
    result["msg"] = (
        f"bucket {p['bucket']}: {verb} {len(result['written'])} missing and {len(result['replaced'])} "
        f"differing object(s); {result['unchanged']} already as in the backup"
    )
    return result


if __name__ == "__main__":
    main()
