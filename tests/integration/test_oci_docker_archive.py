"""`docker save` archives as seeding input: seeded, readable, and honestly not upstream digests."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_oci import (
    BlobMissingError,
    DockerArchive,
    seed,
)

from tests.support.oci import make_docker_archive, needs_registry, sha256

pytestmark = [needs_registry, pytest.mark.slow]


def test_a_docker_archive_is_seeded_with_a_warning_that_upstream_digests_are_lost(registry, tmp_path):
    archive = tmp_path / "images.tar"
    made = make_docker_archive(
        archive,
        [
            (["legacy:1", "legacy:latest"], [{"etc/base": b"base" * 1000}, {"bin/app": b"app"}]),
            (["registry.example.org/team/other:2"], [{"etc/base": b"base" * 1000}]),
        ],
    )
    result = seed(registry.client(), DockerArchive(str(archive)))
    assert result.changed
    assert {r["image"] for r in result.images} == {
        "docker.io/library/legacy:1",
        "docker.io/library/legacy:latest",
        "registry.example.org/team/other:2",
    }
    assert len(result.warnings) == 3
    assert all("cannot keep the upstream digest" in w for w in result.warnings)

    # skopeo reads the image back: exact config bytes, layers stored uncompressed (digest = diffID)
    config, layer_tars = made["legacy:1"]
    common = ["--cert-dir", str(registry.pki["ca"].parent), "--creds", f"{registry.user}:{registry.password}"]
    ref = f"docker://{registry.address}/library/legacy:1"
    got_config = subprocess.run(
        ["skopeo", "inspect", "--config", "--raw", *common, ref], check=True, capture_output=True
    ).stdout
    assert got_config == config
    manifest = json.loads(registry.skopeo_raw("library/legacy:1"))
    assert [layer["digest"] for layer in manifest["layers"]] == [sha256(t) for t in layer_tars]
    assert sha256(registry.skopeo_raw("team/other:2")) == next(
        r["digest"] for r in result.images if r["image"].endswith("other:2")
    )

    mark = registry.log_mark()
    again = seed(registry.client(), DockerArchive(str(archive)))
    assert not again.changed and registry.writes(mark) == []


def _docker25_archive(layout, path, drop=()):
    """A docker >= 25 `docker save` tar: the OCI layout with containerd-style names, plus the
    legacy manifest.json. ``drop``: blob digests to leave out (platforms docker did not pull)."""
    index = json.loads(Path(layout.path, "index.json").read_text())
    for entry in index["manifests"]:
        full = entry["annotations"]["org.opencontainers.image.ref.name"]
        entry["annotations"] = {
            "io.containerd.image.name": full,
            "org.opencontainers.image.ref.name": full.rsplit(":", 1)[1],
        }
    with tarfile.open(path, "w") as tar:
        for name, data in {
            "oci-layout": Path(layout.path, "oci-layout").read_bytes(),
            "index.json": json.dumps(index).encode(),
            "manifest.json": b"[]",
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for blob in sorted(Path(layout.path, "blobs", "sha256").iterdir()):
            if "sha256:" + blob.name not in drop:
                tar.add(str(blob), arcname=f"blobs/sha256/{blob.name}")


def test_a_docker_25_archive_keeps_the_digests_of_its_oci_index(registry, layout, tmp_path):
    archive = tmp_path / "docker25.tar"
    _docker25_archive(layout, archive)
    source = DockerArchive(str(archive))
    assert source.warnings() == []  # compressed originals: upstream digests survive
    result = seed(registry.client(), source)
    expected = {str(r): d["digest"] for r, d in layout.images()}
    assert {r["image"]: r["digest"] for r in result.images} == expected
    assert sha256(registry.skopeo_raw("library/multi:1")) == expected["docker.io/library/multi:1"]


def test_a_docker_25_archive_missing_a_platform_fails_naming_the_image(registry, layout, tmp_path):
    index_digest = dict((str(r), d["digest"]) for r, d in layout.images())["docker.io/library/multi:1"]
    index = json.loads(Path(layout.blob_path(index_digest)).read_bytes())
    arm = next(m["digest"] for m in index["manifests"] if m["platform"]["architecture"] == "arm64")
    archive = tmp_path / "partial.tar"
    _docker25_archive(layout, archive, drop={arm})
    with pytest.raises(BlobMissingError) as caught:
        seed(registry.client(), DockerArchive(str(archive)), images=["docker.io/library/multi:1"])
    assert "docker.io/library/multi:1" in str(caught.value) and arm in str(caught.value)
    assert registry.writes() == []
