#!/usr/bin/python
# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin Ansible module over module_utils/island_minio (MinIO's desired state)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_minio
short_description: Converge MinIO's buckets, canned policies, users, service accounts and seed objects
description:
  - Makes a MinIO server hold the given canned policies, users (with their secret keys and attached
    policies), service accounts for applications, buckets (versioning, object locking) and seed
    objects, through the C(minio) Python SDK over HTTPS verified with the island CA.
  - Compares before it writes. Policies are compared as normalised JSON; a user's or service
    account's secret key, which MinIO never returns, is compared by signing a harmless request with
    it; seed objects are compared by the sha256 recorded in their metadata (or, without it, by the
    ETag against the file's MD5), so only changed files are uploaded.
  - Check mode reads only and reports what would change; with C(--diff) it shows the state before
    and after (policy documents, attached policies, bucket settings, object checksums; never secrets).
  - Policies attached to a user that are not in its O(users[].policies) are detached.
version_added: "0.1.0"
author: island installer contributors
extends_documentation_fragment:
  - island.installer.tls
requirements:
  - minio == 7.2.20 (and its dependencies, see requirements.txt) on the host that runs the module
options:
  endpoint:
    description: MinIO's S3 API as C(host:port). Always HTTPS, always verified.
    type: str
    required: true
  access_key:
    description: The root user (C(MINIO_ROOT_USER)) or another identity allowed to administer MinIO.
    type: str
    required: true
  secret_key:
    description: Secret key of O(access_key).
    type: str
    required: true
  region:
    description:
      - Region the requests are signed for (MinIO's C(MINIO_SITE_REGION); MinIO accepts
        C(us-east-1) when none is set). Passing it saves a GetBucketLocation call that a user
        without C(s3:GetBucketLocation) is denied.
    type: str
    default: us-east-1
  timeout:
    description: Seconds to wait for MinIO to answer a request.
    type: int
    default: 30
  policies:
    description: Canned (IAM) policies, created or updated when their normalised JSON differs.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Policy name.
        type: str
        required: true
      policy:
        description:
          - The policy document, as a dict or a JSON string. Invalid JSON fails the task naming the policy.
        type: raw
        required: true
  users:
    description: MinIO users. Their attached policies are exactly O(users[].policies).
    type: list
    elements: dict
    default: []
    suboptions:
      access_key:
        description: The user's name (access key).
        type: str
        required: true
      secret_key:
        description: The user's secret key (at least 8 characters). Set again when it differs.
        type: str
        required: true
      policies:
        description: Canned policies attached to the user (built-in ones such as C(readonly) included).
        type: list
        elements: str
        default: []
  service_accounts:
    description:
      - Service accounts (access keys) for applications. Keys are given, never generated, so that
        a rerun converges and the secret can be stored by the caller beforehand (principle 6).
    type: list
    elements: dict
    default: []
    suboptions:
      access_key:
        description: Access key of the service account (3 to 20 characters).
        type: str
        required: true
      secret_key:
        description: Secret key of the service account (8 to 40 characters).
        type: str
        required: true
      user:
        description:
          - The user the account belongs to and inherits its permissions from. It must be listed in
            O(users) (the account is created with that user's credentials). Default is O(access_key)
            of the module, that is root.
        type: str
      name:
        description: A display name.
        type: str
      description:
        description: A description.
        type: str
      policy:
        description: An inline policy (dict or JSON string) that further restricts the account.
        type: raw
  buckets:
    description: Buckets.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Bucket name.
        type: str
        required: true
      versioning:
        description:
          - C(true) enables versioning, C(false) suspends it (once enabled it cannot be switched off).
            Unset leaves it as it is.
        type: bool
      object_lock:
        description:
          - Create the bucket with object locking (implies versioning). MinIO enables it only at
            creation; an existing bucket without it fails the task.
        type: bool
        default: false
      retention_days:
        description:
          - With O(buckets[].object_lock), the bucket's default retention, GOVERNANCE mode, in days. A
            new version cannot be deleted for that long except by an account allowed
            C(s3:BypassGovernanceRetention) (root). Unset leaves it as it is.
        type: int
      noncurrent_days:
        description:
          - Days after which a version that is no longer current is removed by MinIO's lifecycle
            (the rule C(island-noncurrent-expiry), NoncurrentVersionExpiration); other rules of the
            bucket are kept. Needs versioning. Unset leaves the lifecycle as it is.
        type: int
  objects:
    description:
      - Seed objects, uploaded from a local directory (on the host running the module) into a bucket.
      - Every seed is checked before anything changes; each file is uploaded from a private copy
        whose sha256 is checked again, so MinIO receives exactly the bytes that were checked.
    type: list
    elements: dict
    default: []
    suboptions:
      bucket:
        description: Target bucket.
        type: str
        required: true
      src:
        description:
          - Local directory; every regular file below it becomes an object. A symbolic link, FIFO
            or device below it fails the task. Inside O(seed_root) when that is set.
        type: path
        required: true
      prefix:
        description: Put in front of each file's relative path to form the object key.
        type: str
        default: ""
      sha256:
        description:
          - The files expected below O(objects[].src), by relative path, with their sha256 (from the
            bundle's lock). When set, a file not listed, a file with another sha256, or a listed
            file that is missing fails the task before anything changes.
        type: dict
  seed_root:
    description:
      - When set, every O(objects[].src) must lie inside this directory once symbolic links are
        resolved (the bundle's C(files/)); a source outside it fails the task before anything changes.
    type: path
  ready_timeout:
    description:
      - Seconds to wait, before any API call, until C(/minio/health/cluster) answers 200. MinIO
        answers C(/minio/health/live) before it has initialised, and refuses every API call with
        C(XMinioServerNotInitialized) until then. C(0) does not wait.
    type: int
    default: 120
notes:
  - Supports check mode and diff mode.
  - Run it where the minio SDK is installed, for example on the controller with
    C(ansible_python_interpreter) set to the virtual environment built from requirements.txt.
seealso:
  - name: minio-py MinioAdmin
    description: The admin API client this module uses (minio 7.2.20).
    link: https://github.com/minio/minio-py/blob/7.2.20/minio/minioadmin.py
"""

EXAMPLES = r"""
- name: MinIO holds the island's buckets, policies, users and application keys
  island_minio:
    endpoint: minio.island.internal:9000
    access_key: "{{ minio_root_user }}"
    secret_key: "{{ minio_root_password }}"
    ca_file: "{{ island_pki_dir }}/ca.crt"
    policies:
      - name: artifacts-read
        policy:
          Version: "2012-10-17"
          Statement:
            - Effect: Allow
              Action: [s3:ListBucket, s3:GetObject]
              Resource: [arn:aws:s3:::artifacts, arn:aws:s3:::artifacts/*]
    users:
      - access_key: ci
        secret_key: "{{ minio_ci_secret }}"
        policies: [artifacts-read]
    service_accounts:
      - access_key: ci-runner
        secret_key: "{{ minio_ci_runner_secret }}"
        user: ci
        name: runner
    buckets:
      - name: artifacts
        versioning: true
      - name: audit
        object_lock: true
    objects:
      - bucket: artifacts
        src: "{{ island_bundle_dir }}/files/minio/artifacts"
  delegate_to: localhost
  vars:
    ansible_python_interpreter: "{{ island_controller_python }}"
"""

RETURN = r"""
changes:
  description: Every change made (in check mode, that would be made), with its reason.
  returned: always
  type: list
  elements: dict
  contains:
    type:
      description: C(policy), C(user), C(service_account), C(bucket) or C(object).
      type: str
    name:
      description: What changed (an object as C(bucket/key)).
      type: str
    action:
      description:
        - C(create), C(update), C(enable), C(attach), C(detach), C(recreate), C(versioning), C(retention),
          C(lifecycle) or C(upload).
      type: str
    reason:
      description: Why, in words.
      type: str
      sample: "document differs"
state:
  description: The state after the run (in check mode, the state the run would reach); never secrets.
  returned: always
  type: dict
  contains:
    policies:
      description: Normalised policy documents by name.
      type: dict
    users:
      description: Per user, whether it exists, its status and attached policies.
      type: dict
    service_accounts:
      description: Per access key, its user, name, description and inline policy.
      type: dict
    buckets:
      description:
        - Per bucket, versioning status, object locking, and the default retention and noncurrent
          expiry in days when set.
      type: dict
    objects:
      description: sha256 of each seed object, keyed C(bucket/key).
      type: dict
msg:
  description: A one-line summary.
  returned: always
  type: str
  sample: "2 changed: policy artifacts-read: document differs; object artifacts/a.txt: uploaded"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_argspec import (
    TLS,
    argument_spec,
    list_of,
)
from ansible_collections.island.installer.plugins.module_utils.island_minio import (
    Connection,
    MinioState,
    MinioStateError,
    sdk_missing,
)
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module

# The options that describe the connection, by the names Connection takes.
CONNECTION_OPTIONS = ("endpoint", "access_key", "secret_key", "ca_file", "region", "timeout")
ARGUMENT_SPEC = argument_spec(
    {
        "endpoint": {"type": "str", "required": True},
        "access_key": {"type": "str", "required": True, "no_log": False},
        "secret_key": {"type": "str", "required": True, "no_log": True},
        "region": {"type": "str", "default": "us-east-1"},
        "timeout": {"type": "int", "default": 30},
        "policies": list_of(
            {
                "name": {"type": "str", "required": True},
                "policy": {"type": "raw", "required": True},
            }
        ),
        "users": list_of(
            {
                "access_key": {"type": "str", "required": True, "no_log": False},
                "secret_key": {"type": "str", "required": True, "no_log": True},
                "policies": {"type": "list", "elements": "str", "default": []},
            }
        ),
        "service_accounts": list_of(
            {
                "access_key": {"type": "str", "required": True, "no_log": False},
                "secret_key": {"type": "str", "required": True, "no_log": True},
                "user": {"type": "str"},
                "name": {"type": "str"},
                "description": {"type": "str"},
                "policy": {"type": "raw"},
            }
        ),
        "buckets": list_of(
            {
                "name": {"type": "str", "required": True},
                "versioning": {"type": "bool"},
                "object_lock": {"type": "bool", "default": False},
                "retention_days": {"type": "int"},
                "noncurrent_days": {"type": "int"},
            }
        ),
        "objects": list_of(
            {
                "bucket": {"type": "str", "required": True},
                "src": {"type": "path", "required": True},
                "prefix": {"type": "str", "default": ""},
                "sha256": {"type": "dict"},
            }
        ),
        "seed_root": {"type": "path"},
        "ready_timeout": {"type": "int", "default": 120},
    },
    TLS,
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, run, MinioStateError, missing=sdk_missing())


def run(module):
    p = module.params
    conn = Connection(**{key: p[key] for key in CONNECTION_OPTIONS})
    result = MinioState(conn, check_mode=module.check_mode).apply(
        policies=p["policies"],
        users=p["users"],
        service_accounts=p["service_accounts"],
        buckets=p["buckets"],
        objects=p["objects"],
        seed_root=p["seed_root"],
        ready_timeout=p["ready_timeout"],
    )
    output = {
        "changed": result.changed,
        "changes": result.changes,
        "state": result.after,
        "msg": result.summary(),
    }
    if module._diff:
        output["diff"] = {"before": result.before, "after": result.after}
    return output


if __name__ == "__main__":
    main()
