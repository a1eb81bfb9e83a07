"""Pulling images from a registry into an OCI layout (the transfer-zone direction)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_oci import OCILayout, pull, seed
from ansible_collections.island.installer.plugins.module_utils.island_oci_common import (
    SOURCE_INDEX_ANNOTATION,
)

from tests.support.oci import needs_registry, run, sha256

pytestmark = [needs_registry, pytest.mark.slow]


def _closure(layout, digest):
    """Every blob digest reachable from a manifest or index in ``layout``."""
    doc = json.loads(_bytes(layout, digest))
    found = {digest}
    for child in doc.get("manifests", []):
        found |= _closure(layout, child["digest"])
    if "config" in doc:
        found.add(doc["config"]["digest"])
    found |= {layer["digest"] for layer in doc.get("layers", [])}
    return found


def _bytes(layout, digest):
    with open(layout.blob_path(digest), "rb") as f:
        return f.read()


@pytest.fixture
def island(registry, layout):
    """The test registry holding the layout's images under their upstream paths (hosts kept)."""
    seed(registry.client(), layout, rule="keep_host")
    return registry


def test_pulling_into_a_fresh_layout_gives_identical_digests_and_bytes(island, layout, tmp_path):
    fresh = OCILayout(str(tmp_path / "fresh"))
    client = island.client()
    for ref, desc in layout.images():
        result = pull(client, ref, fresh, repository=f"{ref.host}/{ref.path}")
        assert result["digest"] == desc["digest"] == result["source_digest"]
        assert result["changed"]
    pulled = {str(ref): desc["digest"] for ref, desc in fresh.images()}
    assert pulled == {str(ref): desc["digest"] for ref, desc in layout.images()}
    for _ref, desc in layout.images():
        for digest in _closure(layout, desc["digest"]):
            assert _bytes(fresh, digest) == _bytes(layout, digest), digest
    # and skopeo reads the pulled layout by the full reference recorded in index.json
    proc = run(["skopeo", "inspect", "--raw", f"oci:{fresh.path}:docker.io/library/alpine:3.20"])
    assert proc.returncode == 0, proc.stderr


def test_pulling_again_downloads_nothing_and_replaces_a_corrupt_blob(island, layout, tmp_path):
    fresh = OCILayout(str(tmp_path / "fresh"))
    client = island.client()
    ref = "docker.io/library/alpine:3.20"
    first = pull(client, ref, fresh, repository="docker.io/library/alpine")
    assert first["blobs_downloaded"]
    mark = island.log_mark()
    again = pull(client, ref, fresh, repository="docker.io/library/alpine")
    assert again["blobs_downloaded"] == [] and not again["changed"]
    assert not [r for r in island.requests(mark) if "/blobs/" in r[1]]

    victim = first["blobs_downloaded"][0]
    path = fresh.blob_path(victim)
    data = bytearray(Path(path).read_bytes())
    data[-1] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    repaired = pull(client, ref, fresh, repository="docker.io/library/alpine")
    assert repaired["blobs_downloaded"] == [victim]
    assert fresh.has_valid_blob(victim)


def test_pulling_an_index_keeps_the_original_index_with_every_platform(island, layout, tmp_path):
    fresh = OCILayout(str(tmp_path / "fresh"))
    ref = "docker.io/library/multi:1"
    result = pull(island.client(), ref, fresh, repository="docker.io/library/multi")
    expected = dict((str(r), d["digest"]) for r, d in layout.images())[ref]
    assert result["digest"] == expected and len(result["manifests"]) == 2
    assert _closure(fresh, expected) == _closure(layout, expected)


def test_pulling_selected_platforms_writes_a_narrowed_index_and_records_the_source(island, layout, tmp_path):
    fresh = OCILayout(str(tmp_path / "fresh"))
    ref = "docker.io/library/multi:1"
    upstream = dict((str(r), d["digest"]) for r, d in layout.images())[ref]
    result = pull(
        island.client(), ref, fresh, repository="docker.io/library/multi", platforms=["linux/arm64"]
    )
    assert result["source_digest"] == upstream
    assert result["digest"] != upstream
    assert result["warnings"] and upstream in result["warnings"][0]
    index = json.loads(_bytes(fresh, result["digest"]))
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["arm64"]
    upstream_index = json.loads(_bytes(layout, upstream))
    arm = next(m for m in upstream_index["manifests"] if m["platform"]["architecture"] == "arm64")
    assert index["manifests"][0] == arm, "the platform manifest keeps its upstream descriptor and digest"
    (entry,) = json.loads(Path(fresh.path, "index.json").read_bytes())["manifests"]
    assert entry["annotations"][SOURCE_INDEX_ANNOTATION] == upstream
    # the narrowed layout is complete (no dangling children): the registry accepts it
    seeded = seed(island.client(), fresh)
    assert seeded.images[0]["digest"] == result["digest"] and seeded.images[0]["action"] == "create"
    assert sha256(island.skopeo_raw("library/multi:1")) == result["digest"]


def test_pulling_by_digest_verifies_the_manifest(island, layout, tmp_path):
    fresh = OCILayout(str(tmp_path / "fresh"))
    digest = dict((str(r), d["digest"]) for r, d in layout.images())["quay.io/org/tool:1"]
    result = pull(island.client(), f"quay.io/org/tool@{digest}", fresh, repository="quay.io/org/tool")
    assert result["digest"] == digest
    assert [str(r) for r, _d in fresh.images()] == [f"quay.io/org/tool@{digest}"]


def test_an_image_referenced_by_digest_only_is_seeded_by_digest(island, layout, tmp_path):
    fresh = OCILayout(str(tmp_path / "fresh"))
    digest = dict((str(r), d["digest"]) for r, d in layout.images())["quay.io/org/tool:1"]
    pull(island.client(), f"quay.io/org/tool@{digest}", fresh, repository="quay.io/org/tool")
    mark = island.log_mark()
    result = seed(island.client(), fresh)
    (row,) = result.images
    assert (row["tag"], row["action"], row["digest"]) == (None, "create", digest)
    assert result.diff()["after"] == {f"{island.address}/org/tool@{digest}": digest}
    assert ("PUT", f"/v2/org/tool/manifests/{digest}", 201) in island.writes(mark)
    assert not seed(island.client(), fresh).changed
