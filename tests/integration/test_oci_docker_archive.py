"""`docker save` archives as seeding input: seeded, readable, and honestly not upstream digests."""

from __future__ import annotations

import json
import subprocess

import pytest
from ansible.module_utils.island_oci import DockerArchive, seed
from oci_fixtures import make_docker_archive, needs_registry, sha256

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
