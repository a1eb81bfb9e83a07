"""The OCI layout as the bundle stores it: one index, blobs checked against their names."""

from __future__ import annotations

import io
import json
import os

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_oci import (
    BlobCorruptError,
    BlobMissingError,
    DockerArchive,
    ImageReference,
    LayoutError,
    OCILayout,
)
from ansible_collections.island.installer.plugins.module_utils.island_oci_common import sha256_digest
from ansible_collections.island.installer.plugins.module_utils.island_oci_layout import HashingReader

from tests.support.oci import tar_of

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def test_init_creates_a_layout_skopeo_and_containerd_can_read_and_is_idempotent(tmp_path):
    layout = OCILayout(str(tmp_path / "l")).init()
    assert json.loads((tmp_path / "l" / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((tmp_path / "l" / "index.json").read_text())
    assert index["schemaVersion"] == 2 and index["manifests"] == []
    layout.set_image(
        ImageReference.parse("alpine:1"), {"mediaType": MANIFEST, "digest": "sha256:" + "1" * 64, "size": 1}
    )
    OCILayout(str(tmp_path / "l")).init()
    assert len(OCILayout(str(tmp_path / "l")).images()) == 1


def test_set_image_records_the_full_reference_and_moves_a_tag(tmp_path):
    layout = OCILayout(str(tmp_path / "l")).init()
    ref = ImageReference.parse("alpine:3.20")
    first = {"mediaType": MANIFEST, "digest": "sha256:" + "1" * 64, "size": 10}
    second = {"mediaType": MANIFEST, "digest": "sha256:" + "2" * 64, "size": 11}
    assert layout.set_image(ref, first) is None
    assert layout.set_image(ref, second) == first["digest"]
    (entry,) = layout.read_index()["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "docker.io/library/alpine:3.20"
    assert entry["digest"] == second["digest"]


def test_shared_blobs_are_stored_once(tmp_path):
    layout = OCILayout(str(tmp_path / "l")).init()
    a = layout.write_blob(b"same")
    b = layout.write_blob(b"same")
    assert a == b == sha256_digest(b"same")
    assert os.listdir(tmp_path / "l" / "blobs" / "sha256") == [a.split(":")[1]]


def test_a_streamed_blob_that_does_not_match_its_name_is_not_stored(tmp_path):
    layout = OCILayout(str(tmp_path / "l")).init()
    claimed = sha256_digest(b"expected")
    with pytest.raises(BlobCorruptError, match=claimed):
        layout.write_blob_stream(claimed, iter([b"other", b" bytes"]))
    assert os.listdir(tmp_path / "l" / "blobs" / "sha256") == []
    assert layout.write_blob_stream(claimed, iter([b"expec", b"ted"]), size=8) == 8
    assert layout.has_valid_blob(claimed, 8)
    assert not layout.has_valid_blob(claimed, 9)


def test_entries_without_a_full_reference_are_refused_and_containerd_names_are_understood(tmp_path):
    layout = OCILayout(str(tmp_path / "l")).init()
    index = layout.read_index()
    desc = {"mediaType": MANIFEST, "digest": "sha256:" + "3" * 64, "size": 3}
    index["manifests"] = [
        dict(
            desc,
            annotations={
                "org.opencontainers.image.ref.name": "3.20",
                "io.containerd.image.name": "docker.io/library/alpine:3.20",
            },
        )
    ]
    (tmp_path / "l" / "index.json").write_text(json.dumps(index))
    ((ref, _),) = layout.images()
    assert str(ref) == "docker.io/library/alpine:3.20"
    index["manifests"] = [dict(desc, annotations={"org.opencontainers.image.ref.name": "3.20"})]
    (tmp_path / "l" / "index.json").write_text(json.dumps(index))
    with pytest.raises(LayoutError, match="no full image reference"):
        layout.images()


def test_a_directory_without_oci_layout_is_not_a_layout(tmp_path):
    with pytest.raises(LayoutError, match="not an OCI image layout"):
        OCILayout(str(tmp_path)).images()


def test_hashing_reader_reports_corruption_after_streaming(tmp_path):
    good = HashingReader(io.BytesIO(b"abc"), sha256_digest(b"abc"), size=3)
    assert good.read(2) + good.read(10) == b"abc"
    good.verify()
    bad = HashingReader(io.BytesIO(b"abd"), sha256_digest(b"abc"), size=3, image="docker.io/x/y:1")
    while bad.read(1):
        pass
    with pytest.raises(BlobCorruptError, match=r"docker\.io/x/y:1"):
        bad.verify()


def test_missing_blobs_are_named(tmp_path):
    layout = OCILayout(str(tmp_path / "l")).init()
    digest = "sha256:" + "4" * 64
    with pytest.raises(BlobMissingError, match=digest):
        layout.open_blob(digest)
    with pytest.raises(BlobMissingError, match=digest):
        layout.read_blob(digest, image="quay.io/a/b:1")


def test_docker_archive_synthesises_an_oci_manifest_with_the_layer_tars_as_blobs(tmp_path):
    layer = tar_of({"bin/x": b"x"})
    gz_layer = b"\x1f\x8b" + b"pretend gzip"
    config = b'{"os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    path = tmp_path / "save.tar"
    path.write_bytes(
        tar_of(
            {
                "manifest.json": json.dumps(
                    [
                        {
                            "Config": "cfg.json",
                            "RepoTags": ["tool:1"],
                            "Layers": ["l1/layer.tar", "l2/layer.tar"],
                        },
                        {"Config": "cfg.json", "RepoTags": None, "Layers": []},
                    ]
                ).encode(),
                "cfg.json": config,
                "l1/layer.tar": layer,
                "l2/layer.tar": gz_layer,
            }
        )
    )
    archive = DockerArchive(str(path))
    ((ref, desc),) = archive.images()
    assert str(ref) == "docker.io/library/tool:1"
    manifest = json.loads(archive.read_blob(desc["digest"]))
    assert manifest["config"]["digest"] == sha256_digest(config)
    assert [(lay["mediaType"], lay["digest"]) for lay in manifest["layers"]] == [
        ("application/vnd.oci.image.layer.v1.tar", sha256_digest(layer)),
        ("application/vnd.oci.image.layer.v1.tar+gzip", sha256_digest(gz_layer)),
    ]
    with archive.open_blob(sha256_digest(layer)) as f:
        assert f.read() == layer
    warnings = archive.warnings()
    assert any("no RepoTags" in w for w in warnings)
    assert any("cannot keep the upstream digest" in w for w in warnings)


def test_a_tar_without_manifest_json_is_not_a_docker_archive(tmp_path):
    path = tmp_path / "x.tar"
    path.write_bytes(tar_of({"other": b"1"}))
    with pytest.raises(LayoutError, match=r"no manifest\.json"):
        DockerArchive(str(path))


def test_a_docker_25_archive_with_uncompressed_layers_warns_that_digests_are_not_upstream(tmp_path):
    layout = OCILayout(str(tmp_path / "l")).init()
    layer = tar_of({"bin/x": b"x"})
    config = b'{"os":"linux"}'
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": layout.write_blob(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layout.write_blob(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    digest = layout.write_blob(manifest)
    layout.set_image(
        ImageReference.parse("tool:1"), {"mediaType": MANIFEST, "digest": digest, "size": len(manifest)}
    )
    members = {name: (tmp_path / "l" / name).read_bytes() for name in ("oci-layout", "index.json")}
    for blob in (tmp_path / "l" / "blobs" / "sha256").iterdir():
        members[f"blobs/sha256/{blob.name}"] = blob.read_bytes()
    members["manifest.json"] = b"[]"
    (tmp_path / "save.tar").write_bytes(tar_of(members))
    archive = DockerArchive(str(tmp_path / "save.tar"))
    ((ref, desc),) = archive.images()
    assert (str(ref), desc["digest"]) == ("docker.io/library/tool:1", digest)
    (warning,) = archive.warnings()
    assert "uncompressed layers" in warning and "cannot keep the upstream digest" in warning
