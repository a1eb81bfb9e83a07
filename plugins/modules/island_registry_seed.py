#!/usr/bin/python
# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin Ansible module over the island OCI client's seeding engine (module_utils/island_oci)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_registry_seed
short_description: Seed the island registry from the bundle's OCI layout, keeping every digest
description:
  - Makes an OCI distribution registry (CNCF distribution) hold every image of the bundle's OCI
    image layout (and of optional C(docker save) archives) under its original digest.
  - Decides by digest, never by "does the tag exist". For each image it HEADs the manifest by tag;
    when the digest differs or the tag is missing it HEADs child manifests and blobs in the target
    repository, mounts blobs the registry already holds in another repository, uploads only what
    is missing (several blobs at once, streamed from disk, each checked against its sha256 name),
    pushes child manifests of an image index by digest and then the top manifest by tag, as the
    exact bytes from the layout. The registry's C(Docker-Content-Digest) is checked after every
    push.
  - Reports C(changed=false) when every tag already points at the layout's digest; such a run
    sends HEAD requests only.
  - Check mode computes the same plan with HEAD requests only and writes nothing. With C(--diff)
    it shows, per tag, the old and the new digest (a moved tag is a change).
  - Images read from C(docker save) archives have no registry manifest; one is synthesised with
    uncompressed layers, so their digests differ from upstream. The module warns about each.
version_added: "0.1.0"
author: island installer contributors
extends_documentation_fragment:
  - island.installer.tls
options:
  registry:
    description:
      - The registry as C(host:port), reached over HTTPS. TLS is always verified.
    type: str
    required: true
  username:
    description: User for the registry's basic or token authentication.
    type: str
  password:
    description: Password of O(username).
    type: str
  layout:
    description:
      - Path to the bundle's OCI image layout (C(oci-layout), C(index.json), C(blobs/sha256)). Each
        C(index.json) entry names its image in C(org.opencontainers.image.ref.name) with the full
        reference, for example C(docker.io/library/alpine:3.20).
    type: path
  docker_archives:
    description:
      - C(docker save) archives (docker-archive tar files) to seed as well. Their images cannot keep
        their upstream digests (see the description).
    type: list
    elements: path
    default: []
  images:
    description:
      - Full references of the images to seed (C(docker.io/library/alpine:3.20)); short names are
        normalised as docker does (C(alpine) is C(docker.io/library/alpine:latest)).
      - Default is every image of O(layout) and O(docker_archives).
    type: list
    elements: str
    default: []
  repository_rule:
    description:
      - Where an upstream image lives in the island registry.
      - C(strip_host) (default) drops the upstream registry host and keeps its path, so
        C(docker.io/library/alpine:3.20) is served as C(library/alpine:3.20). This is the path
        containerd asks a mirror for (C(/v2/library/alpine/manifests/3.20)) when the island registry
        is configured as mirror for C(docker.io) in k3s C(registries.yaml). Two upstream hosts with
        the same path would collide; the module refuses such a set of images.
      - C(keep_host) keeps the host as first path component (C(docker.io/library/alpine)), for
        C(registries.yaml) rewrite rules that put each upstream registry in its own namespace.
    type: str
    choices: [strip_host, keep_host]
    default: strip_host
  repository_prefix:
    description: A path put in front of every repository (for example C(mirror)).
    type: str
    default: ""
  workers:
    description: How many blobs are checked, uploaded or mounted at once.
    type: int
    default: 4
  retries:
    description:
      - Retries, with exponential backoff, of a request that failed with a connection error or an
        HTTP 5xx/429 answer. A failed blob upload restarts in a new upload session.
    type: int
    default: 3
notes:
  - Runs on ansible-core alone (Python standard library only).
  - Supports check mode and diff mode.
seealso:
  - name: Registry seeding design
    description: docs/registry-seeding.md in this repository.
    link: https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md
"""

EXAMPLES = r"""
- name: The island registry holds every image of the bundle under its upstream digest
  island_registry_seed:
    registry: registry.island.internal:5000
    ca_file: /etc/island/pki/ca.crt
    username: seeder
    password: "{{ registry_seeder_password }}"
    layout: "{{ island_bundle_dir }}/oci"
  no_log: true  # the task carries a secret (principle 6); the registered result is still usable
  register: seeded

- name: Only the k3s system images, from a layout and a docker save archive
  island_registry_seed:
    layout: "{{ island_bundle_dir }}/oci"
    docker_archives:
      - "{{ island_bundle_dir }}/files/legacy-tools.tar"
    registry: registry.island.internal:5000
    ca_file: /etc/island/pki/ca.crt
    username: seeder
    password: "{{ registry_seeder_password }}"
    images:
      - docker.io/rancher/mirrored-pause:3.6
      - docker.io/rancher/mirrored-coredns-coredns:1.10.1
