"""Registry client operations against the real registry: mounts, streamed uploads."""

from __future__ import annotations

import hashlib
import os
import tracemalloc

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_oci_layout import HashingReader

from tests.support.oci import needs_registry

pytestmark = [needs_registry, pytest.mark.slow]


def _upload(client, repo, path, digest, size):
    client.upload_blob(repo, digest, size, lambda: HashingReader(open(path, "rb"), digest, size=size))  # noqa: SIM115 - client closes


def test_a_mount_from_a_repository_without_the_blob_falls_back_to_an_upload(registry, tmp_path):
    client = registry.client()
    client.ping()
    data = os.urandom(4096)
    path = tmp_path / "blob"
    path.write_bytes(data)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _upload(client, "src/one", path, digest, len(data))

    mounted, location = client.mount_blob("dst/two", digest, "src/one")
    assert mounted and location is None  # 201: distribution 2.8.2 links the blob
    assert client.head_blob("dst/two", digest)

    mounted, location = client.mount_blob("dst/three", digest, "nowhere/else")
    assert not mounted and location  # 202: an upload session to continue with
    client.upload_blob(
        "dst/three",
        digest,
        len(data),
        lambda: HashingReader(open(path, "rb"), digest, size=len(data)),  # noqa: SIM115 - client closes
        location=location,
    )
    assert client.head_blob("dst/three", digest)
    statuses = [s for m, p, s in registry.writes() if "mount=" in p]
    assert statuses == [201, 202]


def test_uploading_a_large_blob_keeps_memory_flat(registry, tmp_path):
    size = 96 * 1024 * 1024
    path = tmp_path / "large"
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(size // (4 * 1024 * 1024)):
            chunk = os.urandom(4 * 1024 * 1024)
            h.update(chunk)
            f.write(chunk)
    digest = "sha256:" + h.hexdigest()
    client = registry.client()
    client.ping()
    tracemalloc.start()
    try:
        _upload(client, "big/blob", path, digest, size)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"peak Python allocation {peak} bytes for a {size}-byte blob"
    assert client.head_blob("big/blob", digest)