"""

RETURN = r"""
images:
  description: One entry per image, in layout order.
  returned: always
  type: list
  elements: dict
  contains:
    image:
      description: Full upstream reference.
      type: str
      sample: docker.io/library/alpine:3.20
    repository:
      description: Repository in the island registry.
      type: str
      sample: library/alpine
    tag:
      description: Tag pushed (null for an image referenced by digest only).
      type: str
      sample: "3.20"
    digest:
      description: Digest of the layout's manifest or index, now (in check mode, soon) under the tag.
      type: str
      sample: sha256:1e42bbe2508154c9126d48c2b8a75420c3544343bf86fd041fb7527e017a4b4a
    old_digest:
      description: Digest the tag pointed at before (null if the tag did not exist).
      type: str
    action:
      description: C(unchanged), C(create) (tag was missing) or C(update) (tag moved).
      type: str
      sample: create
    changed:
      description: Whether the tag was (or would be) created or moved.
      type: bool
    manifests_pushed:
      description: Manifest digests pushed (children of an index first, then the top manifest).
      type: list
      elements: str
    blobs_uploaded:
      description: Blob digests uploaded for this image (in check mode, to be uploaded).
      type: list
      elements: str
    blobs_mounted:
      description:
        - Blob digests mounted from another repository of the registry (in check mode, to be mounted).
      type: list
      elements: str
    blobs_present:
      description: Number of blobs the repository already held.
      type: int
    bytes_uploaded:
      description: Bytes uploaded for this image.
      type: int
blobs_uploaded:
  description: Number of blobs uploaded (or to upload, in check mode).
  returned: always
  type: int
blobs_mounted:
  description: Number of blobs mounted across repositories.
  returned: always
  type: int
bytes_uploaded:
  description: Total bytes uploaded.
  returned: always
  type: int
msg:
  description: A one-line summary.
  returned: always
  type: str
  sample: "2 of 12 images changed: docker.io/library/alpine:3.20 (sha256:aaa.. -> sha256:bbb..), ..."
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_argspec import TLS, argument_spec
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module
from ansible_collections.island.installer.plugins.module_utils.island_oci import (
    REPOSITORY_RULES,
    DockerArchive,
    OCIError,
    OCILayout,
    RegistryClient,
    seed,
)


def _summary(result):
    changed = [r for r in result.images if r["changed"]]
    verb = "would change" if result.check_mode else "changed"
    if not changed:
        return f"all {len(result.images)} images present with their digests"
    items = ", ".join(f"{r['image']} ({r['old_digest'] or 'absent'} -> {r['digest']})" for r in changed)
    return f"{len(changed)} of {len(result.images)} images {verb}: {items}"


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            {
                "registry": {"type": "str", "required": True},
                "username": {"type": "str"},
                "password": {"type": "str", "no_log": True},
                "layout": {"type": "path"},
                "docker_archives": {"type": "list", "elements": "path", "default": []},
                "images": {"type": "list", "elements": "str", "default": []},
                "repository_rule": {
                    "type": "str",
                    "choices": list(REPOSITORY_RULES),
                    "default": "strip_host",
                },
                "repository_prefix": {"type": "str", "default": ""},
                "workers": {"type": "int", "default": 4},
                "retries": {"type": "int", "default": 3},
            },
            TLS,
        ),
        required_one_of=[("layout", "docker_archives")],
        required_together=[("username", "password")],
        supports_check_mode=True,
    )
    run_module(module, run, OCIError)


def run(module):
    p = module.params
    if p["workers"] < 1 or p["retries"] < 0:
        module.fail_json(msg="workers must be at least 1 and retries at least 0")
    sources = []
    if p["layout"]:
        layout = OCILayout(p["layout"])
        layout.read_index()
        sources.append(layout)
    sources.extend(DockerArchive(path) for path in p["docker_archives"])
    client = RegistryClient(
        p["registry"],
        ca_file=p["ca_file"],
        username=p["username"],
        password=p["password"],
        retries=p["retries"],
    )
    result = seed(
        client,
        sources,
        images=p["images"] or None,
        rule=p["repository_rule"],
        prefix=p["repository_prefix"],
        check_mode=module.check_mode,
        workers=p["workers"],
    )
    for warning in result.warnings:
        module.warn(warning)
    out = result.to_dict()
    out.pop("warnings")
    out["msg"] = _summary(result)
    if module._diff:
        out["diff"] = result.diff()
    return out


if __name__ == "__main__":
    main()
